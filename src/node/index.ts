/**
 * The daemon: configuration (flags, file, environment), the data directory and its lock, the node
 * identity, and the {@link Daemon} that composes the areas' modules and the HTTP API.
 *
 * @example
 * ```ts
 * const config = resolveConfig({ flags: { 'data-dir': '/var/lib/hopsd', zone: 'z1' }, env: process.env, cwd: process.cwd() })
 * const daemon = createDaemon({ config })
 * await daemon.start()          // typed StartupError/ConfigError on bad input
 * process.once('SIGTERM', () => void daemon.stop().then(() => process.exit(0)))
 * ```
 */
export {
  CONFIG_KEYS,
  CONFIG_FILE_ENV,
  DEFAULT_DATA_DIR,
  DEFAULT_HTTP,
  DEFAULT_P2P,
  ROLES,
  defaultConfig,
  envName,
  formatAddress,
  httpUrl,
  parseAddress,
  resolveConfig,
  type ConfigKeyDef,
  type ConfigSources,
  type HostPort,
  type NodeConfig,
  type Role,
} from './config.js'
export { ConfigError, StartupError, isUsageError } from './errors.js'
export {
  LOCK_FILE,
  isAlive,
  lockDataDir,
  prepareDataDir,
  type DataDirLock,
  type LockOwner,
} from './data-dir.js'
export { KEY_FILE, loadOrCreateIdentity, type NodeIdentity } from './identity.js'
export { createLogger, silentLogger, type Logger, type LoggerInit } from './logger.js'
export { checkPortFree } from './ports.js'
export {
  requireService,
  type ModuleInstance,
  type NodeComponents,
  type NodeModule,
  type ServiceName,
  type ServiceOf,
  type Services,
  type Startable,
} from './module.js'
export { DEFAULT_MODULES } from './modules.js'
export { Daemon, SHUTDOWN_TIMEOUT_MS, createDaemon, type DaemonInit, type DaemonState } from './daemon.js'
export { tuneV8ForDaemon, V8_DAEMON_FLAGS } from './v8-tuning.js'
