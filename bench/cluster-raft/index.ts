/**
 * bench/cluster-raft (issue #4): the consensus benchmark again, now over real libp2p between 3
 * processes, beside the in-process figure measured in the same run.
 *
 * Measured, at 1, 16 and 256 concurrent closed-loop proposers (128-byte commands, as bench/consensus):
 *  - `raft-libp2p-3-processes`: three worker processes (bench/cluster-raft/worker.ts), each a libp2p
 *    host (TCP + pnet + Noise + Yamux, as the daemon), the Raft channel/transport and a RaftGroup on
 *    LevelDB (fsync) with a trivial state machine; the leader process generates the load and reports.
 *  - `hopsd-http-3-processes` (skip with --no-http): three `hopsd start` processes (3 zones,
 *    --bootstrap-expect 3); each proposer PUTs a 128-byte file through `PUT /api/v1/fs/files` on the
 *    leader over its own keep-alive connection: HTTP + fs command + Raft + meta apply.
 * Baseline, in the same run, interleaved per point: bench/consensus run again (its 3-node RaftGroup in
 * one process over the memory network, and its one-LevelDB group-commit figure).
 *
 * Usage: `npm run bench -- cluster-raft [--quick] [--proposers=1,16,256] [--no-http]`
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import consensusBench from '../consensus/index.js'
import {
  REPO_ROOT,
  freePorts,
  makeTempDir,
  removeTempDirs,
  startCluster,
  stopAllNodes,
  waitFor,
  writeSwarmKey,
  type NodeHandle,
} from '../../test/helpers/index.js'
import {
  daemonEnv,
  newReport,
  round,
  summarize,
  type Bench,
  type BenchReport,
  type BenchRow,
} from '../harness.js'

const PROPOSER_COUNTS = [1, 16, 256]
/** The command size of bench/consensus (and of worker.ts), so the rows compare. */
const VALUE_BYTES = 128
const READY_TIMEOUT_MS = 120_000

// ------------------------------------------------------------------------------ pure Raft over libp2p

interface Worker {
  child: ChildProcess
  id: string
  /** Sends one command and resolves with the next line the worker prints. */
  call(cmd: object): Promise<Record<string, unknown>>
  stderr(): string
}

function spawnWorker(
  dataDir: string,
  listen: string,
  joinAddrs: string[],
  swarmKeyFile: string,
  seed: number,
): Promise<Worker> {
  const pinned = join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node')
  const node = existsSync(pinned) ? pinned : process.execPath
  const tsx = new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url).href
  mkdirSync(dataDir, { recursive: true })
  const child = spawn(
    node,
    [
      '--import',
      tsx,
      join(REPO_ROOT, 'bench', 'cluster-raft', 'worker.ts'),
      '--data-dir',
      dataDir,
      '--listen',
      listen,
      '--join',
      joinAddrs.join(','),
      '--swarm-key',
      swarmKeyFile,
      '--seed',
      String(seed),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  )
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-20_000)))
  const waiting: ((line: Record<string, unknown>) => void)[] = []
  const lines = createInterface({ input: child.stdout! })
  lines.on('line', (line) => {
    let msg: Record<string, unknown>
    try {
      msg = JSON.parse(line) as Record<string, unknown>
    } catch {
      return
    }
    waiting.shift()?.(msg)
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`worker ${listen} not ready in ${READY_TIMEOUT_MS} ms: ${stderr}`)),
      READY_TIMEOUT_MS,
    )
    child.on('exit', (code) => reject(new Error(`worker ${listen} exited (${code}): ${stderr}`)))
    waiting.push((ready) => {
      clearTimeout(timer)
      const call = (cmd: object) =>
        new Promise<Record<string, unknown>>((res) => {
          waiting.push(res)
          child.stdin!.write(JSON.stringify(cmd) + '\n')
        })
      resolve({ child, id: String(ready['id']), call, stderr: () => stderr })
    })
  })
}

interface Libp2pCluster {
  workers: Worker[]
  leader: Worker
  stop(): Promise<void>
}

