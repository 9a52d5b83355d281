/**
 * The jobs: the `jobs` module of the metadata state machine. A job is first committed as QUEUED (durable
 * intent); placement is chosen outside apply (the placer samples its gossip view and the workers reserve)
 * and carried in PlaceJob, which apply revalidates as Nomad's plan applier does: a job placed twice, a
 * report about an older run, a GPU bound to another running job are refused and change nothing.
 *
 * | table           | key               | value       |
 * | --------------- | ----------------- | ----------- |
 * | `sched.job`     | `<jobId be64>`    | JobRecord   |
 * | `sched.usage`   | `<project>`       | JobUsage (GPU time charged) |
 * | `sched.counter` | `nextJobId`       | Counter     |
 *
 * Transitions (commands of proto/meta.proto, numbers 110–129):
 *
 * ```
 *  SubmitJob ─► QUEUED ──PlaceJob──► RUNNING ──JobFinished (all 0)──► SUCCEEDED
 *                 ▲  │                 │  ├──JobFinished (≠ 0, timeout)─► FAILED
 *                 │  └─KillJob─► KILLED│  ├──KillJob: killRequested … JobFinished ─► KILLED
 *                 ├────MarkJobLost─────┤  └──MarkJobLost, no retry left ─► LOST
 *                 └────RequeueJob──────┘     (orphaned placement: nothing started)
 * ```
 *
 * Cost: every command touches one job row and the derived indexes of that job (by state, by project,
 * by placer, GPU bindings by node): O(log n + tasks × GPUs), never a scan. Reads of the indexes are range
 * scans of what they return. Time comes from the command (`nowMs`), identity from its `user`.
 */
import {
  be64,
  metaProto,
  protoCodec,
  type ApplyContext,
  type MetaModule,
  type MetaModuleFactory,
  type MetaStore,
  type Table,
} from '../meta/index.js'
import { projectMayKill, projectSubmitDenied, type JobProjects } from './access.js'
import { SchedError } from './errors.js'
import { SortedIds } from './sorted-ids.js'
import { specProblem } from './spec.js'
import {
  JOB_STATE,
  isTerminal,
  type JobRecord,
  type JobSpec,
  type JobStateName,
  type JobTask,
} from './types.js'

import pb = metaProto.meta

export const JOB_OPS = [
  'submitJob',
  'placeJob',
  'jobStarted',
  'jobFinished',
  'killJob',
  'markJobLost',
  'requeueJob',
  'adoptJob',
] as const

const Q = JOB_STATE.QUEUED
const R = JOB_STATE.RUNNING
/** First job id (ids below are free for other uses; any start works). */
const FIRST_JOB_ID = 1
/** Bound on a list page. */
export const JOB_LIST_PAGE_MAX = 1000
/** A name as spec.ts allows it (apply rechecks: it becomes a path component of the logs folder). */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

export interface JobListQuery {
  readonly project?: string
  readonly state?: JobStateName
  /** Ids greater than this (paging). */
  readonly afterId?: number
  readonly limit?: number
}

/** What each command answers (the `value` of its MetaResult). */
export interface JobOpResults {
  submitJob: { id: number }
  placeJob: { id: number; runId: string }
  jobStarted: { id: number; state: JobStateName }
  jobFinished: { id: number; state: JobStateName }
  killJob: { id: number; state: JobStateName }
  markJobLost: { id: number; state: JobStateName }
  requeueJob: { id: number; state: JobStateName }
  adoptJob: { id: number; placer: string }
}

export type JobListener = (job: JobRecord) => void

