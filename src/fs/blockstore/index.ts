/**
 * The datanode's block store: replicas as files with per-64 KiB-chunk CRC32C checksum files, written
 * durably (fsync before the last ack), verified on every read, and its capacity from statfs.
 *
 * @example
 * ```ts
 * const store = createBlockStore({ dirs: ['/data/blocks'] })
 * await store.start()
 * const w = await store.createWriter(7, 1, 1 << 20)
 * await w.write(chunk) // 64 KiB chunks, the last may be shorter
 * const { length, checksum } = await w.finish() // durable now
 * const bytes = await store.read(7, 0, length) // CORRUPT_REPLICA when a chunk fails its CRC
 * ```
 */
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
