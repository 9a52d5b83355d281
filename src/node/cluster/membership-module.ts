/**
 * The `membership` module (every node): the gossip view of the cluster (src/node/membership) over the
 * p2p host, and `GET /api/v1/nodes`. Before the module starts, and on a node that failed to start it,
 * the view is empty.
 */
import { nodesRoutes } from '../../api/index.js'
import { formatAddress } from '../config.js'
import { requireService, type NodeModule } from '../module.js'
import {
  createMembership,
  MEMBERSHIP_LAN,
  type Membership,
  type MembershipConfig,
  type NodeInfo,
  type NodeView,
  type SelfUpdate,
} from '../membership/index.js'
import { VERSION } from '../../version.js'

export interface MembershipNode {
  view(): NodeView[]
  get(id: string): NodeView | undefined
  /** What this node publishes about itself; undefined before the module started. */
  self(): NodeInfo | undefined
  /** Changes what this node publishes (published at once); ignored before the module started. */
  update(change: SelfUpdate): void
}

export function membershipModule(): NodeModule<'membership'> {
  return {
    name: 'membership',
    create(components) {
      const { config, logger } = components
      const p2p = requireService(components, 'p2p')
      let membership: Membership | undefined
      const api: MembershipNode = {
        view: () => membership?.view() ?? [],
        get: (id) => membership?.get(id),
        self: () => membership?.self(),
        update: (change) => membership?.update(change),
      }
      const timings: Partial<MembershipConfig> = {
        gossipIntervalMs: config.gossipIntervalMs,
        suspectAfterMs: config.suspectAfterMs,
        deadAfterMs: config.deadAfterMs,
        // Liveness is checked a few times per heartbeat so a threshold is seen soon after it passes.
        tickMs: Math.max(10, Math.min(MEMBERSHIP_LAN.tickMs, Math.floor(config.gossipIntervalMs / 2))),
        stallGraceMs: Math.max(50, Math.min(MEMBERSHIP_LAN.stallGraceMs, config.suspectAfterMs / 2)),
      }
      return {
        api,
        routes: nodesRoutes({ selfId: components.identity.id, view: () => api.view() }),
        service: {
          async start() {
            membership = createMembership({
              host: p2p.host(),
              self: {
                zone: config.zone,
                roles: config.roles,
                httpAddr: formatAddress(config.http),
                version: VERSION,
              },
              config: timings,
              logger: logger.child({ area: 'membership' }),
            })
            await membership.start()
            // With --http HOST:0 the real port is known once the API listens.
            void components.httpListening.then((addr) =>
              membership?.update({ httpAddr: formatAddress(addr) }),
            )
          },
          async stop() {
            await membership?.stop()
          },
        },
      }
    },
  }
}
