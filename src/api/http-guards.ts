/**
 * What the HTTP server does before any route sees a request: the time limits against slow clients
 * (slowloris: headers that never end, bodies that trickle in), `Expect: 100-continue` answered only
 * when the body is wanted, and request URLs with their secrets redacted for the log.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

export interface HttpTimeouts {
  /** The request line and headers must arrive within this (Node's headersTimeout). */
  readonly headersMs: number
  /** A connection with nothing sent either way for this long is closed (idle keep-alive and stalled transfers). */
  readonly idleMs: number
  /** Idle time a kept-alive connection waits for its next request. */
  readonly keepAliveMs: number
  /**
   * A request body must keep coming: over every `bodyWindowMs` at least `bodyMinBytes` more bytes, unless
   * the server itself is not reading (backpressure). A body that trickles in is cut off.
   */
  readonly bodyWindowMs: number
  readonly bodyMinBytes: number
}

export const HTTP_TIMEOUTS: HttpTimeouts = {
  headersMs: 20_000,
  idleMs: 120_000,
  keepAliveMs: 10_000,
  bodyWindowMs: 30_000,
  bodyMinBytes: 16 * 1024,
}

/**
 * Installs the limits on a Node HTTP(S) server: headers and idle timeouts, and a watch on every request
 * body (each active body is checked every window/3; the first window starts when headers are in).
 */
export function guardServer(server: Server, t: HttpTimeouts): void {
  server.headersTimeout = t.headersMs
  server.keepAliveTimeout = t.keepAliveMs
  // No total request deadline: a large upload at a steady rate may take long; the rate watch below ends
  // a body that trickles, and headersTimeout a request whose headers never end.
  server.requestTimeout = 0
  server.setTimeout(t.idleMs, (socket) => socket.destroy())
  const watched = new Set<Watched>()
  const headerDeadlines = new WeakMap<Socket, NodeJS.Timeout>()
  let timer: NodeJS.Timeout | undefined
  const tick = (): void => {
    const now = Date.now()
    for (const w of watched) {
      const req = w.req
      if (req.complete || req.destroyed) {
        watched.delete(w)
        continue
      }
      const read = req.socket?.bytesRead ?? 0
      // Our own backpressure (a handler that stopped reading) is not the client's fault.
      if (req.readableLength > 0 || req.isPaused() || read - w.mark >= t.bodyMinBytes) {
        w.mark = read
        w.since = now
      } else if (now - w.since >= t.bodyWindowMs) {
        watched.delete(w)
        req.socket?.destroy()
      }
    }
    if (watched.size === 0 && timer !== undefined) {
      clearInterval(timer)
      timer = undefined
    }
  }
  // The first request's headers on a new connection must be in within headersMs (Node checks its own
  // headersTimeout only every 30 s; later requests on a kept-alive connection are left to it).
  const tls = typeof (server as { setSecureContext?: unknown }).setSecureContext === 'function'
  server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    const deadline = setTimeout(() => socket.destroy(), t.headersMs).unref()
    socket.once('close', () => clearTimeout(deadline))
    headerDeadlines.set(socket, deadline)
  })
  server.on('request', (req: IncomingMessage) => {
    const deadline = req.socket === undefined ? undefined : headerDeadlines.get(req.socket)
    if (deadline !== undefined) {
      clearTimeout(deadline)
      headerDeadlines.delete(req.socket)
    }
    if (!hasBody(req)) return
    watched.add({ req, mark: req.socket?.bytesRead ?? 0, since: Date.now() })
    timer ??= setInterval(tick, Math.max(100, Math.floor(t.bodyWindowMs / 3))).unref()
  })
  server.on('close', () => {
    if (timer !== undefined) clearInterval(timer)
    watched.clear()
  })
}

interface Watched {
  readonly req: IncomingMessage
  mark: number
  since: number
}

function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length']
  return (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined
}

/**
 * Answers `Expect: 100-continue` itself (Node would always say 100 Continue): not for step one of a
 * WebHDFS write, which answers 307 without reading a body — so `curl -T big` sends its data once, to the
 * Location — and for everything else, yes. Must be installed before the server listens.
 */
export function answerExpectContinue(server: Server): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (!isWriteStepOne(req.url ?? '')) res.writeContinue()
    server.emit('request', req, res)
  })
}

/** A WebHDFS CREATE or APPEND without a redirect token: step one, which takes no body. */
export function isWriteStepOne(url: string): boolean {
  const q = url.indexOf('?')
  const path = q < 0 ? url : url.slice(0, q)
  if (!/^\/webhdfs\/v1(\/|$)/.test(path)) return false
  let op = ''
  let token = false
  try {
    for (const [name, value] of new URLSearchParams(q < 0 ? '' : url.slice(q + 1))) {
      const n = name.toLowerCase()
      if (n === 'op') op = value.toUpperCase()
      if (n === 'hopsd.token') token = true
    }
  } catch {
    return true // refused anyway: no point in asking for the body
  }
  return (op === 'CREATE' || op === 'APPEND') && !token
}

/** Query parameters whose values are secrets (write tokens and grants, delegation tokens): never logged. */
const SECRET_PARAMS = new Set(['hopsd.token', 'delegation', 'token'])

/** `url` with the values of secret query parameters replaced by `REDACTED`. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const parts = url.slice(q + 1).split('&')
  let changed = false
  for (let i = 0; i < parts.length; i++) {
    const eq = parts[i]!.indexOf('=')
    const rawName = eq < 0 ? parts[i]! : parts[i]!.slice(0, eq)
    let name: string
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, ' ')).toLowerCase()
    } catch {
      name = rawName.toLowerCase()
    }
    if (SECRET_PARAMS.has(name)) {
      parts[i] = `${rawName}=REDACTED`
      changed = true
    }
  }
  return changed ? `${url.slice(0, q)}?${parts.join('&')}` : url
}
