/**
 * The model registry and deployments (src/serving), for the verified caller:
 * - `POST   /api/v1/models`                               {project, name, version, framework, path?, inputs?,
 *                                                          outputs?, metrics?, description?, trainingDataset?,
 *                                                          program?, jobId?, modelFile?, command?} → 201
 * - `GET    /api/v1/models?project=P[&name=N]`             the project's model versions
 * - `GET    /api/v1/models?dataset=/path`                  lineage the other way: models trained from it
 * - `GET    /api/v1/models/:project/:name/:version`        one version, with its lineage and deployments
 * - `DELETE /api/v1/models/:project/:name/:version[?keepFiles=true]`
 * - `PUT    /api/v1/models/:project/:name/:version/files/:file`   the file's bytes as the body, the
 *                                                          registration (as POST, without project, name,
 *                                                          version) in the header `X-Hopsd-Model` (JSON) →
 *                                                          201: uploaded and registered in one step
 * - `GET    /api/v1/models/:project/:name/:version/files`  the version's files {path, length}
 * - `GET    /api/v1/models/:project/:name/:version/files/*` one file's bytes
 * - `POST   /api/v1/deployments`                          {name, project, model, version, replicas {min, max},
 *                                                          cpus, memoryMiB} → 201
 * - `GET    /api/v1/deployments[?project=P]`, `GET /api/v1/deployments/:name`  replicas, nodes, zones, state
 * - `PATCH  /api/v1/deployments/:name`                     {version?, replicas?}: a rolling update
 * - `DELETE /api/v1/deployments/:name`                     stops its replicas
 * - `POST   /api/v1/deployments/:name/keys`                {name?} → 201 {id, key, …}: an inference key, shown once
 * - `GET    /api/v1/deployments/:name/keys`                the deployment's inference keys (never the secrets)
 * - `DELETE /api/v1/deployments/:name/keys/:id`            revokes one (refused by the next request on every node)
 * Bodies are validated by the registry itself (no coercion, unknown fields refused): the route's schema
 * only says "an object". Who may: members of the project (src/serving/registry/service.ts).
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import { Readable } from 'node:stream'
import type { Principal } from '../../auth/index.js'
import { RegistryError, type RegistryService } from '../../serving/index.js'
import { callerOf, forwardedCredentials, type ForwardedCredentials } from '../auth-hook.js'
import { errorBodySchema } from '../error-mapper.js'
import type { ApiRoutes } from '../server.js'

export interface ModelsRoutesDeps {
  /** The registry (throws UNAVAILABLE on a node without a metadata replica). */
  readonly registry: () => RegistryService
  /**
   * Streams `body` into the new file `path` as the caller acting in `project` (the caller's credential
   * as it came, for the node's own WebHDFS: the file system decides and moves large files into blocks).
   * Without it the upload route answers 503.
   */
  readonly writeFile?: (
    path: string,
    project: string,
    credentials: ForwardedCredentials,
    body: Readable,
    signal: AbortSignal,
  ) => Promise<void>
}

/** The header of an upload that carries the registration (JSON). */
export const MODEL_SPEC_HEADER = 'x-hopsd-model'
// Well within Node's 16 KiB of request headers (a longer header would be refused by the HTTP parser, 431).
const MODEL_SPEC_BYTES_MAX = 8 * 1024

const anyObject = { type: 'object', additionalProperties: true } as const
const errors = {
  400: errorBodySchema,
  401: errorBodySchema,
  403: errorBodySchema,
  404: errorBodySchema,
  409: errorBodySchema,
  503: errorBodySchema,
}
const versionParams = {
  type: 'object',
  required: ['project', 'name', 'version'],
  properties: {
    project: { type: 'string', maxLength: 128 },
    name: { type: 'string', maxLength: 128 },
    version: { type: 'string', maxLength: 64 },
  },
} as const
const nameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', maxLength: 128 } },
} as const
const keyParams = {
  type: 'object',
  required: ['name', 'id'],
  properties: {
    name: { type: 'string', maxLength: 128 },
    id: { type: 'string', pattern: '^[0-9a-f]{16}$' },
  },
} as const
const keyView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    deployment: { type: 'string' },
    project: { type: 'string' },
    name: { type: 'string' },
    createdBy: { type: 'string' },
    createdMs: { type: 'integer' },
    revokedMs: { type: 'integer' },
  },
} as const

