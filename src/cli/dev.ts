// `hopsd dev`: a local cluster of N nodes (zones z1..zN) as child processes of this one, for development
// and demos. Prints each node's API URL and the admin key, restarts nothing, and stops every node on
// Ctrl-C or SIGTERM. Its nodes run simple auth (`--auth simple`: WebHDFS `user.name` is believed), and
// the admin key works too.
import { spawn, type ChildProcess } from 'node:child_process'
import {
  appendFileSync,
  mkdirSync,
  openSync,
  closeSync,
  existsSync,
  readFileSync,
  writeFileSync,
} from 'node:fs'
import { join, resolve } from 'node:path'
import {
  ConfigError,
  StartupError,
  checkPortFree,
  formatAddress,
  httpUrl,
  parseAddress,
  DEFAULT_HTTP,
  DEFAULT_P2P,
  type HostPort,
} from '../node/index.js'
import { helpTable, parseFlags } from './args.js'
import { EXIT_FAILURE, EXIT_OK, reportError, type CliIo } from './output.js'
import { selfCommand } from './self.js'
import { generateSwarmKey } from '../node/p2p/index.js'

export const DEFAULT_DEV_DIR = './hopsd-dev'
const NODES_MAX = 16
/** How long a node may take to answer /health before dev reports it as not ready. */
const READY_TIMEOUT_MS = 60_000
const READY_POLL_MS = 100
/** Children get SIGTERM, then this long (their own shutdown deadline plus slack) before SIGKILL. */
const STOP_GRACE_MS = 12_000
/** How long dev waits for the node that initialised the cluster to write `admin.key`. */
const ADMIN_KEY_TIMEOUT_MS = 120_000
/** Lines of a child's stderr kept to explain why it died. */
const STDERR_LINES_MAX = 5

const options = {
  nodes: { type: 'string' as const },
  'data-dir': { type: 'string' as const },
  http: { type: 'string' as const },
  p2p: { type: 'string' as const },
  help: { type: 'boolean' as const, short: 'h' },
}

export function devHelp(): string {
  return [
    'Usage: hopsd dev [--nodes N] [--data-dir DIR]',
    '',
    'Runs a local cluster: N nodes in zones z1..zN, as child processes, with data in DIR/n1..DIR/nN and',
    'logs in DIR/n1.log..; HTTP ports from 9870 and p2p ports from 4001 up. Ctrl-C stops every node.',
    'Simple auth (WebHDFS user.name is believed); the admin key is printed once the cluster made it.',
    '',
    'Flags:',
    helpTable([
      ['--nodes N', `number of nodes, 1..${NODES_MAX} (default 3)`],
      ['--data-dir DIR', `parent directory of the nodes' data dirs (default ${DEFAULT_DEV_DIR})`],
      ['--http HOST:PORT', `HTTP address of the first node; the others count up (default ${DEFAULT_HTTP})`],
      ['--p2p HOST:PORT', `p2p address of the first node; the others count up (default ${DEFAULT_P2P})`],
      ['-h, --help', 'this help'],
    ]),
  ].join('\n')
}

export interface DevNodeSpec {
  readonly name: string
  readonly zone: string
  readonly dataDir: string
  readonly logFile: string
  readonly http: HostPort
  readonly p2p: HostPort
}

export interface DevPlan {
  readonly dir: string
  readonly nodes: readonly DevNodeSpec[]
  readonly join: readonly HostPort[]
  readonly bootstrapExpect: number
}

