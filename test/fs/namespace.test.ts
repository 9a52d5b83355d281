import { describe, expect, it } from 'vitest'
import { LIST_PAGE_MAX } from '../../src/fs/index.js'
import { ALICE, BOB, dec, enc, EVE, fails, makeFs, SU, withUsers } from './harness.js'

describe('mkdirs / stat / list', () => {
  it('creates missing parents, is idempotent on directories, and refuses files in the way', async () => {
    const { fs, clock } = makeFs()
    expect(await fs.mkdirs(SU, '/a/b/c', { permission: 0o700 })).toBe(true)
    const c = await fs.stat(SU, '/a/b/c')
    expect(c).toMatchObject({
      type: 'DIRECTORY',
      permission: 0o700,
      owner: 'hopsd',
      group: 'supergroup',
      modificationTime: clock.now,
    })
    expect((await fs.stat(SU, '/a/b')).permission).toBe(0o700 | 0o300) // implicit parent gets u+wx
    expect(await fs.mkdirs(SU, '/a/b')).toBe(true)
    await fs.create(SU, '/a/f', enc('x'))
    await fails(fs.mkdirs(SU, '/a/f'), 'FILE_ALREADY_EXISTS')
    await fails(fs.mkdirs(SU, '/a/f/g'), 'NOT_A_DIRECTORY')
    await fails(fs.stat(SU, '/nope'), 'FILE_NOT_FOUND')
    await fails(fs.stat(SU, '/a/f/g'), 'FILE_NOT_FOUND')
    await fails(fs.mkdirs(SU, '/a/../b'), 'INVALID_PATH')
    await fails(fs.mkdirs(SU, '/x', { permission: 0o20000 }), 'INVALID_ARGUMENT')
  })

  it('root stat and childrenNum', async () => {
    const { fs } = makeFs()
    await fs.mkdirs(SU, '/a')
    await fs.mkdirs(SU, '/b')
    expect(await fs.stat(SU, '/')).toMatchObject({
      type: 'DIRECTORY',
      name: '',
      childrenNum: 2,
      fileId: 16385,
    })
  })

  it('lists in name order with pages after startAfter and remaining counts', async () => {
    const { fs } = makeFs()
    const names = Array.from({ length: 25 }, (_, i) => `f${String(i).padStart(2, '0')}`)
    for (const n of [...names].reverse()) await fs.create(SU, `/d/${n}`, enc(n))
    await fs.mkdirs(SU, '/d-sibling/x') // a neighbouring key range must not leak into the listing
    const first = await fs.list(SU, '/d', { limit: 10 })
    expect(first.entries.map((e) => e.name)).toEqual(names.slice(0, 10))
    expect(first.remaining).toBe(15)
    const second = await fs.list(SU, '/d', { startAfter: 'f09', limit: 10 })
    expect(second.entries.map((e) => e.name)).toEqual(names.slice(10, 20))
    expect(second.remaining).toBe(5)
    const last = await fs.list(SU, '/d', { startAfter: 'f19' })
    expect(last.entries.map((e) => e.name)).toEqual(names.slice(20))
    expect(last.remaining).toBe(0)
    expect((await fs.list(SU, '/d', { startAfter: 'zzz' })).entries).toEqual([])
    // startAfter need not exist
    expect((await fs.list(SU, '/d', { startAfter: 'f10a', limit: 1 })).entries[0]!.name).toBe('f11')
    // a file lists as itself
    expect((await fs.list(SU, '/d/f03')).entries.map((e) => e.name)).toEqual(['f03'])
    expect((await fs.list(SU, '/d', { limit: 10 * LIST_PAGE_MAX })).entries).toHaveLength(25)
  })
})

