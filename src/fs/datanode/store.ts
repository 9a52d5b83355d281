/**
 * The datanode's block store: each replica is a data file plus a checksum file, under one or more
 * data directories.
 *
 *   <dir>/rbw/blk_<id>_<genStamp>              being written (replica being written, as HDFS says)
 *   <dir>/finalized/<id % 64>/blk_<id>_<gs>     data, finalised
 *   <dir>/finalized/<id % 64>/blk_<id>_<gs>.crc 'HCRC' v1, chunk size (u32 BE), then one CRC32C (u32 BE) per chunk
 *
 * Chunks are 64 KiB, not HDFS's 512 B: a chunk is exactly one pipeline packet, so a receiver checks one
 * CRC per packet and the .crc file is 1/16384 of the data; ML reads are large and sequential, so reading
 * up to 64 KiB extra to verify a random offset costs little. A replica is finalised with fsync of the
 * data, the .crc and the directory before its last packet is acked (durable before ack). A directory is
 * chosen per new block: the one with the most free space.
 */
import { randomUUID } from 'node:crypto'
import { constants as fsc } from 'node:fs'
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  statfs,
  truncate,
  type FileHandle,
} from 'node:fs/promises'
import { join } from 'node:path'
import { crc32c } from '../crc32c.js'
import { FsError } from '../errors.js'

export const CHUNK_BYTES = 64 * 1024

/** Bytes a read of `length` bytes at any offset may touch: whole chunks (see BlockStore.read's `into`). */
export function readSpan(length: number): number {
  return (Math.ceil(length / CHUNK_BYTES) + 1) * CHUNK_BYTES
}
const CRC_MAGIC = 0x48435243 // 'HCRC'
const CRC_HEADER_BYTES = 12
const SUBDIRS = 64

export interface StoredBlockInfo {
  readonly id: number
  readonly genStamp: number
  readonly length: number
  /**
   * Which finalisation of the replica this is, counted by the store since it started: a replica
   * deleted and written again (same id, generation and length) has a new one, so that block reports
   * can tell it from the one before (./reports.ts). Local to this process; never on the wire.
   */
  readonly incarnation?: number
}

export interface BlockUsage {
  /** Bytes of the file systems holding the data dirs (summed over distinct dirs). */
  readonly capacityBytes: number
  /** Bytes of finalised replicas. */
  readonly usedBytes: number
  /** Bytes still free for new blocks (after the reserve). */
  readonly availableBytes: number
}

export interface BlockStoreInit {
  readonly dirs: readonly string[]
  /** Free bytes kept back on each dir: a dir with less counts as full (default 64 MiB). */
  readonly reservedBytes?: number
  /** Test hook: pretend the disks hold only this many bytes in all (0 = the real size). */
  readonly capacityBytesMax?: number
}

/** Writes one replica; packets must be whole 64 KiB chunks except the last. Not reentrant. */
export interface BlockWriter {
  readonly blockId: number
  readonly genStamp: number
  /** Bytes in the replica so far (a continued replica starts with the bytes it kept). */
  readonly length: number
  /**
   * Appends one packet. `crc`: its CRC32C when the sender computed it, checked here unless `verify` is
   * false (then taken as it is, and kept in the .crc file: reads and the block scanner still check the
   * bytes against it). Resolves when the bytes are in the file. Packets may be handed in before
   * earlier ones resolved: they are written in order, those that arrived while a write was in flight
   * together as one writev.
   */
  write(data: Uint8Array, crc?: number, verify?: boolean): Promise<void>
  /** fsyncs data and checksums and moves the replica to finalized/: durable when this resolves. */
  finish(): Promise<{ length: number; checksum: number }>
  /** Drops what this writer wrote (a new replica goes; a continued one gets its old form back). */
  abort(): Promise<void>
  /**
   * Stops, keeping what was written for a pipeline recovery (`reopenWriter` at this stamp) for a
   * while; dropped as by `abort` when none comes.
   */
  suspend(): Promise<void>
}

