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
import type { HostPort, NodeConfig, Role } from './config.js'
import type { NodeIdentity } from './identity.js'
import type { Logger } from './logger.js'

export interface Startable {
  start(signal: AbortSignal): Promise<void>
  stop(signal: AbortSignal): Promise<void>
}

/**
 * The public faces of the running modules, by module name. Add a field here when you add a module
 * (`p2p: P2PHost`, `membership: Membership`, `raft: RaftGroup`, `meta: MetaStore`, `fs: FsService`);
 * a module reads the ones it depends on with {@link requireService}.
 */
export interface Services {
  [name: string]: unknown
}

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
}

export interface ModuleInstance {
  readonly service?: Startable
  /** Published to later modules as `components.services[module.name]`. */
  readonly api?: unknown
  /** The area's HTTP routes (`src/api/routes/<area>.ts`). */
  readonly routes?: ApiRoutes
}

export interface NodeModule {
  readonly name: string
  /** The roles that run this module; undefined: every node. */
  readonly roles?: readonly Role[]
  create(components: NodeComponents): ModuleInstance | Promise<ModuleInstance>
}

/** The service another module published, or an assertion failure naming the missing dependency. */
export function requireService<T>(components: NodeComponents, name: string): T {
  const service = components.services[name]
  if (service === undefined) {
    throw new Error(
      `module dependency missing: '${name}' is not created before this module (check modules.ts order and roles)`,
    )
  }
  return service as T
}
