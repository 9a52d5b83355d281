/**
 * The worker side of the scheduler, one per gpu node: it owns the node's {@link ReservationTable} (the
 * only authority over its GPUs), answers placers' Reserve / Release / Commit, publishes its resource ad
 * (periodically and on every change), starts committed tasks through a {@link TaskRunner} with exactly
 * their GPUs, and commits their start and end.
 *
 * Ordering rules that keep the authorities in step:
 * - A task starts only after its placement is committed in Raft and the worker has read it back
 *   (`jobLookup`): the Commit message, or — if that message is lost — the reservation's expiry, which
 *   looks the job up before letting the hold go.
 * - A task's GPUs are offered again only after its end (JobFinished) is committed, so the replicated
 *   state never shows a GPU free that the worker still holds, nor the reverse for long.
 * - A restarted worker ({@link WorkerAgent.recover}) kills what its previous incarnation left running,
 *   drops its reservations, and reports the jobs it no longer runs (MarkJobLost, or RequeueJob when they
 *   never started).
 */
import { ADS_TOPIC, encodeAd, type ResourceAd } from './ads.js'
import { isSchedError } from './errors.js'
import type { TaskEndReason } from './executor.js'
import type { JobProposer } from './proposer.js'
import { createAdPublisher, type AdPublisher } from './publisher.js'
import { taskEnv } from './rendezvous.js'
import { ReservationTable, type Reservation, type ReservationBug } from './reservations.js'
import {
  serveWorkerRpc,
  type CommitReply,
  type CommitRequest,
  type ReserveReply,
  type ReserveRequest,
} from './rpc.js'
import type { SchedTransport } from './transport.js'
import { JOB_STATE, type GpuDevice, type GpuVendor, type JobRecord } from './types.js'
import { cryptoRng, uniform, type Clock, type Rng, type TimerHandle } from './world.js'

/** What a runner needs to start one task. */
export interface TaskLaunch {
  readonly job: JobRecord
  readonly rank: number
  /** The reserved devices, exactly. */
  readonly gpus: readonly GpuDevice[]
  /** The scheduler-made environment (visible devices, rendezvous, the job's variables). */
  readonly env: Readonly<Record<string, string>>
}

export interface TaskExitReport {
  readonly exitCode: number
  readonly signal: string
  readonly startedMs: number
  readonly endedMs: number
  readonly reason: TaskEndReason
  readonly message: string
}

export interface TaskEvents {
  /** The process runs (once). */
  onStart(info: { startedMs: number; pid?: number }): void
  /** The task ended, or never started (once, after onStart if that was called). */
  onExit(exit: TaskExitReport): void
}

export interface TaskHandle {
  /** Stops the task (SIGTERM, then SIGKILL after the runner's grace); idempotent. */
  stop(reason: string): void
}

/**
 * Runs tasks: the executor for real processes (see `executorRunner`), a simulated runner in tests and
 * the bench. `start` must not throw; failures are reported through `onExit`.
 */
export interface TaskRunner {
  start(launch: TaskLaunch, events: TaskEvents): TaskHandle
  /** Kills what a previous incarnation left running (process group `pid`), if the runner can. */
  killOrphan?(pid: number): void
}

/** What a worker persists so that its next incarnation knows what it had promised. */
export interface WorkerState {
  readonly reservations: readonly Reservation[]
  /** Reservation id → process group of its task. */
  readonly pids: Readonly<Record<string, number>>
}

export type WorkerBug = ReservationBug | 'start-on-reserve'

export interface WorkerInit {
  readonly node: string
  readonly zone: string
  /** Address peers reach this node's tasks at (a gang's MASTER_ADDR); default the node id. */
  readonly addr?: string
  /** Changes on every start (default: the clock's now). */
  readonly incarnation?: number
  readonly gpus: readonly GpuDevice[]
  readonly cpus: number
  readonly memoryMiB: number
  /** Picks CUDA_VISIBLE_DEVICES or ROCR_VISIBLE_DEVICES; default from the GPUs (nvidia without any). */
  readonly vendor?: GpuVendor
  readonly transport: SchedTransport
  readonly clock: Clock
  readonly rng?: Rng
  readonly runner: TaskRunner
  readonly propose: JobProposer
  /**
   * Reads a job as committed — at least everything committed before the call (a linearizable read).
   * Undefined when there is no such job; rejects when the metadata group cannot be read now.
   */
  readonly jobLookup: (jobId: number) => Promise<JobRecord | undefined>
  readonly publishIntervalMs?: number
  /** Ad delay after resources were freed (default 5 ms). */
  readonly changeDelayMs?: number
  /** Ad delay after resources were only taken (default: changeDelayMs; see publisher.ts). */
  readonly takenDelayMs?: number
  /** Longest hold a placer may ask for (default 30 s). */
  readonly reservationTtlMsMax?: number
  readonly portRange?: readonly [number, number]
  readonly reservationsMax?: number
  /** Retries of a start/end report that could not be committed: backoff [base, max] ms. */
  readonly reportBackoffMs?: readonly [number, number]
  /** Lookups of an expired hold's job that may fail before the hold is let go (default 3). */
  readonly expiryLookupsMax?: number
  /** Called after every change of the reservations (persist them; must not throw). */
  readonly persist?: (state: WorkerState) => void
  /** What the previous incarnation persisted: loaded, then settled by {@link WorkerAgent.recover}. */
  readonly restored?: WorkerState
  readonly knownBugs?: ReadonlySet<WorkerBug>
}

