/**
 * The data path of a write on a datanode (WebHDFS CREATE/APPEND step two): a body up to inlineThreshold
 * becomes one inline command; a larger one is split into blocks, each placed by the leader
 * (`/hopsd/block-alloc/1.0.0`) and streamed through its pipeline while it arrives. A datanode failing
 * mid-block is excluded and the block is re-sent, from the bytes this writer keeps until the block is
 * acked, through a new pipeline (pipeline recovery: at most one block of memory per write). On close,
 * CompleteFile commits the blocks with their lengths, checksums and replicas; they become visible then.
 * A failed write leaves no damaged file: a new file is deleted, an append closes with its old content.
 */
import type { Clock, Rng } from '../../consensus/index.js'
import { metaProto } from '../../meta/index.js'
import type { AllocReply, AllocRequest } from '../blocks/index.js'
import { crc32c } from '../crc32c.js'
import { FsError } from '../errors.js'
import type { FsLogger } from '../logger.js'
import { PIPELINE_WINDOW_PACKETS, type PacketIn, type StageLink } from './pipeline.js'
import { CHUNK_BYTES } from './store.js'

import mpb = metaProto.meta

/** A block's pipeline is rebuilt at most this many times before the write fails. */
const PIPELINE_RECOVERIES_MAX = 5

export class PipelineFailure extends Error {
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
export async function pump(
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
  constructor(
    body: AsyncIterable<Buffer>,
    private readonly clock: Clock,
  ) {
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
    for (let off = 0; off < size;) {
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
    const deadline = this.clock.now() + ms
    this.buf = []
    this.bytes = 0
    while (!this.done && this.clock.now() < deadline) {
      const r = await this.it.next()
      if (r.done) this.done = true
    }
  }
  async atEnd(): Promise<boolean> {
    await this.fill(1)
    return this.bytes === 0
  }
}

export interface WriteArgs {
  readonly op: 'CREATE' | 'APPEND'
  readonly path: string
  readonly user: string
  /**
   * The grant the metadata node signed at step one (src/auth/grant.ts), passed with every proposal and
   * allocation of the write so that the metadata group knows who writes; absent only in tests of the
   * datanode alone.
   */
  readonly grant?: string
  readonly params: { overwrite: boolean; permission: number; replication: number; blockSize: number }
  readonly body: AsyncIterable<Buffer>
  readonly inline: number
}

export type WriteDeps = WriteArgs & {
  selfId: string
  log: FsLogger
  clock: Clock
  /** Draws the write's client name (the lease holder), so that a seeded run names it the same. */
  rng: Rng
  propose: (cmd: mpb.Command.$Properties) => Promise<unknown>
  allocate: (req: AllocRequest) => Promise<AllocReply>
  stage: (targets: readonly string[], blockId: number, genStamp: number) => Promise<StageLink>
  /** The inline bytes of a file (the caller holds its lease). */
  inlineData: (path: string, user: string) => Promise<Uint8Array>
}

/** Writes the body; on failure the rest of the body is read and dropped before the error answers. */
export async function writeFile(a: WriteDeps): Promise<void> {
  const src = new ByteSource(a.body, a.clock)
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
  const clientName = `hopsd-dn-${a.selfId.slice(-6)}-${clientSuffix(a.rng)}`
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

/** 12 hex digits (48 bits) from `rng`. */
function clientSuffix(rng: Rng): string {
  const hi = rng.nextInt(0x1_0000).toString(16).padStart(4, '0')
  const lo = rng.nextInt(0x1_0000_0000).toString(16).padStart(8, '0')
  return hi + lo
}
