/**
 * The executor: runs one task's process on the worker. Each task gets
 * - its own working directory, `<root>/<runId>/task-<rank>` (created 0700),
 * - the environment it is given (the scheduler's: exactly its GPUs, rendezvous, the job's variables, and
 *   later the project-user's short-lived credential) over a small base (PATH, LANG, ...) — never the
 *   daemon's own environment, and never another task's GPU variables,
 * - its own process group, so stopping it stops its children too,
 * - stdout and stderr streamed to an injected {@link LogSink} while it runs, with bounded buffering: when
 *   the sink is slower than the process, reading pauses (the pipe fills, the process blocks on write)
 *   instead of memory growing,
 * - a timeout (timeoutS) and a stop on request: SIGTERM to the group, SIGKILL after a grace period.
 * When the leader process exits, whatever it left behind in its group is killed, and the exit is reported
 * once the logs are flushed.
 */
import { spawn } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { constants as osConstants } from 'node:os'
import { join } from 'node:path'
import { realClock, type Clock, type TimerHandle } from './world.js'

export type LogStreamName = 'stdout' | 'stderr'

/** Where a task's output goes (the integration writes `/Projects/<project>/Logs/<job>/<run>/<stream>`). */
export interface LogSink {
  /** Opens one stream of one task. Called before the process starts. */
  open(target: { readonly runId: string; readonly rank: number; readonly stream: LogStreamName }): LogStream
}

/**
 * Writes are called in order and never concurrently with close; a returned promise applies backpressure
 * (the executor stops reading the pipe while more than logBufferBytesMax is unwritten). A failing write
 * drops the rest of that stream (the task is not stopped for it).
 */
export interface LogStream {
  write(chunk: Uint8Array): void | Promise<void>
  close(): void | Promise<void>
}

export interface TaskProcessSpec {
  readonly runId: string
  readonly rank: number
  /** argv[0] is looked up in the PATH of `env` (or the base environment). */
  readonly argv: readonly string[]
  /** The task's own variables (they override the base environment). */
  readonly env: Readonly<Record<string, string>>
  /** 0 = no limit. */
  readonly timeoutS: number
}

export type TaskEndReason = 'exited' | 'timeout' | 'stopped' | 'spawn-failed'

export interface TaskExit {
  /** The exit code; 128 + signal number when a signal ended it (the shell's convention); 127 spawn failed. */
  readonly exitCode: number
  /** The signal's name when one ended it ('' otherwise). */
  readonly signal: string
  readonly startedMs: number
  readonly endedMs: number
  readonly reason: TaskEndReason
  /** Details for spawn-failed (ENOENT, EACCES, ...) or the stop's reason. */
  readonly message: string
}

export interface RunningTask {
  readonly pid: number | undefined
  readonly workDir: string
  readonly startedMs: number
  /** Resolves once, when the process has exited and its logs are flushed; never rejects. */
  readonly exited: Promise<TaskExit>
  /** SIGTERM to the process group, SIGKILL after the grace period (idempotent). */
  stop(reason?: string): void
}

export interface ExecutorInit {
  /** Working directories go under this folder. */
  readonly root: string
  readonly sink: LogSink
  readonly clock?: Clock
  /** Between SIGTERM and SIGKILL (default 10 s). */
  readonly killGraceMs?: number
  /** Unwritten log bytes per stream before reading pauses (default 1 MiB). */
  readonly logBufferBytesMax?: number
  /** The base environment (default: PATH, HOME, LANG, LC_ALL, TZ, TMPDIR of this process). */
  readonly baseEnv?: Readonly<Record<string, string>>
  /** How long to wait for the pipes to close after the process group was killed (default 5 s). */
  readonly drainMsMax?: number
}

export interface Executor {
  start(spec: TaskProcessSpec): Promise<RunningTask>
  /** Tasks whose process has not exited yet. */
  running(): RunningTask[]
  /** Stops every task and waits for their exits. */
  stopAll(reason?: string): Promise<void>
}

const BASE_ENV_KEYS = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR']

