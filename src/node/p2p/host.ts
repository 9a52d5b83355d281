/**
 * The node's libp2p host: TCP, the private network (pnet: XSalsa20 keyed by the swarm key, below
 * everything else), Noise, Yamux, identify, ping and gossipsub — plus the join loop.
 *
 * Guarantees:
 * - `createP2PHost` resolves once the listener is bound (the actual port is in `listenAddress()`);
 *   it never waits for other nodes: the join loop runs in the background until `stop()`.
 * - A peer without the swarm key never becomes a peer: its first bytes fail the pnet layer and the
 *   connection is closed before Noise runs; garbage on the port is dropped the same way.
 * - With a {@link PeerGate} installed (`setGate`), every stream — inbound or outbound, hopsd's or
 *   libp2p's own gossipsub — and every connection asks it first: the swarm key alone no longer makes a
 *   peer (src/node/admission).
 * - `stop()` is idempotent, stops the join loop, then libp2p (closing every connection).
 */
import './pnet-memory-fix.js' // before any pnet connection: see the file (xsalsa20 memory leak)
import { noise } from '@chainsafe/libp2p-noise'
import { noiseCrypto } from './noise-crypto.js'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub, type GossipSub, type GossipsubOpts } from '@libp2p/gossipsub'
import { identify, type Identify } from '@libp2p/identify'
import type {
  Connection,
  IdentifyResult,
  Libp2p,
  PeerId,
  PrivateKey,
  Stream,
  StreamMiddleware,
} from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping, type Ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import {
  formatHostPort,
  ipPortOf,
  parseHostPort,
  resolveHost,
  tcpMultiaddr,
  type HostPort,
} from './address.js'
import { P2PError } from './errors.js'
import { HandshakeLog, recordingProtector } from './handshake-diagnosis.js'
import { DIAGNOSIS_REPEAT_MS, startJoinLoop, type JoinLoop, type JoinTargetStatus } from './join.js'
import { nullLogger, type P2PLogger } from './logger.js'
import { parseSwarmKey } from './swarm-key.js'

export interface P2PTimings {
  /** Deadline of one outbound dial (TCP connect + pnet + Noise + Yamux + protocol select). */
  readonly dialTimeoutMs: number
  /** First join retry delay; doubles per failure, with jitter. */
  readonly joinBackoffBaseMs: number
  /** Cap of the join retry delay: a host that stays away is retried this often, forever. */
  readonly joinBackoffMaxMs: number
  /**
   * How long an inbound connection may take to finish pnet + Noise + Yamux. A peer with a wrong swarm
   * key, or a port scanner, holds a socket at most this long.
   */
  readonly upgradeTimeoutMs: number
  /** libp2p's connection monitor pings every peer this often and drops connections that stop answering. */
  readonly pingIntervalMs: number
  /** gossipsub heartbeat: mesh maintenance (graft/prune) and IHAVE gossip run at this period. */
  readonly gossipHeartbeatMs: number
}

/** Timings for a LAN / one data centre (several zones, sub-millisecond to few-ms RTT). */
export const P2P_TIMINGS_LAN: P2PTimings = {
  dialTimeoutMs: 5_000, // a TCP SYN to a dead host times out; 5 s covers a slow handshake on a busy node
  joinBackoffBaseMs: 250, // the first retries come quickly: hosts usually start within seconds of each other
  joinBackoffMaxMs: 10_000, // a host down for maintenance is retried every 5-10 s: cheap, and quick to rejoin
  upgradeTimeoutMs: 5_000, // libp2p's default is 10 s; a cluster peer finishes in milliseconds
  pingIntervalMs: 5_000, // catches half-open TCP (host power loss) in ~5-10 s; RSTs are seen at once anyway
  gossipHeartbeatMs: 700, // gossipsub default is 1 s; a bit faster heals the mesh sooner after a change
}

/** Timings for tests on loopback: everything fast so tests finish in seconds. */
export const P2P_TIMINGS_TEST: P2PTimings = {
  dialTimeoutMs: 2_000,
  joinBackoffBaseMs: 50,
  joinBackoffMaxMs: 500,
  upgradeTimeoutMs: 2_000,
  pingIntervalMs: 2_000,
  gossipHeartbeatMs: 200,
}

