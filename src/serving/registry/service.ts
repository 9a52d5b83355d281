/**
 * The model registry and deployments as the API uses them: validate, authorize, propose, read.
 *
 * **Who may:** the members of the model's (the deployment's) project, Data Owners and Data Scientists
 * alike, acting as their project-user principal in that project (src/projects): a caller acting in the
 * project (a project key, `X-Hopsd-Project`) must be a member of it; a caller acting in no project with
 * its own credential acts in the project the request names (the body's, the path's, the deployment's)
 * when it is a member of it — a convenience for `hopsd model`/`hopsd deploy` and inference clients,
 * with the same rights as the header would give; an admin acting in no project may do everything (the
 * HDFS superuser); a caller acting in another project may do nothing here. Membership is read from the
 * projects tables after a read barrier on every call, with no cache, so a member removed is refused by
 * its next request on every node. The file system still decides about the files, for that principal:
 * a registered version's directory (and ONNX file) must exist and be readable, and so must the version a
 * deployment serves. The check runs before the command is proposed (check, then act, as an HDFS client's
 * permission is checked at the NameNode before the edit is logged); apply checks only what must hold
 * for anyone.
 */
import {
  commandIdentity,
  generatePrefixedKey,
  parsePrefixedKey,
  secretMatches,
  type Credentials,
  type Principal,
} from '../../auth/index.js'
import {
  CommandRejected,
  encodeCommand,
  type ConsensusGroup,
  type MetaResult,
  metaProto,
} from '../../meta/index.js'
import type { FsService } from '../../fs/index.js'
import type { ProjectStore } from '../../projects/index.js'
import { REGISTRY_ERRORS, RegistryError, type RegistryErrorCode } from '../errors.js'
import { keyView, type ServingModule } from './module.js'
import {
  INFERENCE_KEY_PREFIX,
  PATH_CHARS_MAX,
  checkModel,
  modelVersionDir,
  type Deployment,
  type InferenceKey,
  type ModelVersion,
  type ReplicaRecord,
  type TensorSpec,
} from './types.js'

import pb = metaProto.meta

const READ = 4
const EXECUTE = 1
/** A file name an upload may write into the version directory. */
const FILE_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/
/** Files a version listing shows at most. */
const MODEL_FILES_MAX = 10_000

export interface RegistryServiceInit {
  readonly group: ConsensusGroup
  readonly serving: () => ServingModule
  readonly fs: FsService
  /** The projects tables of this metadata replica (membership is read there, after a read barrier). */
  readonly projects: () => ProjectStore
  /** The node's id (commands name the node that authenticated their principal). */
  readonly nodeId: string
  readonly now?: () => number
  /**
   * A file's bytes as `who` reads them (blocks streamed from their replicas); without it, read whole
   * through `fs` (small files only).
   */
  readonly readFile?: (who: Principal, path: string, signal?: AbortSignal) => AsyncIterable<Uint8Array>
  /** Randomness of new inference keys (seeded in tests); default crypto.randomBytes. */
  readonly random?: (n: number) => Uint8Array
}

/** An inference key as the API shows it (never its secret or hash). */
export type InferenceKeyView = Omit<InferenceKey, 'secretHash'>

export interface CallOpts {
  readonly signal?: AbortSignal
  readonly credential?: Credentials
}

/** A model version as the API shows it: its record, and what it feeds (deployments). */
export interface ModelView extends ModelVersion {
  readonly deployments: string[]
}

/** A deployment as the API shows it, with its replicas' summary. */
export interface DeploymentView extends Omit<Deployment, 'replicas' | 'logSampleRate' | 'pending'> {
  /** Why replicas are not placed: no live serving node has the `cpus` and `memoryMiB` free ('' : none). */
  readonly pending: string
  /** Request/response logging: the share of requests logged (0: off). */
  readonly logging: { readonly sampleRate: number }
  readonly replicas: {
    readonly min: number
    readonly max: number
    readonly wanted: number
    readonly ready: number
  }
  readonly instances: ReplicaRecord[]
  readonly state: 'ready' | 'progressing' | 'unavailable'
}

export class RegistryService {
  constructor(private readonly init: RegistryServiceInit) {}

