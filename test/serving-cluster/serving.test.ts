// Model registry and serving on a real cluster: three `hopsd start` processes (roles metadata, datanode,
// serving; zones z1..z3). alice makes the project `demo` (POST /api/v1/projects: she is its Data Owner)
// and, acting in it (X-Hopsd-Project, WebHDFS project=), puts a small ONNX model (y = xW + b, written by
// test/helpers/onnx-model.ts) under /Projects/demo/Models; it is registered and deployed with 2
// replicas; every node answers the Open Inference Protocol with the right numbers (routing to the
// replicas' nodes), bad tensors get their codes while the replicas keep serving, a non-member is refused
// everywhere, a Data Scientist registers, deploys and infers until removed from the project — then its
// next request is refused on every node —, a rolling update to version 2 fails no request, and a
// replica's node killed with SIGKILL is replaced while requests keep succeeding.
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  FAST_TIMING_ARGS,
  REPO_ROOT,
  removeTempDirs,
  startCluster,
  stopAllNodes,
  waitFor,
  type LoopbackCluster,
  type LoopbackNode,
} from '../helpers/index.js'
import { encodeModel, linearModel, linearReference } from '../helpers/onnx-model.js'
import { runDeploy, runModel } from '../../src/cli/model.js'

const W1 = [
  [1, 2],
  [3, 4],
  [5, 6],
]
const B1 = [0.5, -1]
const W2 = [
  [-1, 0],
  [0, -1],
  [2, 2],
]
const B2 = [10, 20]

let cluster: LoopbackCluster
let failed = false

interface Reply {
  status: number
  text: string
  json(): any
}

/** Project keys by name (`carol#demo`): a key made for a project acts in it (Authorization: Bearer). */
const keys: Record<string, string> = {}

/**
 * A request as `who`: `alice` is alice's own credential (acting in no project), `alice@demo` the same
 * acting in project demo (X-Hopsd-Project), `carol#demo` carol's project key for demo.
 */
async function call(
  node: LoopbackNode,
  method: string,
  path: string,
  who: string,
  body?: unknown,
  raw?: Uint8Array,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const [user, project] = who.split('@') as [string, string | undefined]
  const key = keys[who]
  const sep = path.includes('?') ? '&' : '?'
  const res = await fetch(
    `${node.handle.url}${path}${key ? '' : `${sep}user.name=${encodeURIComponent(user)}`}`,
    {
      method,
      headers: {
        ...headers,
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(project === undefined ? {} : { 'x-hopsd-project': project }),
        ...(raw !== undefined
          ? { 'content-type': 'application/octet-stream' }
          : body === undefined
            ? {}
            : { 'content-type': 'application/json' }),
      },
      body:
        raw !== undefined
          ? raw
          : body === undefined
            ? undefined
            : typeof body === 'string'
              ? body
              : JSON.stringify(body),
      signal: AbortSignal.timeout(20_000),
    },
  )
  const text = await res.text()
  return { status: res.status, text, json: () => (text === '' ? undefined : JSON.parse(text)) }
}

const killed = new Set<LoopbackNode>()
const live = (): LoopbackNode[] => cluster.nodes.filter((n) => !killed.has(n))

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

async function ok(res: Promise<Reply>, status = 200): Promise<any> {
  const r = await res
  expect(r.status, r.text).toBe(status)
  return r.json()
}

/** Model files as a member acting in demo: WebHDFS's project= for the folder, the header for the file. */
async function putModel(version: string, w: number[][], b: number[], user = 'alice'): Promise<void> {
  const n = cluster.nodes[0]!
  const dir = `/Projects/demo/Models/lin/${version}`
  await ok(call(n, 'PUT', `/webhdfs/v1${dir}?op=MKDIRS&project=demo`, user))
  await ok(
    call(
      n,
      'PUT',
      `/api/v1/fs/files?path=${encodeURIComponent(`${dir}/model.onnx`)}`,
      `${user}@demo`,
      undefined,
      encodeModel(linearModel({ w, b })),
    ),
    201,
  )
}

function infer(
  node: LoopbackNode,
  x: number[][],
  user = 'alice',
  extra: Record<string, unknown> = {},
  path = '/v2/models/lin/infer',
) {
  return call(node, 'POST', path, user, {
    id: `r-${Math.random().toString(36).slice(2)}`,
    inputs: [{ name: 'x', datatype: 'FP32', shape: [x.length, 3], data: x.flat() }],
    ...extra,
  })
}

