import { describe, expect, it } from 'vitest'
import {
  checkHistory,
  describeViolation,
  MalformedHistoryError,
  type HistoryEvent,
  type OpF,
  type Value,
} from './linearizability.js'
import { createRng } from './rng.js'
import { operationsFromHistory, type Operation } from './linearizability.js'

/**
 * A tiny DSL for hand-made histories: each op is [process, f, key, value, invokeTime, completion,
 * completionTime], completion being 'ok' | 'fail' | 'info' | null (never completed). For a read the
 * value is what it returned.
 */
type OpSpec = [number, OpF, string, Value | [Value, Value], number, 'ok' | 'fail' | 'info' | null, number?]

function history(...ops: OpSpec[]): HistoryEvent[] {
  const events: HistoryEvent[] = []
  for (const [process, f, key, value, t0, done, t1] of ops) {
    events.push({ process, type: 'invoke', f, key, value: f === 'read' ? null : value, time: t0 })
    if (done !== null) events.push({ process, type: done, f, key, value, time: t1 ?? t0 + 1 })
  }
  // Order events by time as a recorder would append them (stable for equal times).
  return events
    .map((e, i) => ({ e, i }))
    .sort((a, b) => a.e.time - b.e.time || a.i - b.i)
    .map((x) => x.e)
}

const verdict = (h: HistoryEvent[]) => checkHistory(h).result