export interface P2PHostInit {
  /** The node key (src/node/identity.ts `loadOrCreateIdentity(dataDir).privateKey`): the peer id derives from it. */
  readonly privateKey: PrivateKey
  /** Where to listen: HOST:PORT (port 0 picks a free one; 0.0.0.0 listens on every interface). */
  readonly listen: HostPort | string
  /** The swarm key file's contents (validated here; see swarm-key.ts). */
  readonly swarmKey: Uint8Array | string
  /** Other nodes' HOST:PORT; may include this node's own address (skipped). */
  readonly join?: readonly (HostPort | string)[]
  readonly logger?: P2PLogger
  /** Aborting it stops the host, like `stop()`. */
  readonly signal?: AbortSignal
  readonly timings?: Partial<P2PTimings>
  /** Advertised by identify as `hopsd/<version>`. */
  readonly version?: string
  /** gossipsub option overrides (the defaults suit a small cluster: see `gossipsubOptions`). */
  readonly gossipsub?: Partial<GossipsubOpts>
  /**
   * The gate in force from the first connection on (see {@link PeerGate}); `setGate` replaces it.
   * Without one, every swarm-key holder may do everything.
   */
  readonly gate?: PeerGate
}

export type HopsLibp2p = Libp2p<{ identify: Identify; ping: Ping; pubsub: GossipSub }>

/**
 * Who may do what over p2p, beyond the swarm key (src/node/admission implements it: node certificates).
 * The host asks it before every stream — inbound and outbound, hopsd's protocols and libp2p's own
 * (gossipsub) alike — and before every connection.
 */
export interface PeerGate {
  /**
   * Whether a stream of `protocol` with `peer` may go ahead. May wait (bounded, by the gate) for the
   * peer's certificate exchange to finish; must never throw.
   */
  allow(peer: string, protocol: string): Promise<boolean>
  /** Whether every connection with `peer` is refused (a revoked node). Synchronous, cheap. */
  denied(peer: string): boolean
}

/** Handler of inbound streams on a protocol; `from` is the remote peer id. Errors abort the stream. */
export type P2PStreamHandler = (stream: Stream, from: string, connection: Connection) => void | Promise<void>

export interface P2PHostEvents {
  /** First connection to a peer opened. */
  'peer:connect': (peer: string) => void
  /** Last connection to a peer closed. */
  'peer:disconnect': (peer: string) => void
  /** identify finished: the peer's protocols, listen addresses and agent are known. */
  'peer:identify': (
    peer: string,
    info: { agentVersion: string | undefined; protocols: string[]; listenAddrs: string[] },
  ) => void
}

export interface P2PHost {
  readonly peerId: PeerId
  /** `peerId.toString()`, the node id. */
  readonly id: string
  /** The underlying node, for what this wrapper doesn't cover (read-only use preferred). */
  readonly libp2p: HopsLibp2p
  readonly pubsub: GossipSub
  /** The bound listener (the real port when 0 was asked). */
  listenAddress(): HostPort
  /** Full multiaddrs to reach this node (with /p2p/<id>). */
  multiaddrs(): string[]
  /** Ids of currently connected peers. */
  peers(): string[]
  isConnected(peer: string): boolean
  /** Dials HOST:PORT (no peer id needed) and returns the peer id that answered. */
  dial(address: HostPort | string, options?: { signal?: AbortSignal }): Promise<string>
  /** Ensures a connection to a peer known by id (addresses from identify/peer store or `addPeerAddresses`). */
  reach(peer: string, options?: { signal?: AbortSignal }): Promise<void>
  /** Opens a stream to `peer` on `protocol`, reusing the existing connection when there is one. */
  newStream(peer: string, protocol: string, options?: { signal?: AbortSignal }): Promise<Stream>
  handle(
    protocol: string,
    handler: P2PStreamHandler,
    options?: { maxInboundStreams?: number; maxOutboundStreams?: number },
  ): Promise<void>
  unhandle(protocol: string): Promise<void>
  /** Teaches the peer store where `peer` listens (e.g. from gossip), so `reach`/`newStream` can dial it. */
  addPeerAddresses(peer: string, addrs: readonly string[]): Promise<void>
  /** The join loop's view of each --join address. */
  joinStatus(): JoinTargetStatus[]
  /** Subscribes; returns the unsubscribe function. */
  on<E extends keyof P2PHostEvents>(event: E, listener: P2PHostEvents[E]): () => void
  /**
   * Installs the gate every stream and connection passes from now on (undefined: none, every swarm-key
   * holder may do everything). Streams already open are the gate's to close (see {@link closePeer}).
   */
  setGate(gate: PeerGate | undefined): void
  /** Closes every connection with `peer` (the gate's verdict changed). */
  closePeer(peer: string): Promise<void>
  /**
   * Starts gossipsub over with `peer` on the open connection: forgets its streams and opens a new one,
   * which makes the peer open its own back. For streams the gate refused earlier, since gossipsub never
   * asks again on its own. False when there is no open connection (nothing to restart).
   */
  restartGossip(peer: string): boolean
  stop(): Promise<void>
}

