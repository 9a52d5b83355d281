// Errors of the daemon's configuration and startup. Each carries a stable code from src/errors.ts; the
// CLI prints `hopsd: <message> [<CODE>]` on one stderr line and exits 2 on any of them.
import { HopsError, type ErrorCode } from '../errors.js'

/** Bad input from a flag, an environment variable or the config file (the message names which). */
export class ConfigError extends HopsError {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options)
  }
}

/** Something outside the config stops the node from starting: port taken, data dir unusable or locked. */
export class StartupError extends HopsError {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options)
  }
}

/** Codes that mean "the operator gave bad input or the host is not ready": the CLI exits 2, no stack. */
export function isUsageError(err: unknown): err is ConfigError | StartupError {
  return err instanceof ConfigError || err instanceof StartupError
}
