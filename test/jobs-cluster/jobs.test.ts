// GPU jobs on a real cluster: three `hopsd start` processes (roles metadata, datanode, gpu; zones z1..z3),
// each with two declared GPUs (`--gpus declared:2:T4:16000`). Jobs are submitted over HTTP on any node,
// placed from the gossip view, reserved by the workers, run as child processes, and their logs land in
// the submitter's home in the file system. Every assertion reads what the cluster really did: the jobs'
// own output (CUDA_VISIBLE_DEVICES, start/end times, pids) from the file system, the records from the API.
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
import { call, type Reply } from './client.js'

const GPUS_PER_NODE = 2
const NODES = 3
/** A run's logs: in the Logs dataset of the job's project. */
const LOGS = (name: string, runId: string) => `/Projects/demo/Logs/${name}/${runId}`

let cluster: LoopbackCluster
let failed = false

const nodes = (): LoopbackNode[] => cluster.nodes
const node = (i: number): LoopbackNode => cluster.nodes[i % cluster.nodes.length]!

async function submit(via: LoopbackNode, user: string, spec: Record<string, unknown>): Promise<number> {
  const res = await call(via, 'POST', '/api/v1/jobs', user, { project: 'demo', ...spec })
  expect(res.status, res.text).toBe(201)
  return res.json().id as number
}

async function job(id: number, user = 'alice', via = node(0)): Promise<any> {
  const res = await call(via, 'GET', `/api/v1/jobs/${id}`, user)
  expect(res.status, res.text).toBe(200)
  return res.json()
}

async function waitState(id: number, states: string[], timeoutMs = 60_000): Promise<any> {
  return waitFor(
    async () => {
      const j = await job(id)
      return states.includes(j.state) ? j : undefined
    },
    { timeoutMs, intervalMs: 200, what: `job ${id} in ${states.join('|')}` },
  )
}

/** A file read from the file system as `user` (WebHDFS OPEN, following the redirect). */
async function readFs(path: string, user: string, via = node(1)): Promise<Reply> {
  // Acting in the project (WebHDFS project=): plain users reach nothing under /Projects.
  return call(via, 'GET', `/webhdfs/v1${path}?op=OPEN&project=demo`, user)
}

/** Key=value lines a job printed. */
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
    prefix: 'hopsd-jobs-cluster-',
    nodes: NODES,
    roles: ['metadata', 'datanode', 'gpu'],
    extraArgs: [...FAST_TIMING_ARGS, '--gpus', `declared:${GPUS_PER_NODE}:T4:16000`],
    env: { HOPSD_LOG_LEVEL: 'info' },
  })
  // A leader, and every worker's GPUs in every node's view.
  await waitFor(
    async () => {
      for (const n of nodes()) {
        const res = await call(n, 'GET', '/api/v1/gpus', 'alice')
        if (res.status !== 200) return false
        const view = res.json().nodes as { gpus: unknown[] }[]
        if (view.length !== NODES || view.some((e) => e.gpus.length !== GPUS_PER_NODE)) return false
      }
      return true
    },
    { timeoutMs: 90_000, intervalMs: 250, what: 'every worker in every view' },
  )
  // Homes for the two users (simple auth: names without user records get theirs from the superuser).
  for (const user of ['alice', 'bob']) {
    await waitFor(
      async () => (await call(node(0), 'PUT', `/webhdfs/v1/user/${user}?op=MKDIRS`, 'hopsd')).status === 200,
      { timeoutMs: 60_000, intervalMs: 250, what: `the home of ${user}` },
    )
    const chown = await call(node(0), 'PUT', `/webhdfs/v1/user/${user}?op=SETOWNER&owner=${user}`, 'hopsd')
    expect(chown.status, chown.text).toBe(200)
  }
  // Every job belongs to a project: alice owns `demo`; bob is no member of it.
  const demo = await call(node(0), 'POST', '/api/v1/projects', 'alice', { name: 'demo' })
  expect(demo.status, demo.text).toBe(201)
}, 180_000)

afterAll(async () => {
  if (failed && cluster !== undefined) console.log(cluster.logTails(40))
  await cluster?.stop(10_000)
  await stopAllNodes()
  removeTempDirs()
}, 60_000)

