/**
 * What a node without a metadata replica (a gpu-only worker) may ask of a metadata node, decided here so
 * that the node integration (src/node/cluster/sched-meta.ts) only carries bytes:
 * - the node commands a worker proposes — JobStarted and JobFinished about a task placed on it,
 *   MarkJobLost and RequeueJob about a job with a task on it (its restart settling what it no longer
 *   runs) — proposed by the metadata node as the cluster, once {@link nodeCommandProblem} found nothing;
 *   apply still checks state and attempt, as for a local proposal;
 * - reads of jobs with a task on the asking node ({@link jobVisibleToNode}): a worker learns of no other
 *   job (their commands and environments are their owners' business);
 * - a task's setup (its log folder, a credential of the job's owner): only for a task placed on the
 *   asking node in the job's current run ({@link taskSetupProblem}).
 * The asking node is the libp2p peer that opened the stream (authenticated by the transport's handshake),
 * never a name inside the request.
 */
import { protoCodec, metaProto } from '../meta/index.js'
import type { JobCommand } from './proposer.js'
import { JOB_STATE, type JobRecord } from './types.js'

import pb = metaProto.meta

/** The commands a worker without a replica may have a metadata node propose for it. */
export const REMOTE_NODE_OPS = ['jobStarted', 'jobFinished', 'markJobLost', 'requeueJob'] as const
export type RemoteNodeOp = (typeof REMOTE_NODE_OPS)[number]

const jobRecordCodec = protoCodec<JobRecord>(pb.JobRecord)

/** A job record as bytes of proto/meta.proto's JobRecord (what SchedMeta replies carry). */
export function encodeJobRecord(job: JobRecord): Uint8Array {
  return jobRecordCodec.encode(job)
}

export function decodeJobRecord(bytes: Uint8Array): JobRecord {
  return jobRecordCodec.decode(bytes)
}

/** Whether `node` runs (or ran, in the job's current run) a task of `job`: what it may read of jobs. */
export function jobVisibleToNode(job: JobRecord, node: string): boolean {
  return job.tasks.some((t) => t.node === node)
}

/** The op and job id of a remote node command, or why it is not one. */
export function remoteNodeCommand(
  cmd: JobCommand,
): { op: RemoteNodeOp; jobId: number; rank?: number } | string {
  const present = Object.keys(cmd).filter((k) => (cmd as Record<string, unknown>)[k] != null)
  const ops = present.filter((k) => (REMOTE_NODE_OPS as readonly string[]).includes(k))
  if (ops.length !== 1 || present.length !== 1)
    return `only one of ${REMOTE_NODE_OPS.join(', ')} may be proposed through a metadata node (got ${present.join(', ') || 'nothing'})`
  const op = ops[0] as RemoteNodeOp
  const body = cmd[op] as { jobId?: number | { toNumber(): number }; rank?: number }
  const jobId = Number(body.jobId ?? 0)
  if (!Number.isSafeInteger(jobId) || jobId <= 0) return `${op}: no job id`
  return op === 'jobStarted' || op === 'jobFinished' ? { op, jobId, rank: body.rank ?? 0 } : { op, jobId }
}

/**
 * Why `node` may not have `cmd` proposed for it, given the job as committed (undefined: it may). A
 * report names a task of the job placed on `node`; MarkJobLost and RequeueJob a job with a task there.
 */
export function nodeCommandProblem(
  cmd: JobCommand,
  job: JobRecord | undefined,
  node: string,
): string | undefined {
  const c = remoteNodeCommand(cmd)
  if (typeof c === 'string') return c
  if (job === undefined || job.id !== c.jobId) return `no job ${c.jobId}`
  if (c.rank !== undefined) {
    const task = job.tasks.find((t) => t.rank === c.rank)
    if (task === undefined || task.node !== node)
      return `task ${c.rank} of job ${job.id} is not placed on ${node}`
    return undefined
  }
  if (!jobVisibleToNode(job, node)) return `job ${job.id} has no task on ${node}`
  return undefined
}

/** Why the task `rank` of `job` at `attempt` may not be set up for `node` (undefined: it may). */
export function taskSetupProblem(
  job: JobRecord | undefined,
  attempt: number,
  rank: number,
  node: string,
): string | undefined {
  if (job === undefined) return 'no such job'
  if (job.state !== JOB_STATE.RUNNING || job.attempts !== attempt)
    return `job ${job.id} is not running attempt ${attempt}`
  const task = job.tasks.find((t) => t.rank === rank)
  if (task === undefined || task.node !== node) return `task ${rank} of job ${job.id} does not run on ${node}`
  return undefined
}

/** The name of the API key a task runs with (teardown revokes only a key of this name and owner). */
export function taskKeyName(job: Pick<JobRecord, 'runId'>, rank: number): string {
  return `job-${job.runId}-${rank}`
}