/** How long a replica a failed pipeline left behind waits for its recovery. */
const SUSPENDED_KEEP_MS = 120_000

interface WriterSpec {
  readonly blockId: number
  readonly genStamp: number
  readonly dir: string
  /** The data file written (rbw/ for a new replica, the finalised file for a continued one). */
  readonly path: string
  readonly fh: FileHandle
  readonly length: number
  /** One CRC per chunk begun (a partial last chunk's covers its bytes so far). */
  readonly crcs: readonly number[]
  /** The bytes of a partial last chunk, when the replica ends inside one. */
  readonly partial: Buffer | undefined
  readonly reserved: number
  readonly origin:
    | { readonly kind: 'new' }
    | {
        readonly kind: 'reopened'
        readonly fromGenStamp: number
        /** Written before the first byte changes; `start` undoes an interrupted continuation by it. */
        readonly marker: string
        readonly oldLength: number
        readonly mode: 'append' | 'truncate'
      }
}

interface Suspended extends Omit<WriterSpec, 'fh'> {
  readonly timer: NodeJS.Timeout
}

interface ActiveWriter {
  readonly genStamp: number
  /** Stops the writer keeping what it wrote (suspends it), or waits for its finish/abort under way. */
  stop(): Promise<void>
}

interface Located {
  readonly dir: string
  readonly genStamp: number
  readonly length: number
  readonly incarnation?: number
}

export class BlockStore {
  private readonly dirs: readonly string[]
  private readonly reservedBytes: number
  private readonly capacityBytesMax: number
  /** Finalised replicas by block id. */
  private readonly blocks = new Map<number, Located>()
  private usedBytes = 0
  /** Bytes promised to writers in progress (counted against the capacity). */
  private pendingBytes = 0
  /** The last incarnation given to a replica (see StoredBlockInfo.incarnation). */
  private incarnations = 0
  /** Replicas a failed pipeline left, kept for a recovery for a while. */
  private readonly suspended = new Map<number, Suspended>()
  /** The writer of each replica being written (one at a time): a newer stamp's writer stops it. */
  private readonly writing = new Map<number, ActiveWriter>()
  /** reopenWriter calls of a block, one after the other. */
  private readonly reopenQueue = new Map<number, Promise<unknown>>()

  constructor(init: BlockStoreInit) {
    if (init.dirs.length === 0) throw new Error('BlockStore: no data directories')
    this.dirs = init.dirs
    this.reservedBytes = init.reservedBytes ?? 64 * 1024 * 1024
    this.capacityBytesMax = init.capacityBytesMax ?? 0
  }

  /** Creates the directories, clears half-written replicas, and indexes the finalised ones. */
  async start(): Promise<void> {
    for (const dir of this.dirs) {
      await rm(join(dir, 'rbw'), { recursive: true, force: true })
      await mkdir(join(dir, 'rbw'), { recursive: true })
      await mkdir(join(dir, 'finalized'), { recursive: true })
      for (const sub of await readdir(join(dir, 'finalized'))) {
        const subDir = join(dir, 'finalized', sub)
        // A replica continued when the node stopped: an append is undone (its old checksums still
        // hold), a truncate's half-cut replica goes (another replica re-creates it).
        for (const name of await readdir(subDir)) {
          if (!name.endsWith('.reopen')) continue
          const data = join(subDir, name.slice(0, -'.reopen'.length))
          const m = JSON.parse(await readFile(join(subDir, name), 'utf8').catch(() => '{}')) as {
            length?: number
            mode?: string
          }
          const st = await stat(data).catch(() => undefined)
          if (st !== undefined && m.mode === 'append' && typeof m.length === 'number')
            await truncate(data, m.length)
          else if (st !== undefined) {
            await rm(data, { force: true })
            await rm(`${data}.crc`, { force: true })
          }
          await rm(join(subDir, name), { force: true })
        }
        const names = await readdir(subDir)
        for (const name of names) {
          const m = /^blk_(\d+)_(\d+)$/.exec(name)
          if (!m) {
            // Checksums left by a continuation that stopped before its data was renamed.
            if (name.endsWith('.crc') && !names.includes(name.slice(0, -4)))
              await rm(join(subDir, name), { force: true })
            continue
          }
          const id = Number(m[1])
          const st = await stat(join(subDir, name))
          this.put(id, { dir, genStamp: Number(m[2]), length: st.size })
        }
      }
    }
  }

