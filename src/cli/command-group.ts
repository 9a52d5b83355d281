// The shape every `hopsd <group> <sub>` command that talks to a node's API shares (user, key, token,
// node): parse the flags strictly (the API flags, --json and --help included), print the help, find
// the node, run the subcommand; an API refusal is one line on stderr and exit 1, anything else goes
// through reportError. Each group only says its flags and what its subcommands do.
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util'
import { ConfigError } from '../node/index.js'
import { API_FLAGS, ApiError, apiTarget, type ApiTarget } from './api-client.js'
import { EXIT_FAILURE, EXIT_OK, reportError, type CliIo } from './output.js'

/** Parsed flags: strings, booleans, or lists for flags declared `multiple`. */
export type FlagValues = Record<string, string | boolean | string[] | undefined>

export interface ApiCommandGroup {
  /** The command word (`key`, `user`, …), used in messages: `hopsd: key revoke: … [CODE]`. */
  readonly name: string
  readonly help: () => string
  /** The group's own flags, beside the API flags, `--json` and `--help`. */
  readonly options: ParseArgsOptionsConfig
  /** Runs subcommand `sub` with its positional arguments against the node at `target`. */
  run(sub: string, rest: readonly string[], values: FlagValues, target: ApiTarget, io: CliIo): Promise<number>
}

/**
 * Runs `hopsd <group.name> ARGV`.
 * @example
 *   runApiCommandGroup({ name: 'key', help: keyHelp, options: { user: { type: 'string' } }, run }, argv, io)
 */
export async function runApiCommandGroup(
  group: ApiCommandGroup,
  argv: readonly string[],
  io: CliIo,
): Promise<number> {
  try {
    const { values, positionals } = parseGroupArgs(group, argv)
    const [sub, ...rest] = positionals
    if (values['help'] === true || sub === undefined || sub === 'help') {
      io.out(group.help())
      return EXIT_OK
    }
    const target = apiTarget(values as Record<string, string | boolean | undefined>)
    try {
      return await group.run(sub, rest, values, target, io)
    } catch (err) {
      if (!(err instanceof ApiError)) throw err
      io.err(`hopsd: ${group.name} ${sub}: ${err.message} [${err.code}]`)
      return EXIT_FAILURE
    }
  } catch (err) {
    return reportError(io, err)
  }
}

function parseGroupArgs(
  group: ApiCommandGroup,
  argv: readonly string[],
): { values: FlagValues; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: {
        ...API_FLAGS,
        ...group.options,
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    })
    return { values: values as FlagValues, positionals }
  } catch (err) {
    throw new ConfigError(
      'UNKNOWN_FLAG',
      `${(err as Error).message.split('\n')[0]} (see hopsd ${group.name} --help)`,
    )
  }
}