describe('create / append / read', () => {
  it('create+write+close is one command; stat says inlined', async () => {
    const { fs, sm } = makeFs()
    const before = sm.appliedIndex
    const r = await fs.create(SU, '/p/q/small.txt', enc('hello'))
    expect(sm.appliedIndex).toBe(before + 1)
    expect(r.size).toBe(5)
    const st = await fs.stat(SU, '/p/q/small.txt')
    expect(st).toMatchObject({
      type: 'FILE',
      length: 5,
      inlined: true,
      permission: 0o644,
      replication: 3,
      blockSize: 128 << 20,
      leaseHolder: null,
    })
    expect(dec(await fs.read(SU, '/p/q/small.txt'))).toBe('hello')
    expect(dec(await fs.read(SU, '/p/q/small.txt', { offset: 1, length: 3 }))).toBe('ell')
    expect(dec(await fs.read(SU, '/p/q/small.txt', { offset: 5 }))).toBe('')
    await fails(fs.read(SU, '/p/q/small.txt', { offset: 6 }), 'INVALID_ARGUMENT')
    await fails(fs.read(SU, '/p/q', {}), 'IS_A_DIRECTORY')
    await fails(fs.read(SU, '/p/none'), 'FILE_NOT_FOUND')
  })

  it('overwrite flag', async () => {
    const { fs } = makeFs()
    const first = await fs.create(SU, '/f', enc('one'))
    await fails(fs.create(SU, '/f', enc('two')), 'FILE_ALREADY_EXISTS')
    const second = await fs.create(SU, '/f', enc('two!'), { overwrite: true })
    expect(second.fileId).not.toBe(first.fileId)
    expect(dec(await fs.read(SU, '/f'))).toBe('two!')
    expect((await fs.stat(SU, '/')).childrenNum).toBe(1)
    await fs.mkdirs(SU, '/dir')
    await fails(fs.create(SU, '/dir', enc(''), { overwrite: true }), 'FILE_ALREADY_EXISTS')
    await fails(fs.create(SU, '/', enc('')), 'FILE_ALREADY_EXISTS')
  })

  it('createParent=false needs the parent', async () => {
    const { fs } = makeFs()
    await fails(fs.create(SU, '/no/such/f', enc(''), { createParent: false }), 'FILE_NOT_FOUND')
    await fs.create(SU, '/f', enc(''))
    await fails(fs.create(SU, '/f/g', enc('')), 'NOT_A_DIRECTORY')
  })

  it('appends up to inlineThreshold; past it FILE_TOO_LARGE_FOR_INLINE and nothing changes', async () => {
    const { fs, sm } = makeFs()
    await fs.setSetting(SU, 'inlineThreshold', '100')
    await fs.create(SU, '/f', new Uint8Array(60).fill(1))
    await fs.append(SU, '/f', new Uint8Array(40).fill(2))
    expect((await fs.stat(SU, '/f')).length).toBe(100)
    const snap = sm.snapshot()
    await fails(fs.append(SU, '/f', new Uint8Array(1)), 'FILE_TOO_LARGE_FOR_INLINE')
    await fails(fs.create(SU, '/g', new Uint8Array(101)), 'FILE_TOO_LARGE_FOR_INLINE')
    expect(Buffer.from(sm.snapshot().subarray(0, 0))).toEqual(Buffer.from(snap.subarray(0, 0)))
    const data = await fs.read(SU, '/f')
    expect(data.length).toBe(100)
    expect(data[59]).toBe(1)
    expect(data[60]).toBe(2)
    await fails(fs.append(SU, '/missing', enc('x')), 'FILE_NOT_FOUND')
    await fs.mkdirs(SU, '/d')
    await fails(fs.append(SU, '/d', enc('x')), 'IS_A_DIRECTORY')
  })

  it('bad numbers are refused', async () => {
    const { fs } = makeFs()
    await fails(fs.create(SU, '/f', enc(''), { replication: 0x7fff }), 'INVALID_ARGUMENT')
    await fails(fs.create(SU, '/f', enc(''), { blockSize: 1000 }), 'INVALID_ARGUMENT')
    await fs.create(SU, '/f', enc('x'))
    await fails(fs.read(SU, '/f', { offset: -1 }), 'INVALID_ARGUMENT')
    await fails(fs.read(SU, '/f', { offset: 0.5 }), 'INVALID_ARGUMENT')
    await fails(fs.setReplication(SU, '/f', 0), 'INVALID_ARGUMENT')
    await fails(fs.setTimes(SU, '/f', -2, -1), 'INVALID_ARGUMENT')
  })
})

