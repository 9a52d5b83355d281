// Subtree operations (issue 13 item 2): a Delete, Rename or SetQuota whose subtree is larger than one
// command may walk (subtreeBatchInodes) runs as HopsFS's protocol of small transactions — lock the
// directory in one command, walk it outside apply, commit in another — so that no apply walks more than
// the budget; the lock keeps the subtree still meanwhile and a dead owner's lock expires by command time.
import { describe, expect, it } from 'vitest'
import { createFsService, namespaceModule, type Caller, type FsService } from '../../src/fs/index.js'
import {
  createLocalGroup,
  createMetaStateMachine,
  encodeCommand,
  type MetaStateMachine,
} from '../../src/meta/index.js'
import { ALICE, enc, fails, nsOf, SU, withUsers } from './harness.js'

const BATCH = 500

/** A one-replica file system, a second service on it that never waits for locks, a raw proposer. */
function makeWorld(): {
  sm: MetaStateMachine
  fs: FsService
  impatient: FsService
  clock: { now: number }
  propose(cmd: Parameters<typeof encodeCommand>[0]): Promise<{ ok: boolean; code?: string; value?: unknown }>
} {
  const sm = createMetaStateMachine({ modules: [namespaceModule()] })
  const group = createLocalGroup(sm)
  const clock = { now: 1_700_000_000_000 }
  const fs = createFsService({ consensus: group, stateMachine: sm, clock: () => clock.now })
  const impatient = createFsService({
    consensus: group,
    stateMachine: sm,
    clock: () => clock.now,
    subtreeLockWaitMs: 0,
  })
  return {
    sm,
    fs,
    impatient,
    clock,
    propose: async (cmd) => (await group.propose(encodeCommand(cmd))) as { ok: boolean; code?: string },
  }
}

/** `dirs` directories of `perDir` one-byte files under `root`, written as `who`: the inodes made. */
async function tree(fs: FsService, who: Caller, root: string, dirs: number, perDir: number): Promise<number> {
  for (let d = 0; d < dirs; d++)
    for (let f = 0; f < perDir; f++) await fs.create(who, `${root}/d${d}/f${f}`, enc('x'))
  return 1 + dirs * (perDir + 1)
}

async function setBatches(fs: FsService): Promise<void> {
  await fs.setSetting(SU, 'subtreeBatchInodes', String(BATCH))
  await fs.setSetting(SU, 'purgeBatchInodes', String(BATCH))
  await fs.setSetting(SU, 'contentSummaryBatchInodes', '200')
}

async function purgeAll(fs: FsService): Promise<void> {
  for (let i = 0; i < 10_000; i++) if ((await fs.purgeDetachedStep()).remaining === 0) return
  throw new Error('the purge does not end')
}