async function startLibp2pCluster(dir: string): Promise<Libp2pCluster> {
  mkdirSync(dir, { recursive: true })
  const keyFile = writeSwarmKey(join(dir, 'swarm.key'))
  const addrs = await freePorts(3)
  const workers = await Promise.all(
    addrs.map((a, i) => spawnWorker(join(dir, `w${i + 1}`), a, addrs, keyFile, 1000 + i)),
  )
  const stop = async () => {
    await Promise.all(
      workers.map(async (w) => {
        if (w.child.exitCode !== null) return
        const exited = new Promise((r) => w.child.once('exit', r))
        const timer = setTimeout(() => w.child.kill('SIGKILL'), 10_000)
        w.child.stdin!.write(JSON.stringify({ cmd: 'stop' }) + '\n')
        await exited
        clearTimeout(timer)
      }),
    )
  }
  try {
    const voters = workers.map((w) => w.id)
    await Promise.all(workers.map((w) => w.call({ cmd: 'bootstrap', voters })))
    const leaderId = await waitFor(
      async () => {
        const st = await Promise.all(workers.map((w) => w.call({ cmd: 'status' })))
        const ids = new Set(st.map((s) => s['leaderId']))
        return ids.size === 1 && voters.includes(String(st[0]!['leaderId']))
          ? String(st[0]!['leaderId'])
          : undefined
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'the worker processes to agree on a leader' },
    )
    return { workers, leader: workers.find((w) => w.id === leaderId)!, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

// -------------------------------------------------------------------------- through hopsd's HTTP API

function put(agent: Agent, url: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'PUT',
        agent,
        timeout: 30_000,
        headers: { 'content-type': 'application/octet-stream', 'content-length': body.length },
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`PUT ${url}: no answer in 30 s`)))
    req.on('error', reject)
    req.end(body)
  })
}

async function startHopsdCluster(dir: string): Promise<{ nodes: NodeHandle[]; leader: NodeHandle }> {
  // zones z1..z3, every node joins all, --bootstrap-expect 3
  const { handles: nodes } = await startCluster({
    dir,
    nodes: 3,
    roles: ['metadata'],
    // Raft ticks as the in-process and libp2p groups (election timeouts don't matter under load).
    extraArgs: ['--raft-tick-ms', '50'],
    // Request logs off, as in bench/fs-small: the figures are about the write path.
    env: daemonEnv(),
    readyTimeoutMs: READY_TIMEOUT_MS,
  })
  const leaderId = await waitFor(
    async () => {
      const docs = await Promise.all(
        nodes.map(
          async (n) =>
            (await (await fetch(`${n.url}/api/v1/cluster`)).json()) as {
              clusterId: string
              leader: { id: string } | null
            },
        ),
      )
      const ids = new Set(docs.map((d) => d.leader?.id))
      return docs.every((d) => d.clusterId !== '') && ids.size === 1 ? docs[0]!.leader?.id : undefined
    },
    { timeoutMs: READY_TIMEOUT_MS, intervalMs: 200, what: 'the hopsd cluster to elect a leader' },
  )
  return { nodes, leader: nodes.find((n) => n.id === leaderId)! }
}

async function httpRun(
  leader: NodeHandle,
  proposers: number,
  durationMs: number,
  runId: number,
): Promise<BenchRow> {
  const body = Buffer.alloc(VALUE_BYTES, 7)
  const agents = Array.from({ length: proposers }, () => new Agent({ keepAlive: true, maxSockets: 1 }))
  const url = (w: number, i: number) =>
    `${leader.url}/api/v1/fs/files?path=${encodeURIComponent(`/bench/r${runId}/w${w}/f${i}`)}&user.name=hopsd`
  // Warm-up: one request per connection (opens the sockets; creates the parent directories' first file).
  await Promise.all(agents.map((a, w) => put(a, url(w, -1), body)))
  const latencies: number[] = []
  let failures = 0
  const start = performance.now()
  const end = start + durationMs
  await Promise.all(
    agents.map(async (agent, w) => {
      for (let i = 0; performance.now() < end; i++) {
        const t0 = performance.now()
        const status = await put(agent, url(w, i), body)
        if (status === 201) latencies.push(performance.now() - t0)
        else failures++
      }
    }),
  )
  const elapsedS = (performance.now() - start) / 1000
  for (const a of agents) a.destroy()
  const sum = summarize(latencies)
  return {
    proposers,
    proposalsPerS: Math.round(latencies.length / elapsedS),
    p50Ms: round(sum.p50Ms, 2),
    p99Ms: round(sum.p99Ms, 2),
    count: latencies.length,
    failures,
  }
}

