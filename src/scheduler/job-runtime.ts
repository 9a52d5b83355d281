/**
 * What a gpu node runs its tasks with: the executor (real processes, see executor.ts) wrapped so that
 * every task runs as its job's project-user.
 *
 * Before a task starts, {@link TaskSetupService.setup} (a metadata node, which checks that the task is
 * placed on this node) makes the run's log folder `/Projects/<project>/Logs/<job name>/<run id>` and
 * issues a short-lived credential of the job's owner acting in the job's project. With it the worker
 * - creates the task's `stdout` and `stderr` files there and appends the output as it comes
 *   (log-sink.ts: bounded buffering, backpressure down to the process),
 * - reads a script job's script from the file system (job-files.ts) into the task's working directory,
 * - hands the credential to the process ({@link JOB_ENV}), so the program reads and writes the project's
 *   data through the API as the project-user — and nothing more.
 * When the task ends the credential is revoked ({@link TaskSetupService.teardown}); it also expires on
 * its own (a worker that dies cannot revoke).
 *
 * Gangs: rank 0 writes `stdout` and `stderr`; rank r > 0 writes `stdout.<r>` and `stderr.<r>`.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { createExecutor, type Executor, type LogSink, type LogStreamName } from './executor.js'
import type { JobCredential, JobFiles } from './job-files.js'
import { createFsLogStream } from './log-sink.js'
import { executorRunner, scriptArgv } from './task-runner.js'
import type { JobRecord } from './types.js'
import type { TaskRunner } from './worker.js'
import { realClock, sleep, type Clock } from './world.js'

/** The variables a task gets besides its GPUs and rendezvous (names the hopsd CLI reads too). */
export const JOB_ENV = {
  /** The API of the node the task runs on (`http://HOST:PORT` or `https://…`). */
  addr: 'HOPSD_ADDR',
  /** The task's API key: the job's owner acting in the job's project, revoked when the task ends. */
  key: 'HOPSD_KEY',
  /** The job's owner (under simple auth without a user record, the task authenticates as this name). */
  user: 'HOPSD_USER',
  /** With --tls: a file holding the cluster CA, to verify HOPSD_ADDR. */
  ca: 'HOPSD_CA',
  /** The node the task runs on. */
  node: 'HOPSD_NODE',
  /** The run's log folder in the file system. */
  logsDir: 'HOPSD_LOGS_DIR',
} as const

/**
 * The folder of one run's logs: `/user/<owner>/Projects/<project>/Logs/<job name>/<run id>` — the issue's
 * `/Projects/<project>/Logs/<job name>/<run id>` inside the submitter's home until projects (and their
 * `/Projects/<project>` folders with member permissions) land; then the home prefix goes.
 */
export function jobLogsDir(job: Pick<JobRecord, 'owner' | 'project' | 'name' | 'runId'>): string {
  return `/Projects/${job.project}/Logs/${job.name}/${job.runId}`
}

/** A task's log file: `stdout`/`stderr` for rank 0, `stdout.<r>`/`stderr.<r>` for rank r > 0. */
export function jobLogPath(
  job: Pick<JobRecord, 'owner' | 'project' | 'name' | 'runId'>,
  stream: LogStreamName,
  rank = 0,
): string {
  return `${jobLogsDir(job)}/${stream}${rank > 0 ? `.${rank}` : ''}`
}

/** What setting up a task gave: the credential it runs with and where its logs go. */
export interface TaskSetup {
  readonly credential: JobCredential
  /** The API key's id, revoked at the end ('' when the credential is a user name). */
  readonly keyId: string
  readonly logsDir: string
  /** When the credential expires (0: it is no key). */
  readonly expiresMs: number
}

/** The metadata side of a task's start and end (the node integration: locally or through a metadata node). */
export interface TaskSetupService {
  setup(job: JobRecord, rank: number, signal?: AbortSignal): Promise<TaskSetup>
  /** Revokes the credential; best effort (it expires anyway). */
  teardown(job: JobRecord, rank: number, setup: TaskSetup): Promise<void>
}

export interface JobRuntimeInit {
  /** This node's id (HOPSD_NODE). */
  readonly node: string
  /** Working directories: `<root>/<run id>/task-<rank>`. */
  readonly root: string
  readonly setup: TaskSetupService
  /** The file system as `credential`. */
  readonly files: (credential: JobCredential) => JobFiles
  /** HOPSD_ADDR: this node's API URL. */
  readonly apiUrl: () => string
  /** HOPSD_CA: a file with the cluster CA, when the API speaks https. */
  readonly caFile?: () => string | undefined
  readonly clock?: Clock
  /** Between SIGTERM and SIGKILL (default 10 s). */
  readonly killGraceMs?: number
  readonly logFlushBytes?: number
  readonly logFlushDelayMs?: number
  /** Output waiting per stream before the process is held back (default 1 MiB). */
  readonly logBufferBytesMax?: number
  /** Largest script read from the file system (default 16 MiB). */
  readonly scriptBytesMax?: number
  /** Tries of a task's setup before the task fails to start (default 4). */
  readonly setupAttempts?: number
  /** Failures that do not fail a task (a log stream given up, a teardown); must not throw. */
  readonly onWarning?: (message: string, err: unknown) => void
}

