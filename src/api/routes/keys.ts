/**
 * API keys (admins for anyone; a user for itself):
 * - `POST   /api/v1/keys` {user, name?, expiresS?, project?} → 201 {id, key, ...}: the key (`hk.<id>.<secret>`)
 *   is in this answer only; the cluster keeps its hash
 * - `GET    /api/v1/keys[?user=]`  keys without secrets (a user sees its own)
 * - `DELETE /api/v1/keys/:id`      revokes it at once on every node
 */
import type { FastifyInstance } from 'fastify'
import { KEY_EXPIRES_S_MAX, NAME_PATTERN, type ApiKeyInfo, type AuthService } from '../../auth/index.js'
import { errorBodySchema } from '../error-mapper.js'
import { callerOf } from '../auth-hook.js'
import type { ApiRoutes } from '../server.js'

export interface KeysRoutesDeps {
  readonly auth: AuthService
}

const keyProperties = {
  id: { type: 'string' },
  name: { type: 'string' },
  user: { type: 'string' },
  project: { type: 'string' },
  createdMs: { type: 'integer' },
  expiresMs: { type: 'integer', description: '0: never' },
  revokedMs: { type: 'integer', description: '0: not revoked' },
  createdBy: { type: 'string' },
  state: { type: 'string', enum: ['active', 'expired', 'revoked'] },
} as const

const keySchema = {
  type: 'object',
  required: ['id', 'name', 'user', 'createdMs', 'expiresMs', 'revokedMs', 'state'],
  properties: keyProperties,
} as const

function keyJson(k: ApiKeyInfo): Record<string, unknown> {
  return { ...k }
}

export function keysRoutes(deps: KeysRoutesDeps): ApiRoutes {
  const { auth } = deps
  return {
    name: 'keys',
    register(app: FastifyInstance) {
      app.post(
        '/api/v1/keys',
        {
          config: { audit: 'key.create' },
          schema: {
            summary:
              'Create an API key acting as a user (admins for anyone, users for themselves); the key is shown once',
            tags: ['auth'],
            body: {
              type: 'object',
              required: ['user'],
              additionalProperties: false,
              properties: {
                user: { type: 'string', pattern: NAME_PATTERN },
                name: { type: 'string', maxLength: 128 },
                expiresS: {
                  type: 'integer',
                  minimum: 0,
                  maximum: KEY_EXPIRES_S_MAX,
                  description: 'lifetime in seconds (default 90 days); 0: never expires',
                },
                project: {
                  type: 'string',
                  pattern: NAME_PATTERN,
                  description: 'the project the key acts in: the key is a project-user principal (its user must be a member)',
                },
              },
            },
            response: {
              201: {
                type: 'object',
                required: ['id', 'key', 'user', 'expiresMs'],
                properties: {
                  ...keyProperties,
                  key: { type: 'string', description: 'the key, shown this once' },
                },
              },
              '4xx': errorBodySchema,
            },
          },
        },
        async (request, reply) => {
          const body = request.body as { user: string; name?: string; expiresS?: number; project?: string }
          request.auditPath = `user:${body.user}`
          const created = await auth.createKey(callerOf(request), body)
          request.auditPath = `key:${created.id} user:${created.user}`
          return reply.status(201).header('cache-control', 'no-store').send(created)
        },
      )

      app.get(
        '/api/v1/keys',
        {
          schema: {
            summary: 'API keys without their secrets (admins: all, or ?user=; users: their own)',
            tags: ['auth'],
            querystring: { type: 'object', properties: { user: { type: 'string', maxLength: 64 } } },
            response: {
              200: {
                type: 'object',
                required: ['keys'],
                properties: { keys: { type: 'array', items: keySchema } },
              },
              '4xx': errorBodySchema,
            },
          },
        },
        async (request) => {
          const q = request.query as { user?: string }
          return { keys: (await auth.listKeys(callerOf(request), { user: q.user })).map(keyJson) }
        },
      )

      app.delete(
        '/api/v1/keys/:id',
        {
          config: { audit: 'key.revoke' },
          schema: {
            summary: 'Revoke an API key (admins any, users their own); refused everywhere at once',
            tags: ['auth'],
            params: {
              type: 'object',
              required: ['id'],
              properties: { id: { type: 'string', maxLength: 64 } },
            },
            response: { 200: keySchema, '4xx': errorBodySchema },
          },
        },
        async (request) => {
          const { id } = request.params as { id: string }
          request.auditPath = `key:${id}`
          return keyJson(await auth.revokeKey(callerOf(request), id))
        },
      )
    },
  }
}
