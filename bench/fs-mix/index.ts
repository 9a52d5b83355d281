/**
 * bench/fs-mix: HopsFS's benchmark — the Spotify operation mix (mix.ts: read file 68.7 %, stat file
 * 13 %, list dir 8.5 %, stat dir 4 %, create 2.7 %, rename 1.3 %, delete 0.75 %, list file 0.5 %, chown,
 * setReplication, mkdir, chmod the rest) over files of 0 B to 32 KiB (mix.ts says which sizes and why),
 * 64 closed-loop clients over WebHDFS (webhdfs-load.ts), on a 3-node, 3-zone hopsd cluster (3 `hopsd
 * start` processes on loopback, zones z1..z3, every role) with the clients spread over the three nodes.
 *
 * Peer, in the same run with the same load generator and the same seed: a real HDFS — Hadoop 3.4's
 * MiniDFSCluster with 3 DataNodes and WebHDFS on loopback (hdfs.ts), all clients on its one NameNode
 * (HDFS has one active NameNode; data ops follow its 307 to a DataNode). When the peer cannot be made
 * (no mvn/JDK, no Maven Central), the notes say why and a single hopsd node is measured instead
 * (`--peer single` asks for that; `--peer off` measures hopsd alone).
 *
 * Each system: a namespace of `--dirs` × `--files-per-dir` files (default 40 × 80 = 3,200) written
 * first, a warm-up of the mix (`--warmup` s, not recorded), then `--seconds` of the mix in `--rounds`
 * windows (default 3) that alternate between the two systems — both run all along, so load from other
 * work on the host falls on both (a first version measured one after the other, and the ratio of ops/s
 * swung from 2.3 to 0.85 between two runs as the host's load average went from 13 to 24) — measured:
 * ops/s, p50/p99 per op, CPU seconds of the cluster's processes per 1,000 ops (and of the bench's own
 * client). The op choice is seeded (`--seed`, printed; random when not given).
 *
 * Usage: `npm run bench -- fs-mix [--quick] [--seconds 30] [--warmup 10] [--clients 64] [--dirs 40]
 *         [--files-per-dir 80] [--rounds 3] [--seed N] [--peer hdfs|single|off]`
 */
import { randomInt } from 'node:crypto'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { type Agent } from 'node:http'
import { parseArgs } from 'node:util'
import { makeTempDir, removeTempDirs, startCluster, stopAllNodes, waitFor } from '../../test/helpers/index.js'
import {
  cpuSecondsOf,
  daemonEnv,
  newReport,
  round,
  summarize,
  type Bench,
  type BenchRow,
} from '../harness.js'
import { ensureHdfs, startHdfs, type HdfsPeer } from './hdfs.js'
import { SPOTIFY_MIX, PARTS, type MixOp } from './mix.js'
import { newAgent, populate, runMix, type LoadTarget, type Namespace } from './webhdfs-load.js'

const READY_TIMEOUT_MS = 90_000

interface Settings {
  clients: number
  seconds: number
  warmupS: number
  dirs: number
  filesPerDir: number
  seed: number
  rounds: number
}

interface Measured {
  overall: BenchRow
  perOp: BenchRow[]
  errorSamples: string[]
}

/** A system under load: its target, its processes, its namespace and what its windows measured. */
interface System {
  readonly name: string
  readonly t: LoadTarget
  readonly pids: readonly number[]
  ns?: Namespace
  populateS: number
  seconds: number
  ops: number
  errors: number
  latenciesMs: Map<MixOp, number[]>
  errorsByOp: Map<MixOp, number>
  errorSamples: string[]
  /** Undefined once a window could not read the processes' CPU (no /proc). */
  clusterCpuS: number | undefined
  clientCpuS: number
}

function newSystem(name: string, t: LoadTarget, pids: readonly number[]): System {
  return {
    name,
    t,
    pids,
    populateS: 0,
    seconds: 0,
    ops: 0,
    errors: 0,
    latenciesMs: new Map(),
    errorsByOp: new Map(),
    errorSamples: [],
    clusterCpuS: 0,
    clientCpuS: 0,
  }
}

