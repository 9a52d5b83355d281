/**
 * An in-process scheduling cluster on virtual time, for the scheduler's tests and its seeded simulation:
 * the real jobs state machine (createMetaStateMachine + createLocalGroup), real workers (WorkerAgent
 * with its reservation table), real placers, views and queues, all talking over the in-memory network —
 * and a simulated task runner (tasks "run" for a time taken from their job's env: SIM_MS, exit code
 * SIM_EXIT). Time and randomness come from one seed; after each event the microtask queue is drained
 * (setImmediate runs after every pending microtask), so a run replays exactly.
 */
import { createLocalGroup, createMetaStateMachine, type MetaStateMachine } from '../../src/meta/index.js'
import {
  ADS_TOPIC,
  JobQueue,
  JobService,
  JOB_STATE,
  Placer,
  Reconciler,
  ResourceView,
  WorkerAgent,
  checkCluster,
  checkTaskStart,
  createJobProposer,
  createMemorySchedNetwork,
  decodeAd,
  jobsModule,
  quotaCheck,
  type Caller,
  type GpuDevice,
  type JobProposer,
  type JobQueueInit,
  type JobRecord,
  type JobsModule,
  type MemorySchedNetwork,
  type MemorySchedNetworkInit,
  type PlaceResult,
  type PlacerInit,
  type QuotaLookup,
  type TaskRunner,
  type Violation,
  type WorkerBug,
  type WorkerState,
} from '../../src/scheduler/index.js'
import { SeededRng } from '../../src/consensus/index.js'
import { nodeClock, Scheduler, type NodeClock } from '../sim/scheduler.js'

export const EPOCH_MS = 1_700_000_000_000
export const NODE: Caller = { user: 'hopsd', groups: [] }
export const ALICE: Caller = { user: 'alice', groups: [] }

export interface WorkerSpec {
  readonly node: string
  readonly zone?: string
  readonly gpus: number
  readonly model?: string
  readonly cpus?: number
  readonly memoryMiB?: number
}

export interface WorldOptions {
  readonly seed: number
  readonly workers: readonly WorkerSpec[]
  readonly placers: readonly string[]
  readonly net?: Omit<MemorySchedNetworkInit, 'clock' | 'rng'>
  readonly placer?: Partial<Omit<PlacerInit, 'self' | 'transport' | 'view' | 'clock' | 'rng' | 'propose'>>
  readonly queue?: Partial<Omit<JobQueueInit, 'self' | 'placer' | 'view' | 'clock'>>
  /** Placers' views take the ads published on the topic (default true; false = only Reserve replies). */
  readonly subscribeAds?: boolean
  readonly workerBugs?: ReadonlySet<WorkerBug>
  readonly quota?: QuotaLookup
  readonly publishIntervalMs?: number
  readonly changeDelayMs?: number
  readonly viewExpiryMs?: number
  /** Simulated tasks' default duration when the job's env has no SIM_MS (default 100 ms). */
  readonly taskMs?: number
}

export interface TaskEvent {
  readonly kind: 'start' | 'end'
  readonly atMs: number
  readonly node: string
  readonly jobId: number
  readonly attempt: number
  readonly rank: number
  readonly gpus: readonly string[]
  readonly env: Readonly<Record<string, string>>
}

interface WorkerSlot {
  readonly spec: WorkerSpec
  agent: WorkerAgent | undefined
  clock: NodeClock
  persisted: WorkerState | undefined
  incarnation: number
}

export interface PlacerSlot {
  readonly node: string
  readonly view: ResourceView
  readonly placer: Placer
  readonly queue: JobQueue
  readonly service: JobService
  readonly clock: NodeClock
}

export class World {
  readonly sched = new Scheduler()
  readonly rng: SeededRng
  readonly sm: MetaStateMachine
  readonly propose: JobProposer
  readonly net: MemorySchedNetwork
  readonly workers = new Map<string, WorkerSlot>()
  readonly placers = new Map<string, PlacerSlot>()
  readonly events: TaskEvent[] = []
  readonly violations: Violation[] = []
  readonly results: { job: JobRecord; result: PlaceResult }[] = []
  private readonly opts: WorldOptions
  private readonly metaClock: NodeClock

