// `hopsd project create|ls|rm|member|dataset|share|quota`: projects through a node's API
// (/api/v1/projects, src/api/routes/projects.ts). Refusals are one line and exit 1 (the group runner).
import { ConfigError } from '../node/index.js'
import { API_FLAG_HELP, apiJson } from './api-client.js'
import { helpTable } from './args.js'
import { runApiCommandGroup, type ApiCommandGroup } from './command-group.js'
import { EXIT_OK, type CliIo } from './output.js'
import { runProjectCert } from './project-cert.js'
import { table } from './user.js'

export function projectHelp(): string {
  return [
    'Usage: hopsd project create NAME                              a project; you become its Data Owner',
    '       hopsd project ls [NAME] [--json]                       your projects, or one with members, datasets, usage',
    '       hopsd project rm NAME --confirm NAME                   delete it with its datasets',
    '       hopsd project member add PROJECT USER [--role ROLE]    add a member or change its role',
    '       hopsd project member rm PROJECT USER                   remove a member',
    '       hopsd project dataset create PROJECT NAME [--sensitive]',
    '       hopsd project dataset rm PROJECT NAME',
    '       hopsd project share PROJECT DATASET TARGET [--access read|write] [--remove]',
    '       hopsd project quota PROJECT [--storage-bytes N] [--file-count N] [--gpu-hours H]   (admins; -1: none)',
    '       hopsd project cert PROJECT [--out DIR] [--ttl SECONDS | --days N]   your project-user certificate (renews)',
    '       hopsd project cert PROJECT --list | --revoke SERIAL',
    '',
    helpTable([
      ['--role ROLE', 'DATA_OWNER or DATA_SCIENTIST (default DATA_SCIENTIST)'],
      ['--sensitive', 'a dataset whose bytes Data Scientists cannot read out of the project'],
      ['--access A', 'read (default) or write: how TARGET may use the shared dataset'],
      ['--remove', 'stop sharing DATASET with TARGET'],
      ['--confirm NAME', 'repeat the project name to delete it'],
      [
        '--out DIR',
        'cert: where the key (0600, made here), certificate and ca.crt go (default ~/.config/hopsd/certs)',
      ],
      ['--ttl S, --days N', 'cert: lifetime (at most the setting projectCertValidityMaxS; default 1 day)'],
      ['--list', "cert: your certificates of PROJECT (Data Owners: every member's)"],
      ['--revoke SERIAL', 'cert: revoke a certificate'],
      ['--json', 'print JSON'],
      ...API_FLAG_HELP,
      ['-h, --help', 'this help'],
    ]),
  ].join('\n')
}

export function runProject(argv: readonly string[], io: CliIo): Promise<number> {
  return runApiCommandGroup(PROJECT_COMMANDS, argv, io)
}

interface ProjectView {
  name: string
  role: string
  members: { user: string; role: string }[]
  datasets: {
    name: string
    path: string
    sensitive: boolean
    shares: { project: string; access: string }[]
  }[]
  shared: { alias: string; path: string; access: string }[]
  quota: Record<string, { used: number; quota: number }>
}

const enc = encodeURIComponent

function usage(line: string): never {
  throw new ConfigError('UNKNOWN_FLAG', `usage: hopsd project ${line}`)
}

function intFlag(values: Record<string, unknown>, name: string): number {
  const raw = values[name]
  if (raw === undefined) return -1
  if (typeof raw !== 'string' || !/^-?\d{1,18}$/.test(raw))
    throw new ConfigError('BAD_CONFIG_VALUE', `--${name}: not an integer: ${String(raw)}`)
  return Number(raw)
}

