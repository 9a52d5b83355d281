/**
 * HTTP calls from one node's API to another's (a follower asking the leader for its health report, a
 * datanode reading a file's inline bytes from a metadata node): HTTPS trusting only the cluster CA when
 * the cluster runs with --tls, a deadline on every call, an abort when the caller goes away, and a
 * bound on the body read.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { HopsError } from '../errors.js'

export interface NodeHttpInit {
  /** With --tls: the cluster CA to trust (undefined until this node knows it). */
  readonly tls?: { ca(): string | undefined }
  /** Deadline of a call when the caller gives none (default 10 s). */
  readonly timeoutMs?: number
}

export interface NodeHttp {
  /** `http` or `https`: how other nodes' APIs (and Locations pointing at them) are reached. */
  readonly scheme: 'http' | 'https'
  /**
   * GETs `path` from the node at HOST:PORT `addr`: the status and at most `bytesMax` bytes of body
   * (more fails the call). UNAVAILABLE when the node cannot be reached; TIMEOUT past the deadline.
   */
  get(
    addr: string,
    path: string,
    opts?: {
      signal?: AbortSignal
      timeoutMs?: number
      bytesMax?: number
      /** Request headers (a caller's credential forwarded on its behalf: never logged). */
      headers?: Record<string, string>
    },
  ): Promise<{ status: number; body: Buffer }>
}

/** Largest body a call reads unless it says otherwise. */
const BODY_BYTES_MAX = 16 * 1024 * 1024

export function createNodeHttp(init: NodeHttpInit = {}): NodeHttp {
  const scheme = init.tls === undefined ? 'http' : 'https'
  return {
    scheme,
    get(addr, path, opts = {}) {
      const url = new URL(path, `${scheme}://${addr}`)
      const timeoutMs = opts.timeoutMs ?? init.timeoutMs ?? 10_000
      const bytesMax = opts.bytesMax ?? BODY_BYTES_MAX
      const signal =
        opts.signal === undefined
          ? AbortSignal.timeout(timeoutMs)
          : AbortSignal.any([opts.signal, AbortSignal.timeout(timeoutMs)])
      const ca = init.tls?.ca()
      if (init.tls !== undefined && ca === undefined)
        return Promise.reject(new HopsError('UNAVAILABLE', 'this node does not know the cluster CA yet'))
      return new Promise((resolve, reject) => {
        const onResponse = (res: IncomingMessage): void => {
          const parts: Buffer[] = []
          let size = 0
          res.on('data', (c: Buffer) => {
            size += c.length
            if (size > bytesMax) {
              req.destroy(new HopsError('UNAVAILABLE', `${url.host} answered more than ${bytesMax} bytes`))
              return
            }
            parts.push(c)
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts, size) }))
          res.on('error', reject)
        }
        const options = { method: 'GET', signal, headers: opts.headers ?? {} }
        const req =
          scheme === 'https'
            ? httpsRequest(url, { ...options, ca }, onResponse)
            : httpRequest(url, options, onResponse)
        req.on('error', (err) => {
          const e = err as Error & { code?: string }
          if (signal.aborted && opts.signal?.aborted !== true)
            reject(
              new HopsError('REQUEST_TIMEOUT', `${url.host} did not answer within ${timeoutMs} ms`, {
                cause: err,
              }),
            )
          else if (e instanceof HopsError) reject(e)
          else
            reject(new HopsError('UNAVAILABLE', `${url.host} did not answer: ${e.message}`, { cause: err }))
        })
        req.end()
      })
    },
  }
}
