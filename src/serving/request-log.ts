/**
 * Request and response logging of deployments: JSON lines in the project's `Logs` dataset, sampled.
 *
 * The node that answers an inference (the replica's node) asks {@link RequestLog.sampled} whether to
 * log it (the deployment's `logSampleRate`, drawn from an injected random source), and hands the
 * answered request to {@link RequestLog.record} after the answer was sent. The record is one JSON line
 * of at most `recordBytesMax` bytes (tensors' data is left out, shapes kept, when it would not fit),
 * held in a bounded buffer (full: the record is dropped and counted), and written in batches by a
 * periodic flush through the injected {@link RequestLogSink} — never on a request's path. A batch the
 * sink refuses is dropped and counted too: logging never holds up or fails inference.
 *
 * A line:
 * ```json
 * {"time":"2026-12-03T18:00:00.000Z","timeMs":…,"deployment":"lin","project":"demo","model":"lin",
 *  "modelVersion":"1","replica":"lin-2","node":"12D3…","requestId":"r-7","status":200,"latencyMs":1.2,
 *  "inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}],
 *  "outputs":[{"name":"y","datatype":"FP32","shape":[1,2],"data":[22.5,27]}]}
 * ```
 * with `"error"` for a refused or failed request and `"dataOmitted":true` when data was left out.
 */
import { Periodic, type PeriodicTimers } from '../lib/index.js'
import { tensorDataJson } from './protocol/encode.js'
import type { InferenceRequest, InferenceResult, Tensor } from './protocol/types.js'

/** One answered request, as the inference route saw it. */
export interface AnsweredRequest {
  readonly deployment: string
  readonly project: string
  readonly model: string
  readonly modelVersion: string
  readonly replica: string
  readonly node: string
  /** The request's `id`, if it had one (else the log makes one). */
  readonly id?: string
  readonly status: number
  readonly latencyMs: number
  readonly startMs: number
  readonly request?: InferenceRequest
  readonly result?: InferenceResult
  readonly error?: string
}

/** Where batches go: appends `lines` (JSON lines, each ending in \n) to the deployment's log. */
export type RequestLogSink = (
  target: { readonly project: string; readonly deployment: string },
  lines: string,
  signal: AbortSignal,
) => Promise<void>

export interface RequestLogInit {
  readonly sink: RequestLogSink
  /** The deployment's sample rate now (0..1; 0 or unknown: not logged). */
  readonly sampleRate: (deployment: string) => number
  /** Uniform in [0, 1): injected so that tests can seed it (default Math.random). */
  readonly random?: () => number
  /** Records held before a flush; more are dropped and counted (default 1000). */
  readonly bufferRecordsMax?: number
  /** Bytes of one record at most: tensors' data is left out beyond it (default 16 KiB). */
  readonly recordBytesMax?: number
  /** Bytes written to one deployment's log per sink call at most (default 48 KiB). */
  readonly batchBytesMax?: number
  /** How often the buffer is written out (default 2 s). */
  readonly flushIntervalMs?: number
  /** Where the flush is scheduled (default the process's timers). */
  readonly timers?: PeriodicTimers
  readonly onError?: (err: unknown) => void
}

export interface RequestLogStats {
  /** Records written by the sink. */
  readonly written: number
  /** Records dropped because the buffer was full. */
  readonly droppedFull: number
  /** Records dropped because the sink refused their batch. */
  readonly droppedFailed: number
  /** Records held now. */
  readonly buffered: number
}

export interface RequestLog {
  /** Whether to log a request to `deployment` (draws from the random source when 0 < rate < 1). */
  sampled(deployment: string): boolean
  /** Takes an answered request (call it after the answer was sent). Never throws, never waits. */
  record(r: AnsweredRequest): void
  /** Writes what is buffered now (the periodic flush calls it too). */
  flush(signal?: AbortSignal): Promise<void>
  stats(): RequestLogStats
  start(): void
  /** Stops the periodic flush and writes what is left. */
  stop(): Promise<void>
}

interface Held {
  readonly project: string
  readonly deployment: string
  readonly line: string
}