const PROJECT_COMMANDS: ApiCommandGroup = {
  name: 'project',
  help: projectHelp,
  options: {
    role: { type: 'string' },
    sensitive: { type: 'boolean' },
    access: { type: 'string' },
    remove: { type: 'boolean' },
    confirm: { type: 'string' },
    'storage-bytes': { type: 'string' },
    'file-count': { type: 'string' },
    'gpu-hours': { type: 'string' },
    out: { type: 'string' },
    ttl: { type: 'string' },
    days: { type: 'string' },
    list: { type: 'boolean' },
    revoke: { type: 'string' },
  },
  async run(sub, rest, values, target, io) {
    const json = values['json'] === true
    const print = (v: unknown, line: string) => io.out(json ? JSON.stringify(v, null, 2) : line)
    switch (sub) {
      case 'create': {
        if (rest.length !== 1) usage('create NAME')
        const p = await apiJson<ProjectView>(target, 'POST', '/api/v1/projects', { name: rest[0] })
        print(p, `created project ${p.name} (${p.datasets.map((d) => d.path).join(', ')})`)
        return EXIT_OK
      }
      case 'ls': {
        if (rest.length > 1) usage('ls [NAME] [--json]')
        if (rest.length === 0) {
          const { projects } = await apiJson<{ projects: { name: string; role: string }[] }>(
            target,
            'GET',
            '/api/v1/projects',
          )
          print(projects, table([['PROJECT', 'ROLE'], ...projects.map((p) => [p.name, p.role || '-'])]))
          return EXIT_OK
        }
        const p = await apiJson<ProjectView>(target, 'GET', `/api/v1/projects/${enc(rest[0]!)}`)
        const q = (k: string) => {
          const u = p.quota[k]!
          return `${u.used}/${u.quota === -1 ? 'unlimited' : u.quota}`
        }
        print(
          p,
          [
            `project ${p.name} (your role: ${p.role || 'admin'})`,
            table([['MEMBER', 'ROLE'], ...p.members.map((m) => [m.user, m.role])]),
            table([
              ['DATASET', 'SENSITIVE', 'SHARED WITH'],
              ...p.datasets.map((d) => [
                d.name,
                d.sensitive ? 'yes' : 'no',
                d.shares.map((s) => `${s.project}(${s.access})`).join(',') || '-',
              ]),
              ...p.shared.map((s) => [s.alias, '-', `shared in (${s.access})`]),
            ]),
            `storage ${q('storageBytes')} bytes, files ${q('fileCount')}, GPU-hours ${q('gpuHours')}`,
          ].join('\n'),
        )
        return EXIT_OK
      }
      case 'rm': {
        if (rest.length !== 1) usage('rm NAME --confirm NAME')
        const confirm = (values['confirm'] as string | undefined) ?? ''
        const r = await apiJson<{ name: string }>(
          target,
          'DELETE',
          `/api/v1/projects/${enc(rest[0]!)}?confirm=${enc(confirm)}`,
        )
        print(r, `deleted project ${r.name}`)
        return EXIT_OK
      }
      case 'member': {
        const [verb, project, user] = rest
        if (rest.length !== 3 || (verb !== 'add' && verb !== 'rm'))
          usage('member add|rm PROJECT USER [--role DATA_OWNER|DATA_SCIENTIST]')
        if (verb === 'add') {
          const role = (values['role'] as string | undefined) ?? 'DATA_SCIENTIST'
          const r = await apiJson<{ role: string; previousRole: string }>(
            target,
            'POST',
            `/api/v1/projects/${enc(project!)}/members`,
            { user, role },
          )
          print(
            r,
            r.previousRole === ''
              ? `added ${user} to ${project} as ${r.role}`
              : `${user} in ${project}: ${r.previousRole} → ${r.role}`,
          )
        } else {
          const r = await apiJson(target, 'DELETE', `/api/v1/projects/${enc(project!)}/members/${enc(user!)}`)
          print(r, `removed ${user} from ${project}`)
        }
        return EXIT_OK
      }
      case 'dataset': {
        const [verb, project, name] = rest
        if (rest.length !== 3 || (verb !== 'create' && verb !== 'rm'))
          usage('dataset create|rm PROJECT NAME [--sensitive]')
        if (verb === 'create') {
          const r = await apiJson<{ sensitive: boolean }>(
            target,
            'POST',
            `/api/v1/projects/${enc(project!)}/datasets`,
            { name, sensitive: values['sensitive'] === true },
          )
          print(r, `created dataset /Projects/${project}/${name}${r.sensitive ? ' (sensitive)' : ''}`)
        } else {
          const r = await apiJson(
            target,
            'DELETE',
            `/api/v1/projects/${enc(project!)}/datasets/${enc(name!)}`,
          )
          print(r, `deleted dataset /Projects/${project}/${name}`)
        }
        return EXIT_OK
      }
      case 'share': {
        if (rest.length !== 3) usage('share PROJECT DATASET TARGET [--access read|write] [--remove]')
        const [project, dataset, to] = rest as [string, string, string]
        const base = `/api/v1/projects/${enc(project)}/datasets/${enc(dataset)}/shares`
        if (values['remove'] === true) {
          const r = await apiJson(target, 'DELETE', `${base}/${enc(to)}`)
          print(r, `${project}/${dataset} is no longer shared with ${to}`)
        } else {
          const access = (values['access'] as string | undefined) ?? 'read'
          const r = await apiJson(target, 'POST', base, { project: to, access })
          print(
            r,
            `shared ${project}/${dataset} with ${to} (${access}): /Projects/${to}/${project}::${dataset}`,
          )
        }
        return EXIT_OK
      }
      case 'quota': {
        if (rest.length !== 1) usage('quota PROJECT [--storage-bytes N] [--file-count N] [--gpu-hours H]')
        const raw = values['gpu-hours']
        const gpuHours = raw === undefined ? -1 : Number(raw)
        if (!Number.isFinite(gpuHours))
          throw new ConfigError('BAD_CONFIG_VALUE', `--gpu-hours: not a number: ${String(raw)}`)
        const p = await apiJson<ProjectView>(target, 'PUT', `/api/v1/projects/${enc(rest[0]!)}/quota`, {
          storageBytes: intFlag(values, 'storage-bytes'),
          fileCount: intFlag(values, 'file-count'),
          gpuHours,
        })
        print(p.quota, `quotas of ${p.name} set`)
        return EXIT_OK
      }
      case 'cert':
        return runProjectCert(rest, values, target, io)
      default:
        throw new ConfigError(
          'UNKNOWN_COMMAND',
          `unknown command 'project ${sub}' (commands: create, ls, rm, member, dataset, share, quota, cert)`,
        )
    }
  },
}
