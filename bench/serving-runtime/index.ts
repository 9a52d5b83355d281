/**
 * bench/serving-runtime: inferences per second and CPU per inference of the small model (y = xW + b,
 * 4 → 3, one row per request) through a serving replica — JSON body parsed and checked, the call sent
 * to the ONNX host process over IPC, the answer encoded as the protocol's JSON — against the floor
 * measured in the same run: the same model called in-process through onnxruntime-node (session.run on
 * a ready tensor), the floor bench/serving will use. Beside them, the host in a worker thread
 * (postMessage instead of a child's IPC channel), which is what the choice of a child process costs.
 *
 * Closed loop: C callers, each sending its next request when the last one answered. CPU is user +
 * system time of this process (its threads: ORT's in-process pool, a worker host) plus the host
 * process (/proc), per inference.
 *
 * Usage: `npm run bench -- serving-runtime [--quick] [--seconds S] [--concurrency C]`
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import * as ort from 'onnxruntime-node'
import { createReplica, encodeInferResponse, type Replica } from '../../src/serving/index.js'
import type { FromHost, ToHost } from '../../src/serving/runtimes/onnx/messages.js'
import { makeTempDir, removeTempDirs } from '../../test/helpers/index.js'
import { linearModel, writeModel } from '../../test/helpers/onnx-model.js'
import { cpuSecondsOf, newReport, round, summarize, type Bench, type BenchRow } from '../harness.js'

const W = [
  [0.5, -1, 2],
  [1.5, 0.25, -0.75],
  [-2, 3, 0.125],
  [1, 1, 1],
]
const B = [0.1, -0.2, 0.3]

interface Measured {
  inferences: number
  seconds: number
  cpuS: number
  latenciesMs: number[]
}

/** Closed-loop load: `concurrency` callers of `one` for `seconds`; CPU of this process plus `pids`. */
async function load(
  one: (i: number) => Promise<unknown>,
  concurrency: number,
  seconds: number,
  pids: () => number[],
): Promise<Measured> {
  const latenciesMs: number[] = []
  const cpu0 = process.cpuUsage()
  const child0 = cpuSecondsOf(pids()) ?? 0
  const t0 = performance.now()
  const deadline = t0 + seconds * 1000
  let n = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const start = performance.now()
        await one(n++)
        latenciesMs.push(performance.now() - start)
      }
    }),
  )
  const elapsedS = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  const childS = (cpuSecondsOf(pids()) ?? 0) - child0
  return {
    inferences: latenciesMs.length,
    seconds: elapsedS,
    cpuS: (cpu.user + cpu.system) / 1e6 + childS,
    latenciesMs,
  }
}

function row(target: string, concurrency: number, m: Measured, extra: BenchRow = {}): BenchRow {
  const s = summarize(m.latenciesMs)
  return {
    target,
    concurrency,
    inferences: m.inferences,
    inferPerS: round(m.inferences / m.seconds, 0),
    cpuUsPerInfer: round((m.cpuS / m.inferences) * 1e6, 1),
    p50Ms: s.p50Ms,
    p99Ms: s.p99Ms,
    ...extra,
  }
}

/** The host of src/serving/runtimes/onnx in a worker thread, with the same messages. */
async function startWorkerHost(modelPath: string) {
  const worker = new Worker(new URL('./worker-host.ts', import.meta.url))
  const pending = new Map<number, (m: FromHost) => void>()
  const ready = new Promise<void>((resolve, reject) => {
    worker.on('message', (m: FromHost) => {
      if (m.t === 'ready') resolve()
      else if (m.t === 'load-error') reject(new Error(m.message))
      else {
        pending.get(m.id)?.(m)
        pending.delete(m.id)
      }
    })
    worker.on('error', reject)
  })
  worker.postMessage({ t: 'load', modelPath, threads: 1 } satisfies ToHost)
  await ready
  let nextId = 1
  return {
    infer(x: Float32Array): Promise<FromHost> {
      const id = nextId++
      return new Promise((resolve) => {
        pending.set(id, resolve)
        worker.postMessage({
          t: 'infer',
          id,
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: x }],
          outputs: undefined,
        } satisfies ToHost)
      })
    },
    stop: () => worker.terminate(),
  }
}