describe('linearizability checker: linearizable histories', () => {
  it('accepts the empty history', () => {
    expect(verdict([])).toBe('ok')
  })

  it('accepts sequential write then read', () => {
    expect(verdict(history([0, 'write', 'x', 1, 0, 'ok', 1], [1, 'read', 'x', 1, 2, 'ok', 3]))).toBe('ok')
  })

  it('accepts a read of the initial null value', () => {
    expect(verdict(history([0, 'read', 'x', null, 0, 'ok', 1]))).toBe('ok')
  })

  it('accepts a read concurrent with a write returning either value', () => {
    const base: OpSpec = [0, 'write', 'x', 1, 0, 'ok', 10]
    expect(verdict(history(base, [1, 'read', 'x', null, 2, 'ok', 3]))).toBe('ok')
    expect(verdict(history(base, [1, 'read', 'x', 1, 2, 'ok', 3]))).toBe('ok')
  })

  it('accepts two concurrent writes read in either final order', () => {
    const w1: OpSpec = [0, 'write', 'x', 1, 0, 'ok', 10]
    const w2: OpSpec = [1, 'write', 'x', 2, 1, 'ok', 9]
    expect(verdict(history(w1, w2, [2, 'read', 'x', 1, 11, 'ok', 12]))).toBe('ok')
    expect(verdict(history(w1, w2, [2, 'read', 'x', 2, 11, 'ok', 12]))).toBe('ok')
  })

  it('accepts a successful cas chain', () => {
    expect(
      verdict(
        history(
          [0, 'write', 'x', 1, 0, 'ok', 1],
          [1, 'cas', 'x', [1, 2], 2, 'ok', 3],
          [2, 'cas', 'x', [2, 3], 4, 'ok', 5],
          [0, 'read', 'x', 3, 6, 'ok', 7],
        ),
      ),
    ).toBe('ok')
  })

  it('accepts concurrent cas ops that order themselves', () => {
    // Both cas ops overlap; only the order (1->2 then 2->3) works, and the search must find it.
    expect(
      verdict(
        history(
          [0, 'write', 'x', 1, 0, 'ok', 1],
          [1, 'cas', 'x', [2, 3], 2, 'ok', 10],
          [2, 'cas', 'x', [1, 2], 3, 'ok', 9],
          [0, 'read', 'x', 3, 11, 'ok', 12],
        ),
      ),
    ).toBe('ok')
  })

  it('ignores failed operations', () => {
    expect(
      verdict(
        history(
          [0, 'write', 'x', 1, 0, 'ok', 1],
          [1, 'write', 'x', 99, 2, 'fail', 3],
          [2, 'cas', 'x', [5, 6], 4, 'fail', 5],
          [0, 'read', 'x', 1, 6, 'ok', 7],
        ),
      ),
    ).toBe('ok')
  })

  it('lets an indeterminate write take effect late', () => {
    // The info write may linearize after the first read and before the second.
    expect(
      verdict(
        history(
          [0, 'write', 'x', 7, 0, 'info', 1],
          [1, 'read', 'x', null, 2, 'ok', 3],
          [1, 'read', 'x', 7, 4, 'ok', 5],
          [1, 'read', 'x', 7, 6, 'ok', 7],
        ),
      ),
    ).toBe('ok')
  })

  it('lets an indeterminate write never take effect', () => {
    expect(verdict(history([0, 'write', 'x', 7, 0, 'info', 1], [1, 'read', 'x', null, 2, 'ok', 3]))).toBe(
      'ok',
    )
    expect(verdict(history([0, 'write', 'x', 7, 0, null], [1, 'read', 'x', null, 2, 'ok', 3]))).toBe('ok')
  })

  it('lets an indeterminate cas take effect or not', () => {
    const setup: OpSpec = [0, 'write', 'x', 1, 0, 'ok', 1]
    const cas: OpSpec = [1, 'cas', 'x', [1, 2], 2, 'info', 3]
    expect(verdict(history(setup, cas, [2, 'read', 'x', 2, 4, 'ok', 5]))).toBe('ok')
    expect(verdict(history(setup, cas, [2, 'read', 'x', 1, 4, 'ok', 5]))).toBe('ok')
  })

  it('checks keys independently', () => {
    expect(
      verdict(
        history(
          [0, 'write', 'x', 1, 0, 'ok', 1],
          [1, 'write', 'y', 2, 0, 'ok', 1],
          [0, 'read', 'y', 2, 2, 'ok', 3],
          [1, 'read', 'x', 1, 2, 'ok', 3],
        ),
      ),
    ).toBe('ok')
  })

  it('treats equal timestamps by history order', () => {
    // Response then invoke at the same time: sequential, and the write is visible.
    const events: HistoryEvent[] = [
      { process: 0, type: 'invoke', f: 'write', key: 'x', value: 1, time: 0 },
      { process: 0, type: 'ok', f: 'write', key: 'x', value: 1, time: 5 },
      { process: 1, type: 'invoke', f: 'read', key: 'x', value: null, time: 5 },
      { process: 1, type: 'ok', f: 'read', key: 'x', value: null, time: 6 },
    ]
    expect(verdict(events)).toBe('violation')
    // Invoke recorded before the response at the same time: concurrent, so the stale read is fine.
    const concurrent = [events[0]!, events[2]!, events[1]!, events[3]!]
    expect(verdict(concurrent)).toBe('ok')
  })
})

