// `hopsd model register|ls|show|rm` and `hopsd deploy create|ls|show|update|rm`: the model registry and
// deployments through a node's API (/api/v1/models, /api/v1/deployments). `--user NAME` acts as NAME
// under simple auth (sent as user.name), as `hopsd job` does.
import { ConfigError } from '../node/index.js'
import { createReadStream, createWriteStream, mkdirSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { API_FLAG_HELP, apiBinary, apiJson, type ApiTarget } from './api-client.js'
import { helpTable } from './args.js'
import { runApiCommandGroup, type ApiCommandGroup, type FlagValues } from './command-group.js'
import { EXIT_OK, type CliIo } from './output.js'
import { table } from './user.js'

export function modelHelp(): string {
  return [
    'Usage: hopsd model register --project P --name N --version V --framework F [--dataset PATH] [--program PATH]',
    '                            [--description D] [--metric NAME=VALUE]... [--model-file F] [-- PREDICTOR ARGV...]',
    '       hopsd model ls --project P [--name N] | hopsd model ls --dataset PATH   model versions',
    '       hopsd model show PROJECT NAME VERSION                                  one version, lineage, deployments',
    '       hopsd model rm PROJECT NAME VERSION [--keep-files]                     forget it (and delete its files)',
    '       hopsd model download PROJECT NAME VERSION [--out DIR]                  its files, into DIR (default .)',
    '',
    'Without --file the version directory /Projects/P/Models/N/V must be in the file system first (hopsd fs put);',
    'with --file F register uploads F into it and registers the version in one step (undone if refused).',
    '',
    helpTable([
      [
        '--framework F',
        'onnx or subprocess (served); sklearn, tensorflow, pytorch, xgboost, other (registered only)',
      ],
      ['--dataset PATH', 'the training dataset (lineage)'],
      ['--program PATH', 'the training program (lineage)'],
      ['--metric NAME=VALUE', 'a metric of the version (repeatable)'],
      ['--model-file F', 'onnx: the model file in the version directory (default model.onnx)'],
      ['--file F', 'register: upload this local file into the version directory first (one step)'],
      ['--out DIR', 'download: where the files go (default the current directory)'],
      ['--user NAME', 'act as NAME (simple auth only: sent as user.name)'],
      ['--json', 'print JSON'],
      ...API_FLAG_HELP,
      ['-h, --help', 'this help'],
    ]),
  ].join('\n')
}

export function deployHelp(): string {
  return [
    'Usage: hopsd deploy create --name D --project P --model N --version V [--replicas MIN[:MAX]] [--cpus C] [--memory-mib M]',
    '                           [--log-sample-rate R]',
    '       hopsd deploy ls [--project P] [--json]               deployments and their replicas',
    '       hopsd deploy show D [--json]                         one deployment: replicas, nodes, zones, states',
    '       hopsd deploy update D [--version V] [--replicas MIN[:MAX]] [--log-sample-rate R]   a rolling update',
    '       hopsd deploy rm D                                    stop its replicas',
    '       hopsd deploy key create D [--name LABEL]             an inference key for D (Data Owners; shown once)',
    '       hopsd deploy key ls D                                its inference keys',
    '       hopsd deploy key revoke D ID                         revoke one',
    '',
    "Inference: POST /v2/models/D/infer on any node (KServe Open Inference Protocol v2), with a member's",
    'credential or an inference key of D (Authorization: Bearer hik.…).',
    '',
    helpTable([
      ['--replicas MIN[:MAX]', 'replica bounds (default 1)'],
      [
        '--log-sample-rate R',
        'log this share of requests (0..1; default 0, off) to /Projects/P/Logs/serving/D',
      ],
      ['--name LABEL', 'key create: a label for the key'],
      ['--user NAME', 'act as NAME (simple auth only: sent as user.name)'],
      ['--json', 'print JSON'],
      ...API_FLAG_HELP,
      ['-h, --help', 'this help'],
    ]),
  ].join('\n')
}

export function runModel(argv: readonly string[], io: CliIo): Promise<number> {
  return runApiCommandGroup(MODEL_COMMANDS, argv, io)
}

export function runDeploy(argv: readonly string[], io: CliIo): Promise<number> {
  return runApiCommandGroup(DEPLOY_COMMANDS, argv, io)
}

function usage(text: string): ConfigError {
  return new ConfigError('UNKNOWN_FLAG', `usage: ${text}`)
}

function as(values: FlagValues, path: string): string {
  const user = values['user'] as string | undefined
  return user === undefined
    ? path
    : `${path}${path.includes('?') ? '&' : '?'}user.name=${encodeURIComponent(user)}`
}

function str(values: FlagValues, k: string): string | undefined {
  return values[k] as string | undefined
}

function print(io: CliIo, values: FlagValues, value: unknown, text: () => string): void {
  io.out(values['json'] === true ? JSON.stringify(value, null, 2) : text())
}

interface ModelInfo {
  project: string
  name: string
  version: string
  framework: string
  creator: string
  createdMs: number
  trainingDataset: string
  program: string
  jobId: number
  description: string
  metrics: { name: string; value: number }[]
  deployments: string[]
  path: string
}

const MODEL_COMMANDS: ApiCommandGroup = {
  name: 'model',
  help: modelHelp,
  options: {
    project: { type: 'string' },
    name: { type: 'string' },
    version: { type: 'string' },
    framework: { type: 'string' },
    dataset: { type: 'string' },
    program: { type: 'string' },
    description: { type: 'string' },
    metric: { type: 'string', multiple: true },
    'model-file': { type: 'string' },
    'keep-files': { type: 'boolean' },
    file: { type: 'string' },
    out: { type: 'string' },
    user: { type: 'string' },
  },
  async run(sub, rest, values, target: ApiTarget, io) {
    switch (sub) {
      case 'download': {
        if (rest.length !== 3) throw usage('hopsd model download PROJECT NAME VERSION [--out DIR]')
        const base = `/api/v1/models/${rest.map(encodeURIComponent).join('/')}/files`
        const { files } = await apiJson<{ files: { path: string; length: number }[] }>(
          target,
          'GET',
          as(values, base),
        )
        const out = str(values, 'out') ?? '.'
        for (const f of files) {
          const local = join(out, ...f.path.split('/'))
          mkdirSync(dirname(local), { recursive: true })
          const path = `${base}/${f.path.split('/').map(encodeURIComponent).join('/')}`
          await apiBinary(target, 'GET', as(values, path), { sink: createWriteStream(local) })
          io.out(`${local} (${f.length} bytes)`)
        }
        return EXIT_OK
      }
      case 'register': {
        const body: Record<string, unknown> = {}
        for (const k of ['project', 'name', 'version', 'framework'] as const) {
          const v = str(values, k)
          if (v === undefined)
            throw usage('hopsd model register --project P --name N --version V --framework F')
          body[k] = v
        }
        if (str(values, 'dataset') !== undefined) body['trainingDataset'] = str(values, 'dataset')
        if (str(values, 'program') !== undefined) body['program'] = str(values, 'program')
        if (str(values, 'description') !== undefined) body['description'] = str(values, 'description')
        if (str(values, 'model-file') !== undefined) body['modelFile'] = str(values, 'model-file')
        const metrics: Record<string, number> = {}
        for (const m of (values['metric'] as string[] | undefined) ?? []) {
          const at = m.indexOf('=')
          const value = Number(m.slice(at + 1))
          if (at <= 0 || m.slice(at + 1).trim() === '' || !Number.isFinite(value))
            throw new ConfigError('BAD_CONFIG_VALUE', `--metric: NAME=NUMBER, not ${m}`)
          metrics[m.slice(0, at)] = value
        }
        if (Object.keys(metrics).length > 0) body['metrics'] = metrics
        if (rest.length > 0) body['command'] = [...rest]
        const file = str(values, 'file')
        if (file !== undefined) {
          const { project, name, version, ...spec } = body
          const dir = [project, name, version].map((x) => encodeURIComponent(String(x))).join('/')
          const path = `/api/v1/models/${dir}/files/${encodeURIComponent(basename(file))}`
          const m = await apiBinary<ModelInfo>(target, 'PUT', as(values, path), {
            headers: { 'x-hopsd-model': JSON.stringify(spec) },
            body: createReadStream(file),
          })
          print(
            io,
            values,
            m,
            () => `uploaded and registered ${m.project}/${m.name} version ${m.version} (${m.path})`,
          )
          return EXIT_OK
        }
        const m = await apiJson<ModelInfo>(target, 'POST', as(values, '/api/v1/models'), body)
        print(io, values, m, () => `registered ${m.project}/${m.name} version ${m.version} (${m.path})`)
        return EXIT_OK
      }
      case 'ls': {
        const q = new URLSearchParams()
        for (const [flag, param] of [
          ['project', 'project'],
          ['name', 'name'],
          ['dataset', 'dataset'],
        ] as const)
          if (str(values, flag) !== undefined) q.set(param, str(values, flag)!)
        if (rest.length > 0 || (q.get('project') === null && q.get('dataset') === null))
          throw usage('hopsd model ls --project P [--name N] | hopsd model ls --dataset PATH')
        const { models } = await apiJson<{ models: ModelInfo[] }>(
          target,
          'GET',
          as(values, `/api/v1/models?${q}`),
        )
        print(io, values, models, () =>
          table([
            ['PROJECT', 'NAME', 'VERSION', 'FRAMEWORK', 'CREATOR', 'DATASET', 'DEPLOYED'],
            ...models.map((m) => [
              m.project,
              m.name,
              m.version,
              m.framework,
              m.creator,
              m.trainingDataset || '-',
              m.deployments.join(',') || '-',
            ]),
          ]),
        )
        return EXIT_OK
      }
      case 'show': {
        if (rest.length !== 3) throw usage('hopsd model show PROJECT NAME VERSION')
        const path = `/api/v1/models/${rest.map(encodeURIComponent).join('/')}`
        const m = await apiJson<ModelInfo>(target, 'GET', as(values, path))
        print(io, values, m, () =>
          [
            `model       ${m.project}/${m.name} version ${m.version}`,
            `framework   ${m.framework}`,
            `files       ${m.path}`,
            `creator     ${m.creator} at ${new Date(m.createdMs).toISOString()}`,
            `dataset     ${m.trainingDataset || '-'}`,
            `program     ${m.program || '-'}`,
            `job         ${m.jobId || '-'}`,
            `metrics     ${m.metrics.map((x) => `${x.name}=${x.value}`).join(' ') || '-'}`,
            `deployments ${m.deployments.join(', ') || '-'}`,
            ...(m.description ? [`description ${m.description}`] : []),
          ].join('\n'),
        )
        return EXIT_OK
      }
      case 'rm': {
        if (rest.length !== 3) throw usage('hopsd model rm PROJECT NAME VERSION [--keep-files]')
        const keep = values['keep-files'] === true ? '?keepFiles=true' : ''
        const path = `/api/v1/models/${rest.map(encodeURIComponent).join('/')}${keep}`
        const r = await apiJson<{ filesDeleted: boolean }>(target, 'DELETE', as(values, path))
        io.out(`removed ${rest.join('/')}${r.filesDeleted ? ' and its files' : ''}`)
        return EXIT_OK
      }
      default:
        throw new ConfigError(
          'UNKNOWN_COMMAND',
          `unknown command 'model ${sub}' (commands: register, ls, show, rm, download)`,
        )
    }
  },
}

interface DeploymentInfo {
  name: string
  project: string
  model: string
  version: string
  state: string
  replicas: { min: number; max: number; wanted: number; ready: number }
  logging?: { sampleRate: number }
  instances: {
    id: string
    node: string
    zone: string
    version: string
    state: string
    error: string
    restarts: number
  }[]
}

function replicaBounds(raw: string): { min: number; max: number } {
  const m = /^(\d{1,2})(?::(\d{1,2}))?$/.exec(raw)
  if (m === null) throw new ConfigError('BAD_CONFIG_VALUE', `--replicas: MIN or MIN:MAX, not ${raw}`)
  const min = Number(m[1])
  return { min, max: m[2] === undefined ? min : Number(m[2]) }
}

function numberFlag(values: FlagValues, k: string): number | undefined {
  const raw = str(values, k)
  if (raw === undefined) return undefined
  const n = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(n))
    throw new ConfigError('BAD_CONFIG_VALUE', `--${k}: not a number: ${raw}`)
  return n
}

