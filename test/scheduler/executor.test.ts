// The executor with real processes: working directory, exactly the given environment, stdout/stderr
// streamed while the process runs with bounded buffering, exit codes and signals, timeouts, and stop
// (SIGTERM, then SIGKILL for a process that ignores SIGTERM) reaching the whole process group.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createExecutor, type LogSink } from '../../src/scheduler/index.js'
import { makeTempDir, removeTempDirs, waitFor } from '../helpers/index.js'

afterAll(() => removeTempDirs())

/** A sink that keeps every stream's text, and can be made slow; it logs when each write was called. */
function memorySink(opts: { writeDelayMs?: number } = {}) {
  const text = new Map<string, string>()
  const bytes = new Map<string, number>()
  const writes: { atMs: number; total: number }[] = []
  const sink: LogSink = {
    open({ runId, rank, stream }) {
      const key = `${runId}/${rank}/${stream}`
      text.set(key, '')
      bytes.set(key, 0)
      return {
        write(chunk) {
          text.set(key, text.get(key)! + Buffer.from(chunk).toString('utf8'))
          bytes.set(key, bytes.get(key)! + chunk.byteLength)
          writes.push({ atMs: Date.now(), total: bytes.get(key)! })
          if (opts.writeDelayMs === undefined) return
          return new Promise<void>((resolve) => setTimeout(resolve, opts.writeDelayMs))
        },
        close() {
          text.set(key + ':closed', 'yes')
        },
      }
    },
  }
  return { sink, text, bytes, writes }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('executor', () => {
  it('runs in its own working directory with exactly the given environment; streams stdout and stderr', async () => {
    const root = makeTempDir('exec-')
    const { sink, text } = memorySink()
    process.env.HOPSD_TEST_SECRET = 'must-not-leak'
    process.env.CUDA_VISIBLE_DEVICES = 'GPU-of-the-daemon'
    const ex = createExecutor({ root, sink })
    const task = await ex.start({
      runId: '7-1',
      rank: 0,
      argv: [
        'sh',
        '-c',
        'pwd; echo "CVD=$CUDA_VISIBLE_DEVICES"; echo "ROCR=${ROCR_VISIBLE_DEVICES-unset}"; echo "S=${HOPSD_TEST_SECRET-unset}"; echo oops >&2; exit 3',
      ],
      env: { CUDA_VISIBLE_DEVICES: 'GPU-a,GPU-b', EXTRA: 'x' },
      timeoutS: 0,
    })
    const exit = await task.exited
    delete process.env.HOPSD_TEST_SECRET
    delete process.env.CUDA_VISIBLE_DEVICES
    expect(exit).toMatchObject({ exitCode: 3, signal: '', reason: 'exited' })
    expect(exit.endedMs).toBeGreaterThanOrEqual(exit.startedMs)
    const workDir = join(root, '7-1', 'task-0')
    expect(task.workDir).toBe(workDir)
    expect(statSync(workDir).mode & 0o777).toBe(0o700)
    expect(text.get('7-1/0/stdout')).toBe(`${workDir}\nCVD=GPU-a,GPU-b\nROCR=unset\nS=unset\n`)
    expect(text.get('7-1/0/stderr')).toBe('oops\n')
    expect(text.get('7-1/0/stdout:closed')).toBe('yes')
  })

  it('streams output while the process runs, not only at the end', async () => {
    const root = makeTempDir('exec-')
    const { sink, text } = memorySink()
    const marker = join(root, 'go')
    const ex = createExecutor({ root, sink })
    const task = await ex.start({
      runId: '8-1',
      rank: 0,
      argv: ['sh', '-c', `echo first; while [ ! -e ${marker} ]; do sleep 0.02; done; echo second`],
      env: {},
      timeoutS: 0,
    })
    await waitFor(() => text.get('8-1/0/stdout') === 'first\n', { what: 'the first line while it runs' })
    writeFileSync(marker, '')
    const exit = await task.exited
    expect(exit.exitCode).toBe(0)
    expect(text.get('8-1/0/stdout')).toBe('first\nsecond\n')
  })

  it('bounds buffering: a slow sink pauses the pipe (the process blocks) instead of memory growing', async () => {
    const root = makeTempDir('exec-')
    const { sink, bytes, writes } = memorySink({ writeDelayMs: 2 })
    const bufferMax = 128 * 1024
    const ex = createExecutor({ root, sink, logBufferBytesMax: bufferMax })
    const total = 4 * 1024 * 1024
    const task = await ex.start({
      runId: '9-1',
      rank: 0,
      argv: ['head', '-c', String(total), '/dev/zero'],
      env: {},
      timeoutS: 0,
    })
    const exit = await task.exited
    expect(exit.exitCode).toBe(0)
    expect(bytes.get('9-1/0/stdout')).toBe(total)
    // When the process could exit, everything but the bound, a pipe's worth (64 KiB) and one read
    // (64 KiB) had been handed to the sink: the rest was never buffered. Without the pause, the process
    // exits at once and megabytes wait in memory.
    const handedBeforeExit = Math.max(0, ...writes.filter((w) => w.atMs <= exit.endedMs).map((w) => w.total))
    expect(handedBeforeExit).toBeGreaterThanOrEqual(total - bufferMax - 3 * 64 * 1024)
  })

  it('reports exit codes, signals and spawn failures', async () => {
    const root = makeTempDir('exec-')
    const { sink } = memorySink()
    const ex = createExecutor({ root, sink })
    const ok = await (await ex.start({ runId: '1-1', rank: 0, argv: ['true'], env: {}, timeoutS: 0 })).exited
    expect(ok).toMatchObject({ exitCode: 0, signal: '', reason: 'exited' })
    const killed = await (
      await ex.start({ runId: '2-1', rank: 0, argv: ['sh', '-c', 'kill -9 $$'], env: {}, timeoutS: 0 })
    ).exited
    expect(killed).toMatchObject({ exitCode: 137, signal: 'SIGKILL', reason: 'exited' })
    const missing = await (
      await ex.start({ runId: '3-1', rank: 0, argv: ['/nonexistent/prog'], env: {}, timeoutS: 0 })
    ).exited
    expect(missing).toMatchObject({ exitCode: 127, reason: 'spawn-failed' })
    expect(missing.message).toMatch(/ENOENT/)
  })

  it('enforces timeoutS: SIGTERM to the group, reported as a timeout', async () => {
    const root = makeTempDir('exec-')
    const { sink } = memorySink()
    const ex = createExecutor({ root, sink })
    const task = await ex.start({ runId: '4-1', rank: 0, argv: ['sleep', '30'], env: {}, timeoutS: 1 })
    const exit = await task.exited
    expect(exit).toMatchObject({
      exitCode: 143,
      signal: 'SIGTERM',
      reason: 'timeout',
      message: 'timed out after 1 s',
    })
    expect(exit.endedMs - exit.startedMs).toBeGreaterThanOrEqual(1000)
    expect(exit.endedMs - exit.startedMs).toBeLessThan(10_000)
  })

  it('stop: SIGTERM, then SIGKILL after the grace for a process group that ignores SIGTERM; children die too', async () => {
    const root = makeTempDir('exec-')
    const { sink, text } = memorySink()
    const ex = createExecutor({ root, sink, killGraceMs: 300 })
    const pidFile = join(root, 'child.pid')
    const task = await ex.start({
      runId: '5-1',
      rank: 0,
      // The shell and the child it starts both ignore SIGTERM (an ignored signal is inherited).
      argv: [
        'sh',
        '-c',
        `trap '' TERM; sleep 60 & echo $! > ${pidFile}; echo ready; wait; while true; do sleep 1; done`,
      ],
      env: {},
      timeoutS: 0,
    })
    await waitFor(() => text.get('5-1/0/stdout') === 'ready\n' && existsSync(pidFile), {
      what: 'the task to start its child',
    })
    const child = Number(readFileSync(pidFile, 'utf8'))
    expect(alive(child)).toBe(true)
    const t0 = Date.now()
    task.stop('killed by alice')
    const exit = await task.exited
    expect(exit).toMatchObject({
      exitCode: 137,
      signal: 'SIGKILL',
      reason: 'stopped',
      message: 'killed by alice',
    })
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250) // SIGTERM did nothing; SIGKILL came after the grace
    await waitFor(() => !alive(child), { what: 'the child to die with the group' })
  })

  it('a process that exits normally takes what it left in its group with it', async () => {
    const root = makeTempDir('exec-')
    const { sink } = memorySink()
    const ex = createExecutor({ root, sink })
    const pidFile = join(root, 'bg.pid')
    const task = await ex.start({
      runId: '6-1',
      rank: 0,
      argv: ['sh', '-c', `sleep 60 > /dev/null 2>&1 & echo $! > ${pidFile}; exit 0`],
      env: {},
      timeoutS: 0,
    })
    expect((await task.exited).exitCode).toBe(0)
    const bg = Number(readFileSync(pidFile, 'utf8'))
    await waitFor(() => !alive(bg), { what: 'the background process to be killed' })
    expect(ex.running()).toEqual([])
  })
})
