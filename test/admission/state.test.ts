// The admission tables of the metadata state machine, through proposals as the cluster makes them:
// join tokens work once and expire, a bad token changes nothing, admission by approval takes the
// pending request's roles, a revoked node loses its CA key copy and gets no more certificates, and a
// state written by hopsd before CA key wrapping keeps no key.
import { describe, expect, it } from 'vitest'
import { createLocalGroup, createMetaStateMachine, encodeCommand } from '../../src/meta/index.js'
import {
  clusterModule,
  createAdmissionService,
  generateJoinToken,
  JOIN_TOKENS_MAX,
  parseJoinToken,
  type ClusterTable,
} from '../../src/node/admission/index.js'
import { createClusterCa, createWrappingKey, unwrapCaKey, wrapCaKey } from '../../src/node/ca/index.js'

const T0 = 1_700_000_000_000
const HOUR = 3_600_000

function cluster() {
  const sm = createMetaStateMachine({ modules: [clusterModule()] })
  const group = createLocalGroup(sm)
  const table = sm.module<ClusterTable>('cluster')
  let now = T0
  const propose = async (body: object, user = 'hopsd') =>
    (await group.propose(encodeCommand({ nowMs: now, user, ...body }))) as
      { ok: true; value: any } | { ok: false; code: string; message: string }
  return {
    sm,
    group,
    table,
    propose,
    at: (ms: number) => (now = ms),
  }
}

async function initialised() {
  const c = cluster()
  const ca = await createClusterCa('c1')
  const wrapping = createWrappingKey()
  const wrapped = wrapCaKey(ca.keyPem, { nodeId: 'm1', clusterId: 'c1', recipientKey: wrapping.publicKey })
  const r = await c.propose({
    initCluster: {
      clusterId: 'c1',
      caCertPem: ca.certPem,
      wrappedKey: wrapped,
      admitted: [{ id: 'm1', roles: ['metadata', 'datanode'], zone: 'z1' }],
    },
  })
  expect(r.ok).toBe(true)
  return { ...c, ca, wrapping }
}

