/**
 * GPU jobs and the cluster's GPUs (src/scheduler), for the verified caller:
 * - `POST   /api/v1/jobs`                 {project, name, command | script, env?, gpus?, gpuModel?, cpus?,
 *                                          memoryMiB?, zone?, retries?, timeoutS?, tasks?} → 201 {id}
 * - `GET    /api/v1/jobs?project=&state=` the jobs the caller may see (its own; admins: all)
 * - `GET    /api/v1/jobs/:id`             one job (404 for a job the caller may not see)
 * - `DELETE /api/v1/jobs/:id`             kills it (SIGTERM, then SIGKILL after the grace period)
 * - `GET    /api/v1/jobs/:id/logs?stream=stdout|stderr&rank=&offset=&follow=` the run's output as text;
 *                                          `follow=true` streams until the job has ended
 * - `GET    /api/v1/gpus`                 the cluster's GPUs as this node's gossip view has them, with
 *                                          the age of each node's entry
 * The submission is validated by the scheduler's own schema (no type coercion, unknown fields refused):
 * the route's body schema only says "an object", so that fastify's coercing validator never changes it.
 */
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { FsService } from '../../fs/index.js'
import {
  JOB_STATES,
  JobService,
  isTerminal,
  jobLogPath,
  type Clock,
  type ResourceView,
} from '../../scheduler/index.js'
import { callerOf } from '../auth-hook.js'
import type { BlockReads } from './block-reads.js'
import { errorBodySchema } from '../error-mapper.js'
import type { ApiRoutes } from '../server.js'

export interface JobsRoutesDeps {
  /** The jobs service (throws UNAVAILABLE on a node that cannot serve jobs). */
  readonly jobs: () => JobService
  readonly view: ResourceView
  readonly clock: Clock
  /** The file system, for logs (undefined on a node without one). */
  readonly files: () => FsService | undefined
  /** Reads of files in blocks (a log grown past inlineThreshold); undefined without a block manager. */
  readonly blocks?: () => BlockReads | undefined
  /** Pause between reads of a followed log (default 500 ms). */
  readonly followIntervalMs?: number
}

const JOB_ID_MAX = Number.MAX_SAFE_INTEGER
/** Largest piece of a log read at once (a longer log is sent piece by piece). */
const LOG_READ_BYTES_MAX = 4 << 20

const jobSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    id: { type: 'integer' },
    project: { type: 'string' },
    name: { type: 'string' },
    owner: { type: 'string' },
    state: { type: 'string', enum: [...JOB_STATES] },
    runId: { type: 'string' },
    exitCode: { type: 'integer' },
    signal: { type: 'string' },
    reason: { type: 'string' },
  },
} as const

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'integer', minimum: 1, maximum: JOB_ID_MAX } },
} as const

interface IdParams {
  readonly id: number
}
interface ListQuery {
  readonly project?: string
  readonly state?: string
  readonly afterId?: number
  readonly limit?: number
}
interface LogsQuery {
  readonly stream?: 'stdout' | 'stderr'
  readonly rank?: number
  readonly offset?: number
  readonly follow?: boolean
}

/** Aborts when the client goes away before the answer was sent (a POST's request closes once read). */
function signalOf(reply: FastifyReply): AbortSignal {
  const abort = new AbortController()
  reply.raw.once('close', () => {
    if (!reply.raw.writableEnded) abort.abort()
  })
  return abort.signal
}

