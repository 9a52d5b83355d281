/**
 * The local HTTP API of a node: a fastify instance with the error mapper, JSON-lines request logs,
 * `/metrics`, `/openapi.json`, and the routes of every area. Areas do not touch the instance directly:
 * each contributes an {@link ApiRoutes} (a fastify plugin closed over the services it needs, written in
 * `src/api/routes/<area>.ts`), and the daemon passes the list in.
 */
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify'
import type { Server as TlsServer } from 'node:tls'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import type { Server as HttpServer } from 'node:http'
import { createSimpleAuthenticator } from '../auth/index.js'
import { installAuthHook, type ApiAuth } from './auth-hook.js'
import { answerFrameworkError, installErrorMapper, methodNotAllowed } from './error-mapper.js'
import {
  answerExpectContinue,
  guardServer,
  HTTP_TIMEOUTS,
  redactUrl,
  type HttpTimeouts,
} from './http-guards.js'
import { createApiMetrics } from './metrics.js'
import { buildOpenApi, recordRoutes, routeMatcher, type OpenApiInfo } from './openapi.js'

/** One area's routes. `register` runs inside its own encapsulated fastify context. */
export interface ApiRoutes {
  /** The area's name (`node`, `fs`, ...), for logs and errors. */
  readonly name: string
  /** Declares the routes; every route must carry a schema with at least `response`. */
  register(app: FastifyInstance): void | Promise<void>
}

export interface ApiServerInit {
  readonly logger: Logger
  /** The daemon's metrics registry; the server adds its request histogram to it. */
  readonly registry: Registry
  readonly routes: readonly ApiRoutes[]
  readonly openapi: OpenApiInfo
  /** Largest request body accepted (bytes); routes that take files raise it for themselves. */
  readonly bodyLimitBytes?: number
  /**
   * Serve HTTPS instead of HTTP (fastify's `https` option). The key and certificate may come later,
   * through {@link ApiServer.setCertificate}, but before `listen`.
   */
  readonly https?: { readonly keyPem?: string; readonly certPem?: string; readonly caPem?: string }
  /**
   * How callers are authenticated (src/api/auth-hook.ts). Without it the server believes `user.name`
   * (simple auth, no users): for in-process tests of routes only — the daemon always passes its
   * cluster's authenticator.
   */
  readonly auth?: ApiAuth
  /** Limits against slow clients (default {@link HTTP_TIMEOUTS}). */
  readonly timeouts?: Partial<HttpTimeouts>
}

export interface ApiCertificate {
  readonly keyPem: string
  readonly certPem: string
  /** The cluster CA: client certificates it issued are verified (and accepted as credentials). */
  readonly caPem?: string
  /**
   * The cluster's certificate revocation list (PEM): client certificates on it fail the handshake's
   * verification (`authorizationError` CERT_REVOKED), where the server asks for client certificates.
   */
  readonly crlPem?: string
}

export interface ApiServer {
  readonly app: FastifyInstance
  /** Whether the server speaks HTTPS. */
  readonly secure: boolean
  /**
   * HTTPS only: serves this key and certificate from now on (node's `server.setSecureContext`); open
   * connections keep theirs, new handshakes get the new one.
   */
  setCertificate(certificate: ApiCertificate): void
  /** Binds and serves; resolves with the bound address (port 0 picks a free one). */
  listen(addr: { host: string; port: number }): Promise<{ host: string; port: number }>
  /** Stops accepting, lets in-flight requests finish, closes idle keep-alive connections. */
  close(): Promise<void>
}

