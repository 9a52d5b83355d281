import { describe, expect, it } from 'vitest'
import { newMessage, MessageType, type Entry, type Message } from '../../src/consensus/core/types.js'
import {
  checkDurability,
  checkElectionSafety,
  checkLeaderCompleteness,
  checkLogMatching,
  checkStateMachineSafety,
  RaftInvariants,
} from './checkers.js'
import { createSimDisk, healthyDisk, type DurableLogView } from './disk.js'
import { createKvStateMachine, decodeCommand, encodeCommand } from './kv.js'
import { createSimNetwork, healthyNetwork } from './network.js'
import { createRng } from './rng.js'
import { nodeClock, Scheduler } from './scheduler.js'

const noTrace = (): void => {}

function entry(index: number, term: number, data = `e${index}t${term}`): Entry {
  return {
    index,
    term,
    type: 0,
    data: new TextEncoder().encode(data),
    clientId: '',
    seq: 0,
    origin: '',
    originSeq: 0,
  }
}

function view(
  terms: number[],
  opts: { snapshotIndex?: number; snapshotTerm?: number; hashes?: number[] } = {},
): DurableLogView {
  return {
    snapshotIndex: opts.snapshotIndex ?? 0,
    snapshotTerm: opts.snapshotTerm ?? 0,
    terms,
    hashes: opts.hashes ?? terms.map((t, i) => t * 1000 + i),
    hardState: { term: 0, vote: '', commit: 0 },
  }
}

async function drain(sched: Scheduler): Promise<void> {
  for (let ev = sched.next(); ev !== undefined; ev = sched.next()) {
    ev.run()
    await new Promise((r) => setImmediate(r))
  }
}

describe('rng', () => {
  it('is deterministic per seed and forks independent streams', () => {
    const a = createRng(42)
    const b = createRng(42)
    const xs = Array.from({ length: 20 }, () => a.u32())
    expect(Array.from({ length: 20 }, () => b.u32())).toEqual(xs)
    expect(createRng(43).u32()).not.toBe(xs[0])
    expect(createRng(42).fork('x').u32()).toBe(createRng(42).fork('x').u32())
    expect(createRng(42).fork('x').u32()).not.toBe(createRng(42).fork('y').u32())
  })

  it('draws in range', () => {
    const r = createRng(7)
    const counts = [0, 0, 0]
    for (let i = 0; i < 3000; i++) counts[r.int(3)]!++
    for (const c of counts) expect(c).toBeGreaterThan(900)
    for (let i = 0; i < 1000; i++) {
      const f = r.float()
      expect(f).toBeGreaterThanOrEqual(0)
      expect(f).toBeLessThan(1)
      const x = r.between(-2, 2)
      expect(x).toBeGreaterThanOrEqual(-2)
      expect(x).toBeLessThanOrEqual(2)
    }
  })
})

describe('scheduler', () => {
  it('runs events in time order, ties in scheduling order, and skips cancelled ones', () => {
    const s = new Scheduler()
    const out: string[] = []
    s.after(5, 'a', () => out.push('a'))
    s.after(1, 'b', () => out.push('b'))
    s.after(5, 'c', () => out.push('c'))
    const d = s.after(3, 'd', () => out.push('d'))
    s.after(1, 'e', () => {
      out.push('e')
      s.after(0, 'f', () => out.push('f'))
    })
    s.cancel(d)
    for (let ev = s.next(); ev !== undefined; ev = s.next()) ev.run()
    expect(out).toEqual(['b', 'e', 'f', 'a', 'c'])
    expect(s.now()).toBe(5)
  })

  it('node clocks run at their rate and stop wholesale', () => {
    const s = new Scheduler()
    const fast = nodeClock(s, 'fast', 2, 100)
    const fired: number[] = []
    fast.setTimeout(() => fired.push(s.now()), 10) // 10 local ms = 5 global ms
    const h = fast.setTimeout(() => fired.push(-1), 20)
    fast.clearTimeout(h)
    const slow = nodeClock(s, 'slow', 0.5, 0)
    slow.setTimeout(() => fired.push(s.now()), 10) // 20 global ms
    slow.setTimeout(() => fired.push(-2), 30)
    s.after(25, 'stop', () => slow.stopAll())
    for (let ev = s.next(); ev !== undefined; ev = s.next()) ev.run()
    expect(fired).toEqual([5, 20])
    expect(fast.now()).toBe(100 + 25 * 2)
  })
})

