// The Open Inference Protocol's JSON: every datatype read and written exactly, every bad tensor
// refused with its code before anything runs, responses that echo the id, requests joined and split
// along the batch dimension.
import { describe, expect, it } from 'vitest'
import {
  DATATYPES,
  SERVING_ERRORS,
  ServingError,
  encodeInferResponse,
  oipError,
  parseInferRequest,
  parseInferRequestBody,
  type Datatype,
  type ModelMetadata,
  type ServingErrorCode,
} from '../../src/serving/index.js'
import { errorInfo } from '../../src/errors.js'
import { batchKey, concatRequests, splitResult } from '../../src/serving/protocol/batch.js'
import { fromHalfBits, toHalfBits } from '../../src/serving/protocol/datatypes.js'

const model: ModelMetadata = {
  name: 'm',
  platform: 'onnx_onnxv1',
  inputs: [
    { name: 'x', datatype: 'FP32', shape: [-1, 3] },
    { name: 'mask', datatype: 'BOOL', shape: [-1] },
  ],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }],
}

const x = { name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] }
const mask = { name: 'mask', shape: [2], datatype: 'BOOL', data: [true, false] }

function code(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    if (err instanceof ServingError) return err.code
    throw err
  }
  throw new Error('expected a ServingError')
}

/** One model with a single input of the datatype, shape [-1, 2]. */
function single(datatype: Datatype): ModelMetadata {
  return {
    name: 'one',
    platform: 'test',
    inputs: [{ name: 'in', datatype, shape: [-1, 2] }],
    outputs: [{ name: 'out', datatype, shape: [-1, 2] }],
  }
}

const ONE_OF_EACH: Record<Datatype, { data: unknown[]; memory: unknown[]; bad: unknown }> = {
  BOOL: { data: [true, false], memory: [1, 0], bad: 1 },
  UINT8: { data: [0, 255], memory: [0, 255], bad: 256 },
  UINT16: { data: [0, 65535], memory: [0, 65535], bad: -1 },
  UINT32: { data: [0, 4294967295], memory: [0, 4294967295], bad: 4294967296 },
  UINT64: { data: [0, 2 ** 53 - 1], memory: [0n, 2n ** 53n - 1n], bad: -1 },
  INT8: { data: [-128, 127], memory: [-128, 127], bad: 128 },
  INT16: { data: [-32768, 32767], memory: [-32768, 32767], bad: 1.5 },
  INT32: { data: [-(2 ** 31), 2 ** 31 - 1], memory: [-(2 ** 31), 2 ** 31 - 1], bad: 2 ** 31 },
  INT64: { data: [-(2 ** 53) + 1, 2 ** 53 - 1], memory: [-(2n ** 53n) + 1n, 2n ** 53n - 1n], bad: 2 ** 60 },
  FP16: { data: [1.5, -2], memory: [0x3e00, 0xc000], bad: 'x' },
  FP32: { data: [0.5, -3.25], memory: [0.5, -3.25], bad: 1e39 },
  FP64: { data: [0.1, 1e300], memory: [0.1, 1e300], bad: null },
  BYTES: { data: ['hello', 'wörld'], memory: ['hello', 'wörld'], bad: 7 },
}