export function jobsRoutes(deps: JobsRoutesDeps): ApiRoutes {
  const followIntervalMs = deps.followIntervalMs ?? 500
  return {
    name: 'jobs',
    register(app: FastifyInstance) {
      app.post(
        '/api/v1/jobs',
        {
          schema: {
            summary: 'Submit a GPU job: committed QUEUED, placed on a worker with free GPUs',
            tags: ['jobs'],
            body: {
              type: 'object',
              description:
                '{project, name, command: [argv] | script: path, env?: {NAME: value}, gpus?, gpuModel?, cpus?, memoryMiB?, zone?, retries?, timeoutS?, tasks?}; validated by the scheduler (unknown fields refused)',
            },
            response: {
              201: { type: 'object', required: ['id'], properties: { id: { type: 'integer' } } },
              400: errorBodySchema,
              401: errorBodySchema,
              403: errorBodySchema,
              503: errorBodySchema,
            },
          },
        },
        async (req, reply) => {
          const caller = callerOf(req)
          const res = await deps
            .jobs()
            .submit(caller, req.body, { signal: signalOf(reply), credential: req.credentials })
          return reply.status(201).send(res)
        },
      )

      app.get(
        '/api/v1/jobs',
        {
          schema: {
            summary: 'The jobs the caller may see (its own; admins: every job), oldest first',
            tags: ['jobs'],
            querystring: {
              type: 'object',
              properties: {
                project: { type: 'string', maxLength: 128 },
                state: { type: 'string', enum: [...JOB_STATES] },
                afterId: { type: 'integer', minimum: 0, maximum: JOB_ID_MAX },
                limit: { type: 'integer', minimum: 1, maximum: 1000 },
              },
            },
            response: {
              200: { type: 'object', properties: { jobs: { type: 'array', items: jobSchema } } },
              400: errorBodySchema,
              401: errorBodySchema,
              503: errorBodySchema,
            },
          },
        },
        async (req) => {
          const q = req.query as ListQuery
          const jobs = await deps.jobs().list(callerOf(req), {
            project: q.project,
            state: q.state as (typeof JOB_STATES)[number] | undefined,
            afterId: q.afterId,
            limit: q.limit,
          })
          return { jobs }
        },
      )

      app.get(
        '/api/v1/jobs/:id',
        {
          schema: {
            summary: 'One job: state, placement (node and GPUs per task), exit code, times',
            tags: ['jobs'],
            params: idParams,
            response: { 200: jobSchema, 400: errorBodySchema, 401: errorBodySchema, 404: errorBodySchema },
          },
        },
        async (req) => deps.jobs().get(callerOf(req), (req.params as IdParams).id),
      )

      app.delete(
        '/api/v1/jobs/:id',
        {
          schema: {
            summary: 'Kill a job: a queued one at once, a running one with SIGTERM, then SIGKILL',
            tags: ['jobs'],
            params: idParams,
            response: {
              200: {
                type: 'object',
                properties: { id: { type: 'integer' }, state: { type: 'string' } },
              },
              400: errorBodySchema,
              401: errorBodySchema,
              403: errorBodySchema,
              404: errorBodySchema,
              409: errorBodySchema,
            },
          },
        },
        async (req, reply) =>
          deps.jobs().kill(callerOf(req), (req.params as IdParams).id, {
            signal: signalOf(reply),
            credential: req.credentials,
          }),
      )

      app.get(
        '/api/v1/jobs/:id/logs',
        {
          schema: {
            summary:
              "A job's output (its current run), read from the file system as the caller; follow=true streams until the job ends",
            tags: ['jobs'],
            params: idParams,
            querystring: {
              type: 'object',
              properties: {
                stream: { type: 'string', enum: ['stdout', 'stderr'], default: 'stdout' },
                rank: { type: 'integer', minimum: 0, maximum: 4096, default: 0 },
                offset: { type: 'integer', minimum: 0, maximum: JOB_ID_MAX, default: 0 },
                follow: { type: 'boolean', default: false },
              },
            },
            response: {
              200: { type: 'string', description: 'the log bytes' },
              400: errorBodySchema,
              401: errorBodySchema,
              404: errorBodySchema,
              503: errorBodySchema,
            },
          },
        },
        async (req, reply) => {
          const caller = callerOf(req)
          const query = req.query as LogsQuery
          const service = deps.jobs()
          let job = await service.get(caller, (req.params as IdParams).id)
          const fs = deps.files()
          if (fs === undefined) throw new Error('no file system on this node')
          const stream = query.stream ?? 'stdout'
          const rank = query.rank ?? 0
          const signal = signalOf(reply)
          const clock = deps.clock
          const pause = (): Promise<void> =>
            new Promise<void>((resolve) => clock.setTimeout(resolve, followIntervalMs))
          // Followed before its first run was placed: wait for the run (or the end of a job never placed).
          while (query.follow === true && job.runId === '' && !isTerminal(stateNumber(job.state))) {
            if (signal.aborted) return reply.send('')
            await pause()
            job = await service.get(caller, job.id)
          }
          void reply.type('text/plain; charset=utf-8')
          // No run yet: no output yet.
          if (job.runId === '') return ''
          const path = jobLogPath(job, stream, rank)
          // The logs live in the job's project (Logs dataset): a member (service.get let it see the job)
          // reads them acting in that project; an admin acting in none reads them as the superuser.
          const reader =
            caller.superuser === true && (caller.project ?? '') === ''
              ? caller
              : { ...caller, project: job.project }
          const readFrom = async (offset: number): Promise<Uint8Array> => {
            try {
              // Past inlineThreshold the log is in blocks: read from the replicas (bounded as inline).
              const blocked = await deps.blocks?.()?.open(reader, path, offset, LOG_READ_BYTES_MAX, signal)
              if (blocked !== undefined) {
                const pieces: Uint8Array[] = []
                for await (const piece of blocked.stream) pieces.push(Buffer.from(piece))
                return Buffer.concat(pieces)
              }
              return await fs.read(reader, path, { offset, length: LOG_READ_BYTES_MAX })
            } catch (err) {
              // Not made yet (queued, starting): nothing to show so far.
              if ((err as { code?: string }).code === 'FILE_NOT_FOUND') return new Uint8Array(0)
              throw err
            }
          }
          if (query.follow !== true) {
            // The whole log from `offset`, a piece at a time (no piece more than LOG_READ_BYTES_MAX).
            const first = await readFrom(query.offset ?? 0)
            if (first.length < LOG_READ_BYTES_MAX) return Buffer.from(first)
            async function* rest(): AsyncGenerator<Buffer> {
              let offset = (query.offset ?? 0) + first.length
              yield Buffer.from(first)
              for (;;) {
                if (signal.aborted) return
                const chunk = await readFrom(offset)
                if (chunk.length === 0) return
                offset += chunk.length
                yield Buffer.from(chunk)
              }
            }
            return reply.send(Readable.from(rest()))
          }
          const runId = job.runId
          async function* follow(): AsyncGenerator<Buffer> {
            let offset = query.offset ?? 0
            for (;;) {
              const chunk = await readFrom(offset)
              if (chunk.length > 0) {
                offset += chunk.length
                yield Buffer.from(chunk)
                continue
              }
              const now = await service.get(caller, job.id)
              // Ended (or moved on to another run): the last bytes were appended before the end committed.
              if (isTerminal(stateNumber(now.state)) || now.runId !== runId) {
                const rest = await readFrom(offset)
                if (rest.length > 0) yield Buffer.from(rest)
                return
              }
              if (signal.aborted) return
              await pause()
            }
          }
          return reply.send(Readable.from(follow()))
        },
      )

      gpusRoutes(deps).register(app)
    },
  }
}

