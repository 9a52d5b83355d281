/**
 * Issue #4, five nodes: three metadata nodes (z1..z3) and two nodes without the metadata role
 * (--roles datanode).
 *  - The membership view converges within 5 s after a node starts (every view lists all 5 alive), and
 *    within 5 s after one dies (kill -9: every other view shows it dead), with test timings.
 *  - A node without the metadata role sees the cluster through forwarding: its /api/v1/cluster is the
 *    metadata nodes' document, and a file PUT through it is committed and readable from a metadata node.
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
  viewOf,
  CLUSTER_TEST_TIMEOUT_MS,
} from './harness.js'

/** The bound on membership convergence, with test timings. */
const CONVERGE_MS_MAX = 5_000

describe.sequential(
  'membership of 5 nodes, and forwarding from a node without the metadata role',
  { timeout: CLUSTER_TEST_TIMEOUT_MS },
  () => {
    const c = useCluster('membership')
    let meta: NodeHandle[] = []
    let plain: NodeHandle // --roles datanode, started with the metadata nodes
    let late: NodeHandle // --roles datanode, the 5th node, started into the converged 4

    /** Every node in `watchers` lists every node of `expected` with `liveness` (and nothing else alive). */
    const viewsShow = async (watchers: NodeHandle[], expected: NodeHandle[], liveness: string) => {
      const views = await Promise.all(watchers.map((n) => viewOf(n)))
      return views.every((v) =>
        expected.every((m) => v.some((e) => e.id === m.id && e.liveness === liveness)),
      )
    }

    it('the 5th node is in every view, and sees all 5 alive, within 5 s of its start', async () => {
      const started = await c.startMany(
        [{ zone: 'z1' }, { zone: 'z2' }, { zone: 'z3' }, { zone: 'z1', roles: ['datanode'] }],
        { bootstrapExpect: 3 },
      )
      meta = started.slice(0, 3)
      plain = started[3]!
      await c.waitForAgreement(meta, (d) => d.voters.length === 3)
      await waitFor(() => viewsShow(started, started, 'alive'), {
        timeoutMs: 30_000,
        what: '4 nodes alive in 4 views',
      })

      late = await c.start({ zone: 'z2', roles: ['datanode'] }, { bootstrapExpect: 3 })
      const healthyAt = Date.now()
      const all = [...started, late]
      await waitFor(() => viewsShow(all, all, 'alive'), {
        timeoutMs: 30_000,
        intervalMs: 50,
        what: '5 nodes alive in 5 views',
      })
      const convergedMs = Date.now() - healthyAt
      process.stdout.write(
        `membership: 5 views list 5 alive ${convergedMs} ms after the 5th node answered /health\n`,
      )
      expect(convergedMs).toBeLessThan(CONVERGE_MS_MAX)
      // Roles and zones travel with the view.
      const view = await viewOf(meta[0]!)
      expect(view.find((e) => e.id === late.id)).toMatchObject({ zone: 'z2', roles: ['datanode'] })
      expect(view.find((e) => e.id === plain.id)).toMatchObject({ zone: 'z1', roles: ['datanode'] })
    })

    it('a node without the metadata role shows the metadata nodes’ /api/v1/cluster, through forwarding', async () => {
      const doc = await c.waitForAgreement([...meta, plain, late], (d) => d.voters.length === 3)
      expect(doc.voters.map((v) => v.id).sort()).toEqual(meta.map((n) => n.id).sort())
      expect(doc.learners).toEqual([])
      const fromPlain = await clusterOf(plain)
      const fromMeta = await clusterOf(meta[0]!)
      expect(fromPlain.clusterId).toBe(fromMeta.clusterId)
      expect(fromPlain.term).toBe(fromMeta.term)
      // Every node of the view is in the zones map, the plain nodes included.
      expect(fromPlain.zones['z1']).toContain(plain.id)
      expect(fromPlain.zones['z2']).toContain(late.id)
    })

    it('a file PUT through the node without the metadata role is committed and readable from a metadata node', async () => {
      const before = (await clusterOf(meta[0]!)).commitIndex
      for (let i = 0; i < 5; i++) await putFile(plain, `/fwd/f${i}`, contentFor(`/fwd/f${i}`))
      for (const n of [...meta, plain, late])
        for (let i = 0; i < 5; i++)
          expect((await readFile(n, `/fwd/f${i}`)).equals(contentFor(`/fwd/f${i}`))).toBe(true)
      expect((await clusterOf(meta[0]!)).commitIndex).toBeGreaterThanOrEqual(before + 5)
    })

    it('a node killed with -9 is dead in every other view within 5 s', async () => {
      const others = [...meta, plain]
      const killedAt = Date.now()
      late.kill('SIGKILL')
      await waitFor(() => viewsShow(others, [late], 'dead'), {
        timeoutMs: 30_000,
        intervalMs: 50,
        what: 'the killed node dead in 4 views',
      })
      const deadMs = Date.now() - killedAt
      process.stdout.write(
        `membership: killed node dead in 4 views ${deadMs} ms after the kill (dead after ${TEST_TIMINGS.deadAfterMs} ms)\n`,
      )
      expect(deadMs).toBeLessThan(CONVERGE_MS_MAX)
      // The others stay alive in every view.
      expect(await viewsShow(others, others, 'alive')).toBe(true)
    })
  },
)
