/**
 * The job stream both schedulers get, from one seed: Poisson arrivals at a rate set to a fraction of
 * the cluster's capacity, sizes 1, 2, 4, 8 GPUs and gangs of 2 × 4 GPUs, durations uniform in a range
 * (real milliseconds on an accelerated clock: 1 ms of the run stands for about a minute of a real job).
 */
import { SeededRng } from '../../src/consensus/index.js'

export interface StreamJob {
  readonly seq: number
  /** Arrival, ms after the run's start. */
  readonly atMs: number
  readonly project: string
  readonly gpus: number
  readonly tasks: number
  readonly durationMs: number
}

export interface StreamOptions {
  readonly seed: number
  readonly durationMs: number
  readonly gpusTotal: number
  /** Offered GPU-time / capacity (0.9 = 90%). */
  readonly load: number
  readonly jobMsMin: number
  readonly jobMsMax: number
  readonly projects: readonly string[]
}

/** Job shapes and their shares: [gpus per task, tasks, share]. */
export const MIX: readonly (readonly [number, number, number])[] = [
  [1, 1, 0.4],
  [2, 1, 0.25],
  [4, 1, 0.2],
  [8, 1, 0.1],
  [4, 2, 0.05], // a gang: 2 tasks × 4 GPUs
]

export function meanGpusPerJob(): number {
  return MIX.reduce((s, [g, t, p]) => s + g * t * p, 0)
}

export function makeStream(o: StreamOptions): StreamJob[] {
  const rng = new SeededRng(o.seed)
  const u = (): number => rng.nextU32() / 0x1_0000_0000
  const meanMs = (o.jobMsMin + o.jobMsMax) / 2
  const ratePerMs = (o.load * o.gpusTotal) / (meanGpusPerJob() * meanMs)
  const out: StreamJob[] = []
  let t = 0
  for (let seq = 0; ; seq++) {
    t += -Math.log(1 - u()) / ratePerMs
    if (t >= o.durationMs) break
    let r = u()
    let shape = MIX[MIX.length - 1]!
    for (const m of MIX) {
      if (r < m[2]) {
        shape = m
        break
      }
      r -= m[2]
    }
    out.push({
      seq,
      atMs: t,
      project: o.projects[rng.nextInt(o.projects.length)]!,
      gpus: shape[0],
      tasks: shape[1],
      durationMs: Math.round(o.jobMsMin + u() * (o.jobMsMax - o.jobMsMin)),
    })
  }
  return out
}

/** GPU-ms of busy GPUs inside [from, to), from task intervals. */
export function busyGpuMs(
  intervals: readonly { startMs: number; endMs: number; gpus: number }[],
  from: number,
  to: number,
): number {
  let sum = 0
  for (const i of intervals) {
    const a = Math.max(i.startMs, from)
    const b = Math.min(i.endMs, to)
    if (b > a) sum += (b - a) * i.gpus
  }
  return sum
}
