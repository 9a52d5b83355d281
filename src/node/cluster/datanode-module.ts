/**
 * The `datanode` module (role datanode): block replicas on local disk (src/fs/blockstore) and the data
 * paths around them.
 *
 *  - Serves the block pipeline and block reads over libp2p (block-pipeline.ts).
 *  - Heartbeats the metadata leader every few gossip intervals with capacity and a block report
 *    (`/hopsd/block-report/1.0.0`: incremental between full ones, block-reports.ts; the leader
 *    commits only the deltas), and carries out the reply: delete replicas, copy replicas to other
 *    datanodes (re-replication, decommissioning).
 *  - Takes the data of WebHDFS CREATE/APPEND step two (`PUT|POST /api/v1/datanode/write/<path>`, the
 *    Location the metadata node signed): a body up to inlineThreshold becomes one inline command as
 *    before; a larger one is split into blocks, each placed by the leader (`/hopsd/block-alloc/1.0.0`)
 *    and streamed through its pipeline while it arrives. A datanode failing mid-block is excluded and
 *    the block is re-sent, from the bytes this writer keeps until the block is acked, through a new
 *    pipeline (pipeline recovery: at most one block of memory per write). On close, CompleteFile
 *    commits the blocks with their lengths, checksums and replicas; they become visible then. A failed
 *    write leaves no damaged file: a new file is deleted, an append closes with its old content.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ApiRoutes } from '../../api/index.js'
import {
  toRemoteException,
  createTokenSigner,
  signedFields,
  webhdfsTokenKey,
} from '../../api/routes/webhdfs.js'
import { createBlockStore, CHUNK_BYTES, type BlockStore } from '../../fs/blockstore/index.js'
import { crc32c, FsError, type Namespace } from '../../fs/index.js'
import { BlockReporter } from './block-reports.js'
import { errorFromResult } from '../../fs/errors.js'
import { encodeCommand, metaProto, type MetaResult } from '../../meta/index.js'
import { hopsd } from '../../proto/datanode.js'
import type { Logger } from '../logger.js'
import { requireService, type NodeModule } from '../module.js'
import { request } from '../p2p/index.js'
import {
  localStage,
  openRemoteStage,
  PIPELINE_WINDOW_PACKETS,
  serveReads,
  servePipeline,
  type PacketIn,
  type StageLink,
} from './block-pipeline.js'
import {
  BLOCK_PROTOCOLS,
  heartbeatIntervalMs,
  type AllocReply,
  type AllocRequest,
  type BlockManager,
} from './blocks-module.js'
import type { ClusterClient } from './client-module.js'
import type { MetadataNode } from './metadata-module.js'
import { loadSwarmKey, type P2PNode } from './p2p-module.js'

import pb = hopsd.datanode
import mpb = metaProto.meta
import { Periodic } from './periodic.js'

/** A block's pipeline is rebuilt at most this many times before the write fails. */
const PIPELINE_RECOVERIES_MAX = 5
const TRANSFERS_MAX = 4
const TRANSFER_QUEUE_MAX = 10_000

export interface DatanodeNode {
  readonly store: BlockStore
}

