// `hopsd key create|ls|revoke`: API keys, through a node's API (POST /api/v1/keys, GET /api/v1/keys,
// DELETE /api/v1/keys/:id). `hopsd key create --user NAME` prints the key alone on stdout, so that
// `hopsd key create --user alice > alice.key` is all it takes; the key is shown this once.
import { ConfigError } from '../node/index.js'
import { API_FLAG_HELP, apiJson } from './api-client.js'
import { helpTable } from './args.js'
import { runApiCommandGroup, type ApiCommandGroup } from './command-group.js'
import { EXIT_OK, type CliIo } from './output.js'
import { table } from './user.js'

export function keyHelp(): string {
  return [
    'Usage: hopsd key create --user NAME [--name N] [--expires-s S] [--project P]   print a new key (shown once)',
    '       hopsd key ls [--user NAME] [--json]                                      keys, without their secrets',
    '       hopsd key revoke ID                                                      revoke a key, at once everywhere',
    '',
    helpTable([
      ['--user NAME', 'the user the key acts as (admins: anyone; users: themselves)'],
      ['--name N', 'a label for the key'],
      ['--expires-s S', 'lifetime in seconds (default 90 days; 0: never expires)'],
      ['--project P', 'the project the key acts in (the user must be a member of it)'],
      ['--json', 'print JSON'],
      ...API_FLAG_HELP,
      ['-h, --help', 'this help'],
    ]),
  ].join('\n')
}

interface KeyInfo {
  id: string
  name: string
  user: string
  project: string
  expiresMs: number
  revokedMs: number
  state: string
  key?: string
}

export function runKey(argv: readonly string[], io: CliIo): Promise<number> {
  return runApiCommandGroup(KEY_COMMANDS, argv, io)
}

const KEY_COMMANDS: ApiCommandGroup = {
  name: 'key',
  help: keyHelp,
  options: {
    user: { type: 'string' },
    name: { type: 'string' },
    'expires-s': { type: 'string' },
    project: { type: 'string' },
  },
  async run(sub, rest, values, target, io) {
    switch (sub) {
      case 'create': {
        const user = values['user'] as string | undefined
        if (user === undefined || rest.length > 0)
          throw new ConfigError(
            'UNKNOWN_FLAG',
            'usage: hopsd key create --user NAME [--name N] [--expires-s S]',
          )
        const body: Record<string, unknown> = { user }
        if (values['name'] !== undefined) body['name'] = values['name']
        if (values['project'] !== undefined) body['project'] = values['project']
        if (values['expires-s'] !== undefined) {
          const raw = values['expires-s'] as string
          if (!/^\d{1,12}$/.test(raw))
            throw new ConfigError('BAD_CONFIG_VALUE', `--expires-s: not a number of seconds: ${raw}`)
          body['expiresS'] = Number(raw)
        }
        const k = await apiJson<KeyInfo>(target, 'POST', '/api/v1/keys', body)
        io.out(values['json'] === true ? JSON.stringify(k, null, 2) : k.key!)
        return EXIT_OK
      }
      case 'ls': {
        if (rest.length > 0)
          throw new ConfigError('UNKNOWN_FLAG', 'usage: hopsd key ls [--user NAME] [--json]')
        const q = values['user'] === undefined ? '' : `?user=${encodeURIComponent(values['user'] as string)}`
        const { keys } = await apiJson<{ keys: KeyInfo[] }>(target, 'GET', `/api/v1/keys${q}`)
        if (values['json'] === true) io.out(JSON.stringify(keys, null, 2))
        else {
          const when = (ms: number) => (ms === 0 ? 'never' : new Date(ms).toISOString())
          io.out(
            table([
              ['ID', 'USER', 'NAME', 'STATE', 'EXPIRES'],
              ...keys.map((k) => [k.id, k.user, k.name || '-', k.state, when(k.expiresMs)]),
            ]),
          )
        }
        return EXIT_OK
      }
      case 'revoke': {
        if (rest.length !== 1) throw new ConfigError('UNKNOWN_FLAG', 'usage: hopsd key revoke ID')
        const k = await apiJson<KeyInfo>(target, 'DELETE', `/api/v1/keys/${encodeURIComponent(rest[0]!)}`)
        io.out(`revoked key ${k.id} of ${k.user}`)
        return EXIT_OK
      }
      default:
        throw new ConfigError(
          'UNKNOWN_COMMAND',
          `unknown command 'key ${sub}' (commands: create, ls, revoke)`,
        )
    }
  },
}
