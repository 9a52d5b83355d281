/**
 * Users (admins only, but a user may read its own record):
 * - `POST   /api/v1/users` {name, groups?}   a user, with its home directory `/user/<name>` owned by it
 * - `GET    /api/v1/users`                   every user
 * - `GET    /api/v1/users/:name`             one user
 * - `PATCH  /api/v1/users/:name` {groups?, disabled?}
 * - `DELETE /api/v1/users/:name`             the user with its keys and delegation tokens (its files stay)
 * - `POST   /api/v1/users/:name/certificate` {publicKeyPem, validityDays?}  a TLS client certificate from
 *   the cluster CA naming the user (admins, or the user itself); the private key stays with the user
 * Each change is one command to the metadata group, authorized again inside apply.
 */
import type { FastifyInstance } from 'fastify'
import {
  AuthError,
  NAME_PATTERN,
  type AuthService,
  type Principal,
  type UserRecord,
} from '../../auth/index.js'
import { HopsError } from '../../errors.js'
import type { FsService } from '../../fs/index.js'
import { ProjectError } from '../../projects/index.js'
import { errorBodySchema } from '../error-mapper.js'
import { callerOf } from '../auth-hook.js'
import type { ApiRoutes } from '../server.js'

export interface UsersRoutesDeps {
  readonly auth: AuthService
  /**
   * Makes `/user/<name>` owned by the new user (mode 0750). If it fails the user is removed again, so
   * that adding a user is all or nothing.
   */
  createHome(admin: Principal, name: string): Promise<string>
  /** Issues a client certificate for `user` from the cluster CA; without it the route answers 503. */
  issueCertificate?(
    user: string,
    publicKeyPem: string,
    validityDays: number,
  ): Promise<{ certificatePem: string; caCertificatePem: string }>
}

/**
 * Home directories as HDFS lays them out: `/user` (0755, made when missing) and `/user/<name>` (0750)
 * owned by the user, its group left to the parent's. Idempotent: an existing home is handed over.
 */
export function homeDirectories(fs: FsService): UsersRoutesDeps['createHome'] {
  return async (admin, name) => {
    const home = `/user/${name}`
    await fs.mkdirs(admin, '/user', { permission: 0o755 })
    await fs.mkdirs(admin, home, { permission: 0o750 })
    await fs.setOwner(admin, home, name, undefined)
    return home
  }
}

const nameSchema = { type: 'string', pattern: NAME_PATTERN, description: 'letters, digits, . _ -' } as const
const groupsSchema = { type: 'array', items: nameSchema, maxItems: 64, uniqueItems: true } as const

export const userSchema = {
  type: 'object',
  required: ['name', 'groups', 'disabled', 'createdMs'],
  properties: {
    name: { type: 'string' },
    groups: { type: 'array', items: { type: 'string' } },
    disabled: { type: 'boolean' },
    createdMs: { type: 'integer' },
    home: { type: 'string', description: 'the home directory (answer of POST only)' },
  },
} as const

const nameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', maxLength: 64 } },
} as const

function userJson(u: UserRecord): Record<string, unknown> {
  return { name: u.name, groups: u.groups, disabled: u.disabled, createdMs: u.createdMs }
}

