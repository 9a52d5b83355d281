/**
 * The scheduler's node <-> metadata node protocol (proto/sched.proto `SchedMeta*`, on
 * {@link SCHED_META_PROTOCOL}): a gpu node without a metadata replica runs its worker through a metadata
 * node — it proposes its reports (JobStarted, JobFinished, MarkJobLost, RequeueJob), reads the jobs of its
 * tasks linearizably, and has its tasks set up (log folder, credential) and torn down (credential
 * revoked).
 *
 * The metadata node decides what the asking node — the libp2p peer that opened the stream, never a name
 * in the request — may do by the scheduler's rules (src/scheduler/remote.ts): only reports about tasks
 * placed on it, only reads of jobs with a task on it, only setups of its own tasks in the current run,
 * only revocations of its tasks' own keys. Node commands are then proposed as the cluster, as a local
 * worker's are; apply still checks state and attempt.
 *
 * Not served: `MetaQueuedRequest` (a placer without a replica): such a node forwards the jobs API to a
 * metadata node, which places what it receives (sched-module.ts).
 */
import { HopsError } from '../../errors.js'
import { metaProto } from '../../meta/index.js'
import { hopsd } from '../../proto/sched.js'
import {
  SCHED_ERRORS,
  SchedError,
  decodeJobRecord,
  encodeJobRecord,
  errorFromResult,
  isSchedError,
  jobVisibleToNode,
  nodeCommandProblem,
  taskKeyName,
  taskSetupProblem,
  type JobCommand,
  type JobProposer,
  type SchedErrorCode,
  type JobRecord,
  type JobsModule,
  type TaskSetup,
  type TaskSetupService,
} from '../../scheduler/index.js'
import type { Logger } from '../logger.js'
import { handleRequests, type P2PHost } from '../p2p/index.js'
import { metadataAsker } from './meta-ask.js'
import type { MetadataNode } from './metadata-module.js'

import pb = hopsd.sched
import mpb = metaProto.meta

export const SCHED_META_PROTOCOL = '/hopsd/sched-meta/1.0.0'
/** Largest request or reply: a lookup of every job a worker runs (records of a few KiB each). */
const SCHED_META_FRAME_BYTES_MAX = 4 << 20
/** Requests in flight per connection (one worker's reports, lookups and setups). */
const SCHED_META_INFLIGHT_MAX = 64
/** A setup proposes twice (folder, key) after a barrier: room for a leader change. */
const SCHED_META_TIMEOUT_MS = 15_000
/** Jobs one lookup may name (a worker's bound tasks are far fewer). */
export const SCHED_META_LOOKUP_MAX = 256

/** What the metadata node serves the protocol with. */
export interface SchedMetaServerInit {
  readonly host: () => P2PHost
  readonly local: MetadataNode
  /** Proposes node commands as the cluster. */
  readonly propose: JobProposer
  /** Sets up and tears down a task placed on `node` (this replica's file system and keys). */
  readonly setupFor: (node: string) => TaskSetupService
  readonly logger: Logger
}

