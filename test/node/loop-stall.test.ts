// The busy-stall gauge counts a loop held by computing in full, and a loop held without the CPU
// (as when the OS preempts the process) hardly at all — unlike wall-clock lag.
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { registerLoopStallGauge } from '../../src/node/loop-stall.js'

async function busyStallS(registry: Registry): Promise<number> {
  const m = await registry.getSingleMetric('hopsd_eventloop_busy_stall_max_seconds')!.get()
  return m.values[0]!.value
}

/** Lets the sampler's timer run a few times. */
const turns = (): Promise<void> => new Promise((r) => setTimeout(r, 50))

describe('busy stall gauge', () => {
  it('reports a loop held by computation, not a loop held off the CPU, and resets on scrape', async () => {
    const registry = new Registry()
    const stop = registerLoopStallGauge(registry)
    try {
      await turns()
      await busyStallS(registry) // reset
      // Computing for 200 ms of CPU time (however long that takes on a loaded host).
      const cpuMs = (): number => {
        const u = process.cpuUsage()
        return (u.user + u.system) / 1000
      }
      const until = cpuMs() + 200
      while (cpuMs() < until);
      await turns()
      expect(await busyStallS(registry)).toBeGreaterThanOrEqual(0.15)
      // Reset by the scrape: nothing long since.
      await turns()
      expect(await busyStallS(registry)).toBeLessThan(0.15)
      // Blocked without using the CPU for 200 ms (what preemption looks like from inside).
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200)
      await turns()
      expect(await busyStallS(registry)).toBeLessThan(0.1)
    } finally {
      stop()
    }
  })
})
