/**
 * KServe's Open Inference Protocol v2 (REST) on every node, for the deployments of src/serving:
 * - `GET  /v2`, `GET /v2/health/live`, `GET /v2/health/ready`              (no credential needed)
 * - `GET  /v2/models/{name}[/versions/{v}]`                                 model metadata (-1: variable)
 * - `GET  /v2/models/{name}[/versions/{v}]/ready`                           200 {name, ready: true}, or 503
 * - `POST /v2/models/{name}[/versions/{v}]/infer`                           the inference
 * `{name}` is the deployment's name. A request goes to a ready replica: this node's own first, then its
 * zone's, then any (src/serving/deploy/router.ts); a replica that answers 503 (not ready, overloaded,
 * crashed) or whose node cannot be reached is skipped for the next one. A request forwarded to another
 * node carries the caller's credential as it came (that node authenticates and authorizes the caller
 * itself) and `x-hopsd-replica: <id>`, which pins it to that node's replica. Errors are the protocol's
 * `{"error": "..."}`. Who may infer: a member of the deployment's project, acting in it (a project key,
 * `X-Hopsd-Project`) or with its own credential; admins acting in no project; an inference key issued for
 * that very deployment (`Authorization: Bearer hik.…`: the /v2/models routes of its deployment, nothing
 * else — src/serving/registry/service.ts). Checked on every request, on the entry node and again on the node of a pinned replica,
 * from the projects tables after a read barrier — no cache, so a member removed is refused by its next
 * request on every node.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errorInfo } from '../../errors.js'
import {
  chooseReplicas,
  encodeInferResponse,
  isRetryElsewhere,
  ServingError,
  type AnsweredRequest,
  type Deployment,
  type InferenceRequest,
  type Replica,
  type ReplicaRecord,
} from '../../serving/index.js'
import type { Principal } from '../../auth/index.js'
import { callerOf } from '../auth-hook.js'
import type { ApiRoutes } from '../server.js'

export interface ForwardedAnswer {
  readonly status: number
  readonly body: Buffer
}

export interface InferenceRoutesDeps {
  /**
   * Refuses (MODEL_ACCESS_DENIED) unless `caller` may use deployment `name`'s routes now, and resolves
   * with the deployment's row (undefined: none). A metadata node decides on its replica after a read
   * barrier (RegistryService.mayInfer); a node without one asks a metadata node, on every request.
   */
  readonly authorize: (
    caller: Principal,
    name: string,
    signal: AbortSignal,
  ) => Promise<Deployment | undefined>
  readonly here: { readonly node: string; readonly zone: string }
  /** The replica this node runs under `id`, if any. */
  readonly local: (id: string) => Replica | undefined
  /** Sends the request to `node`'s API; rejects when the node cannot be reached. */
  readonly forward: (
    node: string,
    req: { method: 'GET' | 'POST'; path: string; headers: Record<string, string>; body?: Buffer },
    signal: AbortSignal,
  ) => Promise<ForwardedAnswer>
  /** Whether this node can route requests now (its view of the deployments is current enough). */
  readonly ready: () => boolean
  readonly serverVersion: string
  /** Largest inference body (default 16 MiB, the replicas' bodyBytesMax). */
  readonly bodyBytesMax?: number
  /**
   * Request/response logging (src/serving/request-log.ts): asked on the node that answers from its own
   * replica whether to log the request, and handed it after the answer was sent.
   */
  readonly requestLog?: {
    sampled(deployment: string): boolean
    record(r: AnsweredRequest): void
  }
}

export const REPLICA_HEADER = 'x-hopsd-replica'
/** How long the access check of one request may take (a read barrier, or a metadata node's answer). */
const AUTHORIZE_TIMEOUT_MS = 15_000
/** Replicas one request tries at most. */
const ATTEMPTS_MAX = 3
/** Headers that carry the caller's credential (the query string travels whole). */
const CREDENTIAL_HEADERS = ['authorization', 'cookie']

const oipErrorBody = { type: 'object', properties: { error: { type: 'string' } } } as const
const anyObject = { type: 'object', additionalProperties: true } as const

