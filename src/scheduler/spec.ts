/**
 * Validation of job submissions at the edge: one JSON schema (`JOB_SUBMISSION_SCHEMA`, usable as the
 * route's body schema too) checked with ajv without type coercion, then the rules a schema cannot say
 * (exactly one of command and script). Whatever passes becomes a {@link JobSpec} with every default
 * filled in; anything else is an INVALID_JOB_SPEC with the first problem in its message. Whether the job
 * can ever fit is a separate check against the placer's view ({@link checkFits}).
 */
import { Ajv, type ErrorObject } from 'ajv'
import { SchedError } from './errors.js'
import type { JobSpec } from './types.js'

export const GPUS_PER_TASK_MAX = 64
export const TASKS_MAX = 256
export const ARGV_MAX = 256
export const ARG_BYTES_MAX = 4096
export const ENV_VARS_MAX = 128
export const ENV_VALUE_BYTES_MAX = 4096
export const RETRIES_MAX = 100
/** 30 days. */
export const TIMEOUT_S_MAX = 30 * 24 * 3600
export const CPUS_MAX = 1024
/** 16 TiB. */
export const MEMORY_MIB_MAX = 16 * 1024 * 1024

/** A job or project name: a path component of /Projects/<project>/Logs/<job name>/ too. */
const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'

/**
 * Variables the scheduler sets itself: a job may not set them (its GPUs and its gang's rendezvous come
 * from the placement, never from the spec).
 */
export const RESERVED_ENV = [
  'CUDA_VISIBLE_DEVICES',
  'ROCR_VISIBLE_DEVICES',
  'HIP_VISIBLE_DEVICES',
  'MASTER_ADDR',
  'MASTER_PORT',
  'WORLD_SIZE',
  'RANK',
  'LOCAL_RANK',
  'LOCAL_WORLD_SIZE',
] as const
const RESERVED_ENV_PREFIX = 'HOPSD_'

/** The body of a job submission (POST /api/v1/jobs), as JSON schema. */
export const JOB_SUBMISSION_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['project', 'name', 'gpus'],
  properties: {
    project: { type: 'string', pattern: NAME_PATTERN },
    name: { type: 'string', pattern: NAME_PATTERN },
    command: {
      type: 'array',
      minItems: 1,
      maxItems: ARGV_MAX,
      items: { type: 'string', minLength: 0, maxLength: ARG_BYTES_MAX },
    },
    script: { type: 'string', minLength: 2, maxLength: 4096, pattern: '^/' },
    env: {
      type: 'object',
      maxProperties: ENV_VARS_MAX,
      propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]{0,255}$' },
      additionalProperties: { type: 'string', maxLength: ENV_VALUE_BYTES_MAX },
    },
    gpus: { type: 'integer', minimum: 0, maximum: GPUS_PER_TASK_MAX },
    gpuModel: { type: 'string', maxLength: 256 },
    cpus: { type: 'number', minimum: 0, maximum: CPUS_MAX },
    memoryMiB: { type: 'integer', minimum: 0, maximum: MEMORY_MIB_MAX },
    zone: { type: 'string', maxLength: 128 },
    retries: { type: 'integer', minimum: 0, maximum: RETRIES_MAX },
    timeoutS: { type: 'integer', minimum: 0, maximum: TIMEOUT_S_MAX },
    tasks: { type: 'integer', minimum: 1, maximum: TASKS_MAX },
  },
} as const

/** A submission as the API receives it (after the schema). */
export interface JobSubmission {
  readonly project: string
  readonly name: string
  readonly command?: readonly string[]
  readonly script?: string
  readonly env?: Readonly<Record<string, string>>
  readonly gpus: number
  readonly gpuModel?: string
  readonly cpus?: number
  readonly memoryMiB?: number
  readonly zone?: string
  readonly retries?: number
  readonly timeoutS?: number
  readonly tasks?: number
}

const ajv = new Ajv({ allErrors: false, strict: true })
const check = ajv.compile(JOB_SUBMISSION_SCHEMA)

/**
 * The submission as a {@link JobSpec} (defaults filled in, env sorted), or INVALID_JOB_SPEC naming the
 * first problem. Pure; never reads the cluster.
 */
