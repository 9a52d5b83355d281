// Subprocess predictors: a user's program speaking the predictor protocol (JSON lines) — here in Python,
// as a Node executable and in bash (test/fixtures/predictors). Right numbers, metadata from the ready
// message, parameters both ways, the predictor's own errors, batching when it declares max_batch_size,
// a crash (kill -9, or exiting mid-request) restarted, a protocol violation ended, and an environment
// that carries none of the daemon's secrets.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  createReplica,
  isServingError,
  type InferenceResult,
  type Replica,
  type ReplicaInit,
} from '../../src/serving/index.js'
import { REPO_ROOT, makeTempDir, removeTempDirs, waitFor } from '../helpers/index.js'
import { linearReference } from '../helpers/onnx-model.js'

const PREDICTORS = join(REPO_ROOT, 'test', 'fixtures', 'predictors')
const W = [
  [1, -2],
  [0.5, 4],
  [3, 0.25],
]
const B = [0.5, -1]

let dir: string
const replicas: Replica[] = []

beforeAll(() => {
  dir = makeTempDir('hopsd-predictor-')
  for (const [name, extra] of [
    ['python', {}],
    ['python-batch', { max_batch_size: 16 }],
    ['node', {}],
    ['echo', {}],
  ] as const) {
    const modelDir = join(dir, name)
    makeDir(modelDir)
    writeFileSync(join(modelDir, 'weights.json'), JSON.stringify({ w: W, b: B, ...extra }))
  }
  copyFileSync(join(PREDICTORS, 'linear.py'), join(dir, 'python', 'predictor.py'))
  makeDir(join(dir, 'empty')) // no weights.json: the Python predictor fails to load
})

afterEach(async () => {
  await Promise.all(replicas.splice(0).map((r) => r.stop()))
})

afterAll(() => removeTempDirs())

function makeDir(path: string): void {
  mkdirSync(path, { recursive: true })
}

function predictor(model: string, command: string[], opts: Partial<ReplicaInit> = {}): Replica {
  const r = createReplica({
    runtime: 'subprocess',
    modelDir: join(dir, model),
    name: model,
    command,
    restart: { backoffMsMin: 50 },
    ...opts,
  })
  replicas.push(r)
  return r
}

const python = (model = 'python', opts: Partial<ReplicaInit> = {}) =>
  predictor(model, ['python3', join(PREDICTORS, 'linear.py')], opts)

function body(rows: number[][], datatype = 'FP64', parameters?: Record<string, unknown>): string {
  return JSON.stringify({
    ...(parameters === undefined ? {} : { parameters }),
    inputs: [{ name: 'x', shape: [rows.length, 3], datatype, data: rows }],
  })
}

