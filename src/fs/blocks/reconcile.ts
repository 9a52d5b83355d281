/**
 * The block manager's reconcile step (leader only), run every heartbeat interval:
 *  1. forgets orphaned blocks (RemoveBlocks); their replicas go with the holders' next heartbeat reply;
 *  2. drops the replicas of a datanode dead beyond the replica grace (it reports in full if it returns);
 *  3. re-replicates under-replicated blocks by handing a TransferCommand to a datanode holding a good
 *     replica (in its next heartbeat reply); removes surplus replicas (from the most crowded zone, then
 *     the fullest node), corrupt ones once enough good ones exist, and those left on decommissioned nodes;
 *  4. reports a draining datanode DECOMMISSIONED once all its blocks live elsewhere.
 * Steps 1 and 3 look at most `blocksPerStep` blocks per round, from a cursor that goes on where the last
 * round stopped (wrapping around): a round's work follows that bound, not the size of the block map,
 * and every block is looked at once per ceil(blocks / blocksPerStep) rounds. A map no larger than the
 * bound is looked at whole, from its first block, every round. Step 2 starts from the nodes that hold
 * replicas (the map's node index) and touches only the blocks of dead ones; step 4 only the blocks of
 * draining nodes.
 * Never removes a replica that would leave a block below its replication: surplus is counted over good
 * live replicas only. Decisions read time from the injected Clock and draw from the injected Rng, so a
 * seeded test replays them (test/blocks/reconcile.test.ts).
 */
import type { Clock, Rng } from '../../consensus/index.js'
import { metaProto } from '../../meta/index.js'
import type { FsLogger } from '../logger.js'
import { BLOCK_STATE, type BlockMap, type BlockRecord } from './blockmap.js'
import type { Datanodes } from './datanodes.js'
import { chooseTargets } from './placement.js'

import mpb = metaProto.meta

/** A transfer handed out is not handed out again for this long. */
export const TRANSFER_TIMEOUT_MS = 30_000
const REMOVE_BATCH_MAX = 1000
/** Blocks one reconcile round looks at, by default. */
export const RECONCILE_BLOCKS_PER_STEP = 10_000

export interface ReconcileContext {
  readonly map: () => BlockMap
  readonly datanodes: Datanodes
  /** Block id → until when its handed-out transfer is awaited (clock ms). */
  readonly transfersInFlight: Map<number, number>
  readonly propose: (cmd: mpb.Command.$Properties) => Promise<unknown>
  readonly clock: Clock
  readonly rng: Rng
  readonly log: FsLogger
  /** Where the next round goes on: the last block id looked at (-1: from the first). Kept by the caller. */
  readonly cursor: { after: number }
  /** Blocks one round looks at (default RECONCILE_BLOCKS_PER_STEP). */
  readonly blocksPerStep?: number
}

/** Replicas that count: on a live node that is not retiring. */
export function goodLiveReplicas(r: BlockRecord, map: BlockMap, datanodes: Datanodes): string[] {
  return r.replicas.filter((n) => datanodes.isLive(n) && map.datanodeState(n) === 'NORMAL')
}

