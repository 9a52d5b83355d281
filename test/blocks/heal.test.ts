// Self-healing on a 4-node, 3-zone cluster: a flipped byte on disk, a datanode killed during a 50 MiB
// upload, and the re-replication of its blocks after kill -9.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { removeTempDirs, waitFor } from '../helpers/index.js'
import {
  getJ,
  MIB,
  pseudoRandom,
  startBlockCluster,
  webhdfsCreate,
  webhdfsOpen,
  type BCluster,
  type BNode,
} from './cluster.js'

let cluster: BCluster

interface BlocksDoc {
  blocks: { id: number; genStamp: number; replicas: { node: string; zone: string }[]; corrupt: string[] }[]
}

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

const blocksOf = (n: BNode, path: string): Promise<BlocksDoc> => getJ(n, `/api/v1/fs/blocks?path=${path}`)

describe('self-healing', () => {
  const a = pseudoRandom(8 * MIB, 7)

  it('a flipped byte in a block file: reads stay right, fsck reports the corrupt replica, the cluster heals it', async () => {
    const [n1, n2] = cluster.nodes as [BNode, BNode]
    const created = await webhdfsCreate(n1, '/heal/a.bin', a, `&blocksize=${MIB}`)
    expect(created.status, await created.clone().text()).toBe(201)
    const doc = await blocksOf(n1, '/heal/a.bin')
    const victim = doc.blocks.find((b) => b.replicas.some((r) => r.node === n2.handle.id))!
    const file = join(
      n2.dataDir,
      'blocks',
      'finalized',
      String(victim.id % 64),
      `blk_${victim.id}_${victim.genStamp}`,
    )
    const raw = readFileSync(file)
    raw[1000]! ^= 0x5a
    writeFileSync(file, raw)
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
    for (const n of cluster.nodes) expect((await webhdfsOpen(n, '/heal/a.bin')).body.equals(a)).toBe(true)
  }, 180_000)

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
