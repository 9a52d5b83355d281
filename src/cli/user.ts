// `hopsd user add|ls|rm`: users of the cluster (admins), through a node's API
// (POST /api/v1/users, GET /api/v1/users, DELETE /api/v1/users/:name). A new user gets /user/NAME.
import { ConfigError } from '../node/index.js'
import { API_FLAG_HELP, apiJson } from './api-client.js'
import { helpTable } from './args.js'
import { runApiCommandGroup, type ApiCommandGroup } from './command-group.js'
import { EXIT_OK, type CliIo } from './output.js'

export function userHelp(): string {
  return [
    'Usage: hopsd user add NAME [--groups G1,G2]   add a user (admins); it gets /user/NAME',
    '       hopsd user ls [--json]                 list users (admins)',
    '       hopsd user rm NAME                     remove a user with its keys and tokens (admins)',
    '',
    helpTable([
      ['--groups LIST', 'the groups of a new user, comma-separated (admin makes it an admin)'],
      ['--json', 'print JSON'],
      ...API_FLAG_HELP,
      ['-h, --help', 'this help'],
    ]),
  ].join('\n')
}

interface User {
  name: string
  groups: string[]
  disabled: boolean
  createdMs: number
  home?: string
}

export function runUser(argv: readonly string[], io: CliIo): Promise<number> {
  return runApiCommandGroup(USER_COMMANDS, argv, io)
}

const USER_COMMANDS: ApiCommandGroup = {
  name: 'user',
  help: userHelp,
  options: {
    groups: { type: 'string' },
  },
  async run(sub, rest, values, target, io) {
    const one = (what: string): string => {
      if (rest.length !== 1) throw new ConfigError('UNKNOWN_FLAG', `usage: hopsd user ${sub} ${what}`)
      return rest[0]!
    }
    switch (sub) {
      case 'add': {
        const name = one('NAME')
        const groupsRaw = values['groups'] as string | undefined
        const groups =
          groupsRaw === undefined
            ? []
            : groupsRaw
                .split(',')
                .map((g) => g.trim())
                .filter((g) => g !== '')
        const u = await apiJson<User>(target, 'POST', '/api/v1/users', { name, groups })
        io.out(
          values['json'] === true
            ? JSON.stringify(u, null, 2)
            : `added user ${u.name} (groups: ${u.groups.join(',') || '-'}; home ${u.home})`,
        )
        return EXIT_OK
      }
      case 'ls': {
        if (rest.length > 0) throw new ConfigError('UNKNOWN_FLAG', 'usage: hopsd user ls [--json]')
        const { users } = await apiJson<{ users: User[] }>(target, 'GET', '/api/v1/users')
        if (values['json'] === true) io.out(JSON.stringify(users, null, 2))
        else {
          io.out(
            table([
              ['NAME', 'GROUPS', 'STATE', 'CREATED'],
              ...users.map((u) => [
                u.name,
                u.groups.join(',') || '-',
                u.disabled ? 'disabled' : 'active',
                new Date(u.createdMs).toISOString(),
              ]),
            ]),
          )
        }
        return EXIT_OK
      }
      case 'rm': {
        const name = one('NAME')
        const r = await apiJson<{ keysRemoved: number; tokensRemoved: number }>(
          target,
          'DELETE',
          `/api/v1/users/${encodeURIComponent(name)}`,
        )
        io.out(`removed user ${name} (${r.keysRemoved} key(s), ${r.tokensRemoved} token(s))`)
        return EXIT_OK
      }
      default:
        throw new ConfigError('UNKNOWN_COMMAND', `unknown command 'user ${sub}' (commands: add, ls, rm)`)
    }
  },
}

export function table(rows: readonly string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}
