/**
 * The block manager's routes (metadata nodes): a file's block layout (read access to the file),
 * decommissioning a datanode (admins), and the fsck report (any caller; the paths of unhealthy files
 * only to admins). The logic is the block manager's (src/fs/blocks); this only speaks HTTP.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { BlockHealth, BlockManager } from '../../fs/blocks/index.js'
import { callerOf } from '../auth-hook.js'
import { errorBodySchema } from '../error-mapper.js'
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
            summary:
              "Under-replicated, missing and corrupt blocks; every datanode known, the dead included (fsck). From the metadata leader's knowledge; 503 UNAVAILABLE while it cannot be known (no leader, or a new leader still hearing from the datanodes)",
            tags: ['fs'],
            response: { 200: { type: 'object', additionalProperties: true }, 503: errorBodySchema },
          },
        },
        async (req, reply) => {
          // Datanodes' soft state lives on the leader: the manager asks it over p2p when this node is
          // not it. This node authenticated the caller and shows it what it may see (paths to admins).
          // The response closing before it was sent means the client went away.
          const abort = new AbortController()
          reply.raw.once('close', () => abort.abort())
          const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(CALL_TIMEOUT_MS)])
          return healthFor(req, await manager.health(signal))
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
