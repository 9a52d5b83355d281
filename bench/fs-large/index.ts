/**
 * bench/fs-large: write and read throughput of one large file (1 GiB; --quick 128 MiB) with
 * replication 3 on a 3-node loopback cluster (metadata + datanode, zones z1..z3), through WebHDFS
 * (CREATE step one → 307 to a datanode → the body streamed into the block pipeline; OPEN streamed from
 * the replicas). Baseline, measured in the same run: the same bytes written to three local files with
 * fsync, and read back. Goals (issue 13): writes ≥ 80 % of the baseline at ≤ 20 ms of cluster CPU per
 * MiB, reads ≥ 500 MiB/s. Runs once per data plane (`--data-plane libp2p,tls`, both by default): the
 * old transport and the new one in the same run.
 */
import { randomBytes } from 'node:crypto'
import { open } from 'node:fs/promises'
import { once } from 'node:events'
import { get, request } from 'node:http'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { makeTempDir, removeTempDirs, startCluster, stopAllNodes, waitFor } from '../../test/helpers/index.js'
import { cpuSecondsOf, daemonEnv, newReport, round, type Bench } from '../harness.js'

const USER = 'hopsd'
const MIB = 1024 * 1024
const PIECE_BYTES = 4 * MIB

/** The same bytes, generated piece by piece (one random piece repeated with its index stamped in). */
function* pieces(total: number, seed: Buffer): Generator<Buffer> {
  for (let off = 0, i = 0; off < total; off += PIECE_BYTES, i++) {
    const p = Buffer.from(seed.subarray(0, Math.min(PIECE_BYTES, total - off)))
    p.writeUInt32LE(i, 0)
    yield p
  }
}

async function baseline(
  dir: string,
  total: number,
  seed: Buffer,
): Promise<{ writeMiBps: number; readMiBps: number }> {
  const paths = [0, 1, 2].map((i) => join(dir, `copy${i}`))
  const t0 = performance.now()
  const fhs = await Promise.all(paths.map((p) => open(p, 'w')))
  for (const p of pieces(total, seed)) await Promise.all(fhs.map((fh) => fh.write(p)))
  await Promise.all(fhs.map((fh) => fh.sync()))
  await Promise.all(fhs.map((fh) => fh.close()))
  const writeS = (performance.now() - t0) / 1000
  const t1 = performance.now()
  const fh = await open(paths[0]!, 'r')
  const buf = Buffer.allocUnsafe(PIECE_BYTES)
  let read = 0
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, read)
    if (bytesRead === 0) break
    read += bytesRead
  }
  await fh.close()
  const readS = (performance.now() - t1) / 1000
  return { writeMiBps: total / MIB / writeS, readMiBps: read / MIB / readS }
}

/**
 * The client side uses node:http, not fetch: undici's web streams cost the 2-core host more CPU per
 * byte than the daemon's own read path (fetch read the same OPEN at roughly half curl's rate).
 */
async function upload(
  location: string,
  total: number,
  body: Iterable<Buffer>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      location,
      { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': total } },
      (res) => {
        let text = ''
        res.setEncoding('utf8').on('data', (d: string) => (text += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
      },
    )
    req.on('error', reject)
    void (async () => {
      for (const piece of body) {
        if (!req.write(piece)) await once(req, 'drain')
      }
      req.end()
    })().catch(reject)
  })
}

/** GETs `url` (following one redirect), counting the bytes of the body. */
async function download(url: string, redirects = 1): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      const location = res.headers.location
      if (res.statusCode === 307 && location !== undefined && redirects > 0) {
        res.resume()
        download(location, redirects - 1).then(resolve, reject)
        return
      }
      if (res.statusCode !== 200) {
        res.resume()
        reject(new Error(`OPEN answered ${res.statusCode}`))
        return
      }
      let got = 0
      res.on('data', (c: Buffer) => (got += c.length))
      res.on('end', () => resolve(got))
      res.on('error', reject)
    }).on('error', reject)
  })
}

interface Phase {
  mibPerS: number
  daemonCpuMsPerMiB: string
  /** CPU seconds of the three daemons together per GiB of the file. */
  clusterCpuSPerGiB: number
  clientCpuMsPerMiB: string
}

/**
 * Starts a 3-node cluster with block streams on `dataPlane`, writes the file through WebHDFS and reads
 * it back, and stops the cluster: throughput and CPU of each phase.
 */