/** A task of this worker (for checkers and the node's status). */
export interface WorkerTask {
  readonly reservationId: string
  readonly jobId: number
  readonly attempt: number
  readonly rank: number
  readonly gpus: readonly string[]
  readonly started: boolean
}

interface TaskEntry {
  readonly reservationId: string
  readonly jobId: number
  readonly attempt: number
  readonly rank: number
  readonly gpus: readonly string[]
  handle: TaskHandle | undefined
  started: boolean
  stopping: boolean
}

export class WorkerAgent {
  readonly node: string
  private readonly init: WorkerInit
  private readonly table: ReservationTable
  private readonly clock: Clock
  private readonly rng: Rng
  private readonly incarnation: number
  private readonly vendor: GpuVendor
  private readonly publisher: AdPublisher
  private readonly ttlMax: number
  private readonly tasks = new Map<string, TaskEntry>()
  private readonly timers = new Map<string, TimerHandle>()
  private readonly pids = new Map<string, number>()
  private readonly otherTimers = new Set<TimerHandle>()
  private seq = 0
  private adCache: { seq: number; ad: ResourceAd; bytes?: Uint8Array } | undefined
  private running = false
  private readonly bugs: ReadonlySet<WorkerBug>

  constructor(init: WorkerInit) {
    this.init = init
    this.node = init.node
    this.clock = init.clock
    this.rng = init.rng ?? cryptoRng
    this.incarnation = init.incarnation ?? init.clock.now()
    this.vendor = init.vendor ?? init.gpus[0]?.vendor ?? 'nvidia'
    this.ttlMax = init.reservationTtlMsMax ?? 30_000
    this.bugs = init.knownBugs ?? new Set()
    this.table = new ReservationTable({
      gpus: init.gpus,
      cpus: init.cpus,
      memoryMiB: init.memoryMiB,
      portRange: init.portRange,
      reservationsMax: init.reservationsMax,
      knownBugs: new Set([...this.bugs].filter((b): b is ReservationBug => b === 'double-reserve')),
    })
    if (init.restored) {
      this.table.restore(init.restored.reservations)
      for (const [id, pid] of Object.entries(init.restored.pids)) this.pids.set(id, pid)
    }
    this.publisher = createAdPublisher({
      clock: init.clock,
      intervalMs: init.publishIntervalMs,
      changeDelayMs: init.changeDelayMs,
      takenDelayMs: init.takenDelayMs,
      publish: () => this.init.transport.publish(ADS_TOPIC, this.adBytes()),
    })
  }

  /** Serves requests and starts publishing. */
  start(): void {
    if (this.running) return
    this.running = true
    serveWorkerRpc(this.init.transport, {
      reserve: (req) => this.reserve(req),
      release: (id) => this.release(id),
      commit: (req) => this.commit(req),
    })
    this.publisher.start()
  }

  /**
   * Stops serving and publishing, and clears its timers. Tasks are left as they are unless
   * `stopTasks` (a graceful shutdown stops them; their ends are still reported while the proposer works).
   */
  stop(opts: { stopTasks?: boolean } = {}): void {
    this.running = false
    this.init.transport.handle(undefined)
    this.publisher.stop()
    for (const t of this.timers.values()) this.clock.clearTimeout(t)
    for (const t of this.otherTimers) this.clock.clearTimeout(t)
    this.timers.clear()
    this.otherTimers.clear()
    if (opts.stopTasks) for (const t of this.tasks.values()) t.handle?.stop('worker stopping')
  }

