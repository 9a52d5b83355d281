/**
 * The `serving` module: model registry, deployments and inference (src/serving) wired into the daemon.
 *
 *  - nodes with a metadata replica: the registry and deployments API (`/api/v1/models`,
 *    `/api/v1/deployments`), and — while this node leads the Raft group — the deployments' reconcile
 *    loop: every second, each deployment's placement step (src/serving/deploy/plan.ts) over the live
 *    nodes with the `serving` role, proposed as one SetDeploymentReplicas;
 *  - nodes with the `serving` role: the agent that runs the replicas placed here, copying each model
 *    version's files from the file system into `<data-dir>/serving/`, and reports their state
 *    (ReportReplica);
 *  - every node: the Open Inference Protocol routes (`/v2/...`), routing to a ready replica — this
 *    node's, its zone's, any — over HTTP to the replica's node (keep-alive).
 *
 * A node without a metadata replica does all of it through a metadata node (serving-meta.ts, as a
 * gpu-only node runs its jobs): its agent polls the deployment table each second and reads the model
 * files, reports and request records through that protocol; every /v2 request is authorized there (after
 * a read barrier, no cache: a removal holds for the next request) and routed on the deployment's row the
 * answer carries; inference keys are checked there too; the registry and deployments API is forwarded
 * over HTTP to a metadata node.
 *
 * Replica state is replicated state (a ReportReplica per change of state, not per request): every node
 * with a replica of the metadata routes from its own copy, the leader's placement reads the same rows,
 * and `GET /api/v1/deployments/:name` shows it. Changes of state are rare (start, ready, crash), so the
 * Raft cost is small; load (in-flight requests) is not reported through Raft.
 *
 * Autoscaling: the agents report each replica's requests in flight (when changed, at most every 2 s:
 * src/serving/deploy/agent.ts) and the placement step scales between min and max on them (plan.ts).
 *
 * Request logging: the node that answers from its own replica samples the request at the deployment's
 * `logSampleRate` and writes it (src/serving/request-log.ts) to the project's Logs dataset.

 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import { clusterPrincipal, commandIdentity, type AuthStore, type Principal } from '../../auth/index.js'
import {
  inferenceRoutes,
  modelsRoutes,
  PROJECT_HEADER,
  type ApiRoutes,
  type ForwardedAnswer,
  type ForwardedCredentials,
} from '../../api/index.js'
import type { Readable } from 'node:stream'
import { Gauge } from 'prom-client'
import { HopsError } from '../../errors.js'
import { encodeCommand, type MetaResult } from '../../meta/index.js'
import type { ProjectStore } from '../../projects/index.js'
import { Periodic } from '../../lib/index.js'
import {
  RegistryService,
  ServingAgent,
  createRequestLog,
  freeResources,
  planDeployment,
  RegistryError,
  registryErrorOf,
  type Deployment,
  type ModelFiles,
  type ModelVersion,
  type NodeResources,
  type RequestLog,
  type ServingModule,
} from '../../serving/index.js'
import { VERSION } from '../../version.js'
import { requireService, type NodeModule } from '../module.js'
import { parseHostPort } from '../p2p/index.js'
import type { Logger } from '../logger.js'
import { proxyRoutes } from './fs-module.js'
import { servingMetaClient, serveServingMeta } from './serving-meta.js'

export interface ServingNode {
  /** The registry; undefined on a node without a metadata replica. */
  readonly registry?: RegistryService
  /** The agent running this node's replicas (serving role). */
  readonly agent?: ServingAgent
  /** Inference keys for the API's auth hook (src/api/auth-hook.ts `ApiAuth.inferenceKeys`). */
  readonly inferenceKeys?: (key: string, signal: AbortSignal) => Promise<Principal>
}

const RECONCILE_INTERVAL_MS = 1_000
/** The autoscaler's aim: requests in flight per ready replica (each replica runs 2 calls of up to 32 rows). */
const INFLIGHT_PER_REPLICA_TARGET = 8
/** The autoscaler scales down one replica at a time, this long after the last change. */
const SCALE_DOWN_DELAY_MS = 30_000
const FORWARD_TIMEOUT_MS = 30_000
/** Bytes of a forwarded answer at most (inference answers are bounded by the replicas too). */
const FORWARD_ANSWER_BYTES_MAX = 64 << 20
/** How often a node without a metadata replica reads the deployment table (its agent's input). */
const TABLE_POLL_INTERVAL_MS = 1_000
/** Request-log files a metadata node appends to at once (one per node and deployment). */
const LOG_FILES_OPEN_MAX = 1_000
/** Bytes of a WebHDFS answer read during an upload (a Location or an error). */
const UPLOAD_ANSWER_BYTES_MAX = 64 << 10

