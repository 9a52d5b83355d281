// One node (metadata + datanode) with a small block capacity: a disk that fills up gives the writer a
// clear error and leaves no damaged file; an inline file that grows past the threshold moves to blocks;
// the block scanner finds a replica that rotted on disk.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeTempDirs, runHopsd, waitFor } from '../helpers/index.js'
import {
  blocksOf,
  flipByte,
  getJ,
  MIB,
  pseudoRandom,
  replicaFile,
  startBlockCluster,
  webhdfsOpen,
  type BCluster,
} from './cluster.js'

let cluster: BCluster

beforeAll(async () => {
  cluster = await startBlockCluster({
    metadata: 1,
    // The scanner fast, so that the test of it does not wait a scan period.
    extraArgs: () => [
      '--block-capacity-bytes',
      String(6 * MIB),
      '--block-scan-bytes-per-s',
      String(64 * MIB),
    ],
  })
}, 180_000)

afterAll(async () => {
  await cluster?.stop()
  removeTempDirs()
})

async function twoStep(
  method: 'PUT' | 'POST',
  path: string,
  op: string,
  data: Uint8Array,
  extra = '',
): Promise<Response> {
  const n = cluster.nodes[0]!
  const s1 = await fetch(`${n.handle.url}/webhdfs/v1${path}?op=${op}&user.name=hopsd${extra}`, {
    method,
    redirect: 'manual',
  })
  expect(s1.status).toBe(307)
  return fetch(s1.headers.get('location')!, { method, body: data })
}

describe('one datanode', () => {
  it('append: an inline file grows past the threshold into blocks, then a file in blocks grows', async () => {
    const n = cluster.nodes[0]!
    const a = pseudoRandom(40_000, 1)
    const b = pseudoRandom(100_000, 2)
    const c = pseudoRandom(1_300_000, 3)
    expect((await twoStep('PUT', '/app/f', 'CREATE', a, `&blocksize=${MIB}`)).status).toBe(201)
    expect((await getJ(n, '/api/v1/fs/stat?path=/app/f&user.name=hopsd')).inlined).toBe(true)
    expect((await twoStep('POST', '/app/f', 'APPEND', b)).status).toBe(200)
    const st = await getJ(n, '/api/v1/fs/stat?path=/app/f&user.name=hopsd')
    expect(st).toMatchObject({ inlined: false, length: 140_000 })
    const before = await getJ(n, '/api/v1/fs/blocks?path=/app/f')
    expect(before.blocks).toHaveLength(1)
    expect((await twoStep('POST', '/app/f', 'APPEND', c)).status).toBe(200)
    const all = Buffer.concat([a, b, c])
    expect((await webhdfsOpen(n, '/app/f')).body.equals(all)).toBe(true)
    // The second append continued the partial last block (a new stamp, the same block) before it began
    // a new one, as HDFS appends do: not a new block per append.
    const doc = await getJ(n, '/api/v1/fs/blocks?path=/app/f')
    expect(doc.blocks.map((x: { length: number }) => x.length)).toEqual([MIB, 140_000 + 1_300_000 - MIB])
    // The same block id, with a newer stamp: continued, not replaced. (Comparing the two blocks' stamps
    // with each other says nothing: other writers take stamps in between.)
    expect(doc.blocks[0].id).toBe(before.blocks[0].id)
    expect(doc.blocks[0].genStamp).toBeGreaterThan(before.blocks[0].genStamp)
    const part = await webhdfsOpen(n, '/app/f', `&offset=139990&length=20`)
    expect(part.body.equals(all.subarray(139_990, 140_010))).toBe(true)
  }, 120_000)

  it('a disk that fills up: DISK_FULL to the writer, no file left behind, earlier files intact', async () => {
    const n = cluster.nodes[0]!
    const big = pseudoRandom(10 * MIB, 4)
    const res = await twoStep('PUT', '/full/x.bin', 'CREATE', big, `&blocksize=${MIB}`)
    expect(res.status).toBe(507)
    const body = (await res.json()) as { RemoteException: { exception: string } }
    expect(body.RemoteException.exception).toBe('DiskOutOfSpaceException')
    const st = await fetch(`${n.handle.url}/webhdfs/v1/full/x.bin?op=GETFILESTATUS&user.name=hopsd`)
    expect(st.status).toBe(404)
    expect((await webhdfsOpen(n, '/app/f')).body.length).toBe(1_440_000)
  }, 120_000)

  it('a datanode is set DRAINING and back by the superuser only (decommissioning state is in Raft)', async () => {
    const n = cluster.nodes[0]!
    const put = (user: string, state: string) =>
      fetch(
        `${n.handle.url}/api/v1/fs/datanodes/state?node=${n.handle.id}&state=${state}&user.name=${user}`,
        { method: 'PUT' },
      )
    expect((await put('alice', 'DRAINING')).status).toBe(403)
    expect(await (await put('hopsd', 'DRAINING')).json()).toEqual({ node: n.handle.id, state: 'DRAINING' })
    await waitFor(async () => (await getJ(n, '/api/v1/fs/health')).datanodes[0].state === 'DRAINING', {
      timeoutMs: 10_000,
    })
    expect((await put('hopsd', 'NORMAL')).status).toBe(200)
  }, 60_000)

  it('hopsd fs fsck: counts and status', async () => {
    const n = cluster.nodes[0]!
    // The failed write's blocks are orphans until the leader's reconcile forgets them.
    await waitFor(async () => (await getJ(n, '/api/v1/fs/health')).blocks === 2, { timeoutMs: 30_000 })
    const r = await runHopsd(['fs', 'fsck', '--addr', n.handle.url, '--user', 'hopsd'], { timeoutMs: 60_000 })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('blocks: 2')
    expect(r.stdout).toContain('under-replicated: 2  missing: 0  corrupt: 0') // replication 3, one datanode
    expect(r.stdout).toContain('Status: HEALTHY')
  }, 120_000)

  it('the block scanner finds a replica that rotted on disk although nobody reads it', async () => {
    const n = cluster.nodes[0]!
    const doc = await blocksOf(n, '/app/f')
    const victim = doc.blocks[doc.blocks.length - 1]!
    flipByte(replicaFile(n, victim), -10, 0x33)
    const h = await waitFor(
      async () => {
        const health = await getJ(n, '/api/v1/fs/health')
        const c = (health.corruptReplicas as { id: number; nodes: string[] }[]).find(
          (x) => x.id === victim.id,
        )
        return c?.nodes.includes(n.handle.id) ? health : undefined
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'the scanner to report the corrupt replica' },
    )
    expect(h.corrupt).toBe(1)
  }, 60_000)
})