  /** The node's ad now. */
  ad(): ResourceAd {
    if (this.adCache?.seq === this.seq) return this.adCache.ad
    const jobs = new Set<number>()
    for (const r of this.table.bound()) jobs.add(r.jobId)
    const ad: ResourceAd = {
      node: this.node,
      zone: this.init.zone,
      gpus: this.table.gpus.map((g) => ({
        uuid: g.uuid,
        index: g.index,
        model: g.model,
        memoryMiB: g.memoryMiB,
        allocated: this.table.ownerOf(g.uuid) !== undefined,
        healthy: g.healthy,
        vendor: g.vendor,
      })),
      cpus: this.init.cpus,
      memoryMiB: this.init.memoryMiB,
      cpusFree: this.table.cpusFree,
      memoryMiBFree: this.table.memoryMiBFree,
      runningJobs: [...jobs].sort((a, b) => a - b),
      seq: this.seq,
      incarnation: this.incarnation,
      addr: this.init.addr ?? this.node,
    }
    this.adCache = { seq: this.seq, ad }
    return ad
  }

  /** Reservations as the table holds them (checkers, status). */
  reservations(): Reservation[] {
    return this.table.all()
  }

  /** Tasks bound on this worker (started or starting). */
  runningTasks(): WorkerTask[] {
    return [...this.tasks.values()].map((t) => ({
      reservationId: t.reservationId,
      jobId: t.jobId,
      attempt: t.attempt,
      rank: t.rank,
      gpus: t.gpus,
      started: t.started,
    }))
  }

  /** New device list from discovery (health changes): published at once. */
  setGpus(gpus: readonly GpuDevice[]): void {
    this.table.setGpus(gpus)
    this.changed()
  }

  /**
   * A job changed in the replicated state: stop its tasks here when it was killed, or no longer runs
   * (at this attempt) — a gang whose other task failed, a run marked lost while this worker lived.
   */
  onJobChange(job: JobRecord): void {
    for (const t of this.tasks.values()) {
      if (t.jobId !== job.id || t.stopping) continue
      const gone = job.state !== JOB_STATE.RUNNING || job.attempts !== t.attempt
      if (gone || job.killRequested) {
        t.stopping = true
        t.handle?.stop(
          job.killRequested
            ? job.reason || 'killed'
            : `job is ${job.state === JOB_STATE.RUNNING ? 'at another attempt' : 'over'}`,
        )
      }
    }
  }

  /**
   * A job no longer has a task on this node in the replicated state (re-queued after it was marked lost,
   * or gone): stop its tasks here. For a worker that reads its jobs through a metadata node, which shows
   * it only the jobs with a task on it.
   */
  onJobGone(jobId: number): void {
    for (const t of this.tasks.values()) {
      if (t.jobId !== jobId || t.stopping) continue
      t.stopping = true
      t.handle?.stop('job no longer runs here')
    }
  }

  /**
   * After a restart: kills what the previous incarnation left running, drops every reservation it
   * persisted, and settles the jobs the replicated state places here but this worker no longer runs:
   * RequeueJob when none of their tasks started, MarkJobLost otherwise. `jobsHere`: the running jobs with
   * a task on this node (JobsModule.runningOn). Returns the job ids settled.
   */
  async recover(jobsHere: readonly JobRecord[]): Promise<{ requeued: number[]; lost: number[] }> {
    for (const r of this.table.all()) {
      if (this.tasks.has(r.id)) continue
      const pid = this.pids.get(r.id)
      if (pid !== undefined) this.init.runner.killOrphan?.(pid)
      this.pids.delete(r.id)
      this.table.unbind(r.id)
    }
    this.changed()
    const requeued: number[] = []
    const lost: number[] = []
    for (const job of jobsHere) {
      if (job.state !== JOB_STATE.RUNNING) continue
      const mine = job.tasks.filter((t) => t.node === this.node)
      if (mine.length === 0) continue
      if (
        mine.every((t) =>
          [...this.tasks.values()].some(
            (x) => x.jobId === job.id && x.attempt === job.attempts && x.rank === t.rank,
          ),
        )
      )
        continue
      const started = job.tasks.some((t) => t.started)
      try {
        if (started) {
          await this.init.propose({
            markJobLost: { jobId: job.id, attempt: job.attempts, reason: `worker ${this.node} restarted` },
          })
          lost.push(job.id)
        } else {
          await this.init.propose({
            requeueJob: {
              jobId: job.id,
              attempt: job.attempts,
              reason: `worker ${this.node} restarted before it started`,
            },
          })
          requeued.push(job.id)
        }
      } catch (err) {
        if (!isSchedError(err)) throw err // a refusal: someone settled it first
      }
    }
    return { requeued, lost }
  }

