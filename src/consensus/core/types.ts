/**
 * Plain data types of the Raft core. They mirror proto/raft.proto field for field (camelCase), so a
 * decoded protobuf message converts with no copying of payloads (see ../codec.ts); the core works on
 * these plain objects and never touches protobuf itself.
 */

/** A node id: a libp2p peer id ("12D3KooW…") in production, any non-empty string in tests. */
export type NodeId = string

/** The empty node id: "no vote", "no leader". */
export const NONE: NodeId = ''

export enum EntryType {
  Normal = 0,
  ConfChange = 1,
}

export interface Entry {
  term: number
  index: number
  type: EntryType
  data: Uint8Array
  /** Client session id for exactly-once; '' = no session. */
  clientId: string
  /** Client sequence number within the session (meaningful when clientId !== ''). */
  seq: number
  /** Proposing node's incarnation id ('' for entries the core makes itself, e.g. the leader's no-op). */
  origin: string
  /** The proposer's local proposal number, to resolve its promise at apply time. */
  originSeq: number
}

export interface HardState {
  term: number
  vote: NodeId
  commit: number
}

export interface ConfState {
  voters: NodeId[]
  learners: NodeId[]
}

export interface SnapshotMetadata {
  confState: ConfState
  index: number
  term: number
}

export interface Snapshot {
  data: Uint8Array
  metadata: SnapshotMetadata
}

/** Same numbers as hopsd.raft.MessageType in proto/raft.proto (a test holds them equal). */
export enum MessageType {
  MsgHup = 0,
  MsgBeat = 1,
  MsgProp = 2,
  MsgApp = 3,
  MsgAppResp = 4,
  MsgVote = 5,
  MsgVoteResp = 6,
  MsgSnap = 7,
  MsgHeartbeat = 8,
  MsgHeartbeatResp = 9,
  MsgUnreachable = 10,
  MsgSnapStatus = 11,
  MsgCheckQuorum = 12,
  MsgTransferLeader = 13,
  MsgTimeoutNow = 14,
  MsgReadIndex = 15,
  MsgReadIndexResp = 16,
  MsgPreVote = 17,
  MsgPreVoteResp = 18,
}

export interface Message {
  type: MessageType
  to: NodeId
  from: NodeId
  term: number
  logTerm: number
  index: number
  entries: Entry[]
  commit: number
  snapshot: Snapshot | null
  reject: boolean
  rejectHint: number
  context: Uint8Array
  /** Chunking of MsgSnap on the wire (driver level; the core always sees whole snapshots). */
  snapOffset: number
  snapTotalBytes: number
}

export enum ConfChangeType {
  AddVoter = 0,
  AddLearner = 1,
  PromoteLearner = 2,
  RemoveNode = 3,
}

export interface ConfChange {
  type: ConfChangeType
  nodeId: NodeId
  context: Uint8Array
}

export enum StateType {
  Follower = 'follower',
  PreCandidate = 'pre-candidate',
  Candidate = 'candidate',
  Leader = 'leader',
}

/** Volatile state worth reporting; not persisted. */
export interface SoftState {
  leader: NodeId
  role: StateType
}

/** A ReadIndex answer: once the state machine has applied `index`, reads for `context` are linearizable. */
export interface ReadState {
  index: number
  context: Uint8Array
}

/**
 * One batch of work handed out by RawNode.ready(). The driver performs it IN THIS ORDER:
 *
 * 1. Send `earlyMessages` at any time, even before step 2 completes ("overlap": the leader replicates
 *    while its own write is in flight; its own copy counts toward commit only after advance()).
 * 2. Persist `hardState`, `entries` and `snapshot` atomically and durably (one fsync'ed write batch).
 *    Entries overwrite any persisted entries at the same or higher indexes (log truncation).
 * 3. Only after step 2 completed: send `messages` (votes, append acks: they promise durability).
 * 4. Apply `snapshot` (if any) to the state machine, then `committedEntries` in order. Conf-change
 *    entries must be handed back with RawNode.applyConfChange() as they are applied.
 * 5. Call RawNode.advance(rd). No other ready() may be taken between ready() and advance().
 *
 * `readStates` may be acted on after step 2 (wait until applied ≥ index, then serve the read).
 */
