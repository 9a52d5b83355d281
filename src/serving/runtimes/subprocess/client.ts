/**
 * A subprocess predictor: any executable (a user's Python script, a shell or Node program) that speaks
 * the predictor protocol — JSON lines over its stdin and stdout, documented in src/serving/README.md.
 *
 *   hopsd → predictor  {"type":"load","protocol":1,"model_dir":…,"model_name":…,"model_version":…}
 *   predictor → hopsd  {"type":"ready","inputs":[…],"outputs":[…],"platform":…,"max_batch_size":…}
 *   hopsd → predictor  {"type":"infer","id":"7","inputs":[…],"outputs":[…],"parameters":{…}}
 *   predictor → hopsd  {"type":"result","id":"7","outputs":[…],"parameters":{…}}
 *                    | {"type":"error","id":"7","error":"…","bad_input":true}
 *
 * A line that is not such a message ends the predictor (it is killed, and the replica restarts it):
 * a program that writes anything else to stdout cannot be trusted to keep the ids straight. A result
 * whose tensors do not check out fails that request only.
 */
import { ServingError } from '../../errors.js'
import { DATATYPES, isDatatype } from '../../protocol/datatypes.js'
import { encodeTensorJson } from '../../protocol/encode.js'
import { parseTensorJson } from '../../protocol/parse.js'
import type { InferenceRequest, InferenceResult, MetadataTensor, Parameters } from '../../protocol/types.js'
import { childEnv, describeExit, spawnRuntime } from '../process.js'
import type { RuntimeConnection, RuntimeExit, RuntimeStartInit } from '../runtime.js'

export interface SubprocessStartInit extends RuntimeStartInit {
  /** The predictor's argv, run in modelDir (e.g. ['python3', 'predictor.py']). */
  readonly command: readonly string[]
  /** Variables added to the predictor's small environment (PATH, locale, home; never the daemon's). */
  readonly env?: Readonly<Record<string, string>>
  /** Longest line accepted from the predictor, in bytes; a longer one ends it. */
  readonly lineBytesMax: number
}

export const PREDICTOR_PROTOCOL_VERSION = 1
export const SUBPROCESS_PLATFORM = 'subprocess'

