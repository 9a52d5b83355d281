/**
 * Issue #4, on one 3-node cluster (zones z1..z3, all started at once with --bootstrap-expect 3), in
 * order — each step builds on the state the previous one left:
 *  1. one leader, 3 voters in 3 zones, and every node's /api/v1/cluster agrees; exactly one node
 *     bootstrapped the group; `hopsd status --addr` prints the leader line and 3 voter rows;
 *  2. kill -9 the leader → the two others agree on a new leader within 5 s of the kill, and keep
 *     committing; nothing written before is lost;
 *  3. the old leader restarted (same data dir and ports) rejoins as a follower: its commit index catches
 *     up and every file written before and after the kill reads back from it;
 *  4. the whole cluster stopped and started again never bootstraps again: same cluster id, same voters,
 *     every file still there.
 */
import { describe, expect, it } from 'vitest'
import { runHopsd, waitFor, type NodeHandle } from '../helpers/index.js'
import {
  clusterOf,
  contentFor,
  putFile,
  readFile,
  TEST_TIMINGS,
  useCluster,
  type ClusterDoc,
  CLUSTER_TEST_TIMEOUT_MS,
} from './harness.js'

/** The bound on fail-over, from the kill to a new leader every survivor agrees on. */
const NEW_LEADER_MS_MAX = 5_000
const BOOTSTRAP_LOG = 'bootstrapping the metadata group'

