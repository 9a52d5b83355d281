/**
 * Errors of the metadata state machine. A command that cannot be applied (bad input, permission
 * denied, ...) is refused with a {@link CommandRejected}: apply() rolls the command back and answers
 * `{ ok: false, code, message }`, and the proposer rethrows the typed error of the area that owns the
 * code (src/fs maps its own codes and these). Areas' error classes extend CommandRejected so that
 * throwing them inside apply is the way to refuse a command.
 */
export const META_ERRORS = {
  MALFORMED_COMMAND: {
    httpStatus: 400,
    description: 'A log entry that does not decode as a metadata Command.',
  },
  UNKNOWN_OPERATION: {
    httpStatus: 400,
    description: 'A Command whose operation no metadata module applies.',
  },
  INVALID_SETTING: {
    httpStatus: 400,
    description: 'An unknown cluster setting, or a value out of its range.',
  },
  SUPERUSER_REQUIRED: {
    httpStatus: 403,
    description: 'The operation is reserved to admins: the superuser, the supergroup or the admin group.',
  },
  WAITERS_EXHAUSTED: { httpStatus: 503, description: 'Too many change-log waiters are open on this node.' },
  STORE_CORRUPT: {
    httpStatus: 500,
    description:
      "The replica's metadata store (<data-dir>/meta-values) is damaged: the node does not start on it.",
  },
} as const

export type MetaErrorCode = keyof typeof META_ERRORS

/** A command refused by apply(): it changed nothing. `code` is stable; branch on it, not on messages. */
export class CommandRejected extends Error {
  readonly code: string

  constructor(code: string, message: string) {
    super(message)
    this.code = code
    this.name = new.target.name
  }
}

/** A refusal with one of meta's own codes. */
export class MetaError extends CommandRejected {
  declare readonly code: MetaErrorCode

  constructor(code: MetaErrorCode, message?: string) {
    super(code, message ?? META_ERRORS[code].description)
  }
}
