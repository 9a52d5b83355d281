/**
 * Node admission (admins only; README "Node admission"):
 * - `GET    /api/v1/nodes/admission[?state=pending|admitted|revoked]`  nodes that asked, were admitted or revoked
 * - `POST   /api/v1/nodes/:id/approve` {roles?}   admits a pending node (for the roles it asked for, or these)
 * - `POST   /api/v1/nodes/:id/revoke` {reason?}   revokes a node: disconnected and refused everywhere
 * - `POST   /api/v1/join-tokens` {roles, expiresS?} → 201 {id, token, ...}: the token is in this answer only
 * - `GET    /api/v1/join-tokens`                   tokens without their secrets
 * - `DELETE /api/v1/join-tokens/:id`               an unused token
 * Served by metadata nodes (other nodes forward them). The area is behind a structural interface, so
 * the API depends on no node code.
 */
import type { FastifyInstance } from 'fastify'
import type { Principal } from '../../auth/index.js'
import { callerOf } from '../auth-hook.js'
import { errorBodySchema } from '../error-mapper.js'
import type { ApiRoutes } from '../server.js'

/** One node as admission knows it (src/node/admission NodeAdmissionInfo has exactly these fields). */
export interface AdmissionNodeJson {
  readonly id: string
  readonly state: 'pending' | 'admitted' | 'revoked'
  readonly roles: readonly string[]
  readonly zone: string
  readonly hosts: readonly string[]
  readonly via: string
  readonly requestedMs: number
  readonly admittedMs: number
  readonly revokedMs: number
  readonly revokedBy: string
  readonly reason: string
  readonly caKeyCopy: boolean
}

export interface JoinTokenJson {
  readonly id: string
  readonly roles: readonly string[]
  readonly createdMs: number
  readonly expiresMs: number
  readonly createdBy: string
  readonly usedMs: number
  readonly usedBy: string
  readonly state: 'open' | 'used' | 'expired'
}

export interface AdmissionRoutesDeps {
  nodes(filter: { state?: AdmissionNodeJson['state'] }, signal: AbortSignal): Promise<AdmissionNodeJson[]>
  approve(
    caller: Principal,
    id: string,
    roles: readonly string[],
    signal: AbortSignal,
  ): Promise<AdmissionNodeJson>
  revoke(caller: Principal, id: string, reason: string, signal: AbortSignal): Promise<AdmissionNodeJson>
  createToken(
    caller: Principal,
    opts: { roles: readonly string[]; expiresS?: number },
    signal: AbortSignal,
  ): Promise<JoinTokenJson & { token: string }>
  tokens(signal: AbortSignal): Promise<JoinTokenJson[]>
  deleteToken(caller: Principal, id: string, signal: AbortSignal): Promise<void>
}

const ROLE = { type: 'string', enum: ['metadata', 'datanode', 'gpu', 'serving'] } as const
const rolesSchema = { type: 'array', items: ROLE, maxItems: 4, uniqueItems: true } as const
const strings = { type: 'array', items: { type: 'string' } } as const

const nodeSchema = {
  type: 'object',
  required: ['id', 'state', 'roles', 'zone', 'hosts', 'via', 'requestedMs', 'admittedMs', 'revokedMs'],
  properties: {
    id: { type: 'string', description: 'node id (libp2p peer id)' },
    state: { type: 'string', enum: ['pending', 'admitted', 'revoked'] },
    roles: { ...strings, description: 'the roles admitted (pending: asked for)' },
    zone: { type: 'string' },
    hosts: { ...strings, description: 'the hosts its last certificate request named' },
    via: { type: 'string', description: 'bootstrap, token:<id>, approved:<user> or automatic' },
    requestedMs: { type: 'integer' },
    admittedMs: { type: 'integer' },
    revokedMs: { type: 'integer' },
    revokedBy: { type: 'string' },
    reason: { type: 'string' },
    caKeyCopy: { type: 'boolean', description: 'the state holds a copy of the CA key wrapped to it' },
  },
} as const

const tokenProperties = {
  id: { type: 'string' },
  roles: strings,
  createdMs: { type: 'integer' },
  expiresMs: { type: 'integer' },
  createdBy: { type: 'string' },
  usedMs: { type: 'integer', description: '0: unused' },
  usedBy: { type: 'string', description: 'the node it admitted' },
  state: { type: 'string', enum: ['open', 'used', 'expired'] },
} as const

const tokenSchema = {
  type: 'object',
  required: ['id', 'roles', 'createdMs', 'expiresMs', 'usedMs', 'state'],
  properties: tokenProperties,
} as const

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128 } },
} as const

/** How long a read barrier or a proposal may take before the route answers the timeout's error. */
const ROUTE_TIMEOUT_MS = 30_000

/**
 * A deadline for the route's work. (Not the request's 'close' event: a request with a body emits it
 * once the body is read, long before the client goes away.)
 */
