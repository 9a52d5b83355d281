/**
 * The `p2p` module: the node's libp2p host (every node). It reuses the node key, so the peer id is the
 * node id, and takes the swarm key from --swarm-key / HOPSD_SWARM_KEY or `<data-dir>/swarm.key`
 * (created on first start: a lone node works out of the box; a cluster shares one `hopsd keygen` key).
 *
 * The host's peer gate (src/node/admission, createPeerTrust) is in force from the first connection:
 * it starts with the CA, certificate and CRL the node kept in `<data-dir>/tls` (the tls module keeps
 * them current), so a restarted node never serves an uncertified peer, even for a moment.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { VERSION } from '../../version.js'
import { createPeerTrust, TRUST_TIMINGS, type PeerTrust, type TrustTimings } from '../admission/index.js'
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
  type PeerGate,
} from '../p2p/index.js'

export const SWARM_KEY_FILE = 'swarm.key'
/** Where the tls module keeps the node's certificate material (src/node/cluster/tls-module.ts). */
export const TLS_DIR = 'tls'
export const TLS_FILES = { key: 'node.key', cert: 'node.crt', ca: 'ca.crt', crl: 'crl.pem' } as const

/** What later modules get: the host and its peer gate, available once the p2p module has started. */
export interface P2PNode {
  host(): P2PHost
  trust(): PeerTrust
}

export function p2pModule(): NodeModule<'p2p'> {
  return {
    name: 'p2p',
    create(components) {
      const { config, identity, logger } = components
      let host: P2PHost | undefined
      let trust: PeerTrust | undefined
      const api: P2PNode = {
        host() {
          if (host === undefined) throw new Error('p2p: host used before the p2p module started')
          return host
        },
        trust() {
          if (trust === undefined) throw new Error('p2p: trust used before the p2p module started')
          return trust
        },
      }
      return {
        api,
        service: {
          async start(signal) {
            // Streams that come before the trust exists (microseconds) wait for it: never an open door.
            let ready: (t: PeerTrust) => void = () => undefined
            const trustReady = new Promise<PeerTrust>((resolve) => (ready = resolve))
            const gate: PeerGate = {
              allow: async (peer, protocol) => (await trustReady).allow(peer, protocol),
              denied: (peer) => trust?.denied(peer) ?? false,
            }
            host = await createP2PHost({
              privateKey: identity.privateKey,
              listen: config.p2p,
              swarmKey: loadSwarmKey(config.swarmKey, config.dataDir),
              join: config.join,
              logger: logger.child({ area: 'p2p' }),
              signal,
              version: VERSION,
              timings: timingsFor(config.gossipIntervalMs),
              gate,
            })
            trust = createPeerTrust({
              host,
              logger: logger.child({ area: 'trust' }),
              timings: trustTimingsFor(config.gossipIntervalMs),
            })
            const kept = readKept(join(config.dataDir, TLS_DIR))
            trust.setCa(kept.ca)
            trust.setCertificate(kept.cert)
            if (kept.crl !== undefined) await trust.offerCrl(kept.crl)
            await trust.start()
            ready(trust)
          },
          async stop() {
            await trust?.stop()
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

/** The CA, certificate and CRL the node kept (what the tls module persisted), each if present. */
function readKept(dir: string): { ca?: string; cert?: string; crl?: string } {
  const read = (name: string): string | undefined => {
    try {
      return readFileSync(join(dir, name), 'utf8')
    } catch {
      return undefined
    }
  }
  const ca = read(TLS_FILES.ca)
  const cert = read(TLS_FILES.cert)
  // A certificate without its CA is no use to the gate; the tls module sorts out what it can.
  return ca === undefined ? {} : { ca, cert, crl: read(TLS_FILES.crl) }
}

/** Fast gossip (tests): peers without a certificate are let go sooner, and checked more often. */
function trustTimingsFor(gossipIntervalMs: number): Partial<TrustTimings> {
  return gossipIntervalMs < 500
    ? { graceMs: 5_000, sweepMs: 250, verifyWaitMs: 5_000, gossipRepairMs: 1_000 }
    : { graceMs: TRUST_TIMINGS.graceMs }
}

/** Fast gossip (tests) gets the fast p2p timings too: joins retry quickly and pings notice loss sooner. */
function timingsFor(gossipIntervalMs: number): P2PTimings {
  return gossipIntervalMs < 500 ? P2P_TIMINGS_TEST : P2P_TIMINGS_LAN
}
