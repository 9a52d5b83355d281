/**
 * The event loop's longest *busy* stall: prom-client's `nodejs_eventloop_lag_max_seconds` measures
 * wall time between loop turns, which on a loaded host includes the time the OS kept the process off
 * the CPU. This sampler runs a timer every `intervalMs` and, for each gap between two turns, takes the
 * smaller of the wall time and the process's CPU time over it: a long gap spent computing (an apply,
 * a walk) counts in full; one spent preempted counts only for what ran. Max since the previous scrape.
 * Process CPU includes the helper threads (GC, libuv), so under parallel work it may overstate: the
 * wall time caps it.
 */
import { performance } from 'node:perf_hooks'
import { Gauge, type Registry } from 'prom-client'

export const LOOP_STALL_SAMPLE_MS = 10

/** Registers `hopsd_eventloop_busy_stall_max_seconds` in `registry`; returns a function that stops it. */
export function registerLoopStallGauge(registry: Registry, intervalMs = LOOP_STALL_SAMPLE_MS): () => void {
  const cpuMs = (): number => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1000
  }
  let lastWall = performance.now()
  let lastCpu = cpuMs()
  let maxMs = 0
  const timer = setInterval(() => {
    const wall = performance.now()
    const cpu = cpuMs()
    maxMs = Math.max(maxMs, Math.min(wall - lastWall, cpu - lastCpu))
    lastWall = wall
    lastCpu = cpu
  }, intervalMs)
  timer.unref()
  new Gauge({
    name: 'hopsd_eventloop_busy_stall_max_seconds',
    help: `The longest gap between two turns of a ${intervalMs} ms timer, counting only the CPU time the process had in it (min of wall and process CPU), since the previous scrape: a stall of this process's own work, without time spent preempted.`,
    registers: [registry],
    collect() {
      this.set(maxMs / 1000)
      maxMs = 0
    },
  })
  return () => clearInterval(timer)
}
