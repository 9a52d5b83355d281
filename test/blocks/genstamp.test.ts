// Appends, truncates and concats of files in blocks on a 3-node cluster (metadata + datanode in zones
// z1..z3, replication 3), and generation stamps: an append continues the partial last block under a new
// stamp on its replicas; a replica left at an older stamp (its node was down while the block moved on)
// is never counted or served, and is deleted when its node returns; a truncate inside a block gives the
// replicas a new stamp and length; block locations name every live replica.
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeTempDir, removeTempDirs, waitFor } from '../helpers/index.js'
import {
  blocksOf,
  MIB,
  pseudoRandom,
  replicaFile,
  startBlockCluster,
  SU,
  webhdfsCreate,
  webhdfsOpen,
  type BCluster,
  type BNode,
} from './cluster.js'

let cluster: BCluster
const run = promisify(execFile)

beforeAll(async () => {
  cluster = await startBlockCluster({ metadata: 3 })
}, 240_000)

afterAll(async () => {
  await cluster?.stop()
  removeTempDirs()
})

async function append(n: BNode, path: string, data: Uint8Array): Promise<Response> {
  const s1 = await fetch(`${n.handle.url}/webhdfs/v1${path}?op=APPEND&user.name=${SU}`, {
    method: 'POST',
    redirect: 'manual',
  })
  expect(s1.status).toBe(307)
  return fetch(s1.headers.get('location')!, { method: 'POST', body: data })
}

/** The replica files of block `id` on node `n` (any stamp). */
function replicaFiles(n: BNode, id: number): string[] {
  const dir = join(n.dataDir, 'blocks', 'finalized', String(id % 64))
  if (!existsSync(dir)) return []
  return readdirSync(dir).filter((f) => f.startsWith(`blk_${id}_`) && !f.endsWith('.crc'))
}

