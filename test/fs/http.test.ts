// The WebHDFS and native fs routes in-process (fastify inject) over a one-replica file system.
import { afterEach, describe, expect, it } from 'vitest'
import { createApiServer, createMetricsRegistry, type ApiServer } from '../../src/api/index.js'
import { fsRoutes } from '../../src/api/routes/fs.js'
import { webhdfsRoutes } from '../../src/api/routes/webhdfs.js'
import { createWriteTokens, localGrantKeys } from '../../src/api/routes/write-token.js'
import { metaProto } from '../../src/meta/index.js'
import { silentLogger } from '../../src/node/index.js'
import { makeFs } from './harness.js'

const servers: ApiServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

async function setup(tokenTtlMs = 60_000) {
  const env = makeFs()
  const clock = env.clock
  const api = await createApiServer({
    logger: silentLogger(),
    registry: createMetricsRegistry(),
    openapi: { title: 'hopsd', version: 'test' },
    routes: [
      webhdfsRoutes({
        fs: env.fs,
        tokens: createWriteTokens({ ...localGrantKeys('self'), ttlMs: tokenTtlMs, clock: () => clock.now }),
        clock: () => clock.now,
      }),
      fsRoutes({ fs: env.fs }),
    ],
  })
  servers.push(api)
  const app = api.app
  /** As the superuser unless the URL names a user.name (or carries a redirect token). */
  const call = async (
    method: string,
    url: string,
    body?: string | Buffer,
    headers: Record<string, string> = {},
  ) => {
    const asSu =
      url.startsWith('/webhdfs/') && !url.includes('user.name=')
        ? (url.includes('?') ? '&' : '?') + 'user.name=hopsd'
        : ''
    return app.inject({
      method: method as 'GET',
      url: url + asSu,
      payload: body,
      headers: { host: 'node1:9870', ...headers },
    })
  }
  /** The full two-step write: step one, then the data to the Location (no user.name on the second hop). */
  const write = async (op: 'CREATE' | 'APPEND', path: string, data: string, params = '', user = 'hopsd') => {
    const step1 = await call(
      op === 'CREATE' ? 'PUT' : 'POST',
      `/webhdfs/v1${path}?op=${op}&user.name=${user}${params}`,
    )
    expect(step1.statusCode).toBe(307)
    const loc = new URL(step1.headers.location as string)
    expect(loc.host).toBe('node1:9870')
    return call(op === 'CREATE' ? 'PUT' : 'POST', loc.pathname + loc.search, data, {
      'content-type': 'application/octet-stream',
    })
  }
  return { ...env, app, call, write }
}

