// The namespace side of Hadoop's concat, truncate, checkAccess and create options (createparent, a
// createflag without CREATE, a block size against the cluster's minBlockSize), on one replica.
import { describe, expect, it } from 'vitest'
import { createFsService, namespaceModule } from '../../src/fs/index.js'
import { createLocalGroup, createMetaStateMachine } from '../../src/meta/index.js'
import { ALICE, dec, enc, EVE, fails, makeFs, SU, withUsers } from './harness.js'

describe('create options', () => {
  it('createParent=false refuses a missing parent with FILE_NOT_FOUND and makes nothing', async () => {
    const { fs } = makeFs()
    const msg = await fails(fs.create(SU, '/a/b/f', enc('x'), { createParent: false }), 'FILE_NOT_FOUND')
    expect(msg).toBe("Parent directory doesn't exist: /a/b")
    await fails(fs.stat(SU, '/a'), 'FILE_NOT_FOUND')
    await fs.mkdirs(SU, '/a/b')
    await fs.create(SU, '/a/b/f', enc('x'), { createParent: false })
    expect(dec(await fs.read(SU, '/a/b/f'))).toBe('x')
  })

  it('mustExist (a createflag without CREATE) only replaces an existing file', async () => {
    const { fs } = makeFs()
    await fails(fs.create(SU, '/f', enc('x'), { mustExist: true, overwrite: true }), 'FILE_NOT_FOUND')
    await fs.create(SU, '/f', enc('x'))
    await fs.create(SU, '/f', enc('yy'), { mustExist: true, overwrite: true })
    expect(dec(await fs.read(SU, '/f'))).toBe('yy')
  })

  it('overwriting needs WRITE on the file itself (HDFS checkPathAccess)', async () => {
    const { fs } = makeFs()
    await withUsers(fs)
    await fs.create(SU, '/shared/ro', enc('x'), { permission: 0o444 })
    await fs.setOwner(SU, '/shared/ro', 'alice', undefined)
    await fails(fs.create(ALICE, '/shared/ro', enc('y'), { overwrite: true }), 'ACCESS_DENIED')
    await fs.setPermission(ALICE, '/shared/ro', 0o644)
    await fs.create(ALICE, '/shared/ro', enc('y'), { overwrite: true })
  })

  it('the block size must be at least the minBlockSize setting and a multiple of 512', async () => {
    const { fs } = makeFs()
    const msg = await fails(fs.create(SU, '/f', enc('x'), { blockSize: 65536 }), 'INVALID_ARGUMENT')
    expect(msg).toContain('less than configured minimum value (minBlockSize): 65536 < 1048576')
    await fs.setSetting(SU, 'minBlockSize', '65536')
    await fs.create(SU, '/f', enc('x'), { blockSize: 65536 })
    expect((await fs.stat(SU, '/f')).blockSize).toBe(65536)
    await fails(fs.create(SU, '/g', enc('x'), { blockSize: 65536 + 100 }), 'INVALID_ARGUMENT')
    // Settings that cannot work together are refused.
    await fails(fs.setSetting(SU, 'minBlockSize', String(256 << 20)), 'INVALID_ARGUMENT')
  })
})

describe('append bound to the inode', () => {
  it('follows the file through a rename; a file deleted meanwhile is not found', async () => {
    const { fs } = makeFs()
    await withUsers(fs)
    await fs.create(ALICE, '/home/alice/a', enc('one'))
    const { fileId } = await fs.stat(ALICE, '/home/alice/a')
    await fs.rename(ALICE, '/home/alice/a', '/home/alice/b')
    const r = await fs.append(ALICE, '/home/alice/a', enc('+two'), { fileId })
    expect(r.path).toBe('/home/alice/b')
    expect(dec(await fs.read(ALICE, '/home/alice/b'))).toBe('one+two')
    // Still the caller's rights on the file where it is now.
    await fails(fs.append(EVE, '/home/alice/a', enc('x'), { fileId }), 'ACCESS_DENIED')
    await fs.delete(ALICE, '/home/alice/b')
    await fs.create(ALICE, '/home/alice/a', enc('new'))
    await fails(fs.append(ALICE, '/home/alice/a', enc('x'), { fileId }), 'FILE_NOT_FOUND')
    expect(dec(await fs.read(ALICE, '/home/alice/a'))).toBe('new')
  })
})

