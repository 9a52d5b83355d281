import type { Clock } from './clock.js'
import type { KnownBug, NodeId, StateType } from './core/types.js'
import type { Rng } from './rng.js'
import type { StateMachine } from './state-machine.js'
import type { RaftPersistence } from './storage/types.js'
import type { RaftTransport } from './transport.js'

/** Driver settings (every knob bounded; units last). Defaults in defaultRaftGroupConfig. */
export interface RaftGroupConfig {
  /** Milliseconds per Raft tick. */
  tickMs: number
  /** Election timeout in ticks (randomized in [electionTicks, 2*electionTicks)). */
  electionTicks: number
  /** Heartbeat interval in ticks. */
  heartbeatTicks: number
  /** Per-follower window of unacked MsgApps (pipelining). */
  inflightMsgsMax: number
  /** Bytes of entries per MsgApp (batching). A single command larger than this is refused. */
  maxBatchBytes: number
  /** Take a state-machine snapshot and compact the log every snapshotEntries applied entries. */
  snapshotEntries: number
  /**
   * ...and only once the entries applied since the last snapshot hold at least this many times that
   * snapshot's bytes. Taking a snapshot costs time in proportion to the whole state, so without this
   * rule a large namespace spent more time snapshotting than applying; with it the cost per applied
   * byte stays bounded (Redis rewrites its AOF by the same rule). The log kept in memory between
   * snapshots is then at most this ratio times the state. 0 turns the rule off.
   */
  snapshotLogRatio: number
  /** InstallSnapshot chunk size on the wire. */
  snapshotChunkBytes: number
  /**
   * Bytes of the newest log entries kept in memory (the rest since the last snapshot are read back
   * from the storage when a lagging follower or a restart's apply needs them). Only with a storage
   * that can read entries back (RaftPersistence.readEntries); otherwise the whole log stays in memory.
   */
  logCacheBytes: number
  /** Default deadline of propose/readBarrier/membership/transfer calls without their own signal. */
  proposalTimeoutMs: number
  /** Calls waiting for a result at most (backpressure: QUEUE_FULL beyond). */
  proposalQueueMax: number
  preVote: boolean
  checkQuorum: boolean
  /** 'safe' (default): ReadIndex with a heartbeat round. 'lease': leader lease (needs checkQuorum). */
  readOnlyOption: 'safe' | 'lease'
  /** Client sessions kept at most; the one with the oldest last-applied index is evicted first. */
  sessionsMax: number
  /** Cached results per client session (seqs older than the window answer SESSION_EXPIRED). */
  sessionResultsMax: number
  /** Simulator only: plant known bugs to prove the checkers fail. Off by default; never in production. */
  testing?: { knownBugs?: ReadonlySet<KnownBug> }
}

export const defaultRaftGroupConfig: RaftGroupConfig = {
  tickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
  inflightMsgsMax: 256,
  maxBatchBytes: 1 << 20,
  snapshotEntries: 10_000,
  snapshotLogRatio: 1,
  snapshotChunkBytes: 256 << 10,
  logCacheBytes: 16 << 20,
  proposalTimeoutMs: 10_000,
  proposalQueueMax: 10_000,
  preVote: true,
  checkQuorum: true,
  readOnlyOption: 'safe',
  sessionsMax: 10_000,
  sessionResultsMax: 64,
}

/** Encodes state-machine results for the session cache inside snapshots (default: JSON). */
export interface ResultCodec {
  encode(result: unknown): Uint8Array
  decode(bytes: Uint8Array): unknown
}

export interface RaftLogger {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
}

export interface RaftGroupInit {
  id: NodeId
  storage: RaftPersistence
  transport: RaftTransport
  stateMachine: StateMachine
  /** Defaults to realClock. */
  clock?: Clock
  rng: Rng
  config?: Partial<RaftGroupConfig>
  logger?: RaftLogger
  resultCodec?: ResultCodec
}

export interface ProposeOptions {
  signal?: AbortSignal
  /** Exactly-once: a retried (clientId, seq) is applied once; every try resolves with the same result. */
  session?: { clientId: string; seq: number }
}

export interface CallOptions {
  signal?: AbortSignal
}

