/**
 * The join loop: one background task per --join address, so hosts can start in any order.
 *
 * Each task: skip the address when it is this node's own; otherwise dial the bare `/ip4/IP/tcp/PORT`
 * (no peer id — libp2p 3 learns it from the Noise handshake); on failure wait a capped, jittered,
 * exponential backoff and try again, forever (an absent host costs one dial per `joinBackoffMaxMs`).
 * Once connected it waits for that peer to disconnect and starts over, so lost join peers are
 * reconnected. Before dialing it checks whether a connected peer already advertises the address (it
 * dialed us first), to avoid a duplicate connection. Everything stops when `signal` aborts.
 *
 * A failure it can name (./handshake-diagnosis.ts: the address is not a p2p port, or its node holds
 * another swarm key) is logged as one error line with its code as soon as it is sure — at once when
 * seen, on the second such failure in a row when inferred (a single one could be a fluke) — and again
 * at most every {@link DIAGNOSIS_REPEAT_MS} while it lasts; the retries go on quietly meanwhile.
 */
import type { Libp2p, PeerId } from '@libp2p/interface'
import {
  formatHostPort,
  ipPortOf,
  isOwnAddress,
  localIps,
  resolveHost,
  tcpMultiaddr,
  type HostPort,
} from './address.js'
import { abortableDelay, backoffDelayMs } from './backoff.js'
import { diagnoseDialFailure, type HandshakeLog, type JoinDiagnosisCode } from './handshake-diagnosis.js'
import type { P2PLogger } from './logger.js'

/** A named join failure that lasts is logged again this often (the retries continue in between). */
export const DIAGNOSIS_REPEAT_MS = 10 * 60_000

export type JoinState = 'self' | 'dialing' | 'connected' | 'backoff' | 'stopped'

export interface JoinTargetStatus {
  /** The address as given (normalised HOST:PORT). */
  readonly address: string
  readonly state: JoinState
  /** Peer id found at the address (once it answered). */
  readonly peerId: string | undefined
  /** Failed attempts since the last success. */
  readonly attempts: number
  /** Why the last attempt failed. */
  readonly lastError: string | undefined
}

export interface JoinTimings {
  /** Deadline of one dial attempt (TCP connect + pnet + Noise + Yamux). */
  readonly dialTimeoutMs: number
  /** First retry delay; doubles per failure. */
  readonly joinBackoffBaseMs: number
  /** Cap of the retry delay (also the steady retry period for a host that stays away). */
  readonly joinBackoffMaxMs: number
}

export interface JoinLoopInit {
  readonly libp2p: Libp2p
  readonly targets: readonly HostPort[]
  /** This node's listener: resolved IP and actual bound port. */
  readonly listen: { ip: string; port: number }
  readonly timings: JoinTimings
  readonly logger: P2PLogger
  readonly signal: AbortSignal
  readonly random?: () => number
  /** What the remote ends of outbound connections sent first (the host's protector fills it). */
  readonly handshakes?: HandshakeLog
  /** Wall-clock ms, for the repetition bound of named failures (default Date.now). */
  readonly now?: () => number
}

export interface JoinLoop {
  status(): JoinTargetStatus[]
  /** Resolves when every task has finished (after `signal` aborted). */
  done(): Promise<void>
}

interface Target {
  readonly hp: HostPort
  readonly address: string
  state: JoinState
  peerId: PeerId | undefined
  attempts: number
  lastError: string | undefined
  /** The named failure of the latest failed attempts, and how many in a row named it. */
  diagnosis: { code: JoinDiagnosisCode; streak: number } | undefined
  /** The named failure last logged, and when. */
  reported: { code: JoinDiagnosisCode; atMs: number } | undefined
}

