/**
 * The `blockmanager` module (role metadata): wires the block manager (src/fs/blocks) into the daemon —
 * the local Raft group and state machine, the gossip view, the data plane as its PeerNetwork (block streams over TLS, requests over libp2p), the wall clock, a
 * seeded Rng, the daemon's metrics — and serves its routes (src/api/routes/blocks.ts: GET
 * /api/v1/fs/blocks, PUT /api/v1/fs/datanodes/state, GET /api/v1/fs/health).
 */
import { randomInt } from 'node:crypto'
import { blockRoutes } from '../../api/index.js'
import { createSeededRng } from '../../consensus/index.js'
import { createBlockManager, heartbeatIntervalMs } from '../../fs/blocks/index.js'
import { realClock } from '../membership/index.js'
import { requireService, type NodeModule } from '../module.js'

export function blockManagerModule(): NodeModule<'blockmanager'> {
  return {
    name: 'blockmanager',
    roles: ['metadata'],
    create(components) {
      const { config, identity, logger, metrics } = components
      const meta = requireService(components, 'metadata')
      const manager = createBlockManager({
        selfId: identity.id,
        zone: config.zone,
        // The Raft group exists once the metadata module started: reach it on each call.
        group: {
          propose: (command, opts) => meta.group.propose(command, opts),
          readBarrier: (opts) => meta.group.readBarrier(opts),
          status: () => meta.group.status(),
        },
        stateMachine: meta.stateMachine,
        cluster: requireService(components, 'membership'),
        peers: requireService(components, 'dataplane').network,
        clock: realClock,
        rng: createSeededRng(randomInt(0x1_0000_0000)),
        heartbeatMs: heartbeatIntervalMs(config.gossipIntervalMs),
        deadAfterMs: config.deadAfterMs,
        replicaGraceMs: config.replicaGraceMs,
        logger: logger.child({ area: 'blocks' }),
        metrics,
        httpScheme: config.tls ? 'https' : 'http',
        // Blocks are allocated as the principal of the write's grant, checked against this replica.
        authenticator: meta.authenticator,
      })
      return {
        api: manager,
        routes: blockRoutes(manager),
        service: { start: (signal) => manager.start(signal), stop: (signal) => manager.stop(signal) },
      }
    },
  }
}
