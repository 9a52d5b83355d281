/**
 * The ONNX host: the child process that loads a model into ONNX Runtime (onnxruntime-node, CPU) and
 * answers the replica's calls (messages.ts) in frames over its stdin and fd 3 (frames.ts). It runs in its own process so that
 * the daemon's event loop (Raft heartbeats, gossip) never waits on a model, and a crash of the native
 * runtime ends this process only: the replica sees the exit and starts another.
 *
 * onnxruntime-node is imported here, lazily, and nowhere else: the daemon itself never loads the
 * native library (in the single binary it is written out from the binary by the first host).
 */
import { existsSync, fstatSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Socket } from 'node:net'
import { ONNX_TYPE, datatypeOfOnnxType, type TensorData } from '../../protocol/datatypes.js'
import type { MetadataTensor } from '../../protocol/types.js'
import { frameChannel, type FrameChannel } from './frames.js'
import type { FromHost, InferMessage, LoadMessage, ToHost, WireTensor } from './messages.js'

type Ort = typeof import('onnxruntime-node')
type Session = Awaited<ReturnType<Ort['InferenceSession']['create']>>

/** Messages to and from the replica: frames over stdin and fd 3 in the host process. */
export type HostChannel = FrameChannel<ToHost, FromHost>

/** Set by the replica in the host's environment: the host's answers go to this file descriptor. */
export const HOST_CHANNEL_ENV = 'HOPSD_RUNTIME_CHANNEL_FD'
/** Frames larger than this end the host (a request is bounded far below it by bodyBytesMax). */
export const HOST_FRAME_BYTES_MAX = 1024 * 1024 * 1024

/** Whether this process was started as a replica's host (its channel is there). */
export function hasHostChannel(): boolean {
  if (process.env[HOST_CHANNEL_ENV] !== '3') return false
  try {
    return fstatSync(3).isFIFO() || fstatSync(3).isSocket()
  } catch {
    return false
  }
}

/**
 * Serves one model over `channel` until the channel closes; resolves then. Without a channel (started
 * by hand, not by a replica) it throws.
 */
export async function runOnnxHost(given: HostChannel | undefined = processChannel()): Promise<void> {
  if (given === undefined) {
    throw new Error('the ONNX host is started by a serving replica, with its channel on fd 3, not by hand')
  }
  const channel = given
  let ort: Ort | undefined
  let session: Session | undefined
  const closed = new Promise<void>((resolve) => channel.on('disconnect', () => resolve()))

  async function load(msg: LoadMessage): Promise<void> {
    if (!existsSync(msg.modelPath)) {
      channel.send({ t: 'load-error', code: 'MODEL_LOAD_FAILED', message: `no model file ${msg.modelPath}` })
      return
    }
    try {
      ort = await import('onnxruntime-node')
      // Run from the sources under tsx, the import's namespace can come back empty (tsx's ESM view of
      // this CommonJS package, seen when the host runs outside vitest: the daemon's replicas). require
      // gives the package's exports; the single binary's bundled import never takes this path.
      if (ort.InferenceSession === undefined) ort = createRequire(import.meta.url)('onnxruntime-node') as Ort
      session = await ort.InferenceSession.create(msg.modelPath, {
        intraOpNumThreads: msg.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        // Failures come back to the caller as errors; ORT's own stderr lines would repeat each one.
        logSeverityLevel: 4,
      })
    } catch (err) {
      channel.send({ t: 'load-error', code: 'MODEL_LOAD_FAILED', message: `ONNX Runtime: ${messageOf(err)}` })
      return
    }
    const inputs = describe(session.inputMetadata, 'input')
    const outputs = describe(session.outputMetadata, 'output')
    if (typeof inputs === 'string' || typeof outputs === 'string') {
      channel.send({
        t: 'load-error',
        code: 'MODEL_UNSUPPORTED',
        message: typeof inputs === 'string' ? inputs : (outputs as string),
      })
      return
    }
    channel.send({ t: 'ready', inputs, outputs })
  }

  async function infer(msg: InferMessage): Promise<void> {
    if (ort === undefined || session === undefined) {
      channel.send({ t: 'error', id: msg.id, message: 'the model is not loaded' })
      return
    }
    try {
      const feeds: Record<string, InstanceType<Ort['Tensor']>> = {}
      for (const t of msg.inputs) {
        feeds[t.name] = new ort.Tensor(ONNX_TYPE[t.datatype] as 'float32', t.data as Float32Array, t.shape)
      }
      const results = await (msg.outputs === undefined ? session.run(feeds) : session.run(feeds, msg.outputs))
      const names = msg.outputs ?? session.outputNames
      const outputs: WireTensor[] = names.map((name) => {
        const value = results[name]!
        const datatype = datatypeOfOnnxType(value.type)
        if (datatype === undefined) throw new Error(`output '${name}' has type ${value.type}`)
        return { name, datatype, shape: value.dims.map(Number), data: compact(value.data as TensorData) }
      })
      channel.send({ t: 'result', id: msg.id, outputs })
    } catch (err) {
      channel.send({ t: 'error', id: msg.id, message: messageOf(err) })
    }
  }

  channel.on('message', (msg) => {
    if (msg.t === 'load') void load(msg)
    else void infer(msg)
  })
  await closed
}

/** Inputs or outputs in the protocol's terms, or why the protocol cannot carry one of them. */
function describe(list: Session['inputMetadata'], kind: string): MetadataTensor[] | string {
  const out: MetadataTensor[] = []
  for (const v of list) {
    if (!v.isTensor) return `${kind} '${v.name}' is not a tensor (sequences and maps are not served)`
    const datatype = datatypeOfOnnxType(v.type)
    if (datatype === undefined) {
      return `${kind} '${v.name}' has element type ${v.type}, which is not one of the protocol's datatypes`
    }
    // Symbolic ('batch') and unknown dimensions are variable: -1 in the protocol.
    out.push({
      name: v.name,
      datatype,
      shape: v.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)),
    })
  }
  return out
}

/** A typed array that owns its buffer, so the IPC channel copies only its elements. */
function compact(data: TensorData): TensorData {
  if (Array.isArray(data)) return data
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) return data
  return data.slice() as TensorData
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function processChannel(): HostChannel | undefined {
  if (!hasHostChannel()) return undefined
  const out = new Socket({ fd: 3, readable: false, writable: true })
  return frameChannel<ToHost, FromHost>(process.stdin, out, HOST_FRAME_BYTES_MAX)
}
