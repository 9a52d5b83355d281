/**
 * The `serving` module of the metadata state machine: registered model versions and deployments.
 *
 * | table                | key                              | value              |
 * | -------------------- | -------------------------------- | ------------------ |
 * | `serving.model`      | `<project> NUL <name> NUL <ver>` | ModelVersionRecord |
 * | `serving.deployment` | `<name>`                         | DeploymentRecord   |
 * | `serving.key`        | `<id>` (16 hex digits)           | InferenceKeyRecord |
 *
 * Commands (proto/meta.proto, 130–149): RegisterModel, DeleteModel (refused while a deployment serves
 * the version); CreateDeployment, UpdateDeployment (a new version: the reconcile loop rolls it out),
 * DeleteDeployment; SetDeploymentReplicas (the leader's placement step, refused unless planned on the
 * deployment's current `generation`, as Nomad's plan applier revalidates) and ReportReplica (a serving
 * node's word on its own replica) — both cluster-only (superuser); CreateInferenceKey and
 * RevokeInferenceKey (keys a project issues for one deployment, stored as SHA-256 of their secret and
 * deleted with their deployment).
 *
 * Who may register, delete or deploy is checked by the services above (src/serving/registry/service.ts)
 * against the file system's permissions before they propose — the interim rule until projects land.
 * Apply checks what must hold whatever proposed it: names, that a deployed version is registered, that
 * a served version is not deleted. Each command touches one row and its index entries.
 */
import {
  metaProto,
  protoCodec,
  type ApplyContext,
  type MetaModule,
  type MetaModuleFactory,
  type MetaStore,
  type Table,
} from '../../meta/index.js'
import { RegistryError } from '../errors.js'
import {
  DEPLOYABLE_FRAMEWORKS,
  INFERENCE_KEY_NAME_CHARS_MAX,
  INFERENCE_KEYS_PER_DEPLOYMENT_MAX,
  checkDeploymentSpec,
  checkModel,
  modelFromProto,
  modelKey,
  type Deployment,
  type InferenceKey,
  type ModelVersion,
  type ReplicaRecord,
} from './types.js'

import pb = metaProto.meta

export const SERVING_OPS = [
  'registerModel',
  'deleteModel',
  'createDeployment',
  'updateDeployment',
  'deleteDeployment',
  'setDeploymentReplicas',
  'reportReplica',
  'createInferenceKey',
  'revokeInferenceKey',
] as const

/** Bound on a listing page. */
export const LIST_PAGE_MAX = 1000
/** Bound on the replicas one deployment may hold (new version + old during a rollout, replacements). */
const PLACED_MAX = 256
const KEY_ID_RE = /^[0-9a-f]{16}$/

export type DeploymentListener = (name: string, deployment: Deployment | undefined) => void

export class ServingModule implements MetaModule {
  readonly name = 'serving'
  readonly ops = SERVING_OPS
  private readonly models: Table<ModelVersion>
  private readonly deployments: Table<Deployment>
  private readonly keys: Table<InferenceKey>
  /** deployment name → ids of its inference keys. */
  private readonly keysByDeployment = new Map<string, Set<string>>()
  /** dataset path → model keys trained from it (lineage, the other way). */
  private readonly byDataset = new Map<string, Set<string>>()
  /** model key → deployments that serve it (spec version or a replica's version). */
  private readonly servedBy = new Map<string, Set<string>>()
  private readonly listeners = new Set<DeploymentListener>()
  private readonly changed = new Set<string>()
  private flushQueued = false

  constructor(store: MetaStore) {
    this.models = store.table('serving.model', protoCodec<ModelVersion>(pb.ModelVersionRecord), {
      onSet: (k, prev, next) => {
        if (prev !== undefined) dropFrom(this.byDataset, prev.trainingDataset, k)
        if (next.trainingDataset !== '') addTo(this.byDataset, next.trainingDataset, k)
      },
      onDelete: (k, prev) => dropFrom(this.byDataset, prev.trainingDataset, k),
      onClear: () => this.byDataset.clear(),
    })
    this.deployments = store.table('serving.deployment', protoCodec<Deployment>(pb.DeploymentRecord), {
      onSet: (k, prev, next) => {
        if (prev !== undefined) for (const m of servedKeys(prev)) dropFrom(this.servedBy, m, k)
        for (const m of servedKeys(next)) addTo(this.servedBy, m, k)
        this.noteChange(k)
      },
      onDelete: (k, prev) => {
        for (const m of servedKeys(prev)) dropFrom(this.servedBy, m, k)
        this.noteChange(k)
      },
      onClear: () => this.servedBy.clear(),
    })
    this.keys = store.table('serving.key', protoCodec<InferenceKey>(pb.InferenceKeyRecord), {
      onSet: (k, prev, next) => {
        if (prev !== undefined) dropFrom(this.keysByDeployment, prev.deployment, k)
        addTo(this.keysByDeployment, next.deployment, k)
      },
      onDelete: (k, prev) => dropFrom(this.keysByDeployment, prev.deployment, k),
      onClear: () => this.keysByDeployment.clear(),
    })
  }