export function servingModule(): NodeModule<'serving'> {
  return {
    name: 'serving',
    create(components) {
      const { config, identity } = components
      const logger = components.logger.child({ area: 'serving' })
      const self = identity.id
      const membership = requireService(components, 'membership')
      const local = components.services.metadata
      const fs = components.services.fs
      if (local === undefined || fs === undefined) return remoteServing(components, logger)
      const sm = local.stateMachine
      const serving = (): ServingModule => sm.module<ServingModule>('serving')
      const registry = new RegistryService({
        group: {
          propose: (c, o) => local.group.propose(c, o),
          readBarrier: (o) => local.group.readBarrier(o),
        },
        serving,
        fs,
        projects: () => sm.module<ProjectStore>('projects'),
        nodeId: self,
        // Downloads stream blocks from their replicas as the member's project-user.
        readFile: (who, path, signal) => readAs(who, path, signal),
      })
      const asCluster = async (
        cmd: Parameters<typeof encodeCommand>[0],
        signal?: AbortSignal,
      ): Promise<unknown> => {
        const principal = clusterPrincipal(sm.settings().superuser)
        const bytes = encodeCommand({ ...cmd, ...commandIdentity(principal, self), nowMs: Date.now() })
        const result = (await local.group.propose(bytes, { signal })) as MetaResult
        if (result.ok) return result.value
        throw registryErrorOf(result.code, result.message)
      }
      /** Live serving nodes and what they offer (their gossiped CPU cores and memory). */
      const servingNodes = (): NodeResources[] =>
        membership
          .view()
          .filter(
            (n) =>
              n.roles.includes('serving') && (n.self || n.liveness === 'alive' || n.liveness === 'suspect'),
          )
          .map((n) => ({
            id: n.id,
            zone: n.zone,
            ...(n.capacity === undefined
              ? {}
              : {
                  cpuCores: n.capacity.cpuCores,
                  memoryMiB: Math.floor(n.capacity.memoryBytes / (1 << 20)),
                }),
          }))

      const reconcile = new Periodic({
        intervalMs: RECONCILE_INTERVAL_MS,
        tick: async (signal) => {
          const st = local.group.status()
          if (st.role !== 'leader' || st.leaderId !== self) return
          // No read barrier: the leader's replica is at most a batch behind its commits, and a step
          // planned on an older generation is refused by apply (the next tick plans again).
          const deployments = serving().listDeployments()
          if (deployments.length === 0) return
          const nodes = servingNodes()
          // What each node has placed on it, as this tick's steps change it (a later deployment's step
          // sees the replicas an earlier one placed).
          const placed = deployments.map((d) => ({
            cpus: d.cpus,
            memoryMiB: d.memoryMiB,
            replicas: d.replicas.map((r) => ({ id: r.id, node: r.node })),
          }))
          for (const [i, d] of deployments.entries()) {
            const step = planDeployment(d, freeResources(nodes, placed), {
              nowMs: Date.now(),
              inflightPerReplicaTarget: INFLIGHT_PER_REPLICA_TARGET,
              scaleDownDelayMs: SCALE_DOWN_DELAY_MS,
            })
            if (step === undefined) continue
            logger.info({ deployment: d.name, why: step.why }, 'serving: placement step')
            try {
              await asCluster(
                {
                  setDeploymentReplicas: {
                    name: d.name,
                    generation: d.generation,
                    add: step.add,
                    remove: step.remove,
                    replicasWanted: step.replicasWanted ?? 0,
                    reason: step.scaleReason ?? '',
                    pending: step.pending,
                  },
                },
                signal,
              )
              const removed = new Set(step.remove)
              placed[i] = {
                ...placed[i]!,
                replicas: [
                  ...placed[i]!.replicas.filter((r) => !removed.has(r.id)),
                  ...step.add.map((a) => ({ id: '', node: a.node })),
                ],
              }
            } catch (err) {
              logger.warn(
                { deployment: d.name, err: (err as Error).message },
                'serving: placement step refused',
              )
            }
          }
        },
        onError: (err) => logger.warn({ err: (err as Error).message }, 'serving: reconcile failed'),
      })

      const blocks = components.services.blockmanager
      async function* readAs(
        who: Principal | ReturnType<typeof clusterPrincipal>,
        path: string,
        signal?: AbortSignal,
      ): AsyncIterable<Uint8Array> {
        // One read barrier: the blocks reader serves inline files too (no stat first).
        const opened = blocks === undefined ? undefined : await blocks.open(who, path, 0, -1, signal)
        if (opened === undefined) yield await fs!.read(who, path, { signal })
        else yield* opened.stream
      }
      const files: ModelFiles = {
        async list(dir, signal) {
          const su = clusterPrincipal(sm.settings().superuser)
          const out: string[] = []
          const walk = async (rel: string): Promise<void> => {
            let after: string | undefined
            for (;;) {
              const page = await fs.list(su, rel === '' ? dir : `${dir}/${rel}`, {
                signal,
                startAfter: after,
              })
              for (const e of page.entries) {
                const p = rel === '' ? e.name : `${rel}/${e.name}`
                if (e.type === 'DIRECTORY') await walk(p)
                else out.push(p)
              }
              if (page.remaining <= 0 || page.entries.length === 0) return
              after = page.entries[page.entries.length - 1]!.name
            }
          }
          await walk('')
          return out
        },
        read: (path, signal) => readAs(clusterPrincipal(sm.settings().superuser), path, signal),
      }
      const agent = config.roles.includes('serving')
        ? new ServingAgent({
            self,
            root: join(config.dataDir, 'serving'),
            deployments: () => serving().listDeployments(),
            model: (p, n, v) => serving().model(p, n, v),
            files,
            report: async (r) => {
              await asCluster({ reportReplica: { ...r, node: self } })
            },
            logger,
          })
        : undefined
      const stopListening: (() => void)[] = []
      let unserveMeta: (() => Promise<void>) | undefined
      const p2p = requireService(components, 'p2p')
      /** `length` bytes of `path` from `offset`, as the cluster (model files for serving-meta.ts). */
      const readRange = async (
        path: string,
        offset: number,
        length: number,
        signal: AbortSignal,
      ): Promise<Uint8Array> => {
        const su = clusterPrincipal(sm.settings().superuser)
        const opened = blocks === undefined ? undefined : await blocks.open(su, path, offset, length, signal)
        if (opened === undefined) return fs.read(su, path, { signal, offset, length })
        const pieces: Uint8Array[] = []
        for await (const p of opened.stream) pieces.push(p)
        return Buffer.concat(pieces)
      }

      // Request/response logging: sampled on the node that answers, written here in batches as the
      // deployment's owner acting in its project (a job's logs are written as its submitter), into
      // /Projects/<p>/Logs/serving/<deployment>/<start>-<node>-<n>.jsonl — appended while the file stays
      // within the inline threshold, then a new file. Nodes without a replica send their batches here
      // (serving-meta.ts `log`): `node` is the node that answered the requests.
      const logFiles = new Map<string, { path: string; bytes: number }>()
      const logStamp = new Date().toISOString().replace(/[:.]/g, '-')
      let logFileSeq = 0
      const writeLog = async (
        node: string,
        { project, deployment }: { project: string; deployment: string },
        lines: string,
        signal: AbortSignal,
      ): Promise<void> => {
        const d = serving().deployment(deployment)
        if (d === undefined || d.project !== project)
          throw new Error(`deployment ${deployment} of ${project} is gone`)
        const groups = sm.module<AuthStore>('auth').user(d.owner)?.groups ?? []
        const who = { user: d.owner, groups, project }
        const data = Buffer.from(lines, 'utf8')
        const key = `${node}\u0000${project}\u0000${deployment}`
        const cur = logFiles.get(key)
        if (cur !== undefined && cur.bytes + data.length <= fs.inlineThreshold) {
          try {
            await fs.append(who, cur.path, data, { signal })
            cur.bytes += data.length
            return
          } catch (err) {
            logFiles.delete(key) // removed or taken over by someone: the next batch starts a new file
            throw err
          }
        }
        if (logFiles.size >= LOG_FILES_OPEN_MAX) logFiles.delete(logFiles.keys().next().value!)
        const path = `/Projects/${project}/Logs/serving/${deployment}/${logStamp}-${node.slice(-8)}-${++logFileSeq}.jsonl`
        await fs.create(who, path, data, { createParent: true, signal })
        logFiles.set(key, { path, bytes: data.length })
      }
      const requestLog = requestLogOf(
        components,
        (name) => serving().deployment(name)?.logSampleRate ?? 0,
        (to, lines, signal) => writeLog(self, to, lines, signal),
        logger,
      )

      const tls = config.tls ? components.services.tls : undefined
      const { forward, httpAgent, httpsAgent } = replicaForwarder(membership, tls)

      /**
       * An upload's file, streamed to this node's own WebHDFS with the caller's credential (as a client
       * would: step one answers the Location, step two sends the bytes there — a datanode, which moves a
       * file past the inline threshold into blocks), acting in the model's project. Memory per upload is
       * the pipe's buffers, never the file.
       */
      const writeFile = async (
        path: string,
        project: string,
        creds: ForwardedCredentials,
        body: Readable,
        signal: AbortSignal,
      ): Promise<void> => {
        const me = membership.view().find((n) => n.id === self)
        if (me === undefined || me.httpAddr === '')
          throw new RegistryError('MODEL_UPLOAD_FAILED', 'this node does not know its own API address')
        const { host, port } = parseHostPort(me.httpAddr)
        const base = `${tls === undefined ? 'http' : 'https'}://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`
        const step1 = new URL(`/webhdfs/v1${path.split('/').map(encodeURIComponent).join('/')}`, base)
        step1.searchParams.set('op', 'CREATE')
        step1.searchParams.set('overwrite', 'false')
        step1.searchParams.set('noredirect', 'true')
        for (const [k, v] of Object.entries(creds.query)) step1.searchParams.set(k, v)
        const headers = { ...creds.headers, [PROJECT_HEADER]: project }
        const first = await httpCall(step1, 'PUT', headers, undefined, signal)
        if (first.status !== 200) throw uploadError('step one', first)
        let location: URL
        try {
          location = new URL(
            String((JSON.parse(first.body.toString('utf8')) as { Location?: unknown }).Location),
          )
        } catch {
          throw new RegistryError('MODEL_UPLOAD_FAILED', 'WebHDFS step one answered no Location')
        }
        const second = await httpCall(
          location,
          'PUT',
          { 'content-type': 'application/octet-stream' },
          body,
          signal,
        )
        if (second.status !== 201) throw uploadError('the data step', second)
      }
      const httpCall = (
        url: URL,
        method: string,
        headers: Record<string, string>,
        body: Readable | undefined,
        signal: AbortSignal,
      ): Promise<ForwardedAnswer> =>
        new Promise((resolve, reject) => {
          const options = { method, headers, signal }
          const onResponse = (res: import('node:http').IncomingMessage) => {
            const chunks: Buffer[] = []
            let bytes = 0
            res.on('data', (c: Buffer) => {
              bytes += c.length
              if (bytes <= UPLOAD_ANSWER_BYTES_MAX) chunks.push(c)
            })
            res.on('end', () => resolve({ status: res.statusCode ?? 502, body: Buffer.concat(chunks) }))
            res.on('error', reject)
          }
          const req =
            url.protocol === 'https:'
              ? httpsRequest(url, { ...options, agent: httpsAgent, ca: tls?.clusterCaPem() }, onResponse)
              : httpRequest(url, { ...options, agent: httpAgent }, onResponse)
          req.on('error', (err) =>
            reject(new RegistryError('MODEL_UPLOAD_FAILED', `writing the model file: ${err.message}`)),
          )
          if (body === undefined) req.end()
          else {
            body.on('error', (err) => req.destroy(err))
            body.pipe(req)
          }
        })
      const uploadError = (step: string, a: ForwardedAnswer): Error => {
        let message = a.body.toString('utf8').slice(0, 500)
        try {
          const j = JSON.parse(message) as { RemoteException?: { exception?: string; message?: string } }
          if (j.RemoteException !== undefined) {
            message = `${j.RemoteException.exception}: ${j.RemoteException.message}`
            // The file system's refusals keep their meaning for the caller.
            if (a.status === 403) return new RegistryError('MODEL_ACCESS_DENIED', message)
            if (a.status === 401) return new RegistryError('MODEL_ACCESS_DENIED', message)
          }
        } catch {
          /* not JSON: keep the text */
        }
        return new RegistryError(
          'MODEL_UPLOAD_FAILED',
          `${step} of the upload answered ${a.status}: ${message}`,
        )
      }

      const routes: ApiRoutes = {
        name: 'serving',
        async register(app) {
          await app.register(async (scope) =>
            modelsRoutes({ registry: () => registry, writeFile }).register(scope),
          )
          await app.register(async (scope) =>
            inferenceRoutes({
              authorize: async (caller, name, signal) => {
                const d = serving().deployment(name)
                await registry.mayInfer(caller, name, d, { signal })
                return d
              },
              here: { node: self, zone: config.zone },
              local: (id) => agent?.local(id),
              forward,
              ready: () => local.bootstrapState().phase === 'member' && local.group.status().leaderId !== '',
              serverVersion: VERSION,
              requestLog,
            }).register(scope),
          )
        },
      }
      return {
        api: {
          registry,
          agent,
          inferenceKeys: (key, signal) => registry.authenticateInferenceKey(key, { signal }),
        },
        routes,
        service: {
          async start() {
            if (agent !== undefined) {
              stopListening.push(serving().onDeploymentChange(() => agent.sync()))
              agent.start()
            }
            reconcile.start()
            requestLog.start()
            unserveMeta = await serveServingMeta({
              host: () => p2p.host(),
              local,
              registry,
              serving,
              report: async (r, signal) => {
                await asCluster({ reportReplica: r }, signal)
              },
              files,
              readRange,
              writeLog,
              logger,
            })
          },
          async stop() {
            await unserveMeta?.().catch(() => undefined)
            await reconcile.stop()
            await requestLog.stop()
            for (const off of stopListening.splice(0)) off()
            await agent?.stop()
            httpAgent.destroy()
            httpsAgent.destroy()
          },
        },
      }
    },
  }
}

