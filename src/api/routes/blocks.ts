/**
 * The block manager's routes (metadata nodes): a file's block layout (read access to the file),
 * decommissioning a datanode (admins), and the fsck report (any caller; the paths of unhealthy files
 * only to admins). The logic is the block manager's (src/fs/blocks); this only speaks HTTP.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { FsError } from '../../fs/index.js'
import type { BlockHealth, BlockManager } from '../../fs/blocks/index.js'
import { callerOf, credentialsOf } from '../auth-hook.js'
import type { ApiRoutes } from '../server.js'

/** Deadline of the read barrier behind a layout, and of asking the leader for its health report. */
const CALL_TIMEOUT_MS = 10_000

export function blockRoutes(manager: BlockManager): ApiRoutes {
  return {
    name: 'blocks',
    register(app: FastifyInstance) {
      app.get(
        '/api/v1/fs/blocks',
        {
          // The block manager re-checks the caller after its read barrier.
          config: { authFresh: false },
          schema: {
            summary: "A file's blocks with their replicas' nodes and zones",
            tags: ['fs'],
            querystring: {
              type: 'object',
              properties: { path: { type: 'string' }, 'user.name': { type: 'string' } },
              required: ['path'],
            },
            response: { 200: { type: 'object', additionalProperties: true } },
          },
        },
        async (req) => {
          const q = req.query as { path: string }
          return manager.fileBlocks(callerOf(req), q.path, AbortSignal.timeout(CALL_TIMEOUT_MS))
        },
      )
      app.put(
        '/api/v1/fs/datanodes/state',
        {
          config: { auth: 'admin', audit: 'admin.operation' },
          schema: {
            summary:
              'Decommission a datanode (DRAINING: its blocks are copied elsewhere, then it is DECOMMISSIONED) or return it to NORMAL (admins)',
            tags: ['fs'],
            querystring: {
              type: 'object',
              properties: {
                node: { type: 'string' },
                state: { type: 'string', enum: ['NORMAL', 'DRAINING'] },
                'user.name': { type: 'string' },
              },
              required: ['node', 'state'],
            },
            response: { 200: { type: 'object', additionalProperties: true } },
          },
        },
        async (req) => {
          const q = req.query as { node: string; state: 'NORMAL' | 'DRAINING' }
          req.auditPath = `datanode:${q.node}=${q.state}`
          return (await manager.setDatanodeState(callerOf(req), q.node, q.state)) as Record<string, unknown>
        },
      )
      app.get(
        '/api/v1/fs/health',
        {
          schema: {
            summary: 'Under-replicated, missing and corrupt blocks; datanodes (fsck)',
            tags: ['fs'],
            response: { 200: { type: 'object', additionalProperties: true } },
          },
        },
        async (req) => {
          // Datanodes' soft state lives on the leader: ask it when this node is not the leader, with
          // the caller's own credential (the leader authenticates it and decides what it shows).
          const leader = manager.leaderHttp()
          if (leader === undefined) return healthFor(req, manager.health())
          const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : ''
          const res = await fetch(`http://${leader}/api/v1/fs/health${query}`, {
            signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
            headers: forwardedCredentialHeaders(req),
          })
          if (res.status === 401 || res.status === 403) {
            const body = (await res.json()) as { error?: { code?: string; message?: string } }
            throw Object.assign(new Error(body.error?.message ?? `the leader answered ${res.status}`), {
              code: body.error?.code ?? 'UNAUTHENTICATED',
            })
          }
          if (res.status !== 200)
            throw new FsError('NOT_ENOUGH_DATANODES', `the leader answered ${res.status}`)
          return (await res.json()) as BlockHealth
        },
      )
    },
  }
}

/** The fsck report as `req`'s caller may see it: the paths of unhealthy files only for admins. */
function healthFor(req: FastifyRequest, h: BlockHealth): BlockHealth {
  if (req.caller?.superuser) return h
  return {
    ...h,
    underReplicatedBlocks: h.underReplicatedBlocks.map((b) => ({ ...b, path: '' })),
    missingBlocks: h.missingBlocks.map((b) => ({ ...b, path: '' })),
    corruptReplicas: h.corruptReplicas.map((b) => ({ ...b, path: '' })),
  }
}

/** The caller's credential headers, to ask another node on its behalf. */
function forwardedCredentialHeaders(req: FastifyRequest): Record<string, string> {
  const c = credentialsOf(req)
  const out: Record<string, string> = {}
  if (typeof req.headers.authorization === 'string') out['authorization'] = req.headers.authorization
  if (c.grant !== undefined) out['x-hopsd-grant'] = c.grant
  return out
}
