/**
 * The datanode: the block store (replicas as files with per-64 KiB-chunk CRC32C checksum files, written
 * durably — fsync before the last ack — and verified on every read), the write pipeline between
 * datanodes, block reads for other nodes, heartbeats with block reports to the metadata leader, replica
 * transfers it asks for, the block scanner, and the data step of WebHDFS writes. The network comes in as
 * a PeerNetwork (src/fs/peers.ts), time and randomness as a Clock and a seeded Rng.
 *
 * @example
 * ```ts
 * import { createDatanode } from '../fs/datanode/index.js'
 *
 * const datanode = createDatanode({
 *   selfId, zone: 'z1',
 *   store: { dirs: ['/data/blocks'] },
 *   peers,                                  // a PeerNetwork (src/node/p2p: libp2p)
 *   metadata: { propose, leaderId, metadataHttpAddr }, // how to reach the metadata group
 *   clock, rng: createSeededRng(seed),
 *   heartbeatMs: 1_000, scanBytesPerS: 0,
 * })
 * await datanode.start()                    // opens the store, serves pipeline and reads, heartbeats
 * // The data step of a WebHDFS write, as its signed grant says (src/api/routes/datanode.ts):
 * await datanode.write({ op: 'CREATE', path: '/data/big.bin', user: 'alice', groups: [], create, inline: 65_536, body })
 * await datanode.stop()
 *
 * // The block store alone:
 * const store = createBlockStore({ dirs: ['/data/blocks'] })
 * await store.start()
 * const w = await store.createWriter(7, 1, 1 << 20)
 * await w.write(chunk) // 64 KiB chunks, the last may be shorter
 * const { length } = await w.finish() // durable now
 * const more = await store.reopenWriter(7, 1, 2, length) // an append: the same replica, a new stamp
 * const bytes = await store.read(7, 0, length) // CORRUPT_REPLICA when a chunk fails its CRC
 * ```
 */
export { createDatanode, type Datanode, type DatanodeInit, type MetadataClient } from './datanode.js'
export type { CreateOptions, WriteArgs } from './write.js'
export {
  createBlockStore,
  BlockStore,
  CHUNK_BYTES,
  readSpan,
  type BlockStoreInit,
  type BlockUsage,
  type BlockWriter,
  type StoredBlockInfo,
} from './store.js'
export { BlockReporter, type BlockReport } from './reports.js'
export { packetFrameParts, type PacketIn } from './pipeline.js'
