/**
 * The two time bases of the scheduler bench.
 *
 * - `simulated`: a discrete-event clock. Timers are events in a heap ordered by (time, sequence); after
 *   each event every pending microtask runs (setImmediate fires after all of them), so the async code
 *   advances exactly as far as that event allows. Time moves only by events: what the figures measure in
 *   time is the protocol (message latency, commit latency, retries, backoff, gossip delay), never how
 *   busy the host is. CPU is measured apart (process CPU per placement).
 * - `real`: the real clock (sub-ms now(); delays under 1 ms run on the next event-loop turn). Latencies
 *   then include the host's load — on a shared machine they say more about the neighbours than the code.
 */
import type { Clock } from '../../src/scheduler/index.js'

export interface TimeBase {
  readonly kind: 'simulated' | 'real'
  /** Events run so far (simulated time; 0 on the real clock). */
  readonly events: number
  readonly clock: Clock
  /** Runs until `pred` holds; rejects after `maxMs` of this time base's time. */
  runUntil(pred: () => boolean, maxMs: number, what: string): Promise<void>
}

interface Ev {
  at: number
  seq: number
  fn: () => void
  cancelled: boolean
}

/** Simulated time, starting at `epochMs`. */
export function simulatedTime(epochMs = 1_700_000_000_000): TimeBase {
  const heap: Ev[] = []
  let now = epochMs
  let seq = 0
  let events = 0
  const less = (a: Ev, b: Ev) => a.at < b.at || (a.at === b.at && a.seq < b.seq)
  const push = (e: Ev) => {
    heap.push(e)
    let i = heap.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!less(heap[i]!, heap[p]!)) break
      ;[heap[i], heap[p]] = [heap[p]!, heap[i]!]
      i = p
    }
  }
  const pop = (): Ev | undefined => {
    if (heap.length === 0) return undefined
    const top = heap[0]!
    const last = heap.pop()!
    if (heap.length > 0) {
      heap[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < heap.length && less(heap[l]!, heap[m]!)) m = l
        if (r < heap.length && less(heap[r]!, heap[m]!)) m = r
        if (m === i) break
        ;[heap[i], heap[m]] = [heap[m]!, heap[i]!]
        i = m
      }
    }
    return top
  }
  const clock: Clock = {
    now: () => now,
    setTimeout: (fn, ms) => {
      const e: Ev = { at: now + Math.max(0, ms), seq: seq++, fn, cancelled: false }
      push(e)
      return e
    },
    clearTimeout: (h) => {
      if (h) (h as Ev).cancelled = true
    },
  }
  return {
    kind: 'simulated',
    clock,
    get events() {
      return events
    },
    async runUntil(pred, maxMs, what) {
      const end = now + maxMs
      await drain()
      while (!pred()) {
        const e = pop()
        if (e === undefined) throw new Error(`bench: no event left waiting for ${what}`)
        if (e.cancelled) continue
        if (e.at > end) throw new Error(`bench: ${what} not reached in ${maxMs} ms`)
        now = e.at
        events++
        e.fn()
        await drain()
      }
    },
  }
}

export function realTime(): TimeBase {
  const clock: Clock = {
    now: () => performance.timeOrigin + performance.now(),
    setTimeout: (fn, ms) => (ms < 1 ? { immediate: setImmediate(fn) } : setTimeout(fn, ms)),
    clearTimeout: (h) => {
      const i = (h as { immediate?: ReturnType<typeof setImmediate> }).immediate
      if (i !== undefined) clearImmediate(i)
      else clearTimeout(h as ReturnType<typeof setTimeout>)
    },
  }
  return {
    kind: 'real',
    events: 0,
    clock,
    async runUntil(pred, maxMs, what) {
      const end = Date.now() + maxMs
      while (!pred()) {
        if (Date.now() > end) throw new Error(`bench: ${what} not reached in ${maxMs} ms`)
        await new Promise((r) => setTimeout(r, 2))
      }
    },
  }
}

function drain(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
