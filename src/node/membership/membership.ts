/**
 * The gossip membership view of one node (memberlist/serf-inspired, over libp2p):
 *
 * - Publish: our NodeInfo goes out on the gossipsub topic `hopsd/membership/1` every
 *   `gossipIntervalMs` and at once on every change (`update`), each time with the next `seq`.
 *   Messages are signed by the sender's node key; a NodeInfo whose id isn't its signer is refused.
 * - Direct push: when identify completes with a peer that speaks `/hopsd/membership/push/1.0.0`, we
 *   send it our NodeInfo on a stream — a new node is known to its neighbours in one round trip,
 *   without waiting for gossipsub's subscription exchange or mesh (important for small clusters).
 * - Listen: every accepted NodeInfo feeds the pure {@link MembershipView}; its p2p addresses go to the
 *   peer store so any layer (Raft, channels) can dial the node by id. A finished identify exchange
 *   counts as hearing from the peer.
 * - Leave: `stop()` announces state 'left' (gossip + direct push, bounded by leaveTimeoutMs), so
 *   others list it as `left` rather than suspecting a failure. `stop({ leave: false })` just goes quiet
 *   (a crash, as far as others can tell).
 *
 * Listeners of 'change' are called synchronously, in order, never concurrently; they must not throw
 * (a throwing listener is logged and skipped) and must not block.
 */
import type { Message } from '@libp2p/gossipsub'
import type { Stream } from '@libp2p/interface'
import {
  encodeFrame,
  nullLogger,
  readFrames,
  waitForDrain,
  type P2PHost,
  type P2PLogger,
} from '../p2p/index.js'
import { realClock, type Clock, type TimerHandle } from './clock.js'
import { decodeNodeInfo, encodeNodeInfo } from './codec.js'
import { MEMBERSHIP_LAN, validateMembershipConfig, type MembershipConfig } from './config.js'
import {
  EMPTY_CAPACITY,
  type MembershipChange,
  type NodeCapacity,
  type NodeInfo,
  type NodeState,
  type NodeView,
} from './types.js'
import { MembershipView } from './view.js'

export const MEMBERSHIP_TOPIC = 'hopsd/membership/1'
export const MEMBERSHIP_PUSH_PROTOCOL = '/hopsd/membership/push/1.0.0'
/**
 * The same push-pull, sent as a probe: the sender has not heard the receiver's gossip (it is unknown
 * or suspect there), so the receiver also starts its own gossip with the sender over.
 */
export const MEMBERSHIP_PROBE_PROTOCOL = '/hopsd/membership/probe/1.0.0'
/** A NodeInfo is a few hundred bytes; anything much larger on the push stream is refused. */
const PUSH_FRAME_BYTES_MAX = 64 * 1024

/** What a node says about itself; the rest (id, addresses, counters) the membership fills in. */
export interface SelfInfo {
  readonly zone: string
  readonly roles: readonly string[]
  readonly httpAddr: string
  readonly version: string
  readonly capacity?: NodeCapacity
  readonly state?: NodeState
}

export type SelfUpdate = Partial<
  Pick<NodeInfo, 'zone' | 'roles' | 'httpAddr' | 'dataAddr' | 'version' | 'capacity' | 'state'>
>

export interface MembershipInit {
  readonly host: P2PHost
  readonly self: SelfInfo
  readonly config?: Partial<MembershipConfig>
  readonly clock?: Clock
  readonly logger?: P2PLogger
}

export interface MembershipStats {
  /** NodeInfos published (gossip) and pushed (direct streams). */
  readonly published: number
  readonly pushed: number
  /** NodeInfos accepted into the view (newer than what we had). */
  readonly accepted: number
  /** NodeInfos ignored as stale or duplicate. */
  readonly stale: number
  /** NodeInfos refused: undecodable, over limits, or id not matching the sender. */
  readonly rejected: number
  /** Direct probes of peers gossip had not brought (unknown) or had gone quiet about, answered. */
  readonly probesAnswered: number
  /** Times this node started its gossip with a peer over (a probe said it was not flowing). */
  readonly gossipRestarts: number
}

