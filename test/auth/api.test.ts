// The API's one authentication hook, in-process (fastify inject) over a real replica with the auth
// and fs modules: what each kind of caller gets on each kind of route, WebHDFS delegation tokens in
// Hadoop's shapes, the audit trail, and the per-source limit on failed authentications. Each test
// attacks: before the trust work, the API believed user.name, and every one of these would pass.
import { afterEach, describe, expect, it } from 'vitest'
import {
  auditRoutes,
  createApiServer,
  homeDirectories,
  createMetricsRegistry,
  keysRoutes,
  nodeRoutes,
  settingsRoutes,
  usersRoutes,
  type ApiServer,
} from '../../src/api/index.js'
import { fsRoutes } from '../../src/api/routes/fs.js'
import { webhdfsRoutes } from '../../src/api/routes/webhdfs.js'
import { createAuditLog, createFailureLimiter, type AuditLog } from '../../src/auth/index.js'
import { silentLogger } from '../../src/node/index.js'
import { makeAuth, type AuthEnv } from './harness.js'

const servers: ApiServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

interface Api extends AuthEnv {
  audit: AuditLog
  call(
    method: string,
    url: string,
    opts?: { key?: string; body?: unknown; from?: string; headers?: Record<string, string> },
  ): Promise<{ status: number; json: () => any; headers: Record<string, unknown>; body: string }>
  user(name: string, groups?: string[]): Promise<string>
}

async function setup(mode: 'simple' | 'secure' = 'secure', failuresMax = 100): Promise<Api> {
  const env = await makeAuth({ mode })
  const audit = createAuditLog({ clock: () => env.clock.now })
  const limiter = createFailureLimiter({ failuresMax, windowMs: 60_000, clock: () => env.clock.now })
  const api = await createApiServer({
    logger: silentLogger(),
    registry: createMetricsRegistry(),
    openapi: { title: 'hopsd', version: 'test' },
    auth: { authenticator: env.authn, limiter, audit },
    routes: [
      nodeRoutes({
        info: {
          id: 'node-a',
          zone: 'z1',
          roles: ['metadata'],
          version: 't',
          startedAt: new Date(0).toISOString(),
          http: 'http://node-a:9870',
          p2p: '127.0.0.1:4001',
          join: ['127.0.0.1:4001'],
          bootstrapExpect: 1,
          dataDir: '/secret/data/dir',
          pid: 4242,
          nodeVersion: 'v22',
        },
        uptimeS: () => 1,
      }),
      webhdfsRoutes({ fs: env.fs, delegation: env.auth, clock: () => env.clock.now }),
      fsRoutes({ fs: env.fs }),
      usersRoutes({
        auth: env.auth,
        createHome: homeDirectories(env.fs),
      }),
      keysRoutes({ auth: env.auth }),
      auditRoutes({ audit, nodeId: 'node-a' }),
      settingsRoutes({
        get: async () => env.sm.settings(),
        set: (caller, name, value) => env.fs.setSetting(caller, name, value),
      }),
    ],
  })
  servers.push(api)
  const call: Api['call'] = async (method, url, opts = {}) => {
    const r = await api.app.inject({
      method: method as 'GET',
      url,
      payload:
        opts.body === undefined
          ? undefined
          : typeof opts.body === 'string'
            ? opts.body
            : JSON.stringify(opts.body),
      remoteAddress: opts.from ?? '10.0.0.1',
      headers: {
        host: 'node-a:9870',
        ...(opts.body !== undefined && typeof opts.body !== 'string'
          ? { 'content-type': 'application/json' }
          : {}),
        ...(opts.key ? { authorization: `Bearer ${opts.key}` } : {}),
        ...opts.headers,
      },
    })
    return { status: r.statusCode, json: () => r.json(), headers: r.headers, body: r.body }
  }
  const user: Api['user'] = async (name, groups = []) => {
    expect((await call('POST', '/api/v1/users', { key: env.adminKey, body: { name, groups } })).status).toBe(
      201,
    )
    const k = await call('POST', '/api/v1/keys', { key: env.adminKey, body: { user: name } })
    expect(k.status).toBe(201)
    return k.json().key as string
  }
  return { ...env, audit, call, user }
}

