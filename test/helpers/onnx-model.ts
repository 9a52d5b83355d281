/**
 * Small ONNX models for the serving tests and benchmarks, written from TypeScript: a ModelProto encoded
 * with protobufjs from the subset of ONNX's schema in test/fixtures/onnx/onnx-subset.proto. No Python
 * and no binary fixture: the test states the weights, and computes the expected numbers itself.
 *
 * @example
 * ```ts
 * const w = [[1, 2], [3, 4], [5, 6]] // 3 inputs → 2 outputs
 * const file = writeModel(dir, linearModel({ w, b: [0.5, -1] }))
 * // serve it, then compare with linearReference([[1, 1, 1]], w, b) → [[9.5, 11]]
 * ```
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import protobuf from 'protobufjs'
import { REPO_ROOT } from './index.js'

const root = protobuf.loadSync(join(REPO_ROOT, 'test', 'fixtures', 'onnx', 'onnx-subset.proto'))
const ModelProto = root.lookupType('onnx.ModelProto')

/** ONNX TensorProto.DataType numbers. */
export const OnnxType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
} as const

/** A dimension: a fixed size, or a name for a variable one (ONNX's dim_param). */
export type Dim = number | string

interface ValueInfo {
  name: string
  type: number
  shape: Dim[]
  /** A sequence of such tensors instead of one tensor. */
  sequence?: boolean
}

interface Node {
  op: string
  inputs: string[]
  outputs: string[]
  attributes?: { name: string; i?: number; f?: number }[]
}

interface Initializer {
  name: string
  type: number
  dims: number[]
  raw: Uint8Array
}

export interface GraphSpec {
  inputs: ValueInfo[]
  outputs: ValueInfo[]
  nodes: Node[]
  initializers?: Initializer[]
  /** Default opset 17 of the default domain. */
  opset?: number
}

function valueInfo(v: ValueInfo): object {
  const tensor = {
    tensorType: {
      elemType: v.type,
      shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
    },
  }
  return { name: v.name, type: v.sequence === true ? { sequenceType: { elemType: tensor } } : tensor }
}

/** Encodes a graph as the bytes of a `.onnx` file. */
export function encodeModel(spec: GraphSpec): Uint8Array {
  const message = ModelProto.fromObject({
    irVersion: 8,
    producerName: 'hopsd-tests',
    opsetImport: [{ domain: '', version: spec.opset ?? 17 }],
    graph: {
      name: 'g',
      node: spec.nodes.map((n, i) => ({
        name: `n${i}`,
        opType: n.op,
        input: n.inputs,
        output: n.outputs,
        attribute: (n.attributes ?? []).map((a) =>
          a.i !== undefined ? { name: a.name, i: a.i, type: 2 } : { name: a.name, f: a.f, type: 1 },
        ),
      })),
      initializer: (spec.initializers ?? []).map((t) => ({
        name: t.name,
        dataType: t.type,
        dims: t.dims,
        rawData: t.raw,
      })),
      input: spec.inputs.map(valueInfo),
      output: spec.outputs.map(valueInfo),
    },
  })
  return ModelProto.encode(message).finish()
}

function float32Raw(values: readonly number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer)
}

export interface LinearSpec {
  /** W as rows: w[i][j] is the weight from input feature i to output feature j. */
  w: readonly (readonly number[])[]
  /** One bias per output feature. */
  b: readonly number[]
  /** Names of the input and output (default x, y). */
  input?: string
  output?: string
}

/** y = xW + b (MatMul, then Add) over FP32, with a variable batch dimension: x [batch, in] → y [batch, out]. */
export function linearModel(spec: LinearSpec): GraphSpec {
  const inFeatures = spec.w.length
  const outFeatures = spec.b.length
  for (const row of spec.w)
    if (row.length !== outFeatures) throw new Error('every row of W needs one weight per output')
  const x = spec.input ?? 'x'
  const y = spec.output ?? 'y'
  return {
    inputs: [{ name: x, type: OnnxType.FLOAT, shape: ['batch', inFeatures] }],
    outputs: [{ name: y, type: OnnxType.FLOAT, shape: ['batch', outFeatures] }],
    initializers: [
      { name: 'W', type: OnnxType.FLOAT, dims: [inFeatures, outFeatures], raw: float32Raw(spec.w.flat()) },
      { name: 'B', type: OnnxType.FLOAT, dims: [outFeatures], raw: float32Raw(spec.b) },
    ],
    nodes: [
      { op: 'MatMul', inputs: [x, 'W'], outputs: ['xW'] },
      { op: 'Add', inputs: ['xW', 'B'], outputs: [y] },
    ],
  }
}

/** The expected y = xW + b, computed here in float64 from the float32-rounded inputs and weights. */
export function linearReference(
  x: readonly (readonly number[])[],
  w: readonly (readonly number[])[],
  b: readonly number[],
): number[][] {
  const f = Math.fround
  return x.map((row) => b.map((bias, j) => row.reduce((sum, xi, i) => sum + f(xi) * f(w[i]![j]!), f(bias))))
}

/** out = Identity(in) for one element type: [batch, ...rest] in and out (rest fixed). */
export function identityModel(type: number, shape: Dim[] = ['batch', 2]): GraphSpec {
  return {
    inputs: [{ name: 'in', type, shape }],
    outputs: [{ name: 'out', type, shape }],
    nodes: [{ op: 'Identity', inputs: ['in'], outputs: ['out'] }],
  }
}

/** out_T = Identity(in_T) for every element type T the protocol names: [batch, 2] each. */
export function allTypesIdentityModel(): GraphSpec {
  const types = Object.entries(OnnxType)
  return {
    inputs: types.map(([name, type]) => ({ name: `in_${name}`, type, shape: ['batch', 2] })),
    outputs: types.map(([name, type]) => ({ name: `out_${name}`, type, shape: ['batch', 2] })),
    nodes: types.map(([name]) => ({ op: 'Identity', inputs: [`in_${name}`], outputs: [`out_${name}`] })),
  }
}

/** n = SequenceLength(seq): a model whose input is a sequence of tensors, which the protocol cannot carry. */
export function sequenceModel(): GraphSpec {
  return {
    inputs: [{ name: 'seq', type: OnnxType.FLOAT, shape: [2], sequence: true }],
    outputs: [{ name: 'n', type: OnnxType.INT64, shape: [] }],
    nodes: [{ op: 'SequenceLength', inputs: ['seq'], outputs: ['n'] }],
  }
}

/**
 * out = Gather(table, idx): picks entries of a fixed FP32 table [4] by INT64 indices [batch]. An index
 * outside 0..3 passes the protocol's checks (right name, type and shape) and fails inside the runtime:
 * the model for "a runtime failure answers 500".
 */
export function gatherModel(table: readonly number[] = [10, 20, 30, 40]): GraphSpec {
  return {
    inputs: [{ name: 'idx', type: OnnxType.INT64, shape: ['batch'] }],
    outputs: [{ name: 'out', type: OnnxType.FLOAT, shape: ['batch'] }],
    initializers: [{ name: 'table', type: OnnxType.FLOAT, dims: [table.length], raw: float32Raw(table) }],
    nodes: [
      { op: 'Gather', inputs: ['table', 'idx'], outputs: ['out'], attributes: [{ name: 'axis', i: 0 }] },
    ],
  }
}

/** Writes `model.onnx` into dir (created) and returns dir: a model directory as the registry keeps one. */
export function writeModel(dir: string, spec: GraphSpec, file = 'model.onnx'): string {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, file), encodeModel(spec))
  return dir
}
