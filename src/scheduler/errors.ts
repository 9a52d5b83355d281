import { CommandRejected } from '../meta/index.js'

/**
 * Errors of the GPU scheduler: one row per stable code (HTTP status, meaning), joined into the daemon's
 * table in src/errors.ts. {@link SchedError} extends meta's CommandRejected, so the jobs module refuses a
 * command by throwing one inside apply (the command is rolled back and changes nothing).
 */
export const SCHED_ERRORS = {
  INVALID_JOB_SPEC: {
    httpStatus: 400,
    description:
      'A job specification that does not match the schema: an unknown field, no command or script, negative or non-integer GPUs, a reserved environment variable, a value out of range.',
  },
  JOB_TOO_LARGE: {
    httpStatus: 400,
    description:
      'The job asks for more GPUs, CPUs or memory per task (or more tasks) than any node of the cluster has: it could never run, so it is refused instead of queued.',
  },
  JOB_NOT_FOUND: { httpStatus: 404, description: 'No job with this id.' },
  JOB_STATE_CONFLICT: {
    httpStatus: 409,
    description:
      'The job is not in the state the operation moves it from (placed twice, a report about an older run, a kill of a finished job).',
  },
  GPU_CONFLICT: {
    httpStatus: 409,
    description: 'A placement names a GPU that is bound to another running job on that node.',
  },
  QUOTA_EXHAUSTED: {
    httpStatus: 403,
    description: "The project's GPU-hour quota is used up: its jobs stay queued and new ones are refused.",
  },
  JOB_ACCESS_DENIED: {
    httpStatus: 403,
    description:
      "The caller may not act on this job or project: submitting needs membership of the job's project, killing is for its submitter, the project's Data Owners and admins.",
  },
  RESERVATION_REFUSED: {
    httpStatus: 409,
    description:
      'A worker refused to reserve or bind GPUs (already taken, unhealthy, reservation expired): the placer retries elsewhere.',
  },
  NO_CAPACITY: {
    httpStatus: 503,
    description: 'No worker in the view can take the job now: it waits in the queue until resources free up.',
  },
} as const

export type SchedErrorCode = keyof typeof SCHED_ERRORS

/** An operational failure of the scheduler; `code` is stable, branch on it (never on messages). */
export class SchedError extends CommandRejected {
  declare readonly code: SchedErrorCode

  constructor(code: SchedErrorCode, message?: string) {
    super(code, message ?? SCHED_ERRORS[code].description)
  }
}

export function isSchedError(err: unknown, code?: SchedErrorCode): err is SchedError {
  return err instanceof SchedError && (code === undefined || err.code === code)
}

/**
 * What a scheduler transport rejects with. The codes are the p2p layer's (src/node/p2p/errors.ts) on
 * purpose: the in-memory transport and the libp2p one fail alike, and the error table knows them.
 */
export type TransportErrorCode = 'PEER_UNREACHABLE' | 'REQUEST_TIMEOUT' | 'REQUEST_ABORTED'

export class TransportError extends Error {
  readonly code: TransportErrorCode

  constructor(code: TransportErrorCode, message: string) {
    super(message)
    this.code = code
    this.name = 'TransportError'
  }
}