/** Validates the flags into a plan (throws ConfigError). Exported for tests. */
export function planDev(args: readonly string[], cwd: string): DevPlan | 'help' {
  const values = parseFlags('dev', args, options)
  if (values['help'] === true) return 'help'
  const nodesText = (values['nodes'] as string | undefined) ?? '3'
  const n = /^\d+$/.test(nodesText) ? Number(nodesText) : NaN
  if (!Number.isInteger(n) || n < 1 || n > NODES_MAX) {
    throw new ConfigError(
      'BAD_CONFIG_VALUE',
      `--nodes: expected an integer in 1..${NODES_MAX}, got '${nodesText}'`,
    )
  }
  const dir = resolve(cwd, (values['data-dir'] as string | undefined) ?? DEFAULT_DEV_DIR)
  const http0 = parseAddress((values['http'] as string | undefined) ?? DEFAULT_HTTP, '--http')
  const p2p0 = parseAddress((values['p2p'] as string | undefined) ?? DEFAULT_P2P, '--p2p')
  for (const [a, name] of [
    [http0, '--http'],
    [p2p0, '--p2p'],
  ] as const) {
    if (a.port === 0 || a.port + n - 1 > 65535) {
      throw new ConfigError(
        'BAD_ADDRESS',
        `${name}: ports ${a.port}..${a.port + n - 1} are not all valid ports`,
      )
    }
  }
  const overlap = http0.host === p2p0.host && http0.port < p2p0.port + n && p2p0.port < http0.port + n
  if (overlap) throw new ConfigError('BAD_ADDRESS', `--http and --p2p port ranges overlap for ${n} nodes`)
  const nodes = Array.from({ length: n }, (_, i): DevNodeSpec => {
    const name = `n${i + 1}`
    return {
      name,
      zone: `z${i + 1}`,
      dataDir: join(dir, name),
      logFile: join(dir, `${name}.log`),
      http: { host: http0.host, port: http0.port + i },
      p2p: { host: p2p0.host, port: p2p0.port + i },
    }
  })
  return { dir, nodes, join: nodes.map((x) => x.p2p), bootstrapExpect: Math.min(n, 3) }
}

interface Running {
  readonly spec: DevNodeSpec
  readonly child: ChildProcess
  readonly stderrTail: string[]
  exited: boolean
}

export async function runDev(args: readonly string[], io: CliIo): Promise<number> {
  let plan: DevPlan
  try {
    const p = planDev(args, process.cwd())
    if (p === 'help') {
      io.out(devHelp())
      return EXIT_OK
    }
    plan = p
    try {
      mkdirSync(plan.dir, { recursive: true })
      closeSync(openSync(join(plan.dir, '.dev'), 'w'))
    } catch (err) {
      throw new StartupError(
        'DATA_DIR_UNWRITABLE',
        `data dir ${plan.dir} is not writable (${(err as Error).message})`,
      )
    }
    // Check every port first: one clear line instead of N children failing.
    for (const node of plan.nodes) {
      await checkPortFree(node.http, `${node.name} HTTP`)
      await checkPortFree(node.p2p, `${node.name} p2p`)
    }
  } catch (err) {
    return reportError(io, err)
  }

  // One swarm key for the local cluster, kept across runs so that restarted nodes still recognise it.
  const swarmKeyPath = join(plan.dir, 'swarm.key')
  if (!existsSync(swarmKeyPath)) writeFileSync(swarmKeyPath, generateSwarmKey(), { mode: 0o600 })
  io.out(`hopsd dev: starting ${plan.nodes.length} nodes in ${plan.dir} (Ctrl-C stops them)`)
  const self = selfCommand()
  const running: Running[] = []
  let stopping = false
  let resolveDone!: (code: number) => void
  const done = new Promise<number>((r) => (resolveDone = r))

  const onExit = (r: Running, code: number | null, signal: NodeJS.Signals | null) => {
    r.exited = true
    if (!stopping) {
      const why = signal !== null ? `signal ${signal}` : `code ${code}`
      const last = r.stderrTail.at(-1)
      io.err(
        `hopsd dev: ${r.spec.name} exited (${why})${last ? `: ${last}` : ''}; not restarting (log ${r.spec.logFile})`,
      )
      if (running.every((x) => x.exited)) {
        io.err('hopsd dev: every node has exited')
        resolveDone(EXIT_FAILURE)
      }
    }
  }

  for (const spec of plan.nodes) {
    mkdirSync(spec.dataDir, { recursive: true })
    appendFileSync(spec.logFile, '')
    const logFd = openSync(spec.logFile, 'a')
    const child = spawn(
      self.command,
      [
        ...self.args,
        'start',
        '--data-dir',
        spec.dataDir,
        '--zone',
        spec.zone,
        '--http',
        formatAddress(spec.http),
        '--p2p',
        formatAddress(spec.p2p),
        '--join',
        plan.join.map(formatAddress).join(','),
        '--bootstrap-expect',
        String(plan.bootstrapExpect),
        '--swarm-key',
        swarmKeyPath,
        '--auth',
        'simple',
      ],
      // Own process group: a terminal's Ctrl-C reaches dev only, which then stops each node once.
      { stdio: ['ignore', logFd, 'pipe'], detached: true },
    )
    closeSync(logFd)
    const r: Running = { spec, child, stderrTail: [], exited: false }
    running.push(r)
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (chunk: string) => {
      appendFileSync(spec.logFile, chunk)
      for (const line of chunk.split('\n')) {
        if (line.trim() === '') continue
        r.stderrTail.push(line.trim())
        if (r.stderrTail.length > STDERR_LINES_MAX) r.stderrTail.shift()
      }
    })
    child.on('exit', (code, signal) => onExit(r, code, signal))
    child.on('error', (err) => {
      r.stderrTail.push(err.message)
      onExit(r, null, null)
    })
    io.out(
      `  ${spec.name}  zone ${spec.zone}  ${httpUrl(spec.http)}  p2p ${formatAddress(spec.p2p)}  pid ${child.pid}  log ${spec.logFile}`,
    )
  }

  const stopAll = async (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    io.out(`hopsd dev: ${signal}: stopping ${running.filter((r) => !r.exited).length} nodes`)
    await Promise.all(running.map((r) => stopChild(r)))
    io.out('hopsd dev: all nodes stopped')
    resolveDone(EXIT_OK)
  }
  process.on('SIGINT', (s) => void stopAll(s))
  process.on('SIGTERM', (s) => void stopAll(s))
  process.on('SIGHUP', (s) => void stopAll(s)) // terminal closed: the detached nodes would not hear it

  // Progress: report each node as it becomes healthy.
  void (async () => {
    await Promise.all(
      running.map(async (r) => {
        const health = await waitHealthy(r, () => stopping)
        if (health !== undefined) io.out(`  ${r.spec.name} ready  id ${health.id}`)
        else if (!r.exited && !stopping)
          io.err(`hopsd dev: ${r.spec.name} not healthy after ${READY_TIMEOUT_MS} ms`)
      }),
    )
    if (!stopping && running.some((r) => !r.exited)) {
      io.out(`hopsd dev: cluster up; API at ${httpUrl(plan.nodes[0]!.http)}`)
    }
    const admin = await waitAdminKey(plan, () => stopping)
    if (admin !== undefined)
      io.out(`hopsd dev: admin key ${admin.key} (in ${admin.file}; HOPSD_KEY=${admin.file} hopsd user ls)`)
    else if (!stopping) io.err(`hopsd dev: no admin.key after ${ADMIN_KEY_TIMEOUT_MS} ms`)
  })()

  return done
}

