/**
 * Publishes a worker's resource ad periodically (a heartbeat that also repairs lost messages) and soon
 * after every change, coalescing a burst of changes into one message.
 */
import type { Clock, TimerHandle } from './world.js'

export interface AdPublisherInit {
  readonly clock: Clock
  /** Sends the current ad (encodes and publishes it). Must not throw. */
  readonly publish: () => void
  /** Heartbeat period (default 1000 ms). */
  readonly intervalMs?: number
  /** Delay after a change, to coalesce changes that come together (default 5 ms; 0 = next timer turn). */
  readonly changeDelayMs?: number
}

export interface AdPublisher {
  /** Publishes now, then every intervalMs. */
  start(): void
  stop(): void
  /** The ad changed: publish within changeDelayMs (once for any number of calls meanwhile). */
  changed(): void
  /** Publications so far. */
  readonly published: number
}

export function createAdPublisher(init: AdPublisherInit): AdPublisher {
  const intervalMs = init.intervalMs ?? 1000
  const changeDelayMs = init.changeDelayMs ?? 5
  if (!(intervalMs > 0)) throw new RangeError(`intervalMs ${intervalMs}`)
  let heartbeat: TimerHandle | undefined
  let pending: TimerHandle | undefined
  let running = false
  let published = 0
  const send = (): void => {
    published++
    init.publish()
  }
  const beat = (): void => {
    if (!running) return
    send()
    heartbeat = init.clock.setTimeout(beat, intervalMs)
  }
  return {
    start() {
      if (running) return
      running = true
      beat()
    },
    stop() {
      running = false
      if (heartbeat !== undefined) init.clock.clearTimeout(heartbeat)
      if (pending !== undefined) init.clock.clearTimeout(pending)
      heartbeat = pending = undefined
    },
    changed() {
      if (!running || pending !== undefined) return
      pending = init.clock.setTimeout(() => {
        pending = undefined
        if (running) send()
      }, changeDelayMs)
    },
    get published() {
      return published
    },
  }
}
