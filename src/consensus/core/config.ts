import { ConsensusError } from '../errors.js'
import type { Rng } from '../rng.js'
import type { KnownBug, LogStorage, NodeId } from './types.js'

/** Settings of one Raft core (etcd's raft.Config). Time is counted in ticks. */
export interface RaftConfig {
  id: NodeId
  /**
   * A follower that hears nothing from a leader for a randomized timeout in
   * [electionTicks, 2*electionTicks) starts an election. Must be > heartbeatTicks (etcd: 10x).
   */
  electionTicks: number
  /** The leader sends heartbeats every heartbeatTicks. */
  heartbeatTicks: number
  /** The stable log (the driver's in-memory mirror of what is persisted). */
  storage: LogStorage
  /** The last index applied to the state machine at start (0 = only what storage implies). */
  applied?: number
  /** Bytes of entries per MsgApp (the batch size); at least one entry always goes. */
  maxSizePerMsgBytes: number
  /** Bytes of committed entries handed out per Ready. */
  maxCommittedSizePerReadyBytes: number
  /** A leader refuses proposals while this many bytes of entries are uncommitted (backpressure). */
  maxUncommittedEntriesSizeBytes: number
  /** Per-follower pipelining window: MsgApps sent but not acked. */
  inflightMsgsMax: number
  /** Leader steps down when it has not heard from a quorum for an election timeout. */
  checkQuorum: boolean
  /** Run a pre-election so a partitioned node rejoining does not bump terms and depose a healthy leader. */
  preVote: boolean
  /** 'safe': ReadIndex confirms leadership with a heartbeat round. 'lease': trust checkQuorum's lease (needs checkQuorum). */
  readOnlyOption: 'safe' | 'lease'
  /** Followers drop proposals instead of forwarding them to the leader. */
  disableProposalForwarding: boolean
  /** Randomness for election timeouts; seeded in tests and the simulator. */
  rng: Rng
  /** Simulator only: plants known bugs (see KnownBug). Never set in production. */
  knownBugs?: ReadonlySet<KnownBug>
}

export const defaultCoreConfig = {
  electionTicks: 10,
  heartbeatTicks: 1,
  maxSizePerMsgBytes: 1 << 20,
  maxCommittedSizePerReadyBytes: 4 << 20,
  maxUncommittedEntriesSizeBytes: 64 << 20,
  inflightMsgsMax: 256,
  checkQuorum: true,
  preVote: true,
  readOnlyOption: 'safe' as const,
  disableProposalForwarding: false,
}

/** Rejects bad settings, including rules that span fields. Throws ConsensusError INVALID_CONFIG. */
export function validateConfig(c: RaftConfig): void {
  const bad = (why: string): never => {
    throw new ConsensusError('INVALID_CONFIG', why)
  }
  if (typeof c.id !== 'string' || c.id === '') bad('id must be a non-empty string')
  const posInt = (name: keyof RaftConfig): void => {
    const v = c[name]
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
      bad(`${name} must be a positive integer, got ${String(v)}`)
  }
  posInt('electionTicks')
  posInt('heartbeatTicks')
  posInt('maxSizePerMsgBytes')
  posInt('maxCommittedSizePerReadyBytes')
  posInt('maxUncommittedEntriesSizeBytes')
  posInt('inflightMsgsMax')
  if (c.electionTicks <= c.heartbeatTicks) bad('electionTicks must be greater than heartbeatTicks')
  if (c.readOnlyOption === 'lease' && !c.checkQuorum) bad("readOnlyOption 'lease' requires checkQuorum")
  if (c.maxUncommittedEntriesSizeBytes < c.maxSizePerMsgBytes)
    bad('maxUncommittedEntriesSizeBytes must be at least maxSizePerMsgBytes')
  if (c.applied !== undefined && (!Number.isInteger(c.applied) || c.applied < 0)) bad('applied must be ≥ 0')
  if (!c.storage) bad('storage is required')
  if (!c.rng) bad('rng is required')
}