function expectClose(got: number[], want: number[][]): void {
  const flat = want.flat()
  expect(got.length).toBe(flat.length)
  got.forEach((v, i) => expect(v).toBeCloseTo(flat[i]!, 4))
}

async function deployment(): Promise<any> {
  return ok(call(live()[0]!, 'GET', '/api/v1/deployments/lin', 'alice'))
}

async function waitReady(version: string, count: number, what: string): Promise<any> {
  return waitFor(
    async () => {
      const r = await call(live()[0]!, 'GET', '/api/v1/deployments/lin', 'alice')
      if (r.status !== 200) return undefined
      const d = r.json()
      const ready = d.instances.filter((i: any) => i.state === 'ready' && i.version === version)
      return ready.length >= count && d.instances.length === count ? d : undefined
    },
    { timeoutMs: 120_000, intervalMs: 250, what },
  )
}

beforeAll(async () => {
  cluster = await startCluster({
    prefix: 'hopsd-serving-cluster-',
    nodes: 3,
    roles: ['metadata', 'datanode', 'serving'],
    extraArgs: [...FAST_TIMING_ARGS],
    env: { HOPSD_LOG_LEVEL: 'info' },
  })
  const n = cluster.nodes[0]!
  await waitFor(
    async () =>
      [201, 409].includes((await call(n, 'POST', '/api/v1/projects', 'alice', { name: 'demo' })).status),
    { timeoutMs: 60_000, intervalMs: 250, what: 'the project demo' },
  )
  // Plain users reach nothing under /Projects: alice writes there acting in demo only.
  expect((await call(n, 'PUT', '/webhdfs/v1/Projects/demo/Models/x?op=MKDIRS', 'alice')).status).toBe(403)
  await putModel('1', W1, B1)
  await putModel('2', W2, B2)
  const st = await ok(
    call(n, 'GET', '/webhdfs/v1/Projects/demo/Models/lin/1/model.onnx?op=GETFILESTATUS', 'alice@demo'),
  )
  expect(st.FileStatus.owner).toBe('demo__alice')
}, 180_000)

afterAll(async () => {
  if (failed && cluster !== undefined) console.log(cluster.logTails(60))
  await cluster?.stop(10_000)
  await stopAllNodes()
  removeTempDirs()
}, 60_000)

