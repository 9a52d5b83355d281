// Routes of the node itself: /health (open to anyone: load balancers and tests) and /api/v1/node (an
// unauthenticated caller sees only what /health shows and the API's address and TLS state: no data
// dir, pid, runtime or join list).
import type { FastifyInstance } from 'fastify'
import type { ApiRoutes } from '../server.js'

export interface NodeInfo {
  /** The node id (libp2p peer id of the node key), the same string every route and node shows. */
  readonly id: string
  readonly zone: string
  readonly roles: readonly string[]
  readonly version: string
  readonly startedAt: string
  readonly http: string
  readonly p2p: string
  readonly join: readonly string[]
  readonly bootstrapExpect: number
  readonly dataDir: string
  readonly pid: number
  readonly nodeVersion: string
}

/** How the API serves TLS (`/api/v1/node` → `tls`). */
export interface NodeTlsInfo {
  /** The API serves HTTPS (--tls). */
  readonly enabled: boolean
  /** Issuer of the node certificate the node holds now; null: none yet. */
  readonly issuer: 'cluster' | 'self-signed' | null
  /** ISO time the certificate expires; null: none yet. */
  readonly notAfter: string | null
}

/** Who this node's p2p peers are to its peer gate (`/api/v1/node` → `trust`; src/node/admission). */
export interface NodeP2PInfo {
  /** The gate enforces node certificates (the node knows the cluster CA). */
  readonly gated: boolean
  /** This node shows a node certificate to its peers. */
  readonly certified: boolean
  /** The number of the newest CRL it holds (0: none). */
  readonly crlNumber: number
  /** Nodes refused at the connection gater (revoked). */
  readonly denied: number
  /** Connected peers and what the gate made of each: verified, none, invalid, revoked, unknown. */
  readonly peers: readonly { readonly id: string; readonly status: string }[]
}

export interface NodeRoutesDeps {
  /** Static facts about this node. */
  readonly info: NodeInfo
  /** Seconds since the daemon started (whole seconds). */
  uptimeS(): number
  /** The TLS state now; without it the node reports TLS disabled, no certificate. */
  tls?(): NodeTlsInfo
  /** The p2p peers and the gate's view of them (authenticated callers only). */
  trust?(): NodeP2PInfo
  /**
   * The failure the node cannot recover from, once one happened (its Raft group stopped): /health then
   * answers 503 with it until the node exits. Undefined: healthy.
   */
  failure?(): { readonly code: string; readonly message: string } | undefined
}

const NO_TLS: NodeTlsInfo = { enabled: false, issuer: null, notAfter: null }

const healthSchema = {
  type: 'object',
  required: ['status', 'id', 'zone', 'roles', 'version', 'uptimeS'],
  properties: {
    status: { type: 'string', enum: ['ok'] },
    id: { type: 'string', description: 'node id (libp2p peer id)' },
    zone: { type: 'string' },
    roles: { type: 'array', items: { type: 'string' } },
    version: { type: 'string' },
    uptimeS: { type: 'integer', minimum: 0 },
  },
} as const

const failedHealthSchema = {
  type: 'object',
  description: 'the node failed and is about to exit (its supervisor should restart it)',
  required: ['status', 'id', 'zone', 'roles', 'version', 'uptimeS', 'error'],
  properties: {
    status: { type: 'string', enum: ['failed'] },
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'stable error code, e.g. APPLY_FAILED or STORAGE_FAILED' },
        message: { type: 'string' },
      },
    },
    id: { type: 'string', description: 'node id (libp2p peer id)' },
    zone: { type: 'string' },
    roles: { type: 'array', items: { type: 'string' } },
    version: { type: 'string' },
    uptimeS: { type: 'integer', minimum: 0 },
  },
} as const

