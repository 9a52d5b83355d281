/**
 * The `cluster` module (every node): the cluster as any node sees it. On a metadata node it reads the
 * local replica; a node without the metadata role forwards to a live metadata node from the gossip
 * view (its own zone first) — proposals over `/hopsd/propose/1.0.0`, the status over
 * `/hopsd/cluster-status/1.0.0`. Serves `GET /api/v1/cluster`.
 */
import type { FastifyInstance } from 'fastify'
import { hopsd } from '../../proto/cluster.js'
import { HopsError } from '../../errors.js'
import type { ApiRoutes } from '../../api/index.js'
import { requireService, type NodeModule } from '../module.js'
import { request } from '../p2p/index.js'
import { PROTOCOLS } from './metadata-module.js'
import { clusterStatusSchema, type ClusterStatus, type MemberLike } from './status.js'
import { asAuthenticated, credentialToProto } from './trust.js'
import { isAuthErrorCode, type Credentials } from '../../auth/index.js'
import { errorBodySchema } from '../../api/index.js'

import pb = hopsd.cluster

export interface ClusterClient {
  /** The cluster document (leader, term, voters, learners, zones). */
  status(signal?: AbortSignal): Promise<ClusterStatus>
  /**
   * Proposes a metadata command and returns the state machine's result. With a `credential` (the
   * caller's, or a grant a metadata node signed) the command runs as the principal it proves — checked
   * by the metadata node that proposes it, never taken from the command; without one it runs as it
   * says only on this node's own replica (the node's own housekeeping), and as an anonymous caller when
   * forwarded.
   */
  propose(
    command: Uint8Array,
    opts?: { signal?: AbortSignal; session?: { clientId: string; seq: number }; credential?: Credentials },
  ): Promise<unknown>
  /** Live metadata nodes, own zone first: where forwarded requests go. */
  metadataTargets(): MemberLike[]
}

export function clusterClientModule(): NodeModule<'cluster'> {
  return {
    name: 'cluster',
    create(components) {
      const { config } = components
      const p2p = requireService(components, 'p2p')
      const membership = requireService(components, 'membership')
      const local = components.services.metadata

      const metadataTargets = (): MemberLike[] =>
        membership
          .view()
          .filter((n) => !n.self && n.roles.includes('metadata') && n.liveness === 'alive')
          .sort(
            (a, b) =>
              Number(b.zone === config.zone) - Number(a.zone === config.zone) || (a.id < b.id ? -1 : 1),
          )

      /** Tries each metadata node in turn until one answers. */
      const forward = async <T>(fn: (peer: string) => Promise<T>): Promise<T> => {
        const targets = metadataTargets()
        if (targets.length === 0) throw new HopsError('UNAVAILABLE', 'no live metadata node is known yet')
        let last: unknown
        for (const t of targets) {
          try {
            return await fn(t.id)
          } catch (err) {
            // A node that answered "who are you?" would answer the same on every node: say so.
            const remote = (err as { remoteCode?: unknown }).remoteCode
            if (typeof remote === 'string' && isAuthErrorCode(remote)) throw err
            last = err
          }
        }
        throw new HopsError('UNAVAILABLE', `no metadata node answered (last: ${(last as Error).message})`, {
          cause: last,
        })
      }

      const client: ClusterClient = {
        metadataTargets,
        async status(signal) {
          if (local !== undefined) return local.status()
          return forward(async (peer) => {
            const reply = await request(
              p2p.host(),
              peer,
              PROTOCOLS.status,
              pb.ClusterStatusRequest.encode({}).finish(),
              { signal },
            )
            return JSON.parse(pb.ClusterStatusReply.decode(reply).statusJson) as ClusterStatus
          })
        },
        async propose(command, opts = {}) {
          if (local !== undefined) {
            if (opts.credential === undefined) return local.group.propose(command, opts)
            const checked = await asAuthenticated(
              local.authenticator,
              opts.credential,
              command,
              components.identity.id,
              opts.signal,
            )
            return local.group.propose(checked.command, { signal: opts.signal })
          }
          return forward(async (peer) => {
            const body = pb.ProposeRequest.encode({
              command,
              clientId: opts.session?.clientId ?? '',
              seq: opts.session?.seq ?? 0,
              timeoutMs: 10_000,
              credential: credentialToProto(opts.credential),
            }).finish()
            const reply = await request(p2p.host(), peer, PROTOCOLS.propose, body, {
              signal: opts.signal,
              timeoutMs: 12_000,
            })
            return JSON.parse(pb.ProposeReply.decode(reply).resultJson) as unknown
          })
        },
      }
      return { api: client, routes: clusterRoutes(client) }
    },
  }
}

export function clusterRoutes(client: ClusterClient): ApiRoutes {
  return {
    name: 'cluster',
    register(app: FastifyInstance) {
      app.get(
        '/api/v1/cluster',
        {
          schema: {
            summary:
              'The cluster: id, Raft leader and term, voters and learners with their zones, nodes by zone',
            tags: ['cluster'],
            response: { 200: clusterStatusSchema, 503: errorBodySchema },
          },
        },
        async (req) => {
          const abort = new AbortController()
          req.raw.once('close', () => abort.abort())
          return client.status(abort.signal)
        },
      )
    },
  }
}
