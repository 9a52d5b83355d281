// Subtree operations that must not hold the event loop (issue 12 item 6): a recursive delete detaches
// its directory in one small command and is purged in bounded PurgeDetached steps; a content summary
// walks in chunks and yields between them.
import { describe, expect, it } from 'vitest'
import { createSubtreePurger, silentFsLogger, type FsService, type Namespace } from '../../src/fs/index.js'
import { createLocalGroup, createMetaStateMachine } from '../../src/meta/index.js'
import { namespaceModule } from '../../src/fs/index.js'
import { waitFor } from '../helpers/index.js'
import { ALICE, enc, fails, makeFs, nsOf, SU, withUsers } from './harness.js'

/** `dirs` directories of `perDir` one-byte files under `root` (plus `root/deep/a/b/c/leaf`). */
async function tree(fs: FsService, root: string, dirs: number, perDir: number): Promise<number> {
  let inodes = 1
  for (let d = 0; d < dirs; d++) {
    for (let f = 0; f < perDir; f++) await fs.create(SU, `${root}/d${d}/f${f}`, enc('x'))
    inodes += perDir + 1
  }
  await fs.create(SU, `${root}/deep/a/b/c/leaf`, enc('y'))
  return inodes + 5
}

/** Purge steps until none is left: the results of each. */
async function purgeAll(fs: FsService): Promise<{ purged: number; remaining: number }[]> {
  const steps: { purged: number; remaining: number }[] = []
  for (;;) {
    const r = await fs.purgeDetachedStep()
    steps.push(r)
    if (r.remaining === 0) return steps
    if (steps.length > 10_000) throw new Error('the purge does not end')
  }
}