export interface GpusRoutesDeps {
  readonly view: ResourceView
  readonly clock: Clock
}

/** `GET /api/v1/gpus` alone: every node serves it from its own gossip view (jobsRoutes includes it). */
export function gpusRoutes(deps: GpusRoutesDeps): ApiRoutes {
  return {
    name: 'gpus',
    register(app: FastifyInstance) {
      app.get(
        '/api/v1/gpus',
        {
          schema: {
            summary:
              "The cluster's GPU workers as this node's gossip view has them: GPUs (allocated, healthy), CPUs, memory, running jobs, and the age of each entry",
            tags: ['jobs'],
            response: {
              200: {
                type: 'object',
                properties: {
                  nodes: {
                    type: 'array',
                    items: {
                      type: 'object',
                      additionalProperties: true,
                      properties: {
                        node: { type: 'string' },
                        zone: { type: 'string' },
                        ageMs: { type: 'integer' },
                        gpus: { type: 'array', items: { type: 'object', additionalProperties: true } },
                      },
                    },
                  },
                },
              },
              401: errorBodySchema,
            },
          },
        },
        async () => {
          const now = deps.clock.now()
          const nodes = [...deps.view.all()]
            .map((e) => ({
              node: e.ad.node,
              zone: e.ad.zone,
              ageMs: Math.max(0, now - e.receivedMs),
              seq: e.ad.seq,
              gpus: e.ad.gpus.map((g) => ({ ...g })),
              gpusFree: e.freeGpus,
              cpus: e.ad.cpus,
              cpusFree: e.ad.cpusFree,
              memoryMiB: e.ad.memoryMiB,
              memoryMiBFree: e.ad.memoryMiBFree,
              runningJobs: [...e.ad.runningJobs],
            }))
            .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
          return { nodes }
        },
      )
    },
  }
}

function stateNumber(state: (typeof JOB_STATES)[number]): number {
  return JOB_STATES.indexOf(state) + 1
}
