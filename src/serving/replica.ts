/**
 * A model replica: one runtime process (an ONNX host or a subprocess predictor) serving one model
 * version, supervised. What the serving role's reconcile loop creates, starts, watches and stops.
 *
 * - **Lifecycle.** `start()` launches the runtime and resolves once it is ready; `stop()` refuses new
 *   requests, lets those in flight finish (up to `drainMs`), then ends the runtime. States:
 *   stopped → starting → ready → (crash) → restarting → starting → … ; stopping → stopped; and
 *   `failed` when `failuresMax` starts or crashes came in a row (no replica was stable for
 *   `stableMs` in between). A failed replica stays failed: the reconcile loop replaces it.
 * - **Restarts.** A runtime that exits or breaks the protocol is started again after a backoff that
 *   doubles from `backoffMsMin` to `backoffMsMax`. Requests in flight when it died fail with
 *   RUNTIME_CRASHED (503, retry on another replica); requests during the restart with REPLICA_NOT_READY.
 * - **Bounds.** At most `queueDepthMax` requests held at once (more: REPLICA_OVERLOADED), each with a
 *   deadline (`requestTimeoutMs`: INFERENCE_TIMEOUT), each body at most `bodyBytesMax` (parse), and at
 *   most `callsMax` runtime calls of at most `batchRowsMax` rows in flight.
 * - **Events.** Every change of state, restart count or last error is reported to `on('state')`
 *   listeners with a fresh {@link ReplicaStatus}; listeners must not throw.
 *
 * The daemon's event loop only moves messages: the model runs in the runtime's process.
 */
import { statSync } from 'node:fs'
import { isAbsolute } from 'node:path'
import { createBatcher, type Batcher, type Settled } from './batcher.js'
import { realClock, type Clock, type TimerHandle } from './clock.js'
import { ServingError, type ServingErrorCode } from './errors.js'
import { batchKey, concatRequests, rowsOf, splitResult } from './protocol/batch.js'
import { parseInferRequestBody } from './protocol/parse.js'
import type { InferenceRequest, InferenceResult, ModelMetadata } from './protocol/types.js'
import { startOnnxRuntime } from './runtimes/onnx/client.js'
import type { HostCommand } from './runtimes/onnx/host-command.js'
import type { RuntimeConnection } from './runtimes/runtime.js'
import { startSubprocessRuntime } from './runtimes/subprocess/client.js'

export type RuntimeKind = 'onnx' | 'subprocess'

export type ReplicaState = 'stopped' | 'starting' | 'ready' | 'restarting' | 'stopping' | 'failed'

/** The few logger methods a replica uses (pino's Logger has them). */
export interface ReplicaLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export interface BatchingSettings {
  /** Rows in one runtime call at most (default 32). */
  readonly batchRowsMax?: number
  /** Longest a request waits for company while the runtime has room, in ms (default 2). */
  readonly delayMsMax?: number
}

export interface RestartSettings {
  /** First backoff before a restart, doubled per failure in a row (default 200 ms). */
  readonly backoffMsMin?: number
  /** Backoff ceiling (default 10 s). */
  readonly backoffMsMax?: number
  /** Failed starts or crashes in a row before the replica gives up as `failed` (default 5). */
  readonly failuresMax?: number
  /** A runtime ready this long clears the failure count (default 30 s). */
  readonly stableMs?: number
}

export interface ReplicaInit {
  readonly runtime: RuntimeKind
  /** Absolute directory of the model version (the registry's copy on this node). */
  readonly modelDir: string
  /** Model name, answered as `model_name`. */
  readonly name: string
  /** Model version, answered as `model_version` (left out when undefined). */
  readonly version?: string

  /** onnx: the model file in modelDir (default model.onnx). */
  readonly modelFile?: string
  /** onnx: ONNX Runtime intra-op threads (default 1). */
  readonly threads?: number
  /**
   * onnx: the V8 heap limit of the ONNX host process in MiB (`--max-old-space-size`, through its
   * NODE_OPTIONS); ONNX Runtime's native memory (weights, arenas) is not counted by it. Default: Node's.
   */
  readonly heapMiBMax?: number
  /** onnx: how to start the host process (default: see host-command.ts). */
  readonly hostCommand?: HostCommand
  /** subprocess: the predictor's argv, run in modelDir (required). */
  readonly command?: readonly string[]
  /** subprocess: variables added to the predictor's environment. */
  readonly env?: Readonly<Record<string, string>>