/** gossipsub settings for a cluster of a handful to a few dozen nodes that all know each other. */
export function gossipsubOptions(timings: P2PTimings): Partial<GossipsubOpts> {
  return {
    // Every hopsd node is a trusted member (pnet already admits only key holders); still, messages are
    // signed so a NodeInfo can be checked against its sender's peer id.
    globalSignaturePolicy: 'StrictSign',
    // Own messages go to every subscribed connected peer, not only the mesh: with the full-ish
    // connectivity --join gives, one publish reaches everyone in one hop, before the mesh is even built.
    floodPublish: true,
    // The first node of a cluster publishes its heartbeat before anyone listens: not an error.
    allowPublishToZeroTopicPeers: true,
    ignoreDuplicatePublishError: true,
    // Small mesh degrees: with 3-10 nodes the defaults (D=6, Dlo=4) leave the mesh permanently "under
    // target" and churn grafts; these keep relays redundant (>= 2) without flooding.
    D: 4,
    Dlo: 2,
    Dhi: 8,
    Dout: 1,
    Dlazy: 4,
    heartbeatInterval: timings.gossipHeartbeatMs,
    // Peers we prune are re-grafted quickly after a restart (default 1 min).
    pruneBackoff: Math.max(5 * timings.gossipHeartbeatMs, 1_000),
    // hopsd nodes speak only gossipsub: no floodsub fallback protocol to negotiate.
    fallbackToFloodsub: false,
    emitSelf: false,
  }
}

