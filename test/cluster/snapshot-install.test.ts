/**
 * Issue 13 (tests): a replica killed during a snapshot install resumes and converges. Three voters
 * hold enough files (4 KiB each, inline) for the leader to take a snapshot and compact its log, so a
 * 4th metadata node that joins can only catch up by receiving that snapshot; it is killed (-9) while
 * the snapshot's chunks are arriving, restarted on the same data dir, and must then install a snapshot
 * and serve every file — and the cluster must not have lost or stalled anything meanwhile.
 */
import { describe, expect, it } from 'vitest'
import { waitFor, type NodeHandle } from '../helpers/index.js'
import { contentFor, putFile, readFile, useCluster, CLUSTER_TEST_TIMEOUT_MS } from './harness.js'

/** Past the Raft driver's snapshotEntries (10,000): the leader snapshots and compacts its log. */
const FILES = 11_000
const FILE_BYTES = 4096
const WRITERS = 16

/** The unlabelled metrics of a node's /metrics, by name. */
async function metrics(node: NodeHandle): Promise<Map<string, number>> {
  const text = await (await fetch(`${node.url}/metrics`)).text()
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+) (\S+)$/.exec(line)
    if (m) out.set(m[1]!, Number(m[2]))
  }
  return out
}

const metric = async (node: NodeHandle, name: string): Promise<number | undefined> =>
  (await metrics(node)).get(name)

const pathOf = (i: number): string => `/snap/d${Math.floor(i / 1000)}/f${i}`

describe.sequential(
  'a learner killed during a snapshot install',
  { timeout: CLUSTER_TEST_TIMEOUT_MS + 120_000 },
  () => {
    const c = useCluster('snapshot-install')

    it('resumes after a restart, installs the snapshot and serves every file', async () => {
      const voters = await c.startMany([{ zone: 'z1' }, { zone: 'z2' }, { zone: 'z3' }], {
        bootstrapExpect: 3,
      })
      const doc = await c.waitForAgreement(voters, (d) => d.voters.length === 3)
      const leader = c.byId(doc.leader!.id)
      let next = 0
      await Promise.all(
        Array.from({ length: WRITERS }, async (_, w) => {
          for (let i = next++; i < FILES; i = next++) {
            await putFile(voters[(w + i) % 3]!, pathOf(i), contentFor(pathOf(i), FILE_BYTES))
          }
        }),
      )
      // The leader's log is compacted behind a snapshot: a new replica cannot catch up from the log.
      await waitFor(async () => ((await metric(leader, 'hopsd_raft_snapshot_index')) ?? 0) >= 10_000, {
        timeoutMs: 60_000,
        what: 'the leader to snapshot',
      })

      const learner = await c.start({ zone: 'z4' }, { bootstrapExpect: 3 })
      // Admission and the node certificate come first; then the leader sends the snapshot in chunks.
      const seen = await waitFor(
        async () => {
          const m = await metrics(learner)
          const receiving = m.get('hopsd_raft_snapshot_receiving_bytes') ?? 0
          if (receiving === 0) return undefined
          learner.kill('SIGKILL')
          return { receiving, installed: m.get('hopsd_raft_snapshots_installed_total') }
        },
        { timeoutMs: 150_000, intervalMs: 5, what: 'the learner to receive snapshot chunks' },
      ).catch(async (err: Error) => {
        throw new Error(
          `${err.message}; learners: ${JSON.stringify((await c.waitForAgreement(voters)).learners)}`,
        )
      })
      expect(seen.receiving).toBeGreaterThan(0)
      expect(seen.installed).toBe(0) // killed mid-install: nothing installed yet
      await waitFor(() => learner.process.exitCode !== null || learner.process.signalCode !== null, {
        timeoutMs: 10_000,
        what: 'the learner to die',
      })

      // The cluster goes on meanwhile.
      await putFile(leader, '/snap/after-kill', contentFor('/snap/after-kill'))

      const again = await c.restart(learner, { bootstrapExpect: 3 })
      await c.waitForAgreement([...voters, again], (d) => d.learners.some((l) => l.id === again.id), {
        timeoutMs: 120_000,
        what: 'the restarted learner to be a learner again',
      })
      // Its replica serves reads (a read barrier waits for it to reach the leader's commit index).
      await waitFor(
        async () => {
          try {
            return (await readFile(again, '/snap/after-kill')).equals(contentFor('/snap/after-kill'))
          } catch {
            return undefined
          }
        },
        { timeoutMs: 120_000, what: 'the restarted learner to serve a file written after the kill' },
      )
      expect(await metric(again, 'hopsd_raft_snapshots_installed_total')).toBeGreaterThanOrEqual(1)
      for (const i of [0, 1, 999, 5_000, FILES - 1])
        expect((await readFile(again, pathOf(i))).equals(contentFor(pathOf(i), FILE_BYTES))).toBe(true)
      const listed = await fetch(`${again.url}/webhdfs/v1/snap/d10?op=LISTSTATUS&user.name=hopsd`).then(
        (r) => r.json() as Promise<{ FileStatuses: { FileStatus: unknown[] } }>,
      )
      expect(listed.FileStatuses.FileStatus.length).toBe(FILES - 10_000)
    })
  },
)
