/**
 * Reading Open Inference Protocol JSON into checked tensors. Every refusal is a typed 400-class
 * {@link ServingError} naming the tensor and what is wrong, thrown before anything reaches a runtime,
 * so that a bad request changes nothing and the replica keeps serving.
 *
 * Tensor data may be flat (`[1, 2, 3, 4]`) or nested as the shape (`[[1, 2], [3, 4]]`), as the spec
 * allows; nesting must follow the shape exactly. Elements are checked one by one against the datatype;
 * nothing is coerced (a string is not a number, 1 is not `true`).
 */
import { ServingError } from '../errors.js'
import { DATATYPES, allocate, isDatatype, toHalfBits, type Datatype, type TensorData } from './datatypes.js'
import type {
  InferenceRequest,
  MetadataTensor,
  ModelMetadata,
  Parameters,
  RequestedOutput,
  Tensor,
} from './types.js'

export interface ParseBodyOptions {
  /** Largest body accepted, in bytes; a larger one is refused before it is parsed. */
  readonly bodyBytesMax: number
}

/**
 * A request body as it arrived (bytes or text) → a checked request. The size is checked first, so a
 * request's memory is bounded by `bodyBytesMax` (times the few bytes an element takes in memory).
 */
export function parseInferRequestBody(
  body: Uint8Array | string,
  model: ModelMetadata,
  opts: ParseBodyOptions,
): InferenceRequest {
  const bytes = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength
  if (bytes > opts.bodyBytesMax) {
    throw new ServingError(
      'INFER_REQUEST_TOO_LARGE',
      `the request body has ${bytes} bytes; this model accepts at most ${opts.bodyBytesMax}`,
    )
  }
  let json: unknown
  try {
    json = JSON.parse(typeof body === 'string' ? body : Buffer.from(body).toString('utf8'))
  } catch (err) {
    throw new ServingError('INFER_REQUEST_INVALID', `the request body is not JSON: ${(err as Error).message}`)
  }
  return parseInferRequest(json, model)
}

/** A parsed JSON body → a request checked against the model's inputs and outputs. */
export function parseInferRequest(body: unknown, model: ModelMetadata): InferenceRequest {
  if (!isObject(body)) throw invalid('the request body must be a JSON object')
  const id = body.id
  if (id !== undefined && typeof id !== 'string') throw invalid('"id" must be a string')
  const parameters = parseParameters(body.parameters, 'the request')
  if (!Array.isArray(body.inputs) || body.inputs.length === 0)
    throw invalid('"inputs" must be a non-empty list of input tensors')

  const declared = new Map(model.inputs.map((t) => [t.name, t] as const))
  const seen = new Map<string, Tensor>()
  for (const [i, raw] of body.inputs.entries()) {
    const where = `inputs[${i}]`
    if (!isObject(raw)) throw invalid(`${where} must be an object`)
    if (typeof raw.name !== 'string') throw invalid(`${where}.name must be a string`)
    const name = raw.name
    if (seen.has(name)) throw new ServingError('TENSOR_NAME_INVALID', `input '${name}' is given twice`)
    const spec = declared.get(name)
    if (model.inputs.length > 0 && spec === undefined) {
      throw new ServingError(
        'TENSOR_NAME_INVALID',
        `model '${model.name}' has no input '${name}' (its inputs: ${names(model.inputs)})`,
      )
    }
    if (isObject(raw.parameters) && raw.parameters.binary_data_size !== undefined) {
      throw invalid(`input '${name}': the binary tensor data extension is not supported; send "data" as JSON`)
    }
    const tensor = parseTensorJson(raw, `input '${name}'`)
    if (spec !== undefined) checkAgainst(tensor, spec)
    seen.set(name, tensor)
  }
  const missing = model.inputs.filter((t) => !seen.has(t.name))
  if (missing.length > 0) {
    throw new ServingError(
      'TENSOR_NAME_INVALID',
      `the request lacks input(s) ${names(missing)} of model '${model.name}'`,
    )
  }
  const inputs = model.inputs.length > 0 ? model.inputs.map((t) => seen.get(t.name)!) : [...seen.values()]

  const request: InferenceRequest = { inputs }
  if (id !== undefined) request.id = id
  if (parameters !== undefined) request.parameters = parameters
  if (body.outputs !== undefined) request.outputs = parseRequestedOutputs(body.outputs, model)
  return request
}

