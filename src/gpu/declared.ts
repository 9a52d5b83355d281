/**
 * Declared GPUs: the operator says what the host has (`--gpus declared:2:A100:81920`, or a list in the
 * config file) for hosts whose GPUs are managed elsewhere, and for tests. They are never sampled and
 * always healthy. A declared GPU without a UUID is keyed `declared-<index>` and selected by its index
 * (CUDA_VISIBLE_DEVICES=0 reaches the host's first GPU, where a made-up UUID would reach none).
 */
import type { DeclaredGpu } from './spec.js'
import type { DeviceReading } from './types.js'

export function declaredDevices(gpus: readonly DeclaredGpu[]): DeviceReading[] {
  return gpus.map((g, index) => ({
    uuid: g.uuid ?? `declared-${index}`,
    index,
    vendor: g.vendor,
    model: g.model,
    busId: null,
    memoryTotalMiB: g.memoryMiB,
    memoryUsedMiB: null,
    utilizationPct: null,
    temperatureC: null,
    powerW: null,
    visible: {
      env: g.vendor === 'amd' ? 'ROCR_VISIBLE_DEVICES' : 'CUDA_VISIBLE_DEVICES',
      value: g.uuid ?? String(index),
    },
    mig: null,
    error: null,
  }))
}
