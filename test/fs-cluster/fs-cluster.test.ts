// The file system on a real cluster: three metadata nodes in three zones plus one `--roles datanode` node
// (no replica: it forwards the fs routes to a metadata node), each a `hopsd start` process. Writes on
// any node are read back byte-identical from every node, right after the write was acknowledged
// (linearizable reads); the change log is the same everywhere; errors are the same everywhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeTempDirs } from '../helpers/index.js'
import { startFsCluster, type ClusterNode, type FsCluster } from './cluster.js'
import {
  call,
  changes,
  getFile,
  nativeStat,
  putFile,
  webhdfs,
  webhdfsCreate,
  type ChangeEventDoc,
} from './client.js'

const SEED = Number(process.env['HOPSD_TEST_SEED'] ?? Date.now() % 2 ** 31)
const INLINE_THRESHOLD = 64 * 1024

let cluster: FsCluster
let failed = false

beforeAll(async () => {
  console.log(`fs-cluster SEED=${SEED} (HOPSD_TEST_SEED=${SEED} replays the file contents)`)
  cluster = await startFsCluster({ metadata: 3, datanodes: 1, prefix: 'hopsd-fs-cluster-' })
}, 150_000)

afterAll(async () => {
  if (failed && cluster !== undefined)
    console.log(`SEED=${SEED}\n${cluster.logTails(30)}\n${await cluster.stacks()}`)
  await cluster?.stop()
  removeTempDirs()
}, 60_000)

/** Records a failure so that afterAll prints the nodes' log tails. */
function track(fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await fn()
    } catch (err) {
      failed = true
      throw err
    }
  }
}

/** Seeded bytes (mulberry32), so that a failing content comparison replays. */
function bytes(seed: number, length: number): Buffer {
  let a = seed >>> 0
  const out = Buffer.alloc(length)
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff
  }
  return out
}

const all = (): ClusterNode[] => cluster.nodes

/** Every node answers the file with exactly `data`, through every read route. */
async function expectEverywhere(path: string, data: Buffer): Promise<void> {
  // Every node at once (each read still starts after the write's acknowledgement).
  await Promise.all(
    all().map(async (n) => {
      const where = `${path} on ${n.name}`
      const native = await getFile(n, path)
      expect(native.status, where).toBe(200)
      expect(native.body.equals(data), `${where}: native bytes`).toBe(true)
      const open = await webhdfs(n, 'GET', path, 'OPEN')
      expect(open.status, where).toBe(200)
      expect(open.body.equals(data), `${where}: OPEN bytes`).toBe(true)
      const st = await webhdfs(n, 'GET', path, 'GETFILESTATUS')
      expect(st.status, where).toBe(200)
      expect(st.json().FileStatus, where).toMatchObject({ type: 'FILE', length: data.length })
      const ns = await nativeStat(n, path)
      expect(ns.status, where).toBe(200)
      expect(ns.json(), where).toMatchObject({ path, type: 'FILE', length: data.length, inlined: true })
    }),
  )
}

async function expectStatus(path: string, type: 'FILE' | 'DIRECTORY' | 'MISSING'): Promise<void> {
  await Promise.all(
    all().map(async (n) => {
      const st = await webhdfs(n, 'GET', path, 'GETFILESTATUS')
      if (type === 'MISSING') {
        expect(st.status, `${path} on ${n.name}`).toBe(404)
        expect(st.json().RemoteException.exception, `${path} on ${n.name}`).toBe('FileNotFoundException')
      } else {
        expect(st.status, `${path} on ${n.name}`).toBe(200)
        expect(st.json().FileStatus.type, `${path} on ${n.name}`).toBe(type)
      }
    }),
  )
}

/**
 * Long-polls `node`'s change log from `since` until an event matches (a replica that lags answers older
 * events first: keep polling after them). Bounded by the test's timeout.
 */
async function waitForEvent(
  node: ClusterNode,
  since: number,
  match: (e: ChangeEventDoc) => boolean,
): Promise<ChangeEventDoc> {
  let cursor = since
  for (;;) {
    const log = await changes(node, cursor, { waitMs: 10_000 })
    const hit = log.events.find(match)
    if (hit !== undefined) return hit
    if (log.events.length > 0) cursor = log.events[log.events.length - 1]!.index
  }
}

