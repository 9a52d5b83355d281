// The small parts of src/auth: Hadoop's Writable encoding of delegation tokens (known answers from
// WritableUtils.writeVLong), principal grants (signature, signer, expiry, scope), the failure limiter
// and the audit ring.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import {
  createAuditLog,
  createFailureLimiter,
  decodeTokenUrlString,
  encodeTokenUrlString,
  grantCovers,
  signGrant,
  verifyGrant,
  type GrantSigner,
  type GrantVerifier,
  type Principal,
} from '../../src/auth/index.js'

describe('Hadoop token URL strings', () => {
  const token = (seq: number, issueDate: number) => ({
    identifier: {
      owner: 'alice',
      renewer: 'yarn',
      realUser: '',
      issueDate,
      maxDate: issueDate + 7,
      sequenceNumber: seq,
      masterKeyId: 0,
    },
    password: new Uint8Array([1, 2, 3]),
    kind: 'WEBHDFS delegation',
    service: '10.0.0.1:9870',
  })

  it("writes vints as Hadoop's WritableUtils does (known answers)", () => {
    // sequenceNumber is the identifier's second-to-last field: read the bytes back off the encoding.
    const seqBytes = (seq: number): number[] => {
      const raw = Buffer.from(encodeTokenUrlString(token(seq, 0)), 'base64url')
      const idLen = raw[0]! // < 128: one byte
      const id = raw.subarray(1, 1 + idLen)
      // version 0, "alice" (6), "yarn" (5), "" (1), issueDate 0 (1), maxDate 7 (1) = 15 bytes, then seq, then masterKeyId 0
      return [...id.subarray(15, id.length - 1)]
    }
    expect(seqBytes(127)).toEqual([0x7f])
    expect(seqBytes(128)).toEqual([0x8f, 0x80]) // -113: one byte follows
    expect(seqBytes(255)).toEqual([0x8f, 0xff])
    expect(seqBytes(256)).toEqual([0x8e, 0x01, 0x00])
    expect(seqBytes(0x7fffffff)).toEqual([0x8c, 0x7f, 0xff, 0xff, 0xff])
  })

  it('round-trips, and refuses garbage, truncation and trailing bytes without throwing', () => {
    for (const [seq, date] of [
      [1, 1_700_000_000_000],
      [300, 0],
      [2 ** 31 - 1, 2 ** 52],
    ] as const) {
      const s = encodeTokenUrlString(token(seq, date))
      expect(s).toMatch(/^[A-Za-z0-9_-]+$/) // URL-safe, unpadded: commons-codec Base64(0, null, true)
      expect(decodeTokenUrlString(s)).toEqual(token(seq, date))
    }
    const s = encodeTokenUrlString(token(5, 5))
    for (let cut = 0; cut < s.length; cut++) expect(decodeTokenUrlString(s.slice(0, cut))).toBeUndefined()
    expect(decodeTokenUrlString(s + 'AAAA')).toBeUndefined()
    expect(decodeTokenUrlString('!!!')).toBeUndefined()
    expect(decodeTokenUrlString('x'.repeat(5000))).toBeUndefined()
  })
})

