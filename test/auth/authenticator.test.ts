// Users, keys and tokens in the replicated state, and the authenticator over them: every credential
// kind accepted when good, and refused — with its reason and code — when malformed, unknown, altered,
// expired, revoked, of a removed or disabled user, or simply not believed (user.name, secure auth).
import { describe, expect, it } from 'vitest'
import {
  AuthError,
  clusterPrincipal,
  decodeTokenUrlString,
  encodeTokenUrlString,
  isAuthError,
  type Credentials,
} from '../../src/auth/index.js'
import { makeAuth } from './harness.js'

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p
  } catch (err) {
    if (err instanceof Error && 'code' in err) return { code: String(err.code), message: err.message }
    throw err
  }
  throw new Error('expected a refusal')
}

describe('bootstrap', () => {
  it('makes user admin (group admin, superuser) with a key that never expires, and the auth setting', async () => {
    const env = await makeAuth({ mode: 'simple' })
    expect(env.admin).toMatchObject({ user: 'admin', groups: ['admin'], via: 'key', superuser: true })
    expect(env.sm.settings().auth).toBe('simple')
    env.clock.now += 20 * 365 * 86_400_000
    expect((await env.authn.authenticate({ bearer: env.adminKey }))?.user).toBe('admin')
    // A second bootstrap (another leader racing) is refused and changes nothing.
    expect((await refusal(env.auth.bootstrap(env.admin, 'secure'))).code).toBe('ADMIN_EXISTS')
    expect(env.sm.settings().auth).toBe('simple')
  })

  it('before bootstrap the node uses its own --auth; after, the cluster setting decides', async () => {
    const env = await makeAuth({ mode: 'secure', bootstrap: false })
    expect(env.authn.mode()).toBe('secure')
    expect((await refusal(env.authn.authenticate({ userName: 'hopsd' }))).code).toBe('SIMPLE_AUTH_DISABLED')
  })
})