export function datanodeModule(): NodeModule {
  return {
    name: 'datanode',
    roles: ['datanode'],
    create(components) {
      const { config, identity, logger } = components
      const selfId = identity.id
      const log = logger.child({ area: 'datanode' })
      const p2p = requireService<P2PNode>(components, 'p2p')
      const cluster = requireService<ClusterClient>(components, 'cluster')
      const manager = components.services['blockmanager'] as BlockManager | undefined
      const localMeta = components.services['metadata'] as MetadataNode | undefined
      const store = createBlockStore({
        dirs: config.blockDirs.length > 0 ? config.blockDirs : [join(config.dataDir, 'blocks')],
        capacityBytesMax: config.blockCapacityBytes,
        reservedBytes: config.blockCapacityBytes > 0 ? 0 : undefined,
      })
      const tokens = createTokenSigner(
        webhdfsTokenKey(loadSwarmKey(config.swarmKey, config.dataDir)),
        60_000,
        Date.now,
      )
      const corrupt = new Set<number>()
      const unhandles: (() => Promise<void>)[] = []
      let leaderId: string | undefined
      let transfers = 0
      const hbMs = heartbeatIntervalMs(config.gossipIntervalMs)
      const reporter = new BlockReporter(Date.now)

      const leader = async (): Promise<string> => {
        if (leaderId !== undefined) return leaderId
        const st = await cluster.status()
        if (!st.leader) throw new FsError('NOT_ENOUGH_DATANODES', 'the metadata group has no leader yet')
        return (leaderId = st.leader.id)
      }
      /** Calls the leader's block manager (directly when it is this node). */
      const toLeader = async (protocol: string, body: Uint8Array, timeoutMs: number): Promise<Uint8Array> => {
        const id = await leader()
        try {
          if (id === selfId && manager !== undefined) {
            if (protocol === BLOCK_PROTOCOLS.report)
              return pb.HeartbeatReply.encode(
                await manager.heartbeat(selfId, pb.HeartbeatRequest.decode(body)),
              ).finish()
            return new TextEncoder().encode(
              JSON.stringify(
                await manager.allocate(JSON.parse(new TextDecoder().decode(body)) as AllocRequest),
              ),
            )
          }
          return await request(p2p.host(), id, protocol, body, { timeoutMs })
        } catch (err) {
          const code =
            (err as { remoteCode?: string; code?: string }).remoteCode ?? (err as { code?: string }).code
          if (code === 'NOT_LEADER' || (err as { code?: string }).code !== 'REMOTE_ERROR')
            leaderId = undefined
          if (code !== undefined && code !== 'REMOTE_ERROR' && Object.hasOwn(FS_CODES, code))
            throw new FsError(code as FsCode, (err as Error).message)
          throw err
        }
      }
      const allocate = async (req: AllocRequest): Promise<AllocReply> => {
        const body = new TextEncoder().encode(JSON.stringify(req))
        let last: unknown
        for (let attempt = 0; attempt < 8; attempt++) {
          try {
            return JSON.parse(
              new TextDecoder().decode(await toLeader(BLOCK_PROTOCOLS.alloc, body, 15_000)),
            ) as AllocReply
          } catch (err) {
            last = err
            // A new leader learns the datanodes from their next heartbeats: NOT_ENOUGH_DATANODES may pass.
            if (err instanceof FsError && err.code !== 'NOT_ENOUGH_DATANODES') throw err
            await new Promise((r) => setTimeout(r, 400 * (attempt + 1)))
          }
        }
        throw last
      }
      /** Proposes through the cluster client; retried while the group has no (stable) leader — never committed then. */
      const propose = async (cmd: mpb.Command.$Properties): Promise<unknown> => {
        for (let attempt = 0; ; attempt++) {
          try {
            const r = (await cluster.propose(encodeCommand({ nowMs: Date.now(), ...cmd }))) as MetaResult
            if (!r.ok) throw errorFromResult(r.code, r.message)
            return r.value
          } catch (err) {
            const code = (err as { remoteCode?: string }).remoteCode ?? (err as { code?: string }).code ?? ''
            if (attempt >= 8 || !RETRIABLE.has(code)) throw err
            await new Promise((r) => setTimeout(r, 100 * 2 ** Math.min(attempt, 4)))
          }
        }
      }

      const heartbeat = async (): Promise<void> => {
        const usage = await store.usage()
        const sentCorrupt = [...corrupt]
        const report = reporter.next(store.list())
        const req = pb.HeartbeatRequest.encode({
          zone: config.zone,
          capacityBytes: usage.capacityBytes,
          usedBytes: usage.usedBytes,
          availableBytes: usage.availableBytes,
          blocks: [...report.blocks],
          corrupt: sentCorrupt,
          incremental: report.incremental,
          deleted: [...report.deleted],
        }).finish()
        const reply = pb.HeartbeatReply.decode(await toLeader(BLOCK_PROTOCOLS.report, req, 10_000))
        if (!reply.leader) {
          leaderId = undefined
          return
        }
        reporter.answered(report, reply.fullReportRequested)
        if (reply.fullReportRequested) return // nothing else was taken: all of it again, in full
        for (const id of sentCorrupt) corrupt.delete(id)
        for (const id of reply.deleteBlocks) await store.delete(Number(id))
        for (const t of reply.transfers) {
          if (transferQueue.length < TRANSFER_QUEUE_MAX) transferQueue.push(t)
        }
        runTransfers()
      }

      /** Transfers handed out by the leader wait here; TRANSFERS_MAX run at once. */
      const transferQueue: pb.ITransferCommand[] = []
      const runTransfers = (): void => {
        while (transfers < TRANSFERS_MAX && transferQueue.length > 0 && !loop.stopping) {
          const t = transferQueue.shift()!
          transfers++
          void transfer(Number(t.blockId), Number(t.genStamp), t.targets ?? [])
            .catch((err: unknown) =>
              log.warn({ block: Number(t.blockId), err: (err as Error).message }, 'replica transfer failed'),
            )
            .finally(() => {
              transfers--
              runTransfers()
            })
        }
      }

      /** Copies a local replica to `targets` through a pipeline. */
      const transfer = async (
        blockId: number,
        genStamp: number,
        targets: readonly string[],
      ): Promise<void> => {
        const info = store.info(blockId)
        if (info === undefined || info.genStamp !== genStamp) return
        const link = await openRemoteStage(p2p.host(), targets, blockId, genStamp)
        let seq = 0
        const next = async (): Promise<PacketIn> => {
          const off = seq * CHUNK_BYTES
          const data = await store.read(blockId, off, CHUNK_BYTES).catch((err: unknown) => {
            if ((err as { code?: string }).code === 'CORRUPT_REPLICA') corrupt.add(blockId)
            throw err
          })
          return { seq: seq++, data, crc: crc32c(data), last: off + data.length >= info.length }
        }
        await pump(link, [], next, targets)
        log.info({ block: blockId, targets }, 'replica transferred')
      }

      const loop = new Periodic({
        intervalMs: hbMs,
        firstDelayMs: Math.min(hbMs, 200),
        tick: heartbeat,
        onError: (err) => log.debug({ err: (err as Error).message }, 'heartbeat failed'),
      })
      const scanner =
        config.blockScanBytesPerS > 0
          ? createBlockScanner(
              store,
              config.blockScanBytesPerS,
              (id) => {
                corrupt.add(id)
                log.warn({ block: id }, 'block scanner: replica failed its checksum; reported')
              },
              (err) => log.warn({ err: (err as Error).message }, 'block scanner: read failed'),
            )
          : undefined
      return {
        api: { store } satisfies DatanodeNode,
        routes: writeRoutes({
          tokens,
          inlineThreshold: (q) => Number(q['hopsd.inline'] ?? manager?.inlineThreshold() ?? 65_536),
          writeFile: (args) =>
            writeFile({
              ...args,
              selfId,
              log,
              propose,
              allocate,
              stage: (targets, blockId, genStamp) =>
                targets[0] === selfId
                  ? Promise.resolve(
                      localStage({ selfId, store, host: p2p.host(), targets, blockId, genStamp }),
                    )
                  : openRemoteStage(p2p.host(), targets, blockId, genStamp),
              inlineData: async (path, user) => {
                const ns = localMeta?.stateMachine.module<Namespace>('fs')
                if (ns !== undefined) {
                  await localMeta!.group.readBarrier()
                  const id = ns.idOf(path)
                  const f = id === undefined ? undefined : ns.fileById(id)
                  return f?.inlined ? f.data : new Uint8Array(0)
                }
                // No replica here: read it over WebHDFS from a metadata node, as the writing user.
                const t = cluster.metadataTargets().find((n) => n.httpAddr !== '')
                if (t === undefined)
                  throw new FsError('NOT_ENOUGH_DATANODES', 'no metadata node to read the inline bytes from')
                const url = `http://${t.httpAddr}/webhdfs/v1${path.split('/').map(encodeURIComponent).join('/')}?op=OPEN&user.name=${encodeURIComponent(user)}`
                const res = await fetch(url, { signal: AbortSignal.timeout(30_000) })
                if (res.status !== 200)
                  throw new FsError(
                    'ACCESS_DENIED',
                    `reading the inline bytes of ${path} answered ${res.status}`,
                  )
                return new Uint8Array(await res.arrayBuffer())
              },
            }),
        }),
        service: {
          async start() {
            await store.start()
            manager?.attachLocalStore(store, (id) => corrupt.add(id))
            unhandles.push(
              await servePipeline(p2p.host(), selfId, store),
              await serveReads(p2p.host(), store, (id) => corrupt.add(id)),
            )
            loop.start()
            scanner?.start()
          },
          async stop() {
            await scanner?.stop()
            await loop.stop()
            for (const u of unhandles.splice(0)) await u().catch(() => undefined)
          },
        },
      }
    },
  }
}

