/**
 * Whole-cluster Raft invariants, apart from any test (TigerBeetle's "checkers"). Two layers:
 *
 * - Pure functions over plain snapshots of the cluster (`check*`), usable from any test that can show
 *   them logs, leaders and applied entries.
 * - `RaftInvariants`: an incremental tracker the simulator feeds after every step (leaders seen, durable
 *   writes, applied entries). It remembers across time and across crashes, which the pure checks can't:
 *   "at most one leader per term" is about all of history, not one instant.
 *
 * The properties (Raft paper, Figure 3), and how each is observed:
 * - Election safety: at most one leader per term — every node's (role, term) after every step.
 * - Log matching: two logs with an entry of the same index and term are identical up to it — checked
 *   incrementally: every entry (index i, term t) ever made durable anywhere must have one content and
 *   one predecessor term; by induction that is log matching.
 * - Leader completeness: a leader's log holds every entry committed before its election — when the
 *   leader of term t first persists an entry of term t (its no-op), its durable log below it is its log
 *   at election; it must contain every entry known committed (applied somewhere) when it was first
 *   seen leading.
 * - State-machine safety: no two nodes apply different commands at one index.
 * - Durability of committed entries: every applied entry is durable on a quorum of voters (in the log,
 *   or covered by a durable snapshot), at every step — crashes included.
 * - Exactly-once: a client command is applied at one index only (retries and duplicated proposals
 *   are filtered by the driver's client sessions).
 */
import type { NodeId } from '../../src/consensus/core/types.js'
import { viewLastIndex, viewTerm, type DurableLogView } from './disk.js'

export type ViolationKind =
  | 'election-safety'
  | 'log-matching'
  | 'leader-completeness'
  | 'state-machine-safety'
  | 'durability'
  | 'exactly-once'
  | 'linearizability'
  | 'liveness'
  | 'node-failure'
  | 'determinism'

export interface Violation {
  readonly kind: ViolationKind
  readonly message: string
}

// ---------------------------------------------------------------------------------------------------
// Pure checks

/** Leaders observed at one instant (or over time): at most one per term. */
export function checkElectionSafety(leaders: readonly { id: NodeId; term: number }[]): Violation | undefined {
  const byTerm = new Map<number, NodeId>()
  for (const { id, term } of leaders) {
    const other = byTerm.get(term)
    if (other !== undefined && other !== id) {
      return { kind: 'election-safety', message: `two leaders in term ${term}: ${other} and ${id}` }
    }
    byTerm.set(term, id)
  }
  return undefined
}

/** Log matching over whole durable logs, pairwise. */
export function checkLogMatching(logs: ReadonlyMap<NodeId, DurableLogView>): Violation | undefined {
  const entries = [...logs.entries()]
  for (let a = 0; a < entries.length; a++) {
    for (let b = a + 1; b < entries.length; b++) {
      const [ida, la] = entries[a]!
      const [idb, lb] = entries[b]!
      const hi = Math.min(viewLastIndex(la), viewLastIndex(lb))
      const lo = Math.max(la.snapshotIndex, lb.snapshotIndex) + 1
      // Find the highest common (index, term); everything from lo up to it must be identical.
      let top = 0
      for (let i = hi; i >= lo; i--) {
        if (viewTerm(la, i) === viewTerm(lb, i)) {
          top = i
          break
        }
      }
      for (let i = lo; i <= top; i++) {
        const ta = viewTerm(la, i)
        const tb = viewTerm(lb, i)
        const ha = la.hashes[i - la.snapshotIndex - 1]
        const hb = lb.hashes[i - lb.snapshotIndex - 1]
        if (ta !== tb || ha !== hb) {
          return {
            kind: 'log-matching',
            message: `${ida} and ${idb} agree at index ${top} (term ${viewTerm(la, top)}) but differ at ${i}: term ${ta}/${tb}, hash ${ha}/${hb}`,
          }
        }
      }
    }
  }
  return undefined
}

/** Committed entries (index → term) must all be in the leader's log (or below its snapshot). */
export function checkLeaderCompleteness(
  leader: NodeId,
  leaderTerm: number,
  leaderLog: DurableLogView,
  committed: ReadonlyMap<number, number>,
): Violation | undefined {
  for (const [index, term] of committed) {
    if (index < leaderLog.snapshotIndex) continue
    const t = viewTerm(leaderLog, index)
    if (t !== term) {
      return {
        kind: 'leader-completeness',
        message: `leader ${leader} of term ${leaderTerm} lacks committed entry ${index} (term ${term}); its log has ${
          t === undefined ? 'nothing' : `term ${t}`
        } there`,
      }
    }
  }
  return undefined
}