describe('API keys', () => {
  it('a user key authenticates as its user with the groups of the record (not of the request)', async () => {
    const { auth, authn, admin } = await makeAuth()
    await auth.addUser(admin, 'alice', ['staff', 'ml'])
    const k = await auth.createKey(admin, { user: 'alice', name: 'laptop' })
    expect(k.key).toMatch(/^hk\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/)
    const p = await authn.authenticate({ bearer: k.key, userName: 'admin' })
    expect(p).toMatchObject({
      user: 'alice',
      groups: ['ml', 'staff'],
      via: 'key',
      credentialId: k.id,
      superuser: false,
    })
    await auth.setUser(admin, 'alice', { groups: ['ml'] })
    expect((await authn.authenticate({ bearer: k.key }))?.groups).toEqual(['ml'])
  })

  it('job keys: made by the cluster only, always in a project; they authenticate as the job', async () => {
    const { sm, auth, authn, admin } = await makeAuth()
    await auth.addUser(admin, 'alice')
    // Not through a request, not even an admin's (the route's schema has no job field either).
    expect((await refusal(auth.createKey(admin, { user: 'alice', project: 'p', job: '7' }))).code).toBe(
      'AUTH_LIMIT',
    )
    const cluster = clusterPrincipal(sm.settings().superuser)
    expect((await refusal(auth.createKey(cluster, { user: 'alice', job: '7' }))).code).toBe('AUTH_LIMIT')
    const k = await auth.createKey(cluster, { user: 'alice', project: 'p', job: '7' })
    expect(await authn.authenticate({ bearer: k.key })).toMatchObject({
      user: 'alice',
      project: 'p',
      job: '7',
    })
    const plain = await auth.createKey(admin, { user: 'alice' })
    expect((await authn.authenticate({ bearer: plain.key }))?.job).toBeUndefined()
  })

  it('HTTP Basic with the key as password (fsspec user/password); delegation= may carry a key', async () => {
    const { auth, authn, admin } = await makeAuth()
    await auth.addUser(admin, 'alice')
    const { key } = await auth.createKey(admin, { user: 'alice' })
    expect((await authn.authenticate({ basic: { user: 'alice', password: key } }))?.user).toBe('alice')
    expect((await authn.authenticate({ basic: { user: '', password: key } }))?.user).toBe('alice')
    expect((await refusal(authn.authenticate({ basic: { user: 'admin', password: key } }))).code).toBe(
      'CREDENTIAL_INVALID',
    )
    expect((await authn.authenticate({ delegation: key }))?.user).toBe('alice')
  })

  it('malformed, unknown, wrong secret, expired, revoked, removed or disabled user: 401 with the reason', async () => {
    const env = await makeAuth()
    const { auth, authn, admin, clock } = env
    await auth.addUser(admin, 'alice')
    await auth.addUser(admin, 'bob')
    const good = await auth.createKey(admin, { user: 'alice' })
    const cases: [Credentials, string, RegExp][] = [
      [{ bearer: 'nonsense' }, 'CREDENTIAL_INVALID', /malformed/],
      [{ bearer: `hk.0123456789abcdef.${'A'.repeat(43)}` }, 'CREDENTIAL_INVALID', /unknown API key/],
      [
        { bearer: good.key.slice(0, -1) + (good.key.endsWith('A') ? 'B' : 'A') },
        'CREDENTIAL_INVALID',
        /wrong secret/,
      ],
    ]
    for (const [c, code, why] of cases) {
      const r = await refusal(authn.authenticate(c))
      expect(r.code, JSON.stringify(c)).toBe(code)
      expect(r.message).toMatch(why)
    }
    const short = await auth.createKey(admin, { user: 'alice', expiresS: 60 })
    clock.now += 61_000
    expect(await refusal(authn.authenticate({ bearer: short.key }))).toMatchObject({
      code: 'CREDENTIAL_EXPIRED',
    })
    await auth.revokeKey(admin, good.id)
    const revoked = await refusal(authn.authenticate({ bearer: good.key }))
    expect(revoked.code).toBe('CREDENTIAL_REVOKED')
    expect(revoked.message).toMatch(/revoked/)
    const bobs = await auth.createKey(admin, { user: 'bob' })
    await auth.setUser(admin, 'bob', { disabled: true })
    expect((await refusal(authn.authenticate({ bearer: bobs.key }))).code).toBe('USER_DISABLED')
    await auth.removeUser(admin, 'bob')
    // The key's row went with the user: it is unknown now.
    expect((await refusal(authn.authenticate({ bearer: bobs.key }))).code).toBe('CREDENTIAL_INVALID')
  })

  it('a user makes and revokes keys for itself only; another user cannot see, revoke or make them', async () => {
    const { auth, authn, admin } = await makeAuth()
    await auth.addUser(admin, 'alice')
    await auth.addUser(admin, 'eve')
    const alice = (await authn.authenticate({
      bearer: (await auth.createKey(admin, { user: 'alice' })).key,
    }))!
    const eve = (await authn.authenticate({ bearer: (await auth.createKey(admin, { user: 'eve' })).key }))!
    const own = await auth.createKey(alice, { user: 'alice', name: 'ci' })
    expect((await refusal(auth.createKey(eve, { user: 'alice' }))).code).toBe('KEY_NOT_FOUND')
    expect((await refusal(auth.revokeKey(eve, own.id))).code).toBe('KEY_NOT_FOUND')
    expect((await auth.listKeys(eve)).map((k) => k.user)).toEqual(['eve'])
    expect((await auth.listKeys(alice)).map((k) => k.name).sort()).toEqual(['', 'ci'])
    expect((await authn.authenticate({ bearer: own.key }))?.user).toBe('alice')
    // Admin-only operations refused inside apply, whoever proposes them.
    expect((await refusal(auth.addUser(alice, 'mallory', ['admin']))).code).toBe('SUPERUSER_REQUIRED')
    expect((await refusal(auth.setUser(alice, 'alice', { groups: ['admin'] }))).code).toBe(
      'SUPERUSER_REQUIRED',
    )
    expect((await refusal(auth.listUsers(alice))).code).toBe('SUPERUSER_REQUIRED')
  })

  it('keys are stored as hashes only: the snapshot holds no secret', async () => {
    const { auth, admin, sm } = await makeAuth()
    await auth.addUser(admin, 'alice')
    const { key } = await auth.createKey(admin, { user: 'alice' })
    const secret = key.split('.')[2]!
    const snap = Buffer.from(sm.snapshot())
    expect(snap.includes(Buffer.from(secret))).toBe(false)
    expect(snap.includes(Buffer.from(key.split('.')[1]!))).toBe(true)
  })
})

