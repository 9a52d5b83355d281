/**
 * Serving's node <-> metadata node protocol (proto/cluster.proto `ServingMeta*`, on
 * {@link SERVING_META_PROTOCOL}): a node without a metadata replica serves the Open Inference Protocol and
 * runs the replicas placed on it through a metadata node, as a gpu-only node runs its jobs
 * (sched-meta.ts; both ask through meta-ask.ts):
 *
 *  - `deployments`: the deployment table and the model versions of the replicas placed on the asker (its
 *    agent polls it: there is no apply stream on such a node);
 *  - `authorize`: whether a principal (authenticated by the asking node through a metadata node, as every
 *    request there is: auth-module.ts) may use a deployment's /v2 routes — the registry's `mayInfer` on the
 *    metadata replica after a read barrier, answered with the deployment's row as it is now. Asked on
 *    every request, with no cache: a member removed or a key revoked is refused by the next request;
 *  - `inferenceKey`: an inference key's principal (the registry's check, after a read barrier);
 *  - `report`, `files`, `read`, `log`: a replica's state (ReportReplica, proposed as the cluster), its
 *    model version's files, and its sampled request records — each only for replicas placed on the
 *    asking node, which is the libp2p peer that opened the stream, never a name in the request.
 */
import type { Principal } from '../../auth/index.js'
import { HopsError } from '../../errors.js'
import { hopsd } from '../../proto/cluster.js'
import {
  REGISTRY_ERRORS,
  RegistryError,
  type Deployment,
  type ModelFiles,
  type ModelVersion,
  type RegistryService,
  type ReplicaReport,
  type ServingModule,
} from '../../serving/index.js'
import type { Logger } from '../logger.js'
import { handleRequests, type P2PHost } from '../p2p/index.js'
import { metadataAsker } from './meta-ask.js'
import type { MetadataNode } from './metadata-module.js'

import pb = hopsd.cluster

export const SERVING_META_PROTOCOL = '/hopsd/serving-meta/1.0.0'
/** Largest request or reply: the deployment table (each row a few hundred bytes per replica). */
const SERVING_META_FRAME_BYTES_MAX = 8 << 20
/** Requests in flight per connection (a node's inference requests each ask once). */
const SERVING_META_INFLIGHT_MAX = 256
const SERVING_META_TIMEOUT_MS = 10_000
/** Bytes of a model file one `read` answers at most. */
export const MODEL_READ_BYTES_MAX = 1 << 20

/** What the metadata node serves the protocol with. */
export interface ServingMetaServerInit {
  readonly host: () => P2PHost
  readonly local: MetadataNode
  readonly registry: RegistryService
  readonly serving: () => ServingModule
  /** Proposes a replica report as the cluster (`node` set by this server: the asking peer). */
  readonly report: (r: ReplicaReport & { node: string }, signal: AbortSignal) => Promise<void>
  /** The metadata node's own reader of model files (as the cluster). */
  readonly files: ModelFiles
  /** `length` bytes of `path` from `offset`, as the cluster. */
  readonly readRange: (
    path: string,
    offset: number,
    length: number,
    signal: AbortSignal,
  ) => Promise<Uint8Array>
  /** Writes a batch of request records of `deployment` from `node` to the project's Logs dataset. */
  readonly writeLog: (
    node: string,
    to: { project: string; deployment: string },
    lines: string,
    signal: AbortSignal,
  ) => Promise<void>
  readonly logger: Logger
}

