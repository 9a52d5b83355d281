// Serving on a node without a metadata replica, on a real cluster: three metadata nodes (roles metadata,
// datanode — none serves) and one node with the role `serving` only, in a zone of its own. A deployment's
// replica lands on the serving-only node, which learns the deployment table, the model's files and its
// callers' rights through a metadata node (src/node/cluster/serving-meta.ts); it reports the replica's
// state (GET /api/v1/deployments/:name shows it ready there) and answers inference with the right numbers,
// itself and when a metadata node routes to it; a non-member is refused there; a member removed from the
// project, and an inference key revoked, are refused there by the very next request; the request log of
// its replica reaches the project's Logs dataset. A deployment asking more CPU cores than any serving node
// has free stays pending, and its status says why.
import { availableParallelism } from 'node:os'
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
import { encodeModel, linearModel } from '../helpers/onnx-model.js'

const W = [
  [1, 2],
  [3, 4],
  [5, 6],
]
const B = [0.5, -1]
const MODEL = encodeModel(linearModel({ w: W, b: B }))
/** y = xW + b for one row. */
const expected = (x: number[]) => [0, 1].map((j) => x.reduce((s, v, i) => s + v * W[i]![j]!, B[j]!))

let cluster: LoopbackCluster
let failed = false

interface Reply {
  status: number
  text: string
  json(): any
}

/** `who`: a user name (simple auth's user.name; `alice@demo` acts in demo), or `{key}` (a bearer key). */
async function call(
  node: LoopbackNode,
  method: string,
  path: string,
  who: string | { key: string },
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const h: Record<string, string> = { ...headers }
  let url = `${node.handle.url}${path}`
  if (typeof who === 'string') {
    const [user, project] = who.split('@') as [string, string | undefined]
    url += `${path.includes('?') ? '&' : '?'}user.name=${encodeURIComponent(user)}`
    if (project !== undefined) h['x-hopsd-project'] = project
  } else h['authorization'] = `Bearer ${who.key}`
  let payload: Uint8Array | string | undefined
  if (body instanceof Uint8Array) {
    h['content-type'] ??= 'application/octet-stream'
    payload = body
  } else if (body !== undefined) {
    h['content-type'] = 'application/json'
    payload = JSON.stringify(body)
  }
  const res = await fetch(url, { method, headers: h, body: payload, signal: AbortSignal.timeout(30_000) })
  const text = await res.text()
  return { status: res.status, text, json: () => (text === '' ? undefined : JSON.parse(text)) }
}

async function ok(res: Promise<Reply>, status = 200): Promise<any> {
  const r = await res
  expect(r.status, r.text).toBe(status)
  return r.json()
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

let seq = 0
function infer(node: LoopbackNode, who: string | { key: string }, x: number[]) {
  return call(node, 'POST', '/v2/models/lin/infer', who, {
    id: `req-${++seq}`,
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: x }],
  })
}

/** The answer's numbers are y = xW + b (float32: close to 5 digits), and the id is echoed. */
async function expectAnswer(r: Promise<Reply>, x: number[]): Promise<void> {
  const res = await r
  expect(res.status, res.text).toBe(200)
  const body = res.json()
  expect(body.id).toBe(`req-${seq}`)
  expect(body.model_name).toBe('lin')
  const y = body.outputs[0].data as number[]
  expected(x).forEach((v, i) => expect(y[i]).toBeCloseTo(v, 4))
}

const servingNode = () => cluster.nodes[3]!

beforeAll(async () => {
  const meta = (i: number) => ({ zone: `z${i}`, roles: ['metadata', 'datanode'] })
  cluster = await startCluster({
    prefix: 'hopsd-serving-node-',
    nodes: [meta(1), meta(2), meta(3), { zone: 'z4', roles: ['serving'], seed: false }],
    extraArgs: [...FAST_TIMING_ARGS],
    env: { HOPSD_LOG_LEVEL: 'info' },
  })
  const n = cluster.nodes[0]!
  await waitFor(
    async () =>
      [201, 409].includes((await call(n, 'POST', '/api/v1/projects', 'alice', { name: 'demo' })).status),
    { timeoutMs: 60_000, intervalMs: 250, what: 'the project demo' },
  )
  await ok(
    call(n, 'POST', '/api/v1/projects/demo/members', 'alice', { user: 'carol', role: 'DATA_SCIENTIST' }),
    201,
  )
  await ok(
    call(n, 'PUT', '/api/v1/models/demo/lin/1/files/model.onnx', 'alice', MODEL, {
      'x-hopsd-model': JSON.stringify({ framework: 'onnx' }),
    }),
    201,
  )
}, 180_000)

afterAll(async () => {
  if (failed && cluster !== undefined) console.log(cluster.logTails(80))
  await cluster?.stop(10_000)
  await stopAllNodes()
  removeTempDirs()
}, 60_000)

