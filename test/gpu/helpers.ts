// Shared by the GPU tests: the captured tool output (fixtures/, see its README), a runner that answers
// from it, stand-in executables that print it from real processes, and a virtual clock.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { CommandOutcome, CommandRunner } from '../../src/gpu/index.js'

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures')

export type Tool = 'nvidia-smi' | 'rocm-smi' | 'amd-smi'

/** Which fixture file set a command line reads (see fixtures/README.md). */
export function invocationName(args: readonly string[]): string {
  const first = args[0] ?? ''
  if (first === '-L') return 'list'
  if (first.startsWith('--query-gpu=')) return 'query'
  if (first === 'static' || first === 'metric') return first
  return 'json'
}

/** The outcome a fixture records for one command (`NAME.stdout`, `.stderr`, `.status`). */
export function fixtureOutcome(dir: string, name: string): CommandOutcome {
  const read = (ext: string): string | undefined =>
    existsSync(join(dir, `${name}.${ext}`)) ? readFileSync(join(dir, `${name}.${ext}`), 'utf8') : undefined
  const stdout = read('stdout')
  const stderr = read('stderr')
  if (stdout === undefined && stderr === undefined)
    throw new Error(`fixture ${dir} has no ${name}.stdout or .stderr`)
  return {
    kind: 'exited',
    code: Number(read('status')?.trim() ?? '0'),
    stdout: stdout ?? '',
    stderr: stderr ?? '',
  }
}

export interface Call {
  readonly command: string
  readonly args: readonly string[]
}

/**
 * A runner answering from fixtures: `tools` maps a tool to its fixture directory (relative to
 * fixtures/), a function returning one (to change the host's state between readings), or an outcome
 * such as `{ kind: 'missing' }`. Tools not listed are missing. Every call is recorded.
 */
export function fixtureRunner(
  tools: Partial<Record<Tool, string | (() => string | CommandOutcome) | CommandOutcome>>,
): CommandRunner & { calls: Call[] } {
  const calls: Call[] = []
  const runner = (async (command: string, args: readonly string[]) => {
    calls.push({ command, args })
    const entry = tools[command as Tool]
    const state = typeof entry === 'function' ? entry() : entry
    if (state === undefined) return { kind: 'missing', message: `${command}: ENOENT` }
    if (typeof state !== 'string') return state
    return fixtureOutcome(join(FIXTURES, state), invocationName(args))
  }) as unknown as CommandRunner & { calls: Call[] }
  runner.calls = calls
  return runner
}

/**
 * Writes an executable `tool` into `binDir` that prints the fixture named in `stateFile` (a path
 * relative to fixtures/, or absolute) for the command line it gets, exits with the recorded status,
 * and logs its argv to `binDir/calls.log`. A `NAME.hang` file in the fixture makes it start a child
 * `sleep 600` and wait; both pids go to `binDir/hang.pids`.
 */
export function writeStandIn(binDir: string, tool: Tool, stateFile: string): void {
  const script = `#!/bin/sh
state=$(cat '${stateFile}')
case "$state" in /*) dir="$state" ;; *) dir='${FIXTURES}'/"$state" ;; esac
case "$1" in
  -L) name=list ;;
  --query-gpu=*) name=query ;;
  static|metric) name=$1 ;;
  *) name=json ;;
esac
echo "$(basename "$0") $*" >> '${join(binDir, 'calls.log')}'
if [ -f "$dir/$name.hang" ]; then
  echo $$ > '${join(binDir, 'hang.pids')}'
  sleep 600 &
  echo $! >> '${join(binDir, 'hang.pids')}'
  wait
fi
if [ -f "$dir/$name.stdout" ]; then cat "$dir/$name.stdout"; fi
if [ -f "$dir/$name.stderr" ]; then cat "$dir/$name.stderr" >&2; fi
if [ -f "$dir/$name.status" ]; then exit "$(cat "$dir/$name.status")"; fi
exit 0
`
  const path = join(binDir, tool)
  writeFileSync(path, script)
  chmodSync(path, 0o755)
}

/** A virtual clock: timers run only when the test advances time. */
export class FakeClock {
  private t = 0
  private seq = 0
  private readonly timers = new Map<number, { at: number; fn: () => void }>()

  now = (): number => this.t
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.seq
    this.timers.set(id, { at: this.t + ms, fn })
    return id
  }
  clearTimeout = (handle: unknown): void => {
    this.timers.delete(handle as number)
  }
  /** Timers waiting. */
  get pending(): number {
    return this.timers.size
  }
  /** Moves time forward by ms, running every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.t + ms
    for (;;) {
      const next = [...this.timers.entries()]
        .filter(([, x]) => x.at <= end)
        .sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0]
      if (next === undefined) break
      this.timers.delete(next[0])
      this.t = next[1].at
      next[1].fn()
    }
    this.t = end
  }
}
