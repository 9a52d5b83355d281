// The jobs module of the metadata state machine: every transition, and every refusal leaves the state
// byte-identical (snapshot before == snapshot after).
import { describe, expect, it } from 'vitest'
import {
  createLocalGroup,
  createMetaStateMachine,
  encodeCommand,
  metaProto,
  type MetaResult,
} from '../../src/meta/index.js'
import {
  JOB_STATE,
  createJobProposer,
  isSchedError,
  jobsModule,
  type Caller,
  type JobCommand,
  type JobsModule,
} from '../../src/scheduler/index.js'

const NODE: Caller = { user: 'hopsd', groups: [] }
const ALICE: Caller = { user: 'alice', groups: [] }
const BOB: Caller = { user: 'bob', groups: [] }

function setup() {
  const sm = createMetaStateMachine({ modules: [jobsModule()] })
  let now = 1_000_000
  const clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => undefined }
  const propose = createJobProposer({ group: createLocalGroup(sm), clock, node: NODE })
  const jobs = () => sm.module<JobsModule>('jobs')
  const advance = (ms: number) => (now += ms)
  /** Proposes and expects a refusal with `code` that changes nothing. */
  const refused = async (cmd: JobCommand, code: string, as: Caller = NODE) => {
    const before = tablesOf(sm.snapshot())
    const err = await propose(cmd, { as }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err, `expected ${code}`).toBeDefined()
    expect((err as { code: string }).code).toBe(code)
    // The applied index moved on; no table did.
    expect(tablesOf(sm.snapshot())).toEqual(before)
  }
  const submit = async (spec: Record<string, unknown> = {}, as: Caller = ALICE, project = 'p1') =>
    (
      (await propose(
        {
          submitJob: {
            project,
            name: 'train',
            placer: 'n1',
            spec: { command: ['true'], gpus: 1, tasks: 1, ...spec },
          },
        },
        { as },
      )) as { id: number }
    ).id
  const place = (id: number, attempt: number, tasks: { node: string; gpus: string[] }[]) =>
    propose({
      placeJob: { jobId: id, attempt, tasks: tasks.map((t, rank) => ({ rank, ...t })), masterPort: 29500 },
    })
  return { sm, propose, jobs, advance, refused, submit, place }
}

/** A snapshot's tables, hex-encoded (everything but the applied index). */
function tablesOf(snapshot: Uint8Array): unknown {
  const snap = metaProto.meta.Snapshot.decode(snapshot)
  return snap.tables.map((t) => ({
    name: t.name,
    keys: t.keys,
    values: (t.values ?? []).map((v) => Buffer.from(v).toString('hex')),
  }))
}

