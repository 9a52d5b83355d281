/**
 * Time for the driver (the core counts ticks and never reads a clock). The simulator injects a
 * virtual clock; production uses `realClock`.
 */
export type TimerHandle = unknown

export interface Clock {
  /** Milliseconds on a monotonic-enough time line (only differences are used). */
  now(): number
  /** Runs fn once after ms milliseconds unless cleared. fn must never be called synchronously. */
  setTimeout(fn: () => void, ms: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
  /**
   * Runs fn once the input already waiting has been read (after this turn of the event loop), so
   * that proposals arriving on many connections at once leave as one batch. Optional: without it the
   * driver uses a microtask (the simulator's virtual clock, where "now" is one event).
   */
  defer?(fn: () => void): void
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof globalThis.setTimeout>),
  defer: (fn) => void setImmediate(fn),
}