  // ---- requests

  private reserve(req: ReserveRequest): ReserveReply {
    const ttlMs = Math.min(Math.max(0, req.ttlMs), this.ttlMax)
    const out = this.table.reserve({ ...req, ttlMs }, this.clock.now())
    if (!out.ok) return { ok: false, reason: out.reason, ad: this.ad() }
    const r = out.reservation
    if (!out.repeated) {
      this.armExpiry(r.id, ttlMs)
      this.changed('taken')
      if (this.bugs.has('start-on-reserve')) void this.startOnReserve(r)
    }
    return { ok: true, gpus: r.gpus, port: r.port, ad: this.ad() }
  }

  private release(id: string): boolean {
    const released = this.table.release(id)
    if (released) {
      this.disarm(id)
      this.changed()
    }
    return released
  }

  private async commit(req: CommitRequest): Promise<CommitReply> {
    const r = this.table.get(req.reservationId)
    if (r === undefined)
      return { ok: false, reason: `reservation ${req.reservationId} is gone (expired or released)` }
    if (r.jobId !== req.jobId || r.attempt !== req.attempt)
      return { ok: false, reason: `reservation ${r.id} is for job ${r.jobId} attempt ${r.attempt}` }
    if (r.state === 'bound') return { ok: true }
    let job: JobRecord | undefined
    try {
      job = await this.init.jobLookup(req.jobId)
    } catch (err) {
      // Cannot confirm now: keep the hold (its expiry looks again) and let the placer know.
      return { ok: false, reason: `cannot read job ${req.jobId}: ${(err as Error).message}` }
    }
    const current = this.table.get(r.id)
    if (current === undefined) return { ok: false, reason: `reservation ${r.id} expired meanwhile` }
    if (current.state === 'bound') return { ok: true }
    const why = placementMismatch(job, current, this.node)
    if (why !== undefined) {
      this.release(r.id)
      return { ok: false, reason: why }
    }
    this.bindAndLaunch(current, job!)
    return { ok: true }
  }

  // ---- reservations' lifecycle

  private armExpiry(id: string, ms: number): void {
    this.disarm(id)
    this.timers.set(
      id,
      this.clock.setTimeout(() => {
        this.timers.delete(id)
        void this.onExpiry(id, 0)
      }, ms),
    )
  }

  private disarm(id: string): void {
    const t = this.timers.get(id)
    if (t !== undefined) this.clock.clearTimeout(t)
    this.timers.delete(id)
  }

  /** A hold lapsed: if its placement did commit (the Commit message was lost), bind and start; else let go. */
  private async onExpiry(id: string, failures: number): Promise<void> {
    const r = this.table.get(id)
    if (r === undefined || r.state !== 'held' || !this.running) return
    let job: JobRecord | undefined
    try {
      job = await this.init.jobLookup(r.jobId)
    } catch {
      if (failures + 1 < (this.init.expiryLookupsMax ?? 3)) {
        this.later(() => void this.onExpiry(id, failures + 1), this.backoff(failures))
        return
      }
      job = undefined // could not confirm: let it go (Raft's GPU bindings still refuse a conflicting placement)
    }
    const current = this.table.get(id)
    if (current === undefined || current.state !== 'held' || !this.running) return
    if (placementMismatch(job, current, this.node) === undefined) this.bindAndLaunch(current, job!)
    else this.release(id)
  }

  private bindAndLaunch(r: Reservation, job: JobRecord): void {
    const bound = this.table.bind(r.id, job.id, job.attempts)
    if (!bound.ok || this.tasks.has(r.id)) return
    this.disarm(r.id)
    this.changed('quiet') // the allocation is the same: the next ad carries runningJobs
    this.launch(r, job)
  }

