// A clock the test moves by hand: timers fire only inside advance(), in due order, so batching and
// deadline decisions replay exactly.
import type { Clock, TimerHandle } from '../../src/serving/index.js'

export class FakeClock implements Clock {
  private nowMs = 0
  private seq = 0
  private readonly timers = new Map<number, { dueMs: number; fn: () => void }>()

  now(): number {
    return this.nowMs
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq
    this.timers.set(id, { dueMs: this.nowMs + Math.max(0, ms), fn })
    return id
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as number)
  }

  /** Timers not yet fired. */
  pending(): number {
    return this.timers.size
  }

  /** Moves time forward by ms, firing every timer that falls due, in order (and the ones they set). */
  async advance(ms: number): Promise<void> {
    const endMs = this.nowMs + ms
    for (;;) {
      let next: [number, { dueMs: number; fn: () => void }] | undefined
      for (const entry of this.timers)
        if (entry[1].dueMs <= endMs && (next === undefined || entry[1].dueMs < next[1].dueMs)) next = entry
      if (next === undefined) break
      this.timers.delete(next[0])
      this.nowMs = next[1].dueMs
      next[1].fn()
      await flush()
    }
    this.nowMs = endMs
    await flush()
  }
}

/** Lets settled promises run their callbacks. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve()
}