describe('WebHDFS', () => {
  it('CREATE (two steps, 307 then 201), APPEND (307 then 200), OPEN with Content-Length, GETFILESTATUS', async () => {
    const { call, write } = await setup()
    const created = await write(
      'CREATE',
      '/data/a.txt',
      'hello',
      '&overwrite=false&permission=640&tempdir=/ignored',
    )
    expect(created.statusCode).toBe(201)
    expect((await write('APPEND', '/data/a.txt', ' world')).statusCode).toBe(200)
    const open = await call('GET', '/webhdfs/v1/data/a.txt?op=OPEN&user.name=hopsd')
    expect(open.statusCode).toBe(200)
    expect(open.headers['content-length']).toBe('11')
    expect(open.body).toBe('hello world')
    expect((await call('GET', '/webhdfs/v1/data/a.txt?op=open&offset=6&length=3')).body).toBe('wor')
    const st = await call('GET', '/webhdfs/v1/data/a.txt?op=GETFILESTATUS')
    expect(st.json()).toEqual({
      FileStatus: {
        accessTime: expect.any(Number),
        blockSize: 134217728,
        childrenNum: 0,
        fileId: expect.any(Number),
        group: 'supergroup',
        length: 11,
        modificationTime: expect.any(Number),
        owner: 'hopsd',
        pathSuffix: '',
        permission: '640',
        replication: 3,
        storagePolicy: 0,
        type: 'FILE',
      },
    })
    // an empty CREATE body (fsspec's first step) makes an empty file
    expect((await write('CREATE', '/data/empty', '')).statusCode).toBe(201)
    expect((await call('GET', '/webhdfs/v1/data/empty?op=GETFILESTATUS')).json().FileStatus.length).toBe(0)
  })

  it('noredirect=true answers the Location as JSON', async () => {
    const { call } = await setup()
    const r = await call('PUT', '/webhdfs/v1/f?op=CREATE&noredirect=true&user.name=alice')
    expect(r.statusCode).toBe(200)
    const loc = new URL(r.json().Location)
    // The token carries the caller: HdfsCLI adds its own user.name to the Location, and a repeated
    // parameter is refused.
    expect(loc.searchParams.has('user.name')).toBe(false)
    expect(loc.searchParams.has('noredirect')).toBe(false)
    const step2 = await call('PUT', loc.pathname + loc.search, 'x')
    expect(step2.statusCode).toBe(403) // alice may not write in / (hopsd 0755)
    expect(step2.json().RemoteException.exception).toBe('AccessControlException')
  })

  it('redirect tokens cannot be forged, altered, replayed or used late', async () => {
    const { call, clock } = await setup(1000)
    const step1 = await call('PUT', '/webhdfs/v1/t?op=CREATE&user.name=hopsd')
    const loc = new URL(step1.headers.location as string)
    const altered = new URL(loc)
    altered.searchParams.set('user.name', 'mallory')
    altered.searchParams.set('overwrite', 'true')
    expect((await call('PUT', altered.pathname + altered.search, 'x')).statusCode).toBe(403)
    const forged = new URL(loc)
    forged.searchParams.set('hopsd.token', 'aG9wc2Q.9999999999999.nonce.c2ln')
    expect((await call('PUT', forged.pathname + forged.search, 'x')).statusCode).toBe(403)
    // The token's payload changed (another user, a larger inline threshold), its signature kept.
    const [prefix, payload, sig] = loc.searchParams.get('hopsd.token')!.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
      u: string
      t: Record<string, unknown>
    }
    expect(claims.u).toBe('hopsd')
    for (const changed of [
      { ...claims, u: 'mallory' },
      { ...claims, t: { ...claims.t, inline: 1_600_000_000 } },
    ]) {
      const resigned = new URL(loc)
      resigned.searchParams.set(
        'hopsd.token',
        `${prefix}.${Buffer.from(JSON.stringify(changed)).toString('base64url')}.${sig}`,
      )
      const r = await call('PUT', resigned.pathname + resigned.search, 'x')
      expect(r.statusCode).toBe(403)
      expect(r.json().RemoteException.message).toMatch(/signature/)
    }
    const otherPath = new URL(loc)
    otherPath.pathname = '/webhdfs/v1/elsewhere'
    expect((await call('PUT', otherPath.pathname + otherPath.search, 'x')).statusCode).toBe(403)
    expect((await call('PUT', loc.pathname + loc.search, 'x')).statusCode).toBe(201)
    const replay = await call('PUT', loc.pathname + loc.search, 'x')
    expect(replay.statusCode).toBe(403)
    expect(replay.json().RemoteException.message).toMatch(/already used/)
    const late = new URL(
      (await call('PUT', '/webhdfs/v1/t2?op=CREATE&user.name=hopsd')).headers.location as string,
    )
    clock.now += 1000
    expect((await call('PUT', late.pathname + late.search, 'x')).json().RemoteException.message).toMatch(
      /expired/,
    )
  })

  it('LISTSTATUS, LISTSTATUS_BATCH with startAfter, GETCONTENTSUMMARY, GETFILECHECKSUM, GETHOMEDIRECTORY', async () => {
    const { fs, call } = await setup()
    const su = { user: 'hopsd', groups: [] }
    for (const n of ['b', 'a', 'c']) await fs.create(su, `/d/${n}`, new TextEncoder().encode(n))
    await fs.mkdirs(su, '/d/sub')
    const ls = (await call('GET', '/webhdfs/v1/d?op=LISTSTATUS')).json()
    expect(ls.FileStatuses.FileStatus.map((s: { pathSuffix: string }) => s.pathSuffix)).toEqual([
      'a',
      'b',
      'c',
      'sub',
    ])
    expect(ls.FileStatuses.FileStatus[3]).toMatchObject({ type: 'DIRECTORY', permission: '755', length: 0 })
    const lsFile = (await call('GET', '/webhdfs/v1/d/a?op=LISTSTATUS')).json()
    expect(lsFile.FileStatuses.FileStatus).toHaveLength(1)
    expect(lsFile.FileStatuses.FileStatus[0].pathSuffix).toBe('')
    const batch = (await call('GET', '/webhdfs/v1/d?op=LISTSTATUS_BATCH&startAfter=a')).json()
    expect(
      batch.DirectoryListing.partialListing.FileStatuses.FileStatus.map(
        (s: { pathSuffix: string }) => s.pathSuffix,
      ),
    ).toEqual(['b', 'c', 'sub'])
    expect(batch.DirectoryListing.remainingEntries).toBe(0)
    expect((await call('GET', '/webhdfs/v1/d?op=GETCONTENTSUMMARY')).json()).toEqual({
      ContentSummary: {
        directoryCount: 2,
        ecPolicy: '',
        fileCount: 3,
        length: 3,
        quota: -1,
        snapshotDirectoryCount: 0,
        snapshotFileCount: 0,
        snapshotLength: 0,
        snapshotSpaceConsumed: 0,
        spaceConsumed: 9,
        spaceQuota: -1,
        typeQuota: {},
      },
    })
    const sum = (await call('GET', '/webhdfs/v1/d/a?op=GETFILECHECKSUM')).json()
    expect(sum.FileChecksum).toMatchObject({ algorithm: 'MD5-of-0MD5-of-512CRC32C', length: 28 })
    expect(sum.FileChecksum.bytes).toMatch(/^00000200[0-9a-f]{48}$/)
    expect((await call('GET', '/webhdfs/v1/?op=GETHOMEDIRECTORY&user.name=alice')).json()).toEqual({
      Path: '/user/alice',
    })
    expect((await call('GET', '/webhdfs/v1?op=GETFILESTATUS')).json().FileStatus.type).toBe('DIRECTORY')
  })

  it('MKDIRS, RENAME, SETREPLICATION booleans; SET* answer 200; DELETE recursive', async () => {
    const { call } = await setup()
    expect((await call('PUT', '/webhdfs/v1/x/y?op=MKDIRS&permission=700')).json()).toEqual({ boolean: true })
    expect((await call('GET', '/webhdfs/v1/x/y?op=GETFILESTATUS')).json().FileStatus.permission).toBe('700')
    expect((await call('PUT', '/webhdfs/v1/x/y?op=RENAME&destination=/x/z')).json()).toEqual({
      boolean: true,
    })
    expect((await call('PUT', '/webhdfs/v1/x/nope?op=RENAME&destination=/x/w')).json()).toEqual({
      boolean: false,
    })
    expect((await call('PUT', '/webhdfs/v1/x/z?op=SETREPLICATION&replication=2')).json()).toEqual({
      boolean: false,
    }) // a directory
    expect((await call('PUT', '/webhdfs/v1/x/z?op=SETPERMISSION&permission=1777')).statusCode).toBe(200)
    expect((await call('PUT', '/webhdfs/v1/x/z?op=SETOWNER&owner=alice&group=staff')).statusCode).toBe(200)
    expect(
      (await call('PUT', '/webhdfs/v1/x/z?op=SETTIMES&modificationtime=5&accesstime=-1')).statusCode,
    ).toBe(200)
    expect((await call('GET', '/webhdfs/v1/x/z?op=GETFILESTATUS')).json().FileStatus).toMatchObject({
      permission: '1777',
      owner: 'alice',
      group: 'staff',
      modificationTime: 5,
    })
    const notEmpty = await call('DELETE', '/webhdfs/v1/x?op=DELETE')
    expect(notEmpty.statusCode).toBe(403)
    expect(notEmpty.json().RemoteException).toMatchObject({
      exception: 'PathIsNotEmptyDirectoryException',
      javaClassName: 'org.apache.hadoop.fs.PathIsNotEmptyDirectoryException',
    })
    expect((await call('DELETE', '/webhdfs/v1/x?op=DELETE&recursive=true')).json()).toEqual({ boolean: true })
    expect((await call('DELETE', '/webhdfs/v1/x?op=DELETE&recursive=true')).json()).toEqual({
      boolean: false,
    })
  })

  it('xattrs: SETXATTR flags, GETXATTRS encodings, LISTXATTRS as a JSON string, REMOVEXATTR', async () => {
    const { call, write } = await setup()
    await write('CREATE', '/f', 'x')
    expect(
      (await call('PUT', '/webhdfs/v1/f?op=SETXATTR&xattr.name=user.a&xattr.value=%22v1%22&flag=CREATE'))
        .statusCode,
    ).toBe(200)
    expect(
      (await call('PUT', '/webhdfs/v1/f?op=SETXATTR&xattr.name=user.a&xattr.value=0x0102&flag=CREATE'))
        .statusCode,
    ).toBe(403)
    expect(
      (await call('PUT', '/webhdfs/v1/f?op=SETXATTR&xattr.name=user.a&xattr.value=0x0102&flag=REPLACE'))
        .statusCode,
    ).toBe(200)
    expect(
      (await call('PUT', '/webhdfs/v1/f?op=SETXATTR&xattr.name=user.b&xattr.value=plain')).statusCode,
    ).toBe(200)
    expect((await call('GET', '/webhdfs/v1/f?op=GETXATTRS&encoding=hex')).json()).toEqual({
      XAttrs: [
        { name: 'user.a', value: '0x0102' },
        { name: 'user.b', value: '0x706c61696e' },
      ],
    })
    expect((await call('GET', '/webhdfs/v1/f?op=GETXATTRS&xattr.name=user.b&encoding=text')).json()).toEqual({
      XAttrs: [{ name: 'user.b', value: '"plain"' }],
    })
    expect(
      (
        await call('GET', '/webhdfs/v1/f?op=GETXATTRS&xattr.name=user.a&xattr.name=user.b&encoding=base64')
      ).json().XAttrs,
    ).toHaveLength(2)
    expect((await call('GET', '/webhdfs/v1/f?op=LISTXATTRS')).json()).toEqual({
      XAttrNames: '["user.a","user.b"]',
    })
    expect((await call('PUT', '/webhdfs/v1/f?op=REMOVEXATTR&xattr.name=user.a')).statusCode).toBe(200)
    expect((await call('GET', '/webhdfs/v1/f?op=LISTXATTRS')).json()).toEqual({ XAttrNames: '["user.b"]' })
  })

  it('bad input answers a RemoteException, never a crash and never a partial change', async () => {
    const { call, sm } = await setup()
    const before = sm.snapshot()
    const cases: Array<[string, string, number, string]> = [
      ['GET', '/webhdfs/v1/a%2F..%2Fb?op=GETFILESTATUS', 400, 'InvalidPathException'],
      ['GET', '/webhdfs/v1/a//b?op=GETFILESTATUS', 400, 'InvalidPathException'],
      ['GET', '/webhdfs/v1/a%2F.%2Fb?op=GETFILESTATUS', 400, 'InvalidPathException'],
      ['PUT', '/webhdfs/v1/a%00b?op=MKDIRS', 400, 'InvalidPathException'],
      ['PUT', '/webhdfs/v1/a%0Ab?op=MKDIRS', 400, 'InvalidPathException'],
      ['PUT', `/webhdfs/v1/${'n'.repeat(256)}?op=MKDIRS`, 400, 'InvalidPathException'],
      [
        'PUT',
        `/webhdfs/v1/${Array.from({ length: 90 }, () => 'p'.repeat(99)).join('/')}?op=MKDIRS`,
        400,
        'InvalidPathException',
      ],
      ['GET', '/webhdfs/v1/?op=NOSUCHOP', 400, 'IllegalArgumentException'],
      ['GET', '/webhdfs/v1/', 400, 'IllegalArgumentException'],
      ['GET', '/webhdfs/v1/x?op=MKDIRS', 400, 'IllegalArgumentException'], // wrong method
      ['DELETE', '/webhdfs/v1/x?op=GETFILESTATUS', 400, 'IllegalArgumentException'],
      ['GET', '/webhdfs/v1/?op=GETACLSTATUS', 400, 'UnsupportedOperationException'],
      ['GET', '/webhdfs/v1/?op=GETFILEBLOCKLOCATIONS', 404, 'FileNotFoundException'], // a directory
      ['DELETE', '/webhdfs/v1/x?op=DELETE&=true', 400, 'IllegalArgumentException'], // a nameless parameter
      ['PUT', '/webhdfs/v1/x?op=MKDIRS&permission=8&permission=600', 400, 'IllegalArgumentException'],
      ['PUT', '/webhdfs/v1/x?op=CREATE&createflag=create,nonsense', 400, 'IllegalArgumentException'],
      ['PUT', '/webhdfs/v1/x?op=CREATE&createflag=append,overwrite', 400, 'IllegalArgumentException'],
      ['PUT', '/webhdfs/v1/x?op=CREATE&blocksize=0', 400, 'IllegalArgumentException'],
      ['PUT', '/webhdfs/v1/x?op=CREATE&buffersize=-1', 400, 'IllegalArgumentException'],
      ['PUT', '/webhdfs/v1/x?op=SETQUOTA&namespacequota=-5', 400, 'IllegalArgumentException'],
      [
        'PUT',
        '/webhdfs/v1/x?op=SETQUOTABYSTORAGETYPE&storagetype=RAM_DISK&storagespacequota=5',
        400,
        'IllegalArgumentException',
      ],
      ['POST', '/webhdfs/v1/x?op=TRUNCATE', 400, 'IllegalArgumentException'],
      ['POST', '/webhdfs/v1/x?op=CONCAT', 400, 'IllegalArgumentException'],
      ['GET', '/webhdfs/v1/x?op=CHECKACCESS&fsaction=rwz', 400, 'IllegalArgumentException'],
      ['PUT', '/webhdfs/v1/x?op=MKDIRS&permission=999', 400, 'IllegalArgumentException'],
      ['PUT', '/webhdfs/v1/x?op=CREATE&replication=abc', 400, 'IllegalArgumentException'],
      ['PUT', '/webhdfs/v1/x?op=SETREPLICATION&replication=-3', 400, 'IllegalArgumentException'],
      ['GET', '/webhdfs/v1/x?op=OPEN&offset=1e3', 400, 'IllegalArgumentException'],
      ['DELETE', '/webhdfs/v1/x?op=DELETE&recursive=maybe', 400, 'IllegalArgumentException'],
      ['PUT', '/webhdfs/v1/x?op=RENAME', 400, 'IllegalArgumentException'],
      ['GET', '/webhdfs/v1/missing?op=GETFILESTATUS', 404, 'FileNotFoundException'],
      ['PUT', '/webhdfs/v1/x?op=SETXATTR&xattr.name=bad&xattr.value=1', 400, 'IllegalArgumentException'],
    ]
    for (const [method, url, status, exception] of cases) {
      const r = await call(method, url)
      expect([url, r.statusCode]).toEqual([url, status])
      expect(r.json().RemoteException).toMatchObject({
        exception,
        javaClassName: expect.stringContaining(exception),
      })
    }
    const tables = (snap: Uint8Array): unknown => metaProto.meta.Snapshot.decode(snap).tables // all but appliedIndex
    expect(tables(sm.snapshot())).toEqual(tables(before))
  })

  it('writing past the inline threshold fails with a clear error', async () => {
    const { write, fs } = await setup()
    await fs.setSetting({ user: 'hopsd', groups: [] }, 'inlineThreshold', '10')
    const r = await write('CREATE', '/big', 'x'.repeat(11))
    expect(r.statusCode).toBe(413)
    expect(r.json().RemoteException.message).toMatch(/inlineThreshold/)
  })
})