  apply(ctx: ApplyContext): unknown {
    const cmd = ctx.cmd
    if (cmd.user === '') throw new RegistryError('MODEL_ACCESS_DENIED', 'the command carries no user')
    switch (cmd.op) {
      case 'registerModel':
        return this.register(ctx, cmd.registerModel!)
      case 'deleteModel': {
        const c = cmd.deleteModel!
        const key = modelKey(c.project ?? '', c.name ?? '', c.version ?? '')
        const m = this.models.get(key)
        if (m === undefined) throw notFound(c)
        const users = this.servedBy.get(key)
        if (users !== undefined && users.size > 0)
          throw new RegistryError(
            'MODEL_IN_USE',
            `${m.name} version ${m.version} is served by deployment ${[...users].sort().join(', ')}`,
          )
        this.models.delete(key)
        return { project: m.project, name: m.name, version: m.version }
      }
      case 'createDeployment':
        return this.create(ctx, cmd.createDeployment!)
      case 'updateDeployment':
        return this.update(ctx, cmd.updateDeployment!)
      case 'deleteDeployment': {
        const d = this.mustGetDeployment(cmd.deleteDeployment!.name ?? '')
        this.deployments.delete(d.name)
        // Its keys go with it: a deployment made again under the name starts with none.
        for (const id of [...(this.keysByDeployment.get(d.name) ?? [])]) this.keys.delete(id)
        return { name: d.name }
      }
      case 'setDeploymentReplicas':
        this.requireNode(ctx)
        return this.setReplicas(ctx, cmd.setDeploymentReplicas!)
      case 'reportReplica':
        this.requireNode(ctx)
        return this.report(ctx, cmd.reportReplica!)
      case 'createInferenceKey':
        return this.createKey(ctx, cmd.createInferenceKey!)
      case 'revokeInferenceKey': {
        const c = cmd.revokeInferenceKey!
        const k = this.keys.get(c.id ?? '')
        if (k === undefined || k.deployment !== (c.deployment ?? ''))
          throw new RegistryError(
            'INFERENCE_KEY_NOT_FOUND',
            `deployment ${c.deployment} has no inference key ${JSON.stringify(c.id ?? '')}`,
          )
        if (k.revokedMs === 0) this.keys.put(k.id, { ...k, revokedMs: ctx.cmd.nowMs })
        return keyView(this.keys.get(k.id)!)
      }
      default:
        throw new Error(`serving: op ${String(cmd.op)} routed to the serving module`)
    }
  }

  // ---- reads (this replica; callers fence with a read barrier when they need linearizable reads)

  model(project: string, name: string, version: string): ModelVersion | undefined {
    return this.models.get(modelKey(project, name, version))
  }

  /** Versions of models in `project` (of model `name` when given), in key order, at most `limit`. */
  listModels(project: string, name?: string, limit = LIST_PAGE_MAX): ModelVersion[] {
    const prefix = name === undefined ? `${project}\u0000` : `${project}\u0000${name}\u0000`
    const out: ModelVersion[] = []
    for (const [k, m] of this.models.range(prefix)) {
      if (!k.startsWith(prefix) || out.length >= Math.min(limit, LIST_PAGE_MAX)) break
      out.push(m)
    }
    return out
  }

  /** Model versions trained from `dataset` or from anything under it (lineage, the other way). */
  modelsFromDataset(dataset: string, limit = LIST_PAGE_MAX): ModelVersion[] {
    const under = dataset.endsWith('/') ? dataset : `${dataset}/`
    const keys: string[] = []
    for (const [path, set] of this.byDataset)
      if (path === dataset || path.startsWith(under)) keys.push(...set)
    return keys
      .sort()
      .slice(0, Math.min(limit, LIST_PAGE_MAX))
      .map((k) => this.models.get(k)!)
  }