/** Applied entries per node (index → content id): every index must have one content cluster-wide. */
export function checkStateMachineSafety(
  applied: ReadonlyMap<NodeId, ReadonlyMap<number, string>>,
): Violation | undefined {
  const seen = new Map<number, { id: NodeId; content: string }>()
  for (const [id, entries] of applied) {
    for (const [index, content] of entries) {
      const other = seen.get(index)
      if (other !== undefined && other.content !== content) {
        return {
          kind: 'state-machine-safety',
          message: `index ${index}: ${other.id} applied ${other.content}, ${id} applied ${content}`,
        }
      }
      if (other === undefined) seen.set(index, { id, content })
    }
  }
  return undefined
}

/** An entry (index, term) known committed must be durable on at least `quorum` of the voters' disks. */
export function checkDurability(
  index: number,
  term: number,
  voterLogs: ReadonlyMap<NodeId, DurableLogView>,
  quorum: number,
): Violation | undefined {
  if (index === 0) return undefined
  const holders: NodeId[] = []
  for (const [id, log] of voterLogs) {
    if (log.snapshotIndex >= index || viewTerm(log, index) === term) holders.push(id)
  }
  if (holders.length >= quorum) return undefined
  return {
    kind: 'durability',
    message: `committed entry ${index} (term ${term}) is durable on ${holders.length} voters [${holders.join(',')}], quorum is ${quorum}`,
  }
}

// ---------------------------------------------------------------------------------------------------
// The incremental tracker

export interface NodeObservation {
  readonly id: NodeId
  readonly role: string
  readonly term: number
  readonly commitIndex: number
  readonly appliedIndex: number
}

export class RaftInvariants {
  /** term → leader seen in it. */
  readonly leaders = new Map<number, NodeId>()
  /** (index:term) → content hash and predecessor term, for every entry ever durable. */
  private readonly entryFacts = new Map<
    string,
    { hash: number; prevTerm: number | undefined; node: NodeId }
  >()
  /** index → term and content of what was applied (committed), by anyone. */
  readonly committed = new Map<number, { term: number; dataHash: number; node: NodeId }>()
  maxCommittedIndex = 0
  /** Per leader term: what was known committed when it was first seen leading. */
  private readonly pendingCompleteness = new Map<number, { leader: NodeId; committedUpTo: number }>()
  private readonly lastObservation = new Map<NodeId, NodeObservation>()
  violation: Violation | undefined
  /** The leader of the highest term seen so far. */
  newestLeader: NodeId | undefined
  private newestLeaderTerm = 0

  constructor(
    readonly voters: readonly NodeId[],
    private readonly durableView: (id: NodeId) => DurableLogView,
  ) {}

  get quorum(): number {
    return Math.floor(this.voters.length / 2) + 1
  }

  private fail(kind: ViolationKind, message: string): void {
    this.violation ??= { kind, message }
  }

  /** A node's status after a step. `restarted` resets its per-incarnation monotonicity. */
  observe(o: NodeObservation, restarted: boolean): void {
    if (o.role === 'leader') {
      const other = this.leaders.get(o.term)
      if (other !== undefined && other !== o.id) {
        this.fail('election-safety', `two leaders in term ${o.term}: ${other} and ${o.id}`)
      } else if (other === undefined) {
        this.leaders.set(o.term, o.id)
        if (o.term > this.newestLeaderTerm) {
          this.newestLeaderTerm = o.term
          this.newestLeader = o.id
        }
        this.pendingCompleteness.set(o.term, { leader: o.id, committedUpTo: this.maxCommittedIndex })
        // The leader may have persisted its first entry of this term before we saw it lead.
        this.checkCompletenessIfDurable(o.term)
      }
    }
    const prev = restarted ? undefined : this.lastObservation.get(o.id)
    if (prev !== undefined) {
      if (o.term < prev.term)
        this.fail('node-failure', `${o.id}: term went back from ${prev.term} to ${o.term}`)
      if (o.commitIndex < prev.commitIndex) {
        this.fail(
          'node-failure',
          `${o.id}: commit index went back from ${prev.commitIndex} to ${o.commitIndex}`,
        )
      }
      if (o.appliedIndex < prev.appliedIndex) {
        this.fail(
          'node-failure',
          `${o.id}: applied index went back from ${prev.appliedIndex} to ${o.appliedIndex}`,
        )
      }
    }
    if (o.appliedIndex > o.commitIndex) {
      this.fail('node-failure', `${o.id}: applied ${o.appliedIndex} beyond commit ${o.commitIndex}`)
    }
    this.lastObservation.set(o.id, o)
  }

