/**
 * Adaptive batching: concurrent requests that may share a runtime call (same key) go to the runtime as
 * one call along the batch dimension, and each gets its own part of the answer back.
 *
 * How a batch forms (the group commit of the metadata path, applied to inference):
 * - A request that finds a free runtime slot and no sign of load goes **at once**, alone: a lone
 *   request never waits for company.
 * - While every slot is busy, requests queue; when a call returns, everything queued under the oldest
 *   request's key (up to `batchRowsMax` rows) leaves as the next call. Under load batches grow by
 *   themselves, with no timer.
 * - Between the two, the delay adapts: when requests have been arriving faster than a runtime call
 *   takes (the moving average of arrival gaps, and the gap before this request, are both shorter than
 *   the moving average of call durations), a request that finds a slot free waits for company — at
 *   most one call's duration and never more than `delayMsMax`, and not at all once the batch is full.
 *   The wait costs a request at most what the next arrival would have waited behind it.
 *
 * Contract: `run` is called with requests of one key, oldest first, at most `callsMax` calls at once;
 * it settles each request, in order (one may fail while the others succeed), or rejects to fail them all. Memory is bounded by the caller,
 * which bounds the requests it submits (the replica's queueDepthMax). Time comes from the injected
 * clock, so tests drive every decision with a fake one.
 */
import type { Clock, TimerHandle } from './clock.js'

export interface BatcherInit<Req, Res> {
  readonly clock: Clock
  /** Rows (along dimension 0) in one runtime call at most; 1 turns batching off. */
  readonly batchRowsMax: number
  /** Longest a request waits for company while a runtime slot is free, in ms (0: never waits). */
  readonly delayMsMax: number
  /** Runtime calls in flight at once (≥ 1). */
  readonly callsMax: number
  /** Requests with the same key may share a call; undefined: this one always runs alone. */
  keyOf(req: Req): string | undefined
  /** Rows the request adds to a batch (≥ 1 for a request that may batch). */
  rowsOf(req: Req): number
  /** One runtime call for `batch` (one key, oldest first): one outcome per request, in order. */
  run(batch: readonly Req[]): Promise<Settled<Res>[]>
}

/** How one request of a batch came out. */
export type Settled<Res> = { readonly value: Res } | { readonly error: unknown }

export interface BatcherStats {
  /** Requests waiting for a runtime slot or for company. */
  readonly queued: number
  readonly callsInFlight: number
  readonly calls: number
  readonly requests: number
  readonly rows: number
  /** Rows of the last call. */
  readonly lastBatchRows: number
  /** Moving averages the delay adapts to (undefined before the first sample). */
  readonly arrivalGapMs: number | undefined
  readonly callMs: number | undefined
}

export interface Batcher<Req, Res> {
  /**
   * Runs req, alone or in a batch. Rejects with the signal's reason when the signal aborts first (a
   * request still queued then leaves the queue and never reaches the runtime).
   */
  submit(req: Req, signal?: AbortSignal): Promise<Res>
  stats(): BatcherStats
  /** Rejects every queued request, and every later submit, with err; calls in flight finish on their own. */
  close(err: Error): void
}

interface Entry<Req, Res> {
  readonly req: Req
  readonly key: string | undefined
  readonly rows: number
  readonly arrivedMs: number
  /** The gap between this arrival and the one before it (Infinity for the first). */
  readonly gapMs: number
  settled: boolean
  resolve(res: Res): void
  reject(err: unknown): void
  unlink(): void
}

/** Moving averages weigh the newest sample by this much. */
const EWMA_WEIGHT = 0.2
/**
 * An arrival gap counts at most this many call durations in the average, so that one idle pause does
 * not hide a burst that follows it for dozens of requests (the gap before a request still decides alone
 * whether it waits).
 */
const GAP_SAMPLE_CALLS_MAX = 4

