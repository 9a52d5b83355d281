/**
 * Why a dial to a --join address failed, in words an operator can act on. libp2p reports a peer with
 * another swarm key as a Noise or multistream failure, a reset, or a timeout, and an HTTP port as
 * "Missing newline" or an unexpected EOF: true, but not what is wrong. So the private-network
 * protector is wrapped to keep, per outbound connection, the first bytes the remote sent (a libp2p
 * pnet peer's are its 24-byte random nonce, sent at once) and whether the pnet handshake completed.
 * From that the join loop tells:
 *
 * - NOT_A_P2P_PORT: the remote answered with text ("HTTP/1.1 400 Bad Request": an HTTP server, the
 *   API port given instead of the p2p one), with a TLS alert (an HTTPS port), or with fewer bytes than
 *   a nonce and then closed: nothing there speaks libp2p's private network;
 * - SWARM_KEY_MISMATCH: the remote completed the pnet handshake (random nonce) and the dial still
 *   failed: the nonce exchange is the same for every key, but what follows is encrypted with the key,
 *   and a peer holding another key reads noise — the only failure left at that point.
 *
 * Both ends also check the first bytes that come out of the pnet layer: every libp2p connection
 * starts with multistream-select's header (`\x13/multistream/1.0.0\n`) in both directions, so anything
 * else means the keys differ (it decrypts to noise). Such a connection is reset at once: otherwise the
 * other end would read a noise length prefix, wait out its handshake timeout, and a dialer could not
 * tell a key mismatch from a slow host. Beyond that nothing here changes what goes on the wire: bytes
 * are observed as they arrive, never consumed.
 */