describe('model registry', () => {
  it(
    'registers versions with lineage, lists, shows both ways, refuses bad and foreign requests',
    track(async () => {
      const n = cluster.nodes[1]!
      const m = await ok(
        call(n, 'POST', '/api/v1/models', 'alice', {
          project: 'demo',
          name: 'lin',
          version: '1',
          framework: 'onnx',
          metrics: { rmse: 0.25 },
          description: 'y = xW + b',
          trainingDataset: '/Projects/demo/Datasets/points',
          program: '/Projects/demo/Jupyter/train.py',
        }),
        201,
      )
      expect(m).toMatchObject({ creator: 'alice', path: '/Projects/demo/Models/lin/1', framework: 'onnx' })
      await ok(
        call(n, 'POST', '/api/v1/models', 'alice', {
          project: 'demo',
          name: 'lin',
          version: '2',
          framework: 'onnx',
          trainingDataset: '/Projects/demo/Datasets/points/v2',
        }),
        201,
      )
      // Twice: 409; a version whose directory is missing, an unknown field, a bad framework: 400.
      expect(
        (
          await call(n, 'POST', '/api/v1/models', 'alice', {
            project: 'demo',
            name: 'lin',
            version: '1',
            framework: 'onnx',
          })
        ).json().error.code,
      ).toBe('MODEL_EXISTS')
      for (const bad of [
        { project: 'demo', name: 'lin', version: '3', framework: 'onnx' },
        { project: 'demo', name: 'lin', version: '3', framework: 'onnx', colour: 'red' },
        { project: 'demo', name: 'lin', version: '3', framework: 'caffe9' },
        { project: 'demo', name: '../x', version: '3', framework: 'onnx' },
      ]) {
        const r = await call(n, 'POST', '/api/v1/models', 'alice', bad)
        expect(r.status, r.text).toBe(400)
      }
      // Listed, and shown with lineage both ways.
      const list = await ok(call(cluster.nodes[2]!, 'GET', '/api/v1/models?project=demo', 'alice'))
      expect(list.models.map((x: any) => x.version)).toEqual(['1', '2'])
      const fromDataset = await ok(
        call(
          n,
          'GET',
          `/api/v1/models?dataset=${encodeURIComponent('/Projects/demo/Datasets/points')}`,
          'alice',
        ),
      )
      expect(fromDataset.models.map((x: any) => `${x.name}/${x.version}`)).toEqual(['lin/1', 'lin/2'])
      const one = await ok(call(n, 'GET', '/api/v1/models/demo/lin/1', 'alice'))
      expect(one).toMatchObject({
        trainingDataset: '/Projects/demo/Datasets/points',
        metrics: [{ name: 'rmse', value: 0.25 }],
        deployments: [],
      })
      // bob is no member of demo: refused everywhere, with his own credential or claiming to act in demo.
      expect((await call(n, 'GET', '/api/v1/models?project=demo', 'bob')).status).toBe(403)
      expect((await call(n, 'GET', '/api/v1/models?project=demo', 'bob@demo')).status).toBe(403)
      expect((await call(n, 'GET', '/api/v1/models/demo/lin/1', 'bob@demo')).status).toBe(403)
      expect((await call(n, 'GET', '/api/v1/models/demo/lin/1', 'bob')).status).toBe(403)
      expect((await call(n, 'DELETE', '/api/v1/models/demo/lin/1', 'bob')).status).toBe(403)
      expect(
        (
          await call(n, 'POST', '/api/v1/models', 'bob', {
            project: 'demo',
            name: 'lin',
            version: '3',
            framework: 'onnx',
          })
        ).status,
      ).toBe(403)
      expect(
        (
          await ok(
            call(
              n,
              'GET',
              `/api/v1/models?dataset=${encodeURIComponent('/Projects/demo/Datasets/points')}`,
              'bob',
            ),
          )
        ).models,
      ).toEqual([])
      expect(
        (
          await call(n, 'POST', '/api/v1/deployments', 'bob', {
            name: 'evil',
            project: 'demo',
            model: 'lin',
            version: '1',
          })
        ).status,
      ).toBe(403)
    }),
    60_000,
  )
})

