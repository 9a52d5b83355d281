/**
 * Ordered string keys, and an ordered map over them: the in-memory structures behind every metadata
 * table (a table whose values live on disk keeps only its {@link SortedKeys} in memory).
 *
 * Keys are kept in sorted chunks of at most {@link CHUNK_KEYS_MAX} keys (a one-level B-tree): insert
 * and delete cost O(log n + chunk size), a range scan costs O(log n + keys returned). Ordering is
 * JavaScript's string order (UTF-16 code units) — the same on every node, which is all determinism
 * needs.
 *
 * Not safe to mutate while a `range` iterator is open: collect, then mutate.
 */
const CHUNK_KEYS_MAX = 512

export class SortedKeys {
  /** Sorted, non-overlapping, each non-empty; chunk i's keys all sort before chunk i+1's. */
  private chunks: string[][] = []
  private count = 0

  get size(): number {
    return this.count
  }

  /** O(log n): a binary search over the chunks, then within one. */
  has(key: string): boolean {
    const ci = this.chunkFor(key)
    const chunk = this.chunks[ci]
    return chunk !== undefined && chunk[lowerBound(chunk, key)] === key
  }

  /** Adds `key`; false when it was there already. */
  add(key: string): boolean {
    if (this.chunks.length === 0) {
      this.chunks.push([key])
      this.count++
      return true
    }
    let ci = this.chunkFor(key)
    if (ci === this.chunks.length) ci-- // larger than every key: goes at the end of the last chunk
    const chunk = this.chunks[ci]!
    const i = lowerBound(chunk, key)
    if (chunk[i] === key) return false
    chunk.splice(i, 0, key)
    this.count++
    if (chunk.length > CHUNK_KEYS_MAX) {
      const upper = chunk.splice(chunk.length >>> 1)
      this.chunks.splice(ci + 1, 0, upper)
    }
    return true
  }

  /** Removes `key`; false when it was not there. */
  remove(key: string): boolean {
    const ci = this.chunkFor(key)
    const chunk = this.chunks[ci]
    if (chunk === undefined) return false
    const i = lowerBound(chunk, key)
    if (chunk[i] !== key) return false
    chunk.splice(i, 1)
    this.count--
    if (chunk.length === 0) this.chunks.splice(ci, 1)
    return true
  }

  clear(): void {
    this.chunks = []
    this.count = 0
  }

  /**
   * Keys k with `start <= k < end` (or `start < k` when `startExclusive`), in order. `end` undefined =
   * to the last key.
   */
  *range(start: string, end?: string, startExclusive = false): IterableIterator<string> {
    let ci = this.chunkFor(start)
    if (ci >= this.chunks.length) return
    let i = lowerBound(this.chunks[ci]!, start)
    for (; ci < this.chunks.length; ci++, i = 0) {
      const chunk = this.chunks[ci]!
      for (; i < chunk.length; i++) {
        const key = chunk[i]!
        if (startExclusive && key === start) continue
        if (end !== undefined && key >= end) return
        yield key
      }
    }
  }

  /**
   * How many keys k satisfy `start <= k < end` (`start < k` when `startExclusive`): whole chunks are
   * counted by length, so this costs O(chunks), not O(keys).
   */
  countRange(start: string, end?: string, startExclusive = false): number {
    const first = this.chunkFor(start)
    if (first >= this.chunks.length) return 0
    const last =
      end === undefined ? this.chunks.length - 1 : Math.min(this.chunkFor(end), this.chunks.length - 1)
    let count = 0
    for (let ci = first; ci <= last; ci++) {
      const chunk = this.chunks[ci]!
      let lo = ci === first ? lowerBound(chunk, start) : 0
      if (ci === first && startExclusive && chunk[lo] === start) lo++
      const hi = ci === last && end !== undefined ? lowerBound(chunk, end) : chunk.length
      if (hi > lo) count += hi - lo
    }
    return count
  }

  /** The smallest key, or undefined when empty. */
  firstKey(): string | undefined {
    return this.chunks[0]?.[0]
  }

  /** Every key in order, as one array (a capture: later changes do not show in it). */
  toArray(): string[] {
    return this.chunks.flat()
  }

  /** Index of the first chunk whose last key is >= key (chunks.length when none). */
  private chunkFor(key: string): number {
    let lo = 0
    let hi = this.chunks.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const chunk = this.chunks[mid]!
      if (chunk[chunk.length - 1]! < key) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

/** Ordered keys with their values: point reads are O(1) through a hash map beside the keys. */
export class SortedMap<V> {
  private readonly values = new Map<string, V>()
  private readonly keys = new SortedKeys()

  get size(): number {
    return this.values.size
  }

  get(key: string): V | undefined {
    return this.values.get(key)
  }

  has(key: string): boolean {
    return this.values.has(key)
  }

  set(key: string, value: V): void {
    if (!this.values.has(key)) this.keys.add(key)
    this.values.set(key, value)
  }

  delete(key: string): boolean {
    if (!this.values.delete(key)) return false
    if (!this.keys.remove(key)) throw new Error(`SortedMap: key ${key} missing from its chunk`)
    return true
  }

  clear(): void {
    this.values.clear()
    this.keys.clear()
  }

  /** Entries with `start <= k < end` (`start < k` when `startExclusive`), in key order. */
  *range(start: string, end?: string, startExclusive = false): IterableIterator<[string, V]> {
    for (const key of this.keys.range(start, end, startExclusive)) yield [key, this.values.get(key)!]
  }

  /** As {@link SortedKeys.countRange}. */
  countRange(start: string, end?: string, startExclusive = false): number {
    return this.keys.countRange(start, end, startExclusive)
  }

  /** Every entry in key order. */
  entries(): IterableIterator<[string, V]> {
    return this.range('')
  }

  /** The smallest key, or undefined when empty. */
  firstKey(): string | undefined {
    return this.keys.firstKey()
  }
}

function lowerBound(arr: readonly string[], key: string): number {
  let lo = 0
  let hi = arr.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (arr[mid]! < key) lo = mid + 1
    else hi = mid
  }
  return lo
}