  /** Requests held at once, queued or running (default 64). */
  readonly queueDepthMax?: number
  /** Deadline of one request from infer() to its answer (default 30 s). */
  readonly requestTimeoutMs?: number
  /** Largest request body parse() accepts (default 16 MiB); predictor lines may be 4× that. */
  readonly bodyBytesMax?: number
  /** Runtime calls in flight at once (default 2: one computes while the next one travels). */
  readonly callsMax?: number
  /** Batching where the runtime gains from it (default on); false: every request runs alone. */
  readonly batching?: BatchingSettings | false
  readonly restart?: RestartSettings
  /** A runtime not ready within this fails its start (default 60 s). */
  readonly startTimeoutMs?: number
  /** How long a stopping runtime may take to exit before it is killed (default 5 s). */
  readonly stopGraceMs?: number

  readonly clock?: Clock
  readonly logger?: ReplicaLogger
}

export interface ReplicaStatus {
  readonly state: ReplicaState
  /** Runtime starts after the first one, since start(). */
  readonly restarts: number
  /** Failed starts or crashes in a row (cleared by a stable run). */
  readonly failures: number
  /** The last failure: a start that failed, a crash, a protocol error. */
  readonly lastError?: { readonly code: ServingErrorCode; readonly message: string; readonly atMs: number }
  /** The runtime process, while one runs. */
  readonly pid?: number
  /** Requests held now (queued or running). */
  readonly inflight: number
  /** When the next start is due, while restarting (clock ms). */
  readonly nextStartAtMs?: number
  /** Rows per runtime call at most (1: not batching), once ready. */
  readonly batchRowsMax?: number
  /** Runtime calls and the requests and rows they carried, since start(). */
  readonly calls: number
  readonly requests: number
  readonly rows: number
  /** When the state last changed (clock ms). */
  readonly sinceMs: number
}

export interface Replica {
  readonly name: string
  readonly version: string | undefined
  readonly runtime: RuntimeKind
  /**
   * Starts supervising: resolves when the runtime is first ready; rejects with the last error if the
   * replica ends `failed`, or REPLICA_NOT_READY if it is stopped first. Aborting `signal` stops it.
   * Calling it again before stop() returns the same promise (a failed replica stays failed until
   * stop() and start(), or until the reconcile loop replaces it).
   */
  start(signal?: AbortSignal): Promise<void>
  /**
   * Refuses new requests, waits up to drainMs (default 0) for those held, fails the rest, ends the
   * runtime; resolves once it is gone. The replica may be started again afterwards.
   */
  stop(opts?: { drainMs?: number }): Promise<void>
  state(): ReplicaStatus
  /** The model's metadata for `GET /v2/models/{name}`, once the runtime has been ready. */
  metadata(): ModelMetadata | undefined
  /** A request body → a request checked against this model (size, JSON, names, types, shapes, data). */
  parse(body: Uint8Array | string): InferenceRequest
  /**
   * Runs one checked request; rejects with REPLICA_NOT_READY, REPLICA_OVERLOADED, INFERENCE_TIMEOUT,
   * INFERENCE_ABORTED, INFERENCE_FAILED, INFER_INPUT_REFUSED, RUNTIME_CRASHED or PREDICTOR_PROTOCOL_ERROR.
   */
  infer(request: InferenceRequest, signal?: AbortSignal): Promise<InferenceResult>
  /** Calls fn with the new status on every change; returns the function that unsubscribes. */
  on(event: 'state', fn: (status: ReplicaStatus) => void): () => void
}

/** The smallest heap limit an ONNX host is given (below it Node cannot load the runtime). */
const HEAP_MIB_MIN = 32

const DEFAULTS = {
  queueDepthMax: 64,
  requestTimeoutMs: 30_000,
  bodyBytesMax: 16 * 1024 * 1024,
  callsMax: 2,
  batchRowsMax: 32,
  delayMsMax: 2,
  backoffMsMin: 200,
  backoffMsMax: 10_000,
  failuresMax: 5,
  stableMs: 30_000,
  startTimeoutMs: 60_000,
  stopGraceMs: 5_000,
} as const