/** Waits until every URL answers a WebHDFS MKDIRS (leader elected, fs served on that node). */
async function waitWebHdfs(t: LoadTarget): Promise<void> {
  await Promise.all(
    t.urls.map((url, i) =>
      waitFor(
        async () => {
          const res = await fetch(`${url}/webhdfs/v1/mix-ready/n${i}?op=MKDIRS&user.name=${t.user}`, {
            method: 'PUT',
          }).catch(() => undefined)
          await res?.arrayBuffer()
          return res?.status === 200
        },
        { timeoutMs: READY_TIMEOUT_MS, intervalMs: 250, what: `${url} to answer WebHDFS MKDIRS` },
      ),
    ),
  )
}

/** Writes the namespace. */
async function populateSystem(sys: System, s: Settings): Promise<void> {
  const p0 = performance.now()
  sys.ns = await populate(sys.t, '/mix', s.dirs, s.filesPerDir, s.seed)
  sys.populateS = (performance.now() - p0) / 1000
  process.stdout.write(
    `fs-mix: ${sys.name}: ${s.dirs * s.filesPerDir} files written in ${round(sys.populateS, 1)} s\n`,
  )
}

/**
 * One measured window of `seconds`: window w draws from seed + 2 + w, so the run is fixed by --seed
 * and both systems get the same choices in their w-th window.
 */
async function measureWindow(sys: System, s: Settings, w: number, seconds: number): Promise<void> {
  const cpu0 = cpuSecondsOf(sys.pids)
  const own0 = process.cpuUsage()
  const r = await runMix(sys.t, sys.ns!, { clients: s.clients, seconds, seed: s.seed + 2 + w, tag: `m${w}` })
  const cpu1 = cpuSecondsOf(sys.pids)
  const own1 = process.cpuUsage(own0)
  sys.seconds += r.seconds
  sys.ops += r.ops
  sys.errors += r.errors
  for (const [op, l] of r.latenciesMs) sys.latenciesMs.set(op, [...(sys.latenciesMs.get(op) ?? []), ...l])
  for (const [op, n] of r.errorsByOp) sys.errorsByOp.set(op, (sys.errorsByOp.get(op) ?? 0) + n)
  sys.errorSamples.push(...r.errorSamples.slice(0, Math.max(0, 8 - sys.errorSamples.length)))
  sys.clusterCpuS =
    sys.clusterCpuS !== undefined && cpu0 !== undefined && cpu1 !== undefined
      ? sys.clusterCpuS + (cpu1 - cpu0)
      : undefined
  sys.clientCpuS += (own1.user + own1.system) / 1e6
  process.stdout.write(
    `fs-mix: ${sys.name}, window ${w + 1}/${s.rounds}: ${round(r.ops / r.seconds, 0)} ops/s, ${r.errors} errors\n`,
  )
}

/** Populated and warmed up; then `rounds` windows each, alternating which system goes first. */
async function measureAll(systems: readonly System[], s: Settings): Promise<void> {
  for (const sys of systems) await populateSystem(sys, s)
  // Warm-ups (not recorded) right before the windows, once every namespace is written.
  for (const sys of systems)
    await runMix(sys.t, sys.ns!, { clients: s.clients, seconds: s.warmupS, seed: s.seed + 1, tag: 'w' })
  const windowS = s.seconds / s.rounds
  for (let w = 0; w < s.rounds; w++) {
    const order = w % 2 === 0 ? systems : [...systems].reverse()
    for (const sys of order) await measureWindow(sys, s, w, windowS)
  }
}

function figures(sys: System, s: Settings): Measured {
  const all = summarize([...sys.latenciesMs.values()].flat())
  const perK = (cpuS: number) => round((1000 * cpuS) / Math.max(1, sys.ops), 3)
  const overall: BenchRow = {
    system: sys.name,
    op: 'all',
    clients: s.clients,
    ops: sys.ops,
    errors: sys.errors,
    opsPerS: round(sys.ops / sys.seconds, 0),
    p50Ms: all.p50Ms,
    p99Ms: all.p99Ms,
    ...(sys.clusterCpuS !== undefined ? { clusterCpuSPer1000Ops: perK(sys.clusterCpuS) } : {}),
    clientCpuSPer1000Ops: perK(sys.clientCpuS),
    populateFilesPerS: round((s.dirs * s.filesPerDir) / sys.populateS, 0),
  }
  const perOp = SPOTIFY_MIX.map(({ op }) => {
    const l = summarize(sys.latenciesMs.get(op) ?? [])
    return {
      system: sys.name,
      op,
      ops: l.count,
      errors: sys.errorsByOp.get(op) ?? 0,
      sharePct: round((100 * l.count) / Math.max(1, sys.ops), 2),
      // An op the short run never drew has no latency (blank, not NaN, in the table and the JSON).
      p50Ms: l.count > 0 ? l.p50Ms : '',
      p99Ms: l.count > 0 ? l.p99Ms : '',
    }
  })
  process.stdout.write(
    `fs-mix: ${sys.name}: ${overall.opsPerS} ops/s, p99 ${overall.p99Ms} ms, ${sys.errors} errors\n`,
  )
  return { overall, perOp, errorSamples: sys.errorSamples }
}

