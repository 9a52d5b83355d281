// The single binary: built by `npm run build` (here, when dist/hopsd is missing or older than its
// sources), copied to an empty directory with no node_modules, it serves /health, /metrics and
// /openapi.json, and exits 0 on SIGTERM; and it runs an ONNX model as a replica's runtime host
// (`hopsd serving-runtime onnx`), with ONNX Runtime's native library written out from inside it.
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  REPO_ROOT,
  makeTempDir,
  removeTempDirs,
  runHopsd,
  startNode,
  stopAllNodes,
  getJson,
} from '../helpers/index.js'
import { linearModel, linearReference, writeModel } from '../helpers/onnx-model.js'
import { createReplica } from '../../src/serving/index.js'

const BINARY = join(REPO_ROOT, 'dist', 'hopsd')
/** What the binary is made from: a change to any of these makes it stale. */
const SOURCES = [
  'src',
  'scripts/build-sea.mjs',
  'scripts/sea-addon-loader.cjs',
  'package.json',
  'package-lock.json',
]

function newestMtimeMs(path: string): number {
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  let newest = st.mtimeMs
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtimeMs(join(path, entry)))
  return newest
}

function buildIfStale(): void {
  const sourcesMs = Math.max(...SOURCES.map((s) => newestMtimeMs(join(REPO_ROOT, s))))
  if (existsSync(BINARY) && statSync(BINARY).mtimeMs >= sourcesMs) return
  const node = join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node')
  execFileSync(existsSync(node) ? node : process.execPath, [join(REPO_ROOT, 'scripts', 'build-sea.mjs')], {
    cwd: REPO_ROOT,
    stdio: 'pipe',
  })
}

let dir: string
let binary: string

beforeAll(() => {
  buildIfStale()
  dir = makeTempDir('hopsd-binary-')
  binary = join(dir, 'hopsd')
  copyFileSync(BINARY, binary)
  execFileSync('chmod', ['755', binary])
}, 120_000)

afterAll(async () => {
  await stopAllNodes()
  removeTempDirs()
})

describe('dist/hopsd', () => {
  it('runs from a directory without node_modules', async () => {
    expect(readdirSync(dir)).toEqual(['hopsd'])
    const version = await runHopsd(['--version'], { command: binary, cwd: dir })
    expect(version.code).toBe(0)
    expect(version.stdout).toMatch(/^hopsd \d+\.\d+\.\d+\n$/)
    expect(version.stderr).toBe('')
  })

  it('serves /health, /metrics and /openapi.json and exits 0 on SIGTERM', async () => {
    const node = await startNode({
      command: binary,
      cwd: dir,
      dataDir: join(dir, 'data'),
      zone: 'z1',
      env: { HOPSD_CACHE_DIR: join(dir, 'cache'), NODE_PATH: '' },
    })
    const health = await getJson(`${node.url}/health`)
    expect(health).toMatchObject({ status: 'ok', zone: 'z1', id: node.id })
    const metrics = await fetch(`${node.url}/metrics`)
    expect(metrics.status).toBe(200)
    expect(await metrics.text()).toContain('hopsd_http_request_duration_seconds_bucket')
    const openapi = await getJson(`${node.url}/openapi.json`)
    expect(openapi.paths).toHaveProperty('/health')
    expect(await node.stop()).toEqual({ code: 0, signal: null })
    expect(node.logs().stderr).toBe('')
  })

  it('runs an ONNX model in a replica whose runtime host is the binary, ONNX Runtime inside it', async () => {
    const w = [
      [1, 2],
      [3, -4],
    ]
    const b = [0.5, 0.25]
    const modelDir = writeModel(join(dir, 'model'), linearModel({ w, b }))
    const cache = join(dir, 'onnx-cache')
    const before = process.env['HOPSD_CACHE_DIR']
    process.env['HOPSD_CACHE_DIR'] = cache // the host inherits it (src/serving/runtimes/process.ts)
    const replica = createReplica({
      runtime: 'onnx',
      modelDir,
      name: 'linear',
      hostCommand: { command: binary, args: ['serving-runtime', 'onnx'] },
    })
    try {
      await replica.start()
      const x = [
        [1, 1],
        [2, -0.5],
      ]
      const body = JSON.stringify({ inputs: [{ name: 'x', shape: [2, 2], datatype: 'FP32', data: x }] })
      const result = await replica.infer(replica.parse(body))
      expect(Array.from(result.outputs[0]!.data as Float32Array)).toEqual(linearReference(x, w, b).flat())
      // The library was written out from the binary into the cache, beside its addon.
      const group = readdirSync(cache).find((f) => f.startsWith('onnxruntime_binding-'))
      expect(readdirSync(join(cache, group!)).sort()).toEqual([
        'libonnxruntime.so.1',
        'onnxruntime_binding.node',
      ])
    } finally {
      await replica.stop()
      if (before === undefined) delete process.env['HOPSD_CACHE_DIR']
      else process.env['HOPSD_CACHE_DIR'] = before
    }
    const byHand = await runHopsd(['serving-runtime', 'onnx'], { command: binary, cwd: dir })
    expect(byHand.code).toBe(2)
    expect(byHand.stderr).toMatch(/started by the serving role/)
  })

  it('reports bad input with exit 2, as the sources do', async () => {
    const res = await runHopsd(['start', '--roles', 'nope'], { command: binary, cwd: dir })
    expect(res.code).toBe(2)
    expect(res.stderr).toMatch(/^hopsd: --roles: unknown role 'nope'/)
  })
})
