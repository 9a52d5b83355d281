// GPU jobs on gpu-only workers: three `hopsd start` metadata nodes (roles metadata, datanode; no GPUs)
// and two gpu-only nodes (role gpu, `--gpus declared:2:T4:16000`, no metadata replica). The workers reach
// the replicated state through a metadata node over libp2p (reports, job reads, task setup); a node
// without a replica forwards the jobs API to a metadata node. Every assertion reads what the cluster
// really did: the jobs' own output from the file system and the logs route, the records from the API.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  FAST_TIMING_ARGS,
  removeTempDirs,
  startCluster,
  stopAllNodes,
  waitFor,
  type LoopbackCluster,
  type LoopbackNode,
} from '../helpers/index.js'
import { runJob } from '../../src/cli/job.js'
import { SCHED_META_PROTOCOL } from '../../src/node/cluster/sched-meta.js'
import { metaProto } from '../../src/meta/index.js'
import { hopsd } from '../../src/proto/sched.js'
import { startPlainNode } from '../trust/client.js'
import { call as callAs } from './client.js'

import sched = hopsd.sched
import meta = metaProto.meta

const GPUS_PER_WORKER = 2
/** A run's logs: in the Logs dataset of the job's project. */
const LOGS = (name: string, runId: string) => `/Projects/demo/Logs/${name}/${runId}`

let cluster: LoopbackCluster
let failed = false

/** A request as `user`; forwarded routes (gpu-only nodes) get 30 s. */
const call = (node: LoopbackNode, method: string, path: string, user: string, body?: unknown) =>
  callAs(node, method, path, user, body, 30_000)

const metas = (): LoopbackNode[] => cluster.nodes.filter((n) => n.roles.includes('metadata'))
const workers = (): LoopbackNode[] => cluster.nodes.filter((n) => !n.roles.includes('metadata'))
const workerIds = (): string[] => workers().map((n) => n.handle.id)

async function submit(via: LoopbackNode, spec: Record<string, unknown>): Promise<number> {
  const res = await call(via, 'POST', '/api/v1/jobs', 'alice', { project: 'demo', gpus: 1, ...spec })
  expect(res.status, res.text).toBe(201)
  return res.json().id as number
}

async function waitState(id: number, states: string[], via: LoopbackNode, timeoutMs = 120_000): Promise<any> {
  return waitFor(
    async () => {
      const res = await call(via, 'GET', `/api/v1/jobs/${id}`, 'alice')
      if (res.status !== 200) return undefined
      const j = res.json()
      return states.includes(j.state) ? j : undefined
    },
    { timeoutMs, intervalMs: 250, what: `job ${id} in ${states.join('|')}` },
  )
}

function fields(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const at = line.indexOf('=')
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1)
  }
  return out
}

function track(fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await fn()
    } catch (err) {
      failed = true
      throw err
    }
  }
}

beforeAll(async () => {
  cluster = await startCluster({
    prefix: 'hopsd-gpu-only-',
    nodes: [
      { roles: ['metadata', 'datanode'] },
      { roles: ['metadata', 'datanode'] },
      { roles: ['metadata', 'datanode'] },
      { roles: ['gpu'], extraArgs: ['--gpus', `declared:${GPUS_PER_WORKER}:T4:16000`] },
      { roles: ['gpu'], extraArgs: ['--gpus', `declared:${GPUS_PER_WORKER}:T4:16000`] },
    ],
    extraArgs: [...FAST_TIMING_ARGS],
    env: { HOPSD_LOG_LEVEL: 'info' },
  })
  // Both workers, with their GPUs, in every node's view.
  await waitFor(
    async () => {
      for (const n of cluster.nodes) {
        const res = await call(n, 'GET', '/api/v1/gpus', 'alice')
        if (res.status !== 200) return false
        const view = res.json().nodes as { node: string; gpus: unknown[] }[]
        if (view.length !== 2 || view.some((e) => e.gpus.length !== GPUS_PER_WORKER)) return false
        if (!view.every((e) => workerIds().includes(e.node))) return false
      }
      return true
    },
    { timeoutMs: 90_000, intervalMs: 250, what: 'both gpu-only workers in every view' },
  )
  // Each worker said once, at start, what it found.
  for (const w of cluster.nodes.slice(3))
    expect(w.handle.logs().stdout).toContain(`gpu inventory: ${GPUS_PER_WORKER} GPU(s) through declared`)
  await waitFor(
    async () => (await call(metas()[0]!, 'PUT', '/webhdfs/v1/user/alice?op=MKDIRS', 'hopsd')).status === 200,
    { timeoutMs: 60_000, intervalMs: 250, what: 'the home of alice' },
  )
  const chown = await call(metas()[0]!, 'PUT', '/webhdfs/v1/user/alice?op=SETOWNER&owner=alice', 'hopsd')
  expect(chown.status, chown.text).toBe(200)
  // Every job belongs to a project: alice owns `demo` (made through a gpu-only node, forwarded).
  const demo = await call(workers()[0]!, 'POST', '/api/v1/projects', 'alice', { name: 'demo' })
  expect(demo.status, demo.text).toBe(201)
}, 180_000)