describe('recursive delete of a big tree', () => {
  it('detaches the tree in one command (invisible at once), then frees it in steps of at most purgeBatchInodes', async () => {
    const { fs, sm } = makeFs()
    const inodes = await tree(fs, '/big', 30, 100) // 3,037 inodes
    await fs.create(SU, '/keep/f', enc('z'))
    await fs.setSetting(SU, 'purgeBatchInodes', '500')
    const before = nsOf(sm).inodeCount
    expect(await fs.delete(SU, '/big', { recursive: true })).toBe(true)
    // Gone from the namespace in that one command: by path, in its parent, to writers by inode id.
    await fails(fs.stat(SU, '/big'), 'FILE_NOT_FOUND')
    await fails(fs.stat(SU, '/big/d3/f7'), 'FILE_NOT_FOUND')
    expect((await fs.list(SU, '/')).entries.map((e) => e.name)).toEqual(['keep'])
    expect((await fs.stat(SU, '/')).childrenNum).toBe(1)
    expect(await fs.contentSummary(SU, '/')).toMatchObject({ fileCount: 1, directoryCount: 2 })
    // ... but not yet freed: that is the purge's work.
    expect(nsOf(sm).inodeCount).toBe(before)
    expect(nsOf(sm).detachedCount).toBe(1)
    // The name is free at once.
    await fs.create(SU, '/big/d3/f7', enc('new'))
    const steps = await purgeAll(fs)
    expect(steps.length).toBe(Math.ceil(inodes / 500))
    for (const s of steps) expect(s.purged).toBeLessThanOrEqual(500)
    expect(steps.reduce((n, s) => n + s.purged, 0)).toBe(inodes)
    expect(nsOf(sm).inodeCount).toBe(before - inodes + 3)
    expect(nsOf(sm).detachedCount).toBe(0)
    expect(await fs.purgeDetachedStep()).toEqual({ purged: 0, remaining: 0 })
    // /, /keep, /big, /big/d3
    expect(await fs.contentSummary(SU, '/')).toMatchObject({ fileCount: 2, directoryCount: 4 })
  })

  it('only the superuser purges', async () => {
    const { fs, propose } = makeFs()
    await fs.create(SU, '/t/a/f', enc('x'))
    await fs.delete(SU, '/t', { recursive: true })
    const r = (await propose({ nowMs: 1, user: 'alice', purgeDetached: {} })) as { ok: boolean; code: string }
    expect(r).toMatchObject({ ok: false, code: 'ACCESS_DENIED' })
  })

  it('releases the usage from the quotas above at the detach, with or without a quota of its own', async () => {
    const { fs } = makeFs()
    await fs.mkdirs(SU, '/q')
    await fs.setQuota(SU, '/q', { namespace: 60, storagespace: 10_000 })
    await tree(fs, '/q/plain', 3, 5) // 1 + 3 * 6 + 5 = 24 inodes
    await tree(fs, '/q/own', 3, 5)
    await fs.setQuota(SU, '/q/own', { namespace: 100 })
    expect(await fs.quotaUsage(SU, '/q')).toMatchObject({
      fileAndDirectoryCount: 49,
      spaceConsumed: 16 * 2 * 3,
    })
    await fs.delete(SU, '/q/plain', { recursive: true })
    expect(await fs.quotaUsage(SU, '/q')).toMatchObject({ fileAndDirectoryCount: 25, spaceConsumed: 16 * 3 })
    await fs.delete(SU, '/q/own', { recursive: true })
    expect(await fs.quotaUsage(SU, '/q')).toMatchObject({ fileAndDirectoryCount: 1, spaceConsumed: 0 })
    // The room is usable at once (59 more names fit under the quota of 60), and the purge changes no row.
    for (let i = 0; i < 58; i++) await fs.create(SU, `/q/n${i}`, enc('x'))
    await fails(fs.create(SU, '/q/x/y', enc('x')), 'NS_QUOTA_EXCEEDED')
    await fs.setSetting(SU, 'purgeBatchInodes', '7')
    await purgeAll(fs)
    expect(await fs.quotaUsage(SU, '/q')).toMatchObject({ fileAndDirectoryCount: 59, spaceConsumed: 58 * 3 })
    const s = await fs.contentSummary(SU, '/q')
    expect(s.fileCount + s.directoryCount).toBe(59)
  })

  it('a writer of a file in a detached tree loses it: appends and closes by inode id answer FILE_NOT_FOUND', async () => {
    const { fs } = makeFs()
    const { fileId } = await fs.create(SU, '/w/sub/open', enc('a'), { close: false, clientName: 'c1' })
    await fs.delete(SU, '/w', { recursive: true })
    await fails(fs.append(SU, '/w/sub/open', enc('b'), { fileId, clientName: 'c1' }), 'FILE_NOT_FOUND')
    await purgeAll(fs)
    await fails(fs.append(SU, '/w/sub/open', enc('b'), { fileId, clientName: 'c1' }), 'FILE_NOT_FOUND')
  })

  it('resumes after a snapshot and restore: the detached roots are replicated state (the same namespace as a replica that purged it all)', async () => {
    const a = makeFs()
    await tree(a.fs, '/x', 5, 40)
    await tree(a.fs, '/y', 2, 10)
    await a.fs.setSetting(SU, 'purgeBatchInodes', '30')
    await a.fs.delete(SU, '/x', { recursive: true })
    await a.fs.delete(SU, '/y', { recursive: true })
    await a.fs.purgeDetachedStep()
    await a.fs.purgeDetachedStep()
    // A replica restored from a snapshot taken mid-purge (a restart, a new follower) goes on from there.
    const b = createMetaStateMachine({ modules: [namespaceModule()] })
    b.restore(a.sm.snapshot())
    expect(nsOf(b).detachedCount).toBe(2)
    // Its purge loop, as the metadata leader runs it, finishes the work without being woken.
    const group = createLocalGroup(b)
    const { createFsService } = await import('../../src/fs/index.js')
    const fsB = createFsService({ consensus: group, stateMachine: b, clock: () => 1 })
    const purger = createSubtreePurger({
      ns: () => nsOf(b),
      purgeStep: () => fsB.purgeDetachedStep(),
      isLeader: () => true,
      intervalMs: 10,
      log: silentFsLogger,
    })
    purger.start()
    try {
      await waitFor(() => nsOf(b).detachedCount === 0, { what: 'the purge to finish' })
    } finally {
      await purger.stop()
    }
    // /x: 1 + 5 × 41 + 5 inodes, /y: 1 + 2 × 11 + 5; two steps of 30 were done before the snapshot.
    expect(purger.stats().purged).toBe(211 + 28 - 60)
    await purgeAll(a.fs)
    // The same state as the replica that purged everything itself (but the applied index).
    const sa = a.sm.module<Namespace>('fs')
    expect(nsOf(b).inodeCount).toBe(sa.inodeCount)
    expect(await fsB.contentSummary(SU, '/')).toEqual(await a.fs.contentSummary(SU, '/'))
  })

  it('the purge loop wakes on a detach and does nothing off the leader', async () => {
    const { fs, sm } = makeFs()
    let leader = false
    const purger = createSubtreePurger({
      ns: () => nsOf(sm),
      purgeStep: () => fs.purgeDetachedStep(),
      isLeader: () => leader,
      intervalMs: 3_600_000, // never by the timer in this test: only the wake-up
      log: silentFsLogger,
    })
    purger.start()
    try {
      await tree(fs, '/t', 2, 50)
      await fs.delete(SU, '/t', { recursive: true })
      await new Promise((r) => setImmediate(r))
      expect(nsOf(sm).detachedCount).toBe(1)
      leader = true
      await fs.create(SU, '/u/f', enc('x'))
      await fs.delete(SU, '/u', { recursive: true })
      await waitFor(() => nsOf(sm).detachedCount === 0, { what: 'the purge to finish' })
    } finally {
      await purger.stop()
    }
  })
})