export interface RaftGroupStatus {
  id: NodeId
  term: number
  role: StateType
  leaderId: NodeId
  commitIndex: number
  appliedIndex: number
  voters: NodeId[]
  learners: NodeId[]
  lastIndex: number
  /**
   * Leader only (empty elsewhere): how far each member's log matches the leader's. Self-assembly
   * promotes a learner only once its match is close to the commit index. `heardAgoMs`: how long since
   * the member's last Raft message reached this leader (Infinity: never) — it answers every heartbeat,
   * so this is liveness seen by Raft itself, independent of gossip.
   */
  progress?: Record<NodeId, { match: number; next: number; heardAgoMs: number }>
  /**
   * Since start: `barriers`, readBarrier calls; `rounds`, ReadIndex rounds sent for them (concurrent
   * waiters share one; a lost round's retry counts again). What a read costs, seen from outside.
   */
  reads?: { barriers: number; rounds: number }
  /**
   * `index`: of the latest snapshot this node holds (taken or installed); `installed`: snapshots
   * installed from a leader since start; `receivingBytes`: bytes of snapshots being received now.
   */
  snapshots?: { index: number; installed: number; receivingBytes: number }
  /**
   * Where this start's time went, in ms: reading the Raft storage (`load`), opening the state
   * machine's durable store (`storeOpen`), and checking the snapshot file or restoring from it
   * (`snapshot`).
   */
  start?: { loadMs: number; storeOpenMs: number; snapshotMs: number }
  /**
   * What the driver's mirror of the log holds in memory: `entries` and their `bytes` (the newest,
   * bounded by logCacheBytes), `snapshotDataBytes` (0 unless the storage cannot read a snapshot back),
   * and `readBackEntries`, entries read back from the storage since start (a lagging follower's, a
   * restart's apply).
   */
  log?: { entries: number; bytes: number; snapshotDataBytes: number; readBackEntries: number }
}

export type RaftGroupEvent =
  | { type: 'leader'; leaderId: NodeId; term: number }
  | { type: 'membership'; voters: NodeId[]; learners: NodeId[] }
  | { type: 'stopped'; error?: Error }

/**
 * One node of a Raft group: owns the core, the storage, the transport and the state machine.
 * All methods may be called at any time after construction; calls needing a running node reject with
 * STOPPED after stop(). Every returned promise settles: on success, on a typed ConsensusError, or at
 * its deadline (signal, or proposalTimeoutMs) with TIMEOUT/ABORTED.
 */
export interface RaftGroup {
  readonly id: NodeId
  /** Loads storage, restores the state machine from the latest snapshot, starts ticking. */
  start(): Promise<void>
  /** Stops ticking and I/O, rejects pending calls with STOPPED, closes storage. Idempotent. */
  stop(): Promise<void>
  /**
   * Creates the group with this initial voter set (must include nobody else's bootstrap: call it on
   * exactly one set of nodes, with the same list on each). Fails with ALREADY_BOOTSTRAPPED when this
   * node has any Raft state. Call after start().
   */
  bootstrap(voterIds: NodeId[]): Promise<void>
  /** Replicates command; resolves with the state machine's result for it once applied HERE. */
  propose(command: Uint8Array, opts?: ProposeOptions): Promise<unknown>
  /** Resolves once this node's state machine reflects every write committed before the call. */
  readBarrier(opts?: CallOptions): Promise<void>
  addVoter(id: NodeId, opts?: CallOptions): Promise<void>
  addLearner(id: NodeId, opts?: CallOptions): Promise<void>
  promoteLearner(id: NodeId, opts?: CallOptions): Promise<void>
  removeNode(id: NodeId, opts?: CallOptions): Promise<void>
  /** Hands leadership to toId (must be a voter); resolves when this node sees toId lead. */
  transferLeadership(toId: NodeId, opts?: CallOptions): Promise<void>
  status(): RaftGroupStatus
  /** Leader and membership changes, and the stop. Returns an unsubscribe function. */
  subscribe(listener: (ev: RaftGroupEvent) => void): () => void
  /** Resolves when the leader is known (any node) — convenience for tests and startup. */
  waitForLeader(opts?: CallOptions): Promise<NodeId>
}

export type { RaftTransport, RaftPersistence, StateMachine, Clock, Rng }
