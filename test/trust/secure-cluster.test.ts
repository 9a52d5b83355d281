/**
 * Issue 11 (trust) against a real cluster started as `hopsd start` starts it — secure auth, the
 * default: 3 metadata nodes in 3 zones and a datanode-only node that forwards. Each test attacks what
 * the code before the trust work let through:
 *  - `user.name=hopsd` (the superuser) → 401 on every node, nothing read or changed;
 *  - datanode drain: anonymous → 401, a non-admin → 403; blocks and changes of a file the caller may
 *    not read → 403 / filtered out;
 *  - malformed, expired and revoked keys and tokens → 401 with the reason, nothing changed; a key
 *    revoked through one node is refused by every node at once;
 *  - a "plain node" (a libp2p host with the swarm key and nothing else) proposing a command as admin,
 *    with a grant it signed itself, or allocating a block as admin → refused; a write Location token
 *    signed by it, sent to a datanode's data route → 403;
 *  - failed authentications limited per source address; audit events of each kind, admins only;
 *  - real clients as a non-superuser: HdfsCLI's TokenClient (every op), fsspec and pandas with a key.
 */
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { encodeTokenUrlString, decodeTokenUrlString, signGrant } from '../../src/auth/index.js'
import { createWriteTokens } from '../../src/api/index.js'
import { metaProto } from '../../src/meta/index.js'
import { hopsd as clusterProto } from '../../src/proto/cluster.js'
import { REPO_ROOT, runHopsd, waitFor, type NodeHandle } from '../helpers/index.js'
import { CLUSTER_TEST_TIMEOUT_MS, useCluster } from '../cluster/harness.js'
import { hadoopClient, pythonEnv } from '../helpers/tools.js'
import { call, startPlainNode, type Answer } from './client.js'

const run = promisify(execFile)
const PYTHON_TIMEOUT_MS = 240_000
const cpb = clusterProto.cluster
const mpb = metaProto.meta

async function python(script: string, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(
      (await pythonEnv()).python,
      [join(REPO_ROOT, 'test/python', script), ...args],
      {
        timeout: PYTHON_TIMEOUT_MS,
        maxBuffer: 16 * 1024 * 1024,
      },
    )
    return stdout
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string }
    throw new Error(`${script} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`)
  }
}

