/**
 * Cluster settings (src/meta/settings.ts): `GET /api/v1/cluster/settings` (any caller) and
 * `PUT /api/v1/cluster/settings/:name` {value} (admins; one SetSetting command, checked again inside
 * apply). `auth` (simple | secure) is one of them.
 */
import type { FastifyInstance } from 'fastify'
import { SETTING_DEFS, type ClusterSettings } from '../../meta/index.js'
import type { Principal } from '../../auth/index.js'
import { errorBodySchema } from '../error-mapper.js'
import { callerOf } from '../auth-hook.js'
import type { ApiRoutes } from '../server.js'

export interface SettingsRoutesDeps {
  /** The settings after a read barrier. */
  get(signal?: AbortSignal): Promise<ClusterSettings>
  /** Proposes SetSetting as `caller`; resolves with the stored value. */
  set(caller: Principal, name: string, value: string): Promise<void>
}

export function settingsRoutes(deps: SettingsRoutesDeps): ApiRoutes {
  return {
    name: 'settings',
    register(app: FastifyInstance) {
      app.get(
        '/api/v1/cluster/settings',
        {
          schema: {
            summary: 'The cluster settings',
            tags: ['cluster'],
            response: { 200: { type: 'object', additionalProperties: true }, '4xx': errorBodySchema },
          },
        },
        async () => deps.get(AbortSignal.timeout(10_000)),
      )
      app.put(
        '/api/v1/cluster/settings/:name',
        {
          config: { auth: 'admin', audit: 'admin.operation' },
          schema: {
            summary: 'Change a cluster setting (admins)',
            tags: ['cluster'],
            params: {
              type: 'object',
              required: ['name'],
              properties: { name: { type: 'string', enum: Object.keys(SETTING_DEFS) } },
            },
            body: {
              type: 'object',
              required: ['value'],
              additionalProperties: false,
              properties: { value: { anyOf: [{ type: 'string' }, { type: 'integer' }] } },
            },
            response: {
              200: {
                type: 'object',
                required: ['name', 'value'],
                properties: { name: { type: 'string' }, value: {} },
              },
              '4xx': errorBodySchema,
            },
          },
        },
        async (request) => {
          const { name } = request.params as { name: keyof ClusterSettings }
          const { value } = request.body as { value: string | number }
          request.auditPath = `setting:${name}=${value}`
          await deps.set(callerOf(request), name, String(value))
          const now = await deps.get()
          return { name, value: now[name] }
        },
      )
    },
  }
}