describe('datatypes', () => {
  it('are the thirteen names of the protocol', () => {
    expect([...DATATYPES].sort()).toEqual(Object.keys(ONE_OF_EACH).sort())
  })

  it.each(DATATYPES)('%s: accepted in range, written back as sent', (datatype) => {
    const { data, memory } = ONE_OF_EACH[datatype]
    const req = parseInferRequest(
      { inputs: [{ name: 'in', shape: [1, 2], datatype, data }] },
      single(datatype),
    )
    expect(Array.from(req.inputs[0]!.data as ArrayLike<unknown>)).toEqual(memory)
    const text = encodeInferResponse(
      { outputs: [{ name: 'out', datatype, shape: [1, 2], data: req.inputs[0]!.data }] },
      { modelName: 'one' },
    )
    expect(JSON.parse(text).outputs[0]).toEqual({ name: 'out', datatype, shape: [1, 2], data })
  })

  it.each(DATATYPES)(
    '%s: an element of the wrong kind or out of range is TENSOR_DATA_INVALID',
    (datatype) => {
      const { data, bad } = ONE_OF_EACH[datatype]
      const body = { inputs: [{ name: 'in', shape: [1, 2], datatype, data: [data[0], bad] }] }
      expect(code(() => parseInferRequest(body, single(datatype)))).toBe('TENSOR_DATA_INVALID')
    },
  )

  it('refuses names that are not the protocol’s: unknown, lower case, BF16', () => {
    for (const name of ['FLOAT32', 'fp32', 'BF16', 'STRING', '']) {
      const body = { inputs: [{ name: 'in', shape: [1, 2], datatype: name, data: [1, 2] }] }
      expect(code(() => parseInferRequest(body, single('FP32')))).toBe('TENSOR_DATATYPE_INVALID')
    }
  })

  it('writes 64-bit integers with every digit, and NaN and infinities as null', () => {
    const text = encodeInferResponse(
      {
        outputs: [
          { name: 'big', datatype: 'UINT64', shape: [2], data: BigUint64Array.from([2n ** 64n - 1n, 0n]) },
          { name: 'neg', datatype: 'INT64', shape: [1], data: BigInt64Array.from([-(2n ** 63n)]) },
          { name: 'f', datatype: 'FP32', shape: [3], data: Float32Array.from([NaN, Infinity, 0.5]) },
          { name: 'h', datatype: 'FP16', shape: [2], data: Uint16Array.from([0x7c00, 0x3c00]) },
        ],
      },
      { modelName: 'm' },
    )
    expect(text).toContain('"data":[18446744073709551615,0]')
    expect(text).toContain('"data":[-9223372036854775808]')
    expect(text).toContain('"data":[null,null,0.5]')
    expect(text).toContain('"data":[null,1]')
  })

  it('rounds FP16 to nearest even, saturating to infinity past 65504', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [65504, 0x7bff],
      [65519.99, 0x7bff],
      [65520, 0x7c00],
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // halfway to zero: ties to even
      [3 * 2 ** -25, 0x0002], // halfway between 1 and 2 subnormal units: to even (2)
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and the next half: to even
      [1 + 3 * 2 ** -11, 0x3c02],
      [0.1, 0x2e66],
    ]
    for (const [value, bits] of cases) expect([value, toHalfBits(value)]).toEqual([value, bits])
    for (let bits = 0; bits < 0x7c00; bits += 37) expect(toHalfBits(fromHalfBits(bits))).toBe(bits)
  })
})

