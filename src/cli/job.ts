// `hopsd job submit|ls|status|logs|kill`: GPU jobs through a node's API (POST/GET/DELETE /api/v1/jobs,
// GET /api/v1/jobs/:id/logs). `get` and `cancel` are the same as `status` and `kill`. `submit` prints the
// new job's id alone on stdout, so that `id=$(hopsd job submit ...)` is all a script needs.
import { parseArgs } from 'node:util'
import { ConfigError } from '../node/index.js'
import {
  API_FLAG_HELP,
  API_FLAGS,
  ApiError,
  apiJson,
  apiStream,
  apiTarget,
  type ApiTarget,
} from './api-client.js'
import { helpTable } from './args.js'
import { EXIT_FAILURE, EXIT_OK, processIo, reportError, type CliIo } from './output.js'
import { table } from './user.js'

export function jobHelp(): string {
  return [
    'Usage: hopsd job submit --project P --name N [--gpus G] [flags] -- COMMAND [ARGS...]   submit; prints its id',
    '       hopsd job submit --project P --name N --script PATH [flags]                    a script in the file system',
    '       hopsd job ls [--project P] [--state S] [--json]                                the jobs you may see',
    '       hopsd job status ID [--json]                                                   one job (also: get)',
    '       hopsd job logs ID [-f] [--stderr] [--rank R]                                   its output (-f: follow)',
    '       hopsd job kill ID                                                              stop it (also: cancel)',
    '',
    helpTable([
      ['--project P', 'the project the job belongs to'],
      ['--name N', 'the job name (its logs go to .../Logs/<name>/<run id>)'],
      ['--gpus G', 'GPUs per task (default 0)'],
      ['--gpu-model M', 'only GPUs of this model'],
      ['--cpus C / --memory-mib M', 'CPU cores / memory per task'],
      ['--tasks T', 'a gang of T tasks, placed all at once or not at all'],
      ['--env NAME=VALUE', 'an environment variable of the job (repeatable)'],
      ['--retries R', 'runs again after a lost worker (default 0)'],
      ['--timeout-s S', 'killed after S seconds (default: no limit)'],
      ['--zone Z', 'only workers of this zone'],
      ['--state S', 'ls: QUEUED, RUNNING, SUCCEEDED, FAILED, KILLED or LOST'],
      ['--user NAME', 'act as NAME (simple auth only: sent as user.name)'],
      ['--json', 'print JSON'],
      ...API_FLAG_HELP,
      ['-h, --help', 'this help'],
    ]),
  ].join('\n')
}

interface JobDoc {
  id: number
  project: string
  name: string
  owner: string
  state: string
  runId: string
  exitCode: number
  signal: string
  reason: string
  attempts: number
  submittedMs: number
  startedMs: number
  endedMs: number
  tasks: { rank: number; node: string; gpus: string[] }[]
  spec: { gpus: number; tasks: number }
}

const INT_FLAGS: [flag: string, field: string][] = [
  ['gpus', 'gpus'],
  ['cpus', 'cpus'],
  ['memory-mib', 'memoryMiB'],
  ['tasks', 'tasks'],
  ['retries', 'retries'],
  ['timeout-s', 'timeoutS'],
]

export async function runJob(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parse(argv)
    const [sub, ...rest] = positionals
    if (values['help'] === true || sub === undefined || sub === 'help') {
      io.out(jobHelp())
      return EXIT_OK
    }
    const target = apiTarget(values as Record<string, string | boolean | undefined>)
    const user = values['user'] as string | undefined
    const withUser = (path: string): string =>
      user === undefined
        ? path
        : `${path}${path.includes('?') ? '&' : '?'}user.name=${encodeURIComponent(user)}`
    const idOf = (): number => {
      if (rest.length !== 1 || !/^[1-9]\d{0,15}$/.test(rest[0]!))
        throw new ConfigError('UNKNOWN_FLAG', `usage: hopsd job ${sub} ID`)
      return Number(rest[0])
    }
    try {
      switch (sub) {
        case 'submit': {
          const body = submission(values, rest)
          const res = await apiJson<{ id: number }>(target, 'POST', withUser('/api/v1/jobs'), body)
          io.out(String(res.id))
          return EXIT_OK
        }
        case 'ls': {
          if (rest.length > 0)
            throw new ConfigError('UNKNOWN_FLAG', 'usage: hopsd job ls [--project P] [--state S]')
          const q = new URLSearchParams()
          if (values['project'] !== undefined) q.set('project', values['project'] as string)
          if (values['state'] !== undefined) q.set('state', (values['state'] as string).toUpperCase())
          const qs = q.size > 0 ? `?${q}` : ''
          const { jobs } = await apiJson<{ jobs: JobDoc[] }>(target, 'GET', withUser(`/api/v1/jobs${qs}`))
          if (values['json'] === true) io.out(JSON.stringify(jobs, null, 2))
          else
            io.out(
              table([
                ['ID', 'PROJECT', 'NAME', 'OWNER', 'STATE', 'GPUS', 'NODES', 'EXIT'],
                ...jobs.map((j) => [
                  String(j.id),
                  j.project,
                  j.name,
                  j.owner,
                  j.state,
                  String(j.spec.gpus * j.spec.tasks),
                  j.tasks.map((t) => short(t.node)).join(',') || '-',
                  j.endedMs > 0 ? (j.signal !== '' ? j.signal : String(j.exitCode)) : '-',
                ]),
              ]),
            )
          return EXIT_OK
        }
        case 'status':
        case 'get': {
          const j = await apiJson<JobDoc>(target, 'GET', withUser(`/api/v1/jobs/${idOf()}`))
          if (values['json'] === true) io.out(JSON.stringify(j, null, 2))
          else io.out(describe(j))
          return EXIT_OK
        }
        case 'kill':
        case 'cancel': {
          const r = await apiJson<{ id: number; state: string }>(
            target,
            'DELETE',
            withUser(`/api/v1/jobs/${idOf()}`),
          )
          io.out(`job ${r.id}: ${r.state === 'KILLED' ? 'killed' : 'stopping (SIGTERM, then SIGKILL)'}`)
          return EXIT_OK
        }
        case 'logs': {
          const id = idOf()
          const q = new URLSearchParams({ stream: values['stderr'] === true ? 'stderr' : 'stdout' })
          if (values['rank'] !== undefined) q.set('rank', intFlag('rank', values['rank'] as string))
          if (values['follow'] === true) q.set('follow', 'true')
          await printLog(target, withUser(`/api/v1/jobs/${id}/logs?${q}`), io)
          return EXIT_OK
        }
        default:
          throw new ConfigError(
            'UNKNOWN_COMMAND',
            `unknown command 'job ${sub}' (commands: submit, ls, status, logs, kill)`,
          )
      }
    } catch (err) {
      if (!(err instanceof ApiError)) throw err
      io.err(`hopsd: job ${sub}: ${err.message} [${err.code}]`)
      return EXIT_FAILURE
    }
  } catch (err) {
    return reportError(io, err)
  }
}