describe('network', () => {
  function msg(from: string, to: string, term: number): Message {
    return newMessage({ type: MessageType.MsgHeartbeat, from, to, term })
  }

  it('delivers decoded copies after a delay, respecting partitions both at send and delivery', async () => {
    const s = new Scheduler()
    const net = createSimNetwork(['a', 'b'], s, createRng(1), healthyNetwork, noTrace)
    const got: Message[] = []
    const ta = net.attach('a', 1)
    const tb = net.attach('b', 1)
    tb.setHandler((m) => got.push(m))
    ta.setHandler(() => {})
    const m1 = msg('a', 'b', 1)
    ta.send('b', m1)
    await drain(s)
    expect(got).toHaveLength(1)
    expect(got[0]).not.toBe(m1)
    expect(got[0]!.term).toBe(1)
    expect(s.now()).toBeGreaterThan(0)

    // Asymmetric: a→b blocked, b→a open.
    net.block('a', 'b')
    const gotA: Message[] = []
    ta.setHandler((m) => gotA.push(m))
    ta.send('b', msg('a', 'b', 2))
    tb.send('a', msg('b', 'a', 3))
    await drain(s)
    expect(got).toHaveLength(1)
    expect(gotA.map((m) => m.term)).toEqual([3])

    // Blocked while in flight: dropped at delivery.
    net.healPartitions()
    ta.send('b', msg('a', 'b', 4))
    net.block('a', 'b')
    await drain(s)
    expect(got).toHaveLength(1)
  })

  it('drops, duplicates and goes dead with the incarnation', async () => {
    const s = new Scheduler()
    const net = createSimNetwork(
      ['a', 'b'],
      s,
      createRng(2),
      { ...healthyNetwork, dropProbability: 0.3, duplicateProbability: 0.3 },
      noTrace,
    )
    let got = 0
    const ta = net.attach('a', 1)
    net.attach('b', 1).setHandler(() => got++)
    for (let i = 0; i < 1000; i++) ta.send('b', msg('a', 'b', i))
    await drain(s)
    expect(net.stats.dropped).toBeGreaterThan(200)
    expect(net.stats.duplicated).toBeGreaterThan(100)
    expect(got).toBe(1000 - net.stats.dropped + net.stats.duplicated)

    // b restarts: the old endpoint's handler is gone, a's old endpoint is replaced.
    const before = got
    net.detach('b')
    ta.send('b', msg('a', 'b', 1))
    await drain(s)
    expect(got).toBe(before)
    net.attach('a', 2)
    const sentBefore = net.stats.sent
    ta.send('b', msg('a', 'b', 1)) // dead incarnation: nothing sent
    expect(net.stats.sent).toBe(sentBefore)
  })
})

