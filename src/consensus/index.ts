/**
 * Consensus: a Raft library in the style of etcd-io/raft. The core (./core) is a pure state machine
 * — messages and ticks in, a Ready batch out — with no I/O, timers or randomness of its own; the
 * driver (createRaftGroup) does storage (LevelDB, one fsync'ed batch per Ready), transport and ticks.
 * See ./README.md for the Ready contract and the design choices.
 *
 * @example
 * ```ts
 * import { createRaftGroup, createMemoryNetwork, createMemoryStorage, createSeededRng } from './consensus/index.js'
 *
 * const net = createMemoryNetwork()
 * const ids = ['a', 'b', 'c']
 * const groups = ids.map((id, i) =>
 *   createRaftGroup({
 *     id,
 *     storage: createMemoryStorage(), // or: await openLevelStorage(`/var/lib/hopsd/raft`)
 *     transport: net.transport(id),
 *     stateMachine: myStateMachine(),
 *     rng: createSeededRng(i + 1),
 *     config: { tickMs: 10 },
 *   }),
 * )
 * for (const g of groups) await g.start()
 * for (const g of groups) await g.bootstrap(ids) // the same voter list on each initial voter
 * const result = await groups[0]!.propose(new TextEncoder().encode('set x=1'), {
 *   session: { clientId: 'client-7', seq: 1 }, // a retry with the same (clientId, seq) is applied once
 * })
 * await groups[1]!.readBarrier() // then read groups[1]'s state machine linearizably
 * ```
 */
export { createRaftGroup } from './raft-group.js'
export {
  defaultRaftGroupConfig,
  type RaftGroup,
  type RaftGroupInit,
  type RaftGroupConfig,
  type RaftGroupStatus,
  type RaftGroupEvent,
  type ProposeOptions,
  type CallOptions,
  type ResultCodec,
  type RaftLogger,
} from './raft-group-types.js'
export type { StateMachine, AppliedEntry, DurableState, SessionChange } from './state-machine.js'

// Storage
export type {
  RaftPersistence,
  PersistBatch,
  PersistedState,
  SnapshotReader,
  SnapshotReceiver,
} from './storage/types.js'
export { createMemoryStorage, type MemoryStorage } from './storage/memory.js'
export { openLevelStorage, type LevelStorage } from './storage/level.js'
export { MemoryLog, type MemoryLogOptions, type EntryReader } from './memory-log.js'

// Transport
export type { RaftTransport } from './transport.js'
export { createMemoryNetwork, type MemoryNetwork, type MemoryNetworkOptions } from './transport/memory.js'
export {
  encodeMessage,
  decodeMessage,
  encodeEntry,
  decodeEntry,
  encodeConfChange,
  decodeConfChange,
  raftpb,
} from './codec.js'

// World
export { type Rng, SeededRng, createSeededRng } from './rng.js'
export { type Clock, type TimerHandle, realClock } from './clock.js'

// Errors
export { ConsensusError, CONSENSUS_ERRORS, isConsensusError, type ConsensusErrorCode } from './errors.js'

// The pure core, for the simulator and for tests.
export { RawNode, type ProposalMeta, type RawNodeStatus, type ProgressStatus } from './core/raw-node.js'
export { type RaftConfig, defaultCoreConfig, validateConfig } from './core/config.js'
export {
  NONE,
  EntryType,
  MessageType,
  ConfChangeType,
  StateType,
  CompactedError,
  UnavailableError,
  newMessage,
  type NodeId,
  type Entry,
  type HardState,
  type ConfState,
  type Snapshot,
  type SnapshotMetadata,
  type Message,
  type ConfChange,
  type SoftState,
  type ReadState,
  type Ready,
  type LogStorage,
  type KnownBug,
} from './core/types.js'
