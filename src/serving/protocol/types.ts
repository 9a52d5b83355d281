/**
 * The Open Inference Protocol v2 (KServe's REST protocol) as types: the JSON a client sends and
 * receives, and the checked in-memory forms that the replica and its runtimes work with.
 *
 * JSON shapes follow the spec's names (`model_name`, `datatype`); in-memory ones are ours. A request
 * becomes an {@link InferenceRequest} only through `parseInferRequest`, which checks it against the
 * model's metadata, so code after it trusts names, datatypes, shapes and element counts.
 */
import type { Datatype, TensorData } from './datatypes.js'

/** `$parameters`: names to strings, numbers or booleans (the spec defines none; runtimes may). */
export type Parameters = Record<string, string | number | boolean>

/** `$metadata_tensor`: a model input or output; -1 marks a variable dimension. */
export interface MetadataTensor {
  name: string
  datatype: Datatype
  shape: number[]
}

/** `$metadata_model_response`. */
export interface ModelMetadata {
  name: string
  versions?: string[]
  /** `<project>_<format>`: onnx_onnxv1 for ONNX; what a subprocess predictor declares (default `subprocess`). */
  platform: string
  inputs: MetadataTensor[]
  outputs: MetadataTensor[]
}

/** `$inference_request_input` / `$response_output` as JSON. */
export interface TensorJson {
  name: string
  shape: number[]
  datatype: string
  parameters?: Parameters
  data: unknown[]
}

/** `$inference_request` as JSON (what a client posts to `/v2/models/{name}/infer`). */
export interface InferRequestJson {
  id?: string
  parameters?: Parameters
  inputs: TensorJson[]
  outputs?: { name: string; parameters?: Parameters }[]
}

/** `$inference_response` as JSON. */
export interface InferResponseJson {
  model_name: string
  model_version?: string
  id?: string
  parameters?: Parameters
  outputs: TensorJson[]
}

/** A checked tensor: `data` holds exactly the product of `shape` elements of `datatype`. */
export interface Tensor {
  name: string
  datatype: Datatype
  shape: number[]
  data: TensorData
  parameters?: Parameters
}

export interface RequestedOutput {
  name: string
  parameters?: Parameters
}

/** A request checked against the model's metadata: inputs in the model's order, nothing unknown. */
export interface InferenceRequest {
  id?: string
  parameters?: Parameters
  inputs: Tensor[]
  /** The outputs asked for; undefined: every output of the model. */
  outputs?: RequestedOutput[]
}

/** What a runtime answers for one request: its outputs (in the order asked for), and parameters. */
export interface InferenceResult {
  outputs: Tensor[]
  parameters?: Parameters
}