  constructor(opts: WorldOptions) {
    this.opts = opts
    this.rng = new SeededRng(opts.seed)
    this.sm = createMetaStateMachine({ modules: [jobsModule()] })
    this.metaClock = nodeClock(this.sched, 'meta', 1, EPOCH_MS)
    this.propose = createJobProposer({ group: createLocalGroup(this.sm), clock: this.metaClock, node: NODE })
    this.net = createMemorySchedNetwork({
      clock: nodeClock(this.sched, 'net', 1, EPOCH_MS),
      rng: this.rng.fork(),
      ...opts.net,
    })
    for (const w of opts.workers) {
      const slot: WorkerSlot = {
        spec: w,
        agent: undefined,
        clock: nodeClock(this.sched, w.node, 1, EPOCH_MS),
        persisted: undefined,
        incarnation: 0,
      }
      this.workers.set(w.node, slot)
    }
    // Placers first: they subscribe to the ads the workers publish as they start.
    for (const p of opts.placers) this.placers.set(p, this.bootPlacer(p))
    for (const slot of this.workers.values()) this.bootWorker(slot)
    this.jobs().onJobChange((job) => {
      for (const t of job.tasks) this.workers.get(t.node)?.agent?.onJobChange(job)
      for (const p of this.placers.values()) p.queue.onJobChange(job)
    })
  }

  jobs(): JobsModule {
    return this.sm.module<JobsModule>('jobs')
  }

  job(id: number): JobRecord {
    const j = this.jobs().get(id)
    if (j === undefined) throw new Error(`no job ${id}`)
    return j
  }

  /** Submits through a placer's service (the API path). */
  submit(placer: string, body: Record<string, unknown>, caller: Caller = ALICE): Promise<{ id: number }> {
    return this.placers
      .get(placer)!
      .service.submit(caller, { project: 'p', name: 'job', command: ['sim'], ...body })
  }

  /** Runs events until virtual time reaches now + ms. */
  async run(ms: number): Promise<void> {
    const until = this.sched.now() + ms
    for (;;) {
      const at = this.sched.peekTime()
      if (at === undefined || at > until) break
      await this.step()
    }
    await drain()
  }

  /** Runs events until `pred` holds (checked after each event) or `maxMs` of virtual time pass. */
  async runUntil(pred: () => boolean, maxMs: number, what = 'a condition'): Promise<void> {
    const until = this.sched.now() + maxMs
    await drain()
    while (!pred()) {
      const at = this.sched.peekTime()
      if (at === undefined || at > until)
        throw new Error(`virtual time ran out (${maxMs} ms) waiting for ${what}`)
      await this.step()
    }
  }

  async step(): Promise<void> {
    const ev = this.sched.next()
    if (ev === undefined) return
    ev.run()
    await drain()
  }

  /** The cluster-wide checks now. */
  check(): Violation[] {
    const snapshots = [...this.workers.values()]
      .filter((w) => w.agent !== undefined)
      .map((w) => ({
        node: w.spec.node,
        gpus: gpusOf(w.spec).map((g) => g.uuid),
        reservations: w.agent!.reservations(),
        tasks: w.agent!.runningTasks(),
      }))
    return checkCluster(snapshots, this.jobs().running())
  }

  /** The worker dies: no messages, no timers, its tasks vanish (their processes die with the host). */
  crashWorker(node: string): void {
    const slot = this.workers.get(node)!
    slot.agent?.stop()
    slot.clock.stopAll()
    this.net.crash(node)
    slot.agent = undefined
  }

  /** The worker comes back with what it persisted, and settles the jobs it no longer runs. */
  async restartWorker(node: string): Promise<{ requeued: number[]; lost: number[] }> {
    const slot = this.workers.get(node)!
    this.net.restart(node)
    this.bootWorker(slot)
    return slot.agent!.recover(this.jobs().runningOn(node))
  }

  /** Runs the metadata leader's reconcile loop on placer `node` (its view, its queue adopts). */
  startReconciler(node: string, opts: { intervalMs?: number; startTimeoutMs?: number } = {}): Reconciler {
    const p = this.placers.get(node)!
    const r = new Reconciler({
      self: node,
      clock: p.clock,
      jobs: () => this.jobs(),
      view: p.view,
      propose: this.propose,
      isPlacerLive: (n) => this.net.isUp(n),
      intervalMs: opts.intervalMs ?? 500,
      startTimeoutMs: opts.startTimeoutMs ?? 3000,
    })
    r.start()
    return r
  }

  /** Expires silent workers from every placer's view (what a node's view loop does periodically). */
  startViewExpiry(intervalMs = 250): void {
    for (const p of this.placers.values()) {
      const tick = (): void => {
        p.view.expire()
        p.clock.setTimeout(tick, intervalMs)
      }
      p.clock.setTimeout(tick, intervalMs)
    }
  }

  agent(node: string): WorkerAgent {
    return this.workers.get(node)!.agent!
  }

