// The scheduler's libp2p transport between two real hosts on loopback: requests reach the other node's
// handler, requests to oneself and one's own publications stay local (gossipsub never delivers them, and a
// node cannot dial itself), ads from another node arrive on the topic, and failures carry the transport
// contract's codes.
import { describe, expect, it } from 'vitest'
import { libp2pSchedTransport } from '../../src/node/cluster/sched-transport.js'
import { silentLogger } from '../../src/node/logger.js'
import { TransportError } from '../../src/scheduler/index.js'
import { freePorts, makeHost, stopHostsAfterEach, waitFor } from './util.js'

stopHostsAfterEach()

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array): string => new TextDecoder().decode(b)

async function pair() {
  const [a, b] = await freePorts(2)
  const hostA = await makeHost({ listen: a!, join: [b!] })
  const hostB = await makeHost({ listen: b!, join: [a!] })
  await waitFor(() => hostA.isConnected(hostB.id) && hostB.isConnected(hostA.id), {
    timeoutMs: 10_000,
    what: 'the two hosts to connect',
  })
  const ta = libp2pSchedTransport(hostA.id, () => hostA, silentLogger())
  const tb = libp2pSchedTransport(hostB.id, () => hostB, silentLogger())
  return { hostA, hostB, ta, tb }
}

describe('libp2p scheduler transport', () => {
  it('answers requests with the peer handler, keeps requests to itself local, and maps failures', async () => {
    const { hostA, hostB, ta, tb } = await pair()
    const seen: string[] = []
    tb.handle((from, payload) => {
      seen.push(from)
      if (text(payload) === 'slow') return new Promise((r) => setTimeout(() => r(bytes('late')), 2_000))
      return bytes(`b got ${text(payload)}`)
    })
    await ta.start()
    await tb.start()
    expect(text(await ta.request(hostB.id, bytes('reserve'), { timeoutMs: 5_000 }))).toBe('b got reserve')
    expect(seen).toEqual([hostA.id])

    // To itself: the local handler, no network.
    ta.handle((_from, payload) => bytes(`a got ${text(payload)}`))
    expect(text(await ta.request(hostA.id, bytes('own'), { timeoutMs: 1_000 }))).toBe('a got own')

    const failure = async (p: Promise<unknown>): Promise<TransportError> => {
      try {
        await p
      } catch (err) {
        expect(err).toBeInstanceOf(TransportError)
        return err as TransportError
      }
      throw new Error('the request did not fail')
    }
    expect((await failure(ta.request(hostB.id, bytes('slow'), { timeoutMs: 300 }))).code).toBe(
      'REQUEST_TIMEOUT',
    )
    const abort = new AbortController()
    const aborted = ta.request(hostB.id, bytes('slow'), { timeoutMs: 5_000, signal: abort.signal })
    abort.abort()
    expect((await failure(aborted)).code).toBe('REQUEST_ABORTED')
    // A node that serves no worker: unreachable, as the contract says for "no handler".
    tb.handle(undefined)
    expect((await failure(ta.request(hostB.id, bytes('x'), { timeoutMs: 2_000 }))).code).toBe(
      'PEER_UNREACHABLE',
    )
    await ta.stop()
    await tb.stop()
  })

  it('delivers publications to the local subscribers at once and to the other node over gossipsub', async () => {
    const { hostA, ta, tb } = await pair()
    const atA: [string, string][] = []
    const atB: [string, string][] = []
    ta.subscribe('sched-test-ads', (from, p) => atA.push([from, text(p)]))
    tb.subscribe('sched-test-ads', (from, p) => atB.push([from, text(p)]))
    await ta.start()
    await tb.start()
    ta.publish('sched-test-ads', bytes('ad-1'))
    expect(atA).toEqual([[hostA.id, 'ad-1']])
    // The mesh forms in the background: publish until B has heard one, from A's peer id.
    let n = 1
    await waitFor(
      () => {
        if (atB.length > 0) return true
        ta.publish('sched-test-ads', bytes(`ad-${++n}`))
        return false
      },
      { timeoutMs: 15_000, intervalMs: 200, what: 'B to receive an ad' },
    )
    expect(atB[0]![0]).toBe(hostA.id)
    expect(atB[0]![1]).toMatch(/^ad-\d+$/)
    await ta.stop()
    await tb.stop()
  })
})
