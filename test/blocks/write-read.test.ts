import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { md5md5crc32c, type FileChecksum } from '../../src/fs/index.js'
import { removeTempDirs, waitFor } from '../helpers/index.js'
import {
  getJ,
  MIB,
  pseudoRandom,
  startBlockCluster,
  webhdfsCreate,
  webhdfsOpen,
  type BCluster,
} from './cluster.js'

let cluster: BCluster

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
  }, 240_000)
})
