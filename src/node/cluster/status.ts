/** The cluster document of `GET /api/v1/cluster` and `hopsd status`, from the Raft status and the view. */
import type { RaftGroupStatus } from '../../consensus/index.js'

/** What the metadata module needs of the gossip view (src/node/membership). */
export interface MembershipLike {
  view(): readonly MemberLike[]
}

export interface MemberLike {
  readonly id: string
  readonly zone: string
  readonly roles: readonly string[]
  readonly httpAddr: string
  readonly liveness: 'alive' | 'suspect' | 'dead' | 'left'
  readonly lastSeenMs: number
  readonly self: boolean
}

export interface ClusterMember {
  readonly id: string
  readonly zone: string
}

export interface ClusterStatus {
  readonly clusterId: string
  readonly leader: ClusterMember | null
  readonly term: number
  readonly commitIndex: number
  readonly voters: ClusterMember[]
  readonly learners: ClusterMember[]
  /** Every node of the membership view that is not gone, by zone. */
  readonly zones: Record<string, string[]>
  /** How the cluster authenticates callers (its `auth` setting; the node's own --auth until bootstrap). */
  readonly auth: 'simple' | 'secure'
}

export function buildClusterStatus(
  raft: RaftGroupStatus,
  clusterId: string | undefined,
  view: readonly MemberLike[],
  auth: 'simple' | 'secure' = 'secure',
): ClusterStatus {
  const zoneOf = new Map(view.map((n) => [n.id, n.zone]))
  const member = (id: string): ClusterMember => ({ id, zone: zoneOf.get(id) ?? '' })
  const zones: Record<string, string[]> = {}
  for (const n of [...view].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    if (n.liveness === 'left' || n.liveness === 'dead') continue
    ;(zones[n.zone] ??= []).push(n.id)
  }
  return {
    clusterId: clusterId ?? '',
    leader: raft.leaderId ? member(raft.leaderId) : null,
    term: raft.term,
    commitIndex: raft.commitIndex,
    voters: [...raft.voters].sort().map(member),
    learners: [...raft.learners].sort().map(member),
    zones,
    auth,
  }
}

export const clusterMemberSchema = {
  type: 'object',
  required: ['id', 'zone'],
  properties: { id: { type: 'string' }, zone: { type: 'string' } },
} as const

export const clusterStatusSchema = {
  type: 'object',
  required: ['clusterId', 'leader', 'term', 'commitIndex', 'voters', 'learners', 'zones', 'auth'],
  properties: {
    clusterId: { type: 'string', description: 'empty until the metadata group has initialised the cluster' },
    leader: { anyOf: [clusterMemberSchema, { type: 'null' }] },
    term: { type: 'integer' },
    commitIndex: { type: 'integer' },
    voters: { type: 'array', items: clusterMemberSchema },
    learners: { type: 'array', items: clusterMemberSchema },
    zones: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } },
    auth: {
      type: 'string',
      enum: ['simple', 'secure'],
      description:
        'how the cluster authenticates callers (the cluster setting `auth`; see the README, Security)',
    },
  },
} as const