  /** Every finalised replica. */
  list(): StoredBlockInfo[] {
    return [...this.blocks].map(([id, b]) => ({
      id,
      genStamp: b.genStamp,
      length: b.length,
      incarnation: b.incarnation,
    }))
  }

  has(id: number): boolean {
    return this.blocks.has(id)
  }

  info(id: number): StoredBlockInfo | undefined {
    const b = this.blocks.get(id)
    return b && { id, genStamp: b.genStamp, length: b.length, incarnation: b.incarnation }
  }

  async usage(): Promise<BlockUsage> {
    let capacity = 0
    let free = 0
    const seen = new Set<string>()
    for (const dir of this.dirs) {
      const s = await statfs(dir)
      const key = `${s.type}:${s.blocks}:${s.bsize}`
      if (seen.has(key)) continue
      seen.add(key)
      capacity += s.blocks * s.bsize
      free += Math.max(0, s.bavail * s.bsize - this.reservedBytes)
    }
    if (this.capacityBytesMax > 0) {
      capacity = this.capacityBytesMax
      free = Math.min(free, Math.max(0, this.capacityBytesMax - this.usedBytes))
    }
    return {
      capacityBytes: capacity,
      usedBytes: this.usedBytes,
      availableBytes: Math.max(0, free - this.pendingBytes),
    }
  }

  /** Starts a new replica. DISK_FULL when no directory has `expectedBytes` free. */
  async createWriter(blockId: number, genStamp: number, expectedBytes = 0): Promise<BlockWriter> {
    const dir = await this.pickDir(expectedBytes)
    const name = `blk_${blockId}_${genStamp}`
    const tmp = join(dir, 'rbw', `${name}.${randomUUID().slice(0, 8)}`)
    const fh = await open(tmp, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o644)
    return this.writer({
      blockId,
      genStamp,
      dir,
      path: tmp,
      fh,
      length: 0,
      crcs: [],
      partial: undefined,
      reserved: expectedBytes,
      origin: { kind: 'new' },
    })
  }

  /**
   * Continues a replica this node holds at `fromGenStamp` (an append, pipeline recovery, a truncate):
   * its first `keepBytes` stay, writes go on after them, and `finish` makes it the replica at
   * `toGenStamp`. The replica is either finalised (its older form stays readable up to its old length
   * until `finish`; a crash meanwhile puts it back, see `start`) or one a failed pipeline left
   * suspended. BLOCK_NOT_FOUND when there is no such replica.
   */
  async reopenWriter(
    blockId: number,
    fromGenStamp: number,
    toGenStamp: number,
    keepBytes: number,
  ): Promise<BlockWriter> {
    const before = this.reopenQueue.get(blockId) ?? Promise.resolve()
    const mine = before
      .catch(() => undefined)
      .then(() => this.reopenNow(blockId, fromGenStamp, toGenStamp, keepBytes))
    this.reopenQueue.set(blockId, mine)
    try {
      return await mine
    } finally {
      if (this.reopenQueue.get(blockId) === mine) this.reopenQueue.delete(blockId)
    }
  }

