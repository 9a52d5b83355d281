import { ClassicLevel } from 'classic-level'
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { hopsd } from '../../proto/raft.js'
import {
  decodeHardState,
  decodeSnapshotMetadata,
  encodeHardState,
  encodeSnapshotMetadata,
  normEntry,
} from '../codec.js'
import {
  EMPTY_BYTES,
  entrySizeBytes,
  type Entry,
  type HardState,
  type Snapshot,
  type SnapshotMetadata,
} from '../core/types.js'
import { appendTermRuns, runsAfter, type TermRun } from '../memory-log.js'
import type {
  PersistBatch,
  PersistedState,
  RaftPersistence,
  SnapshotReader,
  SnapshotReceiver,
} from './types.js'

/**
 * Raft storage in LevelDB (classic-level). Key layout (one keyspace per node directory):
 *   'h'             HardState
 *   'm'             SnapshotMetadata of the latest snapshot (index, term, conf state)
 *   'f'             the name of the file in `<dir>.snap/` holding the latest snapshot's data
 *   'd'             (older layout) the latest snapshot's data inside LevelDB; still read
 *   'c' + u64 BE    a chunk: the entries of one write (EntryBatch), keyed by its first index
 *                   (big-endian so that key order is index order)
 *   'r'             the log's term runs and last index (JSON), written with every batch that changes
 *                   the log: a start with `tailBytes` reads the chunk keys and these, and decodes only
 *                   the newest chunks (a log of hundreds of MB is not decoded to keep 16 MiB of it)
 *
 * Every write is ONE `batch(ops, {sync: true})`: atomic and fsync'ed. Entries go in as one chunk per
 * write rather than one key per entry: LevelDB's per-key cost dominated the hot path (measured with
 * bench/consensus: one put per Ready instead of hundreds). A truncation that cuts a chunk rewrites
 * its prefix in the same batch; chunks wholly at or below the snapshot index are deleted, and load()
 * skips entries at or below the snapshot index of a chunk that straddles it.
 *
 * Snapshot data lives in files of its own, as etcd keeps its .snap files beside the WAL: a snapshot of
 * a large namespace is hundreds of MB, and as one LevelDB value it went through the WAL, the memtable
 * and a compaction while every small Raft write queued behind it (a 5.7 s stall in bench/fs-small).
 * A file is written, fsync'ed and renamed into place before the batch that names it commits; files no
 * batch names any more are deleted. `stageSnapshot` writes a local snapshot's file ahead of time, off
 * the driver's loop, so the `compact` write that follows is a small batch.
 *
 * The driver keeps neither the snapshot's data nor the whole log in memory: it reads the snapshot file
 * when it sends one (`openSnapshot`) and entries older than its in-memory tail with `readEntries`
 * (LevelDB's getSync, a chunk at a time). getSync sees a batch as soon as LevelDB applied it, before
 * the write's promise resolves and the driver drops those entries from its view, so the chunks a
 * compaction drops are deleted by the NEXT write (load() skips entries at or below the snapshot index).
 */
export interface LevelStorage extends RaftPersistence {
  readonly dir: string
}

const K_HARD = Uint8Array.of(0x68) // 'h'
const K_META = Uint8Array.of(0x6d) // 'm'
const K_DATA = Uint8Array.of(0x64) // 'd'
const K_FILE = Uint8Array.of(0x66) // 'f'
const K_RUNS = Uint8Array.of(0x72) // 'r': the terms of the log's entries, and its last index
const C_PREFIX = 0x63 // 'c'
/** A snapshot file is written this many bytes per call, and flushed every SNAPSHOT_SYNC_BYTES. */
const SNAPSHOT_WRITE_BYTES = 4 << 20
const SNAPSHOT_SYNC_BYTES = 16 << 20
/** Pace of a snapshot file written in the background (stageSnapshot): leaves the disk to the log. */
const SNAPSHOT_STAGE_BYTES_PER_S = 64 << 20

function chunkKey(first: number): Uint8Array {
  const k = new Uint8Array(9)
  k[0] = C_PREFIX
  const v = new DataView(k.buffer)
  v.setUint32(1, Math.floor(first / 0x1_0000_0000))
  v.setUint32(5, first >>> 0)
  return k
}

interface Chunk {
  first: number
  last: number
}

type Op = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array }

const pb = hopsd.raft

function encodeChunk(entries: readonly Entry[]): Uint8Array {
  return pb.EntryBatch.encode({ entries: entries as unknown as hopsd.raft.Entry.$Properties[] }).finish()
}

