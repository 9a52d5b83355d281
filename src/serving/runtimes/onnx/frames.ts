/**
 * The wire between a replica and its ONNX host: length-prefixed frames over pipes (the host's stdin one
 * way, its fd 3 the other; stdout stays free for whatever a native library prints). A frame is
 *
 *   u32 LE  length of the rest of the frame
 *   u32 LE  length of the JSON head
 *   JSON    the message, tensors described by name, datatype, shape and byte length (BYTES: the strings)
 *   bytes   each numeric tensor's elements, little-endian, in the order of the head's `tensors`
 *
 * Tensors travel as their bytes, copied once on each side; JSON carries only the small head — no V8
 * serialization of large arrays as with Node's IPC channel (see DEVELOPING.md for what each cost).
 */
import type { Readable, Writable } from 'node:stream'
import { allocate, type Datatype, type TensorData } from '../../protocol/datatypes.js'
import { elementCount } from '../../protocol/parse.js'
import type { FromHost, ToHost, WireTensor } from './messages.js'

interface TensorHead {
  name: string
  datatype: Datatype
  shape: number[]
  /** Byte length of the elements after the head (numeric datatypes). */
  bytes?: number
  /** The elements of a BYTES tensor. */
  strings?: string[]
}

type Message = ToHost | FromHost

/** The tensors a message carries: an infer's inputs, a result's outputs. */
function tensorsOf(msg: Message): WireTensor[] {
  if (msg.t === 'infer') return msg.inputs
  if (msg.t === 'result') return msg.outputs
  return []
}

/** A message as the buffers of one frame (write them in order, e.g. corked). */
export function encodeFrame(msg: Message): Buffer[] {
  const tensors = tensorsOf(msg)
  const heads: TensorHead[] = tensors.map((t) =>
    t.datatype === 'BYTES'
      ? { name: t.name, datatype: t.datatype, shape: t.shape, strings: t.data as string[] }
      : {
          name: t.name,
          datatype: t.datatype,
          shape: t.shape,
          bytes: (t.data as Exclude<TensorData, string[]>).byteLength,
        },
  )
  const rest =
    msg.t === 'infer'
      ? { ...msg, inputs: undefined }
      : msg.t === 'result'
        ? { ...msg, outputs: undefined }
        : msg
  const head = Buffer.from(JSON.stringify({ ...rest, tensors: heads }))
  const bodies = tensors
    .filter((t) => t.datatype !== 'BYTES')
    .map((t) => {
      const d = t.data as Exclude<TensorData, string[]>
      return Buffer.from(d.buffer, d.byteOffset, d.byteLength)
    })
  const prefix = Buffer.allocUnsafe(8)
  prefix.writeUInt32LE(4 + head.length + bodies.reduce((n, b) => n + b.length, 0), 0)
  prefix.writeUInt32LE(head.length, 4)
  return [prefix, head, ...bodies]
}

/** Writes a message as one frame (one writev). */
export function writeFrame(out: Writable, msg: Message): void {
  const parts = encodeFrame(msg)
  out.cork()
  for (const p of parts) out.write(p)
  process.nextTick(() => out.uncork())
}

/** Cuts a byte stream into messages; throws on a frame over frameBytesMax or one that does not decode. */
export class FrameReader {
  private chunks: Buffer[] = []
  private buffered = 0

  constructor(private readonly frameBytesMax: number) {}

  push(chunk: Buffer): Message[] {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    const out: Message[] = []
    for (;;) {
      if (this.buffered < 4) break
      const first = this.chunks[0]!.length >= 4 ? this.chunks[0]! : this.flatten()
      const length = first.readUInt32LE(0)
      if (length > this.frameBytesMax)
        throw new Error(`a frame of ${length} bytes (at most ${this.frameBytesMax})`)
      if (this.buffered < 4 + length) break
      const all = this.flatten()
      out.push(decodeFrame(all.subarray(4, 4 + length)))
      const rest = all.subarray(4 + length)
      this.chunks = rest.length > 0 ? [rest] : []
      this.buffered = rest.length
    }
    return out
  }

  private flatten(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)]
    return this.chunks[0]!
  }
}

function decodeFrame(frame: Buffer): Message {
  const headLength = frame.readUInt32LE(0)
  const head = JSON.parse(frame.toString('utf8', 4, 4 + headLength)) as Message & { tensors: TensorHead[] }
  let offset = 4 + headLength
  const tensors: WireTensor[] = head.tensors.map((t) => {
    if (t.datatype === 'BYTES')
      return { name: t.name, datatype: t.datatype, shape: t.shape, data: t.strings ?? [] }
    const bytes = t.bytes ?? 0
    if (offset + bytes > frame.length) throw new Error(`tensor '${t.name}' runs past the end of its frame`)
    // A copy into a fresh buffer: typed arrays need their element alignment, pieces of a stream have none.
    const data = allocate(t.datatype, elementCount(t.shape)) as Exclude<TensorData, string[]>
    if (data.byteLength !== bytes)
      throw new Error(`tensor '${t.name}' has ${bytes} bytes for shape [${t.shape.join(', ')}]`)
    new Uint8Array(data.buffer).set(frame.subarray(offset, offset + bytes))
    offset += bytes
    return { name: t.name, datatype: t.datatype, shape: t.shape, data }
  })
  const { tensors: _tensors, ...msg } = head
  if (msg.t === 'infer') return { ...msg, inputs: tensors }
  if (msg.t === 'result') return { ...msg, outputs: tensors }
  return msg as Message
}

/** The messages of one direction of a pipe pair: frames read from `input`, written to `output`. */
export interface FrameChannel<In extends Message, Out extends Message> {
  send(message: Out): void
  on(event: 'message', fn: (message: In) => void): void
  /** The input ended (the other side closed it or exited), or a frame did not decode. */
  on(event: 'disconnect', fn: (reason?: Error) => void): void
}

export function frameChannel<In extends Message, Out extends Message>(
  input: Readable,
  output: Writable,
  frameBytesMax: number,
): FrameChannel<In, Out> {
  const reader = new FrameReader(frameBytesMax)
  const onMessage: ((m: In) => void)[] = []
  const onDisconnect: ((reason?: Error) => void)[] = []
  let ended = false
  const end = (reason?: Error): void => {
    if (ended) return
    ended = true
    for (const fn of onDisconnect) fn(reason)
  }
  input.on('data', (chunk: Buffer) => {
    if (ended) return
    let messages: Message[]
    try {
      messages = reader.push(chunk)
    } catch (err) {
      input.destroy()
      return end(err as Error)
    }
    for (const m of messages) for (const fn of onMessage) fn(m as In)
  })
  input.on('end', () => end())
  input.on('close', () => end())
  input.on('error', (err) => end(err))
  output.on('error', () => {}) // EPIPE when the other side is gone: its exit or end tells the story
  return {
    send(message) {
      if (!output.destroyed && output.writable) writeFrame(output, message)
    },
    on(event: 'message' | 'disconnect', fn: (arg: never) => void) {
      if (event === 'message') onMessage.push(fn as (m: In) => void)
      else onDisconnect.push(fn as (reason?: Error) => void)
    },
  } as FrameChannel<In, Out>
}
