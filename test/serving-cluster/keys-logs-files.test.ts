// Serving, the rest of issue 16 on a real cluster (three `hopsd start` processes, roles metadata,
// datanode, serving): a model uploaded and registered in one request (and undone when refused), its files
// listed and downloaded (a 1 MiB file through blocks), by members only; inference keys a Data Owner issues
// for one deployment — answered on every node for that deployment, refused on another deployment, on
// WebHDFS, the fs and the management API, and on every node from the request after their revocation; and
// request/response logging to /Projects/demo/Logs/serving/<deployment> at sample rates 1 and 0, read back
// through WebHDFS.
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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
import { runDeploy, runModel } from '../../src/cli/model.js'

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
const localDir = mkdtempSync(join(tmpdir(), 'hopsd-servex-cli-'))

interface Reply {
  status: number
  text: string
  bytes: Buffer
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
  const bytes = Buffer.from(await res.arrayBuffer())
  const text = bytes.toString('utf8')
  return { status: res.status, text, bytes, json: () => (text === '' ? undefined : JSON.parse(text)) }
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
function infer(node: LoopbackNode, name: string, who: string | { key: string }, x: number[], id?: string) {
  return call(node, 'POST', `/v2/models/${name}/infer`, who, {
    id: id ?? `req-${++seq}`,
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: x }],
  })
}

async function waitReady(name: string): Promise<void> {
  await waitFor(
    async () => {
      const r = await call(cluster.nodes[0]!, 'GET', `/api/v1/deployments/${name}`, 'alice')
      return r.status === 200 && r.json().replicas.ready >= 1
    },
    { timeoutMs: 120_000, intervalMs: 250, what: `a ready replica of ${name}` },
  )
}

/** Every JSON line under /Projects/demo/Logs/serving/<deployment>, read through WebHDFS as alice in demo. */
async function logLines(deployment: string): Promise<any[]> {
  const n = cluster.nodes[0]!
  const dir = `/Projects/demo/Logs/serving/${deployment}`
  const list = await call(n, 'GET', `/webhdfs/v1${dir}?op=LISTSTATUS`, 'alice@demo')
  if (list.status === 404) return []
  expect(list.status, list.text).toBe(200)
  const out: any[] = []
  for (const f of list.json().FileStatuses.FileStatus as { pathSuffix: string }[]) {
    const r = await call(n, 'GET', `/webhdfs/v1${dir}/${f.pathSuffix}?op=OPEN`, 'alice@demo')
    expect(r.status, r.text).toBe(200)
    for (const line of r.text.split('\n')) if (line !== '') out.push(JSON.parse(line))
  }
  return out
}

async function cli(fn: typeof runModel, user: string, ...args: string[]) {
  const out: string[] = []
  const err: string[] = []
  const [sub, ...rest] = args
  const code = await fn([sub!, '--addr', cluster.nodes[1]!.handle.url, '--user', user, ...rest], {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
  })
  return { code, out: out.join('\n'), err: err.join('\n') }
}