export function inferenceRoutes(deps: InferenceRoutesDeps): ApiRoutes {
  const bodyBytesMax = deps.bodyBytesMax ?? 16 << 20

  function fail(reply: FastifyReply, err: unknown): FastifyReply {
    if (err instanceof ServingError) return reply.status(err.httpStatus).send({ error: err.message })
    const { code, row } = errorInfo(err)
    const message = code === 'INTERNAL' ? 'internal error' : (err as Error).message
    if (code === 'INTERNAL') reply.log.error({ err }, 'inference route failed')
    return reply.status(row.httpStatus).send({ error: message })
  }

  type Kind = 'metadata' | 'ready' | 'infer'

  async function serve(req: FastifyRequest, reply: FastifyReply, kind: Kind): Promise<FastifyReply> {
    const p = req.params as { name: string; version?: string }
    try {
      const caller = callerOf(req)
      const d = await deps.authorize(caller, p.name, AbortSignal.timeout(AUTHORIZE_TIMEOUT_MS))
      const pinned = req.headers[REPLICA_HEADER]
      if (typeof pinned === 'string') {
        // Pinned by the node that routed it: only a replica of this very deployment (the caller was
        // authorized for it just above), never another deployment's by its id.
        const r = d?.replicas.find((x) => x.id === pinned)
        if (d === undefined || r === undefined)
          throw new ServingError('REPLICA_NOT_READY', `replica ${pinned} does not serve ${p.name}`)
        return await serveLocal(reply, kind, d, pinned, req.body as Buffer)
      }
      if (kind === 'ready') {
        let ready = true
        try {
          chooseReplicas(d, p.name, p.version, deps.here)
        } catch (err) {
          if ((err as { code?: string }).code !== 'NO_READY_REPLICA') throw err
          ready = false
        }
        return reply.status(ready ? 200 : 503).send({ name: p.name, ready })
      }
      const choice = chooseReplicas(d, p.name, p.version, deps.here)
      const abort = new AbortController()
      reply.raw.once('close', () => {
        if (!reply.raw.writableEnded) abort.abort()
      })
      let last: unknown
      for (const r of choice.replicas.slice(0, ATTEMPTS_MAX)) {
        if (r.node === deps.here.node) {
          const replica = deps.local(r.id)
          if (replica === undefined || replica.state().state !== 'ready') continue
          try {
            return await answerLocal(reply, kind, d!, r.id, replica, req.body as Buffer, abort.signal)
          } catch (err) {
            if (err instanceof ServingError && isRetryElsewhere(err.httpStatus)) {
              last = err
              continue
            }
            throw err
          }
        }
        let answer: ForwardedAnswer
        try {
          answer = await deps.forward(r.node, forwardOf(req, kind, p.name, r), abort.signal)
        } catch (err) {
          last = err
          continue
        }
        if (isRetryElsewhere(answer.status)) {
          last = new ServingError(
            'REPLICA_NOT_READY',
            `replica ${r.id} on ${r.node}: ${answer.body.toString('utf8')}`,
          )
          continue
        }
        return reply.status(answer.status).type('application/json').send(answer.body)
      }
      throw last instanceof ServingError
        ? last
        : new ServingError(
            'REPLICA_NOT_READY',
            `no replica of ${p.name} could take the request${last ? `: ${(last as Error).message}` : ''}`,
          )
    } catch (err) {
      return fail(reply, err)
    }
  }

  async function serveLocal(
    reply: FastifyReply,
    kind: Kind,
    d: Deployment,
    id: string,
    body: Buffer,
  ): Promise<FastifyReply> {
    const replica = deps.local(id)
    if (replica === undefined)
      throw new ServingError('REPLICA_NOT_READY', `replica ${id} does not run on this node`)
    const abort = new AbortController()
    reply.raw.once('close', () => {
      if (!reply.raw.writableEnded) abort.abort()
    })
    return answerLocal(reply, kind, d, id, replica, body, abort.signal)
  }

  async function answerLocal(
    reply: FastifyReply,
    kind: Kind,
    d: Deployment,
    replicaId: string,
    replica: Replica,
    body: Buffer,
    signal: AbortSignal,
  ): Promise<FastifyReply> {
    const name = d.name
    if (kind === 'metadata') {
      const m = replica.metadata()
      if (m === undefined) throw new ServingError('REPLICA_NOT_READY', `replica of ${name} is not ready`)
      return reply.send({ ...m, name, versions: replica.version === undefined ? [] : [replica.version] })
    }
    const log = deps.requestLog !== undefined && deps.requestLog.sampled(name) ? deps.requestLog : undefined
    if (log === undefined) {
      const request = replica.parse(body ?? Buffer.alloc(0))
      const result = await replica.infer(request, signal)
      return reply
        .type('application/json')
        .send(encodeInferResponse(result, { modelName: name, modelVersion: replica.version, id: request.id }))
    }
    // A sampled request: the same, timed, and handed to the log once the answer is on its way.
    const startMs = Date.now()
    const t0 = performance.now()
    const base = {
      deployment: name,
      project: d.project,
      model: d.model,
      modelVersion: replica.version ?? d.version,
      replica: replicaId,
      node: deps.here.node,
      startMs,
    }
    let request: InferenceRequest | undefined
    try {
      request = replica.parse(body ?? Buffer.alloc(0))
      const result = await replica.infer(request, signal)
      const sent = reply
        .type('application/json')
        .send(encodeInferResponse(result, { modelName: name, modelVersion: replica.version, id: request.id }))
      const latencyMs = performance.now() - t0
      const req = request
      setImmediate(() => log.record({ ...base, id: req.id, status: 200, latencyMs, request: req, result }))
      return sent
    } catch (err) {
      const status = err instanceof ServingError ? err.httpStatus : errorInfo(err).row.httpStatus
      // An answer the entry node retries on another replica is logged there, not here.
      if (!isRetryElsewhere(status)) {
        const latencyMs = performance.now() - t0
        const req = request
        const error = (err as Error).message
        setImmediate(() =>
          log.record({
            ...base,
            id: req?.id ?? idOf(body),
            status,
            latencyMs,
            ...(req ? { request: req } : {}),
            error,
          }),
        )
      }
      throw err
    }
  }

  /** The `id` of a body the replica refused, if it is JSON with one (for the request log only). */
  function idOf(body: Buffer | undefined): string | undefined {
    try {
      const id = (JSON.parse((body ?? Buffer.alloc(0)).toString('utf8')) as { id?: unknown }).id
      return typeof id === 'string' ? id : undefined
    } catch {
      return undefined
    }
  }

  function forwardOf(req: FastifyRequest, kind: Kind, name: string, r: ReplicaRecord) {
    const headers: Record<string, string> = { [REPLICA_HEADER]: r.id }
    for (const h of CREDENTIAL_HEADERS) {
      const v = req.headers[h]
      if (typeof v === 'string') headers[h] = v
    }
    const q = req.url.indexOf('?')
    const query = q < 0 ? '' : req.url.slice(q)
    const base = `/v2/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(r.version)}`
    if (kind === 'infer') {
      headers['content-type'] = 'application/json'
      return { method: 'POST' as const, path: `${base}/infer${query}`, headers, body: req.body as Buffer }
    }
    return { method: 'GET' as const, path: `${base}${query}`, headers }
  }

  const modelParams = {
    type: 'object',
    required: ['name'],
    properties: { name: { type: 'string', maxLength: 128 }, version: { type: 'string', maxLength: 64 } },
  } as const
  const errs = {
    400: oipErrorBody,
    401: oipErrorBody,
    403: oipErrorBody,
    404: oipErrorBody,
    413: oipErrorBody,
    500: oipErrorBody,
    502: oipErrorBody,
    503: oipErrorBody,
    504: oipErrorBody,
  }

  return {
    name: 'inference',
    async register(app: FastifyInstance) {
      await app.register(async (scope) => {
        // The replica parses the body itself (size, JSON, tensors): hand it the bytes.
        scope.removeAllContentTypeParsers()
        scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: bodyBytesMax }, (_req, body, done) =>
          done(null, body),
        )
        scope.get(
          '/v2',
          {
            config: { auth: 'public' },
            schema: {
              summary: 'Server metadata (Open Inference Protocol v2)',
              tags: ['inference'],
              response: { 200: anyObject },
            },
          },
          async () => ({ name: 'hopsd', version: deps.serverVersion, extensions: [] }),
        )
        scope.get(
          '/v2/health/live',
          {
            config: { auth: 'public' },
            schema: { summary: 'Server liveness', tags: ['inference'], response: { 200: anyObject } },
          },
          async () => ({ live: true }),
        )
        scope.get(
          '/v2/health/ready',
          {
            config: { auth: 'public' },
            schema: {
              summary: 'Server readiness: this node can route inference requests',
              tags: ['inference'],
              response: { 200: anyObject, 503: anyObject },
            },
          },
          async (_req, reply) => {
            const ready = deps.ready()
            return reply.status(ready ? 200 : 503).send({ ready })
          },
        )
        for (const prefix of ['/v2/models/:name', '/v2/models/:name/versions/:version']) {
          scope.get(
            prefix,
            {
              config: { inferenceKey: true },
              schema: {
                summary: 'Model metadata: inputs and outputs (-1: a variable dimension)',
                tags: ['inference'],
                params: modelParams,
                response: { 200: anyObject, ...errs },
              },
            },
            (req, reply) => serve(req, reply, 'metadata'),
          )
          scope.get(
            `${prefix}/ready`,
            {
              config: { inferenceKey: true },
              schema: {
                summary: 'Model readiness: 200 when a replica is ready, 503 otherwise',
                tags: ['inference'],
                params: modelParams,
                response: { 200: anyObject, ...errs },
              },
            },
            (req, reply) => serve(req, reply, 'ready'),
          )
          scope.post(
            `${prefix}/infer`,
            {
              config: { inferenceKey: true },
              schema: {
                summary: 'An inference (Open Inference Protocol v2 JSON)',
                tags: ['inference'],
                params: modelParams,
                response: { ...errs },
              },
            },
            (req, reply) => serve(req, reply, 'infer'),
          )
        }
      })
    },
  }
}