describe('linearizability checker: non-linearizable histories', () => {
  it('rejects a stale read after a completed write', () => {
    const r = checkHistory(history([0, 'write', 'x', 1, 0, 'ok', 1], [1, 'read', 'x', null, 2, 'ok', 3]))
    expect(r.result).toBe('violation')
    expect(r.violation?.key).toBe('x')
    expect(describeViolation(r.violation!)).toContain('not linearizable')
  })

  it('rejects a read of a value never written', () => {
    expect(verdict(history([0, 'read', 'x', 42, 0, 'ok', 1]))).toBe('violation')
  })

  it('rejects a lost write (later read sees the older value)', () => {
    expect(
      verdict(
        history(
          [0, 'write', 'x', 1, 0, 'ok', 1],
          [1, 'write', 'x', 2, 2, 'ok', 3],
          [2, 'read', 'x', 1, 4, 'ok', 5],
        ),
      ),
    ).toBe('violation')
  })

  it('rejects reads going back in time (non-monotonic)', () => {
    // A write concurrent with two sequential reads: new then old is impossible.
    expect(
      verdict(
        history(
          [0, 'write', 'x', 1, 0, 'ok', 1],
          [1, 'write', 'x', 2, 2, 'ok', 20],
          [2, 'read', 'x', 2, 3, 'ok', 4],
          [2, 'read', 'x', 1, 5, 'ok', 6],
        ),
      ),
    ).toBe('violation')
  })

  it('rejects a cas that succeeded against a value that was not there', () => {
    expect(verdict(history([0, 'write', 'x', 1, 0, 'ok', 1], [1, 'cas', 'x', [5, 6], 2, 'ok', 3]))).toBe(
      'violation',
    )
  })

  it('rejects two successful cas from the same expected value (double apply)', () => {
    expect(
      verdict(
        history(
          [0, 'write', 'x', 0, 0, 'ok', 1],
          [1, 'cas', 'x', [0, 1], 2, 'ok', 10],
          [2, 'cas', 'x', [0, 2], 3, 'ok', 11],
        ),
      ),
    ).toBe('violation')
  })

  it('rejects a read that misses a completed cas', () => {
    expect(
      verdict(
        history(
          [0, 'write', 'x', 1, 0, 'ok', 1],
          [1, 'cas', 'x', [1, 2], 2, 'ok', 3],
          [2, 'read', 'x', 1, 4, 'ok', 5],
        ),
      ),
    ).toBe('violation')
  })

  it('rejects an indeterminate write observed before it was invoked', () => {
    expect(verdict(history([1, 'read', 'x', 7, 0, 'ok', 1], [0, 'write', 'x', 7, 2, 'info', 3]))).toBe(
      'violation',
    )
  })

  it('rejects an indeterminate write that appears, disappears and reappears', () => {
    expect(
      verdict(
        history(
          [0, 'write', 'x', 7, 0, 'info', 1],
          [1, 'read', 'x', 7, 2, 'ok', 3],
          [1, 'read', 'x', null, 4, 'ok', 5],
        ),
      ),
    ).toBe('violation')
  })

  it('rejects a violation on one key even when the others are fine', () => {
    const r = checkHistory(
      history(
        [0, 'write', 'a', 1, 0, 'ok', 1],
        [1, 'read', 'a', 1, 2, 'ok', 3],
        [0, 'write', 'b', 1, 4, 'ok', 5],
        [1, 'read', 'b', null, 6, 'ok', 7],
      ),
    )
    expect(r.result).toBe('violation')
    expect(r.violation?.key).toBe('b')
  })

  it('rejects a failed write that was observed', () => {
    // 'fail' means it definitely did not happen: reading its value is a violation.
    expect(verdict(history([0, 'write', 'x', 9, 0, 'fail', 1], [1, 'read', 'x', 9, 2, 'ok', 3]))).toBe(
      'violation',
    )
  })
})