function parseRequestedOutputs(raw: unknown, model: ModelMetadata): RequestedOutput[] {
  if (!Array.isArray(raw)) throw invalid('"outputs" must be a list of {"name": ...}')
  const known = new Set(model.outputs.map((t) => t.name))
  const seen = new Set<string>()
  return raw.map((item, i) => {
    if (!isObject(item) || typeof item.name !== 'string')
      throw invalid(`outputs[${i}] must be {"name": <string>}`)
    const name = item.name
    if (model.outputs.length > 0 && !known.has(name)) {
      throw new ServingError(
        'TENSOR_NAME_INVALID',
        `model '${model.name}' has no output '${name}' (its outputs: ${names(model.outputs)})`,
      )
    }
    if (seen.has(name)) throw new ServingError('TENSOR_NAME_INVALID', `output '${name}' is asked for twice`)
    seen.add(name)
    const parameters = parseParameters(item.parameters, `output '${name}'`)
    return parameters === undefined ? { name } : { name, parameters }
  })
}

/** The tensor against the model's declaration: same datatype, same rank, fixed dimensions equal. */
function checkAgainst(tensor: Tensor, spec: MetadataTensor): void {
  if (tensor.datatype !== spec.datatype) {
    throw new ServingError(
      'TENSOR_DATATYPE_INVALID',
      `input '${tensor.name}' is ${spec.datatype} in this model, the request sends ${tensor.datatype}`,
    )
  }
  const fits =
    tensor.shape.length === spec.shape.length && spec.shape.every((d, i) => d === -1 || d === tensor.shape[i])
  if (!fits) {
    throw new ServingError(
      'TENSOR_SHAPE_INVALID',
      `input '${tensor.name}' has shape [${tensor.shape.join(', ')}]; the model takes [${spec.shape.join(', ')}] (-1: any size)`,
    )
  }
}

/**
 * One `{name, shape, datatype, data, parameters?}` object → a checked tensor. `where` names it in errors
 * ("input 'x'", "predictor output 'y'").
 */
export function parseTensorJson(raw: unknown, where: string): Tensor {
  if (!isObject(raw)) throw invalid(`${where} must be an object`)
  if (typeof raw.name !== 'string') throw invalid(`${where}: "name" must be a string`)
  if (typeof raw.datatype !== 'string') throw invalid(`${where}: "datatype" must be a string`)
  if (!isDatatype(raw.datatype)) {
    throw new ServingError(
      'TENSOR_DATATYPE_INVALID',
      `${where}: unknown datatype '${raw.datatype}' (the protocol's: ${DATATYPES.join(', ')})`,
    )
  }
  const shape = parseShape(raw.shape, where)
  if (!Array.isArray(raw.data)) {
    throw invalid(`${where}: "data" must be a JSON list (flat, or nested as the shape)`)
  }
  const tensor: Tensor = {
    name: raw.name,
    datatype: raw.datatype,
    shape,
    data: parseTensorData(raw.datatype, shape, raw.data, where),
  }
  const parameters = parseParameters(raw.parameters, where)
  if (parameters !== undefined) tensor.parameters = parameters
  return tensor
}

export function parseShape(raw: unknown, where: string): number[] {
  if (!Array.isArray(raw) || !raw.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw new ServingError(
      'TENSOR_SHAPE_INVALID',
      `${where}: "shape" must be a list of non-negative integers, got ${JSON.stringify(raw)?.slice(0, 100)}`,
    )
  }
  return raw as number[]
}

/** Elements a shape holds (1 for a scalar's `[]`). */
export function elementCount(shape: readonly number[]): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}

/** JSON data (flat or nested as the shape) → the datatype's flat in-memory array. */
export function parseTensorData(
  datatype: Datatype,
  shape: number[],
  data: unknown[],
  where: string,
): TensorData {
  return convert(datatype, flatten(data, shape, where), where)
}

