/**
 * The Raft protocol (etcd-io/raft's raft.go): `step` dispatches on the role; no I/O, no clock, no
 * randomness of its own. Outputs accumulate in `msgs`/`msgsEarly`/`readStates` and the log's unstable
 * part; RawNode packs them into a Ready.
 *
 * Departures from etcd, on purpose:
 * - Node ids are strings; membership is single-server changes only (no joint consensus), see
 *   applyConfChange and ../README.md.
 * - The leader's own log copy counts towards commit only once the driver reports it persisted
 *   (onPersisted, from RawNode.advance); etcd counts it at append time. That lets the driver send
 *   MsgApps while the leader's write is in flight ("overlap") with commit still meaning "durable on a
 *   quorum".
 */
import { ConsensusError } from '../errors.js'
import type { Rng } from '../rng.js'
import { validateConfig, type RaftConfig } from './config.js'
import { RaftLog } from './log.js'
import { Progress, ProgressTracker, type VoteResult } from './progress.js'
import { ReadOnly } from './read-only.js'
import {
  ConfChangeType,
  EntryType,
  MessageType,
  NONE,
  StateType,
  EMPTY_BYTES,
  emptyEntry,
  entrySizeBytes,
  newMessage,
  voteRespMsgType,
  type ConfChange,
  type ConfState,
  type Entry,
  type KnownBug,
  type Message,
  type NodeId,
  type ReadState,
  type Snapshot,
} from './types.js'

/** Context of the vote requests of a leadership transfer: voters ignore their leader lease for it. */
export const CAMPAIGN_TRANSFER: Uint8Array = new TextEncoder().encode('CampaignTransfer')

/** Pending ReadIndex requests a new leader holds until it commits an entry of its term. */
const PENDING_READ_INDEX_MAX = 4096

type CampaignType = 'pre-election' | 'election' | 'transfer'

/** Messages a leader may send before its own write is durable (they promise nothing about it). */
function isEarlyType(t: MessageType): boolean {
  return (
    t === MessageType.MsgApp ||
    t === MessageType.MsgHeartbeat ||
    t === MessageType.MsgSnap ||
    t === MessageType.MsgTimeoutNow ||
    t === MessageType.MsgReadIndexResp ||
    t === MessageType.MsgProp ||
    t === MessageType.MsgReadIndex ||
    t === MessageType.MsgTransferLeader
  )
}

export class Raft {
  readonly id: NodeId
  term = 0
  vote: NodeId = NONE
  readStates: ReadState[] = []
  readonly raftLog: RaftLog
  readonly trk: ProgressTracker
  state: StateType = StateType.Follower
  lead: NodeId = NONE
  leadTransferee: NodeId = NONE
  /** Index of the latest conf change (or the new leader's first entry) that must apply before another. */
  pendingConfIndex = 0
  uncommittedSize = 0
  readOnly: ReadOnly
  electionElapsed = 0
  heartbeatElapsed = 0
  randomizedElectionTimeout = 0
  /** Messages to send after the Ready that carries them is persisted. */
  msgs: Message[] = []
  /** Messages that may go out before the persist (see Ready.earlyMessages). */
  msgsEarly: Message[] = []
  pendingReadIndexMessages: Message[] = []

  private readonly electionTimeout: number
  private readonly heartbeatTimeout: number
  private readonly maxMsgSize: number
  private readonly maxUncommittedSize: number
  private readonly checkQuorum: boolean
  private readonly preVote: boolean
  private readonly disableProposalForwarding: boolean
  private readonly rng: Rng
  private readonly bugs: ReadonlySet<KnownBug>

