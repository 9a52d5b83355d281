/**
 * Time for the membership view, injected so tests can drive it. `now()` is wall-clock milliseconds in
 * production (Date.now): `lastSeenMs` in the view is then a timestamp an operator can read. A wall
 * clock step makes peers look older or fresher for one round at most (the next heartbeat corrects it).
 */
export type TimerHandle = unknown

export interface Clock {
  now(): number
  /** Runs fn once after ms unless cleared; never calls fn synchronously. */
  setTimeout(fn: () => void, ms: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = globalThis.setTimeout(fn, ms)
    t.unref?.() // membership timers never keep a process alive on their own
    return t
  },
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof globalThis.setTimeout>),
}