  // ---- models

  /** Registers a model version whose directory is already in the file system. */
  async registerModel(caller: Principal, body: unknown, opts: CallOpts = {}): Promise<ModelView> {
    const m = parseRegistration(body)
    const who = await this.mayWrite(caller, m.project, opts)
    const dir = modelVersionDir(m.project, m.name, m.version)
    const st = await this.fsOr404(() => this.init.fs.stat(who, dir, { signal: opts.signal }), `${dir}`)
    if (st.type !== 'DIRECTORY') throw new RegistryError('MODEL_SPEC_INVALID', `${dir} is not a directory`)
    await this.mayReadFiles(who, dir, opts)
    if (m.framework === 'onnx') {
      const file = `${dir}/${m.modelFile || 'model.onnx'}`
      const f = await this.fsOr404(() => this.init.fs.stat(who, file, { signal: opts.signal }), file)
      if (f.type !== 'FILE') throw new RegistryError('MODEL_SPEC_INVALID', `${file} is not a file`)
    }
    const value = (await this.propose(who, { registerModel: { model: { ...m } } }, opts)) as ModelVersion
    return { ...value, deployments: [] }
  }

  async listModels(
    caller: Principal,
    q: { project?: string; name?: string; dataset?: string },
    opts: CallOpts = {},
  ): Promise<ModelView[]> {
    await this.init.group.readBarrier({ signal: opts.signal })
    const serving = this.init.serving()
    let models: ModelVersion[]
    if (q.dataset !== undefined) {
      // Lineage the other way: the models trained from this dataset, in the projects the caller may read.
      models = serving
        .modelsFromDataset(q.dataset)
        .filter((m) => q.project === undefined || m.project === q.project)
      const allowed = new Map<string, boolean>()
      const out: ModelVersion[] = []
      for (const m of models) {
        if (!allowed.has(m.project)) allowed.set(m.project, this.sees(caller, m.project))
        if (allowed.get(m.project)) out.push(m)
      }
      models = out
    } else {
      if (q.project === undefined)
        throw new RegistryError('MODEL_SPEC_INVALID', 'name a project (or a dataset)')
      await this.mayRead(caller, q.project, opts)
      models = serving.listModels(q.project, q.name)
    }
    return models.map((m) => this.view(m))
  }

  async getModel(
    caller: Principal,
    project: string,
    name: string,
    version: string,
    opts: CallOpts = {},
  ): Promise<ModelView> {
    await this.mayRead(caller, project, opts)
    const m = this.init.serving().model(project, name, version)
    if (m === undefined)
      throw new RegistryError('MODEL_NOT_FOUND', `no version ${version} of model ${name} in ${project}`)
    return this.view(m)
  }

  /** Forgets a model version, then deletes its directory (unless keepFiles). */
  async deleteModel(
    caller: Principal,
    project: string,
    name: string,
    version: string,
    opts: CallOpts & { keepFiles?: boolean } = {},
  ): Promise<{ project: string; name: string; version: string; filesDeleted: boolean }> {
    const who = await this.mayWrite(caller, project, opts)
    await this.propose(who, { deleteModel: { project, name, version } }, opts)
    let filesDeleted = false
    // Metadata first: a failure below leaves files without a registration (register them again, or
    // delete the directory), never a registration without its files.
    if (opts.keepFiles !== true)
      filesDeleted = await this.init.fs.delete(who, modelVersionDir(project, name, version), {
        recursive: true,
        signal: opts.signal,
      })
    return { project, name, version, filesDeleted }
  }