afterAll(async () => {
  if (failed && cluster !== undefined) console.log(cluster.logTails(40))
  await cluster?.stop(10_000)
  await stopAllNodes()
  removeTempDirs()
}, 60_000)

describe('GPU jobs on gpu-only workers (no metadata replica)', () => {
  it(
    'jobs submitted to a metadata node and to a gpu-only node run on the gpu-only workers, with their GPUs, and log into the file system',
    track(async () => {
      const script = 'echo "node=$HOPSD_NODE"; echo "devs=$CUDA_VISIBLE_DEVICES"; sleep 1; echo ok'
      const ids: number[] = []
      // Four one-GPU jobs fill both workers at once; through every kind of node.
      for (const [i, via] of [metas()[0]!, workers()[0]!, metas()[1]!, workers()[1]!].entries())
        ids.push(await submit(via, { name: `w${i}`, command: ['bash', '-c', script] }))
      for (const [i, id] of ids.entries()) {
        const j = await waitState(id, ['SUCCEEDED', 'FAILED', 'LOST'], workers()[i % 2]!)
        expect(j.state, JSON.stringify(j)).toBe('SUCCEEDED')
        expect(j.exitCode).toBe(0)
        const node = j.tasks[0].node as string
        expect(workerIds()).toContain(node)
        // The logs route on a gpu-only node (forwarded) and WebHDFS on a metadata node say the same.
        const viaRoute = await call(workers()[(i + 1) % 2]!, 'GET', `/api/v1/jobs/${id}/logs`, 'alice')
        expect(viaRoute.status, viaRoute.text).toBe(200)
        const f = fields(viaRoute.text)
        expect(f['node']).toBe(node)
        expect(viaRoute.text).toContain('ok')
        const fsOut = await call(
          metas()[2]!,
          'GET',
          `/webhdfs/v1${LOGS(`w${i}`, j.runId)}/stdout?op=OPEN&project=demo`,
          'alice',
        )
        expect(fsOut.text).toBe(viaRoute.text)
        // Exactly its GPU (declared GPUs are selected by index: declared-N is device N).
        expect(j.tasks[0].gpus).toHaveLength(1)
        expect(f['devs']).toBe(String(j.tasks[0].gpus[0]).replace('declared-', ''))
      }
      // A list through the gpu-only node is the metadata nodes' list.
      const list = await call(workers()[0]!, 'GET', '/api/v1/jobs?project=demo', 'alice')
      expect(list.status, list.text).toBe(200)
      const listed = (list.json().jobs as { id: number }[]).map((j) => j.id)
      for (const id of ids) expect(listed).toContain(id)
    }),
    240_000,
  )

  it(
    'a log past the inline threshold reads whole through the logs route and hopsd job logs',
    track(async () => {
      // 200,000 bytes (> inlineThreshold, 64 KiB by default): 2,000 numbered lines of 100 bytes.
      const id = await submit(workers()[1]!, {
        name: 'big',
        command: ['bash', '-c', 'for i in $(seq 1 2000); do printf "%099d\\n" $i; done'],
      })
      const j = await waitState(id, ['SUCCEEDED', 'FAILED'], metas()[0]!)
      expect(j.state, JSON.stringify(j)).toBe('SUCCEEDED')
      const expected = Array.from({ length: 2000 }, (_, k) => `${String(k + 1).padStart(99, '0')}\n`).join('')
      const stat = await call(
        metas()[1]!,
        'GET',
        `/api/v1/fs/stat?path=${LOGS('big', j.runId)}/stdout`,
        'hopsd',
      )
      expect(stat.status, stat.text).toBe(200)
      expect(stat.json().inlined).toBe(false)
      for (const via of [metas()[1]!, workers()[0]!]) {
        const res = await call(via, 'GET', `/api/v1/jobs/${id}/logs`, 'alice')
        expect(res.status, res.text.slice(0, 300)).toBe(200)
        expect(res.text.length).toBe(expected.length)
        expect(res.text).toBe(expected)
        const tail = await call(
          via,
          'GET',
          `/api/v1/jobs/${id}/logs?offset=${expected.length - 100}`,
          'alice',
        )
        expect(tail.text).toBe(expected.slice(-100))
      }
      const out: string[] = []
      const err: string[] = []
      const code = await runJob(['logs', '--addr', workers()[0]!.handle.url, '--user', 'alice', String(id)], {
        out: (l) => out.push(l),
        err: (l) => err.push(l),
      })
      expect(code, err.join('\n')).toBe(0)
      expect(out.join('')).toBe(expected)
      // Followed (-f) through the gpu-only node: the same bytes, and it returns since the job ended.
      const followed: string[] = []
      const fcode = await runJob(
        ['logs', '--addr', workers()[1]!.handle.url, '--user', 'alice', String(id), '-f'],
        { out: (l) => followed.push(l), err: (l) => err.push(l) },
      )
      expect(fcode, err.join('\n')).toBe(0)
      expect(followed.join('')).toBe(expected)
    }),
    180_000,
  )

  it(
    'a kill reaches a task on a gpu-only worker (the worker reads its jobs back through a metadata node)',
    track(async () => {
      const id = await submit(metas()[2]!, {
        name: 'killme',
        command: [
          'bash',
          '-c',
          'trap "echo got-term; exit 143" TERM; echo started; while true; do sleep 0.2; done',
        ],
      })
      await waitState(id, ['RUNNING'], metas()[0]!)
      await waitFor(
        async () =>
          (await call(metas()[0]!, 'GET', `/api/v1/jobs/${id}/logs`, 'alice')).text.includes('started'),
        { timeoutMs: 30_000, intervalMs: 250, what: 'the job to start' },
      )
      const kill = await call(workers()[0]!, 'DELETE', `/api/v1/jobs/${id}`, 'alice')
      expect(kill.status, kill.text).toBe(200)
      const j = await waitState(id, ['KILLED', 'FAILED', 'SUCCEEDED'], metas()[1]!, 30_000)
      expect(j.state, JSON.stringify(j)).toBe('KILLED')
      await waitFor(
        async () =>
          (await call(metas()[0]!, 'GET', `/api/v1/jobs/${id}/logs`, 'alice')).text.includes('got-term'),
        { timeoutMs: 30_000, intervalMs: 250, what: 'the task to get SIGTERM' },
      )
    }),
    180_000,
  )

  it(
    "a key holder that is not the task's node can neither report, read, set up nor tear down the task through a metadata node",
    track(async () => {
      const id = await submit(metas()[0]!, { name: 'guarded', command: ['bash', '-c', 'echo up; sleep 600'] })
      const running = await waitState(id, ['RUNNING'], metas()[0]!)
      await waitFor(
        async () => (await call(metas()[0]!, 'GET', `/api/v1/jobs/${id}/logs`, 'alice')).text.includes('up'),
        { timeoutMs: 30_000, intervalMs: 250, what: 'the job to start' },
      )
      const target = metas()[1]!.handle.id
      const plain = await startPlainNode(cluster.swarmKeyFile, cluster.seedAddrs(), [target])
      try {
        const ask = async (r: sched.ISchedMetaRequest) =>
          plain.ask(target, SCHED_META_PROTOCOL, sched.SchedMetaRequest.encode(r).finish())
        // Since node admission a swarm-key holder is refused at the peer gate (no node certificate: the
        // stream is aborted, no reply); should one get past it, the handler refuses every request that
        // is not about a task placed on the asking node (test/scheduler/remote.test.ts attacks those
        // rules with admitted nodes). Either way nothing is applied: the job keeps running below.
        const attempt = running.attempts as number
        // A report of the task's end, as if from its worker.
        for (const command of [
          { jobFinished: { jobId: id, attempt, rank: 0, exitCode: 0, startedMs: 1, endedMs: 2 } },
          { markJobLost: { jobId: id, attempt, reason: 'forged' } },
          { killJob: { jobId: id } },
        ]) {
          const a = await ask({ propose: { command: meta.Command.encode(command).finish() } })
          if (a.reply === undefined) continue
          const p = sched.SchedMetaReply.decode(a.reply).propose!
          expect(p.ok, JSON.stringify(command)).toBe(false)
          expect(p.code).toBe('JOB_ACCESS_DENIED')
        }
        // Reads: the job is not shown to a node without a task of it.
        const look = await ask({ lookup: { jobIds: [id] } })
        if (look.reply !== undefined)
          expect(sched.SchedMetaReply.decode(look.reply).jobs?.jobs ?? []).toHaveLength(0)
        const mine = await ask({ running: {} })
        if (mine.reply !== undefined)
          expect(sched.SchedMetaReply.decode(mine.reply).jobs?.jobs ?? []).toHaveLength(0)
        // No credential of the owner for it.
        const setup = await ask({ setup: { jobId: id, attempt, rank: 0 } })
        expect(setup.reply).toBeUndefined()
        if (setup.code !== '') expect(setup.code).toBe('JOB_STATE_CONFLICT')
        const teardown = await ask({ teardown: { jobId: id, attempt, rank: 0, keyId: 'x' } })
        expect(teardown.reply).toBeUndefined()
        if (teardown.code !== '') expect(teardown.code).toBe('JOB_ACCESS_DENIED')
      } finally {
        await plain.stop()
      }
      const still = await waitState(id, ['RUNNING'], metas()[2]!)
      expect(still.attempts).toBe(running.attempts)
      const kill = await call(metas()[0]!, 'DELETE', `/api/v1/jobs/${id}`, 'alice')
      expect(kill.status, kill.text).toBe(200)
      await waitState(id, ['KILLED'], metas()[0]!, 30_000)
    }),
    180_000,
  )

  it(
    'kill -9 of a gpu-only worker mid-job: the job runs again on the other one (retries=1); the restarted worker kills the orphan',
    track(async () => {
      const id = await submit(workers()[0]!, {
        name: 'lost',
        command: [
          'bash',
          '-c',
          'echo "pid=$$"; echo "node=$HOPSD_NODE"; case "$HOPSD_RUN_ID" in *-1) sleep 600;; esac; echo done',
        ],
        retries: 1,
      })
      const first = await waitState(id, ['RUNNING'], metas()[0]!)
      const victimId = first.tasks[0].node as string
      const victim = workers().find((n) => n.handle.id === victimId)!
      expect(victim, `job placed on ${victimId}`).toBeDefined()
      const pid = await waitFor(
        async () => {
          const out = await call(metas()[1]!, 'GET', `/api/v1/jobs/${id}/logs`, 'alice')
          return out.status === 200 ? fields(out.text)['pid'] : undefined
        },
        { timeoutMs: 30_000, intervalMs: 250, what: 'the first run to print its pid' },
      )
      victim.handle.kill('SIGKILL')
      try {
        const done = await waitState(id, ['SUCCEEDED', 'FAILED', 'LOST'], metas()[2]!, 120_000)
        expect(done.state, JSON.stringify(done)).toBe('SUCCEEDED')
        expect(done.attempts).toBe(2)
        expect(done.lost).toBe(1)
        expect(done.tasks[0].node).not.toBe(victimId)
        expect(workerIds()).toContain(done.tasks[0].node)
        const second = await call(metas()[0]!, 'GET', `/api/v1/jobs/${id}/logs`, 'alice')
        expect(second.text).toContain('done')
        expect(fields(second.text)['node']).toBe(done.tasks[0].node)
        // The first run outlived its daemon (its own process group); the restarted worker kills it.
        expect(() => process.kill(Number(pid), 0)).not.toThrow()
        await cluster.restart(victim)
        await waitFor(
          () => {
            try {
              process.kill(Number(pid), 0)
              return false
            } catch (err) {
              return (err as NodeJS.ErrnoException).code === 'ESRCH'
            }
          },
          { timeoutMs: 60_000, intervalMs: 250, what: `the restarted worker to kill ${pid}` },
        )
      } finally {
        try {
          process.kill(-Number(pid), 'SIGKILL')
        } catch {
          // already gone
        }
      }
    }),
    240_000,
  )
})
