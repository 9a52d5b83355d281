import { describe, expect, it } from 'vitest'
import {
  planMembershipStep,
  votersWantedFor,
  type GroupConfig,
  type MetadataCandidate,
  type MembershipStep,
} from '../../src/node/assembly/voters.js'

const alive = (id: string, zone: string, caughtUp = true): MetadataCandidate => ({
  id,
  zone,
  liveness: 'alive',
  deadForMs: 0,
  caughtUp,
})
const dead = (id: string, zone: string, deadForMs: number): MetadataCandidate => ({
  id,
  zone,
  liveness: 'dead',
  deadForMs,
  caughtUp: true,
})

/** Applies steps until the plan is stable (bounded), as the leader's reconcile loop does. */
function converge(
  config: GroupConfig,
  nodes: MetadataCandidate[],
  votersWanted = 3,
  leaderId = 'a',
): {
  config: GroupConfig
  steps: MembershipStep[]
} {
  let voters = [...config.voters]
  let learners = [...config.learners]
  const steps: MembershipStep[] = []
  for (let i = 0; i < 20; i++) {
    const step = planMembershipStep({
      config: { voters, learners },
      nodes,
      votersWanted,
      deadGraceMs: 1000,
      leaderId,
    })
    if (!step) return { config: { voters, learners }, steps }
    steps.push(step)
    if (step.type === 'addLearner') learners.push(step.id)
    if (step.type === 'promote') {
      learners = learners.filter((x) => x !== step.id)
      voters.push(step.id)
    }
    if (step.type === 'demote') {
      voters = voters.filter((x) => x !== step.id)
      learners.push(step.id)
    }
    if (step.type === 'remove') {
      voters = voters.filter((x) => x !== step.id)
      learners = learners.filter((x) => x !== step.id)
    }
  }
  throw new Error(`no convergence: ${JSON.stringify(steps)}`)
}

describe('zone-aware voter placement', () => {
  it('adds new metadata nodes as learners, then promotes to three voters in three zones', () => {
    const nodes = [alive('a', 'z1'), alive('b', 'z1'), alive('c', 'z2'), alive('d', 'z3'), alive('e', 'z2')]
    const { config, steps } = converge({ voters: ['a'], learners: [] }, nodes)
    expect(steps.slice(0, 4).every((s) => s.type === 'addLearner')).toBe(true)
    expect(config.voters).toHaveLength(3)
    expect(new Set(config.voters.map((id) => nodes.find((n) => n.id === id)!.zone)).size).toBe(3)
    expect([...config.learners].sort()).toHaveLength(2)
  })

  it('never promotes a learner that has not caught up', () => {
    const nodes = [alive('a', 'z1'), alive('b', 'z2', false)]
    expect(
      planMembershipStep({
        config: { voters: ['a'], learners: ['b'] },
        nodes,
        votersWanted: 3,
        deadGraceMs: 1000,
        leaderId: 'a',
      }),
    ).toBeUndefined()
  })

  it('replaces a voter dead beyond the grace period by a learner from another zone, promoting before removing', () => {
    const nodes = [
      alive('a', 'z1'),
      alive('b', 'z2'),
      dead('c', 'z3', 5000),
      alive('d', 'z3'),
      alive('e', 'z4'),
      alive('f', 'z1'),
    ]
    const { config, steps } = converge({ voters: ['a', 'b', 'c'], learners: ['d', 'e', 'f'] }, nodes)
    expect(steps[0]).toMatchObject({ type: 'promote' })
    expect(['d', 'e']).toContain(steps[0]!.id) // a zone without a live voter, never f (z1 has a)
    expect(steps[1]).toMatchObject({ type: 'remove', id: 'c' })
    expect(config.voters).toHaveLength(3)
    expect(config.voters).not.toContain('c')
  })

  it('keeps a dead voter within the grace period, and without any replacement', () => {
    const within = [alive('a', 'z1'), alive('b', 'z2'), dead('c', 'z3', 500), alive('d', 'z4')]
    expect(
      planMembershipStep({
        config: { voters: ['a', 'b', 'c'], learners: ['d'] },
        nodes: within,
        votersWanted: 3,
        deadGraceMs: 1000,
        leaderId: 'a',
      }),
    ).toBeUndefined()
    const noSpare = [alive('a', 'z1'), alive('b', 'z2'), dead('c', 'z3', 5000)]
    expect(
      planMembershipStep({
        config: { voters: ['a', 'b', 'c'], learners: [] },
        nodes: noSpare,
        votersWanted: 3,
        deadGraceMs: 1000,
        leaderId: 'a',
      }),
    ).toBeUndefined()
  })

  it('moves a voter out of a crowded zone when a learner in an empty zone is available', () => {
    const nodes = [alive('a', 'z1'), alive('b', 'z1'), alive('c', 'z2'), alive('d', 'z3')]
    const { config } = converge({ voters: ['a', 'b', 'c'], learners: ['d'] }, nodes)
    expect([...config.voters].sort()).toEqual(['a', 'c', 'd'])
    expect(config.learners).toEqual(['b'])
  })

  it('allows two voters in one zone when there are fewer zones than voters', () => {
    const nodes = [alive('a', 'z1'), alive('b', 'z1'), alive('c', 'z2')]
    const { config } = converge({ voters: ['a'], learners: [] }, nodes)
    expect([...config.voters].sort()).toEqual(['a', 'b', 'c'])
  })

  it('removes learners dead beyond grace; never demotes the leader', () => {
    const nodes = [alive('a', 'z1'), alive('b', 'z2'), alive('c', 'z3'), dead('d', 'z4', 5000)]
    expect(
      planMembershipStep({
        config: { voters: ['a', 'b', 'c'], learners: ['d'] },
        nodes,
        votersWanted: 3,
        deadGraceMs: 1000,
        leaderId: 'a',
      }),
    ).toMatchObject({ type: 'remove', id: 'd' })
    const crowded = [alive('a', 'z1'), alive('b', 'z1'), alive('c', 'z1'), alive('d', 'z1')]
    const step = planMembershipStep({
      config: { voters: ['a', 'b', 'c', 'd'], learners: [] },
      nodes: crowded,
      votersWanted: 3,
      deadGraceMs: 1000,
      leaderId: 'a',
    })
    expect(step).toMatchObject({ type: 'demote' })
    expect(step!.id).not.toBe('a')
  })

  it('aims for an odd number of voters', () => {
    expect([1, 2, 3, 4, 5, 9].map((n) => votersWantedFor(n, 3))).toEqual([1, 1, 3, 3, 3, 3])
    expect([3, 4, 5, 7].map((n) => votersWantedFor(n, 5))).toEqual([3, 3, 5, 5])
  })
})
