// ONNX replicas with the real runtime: onnxruntime-node in its own host process, models written by the
// test (test/helpers/onnx-model.ts) and answers checked against numbers computed here. A crash (kill -9
// of the host) is survived and reported; bad input, a failing model, overload and deadlines are typed
// errors while the replica keeps serving.
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  createReplica,
  encodeInferResponse,
  isServingError,
  type InferenceResult,
  type Replica,
  type ReplicaInit,
  type ReplicaStatus,
} from '../../src/serving/index.js'
import { REPO_ROOT, makeTempDir, removeTempDirs, waitFor } from '../helpers/index.js'
import {
  allTypesIdentityModel,
  gatherModel,
  identityModel,
  linearModel,
  linearReference,
  sequenceModel,
  writeModel,
} from '../helpers/onnx-model.js'

const W = [
  [0.5, -1, 2],
  [1.5, 0.25, -0.75],
  [-2, 3, 0.125],
  [1, 1, 1],
]
const B = [0.1, -0.2, 0.3]

let dir: string
const replicas: Replica[] = []

beforeAll(() => {
  dir = makeTempDir('hopsd-onnx-')
  writeModel(join(dir, 'linear'), linearModel({ w: W, b: B }))
  writeModel(join(dir, 'gather'), gatherModel([10, 20, 30, 40]))
  writeModel(join(dir, 'types'), allTypesIdentityModel())
  writeModel(join(dir, 'sequence'), sequenceModel())
  writeModel(join(dir, 'bfloat16'), identityModel(16)) // ONNX BFLOAT16
})

afterEach(async () => {
  await Promise.all(replicas.splice(0).map((r) => r.stop()))
})

afterAll(() => removeTempDirs())

function replica(model: string, opts: Partial<ReplicaInit> = {}): Replica {
  const r = createReplica({ runtime: 'onnx', modelDir: join(dir, model), name: model, version: '1', ...opts })
  replicas.push(r)
  return r
}

function linearRequest(rows: number[][], id?: string) {
  return JSON.stringify({
    ...(id === undefined ? {} : { id }),
    inputs: [{ name: 'x', shape: [rows.length, 4], datatype: 'FP32', data: rows }],
  })
}

function values(result: InferenceResult, output = 0): number[] {
  return Array.from(result.outputs[output]!.data as Float32Array)
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    if (isServingError(err)) return err.code
    throw err
  }
  throw new Error('expected a ServingError')
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** A seeded row of 4 inputs (mulberry32), so the numbers differ per request and replay exactly. */
function rowsFor(seed: number, n: number): number[][] {
  let s = seed >>> 0
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t)
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 10 - 5
  }
  return Array.from({ length: n }, () => Array.from({ length: 4 }, next))
}

function expectClose(actual: number[], expected: number[][]): void {
  expect(actual).toHaveLength(expected.flat().length)
  actual.forEach((v, i) => expect(v).toBeCloseTo(expected.flat()[i]!, 4))
}

