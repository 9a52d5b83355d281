/**
 * The data path of a write on a datanode (WebHDFS CREATE/APPEND step two): a body up to inlineThreshold
 * becomes one inline command; a larger one is split into blocks, each placed by the leader
 * (`/hopsd/block-alloc/1.0.0`) and streamed through its pipeline while it arrives. An append continues
 * the file's partial last block (a new generation stamp for the same block, on its live replicas)
 * before it starts new ones, as HDFS does.
 *
 * Memory is the window, not the block: the writer keeps only the packets not yet acked by every replica
 * (PIPELINE_WINDOW_PACKETS × 64 KiB). When a datanode fails mid-block, the block gets a new stamp and
 * the survivors as pipeline (UpdatePipeline), each survivor continues its replica from the bytes all of
 * them acked, and only the window is sent again (HDFS's pipeline recovery); with no survivor the write
 * fails. The write is bound to the file's inode: a rename meanwhile keeps it.
 *
 * On close, CompleteFile commits the blocks with their lengths, checksums and replicas; the new bytes
 * become visible then. A failed write leaves no damaged file: a new file is deleted; an append keeps
 * the blocks it completed (their replicas are final) and the rest of the file as it was.
 */
import type { Clock, Rng } from '../../consensus/index.js'
import { metaProto } from '../../meta/index.js'
import type { AllocReply, AllocRequest } from '../blocks/index.js'
import { crc32c } from '../crc32c.js'
import { FsError } from '../errors.js'
import type { FsLogger } from '../logger.js'
import {
  PIPELINE_STALL_MS,
  PIPELINE_WINDOW_PACKETS,
  type PacketIn,
  type Resume,
  type StageLink,
} from './pipeline.js'
import { CHUNK_BYTES } from './store.js'

import mpb = metaProto.meta

/** A block's pipeline is rebuilt at most this many times before the write fails. */
const PIPELINE_RECOVERIES_MAX = 5
/** How long a failed write keeps reading (and dropping) the body so that its error reaches the client. */
const DRAIN_MS = 60_000

export class PipelineFailure extends Error {
  constructor(
    readonly failedNode: string,
    message: string,
  ) {
    super(message)
  }
}

/**
 * Sends packets pulled with `next` through `link` until one is `last`, keeping at most
 * PIPELINE_WINDOW_PACKETS unacked; resolves with the last ack. Nothing is kept for a replay (replica
 * transfers start over from the source replica). Throws PipelineFailure naming the failed node.
 */
export async function pump(
  link: StageLink,
  next: () => Promise<PacketIn>,
  targets: readonly string[],
): Promise<{ length: number; checksum: number }> {
  const window = new Window(link, targets)
  try {
    for (;;) {
      const p = await next()
      await window.send(p)
      if (p.last) break
    }
    return await window.drain()
  } catch (err) {
    link.abort()
    throw asPipelineFailure(err, targets)
  }
}

/** The packets in flight on one pipeline, acked in order. */
class Window {
  private readonly acks: AsyncIterator<{
    ok: boolean
    failedNode: string
    error: string
    length: number
    checksum: number
  }>
  private readonly unacked: PacketIn[] = []
  private lastAck = { length: 0, checksum: 0 }
  /** Bytes of the packets acked so far. */
  ackedBytes = 0

  constructor(
    private readonly link: StageLink,
    private readonly targets: readonly string[],
  ) {
    this.acks = link.acks[Symbol.asyncIterator]()
  }

  /** Packets sent and not yet acked by every replica (what a recovery sends again). */
  get pending(): readonly PacketIn[] {
    return this.unacked
  }

  async send(p: PacketIn): Promise<void> {
    // Pending before it is handed over: a send that fails leaves it to be sent again.
    this.unacked.push(p)
    await this.link.send(p)
    if (!p.last) while (this.unacked.length >= PIPELINE_WINDOW_PACKETS) await this.awaitAck()
  }

  async drain(): Promise<{ length: number; checksum: number }> {
    while (this.unacked.length > 0) await this.awaitAck()
    return this.lastAck
  }