describe('the cluster table: CA and admission', () => {
  it('holds the CA key only wrapped; the bootstrap voters are admitted', async () => {
    const c = await initialised()
    expect(c.table.isAdmitted('m1', 'metadata')).toBe(true)
    expect(c.table.admission('m1')).toMatchObject({ via: 'bootstrap', roles: ['metadata', 'datanode'] })
    const copy = c.table.wrappedKey('m1')!
    expect(unwrapCaKey(copy, c.wrapping, 'c1')).toBe(c.ca.keyPem)
    const snapshot = Buffer.from(c.sm.snapshot())
    const der = keyDer(c.ca.keyPem)
    expect(snapshot.includes(der)).toBe(false)
    expect(snapshot.includes(Buffer.from(pemBody(c.ca.keyPem).slice(0, 40)))).toBe(false)
  })

  it('a join token admits one node once, for its roles only, until it expires', async () => {
    const c = await initialised()
    const t = generateJoinToken()
    expect(
      (
        await c.propose({
          createJoinToken: { id: t.id, secretHash: t.secretHash, roles: ['metadata'], expiresMs: T0 + HOUR },
        })
      ).ok,
    ).toBe(true)
    const parsed = parseJoinToken(t.token)
    const admit = (nodeId: string, roles: string[], tokenSecretHash = parsed.secretHash) =>
      c.propose({ admitNode: { nodeId, roles, zone: 'z2', tokenId: parsed.id, tokenSecretHash } })

    // A datanode-only token cannot admit a metadata node (the roles matter for the metadata role).
    const dn = generateJoinToken()
    await c.propose({
      createJoinToken: { id: dn.id, secretHash: dn.secretHash, roles: ['datanode'], expiresMs: T0 + HOUR },
    })
    const d = parseJoinToken(dn.token)
    expect(
      await c.propose({
        admitNode: {
          nodeId: 'n2',
          roles: ['metadata', 'datanode'],
          tokenId: d.id,
          tokenSecretHash: d.secretHash,
        },
      }),
    ).toMatchObject({ ok: false, code: 'JOIN_TOKEN_ROLES' })
    const wrong = generateJoinToken()
    expect(await admit('n2', ['metadata'], parseJoinToken(wrong.token).secretHash)).toMatchObject({
      ok: false,
      code: 'JOIN_TOKEN_INVALID',
    })
    expect(c.table.isAdmitted('n2')).toBe(false) // refusals changed nothing
    expect(await admit('n2', ['metadata', 'datanode'])).toMatchObject({ ok: true })
    expect(c.table.admission('n2')).toMatchObject({
      via: `token:${t.id}`,
      roles: ['metadata', 'datanode'],
      zone: 'z2',
    })
    expect(await admit('n3', ['metadata'])).toMatchObject({ ok: false, code: 'JOIN_TOKEN_USED' })
    expect(c.table.isAdmitted('n3')).toBe(false)

    const late = generateJoinToken()
    await c.propose({
      createJoinToken: {
        id: late.id,
        secretHash: late.secretHash,
        roles: ['datanode'],
        expiresMs: T0 + HOUR,
      },
    })
    // Another token made later does not sweep the used one away: it is still USED, not unknown.
    expect(await admit('n3', ['metadata'])).toMatchObject({ ok: false, code: 'JOIN_TOKEN_USED' })
    c.at(T0 + HOUR)
    const l = parseJoinToken(late.token)
    expect(
      await c.propose({
        admitNode: { nodeId: 'n4', roles: ['datanode'], tokenId: l.id, tokenSecretHash: l.secretHash },
      }),
    ).toMatchObject({ ok: false, code: 'JOIN_TOKEN_EXPIRED' })
  })

  it('used and expired tokens make room only when the table is full', async () => {
    const c = await initialised()
    const make = async (expiresMs: number) => {
      const t = generateJoinToken()
      const r = await c.propose({
        createJoinToken: { id: t.id, secretHash: t.secretHash, roles: ['datanode'], expiresMs },
      })
      return { t, r }
    }
    const first = await make(T0 + 1_000)
    expect(first.r.ok).toBe(true)
    for (let i = 1; i < JOIN_TOKENS_MAX; i++) expect((await make(T0 + HOUR)).r.ok).toBe(true)
    expect(c.table.joinTokens()).toHaveLength(JOIN_TOKENS_MAX)
    // Full, and nothing used or expired: refused.
    expect((await make(T0 + HOUR)).r).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT' })
    // Once the first has expired, a new token takes its room.
    c.at(T0 + 2_000)
    expect((await make(T0 + HOUR)).r.ok).toBe(true)
    expect(c.table.joinTokens().some((t) => t.id === first.t.id)).toBe(false)
    expect(c.table.joinTokens()).toHaveLength(JOIN_TOKENS_MAX)
  })

  it('a pending node is approved for the roles it asked for; only admins and the cluster decide', async () => {
    const c = await initialised()
    await c.propose({
      requestAdmission: { nodeId: 'd1', roles: ['datanode', 'gpu'], zone: 'z3', hosts: ['10.0.0.7'] },
    })
    expect(c.table.admission('d1')).toMatchObject({
      state: 1,
      roles: ['datanode', 'gpu'],
      hosts: ['10.0.0.7'],
    })
    expect(c.table.isAdmitted('d1')).toBe(false)
    expect(await c.propose({ admitNode: { nodeId: 'd1' } }, 'eve')).toMatchObject({
      ok: false,
      code: 'ACCESS_DENIED',
    })
    expect(await c.propose({ admitNode: { nodeId: 'nobody' } })).toMatchObject({
      ok: false,
      code: 'NODE_UNKNOWN',
    })
    expect(await c.propose({ admitNode: { nodeId: 'd1' } })).toMatchObject({ ok: true })
    expect(c.table.admission('d1')).toMatchObject({ via: 'approved:hopsd', roles: ['datanode', 'gpu'] })
    expect(c.table.isAdmitted('d1', 'metadata')).toBe(false)
    // Asking again changes nothing once admitted.
    await c.propose({ requestAdmission: { nodeId: 'd1', roles: ['metadata'], zone: 'z3' } })
    expect(c.table.admission('d1')?.roles).toEqual(['datanode', 'gpu'])
  })

  it('a revoked node loses its CA key copy, gets no certificate, is never admitted again; the CRL names its certificates', async () => {
    const c = await initialised()
    const w2 = createWrappingKey()
    await c.propose({ admitNode: { nodeId: 'm2', roles: ['metadata'] } })
    expect(
      (
        await c.propose({
          wrapCaKey: {
            wrapped: wrapCaKey(c.ca.keyPem, { nodeId: 'm2', clusterId: 'c1', recipientKey: w2.publicKey }),
          },
        })
      ).ok,
    ).toBe(true)
    expect(
      await c.propose({ recordCertificate: { serial: '0abc', nodeId: 'm2', notAfterMs: T0 + 10 * HOUR } }),
    ).toMatchObject({ ok: true })
    expect(
      await c.propose({ recordCertificate: { serial: 'def', nodeId: 'ghost', notAfterMs: T0 + HOUR } }),
    ).toMatchObject({
      ok: false,
      code: 'NODE_NOT_ADMITTED',
    })
    expect(await c.propose({ revokeNode: { nodeId: 'm2', reason: 'stolen disk' } }, 'eve')).toMatchObject({
      ok: false,
    })
    expect(await c.propose({ revokeNode: { nodeId: 'm2', reason: 'stolen disk' } })).toMatchObject({
      ok: true,
    })
    expect(c.table.wrappedKey('m2')).toBeUndefined()
    expect(c.table.isRevoked('m2')).toBe(true)
    expect(c.table.revokedCertificates(T0)).toEqual([{ serial: 'abc', revokedMs: T0, nodeId: 'm2' }])
    expect(c.table.revocationCount()).toBe(1)
    expect(
      await c.propose({ recordCertificate: { serial: '123', nodeId: 'm2', notAfterMs: T0 + HOUR } }),
    ).toMatchObject({
      ok: false,
      code: 'NODE_REVOKED',
    })
    expect(await c.propose({ admitNode: { nodeId: 'm2', roles: ['metadata'] } })).toMatchObject({
      ok: false,
      code: 'NODE_REVOKED',
    })
    const w3 = createWrappingKey()
    expect(
      await c.propose({
        wrapCaKey: {
          wrapped: wrapCaKey(c.ca.keyPem, { nodeId: 'm2', clusterId: 'c1', recipientKey: w3.publicKey }),
        },
      }),
    ).toMatchObject({ ok: false, code: 'NODE_NOT_ADMITTED' })
    // CRLs only move forward.
    expect(await c.propose({ publishCrl: { number: 2, crlPem: 'X', revocations: 1 } })).toMatchObject({
      ok: true,
    })
    expect(await c.propose({ publishCrl: { number: 1, crlPem: 'Y', revocations: 1 } })).toMatchObject({
      ok: true,
      value: { published: false },
    })
    expect(c.table.crl()).toMatchObject({ number: 2, crlPem: 'X' })
  })

  it('an InitCluster of older hopsd (the CA key in plaintext) is recorded as such, without the key', async () => {
    const c = cluster()
    const ca = await createClusterCa('old')
    expect(
      (await c.propose({ initCluster: { clusterId: 'old', caCertPem: ca.certPem, caKeyPem: ca.keyPem } })).ok,
    ).toBe(true)
    expect(c.table.info()).toMatchObject({ clusterId: 'old', legacyPlaintextCa: true, caKeyPem: '' })
    expect(Buffer.from(c.sm.snapshot()).includes(keyDer(ca.keyPem))).toBe(false)
  })
})