export async function startSubprocessRuntime(init: SubprocessStartInit): Promise<RuntimeConnection> {
  const [command, ...args] = init.command
  if (command === undefined)
    throw new ServingError('REPLICA_CONFIG_INVALID', 'the predictor command is empty')
  const proc = spawnRuntime({
    command,
    args,
    cwd: init.modelDir,
    env: childEnv([], {
      HOPSD_MODEL_DIR: init.modelDir,
      HOPSD_MODEL_NAME: init.modelName,
      ...(init.modelVersion === undefined ? {} : { HOPSD_MODEL_VERSION: init.modelVersion }),
      ...init.env,
    }),
    fd3: false,
    onStderrLine: init.onStderrLine,
  })
  const stdin = proc.child.stdin!
  const stdout = proc.child.stdout!
  const write = (line: string): void => {
    if (!stdin.destroyed && stdin.writable) stdin.write(`${line}\n`)
  }

  // ---- lines from stdout, bounded
  type Line = Record<string, unknown>
  let onLine: (msg: Line) => void = () => {}
  let fatal: ServingError | undefined
  const protocolFailure = (message: string): void => {
    if (fatal !== undefined) return
    fatal = new ServingError('PREDICTOR_PROTOCOL_ERROR', `predictor ${command} (pid ${proc.pid}): ${message}`)
    proc.kill()
  }
  let buffered: Buffer[] = []
  let bufferedBytes = 0
  stdout.on('data', (chunk: Buffer) => {
    let start = 0
    for (;;) {
      const nl = chunk.indexOf(10, start)
      if (nl < 0) break
      const piece = chunk.subarray(start, nl)
      const text =
        bufferedBytes === 0 ? piece.toString('utf8') : Buffer.concat([...buffered, piece]).toString('utf8')
      buffered = []
      bufferedBytes = 0
      start = nl + 1
      if (text.trim() === '') continue
      let msg: unknown
      try {
        msg = JSON.parse(text)
      } catch {
        protocolFailure(
          `wrote a line that is not JSON (logs go to stderr): ${JSON.stringify(text.slice(0, 200))}`,
        )
        return
      }
      if (
        typeof msg !== 'object' ||
        msg === null ||
        Array.isArray(msg) ||
        typeof (msg as Line).type !== 'string'
      ) {
        protocolFailure(`wrote a line that is not a message object with a "type": ${text.slice(0, 200)}`)
        return
      }
      onLine(msg as Line)
      if (fatal !== undefined) return
    }
    if (start < chunk.length) {
      buffered.push(chunk.subarray(start))
      bufferedBytes += chunk.length - start
      if (bufferedBytes > init.lineBytesMax)
        protocolFailure(`wrote a line longer than ${init.lineBytesMax} bytes`)
    }
  })

  // ---- load
  const ready = await new Promise<Line>((resolve, reject) => {
    const fail = (err: ServingError): void => {
      cleanup()
      proc.kill()
      reject(err)
    }
    onLine = (msg) => {
      if (msg.type === 'ready') {
        cleanup()
        resolve(msg)
      } else if (msg.type === 'error') {
        fail(
          new ServingError('MODEL_LOAD_FAILED', `predictor ${command} failed to load: ${String(msg.error)}`),
        )
      } else {
        protocolFailure(`sent '${String(msg.type)}' before 'ready'`)
      }
    }
    const timer = setTimeout(
      () =>
        fail(
          new ServingError(
            'MODEL_LOAD_FAILED',
            `predictor ${command} was not ready within ${init.startTimeoutMs} ms`,
          ),
        ),
      init.startTimeoutMs,
    )
    const onAbort = (): void =>
      fail(new ServingError('MODEL_LOAD_FAILED', 'the start was aborted', { cause: init.signal?.reason }))
    function cleanup(): void {
      clearTimeout(timer)
      init.signal?.removeEventListener('abort', onAbort)
    }
    init.signal?.addEventListener('abort', onAbort, { once: true })
    if (init.signal?.aborted) onAbort()
    void proc.exited.then((exit) => {
      if (fatal !== undefined) return fail(new ServingError('MODEL_LOAD_FAILED', fatal.message))
      const why = proc.spawnError()?.message ?? describeExit(exit, proc.stderrTail())
      fail(new ServingError('MODEL_LOAD_FAILED', `predictor ${command} ${why} before it was ready`))
    })
    write(
      JSON.stringify({
        type: 'load',
        protocol: PREDICTOR_PROTOCOL_VERSION,
        model_dir: init.modelDir,
        model_name: init.modelName,
        ...(init.modelVersion === undefined ? {} : { model_version: init.modelVersion }),
      }),
    )
  })
  let metadata: RuntimeConnectionMetadata
  try {
    metadata = readyMetadata(ready)
  } catch (err) {
    proc.kill()
    throw err
  }

  // ---- serving
  const pending = new Map<string, { resolve(r: InferenceResult): void; reject(e: unknown): void }>()
  let nextId = 1
  onLine = (msg) => {
    if (msg.type !== 'result' && msg.type !== 'error') {
      protocolFailure(`sent a message of type '${String(msg.type)}' while serving`)
      return
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined
    const call = id === undefined ? undefined : pending.get(id)
    if (call === undefined) return // an answer to a call that timed out or was aborted: nobody waits
    pending.delete(id!)
    if (msg.type === 'error') {
      const text = typeof msg.error === 'string' ? msg.error : JSON.stringify(msg.error)
      call.reject(
        msg.bad_input === true
          ? new ServingError('INFER_INPUT_REFUSED', `the predictor refused the inputs: ${text}`)
          : new ServingError('INFERENCE_FAILED', `the predictor failed: ${text}`),
      )
      return
    }
    try {
      call.resolve(readResult(msg))
    } catch (err) {
      call.reject(
        new ServingError(
          'PREDICTOR_PROTOCOL_ERROR',
          `the predictor's result does not check out: ${(err as Error).message}`,
        ),
      )
    }
  }
  let stopping = false
  const exited: Promise<RuntimeExit> = proc.exited.then((exit) => {
    const error =
      fatal ??
      (stopping
        ? new ServingError('REPLICA_NOT_READY', 'the replica stopped its runtime')
        : new ServingError(
            'RUNTIME_CRASHED',
            `predictor ${command} (pid ${proc.pid}) ${describeExit(exit, proc.stderrTail())}`,
          ))
    for (const call of pending.values()) call.reject(error)
    pending.clear()
    return { error }
  })

  return {
    pid: proc.pid,
    metadata,
    infer(call: InferenceRequest): Promise<InferenceResult> {
      if (proc.hasExited() || fatal !== undefined) {
        return Promise.reject(fatal ?? new ServingError('RUNTIME_CRASHED', `predictor ${command} is gone`))
      }
      const id = String(nextId++)
      return new Promise<InferenceResult>((resolve, reject) => {
        pending.set(id, { resolve, reject })
        let line = `{"type":"infer","id":"${id}","inputs":[${call.inputs.map(encodeTensorJson).join(',')}]`
        if (call.outputs !== undefined) line += `,"outputs":${JSON.stringify(call.outputs)}`
        if (call.parameters !== undefined) line += `,"parameters":${JSON.stringify(call.parameters)}`
        write(`${line}}`)
      })
    },
    exited,
    async stop(graceMs) {
      stopping = true
      await proc.stop(graceMs, () => stdin.end())
    },
    kill() {
      proc.kill()
    },
  }
}

type RuntimeConnectionMetadata = RuntimeConnection['metadata']

/** The `ready` message → metadata; a malformed one fails the load. */
function readyMetadata(msg: Record<string, unknown>): RuntimeConnectionMetadata {
  const tensors = (key: 'inputs' | 'outputs'): MetadataTensor[] => {
    const raw = msg[key]
    if (raw === undefined) return []
    if (!Array.isArray(raw)) throw badReady(`"${key}" must be a list`)
    return raw.map((t: unknown, i) => {
      const o = t as Record<string, unknown> | null
      if (typeof o !== 'object' || o === null || typeof o.name !== 'string')
        throw badReady(`${key}[${i}] needs a "name"`)
      if (!isDatatype(o.datatype))
        throw badReady(`${key}[${i}].datatype must be one of ${DATATYPES.join(', ')}`)
      if (!Array.isArray(o.shape) || !o.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= -1)) {
        throw badReady(`${key}[${i}].shape must be a list of integers ≥ -1`)
      }
      return { name: o.name, datatype: o.datatype, shape: o.shape as number[] }
    })
  }
  const maxBatch = msg.max_batch_size
  if (maxBatch !== undefined && !(Number.isSafeInteger(maxBatch) && (maxBatch as number) >= 0)) {
    throw badReady('"max_batch_size" must be a non-negative integer')
  }
  if (msg.platform !== undefined && typeof msg.platform !== 'string')
    throw badReady('"platform" must be a string')
  return {
    platform: (msg.platform as string | undefined) ?? SUBPROCESS_PLATFORM,
    inputs: tensors('inputs'),
    outputs: tensors('outputs'),
    batchRowsMax: Math.max(1, (maxBatch as number | undefined) ?? 1),
  }
}

function badReady(message: string): ServingError {
  return new ServingError('MODEL_LOAD_FAILED', `the predictor's ready message: ${message}`)
}

function readResult(msg: Record<string, unknown>): InferenceResult {
  if (!Array.isArray(msg.outputs)) throw new Error('"outputs" must be a list of tensors')
  const outputs = msg.outputs.map((t: unknown, i) => parseTensorJson(t, `output ${i}`))
  const result: InferenceResult = { outputs }
  const params = msg.parameters
  if (params !== undefined) {
    if (typeof params !== 'object' || params === null || Array.isArray(params))
      throw new Error('"parameters" must be an object')
    result.parameters = params as Parameters
  }
  return result
}