function deadline(): AbortSignal {
  return AbortSignal.timeout(ROUTE_TIMEOUT_MS)
}

export function admissionRoutes(deps: AdmissionRoutesDeps): ApiRoutes {
  return {
    name: 'admission',
    register(app: FastifyInstance) {
      app.get(
        '/api/v1/nodes/admission',
        {
          config: { auth: 'admin' },
          schema: {
            summary: 'Nodes that asked to join, were admitted or were revoked (admins)',
            tags: ['nodes'],
            querystring: {
              type: 'object',
              additionalProperties: false,
              properties: { state: { type: 'string', enum: ['pending', 'admitted', 'revoked'] } },
            },
            response: {
              200: {
                type: 'object',
                required: ['nodes'],
                properties: { nodes: { type: 'array', items: nodeSchema } },
              },
              '4xx': errorBodySchema,
              '5xx': errorBodySchema,
            },
          },
        },
        async (request) => {
          const q = request.query as { state?: AdmissionNodeJson['state'] }
          return { nodes: await deps.nodes({ state: q.state }, deadline()) }
        },
      )

      app.post(
        '/api/v1/nodes/:id/approve',
        {
          config: { auth: 'admin', audit: 'node.approve' },
          schema: {
            summary: 'Admit a node (admins): for the roles it asked for, or these (added to what it has)',
            tags: ['nodes'],
            params: idParams,
            body: {
              type: 'object',
              additionalProperties: false,
              properties: { roles: rolesSchema },
            },
            response: { 200: nodeSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
          },
        },
        async (request) => {
          const { id } = request.params as { id: string }
          const body = (request.body ?? {}) as { roles?: string[] }
          request.auditPath = `node:${id}`
          return deps.approve(callerOf(request), id, body.roles ?? [], deadline())
        },
      )

      app.post(
        '/api/v1/nodes/:id/revoke',
        {
          config: { auth: 'admin', audit: 'node.revoke' },
          schema: {
            summary:
              'Revoke a node (admins): its certificates go on the CRL; every node disconnects and refuses it',
            tags: ['nodes'],
            params: idParams,
            body: {
              type: 'object',
              additionalProperties: false,
              properties: { reason: { type: 'string', maxLength: 500 } },
            },
            response: { 200: nodeSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
          },
        },
        async (request) => {
          const { id } = request.params as { id: string }
          const body = (request.body ?? {}) as { reason?: string }
          request.auditPath = `node:${id}`
          return deps.revoke(callerOf(request), id, body.reason ?? '', deadline())
        },
      )

      app.post(
        '/api/v1/join-tokens',
        {
          config: { auth: 'admin', audit: 'join-token.create' },
          schema: {
            summary: 'Make a one-time join token for a new node (admins); the token is shown once',
            tags: ['nodes'],
            body: {
              type: 'object',
              required: ['roles'],
              additionalProperties: false,
              properties: {
                roles: { ...rolesSchema, minItems: 1 },
                expiresS: {
                  type: 'integer',
                  minimum: 1,
                  maximum: 30 * 86_400,
                  description: 'lifetime in seconds (default a day)',
                },
              },
            },
            response: {
              201: {
                type: 'object',
                required: ['id', 'token', 'roles', 'expiresMs'],
                properties: { ...tokenProperties, token: { type: 'string', description: 'shown this once' } },
              },
              '4xx': errorBodySchema,
              '5xx': errorBodySchema,
            },
          },
        },
        async (request, reply) => {
          const body = request.body as { roles: string[]; expiresS?: number }
          const made = await deps.createToken(callerOf(request), body, deadline())
          request.auditPath = `join-token:${made.id}`
          return reply.status(201).header('cache-control', 'no-store').send(made)
        },
      )

      app.get(
        '/api/v1/join-tokens',
        {
          config: { auth: 'admin' },
          schema: {
            summary: 'Join tokens without their secrets (admins)',
            tags: ['nodes'],
            response: {
              200: {
                type: 'object',
                required: ['tokens'],
                properties: { tokens: { type: 'array', items: tokenSchema } },
              },
              '4xx': errorBodySchema,
              '5xx': errorBodySchema,
            },
          },
        },
        async () => ({ tokens: await deps.tokens(deadline()) }),
      )

      app.delete(
        '/api/v1/join-tokens/:id',
        {
          config: { auth: 'admin', audit: 'join-token.delete' },
          schema: {
            summary: 'Delete a join token (admins)',
            tags: ['nodes'],
            params: idParams,
            response: { 204: { type: 'null' }, '4xx': errorBodySchema, '5xx': errorBodySchema },
          },
        },
        async (request, reply) => {
          const { id } = request.params as { id: string }
          request.auditPath = `join-token:${id}`
          await deps.deleteToken(callerOf(request), id, deadline())
          return reply.status(204).send()
        },
      )
    },
  }
}
