/**
 * The PeerNetwork the fs area is given: streams over the TLS data plane (./tls-streams.ts), requests
 * over libp2p.
 *
 * A stream goes over libp2p only while TLS cannot be tried: this node holds no cluster certificate
 * yet, or the peer advertises no data-plane address (not certified yet, gossip not arrived, a node of
 * an older version, `--data-plane libp2p` there). That path is no weaker — libp2p's peer gate admits
 * block streams only from peers with a valid node certificate — only slower; each such peer is logged
 * once. A peer that advertises an address but cannot be reached there, or whose certificate the data
 * plane refuses, is a failure (the pipeline recovers around it, a read tries the next replica), never a
 * reason to try the other path. Streams are served on both.
 */
import type { PeerNetwork } from '../../fs/index.js'
import type { HostPort } from '../config.js'
import type { DataPlaneLogger, TlsDataPlane } from './tls-streams.js'

/** Distinct peers remembered as "logged falling back" (a bound, not a guess at cluster size). */
const FALLBACK_LOGGED_MAX = 4096

export interface DataPlaneNetworkInit {
  readonly libp2p: PeerNetwork
  /** Undefined: streams use libp2p (`--data-plane libp2p`). */
  readonly tls: TlsDataPlane | undefined
  /** Whether this node holds a cluster certificate (can dial the data plane). */
  readonly certified: () => boolean
  /** The data-plane address the peer advertises, if any. */
  readonly addressOf: (peer: string) => HostPort | undefined
  readonly logger: DataPlaneLogger
  readonly onStream?: (transport: 'tls' | 'libp2p') => void
}

export function dataPlaneNetwork(init: DataPlaneNetworkInit): PeerNetwork {
  const { libp2p, tls, logger } = init
  const logged = new Set<string>()
  const fallback = (peer: string, why: string): void => {
    if (logged.has(peer) || logged.size >= FALLBACK_LOGGED_MAX) return
    logged.add(peer)
    logger.info({ peer, why }, 'data plane: block streams to this peer go over libp2p')
  }
  return {
    async openStream(peer, protocol, opts) {
      if (tls !== undefined) {
        const addr = init.addressOf(peer)
        if (!init.certified()) fallback(peer, 'this node has no node certificate yet')
        else if (addr === undefined) fallback(peer, 'the peer advertises no data-plane address')
        else {
          const s = await tls.openStream(peer, addr, protocol, opts)
          logged.delete(peer)
          init.onStream?.('tls')
          return s
        }
      }
      const s = await libp2p.openStream(peer, protocol, opts)
      init.onStream?.('libp2p')
      return s
    },
    async handleStreams(protocol, handler, opts) {
      const stops = [await libp2p.handleStreams(protocol, handler, opts)]
      if (tls !== undefined) stops.push(await tls.handleStreams(protocol, handler, opts))
      return async () => {
        for (const stop of stops) await stop()
      }
    },
    request: (peer, protocol, body, opts) => libp2p.request(peer, protocol, body, opts),
    handleRequests: (protocol, handler, opts) => libp2p.handleRequests(protocol, handler, opts),
  }
}
