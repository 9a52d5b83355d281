/**
 * Shared test helpers: waiting on conditions with deadlines, free ports, temporary directories, and
 * real daemons as child processes (the same `hopsd start` an operator runs), one or a whole cluster on
 * loopback ({@link startCluster}, in cluster.ts).
 *
 * Daemons run from the sources under tsx by default; set HOPSD_BIN=dist/hopsd to run every helper-
 * started node from the single binary instead.
 *
 * @example
 * ```ts
 * const dir = makeTempDir('cluster-')
 * const [a, b] = await freePorts(2)
 * const node = await startNode({ dataDir: join(dir, 'n1'), zone: 'z1', http: a, p2p: b })
 * const health = await (await fetch(`${node.url}/health`)).json()
 * expect(await node.stop()).toEqual({ code: 0, signal: null })
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

// ---------------------------------------------------------------------------------------------- waitFor

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  readonly timeoutMs?: number
  /** Pause between attempts (default 50 ms). */
  readonly intervalMs?: number
  /** Says what was awaited, in the timeout error. */
  readonly what?: string
}

/**
 * Calls `condition` until it returns a value other than undefined/false/null (returned), or the
 * deadline passes (throws, with the last error `condition` threw, if any). Exceptions count as "not yet".
 */
export async function waitFor<T>(
  condition: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000
  const intervalMs = opts.intervalMs ?? 50
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await condition()
      if (value !== undefined && value !== null && value !== false) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `; last error: ${lastError.message}` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'a condition'}${why}`)
    }
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(0, deadline - Date.now()))))
  }
}

// ------------------------------------------------------------------------------------------------ ports

/** Ports handed out by this process, so two calls never return the same one before it is bound. */
const handedOut = new Set<number>()
const PORT_MIN = 20_000
const PORT_MAX = 60_000
const PORT_ATTEMPTS_MAX = 200

/** Whether `port` can be bound on `host` right now. */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer()
    server.once('error', () => resolvePromise(false))
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolvePromise(true)))
  })
}

/**
 * `count` free ports on `host`, as `HOST:PORT` strings. With `consecutive`, the ports are
 * base..base+count-1 (for `hopsd dev`, which counts ports up from the first).
 */
export async function freePorts(
  count: number,
  opts: { host?: string; consecutive?: boolean } = {},
): Promise<string[]> {
  const host = opts.host ?? '127.0.0.1'
  const out: number[] = []
  for (let attempt = 0; attempt < PORT_ATTEMPTS_MAX && out.length < count; attempt++) {
    // Random start points spread parallel test files (other workers, other engineers) apart.
    const base = PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN - count))
    const run = opts.consecutive ? Array.from({ length: count }, (_, i) => base + i) : [base]
    let ok = true
    for (const port of run) {
      if (handedOut.has(port) || !(await isPortFree(port, host))) {
        ok = false
        break
      }
    }
    if (!ok) continue
    for (const port of run) {
      handedOut.add(port)
      out.push(port)
    }
  }
  if (out.length < count)
    throw new Error(`no ${count} free ports on ${host} after ${PORT_ATTEMPTS_MAX} attempts`)
  return out.slice(0, count).map((port) => `${host}:${port}`)
}

export async function freePort(host = '127.0.0.1'): Promise<string> {
  const [addr] = await freePorts(1, { host })
  return addr!
}

// -------------------------------------------------------------------------------------------- temp dirs

const tempDirs: string[] = []

/** A fresh directory under the OS temp dir; removed by {@link removeTempDirs}. */
export function makeTempDir(prefix = 'hopsd-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  tempDirs.push(dir)
  return dir
}

export function removeTempDirs(): void {
  while (tempDirs.length > 0) rmSync(tempDirs.pop()!, { recursive: true, force: true })
}

// ------------------------------------------------------------------------------------- running hopsd

/**
 * The temp dir of the processes tests start: `<repo>/.cache/tmp`, so that what they keep there (tsx's
 * compile cache, under the sources) is reused between runs and nothing is left in the system's temp dir.
 */
export function daemonTmpEnv(): { TMPDIR: string } {
  const dir = join(REPO_ROOT, '.cache', 'tmp')
  mkdirSync(dir, { recursive: true })
  return { TMPDIR: dir }
}

/** How to run `hopsd ARGS`: HOPSD_BIN if set, else the sources under the pinned Node 22 with tsx. */
export function hopsdCommand(): { command: string; args: string[] } {
  const bin = process.env['HOPSD_BIN']
  if (bin !== undefined && bin !== '') return { command: resolve(REPO_ROOT, bin), args: [] }
  const pinned = join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node')
  const node = existsSync(pinned) ? pinned : process.execPath
  // An absolute loader URL, so the child may run in any cwd.
  const tsx = new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url).href
  return { command: node, args: ['--import', tsx, join(REPO_ROOT, 'src', 'cli', 'main.ts')] }
}

export interface RunResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `hopsd ARGS` to completion (for commands that exit by themselves, like bad input). */
export function runHopsd(
  args: readonly string[],
  opts: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number; command?: string } = {},
): Promise<RunResult> {
  const base = opts.command !== undefined ? { command: opts.command, args: [] } : hopsdCommand()
  return new Promise((resolvePromise, reject) => {
    const child = spawn(base.command, [...base.args, ...args], {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...process.env, ...daemonTmpEnv(), ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`hopsd ${args.join(' ')} did not exit within ${opts.timeoutMs ?? 30_000} ms`))
    }, opts.timeoutMs ?? 30_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolvePromise({ code, signal, stdout, stderr })
    })
  })
}

export interface StartNodeOptions {
  readonly dataDir: string
  readonly zone?: string
  readonly roles?: readonly string[]
  /** HOST:PORT; a free loopback port when omitted. */
  readonly http?: string
  /** HOST:PORT; a free loopback port when omitted. */
  readonly p2p?: string
  readonly join?: readonly string[]
  readonly bootstrapExpect?: number
  readonly extraArgs?: readonly string[]
  readonly env?: Record<string, string | undefined>
  /** Run this executable instead of {@link hopsdCommand} (e.g. a copy of dist/hopsd). */
  readonly command?: string
  readonly cwd?: string
  /** Deadline for /health to answer 200 (default 30 s). */
  readonly readyTimeoutMs?: number
  /**
   * `--auth` of the node (default `simple`, so that tests may act as anyone with WebHDFS `user.name`,
   * as they did before secure auth existed). Tests of authentication pass `secure` — hopsd's own
   * default — and then authenticate with the admin key in `<data-dir>/admin.key` (see adminKeyOf).
   * An `--auth` in `extraArgs` wins.
   */
  readonly auth?: 'simple' | 'secure'
}

export interface ExitInfo {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface NodeHandle {
  /** `http://HOST:PORT` of the node's API. */
  readonly url: string
  readonly http: string
  readonly p2p: string
  readonly pid: number
  /** The node id from /health. */
  readonly id: string
  readonly process: ChildProcess
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitInfo>
  /** Sends a signal (SIGKILL to crash it). */
  kill(signal?: NodeJS.Signals): void
  /** SIGTERM, then waits for exit (SIGKILL after `timeoutMs`, default 15 s). */
  stop(timeoutMs?: number): Promise<ExitInfo>
  /** Everything the node wrote so far, stdout and stderr. */
  logs(): { stdout: string; stderr: string }
}

