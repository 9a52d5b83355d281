// The join loop names what is wrong with a --join address (src/node/p2p/handshake-diagnosis.ts): a
// node with another swarm key, a port that is not a p2p port (HTTP, TLS, garbage) — in one error line
// each, repeated at most every DIAGNOSIS_REPEAT_MS while the retries go on. Real libp2p hosts and a real
// HTTP server on loopback.
import { createServer as createHttpServer } from 'node:http'
import { createServer as createTcpServer, type Server } from 'node:net'
import { describe, expect, it } from 'vitest'
import { generateSwarmKey, type P2PLogger } from '../../src/node/p2p/index.js'
import { diagnoseDialFailure } from '../../src/node/p2p/handshake-diagnosis.js'
import { hostPort, makeHost, stopHostsAfterEach, waitFor } from './util.js'

stopHostsAfterEach()

interface Line {
  level: string
  obj: Record<string, unknown>
  msg: string
}

function recordingLogger(): { lines: Line[]; logger: P2PLogger } {
  const lines: Line[] = []
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj: obj as Record<string, unknown>, msg: msg ?? '' })
    }
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } }
}

async function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const a = server.address() as { port: number }
  return `127.0.0.1:${a.port}`
}

describe('join diagnosis', () => {
  it('names a peer with another swarm key and an HTTP port, once each, while retrying', async () => {
    const cluster = await makeHost()
    const http = createHttpServer((_req, res) => res.end('not p2p'))
    const httpAddr = await listen(http)
    try {
      const { lines, logger } = recordingLogger()
      await makeHost({ swarmKey: generateSwarmKey(), join: [hostPort(cluster), httpAddr], logger })
      const named = (code: string) => lines.filter((l) => l.level === 'error' && l.obj['code'] === code)
      await waitFor(() => named('SWARM_KEY_MISMATCH').length > 0 && named('NOT_A_P2P_PORT').length > 0, {
        timeoutMs: 10_000,
        what: 'both failures named',
      })
      expect(named('SWARM_KEY_MISMATCH')[0]!.obj['address']).toBe(hostPort(cluster))
      expect(named('SWARM_KEY_MISMATCH')[0]!.msg).toMatch(/holds a different swarm key/)
      expect(named('NOT_A_P2P_PORT')[0]!.obj['address']).toBe(httpAddr)
      expect(named('NOT_A_P2P_PORT')[0]!.msg).toContain('an HTTP server answered "HTTP/1.1 400 Bad Request"')
      const retries = () => lines.filter((l) => l.msg === 'join: no answer yet, retrying').length
      const before = retries()
      await waitFor(() => retries() >= before + 10, { timeoutMs: 20_000, what: '10 more retries' })
      expect(named('SWARM_KEY_MISMATCH')).toHaveLength(1)
      expect(named('NOT_A_P2P_PORT')).toHaveLength(1)
      // Nothing else was said above debug about these addresses meanwhile.
      expect(lines.filter((l) => l.level === 'warn' && l.msg.startsWith('join:'))).toEqual([])
    } finally {
      http.close()
    }
  })

  it('says nothing special about a port where nothing listens, or a host with the same key', async () => {
    const cluster = await makeHost()
    const closed = createTcpServer()
    const closedAddr = await listen(closed)
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const { lines, logger } = recordingLogger()
    const h = await makeHost({ join: [hostPort(cluster), closedAddr], logger })
    await waitFor(() => h.isConnected(cluster.id), { what: 'connected to the same-key host' })
    await waitFor(() => lines.filter((l) => l.obj['address'] === closedAddr).length >= 5, {
      timeoutMs: 10_000,
      what: 'retries of the closed port',
    })
    expect(lines.filter((l) => l.level === 'error')).toEqual([])
  })

  it('classifies what the remote sent first', () => {
    const text = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'))
    const random = new Uint8Array(24).map((_, i) => (i * 97 + 13) & 0xff)
    const d = (firstBytes: Uint8Array, state: { protected?: boolean; failed?: boolean }) =>
      diagnoseDialFailure('h:1', {
        firstBytes,
        protected: state.protected ?? false,
        failed: state.failed ?? false,
      })?.code
    expect(d(text('HTTP/1.1 400 Bad Request'), { protected: true })).toBe('NOT_A_P2P_PORT')
    expect(d(text('SSH-2.0-OpenSSH_9.6\r\n'), { failed: true })).toBe('NOT_A_P2P_PORT')
    expect(d(new Uint8Array([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x32]), { failed: true })).toBe(
      'NOT_A_P2P_PORT',
    )
    expect(d(new Uint8Array([1, 2, 3]), { failed: true })).toBe('NOT_A_P2P_PORT')
    expect(d(random, { protected: true })).toBe('SWARM_KEY_MISMATCH')
    // The plaintext was multistream-select: the keys match, whatever failed after.
    expect(
      diagnoseDialFailure('h:1', { firstBytes: random, protected: true, failed: false, keyMatch: true }),
    ).toBeUndefined()
    expect(d(new Uint8Array(0), { failed: true })).toBeUndefined() // silent or closed: nothing to say
    expect(d(random.subarray(0, 10), {})).toBeUndefined() // still arriving
    expect(diagnoseDialFailure('h:1', undefined)).toBeUndefined() // no connection at all
  })
})
