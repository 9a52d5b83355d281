import {
  CompactedError,
  UnavailableError,
  type ConfState,
  type Entry,
  type HardState,
  type LogStorage,
  type Snapshot,
} from './core/types.js'
import { entrySizeBytes, EMPTY_BYTES } from './core/types.js'

/**
 * The driver's in-memory mirror of the persisted log (etcd's MemoryStorage): the core reads the stable
 * log through it synchronously. The driver updates it right after each persist completes, in the same
 * order (snapshot, compaction, entries, hard state), so it always equals what a restart would load.
 * Memory is bounded by compaction: entries before the latest snapshot index are dropped.
 */
export class MemoryLog implements LogStorage {
  private hardState: HardState = { term: 0, vote: '', commit: 0 }
  private snap: Snapshot = {
    data: EMPTY_BYTES,
    metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } },
  }
  /** ents[0] is a dummy at the snapshot index (holds its term); real entries follow. */
  private ents: Entry[] = [dummy(0, 0)]

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: this.snap.metadata.confState }
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs }
  }

  /** Latest persisted conf state known to the mirror's snapshot. */
  snapshotConfState(): ConfState {
    return this.snap.metadata.confState
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.ents[0]!.index
    if (lo <= offset) throw new CompactedError()
    if (hi > this.lastIndex() + 1)
      throw new Error(`entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`)
    const out: Entry[] = []
    let size = 0
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - offset]!
      size += entrySizeBytes(e)
      if (out.length > 0 && size > maxBytes) break
      out.push(e)
    }
    return out
  }

  term(i: number): number {
    const offset = this.ents[0]!.index
    if (i < offset) throw new CompactedError()
    if (i - offset >= this.ents.length) throw new UnavailableError()
    return this.ents[i - offset]!.term
  }

  firstIndex(): number {
    return this.ents[0]!.index + 1
  }

  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1
  }

  snapshot(): Snapshot {
    return this.snap
  }

  /** Installs a snapshot: the whole log is replaced (received from a leader, or loaded at start). */
  applySnapshot(s: Snapshot): void {
    if (s.metadata.index < this.snap.metadata.index) throw new Error('applySnapshot: out of date')
    this.snap = s
    this.ents = [dummy(s.metadata.index, s.metadata.term)]
  }

  /** Records a locally taken snapshot and drops entries up to its index (must be ≤ lastIndex). */
  compact(s: Snapshot): void {
    const idx = s.metadata.index
    const offset = this.ents[0]!.index
    if (idx <= offset) return
    if (idx > this.lastIndex())
      throw new Error(`compact ${idx} is out of bound lastindex(${this.lastIndex()})`)
    const term = this.ents[idx - offset]!.term
    this.ents = [dummy(idx, term), ...this.ents.slice(idx - offset + 1)]
    this.snap = s
  }

  /** Appends entries, truncating any conflicting suffix first. Entries must be contiguous with the log. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return
    const first = this.firstIndex()
    let es = entries
    // Entries already compacted away are skipped (they are covered by the snapshot).
    if (es[es.length - 1]!.index < first) return
    if (es[0]!.index < first) es = es.slice(first - es[0]!.index)
    const offset = es[0]!.index - this.ents[0]!.index
    if (offset > this.ents.length)
      throw new Error(`missing log entry [last: ${this.lastIndex()}, append at: ${es[0]!.index}]`)
    if (offset === this.ents.length) {
      for (const e of es) this.ents.push(e)
    } else {
      this.ents = this.ents.slice(0, offset).concat(es)
    }
  }
}

function dummy(index: number, term: number): Entry {
  return { term, index, type: 0, data: EMPTY_BYTES, clientId: '', seq: 0, origin: '', originSeq: 0 }
}
