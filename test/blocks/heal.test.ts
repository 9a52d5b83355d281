// Self-healing and decommissioning on a 4-node, 3-zone cluster (n1..n3 metadata + datanode in z1..z3,
// n4 a datanode in z1; one cluster for the whole file, the tests run in order): a datanode drained and
// decommissioned, a flipped byte on disk, a datanode killed with kill -9 while idle (then restarted),
// and a datanode killed during a 50 MiB upload. With three zones, n2 and n3 each hold a replica of every
// block spread over the zones, so they are the victims; the metadata leader is never one.
import { existsSync } from 'node:fs'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { removeTempDirs, waitFor } from '../helpers/index.js'
import {
  blocksOf,
  datanodeInfo,
  flipByte,
  getJ,
  MIB,
  nonLeader,
  pseudoRandom,
  replicaFile,
  setDatanodeState,
  startBlockCluster,
  webhdfsCreate,
  webhdfsDelete,
  webhdfsOpen,
  type BCluster,
  type BlocksDoc,
  type BNode,
} from './cluster.js'

let cluster: BCluster

beforeAll(async () => {
  cluster = await startBlockCluster({ metadata: 3, datanodes: 1 })
}, 180_000)

afterEach((ctx) => {
  if (ctx.task.result?.state !== 'fail') return
  const lines = cluster.logTails(3000).split('\n')
  console.error(
    lines
      .filter((l) => /^-----|"level":"(warn|error|fatal)"|Error|at /.test(l) && !/membership/.test(l))
      .slice(-60)
      .join('\n'),
  )
})

afterAll(async () => {
  await cluster?.stop()
  removeTempDirs()
})

/** Waits until every block of `path` has `replication` replicas, and returns them. */
const fullyReplicated = (n: BNode, path: string, replication = 3): Promise<BlocksDoc> =>
  waitFor(
    async () => {
      const doc = await blocksOf(n, path)
      return doc.blocks.every((b) => b.replicas.length === replication) ? doc : undefined
    },
    { timeoutMs: 30_000, intervalMs: 100, what: `every block of ${path} at ${replication} replicas` },
  )

/** Deletes `paths` and waits until the leader has forgotten their blocks (the next tests start clean). */
async function remove(n: BNode, paths: string[], blocksBefore: number): Promise<void> {
  for (const p of paths) expect(await webhdfsDelete(n, p)).toBe(true)
  await waitFor(async () => (await getJ(n, '/api/v1/fs/health')).blocks === blocksBefore, {
    timeoutMs: 30_000,
    intervalMs: 100,
    what: `the blocks of ${paths.join(', ')} forgotten`,
  })
}

/**
 * Writes `bytes` pseudo-random bytes (seed `seed`) to `path` through `n` in 1 MiB blocks, waits until all
 * `blocks` have their replicas, and picks a node among nodes 2 and 3 that is not the metadata leader
 * and holds a replica of every block (3 replicas on 3 nodes).
 */
async function writeOnEveryNode(
  n: BNode,
  path: string,
  bytes: number,
  seed: number,
  blocks: number,
): Promise<{ data: Buffer; before: BlocksDoc; holder: BNode }> {
  const data = pseudoRandom(bytes, seed)
  const created = await webhdfsCreate(n, path, data, `&blocksize=${MIB}`)
  expect(created.status, await created.clone().text()).toBe(201)
  const before = await fullyReplicated(n, path)
  expect(before.blocks).toHaveLength(blocks)
  const holder = await nonLeader(n, cluster.nodes.slice(1, 3))
  for (const b of before.blocks) expect(b.replicas.map((r) => r.node)).toContain(holder.handle.id)
  return { data, before, holder }
}

