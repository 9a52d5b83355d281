/**
 * The waiting jobs of one placing node, and the loop that places them. Jobs wait FIFO per project
 * (by job id: a job queued again keeps its place); projects take turns. When a project's head does not
 * fit anywhere in the view, smaller jobs behind it may go first (backfill), up to `backfillDepthMax`
 * deep — until the head has waited `headWaitMsMax`: then its project stops backfilling so that freed
 * GPUs gather for it instead of being taken by small jobs forever.
 *
 * A pass runs as soon as resources free up (an ad showing more free GPUs, CPUs or memory than before),
 * after each placement ends, and every `retryIntervalMs` while jobs wait. At most `inflightMax`
 * placements run at once. A pre-check against the view (with what this pass already launched counted)
 * keeps a pass from launching placements that cannot fit; the placer and the workers decide for real.
 */
import type { PlaceResult, Placer } from './placer.js'
import type { JobRecord } from './types.js'
import { JOB_STATE } from './types.js'
import { effectiveFreeGpus, fits, type TaskShape } from './placement.js'
import type { ResourceView, ViewEntry } from './view.js'
import type { Clock, TimerHandle } from './world.js'

export interface JobQueueInit {
  /** This node's id: it places the queued jobs whose `placer` is this node. */
  readonly self: string
  readonly placer: Pick<Placer, 'place'>
  readonly view: ResourceView
  readonly clock: Clock
  /** Placements running at once (default 32). */
  readonly inflightMax?: number
  /** A pass this often while jobs wait, whatever the ads say (default 1000 ms). */
  readonly retryIntervalMs?: number
  /**
   * A kick runs the pass this long after it (default 0: the next timer turn); triggers meanwhile join
   * it. Larger values make fewer, fuller passes when ads arrive by the thousand.
   */
  readonly passDelayMs?: number
  /** Jobs looked at behind each project's head (default 32). */
  readonly backfillDepthMax?: number
  /** After the head waited this long its project stops backfilling (default 60 s). */
  readonly headWaitMsMax?: number
  /** Bound on waiting jobs (default 100 000): more are refused by {@link JobQueue.add}. */
  readonly waitingMax?: number
  /**
   * Reads a job's committed record (after a conflict or an unknown commit, to see whether it still
   * waits). Optional: without it such jobs leave the queue until {@link JobQueue.add} brings them back.
   */
  readonly jobLookup?: (jobId: number) => Promise<JobRecord | undefined>
  /** Why a project may not place more now (its quota), or undefined: its jobs are skipped by passes. */
  readonly quotaExhausted?: (project: string) => string | undefined
  /** Called with every placement's outcome (metrics, bench). Must not throw. */
  readonly onResult?: (job: JobRecord, result: PlaceResult) => void
}

export class JobQueue {
  private readonly init: JobQueueInit
  private readonly waiting = new Map<string, JobRecord[]>()
  private readonly ids = new Set<number>()
  private readonly inflight = new Set<number>()
  private projects: string[] = []
  private turn = 0
  private passTimer: TimerHandle | undefined
  private retryTimer: TimerHandle | undefined
  private running = false
  private unsubscribe: (() => void) | undefined
  private readonly inflightMax: number

  constructor(init: JobQueueInit) {
    this.init = init
    this.inflightMax = init.inflightMax ?? 32
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.unsubscribe = this.init.view.onChange((e, prev) => {
      if (prev === undefined || more(e, prev)) this.kick()
    })
    this.kick()
  }

  stop(): void {
    this.running = false
    this.unsubscribe?.()
    if (this.passTimer !== undefined) this.init.clock.clearTimeout(this.passTimer)
    if (this.retryTimer !== undefined) this.init.clock.clearTimeout(this.retryTimer)
    this.passTimer = this.retryTimer = undefined
  }

  /** Jobs waiting (not counting placements in flight). */
  get size(): number {
    return this.ids.size - this.inflight.size
  }

  get inflightCount(): number {
    return this.inflight.size
  }