async function measure(
  dir: string,
  dataPlane: 'tls' | 'libp2p',
  total: number,
  seed: Buffer,
): Promise<{ write: Phase; read: Phase }> {
  try {
    // zones z1..z3, every node joins all, --bootstrap-expect 3
    const cluster = await startCluster({
      dir: join(dir, `cluster-${dataPlane}`),
      nodes: 3,
      roles: ['metadata', 'datanode'],
      env: daemonEnv(),
      extraArgs: ['--data-plane', dataPlane],
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
    const cpuOf = (): { daemons: (number | undefined)[]; client: number } => {
      const own = process.cpuUsage()
      return { daemons: pids.map((pid) => cpuSecondsOf([pid])), client: (own.user + own.system) / 1e6 }
    }
    const cpuW0 = cpuOf()
    const t0 = performance.now()
    const s1 = await fetch(`${url}/webhdfs/v1/bench/large.bin?op=CREATE&overwrite=true&user.name=${USER}`, {
      method: 'PUT',
      redirect: 'manual',
    })
    const created = await upload(s1.headers.get('location')!, total, pieces(total, seed))
    if (created.status !== 201) throw new Error(`CREATE answered ${created.status}: ${created.body}`)
    const writeS = (performance.now() - t0) / 1000
    const cpuW1 = cpuOf()
    const t1 = performance.now()
    const got = await download(`${url}/webhdfs/v1/bench/large.bin?op=OPEN&user.name=${USER}`)
    const readS = (performance.now() - t1) / 1000
    const cpuR1 = cpuOf()
    if (got !== total) throw new Error(`OPEN returned ${got} of ${total} bytes`)
    const streams = await dataPlaneStreams(cluster.handles.map((h) => h.url))
    if (dataPlane === 'tls' && (streams.tls === 0 || streams.libp2p > 0))
      throw new Error(`the tls run moved blocks over libp2p (${JSON.stringify(streams)})`)
    /** CPU of each daemon (node1/node2/…) and of the client between two samples, per MiB. */
    const phase = (a: ReturnType<typeof cpuOf>, b: ReturnType<typeof cpuOf>, seconds: number): Phase => {
      const per = a.daemons.map((x, i) => {
        const y = b.daemons[i]
        return x === undefined || y === undefined ? undefined : y - x
      })
      return {
        mibPerS: round(total / MIB / seconds, 1),
        daemonCpuMsPerMiB: per
          .map((d) => (d === undefined ? '?' : String(round((1000 * d * MIB) / total, 1))))
          .join('/'),
        clusterCpuSPerGiB: round((per.reduce<number>((sum, d) => sum + (d ?? 0), 0) * 1024 * MIB) / total, 1),
        clientCpuMsPerMiB: String(round((1000 * (b.client - a.client) * MIB) / total, 1)),
      }
    }
    return { write: phase(cpuW0, cpuW1, writeS), read: phase(cpuW1, cpuR1, readS) }
  } finally {
    await stopAllNodes()
  }
}

/** Block streams the nodes opened, by transport (hopsd_dataplane_streams_total, direction out). */
async function dataPlaneStreams(urls: readonly string[]): Promise<{ tls: number; libp2p: number }> {
  const out = { tls: 0, libp2p: 0 }
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text()
    for (const m of text.matchAll(
      /^hopsd_dataplane_streams_total\{transport="(\w+)",direction="out"\} (\d+)$/gm,
    ))
      out[m[1] as 'tls' | 'libp2p'] += Number(m[2])
  }
  return out
}

const bench: Bench = async ({ quick, args }) => {
  const { values } = parseArgs({
    args,
    options: { mib: { type: 'string' }, 'data-plane': { type: 'string' } },
    strict: true,
  })
  const total = Number(values.mib ?? (quick ? 128 : 1024)) * MIB
  const planes = (values['data-plane'] ?? 'libp2p,tls').split(',') as ('tls' | 'libp2p')[]
  const report = newReport('fs-large', quick)
  const dir = makeTempDir('hopsd-bench-fs-large-')
  const seed = randomBytes(PIECE_BYTES)
  try {
    const runs: Partial<Record<'tls' | 'libp2p', { write: Phase; read: Phase }>> = {}
    for (const plane of planes) {
      const r = await measure(dir, plane, total, seed)
      runs[plane] = r
      report.rows.push({ op: `write (replication 3), ${plane}`, mib: total / MIB, ...r.write })
      report.rows.push({ op: `read, ${plane}`, mib: total / MIB, ...r.read })
    }
    const base = await baseline(dir, total, seed)
    report.baseline.push({
      op: 'write 3 local files + fsync',
      mib: total / MIB,
      mibPerS: round(base.writeMiBps, 1),
    })
    report.baseline.push({ op: 'read 1 local file', mib: total / MIB, mibPerS: round(base.readMiBps, 1) })
    for (const plane of planes) {
      const r = runs[plane]!
      report.ratios.push({
        op: `write, ${plane}`,
        ratio: round(r.write.mibPerS / base.writeMiBps, 2),
        goal: 0.8,
      })
      report.ratios.push({ op: `read, ${plane} (MiB/s)`, ratio: r.read.mibPerS, goal: 500 })
    }
    if (runs.tls !== undefined && runs.libp2p !== undefined) {
      report.ratios.push({
        op: 'write MiB/s, tls / libp2p',
        ratio: round(runs.tls.write.mibPerS / runs.libp2p.write.mibPerS, 2),
      })
      report.ratios.push({
        op: 'write cluster CPU, tls / libp2p',
        ratio: round(runs.tls.write.clusterCpuSPerGiB / runs.libp2p.write.clusterCpuSPerGiB, 2),
      })
    }
    report.notes.push(
      'one cluster per data plane (--data-plane libp2p: block streams over libp2p pnet+Noise+Yamux; tls: direct TLS 1.3 between the nodes), one after the other in the same run',
      'the client uses node:http (one connection each way); the body is streamed with backpressure',
      'one client, WebHDFS through node 1 (a datanode: it is the first replica, then one per other zone); 128 MiB blocks; the baseline runs after the clusters stopped',
      'the baseline read comes from the page cache as the cluster read may too (files just written)',
      'daemonCpuMsPerMiB: user + system CPU of node1/node2/node3 during the phase (from /proc) per MiB of the file; clusterCpuSPerGiB: their sum per GiB (goal for the write: ≤ 20 ms/MiB = 20.5 s/GiB); clientCpuMsPerMiB: the bench process',
    )
  } finally {
    await stopAllNodes()
    removeTempDirs()
  }
  return report
}

export default bench