/** How often the block scanner runs; each run verifies its share of the configured bytes per second. */
const SCAN_TICK_MS = 500

/**
 * The block scanner (HDFS's VolumeScanner, simplified): walks every replica in turn, re-reading it
 * through the store (which checks each 64 KiB chunk against its CRC32C) at `bytesPerS`, so a replica
 * that rotted on disk is found and reported (then re-created from a good one by the block manager)
 * even when no client reads it. A replica deleted meanwhile is skipped.
 */
function createBlockScanner(
  store: BlockStore,
  bytesPerS: number,
  onCorrupt: (blockId: number) => void,
  onError: (err: unknown) => void,
): Periodic {
  let queue: number[] = []
  let offset = 0
  return new Periodic({
    intervalMs: SCAN_TICK_MS,
    firstDelayMs: SCAN_TICK_MS,
    async tick(signal) {
      let budget = Math.max(CHUNK_BYTES, Math.floor((bytesPerS * SCAN_TICK_MS) / 1000))
      while (budget > 0 && !signal.aborted) {
        if (queue.length === 0) {
          queue = store.list().map((b) => b.id)
          offset = 0
          if (queue.length === 0) return
        }
        const id = queue[0]!
        const length = store.info(id)?.length ?? 0
        if (offset >= length) {
          queue.shift()
          offset = 0
          continue
        }
        const n = Math.min(budget, length - offset, 16 * CHUNK_BYTES)
        try {
          await store.read(id, offset, n)
          offset += n
          budget -= n
        } catch (err) {
          const code = (err as { code?: string }).code
          if (code === 'CORRUPT_REPLICA') onCorrupt(id)
          else if (code !== 'BLOCK_NOT_FOUND') throw err
          queue.shift() // reported (or gone): on to the next replica
          offset = 0
        }
      }
    },
    onError,
  })
}