const bench: Bench = async ({ quick, args }) => {
  const { values } = parseArgs({
    args,
    options: { seconds: { type: 'string' }, concurrency: { type: 'string' } },
    strict: true,
  })
  const seconds = Number(values.seconds ?? (quick ? 1 : 4))
  const concurrency = Number(values.concurrency ?? 32)
  const warmupS = quick ? 0.3 : 1
  const report = newReport('serving-runtime', quick)
  const dir = makeTempDir('hopsd-bench-serving-runtime-')
  const replicas: Replica[] = []
  try {
    const modelDir = writeModel(join(dir, 'linear'), linearModel({ w: W, b: B }))
    const modelPath = join(modelDir, 'model.onnx')
    const rowOf = (i: number) => [((i % 97) - 48) / 8, (i % 13) / 4, 1, -1]
    const bodies = Array.from({ length: 256 }, (_, i) =>
      JSON.stringify({
        id: `r${i}`,
        inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [rowOf(i)] }],
      }),
    )
    const tensors = Array.from({ length: 256 }, (_, i) => Float32Array.from(rowOf(i)))

    // ---- baseline: in-process onnxruntime-node
    const session = await ort.InferenceSession.create(modelPath, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
    })
    const inProcess = async (i: number) => {
      const out = await session.run({ x: new ort.Tensor('float32', tensors[i % 256]!, [1, 4]) })
      return out['y']!.data
    }
    for (const c of [1, concurrency]) {
      await load(inProcess, c, warmupS, () => [])
      report.baseline.push(row('in-process session.run', c, await load(inProcess, c, seconds, () => [])))
    }
    await session.release()

    // ---- the host in a worker thread (what a child process is compared with)
    const workerHost = await startWorkerHost(modelPath)
    const viaWorker = (i: number) => workerHost.infer(tensors[i % 256]!)
    await load(viaWorker, 1, warmupS, () => [])
    report.rows.push(
      row('host in a worker thread (no protocol)', 1, await load(viaWorker, 1, seconds, () => [])),
    )
    await workerHost.stop()

    // ---- replicas: child process + protocol
    const variants: { target: string; c: number; batching: boolean; callsMax?: number }[] = [
      { target: 'replica, child process (no batching)', c: 1, batching: false },
      { target: 'replica, child process (no batching)', c: concurrency, batching: false },
      { target: 'replica, child process, adaptive batching', c: 1, batching: true },
      { target: 'replica, child process, adaptive batching', c: concurrency, batching: true },
      {
        target: 'replica, child process, adaptive batching, callsMax 1',
        c: concurrency,
        batching: true,
        callsMax: 1,
      },
    ]
    for (const v of variants) {
      const replica = createReplica({
        runtime: 'onnx',
        modelDir,
        name: 'linear',
        version: '1',
        queueDepthMax: Math.max(64, concurrency),
        ...(v.batching ? {} : { batching: false as const }),
        ...(v.callsMax === undefined ? {} : { callsMax: v.callsMax }),
      })
      replicas.push(replica)
      await replica.start()
      const pid = replica.state().pid!
      const viaReplica = async (i: number) => {
        const request = replica.parse(bodies[i % 256]!)
        const result = await replica.infer(request)
        return encodeInferResponse(result, { modelName: 'linear', modelVersion: '1', id: request.id })
      }
      await load(viaReplica, v.c, warmupS, () => [pid])
      const before = replica.state()
      const m = await load(viaReplica, v.c, seconds, () => [pid])
      const after = replica.state()
      const calls = after.calls - before.calls
      const measured = row(v.target, v.c, m, {
        rowsPerCall: round((after.rows - before.rows) / Math.max(1, calls), 2),
      })
      report.rows.push(measured)
      await replica.stop()
      const base = report.baseline.find((b) => b['concurrency'] === v.c)!
      report.ratios.push({
        target: v.target,
        concurrency: v.c,
        inferPerS: round(Number(measured['inferPerS']) / Number(base['inferPerS']), 3),
        cpuUsPerInfer: round(Number(measured['cpuUsPerInfer']) / Number(base['cpuUsPerInfer']), 3),
      })
    }
    const workerRow = report.rows[0]!
    report.ratios.unshift({
      target: 'host in a worker thread (no protocol)',
      concurrency: 1,
      inferPerS: round(Number(workerRow['inferPerS']) / Number(report.baseline[0]!['inferPerS']), 3),
      cpuUsPerInfer: round(
        Number(workerRow['cpuUsPerInfer']) / Number(report.baseline[0]!['cpuUsPerInfer']),
        3,
      ),
    })
    report.notes.push(
      `closed loop, ${seconds} s measured after ${warmupS} s warm-up; one row [1, 4] FP32 per request; ONNX Runtime with 1 intra-op thread everywhere`,
      'replica rows include parsing the JSON body, checking it against the model, and encoding the JSON answer (no HTTP)',
      'CPU: this process (all its threads) plus the host process; the load generator runs in this process',
    )
  } finally {
    await Promise.all(replicas.map((r) => r.stop()))
    removeTempDirs()
  }
  return report
}

export default bench
