/**
 * The block scanner (HDFS's VolumeScanner, simplified): walks every replica in turn, re-reading it
 * through the store (which checks each 64 KiB chunk against its CRC32C) at `bytesPerS`, so a replica
 * that rotted on disk is found and reported (then re-created from a good one by the block manager)
 * even when no client reads it. A replica deleted meanwhile is skipped.
 */
import { Periodic, type PeriodicTimers } from '../../lib/index.js'
import { CHUNK_BYTES, type BlockStore } from './store.js'

/** How often the block scanner runs; each run verifies its share of the configured bytes per second. */
const SCAN_TICK_MS = 500

export function createBlockScanner(
  store: BlockStore,
  bytesPerS: number,
  onCorrupt: (blockId: number) => void,
  onError: (err: unknown) => void,
  timers?: PeriodicTimers,
): Periodic {
  let queue: number[] = []
  let offset = 0
  return new Periodic({
    intervalMs: SCAN_TICK_MS,
    firstDelayMs: SCAN_TICK_MS,
    timers,
    async tick(signal) {
      let budget = Math.max(CHUNK_BYTES, Math.floor((bytesPerS * SCAN_TICK_MS) / 1000))
      while (budget > 0 && !signal.aborted) {
        if (queue.length === 0) {
          queue = store.list().map((b) => b.id)
          offset = 0
          if (queue.length === 0) return
        }
        const id = queue[0]!
        const length = store.info(id)?.length ?? 0
        if (offset >= length) {
          queue.shift()
          offset = 0
          continue
        }
        const n = Math.min(budget, length - offset, 16 * CHUNK_BYTES)
        try {
          await store.read(id, offset, n)
          offset += n
          budget -= n
        } catch (err) {
          const code = (err as { code?: string }).code
          if (code === 'CORRUPT_REPLICA') onCorrupt(id)
          else if (code !== 'BLOCK_NOT_FOUND') throw err
          queue.shift() // reported (or gone): on to the next replica
          offset = 0
        }
      }
    },
    onError,
  })
}