function flatten(data: unknown[], shape: number[], where: string): unknown[] {
  const n = elementCount(shape)
  if (shape.length <= 1 || data.length === 0 || !Array.isArray(data[0])) {
    if (data.length !== n) {
      throw new ServingError(
        'TENSOR_DATA_INVALID',
        `${where}: data has ${data.length} elements; shape [${shape.join(', ')}] needs ${n}`,
      )
    }
    return data
  }
  const flat: unknown[] = []
  const walk = (node: unknown, depth: number, path: string): void => {
    if (!Array.isArray(node) || node.length !== shape[depth]) {
      const got = Array.isArray(node) ? `${node.length} elements` : 'not a list'
      throw new ServingError(
        'TENSOR_DATA_INVALID',
        `${where}: nested data does not follow shape [${shape.join(', ')}]: data${path} is ${got}, dimension ${depth} needs ${shape[depth]}`,
      )
    }
    if (depth === shape.length - 1) {
      for (const v of node) flat.push(v)
      return
    }
    for (let i = 0; i < node.length; i++) walk(node[i], depth + 1, `${path}[${i}]`)
  }
  walk(data, 0, '')
  return flat
}

const INT_RANGE: Partial<Record<Datatype, readonly [number, number]>> = {
  UINT8: [0, 0xff],
  UINT16: [0, 0xffff],
  UINT32: [0, 0xffffffff],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
  INT8: [-0x80, 0x7f],
  INT16: [-0x8000, 0x7fff],
  INT32: [-0x80000000, 0x7fffffff],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
}

function convert(datatype: Datatype, values: unknown[], where: string): TensorData {
  const n = values.length
  const bad = (i: number, what: string): ServingError =>
    new ServingError(
      'TENSOR_DATA_INVALID',
      `${where}: element ${i} (${JSON.stringify(values[i])?.slice(0, 40)}) is ${what} (${datatype})`,
    )
  switch (datatype) {
    case 'BOOL': {
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i++) {
        const v = values[i]
        if (typeof v !== 'boolean') throw bad(i, 'not a boolean')
        out[i] = v ? 1 : 0
      }
      return out
    }
    case 'BYTES': {
      const out = new Array<string>(n)
      for (let i = 0; i < n; i++) {
        const v = values[i]
        if (typeof v !== 'string') throw bad(i, 'not a string')
        out[i] = v
      }
      return out
    }
    case 'FP16': {
      const out = new Uint16Array(n)
      for (let i = 0; i < n; i++) {
        const v = values[i]
        if (typeof v !== 'number') throw bad(i, 'not a number')
        out[i] = toHalfBits(v)
      }
      return out
    }
    case 'FP32': {
      const out = new Float32Array(n)
      for (let i = 0; i < n; i++) {
        const v = values[i]
        if (typeof v !== 'number') throw bad(i, 'not a number')
        out[i] = v
        if (!Number.isFinite(out[i]!)) throw bad(i, 'out of the float32 range')
      }
      return out
    }
    case 'FP64': {
      const out = new Float64Array(n)
      for (let i = 0; i < n; i++) {
        const v = values[i]
        if (typeof v !== 'number') throw bad(i, 'not a number')
        out[i] = v
      }
      return out
    }
    case 'UINT64':
    case 'INT64': {
      const [min, max] = INT_RANGE[datatype]!
      const out = datatype === 'INT64' ? new BigInt64Array(n) : new BigUint64Array(n)
      for (let i = 0; i < n; i++) {
        const v = values[i]
        if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(i, 'not an integer')
        if (v < min || v > max)
          throw bad(
            i,
            'out of range: 64-bit values must lie within ±2^53, what a JSON number carries exactly',
          )
        out[i] = BigInt(v)
      }
      return out
    }
    default: {
      const [min, max] = INT_RANGE[datatype]!
      const out = allocate(datatype, n) as Exclude<TensorData, string[] | BigInt64Array | BigUint64Array>
      for (let i = 0; i < n; i++) {
        const v = values[i]
        if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(i, 'not an integer')
        if (v < min || v > max) throw bad(i, `out of range [${min}, ${max}]`)
        out[i] = v
      }
      return out
    }
  }
}

function parseParameters(raw: unknown, where: string): Parameters | undefined {
  if (raw === undefined) return undefined
  if (!isObject(raw)) throw invalid(`${where}: "parameters" must be an object`)
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw invalid(`${where}: parameter '${k}' must be a string, number or boolean`)
    }
  }
  return raw as Parameters
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function invalid(message: string): ServingError {
  return new ServingError('INFER_REQUEST_INVALID', message)
}

function names(tensors: readonly { name: string }[]): string {
  return tensors.map((t) => `'${t.name}'`).join(', ')
}
