/**
 * The Raft core's API (etcd's RawNode): feed it ticks, messages and proposals; take a Ready; perform
 * it (persist → send → apply, see Ready in ./types.ts); advance. Not re-entrant and not thread-safe:
 * the driver calls it from one loop. Pure: no I/O, no clock, no randomness but the injected Rng.
 */
import { ConsensusError } from '../errors.js'
import type { RaftConfig } from './config.js'
import { Raft } from './raft.js'
import {
  EMPTY_BYTES,
  EntryType,
  MessageType,
  NONE,
  isHardStateEqual,
  isLocalMsg,
  isResponseMsg,
  newMessage,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type Ready,
  type SoftState,
  type StateType,
} from './types.js'

/** Optional tags carried by a proposed entry (see Entry in ./types.ts). */
export interface ProposalMeta {
  clientId?: string
  seq?: number
  origin?: string
  originSeq?: number
}

export type ProgressStateType = 'probe' | 'replicate' | 'snapshot'

export interface ProgressStatus {
  match: number
  next: number
  state: ProgressStateType
  isLearner: boolean
  recentActive: boolean
  inflight: number
}

export interface RawNodeStatus {
  id: NodeId
  term: number
  vote: NodeId
  commit: number
  applied: number
  lead: NodeId
  role: StateType
  lastIndex: number
  voters: NodeId[]
  learners: NodeId[]
  leadTransferee: NodeId
  /** Leader only: per-peer replication progress. */
  progress: Record<NodeId, ProgressStatus>
}

export class RawNode {
  /** The protocol state; exposed for the simulator's invariant checks and for tests (read-only use). */
  readonly raft: Raft
  private prevSoftState: SoftState
  private prevHardState: HardState

  constructor(config: RaftConfig) {
    this.raft = new Raft(config)
    this.prevSoftState = this.softState()
    this.prevHardState = this.hardState()
  }

  tick(): void {
    this.raft.tick()
  }

  /** Starts an election now (tests, and a bootstrapped single voter that shouldn't wait). */
  campaign(): void {
    this.raft.step(newMessage({ type: MessageType.MsgHup, from: this.raft.id }))
  }

  /**
   * Steps a message from the network. Local-only message types and responses from unknown peers are
   * ignored. Throws ConsensusError PROPOSAL_DROPPED when a (forwarded) proposal cannot be taken.
   */
  step(m: Message): void {
    if (isLocalMsg(m.type)) return // never from the network
    if (isResponseMsg(m.type) && !this.raft.trk.progress.has(m.from)) return
    this.raft.step(m)
  }

  /** Proposes one command; returns the index it got if this node leads, else 0 (forwarded). */
  propose(data: Uint8Array, meta?: ProposalMeta): number {
    return this.proposeEntries([toEntry(EntryType.Normal, data, meta)])
  }

  /** Proposes many commands as one MsgProp: one append, one MsgApp per follower (batching). */
  proposeMany(items: readonly { data: Uint8Array; meta?: ProposalMeta }[]): number {
    if (items.length === 0) return 0
    return this.proposeEntries(items.map((it) => toEntry(EntryType.Normal, it.data, it.meta)))
  }

  /** Proposes a single-server membership change (encoded by the caller with encodeConfChange). */
  proposeConfChange(ccData: Uint8Array, meta?: ProposalMeta): number {
    return this.proposeEntries([toEntry(EntryType.ConfChange, ccData, meta)])
  }

  private proposeEntries(entries: Entry[]): number {
    const before = this.raft.raftLog.lastIndex()
    this.raft.step(newMessage({ type: MessageType.MsgProp, from: this.raft.id, entries }))
    const after = this.raft.raftLog.lastIndex()
    return this.raft.state === 'leader' && after > before ? after : 0
  }

  /** Applies a committed conf change entry's change; null when it was not valid (a no-op everywhere). */
  applyConfChange(cc: ConfChange): ConfState | null {
    return this.raft.applyConfChange(cc)
  }

  /** Requests a read index; the answer comes as a ReadState with the same context in a later Ready. */
  readIndex(context: Uint8Array): void {
    this.raft.step(
      newMessage({
        type: MessageType.MsgReadIndex,
        from: this.raft.id,
        entries: [{ ...toEntry(EntryType.Normal, context), data: context }],
      }),
    )
  }

