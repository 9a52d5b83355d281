/**
 * The peer gate: which p2p peers may do more than ask to be admitted.
 *
 * The swarm key keeps strangers off the wire; this keeps swarm-key holders without a node certificate
 * out of everything else. Once a node knows the cluster CA (it belongs to a cluster):
 *
 *  - On every new connection both sides show each other their node certificate and the newest CRL they
 *    know over `/hopsd/node-cert/1.0.0` (again whenever a side's certificate or CRL changes).
 *  - A peer is *verified* when its certificate is signed by the CA, names the peer id that Noise
 *    authenticated on this connection (a certificate is public; only its node can show it as itself),
 *    has not expired and is not on the CRL.
 *  - Every stream other than admission's (`/hopsd/join/1.0.0`, `/hopsd/node-cert/1.0.0`) and libp2p's
 *    identify and ping — gossip, Raft, proposals, block traffic, in either direction — needs a
 *    verified peer. A stream opened before the exchange finished waits for it ({@link TrustTimings.verifyWaitMs}).
 *  - A peer still unverified {@link TrustTimings.graceMs} after it connected (or after this node learnt
 *    the CA) is disconnected; it may come back to ask for admission again.
 *  - A revoked peer — its certificate on the CRL, or its id revoked in the replicated state (metadata
 *    nodes) — is disconnected at once and refused at the connection gater from then on.
 *  - On a metadata node, a peer whose id the replicated state admits (and has not revoked) passes
 *    without a certificate (status `admitted`): the state is what certificates are issued from, and the
 *    id is the one Noise authenticated, so it proves what a certificate would. Without this, the nodes
 *    of a bootstrap deadlock under load: the first certified leader cuts the other voters' Raft streams,
 *    and their certificates need a Raft commit (RecordCertificate) to be issued.
 *
 * CRLs are signed by the CA, so any peer may relay one: a node adopts a CRL with a higher number than
 * its own and passes it on to its verified peers, which is how a revocation reaches nodes without a
 * metadata replica within a round trip or two. Before the node knows a CA (a fresh node, or a cluster
 * still bootstrapping) the gate lets everything through: the bootstrap trusts the swarm key, as
 * Consul's bootstrap_expect does.
 */
import { hopsd } from '../../proto/cluster.js'
import { CertificateError, verifyCrl, verifyNodeCertificate, type CrlInfo } from '../ca/index.js'
import { handleRequests, request, type P2PHost, type P2PLogger, type PeerGate } from '../p2p/index.js'

import pb = hopsd.cluster

export const JOIN_PROTOCOL = '/hopsd/join/1.0.0'
export const NODE_CERT_PROTOCOL = '/hopsd/node-cert/1.0.0'

/** What a peer without a valid certificate may still speak: admission, and libp2p's own upkeep. */
export const OPEN_PROTOCOLS: ReadonlySet<string> = new Set([
  JOIN_PROTOCOL,
  NODE_CERT_PROTOCOL,
  '/ipfs/id/1.0.0',
  '/ipfs/id/push/1.0.0',
  '/ipfs/ping/1.0.0',
])

export interface TrustTimings {
  /** How long a stream waits for a peer's certificate exchange to finish. */
  readonly verifyWaitMs: number
  /** How long a connected peer may stay without a valid certificate before it is disconnected. */
  readonly graceMs: number
  /** How often connected peers are checked (expiry, grace). */
  readonly sweepMs: number
  /** Deadline of one certificate exchange. */
  readonly exchangeTimeoutMs: number
  /** A verified peer without gossip streams both ways this long has its gossip started over. */
  readonly gossipRepairMs: number
}

export const TRUST_TIMINGS: TrustTimings = {
  verifyWaitMs: 5_000,
  graceMs: 30_000,
  sweepMs: 2_000,
  exchangeTimeoutMs: 5_000,
  gossipRepairMs: 5_000,
}

export type PeerStatus = 'unknown' | 'verified' | 'admitted' | 'none' | 'invalid' | 'revoked'

interface PeerEntry {
  status: PeerStatus
  serial: string
  notAfterMs: number
  /** When this peer was first seen unverified while the gate was active (grace starts here). */
  sinceMs: number
  reason: string
  exchange: Promise<void> | undefined
  /** What we show changed while an exchange was under way: show it again once that one ends. */
  again: boolean
  /** A stream with this peer was refused or cut on this connection (gossipsub will not ask again). */
  refused: boolean
  /** Since when a verified peer has had no gossip stream both ways (0: it has). */
  gossipMissingSinceMs: number
}