describe('appends, truncates and generation stamps', () => {
  it('an append continues the partial last block under a new stamp on every replica', async () => {
    const [n1, n2] = cluster.nodes
    const a = pseudoRandom(MIB + MIB / 2, 1)
    expect((await webhdfsCreate(n1!, '/gs/a.bin', a, `&blocksize=${MIB}`)).status).toBe(201)
    const before = await blocksOf(n1!, '/gs/a.bin')
    expect(before.blocks.map((b) => b.length)).toEqual([MIB, MIB / 2])
    const b = pseudoRandom(300_000, 2)
    expect((await append(n2!, '/gs/a.bin', b)).status).toBe(200)
    const after = await blocksOf(n1!, '/gs/a.bin')
    expect(after.blocks.map((x) => x.length)).toEqual([MIB, MIB / 2 + 300_000])
    const last = after.blocks[1]!
    expect(last.id).toBe(before.blocks[1]!.id)
    expect(last.genStamp).toBeGreaterThan(before.blocks[1]!.genStamp)
    expect(last.replicas).toHaveLength(3)
    for (const n of cluster.nodes) {
      expect(replicaFiles(n, last.id), n.name).toEqual([`blk_${last.id}_${last.genStamp}`])
      expect((await webhdfsOpen(n, '/gs/a.bin')).body.equals(Buffer.concat([a, b])), n.name).toBe(true)
    }
  }, 120_000)

  it('a replica left at an older stamp is never served or counted, and is deleted when its node returns', async () => {
    const [n1, , n3] = cluster.nodes
    const data = pseudoRandom(MIB / 2, 3)
    expect((await webhdfsCreate(n1!, '/gs/stale.bin', data, `&blocksize=${MIB}`)).status).toBe(201)
    const first = (await blocksOf(n1!, '/gs/stale.bin')).blocks[0]!
    const victim = cluster.nodes.find((n) => n !== n1 && n.handle.id !== '')!
    const oldFile = replicaFile(victim, first)
    expect(existsSync(oldFile)).toBe(true)
    victim.handle.kill('SIGKILL')
    await victim.handle.exited
    // The block moves on without it: a new stamp on the two other replicas.
    const more = pseudoRandom(200_000, 4)
    const via = cluster.nodes.find((n) => n !== victim)!
    expect((await append(via, '/gs/stale.bin', more)).status).toBe(200)
    const moved = (await blocksOf(via, '/gs/stale.bin')).blocks[0]!
    expect(moved.id).toBe(first.id)
    expect(moved.genStamp).toBeGreaterThan(first.genStamp)
    expect(moved.replicas.map((r) => r.node)).not.toContain(victim.handle.id)
    await cluster.restart(victim)
    // Back, the victim reports its replica at the older stamp: it is deleted, never listed as good.
    await waitFor(() => !existsSync(oldFile), {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: 'the stale replica to leave the returned node',
    })
    const whole = Buffer.concat([data, more])
    for (const n of cluster.nodes) {
      const doc = await blocksOf(n, '/gs/stale.bin')
      for (const r of doc.blocks[0]!.replicas)
        expect(
          replicaFiles(
            cluster.nodes.find((x) => x.handle.id === r.node)!,
            first.id,
          ),
        ).toEqual([`blk_${first.id}_${doc.blocks[0]!.genStamp}`])
      expect((await webhdfsOpen(n, '/gs/stale.bin')).body.equals(whole), n.name).toBe(true)
    }
    // The block regains its third replica, at the new stamp.
    await waitFor(async () => (await blocksOf(n3!, '/gs/stale.bin')).blocks[0]!.replicas.length === 3, {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: 'the block back at 3 replicas',
    })
  }, 240_000)

  it('a truncate inside a block: the replicas get the new stamp and length, readers the prefix at once', async () => {
    const [n1, n2] = cluster.nodes
    const data = pseudoRandom(2 * MIB + 1000, 5)
    expect((await webhdfsCreate(n1!, '/gs/t.bin', data, `&blocksize=${MIB}`)).status).toBe(201)
    const res = await fetch(
      `${n2!.handle.url}/webhdfs/v1/gs/t.bin?op=TRUNCATE&newlength=${MIB + 12_345}&user.name=${SU}`,
      {
        method: 'POST',
      },
    )
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ boolean: false }) // the replicas are truncated in the background
    const doc = await blocksOf(n1!, '/gs/t.bin')
    expect(doc.blocks.map((b) => b.length)).toEqual([MIB, 12_345])
    for (const n of cluster.nodes)
      expect((await webhdfsOpen(n, '/gs/t.bin')).body.equals(data.subarray(0, MIB + 12_345)), n.name).toBe(
        true,
      )
    const last = doc.blocks[1]!
    await waitFor(
      () => cluster.nodes.every((n) => replicaFiles(n, last.id).join() === `blk_${last.id}_${last.genStamp}`),
      { timeoutMs: 30_000, intervalMs: 200, what: 'every replica truncated at the new stamp' },
    )
    for (const n of cluster.nodes)
      expect((await webhdfsOpen(n, '/gs/t.bin')).body.equals(data.subarray(0, MIB + 12_345)), n.name).toBe(
        true,
      )
  }, 120_000)

  it('concat of files in blocks keeps every block; GETFILEBLOCKLOCATIONS names each live replica', async () => {
    const [n1] = cluster.nodes
    const t = pseudoRandom(MIB + 5, 6)
    const s = pseudoRandom(2 * MIB, 7)
    const ct = await webhdfsCreate(n1!, '/gs/c/t', t, `&blocksize=${MIB}`)
    expect(ct.status, await ct.clone().text()).toBe(201)
    expect((await webhdfsCreate(n1!, '/gs/c/s', s, `&blocksize=${MIB}`)).status).toBe(201)
    const c = await fetch(`${n1!.handle.url}/webhdfs/v1/gs/c/t?op=CONCAT&sources=/gs/c/s&user.name=${SU}`, {
      method: 'POST',
    })
    expect(c.status).toBe(200)
    const joined = Buffer.concat([t, s])
    for (const n of cluster.nodes)
      expect((await webhdfsOpen(n, '/gs/c/t')).body.equals(joined), n.name).toBe(true)
    const locs = (await (
      await fetch(`${n1!.handle.url}/webhdfs/v1/gs/c/t?op=GETFILEBLOCKLOCATIONS&user.name=${SU}`)
    ).json()) as {
      BlockLocations: {
        BlockLocation: { offset: number; length: number; hosts: string[]; names: string[] }[]
      }
    }
    const list = locs.BlockLocations.BlockLocation
    expect(list.map((b) => [b.offset, b.length])).toEqual([
      [0, MIB],
      [MIB, 5],
      [MIB + 5, MIB],
      [2 * MIB + 5, MIB],
    ])
    const apis = new Set(cluster.nodes.map((n) => n.handle.http))
    for (const b of list) {
      expect(b.names, JSON.stringify({ list, doc: await blocksOf(n1!, '/gs/c/t') })).toHaveLength(3)
      for (const name of b.names) expect(apis.has(name)).toBe(true)
    }
    // The blocks moved with the bytes: none is forgotten as an orphan by the leader's reconcile, which
    // runs with every heartbeat round (waited for here through the leader's report counter).
    const leaderId = (
      (await (await fetch(`${n1!.handle.url}/api/v1/cluster`)).json()) as { leader: { id: string } }
    ).leader.id
    const leader = cluster.nodes.find((n) => n.handle.id === leaderId)!
    const increments = async (): Promise<number> => {
      const text = await (await fetch(`${leader.handle.url}/metrics`)).text()
      return Number(/^hopsd_block_reports_total\{kind="incremental"\} (\d+)$/m.exec(text)?.[1] ?? 0)
    }
    const r0 = await increments()
    await waitFor(async () => (await increments()) >= r0 + 3 * cluster.nodes.length, {
      timeoutMs: 30_000,
      what: 'three more heartbeat rounds',
    })
    expect((await blocksOf(n1!, '/gs/c/t')).blocks.every((b) => b.replicas.length === 3)).toBe(true)
    expect((await webhdfsOpen(cluster.nodes[2]!, '/gs/c/t')).body.equals(joined)).toBe(true)
  }, 120_000)
})