  /** Adds (or refreshes) a QUEUED job this node places; false when the queue is full. */
  add(job: JobRecord): boolean {
    if (job.state !== JOB_STATE.QUEUED) return false
    if (this.inflight.has(job.id)) return true
    if (this.ids.has(job.id)) {
      this.removeWaiting(job.id, job.project)
    } else if (this.ids.size >= (this.init.waitingMax ?? 100_000)) return false
    this.insert(job)
    this.kick()
    return true
  }

  /** Forgets a job (killed, placed by someone else). A placement in flight finishes on its own. */
  remove(jobId: number): void {
    if (!this.ids.has(jobId) || this.inflight.has(jobId)) return
    for (const [project, list] of this.waiting) {
      if (list.some((j) => j.id === jobId)) {
        this.removeWaiting(jobId, project)
        this.ids.delete(jobId)
        return
      }
    }
  }

  /** A job changed in the replicated state: wait for it when it is queued here, forget it otherwise. */
  onJobChange(job: JobRecord): void {
    if (job.state === JOB_STATE.QUEUED && job.placer === this.init.self) this.add(job)
    else this.remove(job.id)
  }

  /** Schedules a pass (coalesced). */
  kick(): void {
    if (!this.running || this.passTimer !== undefined) return
    this.passTimer = this.init.clock.setTimeout(() => {
      this.passTimer = undefined
      this.pass()
    }, this.init.passDelayMs ?? 0)
  }

  // ---- the pass

  private pass(): void {
    if (!this.running) return
    const free = new Map<string, { gpus: number; cpus: number; memoryMiB: number }>()
    const entries = [...this.init.view.all()]
    let hist: number[] | undefined
    /** Smallest GPU count of an unconstrained job found not to fit in this pass (larger ones won't either). */
    let minMiss = Infinity
    const now = this.init.clock.now()
    const order = [...this.projects]
    const projects = order.length
    if (projects > 0) this.turn %= projects
    let nextTurn = this.turn
    for (let k = 0; k < projects && this.inflight.size < this.inflightMax; k++) {
      const project = order[(this.turn + k) % projects]!
      const list = this.waiting.get(project)
      if (list === undefined || list.length === 0) continue
      if (this.init.quotaExhausted?.(project) !== undefined) continue
      const headWaited = now - list[0]!.queuedMs
      const depth = headWaited > (this.init.headWaitMsMax ?? 60_000) ? 1 : (this.init.backfillDepthMax ?? 32)
      const launch: JobRecord[] = []
      for (let i = 0; i < list.length && i < depth; i++) {
        if (this.inflight.size + launch.length >= this.inflightMax) break
        const job = list[i]!
        const plain = job.spec.gpuModel === '' && job.spec.zone === '' && job.spec.tasks === 1
        if (plain && job.spec.gpus >= minMiss) continue
        const gpusOnly =
          job.spec.gpuModel === '' && job.spec.zone === '' && job.spec.cpus === 0 && job.spec.memoryMiB === 0
        const fits = gpusOnly
          ? claimGpus((hist ??= histogram(entries)), job.spec.gpus, job.spec.tasks)
          : claim(entries, free, job)
        if (fits) launch.push(job)
        else if (plain) minMiss = Math.min(minMiss, job.spec.gpus)
      }
      for (const job of launch) this.launch(job)
      // Round robin: the next pass starts with the project after the last one that placed something.
      if (launch.length > 0) nextTurn = (this.turn + k + 1) % projects
    }
    this.turn = nextTurn
    this.armRetry()
  }

  private launch(job: JobRecord): void {
    this.inflight.add(job.id)
    this.removeWaiting(job.id, job.project)
    void this.init.placer.place(job).then(
      (result) => this.settle(job, result),
      () => this.settle(job, undefined),
    )
  }

