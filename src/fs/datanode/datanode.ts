/**
 * The datanode: block replicas on local disk (./store.ts) and the data paths around them.
 *
 *  - Serves the block pipeline (./pipeline.ts) and block reads (./serve-reads.ts) to other nodes.
 *  - Heartbeats the metadata leader every few gossip intervals with capacity and a block report
 *    (`/hopsd/block-report/1.0.0`: incremental between full ones, ./reports.ts; the leader commits
 *    only the deltas), and carries out the reply: delete replicas, copy replicas to other datanodes
 *    (re-replication, decommissioning).
 *  - Writes the data of WebHDFS CREATE/APPEND step two (./write.ts; the route is
 *    src/api/routes/datanode.ts).
 *  - Scans its replicas for rot in the background (./scanner.ts) when a scan rate is set.
 */
import { defaultRaftGroupConfig, type Clock, type Rng } from '../../consensus/index.js'
import { Periodic } from '../../lib/index.js'
import { encodeCommand, metaProto, type MetaResult } from '../../meta/index.js'
import { hopsd } from '../../proto/datanode.js'
import { BLOCK_PROTOCOLS, type AllocReply, type AllocRequest, type BlockManager } from '../blocks/index.js'
import { errorFromResult, FsError } from '../errors.js'
import { silentFsLogger, type FsLogger } from '../logger.js'
import type { PeerNetwork } from '../peers.js'
import { localStage, openRemoteStage, servePipeline, type PacketIn } from './pipeline.js'
import { BlockReporter } from './reports.js'
import { createBlockScanner } from './scanner.js'
import { serveReads } from './serve-reads.js'
import { CHUNK_BYTES, createBlockStore, type BlockStore, type BlockStoreInit } from './store.js'
import { pump, writeFile, type WriteArgs } from './write.js'

import pb = hopsd.datanode
import mpb = metaProto.meta

const TRANSFERS_MAX = 4
/** A replica transfer that has not finished in this long is abandoned (the leader hands it out again). */
const TRANSFER_TIMEOUT_MS = 10 * 60_000
const TRANSFER_QUEUE_MAX = 10_000
/** The most bytes an inline write holds: the largest proposal the metadata group takes. */
const INLINE_BYTES_MAX = defaultRaftGroupConfig.maxBatchBytes
/** Inline threshold assumed by a datanode without a metadata replica when the request names none. */
const INLINE_THRESHOLD_DEFAULT = 65_536

/** How a datanode reaches the metadata group (forwarded by the daemon when this node holds no replica). */
export interface MetadataClient {
  /**
   * Commits a metadata command; resolves with the state machine's result. `grant`: the write's grant
   * (signed by the metadata node that answered step one): the command runs as the principal it proves.
   */
  propose(command: Uint8Array, opts?: { grant?: string }): Promise<unknown>
  /** The metadata leader's node id; undefined while the group has none. */
  leaderId(): Promise<string | undefined>
}

export interface DatanodeInit {
  readonly selfId: string
  readonly zone: string
  readonly store: BlockStoreInit
  readonly peers: PeerNetwork
  readonly metadata: MetadataClient
  /** This node's block manager when it is also a metadata node (called directly, not over the network). */
  readonly localManager?: BlockManager
  /** Wall-clock ms: heartbeats, retries, commands' `nowMs`. */
  readonly clock: Clock
  /** Seeded: the client names of writes. */
  readonly rng: Rng
  readonly heartbeatMs: number
  /** Bytes per second the block scanner verifies; 0: no scanner. */
  readonly scanBytesPerS: number
  readonly logger?: FsLogger
}

export interface Datanode {
  readonly store: BlockStore
  /** Writes the body of a CREATE/APPEND step two; on failure the rest of the body is read and dropped. */
  write(args: WriteArgs): Promise<void>
  /** The inline threshold: the cluster setting when this node has a metadata replica, else 64 KiB. */
  inlineThreshold(): number
  /** Opens the store, serves the pipeline and reads, starts heartbeats (and the scanner). */
  start(signal?: AbortSignal): Promise<void>
  stop(signal?: AbortSignal): Promise<void>
}