describe('linearizability checker: well-formedness and limits', () => {
  it('rejects a process with two open ops', () => {
    const events: HistoryEvent[] = [
      { process: 0, type: 'invoke', f: 'write', key: 'x', value: 1, time: 0 },
      { process: 0, type: 'invoke', f: 'write', key: 'x', value: 2, time: 1 },
    ]
    expect(() => checkHistory(events)).toThrow(MalformedHistoryError)
  })

  it('rejects a completion with no invoke', () => {
    const events: HistoryEvent[] = [{ process: 0, type: 'ok', f: 'write', key: 'x', value: 1, time: 0 }]
    expect(() => checkHistory(events)).toThrow(MalformedHistoryError)
  })

  it('answers unknown, not a hang, when the budget runs out', () => {
    // Many concurrent writes followed by an impossible read: exponential without memoization, and
    // more than a budget of 50 steps with it.
    const ops: OpSpec[] = []
    for (let p = 0; p < 12; p++) ops.push([p, 'write', 'x', p, 0, 'ok', 100])
    ops.push([99, 'read', 'x', 1000, 101, 'ok', 102])
    const r = checkHistory(history(...ops), { stepBudgetPerKey: 50 })
    expect(r.result).toBe('unknown')
  })

  it('decides a wide concurrent history quickly thanks to memoization', () => {
    const ops: OpSpec[] = []
    // 12 overlapping writes: 12! orders, but only 2^12 * 12 distinct (set, state) configurations.
    for (let p = 0; p < 12; p++) ops.push([p, 'write', 'x', p, 0, 'ok', 100])
    ops.push([99, 'read', 'x', 1000, 101, 'ok', 102])
    const r = checkHistory(history(...ops))
    expect(r.result).toBe('violation')
    expect(r.violation!.steps).toBeLessThan(1_000_000)
  })

  it('handles many indeterminate writes in polynomial steps', () => {
    const ops: OpSpec[] = [[0, 'write', 'x', 1, 0, 'ok', 1]]
    for (let p = 1; p < 40; p++) ops.push([p, 'write', 'x', p + 1, 2, 'info', 3])
    ops.push([99, 'read', 'x', 1, 2, 'ok', 3])
    const r = checkHistory(history(...ops))
    expect(r.result).toBe('ok')
    expect(r.keys[0]!.steps).toBeLessThan(5_000)
  })
})

describe('linearizability checker: randomized against a reference register', () => {
  // Histories produced by a real atomic register (each op takes effect at one random instant between
  // its invoke and its response) must pass; the same histories with one read corrupted must not
  // (when the corrupted value is impossible).
  function atomicHistory(seed: number): HistoryEvent[] {
    const rng = createRng(seed)
    const state = new Map<string, Value>()
    type Pending = {
      process: number
      f: OpF
      key: string
      value: any
      t0: number
      effectAt: number
      t1: number
      done: 'ok' | 'fail' | 'info'
    }
    const pending: Pending[] = []
    let t = 0
    for (let p = 0; p < 5; p++) {
      let now = rng.int(5)
      for (let k = 0; k < 8; k++) {
        const key = rng.pick(['a', 'b'])
        const f = rng.pick<OpF>(['read', 'write', 'cas'])
        const t0 = now
        const t1 = t0 + 1 + rng.int(10)
        const effectAt = t0 + rng.float() * (t1 - t0)
        const value = f === 'write' ? rng.int(4) : f === 'cas' ? [rng.int(4), rng.int(4)] : null
        pending.push({ process: p, f, key, value, t0, effectAt, t1, done: 'ok' })
        now = t1 + rng.int(3)
      }
      t = Math.max(t, now)
    }
    // Apply effects in effect-time order.
    const byEffect = [...pending].sort((a, b) => a.effectAt - b.effectAt)
    for (const op of byEffect) {
      const cur = state.get(op.key) ?? null
      if (op.f === 'read') op.value = cur
      else if (op.f === 'write') state.set(op.key, op.value)
      else if (op.value[0] === cur) state.set(op.key, op.value[1])
      else op.done = 'fail'
      // Some timeouts: the op happened but the client doesn't know.
      if (op.f !== 'read' && rng.chance(0.1)) op.done = 'info'
    }
    const raw: { e: HistoryEvent; at: number; order: number }[] = []
    pending.forEach((op, i) => {
      raw.push({
        e: {
          process: op.process,
          type: 'invoke',
          f: op.f,
          key: op.key,
          value: op.f === 'read' ? null : op.value,
          time: op.t0,
        },
        at: op.t0,
        order: 2 * i,
      })
      raw.push({
        e: { process: op.process, type: op.done, f: op.f, key: op.key, value: op.value, time: op.t1 },
        at: op.t1,
        order: 2 * i + 1,
      })
    })
    // Responses before invokes at equal time (the atomic effects happened strictly inside).
    raw.sort(
      (a, b) =>
        a.at - b.at || (a.e.type === 'invoke' ? 1 : 0) - (b.e.type === 'invoke' ? 1 : 0) || a.order - b.order,
    )
    void t
    return raw.map((r) => r.e)
  }

  it('accepts 300 histories from an atomic register', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const h = atomicHistory(seed)
      const r = checkHistory(h)
      if (r.result !== 'ok')
        throw new Error(`seed ${seed}: ${r.result}\n${r.violation ? describeViolation(r.violation) : ''}`)
    }
  })

  it('rejects those histories with a read of a value never written', () => {
    let rejected = 0
    for (let seed = 1; seed <= 100; seed++) {
      const h = atomicHistory(seed)
      const readOk = h.findIndex((e) => e.type === 'ok' && e.f === 'read')
      if (readOk < 0) continue
      const bad = h.map((e, i) => (i === readOk ? { ...e, value: 777 } : e))
      expect(checkHistory(bad).result, `seed ${seed}`).toBe('violation')
      rejected++
    }
    expect(rejected).toBeGreaterThan(90)
  })
})

