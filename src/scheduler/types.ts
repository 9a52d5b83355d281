/**
 * The scheduler's own shapes. A GPU is described here as the scheduler needs it ({@link GpuDevice}); the
 * GPU discovery area (src/gpu) keeps a richer inventory and the node feeds its healthy/unhealthy devices
 * in through this shape. Job records are the rows of the replicated `sched.job` table (proto/meta.proto
 * JobRecord): plain objects, treated as immutable.
 */
import { hopsd } from '../proto/meta.js'

import pb = hopsd.meta

export type GpuVendor = 'nvidia' | 'amd' | 'declared'

/** One GPU of a worker, as discovery reports it. Keyed by `uuid` (workloads get UUIDs, never indexes). */
export interface GpuDevice {
  readonly uuid: string
  readonly index: number
  readonly model: string
  readonly memoryMiB: number
  /** An unhealthy GPU gets no new tasks (tasks already on it are left alone). */
  readonly healthy: boolean
  readonly vendor: GpuVendor
  /**
   * What selects this GPU in the visible-devices variable, when it is not the UUID (src/gpu: a declared
   * GPU without a UUID is selected by its index; an AMD GPU without a unique id too).
   */
  readonly visible?: string
}

export const JOB_STATES = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'KILLED', 'LOST'] as const
export type JobStateName = (typeof JOB_STATES)[number]

/** Proto enum value ↔ name. */
export const JOB_STATE: Readonly<Record<JobStateName, pb.JobState>> = {
  QUEUED: pb.JobState.JOB_QUEUED,
  RUNNING: pb.JobState.JOB_RUNNING,
  SUCCEEDED: pb.JobState.JOB_SUCCEEDED,
  FAILED: pb.JobState.JOB_FAILED,
  KILLED: pb.JobState.JOB_KILLED,
  LOST: pb.JobState.JOB_LOST,
}

export function jobStateName(state: number): JobStateName {
  const name = JOB_STATES[state - 1]
  if (name === undefined) throw new Error(`scheduler: job state ${state} unknown`)
  return name
}

export function isTerminal(state: number): boolean {
  return state >= pb.JobState.JOB_SUCCEEDED
}

export interface JobEnvVar {
  readonly name: string
  readonly value: string
}

/** A validated job specification (src/scheduler/spec.ts makes one from a request body). */
export interface JobSpec {
  /** argv; empty when `script` is set. */
  readonly command: readonly string[]
  /** A file-system path of a script to run; '' when `command` is set. */
  readonly script: string
  /** Sorted by name. */
  readonly env: readonly JobEnvVar[]
  /** GPUs per task. */
  readonly gpus: number
  /** '' = any model. */
  readonly gpuModel: string
  /** CPU cores per task. */
  readonly cpus: number
  readonly memoryMiB: number
  /** '' = any zone. */
  readonly zone: string
  /** Re-runs after a lost worker. */
  readonly retries: number
  /** 0 = no limit. */
  readonly timeoutS: number
  /** Tasks placed all at once or none (gang); 1 = a single task. */
  readonly tasks: number
}

/** One task of a placement. */
export interface JobTask {
  readonly rank: number
  readonly node: string
  readonly gpus: readonly string[]
  readonly started: boolean
  readonly startedMs: number
  readonly finished: boolean
  readonly endedMs: number
  readonly exitCode: number
  readonly signal: string
  /** The node's address for peers (rank 0's is the gang's MASTER_ADDR). */
  readonly addr: string
}

/** A row of `sched.job`. */
export interface JobRecord {
  readonly id: number
  readonly project: string
  readonly name: string
  readonly owner: string
  readonly spec: JobSpec
  /** proto JobState (see {@link jobStateName}). */
  readonly state: number
  /** Placements made so far; the current run is attempt `attempts`. */
  readonly attempts: number
  /** Runs lost with their worker (counted against spec.retries). */
  readonly lost: number
  /** `<id>-<attempt>`: the folder of the run's logs. */
  readonly runId: string
  readonly tasks: readonly JobTask[]
  readonly submittedMs: number
  readonly queuedMs: number
  readonly placedMs: number
  readonly startedMs: number
  readonly endedMs: number
  readonly exitCode: number
  readonly signal: string
  readonly killRequested: boolean
  readonly reason: string
  /** The node placing it while it is queued. */
  readonly placer: string
  readonly masterPort: number
}

/** Where the tasks of one placement go (what PlaceJob carries). */
export interface TaskPlacement {
  readonly rank: number
  readonly node: string
  readonly gpus: readonly string[]
  readonly addr: string
}

/** A job as the API shows it: names instead of enum numbers. */
export interface JobView extends Omit<JobRecord, 'state'> {
  readonly state: JobStateName
}

export function jobView(r: JobRecord): JobView {
  return { ...r, state: jobStateName(r.state) }
}

/** Fixed GPU environment variable names per vendor (NVIDIA by UUID; AMD's ROCm runtime). */
export function visibleDevicesVar(vendor: GpuVendor): 'CUDA_VISIBLE_DEVICES' | 'ROCR_VISIBLE_DEVICES' {
  return vendor === 'amd' ? 'ROCR_VISIBLE_DEVICES' : 'CUDA_VISIBLE_DEVICES'
}
