// Flag parsing shared by the subcommands: node:util parseArgs in strict mode, with its errors turned
// into typed ConfigErrors (one line, exit 2).
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { ConfigError } from '../node/index.js'

type Options = NonNullable<ParseArgsConfig['options']>

export function parseFlags<O extends Options>(
  command: string,
  args: readonly string[],
  options: O,
): Record<string, string | boolean | undefined> {
  try {
    const { values } = parseArgs({ args: [...args], options, strict: true, allowPositionals: false })
    return values as Record<string, string | boolean | undefined>
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const msg = e.message ?? String(err)
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const flag = /'([^']+)'/.exec(msg)?.[1] ?? msg
      throw new ConfigError(
        'UNKNOWN_FLAG',
        `unknown flag ${flag} for 'hopsd ${command}' (see hopsd ${command} --help)`,
      )
    }
    if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const arg = /'([^']+)'/.exec(msg)?.[1] ?? msg
      throw new ConfigError(
        'UNKNOWN_FLAG',
        `unexpected argument '${arg}' for 'hopsd ${command}' (see hopsd ${command} --help)`,
      )
    }
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const flag = /'(--?[A-Za-z0-9-]+)/.exec(msg)?.[1] ?? ''
      throw new ConfigError('BAD_CONFIG_VALUE', `flag ${flag} needs a value`.replace('  ', ' '))
    }
    throw new ConfigError('UNKNOWN_FLAG', msg.split('\n')[0] ?? msg)
  }
}

/** Right-pads flag names for help text. */
export function helpTable(rows: readonly [string, string][]): string {
  const width = Math.max(...rows.map(([a]) => a.length)) + 2
  return rows.map(([a, b]) => `  ${a.padEnd(width)}${b}`).join('\n')
}
