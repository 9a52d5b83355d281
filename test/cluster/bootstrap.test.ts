/**
 * Issue #4: three metadata nodes in three zones, started at once with --bootstrap-expect 3, assemble
 * one cluster (one leader, 3 voters in 3 zones, one document on every node); `hopsd status` prints it;
 * and a cluster restarted whole never bootstraps again (same cluster id, data still there).
 */
import { describe, expect, it } from 'vitest'
import { runHopsd, type NodeHandle } from '../helpers/index.js'
import { clusterOf, contentFor, putFile, readFile, useCluster, type ClusterDoc } from './harness.js'

describe.sequential('cluster bootstrap (3 nodes, 3 zones, --bootstrap-expect 3)', () => {
  const c = useCluster('bootstrap')
  let nodes: NodeHandle[] = []
  let doc: ClusterDoc
  const files = ['/boot/a', '/boot/b', '/boot/c']

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
    const bootstrapped = nodes.filter((n) => n.logs().stdout.includes('bootstrapping the metadata group'))
    expect(bootstrapped).toHaveLength(1)
  })

  it('hopsd status --addr prints the leader line and one row per voter', async () => {
    const res = await runHopsd(['status', '--addr', nodes[1]!.url])
    expect(res.stderr).toBe('')
    expect(res.code).toBe(0)
    const lines = res.stdout.split('\n')
    expect(lines).toContain(`cluster   ${doc.clusterId}`)
    expect(lines).toContain(`leader    ${doc.leader!.id} (${doc.leader!.zone})`)
    expect(res.stdout).toContain('voters    3 in 3 zone(s); learners 0')
    const rows = lines.filter((l) => /\s(leader|voter|learner)$/.test(l))
    expect(rows).toHaveLength(3)
    expect(rows.filter((l) => l.endsWith('leader'))).toEqual([
      expect.stringMatching(new RegExp(`^${doc.leader!.id}\\s+${doc.leader!.zone}\\s+leader$`)),
    ])
    for (const v of doc.voters)
      expect(rows.some((r) => r.startsWith(`${v.id} `) && r.includes(` ${v.zone} `))).toBe(true)
  })

  it('a cluster restarted whole keeps its cluster id and data, and never bootstraps again', async () => {
    for (const [i, path] of files.entries()) await putFile(nodes[i]!, path, contentFor(path))
    const before = await clusterOf(nodes[0]!)
    // Graceful stop of all three, then start all three again on the same data dirs and ports.
    for (const n of nodes) expect((await n.stop()).code).toBe(0)
    nodes = await Promise.all(nodes.map((n) => c.restart(n, { bootstrapExpect: 3 })))
    const after = await c.waitForAgreement(
      nodes,
      (d) => d.voters.length === 3 && d.commitIndex >= before.commitIndex,
    )
    expect(after.clusterId).toBe(doc.clusterId)
    expect(after.voters.map((v) => v.id)).toEqual(doc.voters.map((v) => v.id))
    for (const n of nodes) {
      expect(n.logs().stdout).not.toContain('bootstrapping the metadata group')
      for (const path of files) expect((await readFile(n, path)).equals(contentFor(path))).toBe(true)
    }
  })
})