  constructor(c: RaftConfig) {
    validateConfig(c)
    this.id = c.id
    this.raftLog = new RaftLog(c.storage, c.maxCommittedSizePerReadyBytes)
    this.trk = new ProgressTracker(c.inflightMsgsMax)
    this.electionTimeout = c.electionTicks
    this.heartbeatTimeout = c.heartbeatTicks
    this.maxMsgSize = c.maxSizePerMsgBytes
    this.maxUncommittedSize = c.maxUncommittedEntriesSizeBytes
    this.checkQuorum = c.checkQuorum
    this.preVote = c.preVote
    this.disableProposalForwarding = c.disableProposalForwarding
    this.rng = c.rng
    this.bugs = c.knownBugs ?? new Set()
    this.readOnly = new ReadOnly(c.readOnlyOption)

    const { hardState, confState } = c.storage.initialState()
    this.applyConfState(confState)
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) this.loadState(hardState)
    if (c.applied && c.applied > 0) this.raftLog.appliedTo(c.applied)
    this.becomeFollower(this.term, NONE)
  }

  private loadState(hs: { term: number; vote: NodeId; commit: number }): void {
    if (hs.commit < this.raftLog.committed || hs.commit > this.raftLog.lastIndex())
      throw new Error(
        `${this.id} state.commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
      )
    this.raftLog.committed = hs.commit
    this.term = hs.term
    this.vote = hs.vote
  }

  hasBug(b: KnownBug): boolean {
    return this.bugs.has(b)
  }

  // ---------------------------------------------------------------- sending

  private send(m: Message): void {
    if (m.from === NONE) m.from = this.id
    if (
      m.type === MessageType.MsgVote ||
      m.type === MessageType.MsgVoteResp ||
      m.type === MessageType.MsgPreVote ||
      m.type === MessageType.MsgPreVoteResp
    ) {
      if (m.term === 0) throw new Error(`term should be set when sending ${MessageType[m.type]}`)
    } else {
      if (m.term !== 0)
        throw new Error(`term should not be set when sending ${MessageType[m.type]} (was ${m.term})`)
      // Proposals and read requests forwarded to the leader travel as local messages (term 0).
      if (m.type !== MessageType.MsgProp && m.type !== MessageType.MsgReadIndex) m.term = this.term
    }
    const early =
      isEarlyType(m.type) || (m.type === MessageType.MsgAppResp && this.bugs.has('ack-before-fsync'))
    if (early) this.msgsEarly.push(m)
    else this.msgs.push(m)
  }

  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true)
  }

  /** Sends entries (or a snapshot) to `to` if its progress allows; returns whether it sent. */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to)
    if (!pr || pr.isPaused()) return false
    let term: number
    let ents: Entry[]
    try {
      term = this.raftLog.term(pr.next - 1)
      ents = this.raftLog.entries(pr.next, this.maxMsgSize)
    } catch {
      return this.sendSnapshot(to, pr)
    }
    if (ents.length === 0 && !sendIfEmpty) return false
    this.send(
      newMessage({
        type: MessageType.MsgApp,
        to,
        index: pr.next - 1,
        logTerm: term,
        entries: ents,
        commit: this.raftLog.committed,
      }),
    )
    if (ents.length > 0) {
      const last = ents[ents.length - 1]!.index
      if (pr.state === 'replicate') {
        pr.next = last + 1 // optimistic: pipeline the next batch before the ack
        pr.inflights.add(last)
      } else if (pr.state === 'probe') {
        pr.probeSent = true
      }
    }
    return true
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false
    let snap: Snapshot
    try {
      snap = this.raftLog.snapshot()
    } catch {
      return false // temporarily unavailable
    }
    if (snap.metadata.index === 0) throw new Error('need non-empty snapshot')
    pr.becomeSnapshot(snap.metadata.index)
    this.send(newMessage({ type: MessageType.MsgSnap, to, snapshot: snap }))
    return true
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array): void {
    const pr = this.trk.progress.get(to)!
    // A follower may not have the leader's log up to commit: never tell it to commit beyond its match.
    const commit = Math.min(pr.match, this.raftLog.committed)
    this.send(newMessage({ type: MessageType.MsgHeartbeat, to, commit, context: ctx }))
  }

  bcastAppend(): void {
    for (const id of this.trk.ids()) if (id !== this.id) this.sendAppend(id)
  }

  bcastHeartbeat(): void {
    const ctx = this.readOnly.lastPendingRequestCtx() ?? EMPTY_BYTES
    for (const id of this.trk.ids()) if (id !== this.id) this.sendHeartbeat(id, ctx)
  }

  // ---------------------------------------------------------------- commit

  /** Advances commit to what a quorum has durably replicated, if it is an entry of the current term. */
  maybeCommit(): boolean {
    const mci = this.trk.committed()
    if (this.bugs.has('commit-old-term')) {
      // PLANTED BUG (simulator only): counts replicas of entries of earlier terms (Raft Figure 8).
      if (mci > this.raftLog.committed) {
        this.raftLog.commitTo(mci)
        return true
      }
      return false
    }
    return this.raftLog.maybeCommit(mci, this.term)
  }

  /** The driver persisted entries up to (index, term): the leader's own copy now counts. */
  onPersisted(index: number, term: number): void {
    if (this.state !== StateType.Leader) return
    if (!this.raftLog.matchTerm(index, term)) return
    const pr = this.trk.progress.get(this.id)
    if (pr && pr.maybeUpdate(index) && this.maybeCommit()) {
      this.releasePendingReadIndexMessages()
      this.bcastAppend()
    }
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term
      this.vote = NONE
    }
    this.lead = NONE
    this.electionElapsed = 0
    this.heartbeatElapsed = 0
    this.resetRandomizedElectionTimeout()
    this.abortLeaderTransfer()
    this.trk.resetVotes()
    const last = this.raftLog.lastIndex()
    for (const [id, pr] of this.trk.progress) {
      const np = new Progress(last + 1, this.trk.inflightMax, pr.isLearner)
      if (id === this.id) np.match = this.raftLog.stableLastIndex()
      this.trk.progress.set(id, np)
    }
    this.pendingConfIndex = 0
    this.uncommittedSize = 0
    this.readOnly = new ReadOnly(this.readOnly.option)
    this.pendingReadIndexMessages = []
  }

  private appendEntry(es: Entry[]): void {
    let li = this.raftLog.lastIndex()
    for (const e of es) {
      e.term = this.term
      e.index = ++li
    }
    this.raftLog.append(es)
    if (this.bugs.has('ack-before-fsync')) {
      // PLANTED BUG (simulator only): the leader counts its own copy before it is durable (and the
      // followers ack before their fsync, see send()).
      this.trk.progress.get(this.id)?.maybeUpdate(li)
      this.maybeCommit()
    }
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.rng.nextInt(this.electionTimeout)
  }

  // ---------------------------------------------------------------- roles

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term)
    this.lead = lead
    this.state = StateType.Follower
  }

  becomeCandidate(): void {
    if (this.state === StateType.Leader) throw new Error('invalid transition [leader -> candidate]')
    this.reset(this.term + 1)
    this.vote = this.id
    this.state = StateType.Candidate
  }

  becomePreCandidate(): void {
    if (this.state === StateType.Leader) throw new Error('invalid transition [leader -> pre-candidate]')
    // A pre-candidate changes neither term nor vote: that is the point of PreVote.
    this.trk.resetVotes()
    this.lead = NONE
    this.state = StateType.PreCandidate
  }

  becomeLeader(): void {
    if (this.state === StateType.Follower) throw new Error('invalid transition [follower -> leader]')
    this.reset(this.term)
    this.lead = this.id
    this.state = StateType.Leader
    this.trk.progress.get(this.id)?.becomeReplicate()
    const self = this.trk.progress.get(this.id)
    if (self) self.match = this.raftLog.stableLastIndex()
    // The empty entry of the new term commits every earlier entry with it (§5.4.2). Until it is
    // applied, no membership change is accepted (the fix to single-server changes, Ongaro 2015).
    this.appendEntry([emptyEntry(0, 0)])
    this.pendingConfIndex = this.raftLog.lastIndex()
  }

  private promotable(): boolean {
    return this.trk.voters.has(this.id) && !this.raftLog.unstable.snapshot
  }

  private hup(t: CampaignType): void {
    if (this.state === StateType.Leader) return
    if (!this.promotable()) return
    if (this.hasUnappliedConfChanges()) return
    this.campaign(t)
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.raftLog.applied >= this.raftLog.committed) return false
    const lo = Math.max(this.raftLog.applied + 1, this.raftLog.firstIndex())
    try {
      for (const e of this.raftLog.slice(lo, this.raftLog.committed + 1, Number.MAX_SAFE_INTEGER)) {
        if (e.type === EntryType.ConfChange) return true
      }
    } catch {
      return true
    }
    return false
  }

  campaign(t: CampaignType): void {
    if (!this.promotable()) return
    let voteMsg: MessageType
    let term: number
    if (t === 'pre-election') {
      this.becomePreCandidate()
      voteMsg = MessageType.MsgPreVote
      term = this.term + 1 // the term we would run in; ours doesn't change
    } else {
      this.becomeCandidate()
      voteMsg = MessageType.MsgVote
      term = this.term
    }
    if (this.poll(this.id, voteRespMsgType(voteMsg), true) === 'won') {
      // Single voter: we won at once.
      if (t === 'pre-election') this.campaign('election')
      else this.becomeLeader()
      return
    }
    const ctx = t === 'transfer' ? CAMPAIGN_TRANSFER : EMPTY_BYTES
    for (const id of [...this.trk.voters].sort()) {
      if (id === this.id) continue
      this.send(
        newMessage({
          type: voteMsg,
          to: id,
          term,
          index: this.raftLog.lastIndex(),
          logTerm: this.raftLog.lastTerm(),
          context: ctx,
        }),
      )
    }
  }

  private poll(id: NodeId, _t: MessageType, granted: boolean): VoteResult {
    this.trk.recordVote(id, granted)
    return this.trk.tallyVotes().result
  }

  // ---------------------------------------------------------------- step

  /** Handles one message (network or local). Throws ConsensusError PROPOSAL_DROPPED for refused proposals. */
  step(m: Message): void {
    if (m.term === 0) {
      // local message
    } else if (m.term > this.term) {
      if (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) {
        const force = bytesEqual(m.context, CAMPAIGN_TRANSFER)
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout
        // CheckQuorum's lease: while we hear from a leader, ignore candidates (a node back from a
        // partition cannot depose a healthy leader), unless the leader itself asked (transfer).
        if (!force && inLease) return
      }
      if (m.type === MessageType.MsgPreVote) {
        // Never change our term in response to a PreVote.
      } else if (m.type === MessageType.MsgPreVoteResp && !m.reject) {
        // The pre-vote granted us the future term; we'll bump it when we win the pre-election.
      } else if (
        m.type === MessageType.MsgApp ||
        m.type === MessageType.MsgHeartbeat ||
        m.type === MessageType.MsgSnap
      ) {
        this.becomeFollower(m.term, m.from)
      } else {
        this.becomeFollower(m.term, NONE)
      }
    } else if (m.term < this.term) {
      if (
        (this.checkQuorum || this.preVote) &&
        (m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgApp)
      ) {
        // A stale leader (e.g. back from a partition): our answer with the higher term deposes it.
        this.send(newMessage({ type: MessageType.MsgAppResp, to: m.from }))
      } else if (m.type === MessageType.MsgPreVote) {
        this.send(newMessage({ type: MessageType.MsgPreVoteResp, to: m.from, term: this.term, reject: true }))
      }
      return
    }

    switch (m.type) {
      case MessageType.MsgHup:
        this.hup(this.preVote ? 'pre-election' : 'election')
        return
      case MessageType.MsgVote:
      case MessageType.MsgPreVote: {
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === MessageType.MsgPreVote && m.term > this.term) ||
          // PLANTED BUG (simulator only): grant a second vote in the same term.
          (m.type === MessageType.MsgVote && this.bugs.has('double-vote'))
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          this.send(newMessage({ type: voteRespMsgType(m.type), to: m.from, term: m.term }))
          if (m.type === MessageType.MsgVote) {
            this.electionElapsed = 0
            this.vote = m.from
          }
        } else {
          this.send(newMessage({ type: voteRespMsgType(m.type), to: m.from, term: this.term, reject: true }))
        }
        return
      }
      default:
        switch (this.state) {
          case StateType.Leader:
            this.stepLeader(m)
            return
          case StateType.Candidate:
          case StateType.PreCandidate:
            this.stepCandidate(m)
            return
          case StateType.Follower:
            this.stepFollower(m)
            return
        }
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.MsgBeat:
        this.bcastHeartbeat()
        return
      case MessageType.MsgCheckQuorum:
        if (!this.quorumActive()) this.becomeFollower(this.term, NONE)
        for (const [id, pr] of this.trk.progress) if (id !== this.id) pr.recentActive = false
        return
      case MessageType.MsgProp: {
        if (m.entries.length === 0) throw new Error('stepped empty MsgProp')
        if (!this.trk.progress.has(this.id))
          throw new ConsensusError('PROPOSAL_DROPPED', 'leader was removed')
        // A proposal forwarded in another term (delayed in the network, or sent before this node was
        // re-elected) is not appended: its proposer counts on it being appended in the term it was
        // forwarded in or never, to know when it may propose it again (the driver's requeueDropped).
        if (m.logTerm !== 0 && m.logTerm !== this.term)
          throw new ConsensusError('PROPOSAL_DROPPED', `forwarded in term ${m.logTerm}, not ${this.term}`)
        if (this.leadTransferee !== NONE)
          throw new ConsensusError('PROPOSAL_DROPPED', 'leadership transfer in progress')
        const es = m.entries.map((e) => ({ ...e }))
        for (let i = 0; i < es.length; i++) {
          const e = es[i]!
          if (e.type !== EntryType.ConfChange) continue
          if (this.pendingConfIndex > this.raftLog.applied) {
            // One change at a time: refused changes become empty entries (still tagged with their
            // origin, so the proposer learns it was refused when it applies them).
            es[i] = { ...e, type: EntryType.Normal, data: EMPTY_BYTES }
          } else {
            this.pendingConfIndex = this.raftLog.lastIndex() + i + 1
          }
        }
        if (!this.increaseUncommittedSize(es))
          throw new ConsensusError('PROPOSAL_DROPPED', 'too many uncommitted bytes')
        this.appendEntry(es)
        this.bcastAppend()
        return
      }
      case MessageType.MsgReadIndex:
        if (this.trk.isSingleton()) {
          const resp = this.responseToReadIndexReq(m, this.raftLog.committed)
          if (resp) this.send(resp)
          return
        }
        if (!this.committedEntryInCurrentTerm()) {
          // The commit index of a new leader may lag until its first entry commits (§6.4).
          if (this.pendingReadIndexMessages.length < PENDING_READ_INDEX_MAX)
            this.pendingReadIndexMessages.push(m)
          return
        }
        this.sendMsgReadIndexResponse(m)
        return
    }

    const pr = this.trk.progress.get(m.from)
    if (!pr) return
    switch (m.type) {
      case MessageType.MsgAppResp:
        pr.recentActive = true
        if (m.reject) {
          let nextProbeIdx = m.rejectHint
          if (m.logTerm > 0) nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm)[0]
          if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
            if (pr.state === 'replicate') pr.becomeProbe()
            this.sendAppend(m.from)
          }
        } else {
          const oldPaused = pr.isPaused()
          if (pr.maybeUpdate(m.index)) {
            if (pr.state === 'probe') pr.becomeReplicate()
            else if (pr.state === 'snapshot' && pr.match + 1 >= this.raftLog.firstIndex()) {
              pr.becomeProbe()
              pr.becomeReplicate()
            } else if (pr.state === 'replicate') pr.inflights.freeLE(m.index)

            if (this.maybeCommit()) {
              this.releasePendingReadIndexMessages()
              this.bcastAppend()
            } else if (oldPaused) {
              this.sendAppend(m.from)
            }
            // Fill the window while there is something to send.
            while (this.maybeSendAppend(m.from, false)) {
              /* keep sending */
            }
            if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex())
              this.sendTimeoutNow(m.from)
          }
        }
        return
      case MessageType.MsgHeartbeatResp: {
        pr.recentActive = true
        pr.probeSent = false
        if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne()
        if (pr.match < this.raftLog.lastIndex()) this.sendAppend(m.from)
        if (this.readOnly.option !== 'safe' || m.context.length === 0) return
        const acks = this.readOnly.recvAck(m.from, m.context)
        if (!acks) return
        if (this.trk.voteResult(withSelf(acks, this.id)) !== 'won') return
        for (const rs of this.readOnly.advance(m.context)) {
          const resp = this.responseToReadIndexReq(rs.req, rs.index)
          if (resp) this.send(resp)
        }
        return
      }
      case MessageType.MsgSnapStatus:
        if (pr.state !== 'snapshot') return
        if (m.reject) pr.pendingSnapshot = 0
        pr.becomeProbe()
        // Wait for the follower's answer (or a heartbeat response) before probing again.
        pr.probeSent = true
        return
      case MessageType.MsgUnreachable:
        if (pr.state === 'replicate') pr.becomeProbe()
        return
      case MessageType.MsgTransferLeader: {
        if (pr.isLearner) return
        const transferee = m.from
        if (this.leadTransferee !== NONE) {
          if (this.leadTransferee === transferee) return
          this.abortLeaderTransfer()
        }
        if (transferee === this.id) return
        // The transfer must finish within an election timeout, else it is aborted (tickHeartbeat).
        this.electionElapsed = 0
        this.leadTransferee = transferee
        if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee)
        else this.sendAppend(transferee)
        return
      }
    }
  }

  private stepCandidate(m: Message): void {
    const myVoteRespType =
      this.state === StateType.PreCandidate ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp
    switch (m.type) {
      case MessageType.MsgProp:
        throw new ConsensusError('PROPOSAL_DROPPED', 'no leader (election in progress)')
      case MessageType.MsgApp:
        this.becomeFollower(m.term, m.from)
        this.handleAppendEntries(m)
        return
      case MessageType.MsgHeartbeat:
        this.becomeFollower(m.term, m.from)
        this.handleHeartbeat(m)
        return
      case MessageType.MsgSnap:
        this.becomeFollower(m.term, m.from)
        this.handleSnapshot(m)
        return
      case myVoteRespType: {
        const res = this.poll(m.from, m.type, !m.reject)
        if (res === 'won') {
          if (this.state === StateType.PreCandidate) this.campaign('election')
          else {
            this.becomeLeader()
            this.bcastAppend()
          }
        } else if (res === 'lost') {
          // MsgPreVoteResp carries a future term on success, so a loss keeps our current term.
          this.becomeFollower(this.term, NONE)
        }
        return
      }
      default:
        return
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.MsgProp:
        if (this.lead === NONE) throw new ConsensusError('PROPOSAL_DROPPED', 'no leader')
        if (this.disableProposalForwarding)
          throw new ConsensusError('PROPOSAL_DROPPED', 'forwarding disabled')
        // logTerm carries the term it was forwarded in: the leader appends it only in that term.
        this.send({ ...m, to: this.lead, logTerm: this.term })
        return
      case MessageType.MsgApp:
        this.electionElapsed = 0
        this.lead = m.from
        this.handleAppendEntries(m)
        return
      case MessageType.MsgHeartbeat:
        this.electionElapsed = 0
        this.lead = m.from
        this.handleHeartbeat(m)
        return
      case MessageType.MsgSnap:
        this.electionElapsed = 0
        this.lead = m.from
        this.handleSnapshot(m)
        return
      case MessageType.MsgTransferLeader:
        if (this.lead === NONE) return
        this.send({ ...m, to: this.lead })
        return
      case MessageType.MsgTimeoutNow:
        // The leader hands over: campaign now, skipping PreVote, with the transfer context.
        this.hup('transfer')
        return
      case MessageType.MsgReadIndex:
        if (this.lead === NONE) return // the driver retries the round
        this.send({ ...m, to: this.lead })
        return
      case MessageType.MsgReadIndexResp:
        if (m.entries.length !== 1) return
        this.readStates.push({ index: m.index, context: m.entries[0]!.data })
        return
      default:
        return
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      this.send(newMessage({ type: MessageType.MsgAppResp, to: m.from, index: this.raftLog.committed }))
      return
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries)
    if (lastNew !== undefined) {
      this.send(newMessage({ type: MessageType.MsgAppResp, to: m.from, index: lastNew }))
      return
    }
    // Fast backtracking: tell the leader the last index whose term is ≤ the one it tried, so it
    // skips every entry of a conflicting term in one round trip.
    const hintIndex = Math.min(m.index, this.raftLog.lastIndex())
    const [idx, t] = this.raftLog.findConflictByTerm(hintIndex, m.logTerm)
    this.send(
      newMessage({
        type: MessageType.MsgAppResp,
        to: m.from,
        index: m.index,
        reject: true,
        rejectHint: idx,
        logTerm: t,
      }),
    )
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(Math.min(m.commit, this.raftLog.lastIndex()))
    this.send(newMessage({ type: MessageType.MsgHeartbeatResp, to: m.from, context: m.context }))
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot
    if (!s) return
    if (this.restore(s)) {
      this.send(newMessage({ type: MessageType.MsgAppResp, to: m.from, index: this.raftLog.lastIndex() }))
    } else {
      this.send(newMessage({ type: MessageType.MsgAppResp, to: m.from, index: this.raftLog.committed }))
    }
  }

  /** Installs snapshot s if it is newer than our commit; returns whether the log was replaced. */
  restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false
    if (this.state !== StateType.Follower) {
      this.becomeFollower(this.term + 1, NONE)
      return false
    }
    // Unlike etcd we accept a snapshot whose configuration lacks us: a node added after the latest
    // snapshot gets that snapshot first and the entry that adds it right after.
    const cs = s.metadata.confState
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      // We have the snapshot's last entry: fast-forward the commit instead of replacing the log.
      this.raftLog.commitTo(s.metadata.index)
      return false
    }
    this.raftLog.restore(s)
    this.trk.voters.clear()
    this.trk.learners.clear()
    this.trk.progress.clear()
    this.applyConfState(cs)
    return true
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat()
    else this.tickElection()
  }

  private tickElection(): void {
    this.electionElapsed++
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0
      this.step(newMessage({ type: MessageType.MsgHup, from: this.id }))
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++
    this.electionElapsed++
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0
      if (this.checkQuorum) this.step(newMessage({ type: MessageType.MsgCheckQuorum, from: this.id }))
      if (this.state === StateType.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer()
    }
    if (this.state !== StateType.Leader) return
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0
      this.step(newMessage({ type: MessageType.MsgBeat, from: this.id }))
    }
  }

  // ---------------------------------------------------------------- helpers

  private quorumActive(): boolean {
    const active = new Map<NodeId, boolean>()
    for (const id of this.trk.voters) {
      const pr = this.trk.progress.get(id)
      active.set(id, id === this.id || (pr?.recentActive ?? false))
    }
    return this.trk.voteResult(active) === 'won'
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.termOrZero(this.raftLog.committed) === this.term
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return
    const msgs = this.pendingReadIndexMessages
    this.pendingReadIndexMessages = []
    for (const m of msgs) this.sendMsgReadIndexResponse(m)
  }

  private sendMsgReadIndexResponse(m: Message): void {
    if (this.readOnly.option === 'safe') {
      this.readOnly.addRequest(this.raftLog.committed, m)
      this.readOnly.recvAck(this.id, m.entries[0]!.data)
      this.bcastHeartbeat()
    } else {
      const resp = this.responseToReadIndexReq(m, this.raftLog.committed)
      if (resp) this.send(resp)
    }
  }

  private responseToReadIndexReq(req: Message, readIndex: number): Message | null {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, context: req.entries[0]!.data })
      return null
    }
    return newMessage({
      type: MessageType.MsgReadIndexResp,
      to: req.from,
      index: readIndex,
      entries: req.entries,
    })
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(newMessage({ type: MessageType.MsgTimeoutNow, to }))
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE
  }

  private increaseUncommittedSize(ents: readonly Entry[]): boolean {
    let s = 0
    for (const e of ents) s += entrySizeBytes(e)
    if (this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.maxUncommittedSize) return false
    this.uncommittedSize += s
    return true
  }

  reduceUncommittedSize(ents: readonly Entry[]): void {
    let s = 0
    for (const e of ents) s += entrySizeBytes(e)
    this.uncommittedSize = Math.max(0, this.uncommittedSize - s)
  }

  private applyConfState(cs: ConfState): void {
    const last = this.raftLog.lastIndex()
    for (const id of cs.voters) this.addNode(id, false, last)
    for (const id of cs.learners) this.addNode(id, true, last)
  }

  private addNode(id: NodeId, learner: boolean, last: number): void {
    if (learner) {
      this.trk.voters.delete(id)
      this.trk.learners.add(id)
    } else {
      this.trk.learners.delete(id)
      this.trk.voters.add(id)
    }
    const pr = this.trk.progress.get(id)
    if (pr) {
      pr.isLearner = learner
      return
    }
    const np = new Progress(last + 1, this.trk.inflightMax, learner)
    // A new peer counts as active so CheckQuorum doesn't depose us before it had a chance to answer.
    np.recentActive = true
    this.trk.progress.set(id, np)
  }

  /**
   * Applies a committed single-server conf change (called by the driver when it applies the entry).
   * Returns null when the change is not valid in the current configuration (it is then a no-op on
   * every node alike, since every node applies the same entries to the same configuration).
   */
  applyConfChange(cc: ConfChange): ConfState | null {
    const id = cc.nodeId
    const isVoter = this.trk.voters.has(id)
    const isLearner = this.trk.learners.has(id)
    const last = this.raftLog.lastIndex()
    switch (cc.type) {
      case ConfChangeType.AddVoter:
        if (isVoter) return null
        this.addNode(id, false, last) // adding a learner as voter promotes it (etcd semantics)
        break
      case ConfChangeType.AddLearner:
        if (isVoter || isLearner) return null // demotion is not supported
        this.addNode(id, true, last)
        break
      case ConfChangeType.PromoteLearner:
        if (!isLearner) return null
        this.addNode(id, false, last)
        break
      case ConfChangeType.RemoveNode:
        if (!isVoter && !isLearner) return null
        if (isVoter && this.trk.voters.size === 1) return null // never remove the last voter
        this.trk.voters.delete(id)
        this.trk.learners.delete(id)
        this.trk.progress.delete(id)
        if (id === this.leadTransferee) this.abortLeaderTransfer()
        break
      default:
        return null
    }
    if (this.state === StateType.Leader) {
      if (!this.trk.voters.has(this.id)) {
        // Removed (or never a voter): step down into the next term so the others elect a leader.
        this.becomeFollower(this.term + 1, NONE)
      } else if (this.maybeCommit()) {
        // The quorum changed size: something may have committed.
        this.bcastAppend()
      }
    }
    return this.trk.confState()
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

function withSelf(acks: Map<NodeId, boolean>, self: NodeId): Map<NodeId, boolean> {
  if (acks.has(self)) return acks
  const m = new Map(acks)
  m.set(self, true)
  return m
}
