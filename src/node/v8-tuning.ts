/**
 * V8 heap settings for a long-running daemon, applied once when `hopsd start` begins (before the
 * heap grows; they are process-wide).
 *
 * `--heap-growing-percent=100`: after each full collection V8 sets the old generation's next limit at
 * about 1.5 times the live heap, and starts incremental marking as soon as the room left falls below
 * the young generation's size. A datanode streaming blocks allocates many short-lived 64 KiB buffers
 * (its own and libp2p's), whose external memory counts against that room, so with a live heap of
 * ~45 MB it marked the whole heap several times a second: 33-45 mark-compacts while writing 256 MiB,
 * about a third of the CPU of the node receiving the upload. With the limit at twice the live heap
 * they drop to 3-10 per node. Measured with bench/fs-large (1 GiB, replication 3, same machine and run
 * order): writes 37.6 -> 46.4 MiB/s, the daemons' CPU 46 -> 36 ms per MiB. bench/fs-small (metadata
 * path) did not change measurably. The cost is memory: up to twice the live heap instead of ~1.5.
 */
import { setFlagsFromString } from 'node:v8'

export const V8_DAEMON_FLAGS = ['--heap-growing-percent=100'] as const

export function tuneV8ForDaemon(): void {
  for (const flag of V8_DAEMON_FLAGS) setFlagsFromString(flag)
}
