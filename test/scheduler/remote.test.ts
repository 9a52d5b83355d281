// What a gpu node without a metadata replica may ask of a metadata node (src/scheduler/remote.ts): reports
// only about its own tasks, reads only of jobs with a task on it, setups only of its own tasks in the
// current run. Each check is attacked by a node that is not the task's: a worker reporting another
// worker's task, reading a job it does not run, setting up a task of an older run.
import { describe, expect, it } from 'vitest'
import { createLocalGroup, createMetaStateMachine } from '../../src/meta/index.js'
import {
  JOB_STATE,
  createJobProposer,
  decodeJobRecord,
  encodeJobRecord,
  jobVisibleToNode,
  jobsModule,
  nodeCommandProblem,
  remoteNodeCommand,
  taskKeyName,
  taskSetupProblem,
  type JobsModule,
} from '../../src/scheduler/index.js'

async function gangOnTwoWorkers() {
  const sm = createMetaStateMachine({ modules: [jobsModule()] })
  const clock = { now: () => 1_000_000, setTimeout: () => 0, clearTimeout: () => undefined }
  const propose = createJobProposer({
    group: createLocalGroup(sm),
    clock,
    node: { user: 'hopsd', groups: [] },
  })
  const jobs = () => sm.module<JobsModule>('jobs')
  const { id } = (await propose(
    {
      submitJob: {
        project: 'demo',
        name: 'gang',
        placer: 'm1',
        spec: { command: ['true'], gpus: 1, tasks: 2, env: [{ name: 'SECRET', value: 's3cret' }] },
      },
    },
    { as: { user: 'alice', groups: [] } },
  )) as { id: number }
  await propose({
    placeJob: {
      jobId: id,
      attempt: 1,
      tasks: [
        { rank: 0, node: 'w1', gpus: ['g0'], addr: '127.0.0.1' },
        { rank: 1, node: 'w2', gpus: ['g0'], addr: '127.0.0.1' },
      ],
      masterPort: 29500,
    },
  })
  return { id, job: () => jobs().get(id)!, propose }
}

describe('remote node commands', () => {
  it('a worker reports only its own tasks; lost/requeue only for jobs with a task on it', async () => {
    const { id, job } = await gangOnTwoWorkers()
    const started = (rank: number) => ({ jobStarted: { jobId: id, attempt: 1, rank, startedMs: 1 } })
    expect(nodeCommandProblem(started(0), job(), 'w1')).toBeUndefined()
    expect(nodeCommandProblem(started(1), job(), 'w2')).toBeUndefined()
    // Attacks: another worker's rank, a node with no task, a rank that does not exist.
    expect(nodeCommandProblem(started(1), job(), 'w1')).toMatch(/task 1 .* not placed on w1/)
    expect(nodeCommandProblem(started(0), job(), 'w3')).toMatch(/not placed on w3/)
    expect(nodeCommandProblem(started(7), job(), 'w1')).toMatch(/task 7/)
    const finished = { jobFinished: { jobId: id, attempt: 1, rank: 1, exitCode: 0 } }
    expect(nodeCommandProblem(finished, job(), 'w1')).toMatch(/not placed on w1/)
    expect(nodeCommandProblem(finished, job(), 'w2')).toBeUndefined()
    const lost = { markJobLost: { jobId: id, attempt: 1, reason: 'x' } }
    expect(nodeCommandProblem(lost, job(), 'w2')).toBeUndefined()
    expect(nodeCommandProblem(lost, job(), 'w3')).toMatch(/no task on w3/)
    expect(nodeCommandProblem({ requeueJob: { jobId: id, attempt: 1 } }, job(), 'w3')).toMatch(/no task/)
    // The record must be the job the command names.
    expect(nodeCommandProblem(started(0), undefined, 'w1')).toMatch(/no job/)
    expect(nodeCommandProblem({ jobStarted: { jobId: id + 1, attempt: 1, rank: 0 } }, job(), 'w1')).toMatch(
      /no job/,
    )
  })

  it('only the worker report ops pass, one at a time', async () => {
    const { id, job } = await gangOnTwoWorkers()
    for (const cmd of [
      { killJob: { jobId: id } },
      { placeJob: { jobId: id, attempt: 2, tasks: [] } },
      { adoptJob: { jobId: id, placer: 'w1' } },
      { submitJob: { project: 'demo', name: 'x', spec: { command: ['true'] } } },
      { setSetting: { name: 'superuser', value: 'w1' } },
      {},
      { jobStarted: { jobId: id, attempt: 1, rank: 0 }, killJob: { jobId: id } },
    ])
      expect(nodeCommandProblem(cmd, job(), 'w1'), JSON.stringify(cmd)).toMatch(/only one of/)
    expect(remoteNodeCommand({ jobFinished: { jobId: 0, attempt: 1, rank: 0 } })).toMatch(/no job id/)
    expect(remoteNodeCommand({ requeueJob: { jobId: id, attempt: 1 } })).toEqual({
      op: 'requeueJob',
      jobId: id,
    })
  })

  it('reads: a job is visible only to the nodes of its tasks; records survive the wire', async () => {
    const { job } = await gangOnTwoWorkers()
    expect(jobVisibleToNode(job(), 'w1')).toBe(true)
    expect(jobVisibleToNode(job(), 'w2')).toBe(true)
    expect(jobVisibleToNode(job(), 'w3')).toBe(false)
    expect(jobVisibleToNode(job(), 'm1')).toBe(false) // the placer is no worker of it
    expect(decodeJobRecord(encodeJobRecord(job()))).toEqual(job())
  })

  it('setup: only a task on the asking node, in the current run', async () => {
    const { id, job, propose } = await gangOnTwoWorkers()
    expect(taskSetupProblem(job(), 1, 0, 'w1')).toBeUndefined()
    expect(taskSetupProblem(job(), 1, 1, 'w2')).toBeUndefined()
    expect(taskSetupProblem(job(), 1, 1, 'w1')).toMatch(/does not run on w1/)
    expect(taskSetupProblem(job(), 2, 0, 'w1')).toMatch(/not running attempt 2/)
    expect(taskSetupProblem(undefined, 1, 0, 'w1')).toMatch(/no such job/)
    expect(taskKeyName(job(), 1)).toBe(`job-${job().runId}-1`)
    // Once the run is over, no new setup for it.
    await propose({ jobStarted: { jobId: id, attempt: 1, rank: 0, startedMs: 1 } })
    await propose({ jobFinished: { jobId: id, attempt: 1, rank: 0, exitCode: 1, startedMs: 1, endedMs: 2 } })
    expect(job().state).not.toBe(JOB_STATE.RUNNING)
    expect(taskSetupProblem(job(), 1, 1, 'w2')).toMatch(/not running/)
  })
})
