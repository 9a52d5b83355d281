/**
 * The `p2p` module: the node's libp2p host (every node). It reuses the node key, so the peer id is the
 * node id, and takes the swarm key from --swarm-key / HOPSD_SWARM_KEY or `<data-dir>/swarm.key`
 * (created on first start: a lone node works out of the box; a cluster shares one `hopsd keygen` key).
 */
import { chmodSync, existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { VERSION } from '../../version.js'
import type { NodeModule } from '../module.js'
import {
  createP2PHost,
  generateSwarmKey,
  loadSwarmKeyFile,
  resolveSwarmKey,
  P2P_TIMINGS_LAN,
  P2P_TIMINGS_TEST,
  type P2PHost,
  type P2PTimings,
} from '../p2p/index.js'

export const SWARM_KEY_FILE = 'swarm.key'

/** What later modules get: the host, available once the p2p module has started. */
export interface P2PNode {
  host(): P2PHost
}

export function p2pModule(): NodeModule<'p2p'> {
  return {
    name: 'p2p',
    create(components) {
      const { config, identity, logger } = components
      let host: P2PHost | undefined
      const api: P2PNode = {
        host() {
          if (host === undefined) throw new Error('p2p: host used before the p2p module started')
          return host
        },
      }
      return {
        api,
        service: {
          async start(signal) {
            host = await createP2PHost({
              privateKey: identity.privateKey,
              listen: config.p2p,
              swarmKey: loadSwarmKey(config.swarmKey, config.dataDir),
              join: config.join,
              logger: logger.child({ area: 'p2p' }),
              signal,
              version: VERSION,
              timings: timingsFor(config.gossipIntervalMs),
            })
          },
          async stop() {
            await host?.stop()
          },
        },
      }
    },
  }
}

/** The configured swarm key, or the data dir's own (created with mode 0600 when missing). */
export function loadSwarmKey(setting: string | undefined, dataDir: string): Uint8Array {
  if (setting !== undefined) return resolveSwarmKey(setting)
  const path = join(dataDir, SWARM_KEY_FILE)
  if (!existsSync(path)) {
    writeFileSync(path, generateSwarmKey(), { mode: 0o600, flag: 'wx' })
    chmodSync(path, 0o600)
  }
  return loadSwarmKeyFile(path)
}

/** Fast gossip (tests) gets the fast p2p timings too: joins retry quickly and pings notice loss sooner. */
function timingsFor(gossipIntervalMs: number): P2PTimings {
  return gossipIntervalMs < 500 ? P2P_TIMINGS_TEST : P2P_TIMINGS_LAN
}