  /**
   * Uploads one file into a new model version's directory and registers the version, in one step:
   * `spec` is the registration (as POST /api/v1/models, without project, name and version, which the
   * path gives); `write(path, signal)` streams the file into the file system as the caller. Nothing is
   * written when the caller may not, the spec is bad or the version is registered; when the write or the
   * registration fails, the file (and the directory, if this call made it) is deleted again.
   */
  async uploadModel(
    caller: Principal,
    target: { project: string; name: string; version: string; file: string },
    spec: unknown,
    write: (path: string, who: Principal, signal?: AbortSignal) => Promise<void>,
    opts: CallOpts = {},
  ): Promise<ModelView & { uploaded: string }> {
    const C = 'MODEL_SPEC_INVALID'
    const o = spec === undefined ? {} : obj(spec, 'the model spec', C)
    for (const k of ['project', 'name', 'version'] as const)
      if (o[k] !== undefined && String(o[k]) !== target[k])
        throw new RegistryError(C, `${k} is given by the path (${target[k]}), not ${JSON.stringify(o[k])}`)
    if (!FILE_NAME_RE.test(target.file) || target.file.length > 255)
      throw new RegistryError(C, `${JSON.stringify(target.file)} is not a file name`)
    const framework = o['framework']
    const body = {
      ...o,
      project: target.project,
      name: target.name,
      version: target.version,
      ...(framework === 'onnx' && o['modelFile'] === undefined ? { modelFile: target.file } : {}),
    }
    const m = parseRegistration(body)
    checkModel({ ...m, creator: '', createdMs: 0 })
    const who = await this.mayWrite(caller, m.project, opts)
    if (this.init.serving().model(m.project, m.name, m.version) !== undefined)
      throw new RegistryError('MODEL_EXISTS', `${m.name} version ${m.version} is registered in ${m.project}`)
    const dir = modelVersionDir(m.project, m.name, m.version)
    const path = `${dir}/${target.file}`
    const exists = async (p: string): Promise<boolean> => {
      try {
        await this.init.fs.stat(who, p, { signal: opts.signal })
        return true
      } catch (err) {
        if ((err as { code?: string }).code === 'FILE_NOT_FOUND') return false
        throw this.fsError(err, p)
      }
    }
    const dirExisted = await exists(dir)
    if (dirExisted && (await exists(path)))
      throw new RegistryError('MODEL_EXISTS', `${path} exists already: upload another file name or version`)
    const rollback = async (): Promise<void> => {
      // Best effort, and as the caller: what this call made goes, nothing else.
      const del = (p: string, recursive: boolean) =>
        this.init.fs.delete(who, p, { recursive }).catch(() => false)
      await del(path, false)
      if (!dirExisted) await del(dir, true)
    }
    try {
      if (!dirExisted)
        await this.init.fs.mkdirs(who, dir, { signal: opts.signal }).catch((err: unknown) => {
          throw this.fsError(err, dir)
        })
      await write(path, who, opts.signal)
      const view = await this.registerModel(caller, body, opts)
      return { ...view, uploaded: path }
    } catch (err) {
      await rollback()
      throw err
    }
  }

  /** The files of a model version (relative paths and sizes), for members of its project. */
  async listModelFiles(
    caller: Principal,
    project: string,
    name: string,
    version: string,
    opts: CallOpts = {},
  ): Promise<{ path: string; length: number }[]> {
    const { who, dir } = await this.versionFiles(caller, project, name, version, opts)
    const out: { path: string; length: number }[] = []
    const walk = async (rel: string): Promise<void> => {
      let after: string | undefined
      for (;;) {
        const page = await this.init.fs
          .list(who, rel === '' ? dir : `${dir}/${rel}`, { signal: opts.signal, startAfter: after })
          .catch((err: unknown) => {
            throw this.fsError(err, dir)
          })
        for (const e of page.entries) {
          const p = rel === '' ? e.name : `${rel}/${e.name}`
          if (e.type === 'DIRECTORY') await walk(p)
          else if (out.length < MODEL_FILES_MAX) out.push({ path: p, length: e.length })
        }
        if (page.remaining <= 0 || page.entries.length === 0) return
        after = page.entries[page.entries.length - 1]!.name
      }
    }
    await walk('')
    return out
  }