/** The log goes to stdout as it is, without a line added (a followed log prints while it grows). */
function printLog(target: ApiTarget, path: string, io: CliIo): Promise<void> {
  const write =
    io === processIo ? (text: string) => void process.stdout.write(text) : (text: string) => io.out(text)
  return apiStream(target, path, write)
}

function submission(values: Record<string, unknown>, argv: readonly string[]): Record<string, unknown> {
  const body: Record<string, unknown> = {}
  for (const f of ['project', 'name'] as const) {
    if (values[f] === undefined) throw new ConfigError('UNKNOWN_FLAG', `hopsd job submit needs --${f}`)
    body[f] = values[f]
  }
  body['gpus'] = 0
  for (const [flag, field] of INT_FLAGS)
    if (values[flag] !== undefined) body[field] = Number(intFlag(flag, values[flag] as string))
  if (values['gpu-model'] !== undefined) body['gpuModel'] = values['gpu-model']
  if (values['zone'] !== undefined) body['zone'] = values['zone']
  const env = (values['env'] as string[] | undefined) ?? []
  if (env.length > 0) {
    const vars: Record<string, string> = {}
    for (const kv of env) {
      const at = kv.indexOf('=')
      if (at <= 0) throw new ConfigError('BAD_CONFIG_VALUE', `--env: expected NAME=VALUE, got ${kv}`)
      vars[kv.slice(0, at)] = kv.slice(at + 1)
    }
    body['env'] = vars
  }
  if (values['script'] !== undefined) {
    if (argv.length > 0)
      throw new ConfigError('UNKNOWN_FLAG', 'give --script or a command after --, not both')
    body['script'] = values['script']
  } else {
    if (argv.length === 0)
      throw new ConfigError('UNKNOWN_FLAG', 'hopsd job submit needs a command after -- (or --script)')
    body['command'] = [...argv]
  }
  return body
}

function intFlag(flag: string, raw: string): string {
  if (!/^\d{1,9}$/.test(raw))
    throw new ConfigError('BAD_CONFIG_VALUE', `--${flag}: not a whole number: ${raw}`)
  return raw
}

function short(node: string): string {
  return node.length > 12 ? `…${node.slice(-8)}` : node
}

function describe(j: JobDoc): string {
  const when = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : '-')
  const lines = [
    `job ${j.id}  ${j.project}/${j.name}  owner ${j.owner}`,
    `state     ${j.state}${j.reason !== '' ? ` (${j.reason})` : ''}`,
    `run       ${j.runId || '-'} (attempt ${j.attempts})`,
    `submitted ${when(j.submittedMs)}  started ${when(j.startedMs)}  ended ${when(j.endedMs)}`,
  ]
  if (j.endedMs > 0) lines.push(`exit      ${j.signal !== '' ? j.signal : j.exitCode}`)
  for (const t of j.tasks) lines.push(`task ${t.rank}    ${t.node}  gpus ${t.gpus.join(',') || '-'}`)
  return lines.join('\n')
}

function parse(argv: readonly string[]) {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: {
        ...API_FLAGS,
        project: { type: 'string' },
        name: { type: 'string' },
        gpus: { type: 'string' },
        'gpu-model': { type: 'string' },
        cpus: { type: 'string' },
        'memory-mib': { type: 'string' },
        tasks: { type: 'string' },
        env: { type: 'string', multiple: true },
        retries: { type: 'string' },
        'timeout-s': { type: 'string' },
        zone: { type: 'string' },
        script: { type: 'string' },
        state: { type: 'string' },
        rank: { type: 'string' },
        stderr: { type: 'boolean' },
        follow: { type: 'boolean', short: 'f' },
        user: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    })
    return { values: values as Record<string, string | boolean | string[] | undefined>, positionals }
  } catch (err) {
    throw new ConfigError('UNKNOWN_FLAG', `${(err as Error).message.split('\n')[0]} (see hopsd job --help)`)
  }
}
