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
 * first, a warm-up of the mix (`--warmup` s, not recorded), then `--seconds` of the mix, measured:
 * ops/s, p50/p99 per op, CPU seconds of the cluster's processes per 1,000 ops (and of the bench's own
 * client). The op choice is seeded (`--seed`, printed; random when not given).
 *
 * Usage: `npm run bench -- fs-mix [--quick] [--seconds 30] [--warmup 10] [--clients 64] [--dirs 40]
 *         [--files-per-dir 80] [--seed N] [--peer hdfs|single|off]`
 */
import { randomInt } from 'node:crypto'
import { loadavg } from 'node:os'
import { join } from 'node:path'
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
import { SPOTIFY_MIX, PARTS } from './mix.js'
import { newAgent, populate, runMix, type LoadTarget } from './webhdfs-load.js'

const READY_TIMEOUT_MS = 90_000

interface Settings {
  clients: number
  seconds: number
  warmupS: number
  dirs: number
  filesPerDir: number
  seed: number
}

interface Measured {
  overall: BenchRow
  perOp: BenchRow[]
  errorSamples: string[]
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

/** Populate, warm up, measure: the figures of one system. */
async function measure(
  system: string,
  t: LoadTarget,
  pids: readonly number[],
  s: Settings,
): Promise<Measured> {
  const p0 = performance.now()
  const ns = await populate(t, '/mix', s.dirs, s.filesPerDir, s.seed)
  const populateS = (performance.now() - p0) / 1000
  process.stdout.write(
    `fs-mix: ${system}: ${s.dirs * s.filesPerDir} files written in ${round(populateS, 1)} s\n`,
  )
  await runMix(t, ns, { clients: s.clients, seconds: s.warmupS, seed: s.seed + 2, tag: 'w' })
  const cpu0 = cpuSecondsOf(pids)
  const own0 = process.cpuUsage()
  const r = await runMix(t, ns, { clients: s.clients, seconds: s.seconds, seed: s.seed, tag: 'm' })
  const cpu1 = cpuSecondsOf(pids)
  const own1 = process.cpuUsage(own0)
  const all = summarize([...r.latenciesMs.values()].flat())
  const perK = (cpuS: number) => round((1000 * cpuS) / Math.max(1, r.ops), 3)
  const overall: BenchRow = {
    system,
    op: 'all',
    clients: s.clients,
    ops: r.ops,
    errors: r.errors,
    opsPerS: round(r.ops / r.seconds, 0),
    p50Ms: all.p50Ms,
    p99Ms: all.p99Ms,
    ...(cpu0 !== undefined && cpu1 !== undefined ? { clusterCpuSPer1000Ops: perK(cpu1 - cpu0) } : {}),
    clientCpuSPer1000Ops: perK((own1.user + own1.system) / 1e6),
    populateFilesPerS: round((s.dirs * s.filesPerDir) / populateS, 0),
  }
  const perOp = SPOTIFY_MIX.map(({ op }) => {
    const l = summarize(r.latenciesMs.get(op) ?? [])
    return {
      system,
      op,
      ops: l.count,
      errors: r.errorsByOp.get(op) ?? 0,
      sharePct: round((100 * l.count) / Math.max(1, r.ops), 2),
      // An op the short run never drew has no latency (blank, not NaN, in the table and the JSON).
      p50Ms: l.count > 0 ? l.p50Ms : '',
      p99Ms: l.count > 0 ? l.p99Ms : '',
    }
  })
  process.stdout.write(
    `fs-mix: ${system}: ${overall.opsPerS} ops/s, p99 ${overall.p99Ms} ms, ${r.errors} errors\n`,
  )
  return { overall, perOp, errorSamples: r.errorSamples }
}

async function measureHopsd(dir: string, nodes: number, s: Settings): Promise<Measured> {
  const agent = newAgent(s.clients * 2)
  try {
    // zones z1..zN, every node joins all, --bootstrap-expect N, every role (files ≤ 64 KiB stay inline)
    const cluster = await startCluster({ dir, nodes, env: daemonEnv() })
    const t: LoadTarget = { urls: cluster.handles.map((h) => h.url), user: 'hopsd', agent }
    await waitWebHdfs(t)
    return await measure(
      `hopsd ${nodes}-node`,
      t,
      cluster.handles.map((h) => h.pid),
      s,
    )
  } finally {
    agent.destroy()
    await stopAllNodes()
  }
}

async function measureHdfs(
  dir: string,
  classpath: string,
  s: Settings,
): Promise<{ m: Measured; version: string }> {
  const agent = newAgent(s.clients * 2)
  let peer: HdfsPeer | undefined
  try {
    peer = await startHdfs(classpath, dir, 3)
    const t: LoadTarget = { urls: [peer.url], user: peer.user, agent }
    await waitWebHdfs(t)
    return {
      m: await measure(`HDFS ${peer.version} (MiniDFSCluster, 3 DN)`, t, [peer.pid], s),
      version: peer.version,
    }
  } finally {
    agent.destroy()
    await peer?.stop()
  }
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
  try {
    const h = await measureHopsd(join(dir, 'hopsd3'), 3, s)
    report.rows.push(h.overall, ...h.perOp)
    errorSamples.push(...h.errorSamples.map((e) => `hopsd: ${e}`))

    let base: Measured | undefined
    let peerWhat = ''
    if (peer === 'hdfs') {
      const have = await ensureHdfs()
      if (!have.ok)
        report.notes.push(`HDFS peer not measured: ${have.why}; a single hopsd node is the baseline instead`)
      else
        try {
          const r = await measureHdfs(join(dir, 'hdfs'), have.classpath, s)
          base = r.m
          peerWhat = `HDFS ${r.version}: MiniDFSCluster (NameNode + 3 DataNodes in one JVM, -Xmx2g), WebHDFS on loopback, replication 3; all clients on the one NameNode, data ops follow its 307 to a DataNode; its CPU is the JVM's`
        } catch (err) {
          report.notes.push(
            `HDFS peer failed: ${err instanceof Error ? err.message : String(err)}; a single hopsd node is the baseline instead`,
          )
        }
    }
    if (base === undefined && peer !== 'off') {
      base = await measureHopsd(join(dir, 'hopsd1'), 1, s)
      peerWhat = 'hopsd single node (--bootstrap-expect 1): the same mix without replication or forwarding'
    }
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
      `seed ${s.seed}; ${s.clients} closed-loop clients; ${s.dirs} × ${s.filesPerDir} files written first, then ${s.warmupS} s warm-up (not recorded), then ${s.seconds} s measured, per system`,
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
    await stopAllNodes()
    removeTempDirs()
  }
  return report
}

export default bench