describe('inference requests', () => {
  it('reads a good request: inputs in the model’s order, id and parameters kept', () => {
    const req = parseInferRequest(
      { id: 'r-1', parameters: { trace: true }, inputs: [mask, x], outputs: [{ name: 'y' }] },
      model,
    )
    expect(req.id).toBe('r-1')
    expect(req.parameters).toEqual({ trace: true })
    expect(req.inputs.map((t) => t.name)).toEqual(['x', 'mask'])
    expect(req.inputs[0]!.data).toEqual(Float32Array.from([1, 2, 3, 4, 5, 6]))
    expect(req.outputs).toEqual([{ name: 'y' }])
  })

  it('takes data nested as the shape, the same as flat', () => {
    const nested = {
      ...x,
      data: [
        [1, 2, 3],
        [4, 5, 6],
      ],
    }
    const req = parseInferRequest({ inputs: [nested, mask] }, model)
    expect(req.inputs[0]!.data).toEqual(Float32Array.from([1, 2, 3, 4, 5, 6]))
    const cube = parseInferRequest(
      { inputs: [{ name: 'in', shape: [2, 1, 2], datatype: 'INT32', data: [[[1, 2]], [[3, 4]]] }] },
      { ...single('INT32'), inputs: [{ name: 'in', datatype: 'INT32', shape: [-1, -1, 2] }] },
    )
    expect(Array.from(cube.inputs[0]!.data as Int32Array)).toEqual([1, 2, 3, 4])
  })

  const refusals: [string, unknown, string][] = [
    ['a body that is not an object', [x], 'INFER_REQUEST_INVALID'],
    ['no inputs', { inputs: [] }, 'INFER_REQUEST_INVALID'],
    ['an id that is not a string', { id: 42, inputs: [x, mask] }, 'INFER_REQUEST_INVALID'],
    [
      'parameters that are not flat',
      { parameters: { a: { b: 1 } }, inputs: [x, mask] },
      'INFER_REQUEST_INVALID',
    ],
    ['data that is not a list', { inputs: [{ ...x, data: 'abc' }, mask] }, 'INFER_REQUEST_INVALID'],
    [
      'binary tensor data',
      { inputs: [{ ...x, data: [], parameters: { binary_data_size: 24 } }, mask] },
      'INFER_REQUEST_INVALID',
    ],
    ['an input the model lacks', { inputs: [x, mask, { ...mask, name: 'extra' }] }, 'TENSOR_NAME_INVALID'],
    ['a missing input', { inputs: [x] }, 'TENSOR_NAME_INVALID'],
    ['an input given twice', { inputs: [x, mask, x] }, 'TENSOR_NAME_INVALID'],
    ['an output the model lacks', { inputs: [x, mask], outputs: [{ name: 'z' }] }, 'TENSOR_NAME_INVALID'],
    ['the wrong datatype', { inputs: [{ ...x, datatype: 'FP64' }, mask] }, 'TENSOR_DATATYPE_INVALID'],
    ['a wrong fixed dimension', { inputs: [{ ...x, shape: [3, 2] }, mask] }, 'TENSOR_SHAPE_INVALID'],
    ['a wrong rank', { inputs: [{ ...x, shape: [6] }, mask] }, 'TENSOR_SHAPE_INVALID'],
    ['a negative dimension', { inputs: [{ ...x, shape: [-2, 3] }, mask] }, 'TENSOR_SHAPE_INVALID'],
    ['a fractional dimension', { inputs: [{ ...x, shape: [1.5, 3] }, mask] }, 'TENSOR_SHAPE_INVALID'],
    ['too few elements', { inputs: [{ ...x, data: [1, 2, 3, 4, 5] }, mask] }, 'TENSOR_DATA_INVALID'],
    ['too many elements', { inputs: [{ ...x, data: [1, 2, 3, 4, 5, 6, 7] }, mask] }, 'TENSOR_DATA_INVALID'],
    [
      'nesting off the shape',
      {
        inputs: [
          {
            ...x,
            data: [
              [1, 2],
              [3, 4],
              [5, 6],
            ],
          },
          mask,
        ],
      },
      'TENSOR_DATA_INVALID',
    ],
    [
      'ragged nesting',
      {
        inputs: [
          {
            ...x,
            data: [
              [1, 2, 3],
              [4, 5],
            ],
          },
          mask,
        ],
      },
      'TENSOR_DATA_INVALID',
    ],
    [
      'too deep nesting',
      {
        inputs: [
          {
            ...x,
            data: [
              [[1], [2], [3]],
              [4, 5, 6],
            ],
          },
          mask,
        ],
      },
      'TENSOR_DATA_INVALID',
    ],
    [
      'a string for a number',
      { inputs: [{ ...x, data: [1, 2, '3', 4, 5, 6] }, mask] },
      'TENSOR_DATA_INVALID',
    ],
    ['null for a number', { inputs: [{ ...x, data: [1, 2, null, 4, 5, 6] }, mask] }, 'TENSOR_DATA_INVALID'],
    ['a number for a boolean', { inputs: [x, { ...mask, data: [1, 0] }] }, 'TENSOR_DATA_INVALID'],
  ]

  it.each(refusals)('refuses %s', (_what, body, expected) => {
    expect(code(() => parseInferRequest(body, model))).toBe(expected)
  })

  it('reads a body of bytes: too large (413), not JSON, or a request', () => {
    const body = JSON.stringify({ inputs: [x, mask] })
    expect(parseInferRequestBody(Buffer.from(body), model, { bodyBytesMax: 1000 }).inputs).toHaveLength(2)
    expect(code(() => parseInferRequestBody(body, model, { bodyBytesMax: body.length - 1 }))).toBe(
      'INFER_REQUEST_TOO_LARGE',
    )
    expect(code(() => parseInferRequestBody('{"inputs": [', model, { bodyBytesMax: 1000 }))).toBe(
      'INFER_REQUEST_INVALID',
    )
  })

  it('checks only the structure when the model declares no inputs (a predictor without metadata)', () => {
    const free: ModelMetadata = { name: 'free', platform: 'subprocess', inputs: [], outputs: [] }
    const req = parseInferRequest(
      { inputs: [{ name: 'anything', shape: [1], datatype: 'BYTES', data: ['a'] }] },
      free,
    )
    expect(req.inputs[0]!.data).toEqual(['a'])
    expect(
      code(() =>
        parseInferRequest({ inputs: [{ name: 'a', shape: [2], datatype: 'INT8', data: [1] }] }, free),
      ),
    ).toBe('TENSOR_DATA_INVALID')
  })

  it('answers errors as the protocol’s {"error": message} with the code’s status', () => {
    const err = new ServingError('TENSOR_SHAPE_INVALID', 'input x has shape [3]')
    expect(oipError(err)).toEqual({ status: 400, body: { error: 'input x has shape [3]' } })
    expect(oipError(new ServingError('REPLICA_OVERLOADED', 'busy')).status).toBe(503)
    expect(oipError(new Error('a bug with a secret'))).toEqual({
      status: 500,
      body: { error: 'internal error' },
    })
    for (const c of Object.keys(SERVING_ERRORS) as ServingErrorCode[]) {
      expect(oipError(new ServingError(c, 'm')).status).toBe(SERVING_ERRORS[c].httpStatus)
      // joined into the daemon's one table (src/errors.ts), so the API's error mapper knows them too
      expect(errorInfo(new ServingError(c, 'm'))).toEqual({ code: c, row: SERVING_ERRORS[c] })
    }
  })
})

