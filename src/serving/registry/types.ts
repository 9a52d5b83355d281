/**
 * The registry's records and the checks shared by apply and the services above it. A model version is
 * the directory `/Projects/<project>/Models/<name>/<version>` plus a {@link ModelVersion} row; a
 * deployment is desired state ({@link Deployment}) and the replicas the leader placed for it.
 */
import { metaProto } from '../../meta/index.js'
import { DATATYPES } from '../protocol/datatypes.js'
import { RegistryError } from '../errors.js'

import pb = metaProto.meta

export interface TensorSpec {
  readonly name: string
  readonly datatype: string
  readonly shape: number[]
}

export interface ModelVersion {
  readonly project: string
  readonly name: string
  readonly version: string
  readonly path: string
  readonly framework: string
  readonly inputs: TensorSpec[]
  readonly outputs: TensorSpec[]
  readonly metrics: { name: string; value: number }[]
  readonly description: string
  readonly trainingDataset: string
  readonly program: string
  readonly jobId: number
  readonly creator: string
  readonly createdMs: number
  readonly modelFile: string
  readonly command: string[]
}

export const REPLICA_STATES = ['placed', 'starting', 'ready', 'restarting', 'failed', 'stopping'] as const
export type ReplicaStateName = (typeof REPLICA_STATES)[number]

export interface ReplicaRecord {
  readonly id: string
  readonly node: string
  readonly zone: string
  readonly version: string
  readonly state: string
  readonly error: string
  readonly restarts: number
  readonly placedMs: number
  readonly reportedMs: number
  readonly inflight: number
}

export interface Deployment {
  readonly name: string
  readonly project: string
  readonly model: string
  readonly version: string
  readonly replicasMin: number
  readonly replicasMax: number
  readonly cpus: number
  readonly memoryMiB: number
  readonly owner: string
  readonly createdMs: number
  readonly updatedMs: number
  readonly generation: number
  readonly replicas: ReplicaRecord[]
  readonly replicasWanted: number
  readonly lastScale: string
  readonly nextReplicaSeq: number
  readonly lastScaleMs: number
  /** Share of requests logged to /Projects/<project>/Logs/serving/<name> (0: off, 1: every one). */
  readonly logSampleRate: number
  /**
   * Why replicas are not placed: no live serving node has the deployment's `cpus` and `memoryMiB` free
   * ('' when every wanted replica is placed; missing in rows written before it existed).
   */
  readonly pending?: string
}

/**
 * An inference key a project issued for one of its deployments: `hik.<id>.<secret>`, shown once; the
 * replicated state keeps SHA-256 of the secret. It authorises the /v2 model routes of that deployment
 * and nothing else.
 */
export interface InferenceKey {
  readonly id: string
  readonly deployment: string
  readonly project: string
  readonly name: string
  readonly secretHash: Uint8Array
  readonly createdBy: string
  readonly createdMs: number
  /** 0 = not revoked. */
  readonly revokedMs: number
}

/** The prefix of inference keys (API keys are `hk.`): the auth hook tells them apart by it. */
export const INFERENCE_KEY_PREFIX = 'hik'
/** Key rows per deployment, revoked ones included (those are dropped first when room is needed). */
export const INFERENCE_KEYS_PER_DEPLOYMENT_MAX = 100
export const INFERENCE_KEY_NAME_CHARS_MAX = 128

/** Frameworks a model may be registered with; only {@link DEPLOYABLE_FRAMEWORKS} can be served. */
export const FRAMEWORKS = [
  'onnx',
  'subprocess',
  'sklearn',
  'tensorflow',
  'pytorch',
  'xgboost',
  'other',
] as const
/** onnx: ONNX Runtime in a host process; subprocess: a predictor speaking src/serving's JSON-lines protocol. */
export const DEPLOYABLE_FRAMEWORKS = ['onnx', 'subprocess'] as const

/** A project, model or deployment name: a path component, no dots first (so never `.` or `..`). */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
/** A model version: a path component too (Hopsworks numbers them; any such name is accepted). */
export const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
/** Bounds on one registration (it is one Raft command). */
export const TENSORS_MAX = 64
export const METRICS_MAX = 64
export const DESCRIPTION_CHARS_MAX = 4096
export const PATH_CHARS_MAX = 4096
export const COMMAND_ARGS_MAX = 64
/** Bounds on a deployment. */
export const REPLICAS_MAX = 64
export const CPUS_MAX = 256
export const MEMORY_MIB_MAX = 1 << 20

/** The directory every project's models live under. */
export function modelsDir(project: string): string {
  return `/Projects/${project}/Models`
}

/** The directory of one model version: where its files are. */
export function modelVersionDir(project: string, name: string, version: string): string {
  return `${modelsDir(project)}/${name}/${version}`
}

export function modelKey(project: string, name: string, version: string): string {
  return `${project}\u0000${name}\u0000${version}`
}

function invalid(why: string): RegistryError {
  return new RegistryError('MODEL_SPEC_INVALID', why)
}

