/**
 * The leader's soft state of the datanodes: what their heartbeats said (zone, capacity, free space,
 * when), what is queued for their next heartbeat reply (replicas to delete, transfers to run), and the
 * liveness rules the block manager decides by. Held in memory on the metadata leader only; a new
 * leader learns it again from the next heartbeats (and asks each datanode for a full report).
 */
import type { Clock } from '../../consensus/index.js'
import { hopsd } from '../../proto/datanode.js'
import type { ClusterMember, ClusterView } from '../peers.js'
import type { BlockMap } from './blockmap.js'
import type { DatanodeCandidate } from './placement.js'

import pb = hopsd.datanode

export interface DatanodeSoft {
  zone: string
  lastMs: number
  capacityBytes: number
  usedBytes: number
  availableBytes: number
  pendingDeletes: Set<number>
  pendingTransfers: pb.ITransferCommand[]
  /** Replicas to truncate (after a truncate inside their block), sent with the next heartbeat reply. */
  pendingTruncates: Map<number, pb.ITruncateCommand>
  /** Blocks truncated inside whose replica this node reported at the new stamp and length. */
  truncated: Set<number>
  /**
   * The Raft term in which this leader took the datanode's last full report; -1: none, or its replicas
   * were dropped since. An incremental report only applies on top of a full one this leader has seen
   * in its term: otherwise the reply asks for a full report (as a new HDFS NameNode does).
   */
  fullReportTerm: number
}

export interface DatanodesInit {
  readonly selfId: string
  /** Wall-clock ms: the time line of heartbeats here and of the view's `lastSeenMs`. */
  readonly clock: Clock
  readonly view: ClusterView
  readonly heartbeatMs: number
  /** The gossip view's dead-after threshold (--dead-after-ms). */
  readonly deadAfterMs: number
  /** How long a dead datanode's replicas still count (--replica-grace-ms). */
  readonly replicaGraceMs: number
  /** Whether this node runs a datanode (its own liveness is that, not a heartbeat's age). */
  readonly selfIsDatanode: () => boolean
}

export class Datanodes {
  readonly soft = new Map<string, DatanodeSoft>()

  constructor(private readonly init: DatanodesInit) {}

  /** The soft state of `id`, made empty on first use. */
  entry(id: string): DatanodeSoft {
    let s = this.soft.get(id)
    if (s === undefined) {
      s = {
        zone: '',
        lastMs: 0,
        capacityBytes: 0,
        usedBytes: 0,
        availableBytes: 0,
        pendingDeletes: new Set(),
        pendingTransfers: [],
        pendingTruncates: new Map(),
        truncated: new Set(),
        fullReportTerm: -1,
      }
      this.soft.set(id, s)
    }
    return s
  }

  memberOf(id: string): ClusterMember | undefined {
    return this.init.view.view().find((n) => n.id === id)
  }

  isLive(id: string): boolean {
    if (id === this.init.selfId) return this.init.selfIsDatanode()
    const m = this.memberOf(id)
    const s = this.soft.get(id)
    // Suspect counts as live (gossip flaps under load); dead or left, or no heartbeat for long, does not.
    return (
      m !== undefined &&
      (m.liveness === 'alive' || m.liveness === 'suspect') &&
      s !== undefined &&
      this.init.clock.now() - s.lastMs < 10 * this.init.heartbeatMs + this.init.deadAfterMs
    )
  }

  /** Dead (or gone) for longer than the replica grace: its replicas no longer count. */
  deadLongEnough(id: string): boolean {
    if (id === this.init.selfId) return false
    const m = this.memberOf(id)
    const now = this.init.clock.now()
    if (m !== undefined && m.liveness !== 'dead' && m.liveness !== 'left') return false
    const lastSeen = Math.max(m?.lastSeenMs ?? 0, this.soft.get(id)?.lastMs ?? 0)
    return now - lastSeen - this.init.deadAfterMs > this.init.replicaGraceMs
  }

  zoneOf(id: string): string {
    return this.soft.get(id)?.zone ?? this.memberOf(id)?.zone ?? ''
  }

  /** Every datanode that ever heartbeat this leader, as placement sees it. */
  candidates(map: BlockMap): DatanodeCandidate[] {
    return [...this.soft.entries()].map(([id, s]) => ({
      id,
      zone: s.zone,
      live: this.isLive(id),
      retired: map.datanodeState(id) !== 'NORMAL',
      availableBytes: s.availableBytes,
    }))
  }
}
