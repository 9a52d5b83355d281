/**
 * bench/fs-scale: what a big namespace costs (issue 13 item 5). `--files N` files (default 1,000,000;
 * half 4 KiB inline, half empty, 1,000 per directory: plan.ts) written into one node, then into a fresh
 * 3-node cluster (`--nodes 1,3`), measuring for each:
 *  - memory: RSS (/proc), resident by kind of mapping (smaps: the C allocator's [heap], anonymous,
 *    file-backed) and V8 heap used / committed / external memory (the node's /metrics) of every node
 *    when idle, at N files, and after a restart; per file = (at N − idle) / files; with
 *    BENCH_FS_SCALE_GC=1 each reading follows a full GC in the node (through its inspector);
 *  - disk: bytes of files under each data dir (the Raft LevelDB, its snapshot files, the rest), per file;
 *  - restart: a node (a follower on 3 nodes) stopped with SIGTERM and started again on its data dir,
 *    from the spawn to /health (the modules started: the snapshot loaded) and to its first answered
 *    linearizable read of an existing file (the log after the snapshot replayed, a leader known);
 *  - catch-up (3 nodes): a 4th metadata node (zone z4) joins the cluster holding the namespace; from
 *    its spawn to its being a learner, and to its own replica serving (a stale, local read) a file
 *    written just before it started — so it holds everything written before;
 *  - create throughput: `--window-s` seconds of the same creates (closed loop, `--clients` clients
 *    spread over the nodes, native `PUT /api/v1/fs/files`) on the empty namespace (baseline; after a
 *    warm-up of half a window, whose files stay) and again at N files, and the daemons' CPU per create
 *    in both.
 * Baselines in the same run: the idle node's memory and disk, its restart time with no files, the
 * create throughput on the empty namespace; on the first cluster also empty files through the native
 * PUT against WebHDFS CREATE of 0 bytes (two requests), and the fill makes its empty files the way that
 * cost the daemons less CPU per create.
 *
 * Each phase is bounded: the fill stops at `--phase-timeout-s` (the files it made are the measured N),
 * the catch-up at `--catchup-timeout-s`.
 *
 * Usage: `npm run bench -- fs-scale [--quick] [--files 1000000] [--nodes 1,3] [--clients 64]
 *         [--window-s 10] [--phase-timeout-s 900] [--catchup-timeout-s 600]`
 */
import { randomBytes } from 'node:crypto'
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { Agent } from 'node:http'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  getJson,
  hopsdCommand,
  makeTempDir,
  removeTempDirs,
  startCluster,
  stopAllNodes,
  waitFor,
  type LoopbackCluster,
  type LoopbackNode,
} from '../../test/helpers/index.js'
import {
  cpuSecondsOf,
  daemonEnv,
  newReport,
  round,
  summarize,
  sendHttp,
  type Bench,
  type BenchReport,
  type HttpAnswer,
} from '../harness.js'
import { fileAt, perFileBytes, sizeSplit, INLINE_FILE_BYTES } from './plan.js'

const USER = 'hopsd'
const MIB = 1024 * 1024
const READY_TIMEOUT_MS = 90_000
const REQUEST_TIMEOUT_MS = 60_000
/** Tries of one create before it counts as an error (a timeout under load is retried). */
const CREATE_TRIES = 3
/** The goals. */
const GOAL_RSS_BYTES_PER_FILE = 200
const GOAL_RESTART_S = 10
const GOAL_CREATE_RATIO = 0.9

/** One request (see sendHttp), with this bench's longer deadline. */
function send(agent: Agent, method: string, url: string, body?: Buffer): Promise<HttpAnswer> {
  return sendHttp(agent, method, url, body, { timeoutMs: REQUEST_TIMEOUT_MS })
}

const enc = (p: string) => p.split('/').map(encodeURIComponent).join('/')
const filesUrl = (base: string, path: string, extra: Record<string, string> = {}) =>
  `${base}/api/v1/fs/files?${new URLSearchParams({ path, 'user.name': USER, ...extra })}`

interface Target {
  readonly url: string
  readonly agent: Agent
}

type EmptyVia = 'native' | 'webhdfs'