describe('onnx replica', () => {
  it('answers y = xW + b with the right numbers, and derives the metadata from the model', async () => {
    const r = replica('linear')
    await r.start()
    expect(r.state()).toMatchObject({ state: 'ready', restarts: 0, batchRowsMax: 32 })
    expect(r.metadata()).toEqual({
      name: 'linear',
      versions: ['1'],
      platform: 'onnx_onnxv1',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 3] }],
    })
    const x = rowsFor(1, 3)
    const request = r.parse(linearRequest(x, 'req-1'))
    const result = await r.infer(request)
    expect(result.outputs[0]!.shape).toEqual([3, 3])
    expectClose(values(result), linearReference(x, W, B))
    const json = JSON.parse(
      encodeInferResponse(result, { modelName: 'linear', modelVersion: '1', id: request.id }),
    )
    expect(json).toMatchObject({ model_name: 'linear', model_version: '1', id: 'req-1' })
  })

  it('runs ONNX Runtime on `threads` intra-op threads, and the host under its V8 heap limit', async () => {
    // A deployment's cpus and memoryMiB arrive here (src/serving/deploy/agent.ts replicaLimits).
    const one = replica('linear')
    const four = replica('linear', { threads: 4, heapMiBMax: 96 })
    await Promise.all([one.start(), four.start()])
    const x = rowsFor(7, 2)
    for (const r of [one, four])
      expectClose(values(await r.infer(r.parse(linearRequest(x)))), linearReference(x, W, B))
    const threadsOf = (pid: number) =>
      Number(/^Threads:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1])
    const envOf = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
    const [p1, p4] = [one.state().pid!, four.state().pid!]
    // ONNX Runtime's intra-op pool: the calling thread and threads - 1 workers of its own.
    expect(threadsOf(p4) - threadsOf(p1)).toBe(3)
    expect(envOf(p4)).toContain('NODE_OPTIONS=--max-old-space-size=96')
    expect(envOf(p1).some((v) => v.startsWith('NODE_OPTIONS='))).toBe(false)
    expect(() => createReplica({ runtime: 'onnx', modelDir: dir, name: 'x', heapMiBMax: 8 })).toThrow(
      /heapMiBMax/,
    )
  })

  it('batches concurrent requests into few runtime calls, each answered with its own numbers', async () => {
    const r = replica('linear', { callsMax: 1 })
    await r.start()
    const inputs = Array.from({ length: 40 }, (_, i) => rowsFor(100 + i, 1 + (i % 3)))
    const results = await Promise.all(inputs.map((x) => r.infer(r.parse(linearRequest(x)))))
    results.forEach((res, i) => expectClose(values(res), linearReference(inputs[i]!, W, B)))
    const s = r.state()
    expect(s.requests).toBe(40)
    expect(s.rows).toBe(inputs.reduce((n, x) => n + x.length, 0))
    // The first request went alone; the 39 that queued behind it went in calls of up to 32 rows.
    expect(s.calls).toBeLessThanOrEqual(6)
  })

  it('carries every datatype of the protocol through ONNX Runtime and back', async () => {
    const r = replica('types')
    await r.start()
    const meta = r.metadata()!
    expect(meta.inputs).toHaveLength(13)
    const sample: Record<string, unknown[]> = {
      BOOL: [true, false, false, true],
      UINT8: [0, 1, 254, 255],
      UINT16: [0, 1, 65534, 65535],
      UINT32: [0, 1, 4294967294, 4294967295],
      UINT64: [0, 1, 2 ** 40, 2 ** 53 - 1],
      INT8: [-128, -1, 0, 127],
      INT16: [-32768, -1, 0, 32767],
      INT32: [-(2 ** 31), -1, 0, 2 ** 31 - 1],
      INT64: [-(2 ** 53) + 1, -1, 0, 2 ** 53 - 1],
      FP16: [0.5, -2, 65504, 0.0999755859375],
      FP32: [0.5, -2.25, 3.4028234663852886e38, 2 ** -100], // each exact in float32
      FP64: [0.1, -2.5, 1e300, 5e-324],
      BYTES: ['', 'ascii', 'naïve ☃', 'a "quoted" \\ line\n'],
    }
    const body = {
      id: 'types',
      inputs: meta.inputs.map((t) => ({
        name: t.name,
        datatype: t.datatype,
        shape: [2, 2],
        data: sample[t.datatype],
      })),
    }
    const request = r.parse(JSON.stringify(body))
    const response = JSON.parse(
      encodeInferResponse(await r.infer(request), { modelName: 'types', id: request.id }),
    )
    expect(response.outputs).toHaveLength(13)
    for (const out of response.outputs) {
      expect(out.shape).toEqual([2, 2])
      expect([out.datatype, out.data]).toEqual([out.datatype, sample[out.datatype]])
    }
  })

  it('answers a model failure with INFERENCE_FAILED and keeps serving; in a batch, only the bad request fails', async () => {
    const r = replica('gather', { callsMax: 1 })
    await r.start()
    const req = (idx: number[]) =>
      r.parse(
        JSON.stringify({ inputs: [{ name: 'idx', shape: [idx.length], datatype: 'INT64', data: idx }] }),
      )
    expect(await codeOf(r.infer(req([7])))).toBe('INFERENCE_FAILED') // index out of the table: fails inside ORT
    // 20 requests at once: the first goes alone, the other 19 queue and go as one call, which the bad
    // one (index 9) fails; each then runs alone, so only the bad one fails.
    const callsBefore = r.state().calls
    const all = Array.from({ length: 20 }, (_, i) => r.infer(req(i === 5 ? [9] : [i % 4, (i + 1) % 4])))
    const outcomes = await Promise.allSettled(all)
    outcomes.forEach((o, i) => {
      if (i === 5) {
        expect(o.status).toBe('rejected')
        expect((o as PromiseRejectedResult).reason.code).toBe('INFERENCE_FAILED')
      } else {
        expect(o.status).toBe('fulfilled')
        const got = Array.from(
          (o as PromiseFulfilledResult<InferenceResult>).value.outputs[0]!.data as Float32Array,
        )
        expect(got).toEqual([10 * ((i % 4) + 1), 10 * (((i + 1) % 4) + 1)])
      }
    })
    expect(r.state().calls - callsBefore).toBeLessThanOrEqual(3) // they did share calls
    expect(r.state()).toMatchObject({ state: 'ready', restarts: 0 })
    expect(values(await r.infer(req([3])))).toEqual([40])
  })

  it('restarts a runtime killed with SIGKILL, reports it, and serves again', async () => {
    const r = replica('linear', { restart: { backoffMsMin: 50 } })
    const seen: ReplicaStatus[] = []
    r.on('state', (s) => seen.push(s))
    await r.start()
    const firstPid = r.state().pid!
    // Hold the host (SIGSTOP) so that a request is surely in flight when it dies.
    process.kill(firstPid, 'SIGSTOP')
    const inFlight = r.infer(r.parse(linearRequest(rowsFor(7, 1))))
    process.kill(firstPid, 'SIGKILL')
    expect(await codeOf(inFlight)).toBe('RUNTIME_CRASHED')
    await waitFor(() => r.state().state === 'ready' && r.state().pid !== firstPid, {
      timeoutMs: 30_000,
      what: 'a new host',
    })
    const s = r.state()
    expect(s.restarts).toBe(1)
    expect(s.lastError).toMatchObject({ code: 'RUNTIME_CRASHED' })
    expect(s.lastError!.message).toMatch(/killed by SIGKILL/)
    expect(seen.map((x) => x.state)).toEqual(['starting', 'ready', 'restarting', 'starting', 'ready'])
    const x = rowsFor(8, 2)
    expectClose(values(await r.infer(r.parse(linearRequest(x)))), linearReference(x, W, B))
  })

  it('refuses past queueDepthMax (REPLICA_OVERLOADED) and ends a request at its deadline (INFERENCE_TIMEOUT)', async () => {
    const r = replica('linear', { queueDepthMax: 4, requestTimeoutMs: 300 })
    await r.start()
    const pid = r.state().pid!
    process.kill(pid, 'SIGSTOP') // the runtime answers nothing until SIGCONT
    try {
      const held = Array.from({ length: 4 }, (_, i) => r.infer(r.parse(linearRequest(rowsFor(i, 1)))))
      expect(await codeOf(r.infer(r.parse(linearRequest(rowsFor(9, 1)))))).toBe('REPLICA_OVERLOADED')
      for (const p of held) expect(await codeOf(p)).toBe('INFERENCE_TIMEOUT')
      expect(r.state().inflight).toBe(0)
    } finally {
      process.kill(pid, 'SIGCONT')
    }
    const x = rowsFor(10, 1)
    expectClose(values(await r.infer(r.parse(linearRequest(x)))), linearReference(x, W, B))
  })

  it('lets requests in flight finish when stopped with drainMs, and refuses new ones meanwhile', async () => {
    const r = replica('linear')
    await r.start()
    const pid = r.state().pid!
    process.kill(pid, 'SIGSTOP')
    const x = rowsFor(11, 1)
    const held = r.infer(r.parse(linearRequest(x)))
    const stopped = r.stop({ drainMs: 10_000 })
    expect(r.state().state).toBe('stopping')
    expect(await codeOf(r.infer(r.parse(linearRequest(x))))).toBe('REPLICA_NOT_READY')
    process.kill(pid, 'SIGCONT')
    expectClose(values(await held), linearReference(x, W, B))
    await stopped
    expect(r.state()).toMatchObject({ state: 'stopped', inflight: 0 })
    expect(() => process.kill(pid, 0)).toThrow() // the host is gone
  })

  it('gives up as failed after failuresMax failed loads, with the reason', async () => {
    const r = replica('linear', { modelFile: 'missing.onnx', restart: { backoffMsMin: 10, failuresMax: 3 } })
    const err = await r.start().catch((e: unknown) => e)
    expect(isServingError(err, 'MODEL_LOAD_FAILED')).toBe(true)
    expect(r.state()).toMatchObject({
      state: 'failed',
      restarts: 2,
      failures: 3,
      lastError: { code: 'MODEL_LOAD_FAILED' },
    })
    expect(r.state().lastError!.message).toMatch(/no model file/)
    expect(await codeOf(r.infer({ inputs: [] }))).toBe('REPLICA_NOT_READY')
    const nowhere = replica('nowhere', { restart: { failuresMax: 1 } })
    expect(await codeOf(nowhere.start())).toBe('MODEL_LOAD_FAILED')
    expect(nowhere.state().lastError!.message).toMatch(/model directory .*nowhere does not exist/)
  })

  it('refuses a model the protocol cannot carry (a sequence input) as MODEL_UNSUPPORTED', async () => {
    const r = replica('sequence', { restart: { failuresMax: 1 } })
    const err = await r.start().catch((e: unknown) => e)
    expect(isServingError(err, 'MODEL_UNSUPPORTED')).toBe(true)
    expect((err as Error).message).toMatch(/'seq' is not a tensor/)
    // An element type ONNX Runtime itself cannot load fails the load.
    const bf16 = replica('bfloat16', { restart: { failuresMax: 1 } })
    expect(await codeOf(bf16.start())).toBe('MODEL_LOAD_FAILED')
    expect(bf16.state().lastError!.message).toMatch(/Unsupported data type: 16/)
  })

  it('a host whose daemon is killed (kill -9) exits by itself: no orphan keeps the model loaded', async () => {
    const script = join(dir, 'daemon.mts') // .mts: an ES module (top-level await) outside any package
    writeFileSync(
      script,
      [
        `import { createReplica } from ${JSON.stringify(join(REPO_ROOT, 'src', 'serving', 'index.ts'))}`,
        `const r = createReplica({ runtime: 'onnx', modelDir: ${JSON.stringify(join(dir, 'linear'))}, name: 'linear' })`,
        'await r.start()',
        'process.stdout.write(`${r.state().pid}\\n`)',
        'setInterval(() => {}, 1000)',
      ].join('\n'),
    )
    const tsx = new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url).href
    const daemon = spawn(process.execPath, ['--import', tsx, script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    daemon.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    try {
      const hostPid = Number(
        await waitFor(() => /^(\d+)\n/.exec(out)?.[1], { timeoutMs: 30_000, what: 'the host pid' }),
      )
      expect(alive(hostPid)).toBe(true)
      daemon.kill('SIGKILL')
      await waitFor(() => !alive(hostPid), { timeoutMs: 10_000, what: 'the orphaned host to exit' })
    } finally {
      daemon.kill('SIGKILL')
    }
  })

  it('refuses bad settings at construction', () => {
    const bad = (init: Partial<ReplicaInit>) => () =>
      createReplica({
        runtime: 'onnx',
        modelDir: join(dir, 'linear'),
        name: 'linear',
        ...init,
      } as ReplicaInit)
    expect(bad({ modelDir: 'relative/dir' })).toThrow(/absolute/)
    expect(bad({ queueDepthMax: 0 })).toThrow(/queueDepthMax/)
    expect(bad({ runtime: 'tensorflow' as 'onnx' })).toThrow(/runtime/)
    expect(bad({ command: ['python3'] })).toThrow(/subprocess/)
    expect(bad({ restart: { backoffMsMin: 100, backoffMsMax: 10 } })).toThrow(/backoffMsMax/)
  })
})