export class JobsModule implements MetaModule {
  readonly name = 'jobs'
  readonly ops = JOB_OPS
  private readonly jobs: Table<JobRecord>
  private readonly usage: Table<{ gpuMs: number }>
  private readonly counters: Table<{ value: number }>
  // ---- derived indexes, kept by the job table's hooks (so rollbacks and restores keep them right)
  // (numeric id sets and nested maps: no key strings are built and hashed on the apply path)
  /** state → ids */
  private readonly byState = new Map<number, SortedIds>()
  /** project → ids */
  private readonly byProject = new Map<string, SortedIds>()
  /** project → state → ids */
  private readonly byProjectState = new Map<string, Map<number, SortedIds>>()
  /** queued jobs per project (FIFO per project: ids are submission order) */
  private readonly queuedByProject = new Map<string, SortedIds>()
  /** queued jobs per placer node */
  private readonly queuedByPlacer = new Map<string, SortedIds>()
  /** running jobs per node */
  private readonly runningByNode = new Map<string, Set<number>>()
  /** node → GPU uuid → id of the running job it is bound to */
  private readonly gpuBindings = new Map<string, Map<string, number>>()
  private readonly listeners = new Set<JobListener>()
  private readonly changed = new Set<number>()
  private flushQueued = false
  /** Project membership (src/projects), once attached: who may submit to and kill in a project. */
  private projects: JobProjects | undefined

  constructor(store: MetaStore) {
    this.jobs = store.table('sched.job', protoCodec<JobRecord>(pb.JobRecord), {
      onSet: (_k, prev, next) => {
        // Most writes keep the job's state, project and placer (a task started or ended): its index
        // entries stay as they are — only what changed is touched.
        if (prev === undefined || !sameIndexKeys(prev, next)) {
          if (prev) this.unindex(prev)
          this.index(next)
        }
        this.noteChange(next.id)
      },
      onDelete: (_k, prev) => this.unindex(prev),
      onClear: () => this.clearIndexes(),
    })
    this.usage = store.table('sched.usage', protoCodec<{ gpuMs: number }>(pb.JobUsage))
    this.counters = store.table('sched.counter', protoCodec<{ value: number }>(pb.Counter))
  }

  /**
   * Decides submissions and kills by project membership from now on (access.ts: members submit,
   * the submitter, Data Owners and admins kill). The node attaches the projects module's table here;
   * without it (unit tests of the scheduler alone) any user submits and owners kill, as before projects.
   * The table is read inside apply, so a removed member's next command is refused on every replica.
   */
  attachProjects(projects: JobProjects): void {
    this.projects = projects
  }

  init(): void {
    if (!this.counters.has('nextJobId')) this.counters.put('nextJobId', { value: FIRST_JOB_ID })
  }

  apply(ctx: ApplyContext): unknown {
    const cmd = ctx.cmd
    if (cmd.user === '') throw new SchedError('JOB_ACCESS_DENIED', 'the command carries no user')
    switch (cmd.op) {
      case 'submitJob':
        return this.submit(ctx, cmd.submitJob!)
      case 'placeJob':
        this.requireNode(ctx)
        return this.place(ctx, cmd.placeJob!)
      case 'jobStarted':
        this.requireNode(ctx)
        return this.started(cmd.jobStarted!)
      case 'jobFinished':
        this.requireNode(ctx)
        return this.finished(ctx, cmd.jobFinished!)
      case 'killJob':
        return this.kill(ctx, cmd.killJob!)
      case 'markJobLost':
        this.requireNode(ctx)
        return this.markLost(ctx, cmd.markJobLost!)
      case 'requeueJob':
        this.requireNode(ctx)
        return this.requeue(ctx, cmd.requeueJob!)
      case 'adoptJob': {
        this.requireNode(ctx)
        const c = cmd.adoptJob!
        const job = this.mustGet(Number(c.jobId ?? 0))
        if (job.state !== Q) throw conflict(job, 'only a queued job changes placer')
        if (!c.placer) throw new SchedError('INVALID_JOB_SPEC', 'AdoptJob needs a placer')
        this.jobs.put(be64(job.id), { ...job, placer: c.placer })
        return { id: job.id, placer: c.placer }
      }
      default:
        throw new Error(`jobs: op ${String(cmd.op)} routed to the jobs module`)
    }
  }

  // ---- reads (this replica; the caller fences with a read barrier when it needs linearizable)

  get(id: number): JobRecord | undefined {
    return Number.isSafeInteger(id) && id >= 0 ? this.jobs.get(be64(id)) : undefined
  }

