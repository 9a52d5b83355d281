/**
 * The cluster document of `GET /api/v1/cluster` and `hopsd status`, from the Raft status and the view.
 * Liveness has one source per document: the gossip view of the node that builds it (the same view its
 * GET /api/v1/nodes shows); Raft says who is a voter, the view whether that voter is up.
 */
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

/** Liveness in the view, or `unknown` for a Raft member the view does not hold (not heard of, or reaped). */
export type MemberLiveness = MemberLike['liveness'] | 'unknown'

export interface ClusterMember {
  readonly id: string
  readonly zone: string
  readonly liveness: MemberLiveness
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
  /** Every node of the view but those that left, with its liveness (Raft members or not). */
  readonly nodes: ClusterMember[]
  /** How the cluster authenticates callers (its `auth` setting; the node's own --auth until bootstrap). */
  readonly auth: 'simple' | 'secure'
}

export function buildClusterStatus(
  raft: RaftGroupStatus,
  clusterId: string | undefined,
  view: readonly MemberLike[],
  auth: 'simple' | 'secure' = 'secure',
): ClusterStatus {
  const byId = new Map(view.map((n) => [n.id, n]))
  const member = (id: string): ClusterMember => {
    const n = byId.get(id)
    return { id, zone: n?.zone ?? '', liveness: n === undefined ? 'unknown' : n.self ? 'alive' : n.liveness }
  }
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
    nodes: view
      .filter((n) => n.liveness !== 'left')
      .map((n) => member(n.id))
      .sort((a, b) => (a.id < b.id ? -1 : 1)),
    auth,
  }
}

export const clusterMemberSchema = {
  type: 'object',
  required: ['id', 'zone', 'liveness'],
  properties: {
    id: { type: 'string' },
    zone: { type: 'string' },
    liveness: {
      type: 'string',
      enum: ['alive', 'suspect', 'dead', 'left', 'unknown'],
      description:
        "whether the node is up in the answering node's gossip view (as its GET /api/v1/nodes says); 'unknown': a Raft member that view does not hold",
    },
  },
} as const

export const clusterStatusSchema = {
  type: 'object',
  required: ['clusterId', 'leader', 'term', 'commitIndex', 'voters', 'learners', 'zones', 'nodes', 'auth'],
  properties: {
    clusterId: { type: 'string', description: 'empty until the metadata group has initialised the cluster' },
    leader: { anyOf: [clusterMemberSchema, { type: 'null' }] },
    term: { type: 'integer' },
    commitIndex: { type: 'integer' },
    voters: { type: 'array', items: clusterMemberSchema },
    learners: { type: 'array', items: clusterMemberSchema },
    zones: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } },
    nodes: {
      type: 'array',
      items: clusterMemberSchema,
      description: "every node of the answering node's view but those that left, with its liveness",
    },
    auth: {
      type: 'string',
      enum: ['simple', 'secure'],
      description:
        'how the cluster authenticates callers (the cluster setting `auth`; see the README, Security)',
    },
  },
} as const