  /** One file of a model version, streamed (members of its project, read as their project-user). */
  async downloadModelFile(
    caller: Principal,
    project: string,
    name: string,
    version: string,
    file: string,
    opts: CallOpts = {},
  ): Promise<{ path: string; length: number; bytes: AsyncIterable<Uint8Array> }> {
    const parts = file.split('/')
    if (file.length > PATH_CHARS_MAX || parts.some((p) => p === '' || p === '.' || p === '..'))
      throw new RegistryError(
        'MODEL_SPEC_INVALID',
        `${JSON.stringify(file)} is not a path in the version directory`,
      )
    const { who, dir } = await this.versionFiles(caller, project, name, version, opts)
    const path = `${dir}/${file}`
    const st = await this.init.fs.stat(who, path, { signal: opts.signal }).catch((err: unknown) => {
      throw this.fsError(err, path)
    })
    if (st.type !== 'FILE') throw new RegistryError('MODEL_SPEC_INVALID', `${path} is not a file`)
    const fs = this.init.fs
    const bytes =
      this.init.readFile?.(who, path, opts.signal) ??
      (async function* () {
        yield await fs.read(who, path, { signal: opts.signal })
      })()
    return { path, length: st.length, bytes }
  }

  private async versionFiles(
    caller: Principal,
    project: string,
    name: string,
    version: string,
    opts: CallOpts,
  ): Promise<{ who: Principal; dir: string }> {
    const who = await this.mayRead(caller, project, opts)
    const m = this.init.serving().model(project, name, version)
    if (m === undefined)
      throw new RegistryError('MODEL_NOT_FOUND', `no version ${version} of model ${name} in ${project}`)
    return { who, dir: m.path }
  }

  /** A file-system refusal as the registry's error (not found: MODEL_NOT_FOUND; denied: 403). */
  private fsError(err: unknown, path: string): Error {
    const code = (err as { code?: string }).code
    if (code === 'FILE_NOT_FOUND')
      return new RegistryError('MODEL_NOT_FOUND', `${path} does not exist in the file system`)
    if (code === 'ACCESS_DENIED')
      return new RegistryError('MODEL_ACCESS_DENIED', `${path}: ${(err as Error).message}`)
    return err as Error
  }

  // ---- deployments

  async createDeployment(caller: Principal, body: unknown, opts: CallOpts = {}): Promise<DeploymentView> {
    const c = parseDeployment(body)
    const who = await this.mayWrite(caller, c.project ?? '', opts)
    // The files it will serve must be there and readable by the principal (a registered version whose
    // directory was removed by hand is not deployed; apply checks the registration itself).
    const served = this.init.serving().model(c.project ?? '', c.model ?? '', c.version ?? '')
    if (served !== undefined) await this.mayReadFiles(who, served.path, opts)
    const d = (await this.propose(who, { createDeployment: c }, opts)) as Deployment
    return deploymentView(d)
  }

  async listDeployments(
    caller: Principal,
    project: string | undefined,
    opts: CallOpts = {},
  ): Promise<DeploymentView[]> {
    await this.init.group.readBarrier({ signal: opts.signal })
    const allowed = new Map<string, boolean>()
    const out: DeploymentView[] = []
    for (const d of this.init.serving().listDeployments(project)) {
      if (!allowed.has(d.project)) allowed.set(d.project, this.sees(caller, d.project))
      if (allowed.get(d.project)) out.push(deploymentView(d))
    }
    return out
  }

  async getDeployment(caller: Principal, name: string, opts: CallOpts = {}): Promise<DeploymentView> {
    await this.init.group.readBarrier({ signal: opts.signal })
    const d = this.mustGetDeployment(name)
    await this.mayRead(caller, d.project, opts)
    return deploymentView(this.mustGetDeployment(name))
  }

  /** Moves a deployment to another version (rolled out by the reconcile loop) and/or new bounds. */
  async updateDeployment(
    caller: Principal,
    name: string,
    body: unknown,
    opts: CallOpts = {},
  ): Promise<DeploymentView> {
    const u = parseUpdate(body)
    await this.init.group.readBarrier({ signal: opts.signal })
    const d = this.mustGetDeployment(name)
    const who = await this.mayWrite(caller, d.project, opts)
    const served = !u.version ? undefined : this.init.serving().model(d.project, d.model, u.version)
    if (served !== undefined) await this.mayReadFiles(who, served.path, opts)
    const next = (await this.propose(who, { updateDeployment: { name, ...u } }, opts)) as Deployment
    return deploymentView(next)
  }