  /** Names of the deployments serving a model version (spec or a replica still running it). */
  deploymentsOf(project: string, name: string, version: string): string[] {
    return [...(this.servedBy.get(modelKey(project, name, version)) ?? [])].sort()
  }

  deployment(name: string): Deployment | undefined {
    return this.deployments.get(name)
  }

  /** An inference key by id (revoked ones included). */
  inferenceKey(id: string): InferenceKey | undefined {
    return this.keys.get(id)
  }

  /** The inference keys of a deployment (revoked ones included), oldest first. */
  inferenceKeysOf(deployment: string): InferenceKey[] {
    return [...(this.keysByDeployment.get(deployment) ?? [])]
      .map((id) => this.keys.get(id)!)
      .sort((a, b) => a.createdMs - b.createdMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /** Deployments in name order (of `project` when given), at most `limit`. */
  listDeployments(project?: string, limit = LIST_PAGE_MAX): Deployment[] {
    const out: Deployment[] = []
    for (const [, d] of this.deployments.range('')) {
      if (out.length >= Math.min(limit, LIST_PAGE_MAX)) break
      if (project === undefined || d.project === project) out.push(d)
    }
    return out
  }

  /**
   * Calls `listener` with a deployment's name and row (undefined: deleted) after commands changed it,
   * once per deployment per batch, after the batch applied. Local notification for the node's loops.
   * Listeners must not throw or block. Returns the unsubscribe function.
   */
  onDeploymentChange(listener: DeploymentListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  // ---- commands

  private register(ctx: ApplyContext, c: pb.IRegisterModel): ModelVersion {
    const m: ModelVersion = {
      ...modelFromProto(c.model ?? {}),
      creator: ctx.cmd.user,
      createdMs: ctx.cmd.nowMs,
    }
    checkModel(m)
    const key = modelKey(m.project, m.name, m.version)
    if (this.models.has(key))
      throw new RegistryError('MODEL_EXISTS', `${m.name} version ${m.version} is registered in ${m.project}`)
    this.models.put(key, m)
    return m
  }

  private create(ctx: ApplyContext, c: pb.ICreateDeployment): Deployment {
    const spec = {
      name: c.name ?? '',
      project: c.project ?? '',
      model: c.model ?? '',
      version: c.version ?? '',
      replicasMin: c.replicasMin ?? 0,
      replicasMax: c.replicasMax ?? 0,
      cpus: Number(c.cpus ?? 0),
      memoryMiB: c.memoryMiB ?? 0,
      logSampleRate: Number(c.logSampleRate ?? 0),
    }
    checkDeploymentSpec(spec)
    if (this.deployments.has(spec.name))
      throw new RegistryError('DEPLOYMENT_EXISTS', `a deployment named ${spec.name} exists`)
    this.requireDeployable(spec.project, spec.model, spec.version)
    const d: Deployment = {
      ...spec,
      owner: ctx.cmd.user,
      createdMs: ctx.cmd.nowMs,
      updatedMs: ctx.cmd.nowMs,
      generation: 1,
      replicas: [],
      replicasWanted: spec.replicasMin,
      lastScale: `created with ${spec.replicasMin} replicas`,
      nextReplicaSeq: 1,
      lastScaleMs: ctx.cmd.nowMs,
      pending: '',
    }
    this.deployments.put(d.name, d)
    return d
  }

  private update(ctx: ApplyContext, c: pb.IUpdateDeployment): Deployment {
    const d = this.mustGetDeployment(c.name ?? '')
    const version = c.version || d.version
    const replicasMin = c.replicasMin || d.replicasMin
    const replicasMax = c.replicasMax || Math.max(d.replicasMax, replicasMin)
    const logSampleRate = c.setLogSampleRate ? Number(c.logSampleRate ?? 0) : d.logSampleRate
    checkDeploymentSpec({ ...d, version, replicasMin, replicasMax, logSampleRate })
    if (version !== d.version) this.requireDeployable(d.project, d.model, version)
    const wanted = Math.min(replicasMax, Math.max(replicasMin, d.replicasWanted))
    const next: Deployment = {
      ...d,
      version,
      replicasMin,
      replicasMax,
      logSampleRate,
      replicasWanted: wanted,
      lastScale:
        wanted !== d.replicasWanted
          ? `bounds ${replicasMin}..${replicasMax}: ${wanted} replicas`
          : d.lastScale,
      lastScaleMs: wanted !== d.replicasWanted ? ctx.cmd.nowMs : d.lastScaleMs,
      updatedMs: ctx.cmd.nowMs,
      generation: d.generation + 1,
    }
    this.deployments.put(d.name, next)
    return next
  }

  private setReplicas(ctx: ApplyContext, c: pb.ISetDeploymentReplicas): Deployment {
    const d = this.mustGetDeployment(c.name ?? '')
    if (Number(c.generation ?? 0) !== d.generation)
      throw new RegistryError(
        'DEPLOYMENT_CONFLICT',
        `${d.name} is at generation ${d.generation}, the step was planned at ${Number(c.generation ?? 0)}`,
      )
    const remove = new Set(c.remove ?? [])
    for (const id of remove)
      if (!d.replicas.some((r) => r.id === id))
        throw new RegistryError('DEPLOYMENT_CONFLICT', `${d.name} has no replica ${id}`)
    let seq = d.nextReplicaSeq
    const added: ReplicaRecord[] = (c.add ?? []).map((p) => {
      if (!p.node) throw new RegistryError('DEPLOYMENT_SPEC_INVALID', 'a placement without a node')
      const version = p.version || d.version
      if (this.models.get(modelKey(d.project, d.model, version)) === undefined)
        throw new RegistryError('MODEL_NOT_FOUND', `${d.model} version ${version} is not registered`)
      return {
        id: `${d.name}-${seq++}`,
        node: p.node,
        zone: p.zone ?? '',
        version,
        state: 'placed',
        error: '',
        restarts: 0,
        placedMs: ctx.cmd.nowMs,
        reportedMs: 0,
        inflight: 0,
      }
    })
    const replicas = [...d.replicas.filter((r) => !remove.has(r.id)), ...added]
    if (replicas.length > PLACED_MAX)
      throw new RegistryError('DEPLOYMENT_SPEC_INVALID', `more than ${PLACED_MAX} replicas`)
    const wanted = c.replicasWanted || d.replicasWanted
    if (wanted < d.replicasMin || wanted > d.replicasMax)
      throw new RegistryError(
        'DEPLOYMENT_SPEC_INVALID',
        `${wanted} replicas is outside ${d.replicasMin}..${d.replicasMax}`,
      )
    const scaled = wanted !== d.replicasWanted
    const next: Deployment = {
      ...d,
      replicas,
      replicasWanted: wanted,
      lastScale: scaled ? c.reason || `scaled to ${wanted}` : d.lastScale,
      lastScaleMs: scaled ? ctx.cmd.nowMs : d.lastScaleMs,
      nextReplicaSeq: seq,
      generation: d.generation + 1,
      pending: c.pending ?? '',
    }
    this.deployments.put(d.name, next)
    return next
  }

  private report(ctx: ApplyContext, c: pb.IReportReplica): { name: string; replicaId: string } {
    const d = this.mustGetDeployment(c.name ?? '')
    const r = d.replicas.find((x) => x.id === c.replicaId)
    if (r === undefined || r.node !== (c.node ?? ''))
      throw new RegistryError('DEPLOYMENT_CONFLICT', `replica ${c.replicaId} is not placed on ${c.node}`)
    const updated: ReplicaRecord = {
      ...r,
      state: c.state ?? r.state,
      error: c.error ?? '',
      restarts: c.restarts ?? r.restarts,
      inflight: c.inflight ?? 0,
      reportedMs: ctx.cmd.nowMs,
    }
    // A change of state moves the generation (a placement step planned before it is refused); a new
    // in-flight figure alone does not (the autoscaler reads it, nothing is decided on its exact value).
    const changed = updated.state !== r.state || updated.error !== r.error || updated.restarts !== r.restarts
    this.deployments.put(d.name, {
      ...d,
      replicas: d.replicas.map((x) => (x === r ? updated : x)),
      generation: changed ? d.generation + 1 : d.generation,
    })
    return { name: d.name, replicaId: r.id }
  }

  private createKey(ctx: ApplyContext, c: pb.ICreateInferenceKey): Omit<InferenceKey, 'secretHash'> {
    const d = this.mustGetDeployment(c.deployment ?? '')
    const id = c.id ?? ''
    const bad = (why: string) => new RegistryError('INFERENCE_KEY_INVALID', why)
    if (!KEY_ID_RE.test(id)) throw bad('an inference key id is 16 hex digits')
    if (this.keys.has(id)) throw bad(`key id ${id} is taken; make a new key`)
    const hash = c.secretHash ?? new Uint8Array(0)
    if (hash.length !== 32) throw bad('an inference key hash is 32 bytes (SHA-256)')
    const name = c.name ?? ''
    if (name.length > INFERENCE_KEY_NAME_CHARS_MAX || /[\u0000-\u001f]/.test(name))
      throw bad(`a key name is at most ${INFERENCE_KEY_NAME_CHARS_MAX} printable characters`)
    const rows = this.inferenceKeysOf(d.name)
    if (rows.length >= INFERENCE_KEYS_PER_DEPLOYMENT_MAX) {
      // Room is made from revoked keys only (oldest first): live ones are revoked by a person.
      const dead = rows.filter((k) => k.revokedMs !== 0)
      const drop = rows.length - INFERENCE_KEYS_PER_DEPLOYMENT_MAX + 1
      if (dead.length < drop)
        throw new RegistryError(
          'INFERENCE_KEY_LIMIT',
          `${d.name} has ${INFERENCE_KEYS_PER_DEPLOYMENT_MAX} live inference keys; revoke some first`,
        )
      for (const k of dead.slice(0, drop)) this.keys.delete(k.id)
    }
    const k: InferenceKey = {
      id,
      deployment: d.name,
      project: d.project,
      name,
      secretHash: hash,
      createdBy: ctx.cmd.user,
      createdMs: ctx.cmd.nowMs,
      revokedMs: 0,
    }
    this.keys.put(id, k)
    return keyView(k)
  }

  // ---- helpers

  private requireDeployable(project: string, model: string, version: string): void {
    const m = this.models.get(modelKey(project, model, version))
    if (m === undefined)
      throw new RegistryError(
        'MODEL_NOT_FOUND',
        `${model} version ${version} is not registered in ${project}`,
      )
    if (!(DEPLOYABLE_FRAMEWORKS as readonly string[]).includes(m.framework))
      throw new RegistryError(
        'DEPLOYMENT_SPEC_INVALID',
        `framework ${m.framework} cannot be served (only ${DEPLOYABLE_FRAMEWORKS.join(', ')})`,
      )
  }

  private requireNode(ctx: ApplyContext): void {
    if (!ctx.isSuperuser)
      throw new RegistryError('MODEL_ACCESS_DENIED', `${ctx.cmd.user} is not a cluster node (superuser)`)
  }

  private mustGetDeployment(name: string): Deployment {
    const d = this.deployments.get(name)
    if (d === undefined)
      throw new RegistryError('DEPLOYMENT_NOT_FOUND', `no deployment ${JSON.stringify(name)}`)
    return d
  }

  private noteChange(name: string): void {
    if (this.listeners.size === 0) return
    this.changed.add(name)
    if (this.flushQueued) return
    this.flushQueued = true
    queueMicrotask(() => {
      this.flushQueued = false
      const names = [...this.changed]
      this.changed.clear()
      for (const n of names) {
        const d = this.deployments.get(n)
        for (const l of this.listeners) l(n, d)
      }
    })
  }
}

function servedKeys(d: Deployment): Set<string> {
  const keys = new Set([modelKey(d.project, d.model, d.version)])
  for (const r of d.replicas) keys.add(modelKey(d.project, d.model, r.version))
  return keys
}

/** An inference key without its hash (what commands return and the API shows). */
export function keyView(k: InferenceKey): Omit<InferenceKey, 'secretHash'> {
  const { secretHash: _hash, ...rest } = k
  return rest
}

function notFound(c: pb.IDeleteModel): RegistryError {
  return new RegistryError('MODEL_NOT_FOUND', `no version ${c.version} of model ${c.name} in ${c.project}`)
}

function addTo(m: Map<string, Set<string>>, k: string, v: string): void {
  let s = m.get(k)
  if (s === undefined) m.set(k, (s = new Set()))
  s.add(v)
}

function dropFrom(m: Map<string, Set<string>>, k: string, v: string): void {
  const s = m.get(k)
  if (s === undefined) return
  s.delete(v)
  if (s.size === 0) m.delete(k)
}

/** The serving module, for createMetaStateMachine's `modules`. */
export function servingModule(): MetaModuleFactory<ServingModule> {
  return (store) => new ServingModule(store)
}