export async function createP2PHost(init: P2PHostInit): Promise<P2PHost> {
  const timings: P2PTimings = { ...P2P_TIMINGS_LAN, ...init.timings }
  const logger = init.logger ?? nullLogger
  const psk = parseSwarmKey(init.swarmKey)
  const listen = parseListen(init.listen)
  const join = (init.join ?? []).map(parseHostPort)
  if (init.signal?.aborted === true) throw new P2PError('P2P_STOPPED', 'aborted before the p2p host started')
  const listenIp = (await resolveHost(listen.host))[0]!
  // What each outbound connection's remote sent first: how the join loop tells a wrong port or a
  // different swarm key from a host that is just not up (./handshake-diagnosis.ts).
  const handshakes = new HandshakeLog()
  // A stranger with another key that keeps dialing in: said once per remote IP per DIAGNOSIS_REPEAT_MS.
  const toldInbound = new Map<string, number>()
  const onMismatch = (direction: string, remote: string): void => {
    if (direction !== 'inbound') return // the join loop names outbound ones, per --join address
    const ip = remote.slice(0, remote.lastIndexOf(':'))
    const now = Date.now()
    if (now - (toldInbound.get(ip) ?? -Infinity) < DIAGNOSIS_REPEAT_MS) return
    toldInbound.delete(ip)
    toldInbound.set(ip, now)
    if (toldInbound.size > 256) toldInbound.delete(toldInbound.keys().next().value!)
    logger.warn(
      { remote, code: 'SWARM_KEY_MISMATCH' },
      `p2p: refused a connection from ${remote}: it holds a different swarm key`,
    )
  }

  let gate: PeerGate | undefined = init.gate
  const deniedPeer = (peerId: PeerId): boolean => gate?.denied(peerId.toString()) === true
  const libp2p: HopsLibp2p = await createLibp2p({
    privateKey: init.privateKey,
    nodeInfo: { name: 'hopsd', version: init.version ?? '0.0.0' },
    addresses: { listen: [tcpMultiaddr(listenIp, listen.port).toString()] },
    transports: [tcp()],
    connectionProtector: recordingProtector(
      preSharedKey({ psk, timeout: timings.upgradeTimeoutMs }),
      handshakes,
      onMismatch,
    ),
    connectionEncrypters: [noise({ crypto: noiseCrypto })],
    streamMuxers: [yamux()],
    connectionManager: {
      inboundUpgradeTimeout: timings.upgradeTimeoutMs,
      dialTimeout: timings.dialTimeoutMs,
    },
    connectionMonitor: { pingInterval: timings.pingIntervalMs },
    // A revoked node is refused right after Noise names it, before any stream (src/node/admission).
    connectionGater: {
      denyDialPeer: deniedPeer,
      denyInboundEncryptedConnection: deniedPeer,
      denyOutboundEncryptedConnection: deniedPeer,
    },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({ ...gossipsubOptions(timings), ...init.gossipsub }),
    },
  })

  const peerId = libp2p.peerId
  // libp2p's own protocols (gossipsub's, identify, ping) pass the gate as middleware, in both
  // directions; hopsd's own go through handle() and newStream() below, which ask the gate themselves.
  for (const protocol of libp2p.getProtocols()) {
    const chain: StreamMiddleware[] = []
    chain.push(gateMiddleware(chain, () => gate))
    libp2p.use(protocol, chain)
  }
  const bound = boundPort(libp2p, listen.port)
  const stopCtl = new AbortController()
  const joinLoop: JoinLoop = startJoinLoop({
    libp2p,
    targets: join,
    listen: { ip: listenIp, port: bound },
    timings,
    logger,
    signal: stopCtl.signal,
    handshakes,
  })
  logger.info(
    {
      peer: peerId.toString(),
      listen: formatHostPort({ host: listen.host, port: bound }),
      join: join.map(formatHostPort),
    },
    'p2p: listening',
  )

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      stopCtl.abort(new P2PError('P2P_STOPPED', 'the p2p host is stopping'))
      await joinLoop.done()
      await libp2p.stop()
      logger.info({ peer: peerId.toString() }, 'p2p: stopped')
    })()
    return stopping
  }
  init.signal?.addEventListener('abort', () => void stop(), { once: true })

  const toPeerId = (peer: string): PeerId => {
    try {
      return peerIdFromString(peer)
    } catch (err) {
      throw new P2PError('PEER_UNREACHABLE', `'${peer}' is not a peer id`, { cause: err })
    }
  }
  const checkRunning = (): void => {
    if (stopping !== undefined) throw new P2PError('P2P_STOPPED', 'the p2p host is stopped')
  }
  const dialSignal = (signal: AbortSignal | undefined): AbortSignal =>
    AbortSignal.any([stopCtl.signal, AbortSignal.timeout(timings.dialTimeoutMs), ...(signal ? [signal] : [])])

  const host: P2PHost = {
    peerId,
    id: peerId.toString(),
    libp2p,
    pubsub: libp2p.services.pubsub,
    listenAddress: () => ({ host: listen.host, port: bound }),
    multiaddrs: () => libp2p.getMultiaddrs().map(String),
    peers: () => libp2p.getPeers().map(String),
    isConnected: (peer) => libp2p.getConnections(toPeerId(peer)).length > 0,
    async dial(address, options) {
      checkRunning()
      const hp = parseHostPort(address)
      const ips = await resolveHost(hp.host)
      let last: unknown
      for (const ip of ips) {
        try {
          const conn = await libp2p.dial(tcpMultiaddr(ip, hp.port), { signal: dialSignal(options?.signal) })
          return conn.remotePeer.toString()
        } catch (err) {
          last = err
        }
      }
      throw unreachable(formatHostPort(hp), last)
    },
    async reach(peer, options) {
      checkRunning()
      try {
        await libp2p.dial(toPeerId(peer), { signal: dialSignal(options?.signal) })
      } catch (err) {
        throw unreachable(peer, err)
      }
    },
    async newStream(peer, protocol, options) {
      checkRunning()
      if (gate !== undefined && !(await gate.allow(peer, protocol)))
        throw new P2PError('PEER_NOT_CERTIFIED', `${peer} holds no valid node certificate (${protocol})`)
      try {
        return await libp2p.dialProtocol(toPeerId(peer), protocol, { signal: dialSignal(options?.signal) })
      } catch (err) {
        if ((err as Error).name === 'UnsupportedProtocolError') {
          throw new P2PError('PROTOCOL_UNSUPPORTED', `peer ${peer} does not speak ${protocol}`, {
            cause: err,
          })
        }
        throw unreachable(peer, err)
      }
    },
    async handle(protocol, handler, options) {
      await libp2p.handle(
        protocol,
        async (stream, connection) => {
          const from = connection.remotePeer.toString()
          if (gate !== undefined && !(await gate.allow(from, protocol))) {
            logger.debug({ protocol, peer: from }, 'p2p: stream refused by the peer gate')
            stream.abort(new P2PError('PEER_NOT_CERTIFIED', `${from} may not use ${protocol}`))
            return
          }
          try {
            await handler(stream, from, connection)
          } catch (err) {
            logger.debug(
              { protocol, peer: connection.remotePeer.toString(), err: (err as Error).message },
              'p2p: stream handler failed',
            )
            stream.abort(err as Error)
          }
        },
        { ...options },
      )
    },
    async unhandle(protocol) {
      await libp2p.unhandle(protocol)
    },
    async addPeerAddresses(peer, addrs) {
      if (stopping !== undefined) return
      const id = toPeerId(peer)
      if (id.equals(peerId)) return
      const multiaddrs = addrs.flatMap((a) => {
        try {
          return [multiaddr(a)]
        } catch {
          return [] // a bad address in gossip is ignored, not fatal
        }
      })
      if (multiaddrs.length > 0) await libp2p.peerStore.merge(id, { multiaddrs })
    },
    joinStatus: () => joinLoop.status(),
    on(event, listener) {
      const wrapped = (evt: Event): void => {
        const detail = (evt as CustomEvent).detail as PeerId | IdentifyResult
        if (event === 'peer:identify') {
          const r = detail as IdentifyResult
          ;(listener as P2PHostEvents['peer:identify'])(r.peerId.toString(), {
            agentVersion: r.agentVersion,
            protocols: r.protocols,
            listenAddrs: r.listenAddrs.map(String),
          })
        } else {
          ;(listener as (peer: string) => void)((detail as PeerId).toString())
        }
      }
      libp2p.addEventListener(event, wrapped)
      return () => libp2p.removeEventListener(event, wrapped)
    },
    setGate(next) {
      gate = next
    },
    restartGossip(peer) {
      const id = toPeerId(peer)
      const conn = libp2p.getConnections(id).find((c) => c.status === 'open')
      if (conn === undefined) return false
      // gossipsub's own connect/disconnect handlers (what its topology runs on a connection event).
      const sub = libp2p.services.pubsub as unknown as {
        onPeerDisconnected?: (peer: PeerId) => void
        onPeerConnected?: (peer: PeerId, connection: Connection) => void
      }
      if (typeof sub.onPeerDisconnected !== 'function' || typeof sub.onPeerConnected !== 'function') {
        // A gossipsub without them: a new connection does the same, at a reconnect's cost.
        void conn.close().catch(() => conn.abort(new Error('gossip restart')))
        return true
      }
      sub.onPeerDisconnected(id)
      sub.onPeerConnected(id, conn)
      return true
    },
    async closePeer(peer) {
      const conns = libp2p.getConnections(toPeerId(peer))
      await Promise.all(
        conns.map((c) => c.close().catch(() => c.abort(new Error('closed by the peer gate')))),
      )
    },
    stop,
  }
  return host
}

