/**
 * bench/fs-small: small-file (4 KiB) create+write+close throughput and read latency through a real
 * cluster — 3 `hopsd start` processes on loopback, zones z1..z3, `--bootstrap-expect 3`, every node
 * joining all p2p addresses, one shared swarm key — with 1, 16 and 64 concurrent clients, through
 *   - native: `PUT /api/v1/fs/files` (one request = one Raft command), reads `GET /api/v1/fs/files`;
 *   - webhdfs: CREATE in two steps (step one answers 307, the data goes to the Location), reads OPEN.
 * Baseline, measured in the same run on the same disk: the same files written into a local directory
 * (open, write, fsync, close) by as many concurrent writers, and read back (open, read, close).
 *
 * Closed loop: each client sends its next request when the previous one answered, over keep-alive
 * connections (node:http Agent, one socket per client). Client k talks to node k mod N, so followers'
 * forwarding to the leader and follower reads (ReadIndex) are part of the figures.
 *
 * Peer: etcd (./etcd.ts) — after the rows above, 256-byte puts through hopsd's native PUT and through a
 * 3-member etcd's JSON gateway, alternating per concurrency (`--etcd-clients`, default 1,16,64,256),
 * ratios hopsd / etcd; `--etcd off` leaves it out (it is also left out with `--target`).
 *
 * Usage: `npm run bench -- fs-small [--quick] [--seconds S] [--clients 1,16,64] [--nodes 3]
 *         [--auth simple|secure] [--target URL,URL,...] [--etcd off] [--etcd-clients 1,16,64,256]`
 * `--profile` starts the daemons with their inspector on loopback and records a V8 CPU profile of each
 * during every hopsd row of the etcd comparison, reported as notes (self time per place, share of
 * busy samples, per node, the leader marked): where a put's CPU goes. The profiler costs the daemons
 * CPU too, so compare figures only between runs without it.
 * `--auth secure` starts the cluster with secure auth and sends the admin key as `Authorization: Bearer`
 * on every request (each is then authenticated after a read barrier); the default, simple, sends
 * `user.name` as before — compare the two runs' figures for the cost of authentication. `--target`
 * measures nodes already running (e.g. `hopsd dev`) instead of starting a cluster; `--nodes 1` starts a
 * single node (`--bootstrap-expect 1`).
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { Agent } from 'node:http'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  REPO_ROOT,
  makeTempDir,
  removeTempDirs,
  startCluster,
  stopAllNodes,
  waitFor,
} from '../../test/helpers/index.js'
import { ensureEtcd, startEtcd } from './etcd.js'
import { inspectorUrlIn, startProfiling, summarizeProfile } from '../profile.js'
import {
  cpuSecondsOf,
  daemonEnv,
  newReport,
  round,
  summarize,
  type Bench,
  sendHttp,
  type BenchRow,
  type HttpAnswer,
} from '../harness.js'

const FILE_BYTES = 4096
/** Every request acts as the superuser, so permissions never get in the way of the figures. */
const USER = 'hopsd'
/** How requests say who they are: `user.name` (simple auth) or a bearer key (secure auth). */
let IDENT: { query: Record<string, string>; headers: Record<string, string> } = {
  query: { 'user.name': USER },
  headers: {},
}
const identQuery = (): string => new URLSearchParams(IDENT.query).toString()
/** How long a fresh cluster may take to elect a leader and answer a write. */
const READY_TIMEOUT_MS = 90_000
const REQUEST_TIMEOUT_MS = 30_000

type Api = 'native' | 'webhdfs'

/** One request over `agent` as this run's identity (see sendHttp). */
function send(
  agent: Agent,
  method: string,
  url: string,
  body?: Buffer,
  contentType = 'application/octet-stream',
): Promise<HttpAnswer> {
  return sendHttp(agent, method, url, body, {
    contentType,
    headers: IDENT.headers,
    timeoutMs: REQUEST_TIMEOUT_MS,
  })
}

const enc = (p: string) => p.split('/').map(encodeURIComponent).join('/')

