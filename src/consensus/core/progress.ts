import type { ConfState, NodeId } from './types.js'

/** A bounded ring of the last indexes of MsgApps sent but not acked (the flow-control window). */
export class Inflights {
  private start = 0
  count = 0
  private readonly buffer: number[]

  constructor(readonly size: number) {
    this.buffer = new Array<number>(size).fill(0)
  }

  add(inflight: number): void {
    if (this.full()) throw new Error('cannot add into a full inflights')
    let next = this.start + this.count
    if (next >= this.size) next -= this.size
    this.buffer[next] = inflight
    this.count++
  }

  /** Frees every inflight message whose last index ≤ to. */
  freeLE(to: number): void {
    if (this.count === 0 || to < this.buffer[this.start]!) return
    let idx = this.start
    let i = 0
    for (; i < this.count; i++) {
      if (to < this.buffer[idx]!) break
      idx++
      if (idx >= this.size) idx -= this.size
    }
    this.count -= i
    this.start = idx
    if (this.count === 0) this.start = 0
  }

  freeFirstOne(): void {
    if (this.count > 0) this.freeLE(this.buffer[this.start]!)
  }

  full(): boolean {
    return this.count === this.size
  }

  reset(): void {
    this.count = 0
    this.start = 0
  }
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot'

/**
 * The leader's view of one peer (etcd's tracker.Progress). probe: one MsgApp at a time until the
 * match point is found (fast backtracking); replicate: optimistic, pipelined up to inflightMsgsMax;
 * snapshot: waiting for an InstallSnapshot to land.
 */
export class Progress {
  match = 0
  next: number
  state: ProgressState = 'probe'
  pendingSnapshot = 0
  recentActive = false
  /** In probe state: a MsgApp was sent and we wait for its answer (or a heartbeat response). */
  probeSent = false
  readonly inflights: Inflights

  constructor(
    next: number,
    inflightMax: number,
    public isLearner: boolean,
  ) {
    this.next = next
    this.inflights = new Inflights(inflightMax)
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false
    this.pendingSnapshot = 0
    this.state = state
    this.inflights.reset()
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot
      this.resetState('probe')
      this.next = Math.max(this.match + 1, pending + 1)
    } else {
      this.resetState('probe')
      this.next = this.match + 1
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate')
    this.next = this.match + 1
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot')
    this.pendingSnapshot = snapshotIndex
  }

  maybeUpdate(n: number): boolean {
    let updated = false
    if (this.match < n) {
      this.match = n
      updated = true
      this.probeSent = false
    }
    this.next = Math.max(this.next, n + 1)
    return updated
  }

  /** A rejection of the MsgApp at `rejected`: back off towards matchHint (from fast backtracking). */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false // stale
      this.next = this.match + 1
      return true
    }
    if (this.next - 1 !== rejected) return false // stale
    this.next = Math.max(Math.min(rejected, matchHint + 1), 1)
    this.probeSent = false
    return true
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent
      case 'replicate':
        return this.inflights.full()
      case 'snapshot':
        return true
    }
  }
}

export type VoteResult = 'pending' | 'won' | 'lost'

/** Membership and per-peer progress (etcd's ProgressTracker), single configuration (no joint phase). */
export class ProgressTracker {
  voters = new Set<NodeId>()
  learners = new Set<NodeId>()
  progress = new Map<NodeId, Progress>()
  votes = new Map<NodeId, boolean>()

  constructor(readonly inflightMax: number) {}

  confState(): ConfState {
    return { voters: [...this.voters].sort(), learners: [...this.learners].sort() }
  }

  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1
  }

  /** The largest index replicated (by `match`) on a quorum of voters; 0 without voters. */
  committed(): number {
    if (this.voters.size === 0) return 0
    const matches: number[] = []
    for (const id of this.voters) matches.push(this.progress.get(id)?.match ?? 0)
    matches.sort((a, b) => b - a)
    return matches[this.quorum() - 1]!
  }

  resetVotes(): void {
    this.votes.clear()
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted)
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0
    let rejected = 0
    for (const id of this.voters) {
      const v = this.votes.get(id)
      if (v === true) granted++
      else if (v === false) rejected++
    }
    return { granted, rejected, result: this.voteResult(this.votes) }
  }

  /** Whether the acks (or votes) in `yes` form a quorum of voters. */
  voteResult(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    if (this.voters.size === 0) return 'won' // etcd convention: an empty config agrees with anything
    let granted = 0
    let missing = 0
    for (const id of this.voters) {
      const v = votes.get(id)
      if (v === undefined) missing++
      else if (v) granted++
    }
    const q = this.quorum()
    if (granted >= q) return 'won'
    if (granted + missing >= q) return 'pending'
    return 'lost'
  }

  isSingleton(): boolean {
    return this.voters.size === 1
  }

  /** Peers in a deterministic order (sorted): sends and iteration never depend on insertion order. */
  ids(): NodeId[] {
    return [...this.progress.keys()].sort()
  }
}