const nodeSchema = {
  type: 'object',
  required: ['id', 'zone', 'roles', 'version', 'uptimeS', 'startedAt', 'http', 'tls'],
  properties: {
    id: { type: 'string', description: 'node id (libp2p peer id)' },
    zone: { type: 'string' },
    roles: { type: 'array', items: { type: 'string' } },
    version: { type: 'string' },
    uptimeS: { type: 'integer', minimum: 0 },
    startedAt: { type: 'string', format: 'date-time' },
    http: { type: 'string', description: 'URL of this API' },
    p2p: { type: 'string', description: 'p2p listen address HOST:PORT (authenticated callers)' },
    join: { type: 'array', items: { type: 'string' }, description: 'authenticated callers' },
    bootstrapExpect: { type: 'integer', description: 'authenticated callers' },
    dataDir: { type: 'string', description: 'authenticated callers' },
    pid: { type: 'integer', description: 'authenticated callers' },
    nodeVersion: { type: 'string', description: 'Node.js runtime version (authenticated callers)' },
    trust: {
      type: 'object',
      description: 'the p2p peers and what the peer gate made of each (authenticated callers)',
      required: ['gated', 'certified', 'crlNumber', 'denied', 'peers'],
      properties: {
        gated: {
          type: 'boolean',
          description: 'peers must show node certificates (the cluster CA is known)',
        },
        certified: { type: 'boolean', description: 'this node shows its node certificate' },
        crlNumber: { type: 'integer', description: 'the newest CRL held (0: none)' },
        denied: { type: 'integer', description: 'revoked nodes refused at the connection gater' },
        peers: {
          type: 'array',
          items: {
            type: 'object',
            required: ['id', 'status'],
            properties: {
              id: { type: 'string' },
              status: { type: 'string', enum: ['verified', 'admitted', 'none', 'invalid', 'revoked', 'unknown'] },
            },
          },
        },
      },
    },
    tls: {
      type: 'object',
      description: 'whether the API serves TLS, and the node certificate it holds',
      required: ['enabled', 'issuer', 'notAfter'],
      properties: {
        enabled: { type: 'boolean', description: 'the API serves HTTPS (--tls)' },
        issuer: {
          type: ['string', 'null'],
          enum: ['cluster', 'self-signed', null],
          description:
            "'cluster': issued by the cluster CA; 'self-signed': temporary, until the cluster's arrives",
        },
        notAfter: { type: ['string', 'null'], format: 'date-time' },
      },
    },
  },
} as const

export function nodeRoutes(deps: NodeRoutesDeps): ApiRoutes {
  return {
    name: 'node',
    register(app: FastifyInstance) {
      app.get(
        '/health',
        {
          config: { auth: 'public' },
          schema: {
            summary: 'Liveness of this node: 200 while it works, 503 once it failed and is about to exit',
            tags: ['node'],
            response: { 200: healthSchema, 503: failedHealthSchema },
          },
        },
        async (_req, reply) => {
          const { id, zone, roles, version } = deps.info
          const base = { id, zone, roles, version, uptimeS: deps.uptimeS() }
          const failure = deps.failure?.()
          if (failure === undefined) return { status: 'ok', ...base }
          const error = { code: failure.code, message: failure.message }
          return reply.code(503).send({ status: 'failed', ...base, error })
        },
      )
      app.get(
        '/api/v1/node',
        {
          config: { auth: 'optional' },
          schema: {
            summary: 'This node: id, zone, roles, addresses (private details to authenticated callers)',
            tags: ['node'],
            response: { 200: nodeSchema },
          },
        },
        async (request) => {
          const all = { ...deps.info, uptimeS: deps.uptimeS(), tls: deps.tls?.() ?? NO_TLS }
          if (request.caller !== undefined)
            return deps.trust === undefined ? all : { ...all, trust: deps.trust() }
          const { id, zone, roles, version, uptimeS, startedAt, http, tls } = all
          return { id, zone, roles, version, uptimeS, startedAt, http, tls }
        },
      )
    },
  }
}
