/**
 * The worker's {@link TaskRunner} over the real {@link Executor}: a task's argv is its job's command, or,
 * for a script job, what `resolveScript` makes of it (the integration fetches the script from the file
 * system into the task's folder, as the project-user); `extraEnv` adds per-task variables (the
 * short-lived project-user credential) under the scheduler's own, which always win.
 */
import type { Executor, RunningTask } from './executor.js'
import type { JobRecord } from './types.js'
import type { TaskEvents, TaskHandle, TaskLaunch, TaskRunner } from './worker.js'
import type { Clock } from './world.js'
import { realClock } from './world.js'

export interface ExecutorRunnerInit {
  readonly executor: Executor
  readonly clock?: Clock
  /** argv for a script job (download, then e.g. ['python3', path]); without it script jobs fail to start. */
  readonly resolveScript?: (job: JobRecord, rank: number) => Promise<string[]>
  readonly extraEnv?: (
    job: JobRecord,
    rank: number,
  ) => Promise<Record<string, string>> | Record<string, string>
}

/** How a script is run by its extension when the integration has fetched it to `path`. */
export function scriptArgv(path: string): string[] {
  if (path.endsWith('.py')) return ['python3', path]
  if (path.endsWith('.sh')) return ['bash', path]
  return [path]
}

export function executorRunner(init: ExecutorRunnerInit): TaskRunner {
  const clock = init.clock ?? realClock
  return {
    start(launch: TaskLaunch, events: TaskEvents): TaskHandle {
      let task: RunningTask | undefined
      let stopReason: string | undefined
      let reported = false
      const exitOnce: TaskEvents['onExit'] = (exit) => {
        if (reported) return
        reported = true
        events.onExit(exit)
      }
      const run = async (): Promise<void> => {
        const { job, rank } = launch
        let argv: string[]
        if (job.spec.command.length > 0) argv = [...job.spec.command]
        else if (init.resolveScript !== undefined) argv = await init.resolveScript(job, rank)
        else throw new Error(`script jobs need a script resolver (${job.spec.script})`)
        const extra = (await init.extraEnv?.(job, rank)) ?? {}
        task = await init.executor.start({
          runId: job.runId,
          rank,
          argv,
          env: { ...extra, ...launch.env },
          timeoutS: job.spec.timeoutS,
        })
        events.onStart({ startedMs: task.startedMs, pid: task.pid })
        if (stopReason !== undefined) task.stop(stopReason)
        exitOnce(await task.exited)
      }
      const t0 = clock.now()
      run().catch((err: Error) => {
        const now = clock.now()
        exitOnce({
          exitCode: 127,
          signal: '',
          startedMs: t0,
          endedMs: now,
          reason: 'spawn-failed',
          message: err.message,
        })
      })
      return {
        stop(reason) {
          stopReason ??= reason
          task?.stop(reason)
        },
      }
    },
    killOrphan(pid) {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {
        // Gone already.
      }
    },
  }
}