describe('subtree operations', () => {
  it('a recursive delete of 20,000 inodes by their owner: no apply walks more than subtreeBatchInodes', async () => {
    const { fs, sm } = makeWorld()
    await withUsers(fs)
    await fs.mkdirs(SU, '/home/alice/q')
    await fs.setOwner(SU, '/home/alice/q', 'alice', 'staff')
    await fs.setQuota(SU, '/home/alice/q', { namespace: 100_000 })
    const inodes = await tree(fs, ALICE, '/home/alice/q/big', 100, 199)
    expect(inodes).toBe(20_001)
    await fs.create(ALICE, '/home/alice/q/keep', enc('k'))
    await setBatches(fs)
    expect(await fs.quotaUsage(SU, '/home/alice/q')).toMatchObject({ fileAndDirectoryCount: inodes + 2 })
    const before = nsOf(sm).subtreeWalkStats.maxApplyInodes
    expect(before).toBeLessThanOrEqual(BATCH)

    expect(await fs.delete(ALICE, '/home/alice/q/big', { recursive: true })).toBe(true)
    expect(fs.subtreeOpCount).toBe(1)
    // The check of WRITE on every directory and the measurement for the quota above ran outside apply.
    expect(nsOf(sm).subtreeWalkStats.maxApplyInodes).toBeLessThanOrEqual(BATCH)
    expect(nsOf(sm).subtreeLockCount).toBe(0)
    await fails(fs.stat(ALICE, '/home/alice/q/big/d7/f3'), 'FILE_NOT_FOUND')
    // The walk's measurement left the quota above exact.
    expect(await fs.quotaUsage(SU, '/home/alice/q')).toMatchObject({
      fileAndDirectoryCount: 2,
      spaceConsumed: 3,
    })
    await purgeAll(fs)
    expect(nsOf(sm).subtreeWalkStats.maxApplyInodes).toBeLessThanOrEqual(BATCH)
    expect(nsOf(sm).inodeCount).toBe(6) // /, /home, /home/alice, /shared, /home/alice/q, keep
  }, 60_000)

  it('one unwritable directory deep in a big tree refuses the whole delete and changes nothing', async () => {
    const { fs, sm } = makeWorld()
    await withUsers(fs)
    await tree(fs, ALICE, '/home/alice/t', 10, 100)
    // In the directory the check reaches last (a depth-first walk takes d9 first).
    await fs.create(ALICE, '/home/alice/t/d0/deep/a/b/f', enc('x'))
    await fs.setOwner(SU, '/home/alice/t/d0/deep/a', 'bob', 'bob')
    await setBatches(fs)
    const summary = await fs.contentSummary(SU, '/home/alice/t')
    const count = nsOf(sm).inodeCount
    await fails(fs.delete(ALICE, '/home/alice/t', { recursive: true }), 'ACCESS_DENIED')
    expect(fs.subtreeOpCount).toBe(1)
    expect(nsOf(sm).subtreeWalkStats.maxApplyInodes).toBeLessThanOrEqual(BATCH)
    expect(await fs.contentSummary(SU, '/home/alice/t')).toEqual(summary)
    expect(nsOf(sm).inodeCount).toBe(count)
    expect(nsOf(sm).detachedCount).toBe(0)
    // The lock went with the refusal: alice may still write there and delete what is hers.
    expect(nsOf(sm).subtreeLockCount).toBe(0)
    await fs.create(ALICE, '/home/alice/t/d0/new', enc('x'))
    expect(await fs.delete(ALICE, '/home/alice/t/d1', { recursive: true })).toBe(true)
  })

  it('a small tree is still deleted in one command, with the same refusal', async () => {
    const { fs } = makeWorld()
    await withUsers(fs)
    await tree(fs, ALICE, '/home/alice/s', 3, 3)
    await fs.create(ALICE, '/home/alice/s/d1/x/f', enc('x'))
    await fs.setOwner(SU, '/home/alice/s/d1/x', 'bob', 'bob')
    await fails(fs.delete(ALICE, '/home/alice/s', { recursive: true }), 'ACCESS_DENIED')
    await fs.setOwner(SU, '/home/alice/s/d1/x', 'alice', 'bob')
    expect(await fs.delete(ALICE, '/home/alice/s', { recursive: true })).toBe(true)
    expect(fs.subtreeOpCount).toBe(0)
  })

  it('writes inside a subtree being deleted are refused (SUBTREE_LOCKED) or wait for the delete', async () => {
    const { fs, impatient, sm } = makeWorld()
    await withUsers(fs)
    await tree(fs, ALICE, '/home/alice/big', 20, 150)
    const { fileId } = await fs.create(ALICE, '/home/alice/big/d3/open', enc('a'), {
      close: false,
      clientName: 'w1',
    })
    await setBatches(fs)
    await fs.setSetting(SU, 'contentSummaryBatchInodes', '20') // many yields: room to act in between
    const deleting = fs.delete(ALICE, '/home/alice/big', { recursive: true })
    while (nsOf(sm).subtreeLockCount === 0) await new Promise((r) => setImmediate(r))
    // Locked: a create inside, a writer by inode id, a rename out of it, a delete of a directory above.
    await fails(impatient.create(ALICE, '/home/alice/big/d1/new', enc('n')), 'SUBTREE_LOCKED')
    await fails(
      impatient.append(ALICE, '/home/alice/big/d3/open', enc('b'), {
        fileId,
        clientName: 'w1',
        close: false,
      }),
      'SUBTREE_LOCKED',
    )
    await fails(impatient.rename(ALICE, '/home/alice/big/d2', '/home/alice/moved'), 'SUBTREE_LOCKED')
    await fails(impatient.delete(SU, '/home', { recursive: true }), 'SUBTREE_LOCKED')
    await fails(impatient.rename(SU, '/home/alice', '/elsewhere'), 'SUBTREE_LOCKED')
    // Outside the subtree nothing waits.
    await impatient.create(ALICE, '/home/alice/beside', enc('x'))
    // A patient writer waits for the delete, then creates the file (and its parents) anew.
    const creating = fs.create(ALICE, '/home/alice/big/d1/new', enc('n'))
    expect(await deleting).toBe(true)
    await creating
    expect((await fs.list(ALICE, '/home/alice/big')).entries.map((e) => e.name)).toEqual(['d1'])
    expect((await fs.list(ALICE, '/home/alice/big/d1')).entries.map((e) => e.name)).toEqual(['new'])
    await fails(fs.stat(ALICE, '/home/alice/big/d2/f0'), 'FILE_NOT_FOUND')
    expect(nsOf(sm).subtreeLockCount).toBe(0)
  })

  it('a lock whose owner died expires by command time; a commit must hold its lock', async () => {
    const { fs, impatient, sm, clock, propose } = makeWorld()
    await withUsers(fs)
    await tree(fs, ALICE, '/home/alice/t', 2, 3)
    const now = clock.now
    const lock = await propose({
      nowMs: now,
      user: 'alice',
      groups: ['staff'],
      lockSubtree: { path: '/home/alice/t', opId: 'dead-node-op', op: 'delete' },
    })
    expect(lock).toMatchObject({ ok: true })
    const inodeId = (lock.value as { inodeId: number }).inodeId
    // Another lock on, above or below it is refused while it lives.
    const other = await propose({
      nowMs: now + 1,
      user: 'hopsd',
      lockSubtree: { path: '/home/alice', opId: 'o2', op: 'delete' },
    })
    expect(other).toMatchObject({ ok: false, code: 'SUBTREE_LOCKED' })
    // A commit that does not hold the lock is refused and changes nothing: the walk cannot be skipped.
    const forged = await propose({
      nowMs: now + 2,
      user: 'alice',
      groups: ['staff'],
      delete: {
        path: '/home/alice/t',
        recursive: true,
        subtree: { opId: 'forged', inodeId, checked: true, namespaceUsed: 1, storagespaceUsed: 0 },
      },
    })
    expect(forged).toMatchObject({ ok: false, code: 'SUBTREE_LOCKED' })
    // Nor may another user release it.
    const release = await propose({
      nowMs: now + 3,
      user: 'bob',
      unlockSubtree: { inodeId, opId: 'dead-node-op' },
    })
    expect(release).toMatchObject({ ok: false, code: 'ACCESS_DENIED' })
    clock.now = now + 1_000
    await fails(impatient.create(ALICE, '/home/alice/t/d0/x', enc('x')), 'SUBTREE_LOCKED')
    // subtreeLockTimeoutMs after the lock command, commands go through again, and a new lock takes over.
    clock.now = now + sm.settings().subtreeLockTimeoutMs
    await impatient.create(ALICE, '/home/alice/t/d0/x', enc('x'))
    await fs.setSetting(SU, 'subtreeBatchInodes', '3')
    expect(await fs.delete(ALICE, '/home/alice/t', { recursive: true })).toBe(true)
    expect(fs.subtreeOpCount).toBe(1)
    expect(nsOf(sm).subtreeLockCount).toBe(0)
  })

  it("a commit must hold a lock its own user took: another user cannot ride on its walk's result", async () => {
    const { fs, sm, clock, propose } = makeWorld()
    await withUsers(fs)
    // bob may write in /home/alice/shared, but not inside alice's tree t (0755 directories).
    await fs.mkdirs(ALICE, '/home/alice/shared', { permission: 0o777 })
    await tree(fs, ALICE, '/home/alice/shared/t', 2, 3)
    const lock = await propose({
      nowMs: clock.now,
      user: 'alice',
      groups: ['staff'],
      lockSubtree: { path: '/home/alice/shared/t', opId: 'alice-op', op: 'delete' },
    })
    expect(lock).toMatchObject({ ok: true })
    const inodeId = (lock.value as { inodeId: number }).inodeId
    const riding = await propose({
      nowMs: clock.now + 1,
      user: 'bob',
      groups: ['staff'],
      delete: {
        path: '/home/alice/shared/t',
        recursive: true,
        subtree: { opId: 'alice-op', inodeId, checked: true, namespaceUsed: 9, storagespaceUsed: 0 },
      },
    })
    expect(riding).toMatchObject({ ok: false, code: 'SUBTREE_LOCKED' })
    expect((await fs.stat(ALICE, '/home/alice/shared/t/d0/f0')).length).toBe(1)
    expect(nsOf(sm).subtreeLockCount).toBe(1)
  })

  it('a rename between quota directories and a first quota measure big subtrees outside apply', async () => {
    const { fs, sm } = makeWorld()
    await fs.mkdirs(SU, '/q1')
    await fs.mkdirs(SU, '/q2')
    await fs.setQuota(SU, '/q1', { namespace: 10_000, storagespace: 1_000_000 })
    await fs.setQuota(SU, '/q2', { namespace: 10_000, storagespace: 1_000_000 })
    const inodes = await tree(fs, SU, '/q1/big', 10, 150)
    await tree(fs, SU, '/q2/other', 2, 10)
    await setBatches(fs)
    const q2 = await fs.quotaUsage(SU, '/q2')
    await fs.rename(SU, '/q1/big', '/q2/big')
    expect(fs.subtreeOpCount).toBe(1)
    expect(await fs.quotaUsage(SU, '/q1')).toMatchObject({ fileAndDirectoryCount: 1, spaceConsumed: 0 })
    expect(await fs.quotaUsage(SU, '/q2')).toMatchObject({
      fileAndDirectoryCount: q2.fileAndDirectoryCount + inodes,
      spaceConsumed: q2.spaceConsumed + 1500 * 3,
    })
    // A first quota on a big directory: measured by the walk, then kept by every command.
    await fs.setQuota(SU, '/q2/big', { namespace: 50_000 })
    expect(fs.subtreeOpCount).toBe(2)
    expect(await fs.quotaUsage(SU, '/q2/big')).toMatchObject({
      fileAndDirectoryCount: inodes,
      spaceConsumed: 1500 * 3,
    })
    // The legacy rename too, back into /q1.
    expect(await fs.renameLegacy(SU, '/q2/big', '/q1')).toBe(true)
    expect(await fs.quotaUsage(SU, '/q1')).toMatchObject({ fileAndDirectoryCount: 1 + inodes })
    expect(nsOf(sm).subtreeWalkStats.maxApplyInodes).toBeLessThanOrEqual(BATCH)
    expect(nsOf(sm).subtreeLockCount).toBe(0)
  })

  it('a commit that commits gives its lock back, even when it answers false (a legacy rename)', async () => {
    const { fs, sm, clock, propose } = makeWorld()
    await tree(fs, SU, '/t', 2, 2)
    const lock = await propose({
      nowMs: clock.now,
      user: 'hopsd',
      lockSubtree: { path: '/t', opId: 'r1', op: 'rename' },
    })
    const inodeId = (lock.value as { inodeId: number }).inodeId
    expect(nsOf(sm).subtreeLockCount).toBe(1)
    const r = await propose({
      nowMs: clock.now,
      user: 'hopsd',
      rename: {
        src: '/t',
        dst: '/missing/x',
        legacy: true,
        subtree: { opId: 'r1', inodeId, checked: false, namespaceUsed: 7, storagespaceUsed: 12 },
      },
    })
    expect(r).toMatchObject({ ok: true, value: { renamed: false } })
    expect(nsOf(sm).subtreeLockCount).toBe(0)
  })

  it('replicas agree: the lock table is replicated state, restored from a snapshot', async () => {
    const { fs, sm, clock, propose } = makeWorld()
    await tree(fs, SU, '/t', 2, 2)
    await propose({ nowMs: clock.now, user: 'hopsd', lockSubtree: { path: '/t', opId: 'op1', op: 'rename' } })
    const b = createMetaStateMachine({ modules: [namespaceModule()] })
    b.restore(sm.snapshot())
    expect(nsOf(b).subtreeLockCount).toBe(1)
    // Restored, the lock is the same row (and the derived index knows it).
    expect(b.snapshot()).toEqual(sm.snapshot())
  })
})
