/**
 * The daemon: one object, created from a validated {@link NodeConfig}, that owns the node's lifecycle.
 *
 * start: data dir (created, locked) → ports checked free → identity → modules created in order →
 *        modules started in order → HTTP API listening.
 * stop:  HTTP API stops accepting → modules stopped in reverse → lock released; the whole shutdown
 *        has `shutdownTimeoutMs` (10 s), each step receives the deadline as an AbortSignal.
 * fatal: a module reports a failure it cannot recover from (NodeComponents.fatal: the Raft group
 *        stopped): /health answers 503 with the reason at once, and after `failureExitDelayMs` (so that
 *        health checks and load balancers see it) the daemon stops; {@link Daemon.failed} then resolves
 *        and `hopsd start` exits 1, for a supervisor to restart it.
 */
import { registerLoopStallGauge } from './loop-stall.js'
import { HopsError } from '../errors.js'
import {
  createApiServer,
  createMetricsRegistry,
  nodeRoutes,
  type ApiRoutes,
  type ApiServer,
  type NodeInfo,
} from '../api/index.js'
import { VERSION } from '../version.js'
import { formatAddress, httpUrl, type NodeConfig, type HostPort } from './config.js'
import { lockDataDir, prepareDataDir, type DataDirLock } from './data-dir.js'
import { loadOrCreateIdentity, type NodeIdentity } from './identity.js'
import { createLogger, type Logger } from './logger.js'
import type { NodeTls } from './cluster/tls-module.js'
import type { NodeComponents, NodeFailure, NodeModule, Services, Startable } from './module.js'
import { DEFAULT_MODULES } from './modules.js'
import { checkPortFree } from './ports.js'

export const SHUTDOWN_TIMEOUT_MS = 10_000
/** How long a node that failed keeps answering /health 503 (with the reason) before it stops. */
export const FAILURE_EXIT_DELAY_MS = 3_000

export interface DaemonInit {
  readonly config: NodeConfig
  /** JSON lines to stdout by default. */
  readonly logger?: Logger
  /** The modules to compose; {@link DEFAULT_MODULES} by default (tests pass a subset). */
  readonly modules?: readonly NodeModule[]
  readonly shutdownTimeoutMs?: number
  /** {@link FAILURE_EXIT_DELAY_MS} by default. */
  readonly failureExitDelayMs?: number
}

export type DaemonState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped'

export class Daemon {
  readonly config: NodeConfig
  private readonly baseLogger: Logger
  private readonly modules: readonly NodeModule[]
  private readonly shutdownTimeoutMs: number
  private stateValue: DaemonState = 'new'
  private lock: DataDirLock | undefined
  private stopLoopStall: (() => void) | undefined
  private identityValue: NodeIdentity | undefined
  private api: ApiServer | undefined
  private urlValue: string | undefined
  /** Services whose start was called (even if it failed): the ones stop must stop, in reverse. */
  private readonly started: { name: string; service: Startable }[] = []
  private readonly startAbort = new AbortController()
  private startPromise: Promise<void> | undefined
  private stopPromise: Promise<void> | undefined
  private readonly failureExitDelayMs: number
  private failureValue: NodeFailure | undefined
  private announceFailed: (failure: NodeFailure) => void = () => undefined
  /**
   * Resolves with the failure once a module reported a fatal one (NodeComponents.fatal) and the daemon
   * has stopped because of it (whether or not the stop finished in time). Never rejects; stays pending
   * while nothing fails.
   */
  readonly failed: Promise<NodeFailure>

  constructor(init: DaemonInit) {
    this.config = init.config
    this.baseLogger = init.logger ?? createLogger()
    this.modules = init.modules ?? DEFAULT_MODULES
    this.shutdownTimeoutMs = init.shutdownTimeoutMs ?? SHUTDOWN_TIMEOUT_MS
    this.failureExitDelayMs = init.failureExitDelayMs ?? FAILURE_EXIT_DELAY_MS
    this.failed = new Promise((resolve) => (this.announceFailed = resolve))
  }

  /** The fatal failure a module reported, if any (/health answers 503 with it). */
  get failure(): NodeFailure | undefined {
    return this.failureValue
  }

  get state(): DaemonState {
    return this.stateValue
  }

  /** The node id; available once start has loaded the identity. */
  get id(): string {
    if (this.identityValue === undefined) throw new Error('the daemon has not loaded its identity yet')
    return this.identityValue.id
  }

  get identity(): NodeIdentity | undefined {
    return this.identityValue
  }

  /** URL of the HTTP API once listening (with the real port when the config said 0). */
  get url(): string {
    if (this.urlValue === undefined) throw new Error('the daemon is not listening yet')
    return this.urlValue
  }