describe('rename', () => {
  it('moves files and whole subtrees across directories atomically', async () => {
    const { fs } = makeFs()
    await fs.create(SU, '/src/a/b/f1', enc('1'))
    await fs.create(SU, '/src/a/f2', enc('2'))
    await fs.mkdirs(SU, '/dst')
    const id = (await fs.stat(SU, '/src/a')).fileId
    await fs.rename(SU, '/src/a', '/dst/moved')
    await fails(fs.stat(SU, '/src/a'), 'FILE_NOT_FOUND')
    expect((await fs.stat(SU, '/dst/moved')).fileId).toBe(id)
    expect(dec(await fs.read(SU, '/dst/moved/b/f1'))).toBe('1')
    expect(dec(await fs.read(SU, '/dst/moved/f2'))).toBe('2')
    expect((await fs.stat(SU, '/src')).childrenNum).toBe(0)
    expect((await fs.stat(SU, '/dst')).childrenNum).toBe(1)
    await fs.rename(SU, '/dst/moved/f2', '/dst/moved/f2-renamed') // same directory
    expect((await fs.list(SU, '/dst/moved')).entries.map((e) => e.name)).toEqual(['b', 'f2-renamed'])
    expect((await fs.stat(SU, '/dst/moved')).childrenNum).toBe(2)
  })

  it('refuses a rename into its own subtree', async () => {
    const { fs } = makeFs()
    await fs.mkdirs(SU, '/a/b')
    await fails(fs.rename(SU, '/a', '/a/b/c'), 'INVALID_ARGUMENT')
    expect(await fs.renameLegacy(SU, '/a', '/a/b')).toBe(false) // into /a/b/a
    await fails(fs.rename(SU, '/', '/x'), 'INVALID_ARGUMENT')
  })

  it('rename over an existing path: refused without overwrite; files and empty dirs replaced with it', async () => {
    const { fs } = makeFs()
    await fs.create(SU, '/f1', enc('1'))
    await fs.create(SU, '/f2', enc('2'))
    await fails(fs.rename(SU, '/f1', '/f2'), 'FILE_ALREADY_EXISTS')
    await fails(fs.rename(SU, '/f1', '/f1'), 'FILE_ALREADY_EXISTS')
    await fs.rename(SU, '/f1', '/f2', { overwrite: true })
    expect(dec(await fs.read(SU, '/f2'))).toBe('1')
    await fs.mkdirs(SU, '/d1/x')
    await fs.mkdirs(SU, '/d2/y')
    await fs.mkdirs(SU, '/empty')
    await fails(fs.rename(SU, '/d1', '/d2', { overwrite: true }), 'DIRECTORY_NOT_EMPTY')
    await fails(fs.rename(SU, '/f2', '/empty', { overwrite: true }), 'FILE_ALREADY_EXISTS')
    await fs.rename(SU, '/d1', '/empty', { overwrite: true })
    expect((await fs.stat(SU, '/empty/x')).type).toBe('DIRECTORY')
    expect((await fs.stat(SU, '/')).childrenNum).toBe(3) // f2, d2, empty
    await fails(fs.rename(SU, '/nope', '/x'), 'FILE_NOT_FOUND')
    await fails(fs.rename(SU, '/f2', '/no/parent'), 'FILE_NOT_FOUND')
    await fails(fs.rename(SU, '/d2', '/f2/under-a-file'), 'NOT_A_DIRECTORY')
  })

  it('legacy (WebHDFS) rename: moves into a directory; false on ordinary failures', async () => {
    const { fs } = makeFs()
    await fs.create(SU, '/f', enc('x'))
    await fs.mkdirs(SU, '/d')
    expect(await fs.renameLegacy(SU, '/f', '/d')).toBe(true)
    expect(dec(await fs.read(SU, '/d/f'))).toBe('x')
    expect(await fs.renameLegacy(SU, '/nope', '/x')).toBe(false)
    await fs.create(SU, '/g', enc('y'))
    expect(await fs.renameLegacy(SU, '/g', '/d/f')).toBe(false) // exists
    expect(await fs.renameLegacy(SU, '/g', '/no/parent')).toBe(false)
    expect(await fs.renameLegacy(SU, '/g', '/g')).toBe(true)
    await fails(fs.renameLegacy(SU, '/g', '/a/../b'), 'INVALID_PATH')
  })
})

