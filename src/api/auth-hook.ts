/**
 * The one authentication hook of the API (a fastify `onRequest` hook on the root instance): it finds
 * the request's credentials, has the node's {@link Authenticator} verify them, and leaves the verified
 * principal on `request.caller`. Routes never read an identity from the request themselves.
 *
 * Each route declares what it needs in its options' `config.auth` ({@link RouteAuth}; default
 * `caller`, so a route that says nothing is closed). Refusals are typed errors, answered by the route's
 * error handler: `{"error":{code,message}}` with the code's status, or a WebHDFS `RemoteException`:
 *   - no credentials where a caller is needed → 401 UNAUTHENTICATED;
 *   - bad, expired, revoked, or not-believed credentials → 401 with the reason (CREDENTIAL_*, ...);
 *   - a caller that is not an admin on an admin route → 403 SUPERUSER_REQUIRED;
 *   - a source address over its budget of failed authentications → 429 with Retry-After, before its
 *     credentials are even looked at.
 * Audit: failures and denials (any route) and successful audited operations (`config.audit`) become
 * audit events; secrets are never logged.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TLSSocket } from 'node:tls'
import {
  AuthError,
  authViaOf,
  type AuditKind,
  type AuditLog,
  type Authenticator,
  type ClientCertificate,
  type Credentials,
  type FailureLimiter,
  type Principal,
  requireAdmin,
} from '../auth/index.js'
import { HopsError } from '../errors.js'
import { checkProjectName, ProjectError } from '../projects/index.js'

/** The header that makes a request act as its user within one project (a project-user principal). */
export const PROJECT_HEADER = 'x-hopsd-project'

/**
 * What a route needs:
 * - `public`: nobody is authenticated (health, metrics, the OpenAPI document, and routes that check a
 *   signed token of their own, like a write Location's second hop);
 * - `optional`: a caller if the request has credentials (bad ones are still refused), else none;
 * - `caller`: a verified caller (the default);
 * - `admin`: a caller who is the superuser or in the supergroup or the admin group.
 */
export type RouteAuth = 'public' | 'optional' | 'caller' | 'admin'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the route needs of its caller (default `caller`). */
    auth?: RouteAuth
    /** When set, a successful request is an audit event of this kind (admin operations, keys, ...). */
    audit?: AuditKind
    /**
     * False when the route's own work re-checks the caller's credential against fresh state — its
     * reads after their read barrier (Authenticator.recheck), its writes at commit (the auth guard in
     * the state machine) — so the hook authenticates without a barrier of its own: one barrier per
     * request instead of two. Default true: the hook catches the replica up first.
     */
    authFresh?: boolean
    /**
     * True on the routes that also take an inference key (`Authorization: Bearer hik.…`, src/serving):
     * the /v2 model routes. Everywhere else such a key is refused (INFERENCE_KEY_INVALID, 401) before
     * any route runs, so it reaches neither the file system nor the management API.
     */
    inferenceKey?: boolean
  }
  interface FastifyRequest {
    /** The verified principal (undefined: anonymous, on `public`/`optional` routes only). */
    caller: Principal | undefined
    /** The credentials the request carried, for forwarding to another node (never log them). */
    credentials: Credentials | undefined
    /** What an audited request acted on (a key id, a user name); default: its `path` parameter. */
    auditPath: string | undefined
    /** Set by a route whose audit kind depends on the request (WebHDFS token ops); else `config.audit`. */
    auditKind: AuditKind | undefined
  }
}

export interface ApiAuth {
  readonly authenticator: Authenticator
  /** Failed authentications per source address; none: unlimited. */
  readonly limiter?: FailureLimiter
  /** Where failures, denials and audited operations go; none: not audited. */
  readonly audit?: AuditLog
  /**
   * Checks an inference key (src/serving RegistryService.authenticateInferenceKey: after a read
   * barrier, so a revocation holds for the next request on every node); none: no route takes one.
   */
  readonly inferenceKeys?: (key: string, signal: AbortSignal) => Promise<Principal>
}

/** The prefix of inference keys (src/serving INFERENCE_KEY_PREFIX; `hk.` is an API key). */
const INFERENCE_KEY_START = 'hik.'

/** Codes that mean "these credentials are no good" (they count against the source's budget). */
const CREDENTIAL_FAILURES = new Set([
  'INFERENCE_KEY_INVALID',
  'CREDENTIAL_INVALID',
  'CREDENTIAL_EXPIRED',
  'CREDENTIAL_REVOKED',
  'USER_DISABLED',
  'SIMPLE_AUTH_DISABLED',
])
/** Codes that are permission denials (audited as access.denied). */
const DENIALS = new Set([
  'ACCESS_DENIED',
  'SUPERUSER_REQUIRED',
  'TOKEN_INVALID',
  'KEY_NOT_FOUND',
  'PROJECT_ACCESS_DENIED',
])

/** The principal of a request, or 401 UNAUTHENTICATED: for routes whose `config.auth` is `optional`. */
export function callerOf(request: FastifyRequest): Principal {
  if (request.caller === undefined) throw new AuthError('UNAUTHENTICATED')
  return request.caller
}

