/**
 * An ordered set of job ids (non-negative integers): the derived indexes of the jobs module. Ids live in
 * sorted chunks of at most {@link CHUNK_MAX} (a one-level B-tree, like meta's SortedMap but over numbers:
 * no key strings to build and hash on every apply). add/delete cost O(log n + chunk size); appending a
 * larger id than all (the common case: new jobs) is O(1); iteration from an id is O(log n + returned).
 *
 * Not safe to mutate while iterating: collect, then mutate.
 */
const CHUNK_MAX = 256

export class SortedIds {
  private chunks: number[][] = []
  private count = 0

  get size(): number {
    return this.count
  }

  add(id: number): boolean {
    const chunks = this.chunks
    if (chunks.length === 0) {
      chunks.push([id])
      this.count = 1
      return true
    }
    const last = chunks[chunks.length - 1]!
    if (id > last[last.length - 1]!) {
      if (last.length < CHUNK_MAX) last.push(id)
      else chunks.push([id])
      this.count++
      return true
    }
    const ci = this.chunkFor(id)
    const chunk = chunks[ci]!
    const i = lowerBound(chunk, id)
    if (chunk[i] === id) return false
    chunk.splice(i, 0, id)
    this.count++
    if (chunk.length > CHUNK_MAX) chunks.splice(ci + 1, 0, chunk.splice(chunk.length >>> 1))
    return true
  }

  delete(id: number): boolean {
    const ci = this.chunkFor(id)
    const chunk = this.chunks[ci]
    if (chunk === undefined) return false
    const i = lowerBound(chunk, id)
    if (chunk[i] !== id) return false
    chunk.splice(i, 1)
    this.count--
    if (chunk.length === 0) this.chunks.splice(ci, 1)
    return true
  }

  has(id: number): boolean {
    const chunk = this.chunks[this.chunkFor(id)]
    return chunk !== undefined && chunk[lowerBound(chunk, id)] === id
  }

  first(): number | undefined {
    return this.chunks[0]?.[0]
  }

  /** Ids greater than `after` (all when undefined), ascending. */
  *from(after?: number): IterableIterator<number> {
    let ci = after === undefined ? 0 : this.chunkFor(after)
    let i = after === undefined || ci >= this.chunks.length ? 0 : upperBound(this.chunks[ci]!, after)
    for (; ci < this.chunks.length; ci++, i = 0) {
      const chunk = this.chunks[ci]!
      for (; i < chunk.length; i++) yield chunk[i]!
    }
  }

  clear(): void {
    this.chunks = []
    this.count = 0
  }

  /** Index of the first chunk whose last id is ≥ id (chunks.length when none). */
  private chunkFor(id: number): number {
    let lo = 0
    let hi = this.chunks.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const chunk = this.chunks[mid]!
      if (chunk[chunk.length - 1]! < id) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

function lowerBound(arr: readonly number[], id: number): number {
  let lo = 0
  let hi = arr.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (arr[mid]! < id) lo = mid + 1
    else hi = mid
  }
  return lo
}

function upperBound(arr: readonly number[], id: number): number {
  let lo = 0
  let hi = arr.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (arr[mid]! <= id) lo = mid + 1
    else hi = mid
  }
  return lo
}
