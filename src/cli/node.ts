// `hopsd node ls|approve|revoke`: node admission, through a node's API (admins:
// GET /api/v1/nodes/admission, POST /api/v1/nodes/:id/approve, POST /api/v1/nodes/:id/revoke).
import { ConfigError } from '../node/index.js'
import { API_FLAG_HELP, apiJson } from './api-client.js'
import { helpTable } from './args.js'
import { runApiCommandGroup, type ApiCommandGroup } from './command-group.js'
import { EXIT_OK, type CliIo } from './output.js'
import { rolesFlag } from './token.js'
import { table } from './user.js'

export function nodeHelp(): string {
  return [
    'Usage: hopsd node ls [--pending | --state STATE] [--json]   nodes that asked to join, were admitted or revoked',
    '       hopsd node approve ID [--role ROLE[,ROLE]]            admit a node (for the roles it asked for, or these)',
    '       hopsd node revoke ID [--reason TEXT]                  revoke a node: disconnected and refused everywhere',
    '',
    helpTable([
      ['--pending', 'only nodes waiting for approval (same as --state pending)'],
      ['--state STATE', 'pending, admitted or revoked'],
      ['--role ROLE', 'approve for these roles: metadata, datanode, gpu, serving (repeat or comma-separate)'],
      ['--reason TEXT', 'why, for the record'],
      ['--json', 'print JSON'],
      ...API_FLAG_HELP,
      ['-h, --help', 'this help'],
    ]),
  ].join('\n')
}

interface NodeInfo {
  id: string
  state: string
  roles: string[]
  zone: string
  hosts: string[]
  via: string
  requestedMs: number
  revokedBy: string
  reason: string
}

export function runNode(argv: readonly string[], io: CliIo): Promise<number> {
  return runApiCommandGroup(NODE_COMMANDS, argv, io)
}

const NODE_COMMANDS: ApiCommandGroup = {
  name: 'node',
  help: nodeHelp,
  options: {
    pending: { type: 'boolean' },
    state: { type: 'string' },
    role: { type: 'string', multiple: true },
    reason: { type: 'string' },
  },
  async run(sub, rest, values, target, io) {
    const path = (id: string, what: string) => `/api/v1/nodes/${encodeURIComponent(id)}/${what}`
    switch (sub) {
      case 'ls': {
        if (rest.length > 0)
          throw new ConfigError('UNKNOWN_FLAG', 'usage: hopsd node ls [--pending] [--json]')
        const state = values['pending'] === true ? 'pending' : (values['state'] as string | undefined)
        if (state !== undefined && !['pending', 'admitted', 'revoked'].includes(state))
          throw new ConfigError(
            'BAD_CONFIG_VALUE',
            `--state: '${state}' is none of pending, admitted, revoked`,
          )
        const q = state === undefined ? '' : `?state=${encodeURIComponent(state)}`
        const { nodes } = await apiJson<{ nodes: NodeInfo[] }>(target, 'GET', `/api/v1/nodes/admission${q}`)
        if (values['json'] === true) io.out(JSON.stringify(nodes, null, 2))
        else
          io.out(
            table([
              ['NODE', 'STATE', 'ROLES', 'ZONE', 'VIA', 'HOSTS'],
              ...nodes.map((n) => [
                n.id,
                n.state,
                n.roles.join(',') || '-',
                n.zone || '-',
                n.via || '-',
                n.hosts.join(',') || '-',
              ]),
            ]),
          )
        return EXIT_OK
      }
      case 'approve': {
        if (rest.length !== 1)
          throw new ConfigError('UNKNOWN_FLAG', 'usage: hopsd node approve ID [--role ROLE]')
        const roles = rolesFlag(values['role'])
        const n = await apiJson<NodeInfo>(
          target,
          'POST',
          path(rest[0]!, 'approve'),
          roles.length > 0 ? { roles } : {},
        )
        io.out(
          values['json'] === true ? JSON.stringify(n, null, 2) : `admitted ${n.id} for ${n.roles.join(',')}`,
        )
        return EXIT_OK
      }
      case 'revoke': {
        if (rest.length !== 1)
          throw new ConfigError('UNKNOWN_FLAG', 'usage: hopsd node revoke ID [--reason TEXT]')
        const reason = values['reason'] as string | undefined
        const n = await apiJson<NodeInfo>(
          target,
          'POST',
          path(rest[0]!, 'revoke'),
          reason === undefined ? {} : { reason },
        )
        io.out(values['json'] === true ? JSON.stringify(n, null, 2) : `revoked ${n.id}`)
        return EXIT_OK
      }
      default:
        throw new ConfigError(
          'UNKNOWN_COMMAND',
          `unknown command 'node ${sub}' (commands: ls, approve, revoke)`,
        )
    }
  },
}
