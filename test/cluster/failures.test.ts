/**
 * Issue 12 item 7, failures told truthfully, on five real nodes: three metadata nodes (z1..z3) and two
 * datanodes (z1, z2), as a deployment with dedicated metadata hosts runs them.
 *  - A node with another swarm key, and a node whose --join names an HTTP port, each say exactly that
 *    in one error line (SWARM_KEY_MISMATCH, NOT_A_P2P_PORT) within seconds, and only once while their
 *    retries go on.
 *  - Datanode capacity in GET /api/v1/nodes is measured: the data dir's file system (statfs) and the
 *    bytes of the block replicas the datanode holds.
 *  - After kill -9 of a datanode and then of the metadata leader, every view says they are dead:
 *    /api/v1/nodes (liveness dead, state unknown — never `alive`), `hopsd status` (voter, dead),
 *    `hopsd fs fsck` (1 live of 2 datanodes, the dead one listed) — also from the new leader, which
 *    never heard from the dead datanode.
 *  - /api/v1/fs/health, polled on the surviving metadata nodes through the leader change and on the
 *    last one left without a quorum, answers from the leader's knowledge (no block missing: the live
 *    datanode holds them all) or 503 UNAVAILABLE — never every block missing.
 */
import { statfsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runHopsd, startNode, waitFor, writeSwarmKey, type NodeHandle } from '../helpers/index.js'
import {
  clusterOf,
  timingArgs,
  useCluster,
  viewOf,
  CLUSTER_TEST_TIMEOUT_MS,
  USER,
  type StartedNode,
} from './harness.js'

const MIB = 1024 * 1024

interface Health {
  blocks: number
  missing: number
  underReplicated: number
  datanodes: { id: string; live: boolean }[]
}

/** GET /api/v1/fs/health: the status and the body (a report, or an error). */
async function health(n: NodeHandle): Promise<{ status: number; body: any }> {
  const res = await fetch(`${n.url}/api/v1/fs/health`, { signal: AbortSignal.timeout(15_000) })
  return { status: res.status, body: await res.json() }
}

/** Lines of the node's JSON log whose `code` is `code`. */
function logLines(n: NodeHandle, code: string): { address: string; msg: string }[] {
  return n
    .logs()
    .stdout.split('\n')
    .filter((l) => l.includes(`"code":"${code}"`))
    .map((l) => JSON.parse(l) as { address: string; msg: string })
}

async function createFile(n: NodeHandle, path: string, data: Buffer, params: string): Promise<void> {
  const step1 = await fetch(
    `${n.url}/webhdfs/v1${path}?op=CREATE&user.name=${USER}&overwrite=true${params}`,
    { method: 'PUT', redirect: 'manual', signal: AbortSignal.timeout(30_000) },
  )
  if (step1.status !== 307) throw new Error(`CREATE step one: ${step1.status} ${await step1.text()}`)
  const step2 = await fetch(step1.headers.get('location')!, {
    method: 'PUT',
    body: data,
    signal: AbortSignal.timeout(120_000),
  })
  if (step2.status !== 201) throw new Error(`CREATE step two: ${step2.status} ${await step2.text()}`)
}

