/**
 * The `dataplane` module (every node): the PeerNetwork the block manager and the datanode use —
 * block streams over direct TLS connections between nodes (src/node/dataplane), requests over libp2p.
 *
 * Every node dials (any node reads blocks); a datanode also listens, at `--data-addr` (default: the
 * p2p host, any free port), once it holds its cluster certificate, and only then advertises the
 * address in its gossip NodeInfo (`dataAddr`): a peer sees an address only where a handshake can
 * succeed. Certificates, CA and CRL follow the tls module's renewals and the p2p gate's CRL; node ids
 * the replicated state revoked are refused as the gate refuses them. With `--data-plane libp2p` block
 * streams stay on libp2p (the transport before the data plane; kept for comparison and as a fallback).
 *
 * Metrics: `hopsd_dataplane_streams_total{transport,direction}` (tls/libp2p, out/in) and
 * `hopsd_dataplane_refused_total{reason}` (handshake: OpenSSL refused the certificate; certificate:
 * the data plane's own checks refused it).
 */
import { Counter } from 'prom-client'
import { libp2pPeerNetwork } from '../p2p/index.js'
import type { PeerNetwork } from '../../fs/index.js'
import { formatAddress, parseAddress, type HostPort } from '../config.js'
import { createTlsDataPlane, dataPlaneNetwork, type TlsDataPlane } from '../dataplane/index.js'
import { requireService, type NodeModule } from '../module.js'

export interface DataPlaneNode {
  /** What the fs area's modules are given as their PeerNetwork. */
  readonly network: PeerNetwork
  /** The data-plane listener's address, once listening. */
  address(): HostPort | undefined
}

export function dataPlaneModule(): NodeModule<'dataplane'> {
  return {
    name: 'dataplane',
    create(components) {
      const { config, metrics } = components
      const logger = components.logger.child({ area: 'dataplane' })
      const p2p = requireService(components, 'p2p')
      const tls = requireService(components, 'tls')
      const membership = requireService(components, 'membership')
      const streams = new Counter({
        name: 'hopsd_dataplane_streams_total',
        help: 'Block streams (pipeline, replica copies, reads) by transport (tls, libp2p) and direction (out: opened here; in: served, tls only).',
        labelNames: ['transport', 'direction'] as const,
        registers: [metrics],
      })
      const refusedTotal = new Counter({
        name: 'hopsd_dataplane_refused_total',
        help: 'Data-plane connections refused: handshake (no certificate, self-signed, another CA) or certificate (not a node certificate of this cluster, the wrong node, expired, revoked).',
        labelNames: ['reason'] as const,
        registers: [metrics],
      })
      const credentials = () => {
        const m = tls.current()
        return m === undefined || m.issuer !== 'cluster'
          ? undefined
          : { keyPem: m.keyPem, certPem: m.certPem, caPem: m.caPem }
      }
      const plane: TlsDataPlane | undefined =
        config.dataPlane === 'tls'
          ? createTlsDataPlane({
              credentials,
              revokedSerials: () => p2p.trust().crl()?.revoked,
              deniedNode: (id) => p2p.trust().denied(id),
              logger,
              onStream: (direction) => direction === 'in' && streams.inc({ transport: 'tls', direction }),
              onRefused: (reason) => refusedTotal.inc({ reason }),
            })
          : undefined
      const network = dataPlaneNetwork({
        libp2p: libp2pPeerNetwork(() => p2p.host()),
        tls: plane,
        certified: () => credentials() !== undefined,
        addressOf: (peer) => dataAddressOf(membership.get(peer)),
        logger,
        onStream: (transport) => streams.inc({ transport, direction: 'out' }),
      })
      const unsubscribe: (() => void)[] = []
      let listening: Promise<void> | undefined
      /** Listens (once) when this is a datanode with a cluster certificate, then advertises the address. */
      const listenWhenCertified = (): void => {
        if (plane === undefined || !config.roles.includes('datanode') || credentials() === undefined) return
        listening ??= (async () => {
          const at = config.dataAddr ?? { host: config.p2p.host, port: 0 }
          const bound = await plane.listen(at)
          membership.update({ dataAddr: formatAddress(bound) })
          logger.info({ addr: formatAddress(bound) }, 'data plane: listening for block streams over TLS')
        })().catch((err: unknown) => {
          logger.error(
            { err: (err as Error).message },
            'data plane: cannot listen; block streams come over libp2p',
          )
        })
      }
      return {
        api: { network, address: () => plane?.address() },
        service: {
          async start() {
            listenWhenCertified()
            await listening
            unsubscribe.push(
              tls.onCertificate(() => {
                plane?.refreshCredentials()
                listenWhenCertified()
              }),
            )
          },
          async stop() {
            for (const u of unsubscribe.splice(0)) u()
            await listening
            await plane?.close()
          },
        },
      }
    },
  }
}

const WILDCARDS = new Set(['0.0.0.0', '::', ''])

/**
 * Where to dial a node's data plane: its advertised `dataAddr`; a wildcard host there (a listener on
 * every interface) is replaced by the host of its first p2p address (the one that reached us).
 */
export function dataAddressOf(
  node: { dataAddr: string; p2pAddrs: readonly string[] } | undefined,
): HostPort | undefined {
  if (node === undefined || node.dataAddr === '') return undefined
  let addr: HostPort
  try {
    addr = parseAddress(node.dataAddr, 'dataAddr')
  } catch {
    return undefined
  }
  if (!WILDCARDS.has(addr.host)) return addr
  for (const ma of node.p2pAddrs) {
    const m = /^\/ip[46]\/([^/]+)\//.exec(ma)
    if (m !== null && !WILDCARDS.has(m[1]!)) return { host: m[1]!, port: addr.port }
  }
  return undefined
}