  /**
   * A follower `by` believes `leader` leads `term` (it heard from it in that term): that is also a
   * leader of `term`, so a second claimant breaks election safety.
   */
  observeLeaderClaim(term: number, leader: NodeId, by: NodeId): void {
    const other = this.leaders.get(term)
    if (other !== undefined && other !== leader) {
      this.fail('election-safety', `two leaders in term ${term}: ${other} and ${leader} (as seen by ${by})`)
    }
  }

  /** A write became durable on `id`'s disk; `entries` are the batch's entries. */
  onDurableEntries(
    id: NodeId,
    entries: readonly { index: number; term: number; hash: number }[],
    after: DurableLogView,
  ): void {
    for (const e of entries) {
      if (e.index <= after.snapshotIndex) continue
      const prevTerm = e.index - 1 === after.snapshotIndex ? after.snapshotTerm : viewTerm(after, e.index - 1)
      const key = `${e.index}:${e.term}`
      const fact = this.entryFacts.get(key)
      if (fact === undefined) {
        this.entryFacts.set(key, { hash: e.hash, prevTerm, node: id })
      } else if (fact.hash !== e.hash) {
        this.fail(
          'log-matching',
          `entry ${e.index} term ${e.term} has two contents: on ${fact.node} (hash ${fact.hash}) and on ${id} (hash ${e.hash})`,
        )
      } else if (fact.prevTerm !== undefined && prevTerm !== undefined && fact.prevTerm !== prevTerm) {
        this.fail(
          'log-matching',
          `entry ${e.index} term ${e.term} follows term ${fact.prevTerm} on ${fact.node} but term ${prevTerm} on ${id}`,
        )
      }
    }
    // Leader completeness: the leader's first durable entry of its own term.
    for (const [term, pending] of this.pendingCompleteness) {
      if (pending.leader === id && entries.some((e) => e.term === term)) this.checkCompletenessIfDurable(term)
    }
  }

  private checkCompletenessIfDurable(term: number): void {
    const pending = this.pendingCompleteness.get(term)
    if (pending === undefined) return
    const log = this.durableView(pending.leader)
    // Find the first durable entry of this term; the log below it is the leader's log at election.
    let first = 0
    for (let i = viewLastIndex(log); i > log.snapshotIndex; i--) {
      const t = viewTerm(log, i)!
      if (t === term) first = i
      else if (t < term) break
    }
    if (first === 0) return
    this.pendingCompleteness.delete(term)
    const committed = new Map<number, number>()
    for (let i = 1; i <= pending.committedUpTo; i++) {
      const c = this.committed.get(i)
      if (c !== undefined) committed.set(i, c.term)
    }
    const v = checkLeaderCompleteness(pending.leader, term, log, committed)
    if (v !== undefined) this.fail(v.kind, v.message)
    else if (first <= pending.committedUpTo) {
      this.fail(
        'leader-completeness',
        `leader ${pending.leader} of term ${term} put its first entry at ${first}, over committed entries up to ${pending.committedUpTo}`,
      )
    }
  }

  /** `id` applied an entry (it is therefore committed). */
  onApply(id: NodeId, index: number, term: number, dataHash: number): void {
    const c = this.committed.get(index)
    if (c === undefined) {
      this.committed.set(index, { term, dataHash, node: id })
      if (index > this.maxCommittedIndex) this.maxCommittedIndex = index
    } else if (c.term !== term || c.dataHash !== dataHash) {
      this.fail(
        'state-machine-safety',
        `index ${index}: ${c.node} applied term ${c.term} (hash ${c.dataHash}), ${id} applied term ${term} (hash ${dataHash})`,
      )
    }
  }

  /** command bytes → the index where it was first applied. */
  private readonly appliedCommands = new Map<string, number>()

  /**
   * Exactly-once: a client command (unique bytes per client operation; a retry resends the same bytes
   * under the same session) is applied at one index only — the driver filters retries and network
   * duplicates of a proposal (src/consensus/state-machine.ts: "the state machine sees each client
   * command once").
   */
  onApplyCommand(id: NodeId, index: number, command: string): void {
    const first = this.appliedCommands.get(command)
    if (first === undefined) this.appliedCommands.set(command, index)
    else if (first !== index) {
      this.fail(
        'exactly-once',
        `${id} applied command ${command} at index ${index}, already applied at ${first}`,
      )
    }
  }

  /** After every step: the newest committed entry is durable on a quorum. */
  checkDurabilityNow(): void {
    const index = this.maxCommittedIndex
    const c = this.committed.get(index)
    if (c === undefined) return
    const logs = new Map<NodeId, DurableLogView>()
    for (const id of this.voters) logs.set(id, this.durableView(id))
    const v = checkDurability(index, c.term, logs, this.quorum)
    if (v !== undefined) this.fail(v.kind, v.message)
  }
}
