// The HTTP server's guards on real sockets: Expect: 100-continue answered only for the data step of a
// write, slow clients cut off (headers that never end, a body that trickles in, an idle connection),
// and write tokens kept out of the request log.
import { connect, type Socket } from 'node:net'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { createApiServer, createMetricsRegistry, type ApiServer } from '../../src/api/index.js'
import { webhdfsRoutes } from '../../src/api/routes/webhdfs.js'
import { silentLogger } from '../../src/node/index.js'
import { makeFs } from '../fs/harness.js'
import { waitFor } from '../helpers/index.js'
import type { HttpTimeouts } from '../../src/api/http-guards.js'

const servers: ApiServer[] = []
const sockets: Socket[] = []
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

async function serve(
  timeouts: Partial<HttpTimeouts> = {},
  logger = silentLogger(),
): Promise<{ port: number; api: ApiServer }> {
  const { fs } = makeFs()
  const api = await createApiServer({
    logger,
    registry: createMetricsRegistry(),
    openapi: { title: 'hopsd', version: 'test' },
    routes: [webhdfsRoutes({ fs })],
    timeouts,
  })
  servers.push(api)
  const { port } = await api.listen({ host: '127.0.0.1', port: 0 })
  return { port, api }
}

/** A raw connection that records what the server sends and when it closes. */
function rawClient(port: number): { socket: Socket; received: () => string; closed: () => boolean } {
  const socket = connect(port, '127.0.0.1')
  sockets.push(socket)
  let text = ''
  let closed = false
  socket.setEncoding('latin1')
  socket.on('data', (d: string) => (text += d))
  socket.on('close', () => (closed = true))
  socket.on('error', () => undefined)
  return { socket, received: () => text, closed: () => closed }
}

describe('Expect: 100-continue', () => {
  it('step one of CREATE answers 307 without 100 Continue, so the body is never sent to it', async () => {
    const { port } = await serve()
    const c = rawClient(port)
    c.socket.write(
      'PUT /webhdfs/v1/big?op=CREATE&user.name=hopsd HTTP/1.1\r\nHost: x\r\n' +
        `Content-Length: ${20 * 1024 * 1024}\r\nExpect: 100-continue\r\n\r\n`,
    )
    await waitFor(() => c.received().includes('\r\n\r\n'), { what: 'the answer to step one' })
    expect(c.received()).toMatch(/^HTTP\/1\.1 307 /)
    expect(c.received()).not.toContain('100 Continue')
    expect(c.received().toLowerCase()).toContain('connection: close')
    await waitFor(() => c.closed(), { what: 'the server to close the connection it did not read' })
  })

  it('the data step (and any other route) gets 100 Continue', async () => {
    const { port } = await serve()
    const c = rawClient(port)
    c.socket.write(
      'PUT /webhdfs/v1/big?op=CREATE&hopsd.token=x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n',
    )
    await waitFor(() => c.received().length > 0, { what: 'an answer' })
    expect(c.received()).toMatch(/^HTTP\/1\.1 100 Continue\r\n/)
  })
})

describe('slow clients', () => {
  it('cuts off a body that trickles in, but not one that keeps coming', async () => {
    const { port } = await serve({ bodyWindowMs: 600, bodyMinBytes: 1000 })
    const slow = rawClient(port)
    slow.socket.write(
      'PUT /webhdfs/v1/t?op=CREATE&hopsd.token=x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n',
    )
    const drip = setInterval(() => slow.socket.write('a'), 100)
    try {
      await waitFor(() => slow.closed(), { timeoutMs: 5_000, what: 'the trickling request to be cut off' })
    } finally {
      clearInterval(drip)
    }
    // A body at a steady rate is read to its end (the token is invalid: the answer is a 403).
    const steady = rawClient(port)
    steady.socket.write(
      'PUT /webhdfs/v1/t?op=CREATE&hopsd.token=x HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n',
    )
    for (let i = 0; i < 10; i++) {
      steady.socket.write('b'.repeat(2000))
      await new Promise((r) => setTimeout(r, 100))
    }
    await waitFor(() => steady.received().includes('\r\n\r\n'), { what: 'the answer' })
    expect(steady.received()).toMatch(/^HTTP\/1\.1 403 /)
  })

  it('closes a connection whose headers never end, and one that sits idle', async () => {
    const { port } = await serve({ headersMs: 500, idleMs: 800 })
    const loris = rawClient(port)
    loris.socket.write('GET /webhdfs/v1/?op=GETFILESTATUS HTTP/1.1\r\nHost: x\r\n')
    const drip = setInterval(() => loris.socket.write('X-A: b\r\n'), 100)
    try {
      await waitFor(() => loris.closed(), { timeoutMs: 5_000, what: 'the slow headers to be cut off' })
    } finally {
      clearInterval(drip)
    }
    const idle = rawClient(port)
    await waitFor(() => idle.closed(), { timeoutMs: 5_000, what: 'the idle connection to be closed' })
  })
})

describe('request log', () => {
  it('never contains a write token', async () => {
    const lines: string[] = []
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString())
        done()
      },
    })
    const { port } = await serve({}, pino({ level: 'info' }, sink))
    const step1 = await fetch(`http://127.0.0.1:${port}/webhdfs/v1/f?op=CREATE&user.name=hopsd`, {
      method: 'PUT',
      redirect: 'manual',
    })
    const location = step1.headers.get('location')!
    const token = new URL(location).searchParams.get('hopsd.token')!
    expect(token.length).toBeGreaterThan(20)
    const step2 = await fetch(location, { method: 'PUT', body: 'x' })
    expect(step2.status).toBe(201)
    await waitFor(() => lines.filter((l) => l.includes('"request"')).length >= 2, {
      what: 'two request lines',
    })
    const log = lines.join('')
    expect(log).toContain('hopsd.token=REDACTED')
    expect(log).not.toContain(token)
    expect(log).not.toContain(token.slice(0, 16))
  })
})