/** Registers the handler; resolves with its removal. */
export async function serveServingMeta(init: ServingMetaServerInit): Promise<() => Promise<void>> {
  const { local, registry } = init
  const serving = init.serving
  const barrier = (signal: AbortSignal): Promise<void> => local.group.readBarrier({ signal })
  const reply = (r: pb.ServingMetaReply.$Properties): Uint8Array => pb.ServingMetaReply.encode(r).finish()

  /** The model version directories of the replicas placed on `node` (the only ones it may read). */
  const dirsOf = (node: string): Map<string, ModelVersion> => {
    const out = new Map<string, ModelVersion>()
    for (const d of serving().listDeployments())
      for (const r of d.replicas) {
        if (r.node !== node) continue
        const m = serving().model(d.project, d.model, r.version)
        if (m !== undefined) out.set(m.path, m)
      }
    return out
  }
  const placedOn = (d: Deployment | undefined, replicaId: string | undefined, node: string): boolean =>
    d !== undefined &&
    d.replicas.some((r) => r.node === node && (replicaId === undefined || r.id === replicaId))

  const handle = async (from: string, body: Uint8Array, signal: AbortSignal): Promise<Uint8Array> => {
    let req: pb.ServingMetaRequest
    try {
      req = pb.ServingMetaRequest.decode(body)
    } catch {
      throw new HopsError('INVALID_ARGUMENT', 'the serving request does not decode')
    }
    switch (req.op) {
      case 'deployments': {
        await barrier(signal)
        return reply({
          deployments: {
            deploymentsJson: JSON.stringify(serving().listDeployments()),
            modelsJson: JSON.stringify([...dirsOf(from).values()]),
          },
        })
      }
      case 'authorize': {
        const a = req.authorize!
        const caller = principalOf(a.principalJson ?? '')
        const name = a.deployment ?? ''
        await barrier(signal)
        const d = serving().deployment(name)
        await registry.mayInfer(caller, name, d, { signal })
        return reply({ authorize: { deploymentJson: d === undefined ? '' : JSON.stringify(d) } })
      }
      case 'inferenceKey': {
        const p = await registry.authenticateInferenceKey(req.inferenceKey!.key ?? '', { signal })
        return reply({ inferenceKey: { principalJson: JSON.stringify(p) } })
      }
      case 'report': {
        const r = req.report!
        await barrier(signal)
        const name = r.deployment ?? ''
        const replicaId = r.replicaId ?? ''
        if (!placedOn(serving().deployment(name), replicaId, from))
          throw new RegistryError(
            'DEPLOYMENT_CONFLICT',
            `replica ${replicaId} of ${name} is not placed on ${from}`,
          )
        await init.report(
          {
            name,
            replicaId,
            state: r.state ?? '',
            error: r.error ?? '',
            restarts: r.restarts ?? 0,
            inflight: r.inflight ?? 0,
            node: from,
          },
          signal,
        )
        return reply({ report: {} })
      }
      case 'files': {
        const dir = req.files!.dir ?? ''
        await barrier(signal)
        if (!dirsOf(from).has(dir))
          throw new RegistryError('MODEL_ACCESS_DENIED', `no replica on ${from} serves ${dir}`)
        return reply({ files: { paths: await init.files.list(dir, signal) } })
      }
      case 'read': {
        const path = req.read!.path ?? ''
        const offset = Number(req.read!.offset ?? 0)
        await barrier(signal)
        const dir = [...dirsOf(from).keys()].find((d) => path.startsWith(`${d}/`))
        const rel = dir === undefined ? [] : path.slice(dir.length + 1).split('/')
        if (dir === undefined || rel.some((c) => c === '' || c === '.' || c === '..'))
          throw new RegistryError('MODEL_ACCESS_DENIED', `no replica on ${from} serves ${path}`)
        const data = await init.readRange(path, offset, MODEL_READ_BYTES_MAX, signal)
        return reply({ read: { data, eof: data.length < MODEL_READ_BYTES_MAX } })
      }
      case 'log': {
        const l = req.log!
        const deployment = l.deployment ?? ''
        await barrier(signal)
        const d = serving().deployment(deployment)
        if (!placedOn(d, undefined, from) || d!.project !== l.project)
          throw new RegistryError('MODEL_ACCESS_DENIED', `no replica on ${from} serves ${deployment}`)
        await init.writeLog(
          from,
          { project: d!.project, deployment },
          Buffer.from(l.lines ?? new Uint8Array()).toString('utf8'),
          signal,
        )
        return reply({ log: {} })
      }
      default:
        throw new HopsError('INVALID_ARGUMENT', `serving request ${req.op ?? '(none)'} is not served`)
    }
  }

  return handleRequests(init.host(), SERVING_META_PROTOCOL, handle, {
    frameBytesMax: SERVING_META_FRAME_BYTES_MAX,
    inflightMax: SERVING_META_INFLIGHT_MAX,
    timeoutMs: SERVING_META_TIMEOUT_MS,
    logger: init.logger,
  })
}

/** A principal as the asking node sent it (from the authenticate protocol): its shape, checked. */
function principalOf(json: string): Principal {
  let p: unknown
  try {
    p = JSON.parse(json)
  } catch {
    p = undefined
  }
  const o = p as Partial<Principal> | undefined
  if (
    o === undefined ||
    o === null ||
    typeof o !== 'object' ||
    typeof o.user !== 'string' ||
    !Array.isArray(o.groups) ||
    (o.project !== undefined && typeof o.project !== 'string') ||
    (o.deployment !== undefined && typeof o.deployment !== 'string')
  )
    throw new HopsError('INVALID_ARGUMENT', 'the serving request carries no principal')
  return o as Principal
}

