/**
 * Issue #4: kill -9 the Raft leader of a 3-node, 3-zone cluster → the two others elect a new leader
 * within 5 s of the kill; the old leader, restarted on the same data dir and ports, rejoins as a
 * follower and loses no commit (every file written before and after the kill reads back from it, and
 * its commit index catches up with the cluster's).
 */
import { describe, expect, it } from 'vitest'
import { waitFor, type NodeHandle } from '../helpers/index.js'
import {
  clusterOf,
  contentFor,
  putFile,
  readFile,
  TEST_TIMINGS,
  useCluster,
  type ClusterDoc,
} from './harness.js'

/** The bound on fail-over, from the kill to a new leader every survivor agrees on. */
const NEW_LEADER_MS_MAX = 5_000

describe.sequential('leader fail-over (kill -9) and rejoin', () => {
  const c = useCluster('failover')
  let nodes: NodeHandle[] = []
  let before: ClusterDoc
  let oldLeader: NodeHandle
  let survivors: NodeHandle[] = []
  const beforeKill = Array.from({ length: 12 }, (_, i) => `/failover/before-${i}`)
  const afterKill = Array.from({ length: 12 }, (_, i) => `/failover/after-${i}`)

  it('a new leader within 5 s of killing the leader', async () => {
    nodes = await c.startMany([{ zone: 'z1' }, { zone: 'z2' }, { zone: 'z3' }], { bootstrapExpect: 3 })
    await c.waitForAgreement(nodes, (d) => d.voters.length === 3)
    // Writes through every node (followers forward to the leader).
    for (const [i, path] of beforeKill.entries()) await putFile(nodes[i % 3]!, path, contentFor(path))
    before = await c.waitForAgreement(nodes, (d) => d.voters.length === 3)
    oldLeader = c.byId(before.leader!.id)
    survivors = nodes.filter((n) => n !== oldLeader)

    const killedAt = Date.now()
    oldLeader.kill('SIGKILL')
    const after = await c.waitForAgreement(
      survivors,
      (d) => d.leader!.id !== oldLeader.id && d.term > before.term,
      {
        timeoutMs: 30_000,
        what: 'the survivors to agree on a new leader',
      },
    )
    const failoverMs = Date.now() - killedAt
    process.stdout.write(
      `failover: new leader ${after.leader!.id} (${after.leader!.zone}) term ${after.term} ${failoverMs} ms after the kill (raft tick ${TEST_TIMINGS.raftTickMs} ms)\n`,
    )
    expect(survivors.map((n) => n.id)).toContain(after.leader!.id)
    expect(failoverMs).toBeLessThan(NEW_LEADER_MS_MAX)
    expect((await oldLeader.exited).signal).toBe('SIGKILL')
  })

  it('the cluster commits through the survivors and keeps what was written before', async () => {
    for (const [i, path] of afterKill.entries()) await putFile(survivors[i % 2]!, path, contentFor(path))
    for (const n of survivors)
      for (const path of [...beforeKill, ...afterKill])
        expect((await readFile(n, path)).equals(contentFor(path))).toBe(true)
  })

  it('the old leader restarted on the same data dir rejoins as a follower and loses no commit', async () => {
    const target = await clusterOf(survivors[0]!)
    const restarted = await c.restart(oldLeader)
    expect(restarted.id).toBe(oldLeader.id)
    const all = [...survivors, restarted]
    const doc = await c.waitForAgreement(
      all,
      (d) =>
        d.voters.length === 3 && d.leader!.id !== oldLeader.id && d.voters.some((v) => v.id === oldLeader.id),
      { what: 'the restarted node to agree with the survivors' },
    )
    expect(doc.leader!.id).toBe(target.leader!.id)
    // Its commit index catches up with the cluster's (at least what the survivors had committed).
    await waitFor(async () => (await clusterOf(restarted)).commitIndex >= target.commitIndex, {
      timeoutMs: 30_000,
      what: `the restarted node's commit index to reach ${target.commitIndex}`,
    })
    for (const path of [...beforeKill, ...afterKill])
      expect((await readFile(restarted, path)).equals(contentFor(path))).toBe(true)
    // And it takes part in new commits.
    await putFile(restarted, '/failover/from-restarted', contentFor('/failover/from-restarted'))
    for (const n of all)
      expect(
        (await readFile(n, '/failover/from-restarted')).equals(contentFor('/failover/from-restarted')),
      ).toBe(true)
  })
})