function deploymentText(d: DeploymentInfo): string {
  return [
    `deployment ${d.name} (${d.project}): ${d.model} version ${d.version}, ${d.state}, ${d.replicas.ready}/${d.replicas.wanted} ready (min ${d.replicas.min}, max ${d.replicas.max})${d.logging !== undefined && d.logging.sampleRate > 0 ? `, logging ${d.logging.sampleRate} of requests` : ''}`,
    table([
      ['REPLICA', 'VERSION', 'STATE', 'ZONE', 'NODE', 'RESTARTS', 'ERROR'],
      ...d.instances.map((i) => [
        i.id,
        i.version,
        i.state,
        i.zone,
        i.node,
        String(i.restarts),
        i.error || '-',
      ]),
    ]),
  ].join('\n')
}

const DEPLOY_COMMANDS: ApiCommandGroup = {
  name: 'deploy',
  help: deployHelp,
  options: {
    name: { type: 'string' },
    project: { type: 'string' },
    model: { type: 'string' },
    version: { type: 'string' },
    replicas: { type: 'string' },
    cpus: { type: 'string' },
    'memory-mib': { type: 'string' },
    'log-sample-rate': { type: 'string' },
    user: { type: 'string' },
  },
  async run(sub, rest, values, target: ApiTarget, io) {
    const logging = (): Record<string, unknown> => {
      const rate = numberFlag(values, 'log-sample-rate')
      return rate === undefined ? {} : { logging: { sampleRate: rate } }
    }
    switch (sub) {
      case 'key':
        return runKey(rest, values, target, io)
      case 'create': {
        const body: Record<string, unknown> = {}
        for (const k of ['name', 'project', 'model', 'version'] as const) {
          const v = str(values, k)
          if (v === undefined || rest.length > 0)
            throw usage(
              'hopsd deploy create --name D --project P --model N --version V [--replicas MIN[:MAX]]',
            )
          body[k] = v
        }
        if (str(values, 'replicas') !== undefined) body['replicas'] = replicaBounds(str(values, 'replicas')!)
        const cpus = numberFlag(values, 'cpus')
        if (cpus !== undefined) body['cpus'] = cpus
        const mem = numberFlag(values, 'memory-mib')
        if (mem !== undefined) body['memoryMiB'] = mem
        Object.assign(body, logging())
        const d = await apiJson<DeploymentInfo>(target, 'POST', as(values, '/api/v1/deployments'), body)
        print(
          io,
          values,
          d,
          () => `deployment ${d.name} created: ${d.model} version ${d.version}, ${d.replicas.min} replicas`,
        )
        return EXIT_OK
      }
      case 'ls': {
        if (rest.length > 0) throw usage('hopsd deploy ls [--project P]')
        const q =
          str(values, 'project') === undefined
            ? ''
            : `?project=${encodeURIComponent(str(values, 'project')!)}`
        const { deployments } = await apiJson<{ deployments: DeploymentInfo[] }>(
          target,
          'GET',
          as(values, `/api/v1/deployments${q}`),
        )
        print(io, values, deployments, () =>
          table([
            ['NAME', 'PROJECT', 'MODEL', 'VERSION', 'STATE', 'READY', 'ZONES'],
            ...deployments.map((d) => [
              d.name,
              d.project,
              d.model,
              d.version,
              d.state,
              `${d.replicas.ready}/${d.replicas.wanted}`,
              [...new Set(d.instances.map((i) => i.zone))].sort().join(',') || '-',
            ]),
          ]),
        )
        return EXIT_OK
      }
      case 'show': {
        if (rest.length !== 1) throw usage('hopsd deploy show D')
        const d = await apiJson<DeploymentInfo>(
          target,
          'GET',
          as(values, `/api/v1/deployments/${encodeURIComponent(rest[0]!)}`),
        )
        print(io, values, d, () => deploymentText(d))
        return EXIT_OK
      }
      case 'update': {
        if (rest.length !== 1) throw usage('hopsd deploy update D [--version V] [--replicas MIN[:MAX]]')
        const body: Record<string, unknown> = {}
        if (str(values, 'version') !== undefined) body['version'] = str(values, 'version')
        if (str(values, 'replicas') !== undefined) body['replicas'] = replicaBounds(str(values, 'replicas')!)
        Object.assign(body, logging())
        if (Object.keys(body).length === 0)
          throw usage('hopsd deploy update D [--version V] [--replicas MIN[:MAX]] [--log-sample-rate R]')
        const d = await apiJson<DeploymentInfo>(
          target,
          'PATCH',
          as(values, `/api/v1/deployments/${encodeURIComponent(rest[0]!)}`),
          body,
        )
        print(
          io,
          values,
          d,
          () =>
            `deployment ${d.name}: ${d.model} version ${d.version}, ${d.replicas.min}..${d.replicas.max} replicas (rolling out)`,
        )
        return EXIT_OK
      }
      case 'rm': {
        if (rest.length !== 1) throw usage('hopsd deploy rm D')
        await apiJson(target, 'DELETE', as(values, `/api/v1/deployments/${encodeURIComponent(rest[0]!)}`))
        io.out(`deployment ${rest[0]} deleted`)
        return EXIT_OK
      }
      default:
        throw new ConfigError(
          'UNKNOWN_COMMAND',
          `unknown command 'deploy ${sub}' (commands: create, ls, show, update, rm, key)`,
        )
    }
  },
}