export function installAuthHook(app: FastifyInstance, auth: ApiAuth): void {
  app.decorateRequest('caller', undefined)
  app.decorateRequest('credentials', undefined)
  app.decorateRequest('auditPath', undefined)
  app.decorateRequest('auditKind', undefined)

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const need: RouteAuth =
      request.routeOptions.url === undefined ? 'public' : (request.routeOptions.config.auth ?? 'caller')
    if (need === 'public') return
    const source = request.ip
    const blockedS = auth.limiter?.blocked(source)
    if (blockedS !== undefined) {
      void reply.header('retry-after', String(blockedS))
      throw new AuthError(
        'TOO_MANY_AUTH_FAILURES',
        `too many failed authentications from ${source}; retry in ${blockedS} s`,
        {
          retryAfterS: blockedS,
        },
      )
    }
    const credentials = credentialsOf(request)
    request.credentials = credentials
    let principal: Principal | undefined
    try {
      principal = isInferenceKey(credentials)
        ? await inferenceKeyPrincipal(request, auth, credentials)
        : await auth.authenticator.authenticate(credentials, {
            signal: AbortSignal.timeout(10_000),
            fresh: request.routeOptions.config.authFresh !== false,
          })
    } catch (err) {
      const code = (err as { code?: unknown }).code
      if (code === 'INFERENCE_KEY_INVALID' && auth.limiter?.fail(source))
        record(auth, request, 'auth.rate-limited', 'deny', code, 'source exhausted its failures')
      if (code === 'INFERENCE_KEY_INVALID') throw err
      if (err instanceof AuthError && CREDENTIAL_FAILURES.has(err.code) && auth.limiter?.fail(source)) {
        record(
          auth,
          request,
          'auth.rate-limited',
          'deny',
          err.code,
          `source exhausted its failures: ${err.message}`,
        )
      }
      if (err instanceof AuthError) throw err
      // A route that serves anonymous callers anyway does so when credentials cannot be checked now
      // and none were sent (a node that knows no metadata node yet still shows /api/v1/node).
      if (need === 'optional' && isEmptyCredentials(credentials)) {
        request.caller = undefined
        return
      }
      if ((err as { code?: string }).code === 'UNAVAILABLE') throw err
      // The node could not check now (no metadata node, a barrier timed out): the client may retry.
      throw new HopsError('UNAVAILABLE', `cannot authenticate now: ${(err as Error).message}`, { cause: err })
    }
    request.caller = principal === undefined ? undefined : actingIn(request, principal)
    if (need === 'caller' && principal === undefined) throw new AuthError('UNAUTHENTICATED')
    if (need === 'admin') {
      if (principal === undefined) throw new AuthError('UNAUTHENTICATED')
      requireAdmin(principal, `use ${request.routeOptions.url}`)
    }
  })

  // Failures and denials, from the hook or from any route, before the route's error handler answers.
  app.addHook('onError', async (request, _reply, err: Error & { code?: unknown }) => {
    const code = typeof err.code === 'string' ? err.code : ''
    if (code === 'UNAUTHENTICATED' || CREDENTIAL_FAILURES.has(code))
      record(auth, request, 'auth.failure', 'deny', code, err.message)
    else if (DENIALS.has(code)) record(auth, request, 'access.denied', 'deny', code, err.message)
  })

  app.addHook('onResponse', async (request, reply) => {
    const kind = request.auditKind ?? request.routeOptions.config?.audit
    if (kind !== undefined && reply.statusCode < 400) record(auth, request, kind, 'allow', '', '')
  })
}

/** Whether the request's credential is an inference key (a bearer `hik.…`; anywhere else it is not one). */
function isInferenceKey(c: Credentials): boolean {
  return c.bearer !== undefined && c.bearer.startsWith(INFERENCE_KEY_START)
}

/**
 * An inference key's principal, on a route that takes one; INFERENCE_KEY_INVALID (401) on any other
 * route, whatever the key. A project header cannot move it: the key acts in its deployment's project.
 */
async function inferenceKeyPrincipal(
  request: FastifyRequest,
  auth: ApiAuth,
  c: Credentials,
): Promise<Principal> {
  if (request.routeOptions.config.inferenceKey !== true || auth.inferenceKeys === undefined)
    throw new HopsError(
      'INFERENCE_KEY_INVALID',
      `an inference key is accepted only by the /v2/models routes of its deployment, not by ${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`,
    )
  return auth.inferenceKeys(c.bearer!, AbortSignal.timeout(10_000))
}

/**
 * The principal as the request asks to act: within the project named by X-Hopsd-Project (or, on
 * WebHDFS, the parameter `project=`) next to the user's own credential. A credential bound to a project
 * (a project key) acts in that one only. Membership is not checked here: file access and the projects
 * routes decide it from the replicated state on every request.
 */
