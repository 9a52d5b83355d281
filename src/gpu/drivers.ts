/**
 * A driver reads the host's GPUs once per call; the inventory decides what the readings mean for health.
 * `auto` tries {@link AUTO_ORDER} in turn and keeps the first whose tool is installed — working or not:
 * a host with nvidia-smi whose driver fails (exit 9) has NVIDIA GPUs that are down, not AMD ones.
 */
import { createAmdSmiReader } from './amd-smi.js'
import { declaredDevices } from './declared.js'
import { readNvidia } from './nvidia.js'
import { readRocmSmi } from './rocm-smi.js'
import type { CommandRunner } from './run.js'
import type { DeclaredGpu, GpuToolDriver } from './spec.js'
import type { DriverReading, GpuDriverName } from './types.js'

/** nvidia-smi first; rocm-smi before amd-smi because every ROCm release has it (amd-smi from 6.0). */
export const AUTO_ORDER: readonly GpuToolDriver[] = ['nvidia-smi', 'rocm-smi', 'amd-smi']

export interface GpuDriver {
  readonly name: GpuDriverName
  /** Whether the inventory should sample it periodically (declared GPUs are never sampled). */
  readonly sampled: boolean
  /** One reading; never throws. Not called concurrently with itself. */
  read(signal?: AbortSignal): Promise<DriverReading>
}

export interface ToolDriverInit {
  readonly run: CommandRunner
  readonly timeoutMs: number
  readonly outputBytesMax: number
  /** Executable to run instead of the tool's name (a path, for hosts where it is not on PATH). */
  readonly command?: string
}

export function createToolDriver(name: GpuToolDriver, init: ToolDriverInit): GpuDriver {
  switch (name) {
    case 'nvidia-smi':
      return { name, sampled: true, read: (signal) => readNvidia({ ...init, signal }) }
    case 'rocm-smi':
      return { name, sampled: true, read: (signal) => readRocmSmi({ ...init, signal }) }
    case 'amd-smi': {
      const read = createAmdSmiReader(init)
      return { name, sampled: true, read }
    }
  }
}

export function createDeclaredDriver(gpus: readonly DeclaredGpu[]): GpuDriver {
  const devices = declaredDevices(gpus)
  return { name: 'declared', sampled: false, read: async () => ({ ok: true, devices, driverVersion: null }) }
}