interface Target {
  readonly url: string
  readonly agent: Agent
}

/** One create of `path` with `data`; true when the file was written. */
async function create(api: Api, t: Target, path: string, data: Buffer): Promise<boolean> {
  if (api === 'native') {
    const q = new URLSearchParams({ path, ...IDENT.query })
    return (await send(t.agent, 'PUT', `${t.url}/api/v1/fs/files?${q}`, data)).status === 201
  }
  const step1 = await send(t.agent, 'PUT', `${t.url}/webhdfs/v1${enc(path)}?op=CREATE&${identQuery()}`)
  if (step1.status !== 307 || step1.location === undefined) return false
  return (await send(t.agent, 'PUT', step1.location, data)).status === 201
}

async function read(api: Api, t: Target, path: string): Promise<boolean> {
  const url =
    api === 'native'
      ? `${t.url}/api/v1/fs/files?${new URLSearchParams({ path, ...IDENT.query })}`
      : `${t.url}/webhdfs/v1${enc(path)}?op=OPEN&${identQuery()}`
  const res = await send(t.agent, 'GET', url)
  return res.status === 200 && res.body.length === FILE_BYTES
}

interface RowResult {
  /** CPU seconds the daemons used during the creates (Linux /proc), undefined when not measured. */
  daemonCpuS?: number
  creates: number
  createErrors: number
  createSeconds: number
  createLatenciesMs: number[]
  reads: number
  readErrors: number
  readSeconds: number
  readLatenciesMs: number[]
}

/** Closed-loop creates for `seconds`, then closed-loop reads of random created files for `readSeconds`. */
async function measure(
  api: Api,
  targets: readonly Target[],
  dir: string,
  clients: number,
  seconds: number,
  readSeconds: number,
  pids: readonly number[] = [],
): Promise<RowResult> {
  const data = randomBytes(FILE_BYTES)
  // One directory per client, made before the clock starts.
  for (let c = 0; c < clients; c++) {
    const t = targets[c % targets.length]!
    const res = await send(
      t.agent,
      'PUT',
      `${t.url}/webhdfs/v1${enc(`${dir}/w${c}`)}?op=MKDIRS&${identQuery()}`,
    )
    if (res.status !== 200) throw new Error(`MKDIRS ${dir}/w${c}: HTTP ${res.status} ${res.body.toString()}`)
  }
  const r: RowResult = {
    creates: 0,
    createErrors: 0,
    createSeconds: 0,
    createLatenciesMs: [],
    reads: 0,
    readErrors: 0,
    readSeconds: 0,
    readLatenciesMs: [],
  }
  const written: string[] = []
  const cpu0 = cpuSecondsOf(pids)
  let t0 = performance.now()
  const deadline = t0 + seconds * 1000
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const t = targets[c % targets.length]!
      for (let i = 0; performance.now() < deadline; i++) {
        const path = `${dir}/w${c}/f${i}`
        const start = performance.now()
        const okay = await create(api, t, path, data).catch(() => false)
        if (okay) {
          r.createLatenciesMs.push(performance.now() - start)
          written.push(path)
        } else r.createErrors++
      }
    }),
  )
  r.createSeconds = (performance.now() - t0) / 1000
  const cpu1 = cpuSecondsOf(pids)
  if (cpu0 !== undefined && cpu1 !== undefined) r.daemonCpuS = cpu1 - cpu0
  r.creates = written.length
  if (written.length === 0) return r
  t0 = performance.now()
  const readDeadline = t0 + readSeconds * 1000
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const t = targets[c % targets.length]!
      while (performance.now() < readDeadline) {
        const path = written[Math.floor(Math.random() * written.length)]!
        const start = performance.now()
        if (await read(api, t, path).catch(() => false)) r.readLatenciesMs.push(performance.now() - start)
        else r.readErrors++
      }
    }),
  )
  r.readSeconds = (performance.now() - t0) / 1000
  r.reads = r.readLatenciesMs.length
  return r
}

/** Bytes of one value in the etcd comparison (the issue's 256-byte puts). */
const PUT_BYTES = 256

