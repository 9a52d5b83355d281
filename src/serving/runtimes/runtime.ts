/**
 * What a replica sees of its runtime: a started process that loaded the model and answers calls. The
 * ONNX host (runtimes/onnx) and subprocess predictors (runtimes/subprocess) both offer it; the replica
 * supervises it (restarts, bounds, deadlines) without knowing which one it holds.
 */
import type { ServingError } from '../errors.js'
import type { InferenceRequest, InferenceResult, MetadataTensor } from '../protocol/types.js'

export interface RuntimeMetadata {
  /** The protocol's platform name: onnx_onnxv1, or what a predictor declares. */
  readonly platform: string
  /** Inputs and outputs, -1 for variable dimensions; empty when a predictor declares none. */
  readonly inputs: MetadataTensor[]
  readonly outputs: MetadataTensor[]
  /** Rows one call may carry along dimension 0 (1: the runtime does not batch). */
  readonly batchRowsMax: number
}

export interface RuntimeExit {
  /** Why the runtime is gone, as the error its in-flight calls failed with. */
  readonly error: ServingError
}

export interface RuntimeConnection {
  readonly pid: number | undefined
  readonly metadata: RuntimeMetadata
  /**
   * One call (one request, or a batch joined along dimension 0); may run concurrently with others.
   * Rejects with INFERENCE_FAILED when the model failed on this call and the runtime goes on, or with
   * the error of {@link exited} (RUNTIME_CRASHED, PREDICTOR_PROTOCOL_ERROR) when the runtime is gone.
   */
  infer(call: InferenceRequest): Promise<InferenceResult>
  /** Settles (never rejects) once the runtime is gone, for whatever reason. */
  readonly exited: Promise<RuntimeExit>
  /** Asks the runtime to exit, kills it after graceMs; resolves once it is gone. */
  stop(graceMs: number): Promise<void>
  /** Kills the runtime at once (SIGKILL). */
  kill(): void
}

export interface RuntimeStartInit {
  /** Directory holding the model (absolute). */
  readonly modelDir: string
  readonly modelName: string
  readonly modelVersion?: string
  /** The start fails with MODEL_LOAD_FAILED when the runtime is not ready by then. */
  readonly startTimeoutMs: number
  /** Aborting kills the starting runtime. */
  readonly signal?: AbortSignal
  /** Lines the runtime writes to stderr. */
  readonly onStderrLine?: (line: string) => void
}