export function createReplica(init: ReplicaInit): Replica {
  const cfg = validate(init)
  const clock = init.clock ?? realClock
  const log = init.logger
  const listeners = new Set<(s: ReplicaStatus) => void>()

  let state: ReplicaState = 'stopped'
  let sinceMs = clock.now()
  let restarts = 0
  let failures = 0
  let lastError: ReplicaStatus['lastError']
  let nextStartAtMs: number | undefined
  let inflight = 0
  let conn: RuntimeConnection | undefined
  let batcher: Batcher<InferenceRequest, InferenceResult> | undefined
  let batchRowsMax: number | undefined
  let metadata: ModelMetadata | undefined
  let totals = { calls: 0, requests: 0, rows: 0 }
  /** Set while supervising; aborted by stop(). */
  let run: { abort: AbortController; started: Promise<void>; done: Promise<void> } | undefined
  const drained = new Set<() => void>()

  function status(): ReplicaStatus {
    const s = batcher?.stats()
    return {
      state,
      restarts,
      failures,
      ...(lastError === undefined ? {} : { lastError }),
      ...(conn?.pid === undefined ? {} : { pid: conn.pid }),
      inflight,
      ...(nextStartAtMs === undefined ? {} : { nextStartAtMs }),
      ...(batchRowsMax === undefined ? {} : { batchRowsMax }),
      calls: totals.calls + (s?.calls ?? 0),
      requests: totals.requests + (s?.requests ?? 0),
      rows: totals.rows + (s?.rows ?? 0),
      sinceMs,
    }
  }

  function emit(): void {
    const s = status()
    for (const fn of listeners) fn(s)
  }

  function setState(next: ReplicaState): void {
    state = next
    sinceMs = clock.now()
    if (next !== 'restarting') nextStartAtMs = undefined
    emit()
  }

  function recordError(err: unknown): ServingError {
    const e =
      err instanceof ServingError
        ? err
        : new ServingError('MODEL_LOAD_FAILED', String((err as Error)?.message ?? err))
    lastError = { code: e.code, message: e.message, atMs: clock.now() }
    return e
  }

  function startRuntime(signal: AbortSignal): Promise<RuntimeConnection> {
    if (!isDirectory(init.modelDir)) {
      return Promise.reject(
        new ServingError('MODEL_LOAD_FAILED', `the model directory ${init.modelDir} does not exist`),
      )
    }
    const common = {
      modelDir: init.modelDir,
      modelName: init.name,
      ...(init.version === undefined ? {} : { modelVersion: init.version }),
      startTimeoutMs: cfg.startTimeoutMs,
      signal,
      onStderrLine: (line: string) =>
        log?.info({ model: init.name, version: init.version, stderr: line }, 'runtime stderr'),
    }
    if (init.runtime === 'onnx') {
      return startOnnxRuntime({
        ...common,
        ...(init.modelFile === undefined ? {} : { modelFile: init.modelFile }),
        ...(init.threads === undefined ? {} : { threads: init.threads }),
        ...(init.heapMiBMax === undefined ? {} : { heapMiBMax: init.heapMiBMax }),
        ...(init.hostCommand === undefined ? {} : { hostCommand: init.hostCommand }),
      })
    }
    return startSubprocessRuntime({
      ...common,
      command: init.command!,
      ...(init.env === undefined ? {} : { env: init.env }),
      lineBytesMax: 4 * cfg.bodyBytesMax,
    })
  }

  /** Sleeps on the clock; false when aborted first. */
  function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve(false)
      let handle: TimerHandle | undefined = undefined
      const onAbort = (): void => {
        clock.clearTimeout(handle)
        resolve(false)
      }
      handle = clock.setTimeout(() => {
        signal.removeEventListener('abort', onAbort)
        resolve(true)
      }, ms)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** One more failure in a row: restart after a backoff, give up as failed, or stop (aborted meanwhile). */
  async function backoff(signal: AbortSignal): Promise<'retry' | 'failed' | 'aborted'> {
    failures++
    if (failures >= cfg.failuresMax) {
      log?.warn(
        { model: init.name, version: init.version, failures, lastError },
        'replica failed: too many failures in a row',
      )
      setState('failed')
      return 'failed'
    }
    const delayMs = Math.min(cfg.backoffMsMax, cfg.backoffMsMin * 2 ** (failures - 1))
    nextStartAtMs = clock.now() + delayMs
    setState('restarting')
    return (await sleep(delayMs, signal)) ? 'retry' : 'aborted'
  }

  function makeBatcher(c: RuntimeConnection): Batcher<InferenceRequest, InferenceResult> {
    batchRowsMax =
      cfg.batching === false ? 1 : Math.max(1, Math.min(cfg.batching.batchRowsMax, c.metadata.batchRowsMax))
    return createBatcher<InferenceRequest, InferenceResult>({
      clock,
      batchRowsMax,
      delayMsMax: cfg.batching === false ? 0 : cfg.batching.delayMsMax,
      callsMax: cfg.callsMax,
      // Read at every request: a model found unable to batch turns batching off (batchRowsMax = 1).
      keyOf: (req) => (batchRowsMax !== undefined && batchRowsMax > 1 ? batchKey(req) : undefined),
      rowsOf,
      run: (reqs) => callRuntime(c, reqs),
    })
  }

  async function callRuntime(
    c: RuntimeConnection,
    reqs: readonly InferenceRequest[],
  ): Promise<Settled<InferenceResult>[]> {
    const alone = (req: InferenceRequest): Promise<Settled<InferenceResult>> =>
      c.infer(req).then(
        (res) => settledOutputs(res, req),
        (error: unknown) => ({ error }),
      )
    if (reqs.length === 1) return [await alone(reqs[0]!)]
    try {
      const parts = splitResult(await c.infer(concatRequests(reqs)), reqs.map(rowsOf))
      if (parts !== undefined) return parts.map((p, i) => settledOutputs(p, reqs[i]!))
      if (batchRowsMax !== 1) {
        log?.warn(
          { model: init.name, version: init.version },
          'outputs do not carry the batch dimension: batching off',
        )
      }
      batchRowsMax = 1 // the outputs are not split along dimension 0: this model cannot batch
    } catch (err) {
      // One request may have failed the whole call (a value the model rejects): run each alone so that
      // it fails by itself. A gone runtime fails them all.
      if (
        !(err instanceof ServingError) ||
        (err.code !== 'INFERENCE_FAILED' && err.code !== 'INFER_INPUT_REFUSED')
      )
        throw err
    }
    return Promise.all(reqs.map(alone))
  }

  async function supervise(
    signal: AbortSignal,
    onReady: () => void,
    onGiveUp: (err: unknown) => void,
  ): Promise<void> {
    let first = true
    while (!signal.aborted) {
      if (!first) restarts++
      first = false
      setState('starting')
      let c: RuntimeConnection
      try {
        c = await startRuntime(signal)
      } catch (err) {
        if (signal.aborted) break
        const e = recordError(err)
        log?.warn(
          { model: init.name, version: init.version, code: e.code, err: e.message },
          'runtime start failed',
        )
        const next = await backoff(signal)
        if (next === 'failed') return onGiveUp(e)
        if (next === 'aborted') break
        continue
      }
      if (signal.aborted) {
        await c.stop(cfg.stopGraceMs)
        break
      }
      conn = c
      batcher = makeBatcher(c)
      metadata = {
        name: init.name,
        ...(init.version === undefined ? {} : { versions: [init.version] }),
        platform: c.metadata.platform,
        inputs: c.metadata.inputs,
        outputs: c.metadata.outputs,
      }
      const readyAtMs = clock.now()
      log?.info({ model: init.name, version: init.version, pid: c.pid, batchRowsMax }, 'replica ready')
      setState('ready')
      onReady()
      const exit = await c.exited
      const b = batcher
      const s = b.stats()
      totals = {
        calls: totals.calls + s.calls,
        requests: totals.requests + s.requests,
        rows: totals.rows + s.rows,
      }
      b.close(exit.error)
      batcher = undefined
      conn = undefined
      if (signal.aborted) break
      if (clock.now() - readyAtMs >= cfg.stableMs) failures = 0
      const e = recordError(exit.error)
      log?.warn({ model: init.name, version: init.version, code: e.code, err: e.message }, 'runtime exited')
      const next = await backoff(signal)
      if (next === 'failed') return onGiveUp(e)
      if (next === 'aborted') break
    }
  }

  const replica: Replica = {
    name: init.name,
    version: init.version,
    runtime: init.runtime,

    start(signal) {
      if (run !== undefined) return run.started
      const abort = new AbortController()
      let resolveStarted!: () => void
      let rejectStarted!: (err: unknown) => void
      const started = new Promise<void>((res, rej) => {
        resolveStarted = res
        rejectStarted = rej
      })
      started.catch(() => {}) // a caller that does not await start() must not see an unhandled rejection
      restarts = 0
      failures = 0
      lastError = undefined
      totals = { calls: 0, requests: 0, rows: 0 }
      const done = supervise(abort.signal, resolveStarted, rejectStarted).then(
        () => {
          rejectStarted(
            new ServingError(
              'REPLICA_NOT_READY',
              `replica of '${init.name}' was stopped before it was ready`,
            ),
          )
          if (state !== 'failed') setState('stopped')
        },
        (err: unknown) => {
          // A bug in supervision: report it as the replica's failure rather than leave it hanging.
          recordError(err)
          rejectStarted(err)
          setState('failed')
        },
      )
      run = { abort, started, done }
      signal?.addEventListener('abort', () => void replica.stop(), { once: true })
      return started
    },

    async stop(opts = {}) {
      const current = run
      if (current === undefined) return
      if (state !== 'failed' && state !== 'stopped') setState('stopping')
      const drainMs = opts.drainMs ?? 0
      if (inflight > 0 && drainMs > 0) {
        await new Promise<void>((resolve) => {
          const timer = clock.setTimeout(finish, drainMs)
          function finish(): void {
            clock.clearTimeout(timer)
            drained.delete(finish)
            resolve()
          }
          drained.add(finish)
        })
      }
      current.abort.abort()
      batcher?.close(new ServingError('REPLICA_NOT_READY', `replica of '${init.name}' is stopping`))
      await conn?.stop(cfg.stopGraceMs)
      await current.done
      if (run === current) run = undefined
    },

    state: status,

    metadata: () => metadata,

    parse(body) {
      if (metadata === undefined)
        throw new ServingError('REPLICA_NOT_READY', `replica of '${init.name}' has not loaded its model yet`)
      return parseInferRequestBody(body, metadata, { bodyBytesMax: cfg.bodyBytesMax })
    },

    async infer(request, signal) {
      const b = batcher
      if (state !== 'ready' || b === undefined) {
        throw new ServingError('REPLICA_NOT_READY', `replica of '${init.name}' is ${state}`)
      }
      if (inflight >= cfg.queueDepthMax) {
        throw new ServingError(
          'REPLICA_OVERLOADED',
          `replica of '${init.name}' holds ${inflight} requests (queueDepthMax)`,
        )
      }
      if (signal?.aborted) throw new ServingError('INFERENCE_ABORTED', 'the caller aborted the request')
      inflight++
      const deadline = new AbortController()
      const timer = clock.setTimeout(
        () =>
          deadline.abort(
            new ServingError('INFERENCE_TIMEOUT', `no answer within ${cfg.requestTimeoutMs} ms`),
          ),
        cfg.requestTimeoutMs,
      )
      const onAbort = (): void =>
        deadline.abort(new ServingError('INFERENCE_ABORTED', 'the caller aborted the request'))
      signal?.addEventListener('abort', onAbort, { once: true })
      try {
        return await b.submit(request, deadline.signal)
      } finally {
        clock.clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        inflight--
        if (inflight === 0) for (const fn of [...drained]) fn()
      }
    },

    on(_event, fn) {
      listeners.add(fn)
      return () => listeners.delete(fn)
    },
  }
  return replica
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

/** The outputs asked for, in the order asked (all when none were named), or the error of a missing one. */
function settledOutputs(res: InferenceResult, req: InferenceRequest): Settled<InferenceResult> {
  if (req.outputs === undefined) return { value: res }
  const byName = new Map(res.outputs.map((t) => [t.name, t] as const))
  const outputs = []
  for (const o of req.outputs) {
    const t = byName.get(o.name)
    if (t === undefined) {
      return { error: new ServingError('INFERENCE_FAILED', `the runtime did not produce output '${o.name}'`) }
    }
    outputs.push(t)
  }
  return { value: res.parameters === undefined ? { outputs } : { outputs, parameters: res.parameters } }
}

interface ResolvedConfig {
  queueDepthMax: number
  requestTimeoutMs: number
  bodyBytesMax: number
  callsMax: number
  batching: { batchRowsMax: number; delayMsMax: number } | false
  backoffMsMin: number
  backoffMsMax: number
  failuresMax: number
  stableMs: number
  startTimeoutMs: number
  stopGraceMs: number
}

/** Settings checked once, at construction (REPLICA_CONFIG_INVALID), with defaults filled in. */
function validate(init: ReplicaInit): ResolvedConfig {
  const bad = (message: string): ServingError => new ServingError('REPLICA_CONFIG_INVALID', message)
  if (init.runtime !== 'onnx' && init.runtime !== 'subprocess') {
    throw bad(`runtime must be 'onnx' or 'subprocess', not ${JSON.stringify(init.runtime)}`)
  }
  if (typeof init.modelDir !== 'string' || !isAbsolute(init.modelDir))
    throw bad('modelDir must be an absolute path')
  if (typeof init.name !== 'string' || init.name === '') throw bad('name must be a non-empty string')
  if (init.runtime === 'subprocess') {
    if (
      !Array.isArray(init.command) ||
      init.command.length === 0 ||
      !init.command.every((a) => typeof a === 'string')
    ) {
      throw bad("a subprocess replica needs command: the predictor's argv")
    }
  } else if (init.command !== undefined) {
    throw bad('command is for subprocess replicas; an onnx replica runs modelFile')
  }
  const int = (name: string, value: number | undefined, fallback: number, min: number): number => {
    const v = value ?? fallback
    if (!Number.isSafeInteger(v) || v < min) throw bad(`${name} must be an integer ≥ ${min}, not ${value}`)
    return v
  }
  if (init.threads !== undefined) int('threads', init.threads, 1, 1)
  if (init.heapMiBMax !== undefined) int('heapMiBMax', init.heapMiBMax, 0, HEAP_MIB_MIN)
  const batching =
    init.batching === false
      ? (false as const)
      : {
          batchRowsMax: int('batching.batchRowsMax', init.batching?.batchRowsMax, DEFAULTS.batchRowsMax, 1),
          delayMsMax: int('batching.delayMsMax', init.batching?.delayMsMax, DEFAULTS.delayMsMax, 0),
        }
  const r = init.restart ?? {}
  const cfg: ResolvedConfig = {
    queueDepthMax: int('queueDepthMax', init.queueDepthMax, DEFAULTS.queueDepthMax, 1),
    requestTimeoutMs: int('requestTimeoutMs', init.requestTimeoutMs, DEFAULTS.requestTimeoutMs, 1),
    bodyBytesMax: int('bodyBytesMax', init.bodyBytesMax, DEFAULTS.bodyBytesMax, 64),
    callsMax: int('callsMax', init.callsMax, DEFAULTS.callsMax, 1),
    batching,
    backoffMsMin: int('restart.backoffMsMin', r.backoffMsMin, DEFAULTS.backoffMsMin, 1),
    backoffMsMax: int('restart.backoffMsMax', r.backoffMsMax, DEFAULTS.backoffMsMax, 1),
    failuresMax: int('restart.failuresMax', r.failuresMax, DEFAULTS.failuresMax, 1),
    stableMs: int('restart.stableMs', r.stableMs, DEFAULTS.stableMs, 0),
    startTimeoutMs: int('startTimeoutMs', init.startTimeoutMs, DEFAULTS.startTimeoutMs, 1),
    stopGraceMs: int('stopGraceMs', init.stopGraceMs, DEFAULTS.stopGraceMs, 0),
  }
  if (cfg.backoffMsMax < cfg.backoffMsMin) throw bad('restart.backoffMsMax must be ≥ restart.backoffMsMin')
  return cfg
}