describe('concat', () => {
  it('appends inline sources to an inline target in order and removes them', async () => {
    const { fs } = makeFs()
    await fs.create(SU, '/d/t', enc('T'))
    await fs.create(SU, '/d/s1', enc('one'))
    await fs.create(SU, '/d/s2', enc('two'))
    await fs.concat(SU, '/d/t', ['/d/s1', '/d/s2'])
    expect(dec(await fs.read(SU, '/d/t'))).toBe('Tonetwo')
    await fails(fs.stat(SU, '/d/s1'), 'FILE_NOT_FOUND')
    expect((await fs.stat(SU, '/d')).childrenNum).toBe(1)
  })

  it('refuses what HDFS refuses, and what would not fit inline, changing nothing', async () => {
    const { fs } = makeFs()
    await fs.create(SU, '/d/t', enc('T'))
    await fs.create(SU, '/d/s', enc('s'))
    await fs.create(SU, '/d/empty', new Uint8Array(0))
    await fs.create(SU, '/e/s', enc('s'))
    await fs.create(SU, '/d/big', new Uint8Array(65536))
    await fails(fs.concat(SU, '/d/t', ['/e/s']), 'INVALID_ARGUMENT') // another directory
    await fails(fs.concat(SU, '/d/t', ['/d/t']), 'INVALID_ARGUMENT') // itself
    await fails(fs.concat(SU, '/d/t', ['/d/s', '/d/s']), 'INVALID_ARGUMENT') // twice
    await fails(fs.concat(SU, '/d/t', ['/d/empty']), 'INVALID_ARGUMENT')
    await fails(fs.concat(SU, '/d/t', []), 'INVALID_ARGUMENT')
    await fails(fs.concat(SU, '/d/t', ['/d/missing']), 'FILE_NOT_FOUND')
    await fails(fs.concat(SU, '/d/t', ['/d/s', '/d/big']), 'FILE_TOO_LARGE_FOR_INLINE')
    expect(dec(await fs.read(SU, '/d/t'))).toBe('T')
    expect(dec(await fs.read(SU, '/d/s'))).toBe('s')
  })

  it('needs WRITE on the target, READ on the sources and WRITE on their directory', async () => {
    const { fs } = makeFs()
    await withUsers(fs)
    await fs.create(ALICE, '/home/alice/t', enc('T'))
    await fs.create(ALICE, '/home/alice/s', enc('s'))
    await fails(fs.concat(EVE, '/home/alice/t', ['/home/alice/s']), 'ACCESS_DENIED')
    await fs.concat(ALICE, '/home/alice/t', ['/home/alice/s'])
  })
})

describe('truncate', () => {
  it('shrinks an inline file at once, refuses growth and a file being written', async () => {
    const { fs } = makeFs()
    await fs.create(SU, '/f', enc('abcdef'))
    expect(await fs.truncate(SU, '/f', 3)).toBe(true)
    expect(dec(await fs.read(SU, '/f'))).toBe('abc')
    expect(await fs.truncate(SU, '/f', 3)).toBe(true)
    await fails(fs.truncate(SU, '/f', 4), 'INVALID_ARGUMENT')
    await fs.create(SU, '/open', enc('xyz'), { close: false, clientName: 'c1' })
    await fails(fs.truncate(SU, '/open', 1), 'LEASE_CONFLICT')
    await fails(fs.truncate(SU, '/nope', 1), 'FILE_NOT_FOUND')
    await fails(fs.truncate(EVE, '/f', 0), 'ACCESS_DENIED')
  })
})

describe('checkAccess', () => {
  it('answers as HDFS: nothing when allowed, ACCESS_DENIED or FILE_NOT_FOUND otherwise', async () => {
    const { fs } = makeFs()
    await withUsers(fs)
    await fs.create(ALICE, '/home/alice/f', enc('x'), { permission: 0o640 })
    await fs.checkAccess(ALICE, '/home/alice/f', 6)
    await fs.checkAccess({ user: 'bob', groups: ['staff'] }, '/home/alice/f', 4)
    await fails(fs.checkAccess({ user: 'bob', groups: ['staff'] }, '/home/alice/f', 2), 'ACCESS_DENIED')
    await fails(fs.checkAccess(EVE, '/home/alice/f', 4), 'ACCESS_DENIED')
    await fails(fs.checkAccess(ALICE, '/home/alice/nope', 4), 'FILE_NOT_FOUND')
  })
})

describe('settings that cannot work together', () => {
  it('refuses an inlineThreshold whose files would not fit in the largest proposal', async () => {
    const sm = createMetaStateMachine({ modules: [namespaceModule()], commandBytesMax: 1 << 20 })
    const fs = createFsService({ consensus: createLocalGroup(sm), stateMachine: sm })
    const msg = await fails(fs.setSetting(SU, 'inlineThreshold', String(2 << 20)), 'INVALID_ARGUMENT')
    expect(msg).toMatch(/largest proposal/)
    await fails(fs.setSetting(SU, 'inlineThreshold', String((1 << 20) - 1000)), 'INVALID_ARGUMENT')
    await fs.setSetting(SU, 'inlineThreshold', String(512 * 1024))
    expect(fs.inlineThreshold).toBe(512 * 1024)
  })
})
