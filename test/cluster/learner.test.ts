/**
 * Issue #4: a 4th metadata node (zone z4) joins a 3-voter cluster as a learner; when a voter that is
 * not the leader dies (kill -9), the leader promotes the learner once the voter-grace period passes and
 * then removes the dead voter: voters stay 3, in 3 distinct zones.
 */
import { describe, expect, it } from 'vitest'
import type { NodeHandle } from '../helpers/index.js'
import {
  contentFor,
  putFile,
  readFile,
  TEST_TIMINGS,
  useCluster,
  type ClusterDoc,
  CLUSTER_TEST_TIMEOUT_MS,
} from './harness.js'

/** The bound with test timings (dead after 2 s, voter grace 2 s, gossip 150 ms). */
const PROMOTION_MS_MAX = 30_000

describe.sequential(
  'learner join and promotion on a dead voter',
  { timeout: CLUSTER_TEST_TIMEOUT_MS },
  () => {
    const c = useCluster('learner')
    let voters: NodeHandle[] = []
    let learner: NodeHandle
    let doc: ClusterDoc

    it('a 4th metadata node in zone z4 joins as a learner', async () => {
      voters = await c.startMany([{ zone: 'z1' }, { zone: 'z2' }, { zone: 'z3' }], { bootstrapExpect: 3 })
      await c.waitForAgreement(voters, (d) => d.voters.length === 3)
      learner = await c.start({ zone: 'z4' }, { bootstrapExpect: 3 })
      // A node that joins after the bootstrap is admitted (automatically under simple auth) and certified
      // before it may speak Raft: under the whole suite's load on two cores that takes longer than 60 s.
      doc = await c.waitForAgreement([...voters, learner], (d) => d.learners.length === 1, {
        timeoutMs: 120_000,
      })
      expect(doc.learners).toEqual([{ id: learner.id, zone: 'z4', liveness: 'alive' }])
      expect(doc.voters.map((v) => v.id).sort()).toEqual(voters.map((n) => n.id).sort())
      expect(learner.logs().stdout).not.toContain('bootstrapping the metadata group')
      // The learner holds a replica: a file written before reads back from it.
      await putFile(voters[0]!, '/learner/a', contentFor('/learner/a'))
      expect((await readFile(learner, '/learner/a')).equals(contentFor('/learner/a'))).toBe(true)
    })

    it('kill -9 of a follower voter: the learner is promoted and the dead voter removed; 3 voters in 3 zones', async () => {
      const victim = voters.find((n) => n.id !== doc.leader!.id)!
      const rest = [...voters.filter((n) => n !== victim), learner]
      const killedAt = Date.now()
      victim.kill('SIGKILL')
      const after = await c.waitForAgreement(
        rest,
        (d) =>
          d.voters.length === 3 &&
          d.learners.length === 0 &&
          d.voters.some((v) => v.id === learner.id) &&
          !d.voters.some((v) => v.id === victim.id),
        { timeoutMs: PROMOTION_MS_MAX + 15_000, what: 'the learner to replace the dead voter' },
      )
      const replacedMs = Date.now() - killedAt
      process.stdout.write(
        `learner: ${learner.id} promoted and ${victim.id} removed ${replacedMs} ms after the kill (dead after ${TEST_TIMINGS.deadAfterMs} ms, grace ${TEST_TIMINGS.voterGraceMs} ms)\n`,
      )
      expect(replacedMs).toBeLessThan(PROMOTION_MS_MAX)
      expect(new Set(after.voters.map((v) => v.zone)).size).toBe(3)
      expect(after.voters.map((v) => v.zone)).toContain('z4')
      expect(after.voters.map((v) => v.zone)).not.toContain(c.zoneOf(victim))
      // The new configuration commits.
      await putFile(learner, '/learner/b', contentFor('/learner/b'))
      for (const n of rest)
        expect((await readFile(n, '/learner/b')).equals(contentFor('/learner/b'))).toBe(true)
    })
  },
)
