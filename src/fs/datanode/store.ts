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
import { mkdir, open, readdir, rename, rm, stat, statfs, type FileHandle } from 'node:fs/promises'
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
  /** Bytes written so far. */
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
  /** Drops the partial replica. */
  abort(): Promise<void>
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
        for (const name of await readdir(join(dir, 'finalized', sub))) {
          const m = /^blk_(\d+)_(\d+)$/.exec(name)
          if (!m) continue
          const id = Number(m[1])
          const st = await stat(join(dir, 'finalized', sub, name))
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
    const crcs: number[] = []
    let length = 0
    let closed = false
    let reserved = expectedBytes
    this.pendingBytes += reserved
    const release = (): void => {
      this.pendingBytes -= reserved
      reserved = 0
    }
    /** The writer is dead: nothing more is written, the partial file goes, waiting packets fail. */
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
    const cleanup = async (): Promise<void> => {
      if (closed) return
      closed = true
      release()
      if (flushing) await flushing
      await fh.close().catch(() => undefined)
      await rm(tmp, { force: true })
    }
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
        try {
          await writevAll(
            fh,
            batch.map((b) => b.data),
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
    return {
      blockId,
      genStamp,
      get length() {
        return length
      },
      write: (data: Uint8Array, crc?: number, verify = true): Promise<void> => {
        if (closed || failure !== undefined)
          return Promise.reject(failure ?? new Error('BlockWriter: write after finish/abort'))
        if (length % CHUNK_BYTES !== 0)
          return Promise.reject(new Error('BlockWriter: packet after a partial chunk'))
        if (data.length > CHUNK_BYTES)
          return Promise.reject(new Error(`BlockWriter: packet of ${data.length} bytes`))
        const c = crc === undefined || verify ? crc32c(data) : crc
        if (crc !== undefined && crc !== c)
          return Promise.reject(
            new FsError('CORRUPT_REPLICA', `packet of block ${blockId} at ${length} failed its checksum`),
          )
        if (this.capacityBytesMax > 0 && this.usedBytes + length + data.length > this.capacityBytesMax)
          return fail(Object.assign(new Error('capacity reached'), { code: 'ENOSPC' }))
        crcs.push(c)
        length += data.length
        return new Promise<void>((resolve, reject) => {
          queued.push({ data, resolve, reject })
          flushing ??= flush()
        })
      },
      finish: async (): Promise<{ length: number; checksum: number }> => {
        if (closed) throw new Error('BlockWriter: finish after finish/abort')
        if (flushing) await flushing
        if (failure !== undefined) throw failure
        const crcBytes = encodeCrcs(crcs)
        const sub = join(dir, 'finalized', String(blockId % SUBDIRS))
        const final = join(sub, name)
        try {
          await fh.sync()
          await fh.close()
          closed = true
          await mkdir(sub, { recursive: true })
          const ch = await open(`${final}.crc`, 'w', 0o644)
          try {
            await writevAll(ch, [crcBytes])
            await ch.sync()
          } finally {
            await ch.close()
          }
          await rename(tmp, final)
          await fsyncDir(sub)
        } catch (err) {
          closed = false
          return fail(err)
        }
        release()
        const old = this.blocks.get(blockId)
        if (old !== undefined && old.genStamp !== genStamp) await this.removeFiles(blockId, old)
        this.put(blockId, { dir, genStamp, length })
        return { length, checksum: crc32c(crcBytes.subarray(CRC_HEADER_BYTES)) }
      },
      abort: cleanup,
    }
  }

  /**
   * Bytes [offset, offset+length) of a replica, every chunk they touch verified against its CRC.
   * CORRUPT_REPLICA on a mismatch, BLOCK_NOT_FOUND when the replica is not here. `into`, when given
   * and large enough for the whole chunks the range touches (`readSpan`), receives them and the result
   * is a view of it: a reader streaming a large file reuses a few buffers instead of allocating one per
   * piece (fresh multi-MiB buffers kept the GC marking most of the time of a 1 GiB read).
   */
  async read(blockId: number, offset: number, length: number, into?: Buffer): Promise<Uint8Array> {
    const b = this.blocks.get(blockId)
    if (b === undefined) throw new FsError('BLOCK_NOT_FOUND', `block ${blockId} is not on this datanode`)
    const end = Math.min(b.length, offset + length)
    if (offset >= end) return new Uint8Array(0)
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
    for (let i = 0; i <= last - first; i++) {
      const s = i * CHUNK_BYTES
      const e = Math.min(got, s + CHUNK_BYTES)
      if (crc32c(buf.subarray(s, e)) !== crcBuf.readUInt32BE(i * 4)) {
        throw new FsError('CORRUPT_REPLICA', `block ${blockId} chunk ${first + i} failed its checksum`)
      }
    }
    const from = offset - first * CHUNK_BYTES
    return new Uint8Array(buf.buffer, buf.byteOffset + from, end - offset)
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

/** Writes `parts` in order at the file's position (writev, continuing after short writes). */
async function writevAll(fh: FileHandle, parts: Uint8Array[]): Promise<void> {
  let rest = parts
  while (rest.length > 0) {
    let { bytesWritten } = await fh.writev(rest)
    let i = 0
    while (i < rest.length && bytesWritten >= rest[i]!.length) bytesWritten -= rest[i++]!.length
    rest = rest.slice(i)
    if (bytesWritten > 0) rest = [rest[0]!.subarray(bytesWritten), ...rest.slice(1)]
  }
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