describe('delete', () => {
  it('recursive delete removes the subtree; non-recursive refuses non-empty dirs; missing → false', async () => {
    const { fs, sm } = makeFs()
    await fs.create(SU, '/t/a/b/f', enc('x'))
    await fs.create(SU, '/t/g', enc('y'))
    const inodesBefore = sm.module<import('../../src/fs/index.js').Namespace>('fs').inodeCount
    await fails(fs.delete(SU, '/t'), 'DIRECTORY_NOT_EMPTY')
    expect(await fs.delete(SU, '/t/g')).toBe(true)
    expect(await fs.delete(SU, '/t', { recursive: true })).toBe(true)
    await fails(fs.stat(SU, '/t/a/b/f'), 'FILE_NOT_FOUND')
    // Detached at once, freed by the purge steps (test/fs/subtree.test.ts).
    expect(await fs.purgeDetachedStep()).toEqual({ purged: 4, remaining: 0 })
    expect(sm.module<import('../../src/fs/index.js').Namespace>('fs').inodeCount).toBe(inodesBefore - 5)
    expect(await fs.delete(SU, '/t')).toBe(false)
    expect(await fs.delete(SU, '/', { recursive: true })).toBe(false)
    await fs.mkdirs(SU, '/empty')
    expect(await fs.delete(SU, '/empty')).toBe(true)
    expect((await fs.stat(SU, '/')).childrenNum).toBe(0)
  })
})

