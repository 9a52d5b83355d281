/**
 * Invariants of block replication, as functions over plain views of the cluster — apart from any one
 * test, so that the seeded reconcile simulation (reconcile.test.ts) and cluster tests (views built from
 * GET /api/v1/fs/blocks, /api/v1/fs/health and the datanodes' disks) can both call them. Each returns
 * the violations it found (empty: the invariant holds), worded to be read in a failure report.
 */

/** A block as the block map holds it. */
export interface BlockView {
  readonly id: number
  readonly genStamp: number
  readonly replication: number
  /** COMPLETE (committed by CompleteFile); blocks under construction are not held to replication. */
  readonly complete: boolean
  readonly replicas: readonly string[]
  readonly corrupt: readonly string[]
}

/** A datanode: whether it runs now, and its decommissioning state in the block map. */
export interface DatanodeView {
  readonly id: string
  readonly live: boolean
  readonly state: 'NORMAL' | 'DRAINING' | 'DECOMMISSIONED'
}

/** What is really on a datanode's disk: block id → its replica (a corrupt one failed its checksum). */
export type DiskView = ReadonlyMap<number, { readonly genStamp: number; readonly corrupt: boolean }>

/** The map's replicas of `b` that count: on live datanodes in the NORMAL state. */
export function goodReplicas(b: BlockView, nodes: ReadonlyMap<string, DatanodeView>): string[] {
  return b.replicas.filter((n) => nodes.get(n)?.live === true && nodes.get(n)?.state === 'NORMAL')
}

/**
 * No replica removed below the factor: across a step in which no datanode changed liveness or state
 * (a reconcile step), no complete block's good replicas fell below min(its count before, replication).
 */
export function checkNoRemovalBelowFactor(
  before: readonly BlockView[],
  after: readonly BlockView[],
  nodes: ReadonlyMap<string, DatanodeView>,
): string[] {
  const out: string[] = []
  const afterById = new Map(after.map((b) => [b.id, b]))
  for (const b of before) {
    const a = afterById.get(b.id)
    if (!b.complete || a === undefined) continue // forgotten: an orphan (its file is gone)
    const was = goodReplicas(b, nodes).length
    const now = goodReplicas(a, nodes).length
    if (now < Math.min(was, b.replication))
      out.push(
        `block ${b.id} (replication ${b.replication}) went from ${was} good replicas [${goodReplicas(b, nodes)}] to ${now} [${goodReplicas(a, nodes)}]`,
      )
  }
  return out
}

/**
 * A datanode told to delete its replica of `blockId` holds no replica the map still counts: the block
 * is gone from the map, or lists the node not as a good replica of this generation. (Deleting a counted
 * replica would leave the map claiming a copy that no longer exists.)
 */
export function checkDeleteIsOfUncounted(
  block: BlockView | undefined,
  node: string,
  replica: { readonly genStamp: number } | undefined,
): string[] {
  if (block === undefined || replica === undefined) return []
  if (replica.genStamp !== block.genStamp) return []
  if (!block.replicas.includes(node)) return []
  return [
    `${node} was told to delete block ${block.id} while the map counts it as a replica [${block.replicas}]`,
  ]
}

/**
 * Converged: every complete block has exactly `replication` good replicas, on live NORMAL datanodes
 * whose disks hold it (right generation, not corrupt), and the map lists exactly those (no corrupt
 * ones left, none on dead or retired nodes); no live datanode keeps a replica the map does not count;
 * every draining datanode is DECOMMISSIONED, and decommissioned ones hold nothing.
 */
export function checkConverged(
  blocks: readonly BlockView[],
  nodes: ReadonlyMap<string, DatanodeView>,
  disks: ReadonlyMap<string, DiskView>,
): string[] {
  const out: string[] = []
  const byId = new Map(blocks.map((b) => [b.id, b]))
  for (const b of blocks) {
    if (!b.complete) continue
    const onDisk = [...nodes.values()]
      .filter((n) => n.live && n.state === 'NORMAL')
      .map((n) => n.id)
      .filter((id) => {
        const r = disks.get(id)?.get(b.id)
        return r !== undefined && r.genStamp === b.genStamp && !r.corrupt
      })
      .sort()
    const listed = [...b.replicas].sort()
    if (onDisk.length !== b.replication)
      out.push(
        `block ${b.id}: ${onDisk.length} good copies on disks [${onDisk}], replication ${b.replication}`,
      )
    if (listed.join() !== onDisk.join())
      out.push(`block ${b.id}: the map lists [${listed}], good copies are on [${onDisk}]`)
    if (b.corrupt.length > 0) out.push(`block ${b.id}: corrupt replicas still listed [${b.corrupt}]`)
  }
  for (const n of nodes.values()) {
    if (n.state === 'DRAINING') out.push(`${n.id} is still DRAINING`)
    if (!n.live) continue
    for (const [id, r] of disks.get(n.id) ?? new Map()) {
      const b = byId.get(id)
      if (b === undefined) out.push(`${n.id} keeps block ${id}, which the map no longer has`)
      else if (b.complete && !(b.replicas.includes(n.id) && r.genStamp === b.genStamp && !r.corrupt))
        out.push(`${n.id} keeps a replica of block ${id} the map does not count`)
    }
  }
  return out
}
