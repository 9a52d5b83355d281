/**
 * The Open Inference Protocol's tensor datatypes and how each is held in memory here: one typed array
 * per tensor (BYTES as a list of strings), the layout ONNX Runtime takes and gives, so that a tensor
 * travels from the JSON body to the runtime without another conversion.
 *
 * | datatype | memory          | JSON elements                                                    |
 * | -------- | --------------- | ---------------------------------------------------------------- |
 * | BOOL     | Uint8Array 0/1  | `true` / `false`                                                 |
 * | UINT8..  | (U)IntNArray    | integers in the type's range                                     |
 * | (U)INT64 | Big(U)Int64Array| integers within ±2^53 (what a JSON number carries exactly)        |
 * | FP16     | Uint16Array     | numbers, rounded to half precision (the bits, as ONNX holds them) |
 * | FP32     | Float32Array    | finite numbers within the float32 range                          |
 * | FP64     | Float64Array    | numbers                                                          |
 * | BYTES    | string[]        | strings (UTF-8 text; the binary extension is not supported)      |
 */

export const DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
] as const

export type Datatype = (typeof DATATYPES)[number]

const DATATYPE_SET: ReadonlySet<string> = new Set(DATATYPES)

export function isDatatype(name: unknown): name is Datatype {
  return typeof name === 'string' && DATATYPE_SET.has(name)
}

/** The elements of one tensor, flat, in row-major order. */
export type TensorData =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | BigUint64Array
  | BigInt64Array
  | Float32Array
  | Float64Array
  | string[]

/** Element size in bytes (BYTES: undefined, variable). */
export const DATATYPE_BYTES: Readonly<Record<Datatype, number | undefined>> = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
  BYTES: undefined,
}

/** ONNX Runtime's tensor type name for each datatype (onnxruntime-node supports all thirteen). */
export const ONNX_TYPE: Readonly<Record<Datatype, string>> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
}

const BY_ONNX_TYPE: ReadonlyMap<string, Datatype> = new Map(DATATYPES.map((d) => [ONNX_TYPE[d], d] as const))

/** The datatype of an ONNX Runtime type name; undefined for types the protocol cannot name (bfloat16, …). */
export function datatypeOfOnnxType(type: string): Datatype | undefined {
  return BY_ONNX_TYPE.get(type)
}

/** A zeroed array of n elements for the datatype. */
export function allocate(datatype: Datatype, n: number): TensorData {
  switch (datatype) {
    case 'BOOL':
    case 'UINT8':
      return new Uint8Array(n)
    case 'INT8':
      return new Int8Array(n)
    case 'UINT16':
    case 'FP16':
      return new Uint16Array(n)
    case 'INT16':
      return new Int16Array(n)
    case 'UINT32':
      return new Uint32Array(n)
    case 'INT32':
      return new Int32Array(n)
    case 'UINT64':
      return new BigUint64Array(n)
    case 'INT64':
      return new BigInt64Array(n)
    case 'FP32':
      return new Float32Array(n)
    case 'FP64':
      return new Float64Array(n)
    case 'BYTES':
      return new Array<string>(n).fill('')
  }
}

/** Whether `data` is the in-memory form of `datatype` (a runtime's answer is checked with it). */
export function holds(datatype: Datatype, data: unknown): data is TensorData {
  switch (datatype) {
    case 'BOOL':
    case 'UINT8':
      return data instanceof Uint8Array
    case 'INT8':
      return data instanceof Int8Array
    case 'UINT16':
    case 'FP16':
      return data instanceof Uint16Array
    case 'INT16':
      return data instanceof Int16Array
    case 'UINT32':
      return data instanceof Uint32Array
    case 'INT32':
      return data instanceof Int32Array
    case 'UINT64':
      return data instanceof BigUint64Array
    case 'INT64':
      return data instanceof BigInt64Array
    case 'FP32':
      return data instanceof Float32Array
    case 'FP64':
      return data instanceof Float64Array
    case 'BYTES':
      return Array.isArray(data) && data.every((s) => typeof s === 'string')
  }
}

// ------------------------------------------------------------------------------------------ FP16

/** x rounded to the nearest integer, ties to even (exact for the values used here). */
function roundHalfEven(x: number): number {
  const f = Math.floor(x)
  const d = x - f
  if (d > 0.5) return f + 1
  if (d < 0.5) return f
  return f % 2 === 0 ? f : f + 1
}

/**
 * The IEEE 754 half-precision bits nearest to v (round to nearest, ties to even; beyond the largest
 * half, infinity), computed from the float64 value directly — no detour through float32, whose
 * rounding would round twice.
 */
export function toHalfBits(v: number): number {
  if (Number.isNaN(v)) return 0x7e00
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0
  const a = Math.abs(v)
  if (a >= 65520) return sign | 0x7c00 // 65504 + half an ulp and above round to infinity
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24) // subnormal (1024 lands on the smallest normal)
  let e = Math.floor(Math.log2(a))
  if (2 ** e > a)
    e -= 1 // log2 may round across a power of two
  else if (2 ** (e + 1) <= a) e += 1
  let mantissa = roundHalfEven((a / 2 ** e - 1) * 1024)
  if (mantissa === 1024) {
    mantissa = 0
    e += 1
  }
  if (e + 15 >= 31) return sign | 0x7c00
  return sign | ((e + 15) << 10) | mantissa
}

/** The number that half-precision bits stand for. */
export function fromHalfBits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const exponent = (bits >> 10) & 0x1f
  const mantissa = bits & 0x3ff
  if (exponent === 0) return sign * mantissa * 2 ** -24
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15)
}