describe('attributes', () => {
  it('setPermission / setOwner / setTimes (-1 = unchanged) / setReplication', async () => {
    const { fs, clock } = makeFs()
    await fs.create(SU, '/f', enc('x'))
    const t0 = clock.now
    await fs.setPermission(SU, '/f', 0o600)
    await fs.setOwner(SU, '/f', 'alice', 'staff')
    await fs.setTimes(SU, '/f', 1000, -1)
    expect(await fs.stat(SU, '/f')).toMatchObject({
      permission: 0o600,
      owner: 'alice',
      group: 'staff',
      modificationTime: 1000,
      accessTime: t0,
    })
    await fs.setTimes(SU, '/f', -1, 2000)
    expect(await fs.stat(SU, '/f')).toMatchObject({ modificationTime: 1000, accessTime: 2000 })
    await fs.setOwner(SU, '/f', undefined, 'other')
    expect(await fs.stat(SU, '/f')).toMatchObject({ owner: 'alice', group: 'other' })
    await fails(fs.setOwner(SU, '/f', undefined, undefined), 'INVALID_ARGUMENT')
    expect(await fs.setReplication(SU, '/f', 2)).toBe(true)
    expect((await fs.stat(SU, '/f')).replication).toBe(2)
    await fs.mkdirs(SU, '/d')
    expect(await fs.setReplication(SU, '/d', 2)).toBe(false)
    expect(await fs.setReplication(SU, '/missing', 2)).toBe(false)
    await fails(fs.setPermission(SU, '/missing', 0o644), 'FILE_NOT_FOUND')
  })

  it('xattrs with CREATE / REPLACE flags, names normalized, trusted.* for the superuser only', async () => {
    const { fs } = makeFs()
    await withUsers(fs)
    await fs.create(ALICE, '/home/alice/f', enc('x'))
    await fs.setXAttr(ALICE, '/home/alice/f', 'user.a', enc('1'), 'CREATE')
    await fails(fs.setXAttr(ALICE, '/home/alice/f', 'user.a', enc('2'), 'CREATE'), 'XATTR_EXISTS')
    await fails(fs.setXAttr(ALICE, '/home/alice/f', 'user.b', enc('2'), 'REPLACE'), 'XATTR_NOT_FOUND')
    await fs.setXAttr(ALICE, '/home/alice/f', 'USER.a', enc('2'), 'REPLACE')
    await fs.setXAttr(ALICE, '/home/alice/f', 'user.0', enc(''))
    await fs.setXAttr(SU, '/home/alice/f', 'trusted.t', enc('secret'))
    await fails(fs.setXAttr(ALICE, '/home/alice/f', 'trusted.t', enc('')), 'ACCESS_DENIED')
    await fails(fs.setXAttr(ALICE, '/home/alice/f', 'nonamespace', enc('')), 'INVALID_ARGUMENT')
    expect((await fs.getXAttrs(ALICE, '/home/alice/f')).map((x) => [x.name, dec(x.value)])).toEqual([
      ['user.0', ''],
      ['user.a', '2'],
    ])
    expect(await fs.listXAttrs(SU, '/home/alice/f')).toEqual(['trusted.t', 'user.0', 'user.a'])
    expect((await fs.getXAttrs(ALICE, '/home/alice/f', ['user.a'])).map((x) => dec(x.value))).toEqual(['2'])
    await fails(fs.getXAttrs(ALICE, '/home/alice/f', ['user.a', 'user.zz']), 'XATTR_NOT_FOUND')
    await fs.removeXAttr(ALICE, '/home/alice/f', 'user.a')
    await fails(fs.removeXAttr(ALICE, '/home/alice/f', 'user.a'), 'XATTR_NOT_FOUND')
    await fails(fs.setXAttr(ALICE, '/home/alice/f', 'user.big', new Uint8Array(20_000)), 'XATTR_LIMIT')
    for (let i = 0; i < 30; i++) await fs.setXAttr(SU, '/home/alice/f', `user.n${i}`, enc(''))
    await fails(fs.setXAttr(SU, '/home/alice/f', 'user.toomany', enc('')), 'XATTR_LIMIT')
  })

  it('content summary and checksum', async () => {
    const { fs } = makeFs()
    await fs.create(SU, '/cs/a', new Uint8Array(10), { replication: 2 })
    await fs.create(SU, '/cs/sub/b', new Uint8Array(5))
    await fs.mkdirs(SU, '/cs/sub/empty')
    expect(await fs.contentSummary(SU, '/cs')).toEqual({
      length: 15,
      fileCount: 2,
      directoryCount: 3,
      spaceConsumed: 35,
      quota: -1,
      spaceQuota: -1,
      typeQuota: {},
    })
    expect(await fs.contentSummary(SU, '/cs/a')).toMatchObject({
      length: 10,
      fileCount: 1,
      directoryCount: 0,
    })
    const sum = await fs.checksum(SU, '/cs/a')
    expect(sum.algorithm).toBe('MD5-of-0MD5-of-512CRC32C')
    expect(sum.length).toBe(28)
    await fails(fs.checksum(SU, '/cs'), 'IS_A_DIRECTORY')
  })
})