/** Registers the handler; resolves with its removal. */
export async function serveSchedMeta(init: SchedMetaServerInit): Promise<() => Promise<void>> {
  const { local } = init
  const jobs = (): JobsModule => local.stateMachine.module<JobsModule>('jobs')
  const barrier = (signal: AbortSignal): Promise<void> => local.group.readBarrier({ signal })

  const handle = async (from: string, body: Uint8Array, signal: AbortSignal): Promise<Uint8Array> => {
    let req: pb.SchedMetaRequest
    try {
      req = pb.SchedMetaRequest.decode(body)
    } catch {
      throw new SchedError('INVALID_JOB_SPEC', 'the scheduler request does not decode')
    }
    switch (req.op) {
      case 'propose': {
        let cmd: JobCommand
        try {
          const c = mpb.Command.decode(req.propose!.command ?? new Uint8Array())
          const op = c.op
          if (op === undefined) throw new Error('no op')
          // Only the operation travels on: time and identity are this node's to set.
          cmd = { [op]: (c as unknown as Record<string, unknown>)[op] } as JobCommand
        } catch {
          return reply({ propose: { ok: false, code: 'JOB_ACCESS_DENIED', message: 'no command' } })
        }
        await barrier(signal)
        const id = jobIdOf(cmd)
        const problem = nodeCommandProblem(cmd, id === undefined ? undefined : jobs().get(id), from)
        if (problem !== undefined)
          return reply({ propose: { ok: false, code: 'JOB_ACCESS_DENIED', message: problem } })
        try {
          const value = await init.propose(cmd, { signal })
          return reply({ propose: { ok: true, valueJson: JSON.stringify(value ?? null) } })
        } catch (err) {
          // A refusal answers; anything else (no leader, a timeout) fails the request: the worker retries.
          if (isSchedError(err))
            return reply({ propose: { ok: false, code: err.code, message: err.message } })
          throw err
        }
      }
      case 'lookup': {
        const ids = (req.lookup!.jobIds ?? []).map(Number)
        if (ids.length > SCHED_META_LOOKUP_MAX)
          throw new HopsError('INVALID_ARGUMENT', `at most ${SCHED_META_LOOKUP_MAX} jobs per lookup`)
        await barrier(signal)
        const found = ids
          .map((id) => jobs().get(id))
          .filter((j): j is JobRecord => j !== undefined && jobVisibleToNode(j, from))
        return reply({ jobs: { jobs: found.map(encodeJobRecord) } })
      }
      case 'running': {
        await barrier(signal)
        return reply({ jobs: { jobs: jobs().runningOn(from).map(encodeJobRecord) } })
      }
      case 'setup': {
        const s = req.setup!
        await barrier(signal)
        const job = jobs().get(Number(s.jobId))
        const problem = taskSetupProblem(job, s.attempt ?? 0, s.rank ?? 0, from)
        if (problem !== undefined) throw new SchedError('JOB_STATE_CONFLICT', problem)
        const out = await init.setupFor(from).setup(job!, s.rank ?? 0, signal)
        return reply({
          setup: {
            key: out.credential.key ?? '',
            keyId: out.keyId,
            userName: out.credential.userName ?? '',
            logsDir: out.logsDir,
            expiresMs: out.expiresMs,
          },
        })
      }
      case 'teardown': {
        const t = req.teardown!
        await barrier(signal)
        const job = jobs().get(Number(t.jobId))
        const rank = t.rank ?? 0
        const keyId = t.keyId ?? ''
        if (job === undefined || !job.tasks.some((x) => x.rank === rank && x.node === from))
          throw new SchedError(
            'JOB_ACCESS_DENIED',
            `task ${rank} of job ${Number(t.jobId)} is not on ${from}`,
          )
        // Only the key made for this task (by its name and owner): never another key of the owner.
        const key = keyId === '' ? undefined : local.auth.key(keyId)
        if (
          keyId !== '' &&
          (key === undefined || key.user !== job.owner || key.name !== taskKeyName(job, rank))
        )
          throw new SchedError(
            'JOB_ACCESS_DENIED',
            `key ${keyId} is not the key of task ${rank} of job ${job.id}`,
          )
        if (key !== undefined && key.revokedMs === 0)
          await init.setupFor(from).teardown(job, rank, {
            credential: {},
            keyId,
            logsDir: '',
            expiresMs: 0,
          })
        return reply({ teardown: { revoked: key !== undefined } })
      }
      default:
        throw new SchedError('JOB_ACCESS_DENIED', `scheduler request ${req.op ?? '(none)'} is not served`)
    }
  }

  return handleRequests(init.host(), SCHED_META_PROTOCOL, handle, {
    frameBytesMax: SCHED_META_FRAME_BYTES_MAX,
    inflightMax: SCHED_META_INFLIGHT_MAX,
    timeoutMs: SCHED_META_TIMEOUT_MS,
    logger: init.logger,
  })
}