describe('secure auth at the edge', () => {
  it('user.name=hopsd is refused 401 with the reason, on WebHDFS (RemoteException) and native routes', async () => {
    const { call, fs, admin } = await setup('secure')
    await fs.create(admin, '/secret.txt', new TextEncoder().encode('s3cret'), { permission: 0o600 })
    const w = await call('GET', '/webhdfs/v1/secret.txt?op=OPEN&user.name=hopsd')
    expect(w.status).toBe(401)
    expect(w.json().RemoteException).toMatchObject({ exception: 'SecurityException' })
    expect(w.json().RemoteException.message).toMatch(/secure auth/)
    expect(w.body).not.toContain('s3cret')
    const n = await call('GET', '/api/v1/fs/files?path=/secret.txt&user.name=hopsd')
    expect(n.status).toBe(401)
    expect(n.json().error.code).toBe('SIMPLE_AUTH_DISABLED')
    const none = await call('GET', '/webhdfs/v1/secret.txt?op=GETFILESTATUS')
    expect(none.status).toBe(401)
    expect(none.json().RemoteException.message).toMatch(/no credentials/)
    // A bad credential never falls through to user.name, even under simple auth's checks.
    const bad = await call('GET', '/webhdfs/v1/?op=LISTSTATUS&user.name=hopsd', { key: 'hk.nope' })
    expect(bad.status).toBe(401)
  })

  it('/health is open; /api/v1/node shows an anonymous caller nothing private', async () => {
    const { call, adminKey } = await setup('secure')
    expect((await call('GET', '/health')).status).toBe(200)
    const anon = await call('GET', '/api/v1/node')
    expect(anon.status).toBe(200)
    expect(anon.body).not.toContain('/secret/data/dir')
    expect(anon.json()).not.toHaveProperty('pid')
    expect(anon.json()).not.toHaveProperty('dataDir')
    const full = await call('GET', '/api/v1/node', { key: adminKey })
    expect(full.json()).toMatchObject({ dataDir: '/secret/data/dir', pid: 4242 })
    expect((await call('GET', '/metrics')).status).toBe(200)
  })

  it('a user added by an admin gets /user/<name> owned by it, and its key acts as it (groups from the record)', async () => {
    const { call, user } = await setup('secure')
    const key = await user('alice', ['staff'])
    const st = await call('GET', '/webhdfs/v1/user/alice?op=GETFILESTATUS', { key })
    expect(st.status).toBe(200)
    expect(st.json().FileStatus).toMatchObject({ owner: 'alice', type: 'DIRECTORY', permission: '750' })
    expect((await call('GET', '/webhdfs/v1/?op=GETHOMEDIRECTORY', { key })).json()).toEqual({
      Path: '/user/alice',
    })
    // Basic auth with the key as password and delegation=<key> work too (fsspec, HdfsCLI's TokenClient).
    const basic = 'Basic ' + Buffer.from(`alice:${key}`).toString('base64')
    expect(
      (await call('GET', '/webhdfs/v1/user/alice?op=LISTSTATUS', { headers: { authorization: basic } }))
        .status,
    ).toBe(200)
    expect((await call('GET', `/webhdfs/v1/user/alice?op=LISTSTATUS&delegation=${key}`)).status).toBe(200)
  })

  it('users, keys and settings: a non-admin is refused 403 and nothing changes; anonymous 401', async () => {
    const { call, user, adminKey, sm } = await setup('secure')
    const eve = await user('eve')
    for (const [method, url, body] of [
      ['POST', '/api/v1/users', { name: 'mallory', groups: ['admin'] }],
      ['PATCH', '/api/v1/users/eve', { groups: ['admin'] }],
      ['DELETE', '/api/v1/users/admin', undefined],
      ['POST', '/api/v1/keys', { user: 'admin' }],
      ['PUT', '/api/v1/cluster/settings/auth', { value: 'simple' }],
      ['GET', '/api/v1/users', undefined],
      ['GET', '/api/v1/audit', undefined],
    ] as const) {
      const r = await call(method, url, { key: eve, body })
      expect([403, 404], `${method} ${url}`).toContain(r.status)
      expect((await call(method, url, { body })).status, `anonymous ${method} ${url}`).toBe(401)
    }
    const users = (await call('GET', '/api/v1/users', { key: adminKey })).json().users.map((u: any) => u.name)
    expect(users).toEqual(['admin', 'eve'])
    expect(sm.settings().auth).toBe('secure')
    expect((await call('GET', '/api/v1/users/eve', { key: eve })).json().groups).toEqual([])
    expect((await call('GET', '/api/v1/users/admin', { key: eve })).status).toBe(404)
  })

  it('malformed, unknown, expired and revoked keys: 401 with the reason and nothing changed', async () => {
    const { call, user, clock, fs, admin } = await setup('secure')
    const key = await user('alice')
    const short = (await call('POST', '/api/v1/keys', { key, body: { user: 'alice', expiresS: 10 } })).json()
    const revoked = (await call('POST', '/api/v1/keys', { key, body: { user: 'alice', name: 'old' } })).json()
    expect((await call('DELETE', `/api/v1/keys/${revoked.id}`, { key })).json().state).toBe('revoked')
    clock.now += 11_000
    const attempts: [string, string, RegExp][] = [
      ['garbage', 'CREDENTIAL_INVALID', /malformed/],
      [key.slice(0, -2) + 'xx', 'CREDENTIAL_INVALID', /wrong secret/],
      [short.key, 'CREDENTIAL_EXPIRED', /expired/],
      [revoked.key, 'CREDENTIAL_REVOKED', /revoked/],
    ]
    for (const [k, code, why] of attempts) {
      const r = await call('PUT', '/api/v1/fs/files?path=/user/alice/x', {
        key: k,
        body: 'data',
        headers: { 'content-type': 'application/octet-stream' },
      })
      expect(r.status, k).toBe(401)
      expect(r.json().error.code).toBe(code)
      expect(r.json().error.message).toMatch(why)
      const w = await call('PUT', '/webhdfs/v1/user/alice/y?op=MKDIRS', { key: k })
      expect(w.status).toBe(401)
      expect(w.json().RemoteException.message).toMatch(why)
    }
    expect((await fs.list(admin, '/user/alice')).entries).toEqual([])
    expect((await call('PUT', '/webhdfs/v1/user/alice/y?op=MKDIRS', { key })).status).toBe(200)
  })

  it('failed authentications are limited per source address: 429 with Retry-After, other sources unaffected', async () => {
    const { call, user, clock, audit } = await setup('secure', 5)
    const key = await user('alice')
    for (let i = 0; i < 5; i++)
      expect(
        (
          await call('GET', '/webhdfs/v1/?op=LISTSTATUS', {
            key: `hk.0000000000000000.${'A'.repeat(43)}`,
            from: '10.9.9.9',
          })
        ).status,
      ).toBe(401)
    const limited = await call('GET', '/webhdfs/v1/user/alice?op=LISTSTATUS', { key, from: '10.9.9.9' })
    expect(limited.status).toBe(429)
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0)
    expect(limited.json().RemoteException.exception).toBe('RetriableException')
    expect((await call('GET', '/api/v1/keys', { key, from: '10.9.9.9' })).json().error.code).toBe(
      'TOO_MANY_AUTH_FAILURES',
    )
    expect(
      (await call('GET', '/webhdfs/v1/user/alice?op=LISTSTATUS', { key, from: '10.8.8.8' })).status,
    ).toBe(200)
    expect((await call('GET', '/health', { from: '10.9.9.9' })).status).toBe(200)
    expect(audit.list({ kinds: ['auth.rate-limited'] }).events.map((e) => e.source)).toEqual(['10.9.9.9'])
    clock.now += 13_000 // one failure's worth of refill (5 per minute)
    expect(
      (await call('GET', '/webhdfs/v1/user/alice?op=LISTSTATUS', { key, from: '10.9.9.9' })).status,
    ).toBe(200)
  })

  it('audit: failures, denials, users, keys, tokens and admin operations; admins only', async () => {
    const { call, user, adminKey } = await setup('secure')
    const alice = await user('alice')
    await call('GET', '/webhdfs/v1/?op=LISTSTATUS', { key: 'hk.bad' })
    await call('GET', '/webhdfs/v1/?op=LISTSTATUS&user.name=admin')
    await call('PUT', '/webhdfs/v1/etc?op=MKDIRS', { key: alice })
    const k = (await call('POST', '/api/v1/keys', { key: alice, body: { user: 'alice', name: 'ci' } })).json()
    await call('DELETE', `/api/v1/keys/${k.id}`, { key: alice })
    const t = (await call('GET', '/webhdfs/v1/?op=GETDELEGATIONTOKEN', { key: alice })).json().Token.urlString
    await call('PUT', `/webhdfs/v1/?op=RENEWDELEGATIONTOKEN&token=${t}`, { key: alice })
    await call('PUT', `/webhdfs/v1/?op=CANCELDELEGATIONTOKEN&token=${t}`, { key: alice })
    await call('PUT', '/api/v1/cluster/settings/inlineThreshold', { key: adminKey, body: { value: 1024 } })
    await call('DELETE', '/api/v1/users/alice', { key: adminKey })
    expect((await call('GET', '/api/v1/audit', { key: alice })).status).toBe(401) // alice was removed
    const r = await call('GET', '/api/v1/audit', { key: adminKey })
    expect(r.status).toBe(200)
    const events = r.json().events as any[]
    const kinds = new Set(events.map((e) => `${e.kind}/${e.decision}`))
    for (const k of [
      'auth.failure/deny',
      'access.denied/deny',
      'user.add/allow',
      'user.remove/allow',
      'key.create/allow',
      'key.revoke/allow',
      'token.create/allow',
      'token.renew/allow',
      'token.cancel/allow',
      'admin.operation/allow',
    ])
      expect(kinds, k).toContain(k)
    const denied = events.find((e) => e.kind === 'access.denied')
    expect(denied).toMatchObject({
      user: 'alice',
      source: '10.0.0.1',
      path: '/etc',
      code: 'ACCESS_DENIED',
      method: 'PUT',
    })
    expect(events.find((e) => e.kind === 'key.revoke').path).toBe(`key:${k.id}`)
    // No secret in any event.
    expect(JSON.stringify(events)).not.toContain(alice.split('.')[2])
    expect(JSON.stringify(events)).not.toContain(t)
  })
})