export interface TrustReport {
  /** The gate enforces certificates (this node knows the cluster CA). */
  readonly active: boolean
  /** This node shows a certificate. */
  readonly certified: boolean
  readonly crlNumber: number
  readonly peers: { id: string; status: PeerStatus; reason: string }[]
  /** Revoked nodes refused at the connection gater. */
  readonly denied: number
}

export interface PeerTrust extends PeerGate {
  start(): Promise<void>
  stop(): Promise<void>
  /** The cluster CA: from now on the gate enforces certificates. */
  setCa(caPem: string | undefined): void
  caPem(): string | undefined
  /** This node's own certificate, shown to every peer (again to every connected one when it changes). */
  setCertificate(certPem: string | undefined): void
  /** Adopts `crlPem` when it is the CA's and newer than the one held; true when adopted. */
  offerCrl(crlPem: string): Promise<boolean>
  crl(): CrlInfo | undefined
  /** Called with every CRL adopted (persist it, give it to the HTTPS server). Returns the unsubscribe. */
  onCrl(listener: (crl: CrlInfo) => void): () => void
  /** Node ids revoked in the replicated state (metadata nodes pass them on every change). */
  setRevokedNodes(ids: Iterable<string>): void
  /** Node ids admitted (not revoked) in the replicated state: they pass without a certificate. */
  setAdmittedNodes(ids: Iterable<string>): void
  status(peer: string): PeerStatus
  report(): TrustReport
}

export interface PeerTrustInit {
  readonly host: P2PHost
  readonly logger: P2PLogger
  readonly timings?: Partial<TrustTimings>
  readonly now?: () => number
}

