/**
 * `GET /api/v1/audit` (admins): this node's audit events — authentication failures, rate limiting,
 * permission denials, users, keys and tokens made or revoked, admin operations — newest last, after
 * `afterSeq`, optionally of some kinds. Each node keeps those it served (src/auth/audit.ts).
 */
import type { FastifyInstance } from 'fastify'
import { AUDIT_KINDS, type AuditKind, type AuditLog } from '../../auth/index.js'
import { errorBodySchema } from '../error-mapper.js'
import type { ApiRoutes } from '../server.js'

export interface AuditRoutesDeps {
  readonly audit: AuditLog
  /** This node's id (answered as `node`). */
  readonly nodeId: string
}

const eventSchema = {
  type: 'object',
  properties: {
    seq: { type: 'integer' },
    timeMs: { type: 'integer' },
    kind: { type: 'string', enum: AUDIT_KINDS },
    decision: { type: 'string', enum: ['allow', 'deny'] },
    user: { type: 'string' },
    via: { type: 'string' },
    source: { type: 'string' },
    method: { type: 'string' },
    route: { type: 'string' },
    path: { type: 'string' },
    code: { type: 'string' },
    detail: { type: 'string' },
  },
} as const

export function auditRoutes(deps: AuditRoutesDeps): ApiRoutes {
  return {
    name: 'audit',
    register(app: FastifyInstance) {
      app.get(
        '/api/v1/audit',
        {
          config: { auth: 'admin' },
          schema: {
            summary: "This node's audit events (admins)",
            tags: ['auth'],
            querystring: {
              type: 'object',
              properties: {
                afterSeq: { type: 'integer', minimum: 0, default: 0 },
                limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 1000 },
                kind: { type: 'array', items: { type: 'string', enum: AUDIT_KINDS } },
              },
            },
            response: {
              200: {
                type: 'object',
                required: ['node', 'events', 'lastSeq'],
                properties: {
                  node: { type: 'string' },
                  events: { type: 'array', items: eventSchema },
                  lastSeq: { type: 'integer' },
                },
              },
              '4xx': errorBodySchema,
            },
          },
        },
        async (request) => {
          const q = request.query as { afterSeq: number; limit: number; kind?: AuditKind[] }
          return {
            node: deps.nodeId,
            ...deps.audit.list({ afterSeq: q.afterSeq, limit: q.limit, kinds: q.kind }),
          }
        },
      )
    },
  }
}