  private async reopenNow(
    blockId: number,
    fromGenStamp: number,
    toGenStamp: number,
    keepBytes: number,
  ): Promise<BlockWriter> {
    const busy = (): FsError =>
      new FsError('INVALID_ARGUMENT', `block ${blockId} is already being written on this datanode`)
    const active = this.writing.get(blockId)
    if (active !== undefined) {
      // A write under an older stamp whose stage has not noticed yet that its pipeline failed or its
      // writer went away (HDFS's recoverRbw stops the old writer the same way): it stops here, keeping
      // what it wrote for this recovery.
      if (active.genStamp >= toGenStamp) throw busy()
      await active.stop()
      if (this.writing.has(blockId)) throw busy()
    }
    const s = this.suspended.get(blockId)
    if (s !== undefined && s.genStamp === fromGenStamp) {
      if (keepBytes > s.length)
        throw new FsError('BLOCK_NOT_FOUND', `block ${blockId}: ${s.length} bytes here, ${keepBytes} wanted`)
      clearTimeout(s.timer)
      this.suspended.delete(blockId)
      const fh = await open(s.path, 'r+')
      try {
        const { crcs, partial } = await keep(fh, s.crcs, keepBytes, true)
        return this.writer({ ...s, genStamp: toGenStamp, fh, length: keepBytes, crcs, partial, reserved: 0 })
      } catch (err) {
        await fh.close().catch(() => undefined)
        await this.dropWrite(s).catch(() => undefined)
        throw err
      }
    }
    if (s !== undefined) {
      if (s.genStamp >= toGenStamp) throw busy()
      // A write under a stamp the block did not keep (an append whose writer went away): undone first,
      // so that it cannot touch the replica continued now.
      clearTimeout(s.timer)
      this.suspended.delete(blockId)
      await this.dropWrite(s)
    }
    const b = this.blocks.get(blockId)
    if (b === undefined || b.genStamp !== fromGenStamp || b.length < keepBytes)
      throw new FsError(
        'BLOCK_NOT_FOUND',
        `no replica of block ${blockId} at stamp ${fromGenStamp} with ${keepBytes} bytes on this datanode`,
      )
    const finalPath = this.pathOf(blockId, b)
    const mode = keepBytes === b.length ? 'append' : 'truncate'
    const marker = `${finalPath}.reopen`
    const mh = await open(marker, 'w', 0o644)
    try {
      await mh.writeFile(JSON.stringify({ length: b.length, mode }))
      await mh.sync()
    } finally {
      await mh.close()
    }
    let fh: FileHandle | undefined
    try {
      const stored = await readCrcs(`${finalPath}.crc`, Math.ceil(b.length / CHUNK_BYTES))
      fh = await open(finalPath, 'r+')
      // Not cut here: readers may still read the older form up to its length; `finish` cuts it.
      const { crcs, partial } = await keep(fh, stored, keepBytes, false)
      return this.writer({
        blockId,
        genStamp: toGenStamp,
        dir: b.dir,
        path: finalPath,
        fh,
        length: keepBytes,
        crcs,
        partial,
        reserved: 0,
        origin: { kind: 'reopened', fromGenStamp, marker, oldLength: b.length, mode },
      })
    } catch (err) {
      await fh?.close().catch(() => undefined)
      await rm(marker, { force: true })
      throw err
    }
  }

  /** Truncates a replica to `length` bytes at a new stamp (after a truncate inside its block). */
  async truncate(blockId: number, fromGenStamp: number, toGenStamp: number, length: number): Promise<void> {
    const w = await this.reopenWriter(blockId, fromGenStamp, toGenStamp, length)
    try {
      await w.finish()
    } catch (err) {
      await w.abort().catch(() => undefined)
      throw err
    }
  }

