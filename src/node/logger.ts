// JSON-lines logs (pino): one object per line with time, level, msg and the node's id and zone.
import { pino, type DestinationStream, type Logger } from 'pino'

export type { Logger }

export interface LoggerInit {
  /** pino level name; HOPSD_LOG_LEVEL overrides the default 'info'. */
  readonly level?: string
  /** Where lines go; stdout by default (synchronous, so a crash loses no line). */
  readonly destination?: DestinationStream
}

export function createLogger(init: LoggerInit = {}): Logger {
  return pino(
    {
      level: init.level ?? process.env['HOPSD_LOG_LEVEL'] ?? 'info',
      timestamp: pino.stdTimeFunctions.isoTime,
      base: { pid: process.pid },
      formatters: { level: (label) => ({ level: label }) },
    },
    init.destination ?? pino.destination({ fd: 1, sync: true }),
  )
}

/** A logger that drops everything (tests, benchmarks of the bare path). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
