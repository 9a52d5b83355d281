/**
 * The data plane: {@link PeerStreams} over direct TLS 1.3 connections between nodes, for bulk block
 * data (pipeline writes, replica copies, remote block reads). Raft, gossip and requests stay on libp2p.
 *
 * Trust: both sides show their node certificate from the cluster CA (requestCert + rejectUnauthorized
 * against the CA: OpenSSL refuses a peer without one, self-signed or from another CA in the handshake).
 * Then each side checks what OpenSSL does not know: that the certificate is a hopsd node certificate
 * of this cluster (./ca's verifyNodeCertificate), not expired, not on the CRL, its node not revoked in
 * the replicated state (the p2p gate's deny list) — and, on the dialling side, that it names the node
 * that was dialled (an address in gossip is a hint; the certificate is the proof). Host names in the
 * certificate are not checked: the node id is what the caller asked for.
 *
 * Cipher: TLS 1.3 only, AES-128-GCM first (AES-NI), ChaCha20-Poly1305 for CPUs without it. Both are
 * OpenSSL's, run on the socket's thread: a fraction of pnet's XSalsa20 in WebAssembly plus Noise's
 * ChaCha20 in JS per byte on the libp2p path.
 *
 * One connection per stream (no multiplexing, so no head-of-line blocking between a slow pipeline and
 * a read, and TCP's own flow control is each stream's backpressure): a stream opens with one frame
 * naming the protocol, answered by one status frame; then frames both ways (./frames.ts), each side
 * ending its own with the end mark. A block stream lives for a block (MiBs), so the handshake (two
 * ECDSA P-256 signatures and an ECDHE) is small beside it; verified certificates are cached by their
 * fingerprint so that a stream costs no X.509 parsing after the first.
 *
 * @example
 * const plane = createTlsDataPlane({ credentials: () => ({ keyPem, certPem, caPem }), logger })
 * await plane.handleStreams('/hopsd/block-read/1.0.0', async (stream, from) => { ... })
 * const at = await plane.listen({ host: '127.0.0.1', port: 0 })
 * const s = await plane.openStream(peerId, at, '/hopsd/block-read/1.0.0')
 */
import type { AddressInfo } from 'node:net'
import { connect, createServer, type Server, type TLSSocket } from 'node:tls'
import type { PeerStream, PeerStreamHandler } from '../../fs/index.js'
import { verifyNodeCertificate, type NodeCertificateInfo } from '../ca/index.js'
import type { HostPort } from '../config.js'
import { P2PError } from '../p2p/index.js'
import { EOF_MARK, FrameReader, frameHeader } from './frames.js'

/** The node's key and certificate, and the cluster CA, as the tls module holds them. */
export interface DataPlaneCredentials {
  readonly keyPem: string
  readonly certPem: string
  readonly caPem: string
}

export interface DataPlaneLogger {
  warn(obj: object, msg: string): void
  info(obj: object, msg: string): void
  debug(obj: object, msg: string): void
}

export interface TlsDataPlaneInit {
  /** The node's cluster certificate; undefined while it has none (nothing is dialled or served then). */
  readonly credentials: () => DataPlaneCredentials | undefined
  /** Serials on the newest CRL the node knows. */
  readonly revokedSerials?: () => ReadonlySet<string> | undefined
  /** Node ids revoked in the replicated state (the p2p gate's deny list). */
  readonly deniedNode?: (nodeId: string) => boolean
  readonly logger: DataPlaneLogger
  /** Counts streams and refusals (the daemon's metrics). */
  readonly onStream?: (direction: 'in' | 'out') => void
  readonly onRefused?: (reason: string) => void
  readonly now?: () => number
  /** Deadline of a connection's handshake and first frame. */
  readonly handshakeTimeoutMs?: number
}

export interface TlsDataPlane {
  /** Listens at `at` (port 0: any); resolves with the bound address. Needs credentials. */
  listen(at: HostPort): Promise<HostPort>
  /** The bound address, once listening. */
  address(): HostPort | undefined
  /** The node's certificate, CA or CRL changed: new connections use the new ones. */
  refreshCredentials(): void
  /**
   * Opens a stream to `peer` at `addr` for `protocol`. Rejects with PEER_UNREACHABLE (no connection),
   * PEER_NOT_CERTIFIED (either side's certificate refused), PROTOCOL_UNSUPPORTED (not served there).
   */
  openStream(
    peer: string,
    addr: HostPort,
    protocol: string,
    opts?: { signal?: AbortSignal },
  ): Promise<PeerStream>
  handleStreams(
    protocol: string,
    handler: PeerStreamHandler,
    opts?: { streamsMax?: number },
  ): Promise<() => Promise<void>>
  close(): Promise<void>
}

