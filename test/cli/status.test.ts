// `hopsd status` and GET /api/v1/cluster: Raft says who is a voter, the answering node's gossip view
// whether it is up — a voter killed with kill -9 is listed as a voter that is dead, never a plain voter.
import { describe, expect, it } from 'vitest'
import { renderStatus } from '../../src/cli/status.js'
import { buildClusterStatus, type MemberLike } from '../../src/node/cluster/status.js'
import { StateType, type RaftGroupStatus } from '../../src/consensus/index.js'

const raft: RaftGroupStatus = {
  id: 'A',
  term: 3,
  role: StateType.Leader,
  leaderId: 'A',
  commitIndex: 42,
  appliedIndex: 42,
  voters: ['A', 'B', 'C'],
  learners: ['D'],
  lastIndex: 42,
}

const member = (id: string, zone: string, liveness: MemberLike['liveness'], self = false): MemberLike => ({
  id,
  zone,
  roles: ['metadata'],
  httpAddr: '',
  liveness,
  lastSeenMs: 0,
  self,
})

describe('the cluster document and hopsd status', () => {
  const view = [
    member('A', 'z1', 'alive', true),
    member('B', 'z2', 'dead'),
    member('C', 'z3', 'suspect'),
    member('E', 'z1', 'alive'), // a datanode, not in Raft
    member('F', 'z2', 'left'),
  ]
  const doc = buildClusterStatus(raft, 'cid', view)

  it('gives each Raft member and each node the liveness of the answering view', () => {
    expect(doc.leader).toEqual({ id: 'A', zone: 'z1', liveness: 'alive' })
    expect(doc.voters).toEqual([
      { id: 'A', zone: 'z1', liveness: 'alive' },
      { id: 'B', zone: 'z2', liveness: 'dead' },
      { id: 'C', zone: 'z3', liveness: 'suspect' },
    ])
    // D is a learner the view does not hold (not heard of yet, or reaped).
    expect(doc.learners).toEqual([{ id: 'D', zone: '', liveness: 'unknown' }])
    expect(doc.nodes.map((n) => `${n.id}:${n.liveness}`)).toEqual([
      'A:alive',
      'B:dead',
      'C:suspect',
      'E:alive',
    ])
    expect(doc.zones).toEqual({ z1: ['A', 'E'], z3: ['C'] })
  })

  it('prints a dead voter as a voter that is dead, and counts it', () => {
    const out = renderStatus(doc).split('\n')
    expect(out).toContain('voters    3 in 3 zone(s) (1 dead, 1 suspect); learners 1 (1 unknown)')
    const row = (id: string) => out.find((l) => l.startsWith(`${id} `))?.split(/\s+/)
    expect(row('A')).toEqual(['A', 'z1', 'leader', 'alive'])
    expect(row('B')).toEqual(['B', 'z2', 'voter', 'dead'])
    expect(row('C')).toEqual(['C', 'z3', 'voter', 'suspect'])
    expect(row('E')).toEqual(['E', 'z1', '-', 'alive'])
    expect(row('F')).toBeUndefined()
  })
})
