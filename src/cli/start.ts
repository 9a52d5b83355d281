// `hopsd start`: parse flags, merge with the config file and HOPSD_* environment, start the daemon, and
// stop it gracefully on SIGTERM/SIGINT (exit 0; exit 1 if the 10 s shutdown deadline passes). A node
// whose Raft group failed stops by itself and exits 1, for its supervisor to restart it.
import {
  CONFIG_FILE_ENV,
  CONFIG_KEYS,
  createDaemon,
  envName,
  resolveConfig,
  tuneV8ForDaemon,
  type Daemon,
  type NodeConfig,
} from '../node/index.js'
import { helpTable, parseFlags } from './args.js'
import { EXIT_FAILURE, EXIT_OK, reportError, type CliIo } from './output.js'

// Switches (valueName BOOL, e.g. --tls) are bare flags on the command line; `--no-tls` turns one off.
const isSwitch = (k: (typeof CONFIG_KEYS)[number]): boolean => k.valueName === 'BOOL'
const options = {
  ...Object.fromEntries(
    CONFIG_KEYS.flatMap((k): [string, { type: 'string' | 'boolean' }][] =>
      isSwitch(k)
        ? [
            [k.flag, { type: 'boolean' as const }],
            [`no-${k.flag}`, { type: 'boolean' as const }],
          ]
        : [[k.flag, { type: 'string' as const }]],
    ),
  ),
  config: { type: 'string' as const },
  help: { type: 'boolean' as const, short: 'h' },
}

export function startHelp(): string {
  return [
    'Usage: hopsd start [flags]',
    '',
    'Starts a node. Every flag can also be set in the config file (same key, or camelCase) or in the',
    'environment (HOPSD_ + the flag in upper snake case); flags win over the file, the file over the',
    'environment.',
    '',
    'Flags:',
    helpTable([
      ...CONFIG_KEYS.map((k): [string, string] => [
        isSwitch(k) ? `--${k.flag}` : `--${k.flag} ${k.valueName}`,
        `${k.description} (default ${k.defaultText}; env ${envName(k.flag)})`,
      ]),
      ['--config FILE', `YAML or JSON file with the keys above (env ${CONFIG_FILE_ENV})`],
      ['-h, --help', 'this help'],
    ]),
  ].join('\n')
}

/** Parses the flags into a validated config (throws ConfigError). Exported for tests. */
export function parseStartArgs(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): NodeConfig | 'help' {
  const values = parseFlags('start', args, options)
  if (values['help'] === true) return 'help'
  const flags: Record<string, string | undefined> = {}
  for (const [k, v] of Object.entries(values)) {
    if (typeof v === 'string') flags[k] = v
    else if (k !== 'help' && v === true) {
      if (k.startsWith('no-')) flags[k.slice(3)] = 'false'
      else flags[k] = 'true'
    }
  }
  return resolveConfig({ flags, env, cwd })
}

export async function runStart(args: readonly string[], io: CliIo): Promise<number> {
  let daemon: Daemon
  try {
    const config = parseStartArgs(args, process.env, process.cwd())
    if (config === 'help') {
      io.out(startHelp())
      return EXIT_OK
    }
    tuneV8ForDaemon()
    daemon = createDaemon({ config })
  } catch (err) {
    return reportError(io, err)
  }

  // Installed before start, so a signal during startup also stops cleanly.
  let stopping: Promise<number> | undefined
  const exitCode = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping !== undefined) {
        io.err(`hopsd: ${signal} again: exiting without waiting for shutdown`)
        process.exit(EXIT_FAILURE)
      }
      stopping = daemon.stop().then(
        () => (daemon.failure === undefined ? EXIT_OK : EXIT_FAILURE),
        (err: unknown) => reportError(io, err),
      )
      void stopping.then(resolve)
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  })

  // A fatal failure (the Raft group stopped): the daemon stops by itself; say why on stderr, exit 1.
  const failed = daemon.failed.then((f) => {
    io.err(`hopsd: ${f.message} [${f.code}]`)
    return EXIT_FAILURE
  })
  try {
    await daemon.start()
  } catch (err) {
    // A signal during startup aborts the start: that is a clean stop, not a failure.
    if (stopping !== undefined) return Promise.race([exitCode, failed])
    if (daemon.failure !== undefined) return failed
    return reportError(io, err)
  }
  return Promise.race([exitCode, failed])
}