/** Consensus codes of a proposal that was not committed: safe to propose again. */
const RETRIABLE = new Set(['NOT_LEADER', 'NO_LEADER', 'PROPOSAL_DROPPED', 'UNAVAILABLE', 'QUEUE_FULL'])

const FS_CODES = {
  NOT_ENOUGH_DATANODES: 1,
  FILE_NOT_FOUND: 1,
  LEASE_NOT_HELD: 1,
  DISK_FULL: 1,
  ACCESS_DENIED: 1,
  INVALID_ARGUMENT: 1,
}
type FsCode = keyof typeof FS_CODES

class PipelineFailure extends Error {
  constructor(
    readonly failedNode: string,
    message: string,
  ) {
    super(message)
  }
}

/**
 * Sends `retained` packets then pulls more with `next` until one is `last`, keeping at most
 * PIPELINE_WINDOW_PACKETS unacked; resolves with the last ack. Pulled packets are appended to
 * `retained` (for a replay through another pipeline). Throws PipelineFailure naming the failed node.
 */
async function pump(
  link: StageLink,
  retained: PacketIn[],
  next: () => Promise<PacketIn>,
  targets: readonly string[],
): Promise<{ length: number; checksum: number }> {
  const acks = link.acks[Symbol.asyncIterator]()
  let inflight = 0
  let lastAck = { length: 0, checksum: 0 }
  const awaitAck = async (): Promise<void> => {
    const r = await acks.next()
    if (r.done) throw new PipelineFailure(targets[0]!, 'the pipeline closed early')
    if (!r.value.ok) throw new PipelineFailure(r.value.failedNode || targets[0]!, r.value.error)
    inflight--
    lastAck = r.value
  }
  try {
    for (let i = 0; ; i++) {
      const p = i < retained.length ? retained[i]! : await next()
      if (i >= retained.length) retained.push(p)
      await link.send(p)
      inflight++
      if (p.last) break
      while (inflight >= PIPELINE_WINDOW_PACKETS) await awaitAck()
    }
    while (inflight > 0) await awaitAck()
  } catch (err) {
    link.abort()
    if (err instanceof PipelineFailure) throw err
    if ((err as { code?: string }).code !== undefined && !(err as { failedNode?: string }).failedNode)
      throw err
    throw new PipelineFailure(targets[0]!, (err as Error).message)
  }
  return lastAck
}