export interface JobRuntime {
  readonly runner: TaskRunner
  readonly executor: Executor
}

interface TaskContext {
  readonly setup: TaskSetup
  readonly files: JobFiles
}

export function createJobRuntime(init: JobRuntimeInit): JobRuntime {
  const clock = init.clock ?? realClock
  const warn = init.onWarning ?? (() => undefined)
  const contexts = new Map<string, Promise<TaskContext>>()
  const keyOf = (runId: string, rank: number): string => `${runId}/${rank}`

  const setupWithRetries = async (job: JobRecord, rank: number): Promise<TaskSetup> => {
    const attempts = Math.max(1, init.setupAttempts ?? 4)
    for (let i = 1; ; i++) {
      try {
        return await init.setup.setup(job, rank)
      } catch (err) {
        const code = (err as { code?: string }).code ?? ''
        // A refusal (the job moved on, access) will not change; the metadata group being away may.
        if (i >= attempts || code === 'JOB_STATE_CONFLICT' || code === 'JOB_ACCESS_DENIED') throw err
        await sleep(clock, 200 * 2 ** i)
      }
    }
  }

  /** Setup, then the task's two log files: once per task, whoever asks first. */
  const prepare = (job: JobRecord, rank: number): Promise<TaskContext> => {
    const key = keyOf(job.runId, rank)
    let ctx = contexts.get(key)
    if (ctx === undefined) {
      ctx = (async () => {
        const setup = await setupWithRetries(job, rank)
        const files = init.files(setup.credential)
        for (const stream of ['stdout', 'stderr'] as const)
          await files.create(`${setup.logsDir}/${stream}${rank > 0 ? `.${rank}` : ''}`)
        return { setup, files }
      })()
      contexts.set(key, ctx)
    }
    return ctx
  }

  const sink: LogSink = {
    open({ runId, rank, stream }) {
      const ctx = contexts.get(keyOf(runId, rank))
      if (ctx === undefined) throw new Error(`job runtime: task ${runId}/${rank} was not prepared`)
      let path: string | undefined
      let files: JobFiles | undefined
      return createFsLogStream({
        clock,
        flushBytes: init.logFlushBytes,
        flushDelayMs: init.logFlushDelayMs,
        bufferBytesMax: init.logBufferBytesMax,
        append: async (data) => {
          if (files === undefined) {
            const c = await ctx
            files = c.files
            path = `${c.setup.logsDir}/${stream}${rank > 0 ? `.${rank}` : ''}`
          }
          try {
            await files.append(path!, data)
          } catch (err) {
            warn(`appending to ${path} failed`, err)
            throw err
          }
        },
      })
    },
  }

  const executor = createExecutor({ root: init.root, sink, clock, killGraceMs: init.killGraceMs })
  const base = executorRunner({
    executor,
    clock,
    async resolveScript(job, rank) {
      const { files } = await prepare(job, rank)
      const data = await files.read(job.spec.script, init.scriptBytesMax ?? 16 << 20)
      const dir = join(init.root, job.runId, `task-${rank}`, '.hopsd')
      await mkdir(dir, { recursive: true, mode: 0o700 })
      const local = join(dir, basename(job.spec.script))
      await writeFile(local, data, { mode: 0o700 })
      return scriptArgv(local)
    },
    async extraEnv(job, rank) {
      const { setup } = await prepare(job, rank)
      const env: Record<string, string> = {
        [JOB_ENV.addr]: init.apiUrl(),
        [JOB_ENV.node]: init.node,
        [JOB_ENV.logsDir]: setup.logsDir,
        [JOB_ENV.user]: job.owner,
      }
      if (setup.credential.key !== undefined) env[JOB_ENV.key] = setup.credential.key
      const ca = init.caFile?.()
      if (ca !== undefined) env[JOB_ENV.ca] = ca
      return env
    },
  })

  const runner: TaskRunner = {
    start(launch, events) {
      const key = keyOf(launch.job.runId, launch.rank)
      return base.start(launch, {
        onStart: (info) => events.onStart(info),
        onExit: (exit) => {
          const ctx = contexts.get(key)
          contexts.delete(key)
          events.onExit(exit)
          void ctx
            ?.then((c) => init.setup.teardown(launch.job, launch.rank, c.setup))
            .catch((err: unknown) => warn(`teardown of task ${key} failed`, err))
        },
      })
    },
    killOrphan: (pid) => base.killOrphan?.(pid),
  }
  return { runner, executor }
}