describe('responses', () => {
  it('echo the id, name the model and version, pass parameters through', () => {
    const text = encodeInferResponse(
      {
        parameters: { took_ms: 3 },
        outputs: [
          {
            name: 'y',
            datatype: 'FP32',
            shape: [1, 2],
            data: Float32Array.from([1.5, 2]),
            parameters: { a: 'b' },
          },
        ],
      },
      { modelName: 'm', modelVersion: '7', id: 'r-9' },
    )
    expect(JSON.parse(text)).toEqual({
      model_name: 'm',
      model_version: '7',
      id: 'r-9',
      parameters: { took_ms: 3 },
      outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 2], parameters: { a: 'b' }, data: [1.5, 2] }],
    })
    const bare = JSON.parse(encodeInferResponse({ outputs: [] }, { modelName: 'm' }))
    expect(bare).toEqual({ model_name: 'm', outputs: [] })
  })
})

describe('batches', () => {
  const req = (rows: number[][], m: boolean[]) =>
    parseInferRequest(
      {
        inputs: [
          { ...x, shape: [rows.length, 3], data: rows },
          { ...mask, shape: [m.length], data: m },
        ],
      },
      model,
    )

  it('join along dimension 0 and split back into views of the answer', () => {
    const a = req([[1, 2, 3]], [true])
    const b = req(
      [
        [4, 5, 6],
        [7, 8, 9],
      ],
      [false, true],
    )
    expect(batchKey(a)).toBe(batchKey(b))
    const joined = concatRequests([a, b])
    expect(joined.inputs[0]!.shape).toEqual([3, 3])
    expect(Array.from(joined.inputs[0]!.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(Array.from(joined.inputs[1]!.data as Uint8Array)).toEqual([1, 0, 1])
    const y = Float32Array.from([10, 11, 20, 21, 30, 31])
    const parts = splitResult({ outputs: [{ name: 'y', datatype: 'FP32', shape: [3, 2], data: y }] }, [1, 2])!
    expect(parts.map((p) => p.outputs[0]!.shape)).toEqual([
      [1, 2],
      [2, 2],
    ])
    expect(Array.from(parts[1]!.outputs[0]!.data as Float32Array)).toEqual([20, 21, 30, 31])
    expect((parts[1]!.outputs[0]!.data as Float32Array).buffer).toBe(y.buffer)
  })

  it('keep apart requests that differ in outputs, parameters or trailing shape; refuse to split a scalar answer', () => {
    const a = req([[1, 2, 3]], [true])
    const withOutputs = parseInferRequest({ inputs: [x, mask], outputs: [{ name: 'y' }] }, model)
    const withParams = parseInferRequest({ inputs: [x, mask], parameters: { p: 1 } }, model)
    expect(new Set([batchKey(a), batchKey(withOutputs), batchKey(withParams)]).size).toBe(3)
    const ragged = parseInferRequest(
      { inputs: [x, { ...mask, shape: [3], data: [true, true, true] }] },
      model,
    )
    expect(batchKey(ragged)).toBeUndefined() // inputs disagree on dimension 0: runs alone
    expect(
      splitResult(
        { outputs: [{ name: 's', datatype: 'FP32', shape: [], data: Float32Array.from([1]) }] },
        [1, 1],
      ),
    ).toBeUndefined()
  })
})
