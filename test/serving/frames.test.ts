// The frames between a replica and its ONNX host: every datatype's bytes arrive intact however the
// stream is cut, and a frame over the limit or one that lies about its tensors is refused.
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { FrameReader, encodeFrame, frameChannel } from '../../src/serving/runtimes/onnx/frames.js'
import type { FromHost, ToHost, WireTensor } from '../../src/serving/runtimes/onnx/messages.js'

const tensors: WireTensor[] = [
  { name: 'b', datatype: 'BOOL', shape: [3], data: Uint8Array.from([1, 0, 1]) },
  { name: 'i8', datatype: 'INT8', shape: [2], data: Int8Array.from([-128, 127]) },
  { name: 'u16', datatype: 'UINT16', shape: [1], data: Uint16Array.from([65535]) },
  { name: 'h', datatype: 'FP16', shape: [2], data: Uint16Array.from([0x3c00, 0xc000]) },
  { name: 'i32', datatype: 'INT32', shape: [2, 1], data: Int32Array.from([-5, 7]) },
  { name: 'u32', datatype: 'UINT32', shape: [1], data: Uint32Array.from([4294967295]) },
  { name: 'i64', datatype: 'INT64', shape: [2], data: BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n]) },
  { name: 'u64', datatype: 'UINT64', shape: [1], data: BigUint64Array.from([2n ** 64n - 1n]) },
  { name: 'f', datatype: 'FP32', shape: [2, 2], data: Float32Array.from([0.5, -1, NaN, Infinity]) },
  { name: 'd', datatype: 'FP64', shape: [1], data: Float64Array.from([Math.PI]) },
  { name: 's', datatype: 'BYTES', shape: [2], data: ['', 'naïve ☃'] },
  { name: 'empty', datatype: 'FP32', shape: [0, 3], data: new Float32Array(0) },
]

const infer: ToHost = { t: 'infer', id: 7, inputs: tensors, outputs: ['y'] }
const result: FromHost = { t: 'result', id: 7, outputs: tensors }

function bytesOf(msg: ToHost | FromHost): Buffer {
  return Buffer.concat(encodeFrame(msg))
}

describe('frames', () => {
  it('carry every datatype exactly, in messages of each kind', () => {
    const reader = new FrameReader(1 << 20)
    const ready: FromHost = {
      t: 'ready',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [],
    }
    const got = reader.push(Buffer.concat([bytesOf(infer), bytesOf(result), bytesOf(ready)]))
    expect(got).toEqual([infer, result, ready])
  })

  it('come out whole however the stream is cut', () => {
    const stream = Buffer.concat([bytesOf(infer), bytesOf(result)])
    for (const size of [1, 3, 7, 64]) {
      const reader = new FrameReader(1 << 20)
      const got = []
      for (let i = 0; i < stream.length; i += size) got.push(...reader.push(stream.subarray(i, i + size)))
      expect(got).toEqual([infer, result])
    }
  })

  it('give typed arrays of their own (aligned, not views of the stream)', () => {
    const stream = Buffer.concat([Buffer.from([0]), bytesOf(infer)]).subarray(1) // an odd offset
    const [msg] = new FrameReader(1 << 20).push(stream) as [ToHost & { t: 'infer' }]
    const f = msg.inputs.find((t) => t.name === 'f')!.data as Float32Array
    expect(f.byteOffset).toBe(0)
    expect(f.buffer.byteLength).toBe(16)
  })

  it('refuse a frame over the limit, and one whose tensor lies about its size', () => {
    expect(() => new FrameReader(64).push(bytesOf(infer))).toThrow(/at most 64/)
    const lying: ToHost = {
      t: 'infer',
      id: 1,
      inputs: [{ name: 'x', datatype: 'FP32', shape: [3], data: Float32Array.from([1, 2]) }],
      outputs: undefined,
    }
    expect(() => new FrameReader(1 << 20).push(bytesOf(lying))).toThrow(/8 bytes for shape \[3\]/)
  })

  it('a channel delivers messages and reports the end of its input, or a broken frame as its reason', async () => {
    const input = new PassThrough()
    const output = new PassThrough()
    const channel = frameChannel<FromHost, ToHost>(input, output, 1 << 20)
    const messages: FromHost[] = []
    const ends: (Error | undefined)[] = []
    channel.on('message', (m) => messages.push(m))
    channel.on('disconnect', (reason) => ends.push(reason))
    channel.send(infer)
    await new Promise((r) => setImmediate(r))
    expect(new FrameReader(1 << 20).push(output.read() as Buffer)).toEqual([infer])
    input.write(bytesOf(result))
    await new Promise((r) => setImmediate(r))
    expect(messages).toEqual([result])
    const bad = Buffer.alloc(8)
    bad.writeUInt32LE(4 + 100, 0)
    bad.writeUInt32LE(100, 4)
    input.write(Buffer.concat([bad, Buffer.alloc(100, 0x7b)])) // a head that is not JSON
    await new Promise((r) => setImmediate(r))
    expect(ends).toHaveLength(1)
    expect(ends[0]).toBeInstanceOf(Error)
  })
})
