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

/** Reads persisted entries [lo, hi) synchronously, at most maxBytes (at least one): RaftPersistence.readEntries. */
export type EntryReader = (lo: number, hi: number, maxBytes: number) => Entry[]

export interface MemoryLogOptions {
  /**
   * Where entries that left the in-memory tail are read back from (the storage the log is persisted
   * in). Without it every entry since the last compaction stays in memory.
   */
  readEntries?: EntryReader
  /** Bytes of entries (entrySizeBytes) kept in memory when `readEntries` is given: the newest ones. */
  tailBytes?: number
  /**
   * Keep only the snapshot's metadata: `snapshot()` returns it with empty data, and
   * `isDataless(s)` tells such a snapshot apart; the data is read from the storage when one is sent.
   */
  snapshotMetadataOnly?: boolean
}

/** A run of log entries of one term: from `first` up to where the next run starts. */
export interface TermRun {
  first: number
  term: number
}

/** Adds the entries' terms to `runs`, in place; runs from the first entry's index on go first (a truncation). */
export function appendTermRuns(runs: TermRun[], entries: readonly Entry[]): void {
  if (entries.length === 0) return
  const at = entries[0]!.index
  while (runs.length > 0 && runs[runs.length - 1]!.first >= at) runs.pop()
  for (const e of entries)
    if (runs[runs.length - 1]?.term !== e.term) runs.push({ first: e.index, term: e.term })
}

/** The runs still needed once the entries up to `index` are compacted: from the one holding index + 1. */
export function runsAfter(runs: readonly TermRun[], index: number): TermRun[] {
  let k = 0
  while (k + 1 < runs.length && runs[k + 1]!.first <= index + 1) k++
  return runs.slice(k)
}

/**
 * The driver's in-memory mirror of the persisted log (etcd's MemoryStorage): the core reads the stable
 * log through it synchronously. The driver updates it right after each persist completes, in the same
 * order (snapshot, compaction, entries, hard state), so it always equals what a restart would load.
 *
 * What it holds in memory is bounded when the driver gives it the storage to read from: entries before
 * the latest snapshot index are dropped (compaction); of the rest only a tail of `tailBytes` stays in
 * memory, older ones are read back from the storage when the core asks for them (a lagging follower, a
 * restart's apply); their terms stay known (runs of equal terms: a handful of numbers), so `term(i)`
 * never reads the disk. With `snapshotMetadataOnly` the snapshot's data (the whole state machine) is not
 * kept either.
 */
