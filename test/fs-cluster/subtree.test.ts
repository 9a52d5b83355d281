// A recursive delete of a few thousand files on a real 3-node cluster (fast Raft timings: a 20 ms tick,
// so a loop held for a few hundred milliseconds costs an election): the tree is gone at once on every
// node, the leader purges it in bounded steps, and it keeps its term throughout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeTempDirs, waitFor } from '../helpers/index.js'
import { clusterStatus, startFsCluster, type FsCluster } from './cluster.js'
import { call, nativeStat, putFile, urlOf, webhdfs } from './client.js'

const FILES = 3000
const PER_DIR = 500
const CLIENTS = 32

let cluster: FsCluster
let failed = false

beforeAll(async () => {
  cluster = await startFsCluster({ metadata: 3, datanodes: 0, prefix: 'hopsd-fs-subtree-' })
}, 150_000)

afterAll(async () => {
  if (failed && cluster !== undefined) console.log(`${cluster.logTails(30)}\n${await cluster.stacks()}`)
  await cluster?.stop()
  removeTempDirs()
}, 60_000)

async function gauge(url: string, name: string): Promise<number> {
  const page = (await call(`${url}/metrics`)).body.toString('utf8')
  const m = new RegExp(`^${name} ([0-9.eE+-]+)$`, 'm').exec(page)
  if (m === null) throw new Error(`no ${name} on ${url}`)
  return Number(m[1])
}

describe('recursive delete of a big tree on a cluster', () => {
  it('is gone at once everywhere, purged by the leader in steps, and costs no election', async () => {
    try {
      const nodes = cluster.metadata
      let next = 0
      await Promise.all(
        Array.from({ length: CLIENTS }, async (_, c) => {
          for (let i = next++; i < FILES; i = next++) {
            const path = `/big/d${Math.floor(i / PER_DIR)}/f${i}`
            const r = await putFile(nodes[c % nodes.length]!, path, new Uint8Array(0), { timeoutMs: 60_000 })
            expect(r.status, `${path}: ${r.body.toString()}`).toBe(201)
          }
        }),
      )
      const before = await clusterStatus(nodes[0]!)
      const leader = nodes.find((n) => n.handle.id === before.leader?.id)!
      expect(leader).toBeDefined()
      const purgedBefore = await gauge(urlOf(leader), 'hopsd_fs_purged_inodes')

      const del = await webhdfs(leader, 'DELETE', '/big', 'DELETE', { recursive: true })
      expect(del.status).toBe(200)
      expect(del.json()).toEqual({ boolean: true })
      // Invisible at once, on every node (linearizable reads).
      for (const n of nodes) expect((await nativeStat(n, '/big/d3/f1700')).status).toBe(404)
      const list = await webhdfs(nodes[1]!, 'GET', '/', 'LISTSTATUS')
      expect(
        list.json().FileStatuses.FileStatus.map((s: { pathSuffix: string }) => s.pathSuffix),
      ).not.toContain('big')
      // The leader frees it in bounded steps; every replica applies them.
      for (const n of nodes)
        await waitFor(async () => (await gauge(urlOf(n), 'hopsd_fs_detached_subtrees')) === 0, {
          timeoutMs: 120_000,
          what: `${n.name} to have purged the tree`,
        })
      const purged = (await gauge(urlOf(leader), 'hopsd_fs_purged_inodes')) - purgedBefore
      expect(purged).toBe(FILES + FILES / PER_DIR + 1)
      const after = await clusterStatus(nodes[0]!)
      expect(after.leader?.id).toBe(before.leader?.id)
      expect(after.term).toBe(before.term)
      // The name is usable again.
      expect((await putFile(nodes[2]!, '/big/again', new Uint8Array([1]))).status).toBe(201)
    } catch (err) {
      failed = true
      throw err
    }
  }, 300_000)

  it("a user's delete of a tree larger than subtreeBatchInodes runs as a subtree operation through a follower", async () => {
    try {
      const nodes = cluster.metadata
      const status = await clusterStatus(nodes[0]!)
      const follower = nodes.find((n) => n.handle.id !== status.leader?.id)!
      // /home/carol under a quota: the delete checks carol's WRITE on every directory and measures it.
      expect((await webhdfs(nodes[0]!, 'PUT', '/home/carol', 'MKDIRS')).status).toBe(200)
      expect((await webhdfs(nodes[0]!, 'PUT', '/home/carol', 'SETOWNER', { owner: 'carol' })).status).toBe(
        200,
      )
      expect(
        (await webhdfs(nodes[0]!, 'PUT', '/home/carol', 'SETQUOTA', { namespacequota: 100_000 })).status,
      ).toBe(200)
      const files = 1500
      let next = 0
      await Promise.all(
        Array.from({ length: CLIENTS }, async (_, c) => {
          for (let i = next++; i < files; i = next++) {
            const path = `/home/carol/t/d${Math.floor(i / 300)}/f${i}`
            const r = await putFile(nodes[c % nodes.length]!, path, new Uint8Array([1]), { user: 'carol' })
            expect(r.status, `${path}: ${r.body.toString()}`).toBe(201)
          }
        }),
      )
      const opsBefore = await gauge(urlOf(follower), 'hopsd_fs_subtree_operations')
      const del = await webhdfs(follower, 'DELETE', '/home/carol/t', 'DELETE', {
        recursive: true,
        'user.name': 'carol',
      })
      expect(del.json()).toEqual({ boolean: true })
      expect((await gauge(urlOf(follower), 'hopsd_fs_subtree_operations')) - opsBefore).toBe(1)
      const usage = await webhdfs(nodes[2]!, 'GET', '/home/carol', 'GETQUOTAUSAGE')
      expect(usage.json().QuotaUsage.fileAndDirectoryCount).toBe(1)
      for (const n of nodes) {
        expect((await nativeStat(n, '/home/carol/t/d1/f400')).status).toBe(404)
        // No apply walked more than subtreeBatchInodes / purgeBatchInodes (1000 each by default).
        expect(await gauge(urlOf(n), 'hopsd_fs_subtree_walk_max_inodes')).toBeLessThanOrEqual(1000)
        await waitFor(async () => (await gauge(urlOf(n), 'hopsd_fs_subtree_locks')) === 0, {
          what: `${n.name} to hold no subtree lock`,
        })
      }
      const after = await clusterStatus(nodes[0]!)
      expect(after.term).toBe(status.term)
    } catch (err) {
      failed = true
      throw err
    }
  }, 300_000)
})