  async deleteDeployment(caller: Principal, name: string, opts: CallOpts = {}): Promise<{ name: string }> {
    await this.init.group.readBarrier({ signal: opts.signal })
    const d = this.mustGetDeployment(name)
    const who = await this.mayWrite(caller, d.project, opts)
    return (await this.propose(who, { deleteDeployment: { name } }, opts)) as { name: string }
  }

  // ---- inference keys

  /**
   * Issues an inference key for a deployment: `{id, key}`, the key shown this once (the state keeps
   * SHA-256 of its secret). Data Owners of the deployment's project (and admins acting in no project).
   */
  async createInferenceKey(
    caller: Principal,
    deployment: string,
    body: unknown,
    opts: CallOpts = {},
  ): Promise<InferenceKeyView & { key: string }> {
    const C = 'INFERENCE_KEY_INVALID'
    const o = body === undefined || body === null ? {} : obj(body, 'the key', C)
    only(o, ['name'], C)
    const name = str(o, 'name', C)
    await this.init.group.readBarrier({ signal: opts.signal })
    const d = this.mustGetDeployment(deployment)
    const who = await this.mayOwn(caller, d.project, opts)
    const made = generatePrefixedKey(INFERENCE_KEY_PREFIX, this.init.random)
    const view = (await this.propose(
      who,
      { createInferenceKey: { deployment, id: made.id, name, secretHash: made.secretHash } },
      opts,
    )) as InferenceKeyView
    return { ...view, key: made.key }
  }

  /** The inference keys of a deployment (revoked ones too): members of its project. */
  async listInferenceKeys(
    caller: Principal,
    deployment: string,
    opts: CallOpts = {},
  ): Promise<InferenceKeyView[]> {
    await this.init.group.readBarrier({ signal: opts.signal })
    const d = this.mustGetDeployment(deployment)
    await this.mayRead(caller, d.project, opts)
    return this.init.serving().inferenceKeysOf(deployment).map(keyView)
  }

  /** Revokes an inference key: refused from the next request on, on every node. Data Owners. */
  async revokeInferenceKey(
    caller: Principal,
    deployment: string,
    id: string,
    opts: CallOpts = {},
  ): Promise<InferenceKeyView> {
    await this.init.group.readBarrier({ signal: opts.signal })
    const d = this.mustGetDeployment(deployment)
    const who = await this.mayOwn(caller, d.project, opts)
    return (await this.propose(who, { revokeInferenceKey: { deployment, id } }, opts)) as InferenceKeyView
  }

  /**
   * The principal of an inference key (`hik.<id>.<secret>`), checked against this replica after a read
   * barrier (so a revocation anywhere holds for the next request here): a principal that is no user
   * (`inference-key:<id>`), acting in the deployment's project, limited to that deployment. Refusals
   * are INFERENCE_KEY_INVALID (401).
   */
  async authenticateInferenceKey(key: string, opts: CallOpts = {}): Promise<Principal> {
    const refused = (why: string) => new RegistryError('INFERENCE_KEY_INVALID', why)
    const parsed = parsePrefixedKey(key, INFERENCE_KEY_PREFIX)
    if (parsed === undefined) throw refused('malformed inference key (expected hik.<id>.<secret>)')
    await this.init.group.readBarrier({ signal: opts.signal })
    const k = this.init.serving().inferenceKey(parsed.id)
    if (k === undefined) throw refused(`unknown inference key ${parsed.id}`)
    if (!secretMatches(parsed.secret, k.secretHash))
      throw refused(`wrong secret for inference key ${parsed.id}`)
    if (k.revokedMs !== 0)
      throw refused(`inference key ${k.id} was revoked at ${new Date(k.revokedMs).toISOString()}`)
    const d = this.init.serving().deployment(k.deployment)
    if (d === undefined || d.project !== k.project)
      throw refused(`the deployment of inference key ${k.id} was deleted`)
    return {
      user: `inference-key:${k.id}`,
      groups: [],
      project: k.project,
      via: 'inference-key',
      credentialId: k.id,
      superuser: false,
      deployment: k.deployment,
    }
  }

