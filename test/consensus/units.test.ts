import { describe, expect, it } from 'vitest'
import { SessionTable, jsonResultCodec, unwrapSnapshot, wrapSnapshot } from '../../src/consensus/sessions.js'
import {
  MessageType,
  SeededRng,
  decodeMessage,
  encodeMessage,
  newMessage,
} from '../../src/consensus/index.js'

describe('sessions', () => {
  it('answers duplicates from the cache, expires seqs below the window, evicts the oldest client', () => {
    const t = new SessionTable(2, 2)
    t.record('a', 1, 10, 'r1')
    t.record('a', 2, 11, 'r2')
    expect(t.check('a', 2)).toEqual({ kind: 'duplicate', result: 'r2' })
    t.record('a', 3, 12, 'r3') // evicts seq 1 → floor 1
    expect(t.check('a', 1)).toEqual({ kind: 'expired' })
    expect(t.check('a', 4)).toEqual({ kind: 'new' })
    t.record('b', 1, 13, 'b1')
    t.record('c', 1, 14, 'c1') // 3 clients > 2: 'a' (oldest last index) goes
    expect(t.size).toBe(2)
    expect(t.check('a', 3)).toEqual({ kind: 'new' })
    expect(t.check('b', 1).kind).toBe('duplicate')
  })

  it('survives a snapshot round trip', () => {
    const t = new SessionTable(10, 10)
    t.record('x', 5, 1, { ok: true })
    const data = wrapSnapshot(new TextEncoder().encode('state'), t, jsonResultCodec)
    const env = unwrapSnapshot(data)
    expect(new TextDecoder().decode(env.state)).toBe('state')
    const t2 = SessionTable.fromProto(env.sessions, jsonResultCodec, 10, 10)
    expect(t2.check('x', 5)).toEqual({ kind: 'duplicate', result: { ok: true } })
  })
})

describe('codec and rng', () => {
  it('a message survives protobuf encoding with every field', () => {
    const m = newMessage({
      type: MessageType.MsgApp,
      to: '12D3KooWB',
      from: '12D3KooWA',
      term: 7,
      logTerm: 6,
      index: 2 ** 40,
      commit: 9,
      entries: [
        {
          term: 7,
          index: 2 ** 40 + 1,
          type: 1,
          data: Uint8Array.of(1, 2),
          clientId: 'c',
          seq: 3,
          origin: 'o',
          originSeq: 4,
        },
      ],
      reject: true,
      rejectHint: 5,
      context: Uint8Array.of(9),
    })
    const d = decodeMessage(encodeMessage(m))
    expect({
      ...d,
      entries: d.entries.map((e) => ({ ...e, data: [...e.data] })),
      context: [...d.context],
    }).toEqual({
      ...m,
      entries: m.entries.map((e) => ({ ...e, data: [...e.data] })),
      context: [...m.context],
    })
  })

  it('SeededRng replays from its seed', () => {
    const a = new SeededRng(123)
    const b = new SeededRng(123)
    const xs = Array.from({ length: 20 }, () => a.nextInt(1000))
    expect(Array.from({ length: 20 }, () => b.nextInt(1000))).toEqual(xs)
    expect(new Set(xs).size).toBeGreaterThan(10)
  })
})