export interface Membership {
  /** Subscribes, serves direct pushes and starts heartbeats. Resolves at once: never waits for peers. */
  start(): Promise<void>
  /** Stops; by default announces 'left' first. Idempotent. */
  stop(options?: { leave?: boolean }): Promise<void>
  /** Our own NodeInfo as last published. */
  self(): NodeInfo
  /** Changes what we say about ourselves and publishes it at once. */
  update(change: SelfUpdate): void
  /** Every known node, ourselves first, then by id. */
  view(): NodeView[]
  get(id: string): NodeView | undefined
  on(event: 'change', listener: (change: MembershipChange) => void): () => void
  stats(): MembershipStats
}

export function createMembership(init: MembershipInit): Membership {
  const config = validateMembershipConfig({ ...MEMBERSHIP_LAN, ...init.config })
  const clock = init.clock ?? realClock
  const logger = init.logger ?? nullLogger
  const host = init.host
  const selfId = host.id
  const view = new MembershipView(selfId, config)
  const listeners = new Set<(c: MembershipChange) => void>()
  const stats = { published: 0, pushed: 0, accepted: 0, rejected: 0, probesAnswered: 0, gossipRestarts: 0 }
  const knownAddrs = new Map<string, string>()
  const unsubscribers: (() => void)[] = []

  let me: NodeInfo = {
    id: selfId,
    zone: init.self.zone,
    roles: [...init.self.roles],
    httpAddr: init.self.httpAddr,
    p2pAddrs: host.multiaddrs(),
    dataAddr: '',
    version: init.self.version,
    capacity: init.self.capacity ?? EMPTY_CAPACITY,
    state: init.self.state ?? 'active',
    incarnation: clock.now(),
    seq: 0,
    sentAtMs: 0,
  }
  let started = false
  let stopped = false
  let gossipTimer: TimerHandle | undefined
  let tickTimer: TimerHandle | undefined
  let publishQueued = false

  const emit = (changes: MembershipChange[]): void => {
    for (const change of changes) {
      for (const l of listeners) {
        try {
          l(change)
        } catch (err) {
          logger.error(
            { err: (err as Error).message, change: change.kind },
            'membership: change listener threw',
          )
        }
      }
    }
  }

  /** The next publication of our NodeInfo (each one gets a new seq, so receivers treat it as news). */
  const nextSelf = (): Uint8Array => {
    me = { ...me, p2pAddrs: host.multiaddrs(), seq: me.seq + 1, sentAtMs: clock.now() }
    return encodeNodeInfo(me)
  }

  const publish = async (): Promise<void> => {
    const bytes = nextSelf()
    try {
      await host.pubsub.publish(MEMBERSHIP_TOPIC, bytes)
      stats.published++
    } catch (err) {
      logger.debug({ err: (err as Error).message }, 'membership: publish failed')
    }
  }

  /**
   * Push-pull with one peer (memberlist's state exchange, for one node's state): we send our NodeInfo,
   * it answers with its own. Either side starting the exchange teaches both, whichever registered its
   * handler first — a peer identified before its membership started still learns about us.
   */
  const pushTo = async (peer: string, protocol = MEMBERSHIP_PUSH_PROTOCOL): Promise<void> => {
    const signal = AbortSignal.timeout(config.pushTimeoutMs)
    try {
      const stream = await host.newStream(peer, protocol, { signal })
      const onAbort = (): void => stream.abort(new Error('membership push timed out'))
      signal.addEventListener('abort', onAbort, { once: true })
      try {
        if (!stream.send(encodeFrame(nextSelf()))) await waitForDrain(stream, signal)
        await stream.close({ signal }) // our half is done; the answer comes back on the readable half
        stats.pushed++
        const reply = await firstFrame(stream)
        if (reply !== undefined) receive(reply, peer, 'push')
      } finally {
        signal.removeEventListener('abort', onAbort)
      }
    } catch (err) {
      // Gossip will carry the same news within a heartbeat: a failed push is not an error.
      logger.debug({ peer, err: (err as Error).message }, 'membership: direct push failed')
    }
  }

  const receive = (bytes: Uint8Array, from: string, via: 'gossip' | 'push'): void => {
    if (stopped) return
    const decoded = decodeNodeInfo(bytes)
    if (!decoded.ok) {
      stats.rejected++
      logger.warn({ peer: from, via, reason: decoded.reason }, 'membership: NodeInfo refused')
      return
    }
    const info = decoded.info
    if (info.id !== from) {
      stats.rejected++
      logger.warn({ peer: from, via, claimed: info.id }, 'membership: NodeInfo about another node refused')
      return
    }
    const { outcome, changes } = view.ingest(info, clock.now())
    if (outcome === 'stale' || outcome === 'self' || outcome === 'full') return
    stats.accepted++
    const addrs = info.p2pAddrs.join(' ')
    if (knownAddrs.get(info.id) !== addrs && info.state !== 'left') {
      knownAddrs.set(info.id, addrs)
      void host.addPeerAddresses(info.id, info.p2pAddrs).catch((err: unknown) => {
        logger.debug(
          { peer: info.id, err: (err as Error).message },
          'membership: cannot record peer addresses',
        )
      })
    }
    for (const c of changes) {
      logger.info(
        { node: c.id, kind: c.kind, liveness: c.node.liveness, previous: c.previous, via },
        'membership: change',
      )
    }
    emit(changes)
  }

  const onGossip = (evt: CustomEvent<Message>): void => {
    const msg = evt.detail
    if (msg.topic !== MEMBERSHIP_TOPIC) return
    if (msg.type !== 'signed') {
      stats.rejected++
      return
    }
    receive(msg.data, msg.from.toString(), 'gossip')
  }

  const scheduleGossip = (): void => {
    gossipTimer = clock.setTimeout(() => {
      if (stopped) return
      void publish()
      scheduleGossip()
    }, config.gossipIntervalMs)
  }

  /**
   * Direct probes (SWIM's), for what gossip alone got wrong under load: a node admitted right after it
   * connected had its gossip streams refused by the gate, and gossipsub never opens them again — the
   * others then never heard it (or stopped hearing it) while it heard them, answered every Raft
   * heartbeat, and was never added as a learner. Each tick, a connected peer that is unknown here, or
   * that gossip went quiet about (suspect, dead), gets a push-pull on the probe protocol (at most one per
   * pushTimeoutMs): an answer is news (it is alive); silence lets the view go on to `dead`. The gate
   * refuses the stream to a peer not admitted, so a probe never brings a stranger into the view. The
   * probed side starts its gossip with us over (its outbound stream is the broken one); when a probe
   * shows alive a peer that gossip called suspect, so do we.
   */
  const probeStartedMs = new Map<string, number>()
  const gossipRestartedMs = new Map<string, number>()
  const probe = (id: string, nowMs: number): void => {
    const last = probeStartedMs.get(id)
    if (last !== undefined && nowMs - last < config.pushTimeoutMs) return
    probeStartedMs.set(id, nowMs)
    const before = view.get(id)?.liveness ?? 'unknown'
    void pushTo(id, MEMBERSHIP_PROBE_PROTOCOL).then(() => {
      if (stopped || view.get(id)?.liveness !== 'alive') return
      stats.probesAnswered++
      logger.info(
        { peer: id, was: before },
        'membership: a peer gossip had not brought answered a direct probe',
      )
      if (before !== 'unknown') restartGossipWith(id, nowMs)
    })
  }
  /** Starts gossip with `id` over, at most once per suspectAfterMs (a probe says it is not flowing). */
  const restartGossipWith = (id: string, nowMs: number): void => {
    const last = gossipRestartedMs.get(id)
    if (last !== undefined && nowMs - last < config.suspectAfterMs) return
    gossipRestartedMs.set(id, nowMs)
    if (host.restartGossip(id)) stats.gossipRestarts++
  }
  const probeQuiet = (nowMs: number): void => {
    const connected = host.peers()
    const live = new Set(connected)
    for (const map of [probeStartedMs, gossipRestartedMs])
      for (const [id, at] of map) if (!live.has(id) && nowMs - at > config.deadAfterMs) map.delete(id)
    for (const id of connected) {
      const n = view.get(id)
      if (n === undefined || ((n.liveness === 'suspect' || n.liveness === 'dead') && n.state !== 'left'))
        probe(id, nowMs)
    }
  }

  const scheduleTick = (): void => {
    tickTimer = clock.setTimeout(() => {
      if (stopped) return
      const now = clock.now()
      const changes = view.tick(now)
      for (const c of changes) {
        logger.info(
          { node: c.id, kind: c.kind, liveness: c.node.liveness, previous: c.previous },
          'membership: change',
        )
      }
      emit(changes)
      probeQuiet(now)
      scheduleTick()
    }, config.tickMs)
  }

  const selfView = (): NodeView => ({
    ...me,
    liveness: me.state === 'left' ? 'left' : 'alive',
    lastSeenMs: clock.now(),
    self: true,
  })

  return {
    async start() {
      if (started) return
      started = true
      for (const protocol of [MEMBERSHIP_PUSH_PROTOCOL, MEMBERSHIP_PROBE_PROTOCOL])
        await host.handle(
          protocol,
          async (stream, from) => {
            const frame = await firstFrame(stream)
            if (frame === undefined) return
            receive(frame, from, 'push')
            // Answer with our own NodeInfo (push-pull), unless we're stopped.
            if (!stopped && !stream.send(encodeFrame(nextSelf()))) await waitForDrain(stream)
            await stream.close().catch(() => {})
            // A probe: `from` has not been hearing our gossip. Our side of it is what to start over.
            if (protocol === MEMBERSHIP_PROBE_PROTOCOL && !stopped) restartGossipWith(from, clock.now())
          },
          { maxInboundStreams: 8 },
        )
      host.pubsub.addEventListener('message', onGossip)
      unsubscribers.push(() => host.pubsub.removeEventListener('message', onGossip))
      host.pubsub.subscribe(MEMBERSHIP_TOPIC)
      unsubscribers.push(
        host.on('peer:identify', (peer, info) => {
          if (stopped) return
          emit(view.heard(peer, clock.now()))
          if (info.protocols.includes(MEMBERSHIP_PUSH_PROTOCOL)) void pushTo(peer)
        }),
      )
      // Peers connected before we started (identify already done) get a push now.
      for (const peer of host.peers()) void pushTo(peer)
      void publish()
      scheduleGossip()
      scheduleTick()
      logger.info({ topic: MEMBERSHIP_TOPIC, incarnation: me.incarnation }, 'membership: started')
    },

    async stop(options) {
      if (stopped || !started) {
        stopped = true
        return
      }
      const leave = options?.leave ?? true
      if (gossipTimer !== undefined) clock.clearTimeout(gossipTimer)
      if (tickTimer !== undefined) clock.clearTimeout(tickTimer)
      if (leave) {
        me = { ...me, state: 'left' }
        const deadline = new Promise<void>((resolve) => clock.setTimeout(resolve, config.leaveTimeoutMs))
        await Promise.race([Promise.allSettled([publish(), ...host.peers().map((p) => pushTo(p))]), deadline])
      }
      stopped = true
      for (const u of unsubscribers.splice(0)) u()
      try {
        host.pubsub.unsubscribe(MEMBERSHIP_TOPIC)
      } catch {
        // the host may already be stopping
      }
      for (const protocol of [MEMBERSHIP_PUSH_PROTOCOL, MEMBERSHIP_PROBE_PROTOCOL])
        await host.unhandle(protocol).catch(() => {})
      logger.info({ leave }, 'membership: stopped')
    },

    self: () => me,

    update(change) {
      me = { ...me, ...change, roles: change.roles ? [...change.roles] : me.roles }
      if (!started || stopped || publishQueued) return
      // Several updates in one turn of the event loop make one publication.
      publishQueued = true
      queueMicrotask(() => {
        publishQueued = false
        if (!stopped) void publish()
      })
    },

    view: () => [selfView(), ...view.list()],
    get: (id) => (id === selfId ? selfView() : view.get(id)),
    on(_event, listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    stats: () => ({ ...stats, stale: view.staleCount }),
  }
}

/** The first frame on a push stream (one NodeInfo each way), or undefined if the peer sent none. */
async function firstFrame(stream: Stream): Promise<Uint8Array | undefined> {
  const frames = readFrames(stream, PUSH_FRAME_BYTES_MAX)
  const first = await frames.next()
  return first.done === true ? undefined : first.value
}
