// Recovery: a worker that dies (its jobs LOST and re-queued while retries remain), a worker that
// restarts (it releases what it no longer runs and reports it), a placer that dies mid-placement (the
// workers' holds settle from Raft; the leader adopts its queued jobs), an orphaned placement (re-queued).
import { describe, expect, it } from 'vitest'
import { JOB_STATE, WorkerRpcClient } from '../../src/scheduler/index.js'
import { ALICE, World, stateOf } from './world.js'

const workers = [
  { node: 'w1', gpus: 2 },
  { node: 'w2', gpus: 2 },
]

describe('recovery', () => {
  it('a worker that dies mid-job: the job is LOST from it and runs again elsewhere (retries=1)', async () => {
    const w = new World({ seed: 41, workers, placers: ['p1'], viewExpiryMs: 1000 })
    w.startViewExpiry()
    w.startReconciler('p1')
    await w.run(50)
    const { id } = await w.submit('p1', { gpus: 2, retries: 1, env: { SIM_MS: '3000' } })
    await w.runUntil(() => w.job(id).tasks[0]?.started === true, 2000, 'the job to start')
    const first = w.job(id).tasks[0]!.node
    w.crashWorker(first)
    await w.runUntil(
      () => w.job(id).state === JOB_STATE.SUCCEEDED,
      30_000,
      'the job to run again and succeed',
    )
    const job = w.job(id)
    expect(job).toMatchObject({ attempts: 2, lost: 1, runId: `${id}-2` })
    expect(job.tasks[0]!.node).not.toBe(first)
    expect(w.check()).toEqual([])
  })

  it('with no retry left the job is LOST', async () => {
    const w = new World({ seed: 42, workers, placers: ['p1'], viewExpiryMs: 1000 })
    w.startViewExpiry()
    w.startReconciler('p1')
    await w.run(50)
    const { id } = await w.submit('p1', { gpus: 1, env: { SIM_MS: '3000' } })
    await w.runUntil(() => w.job(id).tasks[0]?.started === true, 2000)
    w.crashWorker(w.job(id).tasks[0]!.node)
    await w.runUntil(() => w.job(id).state === JOB_STATE.LOST, 10_000, 'LOST')
    expect(w.job(id).reason).toMatch(/worker w\d is gone/)
  })

  it('a restarted worker releases what it no longer runs and reports its jobs lost', async () => {
    const w = new World({ seed: 43, workers: [{ node: 'w1', gpus: 2 }], placers: ['p1'] })
    await w.run(50)
    const { id } = await w.submit('p1', { gpus: 2, retries: 1, env: { SIM_MS: '1000' } })
    await w.runUntil(() => w.job(id).tasks[0]?.started === true, 2000)
    expect(w.workers.get('w1')!.persisted!.reservations).toHaveLength(1) // what it promised, persisted
    w.crashWorker('w1')
    const settled = await w.restartWorker('w1')
    expect(settled).toEqual({ requeued: [], lost: [id] })
    // Its table no longer holds the old run's GPUs (the new run may hold them again).
    expect(
      w
        .agent('w1')
        .reservations()
        .filter((r) => r.attempt === 1),
    ).toEqual([])
    await w.runUntil(() => w.job(id).state === JOB_STATE.SUCCEEDED, 10_000)
    expect(w.job(id)).toMatchObject({ attempts: 2, lost: 1 })
  })

  it('a placer that dies after PlaceJob but before its Commit arrives: the worker confirms from Raft and runs it', async () => {
    const w = new World({
      seed: 44,
      workers: [{ node: 'w1', gpus: 2 }],
      placers: ['p1'],
      placer: { reserveTtlMs: 500 },
    })
    await w.run(50)
    w.jobs().onJobChange((j) => {
      if (j.state === JOB_STATE.RUNNING) w.net.crash('p1') // before the placer's Commit leaves
    })
    const { id } = await w.submit('p1', { gpus: 1, env: { SIM_MS: '100' } })
    await w.runUntil(() => w.job(id).state === JOB_STATE.SUCCEEDED, 5000, 'the job to succeed')
    expect(w.job(id).attempts).toBe(1) // the same placement ran: nothing was re-queued
    const started = w.events.find((e) => e.kind === 'start' && e.jobId === id)!
    expect(started.atMs - w.job(id).placedMs).toBeGreaterThanOrEqual(490) // at the hold's expiry
  })

  it('a placer that dies after Reserve, before PlaceJob: the hold lapses; the leader adopts the job and places it', async () => {
    const w = new World({ seed: 45, workers: [{ node: 'w1', gpus: 2 }], placers: ['p1'] })
    w.startReconciler('p1')
    await w.run(50)
    // A job queued by node 'p9', which reserves and then dies.
    const { id } = (await w.propose(
      {
        submitJob: {
          project: 'p',
          name: 'j',
          placer: 'p9',
          spec: { command: ['x'], gpus: 2, tasks: 1, env: [{ name: 'SIM_MS', value: '50' }] },
        },
      },
      { as: ALICE },
    )) as { id: number }
    const reply = await new Promise((resolve) => {
      void new WorkerRpcClient(w.net.endpoint('p9'))
        .reserve(
          'w1',
          {
            reservationId: 'p9.1.1.0',
            jobId: id,
            attempt: 1,
            rank: 0,
            gpus: 2,
            gpuModel: '',
            cpus: 0,
            memoryMiB: 0,
            ttlMs: 1000,
            wantPort: true,
          },
          { timeoutMs: 100 },
        )
        .then(resolve)
      void w.run(10)
    })
    expect(reply).toMatchObject({ ok: true })
    w.net.crash('p9')
    expect(w.agent('w1').reservations()).toHaveLength(1)
    await w.runUntil(() => w.job(id).state === JOB_STATE.SUCCEEDED, 10_000, 'the adopted job to succeed')
    expect(w.job(id).placer).toBe('p1')
  })

  it('an orphaned placement (committed, never started) is re-queued and placed again', async () => {
    const w = new World({ seed: 46, workers: [{ node: 'w1', gpus: 2 }], placers: ['p1'] })
    w.startReconciler('p1', { startTimeoutMs: 1000 })
    await w.run(50)
    const { id } = (await w.propose(
      { submitJob: { project: 'p', name: 'j', placer: 'p9', spec: { command: ['x'], gpus: 1, tasks: 1 } } },
      { as: ALICE },
    )) as { id: number }
    // Committed on w1 without any reservation there (its placer died before reserving... or lied).
    await w.propose({
      placeJob: { jobId: id, attempt: 1, tasks: [{ rank: 0, node: 'w1', gpus: ['GPU-w1-0'] }] },
    })
    await w.runUntil(
      () => w.job(id).state === JOB_STATE.SUCCEEDED,
      20_000,
      'the job to be re-queued and succeed',
    )
    expect(w.job(id)).toMatchObject({ attempts: 2, lost: 0 })
    expect(stateOf(w, id)).toBe('SUCCEEDED')
  })

  it('a run marked lost while its worker lives: onJobGone stops the task there and frees its GPUs for the next run', async () => {
    // A worker without a replica sees only jobs with a task on it: once the run is re-queued (tasks
    // cleared) the job vanishes from its reads, and the node integration calls onJobGone.
    const w = new World({ seed: 47, workers: [{ node: 'w1', gpus: 2 }], placers: ['p1'] })
    await w.run(50)
    const { id } = await w.submit('p1', { gpus: 2, retries: 1, env: { SIM_MS: '60000' } })
    await w.runUntil(() => w.job(id).tasks[0]?.started === true, 2000, 'the first run to start')
    await w.propose({ markJobLost: { jobId: id, attempt: 1, reason: 'worker w1 looked gone' } })
    expect(w.job(id)).toMatchObject({ state: JOB_STATE.QUEUED, tasks: [] })
    const before = w.events.filter((e) => e.kind === 'end' && e.attempt === 1).length
    w.agent('w1').onJobGone(id)
    await w.runUntil(
      () => w.events.some((e) => e.kind === 'start' && e.attempt === 2),
      5_000,
      'the second run to start on the freed GPUs',
    )
    const end1 = w.events.find((e) => e.kind === 'end' && e.attempt === 1)!
    const start2 = w.events.find((e) => e.kind === 'start' && e.attempt === 2)!
    expect(before).toBe(0)
    expect(end1.atMs).toBeLessThanOrEqual(start2.atMs)
    expect(w.job(id)).toMatchObject({ state: JOB_STATE.RUNNING, attempts: 2, lost: 1 })
    expect(w.check()).toEqual([])
  })
})