export function createBatcher<Req, Res>(init: BatcherInit<Req, Res>): Batcher<Req, Res> {
  if (!(init.batchRowsMax >= 1) || !(init.callsMax >= 1) || !(init.delayMsMax >= 0)) {
    throw new Error(
      `batcher: batchRowsMax ${init.batchRowsMax} and callsMax ${init.callsMax} must be ≥ 1, delayMsMax ${init.delayMsMax} ≥ 0`,
    )
  }
  const { clock } = init
  const queue: Entry<Req, Res>[] = []
  let callsInFlight = 0
  let calls = 0
  let requests = 0
  let rows = 0
  let lastBatchRows = 0
  let lastArrivalMs: number | undefined
  let gapEwmaMs: number | undefined
  let callEwmaMs: number | undefined
  let timer: TimerHandle | undefined
  let timerDueMs = Infinity
  let closedWith: Error | undefined

  function ewma(prev: number | undefined, sample: number): number {
    return prev === undefined ? sample : prev + EWMA_WEIGHT * (sample - prev)
  }

  /** How long the oldest request should wait for company now that a slot is free. */
  function waitMs(head: Entry<Req, Res>): number {
    if (init.delayMsMax === 0 || callEwmaMs === undefined || gapEwmaMs === undefined) return 0
    if (head.gapMs >= callEwmaMs || gapEwmaMs >= callEwmaMs) return 0
    return Math.min(init.delayMsMax, callEwmaMs)
  }

  /** The oldest request and the queued ones that may join it, within batchRowsMax rows. */
  function nextBatch(): Entry<Req, Res>[] {
    const head = queue[0]!
    const batch = [head]
    if (head.key === undefined) return batch
    let total = head.rows
    for (let i = 1; i < queue.length && total < init.batchRowsMax; i++) {
      const e = queue[i]!
      if (e.key !== head.key) continue
      if (total + e.rows > init.batchRowsMax) break // keep the key's order: no overtaking
      batch.push(e)
      total += e.rows
    }
    return batch
  }

  function schedule(dueMs: number): void {
    if (timer !== undefined && timerDueMs <= dueMs) return
    if (timer !== undefined) clock.clearTimeout(timer)
    timerDueMs = dueMs
    timer = clock.setTimeout(
      () => {
        timer = undefined
        timerDueMs = Infinity
        pump()
      },
      Math.max(0, dueMs - clock.now()),
    )
  }

  function pump(): void {
    while (callsInFlight < init.callsMax && queue.length > 0) {
      const batch = nextBatch()
      const head = batch[0]!
      const batchRows = batch.reduce((sum, e) => sum + e.rows, 0)
      if (head.key !== undefined && batchRows < init.batchRowsMax) {
        const dueMs = head.arrivedMs + waitMs(head)
        if (clock.now() < dueMs) {
          schedule(dueMs)
          return
        }
      }
      for (const e of batch) queue.splice(queue.indexOf(e), 1)
      dispatch(batch, batchRows)
    }
  }

  function dispatch(batch: Entry<Req, Res>[], batchRows: number): void {
    callsInFlight++
    calls++
    requests += batch.length
    rows += batchRows
    lastBatchRows = batchRows
    const startedMs = clock.now()
    let promise: Promise<Settled<Res>[]>
    try {
      promise = init.run(batch.map((e) => e.req))
    } catch (err) {
      promise = Promise.reject(err)
    }
    promise
      .then(
        (results) => {
          if (results.length !== batch.length) {
            const err = new Error(
              `batcher: run answered ${results.length} results for ${batch.length} requests`,
            )
            for (const e of batch) settle(e, () => e.reject(err))
          } else {
            batch.forEach((e, i) => {
              const outcome = results[i]!
              settle(e, () => ('value' in outcome ? e.resolve(outcome.value) : e.reject(outcome.error)))
            })
          }
        },
        (err: unknown) => {
          for (const e of batch) settle(e, () => e.reject(err))
        },
      )
      .finally(() => {
        callsInFlight--
        callEwmaMs = ewma(callEwmaMs, clock.now() - startedMs)
        pump()
      })
  }

  function settle(e: Entry<Req, Res>, fn: () => void): void {
    if (e.settled) return
    e.settled = true
    e.unlink()
    fn()
  }

  return {
    submit(req, signal) {
      if (closedWith !== undefined) return Promise.reject(closedWith)
      if (signal?.aborted) return Promise.reject(signal.reason)
      return new Promise<Res>((resolve, reject) => {
        const now = clock.now()
        const gapMs = lastArrivalMs === undefined ? Infinity : now - lastArrivalMs
        lastArrivalMs = now
        if (Number.isFinite(gapMs)) {
          const cap = callEwmaMs === undefined ? gapMs : GAP_SAMPLE_CALLS_MAX * callEwmaMs
          gapEwmaMs = ewma(gapEwmaMs, Math.min(gapMs, cap))
        }
        const key = init.keyOf(req)
        const onAbort = (): void => {
          const i = queue.indexOf(entry)
          if (i >= 0) queue.splice(i, 1)
          settle(entry, () => reject(signal!.reason))
        }
        const entry: Entry<Req, Res> = {
          req,
          key,
          rows: key === undefined ? 1 : Math.max(1, init.rowsOf(req)),
          arrivedMs: now,
          gapMs,
          settled: false,
          resolve,
          reject,
          unlink: () => signal?.removeEventListener('abort', onAbort),
        }
        signal?.addEventListener('abort', onAbort, { once: true })
        queue.push(entry)
        pump()
      })
    },

    stats() {
      return {
        queued: queue.length,
        callsInFlight,
        calls,
        requests,
        rows,
        lastBatchRows,
        arrivalGapMs: gapEwmaMs,
        callMs: callEwmaMs,
      }
    },

    close(err) {
      closedWith = err
      if (timer !== undefined) clock.clearTimeout(timer)
      timer = undefined
      timerDueMs = Infinity
      for (const e of queue.splice(0)) settle(e, () => e.reject(err))
    },
  }
}