describe('permissions', () => {
  it('owner/group/other classes, traversal, superuser bypass', async () => {
    const { fs } = makeFs()
    await withUsers(fs)
    await fails(fs.mkdirs(ALICE, '/etc'), 'ACCESS_DENIED') // root is hopsd 0755
    await fs.create(ALICE, '/home/alice/private', enc('p'), { permission: 0o600 })
    await fs.create(ALICE, '/home/alice/group', enc('g'), { permission: 0o640 })
    await fails(fs.read(BOB, '/home/alice/private'), 'ACCESS_DENIED')
    expect(dec(await fs.read(BOB, '/home/alice/group'))).toBe('g') // bob is in staff
    await fails(fs.read(EVE, '/home/alice/group'), 'ACCESS_DENIED')
    expect(dec(await fs.read(SU, '/home/alice/private'))).toBe('p')
    await fs.setPermission(ALICE, '/home/alice', 0o700)
    await fails(fs.stat(BOB, '/home/alice/group'), 'ACCESS_DENIED') // no x on the ancestor
    await fails(fs.stat(BOB, '/home/alice/nonexistent'), 'ACCESS_DENIED') // checked before existence
    await fails(fs.list(BOB, '/home/alice'), 'ACCESS_DENIED')
    await fs.setPermission(ALICE, '/home/alice', 0o711)
    expect((await fs.stat(BOB, '/home/alice/group')).owner).toBe('alice') // x without r: stat yes
    await fails(fs.list(BOB, '/home/alice'), 'ACCESS_DENIED') // ... list no
    await fails(fs.create(BOB, '/home/alice/bobs', enc('')), 'ACCESS_DENIED')
    await fails(fs.append(BOB, '/home/alice/group', enc('')), 'ACCESS_DENIED')
    await fails(fs.delete(BOB, '/home/alice/group'), 'ACCESS_DENIED')
    await fails(fs.rename(BOB, '/home/alice/group', '/shared/g'), 'ACCESS_DENIED')
    await fails(fs.setTimes(BOB, '/home/alice/group', 1, 1), 'ACCESS_DENIED')
    await fails(fs.setReplication(BOB, '/home/alice/group', 1), 'ACCESS_DENIED')
    await fails(fs.checksum(EVE, '/home/alice/group'), 'ACCESS_DENIED')
    await fails(fs.getXAttrs(EVE, '/home/alice/group'), 'ACCESS_DENIED')
  })

  it('setPermission needs the owner; setOwner needs the superuser; group changes need membership', async () => {
    const { fs } = makeFs()
    await withUsers(fs)
    await fs.create(ALICE, '/home/alice/f', enc(''))
    await fails(fs.setPermission(BOB, '/home/alice/f', 0o777), 'ACCESS_DENIED')
    await fails(fs.setOwner(ALICE, '/home/alice/f', 'bob', undefined), 'ACCESS_DENIED')
    await fs.setOwner(ALICE, '/home/alice/f', 'alice', undefined) // to oneself: allowed
    await fails(fs.setOwner(ALICE, '/home/alice/f', undefined, 'wheel'), 'ACCESS_DENIED')
    await fs.setOwner(ALICE, '/home/alice/f', undefined, 'staff')
    await fails(fs.setOwner(BOB, '/home/alice/f', undefined, 'staff'), 'ACCESS_DENIED') // not the owner
    await fs.setOwner(SU, '/home/alice/f', 'bob', 'wheel')
    expect(await fs.stat(SU, '/home/alice/f')).toMatchObject({ owner: 'bob', group: 'wheel' })
  })

  it('recursive delete needs rwx on every non-empty directory of the subtree', async () => {
    const { fs } = makeFs()
    await withUsers(fs)
    await fs.create(ALICE, '/home/alice/t/locked/f', enc(''))
    await fs.mkdirs(ALICE, '/home/alice/t/empty-locked', { permission: 0o500 })
    await fs.setPermission(SU, '/home/alice/t/locked', 0o555)
    await fails(fs.delete(ALICE, '/home/alice/t', { recursive: true }), 'ACCESS_DENIED')
    await fs.setPermission(ALICE, '/home/alice/t/locked', 0o755)
    expect(await fs.delete(ALICE, '/home/alice/t', { recursive: true })).toBe(true) // the empty locked dir is skipped
  })

  it('sticky bit: only the owner of the entry or of the directory may delete or rename it', async () => {
    const { fs } = makeFs()
    await withUsers(fs)
    await fs.create(ALICE, '/shared/alices', enc(''))
    await fails(fs.delete(BOB, '/shared/alices'), 'ACCESS_DENIED')
    await fails(fs.rename(BOB, '/shared/alices', '/shared/mine'), 'ACCESS_DENIED')
    await fs.create(BOB, '/shared/bobs', enc(''))
    expect(await fs.delete(BOB, '/shared/bobs')).toBe(true)
    expect(await fs.delete(SU, '/shared/alices')).toBe(true)
  })

  it('the superuser and supergroup are cluster settings', async () => {
    const { fs } = makeFs()
    await fails(fs.setSetting(ALICE, 'inlineThreshold', '10'), 'ACCESS_DENIED')
    await fs.setSetting(SU, 'supergroup', 'admins')
    const carol = { user: 'carol', groups: ['admins'] }
    await fs.mkdirs(carol, '/carol-was-here')
    await fs.setSetting(carol, 'superuser', 'root')
    await fails(fs.setSetting(SU, 'inlineThreshold', '1'), 'ACCESS_DENIED') // hopsd is no longer the superuser
    await fs.mkdirs({ user: 'root', groups: [] }, '/root-can')
    await fails(fs.setSetting(carol, 'nope', '1'), 'INVALID_ARGUMENT')
    await fails(fs.setSetting(carol, 'inlineThreshold', '-1'), 'INVALID_ARGUMENT')
    await fails(fs.setSetting(carol, 'leaseSoftLimitMs', String(2 * 3_600_000)), 'INVALID_ARGUMENT') // > hard limit
  })
})

