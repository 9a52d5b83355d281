/**
 * Projects (src/projects): each change is one command to the metadata group, authorized again inside
 * apply (Data Owners manage their project; admins acting in no project manage any).
 * - `POST   /api/v1/projects` {name}                              a project; the caller is its Data Owner
 * - `GET    /api/v1/projects`                                     the caller's projects (admins: all)
 * - `GET    /api/v1/projects/:name`                               members, datasets, shares, usage vs quota
 * - `DELETE /api/v1/projects/:name?confirm=NAME`                  the project with its datasets
 * - `POST   /api/v1/projects/:name/members` {user, role}          adds a member or changes its role
 * - `DELETE /api/v1/projects/:name/members/:user`
 * - `POST   /api/v1/projects/:name/datasets` {name, sensitive?}
 * - `DELETE /api/v1/projects/:name/datasets/:dataset`
 * - `POST   /api/v1/projects/:name/datasets/:dataset/shares` {project, access: "read"|"write"}
 * - `DELETE /api/v1/projects/:name/datasets/:dataset/shares/:project`
 * - `PUT    /api/v1/projects/:name/quota` {storageBytes, fileCount, gpuHours} (admins; -1 = none)
 * - `POST   /api/v1/projects/:name/certs` {publicKeyPem | csrPem, ttlS?}  a project-user certificate
 *   (CN=<project>__<user>) for the caller's own key; the private key stays with the client
 * - `GET    /api/v1/projects/:name/certs`                         the caller's (Data Owners: every member's)
 * - `DELETE /api/v1/projects/:name/certs/:serial`                 revoke (its user, Data Owners, admins)
 * Names are checked by the projects area (INVALID_PROJECT_NAME says which rule a name breaks).
 */
import type { FastifyInstance } from 'fastify'
import type { ProjectService, ProjectView } from '../../projects/index.js'
import { errorBodySchema } from '../error-mapper.js'
import { callerOf } from '../auth-hook.js'
import type { ApiRoutes } from '../server.js'

export interface ProjectsRoutesDeps {
  readonly projects: ProjectService
}

/** Names are checked inside apply, with the reason; the schema only bounds their length. */
const name = { type: 'string', minLength: 1, maxLength: 200 } as const
const userName = { type: 'string', minLength: 1, maxLength: 64 } as const
const role = { type: 'string', enum: ['DATA_OWNER', 'DATA_SCIENTIST'] } as const
const access = { type: 'string', enum: ['read', 'write'] } as const
const errors = { '4xx': errorBodySchema, '5xx': errorBodySchema } as const

const usage = {
  type: 'object',
  properties: { used: { type: 'number' }, quota: { type: 'number', description: '-1: no limit' } },
} as const

const projectSchema = {
  type: 'object',
  required: ['name', 'role', 'members', 'datasets', 'shared', 'quota'],
  properties: {
    name: { type: 'string' },
    createdMs: { type: 'integer' },
    createdBy: { type: 'string' },
    role: { type: 'string', description: "the caller's role ('' for an admin who is no member)" },
    members: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          user: { type: 'string' },
          role: { type: 'string' },
          addedMs: { type: 'integer' },
          addedBy: { type: 'string' },
        },
      },
    },
    datasets: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          path: { type: 'string' },
          sensitive: { type: 'boolean' },
          createdMs: { type: 'integer' },
          shares: {
            type: 'array',
            items: {
              type: 'object',
              properties: { project: { type: 'string' }, access: { type: 'string' } },
            },
          },
        },
      },
    },
    shared: {
      type: 'array',
      description: 'datasets other projects shared with this one',
      items: {
        type: 'object',
        properties: {
          alias: { type: 'string' },
          path: { type: 'string' },
          project: { type: 'string' },
          dataset: { type: 'string' },
          access: { type: 'string' },
        },
      },
    },
    quota: {
      type: 'object',
      properties: { storageBytes: usage, fileCount: usage, gpuHours: usage },
    },
  },
} as const

const projectParams = {
  type: 'object',
  required: ['name'],
  properties: { name },
} as const

const datasetParams = {
  type: 'object',
  required: ['name', 'dataset'],
  properties: { name, dataset: name },
} as const

