/**
 * Joining requests along the batch dimension (dimension 0) and splitting the answer back. Requests
 * join only when one runtime call can stand for all of them: the same input names, datatypes and
 * trailing shapes, the same outputs asked for and the same parameters — that is their {@link batchKey}.
 */
import { allocate, type TensorData } from './datatypes.js'
import { elementCount } from './parse.js'
import type { InferenceRequest, InferenceResult, Tensor } from './types.js'

/**
 * The key of requests that may share a runtime call, or undefined when this one cannot join any (a
 * scalar input, or inputs that disagree on dimension 0).
 */
export function batchKey(req: InferenceRequest): string | undefined {
  const rows = req.inputs[0]?.shape[0]
  if (rows === undefined) return undefined
  let key = ''
  for (const t of req.inputs) {
    if (t.shape.length === 0 || t.shape[0] !== rows) return undefined
    key += `${t.name}\u0000${t.datatype}\u0000${t.shape.slice(1).join(',')}\u0000${t.parameters === undefined ? '' : JSON.stringify(t.parameters)}\u0001`
  }
  key += `>${req.outputs === undefined ? '*' : JSON.stringify(req.outputs)}`
  if (req.parameters !== undefined) key += `\u0002${JSON.stringify(req.parameters)}`
  return key
}

/** Rows of a request along dimension 0 (1 for scalars: such a request always runs alone). */
export function rowsOf(req: InferenceRequest): number {
  return req.inputs[0]?.shape[0] ?? 1
}

/** One request holding every input of `reqs` (same batch key) stacked along dimension 0, in order. */
export function concatRequests(reqs: readonly InferenceRequest[]): InferenceRequest {
  const first = reqs[0]!
  if (reqs.length === 1) return first
  const inputs = first.inputs.map((t, i) =>
    concatTensors(
      reqs.map((r) => r.inputs[i]!),
      t,
    ),
  )
  const joined: InferenceRequest = { inputs }
  if (first.outputs !== undefined) joined.outputs = first.outputs
  if (first.parameters !== undefined) joined.parameters = first.parameters
  return joined
}

function concatTensors(parts: readonly Tensor[], like: Tensor): Tensor {
  const rows = parts.reduce((sum, t) => sum + t.shape[0]!, 0)
  const shape = [rows, ...like.shape.slice(1)]
  let data: TensorData
  if (like.datatype === 'BYTES') {
    data = parts.flatMap((t) => t.data as string[])
  } else {
    const out = allocate(like.datatype, elementCount(shape)) as Exclude<TensorData, string[]>
    let offset = 0
    for (const t of parts) {
      ;(out as Uint8Array).set(t.data as Uint8Array, offset)
      offset += t.data.length
    }
    data = out
  }
  const tensor: Tensor = { name: like.name, datatype: like.datatype, shape, data }
  if (like.parameters !== undefined) tensor.parameters = like.parameters
  return tensor
}

/**
 * The answer of a joined call → one answer per request, `rows[i]` rows each. Returns undefined when an
 * output does not carry the batch along dimension 0 (then the model cannot be batched this way).
 * The parts are views of the joined arrays, not copies.
 */
export function splitResult(result: InferenceResult, rows: readonly number[]): InferenceResult[] | undefined {
  const total = rows.reduce((a, b) => a + b, 0)
  if (!result.outputs.every((t) => t.shape[0] === total)) return undefined
  const parts: InferenceResult[] = rows.map(() => ({ outputs: [] }))
  for (const t of result.outputs) {
    const rowElements = total === 0 ? 0 : t.data.length / total
    let row = 0
    rows.forEach((n, i) => {
      const start = row * rowElements
      const end = (row + n) * rowElements
      const data = Array.isArray(t.data) ? t.data.slice(start, end) : t.data.subarray(start, end)
      const part: Tensor = { name: t.name, datatype: t.datatype, shape: [n, ...t.shape.slice(1)], data }
      if (t.parameters !== undefined) part.parameters = t.parameters
      parts[i]!.outputs.push(part)
      row += n
    })
  }
  if (result.parameters !== undefined) for (const p of parts) p.parameters = result.parameters
  return parts
}
