/**
 * The HTTP API: a fastify server with one error mapper, request logs, metrics and an OpenAPI document
 * generated from route schemas. Each area adds its routes as an {@link ApiRoutes} in
 * `src/api/routes/<area>.ts`, closed over the services it needs.
 *
 * @example
 * ```ts
 * const api = await createApiServer({ logger, registry, openapi: { title: 'hopsd', version }, routes: [nodeRoutes(deps)] })
 * await api.listen({ host: '127.0.0.1', port: 9870 })
 * ```
 */
export {
  createApiServer,
  type ApiCertificate,
  type ApiRoutes,
  type ApiServer,
  type ApiServerInit,
} from './server.js'
export { mapError, errorBodySchema, type ErrorBody } from './error-mapper.js'
export { createNodeHttp, type NodeHttp, type NodeHttpInit } from './node-http.js'
export { toRemoteException, type RemoteExceptionBody } from './remote-exception.js'
export {
  callerOf,
  credentialsOf,
  PROJECT_HEADER,
  type ApiAuth,
  type ForwardedCredentials,
  type RouteAuth,
} from './auth-hook.js'
export { createMetricsRegistry, createApiMetrics, type ApiMetrics } from './metrics.js'
export { buildOpenApi, type OpenApiInfo, type RouteRecord } from './openapi.js'
export {
  nodeRoutes,
  type NodeInfo,
  type NodeP2PInfo,
  type NodeRoutesDeps,
  type NodeTlsInfo,
} from './routes/node.js'
export { nodesRoutes, type NodesRoutesDeps, type NodesRouteNode } from './routes/nodes.js'
export {
  admissionRoutes,
  type AdmissionNodeJson,
  type AdmissionRoutesDeps,
  type JoinTokenJson,
} from './routes/admission.js'
export { homeDirectories, usersRoutes, type UsersRoutesDeps } from './routes/users.js'
export { keysRoutes, type KeysRoutesDeps } from './routes/keys.js'
export { auditRoutes, type AuditRoutesDeps } from './routes/audit.js'
export { settingsRoutes, type SettingsRoutesDeps } from './routes/settings.js'
export { fsRoutes, type FsRoutesDeps } from './routes/fs.js'
export { webhdfsRoutes, type WebHdfsDeps } from './routes/webhdfs.js'
export { createWriteTokens, type WriteGrant, type WriteTokens } from './routes/write-token.js'
export { blockRoutes } from './routes/blocks.js'
export { datanodeRoutes, type DatanodeRoutesDeps } from './routes/datanode.js'
export { jobsRoutes, gpusRoutes, type JobsRoutesDeps, type GpusRoutesDeps } from './routes/jobs.js'
export { projectsRoutes, type ProjectsRoutesDeps } from './routes/projects.js'
export { modelsRoutes, MODEL_SPEC_HEADER, type ModelsRoutesDeps } from './routes/models.js'
export {
  inferenceRoutes,
  REPLICA_HEADER,
  type ForwardedAnswer,
  type InferenceRoutesDeps,
} from './routes/inference.js'
