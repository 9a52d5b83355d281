// Framed messaging, request/response and the Raft transport between real hosts on loopback.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { describe, expect, it } from 'vitest'
import { newMessage, MessageType } from '../../src/consensus/index.js'
import {
  createChannel,
  createLibp2pRaftTransport,
  handleRequests,
  request,
  type Channel,
  type P2PHost,
} from '../../src/node/p2p/index.js'
import type { Message } from '../../src/consensus/index.js'
import { freePorts, hostPort, makeHost, stopHostsAfterEach, waitFor } from './util.js'

stopHostsAfterEach()

const PROTOCOL = '/hopsd/test-channel/1.0.0'

async function pair(): Promise<[P2PHost, P2PHost]> {
  const a = await makeHost()
  const b = await makeHost({ join: [hostPort(a)] })
  await waitFor(() => a.isConnected(b.id) && b.isConnected(a.id), { what: 'pair connected' })
  return [a, b]
}

async function channelOn(
  host: P2PHost,
  init: Partial<Parameters<typeof createChannel>[1]> = {},
): Promise<Channel> {
  const ch = createChannel(host, { protocol: PROTOCOL, ...init })
  await ch.start()
  return ch
}

const frameOf = (i: number): Uint8Array => new TextEncoder().encode(`frame-${i}`)
const textOf = (f: Uint8Array): string => new TextDecoder().decode(f)

describe('channel', () => {
  it('delivers 1,000 frames in order over one reused stream', async () => {
    const [a, b] = await pair()
    const chA = await channelOn(a)
    const chB = await channelOn(b)
    const got: string[] = []
    chB.setHandler((from, frame) => {
      expect(from).toBe(a.id)
      got.push(textOf(frame))
    })
    for (let i = 0; i < 1_000; i++) expect(chA.send(b.id, frameOf(i))).toBe(true)
    await waitFor(() => got.length === 1_000, { what: '1000 frames' })
    expect(got).toEqual(Array.from({ length: 1_000 }, (_, i) => `frame-${i}`))
    expect(chA.stats()).toMatchObject({ sent: 1_000, streamsOpened: 1, droppedQueueFull: 0 })
    // Later frames reuse the same stream.
    chA.send(b.id, frameOf(1_000))
    await waitFor(() => got.length === 1_001, { what: 'one more frame' })
    expect(chA.stats().streamsOpened).toBe(1)
    await chA.stop()
    await chB.stop()
  })

  it('drops (oldest first) instead of growing when a burst exceeds the queue bound', async () => {
    const [a, b] = await pair()
    const chA = await channelOn(a, { queueDepthMax: 100 })
    const chB = await channelOn(b)
    const got: string[] = []
    chB.setHandler((_from, frame) => got.push(textOf(frame)))
    let depthMax = 0
    for (let i = 0; i < 10_000; i++) {
      chA.send(b.id, frameOf(i))
      depthMax = Math.max(depthMax, chA.queueDepth(b.id))
    }
    expect(depthMax).toBeLessThanOrEqual(100)
    await waitFor(() => chA.queueDepth(b.id) === 0 && got.includes('frame-9999'), { what: 'queue drained' })
    const s = chA.stats()
    expect(s.droppedQueueFull).toBeGreaterThanOrEqual(10_000 - 100 - s.sent)
    expect(s.sent + s.droppedQueueFull).toBe(10_000)
    expect(got.length).toBe(s.sent)
    // What arrived is in order, and the newest survived.
    const nums = got.map((t) => Number(t.slice(6)))
    expect([...nums].sort((x, y) => x - y)).toEqual(nums)
    await chA.stop()
    await chB.stop()
  })

  it('respects backpressure from a receiver that stops reading: the sender queue stays bounded', async () => {
    const [a, b] = await pair()
    // B accepts the stream but never reads it: the muxer window fills and A must stop writing.
    await b.handle(PROTOCOL, (stream) => {
      stream.pause()
    })
    const chA = await channelOn(a, { queueDepthMax: 8 })
    const frame = new Uint8Array(16 * 1024)
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 50; i++) chA.send(b.id, frame)
      expect(chA.queueDepth(b.id)).toBeLessThanOrEqual(8)
      await new Promise((r) => setImmediate(r)) // let the pump run between bursts
    }
    const s = chA.stats()
    expect(s.droppedQueueFull).toBeGreaterThan(0)
    expect(s.sent).toBeLessThan(2_000)
    await chA.stop()
  })

  it('reconnects after the peer restarts (same key, same port)', async () => {
    const [portB] = await freePorts(1)
    const keyB = await generateKeyPair('Ed25519')
    const a = await makeHost({ join: [portB!] })
    const b1 = await makeHost({ listen: portB!, privateKey: keyB })
    await waitFor(() => a.isConnected(b1.id), { what: 'connected' })
    const chA = await channelOn(a, { reconnectBackoff: { baseMs: 20, maxMs: 200 } })
    const chB1 = await channelOn(b1)
    const got1: string[] = []
    chB1.setHandler((_f, frame) => got1.push(textOf(frame)))
    chA.send(b1.id, frameOf(1))
    await waitFor(() => got1.length === 1, { what: 'frame before restart' })

    await chB1.stop()
    await b1.stop()
    await waitFor(() => !a.isConnected(b1.id), { what: 'A sees B down' })
    const b2 = await makeHost({ listen: portB!, privateKey: keyB })
    expect(b2.id).toBe(b1.id)
    const chB2 = await channelOn(b2)
    const got2: string[] = []
    chB2.setHandler((_f, frame) => got2.push(textOf(frame)))
    let i = 100
    await waitFor(
      () => {
        chA.send(b2.id, frameOf(i++)) // keep talking, as Raft does; some frames may be lost meanwhile
        return got2.length > 0
      },
      { timeoutMs: 5_000, what: 'a frame after the restart' },
    )
    expect(chA.stats().streamsOpened).toBeGreaterThanOrEqual(2)
    await chA.stop()
    await chB2.stop()
  })
})