/** One create; a retry that finds the file there counts (the first try landed but its answer did not). */
async function create(t: Target, path: string, data: Buffer, emptyVia: EmptyVia): Promise<boolean> {
  for (let attempt = 0; attempt < CREATE_TRIES; attempt++) {
    let res: HttpAnswer | undefined
    if (data.length === 0 && emptyVia === 'webhdfs') {
      const step1 = await send(
        t.agent,
        'PUT',
        `${t.url}/webhdfs/v1${enc(path)}?op=CREATE&user.name=${USER}`,
      ).catch(() => undefined)
      if (step1?.status === 307 && step1.location !== undefined)
        res = await send(t.agent, 'PUT', step1.location, data).catch(() => undefined)
      else res = step1
    } else res = await send(t.agent, 'PUT', filesUrl(t.url, path), data).catch(() => undefined)
    if (res?.status === 201) return true
    if (attempt > 0 && res !== undefined && res.body.toString().includes('ALREADY_EXISTS')) return true
  }
  return false
}

interface CreateRun {
  creates: number
  errors: number
  seconds: number
  latenciesMs: number[]
  cpuS: number | undefined
  /** Creates per second in each tenth of a run with a count (the fill). */
  tenthsPerS: number[]
}

/**
 * Closed-loop creates of files 0, 1, 2, … under `root` (plan.ts) by `clients` clients, client k on node
 * k mod N, until `count` files are made or `seconds` pass.
 */
async function runCreates(
  targets: readonly Target[],
  root: string,
  opts: {
    clients: number
    seconds: number
    count?: number
    pids: readonly number[]
    emptyVia: EmptyVia
    /** Only empty files (the comparison of the ways to make them). */
    emptyOnly?: boolean
    progress?: (done: number, elapsedS: number) => void
  },
): Promise<CreateRun> {
  const inline = randomBytes(INLINE_FILE_BYTES)
  const empty = Buffer.alloc(0)
  const r: CreateRun = { creates: 0, errors: 0, seconds: 0, latenciesMs: [], cpuS: undefined, tenthsPerS: [] }
  const cpu0 = cpuSecondsOf(opts.pids)
  const t0 = performance.now()
  const deadline = t0 + opts.seconds * 1000
  const tenth = opts.count !== undefined ? Math.max(1, Math.floor(opts.count / 10)) : Infinity
  let lastTenthAt = t0
  let next = 0
  await Promise.all(
    Array.from({ length: opts.clients }, async (_, c) => {
      const t = targets[c % targets.length]!
      for (;;) {
        if (performance.now() >= deadline) return
        if (opts.count !== undefined && next >= opts.count) return
        const i = next++
        const f = fileAt(root, i)
        const start = performance.now()
        const ok = await create(t, f.path, opts.emptyOnly || f.bytes === 0 ? empty : inline, opts.emptyVia)
        const now = performance.now()
        if (!ok) {
          r.errors++
          continue
        }
        r.latenciesMs.push(now - start)
        r.creates++
        if (r.creates % tenth === 0) {
          r.tenthsPerS.push(round(tenth / ((now - lastTenthAt) / 1000), 0))
          lastTenthAt = now
          opts.progress?.(r.creates, (now - t0) / 1000)
        }
      }
    }),
  )
  r.seconds = (performance.now() - t0) / 1000
  const cpu1 = cpuSecondsOf(opts.pids)
  if (cpu0 !== undefined && cpu1 !== undefined) r.cpuS = cpu1 - cpu0
  return r
}

interface Memory {
  rssBytes: number
  heapUsedBytes: number
  /** V8's committed heap (nodejs_heap_size_total_bytes): used plus what V8 holds for the next objects. */
  heapTotalBytes: number
  externalBytes: number
  /** Resident bytes by kind of mapping, from /proc/PID/smaps (NaN where it cannot be read). */
  smaps: Smaps
}

interface Smaps {
  /** The C allocator's main heap ([heap], brk). */
  brkHeapBytes: number
  /** Anonymous mappings: V8's heap and code, glibc's other arenas and large (mmap) blocks, thread stacks. */
  anonBytes: number
  /** File-backed mappings: the node binary, shared libraries, mapped files. */
  fileBytes: number
}

