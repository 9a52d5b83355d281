/**
 * Scheduler benchmark (issue #15): a simulated cluster of 100 workers × 8 GPUs in one process. Ads and
 * Reserve/Release/Commit go through the real code (WorkerAgent, Placer, JobQueue, ResourceView) over the
 * in-memory network (protobuf-encoded; one-way latency 0.1–0.5 ms drawn per message); job records go
 * through the real state machine (createMetaStateMachine + createLocalGroup: every command encoded,
 * decoded and applied), with a modeled Raft commit latency (`--commitMs`, default 2 ms); jobs are
 * submitted through the JobService (schema validation and the fits check) to 4 placing nodes in turn.
 * Tasks are simulated (a timer each).
 *
 * Time (`--time=simulated`, the default): SIMULATED — a discrete-event clock drives every timer, so the
 * time figures (placement latency, waits, utilization) measure the protocol, not the host's load; the
 * real code's CPU cost is measured apart, as process CPU per placement and placements per CPU-second.
 * `--time=real` runs the same on the real clock (an accelerated one: job durations are real ms).
 *
 * The stream: Poisson arrivals at 90% of the cluster's GPU capacity, sizes 1/2/4/8 GPUs and 2 × 4-GPU
 * gangs, durations 20–180 ms, 4 projects (stream.ts) — about 2,500 jobs/s.
 *
 * Baseline, same run, same stream, same time base: a centralized FIFO scheduler with perfect knowledge
 * and the same queue policy (baseline.ts).
 *
 * Goals: utilization ≥ 95% of the baseline, ≥ 2,000 placements/s, placement p99 ≤ 50 ms.
 *
 * Usage: `npm run bench -- scheduler [--quick] [--time=simulated|real] [--seconds=N] [--load=0.9]
 *   [--placers=4] [--d=2] [--commitMs=2] [--jobMsMin=20] [--jobMsMax=180] [--seed=15]`.
 */
import { SeededRng } from '../../src/consensus/index.js'
import { createLocalGroup, createMetaStateMachine } from '../../src/meta/index.js'
import {
  ADS_TOPIC,
  JobQueue,
  JobService,
  Placer,
  ResourceView,
  WorkerAgent,
  createJobProposer,
  createMemorySchedNetwork,
  decodeAd,
  isTerminal,
  jobsModule,
  sleep,
  type GpuDevice,
  type JobProposer,
  type JobsModule,
  type PlaceResult,
  type TaskRunner,
} from '../../src/scheduler/index.js'
import { newReport, round, summarize, type Bench } from '../harness.js'
import { CentralFifo } from './baseline.js'
import { busyGpuMs, makeStream, meanGpusPerJob, type StreamJob } from './stream.js'
import { realTime, simulatedTime, type TimeBase } from './time.js'

const WORKERS = 100
const GPUS_PER_WORKER = 8
const PROJECTS = ['alpha', 'beta', 'gamma', 'delta']
const BACKFILL_DEPTH = 32
const HEAD_WAIT_MS = 2000
const PASS_DELAY_MS = 2

function arg(args: string[], name: string, dflt: number): number {
  const a = args.find((x) => x.startsWith(`--${name}=`))
  return a === undefined ? dflt : Number(a.slice(name.length + 3))
}

interface RunFigures {
  placements: number
  placementsPerS: number
  latency: ReturnType<typeof summarize>
  wait: ReturnType<typeof summarize>
  utilization: number
  makespanMs: number
  cpuMsPerPlacement: number
  refusals: number
  noCapacity: number
  otherFailures: number
  roundsMean: number
  adsPublished: number
  /** Simulated time only: events the simulator ran (timers, message deliveries). */
  simEvents: number
  latencyByRounds: string
}

interface RunOptions {
  readonly durationMs: number
  readonly placers: number
  readonly d: number
  readonly seed: number
  readonly commitMs: number
  readonly takenDelayMs: number
}