describe('jobs module: transitions', () => {
  it('SubmitJob → QUEUED with an id, owner, times; listed by project and state, FIFO', async () => {
    const { submit, jobs, advance } = setup()
    const a = await submit()
    advance(10)
    const b = await submit({ gpus: 2 }, BOB, 'p2')
    const c = await submit()
    expect([a, b, c]).toEqual([1, 2, 3])
    const job = jobs().get(a)!
    expect(job).toMatchObject({
      id: 1,
      project: 'p1',
      name: 'train',
      owner: 'alice',
      state: JOB_STATE.QUEUED,
      attempts: 0,
      placer: 'n1',
    })
    expect(job.submittedMs).toBe(1_000_000)
    expect(
      jobs()
        .list({ project: 'p1' })
        .map((j) => j.id),
    ).toEqual([1, 3])
    expect(
      jobs()
        .list({ project: 'p1', state: 'QUEUED' })
        .map((j) => j.id),
    ).toEqual([1, 3])
    expect(jobs().list({ state: 'RUNNING' })).toEqual([])
    expect(
      jobs()
        .queued()
        .map((j) => j.id),
    ).toEqual([1, 3, 2]) // by project, then id
    expect(
      jobs()
        .queuedFor('n1')
        .map((j) => j.id),
    ).toEqual([1, 2, 3])
    expect(
      jobs()
        .list({ afterId: 1, limit: 1 })
        .map((j) => j.id),
    ).toEqual([2])
  })

  it('PlaceJob → RUNNING with the placement; started, finished → SUCCEEDED; usage charged', async () => {
    const { submit, jobs, place, propose, advance } = setup()
    const id = await submit({ gpus: 2 })
    expect(await place(id, 1, [{ node: 'w1', gpus: ['g0', 'g1'] }])).toEqual({ id, runId: `${id}-1` })
    let job = jobs().get(id)!
    expect(job.state).toBe(JOB_STATE.RUNNING)
    expect(job.tasks[0]).toMatchObject({ rank: 0, node: 'w1', gpus: ['g0', 'g1'], started: false })
    expect(jobs().gpuHolder('w1', 'g1')).toBe(id)
    expect(
      jobs()
        .runningOn('w1')
        .map((j) => j.id),
    ).toEqual([id])
    await propose({ jobStarted: { jobId: id, attempt: 1, rank: 0, startedMs: 2_000_000 } })
    advance(5)
    await propose({
      jobFinished: {
        jobId: id,
        attempt: 1,
        rank: 0,
        exitCode: 0,
        startedMs: 2_000_000,
        endedMs: 2_000_000 + 3600_000,
      },
    })
    job = jobs().get(id)!
    expect(job.state).toBe(JOB_STATE.SUCCEEDED)
    expect(job).toMatchObject({ exitCode: 0, startedMs: 2_000_000, endedMs: 5_600_000 })
    expect(jobs().usageGpuMs('p1')).toBe(2 * 3600_000)
    expect(jobs().gpuHolder('w1', 'g1')).toBeUndefined()
    expect(jobs().runningOn('w1')).toEqual([])
  })

  it('a non-zero exit → FAILED with the reason; a gang task failing fails the gang, others report late', async () => {
    const { submit, jobs, place, propose } = setup()
    const id = await submit({ gpus: 1 })
    await place(id, 1, [{ node: 'w1', gpus: ['g0'] }])
    await propose({ jobFinished: { jobId: id, attempt: 1, rank: 0, exitCode: 3, startedMs: 1, endedMs: 2 } })
    expect(jobs().get(id)).toMatchObject({ state: JOB_STATE.FAILED, exitCode: 3, reason: 'exit code 3' })

    const gang = await submit({ gpus: 2, tasks: 3 })
    await place(gang, 1, [
      { node: 'w1', gpus: ['g0', 'g1'] },
      { node: 'w2', gpus: ['g0', 'g1'] },
      { node: 'w3', gpus: ['g0', 'g1'] },
    ])
    for (const rank of [0, 1, 2])
      await propose({ jobStarted: { jobId: gang, attempt: 1, rank, startedMs: 10 } })
    await propose({
      jobFinished: {
        jobId: gang,
        attempt: 1,
        rank: 1,
        exitCode: 0,
        signal: 'SIGKILL',
        startedMs: 10,
        endedMs: 20,
      },
    })
    expect(jobs().get(gang)).toMatchObject({ state: JOB_STATE.FAILED, reason: 'task 1: signal SIGKILL' })
    expect(jobs().gpuHolder('w3', 'g0')).toBeUndefined() // the whole gang's GPUs are free in Raft
    // The other tasks' ends are still recorded (and charged).
    await propose({
      jobFinished: {
        jobId: gang,
        attempt: 1,
        rank: 0,
        exitCode: 143,
        signal: 'SIGTERM',
        startedMs: 10,
        endedMs: 30,
      },
    })
    expect(jobs().get(gang)!.tasks[0]).toMatchObject({ finished: true, exitCode: 143 })
    expect(jobs().get(gang)!.state).toBe(JOB_STATE.FAILED)
  })

  it('KillJob: a queued job is KILLED at once; a running one is marked, then KILLED when it ends', async () => {
    const { submit, jobs, place, propose } = setup()
    const q = await submit()
    expect(await propose({ killJob: { jobId: q } }, { as: ALICE })).toEqual({ id: q, state: 'KILLED' })
    expect(jobs().get(q)!.state).toBe(JOB_STATE.KILLED)
    const r = await submit()
    await place(r, 1, [{ node: 'w1', gpus: ['g0'] }])
    expect(await propose({ killJob: { jobId: r } }, { as: ALICE })).toEqual({ id: r, state: 'RUNNING' })
    expect(jobs().get(r)!.killRequested).toBe(true)
    await propose({
      jobFinished: {
        jobId: r,
        attempt: 1,
        rank: 0,
        exitCode: 143,
        signal: 'SIGTERM',
        startedMs: 1,
        endedMs: 2,
      },
    })
    expect(jobs().get(r)).toMatchObject({ state: JOB_STATE.KILLED, reason: 'killed by alice' })
  })

  it('MarkJobLost re-queues while retries remain, then LOST; RequeueJob does not count a retry', async () => {
    const { submit, jobs, place, propose } = setup()
    const id = await submit({ retries: 1 })
    await place(id, 1, [{ node: 'w1', gpus: ['g0'] }])
    await propose({ requeueJob: { jobId: id, attempt: 1, reason: 'orphaned' } })
    expect(jobs().get(id)).toMatchObject({
      state: JOB_STATE.QUEUED,
      lost: 0,
      attempts: 1,
      reason: 'orphaned',
      tasks: [],
    })
    await place(id, 2, [{ node: 'w2', gpus: ['g0'] }])
    await propose({ jobStarted: { jobId: id, attempt: 2, rank: 0, startedMs: 5 } })
    expect(await propose({ markJobLost: { jobId: id, attempt: 2, reason: 'w2 died' } })).toEqual({
      id,
      state: 'QUEUED',
    })
    expect(jobs().get(id)).toMatchObject({ state: JOB_STATE.QUEUED, lost: 1, reason: 'w2 died' })
    await place(id, 3, [{ node: 'w3', gpus: ['g0'] }])
    expect(jobs().get(id)!.runId).toBe(`${id}-3`)
    expect(await propose({ markJobLost: { jobId: id, attempt: 3 } })).toEqual({ id, state: 'LOST' })
    expect(jobs().get(id)).toMatchObject({ state: JOB_STATE.LOST, lost: 2 })
  })

  it('AdoptJob hands a queued job to another placer', async () => {
    const { submit, jobs, propose } = setup()
    const id = await submit()
    await propose({ adoptJob: { jobId: id, placer: 'n2' } })
    expect(jobs().queuedFor('n1')).toEqual([])
    expect(
      jobs()
        .queuedFor('n2')
        .map((j) => j.id),
    ).toEqual([id])
    expect(jobs().placersWithQueuedJobs()).toEqual(['n2'])
  })
})