  /**
   * Whether `caller` may use the /v2 routes of deployment `name` (`d`: its row, if any): an inference
   * key only on its own deployment (403 elsewhere, whether or not that one exists, so a key learns
   * nothing of other deployments), anyone else as {@link mayRead} on the deployment's project.
   */
  async mayInfer(
    caller: Principal,
    name: string,
    d: Deployment | undefined,
    opts: CallOpts = {},
  ): Promise<void> {
    if (caller.via === 'inference-key' || caller.deployment !== undefined) {
      if (caller.deployment !== name || d === undefined || d.project !== caller.project)
        throw new RegistryError(
          'MODEL_ACCESS_DENIED',
          `inference key ${caller.credentialId ?? ''} is for deployment ${caller.deployment ?? '?'} only, not ${name}`,
        )
      return
    }
    if (d !== undefined) await this.mayRead(caller, d.project, opts)
  }

  // ---- access (see the file's comment)

  /**
   * The principal the caller acts as in `project`'s models, after a read barrier; MODEL_ACCESS_DENIED
   * unless it may see them (and infer). Every call reads the projects tables: nothing is cached.
   */
  async mayRead(caller: Principal, project: string, opts: CallOpts = {}): Promise<Principal> {
    return this.access(caller, project, 'see', opts)
  }

  /** Whether the caller may see `project`'s models, from this replica as it is (after a barrier). */
  private sees(caller: Principal, project: string): boolean {
    try {
      this.decide(caller, project, 'see')
      return true
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'MODEL_ACCESS_DENIED') return false
      throw err
    }
  }

  /** The same for changes: Data Owners and Data Scientists may register, delete, deploy and update. */
  private async mayWrite(caller: Principal, project: string, opts: CallOpts): Promise<Principal> {
    return this.access(caller, project, 'change', opts)
  }

  private async access(caller: Principal, project: string, what: string, opts: CallOpts): Promise<Principal> {
    await this.init.group.readBarrier({ signal: opts.signal })
    return this.decide(caller, project, what)
  }

  /** Data Owners of `project` (and admins acting in no project): inference keys. */
  private async mayOwn(caller: Principal, project: string, opts: CallOpts): Promise<Principal> {
    const who = await this.access(caller, project, 'manage the inference keys of', opts)
    if (caller.superuser && (caller.project ?? '') === '') return who
    if (this.init.projects().member(project, caller.user)?.role !== 'DATA_OWNER')
      throw new RegistryError(
        'MODEL_ACCESS_DENIED',
        `${caller.user} may not manage the inference keys of project ${project}: Data Owners only`,
      )
    return who
  }

  private decide(caller: Principal, project: string, what: string): Principal {
    // An inference key reaches the /v2 routes of its deployment (mayInfer) and nothing here.
    if (caller.via === 'inference-key' || caller.deployment !== undefined)
      throw new RegistryError(
        'MODEL_ACCESS_DENIED',
        `an inference key may not ${what} the models of ${project}`,
      )
    const acting = caller.project ?? ''
    const deny = (why: string): never => {
      throw new RegistryError(
        'MODEL_ACCESS_DENIED',
        `${caller.user} may not ${what} the models of project ${project}: ${why}`,
      )
    }
    if (acting !== '' && acting !== project) return deny(`the request acts in project ${acting}`)
    const projects = this.init.projects()
    if (projects.project(project) !== undefined && projects.member(project, caller.user) !== undefined)
      return acting === project ? caller : { ...caller, project }
    if (acting === '' && caller.superuser) return caller
    return deny(
      projects.project(project) === undefined
        ? 'no such project'
        : `${caller.user} is not a member of project ${project}`,
    )
  }

  /** The model's files must exist and be readable (and listable) by the principal. */
  private async mayReadFiles(who: Principal, dir: string, opts: CallOpts): Promise<void> {
    await this.fsOr404(() => this.init.fs.checkAccess(who, dir, READ | EXECUTE, { signal: opts.signal }), dir)
  }

  // ---- helpers

  private view(m: ModelVersion): ModelView {
    return { ...m, deployments: this.init.serving().deploymentsOf(m.project, m.name, m.version) }
  }

  private mustGetDeployment(name: string): Deployment {
    const d = this.init.serving().deployment(name)
    if (d === undefined)
      throw new RegistryError('DEPLOYMENT_NOT_FOUND', `no deployment ${JSON.stringify(name)}`)
    return d
  }

  private async fsOr404<T>(op: () => Promise<T>, path: string): Promise<T> {
    try {
      return await op()
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'FILE_NOT_FOUND')
        throw new RegistryError(
          'MODEL_SPEC_INVALID',
          `${path} does not exist in the file system: upload the model's files first`,
        )
      if (code === 'ACCESS_DENIED')
        throw new RegistryError('MODEL_ACCESS_DENIED', `${path}: ${(err as Error).message}`)
      throw err
    }
  }

  private async propose(
    caller: Principal,
    cmd: Omit<pb.Command.$Properties, 'nowMs' | 'user' | 'groups'>,
    opts: CallOpts,
  ): Promise<unknown> {
    const bytes = encodeCommand({
      ...cmd,
      ...commandIdentity(caller, this.init.nodeId),
      nowMs: (this.init.now ?? Date.now)(),
    })
    const result = (await this.init.group.propose(bytes, { signal: opts.signal })) as MetaResult
    if (result.ok) return result.value
    throw registryErrorOf(result.code, result.message)
  }
}