/** Resident memory of `pid` by kind of mapping ([heap], anonymous, file-backed), from /proc/PID/smaps. */
function smapsOf(pid: number): Smaps {
  const r: Smaps = { brkHeapBytes: 0, anonBytes: 0, fileBytes: 0 }
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8')
  } catch {
    return { brkHeapBytes: NaN, anonBytes: NaN, fileBytes: NaN }
  }
  let kind: keyof Smaps | undefined
  for (const line of text.split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (header) {
      const path = header[1]!
      kind =
        path === '[heap]'
          ? 'brkHeapBytes'
          : path === ''
            ? 'anonBytes'
            : path.startsWith('/')
              ? 'fileBytes'
              : undefined
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss && kind) r[kind] += Number(rss[1]) * 1024
  }
  return r
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : NaN
}

/**
 * BENCH_FS_SCALE_GC=1: every memory reading follows a full GC in the node. The daemons start with
 * `--inspect-port=0`; the first reading opens the node's inspector (SIGUSR1, as `node inspect -p`
 * does) and each asks it for HeapProfiler.collectGarbage, through a one-line client under the
 * daemons' Node (22: a global WebSocket; the bench may run under an older Node).
 */
const FORCE_GC = process.env.BENCH_FS_SCALE_GC === '1'

function benchDaemonEnv(): Record<string, string> {
  const env = daemonEnv()
  return FORCE_GC ? { ...env, NODE_OPTIONS: `${env.NODE_OPTIONS ?? ''} --inspect-port=0`.trim() } : env
}

const GC_CLIENT = `const ws = new WebSocket(process.argv[1])
ws.onopen = () => ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }))
ws.onmessage = (m) => { if (JSON.parse(String(m.data)).id === 1) { ws.close(); process.exit(0) } }
ws.onerror = (e) => { console.error(e.message); process.exit(1) }`

async function forceGc(node: LoopbackNode): Promise<void> {
  const inspectorUrl = () =>
    [...node.handle.logs().stderr.matchAll(/Debugger listening on (ws:\/\/\S+)/g)].at(-1)?.[1]
  if (inspectorUrl() === undefined) node.handle.kill('SIGUSR1')
  const url = await waitFor(async () => inspectorUrl(), {
    timeoutMs: 10_000,
    intervalMs: 50,
    what: `${node.name}'s inspector`,
  })
  await new Promise<void>((resolve, reject) =>
    execFile(hopsdCommand().command, ['-e', GC_CLIENT, url], { timeout: 60_000 }, (err) =>
      err ? reject(new Error(`forced GC in ${node.name}: ${err.message}`)) : resolve(),
    ),
  )
}

/** RSS from /proc; heap used and external memory from the node's own /metrics (prom-client's defaults). */
async function memoryOf(node: LoopbackNode): Promise<Memory> {
  if (FORCE_GC) await forceGc(node)
  const text = await (await fetch(`${node.handle.url}/metrics`)).text()
  const metric = (name: string): number => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
    return m ? Number(m[1]) : NaN
  }
  return {
    rssBytes: rssOf(node.handle.pid),
    heapUsedBytes: metric('nodejs_heap_size_used_bytes'),
    heapTotalBytes: metric('nodejs_heap_size_total_bytes'),
    externalBytes: metric('nodejs_external_memory_bytes'),
    smaps: smapsOf(node.handle.pid),
  }
}

interface Disk {
  totalBytes: number
  /** The Raft LevelDB (log, hard state). */
  raftDbBytes: number
  /** The Raft snapshot files. */
  snapshotBytes: number
}

/** Bytes of the files under `dir` (apparent sizes), split into the Raft LevelDB, its snapshots, the rest. */
function diskOf(dir: string): Disk {
  const walk = (p: string): number => {
    let sum = 0
    for (const e of readdirSync(p, { withFileTypes: true })) {
      const q = join(p, e.name)
      if (e.isDirectory()) sum += walk(q)
      else if (e.isFile()) sum += statSync(q).size
    }
    return sum
  }
  const sizeOf = (p: string): number => {
    try {
      return walk(p)
    } catch {
      return 0
    }
  }
  return {
    totalBytes: sizeOf(dir),
    raftDbBytes: sizeOf(join(dir, 'raft')),
    snapshotBytes: sizeOf(join(dir, 'raft.snap')),
  }
}

const mib = (b: number) => round(b / MIB, 1)

