/**
 * Operational errors of the consensus area: one class, a stable `code` per row of the table below.
 * Callers (src/meta, src/api) branch on `code`, never on messages. A broken invariant is not one of
 * these: it is an assertion failure (AssertionError) and means a bug.
 */
export const CONSENSUS_ERRORS = {
  NOT_LEADER: { message: 'this node is not the leader', httpStatus: 421 },
  NO_LEADER: { message: 'the group has no known leader', httpStatus: 503 },
  PROPOSAL_DROPPED: { message: 'the proposal was dropped and not committed', httpStatus: 503 },
  TIMEOUT: { message: 'the operation did not complete before its deadline', httpStatus: 504 },
  ABORTED: { message: 'the operation was aborted by its caller', httpStatus: 499 },
  STOPPED: { message: 'the raft group is stopped', httpStatus: 503 },
  CONF_CHANGE_IN_PROGRESS: { message: 'another membership change is in progress', httpStatus: 409 },
  CONF_CHANGE_INVALID: {
    message: 'the membership change is not valid in the current configuration',
    httpStatus: 400,
  },
  TRANSFER_IN_PROGRESS: { message: 'a leadership transfer is in progress', httpStatus: 409 },
  TRANSFER_FAILED: { message: 'the leadership transfer did not complete', httpStatus: 503 },
  ALREADY_BOOTSTRAPPED: {
    message: 'the group already has state and cannot be bootstrapped again',
    httpStatus: 409,
  },
  PROPOSAL_TOO_LARGE: { message: 'the command exceeds maxBatchBytes', httpStatus: 413 },
  QUEUE_FULL: { message: 'too many proposals are waiting', httpStatus: 503 },
  SESSION_EXPIRED: {
    message: 'the session sequence number is older than the retained results',
    httpStatus: 409,
  },
  STORAGE_FAILED: { message: 'the raft log storage failed; the node stopped', httpStatus: 500 },
  APPLY_FAILED: {
    message:
      'the state machine failed to apply committed entries (a bug, or its store failed); the node stopped',
    httpStatus: 500,
  },
  STATE_MISMATCH: {
    message:
      "the state machine's durable store is ahead of the raft log it came from (a store from another node or data directory)",
    httpStatus: 500,
  },
  INVALID_CONFIG: { message: 'invalid raft configuration', httpStatus: 500 },
  SNAPSHOT_CORRUPT: {
    message: 'a snapshot failed its checksum (a corrupted file or transfer) and is not used',
    httpStatus: 500,
  },
} as const

export type ConsensusErrorCode = keyof typeof CONSENSUS_ERRORS

export class ConsensusError extends Error {
  override readonly name = 'ConsensusError'
  readonly code: ConsensusErrorCode
  /** For NOT_LEADER / NO_LEADER: the leader this node knows of ('' = none). */
  readonly leaderHint: string

  constructor(code: ConsensusErrorCode, detail?: string, opts?: { leaderHint?: string; cause?: unknown }) {
    super(detail ? `${CONSENSUS_ERRORS[code].message}: ${detail}` : CONSENSUS_ERRORS[code].message, {
      cause: opts?.cause,
    })
    this.code = code
    this.leaderHint = opts?.leaderHint ?? ''
  }
}

export function isConsensusError(err: unknown, code?: ConsensusErrorCode): err is ConsensusError {
  return err instanceof ConsensusError && (code === undefined || err.code === code)
}