describe('native fs API', () => {
  it('PUT /api/v1/fs/files writes in one request; stat says inlined; GET reads it back', async () => {
    const { call, sm } = await setup()
    const before = sm.appliedIndex
    const put = await call('PUT', '/api/v1/fs/files?path=/n/a.bin&user.name=hopsd', Buffer.from([1, 2, 3]), {
      'content-type': 'application/octet-stream',
    })
    expect(put.statusCode).toBe(201)
    expect(put.json()).toMatchObject({ size: 3 })
    expect(sm.appliedIndex).toBe(before + 1)
    const st = await call('GET', '/api/v1/fs/stat?path=/n/a.bin')
    expect(st.json()).toMatchObject({
      path: '/n/a.bin',
      type: 'FILE',
      length: 3,
      inlined: true,
      permission: '644',
      leaseHolder: null,
    })
    const get = await call('GET', '/api/v1/fs/files?path=/n/a.bin&offset=1')
    expect([...get.rawPayload]).toEqual([2, 3])
    const dup = await call('PUT', '/api/v1/fs/files?path=/n/a.bin&user.name=hopsd', Buffer.from([9]), {
      'content-type': 'application/octet-stream',
    })
    expect(dup.statusCode).toBe(403)
    expect(dup.json()).toMatchObject({ error: { code: 'FILE_ALREADY_EXISTS' } })
    expect((await call('GET', '/api/v1/fs/stat?path=/n/../x')).json()).toMatchObject({
      error: { code: 'INVALID_PATH' },
    })
    expect((await call('GET', '/api/v1/fs/stat?path=/none')).statusCode).toBe(404)
  })

  it('PUT /api/v1/fs/files with clientId+seq: a retry answers the first result, applied once', async () => {
    const { call, sm } = await setup()
    const octet = { 'content-type': 'application/octet-stream' }
    const url = (seq: number | string, path = '/i/a') =>
      `/api/v1/fs/files?path=${path}&user.name=hopsd&clientId=c-1&seq=${seq}`
    const first = await call('PUT', url(1), Buffer.from('abc'), octet)
    expect(first.statusCode).toBe(201)
    const applied = sm.appliedIndex
    const retry = await call('PUT', url(1), Buffer.from('abc'), octet)
    expect(retry.statusCode).toBe(201)
    expect(retry.json()).toEqual(first.json())
    expect(sm.appliedIndex).toBe(applied) // not proposed again
    // Another seq is another write: the path exists now.
    const next = await call('PUT', url(2), Buffer.from('abc'), octet)
    expect(next.json()).toMatchObject({ error: { code: 'FILE_ALREADY_EXISTS' } })
    expect((await call('GET', '/api/v1/fs/changes?since=0')).json().events).toHaveLength(1)
    // Another user's same clientId+seq is another session: no replay of hopsd's result.
    const eve = await call(
      'PUT',
      url(1).replace('user.name=hopsd', 'user.name=eve'),
      Buffer.from('abc'),
      octet,
    )
    expect(eve.statusCode).toBe(403)
    expect(eve.json().error.code).toBe('ACCESS_DENIED')
    // Both or neither.
    for (const half of ['clientId=c-1', 'seq=3']) {
      const r = await call(
        'PUT',
        `/api/v1/fs/files?path=/i/b&user.name=hopsd&${half}`,
        Buffer.from('x'),
        octet,
      )
      expect(r.statusCode).toBe(400)
      expect(r.json().error.code).toBe('BAD_REQUEST')
    }
    expect((await call('PUT', url(0, '/i/c'), Buffer.from('x'), octet)).statusCode).toBe(400)
  })

  it('GET /api/v1/fs/changes lists events and long-polls for the next one', async () => {
    const { call, fs } = await setup()
    await fs.mkdirs({ user: 'hopsd', groups: [] }, '/c1')
    const first = (await call('GET', '/api/v1/fs/changes?since=0')).json()
    expect(first.events).toEqual([expect.objectContaining({ op: 'mkdirs', path: '/c1', user: 'hopsd' })])
    const polling = call('GET', `/api/v1/fs/changes?since=${first.lastIndex}&waitMs=10000`)
    await fs.mkdirs({ user: 'hopsd', groups: [] }, '/c2')
    const next = (await polling).json()
    expect(next.events.map((e: { path: string }) => e.path)).toEqual(['/c2'])
    const empty = (await call('GET', `/api/v1/fs/changes?since=${next.lastIndex}&waitMs=1`)).json()
    expect(empty.events).toEqual([])
  })
})

