// Directory quotas as HDFS has them: enforced at the moment of use, refused with the NS/DS quota error
// and nothing half-written, usage kept by every command (checked against a fresh count of the tree).
import { describe, expect, it } from 'vitest'
import { isFsError, type FsService } from '../../src/fs/index.js'
import { ALICE, enc, fails, makeFs, SU, withUsers } from './harness.js'

/** What the subtree really uses, counted now (the reference the kept counters must match). */
async function counted(fs: FsService, path: string): Promise<{ ns: number; ss: number }> {
  const s = await fs.contentSummary(SU, path)
  return { ns: s.fileCount + s.directoryCount, ss: s.spaceConsumed }
}

describe('namespace quota', () => {
  it('counts the directory itself and everything under it; refuses the name that would exceed it', async () => {
    const { fs } = makeFs()
    await fs.mkdirs(SU, '/q')
    await fs.setQuota(SU, '/q', { namespace: 4 })
    await fs.mkdirs(SU, '/q/a')
    await fs.create(SU, '/q/a/f', enc('x'))
    expect(await fs.quotaUsage(SU, '/q')).toMatchObject({ fileAndDirectoryCount: 3, quota: 4 })
    await fs.create(SU, '/q/g', enc('y'))
    const msg = await fails(fs.create(SU, '/q/h', enc('z')), 'NS_QUOTA_EXCEEDED')
    expect(msg).toBe(
      'The NameSpace quota (directories and files) of directory /q is exceeded: quota=4 file count=5',
    )
    await fails(fs.mkdirs(SU, '/q/a/b'), 'NS_QUOTA_EXCEEDED')
    // An overwrite replaces a name: it never needs more quota.
    await fs.create(SU, '/q/g', enc('yy'), { overwrite: true })
    // The superuser is not exempt (HDFS).
    await fails(fs.mkdirs(SU, '/q/x'), 'NS_QUOTA_EXCEEDED')
    await fs.delete(SU, '/q/g')
    await fs.create(SU, '/q/h', enc('z'))
    expect(await fs.quotaUsage(SU, '/q')).toMatchObject({ fileAndDirectoryCount: 4 })
  })

  it('refuses mkdirs -p of several levels as a whole: no directory of it is left', async () => {
    const { fs } = makeFs()
    await fs.mkdirs(SU, '/q')
    await fs.setQuota(SU, '/q', { namespace: 3 })
    await fails(fs.mkdirs(SU, '/q/a/b/c'), 'NS_QUOTA_EXCEEDED')
    await fails(fs.stat(SU, '/q/a'), 'FILE_NOT_FOUND')
    await fails(fs.create(SU, '/q/a/b/c', enc('x')), 'NS_QUOTA_EXCEEDED')
    await fails(fs.stat(SU, '/q/a'), 'FILE_NOT_FOUND')
    expect(await fs.quotaUsage(SU, '/q')).toMatchObject({ fileAndDirectoryCount: 1 })
  })
})

describe('storage space quota', () => {
  it('counts length times replication; create, append and setReplication are refused past it', async () => {
    const { fs } = makeFs()
    await fs.mkdirs(SU, '/q')
    await fs.setQuota(SU, '/q', { storagespace: 300 })
    await fs.create(SU, '/q/a', new Uint8Array(50), { replication: 3 }) // 150
    await fs.create(SU, '/q/b', new Uint8Array(100), { replication: 1 }) // 250
    const msg = await fails(
      fs.create(SU, '/q/c', new Uint8Array(20), { replication: 3 }),
      'DS_QUOTA_EXCEEDED',
    )
    expect(msg).toBe(
      'The DiskSpace quota of /q is exceeded: quota = 300 B = 300 B but diskspace consumed = 310 B = 310 B',
    )
    await fails(fs.append(SU, '/q/b', new Uint8Array(51)), 'DS_QUOTA_EXCEEDED')
    expect((await fs.stat(SU, '/q/b')).length).toBe(100) // nothing half-written
    await fails(fs.setReplication(SU, '/q/b', 2), 'DS_QUOTA_EXCEEDED')
    expect((await fs.stat(SU, '/q/b')).replication).toBe(1)
    await fs.setReplication(SU, '/q/a', 1) // shrinking is always allowed: 50 + 100
    await fs.append(SU, '/q/b', new Uint8Array(150))
    expect(await fs.quotaUsage(SU, '/q')).toMatchObject({ spaceConsumed: 300, spaceQuota: 300 })
    // A storage-type quota on DISK (where hopsd keeps every replica) limits the same bytes.
    await fs.setQuota(SU, '/q', { storagespace: -1 })
    await fs.setQuota(SU, '/q', { storagespace: 310, storageType: 'disk' })
    expect((await fs.quotaUsage(SU, '/q')).typeQuota).toEqual({ DISK: { quota: 310, consumed: 300 } })
    await fails(fs.create(SU, '/q/c', new Uint8Array(11)), 'TYPE_QUOTA_EXCEEDED')
    await fs.setQuota(SU, '/q', { storagespace: 10, storageType: 'SSD' }) // nothing is ever on SSD
    await fs.create(SU, '/q/c', new Uint8Array(10), { replication: 1 })
  })
})

