/**
 * Model serving, the runtime half: replicas that run a model out of the daemon's event loop (ONNX
 * models in an ONNX Runtime host process, other frameworks as a subprocess predictor speaking JSON
 * lines), supervised and restarted, bounded, batching adaptively; and the Open Inference Protocol v2
 * JSON (KServe's REST protocol) read and written with typed errors. The registry, deployments, routes
 * and router build on this. The predictor protocol and the error codes are in README.md beside this file.
 *
 * @example
 * ```ts
 * import { createReplica, encodeInferResponse, oipError } from '../serving/index.js'
 *
 * const replica = createReplica({ runtime: 'onnx', modelDir: '/var/lib/hopsd/models/iris/3', name: 'iris', version: '3' })
 * replica.on('state', (s) => log.info({ state: s.state, restarts: s.restarts, lastError: s.lastError }, 'replica'))
 * await replica.start(signal)                    // ready: the model is loaded in its own process
 * replica.metadata()                             // GET /v2/models/iris: inputs/outputs, -1 for variable dims
 *
 * // POST /v2/models/iris/versions/3/infer
 * try {
 *   const request = replica.parse(rawBody)       // 400/413 typed errors; nothing reached the runtime
 *   const result = await replica.infer(request, abortSignalOfTheHttpRequest)
 *   reply.type('application/json').send(
 *     encodeInferResponse(result, { modelName: 'iris', modelVersion: '3', id: request.id }),
 *   )
 * } catch (err) {
 *   const { status, body } = oipError(err)       // {"error": "..."} with 400, 413, 500, 503, 504, …
 *   reply.status(status).send(body)
 * }
 *
 * await replica.stop({ drainMs: 5000 })          // a rolling update: finish what is in flight first
 * ```
 */
export {
  createReplica,
  type BatchingSettings,
  type Replica,
  type ReplicaInit,
  type ReplicaLogger,
  type ReplicaState,
  type ReplicaStatus,
  type RestartSettings,
  type RuntimeKind,
} from './replica.js'
export { realClock, type Clock, type TimerHandle } from './clock.js'
export { SERVING_ERRORS, ServingError, isServingError, oipError, type ServingErrorCode } from './errors.js'
export { DATATYPES, isDatatype, type Datatype, type TensorData } from './protocol/datatypes.js'
export { parseInferRequest, parseInferRequestBody, type ParseBodyOptions } from './protocol/parse.js'
export { encodeInferResponse, encodeTensorJson, type ResponseContext } from './protocol/encode.js'
export type {
  InferRequestJson,
  InferResponseJson,
  InferenceRequest,
  InferenceResult,
  MetadataTensor,
  ModelMetadata,
  Parameters,
  RequestedOutput,
  Tensor,
  TensorJson,
} from './protocol/types.js'
export { ONNX_PLATFORM } from './runtimes/onnx/client.js'
export {
  RUNTIME_HOST_SUBCOMMAND,
  defaultOnnxHostCommand,
  type HostCommand,
} from './runtimes/onnx/host-command.js'
export { hasHostChannel, runOnnxHost } from './runtimes/onnx/host.js'
export { PREDICTOR_PROTOCOL_VERSION, SUBPROCESS_PLATFORM } from './runtimes/subprocess/client.js'
export { REGISTRY_ERRORS, RegistryError, type RegistryErrorCode } from './errors.js'
export { ServingModule, servingModule, SERVING_OPS, type DeploymentListener } from './registry/module.js'
export {
  RegistryService,
  deploymentView,
  registryErrorOf,
  type DeploymentView,
  type InferenceKeyView,
  type ModelView,
  type RegistryServiceInit,
} from './registry/service.js'
export {
  DEPLOYABLE_FRAMEWORKS,
  FRAMEWORKS,
  modelVersionDir,
  modelsDir,
  type Deployment,
  type InferenceKey,
  INFERENCE_KEY_PREFIX,
  type ModelVersion,
  type ReplicaRecord,
  type TensorSpec,
} from './registry/types.js'
export {
  createRequestLog,
  recordLine,
  type AnsweredRequest,
  type RequestLog,
  type RequestLogInit,
  type RequestLogSink,
  type RequestLogStats,
} from './request-log.js'
export {
  fits,
  freeResources,
  planDeployment,
  type NodeResources,
  type PlanStep,
  type ServingNode,
} from './deploy/plan.js'
export { ServingAgent, replicaLimits, type ModelFiles, type ReplicaReport, type ServingAgentInit } from './deploy/agent.js'
export { chooseReplicas, isRetryElsewhere, type RouteChoice } from './deploy/router.js'
