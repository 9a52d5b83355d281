/**
 * GPU discovery: which GPUs this host has, whether each is healthy, and how a process is given exactly
 * the ones it reserved. Drivers: nvidia-smi (CSV query + `-L` for MIG), rocm-smi and amd-smi (JSON), and
 * declared GPUs (`--gpus declared:2`). The scheduler consumes a {@link GpuInventory}: it publishes its
 * gossip ad from `snapshot()` on every `onChange`, and starts jobs with `visibleDevicesEnv`.
 *
 * @example
 * ```ts
 * import { createGpuInventory, parseGpuSpec, visibleDevicesEnv } from '../gpu/index.js'
 *
 * const inventory = createGpuInventory({ spec: parseGpuSpec('auto'), clock: realClock, sampleIntervalMs: 10_000 })
 * const off = inventory.onChange((snap) => publishAd(snap.devices.map(({ uuid, index, model, memoryTotalMiB, healthy }) =>
 *   ({ uuid, index, model, memoryMiB: memoryTotalMiB, healthy }))))
 * await inventory.start(signal)                       // discovered; sampling every 10 s from now on
 * const free = inventory.snapshot().devices.filter((d) => d.healthy)
 * const env = visibleDevicesEnv(free.slice(0, 2))     // { CUDA_VISIBLE_DEVICES: 'GPU-…,GPU-…' }
 * off()
 * await inventory.stop()
 * ```
 */
export { createGpuInventory } from './inventory.js'
export type { GpuChangeListener, GpuInventory, GpuInventoryInit } from './inventory.js'
export { DECLARED_GPUS_MAX, GPU_DRIVERS, formatGpuSpec, parseGpuSpec } from './spec.js'
export type { DeclaredGpu, GpuSpec, GpuToolDriver } from './spec.js'
export { createSpawnRunner } from './run.js'
export type { CommandOutcome, CommandRunner, RunOptions, SpawnRunnerInit } from './run.js'
export { AUTO_ORDER } from './drivers.js'
export { systemClock } from './clock.js'
export type { Clock } from './clock.js'
export { GPU_ERRORS, GpuError, isGpuError } from './errors.js'
export type { GpuErrorCode } from './errors.js'
export { visibleDevicesEnv } from './visible.js'
export type {
  DeviceReading,
  DriverReading,
  GpuDevice,
  GpuDriverName,
  GpuSnapshot,
  GpuVendor,
  VisibleDevice,
} from './types.js'
