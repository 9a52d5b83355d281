/**
 * A task's output stream into a file of the file system, appended as the file system takes it: output
 * is gathered into one append per `flushBytes` or per `flushDelayMs` (whichever comes first), one append
 * in flight at a time. Memory is bounded: while more than `bufferBytesMax` bytes wait, `write` returns a
 * promise that resolves once the appends caught up — the executor then stops reading the pipe, and the
 * process blocks on its own writes (backpressure down to the program).
 *
 * A failed append is retried (`appendRetries` times, with a growing pause); after that the stream fails:
 * `write` and `close` reject, and the executor drops the rest of that stream (the task goes on).
 */
import type { LogStream } from './executor.js'
import type { Clock, TimerHandle } from './world.js'

export interface FsLogStreamInit {
  /** Appends bytes to the file (the file exists). */
  readonly append: (data: Uint8Array) => Promise<void>
  readonly clock: Clock
  /** Gather at most this much into one append (default 256 KiB). */
  readonly flushBytes?: number
  /** Output waits at most this long before it is appended (default 500 ms). */
  readonly flushDelayMs?: number
  /** Bytes waiting (gathered or in flight) beyond which `write` applies backpressure (default 1 MiB). */
  readonly bufferBytesMax?: number
  /** Retries of a failed append before the stream gives up (default 3). */
  readonly appendRetries?: number
}

export interface FsLogStream extends LogStream {
  /** Bytes appended so far. */
  readonly appendedBytes: number
  /** Appends made so far. */
  readonly appends: number
}

export function createFsLogStream(init: FsLogStreamInit): FsLogStream {
  const flushBytes = init.flushBytes ?? 256 * 1024
  const flushDelayMs = init.flushDelayMs ?? 500
  const bufferBytesMax = Math.max(init.bufferBytesMax ?? 1 << 20, flushBytes)
  const retries = init.appendRetries ?? 3
  let pending: Uint8Array[] = []
  let pendingBytes = 0
  /** Bytes gathered plus bytes of the append in flight. */
  let waitingBytes = 0
  let inflight: Promise<void> | undefined
  let timer: TimerHandle | undefined
  let failure: Error | undefined
  let closed = false
  let appendedBytes = 0
  let appends = 0
  /** Writers waiting for room (resolved when waitingBytes drops to the bound, rejected on failure). */
  let waiters: { resolve: () => void; reject: (err: Error) => void }[] = []

  const settleWaiters = (): void => {
    if (failure !== undefined) {
      for (const w of waiters) w.reject(failure)
      waiters = []
    } else if (waitingBytes <= bufferBytesMax) {
      for (const w of waiters) w.resolve()
      waiters = []
    }
  }

  const appendWithRetries = async (data: Uint8Array): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        await init.append(data)
        return
      } catch (err) {
        if (attempt >= retries) throw err
        await new Promise<void>((r) => init.clock.setTimeout(r, 100 * 2 ** attempt))
      }
    }
  }

  /** Starts the next append unless one is in flight (then it follows when that one ends). */
  const flush = (): void => {
    if (timer !== undefined) {
      init.clock.clearTimeout(timer)
      timer = undefined
    }
    if (inflight !== undefined || pendingBytes === 0 || failure !== undefined) return
    const parts = pending
    const bytes = pendingBytes
    pending = []
    pendingBytes = 0
    const data = parts.length === 1 ? parts[0]! : concat(parts, bytes)
    inflight = appendWithRetries(data).then(
      () => {
        appendedBytes += bytes
        appends++
        waitingBytes -= bytes
        inflight = undefined
        settleWaiters()
        if (pendingBytes >= flushBytes || (closed && pendingBytes > 0)) flush()
        else if (pendingBytes > 0) arm()
      },
      (err: unknown) => {
        inflight = undefined
        failure = err instanceof Error ? err : new Error(String(err))
        settleWaiters()
      },
    )
  }

  const arm = (): void => {
    if (timer === undefined) timer = init.clock.setTimeout(() => ((timer = undefined), flush()), flushDelayMs)
  }

  return {
    write(chunk) {
      if (failure !== undefined) return Promise.reject(failure)
      if (closed) throw new Error('log stream: write after close')
      if (chunk.length === 0) return
      // The executor may reuse nothing, but a pipe's Buffer can be a view of a pooled slab: copy.
      pending.push(Uint8Array.prototype.slice.call(chunk))
      pendingBytes += chunk.length
      waitingBytes += chunk.length
      if (pendingBytes >= flushBytes) flush()
      else arm()
      if (waitingBytes <= bufferBytesMax) return
      return new Promise<void>((resolve, reject) => waiters.push({ resolve, reject }))
    },
    async close() {
      closed = true
      flush()
      while (inflight !== undefined) await inflight
      if (failure !== undefined) throw failure
    },
    get appendedBytes() {
      return appendedBytes
    },
    get appends() {
      return appends
    },
  }
}

function concat(parts: readonly Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}
