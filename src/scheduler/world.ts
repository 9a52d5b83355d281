/**
 * Time and randomness come in from outside (STYLE.md "Inject the world"): every loop of the scheduler that
 * decides something — publishing, sampling, backoff, reservation expiry, reconcile — takes a {@link Clock}
 * and an {@link Rng}, so a seeded simulation replays it exactly. The shapes are the consensus layer's
 * (`Clock`, `Rng` there are structurally the same), so its `SeededRng` and the simulator's clocks fit.
 */
import { randomInt } from 'node:crypto'

export type TimerHandle = unknown

export interface Clock {
  /**
   * Milliseconds since the epoch (wall time): it stamps commands (submitted, started, ended times), so a
   * simulated clock starts wherever the test wants; only differences drive timers.
   */
  now(): number
  /** Runs fn once after ms milliseconds unless cleared; never synchronously. */
  setTimeout(fn: () => void, ms: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

/** A source of random integers; seeded in tests and simulations. */
export interface Rng {
  /** A uniformly distributed integer in [0, maxExclusive); maxExclusive ≥ 1. */
  nextInt(maxExclusive: number): number
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof globalThis.setTimeout>),
}

/** Production randomness (not seeded: nothing replays a production run). */
export const cryptoRng: Rng = { nextInt: (max) => randomInt(max) }

/** A uniform float in [0, 1) from an Rng. */
export function uniform(rng: Rng): number {
  return rng.nextInt(0x4000_0000) / 0x4000_0000
}

/** Waits `ms` on `clock`; rejects with the signal's reason when it aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason)
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clock.clearTimeout(handle)
      reject(signal!.reason)
    }
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