async function startHopsd(dir: string, nodes: number, agent: Agent): Promise<System> {
  // zones z1..zN, every node joins all, --bootstrap-expect N, every role (files ≤ 64 KiB stay inline)
  const cluster = await startCluster({ dir, nodes, env: daemonEnv() })
  const t: LoadTarget = { urls: cluster.handles.map((h) => h.url), user: 'hopsd', agent }
  await waitWebHdfs(t)
  return newSystem(
    `hopsd ${nodes}-node`,
    t,
    cluster.handles.map((h) => h.pid),
  )
}

const bench: Bench = async ({ quick, args }) => {
  const { values } = parseArgs({
    args,
    options: {
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      clients: { type: 'string' },
      dirs: { type: 'string' },
      'files-per-dir': { type: 'string' },
      seed: { type: 'string' },
      peer: { type: 'string' },
      rounds: { type: 'string' },
    },
    strict: true,
  })
  const s: Settings = {
    clients: Number(values.clients ?? (quick ? 16 : 64)),
    seconds: Number(values.seconds ?? (quick ? 5 : 30)),
    warmupS: Number(values.warmup ?? (quick ? 2 : 10)),
    dirs: Number(values.dirs ?? (quick ? 10 : 40)),
    filesPerDir: Number(values['files-per-dir'] ?? (quick ? 30 : 80)),
    seed: values.seed !== undefined ? Number(values.seed) : randomInt(2 ** 31),
    rounds: Number(values.rounds ?? (quick ? 1 : 3)),
  }
  const peer = values.peer ?? 'hdfs'
  if (!['hdfs', 'single', 'off'].includes(peer)) throw new Error('--peer takes hdfs, single or off')
  for (const [k, v] of Object.entries(s))
    if (!Number.isInteger(v) || v < (k === 'warmupS' ? 0 : 1))
      throw new Error(`--${k} must be a positive integer`)
  process.stdout.write(`fs-mix: seed ${s.seed} (rerun the same choices with --seed ${s.seed})\n`)
  const report = newReport('fs-mix', quick)
  const dir = makeTempDir('hopsd-bench-fs-mix-')
  const errorSamples: string[] = []
  const agent = newAgent(s.clients * 2)
  let hdfs: HdfsPeer | undefined
  try {
    const h3 = await startHopsd(join(dir, 'hopsd3'), 3, agent)
    let peerSys: System | undefined
    let peerWhat = ''
    if (peer === 'hdfs') {
      const have = await ensureHdfs()
      if (!have.ok)
        report.notes.push(`HDFS peer not measured: ${have.why}; a single hopsd node is the baseline instead`)
      else
        try {
          hdfs = await startHdfs(have.classpath, join(dir, 'hdfs'), 3)
          const t: LoadTarget = { urls: [hdfs.url], user: hdfs.user, agent }
          await waitWebHdfs(t)
          peerSys = newSystem(`HDFS ${hdfs.version} (MiniDFSCluster, 3 DN)`, t, [hdfs.pid])
          peerWhat = `HDFS ${hdfs.version}: MiniDFSCluster (NameNode + 3 DataNodes in one JVM, -Xmx2g), WebHDFS on loopback, replication 3; all clients on the one NameNode, data ops follow its 307 to a DataNode; its CPU is the JVM's; both clusters run for the whole measurement and the measured windows alternate (hopsd, HDFS, HDFS, hopsd, ...), so load from others on the host falls on both`
        } catch (err) {
          await hdfs?.stop()
          hdfs = undefined
          report.notes.push(
            `HDFS peer failed: ${err instanceof Error ? err.message : String(err)}; a single hopsd node is the baseline instead`,
          )
        }
    }
    if (peerSys !== undefined) await measureAll([h3, peerSys], s)
    else await measureAll([h3], s)
    const h = figures(h3, s)
    report.rows.push(h.overall, ...h.perOp)
    errorSamples.push(...h.errorSamples.map((e) => `hopsd: ${e}`))
    if (peerSys === undefined && peer !== 'off') {
      // One cluster at a time (startCluster's lock): the single node runs after the 3-node cluster stops.
      await stopAllNodes()
      peerSys = await startHopsd(join(dir, 'hopsd1'), 1, agent)
      await measureAll([peerSys], s)
      peerWhat =
        'hopsd single node (--bootstrap-expect 1): the same mix without replication or forwarding, measured after the 3-node cluster (not interleaved)'
    }
    const base = peerSys !== undefined ? figures(peerSys, s) : undefined
    if (base !== undefined) {
      report.baseline.push(base.overall, ...base.perOp)
      errorSamples.push(...base.errorSamples.map((e) => `baseline: ${e}`))
      const ratio = (a: unknown, b: unknown) => round(Number(a) / Math.max(1e-9, Number(b)), 3)
      report.ratios.push({
        compared: `${h.overall['system']} / ${base.overall['system']}`,
        op: 'all',
        opsPerS: ratio(h.overall['opsPerS'], base.overall['opsPerS']),
        p50Ms: ratio(h.overall['p50Ms'], base.overall['p50Ms']),
        p99Ms: ratio(h.overall['p99Ms'], base.overall['p99Ms']),
        ...(h.overall['clusterCpuSPer1000Ops'] !== undefined &&
        base.overall['clusterCpuSPer1000Ops'] !== undefined
          ? {
              clusterCpuSPer1000Ops: ratio(
                h.overall['clusterCpuSPer1000Ops'],
                base.overall['clusterCpuSPer1000Ops'],
              ),
            }
          : {}),
      })
      for (const row of h.perOp) {
        const b = base.perOp.find((x) => x['op'] === row['op'])!
        if (Number(row['ops']) === 0 || Number(b['ops']) === 0) continue
        report.ratios.push({
          compared: `${h.overall['system']} / ${base.overall['system']}`,
          op: row['op']!,
          p50Ms: ratio(row['p50Ms'], b['p50Ms']),
          p99Ms: ratio(row['p99Ms'], b['p99Ms']),
        })
      }
    }
    report.notes.push(
      `seed ${s.seed}; ${s.clients} closed-loop clients; ${s.dirs} × ${s.filesPerDir} files written first, then ${s.warmupS} s warm-up (not recorded), then ${s.seconds} s measured in ${s.rounds} windows, per system`,
      `op mix (parts per million): ${SPOTIFY_MIX.map((r) => `${r.op} ${r.parts}`).join(', ')} of ${PARTS}; file sizes 0..32 KiB (bench/fs-mix/mix.ts)`,
      'hopsd: 3 `hopsd start` processes on loopback, zones z1..z3, every role, HOPSD_LOG_LEVEL=warn, run from the sources under tsx; client k on node k mod 3; files ≤ 64 KiB are inline (kept in the metadata)',
      ...(peerWhat ? [`baseline: ${peerWhat}`] : []),
      'every request over WebHDFS (node:http keep-alive, user.name = the system superuser); CREATE in two steps (307), OPEN follows a 307; every read checks the byte count against what was written',
      'clusterCpuSPer1000Ops: user + system CPU of the cluster processes (from /proc) over the measured window per 1,000 completed ops; clientCpuSPer1000Ops: the bench process (the load generator shares the CPUs with the cluster)',
      `load average at the end: ${loadavg()
        .map((l) => round(l, 2))
        .join(' ')} (the start's is in host.loadAvg)`,
      ...(errorSamples.length > 0 ? [`first errors: ${errorSamples.slice(0, 6).join(' | ')}`] : []),
    )
  } finally {
    agent.destroy()
    await hdfs?.stop()
    await stopAllNodes()
    removeTempDirs()
  }
  return report
}

export default bench