  private bootWorker(slot: WorkerSlot): void {
    const { spec } = slot
    const clock = slot.clock
    slot.incarnation++
    const agent: WorkerAgent = new WorkerAgent({
      node: spec.node,
      zone: spec.zone ?? 'z1',
      incarnation: slot.incarnation,
      gpus: gpusOf(spec),
      cpus: spec.cpus ?? 64,
      memoryMiB: spec.memoryMiB ?? 512 * 1024,
      transport: this.net.endpoint(spec.node),
      clock,
      rng: this.rng.fork(),
      runner: this.simRunner(spec.node, clock),
      propose: this.propose,
      jobLookup: async (id) => this.jobs().get(id),
      publishIntervalMs: this.opts.publishIntervalMs ?? 200,
      changeDelayMs: this.opts.changeDelayMs ?? 2,
      persist: (state) => (slot.persisted = state),
      restored: slot.persisted,
      knownBugs: this.opts.workerBugs,
    })
    slot.agent = agent
    agent.start()
  }

  private bootPlacer(node: string): PlacerSlot {
    const clock = nodeClock(this.sched, node, 1, EPOCH_MS)
    const view = new ResourceView({ clock, expiryMs: this.opts.viewExpiryMs ?? 2000 })
    const transport = this.net.endpoint(node)
    if (this.opts.subscribeAds ?? true)
      transport.subscribe(ADS_TOPIC, (_from, bytes) => view.apply(decodeAd(bytes)))
    const quotaExhausted = this.opts.quota
      ? quotaCheck(this.opts.quota, (p) => this.jobs().usageGpuMs(p))
      : undefined
    const placer = new Placer({
      self: node,
      transport,
      view,
      clock,
      rng: this.rng.fork(),
      propose: this.propose,
      quotaExhausted,
      ...this.opts.placer,
    })
    const queue = new JobQueue({
      self: node,
      placer,
      view,
      clock,
      jobLookup: async (id) => this.jobs().get(id),
      quotaExhausted,
      onResult: (job, result) => this.results.push({ job, result }),
      ...this.opts.queue,
    })
    queue.start()
    const service = new JobService({
      self: node,
      propose: this.propose,
      jobs: () => this.jobs(),
      capacity: () => view.capacity(),
      quotaExhausted,
      isSuperuser: (c) => c.user === NODE.user,
    })
    return { node, view, placer, queue, service, clock }
  }

  private simRunner(node: string, clock: NodeClock): TaskRunner {
    return {
      start: (launch, events) => {
        const { job, rank } = launch
        const env = launch.env
        const gpus = launch.gpus.map((g) => g.uuid)
        const base = { node, jobId: job.id, attempt: job.attempts, rank, gpus, env }
        let runTimer: unknown
        let startedMs = 0
        let ended = false
        const end = (exitCode: number, signal: string, reason: 'exited' | 'stopped'): void => {
          if (ended) return
          ended = true
          this.events.push({ kind: 'end', atMs: clock.now(), ...base })
          events.onExit({ exitCode, signal, startedMs, endedMs: clock.now(), reason, message: '' })
        }
        clock.setTimeout(() => {
          if (ended) return
          startedMs = clock.now()
          // Gang all-or-nothing, at the moment a task starts.
          this.violations.push(...checkTaskStart(this.jobs().get(job.id), base))
          this.events.push({ kind: 'start', atMs: startedMs, ...base })
          events.onStart({ startedMs })
          const envOf = (name: string) =>
            job.spec.env.find((e) => e.name === `${name}_RANK_${rank}`)?.value ??
            job.spec.env.find((e) => e.name === name)?.value
          const ms = Number(envOf('SIM_MS') ?? this.opts.taskMs ?? 100)
          const code = Number(envOf('SIM_EXIT') ?? 0)
          runTimer = clock.setTimeout(() => end(code, '', 'exited'), ms)
        }, 1)
        return {
          stop: () => {
            if (ended) return
            if (runTimer !== undefined) clock.clearTimeout(runTimer)
            clock.setTimeout(() => end(143, 'SIGTERM', 'stopped'), 1)
          },
        }
      },
    }
  }
}

export function gpusOf(spec: WorkerSpec): GpuDevice[] {
  return Array.from({ length: spec.gpus }, (_, i) => ({
    uuid: `GPU-${spec.node}-${i}`,
    index: i,
    model: spec.model ?? 'A100',
    memoryMiB: 81920,
    healthy: true,
    vendor: 'nvidia' as const,
  }))
}

/** Lets every pending microtask (and those they queue) run. */
export function drain(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

export function stateOf(world: World, id: number): string {
  return ['?', 'QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'KILLED', 'LOST'][world.job(id).state]!
}

export const TERMINAL = new Set<number>([
  JOB_STATE.SUCCEEDED,
  JOB_STATE.FAILED,
  JOB_STATE.KILLED,
  JOB_STATE.LOST,
])
