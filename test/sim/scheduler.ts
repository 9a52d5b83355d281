/**
 * The simulator's virtual time: a discrete-event scheduler. Events sit in a binary heap ordered by
 * (time, sequence number) — the sequence number makes ties deterministic (first scheduled, first run).
 * Nothing here reads a real clock or uses real timers.
 *
 * Each node sees time through its own `Clock` (`nodeClock`), which runs at a rate (nodes tick at
 * different speeds: a rate of 1.1 means its timers fire 10% early in global time) and can be stopped
 * (a crashed node's timers are cancelled wholesale by bumping its epoch).
 */
import type { Clock, TimerHandle } from '../../src/consensus/clock.js'

export interface SimEvent {
  readonly at: number
  readonly seq: number
  readonly label: string
  readonly run: () => void
  cancelled: boolean
}

export class Scheduler {
  private heap: SimEvent[] = []
  private seqNext = 0
  private nowMs = 0
  /** Events run so far (for limits and the trace). */
  eventsRun = 0

  now(): number {
    return this.nowMs
  }

  /** Schedules `run` at now + delayMs (delayMs ≥ 0; fractional allowed). */
  after(delayMs: number, label: string, run: () => void): SimEvent {
    if (!(delayMs >= 0) || !Number.isFinite(delayMs)) throw new Error(`scheduler: bad delay ${delayMs}`)
    const ev: SimEvent = { at: this.nowMs + delayMs, seq: this.seqNext++, label, run, cancelled: false }
    this.push(ev)
    return ev
  }

  cancel(ev: SimEvent): void {
    ev.cancelled = true
  }

  /** Pops the next live event and advances time to it; undefined when none is left. */
  next(): SimEvent | undefined {
    for (;;) {
      const ev = this.pop()
      if (ev === undefined) return undefined
      if (ev.cancelled) continue
      if (ev.at < this.nowMs) throw new Error('scheduler: time went backwards')
      this.nowMs = ev.at
      this.eventsRun++
      return ev
    }
  }

  /** Time of the next live event, or undefined. */
  peekTime(): number | undefined {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop()
    return this.heap[0]?.at
  }

  pending(): number {
    return this.heap.length
  }

  private less(a: SimEvent, b: SimEvent): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq)
  }

  private push(ev: SimEvent): void {
    const h = this.heap
    h.push(ev)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.less(h[i]!, h[p]!)) break
      ;[h[i], h[p]] = [h[p]!, h[i]!]
      i = p
    }
  }

  private pop(): SimEvent | undefined {
    const h = this.heap
    if (h.length === 0) return undefined
    const top = h[0]!
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m]!, h[i]!]
        i = m
      }
    }
    return top
  }
}

/**
 * A node's clock on the scheduler. `rate` > 1 runs fast. `stopAll()` cancels every timer this clock
 * handed out (the node crashed); the clock keeps working for the next incarnation.
 */
export interface NodeClock extends Clock {
  readonly rate: number
  stopAll(): void
}

export function nodeClock(sched: Scheduler, name: string, rate: number, offsetMs: number): NodeClock {
  if (!(rate > 0)) throw new Error(`nodeClock: bad rate ${rate}`)
  const live = new Set<SimEvent>()
  return {
    rate,
    now: () => offsetMs + sched.now() * rate,
    setTimeout(fn: () => void, ms: number): TimerHandle {
      const ev = sched.after(Math.max(0, ms) / rate, `${name}:timer`, () => {
        live.delete(ev)
        fn()
      })
      live.add(ev)
      return ev
    },
    clearTimeout(handle: TimerHandle): void {
      if (handle === undefined || handle === null) return
      const ev = handle as SimEvent
      sched.cancel(ev)
      live.delete(ev)
    },
    stopAll() {
      for (const ev of live) sched.cancel(ev)
      live.clear()
    },
  }
}