import type { ConnectionProtector, MessageStream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { ipPortOf } from './address.js'
import { P2PError, type P2PErrorCode } from './errors.js'

/** libp2p pnet's nonce (XSalsa20): what a pnet peer sends first. */
const NONCE_BYTES = 24
/** Outbound handshakes remembered at once (the oldest go first). */
const RECORDS_MAX = 256
/** Every libp2p connection's first plaintext, in both directions (multistream-select 1.0). */
const MULTISTREAM_HEADER = new TextEncoder().encode('\x13/multistream/1.0.0\n')

/** What the remote end of one outbound connection did in the private-network handshake. */
export interface HandshakeRecord {
  /** The first bytes the remote sent (at most 24). */
  readonly firstBytes: Uint8Array
  /** The pnet handshake (nonce exchange) completed. */
  readonly protected: boolean
  /** The pnet handshake failed (the remote closed or stayed silent before sending a whole nonce). */
  readonly failed: boolean
  /** What came out of the pnet layer was not multistream-select: the keys differ (reset at once). */
  readonly keyMismatch?: boolean
  /**
   * What came out of the pnet layer was multistream-select's header: the keys are the same, so a dial
   * that fails later failed for another reason (the peer's gate refused this node, it went away).
   */
  readonly keyMatch?: boolean
}

/** Codes of the p2p error table (./errors.ts). */
export type JoinDiagnosisCode = Extract<P2PErrorCode, 'NOT_A_P2P_PORT' | 'SWARM_KEY_MISMATCH'>

export interface JoinDiagnosis {
  readonly code: JoinDiagnosisCode
  readonly message: string
  /** Certain from one attempt (seen, not inferred). */
  readonly certain: boolean
}

/** The latest outbound handshake per remote `IP:PORT`, bounded. */
export class HandshakeLog {
  readonly #records = new Map<string, HandshakeRecord>()

  /** The latest outbound handshake with `ip:port`, if any was seen. */
  latest(ip: string, port: number): HandshakeRecord | undefined {
    return this.#records.get(`${ip}:${port}`)
  }

  set(key: string, record: HandshakeRecord): void {
    this.#records.delete(key)
    this.#records.set(key, record)
    if (this.#records.size > RECORDS_MAX) this.#records.delete(this.#records.keys().next().value!)
  }
}

/**
 * Wraps a connection protector factory (libp2p's `connectionProtector`): fills `log` for outbound
 * connections, and resets any connection whose first plaintext is not multistream-select, after
 * calling `onMismatch` with its direction and remote `IP:PORT`.
 */
export function recordingProtector<C>(
  factory: (components: C) => ConnectionProtector,
  log: HandshakeLog,
  onMismatch: (direction: string, remote: string) => void = () => undefined,
): (components: C) => ConnectionProtector {
  return (components) => {
    const inner = factory(components)
    return {
      [Symbol.toStringTag]: 'hopsd/recording-pnet',
      async protect(connection, options) {
        const c = connection as MessageStream & { remoteAddr?: Multiaddr; direction?: string }
        const direction = c.direction ?? ''
        const at = c.remoteAddr ? ipPortOf(c.remoteAddr) : undefined
        const remote = at === undefined ? '?' : `${at.ip}:${at.port}`
        let first: Uint8Array = new Uint8Array(0)
        const state = { protected: false, failed: false, keyMismatch: false, keyMatch: false }
        const save = (): void => {
          if (direction === 'outbound' && at !== undefined) log.set(remote, { firstBytes: first, ...state })
        }
        const stopPeeking = peek(connection, NONCE_BYTES, (bytes) => {
          first = bytes
          save()
        })
        save()
        let out: MessageStream
        try {
          out = await inner.protect(connection, options)
          state.protected = true
        } catch (err) {
          state.failed = true
          throw err
        } finally {
          stopPeeking()
          save()
        }
        expectMultistream(
          out,
          () => {
            state.keyMismatch = true
            save()
            onMismatch(direction, remote)
            out.abort(new P2PError('SWARM_KEY_MISMATCH', `the peer at ${remote} holds a different swarm key`))
          },
          () => {
            state.keyMatch = true
            save()
          },
        )
        return out
      },
    } as ConnectionProtector
  }
}

/**
 * Calls `onWrong` as soon as the plaintext `box` receives departs from the multistream header, or
 * `onRight` once the whole header was seen: first what the pnet layer already decrypted and holds for
 * its reader (bytes that came with the nonce), then what arrives.
 */
function expectMultistream(box: MessageStream, onWrong: () => void, onRight: () => void): void {
  let matched = 0
  let settled = false
  const check = (bytes: Uint8Array): void => {
    for (let i = 0; i < bytes.length && !settled; i++) {
      if (bytes[i] !== MULTISTREAM_HEADER[matched]) {
        settled = true
        onWrong()
      } else if (++matched === MULTISTREAM_HEADER.length) {
        settled = true
        onRight()
      }
    }
  }
  const held = (box as unknown as { readBuffer?: { subarray(): Uint8Array } }).readBuffer
  if (typeof held?.subarray === 'function') check(held.subarray())
  if (settled) return
  let seen = 0
  const stop = peek(box, MULTISTREAM_HEADER.length - matched, (bytes) => {
    check(bytes.subarray(seen))
    seen = bytes.length
    if (settled) stop()
  })
}

/**
 * Calls `onBytes` with the first `n` bytes (fewer while they arrive) that `stream` receives, without
 * consuming them: its data method is wrapped until `n` bytes were seen or the returned stop is called.
 */
function peek(stream: MessageStream, n: number, onBytes: (bytes: Uint8Array) => void): () => void {
  const s = stream as unknown as { onData?: (data: unknown) => unknown }
  const original = s.onData
  if (typeof original !== 'function') return () => undefined
  let seen: Uint8Array = new Uint8Array(0)
  let done = false
  const restore = (): void => {
    if (done) return
    done = true
    if (s.onData === wrapped) s.onData = original
  }
  const wrapped = function (this: unknown, data: unknown): unknown {
    if (!done) {
      const bytes = toBytes(data)
      if (bytes.length > 0) {
        const next = new Uint8Array(Math.min(n, seen.length + bytes.length))
        next.set(seen)
        next.set(bytes.subarray(0, next.length - seen.length), seen.length)
        seen = next
        onBytes(seen)
        if (seen.length >= n) restore()
      }
    }
    return original.call(this, data)
  }
  s.onData = wrapped
  return restore
}

function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data
  const list = data as { subarray?: () => Uint8Array } | null
  return typeof list?.subarray === 'function' ? list.subarray() : new Uint8Array(0)
}

/**
 * Why a dial to `address` failed, from its latest handshake record; undefined when nothing specific
 * can be said (refused, unreachable, timed out before any byte, or no record).
 */
export function diagnoseDialFailure(
  address: string,
  record: HandshakeRecord | undefined,
): JoinDiagnosis | undefined {
  if (record === undefined) return undefined
  const bytes = record.firstBytes
  const hint = "--join takes other nodes' --p2p addresses"
  if (bytes.length >= 2 && bytes[0] === 0x15 && bytes[1] === 0x03) {
    return {
      code: 'NOT_A_P2P_PORT',
      message: `${address} is not a hopsd p2p port: a TLS server answered (an HTTPS API port?); ${hint}`,
      certain: true,
    }
  }
  if (looksLikeText(bytes)) {
    const said = JSON.stringify(Buffer.from(bytes).toString('latin1').split(/\r?\n/)[0])
    const what = /^HTTP\/\d/.test(Buffer.from(bytes).toString('latin1'))
      ? 'an HTTP server answered'
      : 'it answered with text'
    return {
      code: 'NOT_A_P2P_PORT',
      message: `${address} is not a hopsd p2p port: ${what} ${said} (an HTTP API port?); ${hint}`,
      certain: true,
    }
  }
  if (record.failed && bytes.length > 0 && bytes.length < NONCE_BYTES) {
    return {
      code: 'NOT_A_P2P_PORT',
      message: `${address} is not a hopsd p2p port: it sent ${bytes.length} byte(s) that are not a libp2p private-network handshake and closed; ${hint}`,
      certain: true,
    }
  }
  // The keys matched (the plaintext was multistream-select): whatever failed, it was not the key.
  if (record.keyMatch === true && record.keyMismatch !== true) return undefined
  if (record.protected || record.keyMismatch === true) {
    return {
      code: 'SWARM_KEY_MISMATCH',
      message: `${address} holds a different swarm key: its private-network handshake completes, but the bytes either side encrypts read as noise to the other (give every node the same --swarm-key file)`,
      // Seen: its plaintext was noise. Inferred: it failed after the handshake (a fluke is possible).
      certain: record.keyMismatch === true,
    }
  }
  return undefined
}

/** Mostly printable ASCII: a text protocol's greeting or error, never a random nonce. */
function looksLikeText(bytes: Uint8Array): boolean {
  if (bytes.length < 4) return false
  let printable = 0
  for (const b of bytes) if ((b >= 0x20 && b < 0x7f) || b === 0x0a || b === 0x0d || b === 0x09) printable++
  return printable >= bytes.length * 0.9
}