  private settle(job: JobRecord, result: PlaceResult | undefined): void {
    this.inflight.delete(job.id)
    if (result !== undefined) this.init.onResult?.(job, result)
    if (result?.placed) {
      this.ids.delete(job.id)
    } else if (
      result === undefined ||
      result.code === 'NO_CAPACITY' ||
      result.code === 'QUOTA_EXHAUSTED' ||
      result.code === 'GPU_CONFLICT'
    ) {
      this.insert(job)
    } else {
      // The job moved on (conflict) or the commit's fate is unknown: ask the replicated state.
      this.ids.delete(job.id)
      const lookup = this.init.jobLookup
      if (lookup !== undefined)
        void lookup(job.id).then(
          (j) => j !== undefined && this.onJobChange(j),
          () => this.add(job),
        )
    }
    // A placement that ended frees a slot: look again at once. A job that could not be placed waits for
    // the next trigger (an ad with more free resources, the retry timer) — never a busy loop.
    if (result?.placed && this.size > 0) this.kick()
    else this.armRetry()
  }

  private armRetry(): void {
    if (this.retryTimer !== undefined || this.size === 0 || !this.running) return
    this.retryTimer = this.init.clock.setTimeout(() => {
      this.retryTimer = undefined
      this.kick()
    }, this.init.retryIntervalMs ?? 1000)
  }

  private insert(job: JobRecord): void {
    let list = this.waiting.get(job.project)
    if (list === undefined) {
      this.waiting.set(job.project, (list = []))
      this.projects.push(job.project)
      this.projects.sort()
    }
    // Mostly appends: search from the end.
    let i = list.length
    while (i > 0 && list[i - 1]!.id > job.id) i--
    list.splice(i, 0, job)
    this.ids.add(job.id)
  }

  private removeWaiting(jobId: number, project: string): void {
    const list = this.waiting.get(project)
    if (list === undefined) return
    const i = list.findIndex((j) => j.id === jobId)
    if (i >= 0) list.splice(i, 1)
    if (list.length === 0) {
      this.waiting.delete(project)
      this.projects = this.projects.filter((p) => p !== project)
    }
  }
}

/** How many entries have exactly k GPUs free (this placer's holds counted), k = 0.. */
function histogram(entries: readonly ViewEntry[]): number[] {
  const hist: number[] = []
  for (const e of entries) {
    const k = Math.max(0, effectiveFreeGpus(e, ''))
    while (hist.length <= k) hist.push(0)
    hist[k]!++
  }
  return hist
}

/**
 * The fast pre-check for jobs that ask only for GPUs: claims `tasks` × `gpus` in the histogram, tightest
 * first, all or none — O(GPUs per node) per task instead of a scan of the view. (Claims made by the
 * scan of constrained jobs in the same pass are not seen here, nor the reverse: a pre-check only.)
 */
function claimGpus(hist: number[], gpus: number, tasks: number): boolean {
  const taken: [number, number][] = []
  for (let t = 0; t < tasks; t++) {
    let k = gpus
    while (k < hist.length && hist[k]! === 0) k++
    if (k >= hist.length) {
      for (const [from, to] of taken.reverse()) {
        hist[to]!--
        hist[from]!++
      }
      return false
    }
    hist[k]!--
    hist[k - gpus]!++
    taken.push([k, k - gpus])
  }
  return true
}

/** Whether a job fits on some entry with what this pass claimed counted; claims it there (first fit). */
function claim(
  entries: readonly ViewEntry[],
  used: Map<string, { gpus: number; cpus: number; memoryMiB: number }>,
  job: JobRecord,
): boolean {
  const shape: TaskShape = job.spec
  let tasks = job.spec.tasks
  const taken: [string, { gpus: number; cpus: number; memoryMiB: number }][] = []
  for (const e of entries) {
    if (tasks === 0) break
    let u = used.get(e.ad.node) ?? { gpus: 0, cpus: 0, memoryMiB: 0 }
    while (tasks > 0 && fits(e, shape, u)) {
      u = { gpus: u.gpus + shape.gpus, cpus: u.cpus + shape.cpus, memoryMiB: u.memoryMiB + shape.memoryMiB }
      tasks--
    }
    taken.push([e.ad.node, u])
  }
  if (tasks > 0) return false
  for (const [node, u] of taken) used.set(node, u)
  return true
}

function more(e: ViewEntry, prev: ViewEntry): boolean {
  return (
    effectiveFreeGpus(e, '') > effectiveFreeGpus(prev, '') ||
    e.ad.cpusFree > prev.ad.cpusFree ||
    e.ad.memoryMiBFree > prev.ad.memoryMiBFree
  )
}