async function runDistributed(
  time: TimeBase,
  stream: readonly StreamJob[],
  o: RunOptions,
): Promise<RunFigures> {
  const clock = time.clock
  const rng = new SeededRng(o.seed)
  const sm = createMetaStateMachine({ modules: [jobsModule()] })
  const jobs = () => sm.module<JobsModule>('jobs')
  const commit = createJobProposer({
    group: createLocalGroup(sm),
    clock,
    node: { user: 'hopsd', groups: [] },
  })
  // Raft's commit latency, modeled: the proposal waits commitMs, then the real state machine applies it.
  const propose: JobProposer = async (cmd, opts) => {
    if (o.commitMs > 0) await sleep(clock, o.commitMs)
    return commit(cmd, opts)
  }
  const net = createMemorySchedNetwork({ clock, rng: rng.fork(), latencyMs: [0.1, 0.5] })
  const intervals: { startMs: number; endMs: number; gpus: number }[] = []

  const runner: TaskRunner = {
    start(launch, events) {
      const startedMs = clock.now()
      const interval = { startMs: startedMs, endMs: Infinity, gpus: launch.gpus.length }
      intervals.push(interval)
      queueMicrotask(() => events.onStart({ startedMs }))
      const ms = Number(launch.job.spec.env.find((e) => e.name === 'SIM_MS')?.value ?? 100)
      let done = false
      const end = (exitCode: number, signal: string): void => {
        if (done) return
        done = true
        interval.endMs = clock.now()
        events.onExit({ exitCode, signal, startedMs, endedMs: interval.endMs, reason: 'exited', message: '' })
      }
      const timer = clock.setTimeout(() => end(0, ''), ms)
      return {
        stop: () => {
          clock.clearTimeout(timer)
          end(143, 'SIGTERM')
        },
      }
    },
  }

  // Placing nodes first (they subscribe to the ads), then the workers.
  const results: { job: number; result: PlaceResult }[] = []
  const placers = Array.from({ length: o.placers }, (_, i) => {
    const self = `placer-${i}`
    const transport = net.endpoint(self)
    const view = new ResourceView({ clock, expiryMs: 60_000 })
    transport.subscribe(ADS_TOPIC, (_from, bytes) => view.apply(decodeAd(bytes)))
    const placer = new Placer({ self, transport, view, clock, rng: rng.fork(), propose, sampleSize: o.d })
    const queue = new JobQueue({
      self,
      placer,
      view,
      clock,
      backfillDepthMax: BACKFILL_DEPTH,
      headWaitMsMax: HEAD_WAIT_MS,
      inflightMax: 64,
      passDelayMs: PASS_DELAY_MS,
      jobLookup: async (id) => jobs().get(id),
      onResult: (job, result) => results.push({ job: job.id, result }),
    })
    const service = new JobService({
      self,
      propose,
      jobs,
      capacity: () => view.capacity(),
      isSuperuser: (c) => c.user === 'hopsd',
    })
    return { self, view, queue, service }
  })
  const byPlacer = new Map(placers.map((p) => [p.self, p]))
  const workers = new Map<string, WorkerAgent>()
  let adsPublished = 0
  for (let i = 0; i < WORKERS; i++) {
    const node = `worker-${String(i).padStart(3, '0')}`
    const gpus: GpuDevice[] = Array.from({ length: GPUS_PER_WORKER }, (_, g) => ({
      uuid: `GPU-${node}-${g}`,
      index: g,
      model: 'A100',
      memoryMiB: 81920,
      healthy: true,
      vendor: 'nvidia',
    }))
    const transport = net.endpoint(node)
    const publish = transport.publish.bind(transport)
    transport.publish = (topic, bytes) => {
      adsPublished++
      publish(topic, bytes)
    }
    workers.set(
      node,
      new WorkerAgent({
        node,
        zone: `zone-${i % 3}`,
        gpus,
        cpus: 96,
        memoryMiB: 1 << 20,
        transport,
        clock,
        rng: rng.fork(),
        runner,
        propose,
        jobLookup: async (id) => jobs().get(id),
        publishIntervalMs: 1000,
        changeDelayMs: 2,
        takenDelayMs: o.takenDelayMs,
      }),
    )
  }
  const ended = new Set<number>()
  jobs().onJobChange((job) => {
    for (const t of job.tasks) workers.get(t.node)?.onJobChange(job)
    byPlacer.get(job.placer)?.queue.onJobChange(job)
    if (isTerminal(job.state)) ended.add(job.id)
  })
  for (const w of workers.values()) w.start()
  for (const p of placers) p.queue.start()
  await time.runUntil(
    () => placers.every((p) => p.view.size === WORKERS),
    10_000,
    'every worker in every view',
  )

  const ids: number[] = []
  const events0 = time.events
  const cpu0 = process.cpuUsage()
  const t0 = clock.now()
  for (const job of stream)
    clock.setTimeout(() => {
      const p = placers[job.seq % placers.length]!
      void p.service
        .submit(
          { user: 'bench', groups: [] },
          {
            project: job.project,
            name: `job-${job.seq}`,
            command: ['train'],
            gpus: job.gpus,
            tasks: job.tasks,
            env: { SIM_MS: String(job.durationMs) },
          },
        )
        .then((r) => ids.push(r.id))
    }, job.atMs)
  const arrivalsEnd = t0 + o.durationMs
  await time.runUntil(() => ended.size === stream.length, 600_000, 'every job to end')
  const cpu = process.cpuUsage(cpu0)
  const endMs = clock.now()
  for (const w of workers.values()) w.stop()
  for (const p of placers) p.queue.stop()

  const placed = results.filter((r) => r.result.placed)
  const latencies = placed.map((r) => (r.result.placed ? r.result.latencyMs : 0))
  const waits = ids.map((id) => {
    const j = jobs().get(id)!
    return j.placedMs - j.submittedMs
  })
  // Where placement latency goes: by the number of sample-and-reserve rounds it took.
  const byRounds = new Map<number, number[]>()
  for (const r of placed)
    if (r.result.placed) {
      const list = byRounds.get(r.result.rounds) ?? []
      list.push(r.result.latencyMs)
      byRounds.set(r.result.rounds, list)
    }
  const latencyByRounds = [...byRounds]
    .sort((a, b) => a[0] - b[0])
    .map(([k, v]) => {
      const sum = summarize(v)
      return `${k} round${k > 1 ? 's' : ''}: ${sum.count} placements, p50 ${sum.p50Ms} ms, p99 ${sum.p99Ms} ms`
    })
    .join('; ')
  const warm = o.durationMs * 0.1
  return {
    placements: placed.length,
    placementsPerS: round(
      placed.filter((r) => jobs().get(r.job)!.placedMs <= arrivalsEnd).length / (o.durationMs / 1000),
      0,
    ),
    latency: summarize(latencies),
    wait: summarize(waits),
    utilization: round(
      busyGpuMs(intervals, t0 + warm, arrivalsEnd) / (WORKERS * GPUS_PER_WORKER * (o.durationMs - warm)),
      4,
    ),
    makespanMs: round(endMs - t0, 0),
    cpuMsPerPlacement: round((cpu.user + cpu.system) / 1000 / Math.max(1, placed.length), 3),
    refusals: results.reduce((n, r) => n + r.result.refusals, 0),
    noCapacity: results.filter((r) => !r.result.placed && r.result.code === 'NO_CAPACITY').length,
    otherFailures: results.filter((r) => !r.result.placed && r.result.code !== 'NO_CAPACITY').length,
    roundsMean: round(placed.reduce((n, r) => n + r.result.rounds, 0) / Math.max(1, placed.length), 3),
    adsPublished,
    simEvents: time.events - events0,
    latencyByRounds,
  }
}