  private async awaitAck(): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const stalled = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new PipelineFailure(
              this.targets[0]!,
              `no ack from ${this.targets[0]} within ${PIPELINE_STALL_MS} ms`,
            ),
          ),
        PIPELINE_STALL_MS,
      )
    })
    const r = await Promise.race([this.acks.next(), stalled]).finally(() => clearTimeout(timer))
    if (r.done) throw new PipelineFailure(this.targets[0]!, 'the pipeline closed early')
    if (!r.value.ok) throw new PipelineFailure(r.value.failedNode || this.targets[0]!, r.value.error)
    const p = this.unacked.shift()!
    this.ackedBytes += p.data.length
    this.lastAck = r.value
  }
}

function asPipelineFailure(err: unknown, targets: readonly string[]): unknown {
  if (err instanceof PipelineFailure) return err
  if ((err as { code?: string }).code !== undefined && !(err as { failedNode?: string }).failedNode)
    return err
  return new PipelineFailure(targets[0]!, (err as Error).message)
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

/** What a CREATE makes (parsed and checked once, in WebHDFS step one). */
export interface CreateOptions {
  readonly overwrite: boolean
  readonly createParent: boolean
  /** The file must exist already (a createflag without CREATE). */
  readonly mustExist: boolean
  readonly permission: number
  /** 0: the cluster default. */
  readonly replication: number
  /** 0: the cluster default. */
  readonly blockSize: number
}

export interface WriteArgs {
  readonly op: 'CREATE' | 'APPEND'
  readonly path: string
  /** The caller, as step one authenticated it (the write's commands carry it). */
  readonly user: string
  readonly groups: readonly string[]
  /**
   * The write's token (a grant the metadata node signed at step one, src/api/routes/write-token.ts),
   * passed with every proposal and allocation of the write so that the metadata group knows who writes;
   * absent only in tests of the datanode alone.
   */
  readonly grant?: string
  /** CREATE only. */
  readonly create?: CreateOptions
  /** APPEND: the file by inode id (a rename since step one keeps the append); else by `path`. */
  readonly fileId?: number
  /** Bodies of at most this many bytes become one inline command. */
  readonly inline: number
  /** Hadoop's NO_LOCAL_WRITE: the first replica is not put on this node by preference. */
  readonly noLocalWrite?: boolean
  readonly body: AsyncIterable<Buffer>
}

export type WriteDeps = WriteArgs & {
  selfId: string
  log: FsLogger
  clock: Clock
  /** Draws the write's client name (the lease holder), so that a seeded run names it the same. */
  rng: Rng
  propose: (cmd: mpb.Command.$Properties) => Promise<unknown>
  allocate: (req: AllocRequest) => Promise<AllocReply>
  stage: (
    targets: readonly string[],
    blockId: number,
    genStamp: number,
    resume?: Resume,
  ) => Promise<StageLink>
}

/** Writes the body; on failure the rest of the body is read and dropped before the error answers. */
export async function writeFile(a: WriteDeps): Promise<void> {
  const src = new ByteSource(a.body, a.clock)
  try {
    await writeFrom(a, src)
  } catch (err) {
    await src.drain(DRAIN_MS).catch(() => undefined)
    throw err
  }
}

const DEFAULT_CREATE: CreateOptions = {
  overwrite: false,
  createParent: true,
  mustExist: false,
  permission: 0o644,
  replication: 0,
  blockSize: 0,
}

async function writeFrom(a: WriteDeps, src: ByteSource): Promise<void> {
  const head = await src.take(a.inline + 1)
  const small = head.length <= a.inline
  const base = { user: a.user, groups: [...a.groups] }
  const clientName = `hopsd-dn-${a.selfId.slice(-6)}-${clientSuffix(a.rng)}`
  const c = a.create ?? DEFAULT_CREATE
  const createFile = (data: Uint8Array, close: boolean) => ({
    ...base,
    clientName: close ? '' : clientName,
    createFile: {
      path: a.path,
      data,
      overwrite: c.overwrite,
      permission: c.permission,
      replication: c.replication,
      blockSize: c.blockSize,
      close,
      createParent: c.createParent,
      mustExist: c.mustExist,
    },
  })
  if (a.op === 'CREATE' && small) {
    await a.propose(createFile(head, true))
    return
  }
  let prefix: Uint8Array = new Uint8Array(0)
  let dropInline = false
  let fileId: number
  let continueLast = false
  if (a.op === 'CREATE')
    fileId = ((await a.propose(createFile(new Uint8Array(0), false))) as { fileId: number }).fileId
  else {
    const byId = a.fileId === undefined ? {} : { fileId: a.fileId }
    if (small) {
      // Still inline after it (one command, as before), or a file in blocks (refused: data > 0).
      try {
        await a.propose({ ...base, append: { path: a.path, data: head, close: true, ...byId } })
        return
      } catch (err) {
        const code = (err as { code?: string }).code
        if (code !== 'FILE_TOO_LARGE_FOR_INLINE' && code !== 'UNSUPPORTED_OPERATION') throw err
      }
    }
    const r = (await a.propose({
      ...base,
      clientName,
      append: { path: a.path, data: new Uint8Array(0), close: false, ...byId },
    })) as { size: number; inlined: boolean; fileId: number; path: string; inlineData?: string }
    fileId = r.fileId
    continueLast = !r.inlined
    if (r.inlined && r.size > 0) {
      // The inline bytes move into the first block (the file grows past inlineThreshold): the append
      // that took the lease answered them, so nothing changed them since.
      prefix = r.inlineData === undefined ? new Uint8Array(0) : Buffer.from(r.inlineData, 'base64')
      if (prefix.length !== r.size) {
        await a
          .propose({ ...base, clientName, completeFile: { path: a.path, fileId, blocks: [] } })
          .catch(() => undefined)
        throw new FsError(
          'ACCESS_DENIED',
          `${a.path}: appending past inlineThreshold moves the file's inline bytes into a block, which needs read access to them`,
        )
      }
      dropInline = true
    }
  }
  const commits: mpb.IBlockCommit[] = []
  try {
    // The first bytes: the old inline content (if rewritten into blocks), then what was read so far.
    const first = Buffer.concat([prefix, head])
    let firstOff = 0
    const takeFromBody = async (n: number): Promise<Buffer> => {
      if (firstOff < first.length) {
        const out = first.subarray(firstOff, firstOff + n)
        firstOff += out.length
        if (out.length < n && !(await src.atEnd()))
          return Buffer.concat([out, await src.take(n - out.length)])
        return out
      }
      return src.take(n)
    }
    /** Packets read for a block whose first pipeline acked none of them: sent again in the next one. */
    let pendingReplay: PacketIn[] = []
    const takeChunk = async (n: number): Promise<Buffer> => {
      const p = pendingReplay.shift()
      if (p !== undefined) {
        if (p.data.length > n) throw new Error('a packet to send again does not fit its block')
        return Buffer.from(p.data.buffer, p.data.byteOffset, p.data.length)
      }
      return takeFromBody(n)
    }
    const atEnd = async (): Promise<boolean> =>
      pendingReplay.length === 0 && firstOff >= first.length && (await src.atEnd())
    const exclude: string[] = []
    for (let fresh = 0; ;) {
      const alloc = await a.allocate({
        path: a.path,
        fileId,
        user: a.user,
        groups: [...a.groups],
        clientName,
        writer: a.selfId,
        exclude,
        continueLast,
        noLocalWrite: a.noLocalWrite ?? false,
      })
      continueLast = false
      let commit: mpb.IBlockCommit
      try {
        commit = await writeBlock(a, alloc, fileId, clientName, base, takeChunk, atEnd, exclude)
      } catch (err) {
        // Nothing of a new block was acked: place it again, away from the failed datanode (the block
        // allocated first is forgotten on close, as it is not listed).
        if (!(err instanceof NothingAcked)) throw err
        if (++fresh >= PIPELINE_RECOVERIES_MAX) throw allFailed(alloc.blockId, err.failure)
        pendingReplay = err.replay
        continue
      }
      commits.push(commit)
      if (await atEnd()) break
    }
    await a.propose({ ...base, clientName, completeFile: { path: a.path, fileId, blocks: commits, dropInline } })
  } catch (err) {
    if (a.op === 'CREATE')
      // No damaged file: the new file goes (by inode, under the write's lease: a rename meanwhile does
      // not save it).
      await a.propose({ ...base, clientName, delete: { path: a.path, fileId } }).catch(() => undefined)
    else
      // The blocks completed are final on their replicas: the append keeps them; the one it was
      // writing is dropped (a continued last block keeps its old length and stamp).
      await a
        .propose({ ...base, clientName, completeFile: { path: a.path, fileId, blocks: commits, dropInline } })
        .catch(() => undefined)
    throw err
  }
}

/**
 * Streams one block (a new one, or the file's partial last block an append continues) through its
 * pipeline, recovering from failed datanodes: resolves with the block's commit.
 */
async function writeBlock(
  a: WriteDeps,
  alloc: AllocReply,
  fileId: number,
  clientName: string,
  base: { user: string; groups: string[] },
  takeChunk: (n: number) => Promise<Buffer>,
  atEnd: () => Promise<boolean>,
  exclude: string[],
): Promise<mpb.IBlockCommit> {
  let targets = [...alloc.targets]
  let genStamp = alloc.genStamp
  let resume: Resume | undefined = alloc.reopen
  /** Bytes of the block every replica in the pipeline has (the continued block's old length first). */
  let acked = alloc.reopen?.length ?? 0
  /** Bytes of the block read from the body so far (the window holds those not acked yet). */
  let inBlock = acked
  let seq = 0
  let replay: PacketIn[] = []
  const next = async (): Promise<PacketIn> => {
    // Packets end on chunk boundaries of the block (the first one of an append completes its
    // partial last chunk), and never cross the block's end.
    const room = Math.min(CHUNK_BYTES - (inBlock % CHUNK_BYTES), alloc.blockSize - inBlock)
    const data = await takeChunk(room)
    inBlock += data.length
    const last = inBlock >= alloc.blockSize || (await atEnd())
    return { seq: seq++, data, crc: crc32c(data), last }
  }
  for (let attempt = 0; ; attempt++) {
    const link = await a.stage(targets, alloc.blockId, genStamp, resume)
    const window = new Window(link, targets)
    try {
      seq = 0
      let last = false
      for (const p of replay) {
        const again = { ...p, seq: seq++ }
        await window.send(again)
        last = again.last
      }
      replay = []
      while (!last) {
        const p = await next()
        await window.send(p)
        last = p.last
      }
      const done = await window.drain()
      return {
        id: alloc.blockId,
        genStamp,
        length: done.length,
        checksum: done.checksum,
        replicas: targets,
      }
    } catch (err) {
      link.abort()
      const failure = asPipelineFailure(err, targets)
      if (!(failure instanceof PipelineFailure)) throw failure
      acked += window.ackedBytes
      replay = [...window.pending]
      exclude.push(failure.failedNode)
      if (acked === 0 && alloc.reopen === undefined && resume === undefined)
        throw new NothingAcked(failure, replay)
      const survivors = targets.filter((t) => t !== failure.failedNode)
      if (survivors.length === 0 || attempt + 1 >= PIPELINE_RECOVERIES_MAX)
        throw allFailed(alloc.blockId, failure)
      a.log.warn(
        { block: alloc.blockId, failed: failure.failedNode, acked, err: failure.message },
        'pipeline failed: going on with the other replicas under a new generation stamp',
      )
      // The survivors keep the bytes they all acked; the block moves to a new stamp with them.
      const r = (await a.propose({
        ...base,
        clientName,
        updatePipeline: { path: a.path, fileId, blockId: alloc.blockId, targets: survivors },
      })) as { genStamp: number }
      resume = { fromGenStamp: genStamp, resumeFrom: acked }
      genStamp = r.genStamp
      targets = survivors
    }
  }
}

/** The error of a block no pipeline could write (HDFS: "All datanodes … are bad"). */
function allFailed(blockId: number, failure: PipelineFailure): FsError {
  return /DISK_FULL/.test(failure.message)
    ? new FsError('DISK_FULL', `no datanode has room for block ${blockId} (${failure.message})`)
    : new FsError(
        'NOT_ENOUGH_DATANODES',
        `every pipeline of block ${blockId} failed; the last failure: ${failure.failedNode}: ${failure.message}`,
      )
}

/** A new block's first pipeline failed before any packet was acked by every replica. */
class NothingAcked extends Error {
  constructor(
    readonly failure: PipelineFailure,
    /** The packets read for the block, in order: they start the block placed instead. */
    readonly replay: PacketIn[],
  ) {
    super(failure.message)
  }
}

/** 12 hex digits (48 bits) from `rng`. */
function clientSuffix(rng: Rng): string {
  const hi = rng.nextInt(0x1_0000).toString(16).padStart(4, '0')
  const lo = rng.nextInt(0x1_0000_0000).toString(16).padStart(8, '0')
  return hi + lo
}