describe('delegation tokens', () => {
  it("are Hadoop's Token URL strings, act as their owner, renew up to the max date, cancel", async () => {
    const { auth, authn, admin, clock } = await makeAuth()
    await auth.addUser(admin, 'alice')
    const alice = (await authn.authenticate({
      bearer: (await auth.createKey(admin, { user: 'alice' })).key,
    }))!
    const t = await auth.issueToken(alice, { service: '127.0.0.1:9870' })
    const decoded = decodeTokenUrlString(t.urlString)!
    expect(decoded.identifier).toMatchObject({
      owner: 'alice',
      renewer: 'alice',
      realUser: '',
      sequenceNumber: t.seq,
    })
    expect(decoded.kind).toBe('WEBHDFS delegation')
    expect(decoded.service).toBe('127.0.0.1:9870')
    expect(encodeTokenUrlString(decoded)).toBe(t.urlString)
    expect(await authn.authenticate({ delegation: t.urlString })).toMatchObject({
      user: 'alice',
      via: 'token',
    })
    // A token never begets a token.
    const viaToken = (await authn.authenticate({ delegation: t.urlString }))!
    expect((await refusal(auth.issueToken(viaToken, {}))).code).toBe('TOKEN_INVALID')
    clock.now += 23 * 3_600_000
    const renewed = await auth.renewToken(alice, t.urlString)
    expect(renewed).toBe(clock.now + 24 * 3_600_000)
    clock.now += 23 * 3_600_000
    expect((await authn.authenticate({ delegation: t.urlString }))?.user).toBe('alice')
    clock.now += 2 * 3_600_000
    expect((await refusal(authn.authenticate({ delegation: t.urlString }))).code).toBe('CREDENTIAL_EXPIRED')
    const t2 = await auth.issueToken(alice, {})
    await auth.cancelToken(alice, t2.urlString)
    const r = await refusal(authn.authenticate({ delegation: t2.urlString }))
    expect(r.code).toBe('CREDENTIAL_REVOKED')
    expect(r.message).toMatch(/cancelled/)
  })

  it('an altered or truncated token is refused as invalid, never crashes', async () => {
    const { auth, authn, admin } = await makeAuth()
    await auth.addUser(admin, 'alice')
    await auth.addUser(admin, 'eve')
    const alice = (await authn.authenticate({
      bearer: (await auth.createKey(admin, { user: 'alice' })).key,
    }))!
    const t = await auth.issueToken(alice, {})
    const d = decodeTokenUrlString(t.urlString)!
    const forgedOwner = encodeTokenUrlString({ ...d, identifier: { ...d.identifier, owner: 'admin' } })
    expect((await refusal(authn.authenticate({ delegation: forgedOwner }))).message).toMatch(/altered/)
    const otherPassword = encodeTokenUrlString({ ...d, password: new Uint8Array(32) })
    expect((await refusal(authn.authenticate({ delegation: otherPassword }))).message).toMatch(
      /wrong password/,
    )
    for (let cut = 1; cut < t.urlString.length; cut += 7) {
      const r = await refusal(authn.authenticate({ delegation: t.urlString.slice(0, cut) }))
      expect(r.code).toBe('CREDENTIAL_INVALID')
    }
    // eve cannot renew or cancel alice's token.
    const eve = (await authn.authenticate({ bearer: (await auth.createKey(admin, { user: 'eve' })).key }))!
    expect((await refusal(auth.renewToken(eve, t.urlString))).code).toBe('TOKEN_INVALID')
    expect((await refusal(auth.cancelToken(eve, t.urlString))).code).toBe('TOKEN_INVALID')
    expect((await authn.authenticate({ delegation: t.urlString }))?.user).toBe('alice')
  })
})

describe('simple and secure auth', () => {
  it('secure: user.name is refused with the reason; no credentials is anonymous (undefined)', async () => {
    const { authn } = await makeAuth({ mode: 'secure' })
    const r = await refusal(authn.authenticate({ userName: 'hopsd' }))
    expect(r.code).toBe('SIMPLE_AUTH_DISABLED')
    expect(r.message).toMatch(/secure auth/)
    expect(await authn.authenticate({})).toBeUndefined()
  })

  it('simple: user.name is believed, groups from the record; no name is dr.who', async () => {
    const { auth, authn, admin } = await makeAuth({ mode: 'simple' })
    await auth.addUser(admin, 'alice', ['staff'])
    expect(await authn.authenticate({ userName: 'alice' })).toMatchObject({
      user: 'alice',
      groups: ['staff'],
    })
    expect(await authn.authenticate({ userName: 'hopsd' })).toMatchObject({ user: 'hopsd', superuser: true })
    expect(await authn.authenticate({})).toMatchObject({ user: 'dr.who', superuser: false })
    expect((await refusal(authn.authenticate({ userName: 'a/b' }))).code).toBe('CREDENTIAL_INVALID')
  })

  it('checks freshness: a credential costs a read barrier (revocations hold at once)', async () => {
    const env = await makeAuth()
    const before = env.barriers.count
    await env.authn.authenticate({ bearer: env.adminKey })
    expect(env.barriers.count).toBe(before + 1)
  })
})