  /** Starts the node. Rejects with a typed error (StartupError, ConfigError) and leaves nothing running. */
  start(): Promise<void> {
    if (this.stateValue !== 'new') throw new Error(`start called in state ${this.stateValue}`)
    this.stateValue = 'starting'
    this.startPromise = this.doStart().then(
      () => {
        if (this.stateValue === 'starting') this.stateValue = 'running'
      },
      async (err: unknown) => {
        await this.teardown(AbortSignal.timeout(this.shutdownTimeoutMs))
        this.stateValue = 'stopped'
        throw err
      },
    )
    return this.startPromise
  }

  /**
   * Stops the node gracefully; idempotent (a second call returns the first call's promise). Rejects
   * with `SHUTDOWN_TIMEOUT` if the deadline passes — the caller should then exit anyway.
   */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop()
    return this.stopPromise
  }

  private async doStart(): Promise<void> {
    const { config } = this
    const signal = this.startAbort.signal
    prepareDataDir(config.dataDir)
    this.lock = lockDataDir(config.dataDir)
    await checkPortFree(config.http, 'HTTP')
    await checkPortFree(config.p2p, 'p2p')
    const identity = await loadOrCreateIdentity(config.dataDir)
    this.identityValue = identity
    const logger = this.baseLogger.child({ node: identity.id, zone: config.zone })
    logger.info({ dataDir: config.dataDir, roles: config.roles, version: VERSION }, 'starting')

    const metrics = createMetricsRegistry()
    this.stopLoopStall = registerLoopStallGauge(metrics)
    const startedAt = new Date()
    const services: Services = {}
    let announceListening: (addr: HostPort) => void = () => undefined
    const httpListening = new Promise<HostPort>((resolve) => (announceListening = resolve))
    const routes: ApiRoutes[] = []
    const toStart: { name: string; service: Startable }[] = []
    for (const module of this.modules) {
      if (module.roles !== undefined && !module.roles.some((r) => config.roles.includes(r))) continue
      const components: NodeComponents = {
        config,
        identity,
        logger: logger.child({ module: module.name }),
        metrics,
        startedAt,
        services,
        httpListening,
        fatal: (failure) => this.fail(failure, logger),
      }
      const instance = await module.create(components)
      // The one write into the registry: a module's api has its Services field's type (NodeModule<N>).
      if (instance.api !== undefined) (services as Record<string, unknown>)[module.name] = instance.api
      if (instance.routes !== undefined) routes.push(instance.routes)
      if (instance.service !== undefined) toStart.push({ name: module.name, service: instance.service })
    }

    const info: NodeInfo = {
      id: identity.id,
      zone: config.zone,
      roles: config.roles,
      version: VERSION,
      startedAt: startedAt.toISOString(),
      http: urlOf(config.http, config.tls),
      p2p: formatAddress(config.p2p),
      join: config.join.map(formatAddress),
      bootstrapExpect: config.bootstrapExpect,
      dataDir: config.dataDir,
      pid: process.pid,
      nodeVersion: process.version,
    }
    const uptimeS = () => Math.floor((Date.now() - startedAt.getTime()) / 1000)
    const tls = services.tls
    const trustInfo = () => {
      const r = services.p2p?.trust().report()
      return {
        gated: r?.active ?? false,
        certified: r?.certified ?? false,
        crlNumber: r?.crlNumber ?? 0,
        denied: r?.denied ?? 0,
        peers: (r?.peers ?? []).map((p) => ({ id: p.id, status: p.status })),
      }
    }
    const tlsInfo = () => tls?.report() ?? { enabled: config.tls, issuer: null, notAfter: null }
    this.api = await createApiServer({
      logger: logger.child({ module: 'api' }),
      registry: metrics,
      routes: [
        nodeRoutes({ info, uptimeS, tls: tlsInfo, trust: trustInfo, failure: () => this.failureValue }),
        ...routes,
      ],
      // Every module set (DEFAULT_MODULES) has the auth module; a test's subset without it gets the
      // API's simple default (user.name believed).
      auth:
        services.auth?.api === undefined
          ? undefined
          : { ...services.auth.api, inferenceKeys: services.serving?.inferenceKeys },
      openapi: { title: 'hopsd', version: VERSION, description: 'The local HTTP API of a hopsd node.' },
      // With --tls the certificate is set below, once the tls module has loaded or made one.
      https: config.tls ? {} : undefined,
    })

    for (const entry of toStart) {
      signal.throwIfAborted()
      this.started.push(entry)
      logger.info({ module: entry.name }, 'starting module')
      await entry.service.start(signal)
    }
    signal.throwIfAborted()
    if (config.tls) this.serveNodeCertificate(tls, logger)
    try {
      const bound = await this.api.listen(config.http)
      this.urlValue = urlOf(bound, config.tls)
      announceListening(bound)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        // Lost a race with another process between the bind test and now.
        await checkPortFree(config.http, 'HTTP')
      }
      throw err
    }
    logger.info({ url: this.urlValue, p2p: info.p2p, join: info.join }, 'started')
  }

  /**
   * A module's fatal failure: the first one is kept and served by /health; the node stops after the
   * delay. A failure while stopping (or after) changes nothing but the log.
   */
  private fail(failure: NodeFailure, logger: Logger): void {
    const report = { code: String(failure.code), message: String(failure.message) }
    if (this.failureValue !== undefined || this.stateValue === 'stopping' || this.stateValue === 'stopped') {
      logger.error(report, 'fatal failure reported while the node already stops')
      return
    }
    this.failureValue = report
    logger.error(
      { ...report, exitInMs: this.failureExitDelayMs },
      'fatal failure: /health answers 503; the node stops and exits 1',
    )
    // A stop for another reason meanwhile (a signal) is the same stop: stop() is idempotent.
    setTimeout(() => {
      void this.stop()
        .catch((err: unknown) => logger.error({ err }, 'stopping after a fatal failure failed'))
        .finally(() => this.announceFailed(report))
    }, this.failureExitDelayMs)
  }

  /**
   * --tls: the API serves the tls module's certificate (persisted, or temporary self-signed) and
   * switches to each newer one (the cluster's) as soon as the module has it.
   */
  private serveNodeCertificate(tls: NodeTls | undefined, logger: Logger): void {
    if (tls === undefined) throw new Error('--tls needs the tls module (src/node/modules.ts)')
    const first = tls.current()
    if (first === undefined) throw new Error('the tls module started without a certificate')
    const api = this.api!
    // With the cluster CA, client certificates it issued are verified and accepted as credentials.
    const withCa = <T extends object>(m: T) => {
      const caPem = tls.clusterCaPem()
      return caPem === undefined ? m : { ...m, caPem }
    }
    // ...and the cluster's CRL: certificates of revoked nodes fail that verification.
    const decorate = <T extends object>(m: T) => {
      const crlPem = tls.crlPem()
      return crlPem === undefined ? withCa(m) : { ...withCa(m), crlPem }
    }
    api.setCertificate(decorate(first))
    logger.info(
      { issuer: first.issuer, notAfter: first.notAfter.toISOString() },
      'HTTPS with the node certificate',
    )
    tls.onCertificate((next) => {
      if (this.api !== api) return // stopped
      api.setCertificate(decorate(next))
      logger.info(
        { issuer: next.issuer, notAfter: next.notAfter.toISOString() },
        'HTTPS certificate switched',
      )
    })
    // A newer CRL: revoked nodes' certificates fail the next handshakes as client certificates.
    tls.onCrl(() => {
      const current = tls.current()
      if (this.api !== api || current === undefined) return
      api.setCertificate(decorate(current))
      logger.info({}, 'HTTPS: the cluster CRL changed')
    })
  }

  private async doStop(): Promise<void> {
    const signal = AbortSignal.timeout(this.shutdownTimeoutMs)
    if (this.stateValue === 'new') {
      this.stateValue = 'stopped'
      return
    }
    this.stateValue = 'stopping'
    // A start in progress is cut short; its failure path tears down what it started.
    this.startAbort.abort(new HopsError('UNAVAILABLE', 'the node is stopping'))
    const deadline = new Promise<never>((_, reject) => {
      const onAbort = () =>
        reject(
          new HopsError('SHUTDOWN_TIMEOUT', `shutdown did not finish within ${this.shutdownTimeoutMs} ms`),
        )
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    })
    deadline.catch(() => {}) // observed by the race below; never an unhandled rejection
    await Promise.race([
      (async () => {
        try {
          await this.startPromise
        } catch {
          return // the failed start already tore everything down
        }
        await this.teardown(signal)
      })(),
      deadline,
    ])
    this.stateValue = 'stopped'
  }

  /** Stops what started, in reverse; logs failures and goes on, so the lock is always released. */
  private async teardown(signal: AbortSignal): Promise<void> {
    const logger = this.baseLogger
    if (this.api !== undefined) {
      const api = this.api
      this.api = undefined
      try {
        await api.close()
      } catch (err) {
        logger.error({ err }, 'closing the HTTP API failed')
      }
    }
    while (this.started.length > 0) {
      const { name, service } = this.started.pop()!
      try {
        await service.stop(signal)
      } catch (err) {
        logger.error({ err, module: name }, 'stopping a module failed')
      }
    }
    this.stopLoopStall?.()
    this.stopLoopStall = undefined
    this.lock?.release()
    this.lock = undefined
    if (this.identityValue !== undefined) logger.info({ node: this.identityValue.id }, 'stopped')
  }
}

function urlOf(addr: HostPort, tls: boolean): string {
  const url = httpUrl(addr)
  return tls ? url.replace(/^http:/, 'https:') : url
}

export function createDaemon(init: DaemonInit): Daemon {
  return new Daemon(init)
}
