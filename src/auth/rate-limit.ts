/**
 * Failed authentications, limited per source address: a token bucket per address holds
 * `failuresMax` failures and refills at `failuresMax` per `windowMs`. While a source's bucket is
 * empty, every request of it that needs a caller is answered 429 without its credentials being
 * looked at (guessing is cut off; log and audit floods too). Public routes stay open.
 *
 * Bounded: at most `sourcesMax` addresses are tracked; when full, the least recently failing one
 * goes (a full bucket loses nothing by being forgotten).
 */
export interface FailureLimiterInit {
  /** Failures a source may make in a burst (default 20). */
  readonly failuresMax?: number
  /** The bucket refills completely in this long (default 60 s). */
  readonly windowMs?: number
  /** Addresses tracked at once (default 10 000). */
  readonly sourcesMax?: number
  /** Wall or monotonic clock (ms). */
  readonly clock?: () => number
}

export interface FailureLimiter {
  /** Undefined when `source` may try; otherwise how many seconds until it may (for Retry-After). */
  blocked(source: string): number | undefined
  /** Counts one failed authentication of `source`; returns true when this failure exhausted its bucket. */
  fail(source: string): boolean
  /** Sources tracked now (for tests and metrics). */
  readonly size: number
}

export function createFailureLimiter(init: FailureLimiterInit = {}): FailureLimiter {
  const max = init.failuresMax ?? 20
  const windowMs = init.windowMs ?? 60_000
  const sourcesMax = init.sourcesMax ?? 10_000
  const clock = init.clock ?? Date.now
  const perMs = max / windowMs
  const buckets = new Map<string, { tokens: number; atMs: number }>()

  const level = (source: string): number => {
    const b = buckets.get(source)
    if (b === undefined) return max
    return Math.min(max, b.tokens + (clock() - b.atMs) * perMs)
  }

  return {
    blocked(source) {
      const tokens = level(source)
      if (tokens >= 1) return undefined
      return Math.max(1, Math.ceil((1 - tokens) / perMs / 1000))
    },
    fail(source) {
      const tokens = Math.max(0, level(source) - 1)
      buckets.delete(source)
      if (buckets.size >= sourcesMax) buckets.delete(buckets.keys().next().value!)
      buckets.set(source, { tokens, atMs: clock() })
      return tokens < 1
    },
    get size() {
      return buckets.size
    },
  }
}