describe('linearizability checker: agrees with brute force on small random histories', () => {
  // Brute force: every subset of the indeterminate ops, every order consistent with real time.
  function bruteForce(ops: readonly Operation[]): boolean {
    const info = ops.filter((o) => o.indeterminate)
    const det = ops.filter((o) => !o.indeterminate)
    for (let mask = 0; mask < 1 << info.length; mask++) {
      const chosen = [...det, ...info.filter((_, i) => mask & (1 << i))]
      if (somePermutation(chosen, [], null)) return true
    }
    return false
  }
  function somePermutation(left: Operation[], done: Operation[], state: Value): boolean {
    if (left.length === 0) return true
    for (const op of left) {
      // op may go next only if no remaining op returned before op was invoked.
      if (left.some((o) => o !== op && o.returnTime < op.callTime)) continue
      let next: Value | undefined
      if (op.f === 'read') next = op.value === state ? state : undefined
      else if (op.f === 'write') next = op.value as Value
      else {
        const [e, n] = op.value as [Value, Value]
        next = e === state ? n : op.indeterminate ? state : undefined
      }
      if (next === undefined) continue
      if (
        somePermutation(
          left.filter((o) => o !== op),
          [...done, op],
          next,
        )
      )
        return true
    }
    return false
  }
  function randomHistory(seed: number): HistoryEvent[] {
    const rng = createRng(seed)
    const events: HistoryEvent[] = []
    const open = new Map<number, { f: OpF; value: any }>()
    const nOps = rng.between(2, 7)
    let started = 0
    for (let t = 0; started < nOps || open.size > 0; t++) {
      const p = rng.int(3)
      const cur = open.get(p)
      if (cur === undefined) {
        if (started >= nOps) continue
        const f = rng.pick<OpF>(['read', 'write', 'cas'])
        const value: Value | [Value, Value] =
          f === 'write' ? rng.int(3) : f === 'cas' ? [rng.pick<Value>([null, 0, 1, 2]), rng.int(3)] : null
        events.push({ process: p, type: 'invoke', f, key: 'k', value, time: t })
        open.set(p, { f, value })
        started++
      } else {
        const type = rng.pick(['ok', 'ok', 'ok', 'info', 'fail'] as const)
        const value = cur.f === 'read' ? rng.pick([null, 0, 1, 2]) : cur.value
        events.push({ process: p, type, f: cur.f, key: 'k', value, time: t })
        open.delete(p)
      }
    }
    return events
  }
  it('on 3000 random histories', () => {
    let violations = 0
    for (let seed = 1; seed <= 3000; seed++) {
      const h = randomHistory(seed)
      const expected = bruteForce(operationsFromHistory(h)) ? 'ok' : 'violation'
      const got = checkHistory(h).result
      if (got !== expected)
        throw new Error(`seed ${seed}: checker ${got}, brute force ${expected}\n${JSON.stringify(h)}`)
      if (expected === 'violation') violations++
    }
    // The generator must exercise both answers.
    expect(violations).toBeGreaterThan(300)
    expect(violations).toBeLessThan(2700)
  })
})