interface KeyInfo {
  id: string
  deployment: string
  name: string
  createdBy: string
  createdMs: number
  revokedMs: number
  key?: string
}

/** `hopsd deploy key create|ls|revoke D …`: a deployment's inference keys. */
async function runKey(
  rest: readonly string[],
  values: FlagValues,
  target: ApiTarget,
  io: CliIo,
): Promise<number> {
  const [op, d, id, ...more] = rest
  const base = d === undefined ? '' : `/api/v1/deployments/${encodeURIComponent(d)}/keys`
  switch (op) {
    case 'create': {
      if (d === undefined || id !== undefined) throw usage('hopsd deploy key create D [--name LABEL]')
      const body = str(values, 'name') === undefined ? {} : { name: str(values, 'name') }
      const k = await apiJson<KeyInfo>(target, 'POST', as(values, base), body)
      print(io, values, k, () =>
        [`inference key ${k.id} for deployment ${k.deployment} (shown once):`, k.key ?? ''].join('\n'),
      )
      return EXIT_OK
    }
    case 'ls': {
      if (d === undefined || id !== undefined) throw usage('hopsd deploy key ls D')
      const { keys } = await apiJson<{ keys: KeyInfo[] }>(target, 'GET', as(values, base))
      print(io, values, keys, () =>
        table([
          ['ID', 'NAME', 'CREATED BY', 'CREATED', 'REVOKED'],
          ...keys.map((k) => [
            k.id,
            k.name || '-',
            k.createdBy,
            new Date(k.createdMs).toISOString(),
            k.revokedMs === 0 ? '-' : new Date(k.revokedMs).toISOString(),
          ]),
        ]),
      )
      return EXIT_OK
    }
    case 'revoke': {
      if (d === undefined || id === undefined || more.length > 0) throw usage('hopsd deploy key revoke D ID')
      await apiJson(target, 'DELETE', as(values, `${base}/${encodeURIComponent(id)}`))
      io.out(`inference key ${id} of ${d} revoked`)
      return EXIT_OK
    }
    default:
      throw usage('hopsd deploy key create|ls|revoke D …')
  }
}