export function usersRoutes(deps: UsersRoutesDeps): ApiRoutes {
  const { auth } = deps
  return {
    name: 'users',
    register(app: FastifyInstance) {
      app.post(
        '/api/v1/users',
        {
          config: { auth: 'admin', audit: 'user.add' },
          schema: {
            summary: 'Add a user (admins); it gets the home directory /user/<name>, owned by it',
            tags: ['auth'],
            body: {
              type: 'object',
              required: ['name'],
              additionalProperties: false,
              properties: { name: nameSchema, groups: groupsSchema },
            },
            response: { 201: userSchema, '4xx': errorBodySchema, '5xx': errorBodySchema },
          },
        },
        async (request, reply) => {
          const admin = callerOf(request)
          const body = request.body as { name: string; groups?: string[] }
          request.auditPath = body.name
          const user = await auth.addUser(admin, body.name, body.groups ?? [])
          let home: string
          try {
            home = await deps.createHome(admin, body.name)
          } catch (err) {
            // All or nothing: no user without its home.
            await auth.removeUser(admin, body.name).catch(() => undefined)
            throw err
          }
          return reply.status(201).send({ ...userJson(user), home })
        },
      )

      app.get(
        '/api/v1/users',
        {
          config: { auth: 'admin' },
          schema: {
            summary: 'Every user (admins)',
            tags: ['auth'],
            querystring: {
              type: 'object',
              properties: {
                startAfter: { type: 'string' },
                limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 1000 },
              },
            },
            response: {
              200: {
                type: 'object',
                required: ['users'],
                properties: { users: { type: 'array', items: userSchema } },
              },
              '4xx': errorBodySchema,
            },
          },
        },
        async (request) => {
          const q = request.query as { startAfter?: string; limit: number }
          const users = await auth.listUsers(callerOf(request), { startAfter: q.startAfter, limit: q.limit })
          return { users: users.map(userJson) }
        },
      )

      app.get(
        '/api/v1/users/:name',
        {
          schema: {
            summary: 'One user (admins, or the user itself)',
            tags: ['auth'],
            params: nameParams,
            response: { 200: userSchema, '4xx': errorBodySchema },
          },
        },
        async (request) => {
          const { name } = request.params as { name: string }
          return userJson(await auth.getUser(callerOf(request), name))
        },
      )

      app.patch(
        '/api/v1/users/:name',
        {
          config: { auth: 'admin', audit: 'user.update' },
          schema: {
            summary: "Change a user's groups or disable it (admins)",
            tags: ['auth'],
            params: nameParams,
            body: {
              type: 'object',
              additionalProperties: false,
              minProperties: 1,
              properties: { groups: groupsSchema, disabled: { type: 'boolean' } },
            },
            response: { 200: userSchema, '4xx': errorBodySchema },
          },
        },
        async (request) => {
          const { name } = request.params as { name: string }
          request.auditPath = name
          const body = request.body as { groups?: string[]; disabled?: boolean }
          return userJson(await auth.setUser(callerOf(request), name, body))
        },
      )

      app.post(
        '/api/v1/users/:name/certificate',
        {
          config: { audit: 'certificate.issue' },
          schema: {
            summary: 'A TLS client certificate from the cluster CA for a user (admins, or the user itself)',
            tags: ['auth'],
            params: nameParams,
            body: {
              type: 'object',
              required: ['publicKeyPem'],
              additionalProperties: false,
              properties: {
                publicKeyPem: { type: 'string', maxLength: 4096, description: 'SPKI PEM of a P-256 key' },
                validityDays: { type: 'integer', minimum: 1, maximum: 365, default: 30 },
              },
            },
            response: {
              201: {
                type: 'object',
                required: ['certificatePem', 'caCertificatePem'],
                properties: { certificatePem: { type: 'string' }, caCertificatePem: { type: 'string' } },
              },
              '4xx': errorBodySchema,
              '5xx': errorBodySchema,
            },
          },
        },
        async (request, reply) => {
          const { name } = request.params as { name: string }
          const body = request.body as { publicKeyPem: string; validityDays: number }
          request.auditPath = `user:${name}`
          const caller = callerOf(request)
          // A user certificate acts in no project: a principal acting in one gets none (it would carry
          // the principal out of its project; a project-user certificate is POST /projects/:name/certs).
          if ((caller.project ?? '') !== '')
            throw new ProjectError(
              'PROJECT_ACCESS_DENIED',
              `${caller.user} acts in project ${caller.project}: it gets no user certificate`,
            )
          const user = await auth.getUser(caller, name)
          if (user.disabled) throw new AuthError('USER_DISABLED', `user ${name} is disabled`)
          if (deps.issueCertificate === undefined)
            throw new HopsError('UNAVAILABLE', 'this node cannot issue certificates (no cluster CA here)')
          return reply
            .status(201)
            .send(await deps.issueCertificate(name, body.publicKeyPem, body.validityDays))
        },
      )

      app.delete(
        '/api/v1/users/:name',
        {
          config: { auth: 'admin', audit: 'user.remove' },
          schema: {
            summary: 'Remove a user with its keys and delegation tokens (admins); its files stay',
            tags: ['auth'],
            params: nameParams,
            response: {
              200: {
                type: 'object',
                required: ['name', 'keysRemoved', 'tokensRemoved'],
                properties: {
                  name: { type: 'string' },
                  keysRemoved: { type: 'integer' },
                  tokensRemoved: { type: 'integer' },
                },
              },
              '4xx': errorBodySchema,
            },
          },
        },
        async (request) => {
          const { name } = request.params as { name: string }
          request.auditPath = name
          return auth.removeUser(callerOf(request), name)
        },
      )
    },
  }
}
