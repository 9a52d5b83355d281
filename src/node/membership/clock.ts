/**
 * Time for the membership view, injected so tests can drive it. `now()` is wall-clock milliseconds in
 * production (Date.now): `lastSeenMs` in the view is then a timestamp an operator can read. A wall
 * clock step makes peers look older or fresher for one round at most (the next heartbeat corrects it).
 */
import type { Clock } from '../../consensus/index.js'

// One Clock for every area (src/consensus/clock.ts); membership's own is only its wall-clock instance.
export type { Clock, TimerHandle } from '../../consensus/index.js'

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = globalThis.setTimeout(fn, ms)
    t.unref?.() // membership timers never keep a process alive on their own
    return t
  },
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof globalThis.setTimeout>),
}