describe('decommissioning', () => {
  it('a DRAINING datanode: its blocks are copied to other nodes, it is reported DECOMMISSIONED, files read back, no new block goes to it', async () => {
    const n1 = cluster.nodes[0]!
    const blocksBefore = (await getJ(n1, '/api/v1/fs/health')).blocks as number
    const { data: d, holder: drained } = await writeOnEveryNode(n1, '/decom/d.bin', 4 * MIB + 4321, 17, 5)
    const id = drained.handle.id

    const res = await setDatanodeState(n1, id, 'DRAINING')
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ node: id, state: 'DRAINING' })
    const t0 = Date.now()
    const seen = new Set<string>()
    await waitFor(
      async () => {
        const info = await datanodeInfo(n1, id)
        if (info !== undefined) seen.add(info.state)
        return info?.state === 'DECOMMISSIONED'
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `${drained.name} reported DECOMMISSIONED` },
    )
    console.log(`decommissioned in ${Date.now() - t0} ms`)
    expect(seen.has('DRAINING')).toBe(true)
    // DECOMMISSIONED only once every block has its three replicas on other nodes (none was lost)...
    for (const b of (await blocksOf(n1, '/decom/d.bin')).blocks)
      expect(
        b.replicas.filter((r) => r.node !== id),
        `block ${b.id}`,
      ).toHaveLength(3)
    // ...then its own replicas are surplus and dropped; it stays a live node all along.
    await waitFor(
      async () =>
        (await blocksOf(n1, '/decom/d.bin')).blocks.every(
          (b) => b.replicas.length === 3 && b.replicas.every((r) => r.node !== id),
        ),
      { timeoutMs: 30_000, intervalMs: 100, what: `the replicas on ${drained.name} dropped` },
    )
    expect(await datanodeInfo(n1, id)).toMatchObject({ state: 'DECOMMISSIONED', live: true })
    const h = await getJ(n1, '/api/v1/fs/health')
    expect(h.underReplicated + h.missing + h.corrupt).toBe(0)
    for (const n of cluster.nodes.filter((x) => x.roles.includes('metadata')))
      expect((await webhdfsOpen(n, '/decom/d.bin')).body.equals(d), n.name).toBe(true)

    // A new file goes to the three other nodes only.
    const e = pseudoRandom(3 * MIB, 19)
    const created2 = await webhdfsCreate(n1, '/decom/after.bin', e, `&blocksize=${MIB}`)
    expect(created2.status, await created2.clone().text()).toBe(201)
    const after = await fullyReplicated(n1, '/decom/after.bin')
    expect(after.blocks).toHaveLength(3)
    for (const b of after.blocks) expect(b.replicas.map((r) => r.node)).not.toContain(id)
    expect((await webhdfsOpen(drained, '/decom/after.bin')).body.equals(e)).toBe(true)

    // Back in service for the tests below.
    expect((await setDatanodeState(n1, id, 'NORMAL')).status).toBe(200)
    await waitFor(async () => (await datanodeInfo(n1, id))?.state === 'NORMAL', {
      timeoutMs: 10_000,
      what: `${drained.name} NORMAL again`,
    })
    await remove(n1, ['/decom/d.bin', '/decom/after.bin'], blocksBefore)
  }, 180_000)
})

