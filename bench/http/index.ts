/**
 * bench/http: GET /health requests per second and latency through a real daemon (`hopsd start`, a child
 * process, request logs on as in production, and with HOPSD_LOG_LEVEL=warn), against a bare node:http
 * server in its own process answering the same body — the floor that fastify, schemas, the error mapper,
 * metrics and logging add to. Closed-loop load: C connections (keep-alive), each sending its next
 * request when the previous answered.
 *
 * Usage: `npm run bench -- http [--quick] [--connections C] [--seconds S]`
 */
import { spawn } from 'node:child_process'
import { Agent, request } from 'node:http'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { makeTempDir, removeTempDirs, startNode, waitFor, REPO_ROOT } from '../../test/helpers/index.js'
import { newReport, round, summarize, type Bench, type BenchRow } from '../harness.js'

interface LoadResult {
  requests: number
  errors: number
  seconds: number
  latenciesMs: number[]
}

/** Closed-loop load on `url` for `seconds` from `connections` keep-alive connections. */
async function load(url: string, connections: number, seconds: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections })
  const latenciesMs: number[] = []
  let errors = 0
  const t0 = performance.now()
  const deadline = t0 + seconds * 1000
  const one = () =>
    new Promise<void>((resolve) => {
      const start = performance.now()
      const req = request(url, { agent }, (res) => {
        res.resume()
        res.on('end', () => {
          if (res.statusCode === 200) latenciesMs.push(performance.now() - start)
          else errors++
          resolve()
        })
      })
      req.on('error', () => {
        errors++
        resolve()
      })
      req.end()
    })
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < deadline) await one()
    }),
  )
  const elapsedS = (performance.now() - t0) / 1000
  agent.destroy()
  return { requests: latenciesMs.length, errors, seconds: elapsedS, latenciesMs }
}

function row(target: string, connections: number, r: LoadResult): BenchRow {
  const s = summarize(r.latenciesMs)
  return {
    target,
    connections,
    requests: r.requests,
    errors: r.errors,
    reqPerS: round(r.requests / r.seconds, 0),
    p50Ms: s.p50Ms,
    p90Ms: s.p90Ms,
    p99Ms: s.p99Ms,
    maxMs: s.maxMs,
  }
}

async function startBare(): Promise<{ url: string; stop(): Promise<void> }> {
  const node = join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node')
  const child = spawn(node, [join(REPO_ROOT, 'bench', 'http', 'bare-server.mjs')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
  const port = await waitFor(() => /^\d+\n/.exec(out)?.[0].trim(), {
    timeoutMs: 10_000,
    what: 'bare server port',
  })
  const exited = new Promise<void>((r) => child.on('exit', () => r()))
  return {
    url: `http://127.0.0.1:${port}/health`,
    async stop() {
      child.kill('SIGTERM')
      await exited
    },
  }
}

const bench: Bench = async ({ quick, args }) => {
  const { values } = parseArgs({
    args,
    options: { connections: { type: 'string' }, seconds: { type: 'string' } },
    strict: true,
  })
  const connections = Number(values.connections ?? (quick ? 8 : 32))
  const seconds = Number(values.seconds ?? (quick ? 1 : 5))
  const warmupS = quick ? 0.3 : 1
  const report = newReport('http', quick)
  const dir = makeTempDir('hopsd-bench-http-')
  try {
    const bare = await startBare()
    await load(bare.url, connections, warmupS)
    const base = await load(bare.url, connections, seconds)
    await bare.stop()
    report.baseline.push(row('node:http bare server', connections, base))

    const variants: { target: string; env: Record<string, string> }[] = [
      { target: 'hopsd GET /health (request logs on)', env: {} },
      ...(quick
        ? []
        : [{ target: 'hopsd GET /health (HOPSD_LOG_LEVEL=warn)', env: { HOPSD_LOG_LEVEL: 'warn' } }]),
    ]
    for (const [i, v] of variants.entries()) {
      const node = await startNode({ dataDir: join(dir, `n${i}`), env: v.env })
      try {
        await load(`${node.url}/health`, connections, warmupS)
        const r = await load(`${node.url}/health`, connections, seconds)
        const measured = row(v.target, connections, r)
        report.rows.push(measured)
        const b = report.baseline[0]!
        report.ratios.push({
          target: v.target,
          reqPerS: round(Number(measured['reqPerS']) / Number(b['reqPerS']), 3),
          p50Ms: round(Number(measured['p50Ms']) / Number(b['p50Ms']), 3),
          p99Ms: round(Number(measured['p99Ms']) / Number(b['p99Ms']), 3),
        })
      } finally {
        await node.stop()
      }
    }
    report.notes.push(
      `closed loop: ${connections} keep-alive connections, ${seconds} s measured after ${warmupS} s warm-up, servers in their own processes`,
      'the load generator runs in the bench process and shares the CPUs with the server under test',
      'hopsd runs from the sources under tsx (run-time cost is the same as the binary after start-up)',
    )
  } finally {
    removeTempDirs()
  }
  return report
}

export default bench