function actingIn(request: FastifyRequest, principal: Principal): Principal {
  const header = request.headers[PROJECT_HEADER]
  let wanted = typeof header === 'string' ? header : undefined
  if (wanted === undefined && request.url.startsWith('/webhdfs/v1')) {
    const v = param((request.query ?? {}) as Query, 'project')
    if (v !== undefined && v !== '') wanted = v
  }
  if (wanted === undefined) return principal
  checkProjectName(wanted, 'project')
  const bound = principal.project ?? ''
  if (bound !== '' && bound !== wanted)
    throw new ProjectError(
      'PROJECT_ACCESS_DENIED',
      `the credential acts in project ${bound}: it cannot act in project ${wanted}`,
    )
  return bound === wanted ? principal : { ...principal, project: wanted }
}

function record(
  auth: ApiAuth,
  request: FastifyRequest,
  kind: AuditKind,
  decision: 'allow' | 'deny',
  code: string,
  detail: string,
): void {
  if (auth.audit === undefined) return
  const q = request.query as Record<string, unknown> | undefined
  const path =
    request.auditPath ??
    (typeof q?.['path'] === 'string' ? q['path'] : undefined) ??
    (request.url.startsWith('/webhdfs/v1')
      ? decodePathSafe(request.url.slice('/webhdfs/v1'.length).split('?')[0]!) || '/'
      : '')
  auth.audit.record({
    kind,
    decision,
    user: request.caller?.user ?? '',
    via: request.caller === undefined ? '' : authViaOf(request.caller),
    source: request.ip,
    method: request.method,
    route: request.routeOptions.url ?? 'unmatched',
    path,
    code,
    detail: detail.slice(0, 300),
  })
}

function decodePathSafe(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

function isEmptyCredentials(c: Credentials): boolean {
  return (
    c.certificate === undefined &&
    c.bearer === undefined &&
    c.basic === undefined &&
    c.delegation === undefined &&
    c.userName === undefined &&
    c.grant === undefined
  )
}

type Query = Record<string, string | string[] | undefined>

/** The last value of a query parameter, its name matched case-insensitively (as WebHDFS does). */
function param(q: Query, name: string): string | undefined {
  let v = q[name]
  if (v === undefined) {
    const k = Object.keys(q).find((key) => key.toLowerCase() === name)
    if (k !== undefined) v = q[k]
  }
  return Array.isArray(v) ? v[v.length - 1] : v
}

/** Every credential the request carries (the authenticator decides which one counts). */
export function credentialsOf(request: FastifyRequest): Credentials {
  const q = (request.query ?? {}) as Query
  const out: {
    -readonly [K in keyof Credentials]: Credentials[K]
  } = {}
  const authz = request.headers.authorization
  if (typeof authz === 'string' && authz !== '') {
    const [scheme, ...rest] = authz.trim().split(/\s+/)
    const value = rest.join(' ')
    if (/^bearer$/i.test(scheme ?? '')) out.bearer = value
    else if (/^basic$/i.test(scheme ?? '')) {
      const decoded = Buffer.from(value, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      out.basic =
        colon < 0
          ? { user: decoded, password: '' }
          : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
    } else out.bearer = authz // an unknown scheme is a malformed key, refused as such
  }
  const delegation = param(q, 'delegation')
  if (delegation !== undefined && delegation !== '') out.delegation = delegation
  const userName = param(q, 'user.name')
  if (userName !== undefined) out.userName = userName
  const cert = clientCertificateOf(request)
  if (cert !== undefined) out.certificate = cert
  return out
}

/** A caller's credential as another node's API takes it (never logged). */
export interface ForwardedCredentials {
  readonly headers: Record<string, string>
  /** Query parameters (`delegation`, `user.name`), to add to the forwarded URL. */
  readonly query: Record<string, string>
}

/**
 * The request's credential, to ask another node on the caller's behalf (that node authenticates it
 * again and decides). A client certificate does not travel: it authenticates at its own edge only.
 */
export function forwardedCredentials(request: FastifyRequest): ForwardedCredentials {
  const c = request.credentials ?? credentialsOf(request)
  const headers: Record<string, string> = {}
  const query: Record<string, string> = {}
  if (typeof request.headers.authorization === 'string')
    headers['authorization'] = request.headers.authorization
  const project = request.headers[PROJECT_HEADER]
  if (typeof project === 'string') headers[PROJECT_HEADER] = project
  if (c.delegation !== undefined) query['delegation'] = c.delegation
  if (c.userName !== undefined) query['user.name'] = c.userName
  return { headers, query }
}

/** The client certificate of an HTTPS request, when the client presented one. */
function clientCertificateOf(request: FastifyRequest): ClientCertificate | undefined {
  const socket = request.raw.socket as Partial<TLSSocket>
  if (typeof socket.getPeerX509Certificate !== 'function') return undefined
  const x = socket.getPeerX509Certificate()
  if (x === undefined) return undefined
  const uris = (x.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4))
  return {
    verified: socket.authorized === true,
    ...(socket.authorizationError ? { error: String(socket.authorizationError) } : {}),
    uris,
    serial: x.serialNumber.toLowerCase(),
    notAfterMs: Date.parse(x.validTo),
  }
}
