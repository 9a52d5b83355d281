// How the CLI talks to the operator: bad input is one line on stderr, `hopsd: <message> [<CODE>]`, and
// exit code 2 — never a stack trace. Anything else that fails is a bug or a host problem: exit 1.
import { HopsError, isErrorCode } from '../errors.js'
import { isUsageError } from '../node/index.js'

export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2

export interface CliIo {
  out(line: string): void
  err(line: string): void
}

export const processIo: CliIo = {
  out: (line) => process.stdout.write(line + '\n'),
  err: (line) => process.stderr.write(line + '\n'),
}

/** Prints the error as one line and returns the exit code it deserves. */
export function reportError(io: CliIo, err: unknown): number {
  if (isUsageError(err)) {
    io.err(`hopsd: ${oneLine(err.message)} [${err.code}]`)
    return EXIT_USAGE
  }
  // An area's own error (a ConsensusError at start, say) carries a code of the error table too.
  const own = (err as { code?: unknown } | undefined)?.code
  const code =
    err instanceof HopsError
      ? ` [${err.code}]`
      : typeof own === 'string' && isErrorCode(own)
        ? ` [${own}]`
        : ''
  io.err(`hopsd: ${oneLine(err instanceof Error ? err.message : String(err))}${code}`)
  if (process.env['HOPSD_DEBUG'] && err instanceof Error && err.stack) io.err(err.stack)
  return EXIT_FAILURE
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ')
}