// ------------------------------------------------------------------------------------------- the run

const clusterRaftBench: Bench = async (opts): Promise<BenchReport> => {
  const durationMs = opts.quick ? 2_000 : 10_000
  const arg = opts.args.find((x) => x.startsWith('--proposers='))
  const counts = arg ? arg.slice('--proposers='.length).split(',').map(Number) : PROPOSER_COUNTS
  const withHttp = !opts.args.includes('--no-http')
  const report = newReport('cluster-raft', opts.quick)
  const dir = makeTempDir('hopsd-bench-cluster-raft-')
  const consensusNotes: string[] = []
  let libp2p: Libp2pCluster | undefined
  let hopsd: { nodes: NodeHandle[]; leader: NodeHandle } | undefined
  try {
    libp2p = await startLibp2pCluster(join(dir, 'libp2p'))
    if (withHttp) hopsd = await startHopsdCluster(join(dir, 'hopsd'))
    for (const n of counts) {
      // Interleaved per point, so that every figure sees the same machine load.
      const inProcess = await consensusBench({ quick: opts.quick, args: [`--proposers=${n}`] })
      const inRow = inProcess.rows[0]!
      report.baseline.push(...inProcess.baseline, { ...inRow, target: 'raft-3-nodes-in-process' })
      consensusNotes.push(...inProcess.notes.filter((x) => x.startsWith('raft ')))

      const res = await libp2p.leader.call({ cmd: 'run', proposers: n, durationMs })
      if (res['type'] !== 'result')
        throw new Error(`libp2p run (${n} proposers): ${JSON.stringify(res)}\n${libp2p.leader.stderr()}`)
      const { type: _t, ...fig } = res
      report.rows.push({ target: 'raft-libp2p-3-processes', ...(fig as BenchRow) })
      report.ratios.push({
        figure: 'proposalsPerS libp2p/in-process',
        proposers: n,
        ratio: round(Number(fig['proposalsPerS']) / Number(inRow['proposalsPerS']), 2),
      })
      report.ratios.push({
        figure: 'p50Ms libp2p/in-process',
        proposers: n,
        ratio: round(Number(fig['p50Ms']) / Number(inRow['p50Ms']), 2),
      })

      if (hopsd !== undefined) {
        const h = await httpRun(hopsd.leader, n, durationMs, n)
        report.rows.push({ target: 'hopsd-http-3-processes', ...h })
        report.ratios.push({
          figure: 'proposalsPerS http/in-process',
          proposers: n,
          ratio: round(Number(h['proposalsPerS']) / Number(inRow['proposalsPerS']), 2),
        })
      }
    }
  } finally {
    await libp2p?.stop()
    await stopAllNodes()
    removeTempDirs()
  }
  report.notes.push(
    `${VALUE_BYTES}-byte commands; ${durationMs} ms per point; closed loop (each proposer proposes as soon as its previous proposal was applied on the leader); Raft tick 50 ms, election 20 ticks, heartbeat 2 ticks in all three`,
    'raft-libp2p-3-processes: 3 worker processes on loopback, libp2p TCP + pnet + Noise + Yamux, one framed stream per peer (src/node/p2p channel + Raft transport), LevelDB with fsync per Ready in each, counter state machine; the leader process drives the load (no HTTP)',
    ...(withHttp
      ? [
          'hopsd-http-3-processes: 3 `hopsd start --roles metadata` (z1..z3, --bootstrap-expect 3); every proposer PUTs a new 128-byte file through /api/v1/fs/files on the leader over its own keep-alive connection (HTTP + fs command encoding + Raft + meta apply); HOPSD_LOG_LEVEL=warn; the client runs in the bench process',
        ]
      : []),
    'baseline: bench/consensus run again per point in this process: raft-3-nodes-in-process (memory network, protobuf-encoded, LevelDB with fsync) and leveldb-group-commit',
    'all processes share the machine’s cores with the load generator; on a 2-core host the three processes compete for CPU, which the in-process group does not pay as context switches',
    ...consensusNotes.map((n) => `in-process ${n}`),
  )
  return report
}

export default clusterRaftBench
