import { CommandRejected } from '../meta/index.js'

/**
 * Operational errors of model serving (replica runtimes, the Open Inference Protocol, batching): one
 * class, a stable `code` per row of {@link SERVING_ERRORS}. The table has the shape of src/errors.ts's
 * rows, which joins it by code. Callers and tests branch on `code`, never on messages.
 *
 * The inference routes answer these as the protocol's `{"error": "<message>"}` with the row's status
 * ({@link oipError}); every 4xx here is the caller's request, and the replica keeps serving after it.
 */
export const SERVING_ERRORS = {
  INFER_REQUEST_INVALID: {
    httpStatus: 400,
    description:
      'The body is not an Open Inference Protocol inference request: not a JSON object, a field of the wrong type, no inputs, or the binary tensor data extension.',
  },
  INFER_REQUEST_TOO_LARGE: {
    httpStatus: 413,
    description: 'The inference request body is larger than the replica accepts (bodyBytesMax).',
  },
  TENSOR_NAME_INVALID: {
    httpStatus: 400,
    description:
      'An input the model does not have, a model input missing from the request, a name given twice, or a requested output the model does not produce.',
  },
  TENSOR_DATATYPE_INVALID: {
    httpStatus: 400,
    description:
      "A datatype that is not one of the protocol's thirteen names, or not the one the model declares for that tensor.",
  },
  TENSOR_SHAPE_INVALID: {
    httpStatus: 400,
    description:
      "A shape that is not a list of non-negative integers, or that does not fit the model's (rank, fixed dimensions).",
  },
  TENSOR_DATA_INVALID: {
    httpStatus: 400,
    description:
      'Tensor data whose length or nesting does not match the shape, or an element that is not of the datatype (not a number, not an integer, out of range, not a boolean, not a string).',
  },
  INFER_INPUT_REFUSED: {
    httpStatus: 400,
    description:
      "A subprocess predictor refused the request's inputs as invalid for its model (its own check).",
  },
  INFERENCE_FAILED: {
    httpStatus: 500,
    description: 'The runtime failed to run the model on this request; the replica keeps serving.',
  },
  INFERENCE_TIMEOUT: {
    httpStatus: 504,
    description: 'The replica did not answer before the request deadline (requestTimeoutMs).',
  },
  INFERENCE_ABORTED: { httpStatus: 499, description: 'The caller gave up on the inference request.' },
  REPLICA_OVERLOADED: {
    httpStatus: 503,
    description: 'The replica already holds queueDepthMax requests; retry, or on another replica.',
  },
  REPLICA_NOT_READY: {
    httpStatus: 503,
    description:
      'The replica is starting, restarting, stopping, stopped or failed; retry on another replica.',
  },
  RUNTIME_CRASHED: {
    httpStatus: 503,
    description:
      'The runtime process died while the request was in flight; the replica restarts it. Retry, or on another replica.',
  },
  PREDICTOR_PROTOCOL_ERROR: {
    httpStatus: 502,
    description:
      'A subprocess predictor answered with something the predictor protocol does not allow (a line that is not a message, a malformed result).',
  },
  MODEL_LOAD_FAILED: {
    httpStatus: 500,
    description:
      'The runtime could not load the model (a missing or invalid model file, a predictor that failed or exited while loading, no ready in time).',
  },
  MODEL_UNSUPPORTED: {
    httpStatus: 400,
    description:
      "The model has an input or output the protocol cannot carry (not a tensor, or an element type that is not one of the protocol's datatypes).",
  },
  REPLICA_CONFIG_INVALID: {
    httpStatus: 400,
    description: 'Replica settings out of range or inconsistent (runtime, model directory, limits, command).',
  },
} as const

export type ServingErrorCode = keyof typeof SERVING_ERRORS

export class ServingError extends Error {
  override readonly name = 'ServingError'
  readonly code: ServingErrorCode

  constructor(code: ServingErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
  }

  get httpStatus(): number {
    return SERVING_ERRORS[this.code].httpStatus
  }
}