describe('one barrier per request: re-checked after the read barrier, or at commit', () => {
  it('a write authenticated before a revocation and committed after it is refused at commit', async () => {
    const { auth, authn, admin, fs } = await makeAuth()
    await auth.addUser(admin, 'alice')
    await fs.mkdirs(admin, '/user/alice')
    await fs.setOwner(admin, '/user/alice', 'alice', undefined)
    const k = await auth.createKey(admin, { user: 'alice' })
    // The edge checked the key without a barrier (its replica may lag); the revocation then commits.
    const alice = (await authn.authenticate({ bearer: k.key }, { fresh: false }))!
    await fs.mkdirs(alice, '/user/alice/before')
    await auth.revokeKey(admin, k.id)
    const r = await refusal(fs.mkdirs(alice, '/user/alice/after'))
    expect(r.code).toBe('CREDENTIAL_REVOKED')
    await expect(fs.stat(admin, '/user/alice/after')).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' })
    // A disabled user, an expired key and a cancelled token: refused at commit too.
    const k2 = await auth.createKey(admin, { user: 'alice', expiresS: 5 })
    const viaShort = (await authn.authenticate({ bearer: k2.key }, { fresh: false }))!
    const t = await auth.issueToken(viaShort, {})
    const viaToken = (await authn.authenticate({ delegation: t.urlString }, { fresh: false }))!
    await auth.cancelToken(viaShort, t.urlString)
    expect((await refusal(fs.mkdirs(viaToken, '/user/alice/t'))).code).toBe('CREDENTIAL_REVOKED')
    await auth.setUser(admin, 'alice', { disabled: true })
    expect((await refusal(fs.mkdirs(viaShort, '/user/alice/d'))).code).toBe('USER_DISABLED')
  })

  it('a key or token made through another node is accepted by a replica that had not applied it yet', async () => {
    // Replica B lags replica A: it holds A's state from before the key and the token were made, and
    // its read barrier catches it up. Authenticated without a barrier first (fresh: false), the unknown
    // credential must be looked at again after one, not refused (a 401 for a key made a moment ago).
    const a = await makeAuth()
    await a.auth.addUser(a.admin, 'alice')
    const { authModule, createLocalAuthenticator } = await import('../../src/auth/index.js')
    const { createMetaStateMachine } = await import('../../src/meta/index.js')
    const { namespaceModule } = await import('../../src/fs/index.js')
    const b = createMetaStateMachine({ modules: [namespaceModule(), authModule()] })
    b.restore(a.sm.snapshot())
    let barriers = 0
    const authnB = createLocalAuthenticator({
      store: () => b.module('auth'),
      settings: () => b.settings(),
      isSuperuser: (u, g) => b.isSuperuser(u, g),
      bootstrapMode: 'secure',
      barrier: async () => {
        barriers++
        b.restore(a.sm.snapshot())
      },
      clock: () => a.clock.now,
    })
    const k = await a.auth.createKey(a.admin, { user: 'alice' })
    b.restore(a.sm.snapshot()) // B has the key now, but not the next one
    const k2 = await a.auth.createKey(a.admin, { user: 'alice' })
    expect((await authnB.authenticate({ bearer: k2.key }, { fresh: false }))!.user).toBe('alice')
    expect(barriers).toBe(1)
    const k3 = await a.auth.createKey(a.admin, { user: 'alice' })
    expect(
      (await authnB.authenticate({ basic: { user: 'alice', password: k3.key } }, { fresh: false }))!.user,
    ).toBe('alice')
    const t2 = await a.auth.issueToken((await a.authn.authenticate({ bearer: k.key }))!, {})
    expect((await authnB.authenticate({ delegation: t2.urlString }, { fresh: false }))!.user).toBe('alice')
    expect(barriers).toBe(3)
    // A credential that stays unknown is still refused, after one barrier.
    expect(
      (await refusal(authnB.authenticate({ bearer: `${k.key.slice(0, -4)}zzzz` }, { fresh: false }))).code,
    ).toMatch(/CREDENTIAL/)
    expect(barriers).toBe(4)
  })

  it('a read re-checks its caller after its barrier (recheck)', async () => {
    const { auth, authn, admin, sm, clock } = await makeAuth()
    const { createFsService } = await import('../../src/fs/index.js')
    const { createLocalGroup } = await import('../../src/meta/index.js')
    const fs = createFsService({
      consensus: createLocalGroup(sm),
      stateMachine: sm,
      clock: () => clock.now,
      recheck: (c) => authn.recheck(c as never),
    })
    await auth.addUser(admin, 'alice')
    const k = await auth.createKey(admin, { user: 'alice' })
    const alice = (await authn.authenticate({ bearer: k.key }, { fresh: false }))!
    expect((await fs.stat(alice, '/')).type).toBe('DIRECTORY')
    await auth.revokeKey(admin, k.id)
    expect((await refusal(fs.stat(alice, '/'))).code).toBe('CREDENTIAL_REVOKED')
    expect((await refusal(fs.list(alice, '/'))).code).toBe('CREDENTIAL_REVOKED')
  })
})

it('AuthError carries its status and RemoteException', () => {
  const e = new AuthError('CREDENTIAL_REVOKED', 'gone')
  expect(e.httpStatus).toBe(401)
  expect(e.toRemoteException().RemoteException.javaClassName).toBe(
    'org.apache.hadoop.security.token.SecretManager$InvalidToken',
  )
  expect(isAuthError(e, 'CREDENTIAL_REVOKED')).toBe(true)
})