function values(result: InferenceResult): number[] {
  return Array.from(result.outputs[0]!.data as Float64Array)
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

describe('python predictor', () => {
  it('answers the right numbers and declares its inputs and outputs', async () => {
    const r = python()
    await r.start()
    expect(r.metadata()).toEqual({
      name: 'python',
      platform: 'python_linear',
      inputs: [{ name: 'x', datatype: 'FP64', shape: [-1, 3] }],
      outputs: [{ name: 'y', datatype: 'FP64', shape: [-1, 2] }],
    })
    const x = [
      [1, 2, 3],
      [-1, 0.5, 2],
    ]
    const result = await r.infer(r.parse(body(x)))
    expect(result.outputs[0]!.shape).toEqual([2, 2])
    const expected = linearReference(x, W, B).flat()
    values(result).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 9))
    expect(r.state().batchRowsMax).toBe(1) // it did not declare max_batch_size
  })

  it('checks requests against the declared metadata before they reach the predictor', async () => {
    const r = python()
    await r.start()
    expect(await codeOf(Promise.resolve().then(() => r.parse(body([[1, 2, 3]], 'FP32'))))).toBe(
      'TENSOR_DATATYPE_INVALID',
    )
    const twoColumns = JSON.stringify({
      inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP64', data: [1, 2] }],
    })
    expect(await codeOf(Promise.resolve().then(() => r.parse(twoColumns)))).toBe('TENSOR_SHAPE_INVALID')
    expect(await r.infer(r.parse(body([[0, 0, 0]])))).toBeDefined()
  })

  it('passes parameters to the predictor and its parameters back', async () => {
    const r = python()
    await r.start()
    const result = await r.infer(r.parse(body([[1, 1, 1]], 'FP64', { tag: 'abc' })))
    expect(result.parameters).toEqual({ rows_in_call: 1, tag: 'abc' })
  })

  it("reports the predictor's errors: bad_input is INFER_INPUT_REFUSED (400), others INFERENCE_FAILED (500)", async () => {
    const r = python()
    await r.start()
    expect(await codeOf(r.infer(r.parse(body([[1, 1, 1]], 'FP64', { bad_input: true }))))).toBe(
      'INFER_INPUT_REFUSED',
    )
    expect(await codeOf(r.infer(r.parse(body([[1, 1, 1]], 'FP64', { fail: true }))))).toBe('INFERENCE_FAILED')
    expect(r.state()).toMatchObject({ state: 'ready', restarts: 0 })
    expect(values(await r.infer(r.parse(body([[0, 0, 0]]))))).toEqual([0.5, -1])
  })

  it('restarts a predictor that exits with a request in flight, and one killed with SIGKILL', async () => {
    const r = python()
    await r.start()
    const first = r.state().pid!
    expect(await codeOf(r.infer(r.parse(body([[1, 1, 1]], 'FP64', { crash: true }))))).toBe('RUNTIME_CRASHED')
    await waitFor(() => r.state().state === 'ready' && r.state().pid !== first, {
      timeoutMs: 20_000,
      what: 'restart',
    })
    expect(r.state().lastError!.message).toMatch(/exited with code 3/)
    const second = r.state().pid!
    process.kill(second, 'SIGKILL')
    await waitFor(() => r.state().state === 'ready' && r.state().pid !== second, {
      timeoutMs: 20_000,
      what: 'restart',
    })
    expect(r.state()).toMatchObject({ restarts: 2, lastError: { code: 'RUNTIME_CRASHED' } })
    expect(values(await r.infer(r.parse(body([[0, 0, 0]]))))).toEqual([0.5, -1])
  })

  it('ends a predictor that writes a line that is not a message (PREDICTOR_PROTOCOL_ERROR), then restarts it', async () => {
    const r = python()
    await r.start()
    const first = r.state().pid!
    expect(await codeOf(r.infer(r.parse(body([[1, 1, 1]], 'FP64', { garbage: true }))))).toBe(
      'PREDICTOR_PROTOCOL_ERROR',
    )
    await waitFor(() => r.state().state === 'ready' && r.state().pid !== first, {
      timeoutMs: 20_000,
      what: 'restart',
    })
    expect(r.state().lastError).toMatchObject({ code: 'PREDICTOR_PROTOCOL_ERROR' })
    expect(r.state().lastError!.message).toMatch(/not JSON.*this is not a message/)
  })

  it("fails the load with the predictor's reason, and gives up after failuresMax", async () => {
    const r = python('empty', { restart: { backoffMsMin: 10, failuresMax: 2 } })
    expect(await codeOf(r.start())).toBe('MODEL_LOAD_FAILED')
    expect(r.state()).toMatchObject({ state: 'failed', failures: 2 })
    expect(r.state().lastError!.message).toMatch(/cannot read weights.json/)
    const missing = predictor('python', ['/no/such/predictor'], { restart: { failuresMax: 1 } })
    expect(await codeOf(missing.start())).toBe('MODEL_LOAD_FAILED')
    expect(missing.state().lastError!.message).toMatch(/ENOENT/)
  })

  it("gives the predictor none of the daemon's environment (HOPSD_SWARM_KEY stays out)", async () => {
    process.env['HOPSD_SWARM_KEY'] = '/key/swarm/psk/1.0.0/\n/base16/\n' + 'ab'.repeat(32)
    process.env['AWS_SECRET_ACCESS_KEY'] = 'not-for-predictors'
    try {
      const r = python('python', { env: { GIVEN_BY_DEPLOYMENT: '1' } })
      await r.start()
      const result = await r.infer(r.parse(body([[1, 1, 1]], 'FP64', { env: true })))
      const names = String(result.parameters!['env']).split(',')
      expect(names).toContain('PATH')
      expect(names).toContain('GIVEN_BY_DEPLOYMENT')
      expect(names).toContain('HOPSD_MODEL_DIR')
      expect(names).not.toContain('HOPSD_SWARM_KEY')
      expect(names).not.toContain('AWS_SECRET_ACCESS_KEY')
    } finally {
      delete process.env['HOPSD_SWARM_KEY']
      delete process.env['AWS_SECRET_ACCESS_KEY']
    }
  })

  it('batches concurrent requests when the predictor declares max_batch_size', async () => {
    const r = python('python-batch', { callsMax: 1 })
    await r.start()
    expect(r.state().batchRowsMax).toBe(16)
    const xs = Array.from({ length: 24 }, (_, i) => [[i, i + 1, i + 2]])
    const results = await Promise.all(xs.map((x) => r.infer(r.parse(body(x)))))
    results.forEach((res, i) => {
      const expected = linearReference(xs[i]!, W, B).flat()
      values(res).forEach((v, j) => expect(v).toBeCloseTo(expected[j]!, 9))
    })
    const rowsPerCall = results.map((res) => res.parameters!['rows_in_call'] as number)
    expect(Math.max(...rowsPerCall)).toBeGreaterThan(1)
    expect(Math.max(...rowsPerCall)).toBeLessThanOrEqual(16)
    expect(r.state().calls).toBeLessThan(24)
  })
})

