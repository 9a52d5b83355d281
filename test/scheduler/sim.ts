/**
 * A seeded simulation of GPU scheduling (TigerBeetle's VOPR, for the scheduler): one seed picks the
 * knobs (workers and their GPUs, placers, network latency, gossip delay and loss, crash rate, job mix),
 * then a safety phase submits jobs — single, multi-GPU and gangs — while workers crash and restart and
 * jobs are killed, and a liveness phase heals everything and requires every job to end. After every
 * event the invariant checkers (src/scheduler/checkers.ts) run; the first violation ends the run.
 */
import { SeededRng } from '../../src/consensus/index.js'
import { isTerminal, type Violation, type WorkerBug } from '../../src/scheduler/index.js'
import { ALICE, World, type WorkerSpec } from './world.js'

export interface SchedSimOptions {
  readonly seed: number
  readonly workerBugs?: ReadonlySet<WorkerBug>
  /** Virtual ms of the safety phase (default 20 s). */
  readonly safetyMs?: number
  /** Virtual ms the liveness phase may take at most (default 1000 s; it also fails after 30 s without progress). */
  readonly livenessMs?: number
}

export type SimViolation = { kind: Violation['kind'] | 'liveness'; message: string; atMs: number }

export interface SchedSimResult {
  readonly seed: number
  readonly violation?: SimViolation
  readonly jobs: number
  readonly ended: Record<string, number>
  readonly crashes: number
  readonly knobs: Record<string, unknown>
}