  /** Asks the leader (this node or, forwarded, the current leader) to hand leadership to `to`. */
  transferLeader(to: NodeId): void {
    this.raft.step(newMessage({ type: MessageType.MsgTransferLeader, from: to }))
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(newMessage({ type: MessageType.MsgUnreachable, from: id }))
  }

  /** The driver finished (ok) or failed to send a snapshot to `id`. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(newMessage({ type: MessageType.MsgSnapStatus, from: id, reject: !ok }))
  }

  /**
   * Takes the messages that may be sent before persisting (the leader's MsgApps for proposals stepped
   * while a Ready is in flight): sending them now pipelines replication with the leader's own fsync.
   */
  takeEarlyMessages(): Message[] {
    const m = this.raft.msgsEarly
    if (m.length > 0) this.raft.msgsEarly = []
    return m
  }

  hasReady(): boolean {
    const r = this.raft
    const ss = this.softState()
    if (ss.leader !== this.prevSoftState.leader || ss.role !== this.prevSoftState.role) return true
    const hs = this.hardState()
    if (!isHardStateEqual(hs, this.prevHardState)) return true
    if (r.raftLog.unstable.snapshot) return true
    if (r.msgs.length > 0 || r.msgsEarly.length > 0) return true
    if (r.raftLog.unstableEntries().length > 0 || r.raftLog.hasNextEnts()) return true
    return r.readStates.length > 0
  }

  ready(): Ready {
    const r = this.raft
    const ss = this.softState()
    const hs = this.hardState()
    const entries = r.raftLog.unstableEntries().slice()
    const snapshot = r.raftLog.unstable.snapshot
    const hardStateChanged = !isHardStateEqual(hs, this.prevHardState)
    const rd: Ready = {
      softState: ss.leader !== this.prevSoftState.leader || ss.role !== this.prevSoftState.role ? ss : null,
      hardState: hardStateChanged ? hs : null,
      entries,
      snapshot,
      committedEntries: r.raftLog.nextEnts(),
      messages: r.msgs,
      earlyMessages: r.msgsEarly,
      readStates: r.readStates,
      mustSync:
        entries.length > 0 ||
        snapshot !== null ||
        (hardStateChanged && (hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote)),
    }
    r.msgs = []
    r.msgsEarly = []
    r.readStates = []
    return rd
  }

  /** The Ready was performed: its entries/snapshot are durable and its committed entries applied. */
  advance(rd: Ready): void {
    const r = this.raft
    if (rd.softState) this.prevSoftState = rd.softState
    if (rd.hardState) this.prevHardState = rd.hardState
    if (rd.snapshot) r.raftLog.stableSnapTo(rd.snapshot.metadata.index)
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!
      r.raftLog.stableTo(last.index, last.term)
    }
    if (rd.committedEntries.length > 0) {
      r.raftLog.appliedTo(rd.committedEntries[rd.committedEntries.length - 1]!.index)
      if (r.state === 'leader') r.reduceUncommittedSize(rd.committedEntries)
    } else if (rd.snapshot) {
      r.raftLog.appliedTo(rd.snapshot.metadata.index)
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!
      r.onPersisted(last.index, last.term)
    }
  }

  status(): RawNodeStatus {
    const r = this.raft
    const progress: Record<NodeId, ProgressStatus> = {}
    if (r.state === 'leader') {
      for (const [id, pr] of r.trk.progress) {
        progress[id] = {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          isLearner: pr.isLearner,
          recentActive: pr.recentActive,
          inflight: pr.inflights.count,
        }
      }
    }
    const cs = r.trk.confState()
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.raftLog.committed,
      applied: r.raftLog.applied,
      lead: r.lead,
      role: r.state,
      lastIndex: r.raftLog.lastIndex(),
      voters: cs.voters,
      learners: cs.learners,
      leadTransferee: r.leadTransferee,
      progress,
    }
  }

  private softState(): SoftState {
    return { leader: this.raft.lead, role: this.raft.state }
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.raftLog.committed }
  }
}

function toEntry(type: EntryType, data: Uint8Array, meta?: ProposalMeta): Entry {
  return {
    term: 0,
    index: 0,
    type,
    data: data ?? EMPTY_BYTES,
    clientId: meta?.clientId ?? '',
    seq: meta?.seq ?? 0,
    origin: meta?.origin ?? '',
    originSeq: meta?.originSeq ?? 0,
  }
}

export { NONE, ConsensusError }