describe('WebHDFS delegation tokens', () => {
  it('GET/RENEW/CANCELDELEGATIONTOKEN in Hadoop shapes; a token acts as its owner, then is refused once cancelled', async () => {
    const { call, user } = await setup('secure')
    const alice = await user('alice')
    const got = await call('GET', '/webhdfs/v1/?op=GETDELEGATIONTOKEN&renewer=alice', { key: alice })
    expect(got.status).toBe(200)
    const token = got.json().Token.urlString as string
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/)
    const home = await call('GET', `/webhdfs/v1/?op=GETHOMEDIRECTORY&delegation=${token}`)
    expect(home.json()).toEqual({ Path: '/user/alice' })
    const renewed = await call('PUT', `/webhdfs/v1/?op=RENEWDELEGATIONTOKEN&token=${token}`, { key: alice })
    expect(renewed.json()).toEqual({ long: expect.any(Number) })
    // A token cannot get a token.
    expect((await call('GET', `/webhdfs/v1/?op=GETDELEGATIONTOKEN&delegation=${token}`)).status).toBe(403)
    expect(
      (await call('PUT', `/webhdfs/v1/?op=CANCELDELEGATIONTOKEN&token=${token}`, { key: alice })).status,
    ).toBe(200)
    const after = await call('GET', `/webhdfs/v1/?op=GETHOMEDIRECTORY&delegation=${token}`)
    expect(after.status).toBe(401)
    expect(after.json().RemoteException).toMatchObject({ exception: 'InvalidToken' })
    expect(after.json().RemoteException.message).toMatch(/cancelled/)
  })
})