/** Reads a request body as packets of ≤ 64 KiB with a one-chunk lookahead. */
class ByteSource {
  private readonly it: AsyncIterator<Buffer>
  private buf: Buffer[] = []
  private bytes = 0
  private done = false
  constructor(body: AsyncIterable<Buffer>) {
    this.it = body[Symbol.asyncIterator]()
  }
  private async fill(n: number): Promise<void> {
    while (this.bytes < n && !this.done) {
      const r = await this.it.next()
      if (r.done) this.done = true
      else {
        this.buf.push(r.value)
        this.bytes += r.value.length
      }
    }
  }
  /**
   * Up to `n` bytes (fewer only at the end): a view of the body chunk when one holds them all, else one
   * copy of exactly that size. (Concatenating everything buffered and copying the packet out of it
   * allocated two buffers per packet; short-lived 64 KiB buffers are what keep V8's GC busy here.)
   */
  async take(n: number): Promise<Buffer> {
    await this.fill(n)
    const size = Math.min(n, this.bytes)
    const first = this.buf[0]
    this.bytes -= size
    if (first !== undefined && first.length >= size) {
      if (first.length > size) this.buf[0] = first.subarray(size)
      else this.buf.shift()
      return first.subarray(0, size)
    }
    const out = Buffer.allocUnsafe(size)
    for (let off = 0; off < size; ) {
      const c = this.buf[0]!
      const k = Math.min(c.length, size - off)
      c.copy(out, off, 0, k)
      off += k
      if (k === c.length) this.buf.shift()
      else this.buf[0] = c.subarray(k)
    }
    return out
  }
  /** Reads and drops the rest (so that an error answer reaches a client still sending), within `ms`. */
  async drain(ms: number): Promise<void> {
    const deadline = Date.now() + ms
    this.buf = []
    this.bytes = 0
    while (!this.done && Date.now() < deadline) {
      const r = await this.it.next()
      if (r.done) this.done = true
    }
  }
  async atEnd(): Promise<boolean> {
    await this.fill(1)
    return this.bytes === 0
  }
}

interface WriteArgs {
  readonly op: 'CREATE' | 'APPEND'
  readonly path: string
  readonly user: string
  readonly params: { overwrite: boolean; permission: number; replication: number; blockSize: number }
  readonly body: AsyncIterable<Buffer>
  readonly inline: number
}

type WriteDeps = WriteArgs & {
  selfId: string
  log: Logger
  propose: (cmd: mpb.Command.$Properties) => Promise<unknown>
  allocate: (req: AllocRequest) => Promise<AllocReply>
  stage: (targets: readonly string[], blockId: number, genStamp: number) => Promise<StageLink>
  /** The inline bytes of a file (the caller holds its lease). */
  inlineData: (path: string, user: string) => Promise<Uint8Array>
}

