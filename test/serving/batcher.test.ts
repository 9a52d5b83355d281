// The adaptive batcher, driven by a fake clock and a runtime the test answers by hand: a lone request
// goes at once; under load batches grow up to batchRowsMax; the delay appears only when requests come
// faster than calls take and never exceeds delayMsMax; keys never mix; aborts leave the queue.
import { describe, expect, it } from 'vitest'
import { createBatcher, type Settled } from '../../src/serving/batcher.js'
import { FakeClock, flush } from './fake-clock.js'

interface Req {
  id: string
  key?: string
  rows?: number
}

interface Call {
  ids: string[]
  atMs: number
  answer(): void
  fail(err: Error): void
  settle(outcomes: Settled<string>[]): void
}

function setup(opts: { batchRowsMax?: number; delayMsMax?: number; callsMax?: number } = {}) {
  const clock = new FakeClock()
  const calls: Call[] = []
  const batcher = createBatcher<Req, string>({
    clock,
    batchRowsMax: opts.batchRowsMax ?? 8,
    delayMsMax: opts.delayMsMax ?? 5,
    callsMax: opts.callsMax ?? 1,
    keyOf: (r) => (r.key === undefined ? 'k' : r.key === '-' ? undefined : r.key),
    rowsOf: (r) => r.rows ?? 1,
    run: (batch) =>
      new Promise<Settled<string>[]>((resolve, reject) => {
        calls.push({
          ids: batch.map((r) => r.id),
          atMs: clock.now(),
          answer: () => resolve(batch.map((r) => ({ value: `done ${r.id}` }))),
          fail: reject,
          settle: resolve,
        })
      }),
  })
  const results = new Map<string, string>()
  const errors = new Map<string, unknown>()
  const submit = (req: Req, signal?: AbortSignal): void => {
    batcher.submit(req, signal).then(
      (v) => results.set(req.id, v),
      (e: unknown) => errors.set(req.id, e),
    )
  }
  /** Answers the oldest open call, then lets callbacks run. */
  const finish = async (index: number): Promise<void> => {
    calls[index]!.answer()
    await flush()
  }
  return { clock, calls, batcher, submit, results, errors, finish }
}