describe('disk', () => {
  it('makes writes durable after a delay; a crash loses or keeps the write in flight, never part', async () => {
    for (const keep of [0, 1]) {
      const s = new Scheduler()
      const durableWrites: number[] = []
      const disk = createSimDisk(
        'n1',
        s,
        createRng(3),
        { ...healthyDisk, keepInFlightOnCrashProbability: keep },
        (w) => durableWrites.push(w.batch.entries.length),
        noTrace,
      )
      const p = disk.open(1)
      expect((await p.load()).entries).toEqual([])
      const w1 = p.write({
        hardState: { term: 1, vote: 'n1', commit: 0 },
        entries: [entry(1, 1)],
        snapshot: null,
        compact: null,
      })
      expect(disk.view().terms).toEqual([])
      await drain(s)
      await w1
      expect(disk.view().terms).toEqual([1])
      let settled = false
      void p
        .write({ hardState: null, entries: [entry(2, 1), entry(3, 1)], snapshot: null, compact: null })
        .finally(() => (settled = true))
      disk.crash()
      await drain(s)
      expect(settled).toBe(false)
      expect(disk.view().terms).toEqual(keep ? [1, 1, 1] : [1])
      const p2 = disk.open(2)
      const loaded = await p2.load()
      expect(loaded.entries.map((e) => e.index)).toEqual(keep ? [1, 2, 3] : [1])
      expect(loaded.hardState.term).toBe(1)
      // Truncation: a write at index 2 with a new term replaces the tail.
      const w = p2.write({ hardState: null, entries: [entry(2, 2)], snapshot: null, compact: null })
      await drain(s)
      await w
      expect(disk.view().terms).toEqual([1, 2])
    }
  })

  it('fails writes with I/O errors when told to', async () => {
    const s = new Scheduler()
    const disk = createSimDisk(
      'n1',
      s,
      createRng(4),
      { ...healthyDisk, writeErrorProbability: 1 },
      () => {},
      noTrace,
    )
    const p = disk.open(1)
    const w = p.write({ hardState: null, entries: [entry(1, 1)], snapshot: null, compact: null })
    const outcome = w.then(
      () => 'ok',
      () => 'error',
    )
    await drain(s)
    expect(await outcome).toBe('error')
    expect(disk.stats.errors).toBe(1)
  })
})

describe('kv state machine', () => {
  it('applies read/write/cas deterministically and snapshots/restores', async () => {
    const kv = createKvStateMachine()
    const e = (index: number, cmd: Parameters<typeof encodeCommand>[0]) => ({
      index,
      term: 1,
      data: encodeCommand(cmd),
    })
    const results = await kv.apply([
      e(2, { op: 'write', key: 'x', value: 1 }),
      e(3, { op: 'cas', key: 'x', expected: 1, value: 2 }),
      e(4, { op: 'cas', key: 'x', expected: 1, value: 3 }),
      e(5, { op: 'read', key: 'x' }),
      { index: 6, term: 1, data: new Uint8Array(0) },
    ])
    expect(results).toEqual([
      { op: 'write' },
      { op: 'cas', ok: true, value: 2 },
      { op: 'cas', ok: false, value: 2 },
      { op: 'read', value: 2 },
      { op: 'noop' },
    ])
    expect(decodeCommand(encodeCommand({ op: 'read', key: 'y' }))).toEqual({ op: 'read', key: 'y' })
    const snap = await kv.snapshot()
    const other = createKvStateMachine()
    await other.restore(snap)
    expect(other.get('x')).toBe(2)
    expect(other.appliedIndex).toBe(6)
    expect(() => other.apply([e(6, { op: 'read', key: 'x' })])).toThrow()
  })
})

describe('checkers (pure)', () => {
  it('election safety', () => {
    expect(
      checkElectionSafety([
        { id: 'a', term: 1 },
        { id: 'b', term: 2 },
        { id: 'a', term: 1 },
      ]),
    ).toBeUndefined()
    expect(
      checkElectionSafety([
        { id: 'a', term: 1 },
        { id: 'b', term: 1 },
      ])?.kind,
    ).toBe('election-safety')
  })

  it('log matching', () => {
    const logs = new Map([
      ['a', view([1, 1, 2])],
      ['b', view([1, 1, 3])],
    ])
    expect(checkLogMatching(logs)).toBeUndefined()
    const bad = new Map([
      ['a', view([1, 1, 2], { hashes: [1, 2, 3] })],
      ['b', view([1, 1, 2], { hashes: [1, 9, 3] })],
    ])
    expect(checkLogMatching(bad)?.kind).toBe('log-matching')
  })

  it('leader completeness', () => {
    const committed = new Map([
      [1, 1],
      [2, 1],
    ])
    expect(checkLeaderCompleteness('a', 3, view([1, 1, 3]), committed)).toBeUndefined()
    expect(checkLeaderCompleteness('a', 3, view([1, 2, 3]), committed)?.kind).toBe('leader-completeness')
    expect(
      checkLeaderCompleteness('a', 3, view([3], { snapshotIndex: 2, snapshotTerm: 1 }), committed),
    ).toBeUndefined()
  })

  it('state-machine safety', () => {
    const ok = new Map([
      ['a', new Map([[1, 'x']])],
      [
        'b',
        new Map([
          [1, 'x'],
          [2, 'y'],
        ]),
      ],
    ])
    expect(checkStateMachineSafety(ok)).toBeUndefined()
    const bad = new Map([
      ['a', new Map([[1, 'x']])],
      ['b', new Map([[1, 'z']])],
    ])
    expect(checkStateMachineSafety(bad)?.kind).toBe('state-machine-safety')
  })

  it('durability', () => {
    const logs = new Map([
      ['a', view([1, 1])],
      ['b', view([1])],
      ['c', view([], { snapshotIndex: 2, snapshotTerm: 1 })],
    ])
    expect(checkDurability(2, 1, logs, 2)).toBeUndefined()
    expect(checkDurability(2, 1, logs, 3)?.kind).toBe('durability')
  })
})