export function startJoinLoop(init: JoinLoopInit): JoinLoop {
  const { libp2p, signal, logger, timings } = init
  const random = init.random ?? Math.random
  const now = init.now ?? Date.now
  const ownIps = localIps()
  const seen = new Set<string>()
  const targets: Target[] = []
  for (const hp of init.targets) {
    const address = formatHostPort(hp)
    if (seen.has(address)) continue // the same address twice is one task
    seen.add(address)
    targets.push({
      hp,
      address,
      state: 'dialing',
      peerId: undefined,
      attempts: 0,
      lastError: undefined,
      diagnosis: undefined,
      reported: undefined,
    })
  }

  const run = async (t: Target): Promise<void> => {
    while (!signal.aborted) {
      t.state = 'dialing'
      let ips: string[]
      try {
        ips = await resolveHost(t.hp.host)
      } catch (err) {
        await fail(t, err)
        continue
      }
      if (ips.some((ip) => isOwnAddress({ ip, port: t.hp.port }, init.listen, ownIps))) {
        t.state = 'self'
        logger.debug({ address: t.address }, 'join: skipping own address')
        return
      }
      const existing = t.peerId ?? (await connectedPeerAt(libp2p, ips, t.hp.port))
      if (existing !== undefined && libp2p.getConnections(existing).length > 0) {
        t.peerId = existing
        await connected(t)
        continue
      }
      let lastIp: string | undefined
      try {
        const dialSignal = AbortSignal.any([signal, AbortSignal.timeout(timings.dialTimeoutMs)])
        // Bare address, no /p2p/ suffix: the peer id comes out of the handshake. Try each IP in turn.
        let lastErr: unknown
        let peer: PeerId | undefined
        for (const ip of ips) {
          try {
            lastIp = ip
            const conn = await libp2p.dial(tcpMultiaddr(ip, t.hp.port), { signal: dialSignal })
            peer = conn.remotePeer
            break
          } catch (err) {
            lastErr = err
            if (isDialSelf(err) || dialSignal.aborted) break
          }
        }
        if (peer === undefined) throw lastErr ?? new Error('no address to dial')
        t.peerId = peer
        await connected(t)
      } catch (err) {
        if (signal.aborted) break
        if (isDialSelf(err)) {
          // Our own address under a name the static check didn't recognise (NAT, alias, another IP).
          t.state = 'self'
          logger.debug({ address: t.address }, 'join: address turned out to be this node')
          return
        }
        await fail(t, err, lastIp)
      }
    }
    t.state = 'stopped'
  }

  const connected = async (t: Target): Promise<void> => {
    const peer = t.peerId!
    if (t.state !== 'connected') logger.info({ address: t.address, peer: peer.toString() }, 'join: connected')
    t.state = 'connected'
    t.attempts = 0
    t.lastError = undefined
    t.diagnosis = undefined
    t.reported = undefined
    await untilDisconnected(libp2p, peer, signal)
    if (!signal.aborted)
      logger.info({ address: t.address, peer: peer.toString() }, 'join: peer lost, reconnecting')
  }

  const fail = async (t: Target, err: unknown, ip?: string): Promise<void> => {
    t.attempts++
    t.lastError = errText(err)
    t.state = 'backoff'
    const delayMs = backoffDelayMs(
      t.attempts,
      { baseMs: timings.joinBackoffBaseMs, maxMs: timings.joinBackoffMaxMs },
      random,
    )
    const named = report(t, err, ip)
    // First failures are expected while the cluster starts in any order: debug, then warn now and
    // then — unless the failure was named, and that line says it (bounded by its own rule).
    const log = t.attempts % 10 === 0 && !named ? logger.warn.bind(logger) : logger.debug.bind(logger)
    log(
      { address: t.address, attempts: t.attempts, delayMs, err: t.lastError },
      'join: no answer yet, retrying',
    )
    await abortableDelay(delayMs, signal).catch(() => {})
  }

  /** Names the failure when it can and logs it under the repetition rule; true while one is named. */
  const report = (t: Target, err: unknown, ip: string | undefined): boolean => {
    // A timeout says nothing by itself (a slow host): it neither names a failure nor ends a streak.
    if (ip === undefined || init.handshakes === undefined || isTimeout(err)) return t.reported !== undefined
    const d = diagnoseDialFailure(t.address, init.handshakes.latest(ip, t.hp.port))
    if (d === undefined) {
      t.diagnosis = undefined
      return false
    }
    t.diagnosis = { code: d.code, streak: t.diagnosis?.code === d.code ? t.diagnosis.streak + 1 : 1 }
    const sure = d.certain || t.diagnosis.streak >= 2
    if (!sure) return t.reported !== undefined
    const nowMs = now()
    if (t.reported?.code !== d.code || nowMs - t.reported.atMs >= DIAGNOSIS_REPEAT_MS) {
      t.reported = { code: d.code, atMs: nowMs }
      logger.error({ address: t.address, code: d.code, attempts: t.attempts }, `join: ${d.message}`)
    }
    return true
  }

  const tasks = targets.map((t) =>
    run(t).catch((err: unknown) => {
      // Not expected (every await inside is guarded): log and leave the target stopped, never crash.
      t.state = 'stopped'
      t.lastError = errText(err)
      logger.error({ address: t.address, err: t.lastError }, 'join: task failed')
    }),
  )

  return {
    status: () =>
      targets.map((t) => ({
        address: t.address,
        state: t.state,
        peerId: t.peerId?.toString(),
        attempts: t.attempts,
        lastError: t.lastError,
      })),
    done: async () => {
      await Promise.all(tasks)
    },
  }
}

