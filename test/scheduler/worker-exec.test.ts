// A worker running real processes: the whole path on a real clock — service → Raft (local group) →
// placer → Reserve over the in-memory network → PlaceJob → Commit → the executor — with exactly the
// reserved GPUs visible, logs streamed to the sink, kill and timeout committed as the job's end.
import { afterAll, describe, expect, it } from 'vitest'
import { SeededRng } from '../../src/consensus/index.js'
import { createLocalGroup, createMetaStateMachine } from '../../src/meta/index.js'
import {
  ADS_TOPIC,
  JOB_STATE,
  JobQueue,
  JobService,
  Placer,
  ResourceView,
  WorkerAgent,
  createExecutor,
  createJobProposer,
  createMemorySchedNetwork,
  decodeAd,
  executorRunner,
  jobsModule,
  realClock,
  type GpuVendor,
  type JobsModule,
  type LogSink,
} from '../../src/scheduler/index.js'
import { makeTempDir, removeTempDirs, waitFor } from '../helpers/index.js'

afterAll(() => removeTempDirs())

const ALICE = { user: 'alice', groups: [] }

function cluster(vendor: GpuVendor) {
  const sm = createMetaStateMachine({ modules: [jobsModule()] })
  const jobs = () => sm.module<JobsModule>('jobs')
  const clock = realClock
  const propose = createJobProposer({
    group: createLocalGroup(sm),
    clock,
    node: { user: 'hopsd', groups: [] },
  })
  const net = createMemorySchedNetwork({ clock, rng: new SeededRng(7), latencyMs: [0, 1] })
  const logs = new Map<string, string>()
  const sink: LogSink = {
    open: ({ runId, rank, stream }) => {
      const key = `${runId}/${rank}/${stream}`
      logs.set(key, '')
      return {
        write: (c) => void logs.set(key, logs.get(key)! + Buffer.from(c).toString()),
        close: () => undefined,
      }
    },
  }
  const executor = createExecutor({ root: makeTempDir('worker-exec-'), sink, killGraceMs: 500 })
  const gpus = [0, 1, 2, 3].map((i) => ({
    uuid: `GPU-${vendor}-${i}`,
    index: i,
    model: 'test',
    memoryMiB: 1024,
    healthy: true,
    vendor,
  }))
  const view = new ResourceView({ clock })
  const pt = net.endpoint('p1')
  pt.subscribe(ADS_TOPIC, (_f, b) => view.apply(decodeAd(b)))
  const worker = new WorkerAgent({
    node: 'w1',
    zone: 'z1',
    addr: '127.0.0.1',
    gpus,
    cpus: 8,
    memoryMiB: 16384,
    transport: net.endpoint('w1'),
    clock,
    rng: new SeededRng(8),
    runner: executorRunner({ executor, extraEnv: () => ({ HOPSD_TOKEN: 'short-lived' }) }),
    propose,
    jobLookup: async (id) => jobs().get(id),
    publishIntervalMs: 200,
  })
  const placer = new Placer({ self: 'p1', transport: pt, view, clock, rng: new SeededRng(9), propose })
  const queue = new JobQueue({ self: 'p1', placer, view, clock, jobLookup: async (id) => jobs().get(id) })
  const service = new JobService({
    self: 'p1',
    propose,
    jobs,
    capacity: () => view.capacity(),
    isSuperuser: (c) => c.user === 'hopsd',
  })
  jobs().onJobChange((j) => {
    worker.onJobChange(j)
    queue.onJobChange(j)
  })
  worker.start()
  queue.start()
  const stop = async () => {
    queue.stop()
    worker.stop()
    await executor.stopAll()
  }
  return { jobs, service, logs, stop, view }
}

