/**
 * How areas plug into the daemon. The daemon is composed of {@link NodeModule}s, created in list order
 * (src/node/modules.ts) for the roles they serve. A module receives the {@link NodeComponents} — config,
 * identity, logger, metrics and the services of the modules before it — and returns what it adds: a
 * {@link Startable} service, a public face other modules may use, and HTTP routes.
 *
 * Lifecycle guarantees given by the daemon:
 * - `create` is called once, in list order, before anything starts; it must not do I/O that needs
 *   stopping (open sockets, files) — that belongs in `start`.
 * - `start` is called in list order, each after the previous one resolved; the HTTP API listens only
 *   after every module started. A module's `start` must not wait for other nodes (the cluster forms in
 *   the background; /health answers meanwhile).
 * - `stop` is called in reverse order, after the HTTP API stopped accepting requests, also for modules
 *   whose start failed midway; it must honour its AbortSignal (the whole shutdown has 10 s).
 * - Nothing is called concurrently with itself.
 */
import type { Registry } from 'prom-client'
import type { ApiRoutes } from '../api/index.js'
import type { BlockManager } from '../fs/blocks/index.js'
import type { Datanode } from '../fs/datanode/index.js'
import type { FsService } from '../fs/index.js'
import type { NodeAdmission } from './cluster/admission-module.js'
import type { ProjectService } from '../projects/index.js'
import type { NodeAuth } from './cluster/auth-module.js'
import type { ClusterClient } from './cluster/client-module.js'
import type { MembershipNode } from './cluster/membership-module.js'
import type { MetadataNode } from './cluster/metadata-module.js'
import type { P2PNode } from './cluster/p2p-module.js'
import type { NodeTls } from './cluster/tls-module.js'
import type { DataPlaneNode } from './cluster/dataplane-module.js'
import type { SchedulerNode } from './cluster/sched-module.js'
import type { ServingNode } from './cluster/serving-module.js'
import type { HostPort, NodeConfig, Role } from './config.js'
import type { NodeIdentity } from './identity.js'
import type { Logger } from './logger.js'

export interface Startable {
  start(signal: AbortSignal): Promise<void>
  stop(signal: AbortSignal): Promise<void>
}

/**
 * The typed registry of the running modules' public faces: one optional field per module, named as the
 * module (`NodeModule.name`), typed as what it publishes (`ModuleInstance.api`). A field is absent when
 * its module does not run on this node (roles) or is created after the reader. Add a field when you add
 * a module (gpu, scheduler, serving, auth, ...); a module reads the ones it needs with
 * {@link requireService}, or `components.services.x` where it is optional.
 */
export interface Services {
  p2p?: P2PNode
  membership?: MembershipNode
  metadata?: MetadataNode
  cluster?: ClusterClient
  admission?: NodeAdmission
  /** Who is calling: the API's authentication, grants, audit; users/keys/tokens on metadata nodes. */
  auth?: NodeAuth
  tls?: NodeTls
  /** The PeerNetwork of block traffic: streams over the TLS data plane, requests over libp2p. */
  dataplane?: DataPlaneNode
  blockmanager?: BlockManager
  datanode?: Datanode
  fs?: FsService
  /** Projects, members, datasets and shares (metadata nodes). */
  projects?: ProjectService
  /** GPU jobs: the jobs service, the gossip view of the workers, this node's GPU inventory. */
  scheduler?: SchedulerNode
  /** Models, deployments and inference: the registry, this node's replica agent. */
  serving?: ServingNode
}

export type ServiceName = keyof Services

export interface NodeComponents {
  readonly config: NodeConfig
  readonly identity: NodeIdentity
  /** Already carries the node id and zone; modules make a child with their own name. */
  readonly logger: Logger
  /** The daemon's Prometheus registry: register module metrics here, never in the global one. */
  readonly metrics: Registry
  readonly startedAt: Date
  /** Services of the modules created before this one. */
  readonly services: Readonly<Services>
  /**
   * Resolves with the HTTP API's bound address once it listens (after every module started); the real
   * port when 0 was configured. Never rejects: it stays pending if the start fails.
   */
  readonly httpListening: Promise<HostPort>
  /**
   * Reports a failure this node cannot recover from while it runs (its Raft group stopped on a storage
   * or apply failure): from then on /health answers 503 with the reason, and shortly after the daemon
   * stops and `hopsd start` exits 1, so that a supervisor restarts the process. The first report wins;
   * later ones are only logged. Never throws; may be called from any callback.
   */
  fatal(failure: NodeFailure): void
}

/** Why a node stopped on its own: a stable code (from the error table) and what happened. */
export interface NodeFailure {
  readonly code: string
  readonly message: string
}

/** What the module named `N` publishes: its {@link Services} field's type (nothing typed for other names). */
export type ServiceOf<N extends string> = N extends ServiceName ? NonNullable<Services[N]> : unknown

export interface ModuleInstance<N extends string = string> {
  readonly service?: Startable
  /** Published to later modules as `components.services[module.name]`. */
  readonly api?: ServiceOf<N>
  /** The area's HTTP routes (`src/api/routes/<area>.ts`). */
  readonly routes?: ApiRoutes
}

export interface NodeModule<N extends string = string> {
  /** The module's name in logs, and the {@link Services} field its `api` fills. */
  readonly name: N
  /** The roles that run this module; undefined: every node. */
  readonly roles?: readonly Role[]
  create(components: NodeComponents): ModuleInstance<N> | Promise<ModuleInstance<N>>
}

/** The service another module published, or an assertion failure naming the missing dependency. */
export function requireService<N extends ServiceName>(
  components: NodeComponents,
  name: N,
): NonNullable<Services[N]> {
  const service = components.services[name]
  if (service === undefined) {
    throw new Error(
      `module dependency missing: '${name}' is not created before this module (check modules.ts order and roles)`,
    )
  }
  return service
}