beforeAll(async () => {
  cluster = await startCluster({
    prefix: 'hopsd-servex-cluster-',
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
  await ok(
    call(n, 'POST', '/api/v1/projects/demo/members', 'alice', { user: 'carol', role: 'DATA_SCIENTIST' }),
    201,
  )
}, 180_000)

afterAll(async () => {
  if (failed && cluster !== undefined) console.log(cluster.logTails(60))
  await cluster?.stop(10_000)
  await stopAllNodes()
  removeTempDirs()
  rmSync(localDir, { recursive: true, force: true })
}, 60_000)

describe('model upload and download', () => {
  it(
    'uploads and registers in one step; refuses non-members, bad specs and taken versions, undoing what it wrote',
    track(async () => {
      const n = cluster.nodes[1]!
      const spec = (s: unknown) => ({ 'x-hopsd-model': JSON.stringify(s) })
      const up = (who: string, version: string, s: unknown, body: Uint8Array = MODEL, file = 'model.onnx') =>
        call(n, 'PUT', `/api/v1/models/demo/lin/${version}/files/${file}`, who, body, spec(s))
      const exists = async (path: string) =>
        (await call(cluster.nodes[2]!, 'GET', `/webhdfs/v1${path}?op=GETFILESTATUS`, 'alice@demo')).status

      const m = await ok(up('alice', '1', { framework: 'onnx', description: 'uploaded' }), 201)
      expect(m).toMatchObject({
        project: 'demo',
        name: 'lin',
        version: '1',
        framework: 'onnx',
        modelFile: 'model.onnx',
        creator: 'alice',
        uploaded: '/Projects/demo/Models/lin/1/model.onnx',
      })
      expect(await exists('/Projects/demo/Models/lin/1/model.onnx')).toBe(200)

      // A non-member, a bad spec, a taken version: refused, and nothing of version 3 is left behind.
      const bob = await up('bob', '3', { framework: 'onnx' })
      expect(bob.status, bob.text).toBe(403)
      for (const [s, code] of [
        [{ framework: 'caffe' }, 'MODEL_SPEC_INVALID'],
        [{ framework: 'onnx', colour: 'red' }, 'MODEL_SPEC_INVALID'],
        [{ framework: 'onnx', version: '9' }, 'MODEL_SPEC_INVALID'],
      ] as const) {
        const r = await up('alice', '3', s)
        expect(r.status, r.text).toBe(400)
        expect(r.json().error.code).toBe(code)
      }
      const noHeader = await call(n, 'PUT', '/api/v1/models/demo/lin/3/files/model.onnx', 'alice', MODEL)
      expect(noHeader.status, noHeader.text).toBe(400)
      const badName = await up('alice', '3', { framework: 'onnx' }, MODEL, '..x')
      expect(badName.status, badName.text).toBe(400)
      expect((await up('alice', '1', { framework: 'onnx' })).json().error.code).toBe('MODEL_EXISTS')
      // Written, then refused by the registration (its ONNX file is another name): the upload is undone.
      const undone = await up('alice', '3', { framework: 'onnx', modelFile: 'other.onnx' })
      expect(undone.status, undone.text).toBe(400)
      expect(await exists('/Projects/demo/Models/lin/3')).toBe(404)
      expect((await call(n, 'GET', '/api/v1/models/demo/lin/3', 'alice')).status).toBe(404)

      // A file past the inline threshold goes into blocks, and comes back byte for byte.
      const big = randomBytes(1 << 20)
      await ok(up('alice', 'big', { framework: 'other' }, big, 'weights.bin'), 201)
      const files = await ok(call(cluster.nodes[2]!, 'GET', '/api/v1/models/demo/lin/big/files', 'carol'))
      expect(files.files).toEqual([{ path: 'weights.bin', length: big.length }])
      const got = await call(
        cluster.nodes[0]!,
        'GET',
        '/api/v1/models/demo/lin/big/files/weights.bin',
        'carol',
      )
      expect(got.status).toBe(200)
      expect(createHash('sha256').update(got.bytes).digest('hex')).toBe(
        createHash('sha256').update(big).digest('hex'),
      )
      // Downloads are for members; a path out of the version directory is refused.
      expect((await call(n, 'GET', '/api/v1/models/demo/lin/big/files/weights.bin', 'bob')).status).toBe(403)
      expect((await call(n, 'GET', '/api/v1/models/demo/lin/big/files', 'bob')).status).toBe(403)
      const dots = await call(n, 'GET', '/api/v1/models/demo/lin/big/files/%2E%2E%2Fx', 'alice')
      expect(dots.status, dots.text).toBe(400)

      // The CLI: register --file uploads; download writes the files into a directory.
      const file = join(localDir, 'model.onnx')
      writeFileSync(file, MODEL)
      const reg = await cli(
        runModel,
        'alice',
        'register',
        '--project',
        'demo',
        '--name',
        'lin',
        '--version',
        '2',
        '--framework',
        'onnx',
        '--file',
        file,
      )
      expect(reg.code, reg.err).toBe(0)
      expect(reg.out).toContain('uploaded and registered demo/lin version 2')
      const dl = await cli(runModel, 'carol', 'download', 'demo', 'lin', '2', '--out', join(localDir, 'dl'))
      expect(dl.code, dl.err).toBe(0)
      expect(Buffer.compare(readFileSync(join(localDir, 'dl', 'model.onnx')), Buffer.from(MODEL))).toBe(0)
      const denied = await cli(
        runModel,
        'bob',
        'download',
        'demo',
        'lin',
        '2',
        '--out',
        join(localDir, 'bob'),
      )
      expect(denied.code).not.toBe(0)
    }),
    120_000,
  )
})

describe('inference keys and request logging', () => {
  it(
    'a key answers on every node for its deployment only; refused elsewhere and, once revoked, everywhere',
    track(async () => {
      const n0 = cluster.nodes[0]!
      await ok(
        call(n0, 'POST', '/api/v1/deployments', 'alice', {
          name: 'lin',
          project: 'demo',
          model: 'lin',
          version: '1',
          logging: { sampleRate: 1 },
        }),
        201,
      )
      await ok(
        call(n0, 'POST', '/api/v1/deployments', 'alice', {
          name: 'lin-b',
          project: 'demo',
          model: 'lin',
          version: '1',
        }),
        201,
      )
      const badLogging = await call(n0, 'POST', '/api/v1/deployments', 'alice', {
        name: 'lin-c',
        project: 'demo',
        model: 'lin',
        version: '1',
        logging: { sampleRate: 2 },
      })
      expect(badLogging.status, badLogging.text).toBe(400)
      expect((await call(n0, 'GET', '/api/v1/deployments/lin-c', 'alice')).status).toBe(404)
      await waitReady('lin')

      // Data Owners issue keys; a Data Scientist and a non-member may not; bad bodies are 400.
      const made = await ok(
        call(n0, 'POST', '/api/v1/deployments/lin/keys', 'alice', { name: 'web app' }),
        201,
      )
      expect(made).toMatchObject({
        deployment: 'lin',
        project: 'demo',
        name: 'web app',
        createdBy: 'alice',
        revokedMs: 0,
      })
      expect(made.key).toMatch(/^hik\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/)
      const key = { key: made.key as string }
      expect((await call(n0, 'POST', '/api/v1/deployments/lin/keys', 'carol', {})).status).toBe(403)
      expect((await call(n0, 'POST', '/api/v1/deployments/lin/keys', 'bob', {})).status).toBe(403)
      expect(
        (await call(n0, 'POST', '/api/v1/deployments/lin/keys', 'alice', { name: 'x'.repeat(200) })).status,
      ).toBe(400)
      expect(
        (await call(n0, 'POST', '/api/v1/deployments/lin/keys', 'alice', { colour: 'red' })).status,
      ).toBe(400)
      expect((await call(n0, 'DELETE', '/api/v1/deployments/lin/keys/nothex', 'alice')).status).toBe(400)
      expect((await call(n0, 'POST', '/api/v1/deployments/nosuch/keys', 'alice', {})).status).toBe(404)
      const listed = await ok(call(cluster.nodes[2]!, 'GET', '/api/v1/deployments/lin/keys', 'carol'))
      expect(listed.keys.map((k: any) => k.id)).toEqual([made.id])
      expect(listed.keys[0].key).toBeUndefined()
      expect(listed.keys[0].secretHash).toBeUndefined()

      // The key: inference and metadata of lin on every node.
      for (const node of cluster.nodes) {
        const r = await infer(node, 'lin', key, [1, 2, 3])
        expect(r.status, r.text).toBe(200)
        r.json().outputs[0].data.forEach((v: number, i: number) =>
          expect(v).toBeCloseTo(expected([1, 2, 3])[i]!, 4),
        )
        expect((await call(node, 'GET', '/v2/models/lin', key)).status).toBe(200)
        expect((await call(node, 'GET', '/v2/models/lin/ready', key)).status).toBe(200)
      }
      // ... and nothing else: another deployment (existing or not), the file system, the management API.
      expect((await infer(n0, 'lin-b', key, [1, 2, 3])).status).toBe(403)
      expect((await call(n0, 'GET', '/v2/models/lin-b', key)).status).toBe(403)
      expect((await infer(n0, 'nosuch', key, [1, 2, 3])).status).toBe(403)
      for (const [method, path] of [
        ['GET', '/webhdfs/v1/?op=GETFILESTATUS'],
        ['GET', '/webhdfs/v1/Projects/demo?op=LISTSTATUS'],
        ['GET', '/webhdfs/v1/Projects/demo/Logs?op=GETFILESTATUS&project=demo'],
        ['PUT', '/webhdfs/v1/Projects/demo/Logs/x?op=MKDIRS'],
        ['GET', '/api/v1/fs/stat?path=/'],
        ['GET', '/api/v1/deployments'],
        ['GET', '/api/v1/deployments/lin'],
        ['GET', '/api/v1/models?project=demo'],
        ['GET', '/api/v1/deployments/lin/keys'],
        ['POST', '/api/v1/deployments/lin/keys'],
        ['GET', '/api/v1/projects'],
      ] as const) {
        const r = await call(n0, method, path, key, method === 'POST' ? {} : undefined)
        expect(r.status, `${method} ${path}: ${r.text}`).toBe(401)
      }
      // It acts in its deployment's project: another project named beside it is refused.
      const elsewhere = await call(n0, 'GET', '/v2/models/lin', key, undefined, {
        'x-hopsd-project': 'other',
      })
      expect(elsewhere.status, elsewhere.text).toBe(403)

      // Revoked: the next request is refused on every node.
      const revoked = await ok(
        call(cluster.nodes[1]!, 'DELETE', `/api/v1/deployments/lin/keys/${made.id}`, 'alice'),
      )
      expect(revoked.revokedMs).toBeGreaterThan(0)
      for (const node of cluster.nodes) {
        const r = await infer(node, 'lin', key, [1, 2, 3])
        expect(r.status, r.text).toBe(401)
        expect((await call(node, 'GET', '/v2/models/lin', key)).status).toBe(401)
      }
      // The CLI: create, list, revoke.
      const created = await cli(runDeploy, 'alice', 'key', 'create', 'lin', '--name', 'cli')
      expect(created.code, created.err).toBe(0)
      const cliKey = created.out.split('\n')[1]!
      expect((await infer(cluster.nodes[2]!, 'lin', { key: cliKey }, [0, 0, 1])).status).toBe(200)
      const ls = await cli(runDeploy, 'carol', 'key', 'ls', 'lin')
      expect(ls.out).toContain(made.id)
      const id = cliKey.split('.')[1]!
      expect((await cli(runDeploy, 'carol', 'key', 'revoke', 'lin', id)).code).not.toBe(0)
      expect((await cli(runDeploy, 'alice', 'key', 'revoke', 'lin', id)).code).toBe(0)
      expect((await infer(cluster.nodes[2]!, 'lin', { key: cliKey }, [0, 0, 1])).status).toBe(401)
    }),
    180_000,
  )

  it(
    'logs every request at rate 1 and none at rate 0, as JSON lines in the Logs dataset',
    track(async () => {
      // Rate 1: every answered request through any node, each logged once, with its numbers.
      const ids: string[] = []
      for (let i = 0; i < 6; i++) {
        const id = `on-${i}`
        ids.push(id)
        const r = await infer(cluster.nodes[i % 3]!, 'lin', 'alice', [i, 1, 2], id)
        expect(r.status, r.text).toBe(200)
      }
      const bad = await call(cluster.nodes[0]!, 'POST', '/v2/models/lin/infer', 'alice', {
        id: 'bad-1',
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [1, 2] }],
      })
      expect(bad.status).toBe(400)
      const lines = await waitFor(
        async () => {
          const all = await logLines('lin')
          return ids.every((id) => all.some((l) => l.requestId === id)) &&
            all.some((l) => l.requestId === 'bad-1')
            ? all
            : undefined
        },
        { timeoutMs: 30_000, intervalMs: 500, what: 'the requests in the log' },
      )
      for (const id of ids) expect(lines.filter((l) => l.requestId === id)).toHaveLength(1)
      const three = lines.find((l) => l.requestId === 'on-3')
      expect(three).toMatchObject({
        deployment: 'lin',
        project: 'demo',
        model: 'lin',
        modelVersion: '1',
        status: 200,
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [3, 1, 2] }],
        outputs: [{ shape: [1, 2] }],
      })
      three.outputs[0].data.forEach((v: number, i: number) =>
        expect(v).toBeCloseTo(expected([3, 1, 2])[i]!, 4),
      )
      expect(typeof three.latencyMs).toBe('number')
      expect(Date.parse(three.time)).toBeGreaterThan(0)
      expect(lines.find((l) => l.requestId === 'bad-1')).toMatchObject({ status: 400 })
      // The log files belong to the project (written as the deployment's owner acting in it).
      const dir = await ok(
        call(
          cluster.nodes[0]!,
          'GET',
          '/webhdfs/v1/Projects/demo/Logs/serving/lin?op=LISTSTATUS',
          'alice@demo',
        ),
      )
      expect(dir.FileStatuses.FileStatus[0].owner).toBe('demo__alice')

      // Rate 0: requests sent while off are not logged (one sent after turning it on again is, and the
      // log keeps each deployment's order, so the earlier ones would be there by then).
      // Every node reads the deployment after a read barrier, so each has applied the change.
      const everyNodeSees = async (rate: number) => {
        for (const node of cluster.nodes)
          expect((await ok(call(node, 'GET', '/api/v1/deployments/lin', 'alice'))).logging.sampleRate).toBe(
            rate,
          )
      }
      await ok(
        call(cluster.nodes[0]!, 'PATCH', '/api/v1/deployments/lin', 'alice', { logging: { sampleRate: 0 } }),
      )
      await everyNodeSees(0)
      for (let i = 0; i < 4; i++)
        expect((await infer(cluster.nodes[i % 3]!, 'lin', 'alice', [1, 1, 1], `off-${i}`)).status).toBe(200)
      await ok(
        call(cluster.nodes[0]!, 'PATCH', '/api/v1/deployments/lin', 'alice', { logging: { sampleRate: 1 } }),
      )
      await everyNodeSees(1)
      expect((await infer(cluster.nodes[1]!, 'lin', 'alice', [1, 1, 1], 'on-again')).status).toBe(200)
      const after = await waitFor(
        async () => {
          const all = await logLines('lin')
          return all.some((l) => l.requestId === 'on-again') ? all : undefined
        },
        { timeoutMs: 30_000, intervalMs: 500, what: 'on-again in the log' },
      )
      expect(after.filter((l) => String(l.requestId).startsWith('off-'))).toEqual([])
      const shown = await ok(call(cluster.nodes[2]!, 'GET', '/api/v1/deployments/lin-b', 'alice'))
      expect(shown.logging).toEqual({ sampleRate: 0 }) // the default: off
    }),
    120_000,
  )
})
