/**
 * Which block report a datanode sends with its next heartbeat: full or incremental.
 *
 * HDFS datanodes send a full block report rarely (every 6 hours by default) and incremental ones in
 * between: the replicas received and deleted since the last one. Sending every replica with every
 * heartbeat (as hopsd did first) costs the leader O(replicas) per heartbeat per datanode, which does
 * not scale past a few hundred thousand blocks.
 *
 * Here the increment is the difference between the store's replicas now and those of the last report
 * the leader answered, not a log of events: nothing is lost when a heartbeat fails or its answer is
 * lost (the next difference still holds it, and applying a difference twice changes nothing), and no
 * code path that adds or deletes a replica has to remember to tell the reporter. A replica deleted and
 * written again between two reports (the leader asked for the delete, then chose this node as a
 * re-replication target) differs by its incarnation, so it is reported again: comparing only the
 * generation and length hid it, and the leader believed it gone until the next full report (found by
 * the seeded reconcile simulation, test/blocks/reconcile.test.ts, SEED=39).
 *
 * A full report goes first, whenever the leader asks for one (a new leader, or one that dropped this
 * node's replicas while it seemed dead), and every `fullIntervalMs` as a safety net.
 */
import type { StoredBlockInfo } from './store.js'

export interface BlockReport {
  readonly incremental: boolean
  /**
   * Full: every replica. Incremental: those new or changed (genStamp, length, or written again: a new
   * incarnation) since the last answered.
   */
  readonly blocks: readonly StoredBlockInfo[]
  /** Incremental only: the replicas gone since the last answered report. */
  readonly deleted: readonly number[]
  /** The replicas the report describes (what the leader knows once it answers). */
  readonly state: ReadonlyMap<number, StoredBlockInfo>
}

/** Every 15 minutes a full report, whatever the leader says (HDFS: 6 hours). */
export const FULL_REPORT_INTERVAL_MS = 15 * 60_000

export class BlockReporter {
  /** The replicas of the last answered report by id; undefined: the next one is full. */
  #acked: ReadonlyMap<number, StoredBlockInfo> | undefined
  #lastFullMs = -Infinity

  constructor(
    private readonly now: () => number,
    private readonly fullIntervalMs = FULL_REPORT_INTERVAL_MS,
  ) {}

  /** The report of `replicas` (the store's list now) to send. */
  next(replicas: readonly StoredBlockInfo[]): BlockReport {
    const state = new Map(replicas.map((b) => [b.id, b]))
    const acked = this.#acked
    if (acked === undefined || this.now() - this.#lastFullMs >= this.fullIntervalMs)
      return { incremental: false, blocks: replicas, deleted: [], state }
    const blocks = replicas.filter((b) => {
      const a = acked.get(b.id)
      return (
        a === undefined ||
        a.genStamp !== b.genStamp ||
        a.length !== b.length ||
        a.incarnation !== b.incarnation
      )
    })
    const deleted: number[] = []
    for (const id of acked.keys()) if (!state.has(id)) deleted.push(id)
    return { incremental: true, blocks, deleted, state }
  }

  /** The leader took `report`; `fullRequested`: it refused an incremental one and wants a full one. */
  answered(report: BlockReport, fullRequested: boolean): void {
    if (fullRequested) {
      this.#acked = undefined
      return
    }
    this.#acked = report.state
    if (!report.incremental) this.#lastFullMs = this.now()
  }
}