describe.sequential(
  'a 3-node, 3-zone cluster: bootstrap, status, leader fail-over, rejoin, restart',
  { timeout: CLUSTER_TEST_TIMEOUT_MS },
  () => {
    const c = useCluster('three-nodes')
    let nodes: NodeHandle[] = []
    let doc: ClusterDoc
    let oldLeader: NodeHandle
    let survivors: NodeHandle[] = []
    const beforeKill = Array.from({ length: 12 }, (_, i) => `/three/before-${i}`)
    const afterKill = Array.from({ length: 12 }, (_, i) => `/three/after-${i}`)
    const written: string[] = []

    const checkFiles = async (n: NodeHandle, paths: string[]) => {
      for (const path of paths)
        expect((await readFile(n, path)).equals(contentFor(path)), `${path} on ${n.id}`).toBe(true)
    }

    it('elects one leader with 3 voters in 3 zones, and every node agrees on /api/v1/cluster', async () => {
      nodes = await c.startMany([{ zone: 'z1' }, { zone: 'z2' }, { zone: 'z3' }], { bootstrapExpect: 3 })
      doc = await c.waitForAgreement(nodes, (d) => d.voters.length === 3)
      const ids = nodes.map((n) => n.id).sort()
      expect(doc.clusterId).toMatch(/^[0-9a-f-]{36}$/)
      expect(doc.voters.map((v) => v.id)).toEqual(ids)
      expect(doc.learners).toEqual([])
      expect(new Set(doc.voters.map((v) => v.zone))).toEqual(new Set(['z1', 'z2', 'z3']))
      for (const v of doc.voters) expect(v.zone).toBe(c.zoneOf(c.byId(v.id)))
      expect(ids).toContain(doc.leader!.id)
      expect(doc.leader!.zone).toBe(c.zoneOf(c.byId(doc.leader!.id)))
      expect(doc.term).toBeGreaterThan(0)
      // Exactly one node bootstrapped the group (the others learnt it from the leader's log).
      expect(nodes.filter((n) => n.logs().stdout.includes(BOOTSTRAP_LOG))).toHaveLength(1)
    })

    it('hopsd status --addr prints the leader line and one row per voter', async () => {
      const res = await runHopsd(['status', '--addr', nodes[1]!.url])
      expect(res.stderr).toBe('')
      expect(res.code).toBe(0)
      const lines = res.stdout.split('\n')
      expect(lines).toContain(`cluster   ${doc.clusterId}`)
      expect(lines).toContain(`leader    ${doc.leader!.id} (${doc.leader!.zone})`)
      expect(res.stdout).toContain('voters    3 in 3 zone(s); learners 0')
      // Rows: NODE ZONE RAFT LIVENESS; every voter is alive in the answering node's view.
      const rows = lines.filter((l) => /\s(leader|voter|learner)\s+\S+$/.test(l))
      expect(rows).toHaveLength(3)
      expect(rows.filter((l) => /\sleader\s+\S+$/.test(l))).toEqual([
        expect.stringMatching(new RegExp(`^${doc.leader!.id}\\s+${doc.leader!.zone}\\s+leader\\s+alive$`)),
      ])
      for (const v of doc.voters)
        expect(
          rows.some((r) => new RegExp(`^${v.id}\\s+${v.zone}\\s+(leader|voter)\\s+alive$`).test(r)),
        ).toBe(true)
    })

    it('kill -9 of the leader: a new leader within 5 s of the kill', async () => {
      // Writes through every node (followers forward to the leader).
      for (const [i, path] of beforeKill.entries()) await putFile(nodes[i % 3]!, path, contentFor(path))
      written.push(...beforeKill)
      const before = await c.waitForAgreement(nodes, (d) => d.voters.length === 3)
      oldLeader = c.byId(before.leader!.id)
      survivors = nodes.filter((n) => n !== oldLeader)

      const killedAt = Date.now()
      oldLeader.kill('SIGKILL')
      const after = await c.waitForAgreement(
        survivors,
        (d) => d.leader!.id !== oldLeader.id && d.term > before.term,
        { timeoutMs: 30_000, what: 'the survivors to agree on a new leader' },
      )
      const failoverMs = Date.now() - killedAt
      process.stdout.write(
        `three-nodes: new leader ${after.leader!.id} (${after.leader!.zone}) term ${after.term} ${failoverMs} ms after the kill (raft tick ${TEST_TIMINGS.raftTickMs} ms)\n`,
      )
      expect(survivors.map((n) => n.id)).toContain(after.leader!.id)
      expect(failoverMs).toBeLessThan(NEW_LEADER_MS_MAX)
      expect((await oldLeader.exited).signal).toBe('SIGKILL')
    })

    it('the two survivors keep committing and lose nothing written before the kill', async () => {
      for (const [i, path] of afterKill.entries()) await putFile(survivors[i % 2]!, path, contentFor(path))
      written.push(...afterKill)
      for (const n of survivors) await checkFiles(n, written)
    })

    it('the old leader restarted on the same data dir rejoins as a follower and loses no commit', async () => {
      const target = await clusterOf(survivors[0]!)
      const restarted = await c.restart(oldLeader)
      expect(restarted.id).toBe(oldLeader.id)
      nodes = [...survivors, restarted]
      const rejoined = await c.waitForAgreement(
        nodes,
        (d) =>
          d.voters.length === 3 &&
          d.leader!.id !== oldLeader.id &&
          d.voters.some((v) => v.id === oldLeader.id),
        { what: 'the restarted node to agree with the survivors' },
      )
      expect(rejoined.leader!.id).toBe(target.leader!.id)
      expect(rejoined.clusterId).toBe(doc.clusterId)
      // Its commit index catches up with what the survivors had committed.
      await waitFor(async () => (await clusterOf(restarted)).commitIndex >= target.commitIndex, {
        timeoutMs: 30_000,
        what: `the restarted node's commit index to reach ${target.commitIndex}`,
      })
      await checkFiles(restarted, written)
      // And it takes part in new commits.
      await putFile(restarted, '/three/from-restarted', contentFor('/three/from-restarted'))
      written.push('/three/from-restarted')
      for (const n of nodes) await checkFiles(n, ['/three/from-restarted'])
      expect(restarted.logs().stdout).not.toContain(BOOTSTRAP_LOG)
    })

    it('a cluster restarted whole keeps its cluster id and data, and never bootstraps again', async () => {
      const before = await c.waitForAgreement(nodes, (d) => d.voters.length === 3)
      // Graceful stop of all three, then start all three again on the same data dirs and ports, with the
      // same --bootstrap-expect: their Raft state, not the flag, decides.
      for (const n of nodes) expect((await n.stop()).code).toBe(0)
      nodes = await Promise.all(nodes.map((n) => c.restart(n, { bootstrapExpect: 3 })))
      const after = await c.waitForAgreement(
        nodes,
        (d) => d.voters.length === 3 && d.commitIndex >= before.commitIndex,
      )
      expect(after.clusterId).toBe(doc.clusterId)
      expect(after.voters.map((v) => v.id)).toEqual(doc.voters.map((v) => v.id))
      for (const n of nodes) {
        expect(n.logs().stdout).not.toContain(BOOTSTRAP_LOG)
        await checkFiles(n, written)
      }
    })
  },
)