describe('leases', () => {
  it('a writer keeps a file open across requests; others are refused until the soft limit', async () => {
    const { fs, clock } = makeFs()
    await fs.create(SU, '/w', enc('a'), { close: false, clientName: 'c1' })
    expect((await fs.stat(SU, '/w')).leaseHolder).toBe('c1')
    await fs.append(SU, '/w', enc('b'), { close: false, clientName: 'c1' })
    await fails(fs.append(SU, '/w', enc('x'), { clientName: 'c2' }), 'LEASE_CONFLICT')
    await fails(fs.create(SU, '/w', enc('x'), { overwrite: true, clientName: 'c2' }), 'LEASE_CONFLICT')
    await fails(fs.close(SU, '/w', { clientName: 'c2' }), 'LEASE_NOT_HELD')
    clock.now += 59_000
    expect(await fs.renewLease(SU, 'c1')).toBe(1)
    clock.now += 59_000 // 118 s after create, 59 s after the renewal: still live
    await fails(fs.append(SU, '/w', enc('x'), { clientName: 'c2' }), 'LEASE_CONFLICT')
    await fs.append(SU, '/w', enc('c'), { close: false, clientName: 'c1' })
    await fs.close(SU, '/w', { clientName: 'c1' })
    expect(await fs.stat(SU, '/w')).toMatchObject({ leaseHolder: null, length: 3 })
    await fails(fs.close(SU, '/w', { clientName: 'c1' }), 'LEASE_NOT_HELD')
  })

  it('an expired lease is recovered by the next writer; recoverLease closes at once', async () => {
    const { fs, clock } = makeFs()
    await fs.create(SU, '/w', enc('a'), { close: false, clientName: 'c1' })
    clock.now += 60_000
    await fs.append(SU, '/w', enc('b'), { close: false, clientName: 'c2' }) // soft limit passed: c2 takes over
    expect((await fs.stat(SU, '/w')).leaseHolder).toBe('c2')
    await fails(fs.close(SU, '/w', { clientName: 'c1' }), 'LEASE_NOT_HELD')
    expect(await fs.recoverLease(SU, '/w')).toBe(true)
    expect((await fs.stat(SU, '/w')).leaseHolder).toBe(null)
    await fs.create(SU, '/h', enc(''), { close: false, clientName: 'c3' })
    clock.now += 3_600_000
    await fails(fs.close(SU, '/h', { clientName: 'c3' }), 'LEASE_NOT_HELD') // past the hard limit: void
    expect(await fs.renewLease(SU, 'c3')).toBe(0)
  })

  it('an open write needs a client name; delete and rename carry the lease correctly', async () => {
    const { fs } = makeFs()
    await fails(fs.create(SU, '/x', enc(''), { close: false }), 'INVALID_ARGUMENT')
    await fs.create(SU, '/x', enc(''), { close: false, clientName: 'c1' })
    await fs.rename(SU, '/x', '/y')
    expect((await fs.stat(SU, '/y')).leaseHolder).toBe('c1')
    await fs.close(SU, '/y', { clientName: 'c1' })
    await fs.create(SU, '/z', enc(''), { close: false, clientName: 'c1' })
    expect(await fs.delete(SU, '/z')).toBe(true)
    expect(await fs.renewLease(SU, 'c1')).toBe(0)
  })
})

