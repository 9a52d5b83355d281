/**
 * The membership view as a pure state machine: no I/O, no timers — the caller passes the time. Fed by
 * `ingest` (a NodeInfo heard from its owner, via gossip or direct push) and `tick` (time passing);
 * both return the changes they caused, in order.
 *
 * Rules:
 * - Newer news wins: (incarnation, seq) orders what a node said; older or duplicate news is ignored and
 *   is not evidence of life (a relayed old message says nothing about now). A node whose entry is dead
 *   or left is accepted with any other incarnation (it restarted, maybe with its clock set back).
 * - Liveness from silence: alive, then `suspect` after suspectAfterMs, `dead` after deadAfterMs.
 *   A node that announced state 'left' is `left` (a departure, not a failure) and never suspected.
 * - Dead and left entries are forgotten after reapAfterMs; at most membersMax entries are kept.
 * - A stall of our own (tick much later than scheduled) is forgiven: peers' last-heard times move
 *   forward by the excess, so a blocked event loop doesn't declare a healthy cluster dead.
 */
import type { MembershipConfig } from './config.js'
import type { Liveness, MembershipChange, NodeInfo, NodeView } from './types.js'

interface Entry {
  info: NodeInfo
  lastHeardMs: number
  liveness: Liveness
  /** When the entry became dead or left (for reaping). */
  goneSinceMs: number
}

export type IngestOutcome = 'joined' | 'updated' | 'refreshed' | 'stale' | 'self' | 'full'

export class MembershipView {
  private readonly entries = new Map<string, Entry>()
  private lastTickMs: number | undefined
  /** NodeInfos ignored because they were older than what we had (or duplicates). */
  staleCount = 0

  constructor(
    private readonly selfId: string,
    private readonly config: MembershipConfig,
  ) {}

  /** Takes a NodeInfo its owner sent; returns what happened and the changes to announce. */
  ingest(info: NodeInfo, nowMs: number): { outcome: IngestOutcome; changes: MembershipChange[] } {
    if (info.id === this.selfId) return { outcome: 'self', changes: [] }
    const e = this.entries.get(info.id)
    if (e === undefined) {
      if (this.entries.size >= this.config.membersMax) return { outcome: 'full', changes: [] }
      const liveness: Liveness = info.state === 'left' ? 'left' : 'alive'
      const entry: Entry = {
        info,
        lastHeardMs: nowMs,
        liveness,
        goneSinceMs: liveness === 'left' ? nowMs : 0,
      }
      this.entries.set(info.id, entry)
      return { outcome: 'joined', changes: [{ kind: 'joined', id: info.id, node: this.toView(entry) }] }
    }
    const gone = e.liveness === 'dead' || e.liveness === 'left'
    const newer =
      info.incarnation > e.info.incarnation ||
      (info.incarnation === e.info.incarnation && info.seq > e.info.seq) ||
      (gone && info.incarnation !== e.info.incarnation)
    if (!newer) {
      this.staleCount++
      return { outcome: 'stale', changes: [] }
    }
    const contentChanged = !sameContent(e.info, info)
    e.info = info
    e.lastHeardMs = nowMs
    const next: Liveness = info.state === 'left' ? 'left' : 'alive'
    // Mutate first, then describe: every change carries the entry's final state.
    const livenessChange = next !== e.liveness ? this.setLiveness(e, next, nowMs) : undefined
    const changes: MembershipChange[] = []
    if (contentChanged) changes.push({ kind: 'updated', id: info.id, node: this.toView(e) })
    if (livenessChange !== undefined) changes.push(livenessChange)
    return { outcome: contentChanged ? 'updated' : 'refreshed', changes }
  }

  /** Evidence that `id` is up right now (e.g. a connection or identify exchange): refreshes it if known and not gone. */
  heard(id: string, nowMs: number): MembershipChange[] {
    const e = this.entries.get(id)
    if (e === undefined || e.liveness === 'left') return []
    e.lastHeardMs = Math.max(e.lastHeardMs, nowMs)
    return e.liveness === 'alive' ? [] : [this.setLiveness(e, 'alive', nowMs)]
  }

  /** Applies the passage of time: liveness transitions and reaping. */
  tick(nowMs: number): MembershipChange[] {
    const { suspectAfterMs, deadAfterMs, reapAfterMs, tickMs, stallGraceMs } = this.config
    if (this.lastTickMs !== undefined) {
      const stalledMs = nowMs - this.lastTickMs - tickMs - stallGraceMs
      if (stalledMs > 0) {
        for (const e of this.entries.values()) e.lastHeardMs = Math.min(nowMs, e.lastHeardMs + stalledMs)
      }
    }
    this.lastTickMs = nowMs
    const changes: MembershipChange[] = []
    for (const [id, e] of this.entries) {
      if (e.liveness === 'dead' || e.liveness === 'left') {
        if (nowMs - e.goneSinceMs >= reapAfterMs) {
          this.entries.delete(id)
          changes.push({ kind: 'removed', id, node: this.toView(e) })
          continue
        }
        if (e.liveness === 'left') continue
      }
      const silentMs = nowMs - e.lastHeardMs
      const next: Liveness =
        silentMs >= deadAfterMs ? 'dead' : silentMs >= suspectAfterMs ? 'suspect' : 'alive'
      // Only silence moves liveness down here; coming back needs news (ingest/heard).
      if (rank(next) > rank(e.liveness)) changes.push(this.setLiveness(e, next, nowMs))
    }
    return changes
  }

  get(id: string): NodeView | undefined {
    const e = this.entries.get(id)
    return e === undefined ? undefined : this.toView(e)
  }

  /** Every known node but self, sorted by id. */
  list(): NodeView[] {
    return [...this.entries.values()]
      .map((e) => this.toView(e))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  private setLiveness(e: Entry, next: Liveness, nowMs: number): MembershipChange {
    const previous = e.liveness
    e.liveness = next
    if (next === 'dead' || next === 'left') e.goneSinceMs = nowMs
    return { kind: 'liveness', id: e.info.id, node: this.toView(e), previous }
  }

  private toView(e: Entry): NodeView {
    const state = e.liveness === 'dead' ? 'unknown' : e.info.state
    return { ...e.info, state, liveness: e.liveness, lastSeenMs: e.lastHeardMs, self: false }
  }
}

function rank(l: Liveness): number {
  return l === 'alive' ? 0 : l === 'suspect' ? 1 : 2
}

/** Equal apart from the publication counters. */
function sameContent(a: NodeInfo, b: NodeInfo): boolean {
  return (
    a.zone === b.zone &&
    a.httpAddr === b.httpAddr &&
    a.dataAddr === b.dataAddr &&
    a.version === b.version &&
    a.state === b.state &&
    a.incarnation === b.incarnation &&
    a.roles.join(',') === b.roles.join(',') &&
    a.p2pAddrs.join(',') === b.p2pAddrs.join(',') &&
    JSON.stringify(a.capacity) === JSON.stringify(b.capacity)
  )
}
