/**
 * Replica placement (HDFS's BlockPlacementPolicyDefault, with zones for racks): pure, run by the
 * proposer outside apply — the chosen targets travel in the AddBlock command and the state machine
 * revalidates what is hard state (a draining or decommissioned node is refused). Stale soft state
 * (liveness, free space) costs a retry, never a wrong commit.
 *
 * Order: the writer's own node when it is an eligible datanode; then one node in each zone not used
 * yet (zones holding fewer of the block's replicas first); then other nodes of used zones. Within a
 * tier, the node with the most free space wins, ties broken by `rng`. Never full, draining,
 * decommissioned, dead or excluded nodes.
 */
import type { Rng } from '../../consensus/index.js'

export interface DatanodeCandidate {
  readonly id: string
  readonly zone: string
  /** Alive in the gossip view (suspect nodes are avoided, dead ones never chosen). */
  readonly live: boolean
  /** Draining or decommissioned in the block map's datanode table. */
  readonly retired: boolean
  /** Bytes free for new blocks. */
  readonly availableBytes: number
}

export interface PlacementRequest {
  readonly candidates: readonly DatanodeCandidate[]
  /** How many targets are wanted. */
  readonly count: number
  /** Bytes a target must have free (the block size). */
  readonly blockBytes: number
  /** The writing node (first when eligible). */
  readonly writer?: string
  /** Nodes already holding the block (their zones count as used) — re-replication. */
  readonly existing?: readonly { id: string; zone: string }[]
  /** Nodes that must not be chosen (failed in a pipeline). */
  readonly exclude?: readonly string[]
  /** Breaks ties (the block manager passes its seeded one); default Math.random. */
  readonly rng?: Rng
}

/** Up to `count` targets, in pipeline order; fewer when not enough nodes qualify. */
export function chooseTargets(req: PlacementRequest): string[] {
  const rng = req.rng ?? mathRandom
  const taken = new Set<string>([...(req.exclude ?? []), ...(req.existing ?? []).map((e) => e.id)])
  const zoneUse = new Map<string, number>()
  for (const e of req.existing ?? []) zoneUse.set(e.zone, (zoneUse.get(e.zone) ?? 0) + 1)
  const eligible = req.candidates
    .filter((c) => c.live && !c.retired && c.availableBytes >= req.blockBytes && !taken.has(c.id))
    .map((c) => ({ c, r: rng.nextInt(TIE_RANGE) }))
  const out: string[] = []
  const take = (c: DatanodeCandidate): void => {
    out.push(c.id)
    taken.add(c.id)
    zoneUse.set(c.zone, (zoneUse.get(c.zone) ?? 0) + 1)
  }
  const writer = eligible.find((e) => e.c.id === req.writer)
  if (writer !== undefined && out.length < req.count) take(writer.c)
  while (out.length < req.count) {
    const left = eligible.filter((e) => !taken.has(e.c.id))
    if (left.length === 0) break
    left.sort(
      (a, b) =>
        (zoneUse.get(a.c.zone) ?? 0) - (zoneUse.get(b.c.zone) ?? 0) ||
        b.c.availableBytes - a.c.availableBytes ||
        a.r - b.r,
    )
    take(left[0]!.c)
  }
  return out
}

const TIE_RANGE = 0x1_0000_0000
const mathRandom: Rng = { nextInt: (n) => Math.floor(Math.random() * n) }
