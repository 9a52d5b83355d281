/**
 * The logging surface the fs area needs: a subset of pino's Logger, so the daemon's logger
 * (src/node/logger.ts) fits as is and tests pass {@link silentFsLogger}.
 */
export interface FsLogger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export const silentFsLogger: FsLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
}
