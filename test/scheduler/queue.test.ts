// The waiting queue of a placing node: FIFO per project, backfill of smaller jobs behind a head that does
// not fit, the head's starvation guard, and the GPU-hour quota.
import { describe, expect, it } from 'vitest'
import { JOB_STATE } from '../../src/scheduler/index.js'
import { World } from './world.js'

function startOrder(w: World): number[] {
  return w.events.filter((e) => e.kind === 'start').map((e) => e.jobId)
}

describe('queue', () => {
  it('FIFO per project, and a smaller job backfills while the head does not fit', async () => {
    const w = new World({ seed: 31, workers: [{ node: 'w1', gpus: 4 }], placers: ['p1'] })
    await w.run(50)
    const j1 = (await w.submit('p1', { gpus: 3, env: { SIM_MS: '1000' } })).id
    await w.runUntil(() => w.job(j1).state === JOB_STATE.RUNNING, 1000)
    const j2 = (await w.submit('p1', { gpus: 2, env: { SIM_MS: '100' } })).id // head: does not fit (1 free)
    const j3 = (await w.submit('p1', { gpus: 1, env: { SIM_MS: '2000' } })).id // fits: backfills
    const j4 = (await w.submit('p1', { gpus: 2, env: { SIM_MS: '100' } })).id // does not fit either
    await w.runUntil(() => w.job(j3).state === JOB_STATE.RUNNING, 1000)
    expect(w.job(j2).state).toBe(JOB_STATE.QUEUED)
    expect(w.job(j4).state).toBe(JOB_STATE.QUEUED)
    // j1 ends: 3 GPUs free; j2 (the head) goes first, j4 only when j2 is done.
    await w.runUntil(() => startOrder(w).length === 4, 3000)
    expect(startOrder(w)).toEqual([j1, j3, j2, j4])
  })

  it('FIFO: the older of two equal jobs goes first when one GPU frees', async () => {
    const w = new World({ seed: 32, workers: [{ node: 'w1', gpus: 1 }], placers: ['p1'] })
    await w.run(50)
    const ids: number[] = []
    for (let i = 0; i < 5; i++) ids.push((await w.submit('p1', { gpus: 1, env: { SIM_MS: '50' } })).id)
    await w.runUntil(() => ids.every((j) => w.job(j).state === JOB_STATE.SUCCEEDED), 5000)
    expect(startOrder(w)).toEqual(ids)
  })

  it('projects take turns: one project with a long queue does not hold back another', async () => {
    const w = new World({ seed: 33, workers: [{ node: 'w1', gpus: 1 }], placers: ['p1'] })
    await w.run(50)
    const a: number[] = []
    for (let i = 0; i < 4; i++)
      a.push((await w.submit('p1', { project: 'a', gpus: 1, env: { SIM_MS: '50' } })).id)
    const b = (await w.submit('p1', { project: 'b', gpus: 1, env: { SIM_MS: '50' } })).id
    await w.runUntil(() => w.job(b).state === JOB_STATE.SUCCEEDED, 5000)
    // b ran before a's queue was through.
    expect(startOrder(w).indexOf(b)).toBeLessThan(4)
  })

  it('a head that waited headWaitMsMax stops its project backfilling, so it is not starved', async () => {
    const run = async (headWaitMsMax: number) => {
      const w = new World({
        seed: 34,
        workers: [{ node: 'w1', gpus: 4 }],
        placers: ['p1'],
        queue: { headWaitMsMax },
      })
      await w.run(50)
      await w.submit('p1', { gpus: 2, env: { SIM_MS: '400' } })
      await w.run(20)
      const big = (await w.submit('p1', { gpus: 4, env: { SIM_MS: '10' } })).id
      // A stream of small jobs that would always keep at least one GPU busy.
      const small: number[] = []
      for (let i = 0; i < 30; i++) {
        small.push((await w.submit('p1', { gpus: 1, env: { SIM_MS: '300' } })).id)
        await w.run(100)
      }
      await w.runUntil(() => w.job(big).state === JOB_STATE.SUCCEEDED, 60_000)
      return (
        startOrder(w).filter((j) => small.includes(j)).length -
        startOrder(w)
          .slice(startOrder(w).indexOf(big))
          .filter((j) => small.includes(j)).length
      )
    }
    const smallBeforeBigGuarded = await run(500)
    const smallBeforeBigUnguarded = await run(1e9)
    expect(smallBeforeBigGuarded).toBeLessThan(10)
    expect(smallBeforeBigUnguarded).toBeGreaterThan(25)
  })

  it('quota: a project over its GPU-hours places nothing more and new jobs are refused; others go on', async () => {
    // 0.0001 GPU-hours = 360 GPU-ms.
    const w = new World({
      seed: 35,
      workers: [{ node: 'w1', gpus: 1 }],
      placers: ['p1'],
      quota: (project) => (project === 'capped' ? 0.0001 : undefined),
    })
    await w.run(50)
    const first = (await w.submit('p1', { project: 'capped', gpus: 1, env: { SIM_MS: '400' } })).id
    const queued = (await w.submit('p1', { project: 'capped', gpus: 1, env: { SIM_MS: '10' } })).id
    await w.runUntil(() => w.job(first).state === JOB_STATE.SUCCEEDED, 2000)
    expect(w.jobs().usageGpuMs('capped')).toBe(400)
    await w.run(3000)
    expect(w.job(queued).state).toBe(JOB_STATE.QUEUED) // waits: over quota
    expect(w.results.filter((r) => r.job.id === queued)).toEqual([]) // the queue skips the project
    // And the placer itself refuses it (the second line of defence, for jobs handed to it directly).
    expect(await w.placers.get('p1')!.placer.place(w.job(queued))).toMatchObject({
      placed: false,
      code: 'QUOTA_EXHAUSTED',
    })
    await expect(w.submit('p1', { project: 'capped', gpus: 1 })).rejects.toMatchObject({
      code: 'QUOTA_EXHAUSTED',
    })
    const other = (await w.submit('p1', { project: 'free', gpus: 1, env: { SIM_MS: '10' } })).id
    await w.runUntil(() => w.job(other).state === JOB_STATE.SUCCEEDED, 2000)
  })

  it('refuses a job larger than any node at once, with the reason, and queues nothing', async () => {
    const w = new World({
      seed: 36,
      workers: [
        { node: 'w1', gpus: 2 },
        { node: 'w2', gpus: 2 },
      ],
      placers: ['p1'],
    })
    await w.run(50)
    await expect(w.submit('p1', { gpus: 3 })).rejects.toMatchObject({
      code: 'JOB_TOO_LARGE',
      message: 'the job asks 3 GPUs per task; the largest node has 2',
    })
    expect(w.jobs().list()).toEqual([])
  })
})