  /** The replica writer of `spec`: new files and reopened ones alike. */
  private writer(spec: WriterSpec): BlockWriter {
    const { blockId, genStamp, dir, fh } = spec
    const crcs = [...spec.crcs]
    let partial = spec.partial
    let length = spec.length
    let writePos = spec.length
    let closed = false
    let reserved = spec.reserved
    this.pendingBytes += reserved
    const release = (): void => {
      this.pendingBytes -= reserved
      reserved = 0
    }
    /** The finish, abort or suspend under way (a newer writer of the block waits for it). */
    let ending: Promise<unknown> | undefined
    const end = <T>(p: Promise<T>): Promise<T> => {
      ending ??= p
      return p
    }
    const active: ActiveWriter = {
      genStamp,
      stop: async () => {
        if (ending !== undefined) await ending.catch(() => undefined)
        else await suspend()
      },
    }
    this.writing.set(blockId, active)
    const done = (): void => {
      if (this.writing.get(blockId) === active) this.writing.delete(blockId)
    }
    /** The writer is dead: nothing more is written, the replica goes back, waiting packets fail. */
    const fail = async (err: unknown): Promise<never> => {
      const e =
        (err as { code?: string }).code === 'ENOSPC'
          ? new FsError('DISK_FULL', `no space left for block ${blockId} in ${dir}`)
          : err
      failure ??= e
      await cleanup()
      const waiting = queued
      queued = []
      for (const b of waiting) b.reject(failure)
      throw e
    }
    const closeFile = async (): Promise<boolean> => {
      if (closed) return false
      closed = true
      release()
      if (flushing) await flushing
      await fh.close().catch(() => undefined)
      return true
    }
    const cleanup = (): Promise<void> =>
      end(
        (async () => {
          if (!(await closeFile())) return
          await this.dropWrite(spec)
          done()
        })(),
      )
    // Packets waiting for the write in flight; written together when it ends (one writev, one trip
    // through the thread pool, instead of one per 64 KiB packet: on a loaded host each trip cost more
    // than the copy itself).
    let queued: { data: Uint8Array; resolve: () => void; reject: (e: unknown) => void }[] = []
    let flushing: Promise<void> | undefined
    let failure: unknown
    const flush = async (): Promise<void> => {
      while (queued.length > 0 && failure === undefined) {
        const batch = queued
        queued = []
        const at = writePos
        writePos += batch.reduce((n, b) => n + b.data.length, 0)
        try {
          await writevAll(
            fh,
            batch.map((b) => b.data),
            at,
          )
          for (const b of batch) b.resolve()
        } catch (err) {
          // cleanup (inside fail) must not wait for this flush, which is itself.
          flushing = undefined
          const e = await fail(err).catch((x: unknown) => x)
          for (const b of batch) b.reject(e)
          return
        }
      }
      flushing = undefined
    }
    const finishNow = async (): Promise<{ length: number; checksum: number }> => {
      if (closed) throw new Error('BlockWriter: finish after finish/abort')
      if (flushing) await flushing
      if (failure !== undefined) throw failure
      const crcBytes = encodeCrcs(crcs)
      const sub = join(dir, 'finalized', String(blockId % SUBDIRS))
      const final = join(sub, `blk_${blockId}_${genStamp}`)
      const origin = spec.origin
      try {
        await fh.truncate(length)
        await fh.sync()
        await fh.close()
        closed = true
        await mkdir(sub, { recursive: true })
        await writeFileDurably(`${final}.crc`, crcBytes)
        if (spec.path !== final) await rename(spec.path, final)
        await fsyncDir(sub)
        if (origin.kind === 'reopened') {
          // The older form of the replica is gone: its checksums, then the marker that could undo it.
          if (origin.fromGenStamp !== genStamp)
            await rm(`${join(sub, `blk_${blockId}_${origin.fromGenStamp}`)}.crc`, { force: true })
          await rm(origin.marker, { force: true })
          await fsyncDir(sub)
        }
      } catch (err) {
        closed = false
        return fail(err)
      }
      release()
      done()
      const old = this.blocks.get(blockId)
      if (old !== undefined && old.genStamp !== genStamp && origin.kind !== 'reopened')
        await this.removeFiles(blockId, old)
      this.put(blockId, { dir, genStamp, length })
      return { length, checksum: crc32c(crcBytes.subarray(CRC_HEADER_BYTES)) }
    }
    const suspend = (): Promise<void> => end(suspendNow())
    const suspendNow = async (): Promise<void> => {
      if (!(await closeFile())) return
      // Kept for a pipeline recovery (reopenWriter at this stamp), dropped when none comes.
      const entry: Suspended = {
        ...spec,
        genStamp,
        length,
        crcs,
        partial,
        timer: setTimeout(() => {
          if (this.suspended.get(blockId) !== entry) return
          this.suspended.delete(blockId)
          void this.dropWrite(spec).finally(done)
        }, SUSPENDED_KEEP_MS).unref(),
      }
      const prev = this.suspended.get(blockId)
      if (prev !== undefined) {
        clearTimeout(prev.timer)
        await this.dropWrite(prev).catch(() => undefined)
      }
      this.suspended.set(blockId, entry)
      done()
    }
    return {
      blockId,
      genStamp,
      get length() {
        return length
      },
      write: (data: Uint8Array, crc?: number, verify = true): Promise<void> => {
        if (closed || failure !== undefined)
          return Promise.reject(failure ?? new Error('BlockWriter: write after finish/abort'))
        let chunkCrc: number
        if (partial !== undefined) {
          // A continued replica whose last chunk is partial: this packet completes (part of) it, and
          // the chunk's CRC covers the bytes it had and the new ones.
          if (data.length > CHUNK_BYTES - partial.length)
            return Promise.reject(
              new Error(`BlockWriter: packet of ${data.length} bytes after a partial chunk`),
            )
          if (crc !== undefined && verify && crc32c(data) !== crc)
            return Promise.reject(
              new FsError('CORRUPT_REPLICA', `packet of block ${blockId} at ${length} failed its checksum`),
            )
          const joined = Buffer.concat([partial, data])
          chunkCrc = crc32c(joined)
          crcs[crcs.length - 1] = chunkCrc
          partial = joined.length < CHUNK_BYTES ? joined : undefined
        } else {
          if (length % CHUNK_BYTES !== 0)
            return Promise.reject(new Error('BlockWriter: packet after a partial chunk'))
          if (data.length > CHUNK_BYTES)
            return Promise.reject(new Error(`BlockWriter: packet of ${data.length} bytes`))
          chunkCrc = crc === undefined || verify ? crc32c(data) : crc
          if (crc !== undefined && crc !== chunkCrc)
            return Promise.reject(
              new FsError('CORRUPT_REPLICA', `packet of block ${blockId} at ${length} failed its checksum`),
            )
          crcs.push(chunkCrc)
        }
        if (this.capacityBytesMax > 0 && this.usedBytes + length + data.length > this.capacityBytesMax)
          return fail(Object.assign(new Error('capacity reached'), { code: 'ENOSPC' }))
        length += data.length
        return new Promise<void>((resolve, reject) => {
          queued.push({ data, resolve, reject })
          flushing ??= flush()
        })
      },
      finish: () => end(finishNow()),
      abort: cleanup,
      suspend,
    }
  }