/** Waits until every target accepts a small-file write (leader elected, fs served). */
async function waitReady(targets: readonly Target[]): Promise<void> {
  await Promise.all(
    targets.map((t, i) =>
      waitFor(
        async () =>
          (
            await send(
              t.agent,
              'PUT',
              filesUrl(t.url, `/scale-ready/n${i}`, { overwrite: 'true' }),
              Buffer.from('ok'),
            ).catch(() => undefined)
          )?.status === 201 || undefined,
        { timeoutMs: READY_TIMEOUT_MS, intervalMs: 200, what: `${t.url} to accept a small-file write` },
      ),
    ),
  )
}

interface ClusterDoc {
  leader: { id: string } | null
  learners: { id: string }[]
  voters: { id: string }[]
}

/**
 * Stops `node` (SIGTERM), starts it again on its data dir and times, from the spawn, /health (the
 * start-up resolved) and the first 200 of a linearizable read of `path` through it.
 */
async function timeRestart(
  cluster: LoopbackCluster,
  node: LoopbackNode,
  path: string,
  timeoutS: number,
): Promise<{ healthS: number; servingS: number }> {
  await node.handle.stop()
  const t0 = performance.now()
  let healthS = NaN
  const restarted = cluster.restart(node).then(() => (healthS = (performance.now() - t0) / 1000))
  const agent = new Agent({ keepAlive: false })
  try {
    await waitFor(
      async () =>
        (await send(agent, 'GET', filesUrl(`http://${node.http}`, path)).catch(() => undefined))?.status ===
          200 || undefined,
      { timeoutMs: timeoutS * 1000, intervalMs: 50, what: `${node.name} to serve ${path} after a restart` },
    )
    const servingS = (performance.now() - t0) / 1000
    await restarted
    return { healthS, servingS }
  } finally {
    agent.destroy()
  }
}

interface Settings {
  files: number
  clients: number
  windowS: number
  phaseTimeoutS: number
  catchupTimeoutS: number
}