describe('quotas and the tree', () => {
  it('rename moves usage between quota directories and checks the destination first', async () => {
    const { fs } = makeFs()
    await fs.mkdirs(SU, '/a/sub')
    await fs.mkdirs(SU, '/b')
    await fs.create(SU, '/a/sub/f', new Uint8Array(10), { replication: 1 })
    await fs.create(SU, '/a/sub/g', new Uint8Array(10), { replication: 1 })
    await fs.setQuota(SU, '/a', { namespace: 10, storagespace: 100 })
    await fs.setQuota(SU, '/b', { namespace: 3 })
    // /a/sub is 3 names: /b (1) would hold 4.
    await fails(fs.rename(SU, '/a/sub', '/b/sub'), 'NS_QUOTA_EXCEEDED')
    expect((await fs.stat(SU, '/a/sub')).type).toBe('DIRECTORY')
    await fs.setQuota(SU, '/b', { namespace: 4 })
    await fs.rename(SU, '/a/sub', '/b/sub')
    expect(await fs.quotaUsage(SU, '/a')).toMatchObject({ fileAndDirectoryCount: 1, spaceConsumed: 0 })
    expect(await fs.quotaUsage(SU, '/b')).toMatchObject({ fileAndDirectoryCount: 4 })
    // Within one quota directory nothing moves.
    await fs.rename(SU, '/b/sub/f', '/b/f')
    expect(await fs.quotaUsage(SU, '/b')).toMatchObject({ fileAndDirectoryCount: 4 })
  })

  it('only the superuser sets quotas, only on directories; clearing both drops the row', async () => {
    const { fs } = makeFs()
    await withUsers(fs)
    await fs.create(SU, '/file', enc('x'))
    await fails(fs.setQuota(ALICE, '/home/alice', { namespace: 5 }), 'ACCESS_DENIED')
    await fails(fs.setQuota(SU, '/file', { namespace: 5 }), 'NOT_A_DIRECTORY')
    await fails(fs.setQuota(SU, '/missing', { namespace: 5 }), 'FILE_NOT_FOUND')
    await fails(fs.setQuota(SU, '/home', { storagespace: 5, storageType: 'RAM_DISK' }), 'INVALID_ARGUMENT')
    await fs.setQuota(SU, '/home', { namespace: 5, storagespace: 1000 })
    expect(await fs.contentSummary(SU, '/home')).toMatchObject({ quota: 5, spaceQuota: 1000 })
    await fs.setQuota(SU, '/home', { namespace: -1 })
    expect(await fs.contentSummary(SU, '/home')).toMatchObject({ quota: -1, spaceQuota: 1000 })
    await fs.setQuota(SU, '/home', { storagespace: -1 })
    expect(await fs.quotaUsage(SU, '/home')).toMatchObject({ quota: -1, spaceQuota: -1 })
    // The root's namespace quota cannot be cleared (HDFS ignores the request).
    await fs.setQuota(SU, '/', { namespace: 100 })
    await fs.setQuota(SU, '/', { namespace: -1 })
    expect((await fs.quotaUsage(SU, '/')).quota).toBe(100)
  })

  it('keeps the counters equal to a fresh count through a seeded run of mixed commands', async () => {
    const seed = Number(process.env['QUOTA_SEED'] ?? 7)
    let x = seed
    const rand = (n: number): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0
      return x % n
    }
    const { fs } = makeFs()
    await fs.mkdirs(SU, '/r/a/b')
    await fs.mkdirs(SU, '/r/c')
    await fs.setQuota(SU, '/r', { namespace: 60, storagespace: 4000 })
    await fs.setQuota(SU, '/r/a', { storagespace: 1500 })
    const dirs = ['/r', '/r/a', '/r/a/b', '/r/c']
    try {
      for (let i = 0; i < 300; i++) {
        const d = dirs[rand(dirs.length)]!
        const name = `${d}/n${rand(12)}`
        const ops = [
          () =>
            fs.create(SU, name, new Uint8Array(rand(200)), {
              replication: 1 + rand(3),
              overwrite: rand(2) === 0,
            }),
          () => fs.append(SU, name, new Uint8Array(rand(100))),
          () => fs.delete(SU, name, { recursive: true }),
          () => fs.mkdirs(SU, `${name}/x`),
          () => fs.rename(SU, name, `${dirs[rand(dirs.length)]}/m${rand(12)}`),
          () => fs.setReplication(SU, name, 1 + rand(3)),
          () => fs.truncate(SU, name, rand(50)),
        ]
        await ops[rand(ops.length)]!().catch((err: unknown) => {
          if (!isFsError(err)) throw err
        })
      }
      for (const d of ['/r', '/r/a']) {
        const kept = await fs.quotaUsage(SU, d)
        expect({ ns: kept.fileAndDirectoryCount, ss: kept.spaceConsumed }, d).toEqual(await counted(fs, d))
      }
    } catch (err) {
      console.log(`quota counters run failed with QUOTA_SEED=${seed}`)
      throw err
    }
  })
})
