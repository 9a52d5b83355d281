import { ClassicLevel } from 'classic-level'
import { hopsd } from '../../proto/raft.js'
import {
  decodeHardState,
  decodeSnapshotMetadata,
  encodeHardState,
  encodeSnapshotMetadata,
  normEntry,
} from '../codec.js'
import { EMPTY_BYTES, type Entry, type HardState, type Snapshot } from '../core/types.js'
import type { PersistBatch, PersistedState, RaftPersistence } from './types.js'

/**
 * Raft storage in LevelDB (classic-level). Key layout (one keyspace per node directory):
 *   'h'             HardState
 *   'm'             SnapshotMetadata of the latest snapshot (index, term, conf state)
 *   'd'             the latest snapshot's data
 *   'c' + u64 BE    a chunk: the entries of one write (EntryBatch), keyed by its first index
 *                   (big-endian so that key order is index order)
 *
 * Every write is ONE `batch(ops, {sync: true})`: atomic and fsync'ed. Entries go in as one chunk per
 * write rather than one key per entry: LevelDB's per-key cost dominated the hot path (measured with
 * bench/consensus: one put per Ready instead of hundreds). A truncation that cuts a chunk rewrites
 * its prefix in the same batch; chunks wholly at or below the snapshot index are deleted, and load()
 * skips entries at or below the snapshot index of a chunk that straddles it.
 */
export interface LevelStorage extends RaftPersistence {
  readonly dir: string
}

const K_HARD = Uint8Array.of(0x68) // 'h'
const K_META = Uint8Array.of(0x6d) // 'm'
const K_DATA = Uint8Array.of(0x64) // 'd'
const C_PREFIX = 0x63 // 'c'

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

  const get = async (key: Uint8Array): Promise<Uint8Array | undefined> => (await db.get(key)) ?? undefined

  return {
    dir,
    async load(): Promise<PersistedState> {
      const hsBytes = await get(K_HARD)
      const hardState: HardState = hsBytes ? decodeHardState(hsBytes) : { term: 0, vote: '', commit: 0 }
      const metaBytes = await get(K_META)
      let snapshot: Snapshot | null = null
      if (metaBytes)
        snapshot = { metadata: decodeSnapshotMetadata(metaBytes), data: (await get(K_DATA)) ?? EMPTY_BYTES }
      snapIndex = snapshot?.metadata.index ?? 0
      chunks = []
      const entries: Entry[] = []
      for await (const value of db.values({ gte: chunkKey(0), lt: chunkKey(Number.MAX_SAFE_INTEGER) })) {
        const es = decodeChunk(value)
        if (es.length === 0) continue
        chunks.push({ first: es[0]!.index, last: es[es.length - 1]!.index })
        for (const e of es) {
          if (e.index <= snapIndex) continue
          const expected = entries.length > 0 ? entries[entries.length - 1]!.index + 1 : snapIndex + 1
          if (e.index !== expected)
            throw new Error(`raft storage ${dir}: gap in log at ${e.index}, expected ${expected}`)
          entries.push(e)
        }
      }
      return { hardState, snapshot, entries }
    },

    async write(b: PersistBatch): Promise<void> {
      const ops: Op[] = []
      let next = chunks
      let newSnapIndex = snapIndex
      if (b.snapshot) {
        ops.push({ type: 'put', key: K_META, value: encodeSnapshotMetadata(b.snapshot.metadata) })
        ops.push({ type: 'put', key: K_DATA, value: b.snapshot.data })
        // The snapshot replaces the whole log, entries after its index included.
        for (const c of next) ops.push({ type: 'del', key: chunkKey(c.first) })
        next = []
        newSnapIndex = b.snapshot.metadata.index
      }
      if (b.compact && b.compact.metadata.index > newSnapIndex) {
        const idx = b.compact.metadata.index
        ops.push({ type: 'put', key: K_META, value: encodeSnapshotMetadata(b.compact.metadata) })
        ops.push({ type: 'put', key: K_DATA, value: b.compact.data })
        for (const c of next) if (c.last <= idx) ops.push({ type: 'del', key: chunkKey(c.first) })
        next = next.filter((c) => c.last > idx)
        newSnapIndex = idx
      }
      if (b.entries.length > 0) {
        const first = b.entries[0]!.index
        // Chunks are in index order and almost every write only appends: look at the tail only
        // (scanning every chunk on each write made the leader's cost grow with the log).
        let keep = next.length
        while (keep > 0 && next[keep - 1]!.last >= first) keep--
        const kept: Chunk[] = next.slice(0, keep)
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
      }
      if (b.hardState) ops.push({ type: 'put', key: K_HARD, value: encodeHardState(b.hardState) })
      if (ops.length === 0) return
      await db.batch(ops, { sync: true })
      chunks = next
      snapIndex = newSnapIndex
    },

    async close(): Promise<void> {
      await db.close()
    },
  }
}
