/**
 * The environment of one task: the job's own variables, then what the scheduler decides — exactly the
 * reserved GPUs (by UUID for NVIDIA, ROCm's ROCR_VISIBLE_DEVICES for AMD) and PyTorch's rendezvous
 * variables, as torchrun would set them, computed from the placement: rank 0's node is the master, the
 * port is the one rank 0's worker held for the gang. The scheduler's variables always win (the spec may
 * not set them; spec.ts refuses it).
 */
import type { GpuVendor, JobRecord } from './types.js'
import { visibleDevicesVar } from './types.js'

/** MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE of task `rank`. */
export function rendezvousEnv(
  job: Pick<JobRecord, 'tasks' | 'masterPort'>,
  rank: number,
): Record<string, string> {
  const tasks = [...job.tasks].sort((a, b) => a.rank - b.rank)
  const me = tasks.find((t) => t.rank === rank)
  if (me === undefined) throw new Error(`rendezvousEnv: no task ${rank}`)
  const master = tasks[0]!
  const sameNode = tasks.filter((t) => t.node === me.node)
  return {
    MASTER_ADDR: master.addr || master.node,
    MASTER_PORT: String(job.masterPort),
    WORLD_SIZE: String(tasks.length),
    RANK: String(rank),
    LOCAL_RANK: String(sameNode.findIndex((t) => t.rank === rank)),
    LOCAL_WORLD_SIZE: String(sameNode.length),
  }
}

/**
 * The full scheduler-made environment of a task (without the host's base environment). `gpus`: what
 * selects each reserved GPU in the visible-devices variable (its UUID, or its index where discovery
 * says so).
 */
export function taskEnv(
  job: JobRecord,
  rank: number,
  gpus: readonly string[],
  vendor: GpuVendor,
): Record<string, string> {
  const env: Record<string, string> = {}
  for (const { name, value } of job.spec.env) env[name] = value
  // Zero GPUs means none visible (an empty list), never "all of them".
  env[visibleDevicesVar(vendor)] = gpus.join(',')
  Object.assign(env, rendezvousEnv(job, rank))
  env.HOPSD_JOB_ID = String(job.id)
  env.HOPSD_RUN_ID = job.runId
  env.HOPSD_PROJECT = job.project
  env.HOPSD_JOB_NAME = job.name
  return env
}
