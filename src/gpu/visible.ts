import type { VisibleDevice } from './types.js'

/**
 * The environment that gives a process exactly these devices: `{ CUDA_VISIBLE_DEVICES: 'GPU-a,MIG-b' }`
 * for NVIDIA, `{ ROCR_VISIBLE_DEVICES: 'GPU-…,1' }` for AMD. An empty list gives the variable an empty
 * value (CUDA then sees no device), never an absent one (which would mean "every device").
 * Throws (a caller's bug) when the devices need different variables: a job's GPUs are of one vendor.
 */
export function visibleDevicesEnv(
  devices: readonly { readonly visible: VisibleDevice }[],
  emptyEnv: VisibleDevice['env'] = 'CUDA_VISIBLE_DEVICES',
): Record<string, string> {
  const envs = new Set(devices.map((d) => d.visible.env))
  if (envs.size > 1) throw new Error(`devices of different vendors in one set: ${[...envs].join(', ')}`)
  const env = devices[0]?.visible.env ?? emptyEnv
  return { [env]: devices.map((d) => d.visible.value).join(',') }
}