/** One cluster of `nodes` nodes, every phase; rows into the report. */
async function measureCluster(
  report: BenchReport,
  dir: string,
  nodes: number,
  s: Settings,
  emptyVia: { value: EmptyVia | undefined },
): Promise<void> {
  const label = `${nodes} node${nodes > 1 ? 's' : ''}`
  const log = (m: string) => process.stdout.write(`fs-scale: ${label}: ${m}\n`)
  // zones z1..zN, every node joins all, --bootstrap-expect N, every role
  const cluster = await startCluster({ dir: join(dir, `c${nodes}`), nodes, env: benchDaemonEnv() })
  const agents: Agent[] = []
  try {
    const targets = cluster.handles.map((h) => {
      const agent = new Agent({ keepAlive: true, maxSockets: s.clients, maxFreeSockets: s.clients })
      agents.push(agent)
      return { url: h.url, agent }
    })
    await waitReady(targets)
    const pids = () => cluster.handles.map((h) => h.pid)
    const members = cluster.nodes.slice(0, nodes)
    const memRow = async (phase: string, files: number) =>
      Promise.all(
        members.map(async (n) => {
          const m = await memoryOf(n)
          const d = diskOf(n.dataDir)
          return {
            m,
            d,
            row: {
              cluster: label,
              node: n.name,
              phase,
              files,
              rssMiB: mib(m.rssBytes),
              heapUsedMiB: mib(m.heapUsedBytes),
              heapTotalMiB: mib(m.heapTotalBytes),
              externalMiB: mib(m.externalBytes),
              mallocBrkHeapMiB: mib(m.smaps.brkHeapBytes),
              anonMiB: mib(m.smaps.anonBytes),
              fileMappedMiB: mib(m.smaps.fileBytes),
              diskMiB: mib(d.totalBytes),
              raftDbMiB: mib(d.raftDbBytes),
              snapshotMiB: mib(d.snapshotBytes),
            },
          }
        }),
      )

    // Baseline: the idle node(s), and a restart with no files.
    const idle = await memRow('idle', 0)
    for (const x of idle) report.baseline.push(x.row)
    const restartNode = await pickRestartNode(cluster, members)
    const idleRestart = await timeRestart(cluster, restartNode, `/scale-ready/n0`, s.phaseTimeoutS)
    targets.forEach((t) => t.agent.destroy())
    log(
      `idle restart: /health ${round(idleRestart.healthS, 2)} s, serving ${round(idleRestart.servingS, 2)} s`,
    )
    report.baseline.push({
      cluster: label,
      node: restartNode.name,
      phase: 'restart, no files',
      healthS: round(idleRestart.healthS, 2),
      servingS: round(idleRestart.servingS, 2),
    })
    await waitReady(targets)

    // Which way makes empty files cheaper (first cluster only; the fill uses it).
    if (emptyVia.value === undefined) {
      const cmp: Record<EmptyVia, CreateRun> = {} as Record<EmptyVia, CreateRun>
      for (const via of ['native', 'webhdfs'] as const) {
        cmp[via] = await runCreates(targets, `/scale/empty-${via}`, {
          clients: s.clients,
          seconds: s.windowS / 2,
          pids: pids(),
          emptyVia: via,
          emptyOnly: true,
        })
        report.rows.push({
          cluster: label,
          op: via === 'native' ? 'empty files, native PUT' : 'empty files, WebHDFS CREATE (307 + PUT)',
          ...createFigures(cmp[via]),
        })
      }
      const cost = (r: CreateRun) =>
        r.cpuS !== undefined ? r.cpuS / Math.max(1, r.creates) : r.seconds / Math.max(1, r.creates)
      emptyVia.value = cost(cmp.native) <= cost(cmp.webhdfs) ? 'native' : 'webhdfs'
      log(
        `empty files: native ${createFigures(cmp.native).createsPerS}/s, webhdfs ${createFigures(cmp.webhdfs).createsPerS}/s: the fill uses ${emptyVia.value}`,
      )
    }
    const via = emptyVia.value

    // A warm-up of the same creates (not recorded): the node was just restarted, and a cold process
    // (JIT, connections) measured the empty namespace slower than the full one in a first run.
    const warmup = await runCreates(targets, '/scale/warmup', {
      clients: s.clients,
      seconds: s.windowS / 2,
      pids: pids(),
      emptyVia: via,
    })
    // Baseline: creates on the (nearly: the warm-up's files) empty namespace.
    const emptyWindow = await runCreates(targets, '/scale/window-empty', {
      clients: s.clients,
      seconds: s.windowS,
      pids: pids(),
      emptyVia: via,
    })
    const emptyFig = createFigures(emptyWindow)
    report.baseline.push({ cluster: label, op: `creates, empty namespace (${s.windowS} s)`, ...emptyFig })
    log(`empty namespace: ${emptyFig.createsPerS} creates/s`)

    // The fill.
    const fill = await runCreates(targets, '/scale/fill', {
      clients: s.clients,
      seconds: s.phaseTimeoutS,
      count: s.files,
      pids: pids(),
      emptyVia: via,
      progress: (done, el) =>
        log(
          `fill: ${done} files in ${round(el, 0)} s (RSS ${members.map((n) => mib(rssOf(n.handle.pid))).join('/')} MiB, load ${loadavg()[0]!.toFixed(1)})`,
        ),
    })
    const n = fill.creates + emptyWindow.creates + warmup.creates
    const split = sizeSplit(fill.creates)
    report.rows.push({
      cluster: label,
      op: `fill to N (${split.inline} × 4 KiB + ${split.empty} empty)`,
      ...createFigures(fill),
    })
    report.notes.push(`${label}: fill creates/s by tenth of N: ${fill.tenthsPerS.join(', ')}`)
    if (fill.creates < s.files)
      report.notes.push(
        `${label}: the fill stopped at --phase-timeout-s ${s.phaseTimeoutS} with ${fill.creates} of ${s.files} files: N is ${fill.creates}`,
      )

    // Creates at N.
    const atN = await runCreates(targets, '/scale/window-at-n', {
      clients: s.clients,
      seconds: s.windowS,
      pids: pids(),
      emptyVia: via,
    })
    const atNFig = createFigures(atN)
    report.rows.push({ cluster: label, op: `creates at N = ${fill.creates} (${s.windowS} s)`, ...atNFig })
    report.ratios.push({
      cluster: label,
      figure: 'createsPerS at N / empty namespace',
      ratio: round(atNFig.createsPerS / Math.max(1, emptyFig.createsPerS), 3),
      goal: `>= ${GOAL_CREATE_RATIO}`,
    })
    if (atNFig.cpuMsPerCreate !== undefined && emptyFig.cpuMsPerCreate !== undefined)
      report.ratios.push({
        cluster: label,
        figure: 'daemon CPU per create, at N / empty',
        ratio: round(atNFig.cpuMsPerCreate / emptyFig.cpuMsPerCreate, 3),
      })
    log(`at N: ${atNFig.createsPerS} creates/s`)

    // Memory and disk at N (files: every file made so far, windows included).
    const made = n + atN.creates
    const full = await memRow('at N', made)
    for (const [i, x] of full.entries()) {
      report.rows.push(x.row)
      report.rows.push(perFileRow(label, x.row.node, 'at N, per file', made, idle[i]!, x))
    }

    // Restart at N.
    const rNode = await pickRestartNode(cluster, members)
    const r = await timeRestart(cluster, rNode, fileAt('/scale/fill', 0).path, s.phaseTimeoutS)
    targets.forEach((t) => t.agent.destroy())
    log(`restart at N: /health ${round(r.healthS, 2)} s, serving ${round(r.servingS, 2)} s`)
    // Where the start's time went, as the restarted node reports it (benches run nodes at warn).
    const metrics = await (await fetch(`http://${rNode.http}/metrics`)).text()
    const sec = (name: string): string =>
      /^\S+ (\S+)/.exec(metrics.split('\n').find((l) => l.startsWith(`${name} `)) ?? '')?.[1] ?? '?'
    const part = `Raft storage load ${sec('hopsd_meta_start_seconds_load')} s, metadata store open ${sec('hopsd_meta_start_seconds_store_open')} s, snapshot check (or restore) ${sec('hopsd_meta_start_seconds_snapshot')} s`
    log(`restart at N: ${part}`)
    report.notes.push(`${label}: restart at N, in the node's start: ${part}`)
    report.rows.push({
      cluster: label,
      node: rNode.name,
      phase: `restart at N = ${made}`,
      healthS: round(r.healthS, 2),
      servingS: round(r.servingS, 2),
    })
    report.ratios.push({
      cluster: label,
      figure: 'restart to serving at N / no files',
      ratio: round(r.servingS / idleRestart.servingS, 2),
      servingS: round(r.servingS, 2),
      goal: `<= ${GOAL_RESTART_S} s`,
    })
    const ri = members.indexOf(rNode)
    const after = (await memRow('after restart', made))[ri]!
    report.rows.push(after.row)
    report.rows.push(perFileRow(label, rNode.name, 'after restart, per file', made, idle[ri]!, after))
    for (const [i, x] of full.entries())
      report.ratios.push({
        cluster: label,
        node: x.row.node,
        figure: 'RSS bytes per file at N (goal: <= 200 beyond a fixed cache)',
        ratio: round(perFileBytes(x.m.rssBytes, idle[i]!.m.rssBytes, made), 0),
        goal: GOAL_RSS_BYTES_PER_FILE,
      })

    // A new replica's catch-up (3 nodes and more).
    if (nodes >= 3) {
      await waitReady(targets)
      const marker = '/scale/catchup-marker'
      if (!(await create(targets[0]!, marker, Buffer.from('marker'), 'native')))
        throw new Error(`could not write ${marker}`)
      const t0 = performance.now()
      const [joiner] = await cluster.start([{ zone: `z${nodes + 1}`, roles: ['metadata'] }], {
        bootstrapExpect: nodes,
      })
      const healthS = (performance.now() - t0) / 1000
      const agent = new Agent({ keepAlive: true })
      agents.push(agent)
      let learnerS = NaN
      await waitFor(
        async () => {
          if (Number.isNaN(learnerS)) {
            const doc = await getJson<ClusterDoc>(`${targets[0]!.url}/api/v1/cluster`).catch(() => undefined)
            if (doc !== undefined && [...doc.learners, ...doc.voters].some((m) => m.id === joiner!.handle.id))
              learnerS = (performance.now() - t0) / 1000
          }
          const res = await send(agent, 'GET', filesUrl(joiner!.handle.url, marker, { stale: 'true' })).catch(
            () => undefined,
          )
          return res?.status === 200 || undefined
        },
        { timeoutMs: s.catchupTimeoutS * 1000, intervalMs: 100, what: `the new replica to hold ${marker}` },
      )
      const servingS = (performance.now() - t0) / 1000
      const jm = await memoryOf(joiner!)
      const jd = diskOf(joiner!.dataDir)
      log(
        `catch-up: /health ${round(healthS, 1)} s, member ${round(learnerS, 1)} s, holds the namespace ${round(servingS, 1)} s`,
      )
      report.rows.push({
        cluster: label,
        node: joiner!.name,
        phase: `new replica catch-up, N = ${made}`,
        healthS: round(healthS, 2),
        memberS: round(learnerS, 2),
        servingS: round(servingS, 2),
        rssMiB: mib(jm.rssBytes),
        heapUsedMiB: mib(jm.heapUsedBytes),
        externalMiB: mib(jm.externalBytes),
        diskMiB: mib(jd.totalBytes),
        snapshotMiB: mib(jd.snapshotBytes),
      })
    }
  } finally {
    for (const a of agents) a.destroy()
    await cluster.stop()
  }
}