/** The typed error of a refused command. */
export function registryErrorOf(code: string, message: string): Error {
  if (Object.hasOwn(REGISTRY_ERRORS, code)) return new RegistryError(code as RegistryErrorCode, message)
  return new CommandRejected(code, message)
}

export function deploymentView(d: Deployment): DeploymentView {
  const { replicas, logSampleRate, ...rest } = d
  const ready = replicas.filter((r) => r.state === 'ready' && r.version === d.version).length
  return {
    ...rest,
    logging: { sampleRate: logSampleRate },
    pending: d.pending ?? '',
    replicas: { min: d.replicasMin, max: d.replicasMax, wanted: d.replicasWanted, ready },
    instances: replicas.map((r) => ({ ...r })),
    state:
      ready >= d.replicasWanted
        ? 'ready'
        : replicas.some((r) => r.state === 'ready')
          ? 'progressing'
          : 'unavailable',
  }
}

// ---- body validation (unknown fields refused, no coercion: the route's schema only says "an object")

type Obj = Record<string, unknown>

function obj(v: unknown, what: string, code: RegistryErrorCode): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new RegistryError(code, `${what} must be an object`)
  return v as Obj
}

function only(o: Obj, allowed: readonly string[], code: RegistryErrorCode): void {
  for (const k of Object.keys(o))
    if (!allowed.includes(k)) throw new RegistryError(code, `unknown field ${JSON.stringify(k)}`)
}

function str(o: Obj, k: string, code: RegistryErrorCode, required = false): string {
  const v = o[k]
  if (v === undefined && !required) return ''
  if (typeof v !== 'string') throw new RegistryError(code, `${k} must be a string`)
  return v
}

function int(o: Obj, k: string, code: RegistryErrorCode, dflt: number): number {
  const v = o[k]
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    throw new RegistryError(code, `${k} must be an integer`)
  return v
}

const REG_FIELDS = [
  'project',
  'name',
  'version',
  'path',
  'framework',
  'inputs',
  'outputs',
  'metrics',
  'description',
  'trainingDataset',
  'program',
  'jobId',
  'modelFile',
  'command',
] as const