/** The serving node's side: what a node without a replica asks metadata nodes. */
export interface ServingMetaClient {
  /** Every deployment, and the model versions of the replicas placed on this node. */
  deployments(signal?: AbortSignal): Promise<{ deployments: Deployment[]; models: ModelVersion[] }>
  /**
   * Refuses (MODEL_ACCESS_DENIED) unless `caller` may use deployment `name`'s /v2 routes now; resolves
   * with the deployment's row as it is now (undefined: there is none).
   */
  authorize(caller: Principal, name: string, signal?: AbortSignal): Promise<Deployment | undefined>
  /** An inference key's principal (refused: INFERENCE_KEY_INVALID). */
  inferenceKey(key: string, signal?: AbortSignal): Promise<Principal>
  report(r: ReplicaReport, signal?: AbortSignal): Promise<void>
  /** The model files of the replicas placed here, as the agent reads them. */
  readonly files: ModelFiles
  /** A batch of sampled request records of `deployment`, written by a metadata node. */
  log(to: { project: string; deployment: string }, lines: string, signal: AbortSignal): Promise<void>
}

export interface ServingMetaClientInit {
  readonly host: () => P2PHost
  /** Live metadata nodes, best first (the cluster client's). */
  readonly targets: () => readonly { id: string }[]
}

export function servingMetaClient(init: ServingMetaClientInit): ServingMetaClient {
  const send = metadataAsker({
    host: init.host,
    targets: init.targets,
    protocol: SERVING_META_PROTOCOL,
    timeoutMs: SERVING_META_TIMEOUT_MS + 2_000,
    frameBytesMax: SERVING_META_FRAME_BYTES_MAX,
    // The registry's refusals (access, keys, conflicts) would be the same on every metadata node.
    refusal: (code, message) =>
      Object.hasOwn(REGISTRY_ERRORS, code)
        ? new RegistryError(code as keyof typeof REGISTRY_ERRORS, message)
        : undefined,
  })
  const ask = async <K extends keyof pb.ServingMetaReply & string>(
    r: pb.ServingMetaRequest.$Properties,
    want: K,
    signal?: AbortSignal,
  ): Promise<NonNullable<pb.ServingMetaReply[K]>> => {
    const out = pb.ServingMetaReply.decode(await send(pb.ServingMetaRequest.encode(r).finish(), signal))
    const v = out[want]
    if (v === null || v === undefined)
      throw new HopsError('UNAVAILABLE', 'the metadata node answered something else')
    return v as NonNullable<pb.ServingMetaReply[K]>
  }

  return {
    async deployments(signal) {
      const r = await ask({ deployments: {} }, 'deployments', signal)
      return {
        deployments: JSON.parse(r.deploymentsJson || '[]') as Deployment[],
        models: JSON.parse(r.modelsJson || '[]') as ModelVersion[],
      }
    },
    async authorize(caller, name, signal) {
      const r = await ask(
        { authorize: { principalJson: JSON.stringify(caller), deployment: name } },
        'authorize',
        signal,
      )
      return !r.deploymentJson ? undefined : (JSON.parse(r.deploymentJson) as Deployment)
    },
    async inferenceKey(key, signal) {
      const r = await ask({ inferenceKey: { key } }, 'inferenceKey', signal)
      return JSON.parse(r.principalJson ?? 'null') as Principal
    },
    async report(r, signal) {
      await ask(
        {
          report: {
            deployment: r.name,
            replicaId: r.replicaId,
            state: r.state,
            error: r.error,
            restarts: r.restarts,
            inflight: r.inflight,
          },
        },
        'report',
        signal,
      )
    },
    files: {
      async list(dir, signal) {
        return (await ask({ files: { dir } }, 'files', signal)).paths ?? []
      },
      async *read(path, signal) {
        for (let offset = 0; ;) {
          const r = await ask({ read: { path, offset } }, 'read', signal)
          const data = r.data ?? new Uint8Array()
          if (data.length > 0) yield data
          offset += data.length
          if (r.eof || data.length === 0) return
        }
      },
    },
    async log(to, lines, signal) {
      await ask(
        { log: { project: to.project, deployment: to.deployment, lines: Buffer.from(lines, 'utf8') } },
        'log',
        signal,
      )
    },
  }
}