/** HTTP to the node of a replica (the caller's credential travels as it came), keep-alive. */
function replicaForwarder(
  membership: { view(): readonly { id: string; httpAddr: string }[] },
  tls: { clusterCaPem(): string | undefined } | undefined,
) {
  const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 64 })
  const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 64 })
  const forward = (
    node: string,
    req: { method: 'GET' | 'POST'; path: string; headers: Record<string, string>; body?: Buffer },
    signal: AbortSignal,
  ): Promise<ForwardedAnswer> => {
    const target = membership.view().find((n) => n.id === node)
    if (target === undefined || target.httpAddr === '')
      return Promise.reject(new HopsError('UNAVAILABLE', `node ${node} is not known`))
    const { host, port } = parseHostPort(target.httpAddr)
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { ...req.headers }
      if (req.body !== undefined) headers['content-length'] = req.body.length
      const options = {
        host: host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host,
        port,
        method: req.method,
        path: req.path,
        headers,
        signal: AbortSignal.any([signal, AbortSignal.timeout(FORWARD_TIMEOUT_MS)]),
      }
      const onResponse = (res: import('node:http').IncomingMessage) => {
        const chunks: Buffer[] = []
        let bytes = 0
        res.on('data', (c: Buffer) => {
          bytes += c.length
          if (bytes > FORWARD_ANSWER_BYTES_MAX) res.destroy(new Error('answer too large'))
          else chunks.push(c)
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 502, body: Buffer.concat(chunks) }))
        res.on('error', reject)
      }
      const upstream =
        tls === undefined
          ? httpRequest({ ...options, agent: httpAgent }, onResponse)
          : httpsRequest({ ...options, agent: httpsAgent, ca: tls.clusterCaPem() }, onResponse)
      upstream.on('error', reject)
      upstream.end(req.body)
    })
  }
  return { forward, httpAgent, httpsAgent }
}

