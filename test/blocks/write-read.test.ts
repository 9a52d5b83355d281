import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { md5md5crc32c, type FileChecksum } from '../../src/fs/index.js'
import { removeTempDirs, waitFor } from '../helpers/index.js'
import {
  blocksOf,
  getJ,
  MIB,
  pseudoRandom,
  replicaFile,
  startBlockCluster,
  webhdfsDelete,
  webhdfsCreate,
  webhdfsOpen,
  type BCluster,
  type BNode,
} from './cluster.js'

let cluster: BCluster

type Reports = Record<'full' | 'incremental' | 'refused', number>

/** The block reports `n` took as the metadata leader (hopsd_block_reports_total by kind). */
async function reportsTaken(n: BNode): Promise<Reports> {
  const text = await (await fetch(`${n.handle.url}/metrics`)).text()
  const out: Reports = { full: 0, incremental: 0, refused: 0 }
  for (const m of text.matchAll(/^hopsd_block_reports_total\{kind="(\w+)"\} (\d+)$/gm))
    out[m[1] as keyof Reports] = Number(m[2])
  return out
}

/** Deletes `path` through `via` and waits until none of its `replicas` replica files is on a disk. */
async function deleteAndSeeReplicasGo(via: BNode, path: string, replicas: number): Promise<void> {
  const doc = await blocksOf(via, path)
  const files = doc.blocks.flatMap((b) =>
    b.replicas.map((r) =>
      replicaFile(
        cluster.nodes.find((n) => n.handle.id === r.node)!,
        b,
      ),
    ),
  )
  expect(files.length).toBe(replicas)
  expect(files.every((f) => existsSync(f))).toBe(true)
  expect(await webhdfsDelete(via, path)).toBe(true)
  await waitFor(() => files.every((f) => !existsSync(f)), {
    timeoutMs: 30_000,
    intervalMs: 100,
    what: `the replicas of ${path} gone from the disks after its delete`,
  })
}

/** Block streams opened (out) and served (in) by every node, by transport (hopsd_dataplane_streams_total). */
async function blockStreams(): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const n of cluster.nodes) {
    const text = await (await fetch(`${n.handle.url}/metrics`)).text()
    for (const m of text.matchAll(
      /^hopsd_dataplane_streams_total\{transport="(\w+)",direction="(\w+)"\} (\d+)$/gm,
    ))
      out[`${m[1]} ${m[2]}`] = (out[`${m[1]} ${m[2]}`] ?? 0) + Number(m[3])
  }
  return out
}

async function leaderOf(via: BNode): Promise<BNode> {
  const id = (await getJ(via, '/api/v1/cluster')).leader?.id as string | undefined
  const leader = cluster.nodes.find((n) => n.handle.id === id)
  if (leader === undefined) throw new Error(`no leader known to ${via.name}`)
  return leader
}

beforeAll(async () => {
  cluster = await startBlockCluster({ metadata: 3, datanodes: 1 })
}, 180_000)

afterAll(async () => {
  await cluster?.stop()
  removeTempDirs()
})