export function createDatanode(init: DatanodeInit): Datanode {
  const { selfId, clock, rng, peers } = init
  const log = init.logger ?? silentFsLogger
  const manager = init.localManager
  const store = createBlockStore(init.store)
  const corrupt = new Set<number>()
  const unhandles: (() => Promise<void>)[] = []
  let leaderId: string | undefined
  let transfers = 0
  const reporter = new BlockReporter(() => clock.now())
  const sleep = (ms: number): Promise<void> => new Promise((r) => clock.setTimeout(r, ms))

  const leader = async (): Promise<string> => {
    if (leaderId !== undefined) return leaderId
    const id = await init.metadata.leaderId()
    if (id === undefined) throw new FsError('NOT_ENOUGH_DATANODES', 'the metadata group has no leader yet')
    return (leaderId = id)
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
          JSON.stringify(await manager.allocate(JSON.parse(new TextDecoder().decode(body)) as AllocRequest)),
        )
      }
      return await peers.request(id, protocol, body, { timeoutMs })
    } catch (err) {
      const code =
        (err as { remoteCode?: string; code?: string }).remoteCode ?? (err as { code?: string }).code
      if (code === 'NOT_LEADER' || (err as { code?: string }).code !== 'REMOTE_ERROR') leaderId = undefined
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
        await sleep(400 * (attempt + 1))
      }
    }
    throw last
  }
  /** Proposes through the metadata client; retried while the group has no (stable) leader — never committed then. */
  const propose = async (cmd: mpb.Command.$Properties, grant?: string): Promise<unknown> => {
    for (let attempt = 0; ; attempt++) {
      try {
        const r = (await init.metadata.propose(
          encodeCommand({ nowMs: clock.now(), ...cmd }),
          grant === undefined ? undefined : { grant },
        )) as MetaResult
        if (!r.ok) throw errorFromResult(r.code, r.message)
        return r.value
      } catch (err) {
        const code = (err as { remoteCode?: string }).remoteCode ?? (err as { code?: string }).code ?? ''
        if (attempt >= 8 || !RETRIABLE.has(code)) throw err
        await sleep(100 * 2 ** Math.min(attempt, 4))
      }
    }
  }

  const heartbeat = async (): Promise<void> => {
    const usage = await store.usage()
    const sentCorrupt = [...corrupt]
    const report = reporter.next(store.list())
    const req = pb.HeartbeatRequest.encode({
      zone: init.zone,
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
    for (const t of reply.truncates ?? []) {
      if (store.info(Number(t.blockId))?.genStamp === Number(t.toGenStamp)) continue // done already
      await store
        .truncate(Number(t.blockId), Number(t.fromGenStamp), Number(t.toGenStamp), Number(t.length))
        .catch((err: unknown) =>
          log.warn({ block: Number(t.blockId), err: (err as Error).message }, 'replica truncate failed'),
        )
    }
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
  const transfer = async (blockId: number, genStamp: number, targets: readonly string[]): Promise<void> => {
    const info = store.info(blockId)
    if (info === undefined || info.genStamp !== genStamp) return
    const link = await openRemoteStage(
      peers,
      targets,
      blockId,
      genStamp,
      AbortSignal.timeout(TRANSFER_TIMEOUT_MS),
    )
    let seq = 0
    const next = async (): Promise<PacketIn> => {
      const off = seq * CHUNK_BYTES
      const { data, crc } = await store.readChunk(blockId, seq).catch((err: unknown) => {
        if ((err as { code?: string }).code === 'CORRUPT_REPLICA') corrupt.add(blockId)
        throw err
      })
      return { seq: seq++, data, crc, last: off + data.length >= info.length }
    }
    await pump(link, next, targets)
    log.info({ block: blockId, targets }, 'replica transferred')
  }

  const inlineThreshold = (): number => manager?.inlineThreshold() ?? INLINE_THRESHOLD_DEFAULT

  const loop: Periodic = new Periodic({
    intervalMs: init.heartbeatMs,
    firstDelayMs: Math.min(init.heartbeatMs, 200),
    tick: heartbeat,
    onError: (err) => log.debug({ err: (err as Error).message }, 'heartbeat failed'),
    timers: clock,
  })
  const scanner =
    init.scanBytesPerS > 0
      ? createBlockScanner(
          store,
          init.scanBytesPerS,
          (id) => {
            corrupt.add(id)
            log.warn({ block: id }, 'block scanner: replica failed its checksum; reported')
          },
          (err) => log.warn({ err: (err as Error).message }, 'block scanner: read failed'),
          clock,
        )
      : undefined

  return {
    store,
    inlineThreshold,
    write: (args) =>
      writeFile({
        ...args,
        // Whatever a token says, an inline body fits one proposal: never buffer more (a Location signed
        // by a node this one took for a metadata node cannot make it hold a gigabyte).
        inline: Math.min(args.inline, INLINE_BYTES_MAX),
        selfId,
        log,
        clock,
        rng,
        // Every command and allocation of the write carries its token: the metadata group checks who
        // the writer is from it, not from this node.
        propose: (cmd) => propose(cmd, args.grant),
        allocate: (req) => allocate(args.grant === undefined ? req : { ...req, grant: args.grant }),
        stage: (targets, blockId, genStamp, resume) =>
          targets[0] === selfId
            ? Promise.resolve(
                localStage({ selfId, store, streams: peers, targets, blockId, genStamp, resume }),
              )
            : openRemoteStage(peers, targets, blockId, genStamp, undefined, resume),
      }),
    async start() {
      await store.start()
      manager?.attachLocalStore(store, (id) => corrupt.add(id))
      unhandles.push(
        await servePipeline(peers, selfId, store),
        await serveReads(peers, store, (id) => corrupt.add(id)),
      )
      loop.start()
      scanner?.start()
    },
    async stop() {
      await scanner?.stop()
      await loop.stop()
      for (const u of unhandles.splice(0)) await u().catch(() => undefined)
    },
  }
}

/** Consensus codes of a proposal that was not committed: safe to propose again. */
const RETRIABLE = new Set(['NOT_LEADER', 'NO_LEADER', 'PROPOSAL_DROPPED', 'UNAVAILABLE', 'QUEUE_FULL'])

/** Codes a leader's answer may carry that the writer acts on as fs errors. */
const FS_CODES = {
  NOT_ENOUGH_DATANODES: 1,
  FILE_NOT_FOUND: 1,
  LEASE_NOT_HELD: 1,
  DISK_FULL: 1,
  ACCESS_DENIED: 1,
  INVALID_ARGUMENT: 1,
}
type FsCode = keyof typeof FS_CODES
