/**
 * The logging surface the p2p and membership code needs: a subset of pino's Logger, so the daemon's
 * logger (src/node/logger.ts) fits as is and tests pass nothing.
 */
export interface P2PLogger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export const nullLogger: P2PLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
}
