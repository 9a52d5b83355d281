/**
 * The baseline: a centralized scheduler with perfect knowledge — it holds every worker's exact free GPU
 * count, places synchronously (no messages, no Raft, no gossip), best fit over ALL workers (not a
 * sample) — with the same queue policy as the distributed queue (FIFO per project, projects in turn,
 * backfill up to the same depth behind a head that does not fit, the same head-wait guard). So the
 * difference between the two runs is what distribution costs: sampling instead of a full scan, stale
 * views, refusals and retries, message and commit latency.
 */
import type { Clock } from '../../src/scheduler/index.js'
import type { StreamJob } from './stream.js'

export interface BaselineOptions {
  readonly workers: number
  readonly gpusPerWorker: number
  readonly backfillDepthMax: number
  readonly headWaitMsMax: number
  readonly clock: Clock
}

export interface TaskInterval {
  readonly startMs: number
  endMs: number
  readonly gpus: number
}

export class CentralFifo {
  /** Workers by free GPUs: buckets[k] = workers with exactly k free. */
  private readonly buckets: Set<number>[]
  private readonly free: number[]
  private readonly waiting = new Map<string, { job: StreamJob; queuedMs: number }[]>()
  private projects: string[] = []
  private turn = 0
  readonly intervals: TaskInterval[] = []
  readonly waitsMs: number[] = []
  ended = 0
  private scheduled = false

  constructor(private readonly o: BaselineOptions) {
    this.free = Array.from({ length: o.workers }, () => o.gpusPerWorker)
    this.buckets = Array.from({ length: o.gpusPerWorker + 1 }, () => new Set<number>())
    for (let w = 0; w < o.workers; w++) this.buckets[o.gpusPerWorker]!.add(w)
  }

  arrive(job: StreamJob): void {
    let list = this.waiting.get(job.project)
    if (list === undefined) {
      this.waiting.set(job.project, (list = []))
      this.projects.push(job.project)
      this.projects.sort()
    }
    list.push({ job, queuedMs: this.o.clock.now() })
    this.kick()
  }

  /** Coalesces the passes of one event-loop turn (as the distributed queue's timer does). */
  private kick(): void {
    if (this.scheduled) return
    this.scheduled = true
    this.o.clock.setTimeout(() => {
      this.scheduled = false
      this.pass()
    }, 0)
  }

  private pass(): void {
    const now = this.o.clock.now()
    const order = [...this.projects]
    const n = order.length
    if (n === 0) return
    this.turn %= n
    let nextTurn = this.turn
    let minMiss = Infinity
    for (let k = 0; k < n; k++) {
      const project = order[(this.turn + k) % n]!
      const list = this.waiting.get(project)!
      if (list.length === 0) continue
      const depth = now - list[0]!.queuedMs > this.o.headWaitMsMax ? 1 : this.o.backfillDepthMax
      let launched = false
      for (let i = 0; i < list.length && i < depth;) {
        const { job, queuedMs } = list[i]!
        const plain = job.tasks === 1
        if (plain && job.gpus >= minMiss) {
          i++
          continue
        }
        const slots = this.bestFit(job.gpus, job.tasks)
        if (slots === undefined) {
          if (plain) minMiss = Math.min(minMiss, job.gpus)
          i++
          continue
        }
        list.splice(i, 1)
        launched = true
        this.start(job, slots, now - queuedMs)
      }
      if (launched) nextTurn = (this.turn + k + 1) % n
    }
    this.turn = nextTurn
  }

  /** Workers for `tasks` tasks of `gpus` each, tightest first; undefined when they do not all fit. */
  private bestFit(gpus: number, tasks: number): number[] | undefined {
    const taken: number[] = []
    const claimed = new Map<number, number>()
    for (let t = 0; t < tasks; t++) {
      let chosen: number | undefined
      for (let k = gpus; k <= this.o.gpusPerWorker && chosen === undefined; k++) {
        for (const w of this.buckets[k]!) {
          if (this.free[w]! - (claimed.get(w) ?? 0) >= gpus) {
            chosen = w
            break
          }
        }
      }
      // A worker claimed by an earlier task of this gang may still hold this one.
      if (chosen === undefined) return undefined
      claimed.set(chosen, (claimed.get(chosen) ?? 0) + gpus)
      taken.push(chosen)
    }
    return taken
  }

  private start(job: StreamJob, workers: number[], waitMs: number): void {
    const now = this.o.clock.now()
    this.waitsMs.push(waitMs)
    for (const w of workers) this.take(w, job.gpus)
    const interval: TaskInterval = { startMs: now, endMs: Infinity, gpus: job.gpus * job.tasks }
    this.intervals.push(interval)
    this.o.clock.setTimeout(() => {
      interval.endMs = this.o.clock.now()
      for (const w of workers) this.take(w, -job.gpus)
      this.ended++
      this.kick()
    }, job.durationMs)
  }

  private take(w: number, gpus: number): void {
    this.buckets[this.free[w]!]!.delete(w)
    this.free[w] = this.free[w]! - gpus
    this.buckets[this.free[w]!]!.add(w)
  }
}