function createFigures(r: CreateRun): {
  creates: number
  errors: number
  createsPerS: number
  p50Ms: number
  p99Ms: number
  cpuMsPerCreate?: number
} {
  const l = summarize(r.latenciesMs)
  return {
    creates: r.creates,
    errors: r.errors,
    createsPerS: round(r.creates / Math.max(1e-9, r.seconds), 0),
    p50Ms: l.p50Ms,
    p99Ms: l.p99Ms,
    ...(r.cpuS !== undefined && r.creates > 0
      ? { cpuMsPerCreate: round((1000 * r.cpuS) / r.creates, 3) }
      : {}),
  }
}

function perFileRow(
  cluster: string,
  node: string,
  phase: string,
  files: number,
  before: { m: Memory; d: Disk },
  after: { m: Memory; d: Disk },
): Record<string, string | number> {
  const per = (a: number, b: number) => round(perFileBytes(a, b, files), 0)
  return {
    cluster,
    node,
    phase,
    files,
    rssBytesPerFile: per(after.m.rssBytes, before.m.rssBytes),
    heapBytesPerFile: per(after.m.heapUsedBytes, before.m.heapUsedBytes),
    heapTotalBytesPerFile: per(after.m.heapTotalBytes, before.m.heapTotalBytes),
    externalBytesPerFile: per(after.m.externalBytes, before.m.externalBytes),
    mallocBrkHeapBytesPerFile: per(after.m.smaps.brkHeapBytes, before.m.smaps.brkHeapBytes),
    anonBytesPerFile: per(after.m.smaps.anonBytes, before.m.smaps.anonBytes),
    fileMappedBytesPerFile: per(after.m.smaps.fileBytes, before.m.smaps.fileBytes),
    diskBytesPerFile: per(after.d.totalBytes, before.d.totalBytes),
    raftDbBytesPerFile: per(after.d.raftDbBytes, before.d.raftDbBytes),
    snapshotBytesPerFile: per(after.d.snapshotBytes, before.d.snapshotBytes),
  }
}