describe('batching a predictor that cannot batch', () => {
  it('turns batching off when answers do not carry dimension 0, and answers each request by itself', async () => {
    const summer = join(dir, 'python', 'sum.py')
    writeFileSync(
      summer,
      [
        'import json, sys',
        'sys.stdin.readline()',
        'print(json.dumps({"type": "ready", "max_batch_size": 8}), flush=True)',
        'for line in sys.stdin:',
        '    req = json.loads(line)',
        '    total = sum(req["inputs"][0]["data"])  # one number, whatever the rows: not splittable',
        '    out = {"name": "sum", "datatype": "FP64", "shape": [1], "data": [total]}',
        '    print(json.dumps({"type": "result", "id": req["id"], "outputs": [out]}), flush=True)',
      ].join('\n'),
    )
    const r = predictor('python', ['python3', summer], { callsMax: 1 })
    await r.start()
    expect(r.state().batchRowsMax).toBe(8)
    const one = (v: number) =>
      r.infer(
        r.parse(JSON.stringify({ inputs: [{ name: 'x', shape: [1, 2], datatype: 'FP64', data: [v, 1] }] })),
      )
    const first = await Promise.all(Array.from({ length: 6 }, (_, i) => one(i)))
    expect(first.map((res) => Array.from(res.outputs[0]!.data as Float64Array))).toEqual(
      Array.from({ length: 6 }, (_, i) => [i + 1]),
    )
    expect(r.state().batchRowsMax).toBe(1)
    const calls = r.state().calls
    await Promise.all(Array.from({ length: 4 }, (_, i) => one(i)))
    expect(r.state().calls - calls).toBe(4) // each alone from now on
  })
})

describe('stopping', () => {
  it('kills a predictor that ignores the end of its stdin and SIGTERM, after stopGraceMs', async () => {
    const stubborn = join(dir, 'python', 'stubborn.py')
    writeFileSync(
      stubborn,
      [
        'import json, signal, sys, time',
        'signal.signal(signal.SIGTERM, signal.SIG_IGN)',
        'sys.stdin.readline()',
        'print(json.dumps({"type": "ready"}), flush=True)',
        'while True:',
        '    time.sleep(1)',
      ].join('\n'),
    )
    const r = predictor('python', ['python3', stubborn], { stopGraceMs: 300 })
    await r.start()
    const pid = r.state().pid!
    await r.stop()
    expect(r.state().state).toBe('stopped')
    expect(() => process.kill(pid, 0)).toThrow() // gone, not orphaned
  })
})

describe('node and bash predictors', () => {
  it('a Node executable (shebang, no interpreter in the command) answers y = xW + b in FP32', async () => {
    const r = predictor('node', [join(PREDICTORS, 'linear-node.mjs')], { callsMax: 1 })
    await r.start()
    expect(r.state().batchRowsMax).toBe(8)
    const xs = Array.from({ length: 12 }, (_, i) => [[i / 2, -i, 1]])
    const results = await Promise.all(xs.map((x) => r.infer(r.parse(body(x, 'FP32')))))
    results.forEach((res, i) => {
      const expected = linearReference(xs[i]!, W, B).flat()
      Array.from(res.outputs[0]!.data as Float32Array).forEach((v, j) =>
        expect(v).toBeCloseTo(expected[j]!, 4),
      )
    })
    expect(Math.max(...results.map((res) => res.parameters!['rows_in_call'] as number))).toBeGreaterThan(1)
  })

  it('a slow predictor: the request ends at its deadline and a late answer is dropped', async () => {
    const stderr: string[] = []
    const logger = {
      info: (o: object) => void stderr.push(String((o as { stderr?: string }).stderr)),
      warn: () => {},
    }
    const r = predictor('node', [join(PREDICTORS, 'linear-node.mjs')], {
      requestTimeoutMs: 200,
      batching: false,
      logger,
    })
    await r.start()
    expect(await codeOf(r.infer(r.parse(body([[1, 1, 1]], 'FP32', { slow_ms: 600 }))))).toBe(
      'INFERENCE_TIMEOUT',
    )
    const fast = await r.infer(r.parse(body([[0, 0, 0]], 'FP32')))
    expect(Array.from(fast.outputs[0]!.data as Float32Array)).toEqual([0.5, -1])
    // The late answer to request 1 arrives after its caller gave up: dropped, no harm done.
    await waitFor(() => stderr.includes('answered 1'), { what: 'the late answer' })
    expect(r.state()).toMatchObject({ state: 'ready', restarts: 0 })
    expect(
      Array.from((await r.infer(r.parse(body([[0, 0, 0]], 'FP32')))).outputs[0]!.data as Float32Array),
    ).toEqual([0.5, -1])
  })

  it('a bash script echoes its inputs; without declared metadata any well-formed tensor passes', async () => {
    const r = predictor('echo', ['bash', join(PREDICTORS, 'echo.sh')])
    await r.start()
    expect(r.metadata()).toMatchObject({ platform: 'bash_echo', inputs: [], outputs: [] })
    const req = r.parse(
      JSON.stringify({
        inputs: [{ name: 'words', shape: [2], datatype: 'BYTES', data: ['hello', 'wörld "q"'] }],
      }),
    )
    const result = await r.infer(req)
    expect(result.outputs[0]).toMatchObject({
      name: 'words',
      datatype: 'BYTES',
      shape: [2],
      data: ['hello', 'wörld "q"'],
    })
  })
})