async function runBaseline(
  time: TimeBase,
  stream: readonly StreamJob[],
  durationMs: number,
): Promise<RunFigures> {
  const clock = time.clock
  const fifo = new CentralFifo({
    workers: WORKERS,
    gpusPerWorker: GPUS_PER_WORKER,
    backfillDepthMax: BACKFILL_DEPTH,
    headWaitMsMax: HEAD_WAIT_MS,
    clock,
  })
  const cpu0 = process.cpuUsage()
  const t0 = clock.now()
  for (const job of stream) clock.setTimeout(() => fifo.arrive(job), job.atMs)
  const arrivalsEnd = t0 + durationMs
  await time.runUntil(() => fifo.ended === stream.length, 600_000, 'every baseline job to end')
  const cpu = process.cpuUsage(cpu0)
  const endMs = clock.now()
  const warm = durationMs * 0.1
  const placedInWindow = fifo.intervals.filter((i) => i.startMs <= arrivalsEnd).length
  return {
    placements: fifo.intervals.length,
    placementsPerS: round(placedInWindow / (durationMs / 1000), 0),
    latency: summarize([0]),
    wait: summarize(fifo.waitsMs),
    utilization: round(
      busyGpuMs(fifo.intervals, t0 + warm, arrivalsEnd) / (WORKERS * GPUS_PER_WORKER * (durationMs - warm)),
      4,
    ),
    makespanMs: round(endMs - t0, 0),
    cpuMsPerPlacement: round((cpu.user + cpu.system) / 1000 / Math.max(1, fifo.intervals.length), 3),
    refusals: 0,
    noCapacity: 0,
    otherFailures: 0,
    roundsMean: 1,
    adsPublished: 0,
    simEvents: 0,
    latencyByRounds: '',
  }
}

/** CPU µs of one empty event of the simulated clock (calibration). */
async function simulatorEventCpuUs(): Promise<number> {
  const t = simulatedTime()
  const n = 50_000
  let left = n
  const tick = (): void => {
    if (--left > 0) t.clock.setTimeout(tick, 0.1)
  }
  t.clock.setTimeout(tick, 0.1)
  const c0 = process.cpuUsage()
  await t.runUntil(() => left === 0, 1e9, 'calibration')
  const c = process.cpuUsage(c0)
  return (c.user + c.system) / n
}