export function createExecutor(init: ExecutorInit): Executor {
  const clock = init.clock ?? realClock
  const killGraceMs = init.killGraceMs ?? 10_000
  const bufferMax = init.logBufferBytesMax ?? 1 << 20
  const drainMsMax = init.drainMsMax ?? 5000
  const baseEnv: Record<string, string> = { ...(init.baseEnv ?? pickEnv(process.env, BASE_ENV_KEYS)) }
  const live = new Set<RunningTask>()

  async function start(spec: TaskProcessSpec): Promise<RunningTask> {
    if (spec.argv.length === 0 || spec.argv[0] === '') throw new Error('executor: empty argv')
    if (!/^[A-Za-z0-9._-]+$/.test(spec.runId)) throw new Error(`executor: run id ${spec.runId}`)
    const workDir = join(init.root, spec.runId, `task-${spec.rank}`)
    await mkdir(workDir, { recursive: true, mode: 0o700 })
    const streams = {
      stdout: init.sink.open({ runId: spec.runId, rank: spec.rank, stream: 'stdout' }),
      stderr: init.sink.open({ runId: spec.runId, rank: spec.rank, stream: 'stderr' }),
    }
    const env = { ...baseEnv, ...spec.env, PWD: workDir }
    const child = spawn(spec.argv[0]!, spec.argv.slice(1), {
      cwd: workDir,
      env,
      detached: true, // its own process group: kill(-pid) reaches its children
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const startedMs = clock.now()
    let stopReason: TaskEndReason | undefined
    let stopMessage = ''
    let graceTimer: TimerHandle | undefined
    let timeoutTimer: TimerHandle | undefined
    let exitedFlag = false

    const killGroup = (signal: NodeJS.Signals): void => {
      if (child.pid === undefined) return
      try {
        process.kill(-child.pid, signal)
      } catch {
        // ESRCH: the group is gone already.
      }
    }

    const stop = (why: TaskEndReason, message: string): void => {
      if (stopReason !== undefined || exitedFlag) {
        // Already stopping (or the leader exited): stragglers still get the SIGKILL below.
        return
      }
      stopReason = why
      stopMessage = message
      killGroup('SIGTERM')
      graceTimer = clock.setTimeout(() => killGroup('SIGKILL'), killGraceMs)
    }

    const pumps = (['stdout', 'stderr'] as const).map((name) => pump(child[name]!, streams[name], bufferMax))

    const exited = new Promise<TaskExit>((resolve) => {
      let spawnError: Error | undefined
      const finish = async (code: number | null, signal: NodeJS.Signals | null): Promise<void> => {
        if (exitedFlag) return // 'error' and 'exit' may both come for a process that failed to start
        exitedFlag = true
        const endedMs = clock.now()
        if (timeoutTimer !== undefined) clock.clearTimeout(timeoutTimer)
        if (graceTimer !== undefined) clock.clearTimeout(graceTimer)
        // Whatever the leader left in its group dies with it (it would hold the GPUs and the pipes).
        killGroup('SIGKILL')
        await drain(pumps, clock, drainMsMax)
        for (const s of Object.values(streams)) {
          try {
            await s.close()
          } catch {
            // A sink that fails to close loses the tail of the log, not the task's exit.
          }
        }
        live.delete(task)
        if (spawnError !== undefined) {
          resolve({
            exitCode: 127,
            signal: '',
            startedMs,
            endedMs,
            reason: 'spawn-failed',
            message: `${spec.argv[0]}: ${spawnError.message}`,
          })
          return
        }
        const signum = signal === null ? 0 : (osConstants.signals[signal] ?? 0)
        resolve({
          exitCode: code ?? 128 + signum,
          signal: signal ?? '',
          startedMs,
          endedMs,
          reason: stopReason ?? 'exited',
          message: stopMessage,
        })
      }
      child.once('error', (err) => {
        spawnError = err
        if (child.pid === undefined) void finish(null, null)
      })
      child.once('exit', (code, signal) => void finish(code, signal))
    })

    const task: RunningTask = {
      pid: child.pid,
      workDir,
      startedMs,
      exited,
      stop: (reason = 'stopped') => stop('stopped', reason),
    }
    live.add(task)
    if (spec.timeoutS > 0)
      timeoutTimer = clock.setTimeout(
        () => stop('timeout', `timed out after ${spec.timeoutS} s`),
        spec.timeoutS * 1000,
      )
    return task
  }

  return {
    start,
    running: () => [...live],
    async stopAll(reason = 'executor stopping') {
      const tasks = [...live]
      for (const t of tasks) t.stop(reason)
      await Promise.all(tasks.map((t) => t.exited))
    },
  }
}

interface Pump {
  readonly done: Promise<void>
  destroy(): void
}

/** Copies a pipe into a log stream, pausing the pipe while more than `bufferMax` bytes are unwritten. */
function pump(source: NodeJS.ReadableStream & { destroy(): void }, sink: LogStream, bufferMax: number): Pump {
  let pending = 0
  let failed = false
  let chain: Promise<void> = Promise.resolve()
  const done = new Promise<void>((resolve) => {
    source.on('data', (chunk: Buffer) => {
      if (failed) return
      const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
      pending += bytes.byteLength
      if (pending > bufferMax) source.pause()
      chain = chain
        .then(() => sink.write(bytes))
        .then(
          () => {
            pending -= bytes.byteLength
            if (pending <= bufferMax && source.isPaused()) source.resume()
          },
          () => {
            failed = true
            pending = 0
            if (source.isPaused()) source.resume() // keep draining the pipe so the process never blocks
          },
        )
    })
    const end = (): void => void chain.then(resolve, resolve)
    source.once('end', end)
    source.once('close', end)
    source.once('error', end)
  })
  return { done, destroy: () => source.destroy() }
}

/** Waits for both pipes to end, at most `maxMs` (a grandchild that escaped the group may hold them). */
async function drain(pumps: readonly Pump[], clock: Clock, maxMs: number): Promise<void> {
  let timer: TimerHandle | undefined
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = clock.setTimeout(() => resolve('timeout'), maxMs)
  })
  const all = Promise.all(pumps.map((p) => p.done)).then(() => 'done' as const)
  const outcome = await Promise.race([all, timedOut])
  clock.clearTimeout(timer)
  if (outcome === 'timeout') {
    for (const p of pumps) p.destroy()
    await all
  }
}

function pickEnv(env: NodeJS.ProcessEnv, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const k of keys) {
    const v = env[k]
    if (v !== undefined) out[k] = v
  }
  return out
}
