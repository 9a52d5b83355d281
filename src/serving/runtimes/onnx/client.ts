/**
 * The replica's end of an ONNX host: starts the host process, loads the model, and turns calls into
 * `infer` messages matched to their answers by id. Calls run concurrently in the host (ONNX Runtime
 * sessions are thread-safe); how many at once is the replica's business.
 */
import { isAbsolute, join } from 'node:path'
import type { Readable } from 'node:stream'
import { ServingError } from '../../errors.js'
import type { InferenceRequest, InferenceResult } from '../../protocol/types.js'
import { ADDON_CACHE_ENV, childEnv, describeExit, spawnRuntime } from '../process.js'
import type { RuntimeConnection, RuntimeExit, RuntimeStartInit } from '../runtime.js'
import { frameChannel } from './frames.js'
import { defaultOnnxHostCommand, type HostCommand } from './host-command.js'
import { HOST_CHANNEL_ENV, HOST_FRAME_BYTES_MAX } from './host.js'
import type { FromHost, ToHost } from './messages.js'

export interface OnnxStartInit extends RuntimeStartInit {
  /** The model file inside modelDir (default model.onnx). */
  readonly modelFile?: string
  /** ONNX Runtime intra-op threads (default 1: one core per replica; deployments scale out by replicas). */
  readonly threads?: number
  /** The host's V8 heap limit in MiB (NODE_OPTIONS=--max-old-space-size); default Node's own. */
  readonly heapMiBMax?: number
  /** How to start the host process (default: the binary's hidden subcommand, or host-main.ts under tsx). */
  readonly hostCommand?: HostCommand
}

export const ONNX_PLATFORM = 'onnx_onnxv1'

export async function startOnnxRuntime(init: OnnxStartInit): Promise<RuntimeConnection> {
  const host = init.hostCommand ?? defaultOnnxHostCommand()
  const modelFile = init.modelFile ?? 'model.onnx'
  const modelPath = isAbsolute(modelFile) ? modelFile : join(init.modelDir, modelFile)
  const proc = spawnRuntime({
    command: host.command,
    args: host.args,
    cwd: init.modelDir,
    env: childEnv(ADDON_CACHE_ENV, {
      [HOST_CHANNEL_ENV]: '3',
      // Node options travel in the environment: the single binary takes none on its command line.
      ...(init.heapMiBMax === undefined ? {} : { NODE_OPTIONS: `--max-old-space-size=${init.heapMiBMax}` }),
    }),
    fd3: true,
    onStderrLine: init.onStderrLine,
  })
  const child = proc.child
  const channel = frameChannel<FromHost, ToHost>(
    child.stdio[3] as Readable,
    child.stdin!,
    HOST_FRAME_BYTES_MAX,
  )
  // A frame that does not decode means the host is broken: end it (its exit fails what is in flight).
  channel.on('disconnect', (reason) => {
    if (reason !== undefined) {
      init.onStderrLine?.(`the ONNX host's answer did not decode: ${reason.message}`)
      proc.kill()
    }
  })
  const send = (message: ToHost): void => channel.send(message)

  let onMessage: (msg: FromHost) => void = () => {}
  channel.on('message', (msg) => onMessage(msg))

  // ---- load: ready, load-error, exit, timeout or abort, whichever comes first
  const ready = await new Promise<FromHost & { t: 'ready' }>((resolve, reject) => {
    const fail = (err: ServingError): void => {
      cleanup()
      proc.kill()
      reject(err)
    }
    let loading = true
    onMessage = (msg: FromHost): void => {
      if (!loading) return
      if (msg.t === 'ready') {
        cleanup()
        resolve(msg)
      } else if (msg.t === 'load-error') {
        fail(new ServingError(msg.code, `model '${init.modelName}': ${msg.message}`))
      }
    }
    const timer = setTimeout(
      () =>
        fail(
          new ServingError(
            'MODEL_LOAD_FAILED',
            `the ONNX host was not ready within ${init.startTimeoutMs} ms`,
          ),
        ),
      init.startTimeoutMs,
    )
    const onAbort = (): void =>
      fail(new ServingError('MODEL_LOAD_FAILED', 'the start was aborted', { cause: init.signal?.reason }))
    function cleanup(): void {
      loading = false
      clearTimeout(timer)
      init.signal?.removeEventListener('abort', onAbort)
    }
    init.signal?.addEventListener('abort', onAbort, { once: true })
    if (init.signal?.aborted) onAbort()
    void proc.exited.then((exit) => {
      const why = proc.spawnError()?.message ?? describeExit(exit, proc.stderrTail())
      fail(new ServingError('MODEL_LOAD_FAILED', `the ONNX host ${why}`))
    })
    send({ t: 'load', modelPath, threads: init.threads ?? 1 })
  })

  // ---- serving
  const pending = new Map<number, { resolve(r: InferenceResult): void; reject(e: unknown): void }>()
  let nextId = 1
  onMessage = (msg: FromHost) => {
    if (msg.t !== 'result' && msg.t !== 'error') return
    const call = pending.get(msg.id)
    if (call === undefined) return
    pending.delete(msg.id)
    if (msg.t === 'result') call.resolve({ outputs: msg.outputs })
    else call.reject(new ServingError('INFERENCE_FAILED', `ONNX Runtime: ${msg.message}`))
  }
  let stopping = false
  const exited: Promise<RuntimeExit> = proc.exited.then((exit) => {
    const error = stopping
      ? new ServingError('REPLICA_NOT_READY', 'the replica stopped its runtime')
      : new ServingError(
          'RUNTIME_CRASHED',
          `the ONNX host (pid ${proc.pid}) ${describeExit(exit, proc.stderrTail())}`,
        )
    for (const call of pending.values()) call.reject(error)
    pending.clear()
    return { error }
  })

  return {
    pid: proc.pid,
    metadata: {
      platform: ONNX_PLATFORM,
      inputs: ready.inputs,
      outputs: ready.outputs,
      // Batching along dimension 0 needs every input and output to carry a variable dimension 0.
      batchRowsMax: [...ready.inputs, ...ready.outputs].every((t) => t.shape[0] === -1) ? Infinity : 1,
    },
    infer(call: InferenceRequest): Promise<InferenceResult> {
      if (proc.hasExited() || stopping) {
        return Promise.reject(new ServingError('RUNTIME_CRASHED', 'the ONNX host is gone'))
      }
      const id = nextId++
      return new Promise<InferenceResult>((resolve, reject) => {
        pending.set(id, { resolve, reject })
        send({
          t: 'infer',
          id,
          inputs: call.inputs.map((t) => ({
            name: t.name,
            datatype: t.datatype,
            shape: t.shape,
            data: t.data,
          })),
          outputs: call.outputs?.map((o) => o.name),
        })
      })
    },
    exited,
    async stop(graceMs) {
      stopping = true
      await proc.stop(graceMs, () => child.stdin!.end())
    },
    kill() {
      proc.kill()
    },
  }
}
