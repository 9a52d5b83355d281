/**
 * Writing Open Inference Protocol JSON from checked tensors. The text is written here rather than by
 * JSON.stringify because typed arrays are not JSON arrays and 64-bit integers are BigInts: INT64 and
 * UINT64 elements are written with all their digits (exact beyond 2^53, which JSON allows and
 * JSON.stringify refuses), FP16 as the number its bits stand for, BOOL as true/false. NaN and
 * infinities, which JSON cannot write, become `null` (as KServe's Python server writes them).
 */
import { fromHalfBits, type Datatype, type TensorData } from './datatypes.js'
import type { InferenceResult, Parameters, Tensor } from './types.js'

/** The JSON list of a tensor's elements, flat, in row-major order. */
export function tensorDataJson(datatype: Datatype, data: TensorData): string {
  const n = data.length
  if (n === 0) return '[]'
  const parts = new Array<string>(n)
  switch (datatype) {
    case 'BOOL': {
      const d = data as Uint8Array
      for (let i = 0; i < n; i++) parts[i] = d[i] ? 'true' : 'false'
      break
    }
    case 'BYTES': {
      const d = data as string[]
      for (let i = 0; i < n; i++) parts[i] = JSON.stringify(d[i])
      break
    }
    case 'FP16': {
      const d = data as Uint16Array
      for (let i = 0; i < n; i++) parts[i] = finite(fromHalfBits(d[i]!))
      break
    }
    case 'FP32':
    case 'FP64': {
      const d = data as Float32Array | Float64Array
      for (let i = 0; i < n; i++) parts[i] = finite(d[i]!)
      break
    }
    default: {
      const d = data as Exclude<TensorData, string[]>
      for (let i = 0; i < n; i++) parts[i] = String(d[i])
    }
  }
  return `[${parts.join(',')}]`
}

function finite(v: number): string {
  return Number.isFinite(v) ? String(v) : 'null'
}

/** One tensor as `{"name","datatype","shape","parameters"?,"data"}`. */
export function encodeTensorJson(t: Tensor): string {
  const params = t.parameters === undefined ? '' : `,"parameters":${JSON.stringify(t.parameters)}`
  return `{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}]${params},"data":${tensorDataJson(t.datatype, t.data)}}`
}

export interface ResponseContext {
  modelName: string
  /** Left out of the response when undefined (servers without versions do not send it). */
  modelVersion?: string
  /** The request's `id`, echoed; left out when the request had none. */
  id?: string
}

/** `$inference_response` as JSON text: the model, the request's id, the runtime's parameters and outputs. */
export function encodeInferResponse(result: InferenceResult, ctx: ResponseContext): string {
  let head = `{"model_name":${JSON.stringify(ctx.modelName)}`
  if (ctx.modelVersion !== undefined) head += `,"model_version":${JSON.stringify(ctx.modelVersion)}`
  if (ctx.id !== undefined) head += `,"id":${JSON.stringify(ctx.id)}`
  if (result.parameters !== undefined)
    head += `,"parameters":${JSON.stringify(result.parameters as Parameters)}`
  return `${head},"outputs":[${result.outputs.map(encodeTensorJson).join(',')}]}`
}
