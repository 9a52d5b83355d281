/**
 * The metadata leader's reconcile loop for jobs: it finishes or undoes what dead nodes left halfway.
 * - A running job with a task on a worker that left the view (silent longer than the view's expiry):
 *   MarkJobLost (queued again while retries remain) — or RequeueJob if none of its tasks had started.
 * - A running job none of whose tasks started within `startTimeoutMs` of its placement, whose workers'
 *   ads do not list it: the placement was orphaned (the placer died between PlaceJob and Commit and the
 *   holds lapsed unconfirmed, or a Commit was refused): RequeueJob.
 * - A queued job whose placer is no longer live: AdoptJob, placed by this node from now on.
 * Every action is a command the state machine revalidates, so a reconcile acting on a stale read costs a
 * refused command, never a wrong state. It acts only after it has watched the view for one expiry period
 * (a fresh leader's empty view would make every worker look dead).
 */
import { isSchedError } from './errors.js'
import type { JobsModule } from './jobs-module.js'
import type { JobProposer } from './proposer.js'
import { JOB_STATE, type JobRecord } from './types.js'
import type { ResourceView } from './view.js'
import type { Clock, TimerHandle } from './world.js'

export type ReconcileAction =
  | { readonly kind: 'markLost'; readonly jobId: number; readonly attempt: number; readonly reason: string }
  | { readonly kind: 'requeue'; readonly jobId: number; readonly attempt: number; readonly reason: string }
  | { readonly kind: 'adopt'; readonly jobId: number; readonly placer: string }

export interface ReconcileInput {
  readonly running: readonly JobRecord[]
  /** Queued jobs per placer (JobsModule.placersWithQueuedJobs / queuedFor). */
  readonly queuedByPlacer: ReadonlyMap<string, readonly JobRecord[]>
  readonly view: ResourceView
  readonly nowMs: number
  readonly startTimeoutMs: number
  readonly isPlacerLive: (node: string) => boolean
  readonly self: string
  readonly actionsMax: number
}

/** What the loop would do now (pure: reads its input, returns commands to propose). */
export function reconcileActions(input: ReconcileInput): ReconcileAction[] {
  const out: ReconcileAction[] = []
  for (const job of input.running) {
    if (out.length >= input.actionsMax) return out
    if (job.state !== JOB_STATE.RUNNING) continue
    const started = job.tasks.some((t) => t.started)
    const gone = job.tasks.find((t) => input.view.get(t.node) === undefined)
    if (gone !== undefined) {
      const reason = `worker ${gone.node} is gone`
      out.push(
        started
          ? { kind: 'markLost', jobId: job.id, attempt: job.attempts, reason }
          : { kind: 'requeue', jobId: job.id, attempt: job.attempts, reason },
      )
      continue
    }
    if (!started && input.nowMs - job.placedMs > input.startTimeoutMs) {
      const listed = job.tasks.some((t) => input.view.get(t.node)?.ad.runningJobs.includes(job.id))
      if (!listed)
        out.push({
          kind: 'requeue',
          jobId: job.id,
          attempt: job.attempts,
          reason: `no task started within ${input.startTimeoutMs} ms`,
        })
    }
  }
  for (const [placer, jobs] of input.queuedByPlacer) {
    if (placer === input.self || input.isPlacerLive(placer)) continue
    for (const job of jobs) {
      if (out.length >= input.actionsMax) return out
      out.push({ kind: 'adopt', jobId: job.id, placer: input.self })
    }
  }
  return out
}

export interface ReconcilerInit {
  readonly self: string
  readonly clock: Clock
  readonly jobs: () => JobsModule
  readonly view: ResourceView
  readonly propose: JobProposer
  /** Whether a node is up (membership); placers not live lose their queued jobs to this node. */
  readonly isPlacerLive: (node: string) => boolean
  /** Default 5 s. */
  readonly intervalMs?: number
  /** Default 30 s. */
  readonly startTimeoutMs?: number
  /** Commands per pass (default 256). */
  readonly actionsMax?: number
  /** Called with the jobs this node adopted (its queue takes them). */
  readonly onAdopted?: (jobIds: readonly number[]) => void
}

export class Reconciler {
  private readonly init: ReconcilerInit
  private timer: TimerHandle | undefined
  private startedMs = 0
  private running = false

  constructor(init: ReconcilerInit) {
    this.init = init
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.startedMs = this.init.clock.now()
    this.arm()
  }

  stop(): void {
    this.running = false
    if (this.timer !== undefined) this.init.clock.clearTimeout(this.timer)
    this.timer = undefined
  }

  /** One pass (also callable directly); returns the actions whose commands committed. */
  async runOnce(): Promise<ReconcileAction[]> {
    const now = this.init.clock.now()
    if (now - this.startedMs < this.init.view.expiryMs) return []
    const jobs = this.init.jobs()
    const queuedByPlacer = new Map<string, JobRecord[]>()
    for (const p of jobs.placersWithQueuedJobs())
      queuedByPlacer.set(p, jobs.queuedFor(p, this.init.actionsMax ?? 256))
    const actions = reconcileActions({
      running: jobs.running(),
      queuedByPlacer,
      view: this.init.view,
      nowMs: now,
      startTimeoutMs: this.init.startTimeoutMs ?? 30_000,
      isPlacerLive: this.init.isPlacerLive,
      self: this.init.self,
      actionsMax: this.init.actionsMax ?? 256,
    })
    const done: ReconcileAction[] = []
    for (const a of actions) {
      try {
        if (a.kind === 'markLost')
          await this.init.propose({ markJobLost: { jobId: a.jobId, attempt: a.attempt, reason: a.reason } })
        else if (a.kind === 'requeue')
          await this.init.propose({ requeueJob: { jobId: a.jobId, attempt: a.attempt, reason: a.reason } })
        else await this.init.propose({ adoptJob: { jobId: a.jobId, placer: a.placer } })
        done.push(a)
      } catch (err) {
        if (!isSchedError(err)) break // the group cannot commit now: next pass
      }
    }
    const adopted = done.filter((a) => a.kind === 'adopt').map((a) => a.jobId)
    if (adopted.length > 0) this.init.onAdopted?.(adopted)
    return done
  }

  private arm(): void {
    if (!this.running) return
    this.timer = this.init.clock.setTimeout(() => {
      this.timer = undefined
      void this.runOnce().finally(() => this.arm())
    }, this.init.intervalMs ?? 5000)
  }
}
