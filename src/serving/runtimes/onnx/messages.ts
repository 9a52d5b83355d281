/**
 * Messages between a replica and its ONNX host process, in frames (frames.ts): tensors travel as their
 * bytes, never written as JSON. Both ends are this program (the daemon and `hopsd serving-runtime onnx`,
 * or host-main.ts from the sources), so the messages are internal and may change with it.
 *
 * Order: parent sends `load`; host answers `ready` or `load-error`. Then any number of `infer` may be in
 * flight at once; each gets one `result` or `error` with its id, in any order. The host exits when its
 * stdin ends (the parent stopped it, or died).
 */
import type { Datatype, TensorData } from '../../protocol/datatypes.js'
import type { MetadataTensor } from '../../protocol/types.js'

export interface WireTensor {
  name: string
  datatype: Datatype
  shape: number[]
  data: TensorData
}

export interface LoadMessage {
  t: 'load'
  /** Absolute path of the .onnx file. */
  modelPath: string
  /** ONNX Runtime's intra-op threads for this session. */
  threads: number
}

export interface InferMessage {
  t: 'infer'
  id: number
  inputs: WireTensor[]
  /** Outputs to compute; undefined: all. */
  outputs: string[] | undefined
}

export type ToHost = LoadMessage | InferMessage

export interface ReadyMessage {
  t: 'ready'
  inputs: MetadataTensor[]
  outputs: MetadataTensor[]
}

export interface LoadErrorMessage {
  t: 'load-error'
  code: 'MODEL_LOAD_FAILED' | 'MODEL_UNSUPPORTED'
  message: string
}

export interface ResultMessage {
  t: 'result'
  id: number
  outputs: WireTensor[]
}

export interface ErrorMessage {
  t: 'error'
  id: number
  message: string
}

export type FromHost = ReadyMessage | LoadErrorMessage | ResultMessage | ErrorMessage