const bench: Bench = async ({ quick, args }) => {
  const report = newReport('scheduler', quick)
  const timeKind = args.find((a) => a.startsWith('--time='))?.slice(7) ?? 'simulated'
  if (timeKind !== 'simulated' && timeKind !== 'real')
    throw new Error(`--time=${timeKind}: simulated or real`)
  const seconds = arg(args, 'seconds', quick ? 3 : 20)
  const load = arg(args, 'load', 0.9)
  const placers = arg(args, 'placers', 4)
  const d = arg(args, 'd', 2)
  const commitMs = arg(args, 'commitMs', 2)
  const takenDelayMs = arg(args, 'takenDelayMs', 2)
  const jobMsMin = arg(args, 'jobMsMin', 20)
  const jobMsMax = arg(args, 'jobMsMax', 180)
  const seed = arg(args, 'seed', 15)
  const durationMs = seconds * 1000
  const stream = makeStream({
    seed,
    durationMs,
    gpusTotal: WORKERS * GPUS_PER_WORKER,
    load,
    jobMsMin,
    jobMsMax,
    projects: PROJECTS,
  })
  const newTime = () => (timeKind === 'real' ? realTime() : simulatedTime())
  // What one event of the simulator costs by itself (the heap, and draining the microtasks after it):
  // the distributed run's CPU includes it once per timer and message, so it is reported apart.
  const eventCpuUs = timeKind === 'simulated' ? await simulatorEventCpuUs() : 0
  const base = await runBaseline(newTime(), stream, durationMs)
  const dist = await runDistributed(newTime(), stream, {
    durationMs,
    placers,
    d,
    seed,
    commitMs,
    takenDelayMs,
  })
  const row = (target: string, f: RunFigures) => ({
    target,
    jobs: stream.length,
    placements: f.placements,
    placementsPerS: f.placementsPerS,
    placeP50Ms: f.latency.p50Ms,
    placeP99Ms: f.latency.p99Ms,
    waitP50Ms: f.wait.p50Ms,
    waitP99Ms: f.wait.p99Ms,
    utilization: f.utilization,
    makespanMs: f.makespanMs,
    cpuMsPerPlacement: f.cpuMsPerPlacement,
    placementsPerCpuS: round(1000 / Math.max(0.001, f.cpuMsPerPlacement), 0),
    // Less the simulator's own cost per event (an estimate: events × the calibrated empty-event cost).
    cpuMsPerPlacementLessSim: round(
      Math.max(0, f.cpuMsPerPlacement - (f.simEvents * eventCpuUs) / 1000 / Math.max(1, f.placements)),
      3,
    ),
  })
  report.rows.push({
    ...row(`gossip + reserve (${placers} placers, d=${d})`, dist),
    refusals: dist.refusals,
    noCapacityAttempts: dist.noCapacity,
    otherFailures: dist.otherFailures,
    roundsMean: dist.roundsMean,
    adsPublished: dist.adsPublished,
    simEventsPerPlacement: round(dist.simEvents / Math.max(1, dist.placements), 1),
  })
  report.baseline.push(row('central FIFO, perfect knowledge', base))
  report.ratios.push({
    figure: 'utilization',
    ratio: round(dist.utilization / base.utilization, 4),
    goal: '≥ 0.95',
  })
  report.ratios.push({ figure: 'makespanMs', ratio: round(dist.makespanMs / base.makespanMs, 4), goal: '' })
  report.ratios.push({
    figure: 'waitP99Ms',
    ratio: round(dist.wait.p99Ms / Math.max(0.001, base.wait.p99Ms), 3),
    goal: '',
  })
  report.notes.push(
    `time: ${timeKind === 'simulated' ? 'SIMULATED (discrete events; time figures measure the protocol, CPU is measured apart)' : 'REAL clock, accelerated (job durations are real ms; latencies include the host load)'}`,
    `${WORKERS} workers × ${GPUS_PER_WORKER} GPUs; ${stream.length} jobs over ${seconds} s (Poisson at ${Math.round(load * 100)}% of GPU capacity, ${round(stream.length / seconds, 0)} jobs/s; mean ${meanGpusPerJob()} GPUs/job; durations ${jobMsMin}–${jobMsMax} ms); ${placers} placing nodes`,
    `network one-way 0.1–0.5 ms per message; Raft commit modeled as ${commitMs} ms before the real apply`,
    'placement latency: placer takes the job → PlaceJob committed (Reserve round trips, refusals, retries, backoff and the commit included); the baseline places synchronously (0)',
    `utilization: busy GPU-ms / (GPUs × window), window = arrivals after a ${Math.round(durationMs * 0.1)} ms warm-up; placementsPerS: placements committed within the arrival window / its length`,
    'cpuMsPerPlacement: the CPU of this process over the run / placements — every role at once (4 placers, 100 workers, the state machine); placementsPerCpuS = 1000 / it',
    'goals: utilization ≥ 95% of the baseline, ≥ 2,000 placements/s, placement p99 ≤ 50 ms',
    `placement latency by rounds: ${dist.latencyByRounds}`,
  )
  return report
}

export default bench