interface PutResult {
  puts: number
  errors: number
  seconds: number
  latenciesMs: number[]
  cpuS?: number
}

/**
 * Closed-loop 256-byte writes for `seconds`: hopsd's native PUT of a new file, or etcd's JSON-gateway put
 * of a new key; client k talks to member k mod N in both, as users spread over a cluster.
 */
async function measurePuts(
  kind: 'hopsd' | 'etcd',
  targets: readonly Target[],
  prefix: string,
  clients: number,
  seconds: number,
  pids: readonly number[],
): Promise<PutResult> {
  const value = randomBytes(PUT_BYTES)
  const etcdBody = (key: string): Buffer =>
    Buffer.from(JSON.stringify({ key: Buffer.from(key).toString('base64'), value: value.toString('base64') }))
  if (kind === 'hopsd')
    for (let c = 0; c < clients; c++) {
      const t = targets[c % targets.length]!
      const res = await send(
        t.agent,
        'PUT',
        `${t.url}/webhdfs/v1${enc(`${prefix}/w${c}`)}?op=MKDIRS&${identQuery()}`,
      )
      if (res.status !== 200) throw new Error(`MKDIRS ${prefix}/w${c}: HTTP ${res.status}`)
    }
  const r: PutResult = { puts: 0, errors: 0, seconds: 0, latenciesMs: [] }
  const cpu0 = cpuSecondsOf(pids)
  const t0 = performance.now()
  const deadline = t0 + seconds * 1000
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const t = targets[c % targets.length]!
      for (let i = 0; performance.now() < deadline; i++) {
        const key = `${prefix}/w${c}/f${i}`
        const start = performance.now()
        const ok =
          kind === 'hopsd'
            ? (
                await send(
                  t.agent,
                  'PUT',
                  `${t.url}/api/v1/fs/files?${new URLSearchParams({ path: key, ...IDENT.query })}`,
                  value,
                ).catch(() => undefined)
              )?.status === 201
            : (
                await send(t.agent, 'POST', `${t.url}/v3/kv/put`, etcdBody(key), 'application/json').catch(
                  () => undefined,
                )
              )?.status === 200
        if (ok) r.latenciesMs.push(performance.now() - start)
        else r.errors++
      }
    }),
  )
  r.seconds = (performance.now() - t0) / 1000
  const cpu1 = cpuSecondsOf(pids)
  if (cpu0 !== undefined && cpu1 !== undefined) r.cpuS = cpu1 - cpu0
  r.puts = r.latenciesMs.length
  return r
}

function putRow(label: string, clients: number, r: PutResult): BenchRow {
  const l = summarize(r.latenciesMs)
  return {
    api: label,
    clients,
    puts: r.puts,
    errors: r.errors,
    putsPerS: round(r.puts / Math.max(1e-9, r.seconds), 0),
    putP50Ms: l.p50Ms,
    putP99Ms: l.p99Ms,
    ...(r.cpuS !== undefined && r.puts > 0 ? { cpuMsPerPut: round((1000 * r.cpuS) / r.puts, 3) } : {}),
  }
}

function row(label: string, clients: number, r: RowResult): BenchRow {
  const c = summarize(r.createLatenciesMs)
  const rd = summarize(r.readLatenciesMs)
  return {
    api: label,
    clients,
    creates: r.creates,
    errors: r.createErrors + r.readErrors,
    createsPerS: round(r.creates / Math.max(1e-9, r.createSeconds), 0),
    createP50Ms: c.p50Ms,
    createP99Ms: c.p99Ms,
    readsPerS: round(r.reads / Math.max(1e-9, r.readSeconds), 0),
    readP50Ms: rd.p50Ms,
    readP99Ms: rd.p99Ms,
    // CPU of all the daemons per create, in ms: the cost of a create, whatever else loads the host.
    ...(r.daemonCpuS !== undefined && r.creates > 0
      ? { daemonCpuMsPerCreate: round((1000 * r.daemonCpuS) / r.creates, 3) }
      : {}),
  }
}

