// The Daemon in-process: module lifecycle order, role filtering, failure cleanup, shutdown deadline.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  LOCK_FILE,
  createDaemon,
  defaultConfig,
  requireService,
  silentLogger,
  type NodeConfig,
  type NodeModule,
} from '../../src/node/index.js'
import { makeTempDir, removeTempDirs, getJson } from '../helpers/index.js'

afterAll(removeTempDirs)

// A test module publishes a service the way a later area would: by adding its typed field.
declare module '../../src/node/module.js' {
  interface Services {
    raft?: { name: string }
  }
}

function config(overrides: Partial<NodeConfig> = {}): NodeConfig {
  return defaultConfig('/', {
    dataDir: join(makeTempDir(), 'data'),
    http: { host: '127.0.0.1', port: 0 },
    p2p: { host: '127.0.0.1', port: 0 },
    ...overrides,
  })
}

/** A module that records its lifecycle calls into `log`. */
function recorder(
  name: string,
  log: string[],
  extra: Partial<NodeModule> = {},
  failStart = false,
): NodeModule {
  return {
    name,
    ...extra,
    create(components) {
      log.push(`create ${name} sees [${Object.keys(components.services).join(',')}]`)
      return {
        api: { name },
        service: {
          async start() {
            log.push(`start ${name}`)
            if (failStart) throw new Error(`${name} failed`)
          },
          async stop(signal) {
            expect(signal).toBeInstanceOf(AbortSignal)
            log.push(`stop ${name}`)
          },
        },
      }
    },
  }
}

describe('Daemon', () => {
  it('creates and starts modules in order, serves HTTP, stops in reverse and releases the lock', async () => {
    const log: string[] = []
    const cfg = config({ roles: ['metadata', 'datanode'] })
    const daemon = createDaemon({
      config: cfg,
      logger: silentLogger(),
      modules: [
        recorder('p2p', log),
        recorder('gpu-only', log, { roles: ['gpu'] }),
        recorder('raft', log, { roles: ['metadata'] }),
        {
          name: 'routes',
          create(components) {
            const raft = requireService(components, 'raft')
            return {
              routes: {
                name: 'routes',
                register(app) {
                  app.get(
                    '/t/raft',
                    { schema: { response: { 200: { type: 'object', additionalProperties: true } } } },
                    async () => raft,
                  )
                },
              },
            }
          },
        },
      ],
    })
    await daemon.start()
    expect(daemon.state).toBe('running')
    expect(existsSync(join(cfg.dataDir, LOCK_FILE))).toBe(true)
    const health = await getJson(`${daemon.url}/health`)
    expect(health).toMatchObject({ status: 'ok', id: daemon.id, roles: ['metadata', 'datanode'] })
    expect(await getJson(`${daemon.url}/t/raft`)).toEqual({ name: 'raft' })
    await daemon.stop()
    expect(daemon.state).toBe('stopped')
    expect(log).toEqual([
      'create p2p sees []',
      'create raft sees [p2p]',
      'start p2p',
      'start raft',
      'stop raft',
      'stop p2p',
    ])
    expect(existsSync(join(cfg.dataDir, LOCK_FILE))).toBe(false)
    await expect(fetch(`${daemon.url}/health`)).rejects.toThrow()
  })

  it('keeps its id across restarts on the same data dir', async () => {
    const cfg = config()
    const a = createDaemon({ config: cfg, logger: silentLogger(), modules: [] })
    await a.start()
    const id = a.id
    await a.stop()
    const b = createDaemon({ config: cfg, logger: silentLogger(), modules: [] })
    await b.start()
    expect(b.id).toBe(id)
    await b.stop()
  })

  it('stops what started when a module fails to start, and releases the lock', async () => {
    const log: string[] = []
    const cfg = config()
    const daemon = createDaemon({
      config: cfg,
      logger: silentLogger(),
      modules: [recorder('a', log), recorder('b', log, {}, true), recorder('c', log)],
    })
    await expect(daemon.start()).rejects.toThrow('b failed')
    expect(log.filter((l) => !l.startsWith('create'))).toEqual(['start a', 'start b', 'stop b', 'stop a'])
    expect(existsSync(join(cfg.dataDir, LOCK_FILE))).toBe(false)
    expect(daemon.state).toBe('stopped')
  })

  it('refuses a second daemon on the same data dir', async () => {
    const cfg = config()
    const a = createDaemon({ config: cfg, logger: silentLogger(), modules: [] })
    await a.start()
    const b = createDaemon({ config: cfg, logger: silentLogger(), modules: [] })
    await expect(b.start()).rejects.toMatchObject({ code: 'DATA_DIR_LOCKED' })
    await a.stop()
  })

  it('gives up on a module that ignores its stop deadline with SHUTDOWN_TIMEOUT', async () => {
    const stuck: NodeModule = {
      name: 'stuck',
      create: () => ({
        service: {
          start: async () => {},
          stop: () => new Promise<void>(() => {}), // never resolves, ignores the signal
        },
      }),
    }
    const daemon = createDaemon({
      config: config(),
      logger: silentLogger(),
      modules: [stuck],
      shutdownTimeoutMs: 200,
    })
    await daemon.start()
    await expect(daemon.stop()).rejects.toMatchObject({ code: 'SHUTDOWN_TIMEOUT' })
  })

  it('a fatal failure turns /health to 503 with the reason at once, then stops the node and resolves failed', async () => {
    const log: string[] = []
    let report: ((f: { code: string; message: string }) => void) | undefined
    const daemon = createDaemon({
      config: config(),
      logger: silentLogger(),
      failureExitDelayMs: 300,
      modules: [
        recorder('p2p', log),
        {
          name: 'raft',
          create(components) {
            report = components.fatal
            return {}
          },
        },
      ],
    })
    await daemon.start()
    const ok = await fetch(`${daemon.url}/health`)
    expect(ok.status).toBe(200)
    expect(((await ok.json()) as { status: string }).status).toBe('ok')

    report!({ code: 'APPLY_FAILED', message: 'the metadata Raft group stopped: boom' })
    report!({ code: 'STORAGE_FAILED', message: 'a second report changes nothing' })
    const res = await fetch(`${daemon.url}/health`)
    expect(res.status).toBe(503)
    expect(await res.json()).toMatchObject({
      status: 'failed',
      id: daemon.id,
      error: { code: 'APPLY_FAILED', message: 'the metadata Raft group stopped: boom' },
    })
    expect(daemon.state).toBe('running') // still answering, for health checks to see it
    await expect(daemon.failed).resolves.toEqual({
      code: 'APPLY_FAILED',
      message: 'the metadata Raft group stopped: boom',
    })
    expect(daemon.state).toBe('stopped')
    expect(log).toContain('stop p2p')
  })

  it('stops idempotently, and before start', async () => {
    const never = createDaemon({ config: config(), logger: silentLogger(), modules: [] })
    await never.stop()
    expect(never.state).toBe('stopped')
    const daemon = createDaemon({ config: config(), logger: silentLogger(), modules: [] })
    await daemon.start()
    await Promise.all([daemon.stop(), daemon.stop()])
  })
})