describe('a serving node without a metadata replica', () => {
  it(
    'runs the replica placed on it, reports it, and answers inference with the right numbers',
    track(async () => {
      const s = servingNode()
      // The registry and deployments API through the serving-only node: forwarded to a metadata node.
      await ok(
        call(s, 'POST', '/api/v1/deployments', 'alice', {
          name: 'lin',
          project: 'demo',
          model: 'lin',
          version: '1',
          replicas: { min: 1, max: 1 },
          cpus: 1,
          memoryMiB: 256,
          logging: { sampleRate: 1 },
        }),
        201,
      )
      // Its state reaches the replicated table: a metadata node shows it ready on the serving-only node.
      const d = await waitFor(
        async () => {
          const r = await call(cluster.nodes[1]!, 'GET', '/api/v1/deployments/lin', 'alice')
          if (r.status !== 200) return undefined
          const body = r.json()
          return body.instances.some((i: any) => i.state === 'ready' && i.zone === 'z4') ? body : undefined
        },
        { timeoutMs: 120_000, intervalMs: 250, what: 'a ready replica of lin on the serving-only node' },
      )
      expect(d.instances).toHaveLength(1)
      expect(d.pending).toBe('')
      const here = d.instances[0].node as string
      expect(d.replicas.ready).toBe(1)
      expect((await ok(call(s, 'GET', '/v2/health/ready', 'alice'))).ready).toBe(true)
      expect((await ok(call(s, 'GET', '/v2/models/lin/ready', 'alice'))).ready).toBe(true)
      const md = await ok(call(s, 'GET', '/v2/models/lin', 'alice'))
      expect(md.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, 3] }])

      for (const x of [
        [1, 0, 0],
        [0.5, -2, 3],
        [10, 20, 30],
      ]) {
        await expectAnswer(infer(s, 'alice', x), x)
        await expectAnswer(infer(s, 'carol', x), x)
        // A metadata node routes to the serving-only node's replica (pinned), which authorizes again.
        await expectAnswer(infer(cluster.nodes[2]!, 'carol', x), x)
      }
      // A bad tensor is the replica's 400, and it keeps serving.
      const bad = await call(s, 'POST', '/v2/models/lin/infer', 'alice', {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2] }],
      })
      expect(bad.status, bad.text).toBe(400)
      expect(typeof bad.json().error).toBe('string')
      expect((await call(s, 'POST', '/v2/models/nosuch/infer', 'alice', {})).status).toBe(404)

      // A deployment no serving node has room for stays pending, and says why.
      await ok(
        call(s, 'POST', '/api/v1/deployments', 'alice', {
          name: 'huge',
          project: 'demo',
          model: 'lin',
          version: '1',
          cpus: 256,
        }),
        201,
      )
      const huge = await waitFor(
        async () => {
          const r = await ok(call(cluster.nodes[0]!, 'GET', '/api/v1/deployments/huge', 'alice'))
          return r.pending !== '' ? r : undefined
        },
        { timeoutMs: 30_000, intervalMs: 250, what: 'the pending reason of huge' },
      )
      // The serving node (this host) gossips its cores; lin's replica holds 1 of them.
      expect(huge.pending).toContain(
        `1 replica pending: no serving node has 256 CPU cores free (1 live; most free: ${availableParallelism() - 1} CPU cores`,
      )
      expect(huge.instances).toEqual([])
      await ok(call(s, 'DELETE', '/api/v1/deployments/huge', 'alice'))

      // Its sampled requests reach the project's Logs dataset (written by a metadata node as the owner).
      await waitFor(
        async () => {
          const dir = '/Projects/demo/Logs/serving/lin'
          const list = await call(cluster.nodes[0]!, 'GET', `/webhdfs/v1${dir}?op=LISTSTATUS`, 'alice@demo')
          if (list.status !== 200) return false
          for (const f of list.json().FileStatuses.FileStatus as { pathSuffix: string }[]) {
            const r = await call(
              cluster.nodes[0]!,
              'GET',
              `/webhdfs/v1${dir}/${f.pathSuffix}?op=OPEN`,
              'alice@demo',
            )
            const records = r.text
              .split('\n')
              .filter((l) => l !== '')
              .map((l) => JSON.parse(l))
            if (records.some((rec) => rec.node === here && rec.status === 200)) return true
          }
          return false
        },
        { timeoutMs: 30_000, intervalMs: 250, what: 'request records of the serving-only node in Logs' },
      )
    }),
    180_000,
  )

  it(
    'refuses a non-member, and a removed member or a revoked inference key on the very next request',
    track(async () => {
      const s = servingNode()
      const x = [1, 2, 3]
      const bob = await infer(s, 'bob', x)
      expect(bob.status, bob.text).toBe(403)
      expect(typeof bob.json().error).toBe('string')
      expect((await call(s, 'GET', '/v2/models/lin', 'bob')).status).toBe(403)
      // Acting in another project is refused too.
      expect((await infer(s, 'alice@other', x)).status).not.toBe(200)

      // carol infers through the serving-only node; removed from demo, her next request there is refused.
      await expectAnswer(infer(s, 'carol', x), x)
      await ok(call(cluster.nodes[1]!, 'DELETE', '/api/v1/projects/demo/members/carol', 'alice'))
      const removed = await infer(s, 'carol', x)
      expect(removed.status, removed.text).toBe(403)
      expect((await infer(cluster.nodes[2]!, 'carol', x)).status).toBe(403)
      await expectAnswer(infer(s, 'alice', x), x)

      // An inference key answers on the serving-only node; revoked, its next request there is refused.
      const made = await ok(call(cluster.nodes[0]!, 'POST', '/api/v1/deployments/lin/keys', 'alice', {}), 201)
      const key = { key: made.key as string }
      await expectAnswer(infer(s, key, x), x)
      await ok(call(cluster.nodes[0]!, 'DELETE', `/api/v1/deployments/lin/keys/${made.id}`, 'alice'))
      const revoked = await infer(s, key, x)
      expect(revoked.status, revoked.text).toBe(401)
      // A key is for the /v2 model routes only: the serving-only node forwards nothing else with it.
      expect((await call(s, 'GET', '/api/v1/deployments/lin', key)).status).toBe(401)
    }),
    120_000,
  )
})