export async function runSchedSim(opts: SchedSimOptions): Promise<SchedSimResult> {
  const rng = new SeededRng(opts.seed)
  const pick = <T>(xs: readonly T[]): T => xs[rng.nextInt(xs.length)]!
  const workersN = 3 + rng.nextInt(6)
  const workers: WorkerSpec[] = Array.from({ length: workersN }, (_, i) => ({
    node: `w${i + 1}`,
    zone: `z${1 + (i % 2)}`,
    gpus: pick([2, 4, 8]),
  }))
  const placers = Array.from({ length: 1 + rng.nextInt(3) }, (_, i) => `p${i + 1}`)
  const knobs = {
    workers: workers.map((w) => `${w.node}:${w.gpus}`).join(' '),
    placers: placers.length,
    latencyMs: pick([0.5, 2, 5]),
    gossipDelayMs: pick([5, 50, 300]),
    gossipDrop: pick([0, 0.1, 0.4]),
    requestDrop: pick([0, 0, 0.02]),
    crashEveryMs: pick([0, 2000, 5000]),
    killEveryMs: pick([0, 3000]),
    jobEveryMs: pick([20, 60, 150]),
    gangShare: pick([0, 0.15, 0.3]),
  }
  const w = new World({
    seed: opts.seed,
    workers,
    placers,
    net: {
      latencyMs: [0.1, knobs.latencyMs],
      publishLatencyMs: [1, knobs.gossipDelayMs],
      publishDropRate: knobs.gossipDrop,
      dropRate: knobs.requestDrop,
    },
    placer: { reserveTtlMs: 1000, gangTtlMs: 400, requestTimeoutMs: 200 },
    publishIntervalMs: 300,
    viewExpiryMs: 1500,
    workerBugs: opts.workerBugs,
  })
  w.startViewExpiry()
  w.startReconciler(placers[0]!, { startTimeoutMs: 3000 })
  const ids: number[] = []
  let crashes = 0
  const down = new Set<string>()
  let violation: SimViolation | undefined
  const check = (): boolean => {
    const v = [...w.check(), ...w.violations]
    if (v.length > 0 && violation === undefined) violation = { ...v[0]!, atMs: w.sched.now() }
    return violation !== undefined
  }

  // The workload and the nemesis are events on the same virtual clock.
  const clock = w.placers.get(placers[0]!)!.clock
  let safety = true
  const submitLoop = (): void => {
    if (!safety) return
    const gang = rng.nextInt(1000) < knobs.gangShare * 1000
    const maxGpus = Math.max(...workers.map((x) => x.gpus))
    const gpus = gang
      ? pick([1, 2].filter((g) => g <= maxGpus))
      : pick([0, 1, 1, 2, 4, 8].filter((g) => g <= maxGpus))
    const tasks = gang ? 2 + rng.nextInt(2) : 1
    const body = {
      gpus,
      tasks,
      retries: rng.nextInt(3),
      env: { SIM_MS: String(20 + rng.nextInt(800)) },
    }
    void w.submit(pick(placers), body, ALICE).then(
      (r) => ids.push(r.id),
      () => undefined, // JOB_TOO_LARGE while workers are down: fine
    )
    clock.setTimeout(submitLoop, 1 + rng.nextInt(knobs.jobEveryMs * 2))
  }
  const crashLoop = (): void => {
    if (!safety || knobs.crashEveryMs === 0) return
    const up = workers.filter((x) => !down.has(x.node))
    if (up.length > 1) {
      const victim = pick(up).node
      w.crashWorker(victim)
      crashes++
      down.add(victim)
      clock.setTimeout(
        () => {
          if (!down.delete(victim)) return // the liveness phase brought it back already
          void w.restartWorker(victim)
        },
        200 + rng.nextInt(3000),
      )
    }
    clock.setTimeout(crashLoop, 1 + rng.nextInt(knobs.crashEveryMs * 2))
  }
  const killLoop = (): void => {
    if (!safety || knobs.killEveryMs === 0) return
    const live = ids.filter((id) => !isTerminal(w.job(id).state))
    if (live.length > 0)
      void w.propose({ killJob: { jobId: pick(live) } }, { as: ALICE }).catch(() => undefined)
    clock.setTimeout(killLoop, 1 + rng.nextInt(knobs.killEveryMs * 2))
  }
  clock.setTimeout(submitLoop, 100)
  clock.setTimeout(crashLoop, 500)
  clock.setTimeout(killLoop, 700)

  const safetyEnd = w.sched.now() + (opts.safetyMs ?? 20_000)
  while (w.sched.now() < safetyEnd && !check()) await w.step()
  safety = false
  // Liveness: everyone back, then every job must end.
  if (violation === undefined) {
    await w.run(0)
    await Promise.all([...down].map((n) => w.restartWorker(n)))
    down.clear()
    // Progress, not a deadline: a backlog may take long, but some job must end every stallMs.
    const stallMs = 30_000
    const liveEnd = w.sched.now() + (opts.livenessMs ?? 1_000_000)
    let endedCount = -1
    let lastProgress = w.sched.now()
    while (!ids.every((id) => isTerminal(w.job(id).state))) {
      if (check()) break
      const n = ids.filter((id) => isTerminal(w.job(id).state)).length
      if (n !== endedCount) {
        endedCount = n
        lastProgress = w.sched.now()
      }
      if (w.sched.now() - lastProgress > stallMs || w.sched.now() > liveEnd) {
        const stuck = ids.filter((id) => !isTerminal(w.job(id).state)).slice(0, 5)
        violation = {
          kind: 'liveness',
          message: `no job ended for ${stallMs} ms; e.g. jobs ${stuck.join(', ')} (${stuck.map((id) => JSON.stringify({ s: w.job(id).state, a: w.job(id).attempts, t: w.job(id).tasks.map((t) => t.node) })).join(' ')})`,
          atMs: w.sched.now(),
        }
        break
      }
      await w.step()
    }
  }
  const ended: Record<string, number> = {}
  for (const id of ids) {
    const s = ['?', 'QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'KILLED', 'LOST'][w.job(id).state]!
    ended[s] = (ended[s] ?? 0) + 1
  }
  return { seed: opts.seed, violation, jobs: ids.length, ended, crashes, knobs }
}