describe('RaftInvariants (incremental)', () => {
  it('catches two leaders in one term across time', () => {
    const inv = new RaftInvariants(['a', 'b', 'c'], () => view([]))
    inv.observe({ id: 'a', role: 'leader', term: 2, commitIndex: 0, appliedIndex: 0 }, true)
    inv.observe({ id: 'a', role: 'follower', term: 3, commitIndex: 0, appliedIndex: 0 }, false)
    expect(inv.violation).toBeUndefined()
    inv.observe({ id: 'b', role: 'leader', term: 2, commitIndex: 0, appliedIndex: 0 }, true)
    expect(inv.violation?.kind).toBe('election-safety')
  })

  it('catches an entry with two contents and applied entries that differ', () => {
    const inv = new RaftInvariants(['a', 'b', 'c'], () => view([]))
    inv.onDurableEntries('a', [{ index: 1, term: 1, hash: 5 }], view([1], { hashes: [5] }))
    inv.onDurableEntries('b', [{ index: 1, term: 1, hash: 5 }], view([1], { hashes: [5] }))
    expect(inv.violation).toBeUndefined()
    inv.onDurableEntries('c', [{ index: 1, term: 1, hash: 6 }], view([1], { hashes: [6] }))
    expect(inv.violation?.kind).toBe('log-matching')

    const inv2 = new RaftInvariants(['a', 'b', 'c'], () => view([]))
    inv2.onApply('a', 1, 1, 7)
    inv2.onApply('b', 1, 1, 7)
    expect(inv2.violation).toBeUndefined()
    inv2.onApply('c', 1, 2, 8)
    expect(inv2.violation?.kind).toBe('state-machine-safety')
  })

  it('catches a committed entry that is not on a durable quorum', () => {
    const logs: Record<string, DurableLogView> = { a: view([1]), b: view([]), c: view([]) }
    const inv = new RaftInvariants(['a', 'b', 'c'], (id) => logs[id]!)
    inv.onApply('a', 1, 1, 7)
    inv.checkDurabilityNow()
    expect(inv.violation?.kind).toBe('durability')
  })

  it('catches a leader elected without a committed entry', () => {
    const logs: Record<string, DurableLogView> = { a: view([1, 1]), b: view([1, 1]), c: view([1]) }
    const inv = new RaftInvariants(['a', 'b', 'c'], (id) => logs[id]!)
    inv.onApply('a', 1, 1, 7)
    inv.onApply('a', 2, 1, 8)
    inv.observe({ id: 'c', role: 'leader', term: 2, commitIndex: 2, appliedIndex: 0 }, true)
    expect(inv.violation).toBeUndefined()
    logs.c = view([1, 2])
    inv.onDurableEntries('c', [{ index: 2, term: 2, hash: 1 }], logs.c)
    expect(inv.violation?.kind).toBe('leader-completeness')
  })
})