export function parseRegistration(body: unknown): ModelVersion {
  const C = 'MODEL_SPEC_INVALID'
  const o = obj(body, 'the registration', C)
  only(o, REG_FIELDS, C)
  const project = str(o, 'project', C, true)
  const name = str(o, 'name', C, true)
  const version = typeof o['version'] === 'number' ? String(o['version']) : str(o, 'version', C, true)
  const tensors = (k: string): TensorSpec[] => {
    const v = o[k]
    if (v === undefined) return []
    if (!Array.isArray(v)) throw new RegistryError(C, `${k} must be a list of {name, datatype, shape}`)
    return v.map((t) => {
      const x = obj(t, `an entry of ${k}`, C)
      only(x, ['name', 'datatype', 'shape'], C)
      const shape = x['shape']
      if (!Array.isArray(shape) || shape.some((d) => typeof d !== 'number'))
        throw new RegistryError(C, `${k}: shape must be a list of integers (-1: variable)`)
      return {
        name: str(x, 'name', C, true),
        datatype: str(x, 'datatype', C, true),
        shape: shape as number[],
      }
    })
  }
  const metricsRaw = o['metrics'] === undefined ? {} : obj(o['metrics'], 'metrics', C)
  const metrics = Object.entries(metricsRaw).map(([k, v]) => {
    if (typeof v !== 'number') throw new RegistryError(C, `metric ${k} must be a number`)
    return { name: k, value: v }
  })
  const command = o['command']
  if (command !== undefined && (!Array.isArray(command) || command.some((a) => typeof a !== 'string')))
    throw new RegistryError(C, 'command must be a list of strings')
  const dir = modelVersionDir(project, name, version)
  return {
    project,
    name,
    version,
    path: str(o, 'path', C) || dir,
    framework: str(o, 'framework', C, true),
    inputs: tensors('inputs'),
    outputs: tensors('outputs'),
    metrics,
    description: str(o, 'description', C),
    trainingDataset: str(o, 'trainingDataset', C),
    program: str(o, 'program', C),
    jobId: int(o, 'jobId', C, 0),
    creator: '',
    createdMs: 0,
    modelFile: str(o, 'modelFile', C),
    command: (command as string[] | undefined) ?? [],
  }
}

function parseReplicas(o: Obj, C: RegistryErrorCode): { min: number; max: number } | undefined {
  if (o['replicas'] === undefined) return undefined
  const r = obj(o['replicas'], 'replicas', C)
  only(r, ['min', 'max'], C)
  const min = int(r, 'min', C, 1)
  return { min, max: int(r, 'max', C, min) }
}

export function parseDeployment(body: unknown): pb.ICreateDeployment {
  const C = 'DEPLOYMENT_SPEC_INVALID'
  const o = obj(body, 'the deployment', C)
  only(o, ['name', 'project', 'model', 'version', 'replicas', 'cpus', 'memoryMiB', 'logging'], C)
  const replicas = parseReplicas(o, C) ?? { min: 1, max: 1 }
  const cpus = o['cpus'] ?? 0
  if (typeof cpus !== 'number') throw new RegistryError(C, 'cpus must be a number')
  return {
    name: str(o, 'name', C, true),
    project: str(o, 'project', C, true),
    model: str(o, 'model', C, true),
    version: typeof o['version'] === 'number' ? String(o['version']) : str(o, 'version', C, true),
    replicasMin: replicas.min,
    replicasMax: replicas.max,
    cpus,
    memoryMiB: int(o, 'memoryMiB', C, 0),
    logSampleRate: parseLogging(o, C) ?? 0,
  }
}

/** `logging: {sampleRate: 0..1}`: the share of requests logged (undefined: not given). */
function parseLogging(o: Obj, C: RegistryErrorCode): number | undefined {
  if (o['logging'] === undefined) return undefined
  const l = obj(o['logging'], 'logging', C)
  only(l, ['sampleRate'], C)
  const rate = l['sampleRate']
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0 || rate > 1)
    throw new RegistryError(C, 'logging.sampleRate must be a number from 0 (off) to 1 (every request)')
  return rate
}

export function parseUpdate(body: unknown): pb.IUpdateDeployment {
  const C = 'DEPLOYMENT_SPEC_INVALID'
  const o = obj(body, 'the update', C)
  only(o, ['version', 'replicas', 'logging'], C)
  const replicas = parseReplicas(o, C)
  const version = typeof o['version'] === 'number' ? String(o['version']) : str(o, 'version', C)
  const rate = parseLogging(o, C)
  if (version === '' && replicas === undefined && rate === undefined)
    throw new RegistryError(C, 'give a version, replicas {min, max} and/or logging {sampleRate}')
  if (replicas !== undefined && (replicas.min < 1 || replicas.max < 1))
    throw new RegistryError(C, 'replicas.min and max must be at least 1')
  return {
    version,
    replicasMin: replicas?.min ?? 0,
    replicasMax: replicas?.max ?? 0,
    ...(rate === undefined ? {} : { logSampleRate: rate, setLogSampleRate: true }),
  }
}
