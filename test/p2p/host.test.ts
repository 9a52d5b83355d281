// The libp2p host and its join loop, with real hosts on loopback: join by HOST:PORT only, own address
// skipped, any start order, wrong swarm key refused, garbage on the port harmless.
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import { generateSwarmKey } from '../../src/node/p2p/index.js'
import {
  freePorts,
  hostPort,
  makeHost,
  seedFromEnv,
  seededRandom,
  stopHostsAfterEach,
  waitFor,
} from './util.js'

stopHostsAfterEach()

describe('p2p host', () => {
  it('joins a peer by plain HOST:PORT (no peer id) and skips its own address in the join list', async () => {
    const [a, b] = await freePorts(2)
    const hostA = await makeHost({ listen: a!, join: [a!, b!] })
    const hostB = await makeHost({ listen: b!, join: [a!, b!] })
    await waitFor(() => hostA.isConnected(hostB.id) && hostB.isConnected(hostA.id), {
      timeoutMs: 5_000,
      what: 'A and B connected',
    })
    for (const host of [hostA, hostB]) {
      const own = host.joinStatus().find((s) => s.address === hostPort(host))
      expect(own?.state).toBe('self')
    }
    await waitFor(() => hostA.joinStatus().find((s) => s.address === b)?.state === 'connected', {
      what: 'A join status',
    })
    expect(hostA.joinStatus().find((s) => s.address === b)?.peerId).toBe(hostB.id)
  })

  it('treats localhost and 0.0.0.0 spellings of its own address as itself', async () => {
    const [a] = await freePorts(1)
    const port = a!.split(':')[1]!
    const host = await makeHost({
      listen: `0.0.0.0:${port}`,
      join: [`localhost:${port}`, `127.0.0.1:${port}`],
    })
    await waitFor(() => host.joinStatus().every((s) => s.state === 'self'), { what: 'own addresses skipped' })
  })

  it('retries the join until a late host starts', async () => {
    const [a, b] = await freePorts(2)
    const hostA = await makeHost({ listen: a!, join: [b!] })
    // B is absent: A keeps retrying with backoff.
    await waitFor(() => (hostA.joinStatus()[0]?.attempts ?? 0) >= 2, { what: 'A retried at least twice' })
    expect(hostA.peers()).toEqual([])
    const hostB = await makeHost({ listen: b! })
    await waitFor(() => hostA.isConnected(hostB.id), { timeoutMs: 5_000, what: 'A connected to the late B' })
  })

  it('reconnects to a join peer that restarts', async () => {
    const [a, b] = await freePorts(2)
    const hostA = await makeHost({ listen: a!, join: [b!] })
    const hostB = await makeHost({ listen: b! })
    await waitFor(() => hostA.isConnected(hostB.id), { what: 'first connection' })
    await hostB.stop()
    await waitFor(() => !hostA.isConnected(hostB.id), { what: 'A sees B gone' })
    const hostB2 = await makeHost({ listen: b! })
    await waitFor(() => hostA.isConnected(hostB2.id), {
      timeoutMs: 5_000,
      what: 'A reconnected to the restarted B',
    })
  })

  it('refuses a host with a different swarm key: it never becomes a peer and opens no stream', async () => {
    const [a, c] = await freePorts(2)
    const hostA = await makeHost({ listen: a! })
    let inboundStreams = 0
    await hostA.handle('/hopsd/test/1.0.0', () => {
      inboundStreams++
    })
    const hostC = await makeHost({
      listen: c!,
      join: [a!],
      swarmKey: generateSwarmKey(),
      timings: { dialTimeoutMs: 500 },
    })
    await waitFor(() => (hostC.joinStatus()[0]?.attempts ?? 0) >= 3, {
      timeoutMs: 10_000,
      what: 'C failed three join attempts',
    })
    expect(hostA.peers()).toEqual([])
    expect(hostC.peers()).toEqual([])
    await expect(hostC.dial(a!)).rejects.toMatchObject({ code: 'PEER_UNREACHABLE' })
    expect(inboundStreams).toBe(0)
    expect(hostC.joinStatus()[0]?.state).not.toBe('connected')
  })

  it('survives random bytes and malformed frames on the p2p port, and still accepts a real peer', async () => {
    const seed = seedFromEnv()
    const random = seededRandom(seed)
    try {
      const hostA = await makeHost()
      const { host, port } = hostA.listenAddress()
      const randomBytes = (n: number): Buffer =>
        Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)))
      const payloads: Buffer[] = [
        randomBytes(64 * 1024), // 64 KiB of noise
        randomBytes(24), // exactly a pnet nonce, then silence
        Buffer.concat([randomBytes(24), Buffer.from('/multistream/1.0.0\n')]), // a nonce, then plaintext protocol talk
        Buffer.from('\x13/multistream/1.0.0\n\x0f/noise\n'), // plaintext libp2p as if there were no pnet
        Buffer.alloc(0), // connect and close
        Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]), // a huge varint length prefix
        randomBytes(7), // a torn nonce
      ]
      for (const payload of payloads) await sendAndClose(host, port, payload)
      const hostB = await makeHost({ join: [hostPort(hostA)] })
      await waitFor(() => hostA.isConnected(hostB.id), { timeoutMs: 5_000, what: 'a real peer still joins' })
    } catch (err) {
      console.error(`random-bytes test failed with SEED=${seed}`)
      throw err
    }
  })
})

/** Connects, writes `payload`, and waits until the host closes the socket (or 3 s pass, then closes it). */
function sendAndClose(host: string, port: number, payload: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(port, host, () => {
      socket.end(payload)
    })
    const timer = setTimeout(() => socket.destroy(), 3_000)
    socket.on('error', () => {}) // resets are the expected answer
    socket.on('close', () => {
      clearTimeout(timer)
      resolve()
    })
    socket.resume()
  })
}
