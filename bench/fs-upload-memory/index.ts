/**
 * bench/fs-upload-memory: the memory a datanode holds while it takes uploads. Peak RSS above idle of
 * the datanode that receives the bodies (node 1 of a 3-node cluster, metadata + datanode in zones
 * z1..z3, replication 3), while 8 uploads of 300 MB (--quick: 64 MB; --mb N) stream into it at once,
 * each through WebHDFS CREATE (307 to the datanode, the body into the block pipeline). Baseline, in the
 * same run: one upload alone. Goal: the 8 uploads under 256 MiB above idle (memory per upload is its
 * in-flight window, not a block). Also CPU ms per MiB of every daemon.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { makeTempDir, removeTempDirs, startCluster, stopAllNodes, waitFor } from '../../test/helpers/index.js'
import { cpuSecondsOf, daemonEnv, newReport, round, type Bench } from '../harness.js'

const USER = 'hopsd'
const MB = 1_000_000
const MIB = 1024 * 1024
const PIECE_BYTES = MIB

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : 0
}

/** Samples the RSS of `pid` every 50 ms until stopped; the peak. */
function rssPeak(pid: number): { stop(): number } {
  let peak = rssBytes(pid)
  const timer = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 50)
  return {
    stop() {
      clearInterval(timer)
      return Math.max(peak, rssBytes(pid))
    },
  }
}

async function upload(location: string, total: number, seed: Buffer): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const req = request(
      location,
      { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': total } },
      (res) => {
        let text = ''
        res.setEncoding('utf8').on('data', (d: string) => (text += d))
        res.on('end', () =>
          res.statusCode === 201
            ? resolve()
            : reject(new Error(`CREATE answered ${res.statusCode}: ${text}`)),
        )
      },
    )
    req.on('error', reject)
    void (async () => {
      for (let off = 0; off < total; off += PIECE_BYTES) {
        if (!req.write(seed.subarray(0, Math.min(PIECE_BYTES, total - off)))) await once(req, 'drain')
      }
      req.end()
    })().catch(reject)
  })
}

const bench: Bench = async ({ quick, args }) => {
  const { values } = parseArgs({ args, options: { mb: { type: 'string' } }, strict: true })
  const total = Number(values.mb ?? (quick ? 64 : 300)) * MB
  const report = newReport('fs-upload-memory', quick)
  const dir = makeTempDir('hopsd-bench-upload-mem-')
  const seed = randomBytes(PIECE_BYTES)
  try {
    const cluster = await startCluster({
      dir: join(dir, 'cluster'),
      nodes: 3,
      roles: ['metadata', 'datanode'],
      env: daemonEnv(),
    })
    const url = cluster.handles[0]!.url
    await waitFor(
      async () => {
        const h = (await (await fetch(`${url}/api/v1/fs/health`)).json()) as {
          datanodes: { live: boolean }[]
        }
        return h.datanodes.filter((d) => d.live).length === 3
      },
      { timeoutMs: 90_000, intervalMs: 200, what: 'three live datanodes' },
    )
    const pids = cluster.handles.map((h) => h.pid)
    const dn = pids[0]!
    let n = 0
    const run = async (count: number): Promise<Record<string, number | string>> => {
      // Warm up (a first small upload) and settle: idle is the RSS before this round.
      await Promise.all(
        Array.from({ length: count }, async () => {
          const loc = await location(url, `/bench/w${n++}`)
          await upload(loc, MIB, seed)
        }),
      )
      global.gc?.()
      const idle = rssBytes(dn)
      const locations = await Promise.all(
        Array.from({ length: count }, () => location(url, `/bench/u${n++}`)),
      )
      const cpu0 = pids.map((p) => cpuSecondsOf([p]) ?? 0)
      const sampler = rssPeak(dn)
      const t0 = performance.now()
      await Promise.all(locations.map((loc) => upload(loc, total, seed)))
      const s = (performance.now() - t0) / 1000
      const peak = sampler.stop()
      const cpu1 = pids.map((p) => cpuSecondsOf([p]) ?? 0)
      const mib = (count * total) / MIB
      return {
        uploads: count,
        mbEach: total / MB,
        idleRssMiB: round(idle / MIB, 1),
        peakRssMiB: round(peak / MIB, 1),
        peakAboveIdleMiB: round((peak - idle) / MIB, 1),
        mibPerS: round(mib / s, 1),
        daemonCpuMsPerMiB: cpu1.map((c, i) => round((1000 * (c - cpu0[i]!)) / mib, 1)).join('/'),
      }
    }
    const one = await run(1)
    const eight = await run(8)
    report.baseline.push({ target: 'one upload alone', ...one })
    report.rows.push({ target: '8 uploads at once', ...eight })
    report.ratios.push({
      figure: 'peakAboveIdleMiB',
      ratio: round(Number(eight.peakAboveIdleMiB) / Math.max(1, Number(one.peakAboveIdleMiB)), 2),
      goal: '8 uploads < 256 MiB above idle',
    })
    report.notes.push(
      'RSS of node 1 (the datanode every Location points at: first replica of each block) from /proc, sampled every 50 ms',
      'replication 3, 128 MiB blocks; each upload one node:http PUT with Content-Length, streamed with backpressure',
      'daemonCpuMsPerMiB: user + system CPU of node1/node2/node3 during the uploads per MiB uploaded',
    )
  } finally {
    await stopAllNodes()
    removeTempDirs()
  }
  return report
}

async function location(url: string, path: string): Promise<string> {
  const s1 = await fetch(`${url}/webhdfs/v1${path}?op=CREATE&overwrite=true&user.name=${USER}`, {
    method: 'PUT',
    redirect: 'manual',
  })
  const loc = s1.headers.get('location')
  if (s1.status !== 307 || loc === null) throw new Error(`step one answered ${s1.status}`)
  return loc
}

export default bench
