/**
 * The `capacity` module (every node): what the node measures about itself, published in its gossip
 * NodeInfo (GET /api/v1/nodes → `capacity`): the file systems of the data dir and the block dirs
 * (statfs: size, used, free; each file system counted once), the bytes of hopsd's block replicas when
 * the node runs a datanode, CPU cores and physical memory. Sampled at start and then every few gossip
 * intervals (at most every 10 s); the view changes, and is published, only when a figure changed.
 * GPUs stay 0 here: the GPU inventory (src/gpu) publishes through the scheduler's resource ads.
 */
import { stat, statfs } from 'node:fs/promises'
import { availableParallelism, totalmem } from 'node:os'
import { join } from 'node:path'
import { Periodic } from '../../lib/index.js'
import type { NodeCapacity } from '../membership/index.js'
import { requireService, type NodeModule } from '../module.js'

/** Sampling period bounds: a few gossip intervals, between 1 and 10 s. */
const SAMPLE_MS_MIN = 1_000
const SAMPLE_MS_MAX = 10_000

export function capacityModule(): NodeModule<'capacity'> {
  return {
    name: 'capacity',
    create(components) {
      const { config, logger } = components
      const membership = requireService(components, 'membership')
      const datanode = components.services.datanode
      const dirs = [
        config.dataDir,
        ...(datanode === undefined
          ? []
          : config.blockDirs.length > 0
            ? config.blockDirs
            : [join(config.dataDir, 'blocks')]),
      ]
      let loop: Periodic | undefined
      const sample = async (): Promise<NodeCapacity> => {
        const disk = await diskUsage(dirs)
        const blocks = datanode === undefined ? 0 : (await datanode.store.usage()).usedBytes
        const now = membership.self()?.capacity
        return {
          ...disk,
          blockBytesUsed: blocks,
          gpus: now?.gpus ?? 0,
          gpusFree: now?.gpusFree ?? 0,
          cpuCores: availableParallelism(),
          memoryBytes: totalmem(),
        }
      }
      return {
        service: {
          async start() {
            loop = new Periodic({
              intervalMs: Math.min(SAMPLE_MS_MAX, Math.max(SAMPLE_MS_MIN, 5 * config.gossipIntervalMs)),
              tick: async () => {
                const next = await sample()
                const now = membership.self()?.capacity
                if (now === undefined || JSON.stringify(now) !== JSON.stringify(next))
                  membership.update({ capacity: next })
              },
              onError: (err) => logger.warn({ err: (err as Error).message }, 'capacity sample failed'),
            })
            loop.start()
          },
          async stop() {
            await loop?.stop()
          },
        },
      }
    },
  }
}

/** Size, used and free bytes of the file systems holding `dirs`, each file system counted once. */
export async function diskUsage(
  dirs: readonly string[],
): Promise<Pick<NodeCapacity, 'diskBytesTotal' | 'diskBytesUsed' | 'diskBytesFree'>> {
  const seen = new Set<number>()
  let total = 0
  let used = 0
  let free = 0
  for (const dir of dirs) {
    let dev: number
    try {
      dev = (await stat(dir)).dev
    } catch {
      continue // a block dir not made yet: the datanode makes it at its start
    }
    if (seen.has(dev)) continue
    seen.add(dev)
    const s = await statfs(dir)
    total += s.blocks * s.bsize
    used += (s.blocks - s.bfree) * s.bsize
    free += s.bavail * s.bsize
  }
  return { diskBytesTotal: total, diskBytesUsed: used, diskBytesFree: free }
}