/** Checks a model version as registered (apply calls it too: the log may carry anything). */
export function checkModel(m: ModelVersion): void {
  if (!NAME_RE.test(m.project)) throw invalid(`project ${JSON.stringify(m.project)} is not a valid name`)
  if (!NAME_RE.test(m.name)) throw invalid(`name ${JSON.stringify(m.name)} is not a valid name`)
  if (!VERSION_RE.test(m.version))
    throw invalid(`version ${JSON.stringify(m.version)} is not a valid version`)
  const dir = modelVersionDir(m.project, m.name, m.version)
  if (m.path !== dir)
    throw invalid(`path must be the version directory ${dir}, not ${JSON.stringify(m.path)}`)
  if (!(FRAMEWORKS as readonly string[]).includes(m.framework))
    throw invalid(`framework ${JSON.stringify(m.framework)}: one of ${FRAMEWORKS.join(', ')}`)
  for (const [what, list] of [
    ['inputs', m.inputs],
    ['outputs', m.outputs],
  ] as const) {
    if (list.length > TENSORS_MAX) throw invalid(`more than ${TENSORS_MAX} ${what}`)
    const seen = new Set<string>()
    for (const t of list) {
      if (t.name === '' || t.name.length > 256) throw invalid(`${what}: a tensor name of 1 to 256 characters`)
      if (seen.has(t.name)) throw invalid(`${what}: ${t.name} twice`)
      seen.add(t.name)
      if (!(DATATYPES as readonly string[]).includes(t.datatype))
        throw invalid(
          `${what}: ${t.name}: datatype ${JSON.stringify(t.datatype)} is not one of the protocol's`,
        )
      if (t.shape.length > 16 || t.shape.some((d) => !Number.isSafeInteger(d) || d < -1))
        throw invalid(`${what}: ${t.name}: a shape is up to 16 integers ≥ -1 (-1: variable)`)
    }
  }
  if (m.metrics.length > METRICS_MAX) throw invalid(`more than ${METRICS_MAX} metrics`)
  for (const x of m.metrics)
    if (x.name === '' || x.name.length > 128 || !Number.isFinite(x.value))
      throw invalid('a metric is {name (1 to 128 characters): finite number}')
  if (m.description.length > DESCRIPTION_CHARS_MAX)
    throw invalid(`description longer than ${DESCRIPTION_CHARS_MAX} characters`)
  for (const [what, p] of [
    ['trainingDataset', m.trainingDataset],
    ['program', m.program],
  ] as const)
    if (p !== '' && (!p.startsWith('/') || p.length > PATH_CHARS_MAX))
      throw invalid(`${what} must be an absolute path in the file system`)
  if (!Number.isSafeInteger(m.jobId) || m.jobId < 0) throw invalid('jobId must be a job id')
  if (m.modelFile !== '' && (!VERSION_RE.test(m.modelFile) || m.modelFile.length > 255))
    throw invalid(`modelFile ${JSON.stringify(m.modelFile)} must be a file name in the version directory`)
  if (m.command.length > COMMAND_ARGS_MAX || m.command.some((a) => a.length > 4096))
    throw invalid(`command: at most ${COMMAND_ARGS_MAX} arguments of up to 4096 characters`)
  if (m.framework === 'subprocess' && m.command.length === 0)
    throw invalid('a subprocess model needs its predictor command (run in the version directory)')
}

export function checkDeploymentSpec(d: {
  name: string
  project: string
  model: string
  version: string
  replicasMin: number
  replicasMax: number
  cpus: number
  memoryMiB: number
  logSampleRate?: number
}): void {
  const bad = (why: string) => new RegistryError('DEPLOYMENT_SPEC_INVALID', why)
  if (!NAME_RE.test(d.name)) throw bad(`name ${JSON.stringify(d.name)} is not a valid name`)
  if (!NAME_RE.test(d.project)) throw bad(`project ${JSON.stringify(d.project)} is not a valid name`)
  if (!NAME_RE.test(d.model)) throw bad(`model ${JSON.stringify(d.model)} is not a valid name`)
  if (!VERSION_RE.test(d.version)) throw bad(`version ${JSON.stringify(d.version)} is not a valid version`)
  if (!Number.isInteger(d.replicasMin) || d.replicasMin < 1 || d.replicasMin > REPLICAS_MAX)
    throw bad(`replicas.min must be 1 to ${REPLICAS_MAX}`)
  if (!Number.isInteger(d.replicasMax) || d.replicasMax < d.replicasMin || d.replicasMax > REPLICAS_MAX)
    throw bad(`replicas.max must be replicas.min to ${REPLICAS_MAX}`)
  if (!Number.isFinite(d.cpus) || d.cpus < 0 || d.cpus > CPUS_MAX) throw bad(`cpus must be 0 to ${CPUS_MAX}`)
  if (!Number.isInteger(d.memoryMiB) || d.memoryMiB < 0 || d.memoryMiB > MEMORY_MIB_MAX)
    throw bad(`memoryMiB must be 0 to ${MEMORY_MIB_MAX}`)
  const rate = d.logSampleRate ?? 0
  if (!Number.isFinite(rate) || rate < 0 || rate > 1)
    throw bad('logging.sampleRate must be a number from 0 (off) to 1 (every request)')
}

/** A model version as its proto shape (for RegisterModel). */
export function modelToProto(m: ModelVersion): pb.IModelVersionRecord {
  return { ...m }
}

/** A model version from its proto shape (missing fields at their defaults). */
export function modelFromProto(r: pb.IModelVersionRecord): ModelVersion {
  const tensors = (l: pb.IModelTensorSpec[] | null | undefined): TensorSpec[] =>
    (l ?? []).map((t) => ({
      name: t.name ?? '',
      datatype: t.datatype ?? '',
      shape: (t.shape ?? []).map(Number),
    }))
  return {
    project: r.project ?? '',
    name: r.name ?? '',
    version: r.version ?? '',
    path: r.path ?? '',
    framework: r.framework ?? '',
    inputs: tensors(r.inputs),
    outputs: tensors(r.outputs),
    metrics: (r.metrics ?? []).map((x) => ({ name: x.name ?? '', value: Number(x.value ?? 0) })),
    description: r.description ?? '',
    trainingDataset: r.trainingDataset ?? '',
    program: r.program ?? '',
    jobId: Number(r.jobId ?? 0),
    creator: r.creator ?? '',
    createdMs: Number(r.createdMs ?? 0),
    modelFile: r.modelFile ?? '',
    command: [...(r.command ?? [])],
  }
}
