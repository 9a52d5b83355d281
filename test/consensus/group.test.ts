import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import {
  StateType,
  createMemoryNetwork,
  createMemoryStorage,
  createRaftGroup,
  createSeededRng,
  isConsensusError,
  openLevelStorage,
  type MemoryStorage,
} from '../../src/consensus/index.js'
import { makeTempDir, removeTempDirs, waitFor } from '../helpers/index.js'
import { KvMachine, LaterKvMachine, PiecesKvMachine, TestCluster, enc } from './group-harness.js'

let cluster: TestCluster | null = null
afterEach(async () => {
  await cluster?.stopAll()
  cluster = null
})
afterAll(() => removeTempDirs())

describe('RaftGroup over the memory network', () => {
  it('3 nodes elect, apply N commands in the same order everywhere', async () => {
    cluster = await TestCluster.bootstrap(['a', 'b', 'c'])
    const leader = await cluster.leader()
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => leader.group.propose(enc(`set k${i % 5} v${i}`))),
    )
    expect(results.slice(0, 5)).toEqual([null, null, null, null, null])
    const idx = leader.group.status().appliedIndex
    await cluster.allApplied(idx)
    const cmds = leader.sm.commands
    for (const id of ['a', 'b', 'c']) expect(cluster.get(id).sm.commands).toEqual(cmds)
  })

  it('a follower forwards proposals and resolves with the result when it applies them', async () => {
    cluster = await TestCluster.bootstrap(['a', 'b', 'c'])
    const leader = await cluster.leader()
    const follower = [...cluster.members.values()].find((m) => m.id !== leader.id)!
    const r1 = await follower.group.propose(enc('incr x'))
    const r2 = await follower.group.propose(enc('incr x'))
    expect([r1, r2]).toEqual([1, 2])
  })

  it('sessions: a retried (clientId, seq) is applied once and answers the same result', async () => {
    cluster = await TestCluster.bootstrap(['a', 'b', 'c'])
    const leader = await cluster.leader()
    const follower = [...cluster.members.values()].find((m) => m.id !== leader.id)!
    const session = { clientId: 'c1', seq: 1 }
    const [a, b] = await Promise.all([
      leader.group.propose(enc('incr n'), { session }),
      follower.group.propose(enc('incr n'), { session }),
    ])
    const c = await leader.group.propose(enc('incr n'), { session })
    expect([a, b, c]).toEqual([1, 1, 1])
    expect(await leader.group.propose(enc('incr n'), { session: { clientId: 'c1', seq: 2 } })).toBe(2)
    await cluster.allApplied(leader.group.status().appliedIndex)
    for (const m of cluster.members.values()) expect(m.sm.data.get('n')).toBe('2')
  })

  it('readBarrier on leader and follower sees every write committed before it', async () => {
    cluster = await TestCluster.bootstrap(['a', 'b', 'c'])
    const leader = await cluster.leader()
    const follower = [...cluster.members.values()].find((m) => m.id !== leader.id)!
    await leader.group.propose(enc('set r 1'))
    await Promise.all([
      leader.group.readBarrier(),
      follower.group.readBarrier(),
      follower.group.readBarrier(),
    ])
    expect(follower.sm.data.get('r')).toBe('1')
    expect(leader.sm.data.get('r')).toBe('1')
  })

  it('killing the leader elects a new one and loses no committed entry', async () => {
    cluster = await TestCluster.bootstrap(['a', 'b', 'c'])
    const leader = await cluster.leader()
    for (let i = 0; i < 20; i++) await leader.group.propose(enc(`set k ${i}`))
    await cluster.stop(leader.id)
    const next = await cluster.leader()
    expect(next.id).not.toBe(leader.id)
    expect(next.sm.data.get('k')).toBe('19')
    expect(await next.group.propose(enc('set k 20'))).toBe('19')
  })

  it("the leader's progress says how long ago each member's Raft messages arrived (liveness Raft sees)", async () => {
    cluster = await TestCluster.bootstrap(['a', 'b', 'c'])
    const leader = await cluster.leader()
    const [f1, f2] = [...cluster.members.values()].filter((m) => m.id !== leader.id)
    // Followers answer every heartbeat (10 ms ticks here): heard within a few ticks.
    await waitFor(
      () => {
        const p = leader.group.status().progress!
        return p[f1!.id]!.heardAgoMs < 200 && p[f2!.id]!.heardAgoMs < 200 && p[leader.id]!.heardAgoMs === 0
      },
      { timeoutMs: 5000, what: 'every follower heard recently' },
    )
    cluster.net.isolate(f1!.id)
    // The isolated follower falls silent while the other keeps answering.
    await waitFor(() => leader.group.status().progress![f1!.id]!.heardAgoMs > 500, {
      timeoutMs: 5000,
      what: 'the isolated follower to fall silent',
    })
    expect(leader.group.status().progress![f2!.id]!.heardAgoMs).toBeLessThan(200)
    cluster.net.heal()
  })

  it('a partitioned minority leader cannot commit; its proposal times out or is dropped', async () => {
    cluster = await TestCluster.bootstrap(['a', 'b', 'c'], { config: { proposalTimeoutMs: 400 } })
    const old = await cluster.leader()
    cluster.net.isolate(old.id)
    const p = old.group.propose(enc('set lost 1'))
    const err = await p.then(
      () => null,
      (e: unknown) => e,
    )
    expect(isConsensusError(err)).toBe(true)
    cluster.net.heal()
    const l = await cluster.leader()
    await l.group.propose(enc('set after 1'))
    await cluster.allApplied(l.group.status().appliedIndex)
    for (const m of cluster.members.values()) expect(m.sm.data.has('lost')).toBe(false)
  })

  it('a proposal lost with its leader is proposed again and applied once, long before its deadline', async () => {
    cluster = await TestCluster.bootstrap(['a', 'b', 'c'], { config: { proposalTimeoutMs: 20_000 } })
    const old = await cluster.leader()
    const [f1, f2] = [...cluster.members.values()].filter((m) => m.id !== old.id)
    cluster.net.isolate(old.id)
    const t0 = Date.now()
    // Forwarded to the isolated leader: the network drops it. The old leader's own proposal is appended
    // in its term and will be overwritten by the new leader's log.
    const forwarded = f1!.group.propose(enc('incr x'))
    const local = old.group.propose(enc('incr y'))
    await waitFor(() => [f1, f2].some((m) => m!.group.status().role === StateType.Leader), {
      timeoutMs: 10_000,
      intervalMs: 5,
      what: 'a new leader among the majority',
    })
    expect(await forwarded).toBe(1)
    cluster.net.heal()
    expect(await local).toBe(1)
    expect(Date.now() - t0).toBeLessThan(10_000) // the deadline is 20 s
    const l = await cluster.leader()
    await l.group.readBarrier()
    await cluster.allApplied(l.group.status().appliedIndex)
    for (const m of cluster.members.values()) {
      expect(m.sm.data.get('x'), m.id).toBe('1')
      expect(m.sm.data.get('y'), m.id).toBe('1')
    }
  })

  it('membership: add a learner, promote it, remove a voter; the new node catches up by snapshot', async () => {
    cluster = await TestCluster.bootstrap(['a', 'b', 'c'], {
      config: { snapshotEntries: 20, snapshotLogRatio: 0, snapshotChunkBytes: 64 },
    })
    const leader = await cluster.leader()
    for (let i = 0; i < 60; i++) await leader.group.propose(enc(`set k${i} ${i}`))
    const d = await cluster.add('d')
    await leader.group.addLearner('d')
    await waitFor(() => d.sm.data.get('k59') === '59', {
      timeoutMs: 5000,
      intervalMs: 5,
      what: 'learner caught up',
    })
    await expect(leader.group.promoteLearner('zz')).rejects.toMatchObject({ code: 'CONF_CHANGE_INVALID' })
    await leader.group.promoteLearner('d')
    expect(leader.group.status().voters).toEqual(['a', 'b', 'c', 'd'])
    const victim = ['a', 'b', 'c'].find((id) => id !== leader.id)!
    await leader.group.removeNode(victim)
    expect(leader.group.status().voters).not.toContain(victim)
    await cluster.stop(victim)
    expect(await leader.group.propose(enc('set z 1'))).toBe(null)
    await cluster.allApplied(leader.group.status().appliedIndex)
    expect(d.sm.data.get('z')).toBe('1')
  })

  it('snapshotLogRatio: a large state is snapshotted again only once the log since holds as many bytes', async () => {
    cluster = await TestCluster.bootstrap(['a'], { config: { snapshotEntries: 5, snapshotLogRatio: 1 } })
    const m = cluster.get('a')
    let snapshots = 0
    const take = m.sm.snapshot.bind(m.sm)
    m.sm.snapshot = () => {
      snapshots++
      return take()
    }
    const big = 'x'.repeat(20_000)
    await m.group.propose(enc(`set big ${big}`))
    for (let i = 0; i < 5; i++) await m.group.propose(enc(`set k${i} ${i}`))
    // snapshotEntries reached; the first snapshot is ~20 KB
    await waitFor(() => snapshots === 1, { timeoutMs: 5000, intervalMs: 5, what: 'the first snapshot' })
    // 40 more small entries (far under 20 KB of log): snapshotEntries alone would have taken 8 more.
    for (let i = 0; i < 40; i++) await m.group.propose(enc(`set s${i} ${i}`))
    expect(snapshots).toBe(1)
    await m.group.propose(enc(`set big2 ${big}`)) // the log since now outweighs the snapshot
    await waitFor(() => snapshots === 2, { timeoutMs: 5000, intervalMs: 5, what: 'the second snapshot' })
  })

  for (const later of [false, true])
    it(`restarts from LevelDB after snapshots taken ${later ? 'in the background' : 'inline'}, lagging follower catches up by snapshot`, async () => {
      const dir = makeTempDir('raft-level-snap-')
      cluster = await TestCluster.bootstrap(['a', 'b', 'c'], {
        levelDir: dir,
        laterSnapshots: later,
        config: { snapshotEntries: 10, snapshotLogRatio: 0 },
      })
      const leader = await cluster.leader()
      const lagging = ['a', 'b', 'c'].find((id) => id !== leader.id)!
      await cluster.stop(lagging)
      // Concurrent proposals: entries keep being applied while a background snapshot is encoded.
      for (let round = 0; round < 6; round++)
        await Promise.all(
          Array.from({ length: 10 }, (_, i) => leader.group.propose(enc(`set k${round * 10 + i} ${round}`))),
        )
      if (later) expect((leader.sm as LaterKvMachine).encodes).toBeGreaterThan(0)
      // The lagging follower comes back from its own disk and needs the log the others compacted.
      const back = await cluster.add(lagging)
      await waitFor(() => back.sm.data.get('k59') === '5', {
        timeoutMs: 10_000,
        intervalMs: 5,
        what: 'the lagging follower caught up by snapshot',
      })
      for (let i = 0; i < 60; i++) expect(back.sm.data.get(`k${i}`)).toBe(String(Math.floor(i / 10)))
    })

  it('snapshots in pieces: written to the file as encoded, received into a file in chunks, restored in pieces at restart and catch-up', async () => {
    const dir = makeTempDir('raft-level-pieces-')
    cluster = await TestCluster.bootstrap(['a', 'b', 'c'], {
      levelDir: dir,
      piecesSnapshots: true,
      config: { snapshotEntries: 10, snapshotLogRatio: 0, snapshotChunkBytes: 64 },
    })
    const leader = await cluster.leader()
    const lagging = ['a', 'b', 'c'].find((id) => id !== leader.id)!
    await cluster.stop(lagging)
    for (let round = 0; round < 6; round++)
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          leader.group.propose(enc(`set k${round * 10 + i} ${'v'.repeat(i)}`)),
        ),
      )
    // Compacted past where the lagging follower stopped: it can only catch up by snapshot. (A snapshot
    // is taken after an apply: one written while the last entries applied needs one more to follow.)
    let extra = 0
    await waitFor(
      async () => {
        if (leader.group.status().snapshots!.index >= 50) return true
        await leader.group.propose(enc(`set extra ${extra++}`))
        return false
      },
      { timeoutMs: 10_000, intervalMs: 20, what: 'a snapshot encoded in pieces, and the log compacted' },
    )
    expect((leader.sm as PiecesKvMachine).piecesEncoded).toBeGreaterThan(0)
    // Far behind the others' compacted logs: the snapshot comes in 64-byte chunks, into a file.
    const back = await cluster.add(lagging)
    await waitFor(() => back.sm.data.get('k59') === 'v'.repeat(9), {
      timeoutMs: 10_000,
      intervalMs: 5,
      what: 'the lagging follower caught up by snapshot',
    })
    expect((back.sm as PiecesKvMachine).piecesRestores).toBeGreaterThan(0)
    for (let i = 0; i < 60; i++) expect(back.sm.data.get(`k${i}`)).toBe('v'.repeat(i % 10))
    // Counted once the install completes (the state is restored a moment before).
    await waitFor(() => back.group.status().snapshots!.installed > 0, {
      timeoutMs: 5000,
      intervalMs: 5,
      what: 'the install counted',
    })
    // The leader restarted: its snapshot is loaded from the file in pieces, not whole.
    const leaderId = leader.id
    await cluster.stop(leaderId)
    const again = await cluster.add(leaderId)
    expect((again.sm as PiecesKvMachine).piecesRestores).toBe(1)
    await waitFor(() => again.sm.data.get('k59') === 'v'.repeat(9), {
      timeoutMs: 10_000,
      intervalMs: 5,
      what: 'the restarted leader holds the state',
    })
  })

  it('the mirror keeps no snapshot data and a bounded log; a lagging follower still gets the snapshot, read from storage', async () => {
    cluster = await TestCluster.bootstrap(['a', 'b', 'c'], {
      config: { snapshotEntries: 10, snapshotLogRatio: 0, snapshotChunkBytes: 64, logCacheBytes: 300 },
    })
    const leader = await cluster.leader()
    const lagging = ['a', 'b', 'c'].find((id) => id !== leader.id)!
    const disk = cluster.get(lagging).storage as MemoryStorage
    await cluster.stop(lagging)
    for (let i = 0; i < 60; i++) await leader.group.propose(enc(`set k${i} ${'v'.repeat(i)}`))
    const st = leader.group.status()
    expect(st.log!.snapshotDataBytes).toBe(0)
    expect(st.log!.bytes).toBeLessThanOrEqual(300)
    // The follower comes back with what its disk held; the others compacted the log it lacks.
    const back = await cluster.add(lagging, createMemoryStorage(disk.contents()))
    await waitFor(() => back.sm.data.get('k59') === 'v'.repeat(59), {
      timeoutMs: 10_000,
      intervalMs: 5,
      what: 'the lagging follower caught up by snapshot',
    })
    for (let i = 0; i < 60; i++) expect(back.sm.data.get(`k${i}`)).toBe('v'.repeat(i))
    for (const m of cluster.members.values()) expect(m.group.status().log!.snapshotDataBytes, m.id).toBe(0)
  })

  it('entries beyond the in-memory bound are read back from storage for a lagging follower', async () => {
    cluster = await TestCluster.bootstrap(['a', 'b', 'c'], {
      config: { logCacheBytes: 200, maxBatchBytes: 256 },
    })
    const leader = await cluster.leader()
    const lagging = ['a', 'b', 'c'].find((id) => id !== leader.id)!
    const disk = cluster.get(lagging).storage as MemoryStorage
    await cluster.stop(lagging)
    const before = leader.group.status().log!.readBackEntries
    for (let i = 0; i < 60; i++) await leader.group.propose(enc(`set k${i} ${i}`))
    expect(leader.group.status().log!.entries).toBeLessThan(10)
    const back = await cluster.add(lagging, createMemoryStorage(disk.contents()))
    await cluster.allApplied(leader.group.status().appliedIndex, 10_000)
    // No snapshot was taken (snapshotEntries 10,000): the follower applied every command, in order.
    expect(back.sm.commands).toEqual(leader.sm.commands.slice(-back.sm.commands.length))
    for (let i = 0; i < 60; i++) expect(back.sm.data.get(`k${i}`)).toBe(String(i))
    expect(back.sm.commands.filter((c) => c.startsWith('set k')).length).toBe(60)
    expect(leader.group.status().log!.readBackEntries - before).toBeGreaterThanOrEqual(50)
  })

  it('after a restart from LevelDB, the snapshot loaded to restore the state machine is not kept', async () => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const dir = makeTempDir('raft-level-gc-')
    cluster = await TestCluster.bootstrap(['a'], {
      levelDir: dir,
      config: { snapshotEntries: 5, snapshotLogRatio: 0 },
    })
    const a = cluster.get('a')
    for (let i = 0; i < 12; i++) await a.group.propose(enc(`set k${i} ${'x'.repeat(1000)}`))
    await waitFor(() => a.group.status().log!.entries < 12, { what: 'a snapshot' })
    await cluster.stop('a')
    const storage = await openLevelStorage(`${dir}/a`)
    let loaded: WeakRef<ArrayBufferLike> | undefined
    const load = storage.load.bind(storage)
    storage.load = async () => {
      const st = await load()
      if (st.snapshot) loaded = new WeakRef(st.snapshot.data.buffer) // the memory, not one view of it
      return st
    }
    const back = await cluster.add('a', storage)
    await waitFor(() => back.sm.data.get('k11') === 'x'.repeat(1000), { what: 'the restarted node applied' })
    expect(loaded?.deref()?.byteLength).toBeGreaterThan(5000)
    await waitFor(
      async () => {
        await new Promise<void>((resolve) => setImmediate(resolve))
        gc()
        return loaded!.deref() === undefined
      },
      { timeoutMs: 2000, intervalMs: 10, what: 'the loaded snapshot collected' },
    )
  })

  it('transfers leadership', async () => {
    cluster = await TestCluster.bootstrap(['a', 'b', 'c'])
    const leader = await cluster.leader()
    const target = ['a', 'b', 'c'].find((id) => id !== leader.id)!
    await leader.group.transferLeadership(target)
    expect((await cluster.leader()).id).toBe(target)
  })

  it('a durable state ahead of the raft log it came from is refused at start (STATE_MISMATCH)', async () => {
    const sm = new KvMachine()
    const durable = {
      open: async () => ({ appliedIndex: 5, sessions: [] }),
      persist: () => {},
      sync: async () => {},
    }
    const group = createRaftGroup({
      id: 'a',
      storage: createMemoryStorage(), // an empty log: the store cannot have come from it
      transport: createMemoryNetwork().transport('a'),
      stateMachine: Object.assign(sm, { durable }),
      rng: createSeededRng(1),
    })
    await expect(group.start()).rejects.toMatchObject({ code: 'STATE_MISMATCH' })
  })

  it('a state machine that throws stops the group with APPLY_FAILED, a failed storage write with STORAGE_FAILED', async () => {
    cluster = await TestCluster.bootstrap(['a', 'b', 'c'])
    const leader = await cluster.leader()
    const follower = [...cluster.members.values()].find((m) => m.id !== leader.id)!
    const stopped: { id: string; code: string | undefined }[] = []
    for (const m of cluster.members.values())
      m.group.subscribe((ev) => {
        if (ev.type === 'stopped') stopped.push({ id: m.id, code: (ev.error as { code?: string })?.code })
      })
    // A bug in one replica's apply (it throws instead of answering a result).
    const apply = follower.sm.apply.bind(follower.sm)
    follower.sm.apply = (entries) => {
      if (entries.some((e) => new TextDecoder().decode(e.data) === 'set bug 1')) throw new Error('a bug')
      return apply(entries)
    }
    await leader.group.propose(enc('set bug 1'))
    await waitFor(() => stopped.some((s) => s.id === follower.id), { what: 'the follower to stop' })
    expect(stopped).toEqual([{ id: follower.id, code: 'APPLY_FAILED' }])
    await expect(follower.group.propose(enc('set x 1'))).rejects.toMatchObject({ code: 'STOPPED' })
    // The others go on; then the leader's disk fails a write.
    expect(await leader.group.propose(enc('set x 2'))).toBe(null)
    leader.storage.write = () => Promise.reject(new Error('EIO: disk gone'))
    await expect(leader.group.propose(enc('set x 3'))).rejects.toMatchObject({ code: 'STORAGE_FAILED' })
    await waitFor(() => stopped.some((s) => s.id === leader.id), { what: 'the leader to stop' })
    expect(stopped.find((s) => s.id === leader.id)?.code).toBe('STORAGE_FAILED')
  })

  for (const logCacheBytes of [undefined, 100])
    it(`restarts from LevelDB storage with exactly what was persisted (log kept in memory: ${logCacheBytes ?? 'default'} bytes)`, async () => {
      const dir = makeTempDir('raft-level-')
      cluster = await TestCluster.bootstrap(['a', 'b', 'c'], {
        levelDir: dir,
        config: { snapshotEntries: 15, snapshotLogRatio: 0, logCacheBytes },
      })
      const leader = await cluster.leader()
      for (let i = 0; i < 40; i++)
        await leader.group.propose(enc(`set k ${i}`), { session: { clientId: 'x', seq: i + 1 } })
      await cluster.allApplied(leader.group.status().appliedIndex)
      await cluster.stopAll()
      for (const id of ['a', 'b', 'c']) await cluster.add(id)
      // A restart applies the log after the snapshot: with a small cache, read back from LevelDB.
      if (logCacheBytes !== undefined)
        for (const m of cluster.members.values())
          expect(m.group.status().log!.readBackEntries).toBeGreaterThan(0)
      const l2 = await cluster.leader()
      await l2.group.readBarrier()
      expect(l2.sm.data.get('k')).toBe('39')
      // The session table survived the restart (through snapshot + log replay): a retry is not re-applied.
      expect(await l2.group.propose(enc('set k again'), { session: { clientId: 'x', seq: 40 } })).toBe('38')
      expect(l2.sm.data.get('k')).toBe('39')
    })
})