/**
 * A connected peer reachable at ip:port: an outbound connection to it, or a peer that dialed us and
 * whose listen addresses (told by identify, kept in the peer store) include it.
 */
async function connectedPeerAt(libp2p: Libp2p, ips: string[], port: number): Promise<PeerId | undefined> {
  const at = (ma: Parameters<typeof ipPortOf>[0]): boolean => {
    const a = ipPortOf(ma)
    return a !== undefined && a.port === port && ips.includes(a.ip)
  }
  for (const conn of libp2p.getConnections()) {
    if (at(conn.remoteAddr)) return conn.remotePeer
    try {
      const peer = await libp2p.peerStore.get(conn.remotePeer)
      if (peer.addresses.some((a) => at(a.multiaddr))) return conn.remotePeer
    } catch {
      // not in the peer store (yet): identify hasn't finished; dialing is still correct
    }
  }
  return undefined
}

function untilDisconnected(libp2p: Libp2p, peer: PeerId, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      libp2p.removeEventListener('peer:disconnect', onDisconnect)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const onDisconnect = (evt: CustomEvent<PeerId>): void => {
      if (evt.detail.equals(peer)) done()
    }
    libp2p.addEventListener('peer:disconnect', onDisconnect)
    signal.addEventListener('abort', done, { once: true })
    // The connection may have gone between the check and the listener.
    if (signal.aborted || libp2p.getConnections(peer).length === 0) done()
  })
}

/** Our own deadline (the dial timeout), not something the remote did. */
function isTimeout(err: unknown): boolean {
  const e = err as { name?: string; cause?: { name?: string }; errors?: { name?: string }[] } | undefined
  const names = [e?.name, e?.cause?.name, ...(e?.errors ?? []).map((x) => x?.name)]
  return names.some((n) => n === 'TimeoutError' || n === 'AbortError')
}

function isDialSelf(err: unknown): boolean {
  const e = err as { name?: string; message?: string } | undefined
  return e?.name === 'InvalidPeerIdError' && /dial self/i.test(e.message ?? '')
}

function errText(err: unknown): string {
  if (err instanceof Error) {
    const inner = (err as { errors?: unknown[] }).errors
    const first = Array.isArray(inner) && inner[0] instanceof Error ? `: ${inner[0].message}` : ''
    return `${err.name}: ${err.message}${first}`
  }
  return String(err)
}
