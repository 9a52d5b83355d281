import { entrySizeBytes, type Entry, type HardState, type Snapshot } from '../core/types.js'
import type { PersistBatch, PersistedState, RaftPersistence, SnapshotReader } from './types.js'

/**
 * RaftPersistence in memory: every write is "durable" when its promise resolves (the next microtask).
 * The simulator wraps it to delay, fail or lose writes; `contents()` shows what a restart would load.
 */
export interface MemoryStorage extends RaftPersistence {
  /** What load() would return now (deep enough copies: entries are immutable and shared). */
  contents(): PersistedState
  /** Writes completed so far. */
  readonly writeCount: number
}

export function createMemoryStorage(initial?: PersistedState): MemoryStorage {
  let hardState: HardState = initial?.hardState ?? { term: 0, vote: '', commit: 0 }
  let snapshot: Snapshot | null = initial?.snapshot ?? null
  let entries: Entry[] = initial ? [...initial.entries] : []
  /** Entries the last write's compaction dropped: still readable until the next write (readEntries). */
  let lagging: Entry[] = []
  let writeCount = 0
  let closed = false

  const contents = (): PersistedState => ({ hardState: { ...hardState }, snapshot, entries: [...entries] })

  return {
    async load() {
      return contents()
    },
    async write(batch: PersistBatch) {
      if (closed) throw new Error('memory storage: write after close')
      applyBatch(batch)
      writeCount++
    },
    async close() {
      closed = true
    },
    async openSnapshot(index: number, term: number): Promise<SnapshotReader | null> {
      const s = snapshot
      if (!s || s.metadata.index !== index || s.metadata.term !== term) return null
      return {
        size: s.data.length,
        read: async (offset, length) => s.data.slice(offset, offset + length),
        close: async () => undefined,
      }
    },
    readEntries(lo: number, hi: number, maxBytes: number): Entry[] {
      const out: Entry[] = []
      let size = 0
      for (let i = lo; i < hi; i++) {
        const e = entryAt(i)
        if (!e) throw new Error(`memory storage: no entry ${i}`)
        size += entrySizeBytes(e)
        if (out.length > 0 && size > maxBytes) break
        out.push(e)
      }
      return out
    },
    contents,
    get writeCount() {
      return writeCount
    },
  }

  function entryAt(i: number): Entry | undefined {
    if (entries.length > 0 && i >= entries[0]!.index) return entries[i - entries[0]!.index]
    if (lagging.length > 0 && i >= lagging[0]!.index) return lagging[i - lagging[0]!.index]
    return undefined
  }

  function applyBatch(b: PersistBatch): void {
    lagging = []
    if (b.snapshot) {
      snapshot = b.snapshot
      entries = []
    }
    if (b.compact) {
      const idx = b.compact.metadata.index
      if (!snapshot || idx > snapshot.metadata.index) snapshot = b.compact
      lagging = entries.filter((e) => e.index <= idx)
      entries = entries.filter((e) => e.index > idx)
    }
    if (b.entries.length > 0) {
      const first = b.entries[0]!.index
      const keep = entries.filter((e) => e.index < first)
      const base = snapshot?.metadata.index ?? 0
      const expected = keep.length > 0 ? keep[keep.length - 1]!.index + 1 : base + 1
      if (first > expected) throw new Error(`memory storage: gap, first=${first} expected≤${expected}`)
      entries = keep.concat(b.entries)
    }
    if (b.hardState) hardState = { ...b.hardState }
  }
}