export class MemoryLog implements LogStorage {
  private hardState: HardState = { term: 0, vote: '', commit: 0 }
  private snap: Snapshot = {
    data: EMPTY_BYTES,
    metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } },
  }
  /** Index and term of the snapshot (the dummy entry before the first one). */
  private offset = 0
  private offsetTerm = 0
  private last = 0
  /** Terms of the entries (offset, last]: runs[k] starts at `first`, ends where runs[k+1] starts. */
  private runs: TermRun[] = []
  /** The in-memory tail: entries[head..] hold indexes memFirst..last. */
  private tail: Entry[] = []
  private head = 0
  private tailSize = 0
  private readonly reader: EntryReader | undefined
  private readonly tailBytes: number
  private readonly metadataOnly: boolean
  private readonly stubs = new WeakSet<Snapshot>()
  private readBack = 0

  constructor(opts: MemoryLogOptions = {}) {
    this.reader = opts.readEntries
    this.tailBytes = opts.readEntries ? (opts.tailBytes ?? Infinity) : Infinity
    this.metadataOnly = opts.snapshotMetadataOnly ?? false
    this.snap = this.keep(this.snap)
  }

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

  private memFirst(): number {
    return this.last - (this.tail.length - this.head) + 1
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.offset) throw new CompactedError()
    if (hi > this.last + 1) throw new Error(`entries' hi(${hi}) is out of bound lastindex(${this.last})`)
    let out: Entry[] = []
    let size = 0
    const memFirst = this.memFirst()
    if (lo < memFirst && lo < hi) {
      const want = Math.min(hi, memFirst)
      const stored = this.reader!(lo, want, maxBytes)
      if (stored.length === 0 || stored[0]!.index !== lo || stored.length > want - lo)
        throw new Error(`raft log: storage returned entries ${describe(stored)} for [${lo}, ${want})`)
      this.readBack += stored.length
      if (stored.length < want - lo) return stored // hit the size limit
      for (const e of stored) size += entrySizeBytes(e)
      out = stored
      lo = want
    }
    for (let i = lo; i < hi; i++) {
      const e = this.tail[this.head + i - memFirst]!
      size += entrySizeBytes(e)
      if (out.length > 0 && size > maxBytes) break
      out.push(e)
    }
    return out
  }

  term(i: number): number {
    if (i < this.offset) throw new CompactedError()
    if (i > this.last) throw new UnavailableError()
    if (i === this.offset) return this.offsetTerm
    // The last run whose first ≤ i (runs are few: one per leader change that wrote entries).
    let lo = 0
    let hi = this.runs.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.runs[mid]!.first <= i) lo = mid
      else hi = mid - 1
    }
    return this.runs[lo]!.term
  }

  firstIndex(): number {
    return this.offset + 1
  }

  lastIndex(): number {
    return this.last
  }

  snapshot(): Snapshot {
    return this.snap
  }

  /** Whether `s` is this log's snapshot without its data (snapshotMetadataOnly): read it from storage. */
  isDataless(s: Snapshot): boolean {
    return this.stubs.has(s)
  }

  /** Entries held in memory and their bytes (entrySizeBytes); entries read back from storage so far. */
  memoryStats(): { entries: number; bytes: number; snapshotDataBytes: number; readBackEntries: number } {
    return {
      entries: this.tail.length - this.head,
      bytes: this.tailSize,
      snapshotDataBytes: this.snap.data.length,
      readBackEntries: this.readBack,
    }
  }

  private keep(s: Snapshot): Snapshot {
    if (!this.metadataOnly) return s
    const stub: Snapshot = { data: EMPTY_BYTES, metadata: s.metadata }
    this.stubs.add(stub)
    return stub
  }

  /** Installs a snapshot: the whole log is replaced (received from a leader, or loaded at start). */
  applySnapshot(s: Snapshot): void {
    if (s.metadata.index < this.snap.metadata.index) throw new Error('applySnapshot: out of date')
    this.snap = this.keep(s)
    this.offset = s.metadata.index
    this.offsetTerm = s.metadata.term
    this.last = s.metadata.index
    this.runs = []
    this.tail = []
    this.head = 0
    this.tailSize = 0
  }

  /**
   * At start, after applySnapshot: a log whose entries before `tail` stay on the storage (read back
   * with readEntries) and are known here by their terms (`runs`: the first index of each run of one
   * term, covering everything after the snapshot up to `last`). `tail` ends at `last`.
   */
  appendStored(runs: readonly TermRun[], last: number, tail: readonly Entry[]): void {
    if (!this.reader) throw new Error('appendStored: the log cannot read entries back')
    if (last <= this.offset) return
    const first = this.offset + 1
    if (tail.length > 0 && (tail[tail.length - 1]!.index !== last || tail[0]!.index < first))
      throw new Error(`appendStored: tail ${describe(tail)} does not end the log at ${last}`)
    // The runs that cover (offset, last]: the one holding offset + 1 starts there.
    const kept = runsAfter(runs, this.offset).filter((r) => r.first <= last)
    if (kept.length === 0 || kept[0]!.first > first)
      throw new Error(`appendStored: no term known for entry ${first}`)
    this.runs = kept.map((r, i) => (i === 0 ? { first, term: r.term } : { ...r }))
    this.last = last
    this.tail = [...compactBuffers(tail)]
    this.head = 0
    this.tailSize = 0
    for (const e of this.tail) this.tailSize += entrySizeBytes(e)
  }

  /** Records a locally taken snapshot and drops entries up to its index (must be ≤ lastIndex). */
  compact(s: Snapshot): void {
    const idx = s.metadata.index
    if (idx <= this.offset) return
    if (idx > this.last) throw new Error(`compact ${idx} is out of bound lastindex(${this.last})`)
    this.offsetTerm = this.term(idx)
    this.offset = idx
    // Runs: drop those that end at or before idx, start the first remaining one after idx.
    this.runs = runsAfter(this.runs, idx)
    if (idx === this.last) this.runs = []
    else this.runs[0] = { first: Math.max(this.runs[0]!.first, idx + 1), term: this.runs[0]!.term }
    const memFirst = this.memFirst()
    if (idx >= memFirst) this.dropHead(idx - memFirst + 1)
    this.snap = this.keep(s)
  }

  /** Appends entries, truncating any conflicting suffix first. Entries must be contiguous with the log. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return
    const first = this.firstIndex()
    let es = entries
    // Entries already compacted away are skipped (they are covered by the snapshot).
    if (es[es.length - 1]!.index < first) return
    if (es[0]!.index < first) es = es.slice(first - es[0]!.index)
    const at = es[0]!.index
    if (at > this.last + 1) throw new Error(`missing log entry [last: ${this.last}, append at: ${at}]`)
    if (this.reader) es = compactBuffers(es)
    // Truncate a conflicting suffix: the tail, and the runs.
    const memFirst = this.memFirst()
    if (at <= this.last) {
      if (at <= memFirst) {
        this.tail = []
        this.head = 0
        this.tailSize = 0
      } else {
        const cut = this.head + at - memFirst
        for (let j = cut; j < this.tail.length; j++) this.tailSize -= entrySizeBytes(this.tail[j]!)
        this.tail.length = cut
      }
      this.last = at - 1
    }
    appendTermRuns(this.runs, es)
    for (const e of es) {
      this.tail.push(e)
      this.tailSize += entrySizeBytes(e)
    }
    this.last = es[es.length - 1]!.index
    // Older entries leave memory (they are durable: the driver appends after the write completed).
    let drop = 0
    let size = this.tailSize
    while (size > this.tailBytes && this.head + drop < this.tail.length - 1) {
      size -= entrySizeBytes(this.tail[this.head + drop]!)
      drop++
    }
    if (drop > 0) this.dropHead(drop)
  }

  private dropHead(n: number): void {
    for (let j = 0; j < n; j++) this.tailSize -= entrySizeBytes(this.tail[this.head + j]!)
    this.head += n
    if (this.head >= this.tail.length) {
      this.tail = []
      this.head = 0
      this.tailSize = 0
    } else if (this.head > 1024 && this.head * 2 > this.tail.length) {
      this.tail = this.tail.slice(this.head)
      this.head = 0
    }
  }
}

/**
 * Entries' data can be views into a larger buffer (a received message's frame, with other messages in
 * it): held for long, each would keep the whole buffer alive. When the buffers behind a batch are much
 * larger than its data, the data is copied into one buffer of its own.
 */
function compactBuffers(es: readonly Entry[]): readonly Entry[] {
  let data = 0
  let behind = 0
  const seen = new Set<ArrayBufferLike>()
  for (const e of es) {
    data += e.data.byteLength
    if (e.data.byteLength === 0 || seen.has(e.data.buffer)) continue
    seen.add(e.data.buffer)
    behind += e.data.buffer.byteLength
  }
  if (behind <= 2 * data + 16384) return es
  const buf = new Uint8Array(data)
  let off = 0
  return es.map((e) => {
    if (e.data.byteLength === 0) return e
    const view = buf.subarray(off, off + e.data.byteLength)
    view.set(e.data)
    off += e.data.byteLength
    return { ...e, data: view }
  })
}

function describe(es: readonly Entry[]): string {
  return es.length === 0 ? '[]' : `[${es[0]!.index}..${es[es.length - 1]!.index}]`
}
