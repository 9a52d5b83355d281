/**
 * Time for the batcher and the replica supervisor (delays, deadlines, restart backoff), injected so that
 * tests drive them with a fake clock (STYLE: inject the world). The same shape as the consensus and
 * membership clocks, so one object can serve all three.
 */
export type TimerHandle = unknown

export interface Clock {
  /** Milliseconds on a monotonic time line (only differences are used). */
  now(): number
  /** Runs fn once after ms milliseconds unless cleared; never calls fn synchronously. */
  setTimeout(fn: () => void, ms: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof globalThis.setTimeout>),
}