export const DATA_PLANE_TLS = {
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  ciphers: 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384',
} as const
const HANDSHAKE_TIMEOUT_MS = 10_000
/** The protocol name frame is short. */
const OPEN_FRAME_BYTES_MAX = 1024
/** A connection the handler finished with, whose peer does not end its side, is cut after this. */
const LINGER_MS = 10_000
const VERIFIED_CACHE_MAX = 1024
const STATUS_OK = 0
const STATUS_UNSUPPORTED = 1
const STATUS_BUSY = 2

export function createTlsDataPlane(init: TlsDataPlaneInit): TlsDataPlane {
  const { logger } = init
  const now = init.now ?? Date.now
  const handshakeMs = init.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS
  const handlers = new Map<string, { handler: PeerStreamHandler; streamsMax: number }>()
  const openPerPeer = new Map<string, number>()
  const verified = new Map<string, NodeCertificateInfo>()
  const sockets = new Set<TLSSocket>()
  let verifiedCa = ''
  let server: Server | undefined
  let bound: HostPort | undefined

  const refused = (reason: string, fields: object, msg: string): void => {
    init.onRefused?.(reason)
    logger.warn({ reason, ...fields }, msg)
  }

  /** The node the peer's certificate proves, or why it proves none. */
  const verifyPeer = async (
    sock: TLSSocket,
    creds: DataPlaneCredentials,
    expected?: string,
  ): Promise<string> => {
    if (!sock.authorized)
      throw new P2PError('PEER_NOT_CERTIFIED', `certificate refused: ${String(sock.authorizationError)}`)
    const x = sock.getPeerX509Certificate()
    if (x === undefined) throw new P2PError('PEER_NOT_CERTIFIED', 'the peer shows no certificate')
    if (verifiedCa !== creds.caPem) {
      verified.clear()
      verifiedCa = creds.caPem
    }
    let info = verified.get(x.fingerprint256)
    if (info === undefined) {
      try {
        info = await verifyNodeCertificate(creds.caPem, x.toString(), { now: new Date(now()) })
      } catch (err) {
        throw new P2PError('PEER_NOT_CERTIFIED', (err as Error).message)
      }
      if (verified.size >= VERIFIED_CACHE_MAX) verified.delete(verified.keys().next().value!)
      verified.set(x.fingerprint256, info)
    }
    if (expected !== undefined && info.nodeId !== expected)
      throw new P2PError('PEER_NOT_CERTIFIED', `the certificate names node ${info.nodeId}, not ${expected}`)
    if (info.notAfter.getTime() <= now())
      throw new P2PError('PEER_NOT_CERTIFIED', `the certificate of ${info.nodeId} expired`)
    if (init.revokedSerials?.()?.has(info.serial) === true)
      throw new P2PError('PEER_NOT_CERTIFIED', `the certificate ${info.serial} of ${info.nodeId} is revoked`)
    if (init.deniedNode?.(info.nodeId) === true)
      throw new P2PError('PEER_NOT_CERTIFIED', `node ${info.nodeId} is revoked`)
    return info.nodeId
  }

  const track = (sock: TLSSocket): void => {
    sockets.add(sock)
    // Frames are flushed whole (one writev each); Nagle would hold a frame's tail for the peer's
    // delayed ACK, 40 ms per packet on Linux.
    sock.setNoDelay(true)
    sock.on('error', () => undefined) // surfaced through the stream's reads and writes
    sock.once('close', () => sockets.delete(sock))
  }

  const secureContextOptions = (creds: DataPlaneCredentials) => ({
    key: creds.keyPem,
    cert: creds.certPem,
    ca: creds.caPem,
    ...DATA_PLANE_TLS,
  })

  const serve = async (sock: TLSSocket): Promise<void> => {
    track(sock)
    const timer = setTimeout(() => sock.destroy(), handshakeMs)
    let from: string
    let entry: { handler: PeerStreamHandler; streamsMax: number } | undefined
    let reader: FrameReader
    let protocol: string
    try {
      const creds = init.credentials()
      if (creds === undefined) throw new P2PError('PEER_NOT_CERTIFIED', 'this node has no certificate')
      from = await verifyPeer(sock, creds)
      reader = new FrameReader(sock[Symbol.asyncIterator]())
      const head = await reader.next(OPEN_FRAME_BYTES_MAX)
      if (head === 'eof') throw new Error('the peer ended before naming a protocol')
      protocol = head.toString('utf8')
      entry = handlers.get(protocol)
    } catch (err) {
      clearTimeout(timer)
      const code = (err as { code?: string }).code
      if (code === 'PEER_NOT_CERTIFIED')
        refused(
          'certificate',
          { remote: sock.remoteAddress, err: (err as Error).message },
          'data plane: peer refused',
        )
      sock.destroy()
      return
    }
    clearTimeout(timer)
    const key = `${protocol}\n${from}`
    const open = openPerPeer.get(key) ?? 0
    const status =
      entry === undefined ? STATUS_UNSUPPORTED : open >= entry.streamsMax ? STATUS_BUSY : STATUS_OK
    if (status !== STATUS_OK || entry === undefined) {
      sock.end(statusFrame(status, status === STATUS_BUSY ? 'too many streams' : `${protocol} is not served`))
      return
    }
    openPerPeer.set(key, open + 1)
    init.onStream?.('in')
    const stream = new TlsPeerStream(sock, reader)
    sock.write(statusFrame(STATUS_OK, ''))
    try {
      await entry.handler(stream, from)
    } catch (err) {
      logger.debug({ peer: from, protocol, err: (err as Error).message }, 'data plane: stream handler failed')
      stream.abort(err as Error)
    } finally {
      const left = (openPerPeer.get(key) ?? 1) - 1
      if (left === 0) openPerPeer.delete(key)
      else openPerPeer.set(key, left)
      if (!sock.destroyed) {
        sock.end()
        setTimeout(() => sock.destroy(), LINGER_MS).unref()
      }
    }
  }

  return {
    async listen(at) {
      const creds = init.credentials()
      if (creds === undefined)
        throw new P2PError('PEER_NOT_CERTIFIED', 'the data plane needs a node certificate')
      const s = createServer({
        ...secureContextOptions(creds),
        requestCert: true,
        rejectUnauthorized: true,
        honorCipherOrder: true,
        handshakeTimeout: handshakeMs,
      })
      s.on('secureConnection', (sock: TLSSocket) => void serve(sock))
      s.on('tlsClientError', (err: Error, sock: TLSSocket) => {
        refused(
          'handshake',
          { remote: sock.remoteAddress, err: err.message },
          'data plane: TLS handshake refused',
        )
        sock.destroy()
      })
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.listen(at.port, at.host, () => {
          s.off('error', reject)
          resolve()
        })
      })
      s.on('error', (err) => logger.warn({ err: err.message }, 'data plane: listener error'))
      server = s
      const a = s.address() as AddressInfo
      bound = { host: at.host, port: a.port }
      return bound
    },
    address: () => bound,
    refreshCredentials() {
      const creds = init.credentials()
      if (server !== undefined && creds !== undefined) server.setSecureContext(secureContextOptions(creds))
    },
    async openStream(peer, addr, protocol, opts) {
      const signal = opts?.signal
      signal?.throwIfAborted()
      const creds = init.credentials()
      if (creds === undefined)
        throw new P2PError('PEER_NOT_CERTIFIED', 'this node has no node certificate yet')
      const sock = connect({
        host: addr.host,
        port: addr.port,
        ...secureContextOptions(creds),
        rejectUnauthorized: true,
        // The certificate must name the node dialled (checked below), not the host name used.
        checkServerIdentity: () => undefined,
      })
      track(sock)
      const timeout = AbortSignal.timeout(handshakeMs)
      const both = signal === undefined ? timeout : AbortSignal.any([signal, timeout])
      const onAbort = (): void => {
        sock.destroy(both.reason instanceof Error ? both.reason : new Error('aborted'))
      }
      both.addEventListener('abort', onAbort, { once: true })
      try {
        await new Promise<void>((resolve, reject) => {
          sock.once('secureConnect', resolve)
          sock.once('close', () => reject(new Error('connection closed during the handshake')))
          sock.once('error', reject)
        })
        await verifyPeer(sock, creds, peer)
        const reader = new FrameReader(sock[Symbol.asyncIterator]())
        sock.write(frameHeader(Buffer.byteLength(protocol)))
        sock.write(protocol)
        const status = await reader.next(OPEN_FRAME_BYTES_MAX)
        if (status === 'eof' || status.length === 0) throw new Error('the peer ended the stream at once')
        if (status[0] !== STATUS_OK) {
          const why = status.subarray(1).toString('utf8')
          throw new P2PError(
            status[0] === STATUS_UNSUPPORTED ? 'PROTOCOL_UNSUPPORTED' : 'PEER_UNREACHABLE',
            why,
          )
        }
        init.onStream?.('out')
        return new TlsPeerStream(sock, reader)
      } catch (err) {
        sock.destroy()
        if (signal?.aborted === true)
          throw signal.reason instanceof Error ? signal.reason : new Error('aborted')
        if (err instanceof P2PError) {
          if (err.code === 'PEER_NOT_CERTIFIED')
            refused('certificate', { peer, err: err.message }, 'data plane: peer certificate refused')
          throw err
        }
        const code = (err as { code?: string }).code ?? ''
        // A TLS alert from the peer: it refused this node's certificate.
        if (code.startsWith('ERR_SSL_'))
          throw new P2PError('PEER_NOT_CERTIFIED', `${peer} refused the handshake: ${(err as Error).message}`)
        throw new P2PError(
          'PEER_UNREACHABLE',
          `data plane: cannot reach ${peer} at ${addr.host}:${addr.port}: ${(err as Error).message}`,
        )
      } finally {
        both.removeEventListener('abort', onAbort)
      }
    },
    async handleStreams(protocol, handler, opts) {
      handlers.set(protocol, { handler, streamsMax: opts?.streamsMax ?? 256 })
      return async () => {
        if (handlers.get(protocol)?.handler === handler) handlers.delete(protocol)
      }
    },
    async close() {
      const s = server
      server = undefined
      bound = undefined
      for (const sock of sockets) sock.destroy()
      if (s !== undefined) await new Promise<void>((resolve) => s.close(() => resolve()))
    },
  }
}