describe('principal grants', () => {
  const alice: Principal = {
    user: 'alice',
    groups: ['staff'],
    via: 'key',
    credentialId: 'k1',
    superuser: false,
  }
  async function node(): Promise<GrantSigner & { id: string }> {
    const key = await generateKeyPair('Ed25519')
    const id = peerIdFromPrivateKey(key).toString()
    return { id, nodeId: id, sign: (d) => key.sign(d) }
  }
  const verifier = (trusted: string[]): GrantVerifier => ({
    trusted: (id) => trusted.includes(id),
    async verify(id, data, sig) {
      try {
        return await peerIdFromString(id).publicKey!.verify(data, sig)
      } catch {
        return false
      }
    },
  })
  const scope = { path: '/user/alice/f', ops: ['createFile', 'addBlock'] }

  it('verifies from a trusted signer until expiry; covers its path and ops only', async () => {
    const meta = await node()
    const g = await signGrant(meta, alice, scope, 2_000)
    const r = await verifyGrant(g, verifier([meta.id]), 1_000)
    expect(r).toMatchObject({
      principal: { user: 'alice', groups: ['staff'], via: 'assertion' },
      signer: meta.id,
    })
    if ('refused' in r) throw new Error('refused')
    expect(grantCovers(r.scope, { op: 'addBlock', path: '/user/alice/f' })).toBe(true)
    expect(grantCovers(r.scope, { op: 'delete', path: '/user/alice/f' })).toBe(false)
    expect(grantCovers(r.scope, { op: 'addBlock', path: '/user/alice/g' })).toBe(false)
    expect(await verifyGrant(g, verifier([meta.id]), 2_000)).toMatchObject({ refused: 'expired' })
  })

  it('refuses a grant signed by a node that is not trusted, altered payloads, and swapped signatures', async () => {
    const meta = await node()
    const plain = await node()
    const forged = await signGrant(plain, { ...alice, user: 'admin', superuser: true }, scope, 9e12)
    expect(await verifyGrant(forged, verifier([meta.id]), 0)).toMatchObject({
      refused: 'invalid',
      reason: /not a metadata node/,
    })
    const g = await signGrant(meta, alice, scope, 9e12)
    const [p, body, sig] = g.split('.')
    const payload = JSON.parse(Buffer.from(body!, 'base64url').toString()) as Record<string, unknown>
    const altered = `${p}.${Buffer.from(JSON.stringify({ ...payload, u: 'admin' })).toString('base64url')}.${sig}`
    expect(await verifyGrant(altered, verifier([meta.id]), 0)).toMatchObject({
      refused: 'invalid',
      reason: /signature/,
    })
    // A plain node's signature over a payload naming a metadata node as signer.
    const claimMeta = `${p}.${Buffer.from(JSON.stringify({ ...payload, u: 'admin' })).toString('base64url')}`
    const plainSig = Buffer.from(
      await plain.sign(
        Buffer.concat([
          Buffer.from('hopsd principal grant v1\n'),
          Buffer.from(claimMeta.split('.')[1]!, 'base64url'),
        ]),
      ),
    ).toString('base64url')
    expect(await verifyGrant(`${claimMeta}.${plainSig}`, verifier([meta.id]), 0)).toMatchObject({
      refused: 'invalid',
    })
    for (const bad of [
      '',
      'hg1',
      'hg1.x.y',
      'hg1.!!.??',
      'hg2.' + body + '.' + sig,
      'hg1.' + 'A'.repeat(9000) + '.x',
    ])
      expect(await verifyGrant(bad, verifier([meta.id]), 0)).toMatchObject({ refused: 'invalid' })
  })
})

describe('failure limiter', () => {
  it('allows failuresMax failures per source, refills over the window, and stays bounded', () => {
    const clock = { now: 0 }
    const l = createFailureLimiter({ failuresMax: 3, windowMs: 3_000, sourcesMax: 2, clock: () => clock.now })
    expect(l.blocked('a')).toBeUndefined()
    expect([l.fail('a'), l.fail('a'), l.fail('a')]).toEqual([false, false, true])
    expect(l.blocked('a')).toBe(1)
    expect(l.blocked('b')).toBeUndefined()
    clock.now += 1_000
    expect(l.blocked('a')).toBeUndefined()
    l.fail('b')
    l.fail('c')
    expect(l.size).toBe(2)
  })
})

it('audit ring keeps the newest eventsMax and logs every event', () => {
  const logged: number[] = []
  const a = createAuditLog({ eventsMax: 3, log: (e) => logged.push(e.seq), clock: () => 5 })
  const e = {
    kind: 'auth.failure',
    decision: 'deny',
    user: '',
    via: '',
    source: 's',
    method: 'GET',
    route: '/',
    path: '',
    code: 'X',
    detail: '',
  } as const
  for (let i = 0; i < 5; i++) a.record(e)
  expect(logged).toEqual([1, 2, 3, 4, 5])
  expect(a.list().events.map((x) => x.seq)).toEqual([3, 4, 5])
  expect(a.list({ afterSeq: 4 }).events.map((x) => x.seq)).toEqual([5])
  expect(a.list({ kinds: ['key.create'] }).events).toEqual([])
})