describe.sequential('trust on a secure cluster', { timeout: CLUSTER_TEST_TIMEOUT_MS }, () => {
  const c = useCluster('trust', { auth: 'secure' })
  let metas: NodeHandle[] = []
  let dn: NodeHandle
  let all: NodeHandle[] = []
  let admin = ''
  let alice = ''
  let bob = ''
  const url = (n: NodeHandle) => n.url

  beforeAll(
    () =>
      c.guard(async () => {
        await pythonEnv() // made (or found) before any daemon starts: a cold pip install takes a while
        const started = await c.startMany(
          [{ zone: 'z1' }, { zone: 'z2' }, { zone: 'z3' }, { zone: 'z1', roles: ['datanode'] }].map((s) => ({
            ...s,
            roles: s.roles ?? ['metadata', 'datanode'],
          })),
          { bootstrapExpect: 3 },
        )
        metas = started.slice(0, 3)
        dn = started[3]!
        all = started
        admin = await c.adminKey(90_000)
        // Every node, the forwarding one included, knows the admin once the bootstrap is applied.
        await waitFor(
          async () => {
            for (const n of all) {
              const r = await call(url(n), 'GET', '/api/v1/cluster', { key: admin })
              if (r.status !== 200 || r.json().leader === null || r.json().voters.length !== 3) return false
            }
            return true
          },
          { timeoutMs: 90_000, intervalMs: 200, what: 'the admin key accepted by every node' },
        )
        for (const [name, groups] of [
          ['alice', ['staff']],
          ['bob', []],
        ] as const) {
          const r = await call(url(metas[1]!), 'POST', '/api/v1/users', {
            key: admin,
            body: { name, groups },
          })
          expect(r.status, r.text).toBe(201)
        }
        // `hopsd key create --user NAME` prints the key alone.
        const made = await runHopsd(
          ['key', 'create', '--user', 'alice', '--name', 'test', '--addr', url(metas[0]!)],
          {
            env: { HOPSD_KEY: admin },
            timeoutMs: 120_000,
          },
        )
        expect(made.code, made.stderr).toBe(0)
        expect(made.stdout).toMatch(/^hk\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}\n$/)
        alice = made.stdout.trim()
        bob = (
          await call(url(metas[2]!), 'POST', '/api/v1/keys', { key: admin, body: { user: 'bob' } })
        ).json().key
      }),
    300_000,
  )

  it('GET /api/v1/cluster says "auth": "secure"; user.name=hopsd is refused 401 on every node, and reads nothing', async () => {
    expect((await call(url(metas[0]!), 'GET', '/api/v1/cluster', { key: admin })).json().auth).toBe('secure')
    const put = await call(url(metas[0]!), 'PUT', '/api/v1/fs/files?path=/secret.txt', {
      key: admin,
      body: 'top secret',
      headers: { 'content-type': 'application/octet-stream' },
    })
    expect(put.status, put.text).toBe(201)
    for (const n of all) {
      const open = await call(url(n), 'GET', '/webhdfs/v1/secret.txt?op=OPEN&user.name=hopsd')
      expect(open.status, `${n.url}: ${open.text}`).toBe(401)
      expect(open.json().RemoteException.message).toMatch(/secure auth/)
      expect(open.text).not.toContain('top secret')
      const native = await call(url(n), 'GET', '/api/v1/fs/files?path=/secret.txt&user.name=hopsd')
      expect(native.status).toBe(401)
      expect(native.json().error.code).toBe('SIMPLE_AUTH_DISABLED')
      const mk = await call(url(n), 'PUT', '/webhdfs/v1/made-by-nobody?op=MKDIRS&user.name=hopsd')
      expect(mk.status).toBe(401)
      // Anonymous: /health open, /api/v1/node without private details, the rest closed.
      expect((await call(url(n), 'GET', '/health')).status).toBe(200)
      const node = await call(url(n), 'GET', '/api/v1/node')
      expect(node.status).toBe(200)
      expect(node.json()).not.toHaveProperty('dataDir')
      expect(node.json()).not.toHaveProperty('pid')
      expect((await call(url(n), 'GET', '/api/v1/cluster')).status).toBe(401)
    }
    const st = await call(url(metas[1]!), 'GET', '/webhdfs/v1/made-by-nobody?op=GETFILESTATUS', {
      key: admin,
    })
    expect(st.status).toBe(404)
  })

  it('a new user has /user/<name> owned by it; its key acts as it through every node, with its groups', async () => {
    for (const n of all) {
      const st = await call(url(n), 'GET', '/webhdfs/v1/user/alice?op=GETFILESTATUS', { key: alice })
      expect(st.status, st.text).toBe(200)
      expect(st.json().FileStatus).toMatchObject({ owner: 'alice', type: 'DIRECTORY' })
    }
    expect((await call(url(dn), 'PUT', '/webhdfs/v1/etc-alice?op=MKDIRS', { key: alice })).status).toBe(403)
    const out = await runHopsd(
      [
        'fs',
        'put',
        join(REPO_ROOT, 'package.json'),
        'pkg.json',
        '--addr',
        url(dn),
        '--key',
        await keyFile('alice', alice),
      ],
      { timeoutMs: 120_000 },
    )
    expect(out.code, out.stderr).toBe(0)
    const st = await call(url(metas[2]!), 'GET', '/webhdfs/v1/user/alice/pkg.json?op=GETFILESTATUS', {
      key: alice,
    })
    expect(st.json().FileStatus.owner).toBe('alice')
  })

  it('datanode drain: anonymous → 401, a non-admin → 403 (nothing changes), an admin → 200', async () => {
    const target = metas[2]!.id
    const path = `/api/v1/fs/datanodes/state?node=${encodeURIComponent(target)}&state=DRAINING`
    const anon = await call(url(metas[0]!), 'PUT', path)
    expect(anon.status, anon.text).toBe(401)
    const anonName = await call(url(metas[0]!), 'PUT', `${path}&user.name=hopsd`)
    expect(anonName.status).toBe(401)
    const byBob = await call(url(metas[0]!), 'PUT', path, { key: bob })
    expect(byBob.status, byBob.text).toBe(403)
    const health = await call(url(metas[0]!), 'GET', '/api/v1/fs/health', { key: admin })
    expect(health.json().datanodes.find((d: any) => d.id === target)?.state ?? 'NORMAL').toBe('NORMAL')
    const back = await call(url(metas[0]!), 'PUT', path.replace('DRAINING', 'NORMAL'), { key: admin })
    expect(back.status, back.text).toBe(200)
  })

  it("blocks and changes of a file the caller can't read: 403 and filtered out", async () => {
    const put = await call(
      url(metas[0]!),
      'PUT',
      '/api/v1/fs/files?path=/user/alice/private.bin&permission=600',
      {
        key: alice,
        body: Buffer.alloc(1000, 7),
        headers: { 'content-type': 'application/octet-stream' },
      },
    )
    expect(put.status, put.text).toBe(201)
    for (const n of [metas[1]!, dn]) {
      const blocks = await call(url(n), 'GET', '/api/v1/fs/blocks?path=/user/alice/private.bin', { key: bob })
      expect(blocks.status, blocks.text).toBe(403)
      expect((await call(url(n), 'GET', '/api/v1/fs/blocks?path=/user/alice/private.bin')).status).toBe(401)
      expect(
        (await call(url(n), 'GET', '/api/v1/fs/blocks?path=/user/alice/private.bin', { key: alice })).status,
      ).toBe(200)
    }
    const paths = async (key: string) =>
      (await call(url(metas[1]!), 'GET', '/api/v1/fs/changes?since=0&limit=10000', { key }))
        .json()
        .events.map((e: any) => e.path)
    expect(await paths(alice)).toContain('/user/alice/private.bin')
    expect(await paths(bob)).not.toContain('/user/alice/private.bin')
    // What a caller sees is what it could list: / is 0755, so the name /secret.txt is no secret.
    expect(await paths(bob)).toContain('/secret.txt')
    expect(await paths(admin)).toEqual(expect.arrayContaining(['/user/alice/private.bin', '/secret.txt']))
    expect((await call(url(metas[1]!), 'GET', '/api/v1/fs/changes?since=0')).status).toBe(401)
  })

  it('malformed, expired and revoked keys and tokens: 401 with the reason, and nothing changed', async () => {
    const short = (
      await call(url(metas[0]!), 'POST', '/api/v1/keys', { key: alice, body: { user: 'alice', expiresS: 1 } })
    ).json().key
    const token = (
      await call(url(metas[0]!), 'GET', '/webhdfs/v1/?op=GETDELEGATIONTOKEN', { key: alice })
    ).json().Token.urlString
    const cancelled = (
      await call(url(metas[0]!), 'GET', '/webhdfs/v1/?op=GETDELEGATIONTOKEN', { key: alice })
    ).json().Token.urlString
    expect(
      (
        await call(url(metas[1]!), 'PUT', `/webhdfs/v1/?op=CANCELDELEGATIONTOKEN&token=${cancelled}`, {
          key: alice,
        })
      ).status,
    ).toBe(200)
    const d = decodeTokenUrlString(token)!
    const altered = encodeTokenUrlString({ ...d, identifier: { ...d.identifier, owner: 'admin' } })
    await waitFor(
      async () =>
        (await call(url(metas[0]!), 'GET', '/webhdfs/v1/?op=GETHOMEDIRECTORY', { key: short })).status ===
        401,
      {
        timeoutMs: 10_000,
        what: 'the 1 s key to expire',
      },
    )
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ authorization: 'Bearer hk.nonsense' }, 'CREDENTIAL_INVALID', /malformed/],
      [{ authorization: `Bearer ${alice.slice(0, -3)}abc` }, 'CREDENTIAL_INVALID', /wrong secret/],
      [{ authorization: `Bearer ${short}` }, 'CREDENTIAL_EXPIRED', /expired/],
      [
        { authorization: 'Basic ' + Buffer.from(`admin:${alice}`).toString('base64') },
        'CREDENTIAL_INVALID',
        /not admin's/,
      ],
      [{ 'x-delegation': `delegation=${altered}` }, 'CREDENTIAL_INVALID', /altered/],
      [{ 'x-delegation': `delegation=${cancelled}` }, 'CREDENTIAL_REVOKED', /cancelled/],
      [{ 'x-delegation': 'delegation=AAAA' }, 'CREDENTIAL_INVALID', /malformed/],
    ]
    // From a source of their own: these deliberate failures (14 per node) would otherwise spend most of the
    // default source's failure budget (20 per minute per node) that the later tests' calls share.
    const from = '127.0.0.66'
    for (const n of [metas[0]!, dn]) {
      for (const [headers, code, why] of cases) {
        const q = headers['x-delegation'] ? `&${headers['x-delegation']}` : ''
        const h = { ...headers }
        delete h['x-delegation']
        const r = await call(url(n), 'PUT', `/webhdfs/v1/user/alice/should-not-exist?op=MKDIRS${q}`, {
          headers: h,
          from,
        })
        expect(r.status, `${code} via ${n.url}: ${r.text}`).toBe(401)
        expect(r.json().RemoteException.message).toMatch(why)
        const native = await call(url(n), 'GET', `/api/v1/keys${q ? `?${headers['x-delegation']}` : ''}`, {
          headers: h,
          from,
        })
        expect(native.status).toBe(401)
        if (q === '') expect(native.json().error.code).toBe(code)
      }
    }
    const st = await call(url(metas[2]!), 'GET', '/webhdfs/v1/user/alice/should-not-exist?op=GETFILESTATUS', {
      key: alice,
    })
    expect(st.status).toBe(404)
    expect(
      (await call(url(dn), 'GET', `/webhdfs/v1/?op=GETHOMEDIRECTORY&delegation=${token}`)).json(),
    ).toEqual({ Path: '/user/alice' })
  })

  it('a key revoked through one node is refused by every node at once', async () => {
    const k = (
      await call(url(metas[0]!), 'POST', '/api/v1/keys', {
        key: alice,
        body: { user: 'alice', name: 'revoke-me' },
      })
    ).json()
    for (const n of all)
      expect((await call(url(n), 'GET', '/webhdfs/v1/user/alice?op=LISTSTATUS', { key: k.key })).status).toBe(
        200,
      )
    const revoked = await call(url(dn), 'DELETE', `/api/v1/keys/${k.id}`, { key: alice })
    expect(revoked.status, revoked.text).toBe(200)
    // No wait: each node checks the key after a read barrier.
    const answers = await Promise.all(
      all.map((n) => call(url(n), 'GET', '/webhdfs/v1/user/alice?op=LISTSTATUS', { key: k.key })),
    )
    expect(answers.map((a) => a.status)).toEqual(all.map(() => 401))
    for (const a of answers) expect(a.json().RemoteException.message).toMatch(/revoked/)
  })

  it('a plain node with the swarm key cannot make the leader apply a command as another user', async () => {
    const plain = await startPlainNode(
      c.swarmKeyFile,
      c.started.slice(0, 3).map((n) => n.p2p),
      metas.map((m) => m.id),
    )
    try {
      const command = (extra: Partial<metaProto.meta.ICommand>) =>
        mpb.Command.encode({
          nowMs: Date.now(),
          user: 'admin',
          groups: ['admin'],
          mkdirs: { path: '/forged', permission: 0o777 },
          ...extra,
        }).finish()
      const attempts: [string, Uint8Array][] = [
        ['no credential', cpb.ProposeRequest.encode({ command: command({}), timeoutMs: 5_000 }).finish()],
        [
          'user.name',
          cpb.ProposeRequest.encode({ command: command({}), credential: { userName: 'admin' } }).finish(),
        ],
        [
          'a grant it signed',
          cpb.ProposeRequest.encode({
            command: command({
              mkdirs: undefined,
              createFile: {
                path: '/forged',
                data: new Uint8Array(1),
                close: true,
                createParent: true,
                permission: 0o644,
              },
            }),
            credential: {
              assertion: await signGrant(
                { nodeId: plain.id, sign: plain.sign },
                { user: 'admin', groups: ['admin'], via: 'key', superuser: true },
                { path: '/forged', ops: ['createFile'] },
                Date.now() + 60_000,
              ),
            },
          }).finish(),
        ],
      ]
      for (const [what, body] of attempts) {
        for (const m of metas) {
          const r = await plain.ask(m.id, '/hopsd/propose/1.0.0', body)
          const result = r.reply ? JSON.parse(cpb.ProposeReply.decode(r.reply).resultJson) : undefined
          expect(result?.ok, `${what} via ${m.id}: ${JSON.stringify(result ?? r)}`).not.toBe(true)
          // Refused at the peer gate (no node certificate: the stream is aborted, no reply), or — should
          // a peer get past it — by the propose handler's authentication.
          if (r.reply !== undefined)
            expect(result?.code, what).toMatch(/UNAUTHENTICATED|SIMPLE_AUTH_DISABLED|CREDENTIAL_INVALID/)
        }
      }
      // A block for someone else's file, as admin.
      const alloc = new TextEncoder().encode(
        JSON.stringify({
          path: '/user/alice/private.bin',
          user: 'admin',
          groups: ['admin'],
          clientName: 'x',
          writer: plain.id,
          exclude: [],
        }),
      )
      for (const m of metas) {
        const r = await plain.ask(m.id, '/hopsd/block-alloc/1.0.0', alloc)
        expect(r.reply, `block-alloc via ${m.id}`).toBeUndefined()
      }
      // Over HTTP: a write Location (hopsd.token) the plain node signed, for the datanode's data route,
      // naming admin and every term a metadata node's would.
      const forgedToken = await createWriteTokens({
        signer: { nodeId: plain.id, sign: plain.sign },
        verifier: { trusted: () => false, verify: async () => false },
      }).issue(
        { user: 'admin', groups: ['admin'], via: 'key', superuser: true },
        {
          op: 'CREATE',
          path: '/forged',
          create: {
            overwrite: true,
            createParent: true,
            mustExist: false,
            replication: 0,
            blockSize: 0,
            permission: 0o644,
          },
          inlineThreshold: 65_536,
          noLocalWrite: false,
          route: 'datanode',
          node: dn.id,
        },
      )
      const put = await call(
        url(dn),
        'PUT',
        `/api/v1/datanode/write/forged?op=CREATE&hopsd.token=${encodeURIComponent(forgedToken)}`,
        { body: 'forged' },
      )
      expect(put.status, put.text).toBe(403)
      expect(put.json().RemoteException.message).toMatch(/not a metadata node/)
      expect(
        (await call(url(metas[0]!), 'GET', '/webhdfs/v1/forged?op=GETFILESTATUS', { key: admin })).status,
      ).toBe(404)
    } finally {
      await plain.stop()
    }
  })

  it('failed authentications are limited per source address; other sources are not', async () => {
    const n = url(metas[1]!)
    let limited: Answer | undefined
    for (let i = 0; i < 40 && limited === undefined; i++) {
      const r = await call(n, 'GET', '/webhdfs/v1/?op=LISTSTATUS', {
        key: `hk.00000000000000${String(i).padStart(2, '0')}.${'A'.repeat(43)}`,
        from: '127.0.0.77',
      })
      if (r.status === 429) limited = r
      else expect(r.status).toBe(401)
    }
    expect(limited, 'no 429 after 40 failures').toBeDefined()
    expect(Number(limited!.headers['retry-after'])).toBeGreaterThan(0)
    // The limited source is refused even with a good key; another source is served.
    expect(
      (await call(n, 'GET', '/webhdfs/v1/user/alice?op=LISTSTATUS', { key: alice, from: '127.0.0.77' }))
        .status,
    ).toBe(429)
    expect(
      (await call(n, 'GET', '/webhdfs/v1/user/alice?op=LISTSTATUS', { key: alice, from: '127.0.0.78' }))
        .status,
    ).toBe(200)
    expect((await call(n, 'GET', '/health', { from: '127.0.0.77' })).status).toBe(200)
  })

  it('audit: each kind of event, in GET /api/v1/audit for admins only', async () => {
    const n = url(metas[1]!)
    const k = (
      await call(n, 'POST', '/api/v1/keys', { key: alice, body: { user: 'alice', name: 'audited' } })
    ).json()
    await call(n, 'DELETE', `/api/v1/keys/${k.id}`, { key: alice })
    const t = (await call(n, 'GET', '/webhdfs/v1/?op=GETDELEGATIONTOKEN', { key: alice })).json().Token
      .urlString
    await call(n, 'PUT', `/webhdfs/v1/?op=RENEWDELEGATIONTOKEN&token=${t}`, { key: alice })
    await call(n, 'PUT', `/webhdfs/v1/?op=CANCELDELEGATIONTOKEN&token=${t}`, { key: alice })
    await call(n, 'PUT', '/webhdfs/v1/not-yours?op=MKDIRS', { key: bob })
    await call(n, 'GET', '/webhdfs/v1/?op=LISTSTATUS&user.name=hopsd')
    await call(n, 'POST', '/api/v1/users', { key: admin, body: { name: 'carol' } })
    await call(n, 'DELETE', '/api/v1/users/carol', { key: admin })
    await call(n, 'PUT', '/api/v1/cluster/settings/leaseSoftLimitMs', { key: admin, body: { value: 60_000 } })
    expect((await call(n, 'GET', '/api/v1/audit', { key: bob })).status).toBe(403)
    expect((await call(n, 'GET', '/api/v1/audit')).status).toBe(401)
    const r = await call(n, 'GET', '/api/v1/audit?limit=10000', { key: admin })
    expect(r.status).toBe(200)
    const events = r.json().events as any[]
    const seen = new Set(events.map((e) => `${e.kind}/${e.decision}`))
    for (const kind of [
      'auth.failure/deny',
      'auth.rate-limited/deny',
      'access.denied/deny',
      'key.create/allow',
      'key.revoke/allow',
      'token.create/allow',
      'token.renew/allow',
      'token.cancel/allow',
      'user.add/allow',
      'user.remove/allow',
      'admin.operation/allow',
    ])
      expect(seen, kind).toContain(kind)
    expect(events.find((e) => e.kind === 'access.denied' && e.path === '/not-yours')).toMatchObject({
      user: 'bob',
      decision: 'deny',
    })
    expect(events.find((e) => e.kind === 'auth.rate-limited')?.source).toBe('127.0.0.77')
    expect(r.text).not.toContain(alice.split('.')[2])
  })

  it(
    "HdfsCLI's TokenClient: every op it supports, as a user who is not the superuser",
    async () => {
      const token = (
        await call(url(metas[0]!), 'GET', '/webhdfs/v1/?op=GETDELEGATIONTOKEN', { key: alice })
      ).json().Token.urlString
      // Through a metadata node and through the forwarding datanode-only node.
      for (const n of [metas[2]!, dn]) {
        const out = await python(
          'hdfscli_token_ops.py',
          url(n),
          `/user/alice/hdfscli-${n.id.slice(-6)}`,
          token,
          'alice',
          'staff',
        )
        expect(out).toContain('hdfscli token ok')
      }
      await call(url(metas[0]!), 'PUT', `/webhdfs/v1/?op=CANCELDELEGATIONTOKEN&token=${token}`, {
        key: alice,
      })
      const after = await call(url(dn), 'GET', `/webhdfs/v1/user/alice?op=LISTSTATUS&delegation=${token}`)
      expect(after.status).toBe(401)
    },
    PYTHON_TIMEOUT_MS * 2,
  )

  it(
    "Hadoop's own client (webhdfs://) with a hopsd delegation token: decodes it and writes, reads, lists",
    async () => {
      const { classpath } = await hadoopClient()
      const n = metas[0]!
      const { host } = new URL(url(n))
      // The token's service is the host:port Hadoop's token selector looks for (an IP address and port).
      const token = (
        await call(url(n), 'GET', `/webhdfs/v1/?op=GETDELEGATIONTOKEN&service=${host}`, { key: alice })
      ).json().Token.urlString
      try {
        const { stdout } = await run(
          'java',
          ['-cp', classpath, 'HadoopTokenOps', host, '/user/alice/hadoop-token', token, 'alice'],
          {
            timeout: PYTHON_TIMEOUT_MS,
            maxBuffer: 16 * 1024 * 1024,
          },
        )
        expect(stdout).toContain('hadoop token ok')
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string; message: string }
        throw new Error(
          `HadoopTokenOps failed: ${e.message}\n${e.stdout ?? ''}\n${(e.stderr ?? '').slice(-3000)}`,
        )
      }
    },
    PYTHON_TIMEOUT_MS * 2,
  )

  it(
    'fsspec writes a 12 MiB file and pandas an 8 MB frame with a key, as a non-superuser, byte-identical',
    async () => {
      const { hostname, port } = new URL(url(metas[1]!))
      const out = await python('fsspec_key_ops.py', hostname, port, '/user/alice/fsspec', alice, 'alice')
      expect(out).toContain('fsspec key ok')
    },
    PYTHON_TIMEOUT_MS,
  )
})

async function keyFile(name: string, key: string): Promise<string> {
  const { makeTempDir } = await import('../helpers/index.js')
  const file = join(makeTempDir('hopsd-trust-key-'), `${name}.key`)
  writeFileSync(file, key + '\n', { mode: 0o600 })
  return file
}