/** The request log (src/serving/request-log.ts) with its records gauge. */
function requestLogOf(
  components: Parameters<NodeModule<'serving'>['create']>[0],
  sampleRate: (deployment: string) => number,
  sink: (to: { project: string; deployment: string }, lines: string, signal: AbortSignal) => Promise<void>,
  logger: { warn(obj: object, msg: string): void },
): RequestLog {
  const requestLog = createRequestLog({
    sampleRate,
    sink: ({ project, deployment }, lines, signal) => sink({ project, deployment }, lines, signal),
    onError: (err) => logger.warn({ err: (err as Error).message }, 'serving: request log batch dropped'),
  })
  new Gauge({
    name: 'hopsd_serving_request_log_records',
    help: 'Sampled inference records of this node since it started, by outcome: written to the Logs dataset, dropped because the buffer was full, dropped because the file system refused their batch, buffered now.',
    labelNames: ['outcome'],
    registers: [components.metrics],
    collect() {
      const st = requestLog.stats()
      this.set({ outcome: 'written' }, st.written)
      this.set({ outcome: 'dropped_full' }, st.droppedFull)
      this.set({ outcome: 'dropped_failed' }, st.droppedFailed)
      this.set({ outcome: 'buffered' }, st.buffered)
    },
  })
  return requestLog
}