export function createRequestLog(init: RequestLogInit): RequestLog {
  const random = init.random ?? Math.random
  const bufferMax = init.bufferRecordsMax ?? 1000
  const recordBytesMax = init.recordBytesMax ?? 16 * 1024
  const batchBytesMax = init.batchBytesMax ?? 48 * 1024
  let buffer: Held[] = []
  let written = 0
  let droppedFull = 0
  let droppedFailed = 0
  let seq = 0
  let flushing: Promise<void> | undefined

  const flushOnce = async (signal?: AbortSignal): Promise<void> => {
    if (buffer.length === 0) return
    const taken = buffer
    buffer = []
    // One sink call per deployment and at most batchBytesMax: records of a deployment stay in order.
    const groups = new Map<string, Held[]>()
    for (const h of taken) {
      const k = `${h.project}\u0000${h.deployment}`
      let g = groups.get(k)
      if (g === undefined) groups.set(k, (g = []))
      g.push(h)
    }
    for (const g of groups.values()) {
      let i = 0
      while (i < g.length) {
        let bytes = 0
        let j = i
        while (j < g.length && (j === i || bytes + g[j]!.line.length <= batchBytesMax))
          bytes += g[j++]!.line.length
        const lines = g
          .slice(i, j)
          .map((h) => h.line)
          .join('')
        try {
          await init.sink(
            { project: g[0]!.project, deployment: g[0]!.deployment },
            lines,
            signal ?? AbortSignal.timeout(30_000),
          )
          written += j - i
        } catch (err) {
          droppedFailed += j - i
          init.onError?.(err)
        }
        i = j
      }
    }
  }

  const flush = (signal?: AbortSignal): Promise<void> => {
    // One flush at a time: a second caller waits for the running one, then writes what came since.
    const run = (flushing ?? Promise.resolve()).then(() => flushOnce(signal))
    flushing = run.finally(() => {
      if (flushing === run) flushing = undefined
    })
    return run
  }

  const loop = new Periodic({
    intervalMs: init.flushIntervalMs ?? 2_000,
    tick: (signal) => flush(signal),
    onError: (err) => init.onError?.(err),
    ...(init.timers === undefined ? {} : { timers: init.timers }),
  })

  return {
    sampled(deployment) {
      const rate = init.sampleRate(deployment)
      if (!(rate > 0)) return false
      if (rate >= 1) return true
      return random() < rate
    },
    record(r) {
      if (buffer.length >= bufferMax) {
        droppedFull++
        return
      }
      try {
        buffer.push({
          project: r.project,
          deployment: r.deployment,
          line: recordLine(r, recordBytesMax, () => `${r.node.slice(-8)}-${r.startMs}-${++seq}`),
        })
      } catch (err) {
        droppedFailed++
        init.onError?.(err)
      }
    },
    flush,
    stats: () => ({ written, droppedFull, droppedFailed, buffered: buffer.length }),
    start: () => loop.start(),
    async stop() {
      await loop.stop()
      await flush()
    },
  }
}

/** One JSON line (ending in \n) for an answered request; tensors' data only while it fits `bytesMax`. */
export function recordLine(r: AnsweredRequest, bytesMax: number, makeId: () => string): string {
  const head = {
    time: new Date(r.startMs).toISOString(),
    timeMs: r.startMs,
    deployment: r.deployment,
    project: r.project,
    model: r.model,
    modelVersion: r.modelVersion,
    replica: r.replica,
    node: r.node,
    requestId: r.id ?? makeId(),
    status: r.status,
    latencyMs: Math.round(r.latencyMs * 1000) / 1000,
    ...(r.error === undefined ? {} : { error: r.error.slice(0, 1024) }),
  }
  let text = JSON.stringify(head).slice(0, -1)
  let omitted = false
  const tensors = (key: string, list: readonly Tensor[] | undefined): void => {
    if (list === undefined) return
    const parts: string[] = []
    for (const t of list) {
      const meta = `{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}]`
      // Room left for data after what is written and the other tensors' metadata (an estimate of 24
      // characters a number; strings are measured).
      const room = bytesMax - text.length - parts.reduce((n, p) => n + p.length, 0) - meta.length - 64
      let data: string | undefined
      if (t.datatype === 'BYTES' || t.data.length * 24 <= room) {
        const d = t.data.length * 2 <= room ? tensorDataJson(t.datatype, t.data) : undefined
        if (d !== undefined && d.length <= room) data = d
      }
      if (data === undefined) omitted = true
      parts.push(data === undefined ? `${meta}}` : `${meta},"data":${data}}`)
    }
    text += `,"${key}":[${parts.join(',')}]`
  }
  tensors('inputs', r.request?.inputs)
  tensors('outputs', r.result?.outputs)
  if (omitted) text += ',"dataOmitted":true'
  return `${text}}\n`
}