describe('jobs module: refusals change nothing', () => {
  it('PlaceJob refused: not queued, wrong attempt, wrong task count, GPU bound elsewhere, same GPU twice', async () => {
    const { submit, place, refused } = setup()
    const a = await submit({ gpus: 1 })
    const b = await submit({ gpus: 2, tasks: 2 })
    await place(a, 1, [{ node: 'w1', gpus: ['g0'] }])
    const placeCmd = (
      id: number,
      attempt: number,
      tasks: { node: string; gpus: string[] }[],
    ): JobCommand => ({
      placeJob: { jobId: id, attempt, tasks: tasks.map((t, rank) => ({ rank, ...t })) },
    })
    await refused(placeCmd(a, 2, [{ node: 'w1', gpus: ['g1'] }]), 'JOB_STATE_CONFLICT') // placed already
    await refused(
      placeCmd(b, 2, [
        { node: 'w2', gpus: ['g0', 'g1'] },
        { node: 'w3', gpus: ['g0', 'g1'] },
      ]),
      'JOB_STATE_CONFLICT',
    )
    await refused(placeCmd(b, 1, [{ node: 'w2', gpus: ['g0', 'g1'] }]), 'INVALID_JOB_SPEC') // one of two tasks
    await refused(
      placeCmd(b, 1, [
        { node: 'w2', gpus: ['g0'] },
        { node: 'w3', gpus: ['g0', 'g1'] },
      ]),
      'INVALID_JOB_SPEC',
    )
    await refused(
      placeCmd(b, 1, [
        { node: 'w1', gpus: ['g0', 'g1'] },
        { node: 'w3', gpus: ['g0', 'g1'] },
      ]),
      'GPU_CONFLICT',
    )
    await refused(
      placeCmd(b, 1, [
        { node: 'w2', gpus: ['g0', 'g1'] },
        { node: 'w2', gpus: ['g1', 'g2'] },
      ]),
      'GPU_CONFLICT',
    )
    await refused(placeCmd(99, 1, [{ node: 'w2', gpus: ['g0'] }]), 'JOB_NOT_FOUND')
  })

  it('reports about another attempt, kills of ended jobs, strangers and non-nodes are refused', async () => {
    const { submit, place, refused, propose } = setup()
    const id = await submit()
    await refused({ jobStarted: { jobId: id, attempt: 1, rank: 0, startedMs: 1 } }, 'JOB_STATE_CONFLICT') // queued
    await place(id, 1, [{ node: 'w1', gpus: ['g0'] }])
    await refused({ jobStarted: { jobId: id, attempt: 2, rank: 0, startedMs: 1 } }, 'JOB_STATE_CONFLICT')
    await refused({ jobFinished: { jobId: id, attempt: 1, rank: 5, exitCode: 0 } }, 'JOB_STATE_CONFLICT')
    await refused({ markJobLost: { jobId: id, attempt: 2 } }, 'JOB_STATE_CONFLICT')
    await refused({ killJob: { jobId: id } }, 'JOB_ACCESS_DENIED', BOB)
    await refused({ placeJob: { jobId: id, attempt: 2, tasks: [] } }, 'JOB_ACCESS_DENIED', ALICE) // users don't place
    await refused({ jobFinished: { jobId: id, attempt: 1, rank: 0 } }, 'JOB_ACCESS_DENIED', ALICE)
    await propose({ jobStarted: { jobId: id, attempt: 1, rank: 0, startedMs: 1 } })
    await refused({ requeueJob: { jobId: id, attempt: 1 } }, 'JOB_STATE_CONFLICT') // it started: lost, not orphaned
    await propose({ jobFinished: { jobId: id, attempt: 1, rank: 0, exitCode: 0, startedMs: 1, endedMs: 2 } })
    await refused({ killJob: { jobId: id } }, 'JOB_STATE_CONFLICT', ALICE)
    await refused({ adoptJob: { jobId: id, placer: 'n9' } }, 'JOB_STATE_CONFLICT')
  })

  it('SubmitJob that bypassed the edge is still checked in apply', async () => {
    const { refused } = setup()
    await refused({ submitJob: { project: 'p', name: 'x', spec: { gpus: 1, tasks: 1 } } }, 'INVALID_JOB_SPEC') // no command
    await refused(
      { submitJob: { project: '../p', name: 'x', spec: { command: ['a'], gpus: 1, tasks: 1 } } },
      'INVALID_JOB_SPEC',
    )
    await refused(
      { submitJob: { project: 'p', name: 'x', spec: { command: ['a'], gpus: 1, tasks: 0 } } },
      'INVALID_JOB_SPEC',
    )
    await refused(
      {
        submitJob: { project: 'p', name: 'x', spec: { command: ['a'], script: '/s.py', gpus: 1, tasks: 1 } },
      },
      'INVALID_JOB_SPEC',
    )
  })
})

