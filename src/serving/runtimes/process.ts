/**
 * Starting and ending a runtime's child process, shared by the ONNX host and subprocess predictors.
 *
 * The child gets a small environment of its own (PATH, locale, home, temp and cache dirs, plus what the
 * replica's settings add), never the daemon's: HOPSD_* variables may hold the swarm key or other
 * secrets, and a predictor is a user's program. Its stderr is kept as a bounded tail for the replica's
 * last error and passed on line by line to the log.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process'

/** Variables a child inherits from the daemon; everything else is left out. */
const INHERITED_ENV = [
  'PATH',
  'HOME',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'TZ',
  'TMPDIR',
  'USER',
  'LOGNAME',
] as const

/** Where the single binary writes its native addons (scripts/sea-addon-loader.cjs): the ONNX host needs it. */
export const ADDON_CACHE_ENV = ['HOPSD_CACHE_DIR', 'XDG_CACHE_HOME'] as const

export function childEnv(
  inherit: readonly string[],
  extra: Readonly<Record<string, string>> = {},
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const name of [...INHERITED_ENV, ...inherit]) {
    const value = process.env[name]
    if (value !== undefined) env[name] = value
  }
  return { ...env, ...extra }
}

export interface ChildExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface RuntimeProcess {
  readonly child: ChildProcess
  readonly pid: number | undefined
  /** Settles once the process has exited (or failed to spawn: code null, signal null). */
  readonly exited: Promise<ChildExit>
  readonly hasExited: () => boolean
  /** The last bytes the process wrote to stderr (at most STDERR_TAIL_CHARS), trimmed. */
  stderrTail(): string
  /** Why spawning failed (ENOENT, EACCES), if it did. */
  spawnError(): Error | undefined
  /**
   * Lets the process end by itself (`closeInput` closes its stdin), SIGKILLs it after
   * graceMs; resolves once it is gone.
   */
  stop(graceMs: number, closeInput: () => void): Promise<void>
  kill(): void
}

const STDERR_TAIL_CHARS = 4096
const STDERR_LINE_CHARS = 2000
/** How long an exited child's stderr may take to drain (a grandchild may hold it open). */
const STDERR_DRAIN_MS = 500

export interface SpawnInit {
  readonly command: string
  readonly args: readonly string[]
  readonly cwd: string
  readonly env: NodeJS.ProcessEnv
  /** Open fd 3 as a pipe from the child (the ONNX host's frames; its stdin carries the other way). */
  readonly fd3: boolean
  /** Each stderr line, for the log (long lines cut). */
  readonly onStderrLine?: (line: string) => void
}

export function spawnRuntime(init: SpawnInit): RuntimeProcess {
  const stdio: StdioOptions = init.fd3 ? ['pipe', 'ignore', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe']
  const child = spawn(init.command, [...init.args], {
    cwd: init.cwd,
    env: init.env,
    stdio,
    windowsHide: true,
  })
  let tail = ''
  let partial = ''
  let spawnError: Error | undefined
  let exited = false
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-STDERR_TAIL_CHARS)
    if (init.onStderrLine === undefined) return
    const lines = (partial + chunk).split('\n')
    partial = (lines.pop() ?? '').slice(-STDERR_LINE_CHARS)
    for (const line of lines) if (line.trim() !== '') init.onStderrLine(line.slice(0, STDERR_LINE_CHARS))
  })
  // A child that exits while we write to it: EPIPE on its stdin is expected, the exit tells the story.
  child.stdin?.on('error', () => {})
  const exitedPromise = new Promise<ChildExit>((resolve) => {
    child.on('error', (err) => {
      // Spawn failures (ENOENT, EACCES) come as 'error' without 'exit'. Later ones (a failed kill or
      // IPC write to a process that is gone) change nothing: its exit tells the story.
      if (child.pid === undefined && !exited) {
        spawnError = err
        exited = true
        resolve({ code: null, signal: null })
      }
    })
    // 'exit', then the end of stderr so that its tail is complete. Not 'close': it also waits for the
    // parent's own ends of the pipes, and a grandchild holding stderr open would delay it without end.
    child.once('exit', (code, signal) => {
      const done = (): void => {
        exited = true
        resolve({ code, signal })
      }
      const stderr = child.stderr
      if (stderr === null || stderr.readableEnded || stderr.destroyed) return done()
      const timer = setTimeout(done, STDERR_DRAIN_MS)
      stderr.once('close', () => {
        clearTimeout(timer)
        done()
      })
    })
  })

  return {
    child,
    pid: child.pid,
    exited: exitedPromise,
    hasExited: () => exited,
    stderrTail: () => tail.trim(),
    spawnError: () => spawnError,
    async stop(graceMs, closeInput) {
      if (exited) return
      try {
        closeInput()
      } catch {
        // already closed
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exitedPromise
      clearTimeout(timer)
    },
    kill() {
      if (!exited) child.kill('SIGKILL')
    },
  }
}

/** "exited with code 1" / "was killed by SIGKILL", and the stderr tail when there is one. */
export function describeExit(exit: ChildExit, stderrTail: string): string {
  const how = exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`
  return stderrTail === '' ? how : `${how}; stderr: ${stderrTail.slice(-1000)}`
}