/** One round; answers how many blocks it looked at (at most `blocksPerStep`). */
export async function reconcileStep(ctx: ReconcileContext): Promise<number> {
  const { datanodes, transfersInFlight, propose, log } = ctx
  const soft = datanodes.soft
  const m = ctx.map()
  const goodLive = (r: BlockRecord): string[] => goodLiveReplicas(r, m, datanodes)
  const zoneOf = (n: string): string => datanodes.zoneOf(n)
  const now = ctx.clock.now()
  for (const [id, until] of transfersInFlight) if (until < now) transfersInFlight.delete(id)
  // This round's blocks: the whole map when it fits the bound, else the next slice after the cursor.
  const perStep = Math.max(1, ctx.blocksPerStep ?? RECONCILE_BLOCKS_PER_STEP)
  let slice: BlockRecord[]
  if (m.size <= perStep) {
    slice = m.after(-1, perStep)
    ctx.cursor.after = -1
  } else {
    slice = m.after(ctx.cursor.after, perStep)
    if (slice.length < perStep) slice = [...slice, ...m.after(-1, perStep - slice.length)]
    ctx.cursor.after = slice[slice.length - 1]?.id ?? -1
  }
  const ids = slice.map((r) => r.id)
  // 1. Orphans.
  const orphans: BlockRecord[] = []
  for (const r of slice) {
    if (orphans.length >= REMOVE_BATCH_MAX) break
    if (m.isOrphan(r)) orphans.push(r)
  }
  if (orphans.length > 0) {
    await propose({ removeBlocks: { ids: orphans.map((r) => r.id) } })
    // Their replicas go with the holders' next heartbeat replies (HDFS invalidates them the same
    // way): an incremental report never lists a replica again once it was reported.
    for (const r of orphans)
      for (const n of new Set([...r.replicas, ...r.corrupt, ...r.targets]))
        soft.get(n)?.pendingDeletes.add(r.id)
  }
  // 2. Datanodes dead beyond the grace: their replicas no longer count.
  const removed: mpb.IReplicaChange[] = []
  for (const n of m.holders()) {
    if (!datanodes.deadLongEnough(n)) continue
    for (const id of m.blocksOn(n)) removed.push({ blockId: id, node: n })
    // Should it come back, what it still holds is learnt again from a full report.
    const dn = soft.get(n)
    if (dn !== undefined) dn.fullReportTerm = -1
    log.warn({ node: n }, 'datanode dead beyond the grace: re-replicating its blocks')
  }
  if (removed.length > 0) await propose({ updateReplicas: { removed } })
  // 3. Under-replicated → transfers; surplus and corrupt replicas → removals.
  const surplus: mpb.IReplicaChange[] = []
  const truncated: number[] = []
  for (const id of ids) {
    // Read again: the commands above may have changed or removed it.
    const r = m.block(id)
    if (r === undefined || r.state !== BLOCK_STATE.COMPLETE) continue
    if (r.truncateFromGenStamp !== 0) {
      // Truncated inside: each holder truncates its replica (sent with its next heartbeat reply) until
      // every one reported the new stamp and length; then the older stamp is no longer accepted.
      const pending = r.replicas.filter((n) => soft.get(n)?.truncated.has(r.id) !== true)
      if (pending.length === 0) {
        truncated.push(r.id)
        for (const n of r.replicas) soft.get(n)?.truncated.delete(r.id)
      } else
        for (const n of pending)
          soft.get(n)?.pendingTruncates.set(r.id, {
            blockId: r.id,
            fromGenStamp: r.truncateFromGenStamp,
            toGenStamp: r.genStamp,
            length: r.length,
          })
    }
    const good = goodLive(r)
    // A block back at its replication has no transfer left to wait for: forget the one handed out,
    // or a block healed less than TRANSFER_TIMEOUT_MS ago that loses another replica would wait
    // out the rest of that timeout before it is re-replicated again.
    if (good.length >= r.replication) transfersInFlight.delete(r.id)
    // Corrupt replicas go once enough good ones exist (as in HDFS, a corrupt one may be the last
    // copy until then). Incremental reports never list them again, so the delete is sent here.
    if (good.length >= r.replication)
      for (const n of r.corrupt) {
        surplus.push({ blockId: r.id, node: n })
        soft.get(n)?.pendingDeletes.add(r.id)
      }
    if (good.length < r.replication && !transfersInFlight.has(r.id)) {
      const sources = r.replicas.filter((n) => datanodes.isLive(n))
      if (sources.length === 0) continue
      const targets = chooseTargets({
        candidates: datanodes.candidates(m),
        count: r.replication - good.length,
        blockBytes: r.length,
        existing: good.map((n) => ({ id: n, zone: zoneOf(n) })),
        exclude: [...r.replicas, ...r.corrupt],
        rng: ctx.rng,
      })
      if (targets.length === 0) continue
      const source = sources.sort(
        (a, b) => Number(m.datanodeState(a) !== 'NORMAL') - Number(m.datanodeState(b) !== 'NORMAL'),
      )[0]!
      const s = soft.get(source)
      if (s === undefined) continue
      s.pendingTransfers.push({ blockId: r.id, genStamp: r.genStamp, targets })
      transfersInFlight.set(r.id, now + TRANSFER_TIMEOUT_MS)
      log.info({ block: r.id, source, targets }, 're-replicating')
    } else if (good.length > r.replication) {
      const byZone = new Map<string, number>()
      for (const n of good) byZone.set(zoneOf(n), (byZone.get(zoneOf(n)) ?? 0) + 1)
      const victim = [...good].sort(
        (a, b) =>
          (byZone.get(zoneOf(b)) ?? 0) - (byZone.get(zoneOf(a)) ?? 0) ||
          (soft.get(a)?.availableBytes ?? 0) - (soft.get(b)?.availableBytes ?? 0),
      )[0]!
      surplus.push({ blockId: r.id, node: victim })
      soft.get(victim)?.pendingDeletes.add(r.id)
    } else if (good.length >= r.replication) {
      for (const n of r.replicas) {
        if (m.datanodeState(n) === 'DECOMMISSIONED') {
          surplus.push({ blockId: r.id, node: n })
          soft.get(n)?.pendingDeletes.add(r.id)
        }
      }
    }
  }
  if (surplus.length > 0 || truncated.length > 0)
    await propose({ updateReplicas: { removed: surplus, truncated } })
  // 4. Decommissioning: a draining node whose blocks all live elsewhere is done.
  for (const d of m.datanodeRecords()) {
    if (m.datanodeState(d.id) !== 'DRAINING') continue
    const pending = m.blocksOn(d.id).filter((id) => {
      const r = m.block(id)!
      return r.state === BLOCK_STATE.COMPLETE && goodLive(r).length < r.replication
    })
    if (pending.length === 0) {
      await propose({ setDatanodeState: { node: d.id, state: mpb.DatanodeState.DECOMMISSIONED } })
      log.info({ node: d.id }, 'datanode decommissioned')
    }
  }
  return ids.length
}