/** Aborts when the client goes away before the answer was sent (a POST's request closes once read). */
function signalOf(reply: FastifyReply): AbortSignal {
  const abort = new AbortController()
  reply.raw.once('close', () => {
    if (!reply.raw.writableEnded) abort.abort()
  })
  return abort.signal
}

export function modelsRoutes(deps: ModelsRoutesDeps): ApiRoutes {
  return {
    name: 'models',
    async register(app: FastifyInstance) {
      await app.register(async (scope) => uploadRoutes(scope, deps))

      app.post(
        '/api/v1/models',
        {
          schema: {
            summary:
              'Register a model version: its directory /Projects/<project>/Models/<name>/<version> is already in the file system',
            tags: ['models'],
            body: { type: 'object', description: 'validated by the registry (unknown fields refused)' },
            response: { 201: anyObject, ...errors },
          },
        },
        async (req, reply) => {
          const m = await deps
            .registry()
            .registerModel(callerOf(req), req.body, { signal: signalOf(reply), credential: req.credentials })
          return reply.status(201).send(m)
        },
      )

      app.get(
        '/api/v1/models',
        {
          schema: {
            summary: "A project's model versions, or (dataset=) the models trained from a dataset",
            tags: ['models'],
            querystring: {
              type: 'object',
              properties: {
                project: { type: 'string', maxLength: 128 },
                name: { type: 'string', maxLength: 128 },
                dataset: { type: 'string', maxLength: 4096 },
              },
            },
            response: {
              200: { type: 'object', properties: { models: { type: 'array', items: anyObject } } },
              ...errors,
            },
          },
        },
        async (req) => {
          const q = req.query as { project?: string; name?: string; dataset?: string }
          return { models: await deps.registry().listModels(callerOf(req), q) }
        },
      )

      app.get(
        '/api/v1/models/:project/:name/:version',
        {
          schema: {
            summary:
              'One model version: signature, metrics, lineage (dataset, program, job) and the deployments serving it',
            tags: ['models'],
            params: versionParams,
            response: { 200: anyObject, ...errors },
          },
        },
        async (req) => {
          const p = req.params as { project: string; name: string; version: string }
          return deps.registry().getModel(callerOf(req), p.project, p.name, p.version)
        },
      )

      app.delete(
        '/api/v1/models/:project/:name/:version',
        {
          schema: {
            summary: 'Forget a model version and delete its directory (keepFiles=true keeps the files)',
            tags: ['models'],
            params: versionParams,
            querystring: { type: 'object', properties: { keepFiles: { type: 'boolean', default: false } } },
            response: { 200: anyObject, ...errors },
          },
        },
        async (req, reply) => {
          const p = req.params as { project: string; name: string; version: string }
          const q = req.query as { keepFiles?: boolean }
          return deps.registry().deleteModel(callerOf(req), p.project, p.name, p.version, {
            keepFiles: q.keepFiles,
            signal: signalOf(reply),
            credential: req.credentials,
          })
        },
      )

      app.post(
        '/api/v1/deployments',
        {
          schema: {
            summary:
              'Deploy a model version: desired state the serving nodes reconcile into replicas across zones',
            tags: ['models'],
            body: {
              type: 'object',
              description: '{name, project, model, version, replicas {min, max}, cpus, memoryMiB}',
            },
            response: { 201: anyObject, ...errors },
          },
        },
        async (req, reply) => {
          const d = await deps.registry().createDeployment(callerOf(req), req.body, {
            signal: signalOf(reply),
            credential: req.credentials,
          })
          return reply.status(201).send(d)
        },
      )

      app.get(
        '/api/v1/deployments',
        {
          schema: {
            summary: 'The deployments the caller may see, with their replicas (node, zone, state)',
            tags: ['models'],
            querystring: { type: 'object', properties: { project: { type: 'string', maxLength: 128 } } },
            response: {
              200: { type: 'object', properties: { deployments: { type: 'array', items: anyObject } } },
              ...errors,
            },
          },
        },
        async (req) => {
          const q = req.query as { project?: string }
          return { deployments: await deps.registry().listDeployments(callerOf(req), q.project) }
        },
      )

      app.get(
        '/api/v1/deployments/:name',
        {
          schema: {
            summary: 'One deployment: spec, replicas with their nodes, zones and states',
            tags: ['models'],
            params: nameParams,
            response: { 200: anyObject, ...errors },
          },
        },
        async (req) => deps.registry().getDeployment(callerOf(req), (req.params as { name: string }).name),
      )

      app.patch(
        '/api/v1/deployments/:name',
        {
          schema: {
            summary:
              'Move a deployment to another model version (a rolling update) and/or new replica bounds',
            tags: ['models'],
            params: nameParams,
            body: { type: 'object', description: '{version?, replicas? {min, max}}' },
            response: { 200: anyObject, ...errors },
          },
        },
        async (req, reply) =>
          deps.registry().updateDeployment(callerOf(req), (req.params as { name: string }).name, req.body, {
            signal: signalOf(reply),
            credential: req.credentials,
          }),
      )

      app.delete(
        '/api/v1/deployments/:name',
        {
          schema: {
            summary: 'Delete a deployment: its replicas drain and stop',
            tags: ['models'],
            params: nameParams,
            response: { 200: anyObject, ...errors },
          },
        },
        async (req, reply) =>
          deps.registry().deleteDeployment(callerOf(req), (req.params as { name: string }).name, {
            signal: signalOf(reply),
            credential: req.credentials,
          }),
      )

      app.post(
        '/api/v1/deployments/:name/keys',
        {
          schema: {
            summary:
              "Issue an inference key for the deployment (Data Owners): it authorises the deployment's /v2 routes only; the key is shown once",
            tags: ['models'],
            params: nameParams,
            body: {
              type: 'object',
              additionalProperties: false,
              properties: { name: { type: 'string', maxLength: 128, description: 'a label for the key' } },
            },
            response: {
              201: {
                type: 'object',
                properties: {
                  ...keyView.properties,
                  key: { type: 'string', description: 'hik.<id>.<secret>' },
                },
              },
              ...errors,
            },
          },
        },
        async (req, reply) => {
          const k = await deps
            .registry()
            .createInferenceKey(callerOf(req), (req.params as { name: string }).name, req.body ?? {}, {
              signal: signalOf(reply),
            })
          return reply.status(201).send(k)
        },
      )

      app.get(
        '/api/v1/deployments/:name/keys',
        {
          schema: {
            summary: "The deployment's inference keys, revoked ones too (never their secrets)",
            tags: ['models'],
            params: nameParams,
            response: {
              200: { type: 'object', properties: { keys: { type: 'array', items: keyView } } },
              ...errors,
            },
          },
        },
        async (req) => ({
          keys: await deps.registry().listInferenceKeys(callerOf(req), (req.params as { name: string }).name),
        }),
      )

      app.delete(
        '/api/v1/deployments/:name/keys/:id',
        {
          schema: {
            summary: 'Revoke an inference key (Data Owners): refused by the next request on every node',
            tags: ['models'],
            params: keyParams,
            response: { 200: keyView, ...errors },
          },
        },
        async (req, reply) => {
          const p = req.params as { name: string; id: string }
          return deps.registry().revokeInferenceKey(callerOf(req), p.name, p.id, { signal: signalOf(reply) })
        },
      )
    },
  }
}