export async function createApiServer(init: ApiServerInit): Promise<ApiServer> {
  let hasCertificate = init.https?.keyPem !== undefined && init.https.certPem !== undefined
  // The methods each known path has, once the routes are recorded (for the router's own refusals).
  const routeMethods: { of?: (path: string) => string[] } = {}
  const app = Fastify({
    ...(init.https === undefined
      ? {}
      : {
          https: {
            ...(hasCertificate ? { key: init.https.keyPem, cert: init.https.certPem } : {}),
            ...(init.https.caPem !== undefined ? { ca: init.https.caPem } : {}),
            // Ask for a client certificate, never require one: keys and tokens are credentials too.
            // The auth hook accepts one only when the handshake verified it against the cluster CA.
            requestCert: true,
            rejectUnauthorized: false,
          },
        }),
    // pino's Logger is fastify's logger; the cast keeps the instance type the plain FastifyInstance.
    loggerInstance: init.logger as FastifyBaseLogger,
    // One log line per request, written in onResponse below, instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: init.bodyLimitBytes ?? 1024 * 1024,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false, allErrors: false } },
    // Errors the router raises before any route runs (a malformed URL, an over-long path parameter)
    // answer in the API's error shape like every other error, not fastify's own body.
    // A method the path does not have is 405 even when the router refused the URL first (an over-long
    // parameter): the method is wrong whatever the parameter.
    frameworkErrors: (err, request, reply) => {
      const path = (request.raw.url ?? '').split('?')[0]!
      const allowed = routeMethods.of?.(path) ?? []
      if (allowed.length > 0 && !allowed.includes(request.raw.method ?? ''))
        return void methodNotAllowed(reply, request.raw.method ?? '', path, allowed)
      answerFrameworkError(err, request, reply)
    },
  })
  guardServer(app.server as HttpServer, { ...HTTP_TIMEOUTS, ...init.timeouts })
  answerExpectContinue(app.server as HttpServer)
  const routes = recordRoutes(app, { requireSchemas: true })
  // A known path asked with a method it does not have answers 405 with Allow, not 404.
  installErrorMapper(app)
  installAuthHook(app, init.auth ?? { authenticator: createSimpleAuthenticator() })
  const metrics = createApiMetrics(init.registry)
  const allowedMethods = routeMatcher(routes)
  routeMethods.of = allowedMethods
  // 405 before anything reads the body (fastify would first refuse a body-method request without a
  // content type with 400, whatever the route).
  app.addHook('onRequest', async (request, reply) => {
    if (!request.is404) return
    const path = (request.raw.url ?? request.url).split('?')[0]!
    if (allowedMethods(path).length > 0)
      return methodNotAllowed(reply, request.method, path, allowedMethods(path))
  })

  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    // The route pattern, not the URL, keeps the label set bounded; unmatched URLs share one label.
    const route = request.routeOptions.url ?? 'unmatched'
    const durationS = reply.elapsedTime / 1000
    metrics.httpDuration.observe(
      { method: request.method, route, status: String(reply.statusCode) },
      durationS,
    )
    request.log.info(
      {
        method: request.method,
        // Write and delegation tokens are secrets: never in the log.
        url: redactUrl(request.url),
        route,
        status: reply.statusCode,
        durationMs: round3(reply.elapsedTime),
      },
      'request',
    )
  })

  app.get(
    '/metrics',
    {
      config: { auth: 'public' },
      schema: {
        summary: 'Prometheus metrics of this node (text exposition format)',
        tags: ['node'],
        response: {
          200: { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } },
        },
      },
    },
    async (_request, reply) => {
      const text = await init.registry.metrics()
      return reply.type(init.registry.contentType).send(text)
    },
  )

  let openapiDoc: Record<string, unknown> | undefined
  app.get(
    '/openapi.json',
    {
      config: { auth: 'public' },
      schema: {
        summary: 'The OpenAPI 3.1 document of this API, generated from the route schemas',
        tags: ['node'],
        response: { 200: { type: 'object', additionalProperties: true } },
      },
    },
    async (_request, reply) => {
      openapiDoc ??= buildOpenApi(init.openapi, routes, app.getSchemas() as Record<string, unknown>)
      return reply.type('application/json').send(JSON.stringify(openapiDoc))
    },
  )

  for (const area of init.routes) {
    await app.register(async (child) => {
      await area.register(child)
    })
  }
  await app.ready()

  return {
    app,
    secure: init.https !== undefined,
    setCertificate(certificate) {
      if (init.https === undefined) throw new Error('setCertificate on a plain-HTTP API server')
      ;(app.server as unknown as TlsServer).setSecureContext({
        key: certificate.keyPem,
        cert: certificate.certPem,
        ...(certificate.caPem !== undefined ? { ca: certificate.caPem } : {}),
        ...(certificate.crlPem !== undefined && certificate.crlPem !== '' ? { crl: certificate.crlPem } : {}),
      })
      hasCertificate = true
    },
    async listen(addr) {
      if (init.https !== undefined && !hasCertificate)
        throw new Error('HTTPS API server without a certificate')
      await app.listen({ host: addr.host, port: addr.port, listenTextResolver: () => 'listening' })
      const bound = app.server.address()
      if (bound === null || typeof bound === 'string') throw new Error('the HTTP server has no TCP address')
      return { host: bound.address, port: bound.port }
    },
    async close() {
      await app.close()
    },
  }
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000
}
