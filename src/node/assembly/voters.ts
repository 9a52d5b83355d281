/**
 * Zone-aware placement of the metadata group's voters.
 *
 * The Raft leader calls `planMembershipStep` on every reconcile tick with the group's current
 * configuration and the gossip view, and carries out the one step it returns (Raft changes membership
 * one server at a time). Goals, in priority order:
 *  1. every live metadata node is in the group (new ones enter as learners — they catch up on the log
 *     without counting towards quorum, as etcd's learners do);
 *  2. a voter dead beyond the grace period is replaced by a live learner, preferring a zone with no voter;
 *     the replacement is promoted *before* the dead voter is removed, so the group never shrinks below
 *     what it had while the replacement catches up;
 *  3. there are `votersWanted` voters (3 or 5), at most one per zone while there are enough zones;
 *  4. learners dead beyond the grace period are removed.
 * The function is pure: the same inputs give the same step, so every test can drive it directly.
 */

export type MembershipStep =
  | { readonly type: 'addLearner'; readonly id: string; readonly reason: string }
  | { readonly type: 'promote'; readonly id: string; readonly reason: string }
  | { readonly type: 'demote'; readonly id: string; readonly reason: string }
  | { readonly type: 'remove'; readonly id: string; readonly reason: string }

export interface GroupConfig {
  readonly voters: readonly string[]
  readonly learners: readonly string[]
}

export interface MetadataCandidate {
  readonly id: string
  readonly zone: string
  /** alive / suspect count as live; dead nodes are candidates for removal after the grace period. */
  readonly liveness: 'alive' | 'suspect' | 'dead' | 'left'
  /** How long the node has been dead (0 if it is not). */
  readonly deadForMs: number
  /** False while a learner is still catching up on the log; only caught-up learners are promoted. */
  readonly caughtUp: boolean
}

export interface PlanInput {
  readonly config: GroupConfig
  /** Every metadata node the gossip view knows, including the leader itself. */
  readonly nodes: readonly MetadataCandidate[]
  readonly votersWanted: number
  readonly deadGraceMs: number
  readonly leaderId: string
}

export function planMembershipStep(input: PlanInput): MembershipStep | undefined {
  const { config, votersWanted, deadGraceMs, leaderId } = input
  const byId = new Map(input.nodes.map((n) => [n.id, n]))
  const isLive = (id: string): boolean => {
    const n = byId.get(id)
    return n !== undefined && (n.liveness === 'alive' || n.liveness === 'suspect')
  }
  const isGone = (id: string): boolean => {
    if (id === leaderId) return false
    const n = byId.get(id)
    // A member unknown to the view is treated as gone only through the grace rule below: gossip may not
    // have heard of it yet right after a restart, so unknown alone is not enough.
    if (n === undefined) return false
    return n.liveness === 'left' || (n.liveness === 'dead' && n.deadForMs >= deadGraceMs)
  }
  const zoneOf = (id: string): string => byId.get(id)?.zone ?? ''
  const members = new Set([...config.voters, ...config.learners])

  // 1. Live metadata nodes outside the group join as learners (sorted: deterministic order).
  const newcomers = input.nodes
    .filter((n) => !members.has(n.id) && n.liveness === 'alive')
    .map((n) => n.id)
    .sort()
  if (newcomers.length > 0) {
    return { type: 'addLearner', id: newcomers[0]!, reason: 'metadata node not yet in the group' }
  }

  const liveVoters = config.voters.filter((id) => !isGone(id))
  const goneVoters = config.voters.filter(isGone)
  const voterZones = countZones(liveVoters, zoneOf)
  const promotable = config.learners
    .filter((id) => isLive(id) && byId.get(id)!.caughtUp)
    .sort((a, b) => rankCandidate(a, voterZones, zoneOf) - rankCandidate(b, voterZones, zoneOf) || cmp(a, b))

  // 2. Replace voters that are gone: promote first, then remove.
  if (goneVoters.length > 0) {
    if (liveVoters.length < votersWanted && promotable.length > 0) {
      return {
        type: 'promote',
        id: promotable[0]!,
        reason: `replaces voter ${goneVoters[0]} (dead beyond grace)`,
      }
    }
    // Remove a gone voter once its replacement votes. Without a replacement the dead voter stays: removing
    // it would not add fault tolerance, and if it comes back from maintenance it still holds its log.
    if (liveVoters.length >= votersWanted) {
      return { type: 'remove', id: goneVoters.sort()[0]!, reason: 'voter dead beyond grace period, replaced' }
    }
  }

  // 3a. Too few voters: promote the best learner.
  if (config.voters.length < votersWanted && promotable.length > 0) {
    return { type: 'promote', id: promotable[0]!, reason: `fewer than ${votersWanted} voters` }
  }
  // 3b. Two voters share a zone while a caught-up learner sits in a zone without a voter: promote it; the
  //     duplicate is demoted by the next step (3c) once the group has one voter too many.
  const distinctZones = voterZones.size
  if (distinctZones < config.voters.length) {
    const better = promotable.find((id) => !voterZones.has(zoneOf(id)))
    if (better !== undefined) {
      return { type: 'promote', id: better, reason: 'spreads voters over one more zone' }
    }
  }
  // 3c. Too many voters: demote one from the most crowded zone (never the leader).
  if (config.voters.length > votersWanted) {
    const victim = [...config.voters]
      .filter((id) => id !== leaderId)
      .sort((a, b) => (voterZones.get(zoneOf(b)) ?? 0) - (voterZones.get(zoneOf(a)) ?? 0) || cmp(b, a))[0]
    if (victim !== undefined)
      return { type: 'demote', id: victim, reason: `more than ${votersWanted} voters` }
  }

  // 4. Learners gone beyond grace leave the group.
  const goneLearner = config.learners.filter(isGone).sort()[0]
  if (goneLearner !== undefined)
    return { type: 'remove', id: goneLearner, reason: 'learner dead beyond grace period' }
  return undefined
}

/** The number of voters a group should aim for given how many metadata nodes exist. */
export function votersWantedFor(metadataNodes: number, votersConfigured: 3 | 5): number {
  if (metadataNodes >= votersConfigured) return votersConfigured
  // An even number of voters adds no fault tolerance over the odd number below it.
  return metadataNodes % 2 === 0 ? Math.max(1, metadataNodes - 1) : metadataNodes
}

function countZones(ids: readonly string[], zoneOf: (id: string) => string): Map<string, number> {
  const zones = new Map<string, number>()
  for (const id of ids) zones.set(zoneOf(id), (zones.get(zoneOf(id)) ?? 0) + 1)
  return zones
}

/** Lower is better: learners in a zone with no voter first, then zones with fewest voters. */
function rankCandidate(id: string, voterZones: Map<string, number>, zoneOf: (id: string) => string): number {
  return voterZones.get(zoneOf(id)) ?? 0
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