function firstOfChunkKey(key: Uint8Array): number {
  const v = new DataView(key.buffer, key.byteOffset, key.byteLength)
  return v.getUint32(1) * 0x1_0000_0000 + v.getUint32(5)
}

function encodeRuns(runs: readonly TermRun[], last: number): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ last, runs: runs.map((r) => [r.first, r.term]) }))
}

function decodeRuns(bytes: Uint8Array): { runs: TermRun[]; last: number } {
  const o = JSON.parse(new TextDecoder().decode(bytes)) as { last: number; runs: [number, number][] }
  return { last: o.last, runs: o.runs.map(([first, term]) => ({ first, term })) }
}

function decodeChunk(bytes: Uint8Array): Entry[] {
  return pb.EntryBatch.decode(bytes).entries.map(normEntry)
}

/** Opens (creating if needed) the Raft storage of one node in a LevelDB directory. */
export async function openLevelStorage(dir: string): Promise<LevelStorage> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  /** Chunks on disk, in index order (what a truncation or compaction must delete or rewrite). */
  let chunks: Chunk[] = []
  let snapIndex = 0
  const snapDir = `${dir}.snap`
  /** The snapshot file the last committed batch names. */
  let currentFile: string | undefined
  /** Files written by stageSnapshot and not yet named by a batch → the snapshot index they hold. */
  const staged = new Map<string, number>()
  /** Index and term of the snapshot the last committed batch names (0, 0: none). */
  let current = { index: 0, term: 0 }
  /** Chunks a compaction dropped, in index order: still readable, deleted by the next write. */
  let retired: Chunk[] = []
  /**
   * The terms of the entries after the snapshot (`first` of each run of one term) and the last index,
   * written with every batch that changes the log (K_RUNS): a start reads them instead of every chunk.
   */
  let runs: TermRun[] = []
  let lastIndex = 0
  /** The chunk readEntries decoded last (a lagging follower's reads walk one chunk in several calls). */
  let decoded: { first: number; entries: Entry[] } | undefined

  const fileNameOf = (snap: Snapshot): string =>
    `${String(snap.metadata.index).padStart(16, '0')}-${snap.metadata.term}.snap`

  /** Moves a written file into place durably (fsync of the folder after the rename). */
  const publish = async (tmp: string, name: string): Promise<void> => {
    await rename(tmp, join(snapDir, name))
    const d = await open(snapDir, 'r')
    try {
      await d.sync()
    } finally {
      await d.close()
    }
  }

  /**
   * Writes a snapshot's data (in pieces: it may be encoded as it is written) to its file durably (tmp,
   * fsync, rename, fsync dir); returns the name and the size.
   */
  const writeSnapshotFile = async (
    metadata: SnapshotMetadata,
    pieces: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    bytesPerS = Infinity,
  ): Promise<{ name: string; size: number }> => {
    const name = fileNameOf({ metadata, data: EMPTY_BYTES })
    await mkdir(snapDir, { recursive: true })
    const tmp = join(snapDir, `${name}.tmp`)
    const fh = await open(tmp, 'w')
    let off = 0
    try {
      // In pieces, flushed as it goes: one fsync of hundreds of MB of dirty pages at the end held the
      // disk for a second while the Raft log's small fsyncs queued behind it.
      let unsynced = 0
      const t0 = performance.now()
      for await (const piece of pieces) {
        for (let at = 0; at < piece.length;) {
          // Paced (background snapshots): every node snapshots at about the same index, and three
          // unpaced writes of a large state at once saturated the disk and stalled the Raft log.
          const ahead = (off / bytesPerS) * 1000 - (performance.now() - t0)
          if (ahead > 0) await new Promise<void>((resolve) => setTimeout(resolve, ahead))
          const n = (await fh.write(piece, at, Math.min(SNAPSHOT_WRITE_BYTES, piece.length - at)))
            .bytesWritten
          at += n
          off += n
          unsynced += n
          if (unsynced >= SNAPSHOT_SYNC_BYTES) {
            await fh.datasync()
            unsynced = 0
          }
        }
      }
      await fh.sync()
    } finally {
      await fh.close()
    }
    await publish(tmp, name)
    return { name, size: off }
  }

  /** Reads a snapshot file through an open handle (it keeps reading if the file is replaced). */
  const fileReader = async (path: string): Promise<SnapshotReader> => {
    const fh = await open(path, 'r')
    const size = (await fh.stat()).size
    return {
      size,
      async read(offset, length) {
        const buf = new Uint8Array(Math.max(0, Math.min(length, size - offset)))
        let got = 0
        while (got < buf.length) {
          const { bytesRead } = await fh.read(buf, got, buf.length - got, offset + got)
          if (bytesRead === 0) throw new Error(`raft storage ${dir}: snapshot file ended at ${offset + got}`)
          got += bytesRead
        }
        return buf
      },
      close: () => fh.close(),
    }
  }

  /**
   * Deletes snapshot files other than `keep`, half-written ones, and staged ones a newer snapshot
   * overtook: best effort (a leftover is deleted at the next load).
   */
  const removeOtherSnapshotFiles = async (keep: string | undefined, atLoad = false): Promise<void> => {
    for (const [name, index] of staged) if (index <= snapIndex) staged.delete(name)
    const names = await readdir(snapDir).catch(() => [] as string[])
    for (const n of names) {
      // A .tmp may be a stageSnapshot in progress; only a fresh start knows it is a leftover.
      if (n === keep || staged.has(n) || (n.endsWith('.tmp') && !atLoad)) continue
      await rm(join(snapDir, n), { force: true }).catch(() => undefined)
    }
  }

  const get = async (key: Uint8Array): Promise<Uint8Array | undefined> => (await db.get(key)) ?? undefined

  /** The chunk (live, or retired by the last compaction) holding entry i. */
  const chunkOf = (i: number): Chunk | undefined => {
    for (const list of [chunks, retired]) {
      let lo = 0
      let hi = list.length - 1
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1
        if (list[mid]!.first <= i) lo = mid
        else hi = mid - 1
      }
      const c = list[lo]
      if (c && c.first <= i && i <= c.last) return c
    }
    return undefined
  }

  return {
    dir,
    async load(opts?: { withoutSnapshotData?: boolean; tailBytes?: number }): Promise<PersistedState> {
      const hsBytes = await get(K_HARD)
      const hardState: HardState = hsBytes ? decodeHardState(hsBytes) : { term: 0, vote: '', commit: 0 }
      const metaBytes = await get(K_META)
      let snapshot: Snapshot | null = null
      const fileBytes = await get(K_FILE)
      currentFile = fileBytes === undefined ? undefined : new TextDecoder().decode(fileBytes)
      let snapshotStored = false
      if (metaBytes) {
        let data = EMPTY_BYTES
        if (currentFile !== undefined && opts?.withoutSnapshotData === true) {
          // Left on disk: openSnapshot reads it (a snapshot of a large state is not read to start).
          snapshotStored = true
        } else if (currentFile !== undefined) {
          // Not copied: the Buffer readFile returns (its own allocation at this size) as a plain view.
          const buf = await readFile(join(snapDir, currentFile))
          data = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
        } else {
          data = (await get(K_DATA)) ?? EMPTY_BYTES
        }
        snapshot = { metadata: decodeSnapshotMetadata(metaBytes), data }
      }
      await removeOtherSnapshotFiles(currentFile, true)
      snapIndex = snapshot?.metadata.index ?? 0
      current = { index: snapIndex, term: snapshot?.metadata.term ?? 0 }
      chunks = []
      retired = []
      decoded = undefined
      const runsBytes = await get(K_RUNS)
      if (opts?.tailBytes !== undefined && runsBytes !== undefined) {
        // The chunks by their keys only; the terms from K_RUNS; only the newest chunks decoded.
        const stored = decodeRuns(runsBytes)
        const firsts: number[] = []
        for await (const key of db.keys({ gte: chunkKey(0), lt: chunkKey(Number.MAX_SAFE_INTEGER) }))
          firsts.push(firstOfChunkKey(key))
        for (let i = 0; i < firsts.length; i++) {
          const chunk = { first: firsts[i]!, last: i + 1 < firsts.length ? firsts[i + 1]! - 1 : stored.last }
          if (chunk.last <= snapIndex) retired.push(chunk)
          else chunks.push(chunk)
        }
        lastIndex = Math.max(stored.last, snapIndex)
        if (lastIndex > snapIndex && (chunks.length === 0 || chunks[0]!.first > snapIndex + 1))
          throw new Error(`raft storage ${dir}: gap in log after ${snapIndex}`)
        runs = stored.runs
        const tail: Entry[] = []
        let bytes = 0
        for (let i = chunks.length - 1; i >= 0 && (tail.length === 0 || bytes < opts.tailBytes); i--) {
          const es = decodeChunk((await get(chunkKey(chunks[i]!.first)))!).filter((e) => e.index > snapIndex)
          for (const e of es) bytes += entrySizeBytes(e)
          tail.unshift(...es)
        }
        for (let k = 1; k < tail.length; k++)
          if (tail[k]!.index !== tail[k - 1]!.index + 1)
            throw new Error(`raft storage ${dir}: gap in log at ${tail[k]!.index}`)
        if (tail.length > 0 && tail[tail.length - 1]!.index !== lastIndex)
          throw new Error(
            `raft storage ${dir}: the log ends at ${tail[tail.length - 1]!.index}, not ${lastIndex}`,
          )
        return {
          hardState,
          snapshot,
          entries: tail,
          logStored: { runs: runs.map((r) => ({ ...r })), last: lastIndex },
          ...(snapshotStored ? { snapshotStored } : {}),
        }
      }
      const entries: Entry[] = []
      for await (const value of db.values({ gte: chunkKey(0), lt: chunkKey(Number.MAX_SAFE_INTEGER) })) {
        const es = decodeChunk(value)
        if (es.length === 0) continue
        const chunk = { first: es[0]!.index, last: es[es.length - 1]!.index }
        // A compaction's chunks are deleted by the write after it: a crash between leaves them.
        if (chunk.last <= snapIndex) {
          retired.push(chunk)
          continue
        }
        chunks.push(chunk)
        for (const e of es) {
          if (e.index <= snapIndex) continue
          const expected = entries.length > 0 ? entries[entries.length - 1]!.index + 1 : snapIndex + 1
          if (e.index !== expected)
            throw new Error(`raft storage ${dir}: gap in log at ${e.index}, expected ${expected}`)
          entries.push(e)
        }
      }
      runs = []
      appendTermRuns(runs, entries)
      lastIndex = entries.length > 0 ? entries[entries.length - 1]!.index : snapIndex
      return { hardState, snapshot, entries, ...(snapshotStored ? { snapshotStored } : {}) }
    },

    async write(b: PersistBatch): Promise<void> {
      const ops: Op[] = []
      // The chunks the previous compaction dropped go first (a put of the same key later wins).
      for (const c of retired) ops.push({ type: 'del', key: chunkKey(c.first) })
      let next = chunks
      let newSnapIndex = snapIndex
      let newCurrent = current
      let newRetired: Chunk[] = []
      let rewrote = retired.length > 0
      let newRuns = runs
      let newLast = lastIndex
      let file = currentFile
      const snapshotFile = async (snap: Snapshot): Promise<void> => {
        const key = fileNameOf(snap)
        if (!staged.has(key) && snap.data.length === 0 && snap.metadata.index > 1)
          throw new Error(`raft storage ${dir}: snapshot ${key} has no data and none was staged`)
        file = staged.has(key) ? key : (await writeSnapshotFile(snap.metadata, [snap.data])).name
        staged.delete(key)
        ops.push({ type: 'put', key: K_META, value: encodeSnapshotMetadata(snap.metadata) })
        ops.push({ type: 'put', key: K_FILE, value: new TextEncoder().encode(file) })
        ops.push({ type: 'del', key: K_DATA })
      }
      if (b.snapshot) {
        await snapshotFile(b.snapshot)
        // The snapshot replaces the whole log, entries after its index included. (The driver reads no
        // entry while it installs a snapshot: its core's log starts after the snapshot.)
        for (const c of next) ops.push({ type: 'del', key: chunkKey(c.first) })
        next = []
        newRuns = []
        newLast = b.snapshot.metadata.index
        newSnapIndex = b.snapshot.metadata.index
        newCurrent = { index: newSnapIndex, term: b.snapshot.metadata.term }
        rewrote = true
      }
      if (b.compact && b.compact.metadata.index > newSnapIndex) {
        const idx = b.compact.metadata.index
        await snapshotFile(b.compact)
        newRetired = next.filter((c) => c.last <= idx)
        next = next.filter((c) => c.last > idx)
        newRuns = runsAfter(newRuns, idx)
        newSnapIndex = idx
        newCurrent = { index: idx, term: b.compact.metadata.term }
      }
      if (b.entries.length > 0) {
        const first = b.entries[0]!.index
        // Chunks are in index order and almost every write only appends: look at the tail only
        // (scanning every chunk on each write made the leader's cost grow with the log).
        let keep = next.length
        while (keep > 0 && next[keep - 1]!.last >= first) keep--
        const kept: Chunk[] = next.slice(0, keep)
        if (keep < next.length) rewrote = true
        for (const c of next.slice(keep)) {
          if (c.first >= first) {
            ops.push({ type: 'del', key: chunkKey(c.first) })
          } else {
            // Truncation inside this chunk: keep its prefix (rare: only after a leader change).
            const prefix = decodeChunk((await get(chunkKey(c.first)))!).filter((e) => e.index < first)
            ops.push({ type: 'put', key: chunkKey(c.first), value: encodeChunk(prefix) })
            kept.push({ first: c.first, last: first - 1 })
          }
        }
        ops.push({ type: 'put', key: chunkKey(first), value: encodeChunk(b.entries) })
        kept.push({ first, last: b.entries[b.entries.length - 1]!.index })
        next = kept
        newRuns = [...newRuns] // the committed runs change only once the batch is durable
        appendTermRuns(newRuns, b.entries)
        newLast = b.entries[b.entries.length - 1]!.index
      }
      if (b.hardState) ops.push({ type: 'put', key: K_HARD, value: encodeHardState(b.hardState) })
      if (newRuns !== runs || newLast !== lastIndex)
        ops.push({ type: 'put', key: K_RUNS, value: encodeRuns(newRuns, newLast) })
      if (ops.length === 0) return
      await db.batch(ops, { sync: true })
      chunks = next
      runs = newRuns
      lastIndex = newLast
      snapIndex = newSnapIndex
      current = newCurrent
      retired = newRetired
      if (rewrote) decoded = undefined
      if (file !== currentFile) {
        currentFile = file
        await removeOtherSnapshotFiles(currentFile)
      }
    },

    async openSnapshot(index: number, term: number): Promise<SnapshotReader | null> {
      if (current.index !== index || current.term !== term) return null
      if (currentFile === undefined) {
        // The older layout: the data inside LevelDB, read whole.
        const data = (await get(K_DATA)) ?? EMPTY_BYTES
        return {
          size: data.length,
          read: async (offset, length) => data.slice(offset, offset + length),
          close: async () => undefined,
        }
      }
      // Open now: a newer snapshot may delete the file meanwhile, an open handle still reads it.
      return await fileReader(join(snapDir, currentFile))
    },

    readEntries(lo: number, hi: number, maxBytes: number): Entry[] {
      const out: Entry[] = []
      let size = 0
      let i = lo
      while (i < hi) {
        const c = chunkOf(i)
        if (!c) throw new Error(`raft storage ${dir}: no chunk holds entry ${i}`)
        if (decoded?.first !== c.first) {
          const bytes = db.getSync(chunkKey(c.first))
          if (bytes === undefined) throw new Error(`raft storage ${dir}: chunk ${c.first} is missing`)
          decoded = { first: c.first, entries: decodeChunk(bytes) }
        }
        const es = decoded.entries
        for (let k = i - c.first; k < es.length && i < hi; k++, i++) {
          const e = es[k]!
          if (e.index !== i)
            throw new Error(`raft storage ${dir}: chunk ${c.first} holds ${e.index} for ${i}`)
          size += entrySizeBytes(e)
          if (out.length > 0 && size > maxBytes) return out
          out.push(e)
        }
      }
      return out
    },

    async stageSnapshot(snap: Snapshot): Promise<void> {
      const { name } = await writeSnapshotFile(snap.metadata, [snap.data], SNAPSHOT_STAGE_BYTES_PER_S)
      staged.set(name, snap.metadata.index)
    },

    async stageSnapshotPieces(metadata, pieces): Promise<number> {
      const { name, size } = await writeSnapshotFile(metadata, pieces, SNAPSHOT_STAGE_BYTES_PER_S)
      staged.set(name, metadata.index)
      return size
    },

    async receiveSnapshot(metadata, size): Promise<SnapshotReceiver> {
      const name = fileNameOf({ metadata, data: EMPTY_BYTES })
      await mkdir(snapDir, { recursive: true })
      const tmp = join(snapDir, `${name}.recv.tmp`)
      const fh = await open(tmp, 'w')
      let closed = false
      const close = async (): Promise<void> => {
        if (closed) return
        closed = true
        await fh.close()
      }
      return {
        async write(offset, bytes) {
          if (offset < 0 || offset + bytes.length > size)
            throw new Error(`raft storage ${dir}: snapshot chunk at ${offset} outside ${size} bytes`)
          for (let at = 0; at < bytes.length;)
            at += (await fh.write(bytes, at, bytes.length - at, offset + at)).bytesWritten
        },
        open: () => fileReader(tmp),
        async complete() {
          await fh.sync()
          await close()
          await publish(tmp, name)
          staged.set(name, metadata.index)
        },
        async abort() {
          await close()
          await rm(tmp, { force: true })
        },
      }
    },

    async close(): Promise<void> {
      await db.close()
    },
  }
}
