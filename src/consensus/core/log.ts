import {
  CompactedError,
  UnavailableError,
  entrySizeBytes,
  type Entry,
  type LogStorage,
  type Snapshot,
} from './types.js'

/**
 * Entries not yet persisted (etcd's unstable): a received snapshot and/or a tail of entries. They
 * leave this buffer when the driver reports them persisted (advance → stableTo).
 */
export class Unstable {
  snapshot: Snapshot | null = null
  entries: Entry[] = []
  /** Index of entries[0]. */
  offset: number

  constructor(offset: number) {
    this.offset = offset
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1
    return this.snapshot ? this.snapshot.metadata.index : undefined
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term
      return undefined
    }
    const last = this.maybeLastIndex()
    if (last === undefined || i > last) return undefined
    return this.entries[i - this.offset]!.term
  }

  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i)
    // Only if the entry at i still has term t: a truncation while the write was in flight means the
    // replaced entries are still unstable and will be written by the next Ready.
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset)
      this.offset = i + 1
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.metadata.index === i) this.snapshot = null
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1
    this.entries = []
    this.snapshot = s
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0]!.index
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e)
    } else if (after <= this.offset) {
      // Replaces every unstable entry (and shadows stable ones from `after` on).
      this.offset = after
      this.entries = [...ents]
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(ents)
    }
  }

  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset)
  }
}

/** etcd's raftLog: the stable log (LogStorage) plus the unstable tail, with commit/applied tracking. */
export class RaftLog {
  readonly unstable: Unstable
  committed: number
  applied: number

  constructor(
    readonly storage: LogStorage,
    private readonly maxNextEntsBytes: number,
  ) {
    const first = storage.firstIndex()
    const last = storage.lastIndex()
    this.unstable = new Unstable(last + 1)
    this.committed = first - 1
    this.applied = first - 1
  }

  /** Appends leader entries after (index, logTerm) if they match; returns the new last index or undefined. */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined
    const lastNew = index + ents.length
    const ci = this.findConflict(ents)
    if (ci !== 0) {
      if (ci <= this.committed)
        throw new Error(`entry ${ci} conflicts with committed entry [committed(${this.committed})]`)
      this.append(ents.slice(ci - (index + 1)))
    }
    this.commitTo(Math.min(committed, lastNew))
    return lastNew
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex()
    const after = ents[0]!.index - 1
    if (after < this.committed)
      throw new Error(`after(${after}) is out of range [committed(${this.committed})]`)
    this.unstable.truncateAndAppend(ents)
    return this.lastIndex()
  }

  /** Index of the first entry whose term differs from ours (or that we lack), 0 if all match. */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) if (!this.matchTerm(e.index, e.term)) return e.index
    return 0
  }

  /**
   * Fast backtracking: the largest index ≤ `index` whose term ≤ `term` (with that term), so a leader
   * skips a whole conflicting term per round trip instead of one entry.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (; index > 0; index--) {
      let t: number
      try {
        t = this.term(index)
      } catch {
        return [index, 0]
      }
      if (t <= term) return [index, t]
    }
    return [0, 0]
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries
  }

  /** Committed entries not yet applied, bounded by maxNextEntsBytes. */
  nextEnts(): Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex())
    if (this.committed + 1 > off) return this.slice(off, this.committed + 1, this.maxNextEntsBytes)
    return []
  }

  hasNextEnts(): boolean {
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex())
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot()
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex()
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex()
  }

  /** Last index of the log prefix that is durable (persisted and not shadowed by unstable entries). */
  stableLastIndex(): number {
    if (this.unstable.snapshot) return 0
    return Math.min(this.storage.lastIndex(), this.unstable.offset - 1)
  }

  commitTo(toCommit: number): void {
    if (this.committed < toCommit) {
      if (this.lastIndex() < toCommit)
        throw new Error(`tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]`)
      this.committed = toCommit
    }
  }

  appliedTo(i: number): void {
    if (i === 0) return
    if (this.committed < i || i < this.applied)
      throw new Error(
        `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`,
      )
    this.applied = i
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t)
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i)
  }

  lastTerm(): number {
    return this.term(this.lastIndex())
  }

  /** Term of entry i; 0 when i is outside [firstIndex-1, lastIndex]; throws CompactedError if compacted in storage. */
  term(i: number): number {
    const dummyIndex = this.firstIndex() - 1
    if (i < dummyIndex || i > this.lastIndex()) return 0
    const t = this.unstable.maybeTerm(i)
    if (t !== undefined) return t
    return this.storage.term(i)
  }

  termOrZero(i: number): number {
    try {
      return this.term(i)
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) return 0
      throw e
    }
  }

  matchTerm(i: number, t: number): boolean {
    try {
      return this.term(i) === t
    } catch {
      return false
    }
  }

  isUpToDate(lasti: number, term: number): boolean {
    const lt = this.lastTerm()
    return term > lt || (term === lt && lasti >= this.lastIndex())
  }

  entries(i: number, maxBytes: number): Entry[] {
    if (i > this.lastIndex()) return []
    return this.slice(i, this.lastIndex() + 1, maxBytes)
  }

  /** Entries [lo, hi) up to maxBytes (at least one). Throws CompactedError when lo < firstIndex. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo > hi) throw new Error(`invalid slice ${lo} > ${hi}`)
    if (lo < this.firstIndex()) throw new CompactedError()
    if (hi > this.lastIndex() + 1)
      throw new Error(`slice[${lo},${hi}) out of bound [${this.firstIndex()},${this.lastIndex()}]`)
    if (lo === hi) return []
    let ents: Entry[] = []
    const off = this.unstable.offset
    if (lo < off) {
      const stored = this.storage.entries(lo, Math.min(hi, off), maxBytes)
      if (stored.length < Math.min(hi, off) - lo) return stored // hit the size limit
      ents = stored
    }
    if (hi > off) {
      const u = this.unstable.slice(Math.max(lo, off), hi)
      ents = ents.length > 0 ? ents.concat(u) : u
    }
    return limitSize(ents, maxBytes)
  }

  /** Commits maxIndex if its entry is of `term` (Raft §5.4.2: only current-term entries commit by counting). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex)
      return true
    }
    return false
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata.index
    this.unstable.restore(s)
  }
}

export function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length === 0) return ents
  let size = entrySizeBytes(ents[0]!)
  let limit = 1
  for (; limit < ents.length; limit++) {
    size += entrySizeBytes(ents[limit]!)
    if (size > maxBytes) break
  }
  return limit === ents.length ? ents : ents.slice(0, limit)
}