  /**
   * Undoes a write that will not finish: a new replica's file goes; a finalised replica continued by
   * an append gets its old length back (its checksums were never touched); one cut by a truncate goes
   * (the block manager re-creates it from another replica).
   */
  private async dropWrite(spec: Pick<WriterSpec, 'blockId' | 'path' | 'origin'>): Promise<void> {
    const origin = spec.origin
    if (origin.kind === 'new') {
      await rm(spec.path, { force: true })
      return
    }
    if (origin.mode === 'append') {
      const fh = await open(spec.path, 'r+').catch(() => undefined)
      if (fh !== undefined) {
        try {
          await fh.truncate(origin.oldLength)
          await fh.sync()
        } finally {
          await fh.close()
        }
      }
    } else await this.delete(spec.blockId)
    await rm(origin.marker, { force: true })
  }

  /**
   * Bytes [offset, offset+length) of a replica, every chunk they touch verified against its CRC.
   * CORRUPT_REPLICA on a mismatch, BLOCK_NOT_FOUND when the replica is not here. `into`, when given
   * and large enough for the whole chunks the range touches (`readSpan`), receives them and the result
   * is a view of it: a reader streaming a large file reuses a few buffers instead of allocating one per
   * piece (fresh multi-MiB buffers kept the GC marking most of the time of a 1 GiB read).
   */
  async read(blockId: number, offset: number, length: number, into?: Buffer): Promise<Uint8Array> {
    return (await this.readChecked(blockId, offset, length, into)).data
  }

