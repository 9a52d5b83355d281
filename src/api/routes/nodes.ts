// GET /api/v1/nodes: this node's gossip membership view (src/node/membership), the same on any node
// once the cluster has converged. Closed over a structural `view()` so the API depends on no node code.
import type { FastifyInstance } from 'fastify'
import type { ApiRoutes } from '../server.js'

/** One node as the membership view shows it (src/node/membership NodeView has exactly these fields). */
export interface NodesRouteNode {
  readonly id: string
  readonly zone: string
  readonly roles: readonly string[]
  readonly httpAddr: string
  readonly p2pAddrs: readonly string[]
  readonly version: string
  readonly capacity: {
    readonly diskBytesTotal: number
    readonly diskBytesUsed: number
    readonly diskBytesFree: number
    readonly blockBytesUsed: number
    readonly gpus: number
    readonly gpusFree: number
    readonly cpuCores: number
    readonly memoryBytes: number
  }
  readonly state: string
  readonly incarnation: number
  readonly seq: number
  readonly liveness: string
  readonly lastSeenMs: number
  readonly self: boolean
}

export interface NodesRoutesDeps {
  /** This node's id (answers as `self`). */
  readonly selfId: string
  /** The membership view, ourselves included (`membership.view()`). */
  view(): readonly NodesRouteNode[]
}

const nodeSchema = {
  type: 'object',
  required: [
    'id',
    'zone',
    'roles',
    'httpAddr',
    'p2pAddrs',
    'version',
    'capacity',
    'state',
    'liveness',
    'lastSeenMs',
    'self',
  ],
  properties: {
    id: { type: 'string', description: 'node id (libp2p peer id)' },
    zone: { type: 'string' },
    roles: { type: 'array', items: { type: 'string' } },
    httpAddr: { type: 'string', description: 'HOST:PORT of the node HTTP API' },
    p2pAddrs: { type: 'array', items: { type: 'string' }, description: 'multiaddrs the node listens on' },
    version: { type: 'string' },
    capacity: {
      type: 'object',
      description: 'what the node measured and published about itself (every few gossip intervals)',
      properties: {
        diskBytesTotal: {
          type: 'integer',
          description: 'size of the file systems of its data dir and block dirs (statfs), each counted once',
        },
        diskBytesUsed: { type: 'integer', description: 'bytes used there, by anything' },
        diskBytesFree: { type: 'integer', description: 'bytes free there for an unprivileged writer' },
        blockBytesUsed: {
          type: 'integer',
          description: "bytes of hopsd's finalised block replicas on the node (0 without the datanode role)",
        },
        gpus: { type: 'integer', description: '0 until the GPU inventory is composed into the daemon' },
        gpusFree: { type: 'integer' },
        cpuCores: { type: 'integer' },
        memoryBytes: { type: 'integer', description: 'physical memory' },
      },
    },
    state: {
      type: 'string',
      enum: ['active', 'draining', 'leaving', 'left', 'unknown'],
      description:
        "the lifecycle the node last declared (active, draining, leaving, left); 'unknown' once this node holds it dead. Whether it is up is `liveness`",
    },
    incarnation: { type: 'integer', description: 'start time of the node current run (ms)' },
    seq: { type: 'integer', description: 'publication counter within the incarnation' },
    liveness: {
      type: 'string',
      enum: ['alive', 'suspect', 'dead', 'left'],
      description:
        "whether the node is up, as this node concludes from when it last heard from it: 'suspect' after --suspect-after-ms of silence, 'dead' after --dead-after-ms, 'left' when it announced its departure",
    },
    lastSeenMs: { type: 'integer', description: 'when this node last heard from it (ms since the epoch)' },
    self: { type: 'boolean', description: 'true for the answering node' },
  },
} as const

const nodesSchema = {
  type: 'object',
  required: ['self', 'nodes'],
  properties: {
    self: { type: 'string', description: 'id of the answering node' },
    nodes: { type: 'array', items: nodeSchema },
  },
} as const

export function nodesRoutes(deps: NodesRoutesDeps): ApiRoutes {
  return {
    name: 'nodes',
    register(app: FastifyInstance) {
      app.get(
        '/api/v1/nodes',
        {
          schema: {
            summary: 'The cluster as this node sees it: every member with liveness (gossip view)',
            tags: ['node'],
            response: { 200: nodesSchema },
          },
        },
        async () => ({ self: deps.selfId, nodes: deps.view() }),
      )
    },
  }
}