describe('WebHDFS parameters: one parser, Hadoop rules, both steps', () => {
  it('refuses a nameless parameter: it no longer fills in recursive or the user', async () => {
    const { call, fs } = await setup()
    await fs.mkdirs({ user: 'hopsd', groups: [] }, '/dir/sub')
    await fs.create({ user: 'hopsd', groups: [] }, '/secret', new TextEncoder().encode('s'), {
      permission: 0o600,
    })
    const del = await call('DELETE', '/webhdfs/v1/dir?op=DELETE&user.name=hopsd&=true')
    expect(del.statusCode).toBe(400)
    expect(del.json().RemoteException.message).toMatch(/empty name/)
    expect((await fs.stat({ user: 'hopsd', groups: [] }, '/dir/sub')).type).toBe('DIRECTORY')
    const read = await call('GET', '/webhdfs/v1/secret?op=OPEN&user.name=eve&=hopsd')
    expect(read.statusCode).toBe(400)
  })

  it('reads names and booleans case-insensitively, the same way in both steps', async () => {
    const { call, write } = await setup()
    expect((await write('CREATE', '/c/f', 'one')).statusCode).toBe(201)
    // OP=CREATE and overwrite=TRUE: step one and step two agree (the file is replaced).
    const step1 = await call('PUT', '/webhdfs/v1/c/f?OP=CREATE&OverWrite=TRUE&user.name=hopsd')
    expect(step1.statusCode).toBe(307)
    const loc = new URL(step1.headers.location as string)
    const step2 = await call('PUT', loc.pathname + loc.search, 'two', {
      'content-type': 'application/octet-stream',
    })
    expect(step2.statusCode).toBe(201)
    expect((await call('GET', '/webhdfs/v1/c/f?op=open')).body).toBe('two')
  })

  it('refuses a repeated parameter (permission=8&permission=600 made mode 000) before anything is written', async () => {
    const { call } = await setup()
    for (const q of [
      'permission=8&permission=600',
      'permission=1777&permission=600',
      'overwrite=true&OVERWRITE=false',
    ]) {
      const r = await call('PUT', `/webhdfs/v1/rep/f?op=CREATE&${q}`)
      expect([q, r.statusCode]).toEqual([q, 400])
    }
    expect((await call('GET', '/webhdfs/v1/rep?op=GETFILESTATUS')).statusCode).toBe(404)
  })

  it('step one answers 307 with no body; a parameter added to the Location is refused', async () => {
    const { call } = await setup()
    const step1 = await call('PUT', '/webhdfs/v1/loc/f?op=CREATE&user.name=hopsd')
    expect(step1.statusCode).toBe(307)
    expect(step1.headers['content-length']).toBe('0')
    expect(step1.body).toBe('')
    const loc = new URL(step1.headers.location as string)
    const again = await call('PUT', `${loc.pathname}${loc.search}&overwrite=true`, 'x')
    expect(again.statusCode).toBe(403)
  })
})