const filesParams = {
  type: 'object',
  required: ['project', 'name', 'version', 'file'],
  properties: {
    ...versionParams.properties,
    file: { type: 'string', maxLength: 255, pattern: '^[A-Za-z0-9_][A-Za-z0-9._-]*$' },
  },
} as const

/** Upload and download of model files: bodies stream (never buffered whole). */
function uploadRoutes(app: FastifyInstance, deps: ModelsRoutesDeps): void {
  // The upload's body is the file: hand the stream to the route, whatever its content type.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload))

  app.put(
    '/api/v1/models/:project/:name/:version/files/:file',
    {
      schema: {
        summary:
          'Upload a model file into /Projects/<project>/Models/<name>/<version>/ and register the version in one step (the registration in the X-Hopsd-Model header); rolled back if registration fails',
        tags: ['models'],
        params: filesParams,
        headers: {
          type: 'object',
          required: [MODEL_SPEC_HEADER],
          properties: {
            [MODEL_SPEC_HEADER]: {
              type: 'string',
              maxLength: MODEL_SPEC_BYTES_MAX,
              description:
                'the registration as JSON: {framework, inputs?, outputs?, metrics?, description?, trainingDataset?, program?, jobId?, modelFile?, command?}',
            },
          },
        },
        response: { 201: anyObject, ...errors, 502: errorBodySchema },
      },
    },
    async (req, reply) => {
      const p = req.params as { project: string; name: string; version: string; file: string }
      const caller = callerOf(req)
      // Refused before the body was read: the connection closes after the answer (the client may still
      // be sending a large file).
      const closeUnread = (): void => {
        if (!req.raw.complete) void reply.header('connection', 'close')
      }
      try {
        let spec: unknown
        try {
          spec = JSON.parse(String(req.headers[MODEL_SPEC_HEADER]))
        } catch {
          throw new RegistryError(
            'MODEL_SPEC_INVALID',
            `${MODEL_SPEC_HEADER} must be the registration as JSON`,
          )
        }
        const writeFile = deps.writeFile
        if (writeFile === undefined)
          throw new RegistryError('MODEL_UPLOAD_FAILED', 'this node cannot take uploads')
        const creds = forwardedCredentials(req)
        if (Object.keys(creds.headers).length === 0 && Object.keys(creds.query).length === 0)
          throw new RegistryError(
            'MODEL_ACCESS_DENIED',
            'an upload needs an API key, a delegation token or (simple auth) user.name: a client certificate does not travel to the file system',
          )
        const body = (req.body as Readable | undefined) ?? Readable.from([])
        const m = await deps
          .registry()
          .uploadModel(
            caller,
            p,
            spec,
            (path: string, _who: Principal, signal?: AbortSignal) =>
              writeFile(path, p.project, creds, body, signal ?? signalOf(reply)),
            { signal: signalOf(reply) },
          )
        return reply.status(201).send(m)
      } catch (err) {
        closeUnread()
        throw err
      }
    },
  )

  app.get(
    '/api/v1/models/:project/:name/:version/files',
    {
      schema: {
        summary: "A model version's files (paths relative to its directory, and sizes)",
        tags: ['models'],
        params: versionParams,
        response: {
          200: {
            type: 'object',
            properties: {
              files: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { path: { type: 'string' }, length: { type: 'integer' } },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (req) => {
      const p = req.params as { project: string; name: string; version: string }
      return { files: await deps.registry().listModelFiles(callerOf(req), p.project, p.name, p.version) }
    },
  )

  app.get(
    '/api/v1/models/:project/:name/:version/files/*',
    {
      schema: {
        summary: 'Download one file of a model version (streamed)',
        tags: ['models'],
        params: {
          type: 'object',
          required: ['project', 'name', 'version', '*'],
          properties: { ...versionParams.properties, '*': { type: 'string', minLength: 1, maxLength: 255 } },
        },
        response: {
          200: {
            description: 'the bytes',
            content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
          },
          ...errors,
        },
      },
    },
    async (req, reply) => {
      const p = req.params as { project: string; name: string; version: string; '*': string }
      const abort = new AbortController()
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) abort.abort()
      })
      const f = await deps
        .registry()
        .downloadModelFile(callerOf(req), p.project, p.name, p.version, p['*'], { signal: abort.signal })
      return reply
        .type('application/octet-stream')
        .header('content-length', f.length)
        .send(Readable.from(f.bytes, { objectMode: false }))
    },
  )
}