describe('deployments and inference', () => {
  it(
    'deploys 2 replicas in distinct zones; every node answers the right numbers',
    track(async () => {
      const created = await ok(
        call(cluster.nodes[0]!, 'POST', '/api/v1/deployments', 'alice', {
          name: 'lin',
          project: 'demo',
          model: 'lin',
          version: '1',
          replicas: { min: 2, max: 2 },
          cpus: 1,
          memoryMiB: 256,
        }),
        201,
      )
      expect(created).toMatchObject({ name: 'lin', version: '1', replicas: { min: 2, max: 2 } })
      const d = await waitReady('1', 2, '2 ready replicas of version 1')
      const zones = new Set(d.instances.map((i: any) => i.zone))
      expect(zones.size).toBe(2)
      // The model version now shows what serves it, and cannot be deleted.
      expect(
        (await ok(call(cluster.nodes[1]!, 'GET', '/api/v1/models/demo/lin/1', 'alice'))).deployments,
      ).toEqual(['lin'])
      expect(
        (await call(cluster.nodes[1]!, 'DELETE', '/api/v1/models/demo/lin/1', 'alice')).json().error.code,
      ).toBe('MODEL_IN_USE')

      const x = [
        [1, 1, 1],
        [0.5, -2, 3],
      ]
      for (const n of cluster.nodes) {
        for (const path of ['/v2/models/lin/infer', '/v2/models/lin/versions/1/infer']) {
          const r = await infer(n, x, 'alice', {}, path)
          expect(r.status, r.text).toBe(200)
          const body = r.json()
          expect(body.model_name).toBe('lin')
          expect(body.model_version).toBe('1')
          expect(body.id).toMatch(/^r-/)
          expect(body.outputs[0]).toMatchObject({ name: 'y', datatype: 'FP32', shape: [2, 2] })
          expectClose(body.outputs[0].data, linearReference(x, W1, B1))
        }
        const meta = await ok(call(n, 'GET', '/v2/models/lin', 'alice'))
        expect(meta.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 3] }])
        expect(meta.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [-1, 2] }])
        expect(await ok(call(n, 'GET', '/v2/models/lin/ready', 'alice'))).toEqual({
          name: 'lin',
          ready: true,
        })
        expect(await ok(call(n, 'GET', '/v2/models/lin/versions/1/ready', 'alice'))).toEqual({
          name: 'lin',
          ready: true,
        })
        expect((await ok(call(n, 'GET', '/v2', 'alice'))).name).toBe('hopsd')
        expect(await ok(call(n, 'GET', '/v2/health/live', 'alice'))).toEqual({ live: true })
        expect(await ok(call(n, 'GET', '/v2/health/ready', 'alice'))).toEqual({ ready: true })
      }
    }),
    180_000,
  )

  it(
    'answers bad requests with their codes while good ones keep succeeding; refuses a non-member',
    track(async () => {
      const good = [[1, 2, 3]]
      const cases: [unknown, number][] = [
        [{ inputs: [{ name: 'nope', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }, 400],
        [{ inputs: [{ name: 'x', datatype: 'INT64', shape: [1, 3], data: [1, 2, 3] }] }, 400],
        [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }, 400],
        [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2] }] }, 400],
        [{ inputs: [{ name: 'x', datatype: 'FLOAT32', shape: [1, 3], data: [1, 2, 3] }] }, 400],
        ['{not json', 400],
      ]
      for (const n of cluster.nodes) {
        for (const [body, status] of cases) {
          const r = await call(n, 'POST', '/v2/models/lin/infer', 'alice', body)
          expect(r.status, r.text).toBe(status)
          expect(typeof r.json().error).toBe('string')
          const g = await infer(n, good)
          expect(g.status, g.text).toBe(200)
          expectClose(g.json().outputs[0].data, linearReference(good, W1, B1))
        }
        for (const path of ['/v2/models/nope/infer', '/v2/models/lin/versions/9/infer']) {
          const r = await infer(n, good, 'alice', {}, path)
          expect(r.status, r.text).toBe(404)
          expect(typeof r.json().error).toBe('string')
        }
        expect((await call(n, 'GET', '/v2/models/nope', 'alice')).status).toBe(404)
        // A pinned replica (what nodes send each other) is no way around the check: not for this
        // deployment, nor through another name (an unknown one is not authorized against anything).
        const replicaId = (await deployment()).instances[0].id as string
        for (const model of ['lin', 'nope']) {
          const pinned = await fetch(`${n.handle.url}/v2/models/${model}/infer?user.name=bob`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-hopsd-replica': replicaId },
            body: JSON.stringify({
              inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }],
            }),
          })
          expect(pinned.status, `${model}: ${await pinned.text()}`).toBe(model === 'lin' ? 403 : 503)
        }
        for (const who of ['bob', 'bob@demo']) {
          const bob = await infer(n, good, who)
          expect(bob.status, bob.text).toBe(403)
          expect(typeof bob.json().error).toBe('string')
          expect((await call(n, 'GET', '/v2/models/lin', who)).status).toBe(403)
          expect((await call(n, 'GET', '/v2/models/lin/ready', who)).status).toBe(403)
        }
      }
    }),
    120_000,
  )

  it(
    'a Data Scientist registers, deploys and infers; removed from the project, its next request is refused on every node',
    track(async () => {
      const n = cluster.nodes[1]!
      await ok(
        call(n, 'POST', '/api/v1/projects/demo/members', 'alice', { user: 'carol', role: 'DATA_SCIENTIST' }),
        201,
      )
      // carol's project key for demo (keys need a user record: the superuser makes it).
      await ok(call(n, 'POST', '/api/v1/users', 'hopsd', { name: 'carol' }), 201)
      keys['carol#demo'] = (
        await ok(call(n, 'POST', '/api/v1/keys', 'carol', { user: 'carol', project: 'demo' }), 201)
      ).key
      // carol's files (acting in demo), registration and deployment (her own credential: she is a member).
      await putModel('3', W2, B2, 'carol')
      const m = await ok(
        call(n, 'POST', '/api/v1/models', 'carol', {
          project: 'demo',
          name: 'lin',
          version: '3',
          framework: 'onnx',
        }),
        201,
      )
      expect(m.creator).toBe('carol')
      await ok(
        call(n, 'POST', '/api/v1/deployments', 'carol@demo', {
          name: 'lin3',
          project: 'demo',
          model: 'lin',
          version: '3',
        }),
        201,
      )
      await waitFor(async () => (await call(n, 'GET', '/v2/models/lin3/ready', 'carol')).status === 200, {
        timeoutMs: 60_000,
        intervalMs: 200,
        what: 'a ready replica of lin3',
      })
      const x = [[1, -1, 2]]
      const replica = (await deployment()).instances[0]
      const replicaId = replica.id as string
      const pinned = (node: LoopbackNode, who: string) =>
        call(
          node,
          'POST',
          '/v2/models/lin/infer',
          who,
          { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: x.flat() }] },
          undefined,
          {
            'x-hopsd-replica': replicaId,
          },
        )
      for (const node of cluster.nodes) {
        for (const who of ['carol', 'carol@demo', 'carol#demo']) {
          const r = await infer(node, x, who)
          expect(r.status, r.text).toBe(200)
          expectClose(r.json().outputs[0].data, linearReference(x, W1, B1))
          const r3 = await infer(node, x, who, {}, '/v2/models/lin3/infer')
          expect(r3.status, r3.text).toBe(200)
          expectClose(r3.json().outputs[0].data, linearReference(x, W2, B2))
        }
      }
      // What nodes send each other: the replica's own node serves it to a member.
      const home = cluster.nodes.find((x) => x.handle.id === replica.node)!
      const p = await pinned(home, 'carol@demo')
      expect(p.status, p.text).toBe(200)
      await ok(call(n, 'DELETE', '/api/v1/deployments/lin3', 'carol'))

      // alice removes carol: her very next request on every node is refused — each way of asking.
      await ok(call(cluster.nodes[2]!, 'DELETE', '/api/v1/projects/demo/members/carol', 'alice'))
      for (const node of cluster.nodes) {
        for (const who of ['carol', 'carol@demo', 'carol#demo']) {
          const r = await infer(node, x, who)
          expect(r.status, `${node.handle.id} ${who}: ${r.text}`).toBe(403)
          expect((await pinned(node, who)).status).toBe(403)
          expect((await call(node, 'GET', '/v2/models/lin', who)).status).toBe(403)
          expect((await call(node, 'GET', '/api/v1/models?project=demo', who)).status).toBe(403)
          expect((await call(node, 'GET', '/api/v1/deployments/lin', who)).status).toBe(403)
          expect((await ok(call(node, 'GET', '/api/v1/deployments', who))).deployments).toEqual([])
          expect((await call(node, 'DELETE', '/api/v1/models/demo/lin/3', who)).status).toBe(403)
        }
      }
      // alice still infers, and forgets carol's version (its files stay: they are the project's).
      const a = await infer(cluster.nodes[0]!, x)
      expect(a.status, a.text).toBe(200)
      await waitFor(
        async () =>
          (await call(n, 'DELETE', '/api/v1/models/demo/lin/3?keepFiles=true', 'alice')).status === 200,
        { timeoutMs: 30_000, intervalMs: 200, what: 'version 3 free to delete' },
      )
    }),
    120_000,
  )

  it(
    'rolls out version 2 with no failed request',
    track(async () => {
      const x = [[1, 1, 1]]
      let stop = false
      const seen = { v1: 0, v2: 0, failed: [] as string[] }
      const load = (async () => {
        let i = 0
        while (!stop) {
          const n = cluster.nodes[i++ % 3]!
          const r = await infer(n, x)
          if (r.status !== 200) {
            seen.failed.push(`${r.status} ${r.text}`)
            continue
          }
          const body = r.json()
          if (body.model_version === '1') {
            expectClose(body.outputs[0].data, linearReference(x, W1, B1))
            seen.v1++
          } else {
            expectClose(body.outputs[0].data, linearReference(x, W2, B2))
            seen.v2++
          }
        }
      })()
      await ok(call(cluster.nodes[2]!, 'PATCH', '/api/v1/deployments/lin', 'alice', { version: '2' }))
      await waitReady('2', 2, 'version 2 rolled out (2 ready, version 1 gone)')
      await waitFor(async () => seen.v2 >= 20, {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: 'answers of version 2',
      })
      stop = true
      await load
      expect(seen.failed).toEqual([])
      expect(seen.v1).toBeGreaterThan(0)
      // Version 1 is free again: it can be deleted.
      await ok(call(cluster.nodes[0]!, 'DELETE', '/api/v1/models/demo/lin/1?keepFiles=true', 'alice'))
    }),
    180_000,
  )

  it(
    'replaces the replica of a node killed with SIGKILL; requests keep succeeding',
    track(async () => {
      const d = await deployment()
      const victimId = d.instances[0].node as string
      const victim = cluster.nodes.find((n) => n.handle.id === victimId)
      expect(victim, `node ${victimId} among ${cluster.nodes.map((n) => n.handle.id)}`).toBeDefined()
      killed.add(victim!)
      victim!.handle.kill('SIGKILL')
      await victim!.handle.exited
      const x = [[2, 0, 1]]
      let failures = 0
      // Until the leader replaced the replica: requests through the survivors (a few may meet the dead
      // replica before the cluster knows; those are retried on the other one by the router).
      const after = await waitFor(
        async () => {
          for (const n of live()) {
            const r = await infer(n, x)
            if (r.status !== 200) failures++
            else expectClose(r.json().outputs[0].data, linearReference(x, W2, B2))
          }
          const r = await call(live()[0]!, 'GET', '/api/v1/deployments/lin', 'alice')
          if (r.status !== 200) return undefined
          const now = r.json()
          const ready = now.instances.filter((i: any) => i.state === 'ready' && i.node !== victimId)
          return ready.length === 2 && now.instances.every((i: any) => i.node !== victimId) ? now : undefined
        },
        { timeoutMs: 120_000, intervalMs: 200, what: 'the replica replaced on a live node' },
      )
      expect(after.instances.map((i: any) => i.node).sort()).toEqual(
        live()
          .map((n) => n.handle.id)
          .sort(),
      )
      expect(failures).toBe(0)
    }),
    180_000,
  )

  it(
    'hopsd model and hopsd deploy: show, list, refuse, update bounds, rm stops the replicas',
    track(async () => {
      const cli = async (
        fn: typeof runModel,
        user: string,
        ...args: string[]
      ): Promise<{ code: number; out: string; err: string }> => {
        const out: string[] = []
        const err: string[] = []
        const [sub, ...rest] = args
        const code = await fn([sub!, '--addr', live()[0]!.handle.url, '--user', user, ...rest], {
          out: (l) => out.push(l),
          err: (l) => err.push(l),
        })
        return { code, out: out.join('\n'), err: err.join('\n') }
      }
      const show = await cli(runModel, 'alice', 'show', 'demo', 'lin', '2')
      expect(show.code, show.err).toBe(0)
      expect(show.out).toMatch(/deployments lin/)
      expect(show.out).toMatch(/dataset\s+\/Projects\/demo\/Datasets\/points\/v2/)
      const ls = await cli(runModel, 'alice', 'ls', '--dataset', '/Projects/demo/Datasets')
      expect(ls.code, ls.err).toBe(0)
      expect(
        ls.out
          .split('\n')
          .slice(1)
          .map((l) => l.split(/\s+/).slice(0, 3).join('/')),
      ).toEqual(['demo/lin/2'])
      const denied = await cli(runModel, 'bob', 'rm', 'demo', 'lin', '2')
      expect(denied.code).toBe(1)
      expect(denied.err).toMatch(/\[MODEL_ACCESS_DENIED\]/)
      const dls = await cli(runDeploy, 'alice', 'ls', '--project', 'demo')
      expect(dls.code, dls.err).toBe(0)
      expect(dls.out).toMatch(/^lin\s+demo\s+lin\s+2\s+ready\s+2\/2/m)
      const bad = await cli(runDeploy, 'alice', 'update', 'lin', '--replicas', '3:2')
      expect(bad.code).toBe(1)
      expect(bad.err).toMatch(/\[DEPLOYMENT_SPEC_INVALID\]/)
      const rm = await cli(runDeploy, 'alice', 'rm', 'lin')
      expect(rm.code, rm.err).toBe(0)
      // Its replicas stop: each node drains and stops them and removes their model copies.
      await waitFor(
        async () => {
          const r = await call(live()[0]!, 'GET', '/api/v1/deployments', 'alice')
          return r.status === 200 && r.json().deployments.length === 0
        },
        { timeoutMs: 30_000, intervalMs: 200, what: 'the deployment gone' },
      )
      await waitFor(
        async () =>
          live().every(
            (n) =>
              !existsSync(join(n.dataDir, 'serving')) || readdirSync(join(n.dataDir, 'serving')).length === 0,
          ),
        { timeoutMs: 30_000, intervalMs: 200, what: 'every replica stopped and its copy removed' },
      )
      for (const n of live()) expect((await infer(n, [[1, 1, 1]])).status).toBe(404)
      const free = await cli(runModel, 'alice', 'rm', 'demo', 'lin', '2')
      expect(free.code, free.err).toBe(0)
      expect(free.out).toBe('removed demo/lin/2 and its files')
      expect(
        (
          await call(
            live()[0]!,
            'GET',
            '/webhdfs/v1/Projects/demo/Models/lin/2?op=GETFILESTATUS',
            'alice@demo',
          )
        ).status,
      ).toBe(404)
    }),
    120_000,
  )

  it(
    'scales a slow model from 1 to 2 replicas under load, with the reason in the deployment',
    track(async () => {
      const n = live()[0]!
      const dir = '/Projects/demo/Models/slow/1'
      await ok(call(n, 'PUT', `/webhdfs/v1${dir}?op=MKDIRS&project=demo`, 'alice'))
      const predictor = readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'predictors', 'linear.py'))
      await ok(
        call(
          n,
          'PUT',
          `/api/v1/fs/files?path=${encodeURIComponent(`${dir}/linear.py`)}`,
          'alice@demo',
          undefined,
          predictor,
        ),
        201,
      )
      const weights = Buffer.from(JSON.stringify({ w: W1, b: B1, max_batch_size: 1 }))
      await ok(
        call(
          n,
          'PUT',
          `/api/v1/fs/files?path=${encodeURIComponent(`${dir}/weights.json`)}`,
          'alice@demo',
          undefined,
          weights,
        ),
        201,
      )
      await ok(
        call(n, 'POST', '/api/v1/models', 'alice', {
          project: 'demo',
          name: 'slow',
          version: '1',
          framework: 'subprocess',
          command: ['python3', 'linear.py'],
        }),
        201,
      )
      await ok(
        call(n, 'POST', '/api/v1/deployments', 'alice', {
          name: 'slow',
          project: 'demo',
          model: 'slow',
          version: '1',
          replicas: { min: 1, max: 2 },
        }),
        201,
      )
      await waitFor(async () => (await call(n, 'GET', '/v2/models/slow/ready', 'alice')).status === 200, {
        timeoutMs: 60_000,
        intervalMs: 200,
        what: 'one ready replica of slow',
      })
      let stop = false
      const failures: string[] = []
      const x = [[1, 1, 1]]
      const loops = Array.from({ length: 24 }, async (_, i) => {
        while (!stop) {
          const r = await call(live()[i % live().length]!, 'POST', '/v2/models/slow/infer', 'alice', {
            inputs: [{ name: 'x', datatype: 'FP64', shape: [1, 3], data: x.flat() }],
            parameters: { sleep_ms: 50 },
          })
          if (r.status !== 200) failures.push(`${r.status} ${r.text}`)
          else expectClose(r.json().outputs[0].data, linearReference(x, W1, B1))
        }
      })
      const scaled = await waitFor(
        async () => {
          const r = await call(n, 'GET', '/api/v1/deployments/slow', 'alice')
          const d = r.status === 200 ? r.json() : undefined
          return d !== undefined && d.replicas.wanted === 2 && d.replicas.ready === 2 ? d : undefined
        },
        { timeoutMs: 90_000, intervalMs: 250, what: 'slow scaled to 2 ready replicas' },
      ).finally(() => {
        stop = true
      })
      await Promise.all(loops)
      expect(scaled.lastScale).toMatch(/^up to 2: \d+ requests in flight on 1 ready replicas/)
      expect(new Set(scaled.instances.map((i: any) => i.node)).size).toBe(2)
      expect(failures).toEqual([])
      await ok(call(n, 'DELETE', '/api/v1/deployments/slow', 'alice'))
    }),
    150_000,
  )
})