  /**
   * Chunk `index` of a replica (the last may be partial) with its CRC32C, checked against the
   * replica's `.crc` as {@link read} does: a replica copy sends the CRC it verified instead of
   * computing it again (a checksum once per byte per node).
   */
  async readChunk(blockId: number, index: number): Promise<{ data: Uint8Array; crc: number }> {
    const r = await this.readChecked(blockId, index * CHUNK_BYTES, CHUNK_BYTES)
    return { data: r.data, crc: r.crcs[0] ?? 0 }
  }

  private async readChecked(
    blockId: number,
    offset: number,
    length: number,
    into?: Buffer,
  ): Promise<{ data: Uint8Array; crcs: number[] }> {
    const b = this.blocks.get(blockId)
    if (b === undefined) throw new FsError('BLOCK_NOT_FOUND', `block ${blockId} is not on this datanode`)
    const end = Math.min(b.length, offset + length)
    if (offset >= end) return { data: new Uint8Array(0), crcs: [] }
    const first = Math.floor(offset / CHUNK_BYTES)
    const last = Math.floor((end - 1) / CHUNK_BYTES)
    const path = this.pathOf(blockId, b)
    const span = (last - first + 1) * CHUNK_BYTES
    const buf = into !== undefined && into.length >= span ? into.subarray(0, span) : Buffer.allocUnsafe(span)
    const crcBuf = Buffer.allocUnsafe((last - first + 1) * 4)
    const fh = await open(path, 'r')
    const ch = await open(`${path}.crc`, 'r')
    let got: number
    try {
      got = (await fh.read(buf, 0, buf.length, first * CHUNK_BYTES)).bytesRead
      const c = await ch.read(crcBuf, 0, crcBuf.length, CRC_HEADER_BYTES + first * 4)
      if (c.bytesRead !== crcBuf.length) throw new FsError('CORRUPT_REPLICA', `block ${blockId}: short .crc`)
    } finally {
      await fh.close()
      await ch.close()
    }
    // A replica being continued may hold more bytes than its recorded length: they are not its yet.
    got = Math.min(got, b.length - first * CHUNK_BYTES)
    const crcs: number[] = []
    for (let i = 0; i <= last - first; i++) {
      const s = i * CHUNK_BYTES
      const e = Math.min(got, s + CHUNK_BYTES)
      const crc = crcBuf.readUInt32BE(i * 4)
      if (crc32c(buf.subarray(s, e)) !== crc) {
        throw new FsError('CORRUPT_REPLICA', `block ${blockId} chunk ${first + i} failed its checksum`)
      }
      crcs.push(crc)
    }
    const from = offset - first * CHUNK_BYTES
    return { data: new Uint8Array(buf.buffer, buf.byteOffset + from, end - offset), crcs }
  }

  /** Verifies a whole replica (the block scanner's check). */
  async verify(blockId: number): Promise<boolean> {
    const b = this.blocks.get(blockId)
    if (b === undefined) return false
    try {
      for (let off = 0; off < b.length; off += 16 * CHUNK_BYTES)
        await this.read(blockId, off, 16 * CHUNK_BYTES)
      return true
    } catch {
      return false
    }
  }

  /** Deletes a replica (no-op when absent). */
  async delete(blockId: number): Promise<void> {
    const b = this.blocks.get(blockId)
    if (b === undefined) return
    this.blocks.delete(blockId)
    this.usedBytes -= b.length
    await this.removeFiles(blockId, b)
  }

  /** Where a replica's data file lives (tests flip bytes in it). */
  pathOf(blockId: number, b = this.blocks.get(blockId)): string {
    if (b === undefined) throw new FsError('BLOCK_NOT_FOUND', `block ${blockId} is not on this datanode`)
    return join(b.dir, 'finalized', String(blockId % SUBDIRS), `blk_${blockId}_${b.genStamp}`)
  }

  private put(id: number, b: Located): void {
    const old = this.blocks.get(id)
    if (old) this.usedBytes -= old.length
    this.blocks.set(id, { ...b, incarnation: ++this.incarnations })
    this.usedBytes += b.length
  }