function statusFrame(status: number, message: string): Buffer {
  const body = Buffer.concat([Buffer.from([status]), Buffer.from(message, 'utf8')])
  return Buffer.concat([frameHeader(body.length), body])
}

/** One stream: the whole connection (see the file comment). */
class TlsPeerStream implements PeerStream {
  #sentEof = false
  #gotEof = false

  constructor(
    private readonly sock: TLSSocket,
    private readonly reader: FrameReader,
  ) {}

  get open(): boolean {
    return !this.sock.destroyed && !(this.#sentEof && this.#gotEof)
  }

  async send(frame: Uint8Array | readonly Uint8Array[], signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted()
    if (this.#sentEof || this.sock.destroyed || !this.sock.writable)
      throw new P2PError('PEER_UNREACHABLE', 'the data-plane stream is closed')
    const parts = frame instanceof Uint8Array ? [frame] : frame
    let bytes = 0
    for (const p of parts) bytes += p.length
    if (bytes >= EOF_MARK) throw new P2PError('FRAME_TOO_LARGE', `a frame of ${bytes} bytes`)
    // One writev: the header and the parts go to TLS together, the data without a copy.
    this.sock.cork()
    let room = this.sock.write(frameHeader(bytes))
    for (const p of parts) if (p.length > 0) room = this.sock.write(p)
    this.sock.uncork()
    if (!room) await drained(this.sock, signal)
  }

  async *frames(frameBytesMax: number): AsyncGenerator<Uint8Array> {
    for (;;) {
      const f = await this.reader.next(frameBytesMax)
      if (f === 'eof') {
        this.#gotEof = true
        if (this.#sentEof) this.sock.end()
        return
      }
      yield f
    }
  }

  async close(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted()
    if (this.#sentEof || this.sock.destroyed) return
    this.#sentEof = true
    const room = this.sock.write(frameHeader(EOF_MARK))
    if (this.#gotEof) this.sock.end()
    else if (!room) await drained(this.sock, signal)
  }

  abort(err: Error): void {
    this.sock.destroy(err)
  }
}

/** Resolves once `sock` drained its write buffer; rejects when it closes or `signal` aborts. */
function drained(sock: TLSSocket, signal?: AbortSignal): Promise<void> {
  if (!sock.writableNeedDrain) return Promise.resolve()
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      sock.off('drain', onDrain)
      sock.off('close', onClose)
      signal?.removeEventListener('abort', onAbort)
      if (err) reject(err)
      else resolve()
    }
    const onDrain = (): void => done()
    const onClose = (): void => done(new P2PError('PEER_UNREACHABLE', 'the data-plane connection closed'))
    const onAbort = (): void => done(signal?.reason instanceof Error ? signal.reason : new Error('aborted'))
    if (signal?.aborted === true) return onAbort()
    sock.on('drain', onDrain)
    sock.on('close', onClose)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