describe('change log and simple auth', () => {
  it('changes: a caller sees only events of names it could list; the admin sees all', async () => {
    const { call, user, adminKey } = await setup('secure')
    const alice = await user('alice')
    const bob = await user('bob')
    for (const [k, p] of [
      [alice, '/user/alice/a.txt'],
      [bob, '/user/bob/private.txt'],
    ] as const)
      expect(
        (
          await call('PUT', `/api/v1/fs/files?path=${p}`, {
            key: k,
            body: 'x',
            headers: { 'content-type': 'application/octet-stream' },
          })
        ).status,
      ).toBe(201)
    const paths = async (k: string) =>
      (await call('GET', '/api/v1/fs/changes?since=0', { key: k })).json().events.map((e: any) => e.path)
    expect(await paths(alice)).toContain('/user/alice/a.txt')
    expect(await paths(alice)).not.toContain('/user/bob/private.txt')
    expect(await paths(bob)).not.toContain('/user/alice/a.txt')
    expect(await paths(adminKey)).toEqual(
      expect.arrayContaining(['/user/alice/a.txt', '/user/bob/private.txt']),
    )
    const r = (await call('GET', '/api/v1/fs/changes?since=0', { key: alice })).json()
    expect(r.nextSince).toBe(r.lastIndex)
  })

  it('simple auth (hopsd dev, tests): user.name is believed, and a bad key is still refused', async () => {
    const { call, adminKey } = await setup('simple')
    expect((await call('PUT', '/webhdfs/v1/tmp?op=MKDIRS&user.name=hopsd')).status).toBe(200)
    expect((await call('GET', '/webhdfs/v1/tmp?op=GETFILESTATUS')).json().FileStatus.owner).toBe('hopsd')
    expect((await call('GET', '/webhdfs/v1/?op=LISTSTATUS', { key: 'hk.bad' })).status).toBe(401)
    // An admin switches the cluster to secure auth: user.name stops being believed at once.
    expect(
      (
        await call('PUT', '/api/v1/cluster/settings/auth', { key: adminKey, body: { value: 'secure' } })
      ).json(),
    ).toEqual({ name: 'auth', value: 'secure' })
    expect((await call('GET', '/webhdfs/v1/tmp?op=GETFILESTATUS&user.name=hopsd')).status).toBe(401)
  })
})