  /** Jobs in id order, filtered by project and/or state, one page. */
  list(q: JobListQuery = {}): JobRecord[] {
    const limit = Math.min(q.limit ?? JOB_LIST_PAGE_MAX, JOB_LIST_PAGE_MAX)
    const after = q.afterId ?? -1
    const out: JobRecord[] = []
    const want = q.state === undefined ? undefined : JOB_STATE[q.state]
    const from = after < 0 ? undefined : after
    let ids: Iterable<number>
    if (q.project !== undefined)
      ids =
        (want === undefined
          ? this.byProject.get(q.project)
          : this.byProjectState.get(q.project)?.get(want)
        )?.from(from) ?? []
    else if (want !== undefined) ids = this.byState.get(want)?.from(from) ?? []
    else {
      for (const [, job] of this.jobs.range(
        from === undefined ? '' : be64(from),
        undefined,
        from !== undefined,
      )) {
        if (out.length >= limit) break
        out.push(job)
      }
      return out
    }
    for (const id of ids) {
      if (out.length >= limit) break
      out.push(this.get(id)!)
    }
    return out
  }

  /** Queued jobs in FIFO order per project, projects in name order, at most `limit`. */
  queued(limit = JOB_LIST_PAGE_MAX): JobRecord[] {
    const out: JobRecord[] = []
    for (const project of [...this.queuedByProject.keys()].sort())
      for (const id of this.queuedByProject.get(project)!.from()) {
        if (out.length >= limit) return out
        out.push(this.get(id)!)
      }
    return out
  }

  /** Queued jobs a node places, oldest first. */
  queuedFor(placer: string, limit = JOB_LIST_PAGE_MAX): JobRecord[] {
    const out: JobRecord[] = []
    for (const id of this.queuedByPlacer.get(placer)?.from() ?? []) {
      if (out.length >= limit) break
      out.push(this.get(id)!)
    }
    return out
  }

  /** Placers with queued jobs (the reconcile loop hands a dead placer's jobs to a live node). */
  placersWithQueuedJobs(): string[] {
    return [...this.queuedByPlacer.keys()].sort()
  }

  /** Running jobs placed (at least one task) on `node`. */
  runningOn(node: string): JobRecord[] {
    return [...(this.runningByNode.get(node) ?? [])].sort((a, b) => a - b).map((id) => this.get(id)!)
  }

  /** Nodes with running tasks. */
  nodesWithRunningJobs(): string[] {
    return [...this.runningByNode.keys()].sort()
  }

  /** Every running job, in id order, at most `limit`. */
  running(limit = Number.MAX_SAFE_INTEGER): JobRecord[] {
    return this.inState(R, limit)
  }

  /** The running job a GPU is bound to in the committed state, if any. */
  gpuHolder(node: string, uuid: string): number | undefined {
    return this.gpuBindings.get(node)?.get(uuid)
  }

  countIn(state: JobStateName): number {
    return this.byState.get(JOB_STATE[state])?.size ?? 0
  }

  /** GPU milliseconds charged to `project` (finished and lost tasks). */
  usageGpuMs(project: string): number {
    return this.usage.get(project)?.gpuMs ?? 0
  }

