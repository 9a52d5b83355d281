/**
 * The node's libp2p host (TCP + pnet + Noise + Yamux, identify, ping, gossipsub), the --join loop,
 * the swarm key, framed messaging over streams, and the Raft transport on top of it.
 *
 * @example
 * ```ts
 * const identity = await loadOrCreateIdentity(config.dataDir)
 * const host = await createP2PHost({
 *   privateKey: identity.privateKey,
 *   listen: config.p2p,                          // { host, port }
 *   swarmKey: loadSwarmKeyFile('swarm.key'),
 *   join: config.join,                           // may include our own address
 *   logger,
 * })
 * host.peers()                                   // ids of connected peers
 *
 * // Raft over libp2p: one reused stream per peer, bounded drop-oldest queue, drain backpressure.
 * const raftChannel = createChannel(host, { protocol: RAFT_PROTOCOL, queueDepthMax: 1024, logger })
 * await raftChannel.start()
 * const transport = createLibp2pRaftTransport(raftChannel, { selfId: host.id, logger })   // a RaftTransport
 *
 * // Request/response (forwarding): typed errors, remote codes in `remoteCode`.
 * await handleRequests(host, '/hopsd/forward/1.0.0', async (from, body) => answer(body))
 * const reply = await request(host, leaderId, '/hopsd/forward/1.0.0', bytes, { timeoutMs: 2_000 })
 *
 * await raftChannel.stop()
 * await host.stop()
 * ```
 */
export { P2PError, P2P_ERRORS, isP2PError, type P2PErrorCode } from './errors.js'
export { generateSwarmKey, parseSwarmKey, loadSwarmKeyFile, resolveSwarmKey } from './swarm-key.js'
export { keygenCommand, type KeygenOutput } from './keygen.js'
export {
  parseHostPort,
  formatHostPort,
  isOwnAddress,
  resolveHost,
  tcpMultiaddr,
  ipPortOf,
  isLoopback,
  type HostPort,
} from './address.js'
export { backoffDelayMs, type BackoffOptions } from './backoff.js'
export { nullLogger, type P2PLogger } from './logger.js'
export type { JoinState, JoinTargetStatus } from './join.js'
export {
  createP2PHost,
  gossipsubOptions,
  P2P_TIMINGS_LAN,
  P2P_TIMINGS_TEST,
  type HopsLibp2p,
  type P2PHost,
  type P2PHostEvents,
  type P2PHostInit,
  type P2PStreamHandler,
  type PeerGate,
  type P2PTimings,
} from './host.js'
export { encodeFrame, readFrames } from './framing.js'
export { waitForDrain } from './drain.js'
export { libp2pPeerNetwork } from './peer-network.js'
export { BoundedQueue, type DropPolicy } from './queue.js'
export {
  createChannel,
  CHANNEL_DEFAULTS,
  type Channel,
  type ChannelInit,
  type ChannelStats,
  type FrameHandler,
} from './messaging.js'
export {
  request,
  handleRequests,
  RPC_DEFAULTS,
  type RequestOptions,
  type RequestHandler,
  type HandleRequestsOptions,
} from './rpc.js'
export { createLibp2pRaftTransport, RAFT_PROTOCOL, type Libp2pRaftTransport } from './raft-transport.js'