/** The local-directory baseline in its own process (see baseline.ts). */
async function baseline(
  dir: string,
  clients: number,
  seconds: number,
  readSeconds: number,
): Promise<RowResult> {
  mkdirSync(dir, { recursive: true })
  const node = join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node')
  const child = spawn(
    node,
    [
      '--import',
      'tsx',
      join(REPO_ROOT, 'bench', 'fs-small', 'baseline.ts'),
      dir,
      String(clients),
      String(seconds),
      String(readSeconds),
      String(FILE_BYTES),
    ],
    {
      cwd: REPO_ROOT,
      // As many threads as writers: fsync blocks a libuv thread, and the default 4 would cap concurrency.
      env: { ...process.env, UV_THREADPOOL_SIZE: String(Math.min(128, Math.max(4, clients))) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
  const code = await new Promise<number | null>((r) => child.on('close', r))
  if (code !== 0) throw new Error(`baseline (${clients} writers) failed: ${err.trim()}`)
  const res = JSON.parse(out) as { creates: number; seconds: number; readLatenciesMs: number[] }
  return {
    creates: res.creates,
    createErrors: 0,
    createSeconds: res.seconds,
    createLatenciesMs: [],
    reads: res.readLatenciesMs.length,
    readErrors: 0,
    readSeconds: readSeconds,
    readLatenciesMs: res.readLatenciesMs,
  }
}

/** The metadata leader's node id as `t` sees it (GET /api/v1/cluster), or '' when it names none. */
async function leaderIdOf(t: Target): Promise<string> {
  const res = await send(t.agent, 'GET', `${t.url}/api/v1/cluster?${identQuery()}`)
  if (res.status !== 200) return ''
  return (JSON.parse(res.body.toString()) as { leader?: { id?: string } | null }).leader?.id ?? ''
}

/** Waits until every target accepts a small-file write (leader elected, fs served). */
async function waitReady(targets: readonly Target[]): Promise<void> {
  await Promise.all(
    targets.map(async (t, i) => {
      const state = await waitFor(
        async () => {
          const q = new URLSearchParams({ path: `/bench-ready/n${i}`, overwrite: 'true', ...IDENT.query })
          const res = await send(t.agent, 'PUT', `${t.url}/api/v1/fs/files?${q}`, Buffer.from('ok'))
          // fastify's own 404 (no such route) differs from the fs's FILE_NOT_FOUND: the answer is final.
          if (res.status === 404 && /Route .* not found/i.test(res.body.toString())) return 'missing'
          return res.status === 201 ? 'ready' : undefined
        },
        { timeoutMs: READY_TIMEOUT_MS, intervalMs: 200, what: `${t.url} to accept a small-file write` },
      )
      if (state === 'missing')
        throw new RouteMissing(`${t.url} does not serve /api/v1/fs (the daemon's fs wiring is not there yet)`)
    }),
  )
}

/** The node answers, but not with the fs routes: nothing to measure. */
class RouteMissing extends Error {
  override readonly name = 'RouteMissing'
}

const bench: Bench = async ({ quick, args }) => {
  const { values } = parseArgs({
    args,
    options: {
      seconds: { type: 'string' },
      clients: { type: 'string' },
      nodes: { type: 'string' },
      target: { type: 'string' },
      auth: { type: 'string' },
      etcd: { type: 'string' },
      'etcd-clients': { type: 'string' },
      profile: { type: 'boolean' },
    },
    strict: true,
  })
  const auth = values.auth ?? 'simple'
  if (auth !== 'simple' && auth !== 'secure') throw new Error('--auth takes simple or secure')
  const seconds = Number(values.seconds ?? (quick ? 2 : 10))
  const readSeconds = quick ? 1 : Math.max(2, seconds / 2)
  const warmupS = quick ? 0.5 : 2
  const clientCounts = (values.clients ?? '1,16,64').split(',').map(Number)
  const nodes = Number(values.nodes ?? 3)
  if (!clientCounts.every((c) => Number.isInteger(c) && c >= 1 && c <= 1024) || !(nodes >= 1 && nodes <= 7))
    throw new Error('--clients takes integers 1..1024, --nodes 1..7')
  const report = newReport('fs-small', quick)
  const dir = makeTempDir('hopsd-bench-fs-small-')
  const agents: Agent[] = []
  try {
    const cluster =
      values.target !== undefined
        ? undefined
        : await startCluster({
            dir: join(dir, 'cluster'),
            // zones z1..zN, every node joins all, --bootstrap-expect N
            nodes,
            // Request logs off, as a loaded production node would run: the figures are about the fs path.
            // --profile: each daemon's inspector on loopback, to profile exactly the measured windows.
            env: { ...daemonEnv(), ...(values.profile ? { NODE_OPTIONS: '--inspect=127.0.0.1:0' } : {}) },
            auth,
          })
    const handles = cluster?.handles ?? []
    if (auth === 'secure') {
      const key = cluster !== undefined ? await cluster.adminKey(READY_TIMEOUT_MS) : process.env['HOPSD_KEY']
      if (key === undefined) throw new Error('--auth secure with --target needs HOPSD_KEY (an admin key)')
      IDENT = { query: {}, headers: { authorization: `Bearer ${key}` } }
    }
    const urls =
      values.target !== undefined
        ? values.target.split(',').map((u) => u.replace(/\/+$/, ''))
        : handles.map((n) => n.url)
    const pids = handles.map((n) => n.pid)
    const maxClients = Math.max(...clientCounts)
    const targets = urls.map((url) => {
      const agent = new Agent({ keepAlive: true, maxSockets: maxClients, maxFreeSockets: maxClients })
      agents.push(agent)
      return { url, agent }
    })
    await waitReady(targets)

    for (const api of ['native', 'webhdfs'] as const) {
      // Warm-up (JIT, connections, Raft pipelines); not recorded.
      await measure(api, targets, `/bench/${api}-warmup`, Math.min(16, maxClients), warmupS, 0.2)
      for (const clients of clientCounts) {
        const r = await measure(
          api,
          targets,
          `/bench/${api}-c${clients}`,
          clients,
          seconds,
          readSeconds,
          pids,
        )
        report.rows.push(
          row(api === 'native' ? 'native PUT /api/v1/fs/files' : 'WebHDFS CREATE (307)', clients, r),
        )
      }
    }
    for (const clients of clientCounts) {
      const b = await baseline(join(dir, `local-c${clients}`), clients, seconds, readSeconds)
      report.baseline.push({
        ...row('local dir: open+write+fsync+close', clients, b),
        createP50Ms: '',
        createP99Ms: '',
      })
    }
    for (const m of report.rows) {
      const b = report.baseline.find((x) => x['clients'] === m['clients'])!
      report.ratios.push({
        api: m['api']!,
        clients: m['clients']!,
        createsPerS: round(Number(m['createsPerS']) / Number(b['createsPerS']), 3),
        readP50Ms: round(Number(m['readP50Ms']) / Number(b['readP50Ms']), 3),
        readP99Ms: round(Number(m['readP99Ms']) / Number(b['readP99Ms']), 3),
      })
    }
    if (values.etcd !== 'off' && cluster !== undefined) {
      const etcdClients = (values['etcd-clients'] ?? (quick ? '1,16' : '1,16,64,256')).split(',').map(Number)
      const have = ensureEtcd()
      if (!have.ok) report.notes.push(`etcd peer not measured: ${have.why}`)
      else {
        const etcd = await startEtcd(join(dir, 'etcd'), 3, have.version)
        try {
          const etcdTargets = etcd.urls.map((url) => {
            const agent = new Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 1024 })
            agents.push(agent)
            return { url, agent }
          })
          for (const t of targets) t.agent.maxSockets = Math.max(t.agent.maxSockets, ...etcdClients)
          await measurePuts('hopsd', targets, '/bench/puts-warmup', 16, warmupS, [])
          await measurePuts('etcd', etcdTargets, '/bench/puts-warmup', 16, warmupS, [])
          for (const clients of etcdClients) {
            const stopProfiles = values.profile
              ? await Promise.all(
                  handles.map((n) => {
                    const url = inspectorUrlIn(n.logs().stderr)
                    if (url === undefined) throw new Error('--profile: a daemon printed no inspector address')
                    return startProfiling(url)
                  }),
                )
              : []
            const h = await measurePuts('hopsd', targets, `/bench/puts-c${clients}`, clients, seconds, pids)
            if (stopProfiles.length > 0) {
              const leader = await leaderIdOf(targets[0]!)
              for (const [i, stop] of stopProfiles.entries()) {
                const places = summarizeProfile(await stop(), 12)
                report.notes.push(
                  `profile, ${clients} clients, node ${i + 1}${handles[i]!.id === leader ? ' (leader)' : ''}: ${places.map((p) => `${p.place} ${p.sharePct} %`).join(', ')}`,
                )
              }
            }
            const e = await measurePuts(
              'etcd',
              etcdTargets,
              `/bench/puts-c${clients}`,
              clients,
              seconds,
              etcd.pids,
            )
            const hr = putRow(`hopsd native PUT ${PUT_BYTES} B`, clients, h)
            const er = putRow(`etcd ${etcd.version} put ${PUT_BYTES} B (JSON gateway)`, clients, e)
            report.rows.push(hr)
            report.baseline.push(er)
            report.ratios.push({
              api: `hopsd / etcd, ${PUT_BYTES} B puts`,
              clients,
              putsPerS: round(Number(hr['putsPerS']) / Math.max(1, Number(er['putsPerS'])), 3),
              putP99Ms: round(Number(hr['putP99Ms']) / Math.max(1e-9, Number(er['putP99Ms'])), 3),
              ...(hr['cpuMsPerPut'] !== undefined && er['cpuMsPerPut'] !== undefined
                ? { cpuMsPerPut: round(Number(hr['cpuMsPerPut']) / Number(er['cpuMsPerPut']), 3) }
                : {}),
            })
          }
          report.notes.push(
            `etcd peer: ${etcd.version}, 3 members on loopback with default settings (fsync on), client k on member k mod 3 as for hopsd; the same closed-loop client over keep-alive node:http Agents; every put a new key / a new file; goal: hopsd >= 1.0x etcd at every concurrency, >= 1.5x at 64 and above`,
          )
        } finally {
          await etcd.stop()
        }
      }
    }
    const goal = report.rows.find((r) => String(r['api']).startsWith('native') && r['clients'] === 64)
    if (goal !== undefined)
      report.notes.push(
        `goal (native, 64 clients): >= 3000 creates/s and read p99 <= 5 ms — measured ${goal['createsPerS']} creates/s, read p99 ${goal['readP99Ms']} ms`,
      )
    report.notes.push(
      values.target !== undefined
        ? `measured against running nodes: ${urls.join(', ')}`
        : `${nodes} hopsd start processes on loopback (zones z1..z${nodes}, --bootstrap-expect ${nodes}, --auth ${auth}), HOPSD_LOG_LEVEL=warn, run from the sources under tsx`,
      auth === 'secure'
        ? 'every request carries the admin key (Authorization: Bearer), checked after a read barrier'
        : 'every request says user.name=hopsd (simple auth: believed, no barrier)',
      `${FILE_BYTES}-byte files; closed loop, ${seconds} s of creates then ${readSeconds} s of random reads of those files per row, after ${warmupS} s warm-up per api; client k uses node k mod ${urls.length} (keep-alive, node:http Agent)`,
      'the load generator runs in the bench process and shares the CPUs (and the disk) with every node; the baseline runs in its own process with UV_THREADPOOL_SIZE = writers',
      'daemonCpuMsPerCreate: user + system CPU of all the daemons during the creates (from /proc), divided by the creates; it moves much less than creates/s when other work shares the host',
    )
  } finally {
    for (const a of agents) a.destroy()
    await stopAllNodes()
    removeTempDirs()
  }
  return report
}

export default bench