describe('self-healing', () => {
  const a = pseudoRandom(8 * MIB, 7)

  it('a flipped byte in a block file: reads stay right, fsck reports the corrupt replica, the cluster heals it', async () => {
    const [n1, n2] = cluster.nodes as [BNode, BNode]
    const created = await webhdfsCreate(n1, '/heal/a.bin', a, `&blocksize=${MIB}`)
    expect(created.status, await created.clone().text()).toBe(201)
    const doc = await blocksOf(n1, '/heal/a.bin')
    const victim = doc.blocks.find((b) => b.replicas.some((r) => r.node === n2.handle.id))!
    flipByte(replicaFile(n2, victim), 1000)
    // n2 reads its own replica first: the bad chunk is skipped for another replica.
    const r = await webhdfsOpen(n2, '/heal/a.bin')
    expect(r.body.equals(a)).toBe(true)
    const seen = await waitFor(
      async () => {
        const h = await getJ(n1, '/api/v1/fs/health')
        const c = (h.corruptReplicas as { id: number; nodes: string[] }[]).find((x) => x.id === victim.id)
        return c?.nodes.includes(n2.handle.id) ? h : undefined
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'fsck to report the corrupt replica' },
    )
    expect(seen.corrupt).toBeGreaterThanOrEqual(1)
    await waitFor(
      async () => {
        const h = await getJ(n1, '/api/v1/fs/health')
        const d = await blocksOf(n1, '/heal/a.bin')
        const b = d.blocks.find((x) => x.id === victim.id)!
        return h.corrupt === 0 && h.underReplicated === 0 && b.replicas.length === 3 && b.corrupt.length === 0
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'the corrupt replica replaced' },
    )
    await waitFor(() => !existsSync(replicaFile(n2, victim)), {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: `the corrupt replica deleted from ${n2.name}'s disk`,
    })
    for (const n of cluster.nodes) expect((await webhdfsOpen(n, '/heal/a.bin')).body.equals(a)).toBe(true)
  }, 180_000)

  it('kill -9 a datanode holding replicas (no upload running): within 60 s every block is back at 3 live replicas; restarted, it gets none back', async () => {
    const n1 = cluster.nodes[0]!
    const blocksBefore = (await getJ(n1, '/api/v1/fs/health')).blocks as number
    const {
      data,
      before,
      holder: victim,
    } = await writeOnEveryNode(n1, '/heal/plain.bin', 5 * MIB + 999, 13, 6)
    const dead = victim.handle.id
    const others = cluster.nodes.filter((n) => n !== victim).map((n) => n.handle.id)

    const t0 = Date.now()
    victim.handle.kill('SIGKILL')
    expect((await victim.handle.exited).signal).toBe('SIGKILL')
    await waitFor(
      async () => {
        const h = await getJ(n1, '/api/v1/fs/health')
        if (h.underReplicated + h.missing !== 0) return false
        const doc = await blocksOf(n1, '/heal/plain.bin')
        return doc.blocks.every(
          (b) => b.replicas.length === 3 && b.replicas.every((r) => others.includes(r.node)),
        )
      },
      { timeoutMs: 60_000, intervalMs: 250, what: 'every block at 3 replicas on live nodes' },
    )
    const took = Date.now() - t0
    console.log(`re-replicated in ${took} ms after kill -9`)
    expect(took).toBeLessThan(60_000)
    const healed = await blocksOf(n1, '/heal/plain.bin')
    expect(healed.blocks.map((b) => b.id)).toEqual(before.blocks.map((b) => b.id))
    for (const b of healed.blocks)
      expect(new Set(b.replicas.map((r) => r.zone)).size, `block ${b.id}`).toBeGreaterThanOrEqual(2)
    expect(await datanodeInfo(n1, dead)).toMatchObject({ live: false })
    for (const n of cluster.nodes.filter((x) => x !== victim && x.roles.includes('metadata')))
      expect((await webhdfsOpen(n, '/heal/plain.bin')).body.equals(data), n.name).toBe(true)

    // Back with its old disk: its replicas are surplus now, and are deleted rather than counted again.
    await cluster.restart(victim)
    expect(victim.handle.id).toBe(dead)
    await waitFor(() => before.blocks.every((b) => !existsSync(replicaFile(victim, b))), {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: `the stale replicas on ${victim.name} deleted`,
    })
    for (const b of (await blocksOf(n1, '/heal/plain.bin')).blocks) {
      expect(b.replicas).toHaveLength(3)
      expect(b.replicas.map((r) => r.node)).not.toContain(dead)
    }
    expect((await webhdfsOpen(victim, '/heal/plain.bin')).body.equals(data)).toBe(true)
    await remove(n1, ['/heal/plain.bin'], blocksBefore)
  }, 240_000)

  it('a datanode killed during a 50 MiB upload: the upload succeeds, the file is intact, every block regains 3 live replicas', async () => {
    const n1 = cluster.nodes[0]!
    const status = await getJ(n1, '/api/v1/cluster')
    // Kill a pipeline member in another zone that is not the metadata leader (the writer is n1).
    const victim = cluster.nodes.slice(1, 3).find((n) => n.handle.id !== status.leader?.id)!
    const data = pseudoRandom(50 * MIB, 11)
    let sent = 0
    let killed = false
    async function* body(): AsyncGenerator<Uint8Array> {
      for (let off = 0; off < data.length; off += 256 * 1024) {
        if (sent >= 12 * MIB && !killed) {
          killed = true
          victim.handle.kill('SIGKILL')
        }
        const piece = data.subarray(off, off + 256 * 1024)
        sent += piece.length
        yield piece
      }
    }
    const res = await webhdfsCreate(n1, '/heal/big.bin', body(), `&blocksize=${MIB}`)
    expect(res.status, await res.clone().text()).toBe(201)
    expect(killed).toBe(true)
    const r = await webhdfsOpen(n1, '/heal/big.bin')
    expect(r.body.length).toBe(data.length)
    expect(r.body.equals(data)).toBe(true)
    const t0 = Date.now()
    await waitFor(
      async () => {
        for (const path of ['/heal/a.bin', '/heal/big.bin']) {
          const d = await blocksOf(n1, path)
          for (const b of d.blocks) {
            const live = b.replicas.filter((x) => x.node !== victim.handle.id)
            if (live.length !== 3 || b.replicas.length !== 3) return false
          }
        }
        return true
      },
      { timeoutMs: 90_000, intervalMs: 250, what: 'every block at 3 live replicas' },
    )
    console.log(`re-replicated in ${Date.now() - t0} ms after the upload`)
    const h = await getJ(n1, '/api/v1/fs/health')
    expect(h.underReplicated + h.missing).toBe(0)
    for (const n of cluster.nodes.filter((x) => x !== victim)) {
      expect((await webhdfsOpen(n, '/heal/big.bin')).body.equals(data), n.name).toBe(true)
    }
  }, 300_000)
})