describe.sequential('failures told truthfully', { timeout: 2 * CLUSTER_TEST_TIMEOUT_MS }, () => {
  const c = useCluster('failures')
  let meta: NodeHandle[] = []
  let dn: NodeHandle[] = []
  let nodes: StartedNode[] = []

  it('a node with another swarm key, and one joining an HTTP port, say so in one line each', async () => {
    const started = await c.startMany(
      [
        { zone: 'z1', roles: ['metadata'] },
        { zone: 'z2', roles: ['metadata'] },
        { zone: 'z3', roles: ['metadata'] },
        { zone: 'z1', roles: ['datanode'] },
        { zone: 'z2', roles: ['datanode'] },
      ],
      { bootstrapExpect: 3 },
    )
    meta = started.slice(0, 3)
    dn = started.slice(3)
    nodes = [...c.started]
    await c.waitForAgreement(meta, (d) => d.voters.length === 3)
    // The datanodes' capacity and blocks reach the metadata nodes once the peer gate verified them.
    await c.awaitCertified(nodes)

    const seeds = nodes.map((n) => n.p2p)
    const wrongKey = startNode({
      dataDir: join(c.dir, 'wrong-key'),
      zone: 'z3',
      roles: ['datanode'],
      join: seeds,
      extraArgs: [...timingArgs(), '--swarm-key', writeSwarmKey(join(c.dir, 'wrong-swarm.key'))],
      env: { HOPSD_LOG_LEVEL: 'debug' },
      readyTimeoutMs: 90_000,
    })
    const httpJoin = startNode({
      dataDir: join(c.dir, 'http-join'),
      zone: 'z3',
      roles: ['datanode'],
      join: [nodes[0]!.http],
      extraArgs: [...timingArgs(), '--swarm-key', c.swarmKeyFile],
      readyTimeoutMs: 90_000,
    })
    const [wk, hj] = await Promise.all([wrongKey, httpJoin])
    try {
      // Each address named within seconds of the start (the API answered before; joins run behind).
      await waitFor(
        () => seeds.every((a) => logLines(wk, 'SWARM_KEY_MISMATCH').some((l) => l.address === a)),
        {
          timeoutMs: 15_000,
          what: 'a SWARM_KEY_MISMATCH line for every --join address',
        },
      )
      await waitFor(() => logLines(hj, 'NOT_A_P2P_PORT').length > 0, {
        timeoutMs: 15_000,
        what: 'a NOT_A_P2P_PORT line',
      })
      const mismatch = logLines(wk, 'SWARM_KEY_MISMATCH')
      expect(mismatch[0]!.msg).toContain('holds a different swarm key')
      const wrongPort = logLines(hj, 'NOT_A_P2P_PORT')
      expect(wrongPort).toHaveLength(1)
      expect(wrongPort[0]!.address).toBe(nodes[0]!.http)
      expect(wrongPort[0]!.msg).toContain('an HTTP server answered "HTTP/1.1 400 Bad Request"')

      // The retries go on (debug lines), the named failure is not repeated.
      const retries = () =>
        wk
          .logs()
          .stdout.split('\n')
          .filter((l) => l.includes('join: no answer yet')).length
      const before = retries()
      await waitFor(() => retries() >= before + 3 * seeds.length, {
        timeoutMs: 30_000,
        what: 'more join retries',
      })
      for (const a of seeds)
        expect(logLines(wk, 'SWARM_KEY_MISMATCH').filter((l) => l.address === a)).toHaveLength(1)
      expect(logLines(hj, 'NOT_A_P2P_PORT')).toHaveLength(1)
      // And neither got in.
      for (const v of await Promise.all(meta.map((n) => viewOf(n))))
        expect(v.map((e) => e.id)).not.toContain(wk.id)
    } finally {
      await Promise.all([wk.stop(), hj.stop()])
    }
  })

  it('datanode capacity in /api/v1/nodes is measured: statfs of the data dir, block bytes held', async () => {
    await waitFor(async () => (await health(meta[0]!)).status === 200, {
      timeoutMs: 60_000,
      what: 'the fsck report',
    })
    // 3 blocks of 1 MiB on both datanodes (replication 2).
    await createFile(meta[0]!, '/failures/big', Buffer.alloc(3 * MIB, 7), '&replication=2&blocksize=1048576')
    const fs = statfsSync(nodes[3]!.dataDir)
    const view = await waitFor(
      async () => {
        const v = (await (await fetch(`${meta[0]!.url}/api/v1/nodes`)).json()) as {
          nodes: { id: string; capacity: Record<string, number> }[]
        }
        const ok = dn.every(
          (d) => (v.nodes.find((n) => n.id === d.id)?.capacity['blockBytesUsed'] ?? 0) >= 3 * MIB,
        )
        return ok ? v.nodes : undefined
      },
      { timeoutMs: 30_000, what: 'both datanodes publishing 3 MiB of blocks' },
    )
    for (const n of view) {
      const cap = n.capacity
      // Every data dir of this test is on the same file system as the first datanode's.
      expect(cap['diskBytesTotal']).toBe(fs.blocks * fs.bsize)
      expect(cap['diskBytesUsed']).toBeGreaterThan(0)
      expect(cap['diskBytesFree']).toBeGreaterThan(0)
      expect(cap['diskBytesUsed']! + cap['diskBytesFree']!).toBeLessThanOrEqual(cap['diskBytesTotal']!)
      expect(cap['cpuCores']).toBeGreaterThan(0)
      expect(cap['memoryBytes']).toBeGreaterThan(0)
      const isDatanode = dn.some((d) => d.id === n.id)
      if (isDatanode) expect(cap['blockBytesUsed']).toBeGreaterThanOrEqual(3 * MIB)
      else expect(cap['blockBytesUsed']).toBe(0)
    }
  })

  it('kill -9 of a datanode, then of the leader: every view says dead; fs/health never lies', async () => {
    const [d1, d2] = dn as [NodeHandle, NodeHandle]
    d2.kill('SIGKILL')
    // /api/v1/nodes: dead, and a state that does not say otherwise.
    await waitFor(
      async () =>
        (await Promise.all(meta.map((m) => viewOf(m)))).every(
          (v) => v.find((e) => e.id === d2.id)?.liveness === 'dead',
        ),
      { timeoutMs: 20_000, what: 'the killed datanode dead in every metadata view' },
    )
    for (const m of meta) {
      const entry = (await viewOf(m)).find((e) => e.id === d2.id) as unknown as { state: string }
      expect(entry.state).toBe('unknown')
    }
    const fsck = async (via: NodeHandle) => {
      const r = await runHopsd(['fs', 'fsck', '--addr', via.url, '--user', USER], { timeoutMs: 60_000 })
      return r.stdout
    }
    const before = await waitFor(
      async () => {
        const out = await fsck(meta[0]!)
        return out.includes('datanodes: 1 live of 2') ? out : undefined
      },
      { timeoutMs: 30_000, what: 'fsck counting the killed datanode down' },
    )
    expect(before).toContain(`DATANODE_DOWN ${d2.id}`)

    // Kill the leader; poll fs/health on the other two metadata nodes through the change.
    const leaderId = (await clusterOf(meta[0]!)).leader!.id
    const leader = meta.find((m) => m.id === leaderId)!
    const survivors = meta.filter((m) => m !== leader)
    const answers: { node: string; status: number; body: any }[] = []
    let polling = true
    const poller = (async () => {
      while (polling) {
        for (const s of survivors) {
          try {
            answers.push({ node: s.id, ...(await health(s)) })
          } catch {
            // a request cut off: no answer, nothing to check
          }
        }
        await new Promise((r) => setTimeout(r, 50))
      }
    })()
    leader.kill('SIGKILL')
    try {
      const doc = await c.waitForAgreement(survivors, (d) => d.leader !== null && d.leader.id !== leaderId)
      // Both survivors answer from the new leader, which never heard from the dead datanode.
      await waitFor(
        async () => (await Promise.all(survivors.map((s) => health(s)))).every((h) => h.status === 200),
        { timeoutMs: 30_000, what: 'a report from the new leader' },
      )
      const report = (await health(survivors[0]!)).body as Health
      expect(report.datanodes.find((d) => d.id === d2.id)?.live).toBe(false)
      expect(report.datanodes.find((d) => d.id === d1.id)?.live).toBe(true)
      expect(report.missing).toBe(0)
      const after = await fsck(survivors[0]!)
      expect(after).toContain('datanodes: 1 live of 2')
      expect(after).toContain(`DATANODE_DOWN ${d2.id}`)

      // hopsd status and /api/v1/cluster: the killed leader is a voter, dead.
      await waitFor(
        async () =>
          (await clusterOf(survivors[0]!)).voters.find((v) => v.id === leaderId)?.liveness === 'dead',
        { timeoutMs: 20_000, what: 'the old leader dead in the cluster document' },
      )
      const status = await runHopsd(['status', '--addr', survivors[0]!.url], { timeoutMs: 30_000 })
      expect(status.code).toBe(0)
      const row = status.stdout.split('\n').find((l) => l.startsWith(leaderId))
      expect(row?.split(/\s+/).slice(2)).toEqual(['voter', 'dead'])
      expect(status.stdout).toContain(`leader    ${doc.leader!.id}`)
      expect(status.stdout).toMatch(/voters {4}3 in 3 zone\(s\) \(1 dead\)/)

      // Take away the quorum: the follower left alone cannot know, and says so.
      const newLeader = survivors.find((s) => s.id === doc.leader!.id)!
      const alone = survivors.find((s) => s !== newLeader)!
      newLeader.kill('SIGKILL')
      const unavailable = await waitFor(
        async () => {
          const h = await health(alone)
          return h.status === 503 ? h.body : undefined
        },
        { timeoutMs: 30_000, what: '503 from the metadata node without a quorum' },
      )
      expect(unavailable.error.code).toBe('UNAVAILABLE')
    } finally {
      polling = false
      await poller
    }
    const reports = answers.filter((a) => a.status === 200)
    const refused = answers.filter((a) => a.status !== 200)
    expect(reports.length + refused.length).toBeGreaterThan(10)
    for (const r of reports)
      expect({ node: r.node, missing: (r.body as Health).missing }).toEqual({ node: r.node, missing: 0 })
    for (const r of refused)
      expect({ status: r.status, code: r.body?.error?.code }).toEqual({ status: 503, code: 'UNAVAILABLE' })
  })
})
