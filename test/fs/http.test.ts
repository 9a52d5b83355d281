// The WebHDFS and native fs routes in-process (fastify inject) over a one-replica file system.
import { afterEach, describe, expect, it } from 'vitest'
import { createApiServer, createMetricsRegistry, type ApiServer } from '../../src/api/index.js'
import { fsRoutes } from '../../src/api/routes/fs.js'
import { webhdfsRoutes } from '../../src/api/routes/webhdfs.js'
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
    routes: [webhdfsRoutes({ fs: env.fs, tokenTtlMs, clock: () => clock.now }), fsRoutes({ fs: env.fs })],
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
    expect(loc.searchParams.get('user.name')).toBe('alice')
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
        fileCount: 3,
        length: 3,
        quota: -1,
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
      ['GET', '/webhdfs/v1/?op=GETFILEBLOCKLOCATIONS', 400, 'UnsupportedOperationException'],
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