export function createPeerTrust(init: PeerTrustInit): PeerTrust {
  const { host, logger } = init
  const timings = { ...TRUST_TIMINGS, ...init.timings }
  const now = init.now ?? Date.now
  const peers = new Map<string, PeerEntry>()
  const denied = new Set<string>()
  let admitted: ReadonlySet<string> = new Set()
  const admittedNow = (peer: string): boolean => admitted.has(peer) && !denied.has(peer)
  const crlListeners: ((crl: CrlInfo) => void)[] = []
  let ca: string | undefined
  let activeSinceMs = 0
  let ownCert = ''
  let crl: CrlInfo | undefined
  let sweepTimer: ReturnType<typeof setTimeout> | undefined
  let stopped = false
  const unsubscribe: (() => void | Promise<void>)[] = []

  const entry = (peer: string): PeerEntry => {
    let e = peers.get(peer)
    if (e === undefined) {
      e = {
        status: 'unknown',
        serial: '',
        notAfterMs: 0,
        sinceMs: now(),
        reason: '',
        exchange: undefined,
        again: false,
        refused: false,
        gossipMissingSinceMs: 0,
      }
      peers.set(peer, e)
    }
    return e
  }

  const message = (): Uint8Array =>
    pb.NodeCertificate.encode({ certificatePem: ownCert, crlPem: crl?.pem ?? '' }).finish()

  const deny = (peer: string, reason: string): void => {
    if (!denied.has(peer)) logger.warn({ peer, reason }, 'trust: peer revoked; disconnecting and refusing it')
    denied.add(peer)
    const e = entry(peer)
    e.status = 'revoked'
    e.reason = reason
    void host.closePeer(peer).catch(() => undefined)
  }

  /** Judges what `peer` showed. */
  const evaluate = async (peer: string, shown: pb.INodeCertificate): Promise<void> => {
    if (shown.crlPem) await offerCrl(shown.crlPem).catch(() => false)
    const e = entry(peer)
    if (ca === undefined) return
    const certPem = shown.certificatePem ?? ''
    if (certPem === '' && admittedNow(peer)) {
      e.status = 'admitted'
      e.reason = 'no certificate yet; admitted in the replicated state'
      return
    }
    if (certPem === '') {
      e.status = 'none'
      e.reason = 'shows no node certificate'
      e.refused = true
      cutStreams(host, peer)
      return
    }
    try {
      const info = await verifyNodeCertificate(ca, certPem, {
        expectedNodeId: peer,
        now: new Date(now()),
        revoked: crl?.revoked,
      })
      if (denied.has(peer)) return
      const refusedBefore = e.refused
      e.refused = false
      e.status = 'verified'
      e.serial = info.serial
      e.notAfterMs = info.notAfter.getTime()
      e.reason = ''
      // We refused (or cut) its gossip streams until now, and gossipsub does not ask again: start over.
      if (refusedBefore && !hasGossipStream(host, peer)) {
        logger.debug({ peer }, 'trust: peer certified; restarting gossip with it')
        host.restartGossip(peer)
      }
    } catch (err) {
      const revoked = err instanceof CertificateError && err.code === 'CERTIFICATE_REVOKED'
      if (revoked) deny(peer, (err as Error).message)
      else if (admittedNow(peer)) {
        e.status = 'admitted'
        e.reason = `admitted in the replicated state; its certificate is refused: ${(err as Error).message}`
      } else {
        e.status = 'invalid'
        e.reason = (err as Error).message
        e.refused = true
        cutStreams(host, peer)
        logger.info({ peer, reason: e.reason }, 'trust: peer certificate refused')
      }
    }
  }

  /**
   * Shows our certificate to `peer` and judges its answer (one exchange at a time per peer; `changed`:
   * what we show changed, so one under way is followed by another).
   */
  const exchange = (peer: string, changed = false): Promise<void> => {
    const e = entry(peer)
    if (e.exchange !== undefined && changed) e.again = true
    e.exchange ??= (async () => {
      try {
        const reply = await request(host, peer, NODE_CERT_PROTOCOL, message(), {
          timeoutMs: timings.exchangeTimeoutMs,
        })
        await evaluate(peer, pb.NodeCertificate.decode(reply))
      } catch (err) {
        // The peer may be gone, or an old node without the protocol: it stays unverified.
        if (e.status === 'unknown') e.reason = `certificate exchange failed: ${(err as Error).message}`
      } finally {
        e.exchange = undefined
        if (e.again && !stopped) {
          e.again = false
          void exchange(peer)
        }
      }
    })()
    return e.exchange
  }

  const verifiedNow = (e: PeerEntry): boolean =>
    e.status === 'verified' && e.notAfterMs > now() && crl?.revoked.has(e.serial) !== true

  const allow = async (peer: string, protocol: string): Promise<boolean> => {
    if (OPEN_PROTOCOLS.has(protocol)) return true
    if (denied.has(peer)) return false
    if (ca === undefined) return true
    if (admittedNow(peer)) return true
    const e = entry(peer)
    if (verifiedNow(e)) return true
    if (e.status === 'unknown') {
      let timer: ReturnType<typeof setTimeout> | undefined
      await Promise.race([
        exchange(peer),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timings.verifyWaitMs))),
      ])
      clearTimeout(timer)
    }
    if (verifiedNow(entry(peer))) return true
    entry(peer).refused = true
    return false
  }

  const offerCrl = async (crlPem: string): Promise<boolean> => {
    if (ca === undefined || crlPem === '' || crlPem === crl?.pem) return false
    let info: CrlInfo
    try {
      info = await verifyCrl(ca, crlPem)
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'trust: a CRL that is not the CA’s was ignored')
      return false
    }
    if (crl !== undefined && info.number <= crl.number) return false
    crl = info
    logger.info({ number: info.number, revoked: info.revoked.size }, 'trust: CRL adopted')
    for (const [peer, e] of peers)
      if (e.status === 'verified' && info.revoked.has(e.serial))
        deny(peer, `certificate ${e.serial} is on CRL ${info.number}`)
    for (const l of [...crlListeners]) l(info)
    // Pass it on: every verified peer hears of it (each adopts only a newer one, so this ends).
    for (const peer of host.peers()) if (verifiedNow(entry(peer))) void exchange(peer, true)
    return true
  }

  const sweep = (): void => {
    if (stopped) return
    sweepTimer = setTimeout(sweep, timings.sweepMs)
    if (ca === undefined) return
    const t = now()
    for (const peer of host.peers()) {
      if (denied.has(peer)) {
        void host.closePeer(peer).catch(() => undefined)
        continue
      }
      const e = entry(peer)
      if (verifiedNow(e) || admittedNow(peer)) {
        // Self-healing: a verified peer without gossip both ways for a while (a stream refused in a
        // race, a reconnect gossipsub missed) gets its gossip started over.
        if (hasGossipStream(host, peer)) e.gossipMissingSinceMs = 0
        else if (e.gossipMissingSinceMs === 0) e.gossipMissingSinceMs = t
        else if (t - e.gossipMissingSinceMs > timings.gossipRepairMs) {
          logger.debug({ peer }, 'trust: no gossip with a verified peer; restarting it')
          e.gossipMissingSinceMs = 0
          host.restartGossip(peer)
        }
        continue
      }
      if (e.status === 'verified') {
        e.status = 'invalid'
        e.reason = 'its certificate expired'
      }
      if (e.status === 'unknown' && e.exchange === undefined) void exchange(peer)
      if (t - Math.max(e.sinceMs, activeSinceMs) > timings.graceMs) {
        logger.info(
          { peer, status: e.status, reason: e.reason },
          'trust: disconnecting a peer without a valid certificate',
        )
        peers.delete(peer)
        void host.closePeer(peer).catch(() => undefined)
      }
    }
  }

  const trust: PeerTrust = {
    allow,
    denied: (peer) => denied.has(peer),
    async start() {
      unsubscribe.push(
        await handleRequests(host, NODE_CERT_PROTOCOL, async (from, body) => {
          await evaluate(from, pb.NodeCertificate.decode(body))
          return message()
        }),
      )
      unsubscribe.push(
        host.on('peer:connect', (peer) => {
          const e = entry(peer)
          e.sinceMs = now()
          if (ca !== undefined) void exchange(peer)
        }),
        host.on('peer:disconnect', (peer) => {
          if (!denied.has(peer)) peers.delete(peer)
        }),
      )
      host.setGate(trust)
      sweep()
    },
    async stop() {
      // The gate stays installed: the host stops right after, and must not open up meanwhile.
      stopped = true
      clearTimeout(sweepTimer)
      for (const u of unsubscribe.splice(0)) await u()
    },
    setCa(caPem) {
      if (caPem === ca) return
      const first = ca === undefined
      ca = caPem
      if (caPem === undefined) return
      activeSinceMs = now()
      if (first) logger.info({}, 'trust: the cluster CA is known; peers must show node certificates')
      for (const e of peers.values()) if (e.status !== 'revoked') e.status = 'unknown'
      for (const peer of host.peers()) void exchange(peer)
    },
    caPem: () => ca,
    setCertificate(certPem) {
      const next = certPem ?? ''
      if (next === ownCert) return
      const first = ownCert === ''
      ownCert = next
      if (next === '') return
      // Peers that refused our streams while we had none restart gossip once they verify this one.
      for (const peer of host.peers()) void exchange(peer, true)
      if (first) logger.debug({}, 'trust: this node shows its certificate from now on')
    },
    offerCrl,
    crl: () => crl,
    onCrl(listener) {
      crlListeners.push(listener)
      return () => {
        const i = crlListeners.indexOf(listener)
        if (i >= 0) crlListeners.splice(i, 1)
      }
    },
    setRevokedNodes(ids) {
      for (const id of ids) if (!denied.has(id)) deny(id, 'revoked in the cluster state')
    },
    setAdmittedNodes(ids) {
      const before = admitted
      admitted = new Set(ids)
      for (const peer of host.peers()) {
        if (before.has(peer) || !admittedNow(peer)) continue
        const e = entry(peer)
        if (e.status === 'verified') continue
        const refusedBefore = e.refused
        e.status = 'admitted'
        e.reason = 'admitted in the replicated state'
        e.refused = false
        if (refusedBefore && !hasGossipStream(host, peer)) host.restartGossip(peer)
      }
    },
    status: (peer) => (denied.has(peer) ? 'revoked' : (peers.get(peer)?.status ?? 'unknown')),
    report: () => ({
      active: ca !== undefined,
      certified: ownCert !== '',
      crlNumber: crl?.number ?? 0,
      peers: host
        .peers()
        .map((id) => ({ id, status: trust.status(id), reason: peers.get(id)?.reason ?? '' })),
      denied: denied.size,
    }),
  }
  return trust
}

/**
 * Aborts every stream with `peer` but admission's: streams opened before the gate knew better (the
 * gossip of a cluster still bootstrapping, when the gate let everything through) end here.
 */
function cutStreams(host: P2PHost, peer: string): void {
  for (const conn of host.libp2p.getConnections()) {
    if (conn.remotePeer.toString() !== peer) continue
    for (const stream of conn.streams)
      if (!OPEN_PROTOCOLS.has(stream.protocol ?? ''))
        stream.abort(new Error('the peer shows no valid node certificate'))
  }
}

/** Whether gossipsub runs both ways with `peer` (each side opens its own stream to the other). */
function hasGossipStream(host: P2PHost, peer: string): boolean {
  const streams = host.libp2p
    .getConnections()
    .filter((c) => c.remotePeer.toString() === peer)
    .flatMap((c) => c.streams)
    .filter((s) => s.protocol?.startsWith('/meshsub/') === true)
  return streams.some((s) => s.direction === 'inbound') && streams.some((s) => s.direction === 'outbound')
}