/** Writes the body; on failure the rest of the body is read and dropped before the error answers. */
async function writeFile(a: WriteDeps): Promise<void> {
  const src = new ByteSource(a.body)
  try {
    await writeFrom(a, src)
  } catch (err) {
    await src.drain(60_000).catch(() => undefined)
    throw err
  }
}

async function writeFrom(a: WriteDeps, src: ByteSource): Promise<void> {
  const head = await src.take(a.inline + 1)
  const small = head.length <= a.inline
  const base = { user: a.user, groups: [] as string[] }
  const clientName = `hopsd-dn-${a.selfId.slice(-6)}-${randomBytes(6).toString('hex')}`
  const createFile = (data: Uint8Array, close: boolean) => ({
    ...base,
    clientName: close ? '' : clientName,
    createFile: {
      path: a.path,
      data,
      overwrite: a.params.overwrite,
      permission: a.params.permission,
      replication: a.params.replication,
      blockSize: a.params.blockSize,
      close,
      createParent: true,
    },
  })
  if (a.op === 'CREATE' && small) {
    await a.propose(createFile(head, true))
    return
  }
  let prefix: Uint8Array = new Uint8Array(0)
  let dropInline = false
  if (a.op === 'CREATE') await a.propose(createFile(new Uint8Array(0), false))
  else {
    if (small) {
      // Still inline after it (one command, as before), or a file in blocks (refused: data > 0).
      try {
        await a.propose({ ...base, append: { path: a.path, data: head, close: true } })
        return
      } catch (err) {
        const code = (err as { code?: string }).code
        if (code !== 'FILE_TOO_LARGE_FOR_INLINE' && code !== 'UNSUPPORTED_OPERATION') throw err
      }
    }
    const r = (await a.propose({
      ...base,
      clientName,
      append: { path: a.path, data: new Uint8Array(0), close: false },
    })) as {
      size: number
      inlined: boolean
    }
    if (r.inlined && r.size > 0) {
      // The inline bytes move into the first block (the file grows past inlineThreshold).
      try {
        prefix = await a.inlineData(a.path, a.user)
      } catch (err) {
        await a
          .propose({ ...base, clientName, completeFile: { path: a.path, blocks: [] } })
          .catch(() => undefined)
        throw err
      }
      if (prefix.length !== r.size)
        throw new FsError('INVALID_ARGUMENT', `${a.path} changed while it was reopened`)
      dropInline = true
    }
  }
  const commits: mpb.IBlockCommit[] = []
  try {
    // The first bytes: the old inline content (if rewritten into blocks), then what was read so far.
    const first = Buffer.concat([prefix, head])
    let firstOff = 0
    const takeChunk = async (n: number): Promise<Buffer> => {
      if (firstOff < first.length) {
        const out = first.subarray(firstOff, firstOff + n)
        firstOff += out.length
        if (out.length < n && !(await src.atEnd()))
          return Buffer.concat([out, await src.take(n - out.length)])
        return out
      }
      return src.take(n)
    }
    const atEnd = async (): Promise<boolean> => firstOff >= first.length && (await src.atEnd())
    const exclude: string[] = []
    let lastFailure = ''
    for (;;) {
      let alloc = await a.allocate({
        path: a.path,
        user: a.user,
        groups: [],
        clientName,
        writer: a.selfId,
        exclude,
      })
      const retained: PacketIn[] = []
      let inBlock = 0
      const next = async (): Promise<PacketIn> => {
        const data = await takeChunk(Math.min(CHUNK_BYTES, alloc.blockSize - inBlock))
        inBlock += data.length
        const last = inBlock >= alloc.blockSize || (await atEnd())
        return { seq: retained.length, data, crc: crc32c(data), last }
      }
      let done: { length: number; checksum: number } | undefined
      for (let attempt = 0; done === undefined; attempt++) {
        try {
          done = await pump(
            await a.stage(alloc.targets, alloc.blockId, alloc.genStamp),
            retained,
            next,
            alloc.targets,
          )
        } catch (err) {
          const failed = err instanceof PipelineFailure ? err.failedNode : alloc.targets[0]!
          if (attempt + 1 >= PIPELINE_RECOVERIES_MAX) throw err
          a.log.warn(
            { block: alloc.blockId, failed, err: (err as Error).message },
            'pipeline failed: replacing the datanode',
          )
          exclude.push(failed)
          lastFailure = (err as Error).message
          // A new block (new id and genStamp) through a new pipeline; the packets are replayed.
          alloc = await a
            .allocate({ path: a.path, user: a.user, groups: [], clientName, writer: a.selfId, exclude })
            .catch((e: unknown) => {
              if (/DISK_FULL/.test(lastFailure) && (e as { code?: string }).code === 'NOT_ENOUGH_DATANODES')
                throw new FsError('DISK_FULL', `no datanode has room for the block (${lastFailure})`)
              throw e
            })
        }
      }
      commits.push({
        id: alloc.blockId,
        genStamp: alloc.genStamp,
        length: done.length,
        checksum: done.checksum,
        replicas: alloc.targets,
      })
      if (await atEnd()) break
    }
    await a.propose({ ...base, clientName, completeFile: { path: a.path, blocks: commits, dropInline } })
  } catch (err) {
    // No damaged file: a new file goes away, an append closes with what it had.
    if (a.op === 'CREATE') await a.propose({ ...base, delete: { path: a.path } }).catch(() => undefined)
    else
      await a
        .propose({ ...base, clientName, completeFile: { path: a.path, blocks: [] } })
        .catch(() => undefined)
    throw err
  }
}
function writeRoutes(deps: {
  tokens: ReturnType<typeof createTokenSigner>
  inlineThreshold: (q: Record<string, string | undefined>) => number
  writeFile: (a: WriteArgs) => Promise<void>
}): ApiRoutes {
  return {
    name: 'datanode',
    register(app: FastifyInstance) {
      app.removeAllContentTypeParsers()
      app.addContentTypeParser('*', (_req, payload, done) => done(null, payload))
      app.setErrorHandler((err: unknown, _req: FastifyRequest, reply: FastifyReply) => {
        const { status, body } = toRemoteException(err)
        void reply.status(status).type('application/json').send(body)
      })
      const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
        const q = req.query as Record<string, string | undefined>
        const op = (q['op'] ?? '').toUpperCase()
        if (op !== 'CREATE' && op !== 'APPEND')
          throw new FsError('INVALID_ARGUMENT', `the data route takes CREATE or APPEND, not ${op}`)
        const path = '/' + ((req.params as { '*'?: string })['*'] ?? '')
        const user = deps.tokens.verify(q['hopsd.token'] ?? '', signedFields(op, path, q))
        const int = (k: string, d: number): number => (q[k] === undefined || q[k] === '' ? d : Number(q[k]))
        await deps.writeFile({
          op,
          path,
          user,
          params: {
            overwrite: q['overwrite'] === 'true',
            permission: q['permission'] ? Number.parseInt(q['permission'], 8) : 0o644,
            replication: int('replication', 0),
            blockSize: int('blocksize', 0),
          },
          body: (req.body as AsyncIterable<Buffer> | undefined) ?? (async function* () {})(),
          inline: deps.inlineThreshold(q),
        })
        if (op === 'CREATE')
          return reply
            .status(201)
            .header('location', `hdfs://${req.headers.host ?? 'localhost'}${encodeURI(path)}`)
            .header('content-length', 0)
            .send()
        return reply.status(200).header('content-length', 0).send()
      }
      const schema = {
        summary: 'WebHDFS CREATE/APPEND step two on a datanode (signed Location from the metadata node)',
        tags: ['webhdfs'],
        response: { default: { description: 'empty; RemoteException JSON on errors' } },
      }
      app.route({ method: ['PUT', 'POST'], url: '/api/v1/datanode/write/*', schema, handler })
    },
  }
}