describe('change log', () => {
  it('every mutation yields an event with op, path, inode, user, time and raft index', async () => {
    const { fs, sm, clock } = makeFs()
    await fs.mkdirs(SU, '/a')
    await fs.create(SU, '/a/f', enc('x'))
    await fs.rename(SU, '/a/f', '/a/g')
    await fails(fs.delete(SU, '/nope/../x'), 'INVALID_PATH') // refused at the edge: no entry
    await fails(fs.rename(SU, '/missing', '/x'), 'FILE_NOT_FOUND') // refused in apply: no event
    await fs.delete(SU, '/a', { recursive: true })
    const { events, truncated } = await fs.changes(0)
    expect(truncated).toBe(false)
    expect(events.map((e) => [e.op, e.path, e.dst])).toEqual([
      ['mkdirs', '/a', ''],
      ['create', '/a/f', ''],
      ['rename', '/a/f', '/a/g'],
      ['delete', '/a', ''],
    ])
    expect(events[1]).toMatchObject({ user: 'hopsd', timeMs: clock.now })
    expect(events.map((e) => e.index)).toEqual([1, 2, 3, 5])
    expect((await fs.changes(3)).events.map((e) => e.op)).toEqual(['delete'])
    expect(sm.lastEventIndex()).toBe(5)
  })

  it('is bounded by changeLogMax and says when a reader fell behind', async () => {
    const { fs } = makeFs()
    await fs.setSetting(SU, 'changeLogMax', '3')
    for (let i = 0; i < 5; i++) await fs.mkdirs(SU, `/d${i}`)
    const all = await fs.changes(0)
    expect(all.events.map((e) => e.path)).toEqual(['/d2', '/d3', '/d4'])
    expect(all.truncated).toBe(true)
    expect((await fs.changes(all.events[0]!.index - 1)).truncated).toBe(false)
  })

  it('waitForChanges resolves on the next event, or on abort', async () => {
    const { fs, sm } = makeFs()
    const since = sm.lastEventIndex()
    const waiting = fs.waitForChanges(since)
    let woke = false
    void waiting.then(() => (woke = true))
    await Promise.resolve()
    expect(woke).toBe(false)
    await fs.mkdirs(SU, '/x')
    await waiting
    expect((await fs.changes(since)).events).toHaveLength(1)
    const ac = new AbortController()
    const aborted = fs.waitForChanges(sm.lastEventIndex(), ac.signal)
    ac.abort()
    await aborted
  })
})
