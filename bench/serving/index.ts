/**
 * Inference through the HTTP API (`POST /v2/models/{name}/infer` on a one-node cluster: metadata, datanode
 * and serving roles; the deployment's one replica on that node; a linear ONNX model, one [1, 4] FP32 row
 * per request), beside two floors measured in the same run: the same model called in-process through
 * onnxruntime-node, and a bare node:http server (a child process) answering a fixed JSON body.
 * Closed loop at 1 and `--concurrency` (32) callers over keep-alive connections.
 */
import { execFileSync, spawn } from 'node:child_process'
import { Agent, request } from 'node:http'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import * as ort from 'onnxruntime-node'
import { removeTempDirs, startCluster, stopAllNodes, waitFor, makeTempDir } from '../../test/helpers/index.js'
import { encodeModel, linearModel, writeModel } from '../../test/helpers/onnx-model.js'
import { cpuSecondsOf, newReport, round, summarize, type Bench, type BenchRow } from '../harness.js'
import { inspectorUrlIn, startProfiling, summarizeProfile } from '../profile.js'

const W = [
  [0.5, -1, 2],
  [1.5, 0.25, -0.75],
  [-2, 3, 0.125],
  [1, 1, 1],
]
const B = [0.1, -0.2, 0.3]

interface Measured {
  n: number
  seconds: number
  cpuS: number
  latenciesMs: number[]
}

async function load(
  one: (i: number) => Promise<unknown>,
  concurrency: number,
  seconds: number,
  pids: number[],
): Promise<Measured> {
  const latenciesMs: number[] = []
  const cpu0 = process.cpuUsage()
  const child0 = cpuSecondsOf(pids) ?? 0
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
  const cpu = process.cpuUsage(cpu0)
  return {
    n: latenciesMs.length,
    seconds: (performance.now() - t0) / 1000,
    cpuS: (cpu.user + cpu.system) / 1e6 + ((cpuSecondsOf(pids) ?? 0) - child0),
    latenciesMs,
  }
}

/**
 * Open loop: requests leave at `ratePerS` whatever the answers do (as independent users send them), and
 * each latency counts from when its request was due, so a stall shows in every request it delayed.
 */
async function openLoop(
  one: (i: number) => Promise<unknown>,
  ratePerS: number,
  seconds: number,
  pids: number[],
): Promise<Measured & { errors: number }> {
  const latenciesMs: number[] = []
  const inflight = new Set<Promise<void>>()
  let errors = 0
  const cpu0 = process.cpuUsage()
  const child0 = cpuSecondsOf(pids) ?? 0
  const total = Math.max(1, Math.floor(ratePerS * seconds))
  const t0 = performance.now()
  for (let sent = 0; sent < total;) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * ratePerS) + 1)
    for (; sent < due; sent++) {
      const dueAt = t0 + (sent / ratePerS) * 1000
      const p: Promise<void> = one(sent).then(
        () => void latenciesMs.push(performance.now() - dueAt),
        () => void errors++,
      )
      inflight.add(p)
      void p.finally(() => inflight.delete(p))
    }
    await new Promise((r) => setTimeout(r, 1))
  }
  await Promise.all(inflight)
  const cpu = process.cpuUsage(cpu0)
  return {
    n: latenciesMs.length,
    errors,
    seconds: (performance.now() - t0) / 1000,
    cpuS: (cpu.user + cpu.system) / 1e6 + ((cpuSecondsOf(pids) ?? 0) - child0),
    latenciesMs,
  }
}

function row(target: string, concurrency: number | string, m: Measured): BenchRow {
  const s = summarize(m.latenciesMs)
  return {
    target,
    concurrency,
    requests: m.n,
    reqPerS: round(m.n / m.seconds, 0),
    cpuUsPerReq: round((m.cpuS / m.n) * 1e6, 1),
    p50Ms: s.p50Ms,
    p99Ms: s.p99Ms,
  }
}