  private launch(r: Reservation, job: JobRecord): void {
    const entry: TaskEntry = {
      reservationId: r.id,
      jobId: job.id,
      attempt: r.attempt,
      rank: r.rank,
      gpus: r.gpus,
      handle: undefined,
      started: false,
      stopping: false,
    }
    this.tasks.set(r.id, entry)
    const devices = r.gpus
      .map((u) => this.table.gpus.find((g) => g.uuid === u)!)
      .filter((g) => g !== undefined)
    const launch: TaskLaunch = {
      job,
      rank: r.rank,
      gpus: devices,
      env: taskEnv(
        job,
        r.rank,
        r.gpus.map((u) => this.table.gpus.find((g) => g.uuid === u)?.visible ?? u),
        this.vendor,
      ),
    }
    entry.handle = this.init.runner.start(launch, {
      onStart: ({ startedMs, pid }) => {
        entry.started = true
        if (pid !== undefined) {
          this.pids.set(r.id, pid)
          this.persist()
        }
        void this.report(entry, {
          jobStarted: { jobId: job.id, attempt: r.attempt, rank: r.rank, startedMs },
        })
      },
      onExit: (exit) => {
        void this.report(entry, {
          jobFinished: {
            jobId: job.id,
            attempt: r.attempt,
            rank: r.rank,
            exitCode: exit.exitCode,
            signal: exit.signal,
            startedMs: exit.startedMs,
            endedMs: exit.endedMs,
            reason: exit.reason === 'exited' || exit.reason === 'stopped' ? '' : exit.message || exit.reason,
          },
        }).then(() => this.finishTask(entry))
      },
    })
  }

  private async startOnReserve(r: Reservation): Promise<void> {
    // Planted bug: starts a task before its placement is committed.
    const job = await this.init.jobLookup(r.jobId).catch(() => undefined)
    if (job === undefined || this.tasks.has(r.id)) return
    this.launch(r, {
      ...job,
      attempts: r.attempt,
      tasks:
        job.tasks.length > 0
          ? job.tasks
          : [
              {
                rank: r.rank,
                node: this.node,
                gpus: r.gpus,
                started: false,
                startedMs: 0,
                finished: false,
                endedMs: 0,
                exitCode: 0,
                signal: '',
                addr: this.node,
              },
            ],
    })
  }

  /** The task's end is committed (or refused as stale): its resources are free again. */
  private finishTask(entry: TaskEntry): void {
    this.tasks.delete(entry.reservationId)
    this.pids.delete(entry.reservationId)
    this.table.unbind(entry.reservationId)
    this.changed()
  }

  /**
   * Commits a start or end report, retrying with backoff while the group cannot commit; a refusal
   * (the job moved on: killed, lost, another attempt) ends the retries — and stops the task if it was a
   * start report.
   */
  private async report(entry: TaskEntry, cmd: Parameters<JobProposer>[0]): Promise<void> {
    for (let failures = 0; ; failures++) {
      try {
        await this.init.propose(cmd)
        return
      } catch (err) {
        if (isSchedError(err)) {
          if (cmd.jobStarted && !entry.stopping) {
            entry.stopping = true
            entry.handle?.stop(`job no longer runs this attempt: ${err.message}`)
          }
          return
        }
        if (!this.running) return
        await new Promise<void>((resolve) => this.later(resolve, this.backoff(failures)))
      }
    }
  }

  private backoff(failures: number): number {
    const [base, max] = this.init.reportBackoffMs ?? [50, 5000]
    const ceiling = Math.min(max, base * 2 ** Math.min(failures, 20))
    return ceiling / 2 + uniform(this.rng) * (ceiling / 2)
  }

  private later(fn: () => void, ms: number): void {
    const h = this.clock.setTimeout(() => {
      this.otherTimers.delete(h)
      fn()
    }, ms)
    this.otherTimers.add(h)
  }

  /**
   * The reservations changed: a new ad version, persisted, and published — within changeDelayMs when
   * resources were freed, takenDelayMs when taken; a quiet change (a hold bound to its job: the same
   * GPUs stay allocated) rides on the next publication.
   */
  private changed(kind: 'freed' | 'taken' | 'quiet' = 'freed'): void {
    this.seq++
    this.persist()
    if (kind !== 'quiet') this.publisher.changed(kind === 'freed')
  }

  private persist(): void {
    this.init.persist?.({ reservations: this.table.snapshot(), pids: Object.fromEntries(this.pids) })
  }

  private adBytes(): Uint8Array {
    const ad = this.ad()
    const cache = this.adCache!
    return (cache.bytes ??= encodeAd(ad))
  }
}

/** Why a committed job does not match a reservation (undefined: it matches). */
function placementMismatch(job: JobRecord | undefined, r: Reservation, node: string): string | undefined {
  if (job === undefined) return `no job ${r.jobId}`
  if (job.state !== JOB_STATE.RUNNING || job.attempts !== r.attempt)
    return `job ${job.id} is not running attempt ${r.attempt}`
  const task = job.tasks.find((t) => t.rank === r.rank)
  if (task === undefined || task.node !== node) return `task ${r.rank} of job ${job.id} is not placed here`
  if (task.gpus.length !== r.gpus.length || task.gpus.some((g) => !r.gpus.includes(g)))
    return `task ${r.rank} of job ${job.id} was placed on other GPUs`
  return undefined
}