/** Resident memory of a process (kB → bytes), from /proc. */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m?.[1] ?? 0) * 1024
}

async function stepOne(n: BNode, path: string, op: 'CREATE' | 'APPEND', params = ''): Promise<URL> {
  const s1 = await fetch(`${n.handle.url}/webhdfs/v1${path}?op=${op}&user.name=${SU}${params}`, {
    method: op === 'CREATE' ? 'PUT' : 'POST',
    redirect: 'manual',
  })
  expect(s1.status).toBe(307)
  return new URL(s1.headers.get('location')!)
}

describe('write Locations', () => {
  it('curl -L -T of a 20 MiB file: step one answers 307 before any byte, the data goes once to the datanode', async () => {
    const n = cluster.nodes[0]!
    const dir = makeTempDir('hopsd-curl-')
    const file = join(dir, 'big.bin')
    const data = pseudoRandom(20 * MIB, 9)
    writeFileSync(file, data)
    const { stdout, stderr } = await run(
      'curl',
      [
        '-sS',
        '-v',
        '-L',
        '-T',
        file,
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        `${n.handle.url}/webhdfs/v1/curl/big.bin?op=CREATE&user.name=${SU}`,
      ],
      { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
    )
    expect(stdout).toBe('201')
    expect(stderr).toMatch(/< HTTP\/1\.1 307/)
    expect(stderr.match(/< HTTP\/1\.1 100 Continue/g)).toHaveLength(1) // only the data step asked for it
    expect((await webhdfsOpen(cluster.nodes[1]!, '/curl/big.bin')).body.equals(data)).toBe(true)
  }, 180_000)

  it('an APPEND Location takes several POSTs within its lifetime, appended in order (fsspec posts each chunk)', async () => {
    const n = cluster.nodes[1]!
    expect((await webhdfsCreate(n, '/loc/f.bin', new Uint8Array(0))).status).toBe(201)
    const loc = await stepOne(n, '/loc/f.bin', 'APPEND')
    const parts = [0, 1, 2].map((i) => pseudoRandom(700_000 + i, 20 + i))
    for (const p of parts) expect((await fetch(loc, { method: 'POST', body: p })).status).toBe(200)
    expect((await webhdfsOpen(cluster.nodes[2]!, '/loc/f.bin')).body.equals(Buffer.concat(parts))).toBe(true)
  }, 120_000)

  it('a Location with an altered inline threshold, path or parameter is refused, and its body is not read', async () => {
    const n = cluster.nodes[0]!
    const loc = await stepOne(n, '/loc/g.bin', 'CREATE')
    const token = loc.searchParams.get('hopsd.token')!
    // The token is a grant signed by the metadata node (hg1.<payload>.<signature>): its terms hold the
    // inline threshold, its scope the path. Each altered copy keeps the original signature.
    const [prefix, payload, sig] = token.split('.') as [string, string, string]
    const grant = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
      path: string
      t: Record<string, unknown>
    }
    expect(grant.path).toBe('/loc/g.bin')
    expect(typeof grant.t['inline']).toBe('number')
    const reSigned = (g: unknown): string =>
      `${prefix}.${Buffer.from(JSON.stringify(g)).toString('base64url')}.${sig}`
    const attempts: URL[] = []
    const altered = new URL(loc)
    altered.searchParams.set('hopsd.token', reSigned({ ...grant, t: { ...grant.t, inline: 1_600_000_000 } }))
    attempts.push(altered)
    const alteredPath = new URL(loc)
    alteredPath.pathname = alteredPath.pathname.replace('/loc/g.bin', '/loc/other.bin')
    alteredPath.searchParams.set('hopsd.token', reSigned({ ...grant, path: '/loc/other.bin' }))
    attempts.push(alteredPath)
    const unsigned = new URL(loc)
    unsigned.searchParams.set('hopsd.inline', '1600000000')
    attempts.push(unsigned)
    const otherPath = new URL(loc)
    otherPath.pathname = otherPath.pathname.replace('/loc/g.bin', '/loc/other.bin')
    attempts.push(otherPath)
    const overwrite = new URL(loc)
    overwrite.searchParams.set('overwrite', 'true')
    attempts.push(overwrite)
    for (const u of attempts) {
      const r = await fetch(u, { method: 'PUT', body: 'x' })
      expect([u.search.slice(0, 40), r.status]).toEqual([u.search.slice(0, 40), 403])
    }
    // A 300 MiB body sent to the altered Location: refused before it is read, the node's memory stays put.
    const pid = n.handle.pid
    const before = rssOf(pid)
    let peak = before
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 20)
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(altered, { method: 'PUT', headers: { 'content-length': 300 * MIB } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on('error', () => resolve(-1)) // the node closed the connection on the unread body
      const piece = Buffer.alloc(MIB)
      void (async () => {
        for (let i = 0; i < 300 && !req.destroyed; i++)
          if (!req.write(piece)) await once(req, 'drain').catch(() => undefined)
        req.end()
      })().catch(reject)
    })
    clearInterval(sampler)
    expect([403, -1]).toContain(status)
    expect(peak - before).toBeLessThan(8 * MIB)
    expect(
      (await fetch(`${n.handle.url}/webhdfs/v1/loc/g.bin?op=GETFILESTATUS&user.name=${SU}`)).status,
    ).toBe(404)
  }, 180_000)

  it('an upload aborted after 200 KiB leaves no file and no lease: the path takes a CREATE and APPENDs at once', async () => {
    const n = cluster.nodes[0]!
    const stat = async (path: string): Promise<{ status: number; leaseHolder?: string | null }> => {
      const r = await fetch(`${n.handle.url}/api/v1/fs/stat?path=${path}&user.name=${SU}`)
      return {
        status: r.status,
        ...(r.status === 200 ? ((await r.json()) as { leaseHolder: string | null }) : {}),
      }
    }
    /** Sends 200 KiB of a declared 10 MiB body, waits until the write is under way, then hangs up. */
    const abortAfterSome = async (loc: URL, method: 'PUT' | 'POST', underWay: () => Promise<boolean>) => {
      const req = request(loc, { method, headers: { 'content-length': 10 * MIB } })
      req.on('error', () => undefined)
      req.write(Buffer.alloc(200 * 1024, 1))
      await waitFor(underWay, { timeoutMs: 20_000, what: 'the write under way' })
      req.destroy()
    }
    await abortAfterSome(
      await stepOne(n, '/loc/aborted.bin', 'CREATE'),
      'PUT',
      async () => (await stat('/loc/aborted.bin')).status === 200,
    )
    await waitFor(async () => (await stat('/loc/aborted.bin')).status === 404, {
      timeoutMs: 20_000,
      what: 'the half-written file gone',
    })
    const again = pseudoRandom(100_000, 30)
    expect(
      (await fetch(await stepOne(n, '/loc/aborted.bin', 'CREATE'), { method: 'PUT', body: again })).status,
    ).toBe(201)
    // An aborted APPEND releases its lease: the next one goes through at once, on the old content.
    await abortAfterSome(
      await stepOne(n, '/loc/aborted.bin', 'APPEND'),
      'POST',
      async () => (await stat('/loc/aborted.bin')).leaseHolder !== null,
    )
    await waitFor(async () => (await stat('/loc/aborted.bin')).leaseHolder === null, {
      timeoutMs: 20_000,
      what: 'the lease released',
    })
    const more = pseudoRandom(70_000, 31)
    const rr = await fetch(await stepOne(n, '/loc/aborted.bin', 'APPEND'), { method: 'POST', body: more })
    if (rr.status !== 200)
      console.error('the APPEND after an aborted one:', await rr.text(), cluster.logTails(120))
    expect(rr.status).toBe(200)
    expect((await webhdfsOpen(n, '/loc/aborted.bin')).body.equals(Buffer.concat([again, more]))).toBe(true)
  }, 120_000)

  it('a CREATE token is refused on another route, another node, as another op, and a second time', async () => {
    const [n1, n2] = cluster.nodes
    const loc = await stepOne(n1!, '/loc/h.bin', 'CREATE')
    const token = loc.searchParams.get('hopsd.token')!
    // The metadata route (the same node), another node's data route, the APPEND op: all refused.
    const tries: [string, string][] = [
      ['PUT', `${loc.origin}/webhdfs/v1/loc/h.bin?op=CREATE&hopsd.token=${token}`],
      ['PUT', `${n2!.handle.url}/api/v1/datanode/write/loc/h.bin?op=CREATE&hopsd.token=${token}`],
      ['POST', `${loc.origin}/api/v1/datanode/write/loc/h.bin?op=APPEND&hopsd.token=${token}`],
    ]
    for (const [method, url] of tries) {
      const r = await fetch(url, { method, body: 'x' })
      expect([url.slice(0, 60), r.status]).toEqual([url.slice(0, 60), 403])
      expect(((await r.json()) as { RemoteException: { exception: string } }).RemoteException.exception).toBe(
        'AccessControlException',
      )
    }
    expect((await fetch(loc, { method: 'PUT', body: 'first' })).status).toBe(201)
    expect((await fetch(loc, { method: 'PUT', body: 'again' })).status).toBe(403)
  }, 60_000)
})