describe('WebHDFS CREATE parameters', () => {
  it('createparent=false answers 404 when the parent is missing; createflag decides overwrite', async () => {
    const { call, write } = await setup()
    const missing = await call('PUT', '/webhdfs/v1/np/a/f?op=CREATE&createparent=false')
    // Checked where the file is made (step two), as the NameNode does; nothing is left behind.
    const loc = new URL(missing.headers.location as string)
    const r = await call('PUT', loc.pathname + loc.search, 'x')
    expect(r.statusCode).toBe(404)
    expect(r.json().RemoteException).toMatchObject({
      exception: 'FileNotFoundException',
      message: "Parent directory doesn't exist: /np/a",
    })
    expect((await call('GET', '/webhdfs/v1/np?op=GETFILESTATUS')).statusCode).toBe(404)
    expect((await write('CREATE', '/cf/f', 'one')).statusCode).toBe(201)
    // Hadoop's createFile(p).overwrite(true): createflag=CREATE,OVERWRITE with createparent=false.
    const over = await write('CREATE', '/cf/f', 'two', '&createflag=CREATE,OVERWRITE&createparent=false')
    expect(over.statusCode).toBe(201)
    expect((await call('GET', '/webhdfs/v1/cf/f?op=OPEN')).body).toBe('two')
    const noOver = await write('CREATE', '/cf/f', 'three', '&createflag=create')
    expect(noOver.statusCode).toBe(403)
    expect(noOver.json().RemoteException.exception).toBe('FileAlreadyExistsException')
    // A flag set without CREATE only replaces an existing file.
    const onlyOver = await write('CREATE', '/cf/new', 'x', '&createflag=overwrite')
    expect(onlyOver.statusCode).toBe(404)
    // buffersize is accepted; blocksize down to the cluster's minBlockSize.
    expect((await write('CREATE', '/cf/b', 'x', '&buffersize=4096&blocksize=1048576')).statusCode).toBe(201)
    const small = await write('CREATE', '/cf/s', 'x', '&blocksize=65536')
    expect(small.statusCode).toBe(400)
    expect(small.json().RemoteException.message).toMatch(/minBlockSize/)
  })
})