describe('batcher', () => {
  it('sends a lone request at once, alone', async () => {
    const { calls, submit, finish, results } = setup()
    submit({ id: 'a' })
    expect(calls.map((c) => c.ids)).toEqual([['a']])
    expect(calls[0]!.atMs).toBe(0)
    await finish(0)
    expect(results.get('a')).toBe('done a')
  })

  it('joins the requests that arrive while the runtime is busy into the next call', async () => {
    const { calls, submit, finish, results, batcher } = setup()
    submit({ id: 'a' })
    submit({ id: 'b' })
    submit({ id: 'c' })
    submit({ id: 'd' })
    expect(calls.map((c) => c.ids)).toEqual([['a']])
    expect(batcher.stats().queued).toBe(3)
    await finish(0)
    expect(calls.map((c) => c.ids)).toEqual([['a'], ['b', 'c', 'd']])
    await finish(1)
    expect([...results.keys()].sort()).toEqual(['a', 'b', 'c', 'd'])
    expect(batcher.stats()).toMatchObject({ calls: 2, requests: 4, rows: 4, lastBatchRows: 3, queued: 0 })
  })

  it('never puts more than batchRowsMax rows in a call, and keeps the order of a key', async () => {
    const { calls, submit, finish } = setup({ batchRowsMax: 4 })
    submit({ id: 'busy' })
    for (const id of ['r1', 'r2', 'r3', 'r4', 'r5']) submit({ id })
    await finish(0)
    expect(calls[1]!.ids).toEqual(['r1', 'r2', 'r3', 'r4'])
    await finish(1)
    expect(calls[2]!.ids).toEqual(['r5'])
  })

  it('counts rows, not requests; a request larger than the limit goes alone', async () => {
    const { calls, submit, finish } = setup({ batchRowsMax: 8 })
    submit({ id: 'busy' })
    submit({ id: 'three-a', rows: 3 })
    submit({ id: 'three-b', rows: 3 })
    submit({ id: 'three-c', rows: 3 }) // 9 rows would not fit
    submit({ id: 'twenty', rows: 20 })
    await finish(0)
    expect(calls[1]!.ids).toEqual(['three-a', 'three-b'])
    await finish(1)
    expect(calls[2]!.ids).toEqual(['three-c'])
    await finish(2)
    expect(calls[3]!.ids).toEqual(['twenty'])
  })

  it('never joins requests of different keys; the oldest request goes first', async () => {
    const { calls, submit, finish } = setup()
    submit({ id: 'busy', key: 'a' })
    submit({ id: 'b1', key: 'b' })
    submit({ id: 'a1', key: 'a' })
    submit({ id: 'b2', key: 'b' })
    submit({ id: 'alone', key: '-' })
    submit({ id: 'a2', key: 'a' })
    await finish(0)
    expect(calls[1]!.ids).toEqual(['b1', 'b2'])
    await finish(1)
    expect(calls[2]!.ids).toEqual(['a1', 'a2'])
    await finish(2)
    expect(calls[3]!.ids).toEqual(['alone'])
  })

  it('runs up to callsMax calls at once', async () => {
    const { calls, submit } = setup({ callsMax: 2 })
    submit({ id: 'a' })
    submit({ id: 'b' })
    submit({ id: 'c' })
    expect(calls.map((c) => c.ids)).toEqual([['a'], ['b']])
  })

  it('waits for company only when requests come faster than calls take, at most delayMsMax', async () => {
    const { clock, calls, submit, finish } = setup({ delayMsMax: 3, callsMax: 2 })
    submit({ id: 'a' }) // t=0: nothing known yet, goes at once
    await clock.advance(1)
    submit({ id: 'b' }) // t=1: a slot is free, no call has returned yet: at once
    await clock.advance(1)
    submit({ id: 'c' }) // t=2, t=3: both slots busy, they queue
    await clock.advance(1)
    submit({ id: 'd' })
    await clock.advance(1)
    await finish(0) // t=4: a call took 4 ms while requests came every 1 ms
    // A slot is free, but company is likely: c waits, 3 ms after its arrival at most (delayMsMax < 4 ms).
    expect(calls.map((x) => x.ids)).toEqual([['a'], ['b']])
    await clock.advance(1)
    expect(calls.map((x) => x.ids)).toEqual([['a'], ['b'], ['c', 'd']])
    expect(calls[2]!.atMs).toBe(5)
  })

  it('sends a full batch without waiting', async () => {
    const { clock, calls, submit, finish } = setup({ batchRowsMax: 2, delayMsMax: 50, callsMax: 2 })
    submit({ id: 'a' })
    await clock.advance(1)
    submit({ id: 'b' })
    await clock.advance(1)
    submit({ id: 'c' })
    await clock.advance(1)
    submit({ id: 'd' })
    await clock.advance(1)
    await finish(0)
    expect(calls[2]!.ids).toEqual(['c', 'd']) // 2 rows = batchRowsMax: no reason to wait
    expect(calls[2]!.atMs).toBe(4)
  })

  it('goes at once after a pause, even when it was busy before', async () => {
    const { clock, calls, submit, finish } = setup({ delayMsMax: 3, callsMax: 2 })
    submit({ id: 'a' })
    await clock.advance(1)
    submit({ id: 'b' })
    await clock.advance(1)
    submit({ id: 'c' })
    await clock.advance(2)
    await finish(0)
    await finish(1)
    await clock.advance(10)
    await finish(2)
    await clock.advance(1000)
    submit({ id: 'late' })
    expect(calls[calls.length - 1]!.ids).toEqual(['late'])
    expect(calls[calls.length - 1]!.atMs).toBe(clock.now())
  })

  it('lets an aborted request leave the queue before it reaches the runtime', async () => {
    const { calls, submit, finish, errors } = setup()
    submit({ id: 'busy' })
    const abort = new AbortController()
    submit({ id: 'gone' }, abort.signal)
    submit({ id: 'stays' })
    abort.abort(new Error('caller left'))
    await flush()
    expect((errors.get('gone') as Error).message).toBe('caller left')
    await finish(0)
    expect(calls[1]!.ids).toEqual(['stays'])
  })

  it('settles each request of a call by itself, and fails them all when the call fails', async () => {
    const { calls, submit, results, errors, finish } = setup()
    submit({ id: 'busy' })
    submit({ id: 'ok' })
    submit({ id: 'bad' })
    await finish(0)
    calls[1]!.settle([{ value: 'fine' }, { error: new Error('bad input') }])
    await flush()
    expect(results.get('ok')).toBe('fine')
    expect((errors.get('bad') as Error).message).toBe('bad input')
    submit({ id: 'p' })
    submit({ id: 'q' })
    calls[2]!.fail(new Error('runtime gone'))
    await flush()
    expect((errors.get('p') as Error).message).toBe('runtime gone')
    await flush()
    calls[3]!.fail(new Error('runtime gone'))
    await flush()
    expect((errors.get('q') as Error).message).toBe('runtime gone')
  })

  it('close() fails what is queued and every later submit', async () => {
    const { batcher, submit, errors } = setup()
    submit({ id: 'running' })
    submit({ id: 'queued' })
    batcher.close(new Error('stopping'))
    submit({ id: 'later' })
    await flush()
    expect((errors.get('queued') as Error).message).toBe('stopping')
    expect((errors.get('later') as Error).message).toBe('stopping')
    expect(errors.has('running')).toBe(false)
  })

  it('refuses settings out of range', () => {
    const clock = new FakeClock()
    const base = { clock, keyOf: () => 'k', rowsOf: () => 1, run: async () => [] }
    expect(() => createBatcher({ ...base, batchRowsMax: 0, delayMsMax: 0, callsMax: 1 })).toThrow(
      /batchRowsMax/,
    )
    expect(() => createBatcher({ ...base, batchRowsMax: 1, delayMsMax: -1, callsMax: 1 })).toThrow(
      /delayMsMax/,
    )
  })
})
