/**
 * The `datanode` module (role datanode): wires the datanode (src/fs/datanode) into the daemon — block
 * directories and capacity from the config, libp2p as its PeerNetwork, the metadata group through the
 * cluster client (or the local replica and block manager on a metadata node), the wall clock, a seeded
 * Rng — and serves its write route (src/api/routes/datanode.ts).
 */
import { randomInt } from 'node:crypto'
import { join } from 'node:path'
import { datanodeRoutes, webhdfsTokenKey } from '../../api/index.js'
import { createSeededRng } from '../../consensus/index.js'
import { heartbeatIntervalMs } from '../../fs/blocks/index.js'
import { createDatanode } from '../../fs/datanode/index.js'
import { realClock } from '../membership/index.js'
import { requireService, type NodeModule } from '../module.js'
import { libp2pPeerNetwork } from '../p2p/index.js'
import { loadSwarmKey } from './p2p-module.js'

export function datanodeModule(): NodeModule<'datanode'> {
  return {
    name: 'datanode',
    roles: ['datanode'],
    create(components) {
      const { config, identity, logger } = components
      const p2p = requireService(components, 'p2p')
      const cluster = requireService(components, 'cluster')
      const localMeta = components.services.metadata
      const datanode = createDatanode({
        selfId: identity.id,
        zone: config.zone,
        store: {
          dirs: config.blockDirs.length > 0 ? config.blockDirs : [join(config.dataDir, 'blocks')],
          capacityBytesMax: config.blockCapacityBytes,
          reservedBytes: config.blockCapacityBytes > 0 ? 0 : undefined,
        },
        peers: libp2pPeerNetwork(() => p2p.host()),
        metadata: {
          // A write's grant goes with its proposals: the metadata node proposes them as its principal.
          propose: (command, opts) =>
            cluster.propose(
              command,
              opts?.grant === undefined ? undefined : { credential: { grant: opts.grant } },
            ),
          leaderId: async () => (await cluster.status()).leader?.id,
          metadataHttpAddr: () => cluster.metadataTargets().find((n) => n.httpAddr !== '')?.httpAddr,
        },
        localManager: components.services.blockmanager,
        localMeta:
          localMeta === undefined
            ? undefined
            : {
                group: {
                  propose: (command, opts) => localMeta.group.propose(command, opts),
                  readBarrier: (opts) => localMeta.group.readBarrier(opts),
                },
                stateMachine: localMeta.stateMachine,
              },
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
          tokenKey: webhdfsTokenKey(loadSwarmKey(config.swarmKey, config.dataDir)),
          clock: Date.now,
        }),
        service: { start: (signal) => datanode.start(signal), stop: (signal) => datanode.stop(signal) },
      }
    },
  }
}