describe('request/response', () => {
  const RPC = '/hopsd/test-rpc/1.0.0'

  it('answers, maps handler error codes, and times out', async () => {
    const [a, b] = await pair()
    await handleRequests(b, RPC, async (from, body) => {
      const text = textOf(body)
      if (text === 'fail') throw Object.assign(new Error('not me'), { code: 'NOT_LEADER' })
      if (text === 'hang') await new Promise(() => {})
      return new TextEncoder().encode(`echo:${text}:${from === a.id}`)
    })
    expect(textOf(await request(a, b.id, RPC, new TextEncoder().encode('hi')))).toBe('echo:hi:true')
    await expect(request(a, b.id, RPC, new TextEncoder().encode('fail'))).rejects.toMatchObject({
      code: 'REMOTE_ERROR',
      remoteCode: 'NOT_LEADER',
    })
    await expect(
      request(a, b.id, RPC, new TextEncoder().encode('hang'), { timeoutMs: 200 }),
    ).rejects.toMatchObject({
      code: 'REQUEST_TIMEOUT',
    })
    const ctl = new AbortController()
    const pending = request(a, b.id, RPC, new TextEncoder().encode('hang'), { signal: ctl.signal })
    ctl.abort()
    await expect(pending).rejects.toMatchObject({ code: 'REQUEST_ABORTED' })
    await expect(request(a, b.id, '/hopsd/nobody/1.0.0', new Uint8Array(1))).rejects.toMatchObject({
      code: 'PROTOCOL_UNSUPPORTED',
    })
    // Many concurrent requests share the one connection.
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => request(a, b.id, RPC, new TextEncoder().encode(`n${i}`))),
    )
    expect(answers.map(textOf)).toEqual(Array.from({ length: 50 }, (_, i) => `echo:n${i}:true`))
    expect(a.libp2p.getConnections().length).toBe(1)
  })
})

describe('raft transport over libp2p', () => {
  it('carries Raft messages between peers and drops frames that claim another sender', async () => {
    const [a, b] = await pair()
    const chA = await channelOn(a, { protocol: '/hopsd/raft/1.0.0' })
    const chB = await channelOn(b, { protocol: '/hopsd/raft/1.0.0' })
    const ta = createLibp2pRaftTransport(chA, { selfId: a.id })
    const tb = createLibp2pRaftTransport(chB, { selfId: b.id })
    const got: Message[] = []
    tb.setHandler((m) => got.push(m))
    ta.setHandler(() => {})
    // MsgApp with an entry: nested protobuf messages (also guards against generated proto modules
    // clobbering each other's root namespace when several are loaded in one process).
    const entry = {
      term: 7,
      index: 4,
      type: 0,
      data: new Uint8Array([1, 2, 3]),
      clientId: '',
      seq: 0,
      origin: '',
      originSeq: 0,
    }
    const msg = newMessage({
      type: MessageType.MsgApp,
      from: a.id,
      to: b.id,
      term: 7,
      commit: 3,
      entries: [entry],
    })
    ta.send(b.id, msg)
    await waitFor(() => got.length === 1, { what: 'raft message delivered' })
    expect(got[0]).toMatchObject({ type: MessageType.MsgApp, from: a.id, to: b.id, term: 7, commit: 3 })
    expect(got[0]!.entries).toHaveLength(1)
    expect([...got[0]!.entries[0]!.data]).toEqual([1, 2, 3])
    // A message whose `from` is not the sending peer is refused.
    ta.send(b.id, newMessage({ type: MessageType.MsgHeartbeat, from: 'someone-else', to: b.id, term: 8 }))
    ta.send(b.id, newMessage({ type: MessageType.MsgHeartbeat, from: a.id, to: b.id, term: 9 }))
    await waitFor(() => got.length === 2, { what: 'second valid message' })
    expect(got[1]!.term).toBe(9)
    expect(tb.rejected()).toBe(1)
    await chA.stop()
    await chB.stop()
  })
})