describe('the admission service (what admins call)', () => {
  it('makes a token shown once, lists nodes and tokens, approves and revokes as the admin; others are refused', async () => {
    const c = await initialised()
    let now = T0
    const svc = createAdmissionService({ group: c.group, state: () => c.table, now: () => now })
    const admin = { user: 'hopsd', groups: [] }
    const made = await svc.createToken(admin, { roles: ['metadata', 'datanode'], expiresS: 600 })
    expect(made).toMatchObject({
      roles: ['metadata', 'datanode'],
      expiresMs: T0 + 600_000,
      state: 'open',
      createdBy: 'hopsd',
    })
    expect(parseJoinToken(made.token).id).toBe(made.id)
    expect(JSON.stringify(await svc.tokens())).not.toContain(made.token.split('.')[2])
    await expect(svc.createToken({ user: 'eve', groups: [] }, { roles: ['metadata'] })).rejects.toMatchObject(
      {
        code: 'ACCESS_DENIED',
      },
    )
    await expect(svc.createToken(admin, { roles: ['root'] })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    })

    await c.propose({ requestAdmission: { nodeId: 'p1', roles: ['gpu'], zone: 'z9' } })
    expect((await svc.nodes({ state: 'pending' })).map((n) => n.id)).toEqual(['p1'])
    await expect(svc.approve({ user: 'eve', groups: [] }, 'p1')).rejects.toMatchObject({
      code: 'ACCESS_DENIED',
    })
    expect(await svc.approve(admin, 'p1')).toMatchObject({
      id: 'p1',
      state: 'admitted',
      roles: ['gpu'],
      via: 'approved:hopsd',
    })
    expect(await svc.revoke(admin, 'p1', 'decommissioned')).toMatchObject({
      state: 'revoked',
      revokedBy: 'hopsd',
      reason: 'decommissioned',
    })
    await expect(svc.revoke(admin, 'nobody')).rejects.toMatchObject({ code: 'NODE_UNKNOWN' })
    now = T0 + 600_000
    expect((await svc.tokens()).find((t) => t.id === made.id)?.state).toBe('expired')
    await svc.deleteToken(admin, made.id)
    expect(await svc.tokens()).toEqual([])
  })
})

function pemBody(pem: string): string {
  return pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '')
}

function keyDer(pem: string): Buffer {
  return Buffer.from(pemBody(pem), 'base64')
}