function post(agent: Agent, url: URL, path: string, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path,
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume()
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`)),
        )
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

/** A bare node:http server in a child process answering a fixed JSON body; resolves with its port and pid. */
async function bareServer(): Promise<{ port: number; pid: number; stop: () => void }> {
  const fixed = JSON.stringify({
    model_name: 'lin',
    model_version: '1',
    outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }],
  })
  const code = `const b=${JSON.stringify(fixed)};require('http').createServer((q,s)=>{q.resume();q.on('end',()=>{s.writeHead(200,{'content-type':'application/json','content-length':Buffer.byteLength(b)});s.end(b)})}).listen(0,'127.0.0.1',function(){console.log(this.address().port)})`
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolve) =>
    createInterface({ input: child.stdout! }).once('line', resolve),
  )
  return { port: Number(line), pid: child.pid!, stop: () => child.kill('SIGKILL') }
}

const bench: Bench = async ({ quick, args }) => {
  const { values } = parseArgs({
    args,
    options: {
      seconds: { type: 'string' },
      concurrency: { type: 'string' },
      profile: { type: 'boolean' },
    },
    strict: true,
  })
  const seconds = Number(values.seconds ?? (quick ? 1 : 4))
  const concurrency = Number(values.concurrency ?? 32)
  const warmupS = quick ? 0.3 : 1
  const report = newReport('serving', quick)
  const dir = makeTempDir('hopsd-bench-serving-')
  const rowOf = (i: number) => [((i % 97) - 48) / 8, (i % 13) / 4, 1, -1]
  const bodies = Array.from({ length: 256 }, (_, i) =>
    JSON.stringify({
      id: `r${i}`,
      inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [rowOf(i)] }],
    }),
  )
  const bare = await bareServer()
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  try {
    // ---- floor 1: in-process onnxruntime-node
    const modelDir = writeModel(join(dir, 'linear'), linearModel({ w: W, b: B }))
    const session = await ort.InferenceSession.create(join(modelDir, 'model.onnx'), {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
    })
    const tensors = Array.from({ length: 256 }, (_, i) => Float32Array.from(rowOf(i)))
    const inProcess = (i: number) => session.run({ x: new ort.Tensor('float32', tensors[i % 256]!, [1, 4]) })
    // ---- floor 2: a bare node:http server with a fixed answer
    const bareUrl = new URL(`http://127.0.0.1:${bare.port}`)
    const viaBare = (i: number) => post(agent, bareUrl, '/v2/models/lin/infer', bodies[i % 256]!)

    // ---- the API: a one-node cluster serving the model
    const cluster = await startCluster({
      prefix: 'hopsd-bench-serving-',
      nodes: 1,
      roles: ['metadata', 'datanode', 'serving'],
      // --profile: the daemon's inspector on loopback, to profile exactly the measured window.
      env: { HOPSD_LOG_LEVEL: 'warn', ...(values.profile ? { NODE_OPTIONS: '--inspect=127.0.0.1:0' } : {}) },
    })
    const node = cluster.nodes[0]!
    const url = new URL(node.handle.url)
    const api = async (method: string, path: string, body?: unknown, raw?: Uint8Array): Promise<Response> =>
      fetch(`${node.handle.url}${path}${path.includes('?') ? '&' : '?'}user.name=hopsd`, {
        method,
        headers: { 'content-type': raw ? 'application/octet-stream' : 'application/json' },
        body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
      })
    await waitFor(
      async () => (await api('PUT', '/webhdfs/v1/Projects/bench/Models/lin/1?op=MKDIRS')).status === 200,
      { timeoutMs: 60_000, what: 'mkdirs' },
    )
    const put = await api(
      'PUT',
      `/api/v1/fs/files?path=${encodeURIComponent('/Projects/bench/Models/lin/1/model.onnx')}`,
      undefined,
      encodeModel(linearModel({ w: W, b: B })),
    )
    if (put.status !== 201) throw new Error(`put: ${put.status} ${await put.text()}`)
    for (const [path, body] of [
      ['/api/v1/models', { project: 'bench', name: 'lin', version: '1', framework: 'onnx' }],
      [
        '/api/v1/deployments',
        { name: 'lin', project: 'bench', model: 'lin', version: '1', replicas: { min: 1, max: 1 } },
      ],
    ] as const) {
      const r = await api('POST', path, body)
      if (r.status !== 201) throw new Error(`${path}: ${r.status} ${await r.text()}`)
    }
    await waitFor(async () => (await api('GET', '/v2/models/lin/ready')).status === 200, {
      timeoutMs: 120_000,
      intervalMs: 200,
      what: 'the replica ready',
    })
    const pids = (): number[] => {
      // The daemon and its ONNX host (the replica's child process).
      const out: number[] = [node.handle.pid]
      try {
        const children = execFileSync('pgrep', ['-P', String(node.handle.pid)])
          .toString()
          .split('\n')
          .filter(Boolean)
          .map(Number)
        out.push(...children)
      } catch {
        /* none */
      }
      return out
    }
    const daemonPids = pids()
    const viaApi = (i: number) => post(agent, url, '/v2/models/lin/infer?user.name=hopsd', bodies[i % 256]!)

    for (const c of [1, concurrency]) {
      await load(inProcess, c, warmupS, [])
      report.baseline.push(row('in-process session.run', c, await load(inProcess, c, seconds, [])))
      await load(viaBare, c, warmupS, [bare.pid])
      report.baseline.push(row('bare node:http, fixed JSON', c, await load(viaBare, c, seconds, [bare.pid])))
      await load(viaApi, c, warmupS, daemonPids)
      const inspector =
        values.profile && c === concurrency ? inspectorUrlIn(node.handle.logs().stderr) : undefined
      if (values.profile && c === concurrency && inspector === undefined)
        throw new Error('--profile: the daemon printed no inspector address')
      const stopProfile = inspector === undefined ? undefined : await startProfiling(inspector)
      const measured = await load(viaApi, c, seconds, daemonPids)
      if (stopProfile !== undefined) {
        const profile = await stopProfile()
        const places = summarizeProfile(profile, 14)
        const functions = summarizeProfile(profile, 12, 'function')
        report.notes.push(
          `where the daemon's CPU went at ${c} callers (V8 profile of the measured window, self time, share of busy samples): ${places.map((p) => `${p.place} ${p.sharePct} %`).join(', ')}`,
          `the functions on top: ${functions.map((p) => `${p.place} ${p.sharePct} %`).join(', ')}`,
        )
      }
      const m = row('hopsd /v2 infer (HTTP, replica process)', c, measured)
      report.rows.push(m)
      for (const b of report.baseline.filter((x) => x['concurrency'] === c))
        report.ratios.push({
          target: `hopsd / ${b['target']}`,
          concurrency: c,
          reqPerS: round(Number(m['reqPerS']) / Number(b['reqPerS']), 3),
          cpuUsPerReq: round(Number(m['cpuUsPerReq']) / Number(b['cpuUsPerReq']), 3),
        })
    }
    // ---- the goal's second half: latency at half the closed-loop rate, open loop, beside the bare server
    const full = report.rows.find((r) => r['concurrency'] === concurrency)
    if (full !== undefined) {
      const half = Math.max(1, Math.round(Number(full['reqPerS']) / 2))
      const h = await openLoop(viaApi, half, seconds, daemonPids)
      const hb = await openLoop(viaBare, half, seconds, [bare.pid])
      const hr: BenchRow = { ...row('hopsd /v2 infer, open loop', `${half}/s`, h), errors: h.errors }
      const br: BenchRow = { ...row('bare node:http, open loop', `${half}/s`, hb), errors: hb.errors }
      report.rows.push(hr)
      report.baseline.push(br)
      report.ratios.push({
        target: 'hopsd / bare node:http, open loop at half the closed-loop rate',
        concurrency: `${half}/s`,
        p99Ms: round(Number(hr['p99Ms']) / Math.max(1e-9, Number(br['p99Ms'])), 3),
        cpuUsPerReq: round(Number(hr['cpuUsPerReq']) / Number(br['cpuUsPerReq']), 3),
      })
      report.notes.push(
        `goal: >= 0.5x the bare server's rate at ${concurrency} callers, p99 <= 10 ms at half that load — measured ${round(Number(full['reqPerS']) / Number(report.baseline.find((b) => b['concurrency'] === concurrency && String(b['target']).startsWith('bare'))?.['reqPerS'] ?? NaN), 3)}x, p99 ${hr['p99Ms']} ms at ${half}/s (open loop, latency from when each request was due)`,
      )
    }
    await session.release()
    await cluster.stop(10_000)
    report.notes.push(
      `closed loop over keep-alive HTTP from this process, ${seconds} s after ${warmupS} s warm-up; one [1, 4] FP32 row per request`,
      'CPU per request: this process (load generator included) plus the daemon and its ONNX host (hopsd rows) or the bare server (its row)',
      'the hopsd row pays authentication (simple), the access check (a read barrier and the projects tables, every request), JSON parse and checks, the pipe to the ONNX host, and the JSON answer',
    )
  } finally {
    bare.stop()
    agent.destroy()
    await stopAllNodes()
    removeTempDirs()
  }
  return report
}

export default bench
