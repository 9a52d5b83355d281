/**
 * Running the vendor tools. Drivers call a {@link CommandRunner}, never `child_process` directly, so
 * tests can feed them captured output; {@link createSpawnRunner} is the real one.
 *
 * The runner never throws for anything the command does: every end is an {@link CommandOutcome}.
 */
import { spawn, type ChildProcess } from 'node:child_process'

export type CommandOutcome =
  /** The command ran and exited with `code` (0 is success for every tool used here). */
  | { readonly kind: 'exited'; readonly code: number; readonly stdout: string; readonly stderr: string }
  /** It was killed by a signal nobody here sent (e.g. the OOM killer). */
  | { readonly kind: 'signaled'; readonly signal: string; readonly stdout: string; readonly stderr: string }
  /** No such executable on PATH (or not executable): the tool is not installed. */
  | { readonly kind: 'missing'; readonly message: string }
  /** It ran past `timeoutMs` and was killed (a hung driver call). */
  | { readonly kind: 'timed-out'; readonly timeoutMs: number }
  /** It printed more than `outputBytesMax` on stdout or stderr and was killed. */
  | { readonly kind: 'too-large'; readonly outputBytesMax: number }
  /** Too many earlier runs are still alive (killed but not reaped, e.g. stuck in the kernel). */
  | { readonly kind: 'busy'; readonly liveChildren: number }
  /** The caller's signal aborted it. */
  | { readonly kind: 'aborted' }
  /** It could not be started for another reason. */
  | { readonly kind: 'failed'; readonly message: string }

export interface RunOptions {
  readonly timeoutMs: number
  readonly outputBytesMax: number
  readonly signal?: AbortSignal
}

/** Runs `command args` without a shell. May run concurrently with itself; never throws. */
export type CommandRunner = (
  command: string,
  args: readonly string[],
  opts: RunOptions,
) => Promise<CommandOutcome>

export interface SpawnRunnerInit {
  /** Environment of the commands (default: this process's). PATH decides which tools are found. */
  readonly env?: NodeJS.ProcessEnv
  /**
   * Runs whose process has not exited yet, killed ones included, beyond which new runs answer `busy`
   * instead of starting another process. A GPU whose driver call hangs in the kernel cannot be killed;
   * this bounds how many such processes one sampler leaves behind.
   */
  readonly liveChildrenMax?: number
}

/**
 * The real runner: spawns the command in its own process group, collects stdout and stderr up to
 * `outputBytesMax` each, and on timeout, abort or excess output kills the whole group with SIGKILL
 * (a tool's own children would otherwise keep the pipes open). The outcome of a killed run is returned
 * at once; the process counts as live until it has exited.
 */
export function createSpawnRunner(init: SpawnRunnerInit = {}): CommandRunner {
  const liveChildrenMax = init.liveChildrenMax ?? 2
  const live = new Set<ChildProcess>()
  return (command, args, opts) =>
    new Promise<CommandOutcome>((resolve) => {
      if (opts.signal?.aborted) return resolve({ kind: 'aborted' })
      if (live.size >= liveChildrenMax) return resolve({ kind: 'busy', liveChildren: live.size })
      let settled = false
      const finish = (outcome: CommandOutcome): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        opts.signal?.removeEventListener('abort', onAbort)
        resolve(outcome)
      }
      let child: ChildProcess
      try {
        child = spawn(command, [...args], {
          env: init.env ?? process.env,
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        })
      } catch (err) {
        return resolve({ kind: 'failed', message: (err as Error).message })
      }
      const killGroup = (): void => {
        if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
        try {
          process.kill(-child.pid, 'SIGKILL')
        } catch {
          child.kill('SIGKILL')
        }
      }
      live.add(child)
      const out = collector(opts.outputBytesMax)
      const err = collector(opts.outputBytesMax)
      const onData = (c: ReturnType<typeof collector>) => (chunk: Buffer) => {
        if (!c.push(chunk)) {
          killGroup()
          finish({ kind: 'too-large', outputBytesMax: opts.outputBytesMax })
        }
      }
      child.stdout!.on('data', onData(out))
      child.stderr!.on('data', onData(err))
      const onAbort = (): void => {
        killGroup()
        finish({ kind: 'aborted' })
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true })
      const timer = setTimeout(() => {
        killGroup()
        finish({ kind: 'timed-out', timeoutMs: opts.timeoutMs })
      }, opts.timeoutMs)
      child.on('error', (e: NodeJS.ErrnoException) => {
        live.delete(child)
        if (e.code === 'ENOENT' || e.code === 'EACCES')
          finish({ kind: 'missing', message: `${command}: ${e.code}` })
        else finish({ kind: 'failed', message: `${command}: ${e.message}` })
      })
      // 'close' comes after the process exited and both pipes ended: the output is complete.
      child.on('close', (code, signal) => {
        live.delete(child)
        if (signal !== null) finish({ kind: 'signaled', signal, stdout: out.text(), stderr: err.text() })
        else finish({ kind: 'exited', code: code ?? 0, stdout: out.text(), stderr: err.text() })
      })
    })
}

function collector(bytesMax: number) {
  const chunks: Buffer[] = []
  let bytes = 0
  return {
    /** false when the limit is passed. */
    push(chunk: Buffer): boolean {
      bytes += chunk.length
      if (bytes > bytesMax) return false
      chunks.push(chunk)
      return true
    },
    text: () => Buffer.concat(chunks).toString('utf8'),
  }
}

/** One line saying why a run did not give usable output, for health reasons. */
export function describeOutcome(command: string, outcome: CommandOutcome): string {
  switch (outcome.kind) {
    case 'exited':
      return `${command} exited ${outcome.code}${detail(outcome.stderr, outcome.stdout)}`
    case 'signaled':
      return `${command} was killed by ${outcome.signal}${detail(outcome.stderr, outcome.stdout)}`
    case 'missing':
      return `${command} is not installed (${outcome.message})`
    case 'timed-out':
      return `${command} did not answer within ${outcome.timeoutMs} ms and was killed`
    case 'too-large':
      return `${command} printed more than ${outcome.outputBytesMax} bytes and was killed`
    case 'busy':
      return `${command}: ${outcome.liveChildren} earlier runs have not exited yet (hung in the driver?)`
    case 'aborted':
      return `${command} was aborted`
    case 'failed':
      return `${command} could not run: ${outcome.message}`
  }
}

/** `: <first line>` of stderr, else of stdout (nvidia-smi prints its errors on stdout). */
function detail(stderr: string, stdout: string): string {
  const line = firstLine(stderr) ?? firstLine(stdout)
  return line === null ? '' : `: ${line}`
}

function firstLine(text: string): string | null {
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim()
    if (t !== '') return t.length > 300 ? `${t.slice(0, 297)}...` : t
  }
  return null
}