// Every read is a real request to a real process: give each test room on a loaded 2-core machine.
describe('fs on a 3-node, 3-zone cluster (+ a datanode-only node)', { timeout: 180_000 }, () => {
  it(
    'files written through each node (native PUT, WebHDFS two-step CREATE) read back byte-identical everywhere',
    track(async () => {
      expect((await webhdfs(cluster.metadata[0]!, 'PUT', '/rw', 'MKDIRS')).json()).toEqual({ boolean: true })
      // Sizes cover empty, small, and exactly the inline threshold (the largest file allowed).
      const sizes = [0, 1, 4096, INLINE_THRESHOLD]
      const written: { path: string; data: Buffer }[] = []
      for (const [i, n] of all().entries()) {
        const size = sizes[i % sizes.length]!
        const nativePath = `/rw/native-${n.name}`
        const nativeData = bytes(SEED + 2 * i, size)
        const put = await putFile(n, nativePath, nativeData)
        expect(put.status, `PUT via ${n.name}: ${put.body.toString()}`).toBe(201)
        expect(put.json().size).toBe(size)
        // Read at once from every node: the acknowledged write is visible everywhere.
        await expectEverywhere(nativePath, nativeData)
        written.push({ path: nativePath, data: nativeData })

        const hdfsPath = `/rw/webhdfs-${n.name}`
        const hdfsData = bytes(SEED + 2 * i + 1, sizes[(i + 2) % sizes.length]!)
        const created = await webhdfsCreate(n, hdfsPath, hdfsData)
        expect(created.step1.status, `CREATE via ${n.name}`).toBe(307)
        expect(
          created.step2?.status,
          `CREATE step two via ${n.name}: ${created.step2?.body.toString()}`,
        ).toBe(201)
        await expectEverywhere(hdfsPath, hdfsData)
        written.push({ path: hdfsPath, data: hdfsData })
      }
      // Every node lists the same directory: names, lengths, inode ids.
      const listings = await Promise.all(
        all().map(async (n) => {
          const r = await webhdfs(n, 'GET', '/rw', 'LISTSTATUS')
          expect(r.status, n.name).toBe(200)
          return (r.json().FileStatuses.FileStatus as any[]).map((s) => [s.pathSuffix, s.length, s.fileId])
        }),
      )
      expect(listings[0]!.map((e) => e[0])).toEqual(written.map((w) => w.path.slice('/rw/'.length)).sort())
      for (const l of listings) expect(l).toEqual(listings[0])
    }),
  )

  it(
    'mkdirs, rename and delete on one node are seen by a read on every other node right after the ack',
    track(async () => {
      for (const [i, n] of all().entries()) {
        const base = `/ops/${n.name}`
        expect((await webhdfs(n, 'PUT', `${base}/a/b`, 'MKDIRS')).json()).toEqual({ boolean: true })
        await expectStatus(`${base}/a/b`, 'DIRECTORY')
        const data = bytes(SEED + 100 + i, 10)
        expect((await putFile(n, `${base}/a/b/f`, data)).status).toBe(201)

        const ren = await webhdfs(n, 'PUT', `${base}/a`, 'RENAME', { destination: `${base}/c` })
        expect(ren.json(), `RENAME via ${n.name}`).toEqual({ boolean: true })
        await expectStatus(`${base}/a`, 'MISSING')
        await expectStatus(`${base}/c/b`, 'DIRECTORY')
        await expectEverywhere(`${base}/c/b/f`, data)

        const del = await webhdfs(n, 'DELETE', `${base}/c`, 'DELETE', { recursive: true })
        expect(del.json(), `DELETE via ${n.name}`).toEqual({ boolean: true })
        await expectStatus(`${base}/c`, 'MISSING')
        for (const m of all()) expect((await getFile(m, `${base}/c/b/f`)).status, m.name).toBe(404)
      }
    }),
  )

  it(
    'the change log lists the same events in the same order, with Raft indexes, on every node',
    track(async () => {
      const [writer, reader] = [cluster.metadata[1]!, cluster.datanodes[0]!]
      const before = (await changes(cluster.metadata[0]!, 0)).lastIndex
      // A long-poll on one node wakes up for a write made through another.
      const poll = waitForEvent(reader, before, (e) => e.op === 'create' && e.path === '/cl/x')
      expect((await putFile(writer, '/cl/x', bytes(SEED + 200, 3))).status).toBe(201)
      expect((await poll).index).toBeGreaterThan(before)
      expect((await webhdfs(writer, 'PUT', '/cl/x', 'RENAME', { destination: '/cl/y' })).json()).toEqual({
        boolean: true,
      })
      expect((await webhdfs(writer, 'DELETE', '/cl/y', 'DELETE')).json()).toEqual({ boolean: true })

      // /changes reads after a barrier: right after the delete was acknowledged, every node lists it.
      const logs = await Promise.all(all().map((n) => changes(n, 0)))
      for (const [k, log] of logs.entries())
        expect(
          log.events.some((e) => e.op === 'delete' && e.path === '/cl/y'),
          `${all()[k]!.name} lists the acknowledged delete`,
        ).toBe(true)
      const first = logs[0]!
      expect(first.truncated).toBe(false)
      const indexes = first.events.map((e) => e.index)
      expect(
        indexes.every((x, k) => k === 0 || x > indexes[k - 1]!),
        'indexes increase',
      ).toBe(true)
      const tail = first.events.filter((e) => e.path.startsWith('/cl'))
      // One event per command: the create that made /cl as a missing parent says only 'create'.
      expect(tail.map((e: ChangeEventDoc) => [e.op, e.path, e.dst])).toEqual([
        ['create', '/cl/x', ''],
        ['rename', '/cl/x', '/cl/y'],
        ['delete', '/cl/y', ''],
      ])
      // Earlier tests' writes are there too, in the order they were acknowledged.
      const created = first.events.filter((e) => e.op === 'create' && e.path.startsWith('/rw/'))
      expect(created.map((e) => e.path)).toEqual(
        all().flatMap((n) => [`/rw/native-${n.name}`, `/rw/webhdfs-${n.name}`]),
      )
      for (const log of logs) {
        const upTo = log.events.filter((e) => e.index <= tail[tail.length - 1]!.index)
        expect(upTo).toEqual(first.events.filter((e) => e.index <= tail[tail.length - 1]!.index))
      }
    }),
  )

  it(
    'permission denial for another user is the same on every node, and changes nothing',
    track(async () => {
      const m1 = cluster.metadata[0]!
      expect((await webhdfs(m1, 'PUT', '/priv', 'MKDIRS', { permission: '700' })).status).toBe(200)
      expect((await putFile(m1, '/priv/f', bytes(SEED + 300, 5))).status).toBe(201)
      const answers: unknown[] = []
      for (const n of all()) {
        const read = await getFile(n, '/priv/f', { user: 'eve' })
        const write = await putFile(n, '/priv/g', bytes(1, 1), { user: 'eve' })
        const open = await webhdfs(n, 'GET', '/priv/f', 'OPEN', { 'user.name': 'eve' })
        const mkdir = await webhdfs(n, 'PUT', '/priv/d', 'MKDIRS', { 'user.name': 'eve' })
        const created = await webhdfsCreate(n, '/priv/h', bytes(2, 1), { 'user.name': 'eve' })
        for (const r of [read, write]) {
          expect(r.status, n.name).toBe(403)
          expect(r.json().error.code, n.name).toBe('ACCESS_DENIED')
        }
        for (const r of [open, mkdir, created.step2!]) {
          expect(r.status, n.name).toBe(403)
          expect(r.json().RemoteException.exception, n.name).toBe('AccessControlException')
        }
        answers.push([read, write, open, mkdir, created.step2!].map((r) => [r.status, r.json()]))
      }
      for (const a of answers) expect(a).toEqual(answers[0])
      const listing = await webhdfs(cluster.metadata[2]!, 'GET', '/priv', 'LISTSTATUS')
      expect((listing.json().FileStatuses.FileStatus as any[]).map((s) => s.pathSuffix)).toEqual(['f'])
    }),
  )

  it(
    'a one-request PUT over the inline threshold (64 KiB + 1) is refused with a clear error and leaves nothing behind',
    track(async () => {
      const big = bytes(SEED + 400, INLINE_THRESHOLD + 1)
      const before = (await changes(cluster.metadata[0]!, 0)).lastIndex
      for (const n of all()) {
        const put = await putFile(n, `/big/native-${n.name}`, big)
        expect(put.status, n.name).toBe(413)
        expect(put.json().error.code).toBe('FILE_TOO_LARGE_FOR_INLINE')
        expect(put.json().error.message).toContain('inlineThreshold (65536)')
      }
      // Nothing behind: no file, no parent directory, no event; on every node.
      await expectStatus('/big', 'MISSING')
      // A write after the refusals, so that the log comparison below waits for every replica.
      expect((await putFile(cluster.metadata[0]!, '/after-big', bytes(SEED + 401, 1))).status).toBe(201)
      for (const n of all()) {
        const log = await changes(n, before, { waitMs: 10_000 })
        expect(log.events.map((e) => e.path)).toEqual(['/after-big'])
      }
    }),
  )

  it(
    'a create with an idempotency key (clientId + seq) retried through every other node is applied once',
    track(async () => {
      const session = { clientId: `fs-cluster-${SEED}`, seq: 1 }
      const data = bytes(SEED + 600, 100)
      const [first, ...others] = all()
      const since = (await changes(first!, 0)).lastIndex
      const put = await putFile(first!, '/idem/a', data, { session })
      expect(put.status, put.body.toString()).toBe(201)
      for (const n of others) {
        // The replicated session table answers the first result, whichever node the retry reaches.
        const retry = await putFile(n, '/idem/a', data, { session })
        expect(retry.status, `${n.name}: ${retry.body.toString()}`).toBe(201)
        expect(retry.json(), n.name).toEqual(put.json())
      }
      // The next seq is a new write: the file exists by now.
      const next = await putFile(others[0]!, '/idem/a', data, { session: { ...session, seq: 2 } })
      expect(next.status).toBe(403)
      expect(next.json().error.code).toBe('FILE_ALREADY_EXISTS')
      const log = await waitForEvent(first!, since, (e) => e.path === '/idem/a')
      expect((await changes(first!, since)).events.filter((e) => e.path === '/idem/a')).toEqual([log])
    }),
  )

  it(
    'a datanode-only node forwards every fs route: writes through it, reads on metadata nodes, and back',
    track(async () => {
      const d1 = cluster.datanodes[0]!
      const [m1, m2, m3] = cluster.metadata as [ClusterNode, ClusterNode, ClusterNode]
      // Its own cluster view says it holds no replica.
      const health = (await call(`${d1.handle.url}/api/v1/cluster`)).json()
      expect(health.voters.map((v: { id: string }) => v.id)).not.toContain(d1.handle.id)

      const viaD = bytes(SEED + 500, 1000)
      expect((await putFile(d1, '/fwd/via-datanode', viaD)).status).toBe(201)
      expect((await getFile(m2, '/fwd/via-datanode')).body.equals(viaD)).toBe(true)
      const viaM = bytes(SEED + 501, 2000)
      expect((await putFile(m3, '/fwd/via-metadata', viaM)).status).toBe(201)
      expect((await getFile(d1, '/fwd/via-metadata')).body.equals(viaM)).toBe(true)

      // WebHDFS two-step CREATE started on the datanode completes, and so does the noredirect variant.
      const two = bytes(SEED + 502, 3000)
      const created = await webhdfsCreate(d1, '/fwd/two-step', two, { permission: '640' })
      expect(created.step2?.status).toBe(201)
      const st = (await webhdfs(m1, 'GET', '/fwd/two-step', 'GETFILESTATUS')).json().FileStatus
      expect(st).toMatchObject({ length: 3000, permission: '640' })
      const noRedirect = await webhdfs(d1, 'PUT', '/fwd/no-redirect', 'CREATE', { noredirect: true })
      expect(noRedirect.status).toBe(200)
      const loc = noRedirect.json().Location as string
      expect((await call(loc, { method: 'PUT', body: two })).status).toBe(201)
      expect((await webhdfs(d1, 'GET', '/fwd/no-redirect', 'OPEN')).body.equals(two)).toBe(true)

      // Errors come back intact, and so do long-polls.
      const missing = await webhdfs(d1, 'GET', '/fwd/nope', 'OPEN')
      expect(missing.status).toBe(404)
      expect(missing.json().RemoteException.exception).toBe('FileNotFoundException')
      const nativeMissing = await getFile(d1, '/fwd/nope')
      expect(nativeMissing.status).toBe(404)
      expect(nativeMissing.json().error.code).toBe('FILE_NOT_FOUND')
      const since = (await changes(d1, 0)).lastIndex
      const poll = waitForEvent(d1, since, (e) => e.path === '/fwd/dir')
      expect((await webhdfs(m2, 'PUT', '/fwd/dir', 'MKDIRS')).status).toBe(200)
      expect(await poll).toMatchObject({ op: 'mkdirs', path: '/fwd/dir', user: 'hopsd' })

      // WebHDFS two-step APPEND started on the datanode.
      const app1 = await webhdfs(d1, 'POST', '/fwd/via-datanode', 'APPEND')
      expect(app1.status).toBe(307)
      const app2 = await call(app1.headers.get('location')!, { method: 'POST', body: Buffer.from('+more') })
      expect(app2.status, app2.body.toString()).toBe(200)
      const appended = Buffer.concat([viaD, Buffer.from('+more')])
      expect((await getFile(m3, '/fwd/via-datanode')).body.equals(appended)).toBe(true)

      // Server-sent events stream through the forwarder as they happen.
      const ac = new AbortController()
      const sse = await fetch(`${d1.handle.url}/api/v1/fs/changes?since=${(await poll).index}`, {
        headers: { accept: 'text/event-stream' },
        signal: ac.signal,
      })
      try {
        expect(sse.status).toBe(200)
        expect(sse.headers.get('content-type')).toContain('text/event-stream')
        expect((await putFile(m1, '/fwd/sse', bytes(SEED + 503, 7))).status).toBe(201)
        const reader = sse.body!.getReader()
        let text = ''
        while (!text.includes('"/fwd/sse"')) {
          const { value, done } = await reader.read()
          if (done) throw new Error(`event stream ended early: ${text}`)
          text += Buffer.from(value).toString('utf8')
        }
        expect(text).toMatch(/^id: \d+\ndata: \{/m)
      } finally {
        ac.abort()
      }
    }),
  )

  it(
    'an inline read waits for one read barrier (native GET and WebHDFS OPEN), a stale read for none',
    track(async () => {
      const n = cluster.metadata[1]!
      const data = bytes(SEED + 701, 300)
      expect((await putFile(n, '/reads/one-barrier', data)).status).toBe(201)
      const barriers = async (): Promise<number> => {
        const page = (await call(`${n.handle.url}/metrics`)).body.toString('utf8')
        const m = /^hopsd_metadata_read_barriers_total (\d+)$/m.exec(page)
        if (m === null) throw new Error(`no hopsd_metadata_read_barriers_total on ${n.name}`)
        return Number(m[1])
      }
      // Sequential reads: each is linearizable (at least one barrier), none pays two (the blocks
      // reader used to hand inline files back to the fs service, which waited again). Background
      // loops also read, hence the slack below 2 per read.
      const READS = 40
      let before = await barriers()
      for (let i = 0; i < READS; i++) {
        const r =
          i % 2 === 0
            ? await getFile(n, '/reads/one-barrier')
            : await webhdfs(n, 'GET', '/reads/one-barrier', 'OPEN')
        expect(r.body.equals(data)).toBe(true)
      }
      const linearizable = (await barriers()) - before
      expect(linearizable).toBeGreaterThanOrEqual(READS)
      expect(linearizable).toBeLessThan(READS * 1.5)
      before = await barriers()
      for (let i = 0; i < READS; i++)
        expect((await getFile(n, '/reads/one-barrier', { stale: true })).body.equals(data)).toBe(true)
      expect((await barriers()) - before).toBeLessThan(READS / 4)
    }),
  )
})
