/**
 * The data plane: block streams (pipeline writes, replica copies, remote block reads) over direct TLS
 * 1.3 connections between nodes, mutually authenticated with the node certificates of the cluster CA;
 * and the PeerNetwork that puts it beside libp2p (which keeps Raft, gossip and requests).
 *
 * @example
 * ```ts
 * const plane = createTlsDataPlane({ credentials: () => ({ keyPem, certPem, caPem }), logger })
 * await plane.listen({ host: '127.0.0.1', port: 0 })              // a datanode, once certified
 * const network = dataPlaneNetwork({
 *   libp2p: libp2pPeerNetwork(() => host),
 *   tls: plane,
 *   certified: () => true,
 *   addressOf: (peer) => addressFromGossip(peer),                 // undefined: libp2p for this peer
 *   logger,
 * })
 * const stream = await network.openStream(peerId, '/hopsd/block-read/1.0.0')
 * ```
 */
export {
  createTlsDataPlane,
  DATA_PLANE_TLS,
  type DataPlaneCredentials,
  type DataPlaneLogger,
  type TlsDataPlane,
  type TlsDataPlaneInit,
} from './tls-streams.js'
export { dataPlaneNetwork, type DataPlaneNetworkInit } from './network.js'