describe('GPU jobs on a three-worker cluster', () => {
  it(
    'the gpus route shows every worker with its declared GPUs and the age of its entry, on every node',
    track(async () => {
      for (const n of nodes()) {
        const view = (await call(n, 'GET', '/api/v1/gpus', 'alice')).json().nodes as any[]
        expect(view.map((e) => e.node).sort()).toEqual(
          nodes()
            .map((x) => x.handle.id)
            .sort(),
        )
        for (const e of view) {
          expect(e.ageMs).toBeGreaterThanOrEqual(0)
          expect(e.gpus.map((g: any) => [g.model, g.memoryMiB, g.healthy])).toEqual([
            ['T4', 16000, true],
            ['T4', 16000, true],
          ])
        }
      }
    }),
  )

  it(
    '12 one-GPU jobs submitted on every node all succeed, each saw exactly its GPU, no GPU ran two at once',
    track(async () => {
      const script =
        'echo "start=$(date +%s%N)"; echo "devs=$CUDA_VISIBLE_DEVICES"; echo "node=$HOPSD_NODE"; ' +
        'sleep 2; echo "end=$(date +%s%N)"'
      const ids: number[] = []
      for (let i = 0; i < 12; i++)
        ids.push(
          await submit(node(i), 'alice', { name: `one-${i}`, command: ['bash', '-c', script], gpus: 1 }),
        )
      const runs: { node: string; dev: string; start: bigint; end: bigint }[] = []
      for (const id of ids) {
        const j = await waitState(id, ['SUCCEEDED', 'FAILED', 'KILLED', 'LOST'], 120_000)
        expect(j.state, JSON.stringify(j)).toBe('SUCCEEDED')
        expect(j.tasks).toHaveLength(1)
        const task = j.tasks[0]
        expect(task.gpus).toHaveLength(1)
        const out = await readFs(`${LOGS(j.name, j.runId)}/stdout`, 'alice')
        expect(out.status, out.text).toBe(200)
        const f = fields(out.text)
        // Declared GPUs without a UUID are selected by index: declared-N is device N.
        expect(f['devs']).toBe(String(task.gpus[0]).replace('declared-', ''))
        expect(f['node']).toBe(task.node)
        runs.push({ node: task.node, dev: f['devs']!, start: BigInt(f['start']!), end: BigInt(f['end']!) })
      }
      // One GPU of one node never ran two jobs at once (so never more than 6 ran at once).
      for (const a of runs)
        for (const b of runs) {
          if (a === b || a.node !== b.node || a.dev !== b.dev) continue
          expect(a.end <= b.start || b.end <= a.start, `overlap on ${a.node}/${a.dev}`).toBe(true)
        }
      // The jobs spread: more than one node ran some.
      expect(new Set(runs.map((r) => r.node)).size).toBeGreaterThan(1)
    }),
    180_000,
  )

  it(
    'a two-GPU job gets two GPUs of one node, both in CUDA_VISIBLE_DEVICES',
    track(async () => {
      const id = await submit(node(2), 'alice', {
        name: 'two',
        command: ['bash', '-c', 'echo "devs=$CUDA_VISIBLE_DEVICES"'],
        gpus: 2,
      })
      const j = await waitState(id, ['SUCCEEDED', 'FAILED'])
      expect(j.state).toBe('SUCCEEDED')
      const gpus = j.tasks[0].gpus as string[]
      expect(new Set(gpus).size).toBe(2)
      const out = await readFs(`${LOGS('two', j.runId)}/stdout`, 'alice')
      expect(fields(out.text)['devs']!.split(',').sort()).toEqual(
        gpus.map((g) => g.replace('declared-', '')).sort(),
      )
    }),
    90_000,
  )

  it(
    'a two-GPU job waits while no node has two free GPUs, then runs where two were freed, on no busy GPU',
    track(async () => {
      // One busy GPU on every node (pinned by zone): each node has one free, none has two.
      const busy: number[] = []
      for (let i = 0; i < NODES; i++)
        busy.push(
          await submit(node(i), 'alice', {
            name: `busy-${i}`,
            command: ['sleep', '600'],
            gpus: 1,
            zone: node(i).zone,
          }),
        )
      const running = await Promise.all(busy.map((id) => waitState(id, ['RUNNING'])))
      const taken = new Set(running.map((j) => `${j.tasks[0].node}/${j.tasks[0].gpus[0]}`))
      try {
        const id = await submit(node(1), 'alice', { name: 'pair', command: ['true'], gpus: 2 })
        expect((await job(id)).state).toBe('QUEUED')
        // Free the last node's busy GPU: the pair goes there, as soon as the worker says so.
        const freed = running[NODES - 1]!.tasks[0].node as string
        expect((await call(node(0), 'DELETE', `/api/v1/jobs/${busy[NODES - 1]}`, 'alice')).status).toBe(200)
        const j = await waitState(id, ['SUCCEEDED', 'FAILED'])
        expect(j.state).toBe('SUCCEEDED')
        const t = j.tasks[0]
        expect(t.node).toBe(freed)
        expect(new Set(t.gpus).size).toBe(2)
        for (const g of t.gpus)
          expect(taken.has(`${t.node}/${g}`) && g !== running[NODES - 1]!.tasks[0].gpus[0]).toBe(false)
      } finally {
        for (const b of busy) await call(node(0), 'DELETE', `/api/v1/jobs/${b}`, 'alice')
        for (const b of busy) await waitState(b, ['KILLED'], 30_000)
      }
    }),
    120_000,
  )

  it(
    'a gang of three two-GPU tasks starts on every node at once, with consistent RANK and WORLD_SIZE',
    track(async () => {
      const id = await submit(node(1), 'alice', {
        name: 'gang',
        command: [
          'bash',
          '-c',
          'echo "rank=$RANK"; echo "world=$WORLD_SIZE"; echo "master=$MASTER_ADDR:$MASTER_PORT"; echo "devs=$CUDA_VISIBLE_DEVICES"',
        ],
        gpus: 2,
        tasks: 3,
      })
      const j = await waitState(id, ['SUCCEEDED', 'FAILED'], 90_000)
      expect(j.state, JSON.stringify(j)).toBe('SUCCEEDED')
      expect(new Set(j.tasks.map((t: any) => t.node)).size).toBe(3)
      const seen: string[] = []
      const masters = new Set<string>()
      for (const t of j.tasks) {
        const file = t.rank === 0 ? 'stdout' : `stdout.${t.rank}`
        const out = await readFs(`${LOGS('gang', j.runId)}/${file}`, 'alice')
        expect(out.status, out.text).toBe(200)
        const f = fields(out.text)
        seen.push(f['rank']!)
        expect(f['world']).toBe('3')
        expect(f['devs']!.split(',')).toHaveLength(2)
        masters.add(f['master']!)
      }
      expect(seen.sort()).toEqual(['0', '1', '2'])
      expect(masters.size).toBe(1)
    }),
    120_000,
  )

  it(
    'another user neither sees nor kills a job; its owner kills it (SIGTERM reaches the process, which is gone)',
    track(async () => {
      const id = await submit(node(0), 'alice', {
        name: 'long',
        command: [
          'bash',
          '-c',
          'trap "echo got-term; exit 3" TERM; echo "pid=$$"; while true; do sleep 0.1; done',
        ],
        gpus: 1,
      })
      const running = await waitState(id, ['RUNNING'])
      const logs = `${LOGS('long', running.runId)}/stdout`
      const pid = await waitFor(
        async () => {
          const out = await readFs(logs, 'alice')
          return out.status === 200 ? fields(out.text)['pid'] : undefined
        },
        { timeoutMs: 30_000, intervalMs: 250, what: 'the job to print its pid' },
      )
      expect(() => process.kill(Number(pid), 0)).not.toThrow()

      // bob: not in the list, not found, cannot kill, cannot read the logs.
      for (const n of nodes()) {
        const list = await call(n, 'GET', '/api/v1/jobs', 'bob')
        expect(list.status).toBe(200)
        expect(list.json().jobs.map((j: any) => j.id)).not.toContain(id)
        expect((await call(n, 'GET', `/api/v1/jobs/${id}`, 'bob')).status).toBe(404)
        expect((await call(n, 'GET', `/api/v1/jobs/${id}/logs`, 'bob')).status).toBe(404)
      }
      const denied = await call(node(1), 'DELETE', `/api/v1/jobs/${id}`, 'bob')
      expect(denied.status).toBe(404)
      // Nor may he submit to demo, on any node.
      for (const n of nodes()) {
        const sub = await call(n, 'POST', '/api/v1/jobs', 'bob', {
          project: 'demo',
          name: 'x',
          command: ['true'],
          gpus: 1,
        })
        expect(sub.status, sub.text).toBe(403)
        expect(sub.json().error.code).toBe('JOB_ACCESS_DENIED')
      }
      // Added to demo, bob sees the job; removed, his next request on every node is refused.
      const add = await call(node(0), 'POST', '/api/v1/projects/demo/members', 'alice', {
        user: 'bob',
        role: 'DATA_SCIENTIST',
      })
      expect(add.status, add.text).toBeLessThan(300)
      expect((await call(node(1), 'GET', `/api/v1/jobs/${id}`, 'bob')).status).toBe(200)
      expect((await call(node(1), 'DELETE', `/api/v1/jobs/${id}`, 'bob')).status).toBe(403)
      const rm = await call(node(2), 'DELETE', '/api/v1/projects/demo/members/bob', 'alice')
      expect(rm.status, rm.text).toBeLessThan(300)
      for (const n of nodes()) {
        expect((await call(n, 'GET', `/api/v1/jobs/${id}`, 'bob')).status).toBe(404)
        const again = await call(n, 'POST', '/api/v1/jobs', 'bob', {
          project: 'demo',
          name: 'x',
          command: ['true'],
          gpus: 1,
        })
        expect(again.status, again.text).toBe(403)
      }
      expect((await readFs(logs, 'bob')).status).toBe(403)
      expect((await job(id)).state).toBe('RUNNING')
      // The superuser sees it.
      expect((await call(node(2), 'GET', `/api/v1/jobs/${id}`, 'hopsd')).status).toBe(200)
      // alice's list has it; her logs route shows its output.
      const mine = await call(node(2), 'GET', '/api/v1/jobs?state=RUNNING', 'alice')
      expect(mine.json().jobs.map((j: any) => j.id)).toContain(id)

      const kill = await call(node(2), 'DELETE', `/api/v1/jobs/${id}`, 'alice')
      expect(kill.status, kill.text).toBe(200)
      const ended = await waitState(id, ['KILLED'], 30_000)
      expect(ended.reason).toContain('alice')
      await waitFor(
        () => {
          try {
            process.kill(Number(pid), 0)
            return false
          } catch (err) {
            return (err as NodeJS.ErrnoException).code === 'ESRCH'
          }
        },
        { timeoutMs: 15_000, what: `process ${pid} to be gone` },
      )
      const out = await call(node(1), 'GET', `/api/v1/jobs/${id}/logs`, 'alice')
      expect(out.status).toBe(200)
      expect(out.text).toContain('got-term')
      // A finished job is not killed twice.
      expect((await call(node(0), 'DELETE', `/api/v1/jobs/${id}`, 'alice')).status).toBe(409)
    }),
    120_000,
  )

  it(
    'bad specs are refused at once with 400 and the reason, and queue nothing',
    track(async () => {
      const before = (await call(node(0), 'GET', '/api/v1/jobs', 'hopsd')).json().jobs.length
      const bad: [Record<string, unknown>, string, RegExp][] = [
        [{ name: 'b', command: ['true'], gpus: -1 }, 'INVALID_JOB_SPEC', /gpus/],
        [{ name: 'b', command: ['true'], gpus: 1.5 }, 'INVALID_JOB_SPEC', /gpus/],
        [{ name: 'b', command: ['true'], gpus: '1' }, 'INVALID_JOB_SPEC', /gpus/],
        [{ name: 'b', command: ['true'], gpus: 1, colour: 'red' }, 'INVALID_JOB_SPEC', /colour|additional/],
        [{ name: 'b', gpus: 1 }, 'INVALID_JOB_SPEC', /command|script/],
        [{ name: 'b', command: ['true'], gpus: 3 }, 'JOB_TOO_LARGE', /3 GPUs.*largest node has 2/],
      ]
      for (const [spec, code, why] of bad) {
        const res = await call(node(1), 'POST', '/api/v1/jobs', 'alice', { project: 'demo', ...spec })
        expect(res.status, JSON.stringify(spec)).toBe(400)
        expect(res.json().error.code, JSON.stringify(spec)).toBe(code)
        expect(res.json().error.message, JSON.stringify(spec)).toMatch(why)
      }
      expect((await call(node(0), 'GET', '/api/v1/jobs', 'hopsd')).json().jobs.length).toBe(before)
      // Without a caller (simple auth makes it the anonymous dr.who): refused.
      const anon = await fetch(`${node(0).handle.url}/api/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ project: 'demo', name: 'b', command: ['true'], gpus: 1 }),
      })
      expect([401, 403]).toContain(anon.status)
      expect((await call(node(0), 'GET', '/api/v1/jobs', 'hopsd')).json().jobs.length).toBe(before)
    }),
    60_000,
  )

  it(
    'a script job runs the script from its project; a script the project-user cannot read is refused with 400',
    track(async () => {
      const put = await fetch(
        `${node(0).handle.url}/api/v1/fs/files?path=/Projects/demo/Resources/train.sh&permission=600&user.name=alice`,
        {
          method: 'PUT',
          headers: { 'content-type': 'application/octet-stream', 'x-hopsd-project': 'demo' },
          body: 'echo "script-ran=$RANK"\n',
          signal: AbortSignal.timeout(20_000),
        },
      )
      expect(put.status, await put.text()).toBeLessThan(300)
      const id = await submit(node(1), 'alice', {
        name: 'script',
        script: '/Projects/demo/Resources/train.sh',
        gpus: 1,
      })
      const j = await waitState(id, ['SUCCEEDED', 'FAILED'])
      expect(j.state, JSON.stringify(j)).toBe('SUCCEEDED')
      const out = await readFs(`${LOGS('script', j.runId)}/stdout`, 'alice')
      expect(out.text).toContain('script-ran=0')
      // alice's own home is outside the project: her job (acting in demo) cannot read it.
      const home = await fetch(
        `${node(0).handle.url}/api/v1/fs/files?path=/user/alice/home.sh&permission=600&user.name=alice`,
        {
          method: 'PUT',
          headers: { 'content-type': 'application/octet-stream' },
          body: 'echo home\n',
          signal: AbortSignal.timeout(20_000),
        },
      )
      expect(home.status, await home.text()).toBeLessThan(300)
      for (const [user, path] of [
        ['alice', '/user/alice/home.sh'],
        ['alice', '/Projects/demo/Resources/missing.sh'],
      ] as const) {
        const res = await call(node(2), 'POST', '/api/v1/jobs', user, {
          project: 'demo',
          name: 'script',
          script: path,
          gpus: 1,
        })
        expect(res.status, res.text).toBe(400)
        expect(res.json().error.code).toBe('INVALID_JOB_SPEC')
        expect(res.json().error.message).toContain(path)
      }
    }),
    90_000,
  )

  it(
    'the CLI: hopsd job submit, status, ls, logs, kill against a node',
    track(async () => {
      const run = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
        const out: string[] = []
        const err: string[] = []
        // Flags before the command's `--` (what follows it is the job's argv).
        const [sub, ...rest] = args
        const code = await runJob([sub!, '--addr', node(1).handle.url, '--user', 'alice', ...rest], {
          out: (l) => out.push(l),
          err: (l) => err.push(l),
        })
        return { code, out: out.join('\n'), err: err.join('\n') }
      }
      const sub = await run(
        'submit',
        '--project',
        'demo',
        '--name',
        'cli',
        '--gpus',
        '1',
        '--env',
        'GREETING=hi',
        '--',
        'bash',
        '-c',
        'echo "$GREETING from $RANK"; sleep 600',
      )
      expect(sub.code, sub.err).toBe(0)
      const id = Number(sub.out)
      expect(Number.isInteger(id) && id > 0).toBe(true)
      await waitState(id, ['RUNNING'])
      const status = await run('status', String(id))
      expect(status.code, status.err).toBe(0)
      expect(status.out).toMatch(/state\s+RUNNING/)
      const ls = await run('ls', '--state', 'running')
      expect(ls.out.split('\n').some((l) => l.startsWith(`${id} `) && l.includes('cli'))).toBe(true)
      const logs = await waitFor(
        async () => {
          const r = await run('logs', String(id))
          return r.out.includes('hi from 0') ? r : undefined
        },
        { timeoutMs: 30_000, intervalMs: 250, what: 'the CLI to show the log' },
      )
      expect(logs.code).toBe(0)
      const kill = await run('kill', String(id))
      expect(kill.code, kill.err).toBe(0)
      await waitState(id, ['KILLED'], 30_000)
      const again = await run('kill', String(id))
      expect(again.code).toBe(1)
      expect(again.err).toContain('JOB_STATE_CONFLICT')
      // logs -f prints while the job runs and returns once it ended.
      const short = await run(
        'submit',
        '--project',
        'demo',
        '--name',
        'follow',
        '--gpus',
        '1',
        '--',
        'bash',
        '-c',
        'for i in 1 2 3; do echo "line$i"; sleep 0.5; done',
      )
      expect(short.code, short.err).toBe(0)
      const followed = await run('logs', short.out, '-f')
      expect(followed.code, followed.err).toBe(0)
      expect(followed.out.replace(/\n+/g, '\n').trim()).toBe('line1\nline2\nline3')
      expect((await job(Number(short.out))).state).toBe('SUCCEEDED')
      const bad = await run('submit', '--project', 'demo', '--name', 'cli', '--gpus', 'two', '--', 'true')
      expect(bad.code).toBe(2)
      expect(bad.err).toContain('--gpus')
    }),
    90_000,
  )

  it(
    'kill -9 of the worker mid-job: the job is marked lost and runs again on another node (retries=1); the restarted worker kills the orphan',
    track(async () => {
      // The first run hangs (until its worker dies); the second ends at once.
      const id = await submit(node(0), 'alice', {
        name: 'lost',
        command: [
          'bash',
          '-c',
          'echo "pid=$$"; echo "node=$HOPSD_NODE"; case "$HOPSD_RUN_ID" in *-1) sleep 600;; esac; echo done',
        ],
        gpus: 1,
        retries: 1,
      })
      const first = await waitState(id, ['RUNNING'])
      const victimId = first.tasks[0].node as string
      const victim = nodes().find((n) => n.handle.id === victimId)!
      const logs = `${LOGS('lost', first.runId)}/stdout`
      const pid = await waitFor(
        async () => {
          const out = await readFs(
            logs,
            'alice',
            nodes().find((n) => n !== victim),
          )
          return out.status === 200 ? fields(out.text)['pid'] : undefined
        },
        { timeoutMs: 30_000, intervalMs: 250, what: 'the first run to print its pid' },
      )
      victim.handle.kill('SIGKILL')
      try {
        const survivor = nodes().find((n) => n !== victim)!
        const done = await waitFor(
          async () => {
            const res = await call(survivor, 'GET', `/api/v1/jobs/${id}`, 'alice')
            if (res.status !== 200) return undefined
            const j = res.json()
            return j.state === 'SUCCEEDED' || j.state === 'FAILED' || j.state === 'LOST' ? j : undefined
          },
          { timeoutMs: 120_000, intervalMs: 500, what: `job ${id} to run again and end` },
        )
        expect(done.state, JSON.stringify(done)).toBe('SUCCEEDED')
        expect(done.attempts).toBe(2)
        expect(done.lost).toBe(1)
        expect(done.tasks[0].node).not.toBe(victimId)
        const second = await readFs(`${LOGS('lost', done.runId)}/stdout`, 'alice', survivor)
        expect(second.text).toContain('done')
        // The first run's process outlived its daemon (its own process group). The restarted worker kills
        // what its previous incarnation left.
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
        // The dead daemon's task outlives it (its own process group): end it, as a restarted worker would.
        try {
          process.kill(-Number(pid), 'SIGKILL')
        } catch {
          // already gone
        }
      }
    }),
    180_000,
  )
})