export function isServingError(err: unknown, code?: ServingErrorCode): err is ServingError {
  return err instanceof ServingError && (code === undefined || err.code === code)
}

/**
 * The Open Inference Protocol's error answer for any error: `{"error": "<message>"}` with the status of
 * the serving code. Anything that is not a {@link ServingError} is a bug and answers 500 with a
 * generic message (the details belong in the log, not in the body).
 */
export function oipError(err: unknown): { status: number; body: { error: string } } {
  if (err instanceof ServingError) return { status: err.httpStatus, body: { error: err.message } }
  return { status: 500, body: { error: 'internal error' } }
}

/**
 * Errors of the model registry and deployments (src/serving/registry): refusals of the `serving` meta
 * module's commands and of the services above it. {@link RegistryError} extends meta's CommandRejected,
 * so apply refuses a command by throwing one (the command is rolled back and changes nothing).
 */
export const REGISTRY_ERRORS = {
  MODEL_SPEC_INVALID: {
    httpStatus: 400,
    description:
      'A model registration that does not match the schema: a bad project, name or version, an unknown framework, a path that is not the version directory /Projects/<project>/Models/<name>/<version>, a bad signature.',
  },
  MODEL_NOT_FOUND: {
    httpStatus: 404,
    description:
      'No such model version (or no model of that name) in the project, or the caller may not see it.',
  },
  MODEL_EXISTS: { httpStatus: 409, description: 'This model version is registered already.' },
  MODEL_IN_USE: {
    httpStatus: 409,
    description: 'The model version is served by a deployment: delete or update the deployment first.',
  },
  MODEL_ACCESS_DENIED: {
    httpStatus: 403,
    description:
      "The caller may not do this with the project's models: it is no member of the project (or was removed), or the request acts in another project.",
  },
  DEPLOYMENT_SPEC_INVALID: {
    httpStatus: 400,
    description:
      'A deployment that does not match the schema: a bad name, replicas min > max or out of range, cpus or memory out of range, an unknown field.',
  },
  DEPLOYMENT_NOT_FOUND: {
    httpStatus: 404,
    description: 'No deployment of that name (or the caller may not see it).',
  },
  DEPLOYMENT_EXISTS: { httpStatus: 409, description: 'A deployment of that name exists already.' },
  DEPLOYMENT_CONFLICT: {
    httpStatus: 409,
    description:
      'A placement step planned on an older state of the deployment (its generation moved on), or a report about a replica placed elsewhere; the reconcile loop plans again.',
  },
  MODEL_NOT_DEPLOYED: {
    httpStatus: 404,
    description:
      'The Open Inference Protocol route names a model (deployment) or version that is not served.',
  },
  NO_READY_REPLICA: {
    httpStatus: 503,
    description: 'The deployment has no ready replica now (starting, or every replica failed); retry.',
  },
  INFERENCE_KEY_INVALID: {
    httpStatus: 401,
    description:
      'An inference key that is malformed, unknown, has the wrong secret or was revoked (or its deployment was deleted), or one sent to a route other than the /v2 model routes of its deployment.',
  },
  INFERENCE_KEY_NOT_FOUND: {
    httpStatus: 404,
    description: 'The deployment has no inference key with that id.',
  },
  INFERENCE_KEY_LIMIT: {
    httpStatus: 409,
    description: 'The deployment has the most live inference keys it may have (100): revoke some first.',
  },
  MODEL_UPLOAD_FAILED: {
    httpStatus: 502,
    description:
      "Writing an uploaded model file into the file system failed (the node's WebHDFS answered an error or could not be reached); nothing stays registered and the file is removed.",
  },
} as const

export type RegistryErrorCode = keyof typeof REGISTRY_ERRORS

export class RegistryError extends CommandRejected {
  declare readonly code: RegistryErrorCode

  constructor(code: RegistryErrorCode, message?: string) {
    super(code, message ?? REGISTRY_ERRORS[code].description)
  }

  get httpStatus(): number {
    return REGISTRY_ERRORS[this.code].httpStatus
  }
}
