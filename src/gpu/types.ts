/**
 * What GPU discovery knows about a host's GPUs. The inventory ({@link GpuInventory} in inventory.ts)
 * turns driver readings into {@link GpuDevice}s with health; drivers only read.
 */

/** Who made the GPU; decides the environment variable that selects it for a process. */
export type GpuVendor = 'nvidia' | 'amd'

/** Where an inventory's devices come from. */
export type GpuDriverName = 'nvidia-smi' | 'rocm-smi' | 'amd-smi' | 'declared'

/**
 * How a process is given exactly this device: set `env` to a comma list of the `value`s of the devices
 * it reserved (all of one vendor). NVIDIA: CUDA_VISIBLE_DEVICES takes GPU and MIG UUIDs (both MIG forms).
 * AMD: ROCR_VISIBLE_DEVICES takes indices or `GPU-<16 hex digits>` UUIDs (ROCm's GPU isolation docs);
 * the UUID is used when the driver reports the GPU's unique id, the index otherwise.
 */
export interface VisibleDevice {
  readonly env: 'CUDA_VISIBLE_DEVICES' | 'ROCR_VISIBLE_DEVICES'
  readonly value: string
}

/** One schedulable unit as a driver read it (a whole GPU, or one MIG instance of a GPU). */
export interface DeviceReading {
  /** The key: GPU-…, MIG-… or MIG-GPU-…/gi/ci for NVIDIA, GPU-<hex> for AMD, declared-N when declared. */
  readonly uuid: string
  /** The driver's index of the GPU (of the parent GPU for a MIG instance). */
  readonly index: number
  readonly vendor: GpuVendor
  /** Product name as the driver prints it (may contain spaces); a MIG instance's is `<parent> MIG <profile>`. */
  readonly model: string
  /** PCI bus id, as printed; null when the driver does not say. */
  readonly busId: string | null
  /** null means the driver could not say (`[N/A]`, `[Not Supported]`, `N/A`), never zero. */
  readonly memoryTotalMiB: number | null
  readonly memoryUsedMiB: number | null
  readonly utilizationPct: number | null
  readonly temperatureC: number | null
  readonly powerW: number | null
  readonly visible: VisibleDevice
  /** For a MIG instance: the UUID of its GPU and its profile (e.g. `3g.40gb`). */
  readonly mig: { readonly parentUuid: string; readonly profile: string; readonly deviceIndex: number } | null
  /** Set when the driver reported this device in error (e.g. a field printed `[Unknown Error]`). */
  readonly error: string | null
}

/** One reading of a driver: every device, or why the driver as a whole could not answer. */
export type DriverReading =
  | { readonly ok: true; readonly devices: readonly DeviceReading[]; readonly driverVersion: string | null }
  | {
      readonly ok: false
      /** `missing`: the tool is not installed (auto tries the next driver); `failed`: it ran and failed. */
      readonly kind: 'missing' | 'failed'
      readonly reason: string
    }

/** A device in the inventory: the last reading of it, and its health. */
export interface GpuDevice extends DeviceReading {
  /** false: give it no new work. The device stays listed (with `reason`) until it answers again. */
  readonly healthy: boolean
  /** Why it is unhealthy; null when healthy. */
  readonly reason: string | null
  /** Clock time of the last health change (or of discovery). */
  readonly sinceMs: number
}

/** The inventory at one moment. Devices are ordered by index, then MIG device index. */
export interface GpuSnapshot {
  /** The driver in use; null when none was found (`auto` on a host without GPU tools) or `none`. */
  readonly driver: GpuDriverName | null
  /** false when the last reading of the whole driver failed (every device is then unhealthy too). */
  readonly driverHealthy: boolean
  /** Why the driver failed; null when it answered. */
  readonly driverReason: string | null
  readonly driverVersion: string | null
  readonly devices: readonly GpuDevice[]
  /** Clock time of the last completed reading (null before the first). */
  readonly sampledAtMs: number | null
  /** Bumped on every change a listener is told about (devices added or gone, health, model, memory). */
  readonly version: number
}
