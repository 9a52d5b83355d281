/**
 * Blocks, leader side: the block map (a module of the metadata state machine), replica placement, and
 * the block manager that runs on metadata nodes — heartbeats and block reports into replica deltas,
 * block allocation, the reconcile loop (re-replication, surplus and corrupt replica removal,
 * decommissioning, dead datanodes), reads of files in blocks and the fsck report. The network and the
 * cluster view come in as interfaces (src/fs/peers.ts); time and randomness as a Clock and a seeded Rng.
 *
 * @example
 * ```ts
 * import { createBlockManager } from '../fs/blocks/index.js'
 *
 * const manager = createBlockManager({
 *   selfId, zone: 'z1',
 *   group, stateMachine,           // the local Raft group (propose, readBarrier, status) and its state machine
 *   cluster: membership,           // view(): the gossip view
 *   peers,                         // a PeerNetwork (src/node/p2p: libp2p)
 *   clock, rng: createSeededRng(seed),
 *   heartbeatMs: 1_000, deadAfterMs: 6_000, replicaGraceMs: 600_000,
 * })
 * await manager.start()            // serves heartbeats and allocation; reconciles on the leader
 * const file = await manager.open(caller, '/data/big.bin', 0, -1) // a stream of its bytes
 * await manager.stop()
 * ```
 */
export {
  BlockMap,
  BLOCK_OPS,
  BLOCK_STATE,
  datanodeStateName,
  namespaceAndBlockModules,
  type BlockRecord,
  type DatanodeRecord,
  type DatanodeState,
} from './blockmap.js'
export { chooseTargets, type DatanodeCandidate, type PlacementRequest } from './placement.js'
export {
  createBlockManager,
  type BlockHealth,
  type BlockManager,
  type BlockManagerInit,
  type FileBlocks,
  type LeaderGroup,
  type LocalReplicas,
} from './manager.js'
export {
  BLOCK_FRAME_BYTES_MAX,
  BLOCK_PROTOCOLS,
  READ_FRAME_BYTES,
  READ_PROTOCOL,
  heartbeatIntervalMs,
  type AllocReply,
  type AllocRequest,
} from './protocol.js'
export { READ_PIECE_BYTES, ReadBuffers, type BlockReads } from './reads.js'