function reply(r: pb.SchedMetaReply.$Properties): Uint8Array {
  return pb.SchedMetaReply.encode(r).finish()
}

function jobIdOf(cmd: JobCommand): number | undefined {
  for (const v of Object.values(cmd)) {
    const id = Number((v as { jobId?: unknown } | null)?.jobId ?? 0)
    if (Number.isSafeInteger(id) && id > 0) return id
  }
  return undefined
}

/** The worker's side: what a gpu node without a replica asks metadata nodes. */
export interface SchedMetaClient {
  /** Proposes a node command through a metadata node (rejects with the refusal's typed error). */
  readonly propose: JobProposer
  /** Linearizable reads of jobs with a task on this node (undefined for others, and missing ones). */
  lookup(ids: readonly number[], signal?: AbortSignal): Promise<JobRecord[]>
  /** The running jobs with a task on this node. */
  running(signal?: AbortSignal): Promise<JobRecord[]>
  readonly setup: TaskSetupService
}

export interface SchedMetaClientInit {
  readonly host: () => P2PHost
  /** Live metadata nodes, best first (the cluster client's). */
  readonly targets: () => readonly { id: string }[]
}

export function schedMetaClient(init: SchedMetaClientInit): SchedMetaClient {
  /** Asks each metadata node in turn until one answers; a handler's refusal ends the tries. */
  const send = metadataAsker({
    host: init.host,
    targets: init.targets,
    protocol: SCHED_META_PROTOCOL,
    timeoutMs: SCHED_META_TIMEOUT_MS + 2_000,
    frameBytesMax: SCHED_META_FRAME_BYTES_MAX,
    // The scheduler's own refusals would be the same on every metadata node.
    refusal: (code, message) =>
      Object.hasOwn(SCHED_ERRORS, code) ? new SchedError(code as SchedErrorCode, message) : undefined,
  })
  const ask = async (r: pb.SchedMetaRequest.$Properties, signal?: AbortSignal): Promise<pb.SchedMetaReply> =>
    pb.SchedMetaReply.decode(await send(pb.SchedMetaRequest.encode(r).finish(), signal))
  const jobsOf = (r: pb.SchedMetaReply): JobRecord[] => (r.jobs?.jobs ?? []).map((b) => decodeJobRecord(b))

  return {
    async propose(cmd, opts) {
      const command = mpb.Command.encode(cmd as mpb.Command.$Properties).finish()
      const r = await ask({ propose: { command } }, opts?.signal)
      const p = r.propose
      if (p == null) throw new HopsError('UNAVAILABLE', 'the metadata node answered something else')
      if (!p.ok) throw errorFromResult(p.code ?? '', p.message ?? '')
      return JSON.parse(p.valueJson || 'null') as unknown
    },
    async lookup(ids, signal) {
      if (ids.length === 0) return []
      const out: JobRecord[] = []
      for (let i = 0; i < ids.length; i += SCHED_META_LOOKUP_MAX)
        out.push(
          ...jobsOf(await ask({ lookup: { jobIds: ids.slice(i, i + SCHED_META_LOOKUP_MAX) } }, signal)),
        )
      return out
    },
    async running(signal) {
      return jobsOf(await ask({ running: {} }, signal))
    },
    setup: {
      async setup(job, rank, signal): Promise<TaskSetup> {
        const r = await ask({ setup: { jobId: job.id, attempt: job.attempts, rank } }, signal)
        const s = r.setup
        if (s == null) throw new HopsError('UNAVAILABLE', 'the metadata node answered something else')
        return {
          // Without a key (simple auth) the task acts in its job's project by name.
          credential: s.key ? { key: s.key } : { userName: s.userName ?? job.owner, project: job.project },
          keyId: s.keyId ?? '',
          logsDir: s.logsDir ?? '',
          expiresMs: Number(s.expiresMs ?? 0),
        }
      },
      async teardown(job, rank, setup) {
        if (setup.keyId === '') return
        await ask({ teardown: { jobId: job.id, attempt: job.attempts, rank, keyId: setup.keyId } })
      },
    },
  }
}
