/**
 * The block manager's routes (metadata nodes): a file's block layout, decommissioning a datanode, and
 * the fsck report. The logic is the block manager's (src/fs/blocks); this only speaks HTTP.
 */
import type { FastifyInstance } from 'fastify'
import { FsError } from '../../fs/index.js'
import type { BlockHealth, BlockManager } from '../../fs/blocks/index.js'
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
          const q = req.query as { path: string; 'user.name'?: string }
          return manager.fileBlocks(q['user.name'], q.path, AbortSignal.timeout(CALL_TIMEOUT_MS))
        },
      )
      app.put(
        '/api/v1/fs/datanodes/state',
        {
          schema: {
            summary:
              'Decommission a datanode (DRAINING: its blocks are copied elsewhere, then it is DECOMMISSIONED) or return it to NORMAL (superuser)',
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
          const q = req.query as { node: string; state: 'NORMAL' | 'DRAINING'; 'user.name'?: string }
          return (await manager.setDatanodeState(q['user.name'] ?? '', q.node, q.state)) as Record<
            string,
            unknown
          >
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
        async () => {
          // Datanodes' soft state lives on the leader: ask it when this node is not the leader.
          const leader = manager.leaderHttp()
          if (leader === undefined) return manager.health()
          const res = await fetch(`http://${leader}/api/v1/fs/health`, {
            signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
          })
          if (res.status !== 200)
            throw new FsError('NOT_ENOUGH_DATANODES', `the leader answered ${res.status}`)
          return (await res.json()) as BlockHealth
        },
      )
    },
  }
}