/**
 * Serving on a node without a metadata replica, through a metadata node (serving-meta.ts): the /v2
 * routes (each request authorized there, routed on the deployment's row it answers with), inference
 * keys checked there, the registry and deployments API forwarded over HTTP; with the `serving` role, the
 * agent over the deployment table it polls, its reports, model files and request records sent there.
 */
function remoteServing(
  components: Parameters<NodeModule<'serving'>['create']>[0],
  logger: Logger,
): ReturnType<NodeModule<'serving'>['create']> {
  const { config, identity } = components
  const self = identity.id
  const membership = requireService(components, 'membership')
  const cluster = requireService(components, 'cluster')
  const p2p = requireService(components, 'p2p')
  const meta = servingMetaClient({ host: () => p2p.host(), targets: () => cluster.metadataTargets() })
  const tls = config.tls ? requireService(components, 'tls') : undefined
  const { forward, httpAgent, httpsAgent } = replicaForwarder(membership, tls)

  // The deployment table as a metadata node last answered (the agent's input; routing asks per request).
  let table: { deployments: Deployment[]; models: ModelVersion[] } = { deployments: [], models: [] }
  let tableText = ''
  const agent = config.roles.includes('serving')
    ? new ServingAgent({
        self,
        root: join(config.dataDir, 'serving'),
        deployments: () => table.deployments,
        model: (p, n, v) => table.models.find((m) => m.project === p && m.name === n && m.version === v),
        files: meta.files,
        report: (r) => meta.report(r),
        logger,
      })
    : undefined
  const poll =
    agent === undefined
      ? undefined
      : new Periodic({
          intervalMs: TABLE_POLL_INTERVAL_MS,
          tick: async (signal) => {
            const next = await meta.deployments(signal)
            const text = JSON.stringify(next)
            if (text === tableText) return
            table = next
            tableText = text
            agent.sync()
          },
          onError: (err) =>
            logger.debug({ err: (err as Error).message }, 'serving: reading the deployment table failed'),
        })
  const requestLog = requestLogOf(
    components,
    (name) => table.deployments.find((d) => d.name === name)?.logSampleRate ?? 0,
    (to, lines, signal) => meta.log(to, lines, signal),
    logger,
  )

  const routes: ApiRoutes = {
    name: 'serving',
    async register(app) {
      await app.register(async (scope) =>
        proxyRoutes(
          cluster,
          ['/api/v1/models', '/api/v1/models/*', '/api/v1/deployments', '/api/v1/deployments/*'],
          'serving',
          tls === undefined ? undefined : { ca: () => tls.clusterCaPem() },
        ).register(scope),
      )
      await app.register(async (scope) =>
        inferenceRoutes({
          authorize: (caller, name, signal) => meta.authorize(caller, name, signal),
          here: { node: self, zone: config.zone },
          local: (id) => agent?.local(id),
          forward,
          ready: () => cluster.metadataTargets().length > 0,
          serverVersion: VERSION,
          requestLog,
        }).register(scope),
      )
    },
  }
  return {
    api: { agent, inferenceKeys: (key, signal) => meta.inferenceKey(key, signal) },
    routes,
    service: {
      async start() {
        agent?.start()
        poll?.start()
        requestLog.start()
      },
      async stop() {
        await poll?.stop()
        await requestLog.stop()
        await agent?.stop()
        httpAgent.destroy()
        httpsAgent.destroy()
      },
    },
  }
}
