/**
 * The `datanode` module (role datanode): wires the datanode (src/fs/datanode) into the daemon — block
 * directories and capacity from the config, the data plane as its PeerNetwork (block streams over TLS, requests over libp2p), the metadata group through the
 * cluster client (or the local replica and block manager on a metadata node), the wall clock, a seeded
 * Rng — and serves its write route (src/api/routes/datanode.ts).
 */
import { randomInt } from 'node:crypto'
import { join } from 'node:path'
import { createWriteTokens, datanodeRoutes } from '../../api/index.js'
import { createSeededRng } from '../../consensus/index.js'
import { heartbeatIntervalMs } from '../../fs/blocks/index.js'
import { createDatanode } from '../../fs/datanode/index.js'
import { realClock } from '../membership/index.js'
import { requireService, type NodeModule } from '../module.js'
import { grantVerifierOf } from './trust.js'

export function datanodeModule(): NodeModule<'datanode'> {
  return {
    name: 'datanode',
    roles: ['datanode'],
    create(components) {
      const { config, identity, logger } = components
      const cluster = requireService(components, 'cluster')
      const localMeta = components.services.metadata
      const membership = requireService(components, 'membership')
      const datanode = createDatanode({
        selfId: identity.id,
        zone: config.zone,
        store: {
          dirs: config.blockDirs.length > 0 ? config.blockDirs : [join(config.dataDir, 'blocks')],
          capacityBytesMax: config.blockCapacityBytes,
          reservedBytes: config.blockCapacityBytes > 0 ? 0 : undefined,
        },
        peers: requireService(components, 'dataplane').network,
        metadata: {
          // A write's grant goes with its proposals: the metadata node proposes them as its principal.
          propose: (command, opts) =>
            cluster.propose(
              command,
              opts?.grant === undefined ? undefined : { credential: { grant: opts.grant } },
            ),
          leaderId: async () => (await cluster.status()).leader?.id,
        },
        localManager: components.services.blockmanager,
        clock: realClock,
        rng: createSeededRng(randomInt(0x1_0000_0000)),
        heartbeatMs: heartbeatIntervalMs(config.gossipIntervalMs),
        scanBytesPerS: config.blockScanBytesPerS,
        logger: logger.child({ area: 'datanode' }),
      })
      return {
        api: datanode,
        routes: datanodeRoutes({
          datanode,
          nodeId: identity.id,
          // Write Locations are signed by metadata nodes: the members of the group as this node's
          // replica knows them, or (no replica here) the metadata nodes of the gossip view. The
          // metadata group checks the token again with every command the write proposes.
          tokens: createWriteTokens({
            verifier: grantVerifierOf((id) =>
              localMeta !== undefined
                ? localMeta.isMember(id)
                : membership.view().some((n) => n.id === id && n.roles.includes('metadata')),
            ),
          }),
        }),
        service: { start: (signal) => datanode.start(signal), stop: (signal) => datanode.stop(signal) },
      }
    },
  }
}
