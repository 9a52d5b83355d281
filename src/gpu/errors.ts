/**
 * Operational errors of GPU discovery: one class, a stable `code` per row of {@link GPU_ERRORS}.
 * Callers and tests branch on `code`, never on messages. The table has the row shape of src/errors.ts,
 * which joins it by code; this file imports nothing of the project so that the join has no cycle.
 *
 * A GPU or driver that fails is not an error here: it is state (`healthy: false` with a reason in the
 * inventory's snapshot), because the daemon keeps running and the GPU may come back.
 */
export const GPU_ERRORS = {
  BAD_GPU_SPEC: {
    httpStatus: 400,
    description:
      'A --gpus value (flag, HOPSD_GPUS or the config file) that is not none, auto, nvidia-smi, rocm-smi, amd-smi, declared:COUNT[:MODEL[:MEMORY_MIB]] or a list of declared GPUs.',
  },
  GPU_DISCOVERY_ABORTED: {
    httpStatus: 499,
    description: 'GPU discovery was aborted by its caller (the node stopped while it started).',
  },
  GPU_INVENTORY_STOPPED: {
    httpStatus: 503,
    description: 'The GPU inventory was stopped; a stopped inventory does not start again.',
  },
} as const

export type GpuErrorCode = keyof typeof GPU_ERRORS

export class GpuError extends Error {
  override readonly name = 'GpuError'
  readonly code: GpuErrorCode

  constructor(code: GpuErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
}

export function isGpuError(err: unknown, code?: GpuErrorCode): err is GpuError {
  return err instanceof GpuError && (code === undefined || err.code === code)
}