describe('jobs module: replicas', () => {
  it('a replica restored from a snapshot has the same rows and indexes, and re-snapshots identically', async () => {
    const { sm, submit, place, propose } = setup()
    const ids = [await submit(), await submit({ gpus: 2 }), await submit({}, BOB, 'p2')]
    await place(ids[1]!, 1, [{ node: 'w1', gpus: ['g0', 'g1'] }])
    await propose({ killJob: { jobId: ids[0]! } })
    const snap = sm.snapshot()
    const copy = createMetaStateMachine({ modules: [jobsModule()] })
    copy.restore(snap)
    expect(Buffer.from(copy.snapshot()).equals(Buffer.from(snap))).toBe(true)
    const jobs = copy.module<JobsModule>('jobs')
    expect(jobs.gpuHolder('w1', 'g1')).toBe(ids[1])
    expect(jobs.list({ state: 'KILLED' }).map((j) => j.id)).toEqual([ids[0]])
    expect(jobs.queued().map((j) => j.id)).toEqual([ids[2]])
    // And the copy keeps applying the same log to the same state.
    const cmd = encodeCommand({ nowMs: 5, user: 'hopsd', groups: [], killJob: { jobId: ids[2]! } })
    const [r1] = sm.apply([{ index: sm.appliedIndex + 1, term: 1, data: cmd }]) as MetaResult[]
    const [r2] = copy.apply([{ index: copy.appliedIndex + 1, term: 1, data: cmd }]) as MetaResult[]
    expect(r1).toEqual(r2)
    expect(Buffer.from(copy.snapshot()).equals(Buffer.from(sm.snapshot()))).toBe(true)
  })

  it('onJobChange tells listeners once per job per batch, with the committed record', async () => {
    const { submit, jobs, place } = setup()
    const seen: [number, number][] = []
    jobs().onJobChange((j) => seen.push([j.id, j.state]))
    const id = await submit()
    await place(id, 1, [{ node: 'w1', gpus: ['g0'] }])
    await new Promise((r) => setImmediate(r))
    expect(seen).toEqual([
      [id, JOB_STATE.QUEUED],
      [id, JOB_STATE.RUNNING],
    ])
    expect(isSchedError(new Error('x'))).toBe(false)
  })
})