/** The node to restart: the only one, or a follower (a leader restart also measures an election). */
async function pickRestartNode(
  cluster: LoopbackCluster,
  members: readonly LoopbackNode[],
): Promise<LoopbackNode> {
  if (members.length === 1) return members[0]!
  const doc = await waitFor(
    async () => {
      const d = await getJson<ClusterDoc>(`${members[0]!.handle.url}/api/v1/cluster`).catch(() => undefined)
      return d?.leader ? d : undefined
    },
    { timeoutMs: READY_TIMEOUT_MS, intervalMs: 200, what: 'a leader' },
  )
  return members.find((n) => n.handle.id !== doc.leader!.id) ?? members[0]!
}

const bench: Bench = async ({ quick, args }) => {
  const { values } = parseArgs({
    args,
    options: {
      files: { type: 'string' },
      nodes: { type: 'string' },
      clients: { type: 'string' },
      'window-s': { type: 'string' },
      'phase-timeout-s': { type: 'string' },
      'catchup-timeout-s': { type: 'string' },
    },
    strict: true,
  })
  const s: Settings = {
    files: Number(values.files ?? (quick ? 2_000 : 1_000_000)),
    clients: Number(values.clients ?? 64),
    windowS: Number(values['window-s'] ?? (quick ? 3 : 10)),
    phaseTimeoutS: Number(values['phase-timeout-s'] ?? 900),
    catchupTimeoutS: Number(values['catchup-timeout-s'] ?? 600),
  }
  const nodeCounts = (values.nodes ?? '1,3').split(',').map(Number)
  if (!Number.isInteger(s.files) || s.files < 1) throw new Error('--files takes a positive integer')
  if (!(s.clients >= 1 && s.clients <= 1024)) throw new Error('--clients takes 1..1024')
  if (!nodeCounts.every((n) => Number.isInteger(n) && n >= 1 && n <= 5))
    throw new Error('--nodes takes integers 1..5')
  if (!(s.windowS > 0 && s.phaseTimeoutS > 0 && s.catchupTimeoutS > 0))
    throw new Error('the -s options take positive seconds')
  const report = newReport('fs-scale', quick)
  const dir = makeTempDir('hopsd-bench-fs-scale-')
  const loads: number[] = []
  const sampler = setInterval(() => loads.push(loadavg()[0]!), 5_000)
  try {
    const emptyVia: { value: EmptyVia | undefined } = { value: undefined }
    for (const nodes of nodeCounts) await measureCluster(report, dir, nodes, s, emptyVia)
    report.notes.push(
      `--files ${s.files}: half ${INLINE_FILE_BYTES}-byte files (inline in the metadata), half empty, 1,000 per directory, interleaved; every create is one native PUT /api/v1/fs/files (one Raft command; empty files through ${emptyVia.value === 'webhdfs' ? 'WebHDFS CREATE, 307 + PUT' : 'the native PUT with no body'}, the cheaper of the two measured on the first cluster); ${s.clients} closed-loop clients over keep-alive node:http Agents, client k on node k mod N`,
      `files per file: (figure at N − figure idle) / every file made so far (windows included); RSS from /proc/PID/status VmRSS, heap used and external from the node's /metrics (nodejs_heap_size_used_bytes, nodejs_external_memory_bytes), heap total = V8's committed heap (nodejs_heap_size_total_bytes); RSS by kind of mapping from /proc/PID/smaps: mallocBrkHeap = the C allocator's main heap ([heap]), anon = anonymous mappings (V8's heap, other malloc arenas, mmap'd blocks, stacks), fileMapped = file-backed (binaries, libraries, LevelDB's mmap'd tables); ${FORCE_GC ? 'each reading after a full GC in the node (BENCH_FS_SCALE_GC=1, through its inspector)' : 'not after a forced GC, so garbage counts until V8 collects it (BENCH_FS_SCALE_GC=1 forces one before each reading)'}; the row after a restart holds only what the restarted node rebuilt`,
      'disk: apparent bytes of the files under the data dir; raftDb is <data-dir>/raft (LevelDB: the log, compacted at each snapshot), snapshot is <data-dir>/raft.snap (the latest snapshot: the whole namespace, one file)',
      'restart: SIGTERM, then a fresh `hopsd start` on the same data dir (under tsx, as every bench); healthS = spawn to /health (the modules started: the latest snapshot loaded into memory), servingS = spawn to the first 200 of a linearizable GET /api/v1/fs/files through that node (the log after the snapshot applied, a read barrier passed); on 3 nodes a follower is restarted',
      "catch-up: a 4th node (metadata role, zone z4) started against the 3 holding N files; memberS = spawn to being a learner in the leader's /api/v1/cluster (includes admission and its node certificate), servingS = spawn to its own replica answering a stale (local) read of a file written just before it started",
      `goals (issue 13): RSS per file <= ${GOAL_RSS_BYTES_PER_FILE} bytes beyond a fixed cache; restart to serving <= ${GOAL_RESTART_S} s; creates at N >= ${GOAL_CREATE_RATIO * 100} % of the empty namespace's`,
      `host load average (1 min) while the bench ran: min ${round(Math.min(...loads, loadavg()[0]!), 1)}, max ${round(Math.max(...loads, loadavg()[0]!), 1)}; the load generator runs in the bench process and shares the CPUs with every node`,
    )
  } finally {
    clearInterval(sampler)
    await stopAllNodes()
    removeTempDirs()
  }
  return report
}

export default bench