describe('files in blocks on a 4-node, 3-zone cluster', () => {
  it('a 20 MiB file with 1 MiB blocks: every block on 3 nodes in 3 zones, byte-identical from every node', async () => {
    const data = pseudoRandom(20 * MIB, 42)
    const res = await webhdfsCreate(cluster.nodes[0]!, '/big/a.bin', data, `&blocksize=${MIB}`)
    expect(res.status, await res.clone().text()).toBe(201)
    const doc = await getJ(cluster.nodes[1]!, '/api/v1/fs/blocks?path=/big/a.bin')
    expect(doc.length).toBe(20 * MIB)
    expect(doc.inlined).toBe(false)
    expect(doc.blocks).toHaveLength(20)
    for (const b of doc.blocks as { replicas: { node: string; zone: string }[] }[]) {
      if (b.replicas.length !== 3)
        console.error(
          JSON.stringify(doc.blocks),
          cluster
            .logTails(400)
            .split('\n')
            .filter((l) => /pipeline|warn/.test(l))
            .slice(-20)
            .join('\n'),
        )
      expect(new Set(b.replicas.map((r) => r.node)).size).toBe(3)
      expect(new Set(b.replicas.map((r) => r.zone)).size).toBe(3)
    }
    for (const n of cluster.nodes) {
      const r = await webhdfsOpen(n, '/big/a.bin')
      expect(r.status).toBe(200)
      expect(r.body.equals(data), `read through ${n.name}`).toBe(true)
    }
    // offset/length across a block boundary
    const part = await webhdfsOpen(
      cluster.nodes[3]!,
      '/big/a.bin',
      `&offset=${MIB - 100}&length=${MIB + 200}`,
    )
    expect(part.body.equals(data.subarray(MIB - 100, 2 * MIB + 100))).toBe(true)
    // the native content route serves files in blocks too (offset/length across a boundary)
    const nativeRes = await fetch(
      `${cluster.nodes[1]!.handle.url}/api/v1/fs/files?path=/big/a.bin&offset=${3 * MIB - 7}&length=${MIB + 14}`,
    )
    expect(nativeRes.status).toBe(200)
    const nativeBody = Buffer.from(await nativeRes.arrayBuffer())
    expect(nativeBody.equals(data.subarray(3 * MIB - 7, 4 * MIB + 7))).toBe(true)
    // GETFILECHECKSUM of a file in blocks: HDFS's MD5-of-MD5-of-CRC32C over its 1 MiB blocks, the
    // value the same bytes have when computed in one piece (as for an inline file)
    const sumRes = await fetch(`${cluster.nodes[2]!.handle.url}/webhdfs/v1/big/a.bin?op=GETFILECHECKSUM`)
    expect(sumRes.status).toBe(200)
    const sum = ((await sumRes.json()) as { FileChecksum: FileChecksum }).FileChecksum
    expect(sum).toEqual(md5md5crc32c(data, MIB))
    expect(sum.algorithm).toBe('MD5-of-2048MD5-of-512CRC32C')
    // small files stay inline, written through the datanode route
    const small = await webhdfsCreate(cluster.nodes[2]!, '/big/small.txt', Buffer.from('hello'))
    expect(small.status).toBe(201)
    expect(
      (await getJ(cluster.nodes[0]!, '/api/v1/fs/stat?path=/big/small.txt&user.name=hopsd')).inlined,
    ).toBe(true)
    const h = await waitFor(
      async () => {
        const doc = await getJ(cluster.nodes[0]!, '/api/v1/fs/health')
        return doc.underReplicated === 0 && doc.missing === 0 ? doc : undefined
      },
      { timeoutMs: 20_000 },
    )
    expect(h.blocks).toBe(20)
    // All of it moved over the TLS data plane: at least two remote hops per block, and the remote
    // reads; nothing fell back to libp2p (every node is certified and advertises its address).
    const streams = await blockStreams()
    expect(streams['tls out'] ?? 0).toBeGreaterThanOrEqual(40)
    expect(streams['tls in']).toBe(streams['tls out'])
    expect(streams['libp2p out'] ?? 0).toBe(0)
  }, 240_000)

  it('readers that hang up mid-file: every node goes on serving, and the next reads of the file are whole', async () => {
    const data = pseudoRandom(20 * MIB, 42) // /big/a.bin, written by the test above
    for (const n of cluster.nodes) {
      const ctl = new AbortController()
      const res = await fetch(`${n.handle.url}/webhdfs/v1/big/a.bin?op=OPEN&user.name=hopsd`, {
        signal: ctl.signal,
      })
      expect(res.status).toBe(200)
      const reader = res.body!.getReader()
      expect((await reader.read()).done).toBe(false)
      ctl.abort()
      await reader.closed.catch(() => undefined)
    }
    for (const n of cluster.nodes) {
      const r = await webhdfsOpen(n, '/big/a.bin')
      expect(r.status).toBe(200)
      expect(r.body.equals(data), `read through ${n.name} after the hang-ups`).toBe(true)
    }
  }, 120_000)

  it("block reports are incremental between full ones; a deleted file's replicas leave every disk", async () => {
    const leader = await leaderOf(cluster.nodes[0]!)
    const reports = (): Promise<Reports> => reportsTaken(leader)
    const r0 = await reports()
    // one full report per datanode at least (this leader's term), then increments only
    expect(r0.full).toBeGreaterThanOrEqual(cluster.nodes.length)
    const r1 = await waitFor(
      async () => {
        const r = await reports()
        return r.incremental >= r0.incremental + 3 * cluster.nodes.length ? r : undefined
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'three more heartbeats from every datanode' },
    )
    expect(r1.full, 'no full report while the leader and the datanodes stay up').toBe(r0.full)

    // Deleting a file orphans its blocks; the leader hands their deletion to the holders (no full
    // report would list them again).
    await deleteAndSeeReplicasGo(cluster.nodes[1]!, '/big/a.bin', 60)
    expect((await reports()).full).toBe(r0.full)
  }, 120_000)

  it('after the metadata leader dies, the new one takes a full report from each datanode before increments', async () => {
    const old = await leaderOf(cluster.nodes[0]!)
    old.handle.kill('SIGKILL')
    await old.handle.exited
    const survivors = cluster.nodes.filter((n) => n !== old)
    const via = survivors.find((n) => n.roles.includes('metadata'))!
    const leader = await waitFor(
      async () => {
        const l = await leaderOf(via).catch(() => undefined)
        return l !== undefined && l !== old ? l : undefined
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'a new metadata leader' },
    )
    // Each surviving datanode's first incremental report is refused (none full in this term), then
    // its full report is taken, then increments again.
    const r = await waitFor(
      async () => {
        const x = await reportsTaken(leader)
        return x.full >= survivors.length && x.incremental >= survivors.length ? x : undefined
      },
      // 60 s: each datanode must first learn of the new leader (gossip) on a host the whole suite loads.
      { timeoutMs: 60_000, intervalMs: 100, what: 'a full report from every surviving datanode' },
    )
    expect(r.refused).toBeGreaterThanOrEqual(1)
    // The map is right under the new leader: a new file's replicas leave the disks when it is deleted.
    const data = pseudoRandom(2 * MIB + 5, 7)
    const res = await webhdfsCreate(via, '/big/after.bin', data, `&blocksize=${MIB}`)
    expect(res.status, await res.clone().text()).toBe(201)
    await deleteAndSeeReplicasGo(via, '/big/after.bin', 9)
  }, 120_000)
})
