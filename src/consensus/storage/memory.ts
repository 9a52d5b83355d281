import type { Entry, HardState, Snapshot } from '../core/types.js'
import type { PersistBatch, PersistedState, RaftPersistence } from './types.js'

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
    contents,
    get writeCount() {
      return writeCount
    },
  }

  function applyBatch(b: PersistBatch): void {
    if (b.snapshot) {
      snapshot = b.snapshot
      entries = []
    }
    if (b.compact) {
      const idx = b.compact.metadata.index
      if (!snapshot || idx > snapshot.metadata.index) snapshot = b.compact
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