export function validateJobSubmission(body: unknown): { project: string; name: string; spec: JobSpec } {
  if (!check(body)) throw new SchedError('INVALID_JOB_SPEC', describe(check.errors?.[0]))
  const s = body as JobSubmission
  const hasCommand = s.command !== undefined
  const hasScript = s.script !== undefined
  if (hasCommand === hasScript)
    throw new SchedError(
      'INVALID_JOB_SPEC',
      hasCommand ? 'give either command or script, not both' : 'no command: give command [argv...] or script',
    )
  if (hasCommand && s.command![0]!.length === 0)
    throw new SchedError('INVALID_JOB_SPEC', 'command[0] (the program) is empty')
  const env = Object.entries(s.env ?? {})
    .map(([name, value]) => ({ name, value }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const { name } of env) {
    if ((RESERVED_ENV as readonly string[]).includes(name) || name.startsWith(RESERVED_ENV_PREFIX))
      throw new SchedError('INVALID_JOB_SPEC', `env ${name} is set by the scheduler and may not be given`)
  }
  if (
    s.script !== undefined &&
    (s.script.includes('/../') || s.script.endsWith('/..') || s.script.includes('//'))
  )
    throw new SchedError('INVALID_JOB_SPEC', `script ${s.script} is not a normalized absolute path`)
  return {
    project: s.project,
    name: s.name,
    spec: {
      command: s.command ? [...s.command] : [],
      script: s.script ?? '',
      env,
      gpus: s.gpus,
      gpuModel: s.gpuModel ?? '',
      cpus: s.cpus ?? 0,
      memoryMiB: s.memoryMiB ?? 0,
      zone: s.zone ?? '',
      retries: s.retries ?? 0,
      timeoutS: s.timeoutS ?? 0,
      tasks: s.tasks ?? 1,
    },
  }
}

/**
 * The rules apply() rechecks on a SubmitJob (cheap, deterministic): a command that bypassed the edge is
 * refused too. Returns the problem, or undefined.
 */
export function specProblem(spec: JobSpec): string | undefined {
  if ((spec.command.length === 0) === (spec.script === '')) return 'exactly one of command and script'
  if (!Number.isInteger(spec.gpus) || spec.gpus < 0 || spec.gpus > GPUS_PER_TASK_MAX) return 'gpus'
  if (!Number.isInteger(spec.tasks) || spec.tasks < 1 || spec.tasks > TASKS_MAX) return 'tasks'
  if (!(spec.cpus >= 0 && spec.cpus <= CPUS_MAX)) return 'cpus'
  if (spec.retries > RETRIES_MAX || spec.timeoutS > TIMEOUT_S_MAX) return 'retries or timeoutS'
  return undefined
}

/** The largest node in a view, per resource (what a task can ever get on one node). */
export interface CapacitySummary {
  /** Nodes in the view. */
  readonly nodes: number
  /** Most healthy GPUs on one node, overall and per model. */
  readonly gpusMax: number
  readonly gpusMaxByModel: ReadonlyMap<string, number>
  readonly cpusMax: number
  readonly memoryMiBMax: number
  /** Healthy GPUs in the whole view (a gang's tasks × gpus can never exceed it). */
  readonly gpusTotal: number
  /** Nodes per zone. */
  readonly zones: ReadonlySet<string>
}

/**
 * Refuses at once (JOB_TOO_LARGE, with the reason) a job no node of `cap` could ever run, instead of
 * queueing it forever.
 */
export function checkFits(spec: JobSpec, cap: CapacitySummary): void {
  const refuse = (why: string): never => {
    throw new SchedError('JOB_TOO_LARGE', why)
  }
  if (cap.nodes === 0) refuse('no gpu worker is in this node’s view of the cluster')
  if (spec.zone !== '' && !cap.zones.has(spec.zone)) refuse(`no worker in zone ${spec.zone}`)
  if (spec.gpuModel !== '') {
    const most = cap.gpusMaxByModel.get(spec.gpuModel) ?? 0
    if (most === 0) refuse(`no worker has a healthy ${spec.gpuModel}`)
    if (spec.gpus > most)
      refuse(`the job asks ${spec.gpus} ${spec.gpuModel} GPUs per task; the largest node has ${most}`)
  }
  if (spec.gpus > cap.gpusMax)
    refuse(`the job asks ${spec.gpus} GPUs per task; the largest node has ${cap.gpusMax}`)
  if (spec.gpus * spec.tasks > cap.gpusTotal)
    refuse(`the job asks ${spec.gpus * spec.tasks} GPUs in all; the cluster has ${cap.gpusTotal}`)
  if (spec.cpus > cap.cpusMax)
    refuse(`the job asks ${spec.cpus} CPUs per task; the largest node has ${cap.cpusMax}`)
  if (spec.memoryMiB > cap.memoryMiBMax)
    refuse(`the job asks ${spec.memoryMiB} MiB per task; the largest node has ${cap.memoryMiBMax}`)
}

function describe(e: ErrorObject | undefined): string {
  if (e === undefined) return 'invalid job specification'
  const at = e.instancePath === '' ? 'the body' : e.instancePath.slice(1).replaceAll('/', '.')
  if (e.keyword === 'additionalProperties')
    return `unknown field ${String((e.params as { additionalProperty: string }).additionalProperty)}${at === 'the body' ? '' : ` in ${at}`}`
  if (e.keyword === 'required')
    return `missing field ${String((e.params as { missingProperty: string }).missingProperty)}`
  if (e.keyword === 'propertyNames' || e.schemaPath.includes('/propertyNames/'))
    return `env name ${JSON.stringify(e.propertyName ?? '')} is not a valid variable name`
  return `${at} ${e.message ?? 'is invalid'}`
}