const certificateSchema = {
  type: 'object',
  required: ['serial', 'project', 'user', 'subject', 'notBefore', 'notAfter', 'status'],
  properties: {
    serial: { type: 'string', description: 'lowercase hex' },
    project: { type: 'string' },
    user: { type: 'string' },
    subject: { type: 'string', description: 'the CN: <project>__<user>' },
    notBefore: { type: 'string', format: 'date-time' },
    notAfter: { type: 'string', format: 'date-time' },
    issued: { type: 'string', format: 'date-time' },
    revoked: { type: ['string', 'null'], description: 'when it was revoked (null: not revoked)' },
    revokedBy: { type: 'string' },
    status: { type: 'string', enum: ['valid', 'expired', 'revoked'] },
  },
} as const

const issuedCertificateSchema = {
  ...certificateSchema,
  required: [...certificateSchema.required, 'certificatePem', 'caCertificatePem', 'chainPem'],
  properties: {
    ...certificateSchema.properties,
    certificatePem: { type: 'string' },
    caCertificatePem: { type: 'string', description: 'the cluster CA' },
    chainPem: { type: 'string', description: 'the certificate, then the cluster CA' },
  },
} as const

export function projectsRoutes(deps: ProjectsRoutesDeps): ApiRoutes {
  const { projects } = deps
  return {
    name: 'projects',
    register(app: FastifyInstance) {
      app.post(
        '/api/v1/projects',
        {
          config: { audit: 'project.create' },
          schema: {
            summary:
              'Create a project (the caller becomes its Data Owner) with /Projects/<name> and its default datasets',
            tags: ['projects'],
            body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name } },
            response: { 201: projectSchema, ...errors },
          },
        },
        async (request, reply) => {
          const caller = callerOf(request)
          const { name: project } = request.body as { name: string }
          request.auditPath = `project:${project}`
          await projects.create(caller, project)
          const view: ProjectView = await projects.describe({ ...caller, project: '' }, project)
          return reply.status(201).send(view)
        },
      )

      app.get(
        '/api/v1/projects',
        {
          schema: {
            summary: 'The projects the caller is a member of (admins: every project)',
            tags: ['projects'],
            response: {
              200: {
                type: 'object',
                required: ['projects'],
                properties: {
                  projects: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: { name: { type: 'string' }, role: { type: 'string' } },
                    },
                  },
                },
              },
              ...errors,
            },
          },
        },
        async (request) => ({ projects: await projects.list(callerOf(request)) }),
      )

      app.get(
        '/api/v1/projects/:name',
        {
          schema: {
            summary: 'A project: members, datasets, shares and usage against quota (members and admins)',
            tags: ['projects'],
            params: projectParams,
            response: { 200: projectSchema, ...errors },
          },
        },
        async (request) => {
          const { name: project } = request.params as { name: string }
          return projects.describe(callerOf(request), project)
        },
      )

      app.delete(
        '/api/v1/projects/:name',
        {
          config: { audit: 'project.delete' },
          schema: {
            summary: 'Delete a project with its datasets (Data Owners, admins); confirm must repeat its name',
            tags: ['projects'],
            params: projectParams,
            querystring: {
              type: 'object',
              properties: { confirm: { type: 'string', maxLength: 200 } },
            },
            response: {
              200: {
                type: 'object',
                properties: { name: { type: 'string' }, deleted: { type: 'boolean' } },
              },
              ...errors,
            },
          },
        },
        async (request) => {
          const { name: project } = request.params as { name: string }
          const { confirm } = request.query as { confirm?: string }
          request.auditPath = `project:${project}`
          return projects.delete(callerOf(request), project, confirm ?? '')
        },
      )

      app.post(
        '/api/v1/projects/:name/members',
        {
          schema: {
            summary: "Add a member or change a member's role (Data Owners, admins)",
            tags: ['projects'],
            params: projectParams,
            body: {
              type: 'object',
              required: ['user', 'role'],
              additionalProperties: false,
              properties: { user: userName, role },
            },
            response: {
              201: {
                type: 'object',
                properties: {
                  project: { type: 'string' },
                  user: { type: 'string' },
                  role: { type: 'string' },
                  previousRole: { type: 'string', description: "'' when the user was no member" },
                },
              },
              ...errors,
            },
          },
        },
        async (request, reply) => {
          const { name: project } = request.params as { name: string }
          const body = request.body as { user: string; role: 'DATA_OWNER' | 'DATA_SCIENTIST' }
          request.auditPath = `project:${project} user:${body.user} role:${body.role}`
          const r = await projects.setMember(callerOf(request), project, body.user, body.role)
          request.auditKind = r.previousRole === '' ? 'project.member.add' : 'project.role.change'
          return reply.status(201).send(r)
        },
      )

      app.delete(
        '/api/v1/projects/:name/members/:user',
        {
          config: { audit: 'project.member.remove' },
          schema: {
            summary: 'Remove a member (Data Owners, admins); refused for the last Data Owner',
            tags: ['projects'],
            params: {
              type: 'object',
              required: ['name', 'user'],
              properties: { name, user: userName },
            },
            response: {
              200: { type: 'object', properties: { project: { type: 'string' }, user: { type: 'string' } } },
              ...errors,
            },
          },
        },
        async (request) => {
          const { name: project, user } = request.params as { name: string; user: string }
          request.auditPath = `project:${project} user:${user}`
          return projects.removeMember(callerOf(request), project, user)
        },
      )

      app.post(
        '/api/v1/projects/:name/datasets',
        {
          config: { audit: 'project.dataset.create' },
          schema: {
            summary:
              'Create a dataset /Projects/<name>/<dataset> (Data Owners, admins); sensitive keeps its bytes in the project',
            tags: ['projects'],
            params: projectParams,
            body: {
              type: 'object',
              required: ['name'],
              additionalProperties: false,
              properties: { name, sensitive: { type: 'boolean', default: false } },
            },
            response: {
              201: {
                type: 'object',
                properties: {
                  project: { type: 'string' },
                  name: { type: 'string' },
                  sensitive: { type: 'boolean' },
                },
              },
              ...errors,
            },
          },
        },
        async (request, reply) => {
          const { name: project } = request.params as { name: string }
          const body = request.body as { name: string; sensitive: boolean }
          request.auditPath = `project:${project} dataset:${body.name}`
          return reply
            .status(201)
            .send(await projects.createDataset(callerOf(request), project, body.name, body.sensitive))
        },
      )

      app.delete(
        '/api/v1/projects/:name/datasets/:dataset',
        {
          config: { audit: 'project.dataset.delete' },
          schema: {
            summary: 'Delete a dataset with its files and shares (Data Owners, admins)',
            tags: ['projects'],
            params: datasetParams,
            response: {
              200: { type: 'object', properties: { project: { type: 'string' }, name: { type: 'string' } } },
              ...errors,
            },
          },
        },
        async (request) => {
          const { name: project, dataset } = request.params as { name: string; dataset: string }
          request.auditPath = `project:${project} dataset:${dataset}`
          return projects.deleteDataset(callerOf(request), project, dataset)
        },
      )

      const shareSchema = {
        type: 'object',
        properties: {
          project: { type: 'string' },
          dataset: { type: 'string' },
          target: { type: 'string' },
          access: { type: 'string' },
        },
      } as const

      app.post(
        '/api/v1/projects/:name/datasets/:dataset/shares',
        {
          config: { audit: 'project.share' },
          schema: {
            summary:
              'Share a dataset with another project (Data Owners): it sees it as /Projects/<project>/<name>::<dataset>, nothing copied',
            tags: ['projects'],
            params: datasetParams,
            body: {
              type: 'object',
              required: ['project', 'access'],
              additionalProperties: false,
              properties: { project: name, access },
            },
            response: { 201: shareSchema, ...errors },
          },
        },
        async (request, reply) => {
          const { name: project, dataset } = request.params as { name: string; dataset: string }
          const body = request.body as { project: string; access: 'read' | 'write' }
          request.auditPath = `project:${project} dataset:${dataset} with:${body.project} access:${body.access}`
          return reply
            .status(201)
            .send(await projects.share(callerOf(request), project, dataset, body.project, body.access))
        },
      )

      app.delete(
        '/api/v1/projects/:name/datasets/:dataset/shares/:project',
        {
          config: { audit: 'project.unshare' },
          schema: {
            summary: 'Stop sharing a dataset with a project (Data Owners): its alias goes at once',
            tags: ['projects'],
            params: {
              type: 'object',
              required: ['name', 'dataset', 'project'],
              properties: { name, dataset: name, project: name },
            },
            response: { 200: shareSchema, ...errors },
          },
        },
        async (request) => {
          const p = request.params as { name: string; dataset: string; project: string }
          request.auditPath = `project:${p.name} dataset:${p.dataset} with:${p.project}`
          return projects.unshare(callerOf(request), p.name, p.dataset, p.project)
        },
      )

      app.post(
        '/api/v1/projects/:name/certs',
        {
          config: { audit: 'project.cert.issue' },
          schema: {
            summary:
              "A project-user certificate (CN=<project>__<user>) from the cluster CA for the caller's own key (members, for themselves); with --tls the API takes it as that project-user",
            tags: ['projects'],
            params: projectParams,
            body: {
              type: 'object',
              additionalProperties: false,
              properties: {
                publicKeyPem: { type: 'string', maxLength: 4096, description: 'SPKI PEM of a P-256 key' },
                csrPem: {
                  type: 'string',
                  maxLength: 8192,
                  description: 'a PKCS#10 request instead (P-256; its CN, if any, must be <project>__<user>)',
                },
                ttlS: {
                  type: 'integer',
                  minimum: 1,
                  maximum: 10 * 365 * 86_400,
                  description:
                    'lifetime in seconds; at most the setting projectCertValidityMaxS (default 1 day, or that)',
                },
                user: { ...userName, description: 'must be the caller (default)' },
              },
            },
            response: { 201: issuedCertificateSchema, ...errors },
          },
        },
        async (request, reply) => {
          const { name: project } = request.params as { name: string }
          const body = request.body as {
            publicKeyPem?: string
            csrPem?: string
            ttlS?: number
            user?: string
          }
          request.auditPath = `project:${project} user:${body.user ?? request.caller?.user ?? ''}`
          const issued = await projects.issueCertificate(callerOf(request), project, body)
          request.auditPath = `project:${project} user:${issued.user} serial:${issued.serial}`
          return reply.status(201).send(issued)
        },
      )

      app.get(
        '/api/v1/projects/:name/certs',
        {
          schema: {
            summary: "The caller's certificates of the project (Data Owners and admins: every member's)",
            tags: ['projects'],
            params: projectParams,
            response: {
              200: {
                type: 'object',
                required: ['certificates'],
                properties: { certificates: { type: 'array', items: certificateSchema } },
              },
              ...errors,
            },
          },
        },
        async (request) => {
          const { name: project } = request.params as { name: string }
          return { certificates: await projects.certificates(callerOf(request), project) }
        },
      )

      app.delete(
        '/api/v1/projects/:name/certs/:serial',
        {
          config: { audit: 'project.cert.revoke' },
          schema: {
            summary:
              'Revoke a project-user certificate (its user, Data Owners, admins): refused from the next request on every node',
            tags: ['projects'],
            params: {
              type: 'object',
              required: ['name', 'serial'],
              properties: { name, serial: { type: 'string', pattern: '^[0-9A-Fa-f]{1,64}$' } },
            },
            response: { 200: certificateSchema, ...errors },
          },
        },
        async (request) => {
          const { name: project, serial } = request.params as { name: string; serial: string }
          request.auditPath = `project:${project} serial:${serial}`
          return projects.revokeCertificate(callerOf(request), project, serial)
        },
      )

      app.put(
        '/api/v1/projects/:name/quota',
        {
          config: { auth: 'admin', audit: 'project.quota' },
          schema: {
            summary:
              'Set the quotas of a project (admins): storage bytes and file count on /Projects/<name>, GPU-hours for the scheduler; -1 = none',
            tags: ['projects'],
            params: projectParams,
            body: {
              type: 'object',
              required: ['storageBytes', 'fileCount', 'gpuHours'],
              additionalProperties: false,
              properties: {
                storageBytes: { type: 'integer', minimum: -1, maximum: Number.MAX_SAFE_INTEGER },
                fileCount: { type: 'integer', minimum: -1, maximum: Number.MAX_SAFE_INTEGER },
                gpuHours: { type: 'number', minimum: -1, maximum: 1e12 },
              },
            },
            response: { 200: projectSchema, ...errors },
          },
        },
        async (request) => {
          const { name: project } = request.params as { name: string }
          const body = request.body as { storageBytes: number; fileCount: number; gpuHours: number }
          request.auditPath = `project:${project}`
          const caller = callerOf(request)
          await projects.setQuota(caller, project, body)
          return projects.describe(caller, project)
        },
      )
    },
  }
}