describe('WebHDFS ops for Hadoop clients', () => {
  it('GETFILEBLOCKLOCATIONS and GET_BLOCK_LOCATIONS in Hadoop JSON (a file kept inline: one piece here)', async () => {
    const { call, write } = await setup()
    await write('CREATE', '/bl/f', 'hello')
    const locs = (await call('GET', '/webhdfs/v1/bl/f?op=GETFILEBLOCKLOCATIONS')).json()
    expect(locs).toEqual({
      BlockLocations: {
        BlockLocation: [
          {
            cachedHosts: [],
            corrupt: false,
            hosts: ['node1'],
            length: 5,
            names: ['node1:9870'],
            offset: 0,
            storageIds: ['DS-self'],
            storageTypes: ['DISK'],
            topologyPaths: ['/default-rack/node1:9870'],
          },
        ],
      },
    })
    const lb = (await call('GET', '/webhdfs/v1/bl/f?op=GET_BLOCK_LOCATIONS&offset=0&length=5')).json()
    expect(lb.LocatedBlocks).toMatchObject({
      fileLength: 5,
      isUnderConstruction: false,
      isLastBlockComplete: true,
    })
    expect(lb.LocatedBlocks.locatedBlocks[0]).toMatchObject({
      block: { blockId: 0, numBytes: 5, generationStamp: 0 },
      isCorrupt: false,
      startOffset: 0,
      locations: [
        expect.objectContaining({ hostName: 'node1', ipAddr: 'node1', xferPort: 9870, infoPort: 9870 }),
      ],
    })
    expect(
      (await call('GET', '/webhdfs/v1/bl/f?op=GETFILEBLOCKLOCATIONS&offset=5')).json().BlockLocations
        .BlockLocation,
    ).toEqual([])
  })

  it('quotas over WebHDFS: SETQUOTA, SETQUOTABYSTORAGETYPE, GETQUOTAUSAGE, NSQuotaExceededException', async () => {
    const { call, write } = await setup()
    await call('PUT', '/webhdfs/v1/q?op=MKDIRS')
    expect(
      (await call('PUT', '/webhdfs/v1/q?op=SETQUOTA&namespacequota=2&storagespacequota=9223372036854775807'))
        .statusCode,
    ).toBe(200)
    expect(
      (await call('PUT', '/webhdfs/v1/q?op=SETQUOTABYSTORAGETYPE&storagetype=disk&storagespacequota=1000'))
        .statusCode,
    ).toBe(200)
    expect((await write('CREATE', '/q/a', 'abc')).statusCode).toBe(201)
    const over = await write('CREATE', '/q/b', 'abc')
    expect(over.statusCode).toBe(403)
    expect(over.json().RemoteException).toEqual({
      exception: 'NSQuotaExceededException',
      javaClassName: 'org.apache.hadoop.hdfs.protocol.NSQuotaExceededException',
      message:
        'The NameSpace quota (directories and files) of directory /q is exceeded: quota=2 file count=3',
    })
    expect((await call('GET', '/webhdfs/v1/q?op=GETQUOTAUSAGE')).json()).toEqual({
      QuotaUsage: {
        fileAndDirectoryCount: 2,
        quota: 2,
        spaceConsumed: 9,
        spaceQuota: -1,
        typeQuota: { DISK: { quota: 1000, consumed: 9 } },
      },
    })
    expect((await call('PUT', '/webhdfs/v1/q?op=SETQUOTA&namespacequota=5&user.name=alice')).statusCode).toBe(
      403,
    )
  })

  it('CONCAT, TRUNCATE, CHECKACCESS, GETTRASHROOT, GETSERVERDEFAULTS, GETSTATUS', async () => {
    const { call, write } = await setup()
    await write('CREATE', '/cc/t', 'T')
    await write('CREATE', '/cc/a', 'aa')
    await write('CREATE', '/cc/b', 'bbb')
    const concat = await call('POST', '/webhdfs/v1/cc/t?op=CONCAT&sources=/cc/a,/cc/b')
    expect(concat.statusCode).toBe(200)
    expect((await call('GET', '/webhdfs/v1/cc/t?op=OPEN')).body).toBe('Taabbb')
    expect((await call('GET', '/webhdfs/v1/cc/a?op=GETFILESTATUS')).statusCode).toBe(404)
    expect((await call('POST', '/webhdfs/v1/cc/t?op=TRUNCATE&newlength=3')).json()).toEqual({ boolean: true })
    expect((await call('GET', '/webhdfs/v1/cc/t?op=OPEN')).body).toBe('Taa')
    expect((await call('GET', '/webhdfs/v1/cc/t?op=CHECKACCESS&fsaction=rw-')).statusCode).toBe(200)
    const denied = await call('GET', '/webhdfs/v1/cc/t?op=CHECKACCESS&fsaction=-w-&user.name=eve')
    expect(denied.statusCode).toBe(403)
    expect(denied.json().RemoteException.exception).toBe('AccessControlException')
    expect((await call('GET', '/webhdfs/v1/cc?op=GETTRASHROOT&user.name=alice')).json()).toEqual({
      Path: '/user/alice/.Trash',
    })
    expect((await call('GET', '/webhdfs/v1/?op=GETSERVERDEFAULTS')).json().FsServerDefaults).toMatchObject({
      blockSize: 134217728,
      replication: 3,
      bytesPerChecksum: 512,
      checksumType: 2,
      trashInterval: 0,
    })
    expect((await call('GET', '/webhdfs/v1/?op=GETSTATUS')).json()).toEqual({
      FsStatus: { capacity: 0, remaining: 0, used: 0 },
    })
  })

  it('answers 405 with Allow for a method a route does not have', async () => {
    const { app } = await setup()
    const patch = await app.inject({ method: 'PATCH', url: '/webhdfs/v1/x?op=GETFILESTATUS' })
    expect(patch.statusCode).toBe(405)
    expect(patch.headers['allow']).toBe('DELETE, GET, HEAD, POST, PUT')
    expect(patch.json().RemoteException.exception).toBe('UnsupportedOperationException')
    const put = await app.inject({ method: 'PUT', url: '/api/v1/fs/stat?path=/' })
    expect(put.statusCode).toBe(405)
    expect(put.headers['allow']).toBe('GET, HEAD')
    expect(put.json().error.code).toBe('METHOD_NOT_ALLOWED')
    expect((await app.inject({ method: 'GET', url: '/no/such/route' })).statusCode).toBe(404)
  })

  it('documents op as an enum per method, 307 without a body, and request bodies', async () => {
    const { app } = await setup()
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
    const put = doc.paths['/webhdfs/v1/{*}'].put
    const op = put.parameters.find((p: { name: string }) => p.name === 'op')
    expect(op.required).toBe(true)
    expect(op.schema.enum).toContain('CREATE')
    expect(op.schema.enum).toContain('SETQUOTA')
    expect(op.schema.enum).not.toContain('OPEN')
    expect(
      doc.paths['/webhdfs/v1/{*}'].get.parameters.find((p: { name: string }) => p.name === 'op').schema.enum,
    ).toContain('GETFILEBLOCKLOCATIONS')
    expect(put.responses['307']).toEqual({
      description: expect.any(String),
      headers: { Location: { schema: { type: 'string' } } },
    })
    expect(put.requestBody.content['application/octet-stream']).toBeDefined()
    expect(doc.paths['/api/v1/fs/files'].put.requestBody.content['application/octet-stream']).toBeDefined()
  })
})

describe('native fs API bounds', () => {
  it('refuses an integer past 2^53 with 400 (a since of 2^68 answered 500)', async () => {
    const { call } = await setup()
    const r = await call('GET', '/api/v1/fs/changes?since=491281835554365636608')
    expect(r.statusCode).toBe(400)
    expect(r.json().error.code).toBe('BAD_REQUEST')
  })
})