describe('worker with the executor (real processes)', () => {
  it('runs each job with exactly its reserved GPUs, its credential, and its logs', async () => {
    const c = cluster('nvidia')
    try {
      await waitFor(() => c.view.size === 1, { what: 'the worker ad' })
      const script =
        'echo "CVD=$CUDA_VISIBLE_DEVICES ROCR=${ROCR_VISIBLE_DEVICES-unset} TOKEN=$HOPSD_TOKEN RANK=$RANK"; sleep 0.3'
      const ids: number[] = []
      for (const gpus of [1, 2, 1])
        ids.push(
          (await c.service.submit(ALICE, { project: 'p', name: 'j', command: ['sh', '-c', script], gpus }))
            .id,
        )
      await waitFor(() => ids.every((id) => c.jobs().get(id)!.state === JOB_STATE.SUCCEEDED), {
        timeoutMs: 20_000,
        what: 'the jobs',
      })
      for (const id of ids) {
        const job = c.jobs().get(id)!
        const gpus = job.tasks[0]!.gpus
        expect(c.logs.get(`${job.runId}/0/stdout`)).toBe(
          `CVD=${gpus.join(',')} ROCR=unset TOKEN=short-lived RANK=0\n`,
        )
        expect(job.exitCode).toBe(0)
        expect(job.startedMs).toBeGreaterThan(0)
        // The script sleeps 0.3 s; the two stamps are taken around it by the daemon, whose clock may step a few ms.
        expect(job.endedMs).toBeGreaterThanOrEqual(job.startedMs + 250)
      }
      // No GPU was given to two jobs whose runs overlapped.
      const runs = ids.map((id) => c.jobs().get(id)!)
      for (const a of runs)
        for (const b of runs)
          if (a.id < b.id && a.startedMs < b.endedMs && b.startedMs < a.endedMs)
            expect(a.tasks[0]!.gpus.filter((g) => b.tasks[0]!.gpus.includes(g))).toEqual([])
    } finally {
      await c.stop()
    }
  })

  it('AMD GPUs are given through ROCR_VISIBLE_DEVICES', async () => {
    const c = cluster('amd')
    try {
      await waitFor(() => c.view.size === 1, { what: 'the worker ad' })
      const { id } = await c.service.submit(ALICE, {
        project: 'p',
        name: 'j',
        command: ['sh', '-c', 'echo "ROCR=$ROCR_VISIBLE_DEVICES CVD=${CUDA_VISIBLE_DEVICES-unset}"'],
        gpus: 2,
      })
      await waitFor(() => c.jobs().get(id)!.state === JOB_STATE.SUCCEEDED, { what: 'the job' })
      const job = c.jobs().get(id)!
      expect(c.logs.get(`${job.runId}/0/stdout`)).toBe(`ROCR=${job.tasks[0]!.gpus.join(',')} CVD=unset\n`)
    } finally {
      await c.stop()
    }
  })

  it('kill stops the process (SIGTERM) and commits KILLED; a timeout commits FAILED with the reason', async () => {
    const c = cluster('nvidia')
    try {
      await waitFor(() => c.view.size === 1, { what: 'the worker ad' })
      const long = (
        await c.service.submit(ALICE, { project: 'p', name: 'k', command: ['sleep', '30'], gpus: 1 })
      ).id
      const timed = (
        await c.service.submit(ALICE, {
          project: 'p',
          name: 't',
          command: ['sleep', '30'],
          gpus: 1,
          timeoutS: 1,
        })
      ).id
      await waitFor(() => c.jobs().get(long)!.tasks[0]?.started, { what: 'the long job to start' })
      await expect(c.service.kill({ user: 'bob', groups: [] }, long)).rejects.toMatchObject({
        code: 'JOB_NOT_FOUND',
      })
      await c.service.kill(ALICE, long)
      await waitFor(() => c.jobs().get(long)!.state === JOB_STATE.KILLED, { what: 'KILLED' })
      expect(c.jobs().get(long)).toMatchObject({
        signal: 'SIGTERM',
        exitCode: 143,
        reason: 'killed by alice',
      })
      await waitFor(() => c.jobs().get(timed)!.state === JOB_STATE.FAILED, {
        timeoutMs: 15_000,
        what: 'the timeout',
      })
      expect(c.jobs().get(timed)).toMatchObject({ reason: 'timed out after 1 s', signal: 'SIGTERM' })
    } finally {
      await c.stop()
    }
  })
})
