/**
 * Capped exponential backoff with jitter, for the join loop and channel reconnects. "Equal jitter":
 * the delay is between half and all of min(maxMs, baseMs * 2^attempt), so retries of many hosts
 * started together spread out, yet never collapse to zero (no hot loop against a dead address).
 */
export interface BackoffOptions {
  /** Delay before the second attempt (the first is immediate). */
  readonly baseMs: number
  /** Upper bound of any delay. */
  readonly maxMs: number
}

/** Delay before retry number `attempt` (1 = the first retry). `random` returns [0, 1). */
export function backoffDelayMs(
  attempt: number,
  opts: BackoffOptions,
  random: () => number = Math.random,
): number {
  const exp = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30))
  return Math.round(exp / 2 + random() * (exp / 2))
}

/** Resolves after `ms`, or rejects with the signal's reason when aborted first. */
export function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error)
      return
    }
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal.reason as Error)
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
