/**
 * Time for the sampler. Structurally the same as the consensus Clock (src/consensus/clock.ts), so the
 * node passes its own; src/gpu may not import consensus.
 */
export interface Clock {
  /** Milliseconds on a monotonic time line (only differences are used). */
  now(): number
  /** Runs fn once after ms unless cleared; never synchronously. */
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof globalThis.setTimeout>),
}