  private async removeFiles(blockId: number, b: Located): Promise<void> {
    const path = join(b.dir, 'finalized', String(blockId % SUBDIRS), `blk_${blockId}_${b.genStamp}`)
    await rm(path, { force: true })
    await rm(`${path}.crc`, { force: true })
  }

  private async pickDir(expectedBytes: number): Promise<string> {
    let best: string | undefined
    let bestFree = -1
    for (const dir of this.dirs) {
      const s = await statfs(dir)
      const free = s.bavail * s.bsize - this.reservedBytes
      if (free > bestFree) {
        best = dir
        bestFree = free
      }
    }
    const avail = (await this.usage()).availableBytes
    if (best === undefined || bestFree < expectedBytes || avail < expectedBytes) {
      throw new FsError('DISK_FULL', `no data directory has ${expectedBytes} bytes free for a new block`)
    }
    return best
  }
}

function encodeCrcs(crcs: readonly number[]): Buffer {
  const b = Buffer.allocUnsafe(CRC_HEADER_BYTES + crcs.length * 4)
  b.writeUInt32BE(CRC_MAGIC, 0)
  b.writeUInt32BE(1, 4)
  b.writeUInt32BE(CHUNK_BYTES, 8)
  crcs.forEach((c, i) => b.writeUInt32BE(c, CRC_HEADER_BYTES + i * 4))
  return b
}

/** Writes `parts` in order at `position` (writev, continuing after short writes). */
async function writevAll(fh: FileHandle, parts: Uint8Array[], position: number): Promise<void> {
  let rest = parts
  let at = position
  while (rest.length > 0) {
    let { bytesWritten } = await fh.writev(rest, at)
    at += bytesWritten
    let i = 0
    while (i < rest.length && bytesWritten >= rest[i]!.length) bytesWritten -= rest[i++]!.length
    rest = rest.slice(i)
    if (bytesWritten > 0) rest = [rest[0]!.subarray(bytesWritten), ...rest.slice(1)]
  }
}

/** Writes `bytes` as `path`, durably (a temporary name, fsync, rename). */
async function writeFileDurably(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`
  const fh = await open(tmp, 'w', 0o644)
  try {
    await writevAll(fh, [bytes], 0)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
}

/** The first `count` CRCs of a .crc file. */
async function readCrcs(path: string, count: number): Promise<number[]> {
  const buf = Buffer.alloc(count * 4)
  const fh = await open(path, 'r')
  try {
    const { bytesRead } = await fh.read(buf, 0, buf.length, CRC_HEADER_BYTES)
    if (bytesRead !== buf.length) throw new FsError('CORRUPT_REPLICA', `${path}: short checksum file`)
  } finally {
    await fh.close()
  }
  return Array.from({ length: count }, (_, i) => buf.readUInt32BE(i * 4))
}

/**
 * Keeps the first `bytes` of an open replica file (cutting the file when `cut`) and the CRCs of the chunks left; when it ends inside a chunk,
 * that chunk's bytes are read back (a continuation completes it) and its CRC recomputed.
 */
async function keep(
  fh: FileHandle,
  crcs: readonly number[],
  bytes: number,
  cut: boolean,
): Promise<{ crcs: number[]; partial: Buffer | undefined }> {
  if (cut) await fh.truncate(bytes)
  const full = Math.floor(bytes / CHUNK_BYTES)
  const kept = crcs.slice(0, full)
  const tail = bytes - full * CHUNK_BYTES
  if (tail === 0) return { crcs: kept, partial: undefined }
  const partial = Buffer.alloc(tail)
  const { bytesRead } = await fh.read(partial, 0, tail, full * CHUNK_BYTES)
  if (bytesRead !== tail) throw new FsError('CORRUPT_REPLICA', 'short replica file')
  kept.push(crc32c(partial))
  return { crcs: kept, partial }
}

async function fsyncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r')
  try {
    await d.sync()
  } finally {
    await d.close()
  }
}

export function createBlockStore(init: BlockStoreInit): BlockStore {
  return new BlockStore(init)
}
