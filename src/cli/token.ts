// `hopsd token create|ls|rm`: one-time join tokens for new nodes, through a node's API (admins:
// POST /api/v1/join-tokens, GET /api/v1/join-tokens, DELETE /api/v1/join-tokens/:id).
// `hopsd token create --role metadata` prints the token alone on stdout, so that
// `hopsd token create --role datanode > dn.token` is all it takes; the token is shown this once.
import { ConfigError, ROLES } from '../node/index.js'
import { API_FLAG_HELP, apiJson } from './api-client.js'
import { helpTable } from './args.js'
import { runApiCommandGroup, type ApiCommandGroup } from './command-group.js'
import { EXIT_OK, type CliIo } from './output.js'
import { table } from './user.js'

export function tokenHelp(): string {
  return [
    'Usage: hopsd token create --role ROLE[,ROLE] [--expires-s S]   print a new join token (shown once)',
    '       hopsd token ls [--json]                                  join tokens, without their secrets',
    '       hopsd token rm ID                                        delete an unused join token',
    '',
    'A node started with --join-token TOKEN (or HOPSD_JOIN_TOKEN) is admitted once, for those roles.',
    '',
    helpTable([
      [
        '--role ROLE',
        'the roles the token admits: metadata, datanode, gpu, serving (repeat or comma-separate)',
      ],
      ['--expires-s S', 'lifetime in seconds (default a day; at most 30 days)'],
      ['--json', 'print JSON'],
      ...API_FLAG_HELP,
      ['-h, --help', 'this help'],
    ]),
  ].join('\n')
}

interface TokenInfo {
  id: string
  roles: string[]
  createdBy: string
  expiresMs: number
  usedBy: string
  state: string
  token?: string
}

export function runToken(argv: readonly string[], io: CliIo): Promise<number> {
  return runApiCommandGroup(TOKEN_COMMANDS, argv, io)
}

const TOKEN_COMMANDS: ApiCommandGroup = {
  name: 'token',
  help: tokenHelp,
  options: {
    role: { type: 'string', multiple: true },
    'expires-s': { type: 'string' },
  },
  async run(sub, rest, values, target, io) {
    switch (sub) {
      case 'create': {
        const roles = rolesFlag(values['role'])
        if (roles.length === 0 || rest.length > 0)
          throw new ConfigError(
            'UNKNOWN_FLAG',
            'usage: hopsd token create --role ROLE[,ROLE] [--expires-s S]',
          )
        const body: Record<string, unknown> = { roles }
        if (values['expires-s'] !== undefined) {
          const raw = values['expires-s'] as string
          if (!/^\d{1,9}$/.test(raw))
            throw new ConfigError('BAD_CONFIG_VALUE', `--expires-s: not a number of seconds: ${raw}`)
          body['expiresS'] = Number(raw)
        }
        const t = await apiJson<TokenInfo>(target, 'POST', '/api/v1/join-tokens', body)
        io.out(values['json'] === true ? JSON.stringify(t, null, 2) : t.token!)
        return EXIT_OK
      }
      case 'ls': {
        if (rest.length > 0) throw new ConfigError('UNKNOWN_FLAG', 'usage: hopsd token ls [--json]')
        const { tokens } = await apiJson<{ tokens: TokenInfo[] }>(target, 'GET', '/api/v1/join-tokens')
        if (values['json'] === true) io.out(JSON.stringify(tokens, null, 2))
        else
          io.out(
            table([
              ['ID', 'ROLES', 'STATE', 'EXPIRES', 'USED BY', 'MADE BY'],
              ...tokens.map((t) => [
                t.id,
                t.roles.join(','),
                t.state,
                new Date(t.expiresMs).toISOString(),
                t.usedBy || '-',
                t.createdBy,
              ]),
            ]),
          )
        return EXIT_OK
      }
      case 'rm': {
        if (rest.length !== 1) throw new ConfigError('UNKNOWN_FLAG', 'usage: hopsd token rm ID')
        await apiJson(target, 'DELETE', `/api/v1/join-tokens/${encodeURIComponent(rest[0]!)}`)
        io.out(`deleted join token ${rest[0]}`)
        return EXIT_OK
      }
      default:
        throw new ConfigError('UNKNOWN_COMMAND', `unknown command 'token ${sub}' (commands: create, ls, rm)`)
    }
  },
}

/**
 * The roles of `--role` (repeated or comma-separated), checked here so that a typo is a usage error
 * (exit 2, UNKNOWN_ROLE) rather than the API's 400.
 */
export function rolesFlag(raw: unknown): string[] {
  const roles = ((raw as string[] | undefined) ?? [])
    .flatMap((r) => r.split(','))
    .map((r) => r.trim())
    .filter(Boolean)
  for (const r of roles)
    if (!(ROLES as readonly string[]).includes(r))
      throw new ConfigError('UNKNOWN_ROLE', `--role: unknown role '${r}' (roles: ${ROLES.join(',')})`)
  return [...new Set(roles)]
}