const liveNodes = new Set<NodeHandle>()

/** Starts `hopsd start` as a child process and waits until GET /health answers 200. */
export async function startNode(opts: StartNodeOptions): Promise<NodeHandle> {
  const http = opts.http ?? (await freePort())
  const p2p = opts.p2p ?? (await freePort())
  const args = ['start', '--data-dir', opts.dataDir, '--http', http, '--p2p', p2p]
  if (opts.zone !== undefined) args.push('--zone', opts.zone)
  if (opts.roles !== undefined) args.push('--roles', opts.roles.join(','))
  if (opts.join !== undefined && opts.join.length > 0) args.push('--join', opts.join.join(','))
  if (opts.bootstrapExpect !== undefined) args.push('--bootstrap-expect', String(opts.bootstrapExpect))
  if (!(opts.extraArgs ?? []).includes('--auth')) args.push('--auth', opts.auth ?? 'simple')
  args.push(...(opts.extraArgs ?? []))

  const base = opts.command !== undefined ? { command: opts.command, args: [] } : hopsdCommand()
  const child = spawn(base.command, [...base.args, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...process.env, ...daemonTmpEnv(), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  // Always drain the pipes: a full pipe would block the node's synchronous log writes.
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  let exitInfo: ExitInfo | undefined
  const exited = new Promise<ExitInfo>((resolvePromise) => {
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal }
      resolvePromise(exitInfo)
    })
    child.on('error', (err) => {
      stderr += `spawn error: ${err.message}\n`
      exitInfo = { code: null, signal: null }
      resolvePromise(exitInfo)
    })
  })
  const url = `http://${http}`
  const kill = (signal: NodeJS.Signals = 'SIGTERM') => {
    if (exitInfo === undefined) child.kill(signal)
  }
  const stop = async (timeoutMs = 15_000): Promise<ExitInfo> => {
    kill('SIGTERM')
    const timer = setTimeout(() => kill('SIGKILL'), timeoutMs)
    const info = await exited
    clearTimeout(timer)
    liveNodes.delete(handle)
    return info
  }

  let id = ''
  const handle: NodeHandle = {
    url,
    http,
    p2p,
    pid: child.pid ?? -1,
    get id() {
      return id
    },
    process: child,
    exited,
    kill,
    stop,
    logs: () => ({ stdout, stderr }),
  }
  liveNodes.add(handle)
  let outcome: { healthy: true; id: string } | { healthy: false }
  let lastHealth = 'no answer'
  try {
    outcome = await waitFor(
      async () => {
        // An exited process is an answer too: fail at once, with its stderr, not at the deadline.
        if (exitInfo !== undefined) return { healthy: false as const }
        const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) })
        lastHealth = `${res.status}`
        return res.status === 200
          ? { healthy: true as const, id: ((await res.json()) as { id: string }).id }
          : undefined
      },
      { timeoutMs: opts.readyTimeoutMs ?? 30_000, intervalMs: 50, what: `${url}/health` },
    )
  } catch (err) {
    await stop(2_000)
    const tail = stdout.trimEnd().split('\n').slice(-12).join('\n')
    throw new Error(
      `${(err as Error).message}; last /health: ${lastHealth}; stderr: ${stderr.trim()}; stdout tail:\n${tail}`,
    )
  }
  if (!outcome.healthy) {
    liveNodes.delete(handle)
    throw new Error(`hopsd exited (${JSON.stringify(exitInfo)}) before it was healthy: ${stderr.trim()}`)
  }
  id = outcome.id
  return handle
}

/** Stops every node started by {@link startNode} that is still running (for afterEach/afterAll). */
export async function stopAllNodes(): Promise<void> {
  await Promise.all([...liveNodes].map((n) => n.stop()))
}

/** Whether a process with this pid exists. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** GET `url` and parse the JSON body (any: tests assert on its shape). */
export async function getJson<T = any>(url: string, timeoutMs = 5_000): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  return (await res.json()) as T
}

// ------------------------------------------------------------------------------- clusters on loopback

// startCluster, LoopbackCluster, writeSwarmKey: N nodes with one swarm key, joining each other.
export * from './cluster.js'