export interface Ready {
  /** Changed volatile state, or null when unchanged since the last Ready. */
  softState: SoftState | null
  /** Hard state to persist, or null when unchanged. */
  hardState: HardState | null
  /** Entries to persist (step 2), in index order; may be empty. */
  entries: Entry[]
  /** A snapshot received from the leader, to persist (step 2) and restore (step 4); null if none. */
  snapshot: Snapshot | null
  /** Committed entries to apply (step 4); all already persisted (possibly by an earlier Ready). */
  committedEntries: Entry[]
  /** Messages to send only after this Ready's persist completed (step 3). */
  messages: Message[]
  /** Messages that may be sent before/while persisting (step 1): the leader's replication traffic. */
  earlyMessages: Message[]
  /** ReadIndex results. */
  readStates: ReadState[]
  /** True when `messages`/`earlyMessages` must not wait: nothing to persist. Informational. */
  mustSync: boolean
}

/**
 * The core's synchronous view of the stable (persisted) log — etcd's Storage. The driver keeps an
 * in-memory mirror of the persisted tail (bounded by compaction), see ../memory-log.ts.
 *
 * Indexes: the log holds (firstIndex-1 .. lastIndex]; the entry at firstIndex-1 is represented by the
 * snapshot (its term is known via term()), entries before are compacted.
 */
export interface LogStorage {
  initialState(): { hardState: HardState; confState: ConfState }
  /** Entries [lo, hi), at most maxBytes in total (at least one entry if any is in range). */
  entries(lo: number, hi: number, maxBytes: number): Entry[]
  /** Term of entry i; throws CompactedError when i < firstIndex-1, UnavailableError when i > lastIndex. */
  term(i: number): number
  firstIndex(): number
  lastIndex(): number
  /** The most recent snapshot (what a lagging follower gets); throws SnapshotTemporarilyUnavailable if not ready. */
  snapshot(): Snapshot
}

export class CompactedError extends Error {
  override readonly name = 'CompactedError'
  constructor() {
    super('requested index is unavailable due to compaction')
  }
}

export class UnavailableError extends Error {
  override readonly name = 'UnavailableError'
  constructor() {
    super('requested entry at index is unavailable')
  }
}

/**
 * Bugs the simulator plants to prove its checkers can fail (issue #3 item 5). NEVER enable outside
 * test/sim: each one breaks Raft safety on purpose.
 * - 'double-vote': a node grants a vote even if it already voted for another candidate in this term.
 * - 'commit-old-term': a leader commits an entry of an earlier term by counting replicas (Figure 8).
 * - 'ack-before-fsync': followers ack appends, and the leader counts its own copy, before persisting.
 */
export type KnownBug = 'double-vote' | 'commit-old-term' | 'ack-before-fsync'

export function emptyEntry(term: number, index: number): Entry {
  return {
    term,
    index,
    type: EntryType.Normal,
    data: EMPTY_BYTES,
    clientId: '',
    seq: 0,
    origin: '',
    originSeq: 0,
  }
}

export const EMPTY_BYTES: Uint8Array = new Uint8Array(0)

/** A message with every field at its zero value, for building messages field by field. */
export function newMessage(init: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    to: NONE,
    from: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    snapshot: null,
    reject: false,
    rejectHint: 0,
    context: EMPTY_BYTES,
    snapOffset: 0,
    snapTotalBytes: 0,
    ...init,
  }
}

/** Approximate in-memory/wire size of an entry, for maxBatchBytes accounting. */
export function entrySizeBytes(e: Entry): number {
  return e.data.length + e.clientId.length + e.origin.length + 24
}

export function isLocalMsg(t: MessageType): boolean {
  return (
    t === MessageType.MsgHup ||
    t === MessageType.MsgBeat ||
    t === MessageType.MsgUnreachable ||
    t === MessageType.MsgSnapStatus ||
    t === MessageType.MsgCheckQuorum
  )
}

export function isResponseMsg(t: MessageType): boolean {
  return (
    t === MessageType.MsgAppResp ||
    t === MessageType.MsgVoteResp ||
    t === MessageType.MsgHeartbeatResp ||
    t === MessageType.MsgUnreachable ||
    t === MessageType.MsgPreVoteResp
  )
}

/** The response type matching a vote request type. */
export function voteRespMsgType(t: MessageType): MessageType {
  if (t === MessageType.MsgVote) return MessageType.MsgVoteResp
  if (t === MessageType.MsgPreVote) return MessageType.MsgPreVoteResp
  throw new Error(`not a vote message: ${t}`)
}

export function isEmptySnap(s: Snapshot | null | undefined): boolean {
  return s == null || s.metadata.index === 0
}

export function isHardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit
}
