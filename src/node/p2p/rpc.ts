/**
 * Request/response over libp2p streams: one short-lived stream per request on a shared connection
 * (Yamux streams cost a few bytes to open), one request frame, one {@link RpcResponse} frame. Used to
 * forward work to another node (e.g. a proposal to the Raft leader) and get its answer.
 *
 * Errors reach the caller typed: REQUEST_TIMEOUT, REQUEST_ABORTED, PEER_UNREACHABLE,
 * PROTOCOL_UNSUPPORTED, or REMOTE_ERROR carrying the handler's own code in `remoteCode`.
 */
import type { Stream } from '@libp2p/interface'
import { hopsd_p2p } from '../../proto/p2p.js'
import { P2PError } from './errors.js'
import { encodeFrame, readFrames } from './framing.js'
import type { P2PHost } from './host.js'
import { nullLogger, type P2PLogger } from './logger.js'
import { waitForDrain } from './drain.js'

const RpcResponse = hopsd_p2p.RpcResponse

export interface RequestOptions {
  readonly signal?: AbortSignal
  /** Deadline for the whole exchange, stream open included (default 5 s). */
  readonly timeoutMs?: number
  /** Largest response accepted (default 4 MiB). */
  readonly frameBytesMax?: number
}

export const RPC_DEFAULTS = { timeoutMs: 5_000, frameBytesMax: 4 << 20 } as const

/** Sends `body` to `peer` on `protocol` and returns the answer's body. */
export async function request(
  host: P2PHost,
  peer: string,
  protocol: string,
  body: Uint8Array,
  opts: RequestOptions = {},
): Promise<Uint8Array> {
  const timeoutMs = opts.timeoutMs ?? RPC_DEFAULTS.timeoutMs
  const frameBytesMax = opts.frameBytesMax ?? RPC_DEFAULTS.frameBytesMax
  const timeout = AbortSignal.timeout(timeoutMs)
  const signal = AbortSignal.any([timeout, ...(opts.signal ? [opts.signal] : [])])
  const failure = (): P2PError =>
    opts.signal?.aborted === true
      ? new P2PError('REQUEST_ABORTED', `request to ${peer} on ${protocol} aborted`, {
          cause: opts.signal.reason,
        })
      : new P2PError('REQUEST_TIMEOUT', `no answer from ${peer} on ${protocol} within ${timeoutMs} ms`)

  if (signal.aborted) throw failure()
  let stream: Stream
  try {
    stream = await host.newStream(peer, protocol, { signal })
  } catch (err) {
    if (signal.aborted) throw failure()
    throw err
  }
  // Reading has no signal of its own: aborting the stream ends the read.
  const onAbort = (): void => stream.abort(failure())
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    if (!stream.send(encodeFrame(body))) await waitForDrain(stream, signal)
    await stream.close({ signal }) // half-close: "that was the whole request"
    for await (const frame of readFrames(stream, frameBytesMax)) {
      const res = decodeResponse(frame, peer)
      if (res.errorCode !== '') {
        throw new P2PError('REMOTE_ERROR', `${peer} answered ${res.errorCode}: ${res.errorMessage}`, {
          remoteCode: res.errorCode,
        })
      }
      return res.body
    }
    throw new P2PError('BAD_FRAME', `${peer} closed the ${protocol} stream without an answer`)
  } catch (err) {
    if (err instanceof P2PError) throw err
    if (signal.aborted) throw failure()
    throw new P2PError(
      'PEER_UNREACHABLE',
      `request to ${peer} on ${protocol} failed (${(err as Error).message})`,
      { cause: err },
    )
  } finally {
    signal.removeEventListener('abort', onAbort)
    if (stream.status === 'open') stream.abort(new Error('request finished'))
  }
}

function decodeResponse(frame: Uint8Array, peer: string): hopsd_p2p.RpcResponse {
  try {
    return RpcResponse.decode(frame)
  } catch (err) {
    throw new P2PError('BAD_FRAME', `${peer} sent a response that is not an RpcResponse`, { cause: err })
  }
}

/** Answers one request; throw an error with a string `code` to answer with that code. */
export type RequestHandler = (from: string, body: Uint8Array, signal: AbortSignal) => Promise<Uint8Array>

export interface HandleRequestsOptions {
  /** Largest request accepted (default 4 MiB). */
  readonly frameBytesMax?: number
  /** Deadline for reading the request and running the handler (default 5 s). */
  readonly timeoutMs?: number
  /** Concurrent requests per connection on this protocol (libp2p's maxInboundStreams; default 64). */
  readonly inflightMax?: number
  readonly logger?: P2PLogger
}

/** Serves `protocol` with `handler`; returns a function that stops serving it. */
export async function handleRequests(
  host: P2PHost,
  protocol: string,
  handler: RequestHandler,
  opts: HandleRequestsOptions = {},
): Promise<() => Promise<void>> {
  const frameBytesMax = opts.frameBytesMax ?? RPC_DEFAULTS.frameBytesMax
  const timeoutMs = opts.timeoutMs ?? RPC_DEFAULTS.timeoutMs
  const logger = opts.logger ?? nullLogger
  await host.handle(
    protocol,
    async (stream, from) => {
      const signal = AbortSignal.timeout(timeoutMs)
      const onAbort = (): void =>
        stream.abort(new P2PError('REQUEST_TIMEOUT', `request from ${from} took over ${timeoutMs} ms`))
      signal.addEventListener('abort', onAbort, { once: true })
      try {
        let body: Uint8Array | undefined
        for await (const frame of readFrames(stream, frameBytesMax)) {
          body = frame
          break
        }
        if (body === undefined) return // the requester went away
        let res: hopsd_p2p.RpcResponse.$Properties
        try {
          res = { body: await handler(from, body, signal) }
        } catch (err) {
          const code = (err as { code?: unknown }).code
          res = {
            errorCode: typeof code === 'string' && code !== '' ? code : 'INTERNAL',
            errorMessage: (err as Error).message ?? String(err),
          }
          logger.debug({ protocol, peer: from, code: res.errorCode }, 'rpc: handler failed')
        }
        if (!stream.send(encodeFrame(RpcResponse.encode(res).finish()))) await waitForDrain(stream, signal)
        await stream.close({ signal })
      } finally {
        signal.removeEventListener('abort', onAbort)
      }
    },
    { maxInboundStreams: opts.inflightMax ?? 64 },
  )
  return () => host.unhandle(protocol)
}