describe('content summary of a big tree', () => {
  it('counts in chunks and lets the event loop run between them', async () => {
    const { fs, sm } = makeFs()
    const inodes = await tree(fs, '/big', 20, 100)
    let turns = 0
    let done = false
    const tick = (): void => {
      turns++
      if (!done) setImmediate(tick)
    }
    setImmediate(tick)
    const s = await nsOf(sm).contentSummary(SU, '/big', { batchInodes: 100 })
    done = true
    expect(s).toMatchObject({ fileCount: 2001, directoryCount: inodes - 2001, length: 2001 })
    // 2,026 inodes in chunks of 100: the loop turned at least once per chunk.
    expect(turns).toBeGreaterThanOrEqual(20)
    // The same totals in one go.
    expect(await nsOf(sm).contentSummary(SU, '/big', { batchInodes: 1_000_000 })).toEqual(s)
  })

  it('checks READ_EXECUTE on every directory it enters, and stops when aborted', async () => {
    const { fs, sm } = makeFs()
    await withUsers(fs)
    for (let i = 0; i < 50; i++) await fs.create(ALICE, `/home/alice/open/f${i}`, enc('x'))
    await fs.mkdirs(ALICE, '/home/alice/open/zz-closed', { permission: 0o700 })
    await fs.create(ALICE, '/home/alice/open/zz-closed/f', enc('x'))
    expect(await fs.contentSummary(ALICE, '/home/alice/open')).toMatchObject({ fileCount: 51 })
    await fs.setOwner(SU, '/home/alice/open/zz-closed', 'bob', 'bob')
    await fails(nsOf(sm).contentSummary(ALICE, '/home/alice/open', { batchInodes: 10 }), 'ACCESS_DENIED')
    const ac = new AbortController()
    const p = nsOf(sm).contentSummary(SU, '/home', { batchInodes: 5, signal: ac.signal })
    ac.abort()
    await expect(p).rejects.toThrow()
  })
})