/**
 * The gate as libp2p stream middleware, working around a libp2p 3.3 bug: for every inbound stream the
 * connection pushes the protocol's handler onto the very array `use()` stored (registrar.getMiddleware
 * returns it, not a copy), so each later stream would run every earlier stream's handler too. The
 * chain runs its first middleware synchronously right after that push; this one takes the pushed
 * handler back out at once (the array stays `[gate]`) and runs it itself once the gate allows the
 * stream. Outbound chains push nothing: `next` goes on directly. (Remove once libp2p copies the array.)
 */
function gateMiddleware(chain: StreamMiddleware[], gate: () => PeerGate | undefined): StreamMiddleware {
  return (stream, connection, next) => {
    const handler = chain.length > 1 ? chain[chain.length - 1] : undefined
    chain.length = 1
    return (async () => {
      const g = gate()
      const peer = connection.remotePeer.toString()
      if (g !== undefined && !(await g.allow(peer, stream.protocol ?? '')))
        throw new P2PError('PEER_NOT_CERTIFIED', `${peer} may not use ${stream.protocol}`)
      if (handler !== undefined) await handler(stream, connection, next)
      else next(stream, connection)
    })()
  }
}

function parseListen(listen: HostPort | string): HostPort {
  if (typeof listen === 'string') {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(listen.trim())
    if (m === null)
      throw new P2PError('JOIN_ADDRESS_INVALID', `bad listen address '${listen}' (expected HOST:PORT)`)
    return { host: m[1] ?? m[2]!, port: Number(m[3]) }
  }
  return listen
}

function boundPort(libp2p: Libp2p, asked: number): number {
  for (const ma of libp2p.getMultiaddrs()) {
    const a = ipPortOf(ma)
    if (a !== undefined) return a.port
  }
  return asked
}

function unreachable(what: string, cause: unknown): P2PError {
  const why = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)
  return new P2PError('PEER_UNREACHABLE', `cannot reach ${what} (${why})`, { cause })
}