  /**
   * Calls `listener` with a job's record after commands changed it (once per job per batch, after the
   * batch applied, with the record as it is then). Local notification for the node's loops (a worker
   * stops a task whose job was killed; a placer picks up jobs it was given): not replicated state.
   * Listeners must not throw or block. Returns the unsubscribe function.
   */
  onJobChange(listener: JobListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  // ---- commands

  private submit(ctx: ApplyContext, c: pb.ISubmitJob): JobOpResults['submitJob'] {
    const project = c.project ?? ''
    const name = c.name ?? ''
    if (!NAME_RE.test(project)) throw new SchedError('INVALID_JOB_SPEC', `project ${JSON.stringify(project)}`)
    if (this.projects !== undefined) {
      const denied = projectSubmitDenied(this.projects, this.who(ctx), project)
      if (denied !== undefined) throw new SchedError('JOB_ACCESS_DENIED', denied)
    }
    if (!NAME_RE.test(name)) throw new SchedError('INVALID_JOB_SPEC', `name ${JSON.stringify(name)}`)
    const spec = specFrom(c.spec ?? {})
    const problem = specProblem(spec)
    if (problem !== undefined) throw new SchedError('INVALID_JOB_SPEC', problem)
    const id = this.counters.get('nextJobId')!.value
    this.counters.put('nextJobId', { value: id + 1 })
    const now = ctx.cmd.nowMs
    this.jobs.put(be64(id), {
      id,
      project,
      name,
      owner: ctx.cmd.user,
      spec,
      state: Q,
      attempts: 0,
      lost: 0,
      runId: '',
      tasks: [],
      submittedMs: now,
      queuedMs: now,
      placedMs: 0,
      startedMs: 0,
      endedMs: 0,
      exitCode: 0,
      signal: '',
      killRequested: false,
      reason: '',
      placer: c.placer ?? '',
      masterPort: 0,
    })
    return { id }
  }

  private place(ctx: ApplyContext, c: pb.IPlaceJob): JobOpResults['placeJob'] {
    const job = this.mustGet(Number(c.jobId ?? 0))
    const attempt = c.attempt ?? 0
    if (job.state !== Q) throw conflict(job, 'only a queued job is placed')
    if (attempt !== job.attempts + 1)
      throw conflict(job, `placement for attempt ${attempt}, the job is at attempt ${job.attempts}`)
    const given = c.tasks ?? []
    if (given.length !== job.spec.tasks)
      throw new SchedError('INVALID_JOB_SPEC', `${given.length} tasks placed, the job has ${job.spec.tasks}`)
    const tasks: JobTask[] = []
    const seen = new Set<string>()
    for (let rank = 0; rank < given.length; rank++) {
      const t = given.find((x) => (x.rank ?? 0) === rank)
      if (t === undefined) throw new SchedError('INVALID_JOB_SPEC', `task ${rank} is not placed`)
      const node = t.node ?? ''
      const gpus = t.gpus ?? []
      if (node === '') throw new SchedError('INVALID_JOB_SPEC', `task ${rank} has no node`)
      if (gpus.length !== job.spec.gpus)
        throw new SchedError(
          'INVALID_JOB_SPEC',
          `task ${rank} got ${gpus.length} GPUs, asks ${job.spec.gpus}`,
        )
      const bound = this.gpuBindings.get(node)
      for (const g of gpus) {
        const key = node + '\u0000' + g
        if (seen.has(key)) throw new SchedError('GPU_CONFLICT', `GPU ${g} on ${node} placed twice`)
        seen.add(key)
        const holder = bound?.get(g)
        if (holder !== undefined)
          throw new SchedError('GPU_CONFLICT', `GPU ${g} on ${node} is bound to running job ${holder}`)
      }
      tasks.push(newTask(rank, node, gpus, t.addr ?? ''))
    }
    const runId = `${job.id}-${attempt}`
    this.jobs.put(be64(job.id), {
      ...job,
      state: R,
      attempts: attempt,
      runId,
      tasks,
      placedMs: ctx.cmd.nowMs,
      startedMs: 0,
      endedMs: 0,
      exitCode: 0,
      signal: '',
      reason: '',
      masterPort: c.masterPort ?? 0,
    })
    return { id: job.id, runId }
  }

  private started(c: pb.IJobStarted): JobOpResults['jobStarted'] {
    const job = this.mustGet(Number(c.jobId ?? 0))
    const task = this.currentTask(job, c.attempt ?? 0, c.rank ?? 0)
    if (task.started) return { id: job.id, state: 'RUNNING' }
    const startedMs = Number(c.startedMs ?? 0)
    const tasks = job.tasks.map((t) => (t === task ? { ...t, started: true, startedMs } : t))
    const first = job.startedMs === 0 ? startedMs : Math.min(job.startedMs, startedMs)
    this.jobs.put(be64(job.id), { ...job, tasks, startedMs: first })
    return { id: job.id, state: 'RUNNING' }
  }

  private finished(ctx: ApplyContext, c: pb.IJobFinished): JobOpResults['jobFinished'] {
    const job = this.mustGet(Number(c.jobId ?? 0))
    const attempt = c.attempt ?? 0
    const rank = c.rank ?? 0
    // A gang's other tasks report after the job ended (one failed): their end is recorded and charged.
    const late = isTerminal(job.state) && job.attempts === attempt
    const task = late ? job.tasks.find((t) => t.rank === rank) : this.currentTask(job, attempt, rank)
    if (task === undefined) throw conflict(job, `no task ${rank} in attempt ${attempt}`)
    if (task.finished) return { id: job.id, state: stateName(job.state) }
    const endedMs = Number(c.endedMs ?? 0)
    const startedMs = task.started ? task.startedMs : Number(c.startedMs ?? 0)
    const exitCode = c.exitCode ?? 0
    const signal = c.signal ?? ''
    const done: JobTask = {
      ...task,
      started: task.started || startedMs > 0,
      startedMs,
      finished: true,
      endedMs,
      exitCode,
      signal,
    }
    this.charge(job, startedMs, endedMs)
    const tasks = job.tasks.map((t) => (t === task ? done : t))
    if (late) {
      this.jobs.put(be64(job.id), { ...job, tasks })
      return { id: job.id, state: stateName(job.state) }
    }
    const failed = exitCode !== 0 || signal !== '' || (c.reason ?? '') !== ''
    const allDone = tasks.every((t) => t.finished)
    let next: number = R
    let reason = ''
    if (job.killRequested) {
      next = JOB_STATE.KILLED
      reason = job.reason || 'killed'
    } else if (failed) {
      next = JOB_STATE.FAILED
      const why = c.reason || (signal !== '' ? `signal ${signal}` : `exit code ${exitCode}`)
      reason = job.spec.tasks > 1 ? `task ${rank}: ${why}` : why
    } else if (allDone) next = JOB_STATE.SUCCEEDED
    const record: JobRecord = { ...job, tasks }
    if (next === R) this.jobs.put(be64(job.id), record)
    else
      this.jobs.put(be64(job.id), {
        ...record,
        state: next,
        endedMs: endedMs || ctx.cmd.nowMs,
        exitCode,
        signal,
        reason,
      })
    return { id: job.id, state: stateName(next) }
  }

  private who(ctx: ApplyContext): { user: string; project: string; superuser: boolean } {
    return { user: ctx.cmd.user, project: ctx.cmd.project, superuser: ctx.isSuperuser }
  }

  private kill(ctx: ApplyContext, c: pb.IKillJob): JobOpResults['killJob'] {
    const job = this.mustGet(Number(c.jobId ?? 0))
    const allowed =
      this.projects === undefined
        ? ctx.isSuperuser || ctx.cmd.user === job.owner
        : projectMayKill(this.projects, this.who(ctx), job)
    if (!allowed)
      throw new SchedError('JOB_ACCESS_DENIED', `${ctx.cmd.user} may not kill job ${job.id} of ${job.owner}`)
    const reason = c.reason || `killed by ${ctx.cmd.user}`
    if (job.state === Q) {
      this.jobs.put(be64(job.id), { ...job, state: JOB_STATE.KILLED, endedMs: ctx.cmd.nowMs, reason })
      return { id: job.id, state: 'KILLED' }
    }
    if (job.state !== R) throw conflict(job, 'the job has ended')
    if (!job.killRequested) this.jobs.put(be64(job.id), { ...job, killRequested: true, reason })
    return { id: job.id, state: 'RUNNING' }
  }

  private markLost(ctx: ApplyContext, c: pb.IMarkJobLost): JobOpResults['markJobLost'] {
    const job = this.mustGet(Number(c.jobId ?? 0))
    if (job.state !== R || job.attempts !== (c.attempt ?? 0))
      throw conflict(job, `attempt ${c.attempt ?? 0} is not the running one`)
    const now = ctx.cmd.nowMs
    for (const t of job.tasks) if (t.started && !t.finished) this.charge(job, t.startedMs, now)
    const reason = c.reason || 'worker lost'
    const lost = job.lost + 1
    let next: JobRecord
    if (job.killRequested) next = { ...job, state: JOB_STATE.KILLED, endedMs: now, reason: job.reason }
    else if (lost <= job.spec.retries) next = { ...requeued(job, now, reason), lost }
    else next = { ...job, state: JOB_STATE.LOST, lost, endedMs: now, reason }
    this.jobs.put(be64(job.id), next)
    return { id: job.id, state: stateName(next.state) }
  }

  private requeue(ctx: ApplyContext, c: pb.IRequeueJob): JobOpResults['requeueJob'] {
    const job = this.mustGet(Number(c.jobId ?? 0))
    if (job.state !== R || job.attempts !== (c.attempt ?? 0))
      throw conflict(job, `attempt ${c.attempt ?? 0} is not the running one`)
    if (job.tasks.some((t) => t.started))
      throw conflict(job, 'a task has started: the run is lost, not orphaned (MarkJobLost)')
    const next = job.killRequested
      ? { ...job, state: JOB_STATE.KILLED, endedMs: ctx.cmd.nowMs }
      : requeued(job, ctx.cmd.nowMs, c.reason || 'placement orphaned')
    this.jobs.put(be64(job.id), next)
    return { id: job.id, state: stateName(next.state) }
  }

  // ---- helpers

  private requireNode(ctx: ApplyContext): void {
    if (!ctx.isSuperuser)
      throw new SchedError('JOB_ACCESS_DENIED', `${ctx.cmd.user} is not a cluster node (superuser)`)
  }

  private mustGet(id: number): JobRecord {
    const job = this.get(id)
    if (job === undefined) throw new SchedError('JOB_NOT_FOUND', `no job ${id}`)
    return job
  }

  private currentTask(job: JobRecord, attempt: number, rank: number): JobTask {
    if (job.state !== R || job.attempts !== attempt)
      throw conflict(job, `attempt ${attempt} is not the running one`)
    const task = job.tasks.find((t) => t.rank === rank)
    if (task === undefined) throw conflict(job, `no task ${rank}`)
    return task
  }

  private charge(job: JobRecord, startedMs: number, endedMs: number): void {
    if (job.spec.gpus === 0 || startedMs <= 0 || endedMs <= startedMs) return
    const gpuMs = job.spec.gpus * (endedMs - startedMs)
    this.usage.put(job.project, { gpuMs: this.usageGpuMs(job.project) + gpuMs })
  }

  private inState(state: number, limit: number): JobRecord[] {
    const out: JobRecord[] = []
    for (const id of this.byState.get(state)?.from() ?? []) {
      if (out.length >= limit) break
      out.push(this.get(id)!)
    }
    return out
  }

  private index(r: JobRecord): void {
    const id = r.id
    setOf(this.byState, r.state).add(id)
    setOf(this.byProject, r.project).add(id)
    let ps = this.byProjectState.get(r.project)
    if (ps === undefined) this.byProjectState.set(r.project, (ps = new Map()))
    setOf(ps, r.state).add(id)
    if (r.state === Q) {
      setOf(this.queuedByProject, r.project).add(id)
      setOf(this.queuedByPlacer, r.placer).add(id)
    } else if (r.state === R) {
      for (const t of r.tasks) {
        let n = this.runningByNode.get(t.node)
        if (n === undefined) this.runningByNode.set(t.node, (n = new Set()))
        n.add(id)
        let b = this.gpuBindings.get(t.node)
        if (b === undefined) this.gpuBindings.set(t.node, (b = new Map()))
        for (const g of t.gpus) b.set(g, id)
      }
    }
  }

  private unindex(r: JobRecord): void {
    const id = r.id
    dropFrom(this.byState, r.state, id)
    dropFrom(this.byProject, r.project, id)
    const ps = this.byProjectState.get(r.project)
    if (ps !== undefined) {
      dropFrom(ps, r.state, id)
      if (ps.size === 0) this.byProjectState.delete(r.project)
    }
    if (r.state === Q) {
      dropFrom(this.queuedByProject, r.project, id)
      dropFrom(this.queuedByPlacer, r.placer, id)
    } else if (r.state === R) {
      for (const t of r.tasks) {
        const n = this.runningByNode.get(t.node)
        n?.delete(id)
        if (n?.size === 0) this.runningByNode.delete(t.node)
        const b = this.gpuBindings.get(t.node)
        if (b === undefined) continue
        for (const g of t.gpus) if (b.get(g) === id) b.delete(g)
        if (b.size === 0) this.gpuBindings.delete(t.node)
      }
    }
  }

  private clearIndexes(): void {
    this.byState.clear()
    this.byProject.clear()
    this.byProjectState.clear()
    this.queuedByProject.clear()
    this.queuedByPlacer.clear()
    this.runningByNode.clear()
    this.gpuBindings.clear()
  }

  private noteChange(id: number): void {
    if (this.listeners.size === 0) return
    this.changed.add(id)
    if (this.flushQueued) return
    this.flushQueued = true
    queueMicrotask(() => {
      this.flushQueued = false
      const ids = [...this.changed]
      this.changed.clear()
      for (const id of ids) {
        const job = this.get(id)
        if (job === undefined) continue
        for (const l of this.listeners) l(job)
      }
    })
  }
}

/** Whether two versions of a job sit under the same keys of every derived index. */
function sameIndexKeys(a: JobRecord, b: JobRecord): boolean {
  if (a.state !== b.state || a.project !== b.project || a.placer !== b.placer) return false
  if (a.state !== JOB_STATE.RUNNING) return true
  if (a.tasks === b.tasks) return true
  if (a.tasks.length !== b.tasks.length) return false
  for (let i = 0; i < a.tasks.length; i++) {
    const x = a.tasks[i]!
    const y = b.tasks[i]!
    if (x.node !== y.node || x.gpus !== y.gpus) {
      if (x.node !== y.node || x.gpus.length !== y.gpus.length || x.gpus.some((g, j) => g !== y.gpus[j]))
        return false
    }
  }
  return true
}

function setOf<K>(m: Map<K, SortedIds>, key: K): SortedIds {
  let s = m.get(key)
  if (s === undefined) m.set(key, (s = new SortedIds()))
  return s
}

function dropFrom<K>(m: Map<K, SortedIds>, key: K, id: number): void {
  const s = m.get(key)
  if (s === undefined) return
  s.delete(id)
  if (s.size === 0) m.delete(key)
}

function newTask(rank: number, node: string, gpus: readonly string[], addr: string): JobTask {
  return {
    rank,
    node,
    gpus: [...gpus],
    started: false,
    startedMs: 0,
    finished: false,
    endedMs: 0,
    exitCode: 0,
    signal: '',
    addr,
  }
}

function requeued(job: JobRecord, now: number, reason: string): JobRecord {
  return { ...job, state: Q, tasks: [], queuedMs: now, placedMs: 0, startedMs: 0, masterPort: 0, reason }
}

function conflict(job: JobRecord, why: string): SchedError {
  return new SchedError('JOB_STATE_CONFLICT', `job ${job.id} is ${stateName(job.state)}: ${why}`)
}

function stateName(state: number): JobStateName {
  return (['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'KILLED', 'LOST'] as const)[state - 1]!
}

/** A JobSpec from its proto shape (missing fields at their defaults). */
export function specFrom(s: pb.IJobSpec): JobSpec {
  return {
    command: [...(s.command ?? [])],
    script: s.script ?? '',
    env: (s.env ?? []).map((e) => ({ name: e.name ?? '', value: e.value ?? '' })),
    gpus: s.gpus ?? 0,
    gpuModel: s.gpuModel ?? '',
    cpus: s.cpus ?? 0,
    memoryMiB: Number(s.memoryMiB ?? 0),
    zone: s.zone ?? '',
    retries: s.retries ?? 0,
    timeoutS: s.timeoutS ?? 0,
    tasks: s.tasks ?? 1,
  }
}

/** The jobs module, for createMetaStateMachine's `modules`. */
export function jobsModule(): MetaModuleFactory<JobsModule> {
  return (store) => new JobsModule(store)
}