/** The admin key the node that initialised the cluster wrote to `<data-dir>/admin.key`. */
async function waitAdminKey(
  plan: DevPlan,
  stopping: () => boolean,
): Promise<{ key: string; file: string } | undefined> {
  const deadline = Date.now() + ADMIN_KEY_TIMEOUT_MS
  while (Date.now() < deadline && !stopping()) {
    for (const n of plan.nodes) {
      const file = join(n.dataDir, 'admin.key')
      try {
        const key = readFileSync(file, 'utf8').trim()
        if (key !== '') return { key, file }
      } catch {
        // not this node, or not yet
      }
    }
    await new Promise((res) => setTimeout(res, 200))
  }
  return undefined
}

async function waitHealthy(r: Running, stopping: () => boolean): Promise<{ id: string } | undefined> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  const url = `${httpUrl(r.spec.http)}/health`
  while (Date.now() < deadline && !r.exited && !stopping()) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) })
      if (res.ok) return (await res.json()) as { id: string }
    } catch {
      // not listening yet
    }
    await new Promise((res) => setTimeout(res, READY_POLL_MS))
  }
  return undefined
}

async function stopChild(r: Running): Promise<void> {
  if (r.exited) return
  const exited = new Promise<void>((res) => {
    if (r.exited) res()
    else r.child.once('exit', () => res())
  })
  r.child.kill('SIGTERM')
  const timer = setTimeout(() => {
    if (!r.exited) r.child.kill('SIGKILL')
  }, STOP_GRACE_MS)
  await exited
  clearTimeout(timer)
}
