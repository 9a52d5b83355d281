// `hopsd fs <command>`: the file system from the command line, over any node's HTTP API (WebHDFS and
// the native /api/v1/fs routes). Bad input is one stderr line and exit 2; anything the server refuses
// is one stderr line with the server's message and exit 1.
import { userInfo } from 'node:os'
import { parseArgs } from 'node:util'
import { ConfigError } from '../node/index.js'
import { helpTable } from './args.js'
import { FsClient, RemoteError, type RemoteStatus } from './fs/client.js'
import { loadCredential } from './credentials.js'
import { humanBytes, longListing, remoteBase, remoteJoin, resolveRemote } from './fs/format.js'
import { TransferError, planGet, planPut, runGet, runPut, type TransferOutcome } from './fs/transfer.js'
import { EXIT_FAILURE, EXIT_OK, reportError, type CliIo } from './output.js'

export const DEFAULT_FS_ADDR = 'http://127.0.0.1:9870'

type OptionSpec = Record<string, { type: 'boolean' | 'string'; short?: string }>

interface Command {
  readonly usage: string
  readonly about: string
  readonly options: OptionSpec
  readonly flags: readonly [string, string][]
  /** Fewest and most operands (paths); `Infinity` for any number. */
  readonly operands: readonly [number, number]
  run(ctx: Ctx): Promise<number>
}

interface Ctx {
  readonly client: FsClient
  readonly io: CliIo
  readonly values: Record<string, string | boolean | undefined>
  /** Operands as typed. */
  readonly args: readonly string[]
  /** Remote operand → absolute remote path. */
  remote(path: string): string
  /** Reports a failure for one operand (the command goes on with the next); see {@link fail}. */
  fail(err: unknown): void
  readonly failed: boolean
}

const COMMON_FLAGS: [string, string][] = [
  ['--addr URL', `a node's API (default $HOPSD_ADDR or ${DEFAULT_FS_ADDR})`],
  [
    '--user NAME',
    'act as NAME, sent as WebHDFS user.name: simple auth only (default $HOPSD_USER or the OS user)',
  ],
  ['--key FILE', 'send this API key (else $HOPSD_KEY, the key or a file, else ~/.config/hopsd/credentials)'],
  ['--help', 'this help'],
]

const COMMANDS: Record<string, Command> = {
  ls: {
    usage: 'ls [-l] [-h] [-R] [PATH...]',
    about: 'list directories (default /); a file lists as itself',
    options: {
      long: { type: 'boolean', short: 'l' },
      human: { type: 'boolean', short: 'h' },
      recursive: { type: 'boolean', short: 'R' },
    },
    flags: [
      ['-l', 'long listing: mode, replication, owner, group, size, modified, name'],
      ['-h', 'sizes as 1.5 K, 12.0 M (with -l)'],
      ['-R', 'recurse into subdirectories (entries shown as full paths)'],
    ],
    operands: [0, Infinity],
    run: runLs,
  },
  mkdir: {
    usage: 'mkdir [-p] [-m MODE] PATH...',
    about: 'create directories',
    options: { parents: { type: 'boolean', short: 'p' }, mode: { type: 'string', short: 'm' } },
    flags: [
      ['-p', 'create missing parents; no error if it exists'],
      ['-m MODE', 'octal permission (default 755)'],
    ],
    operands: [1, Infinity],
    run: runMkdir,
  },
  put: {
    usage: "put [-f] LOCAL... DST   (LOCAL may be a directory or a quoted glob: 'data/*.csv')",
    about: 'copy local files and directories (recursively) into the file system',
    options: { force: { type: 'boolean', short: 'f' } },
    flags: [['-f', 'overwrite existing files']],
    operands: [2, Infinity],
    run: runPutCmd,
  },
  get: {
    usage: 'get [-f] PATH... LOCAL',
    about: 'copy files and directories (recursively) to the local disk',
    options: { force: { type: 'boolean', short: 'f' } },
    flags: [['-f', 'overwrite existing local files']],
    operands: [2, Infinity],
    run: runGetCmd,
  },
  cat: {
    usage: 'cat PATH...',
    about: 'write files to stdout',
    options: {},
    flags: [],
    operands: [1, Infinity],
    run: runCat,
  },
  rm: {
    usage: 'rm [-r] [-f] PATH...',
    about: 'remove files (and directories with -r)',
    options: { recursive: { type: 'boolean', short: 'r' }, force: { type: 'boolean', short: 'f' } },
    flags: [
      ['-r', 'remove directories and everything under them'],
      ['-f', 'no error for paths that do not exist'],
    ],
    operands: [1, Infinity],
    run: runRm,
  },
  mv: {
    usage: 'mv SRC... DST',
    about: 'rename or move (into DST when it is a directory)',
    options: {},
    flags: [],
    operands: [2, Infinity],
    run: runMv,
  },
  stat: {
    usage: 'stat PATH',
    about: 'print the status as JSON (GET /api/v1/fs/stat: with inlined, leaseHolder)',
    options: {},
    flags: [],
    operands: [1, 1],
    run: runStat,
  },
  chmod: {
    usage: 'chmod [-R] MODE PATH...',
    about: 'set the permission (octal, e.g. 750 or 1777)',
    options: { recursive: { type: 'boolean', short: 'R' } },
    flags: [['-R', 'also everything under directories']],
    operands: [2, Infinity],
    run: runChmod,
  },
  chown: {
    usage: 'chown [-R] OWNER[:GROUP] PATH...   (or :GROUP; needs the superuser for OWNER)',
    about: 'set the owner and/or group',
    options: { recursive: { type: 'boolean', short: 'R' } },
    flags: [['-R', 'also everything under directories']],
    operands: [2, Infinity],
    run: runChown,
  },
  fsck: {
    usage: 'fsck [--json]',
    about:
      'block health: under-replicated, missing and corrupt blocks (exit 1 when any is missing or corrupt)',
    options: { json: { type: 'boolean' } },
    flags: [['--json', 'print GET /api/v1/fs/health as it is']],
    operands: [0, 0],
    run: runFsck,
  },
  du: {
    usage: 'du [-s] [-h] [PATH...]',
    about: 'bytes used under each entry of a directory (default /), or in total with -s',
    options: { summary: { type: 'boolean', short: 's' }, human: { type: 'boolean', short: 'h' } },
    flags: [
      ['-s', 'one total per PATH'],
      ['-h', 'sizes as 1.5 K, 12.0 M'],
    ],
    operands: [0, Infinity],
    run: runDu,
  },
}

export function fsHelp(): string {
  const names = Object.keys(COMMANDS)
  return [
    'Usage: hopsd fs <command> [--addr URL] [--key FILE | --user NAME] [flags] [args]',
    '',
    'The file system of a hopsd cluster, through any node. Remote paths are absolute, or relative to',
    '/user/NAME. Exit codes: 0 ok, 1 the cluster refused or failed (its message on stderr), 2 bad input.',
    '',
    'Commands:',
    helpTable(names.map((n) => [COMMANDS[n]!.usage.split('   (')[0]!, COMMANDS[n]!.about])),
    '',
    'Flags of every command:',
    helpTable(COMMON_FLAGS),
    '',
    'See hopsd fs <command> --help for its flags.',
  ].join('\n')
}

function commandHelp(name: string, cmd: Command): string {
  return [
    `Usage: hopsd fs ${cmd.usage}`,
    '',
    cmd.about.charAt(0).toUpperCase() + cmd.about.slice(1) + '.',
    '',
    'Flags:',
    helpTable([...cmd.flags, ...COMMON_FLAGS]),
  ].join('\n')
}

export async function runFs(argv: readonly string[], io: CliIo): Promise<number> {
  let name: string | undefined
  try {
    // Common flags may come before the command: `hopsd fs --addr X ls /`.
    const lead: string[] = []
    let i = 0
    while (i < argv.length && argv[i]!.startsWith('-')) {
      const a = argv[i]!
      if (a === '--help' || a === '-h') {
        io.out(fsHelp())
        return EXIT_OK
      }
      if ((a === '--addr' || a === '--user' || a === '--key') && i + 1 < argv.length) {
        lead.push(a, argv[i + 1]!)
        i += 2
      } else if (a.startsWith('--addr=') || a.startsWith('--user=') || a.startsWith('--key=')) {
        lead.push(a)
        i += 1
      } else {
        throw new ConfigError('UNKNOWN_FLAG', `unknown flag ${a} for 'hopsd fs' (see hopsd fs --help)`)
      }
    }
    name = argv[i]
    if (name === undefined || name === 'help') {
      io.out(fsHelp())
      return EXIT_OK
    }
    const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined
    if (cmd === undefined)
      throw new ConfigError(
        'UNKNOWN_COMMAND',
        `unknown command 'fs ${name}' (commands: ${Object.keys(COMMANDS).join(', ')})`,
      )
    const { values, positionals } = parseCommand(name, cmd, [...lead, ...argv.slice(i + 1)])
    if (values['help'] === true) {
      io.out(commandHelp(name, cmd))
      return EXIT_OK
    }
    const [min, max] = cmd.operands
    if (positionals.length < min || positionals.length > max)
      throw new ConfigError(
        'UNKNOWN_FLAG',
        `${positionals.length < min ? 'missing operand' : 'too many operands'}: usage: hopsd fs ${cmd.usage}`,
      )
    if (positionals.some((p) => p === ''))
      throw new ConfigError('BAD_CONFIG_VALUE', `empty path for 'hopsd fs ${name}'`)
    const cmdName = name
    const credential = loadCredential(values['key'] as string | undefined)
    const client = new FsClient({
      baseUrl: baseUrl(values['addr'] as string | undefined),
      user: userOf(values),
      key: credential?.key,
    })
    // With a key the cluster says who we are: relative paths resolve against its home directory.
    if (
      credential !== undefined &&
      values['user'] === undefined &&
      (positionals.length === 0 || positionals.some((p) => !p.startsWith('/')))
    )
      client.user = (await client.homeDirectory()).replace(/^\/user\//, '')
    let failed = false
    const ctx: Ctx = {
      client,
      io,
      values,
      args: positionals,
      remote: (p) => resolveRemote(p, client.user),
      fail(err) {
        failed = true
        io.err(`hopsd: fs ${cmdName}: ${describe(err)}`)
      },
      get failed() {
        return failed
      },
    }
    const code = await cmd.run(ctx)
    return failed ? EXIT_FAILURE : code
  } catch (err) {
    if (err instanceof RemoteError || err instanceof TransferError) {
      io.err(`hopsd: fs ${name ?? ''}: ${describe(err)}`)
      return EXIT_FAILURE
    }
    return reportError(io, err)
  }
}

function parseCommand(
  name: string,
  cmd: Command,
  args: string[],
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: {
        ...cmd.options,
        addr: { type: 'string' },
        user: { type: 'string' },
        key: { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: true,
    })
    return { values: values as Record<string, string | boolean | undefined>, positionals }
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const msg = e.message ?? String(err)
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const flag = /'([^']+)'/.exec(msg)?.[1] ?? msg
      throw new ConfigError(
        'UNKNOWN_FLAG',
        `unknown flag ${flag} for 'hopsd fs ${name}' (see hopsd fs ${name} --help)`,
      )
    }
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const flag = /'(--?[A-Za-z0-9-]+)/.exec(msg)?.[1] ?? 'a flag'
      throw new ConfigError('BAD_CONFIG_VALUE', `${flag} needs a value`)
    }
    throw new ConfigError('UNKNOWN_FLAG', msg.split('\n')[0] ?? msg)
  }
}

/** `--addr` as a base URL: `http://h:p`, `https://h:p` or a bare `h:p`. */
function baseUrl(addr: string | undefined): string {
  const raw = addr ?? process.env['HOPSD_ADDR'] ?? DEFAULT_FS_ADDR
  const withScheme = /^[a-z]+:\/\//i.test(raw) ? raw : `http://${raw}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    throw new ConfigError('BAD_ADDRESS', `--addr: bad address '${raw}' (expected http://HOST:PORT)`)
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '')
    throw new ConfigError('BAD_ADDRESS', `--addr: bad address '${raw}' (expected http://HOST:PORT)`)
  return url.origin
}

function userOf(values: Record<string, string | boolean | undefined>): string {
  const flag = values['user'] as string | undefined
  const user = flag ?? process.env['HOPSD_USER'] ?? osUser()
  if (user === '' || /[\s/:]/.test(user))
    throw new ConfigError('BAD_CONFIG_VALUE', `--user: bad user name '${user}'`)
  return user
}

function osUser(): string {
  try {
    return userInfo().username
  } catch {
    // No passwd entry (some containers): Hadoop's own default identity.
    return process.env['USER'] ?? 'dr.who'
  }
}

function describe(err: unknown): string {
  if (err instanceof RemoteError) return `${err.message} [${err.exception}]`
  if (err instanceof TransferError) return `${err.message} [${err.code}]`
  const e = err as NodeJS.ErrnoException
  return `${e.message ?? String(err)}${e.code ? ` [${e.code}]` : ''}`
}

/** Runs `fn` for each operand; a failure is reported and the next operand still runs (as coreutils). */
async function forEach(
  ctx: Ctx,
  paths: readonly string[],
  fn: (path: string) => Promise<void>,
): Promise<number> {
  for (const p of paths) {
    try {
      await fn(p)
    } catch (err) {
      if (err instanceof ConfigError) throw err
      ctx.fail(err)
      if (err instanceof RemoteError && err.status === 0) break // the node is gone: the rest would fail alike
    }
  }
  return EXIT_OK
}

// ------------------------------------------------------------------------------------------- commands

async function runLs(ctx: Ctx): Promise<number> {
  const paths = ctx.args.length === 0 ? ['/'] : ctx.args
  const long = ctx.values['long'] === true
  const human = ctx.values['human'] === true
  const recursive = ctx.values['recursive'] === true
  const print = (rows: { name: string; status: RemoteStatus }[]) => {
    if (long) for (const line of longListing(rows, human)) ctx.io.out(line)
    else for (const r of rows) ctx.io.out(r.name)
  }
  let first = true
  return forEach(ctx, paths, async (raw) => {
    const path = ctx.remote(raw)
    const st = await ctx.client.status(path)
    if (st.type === 'FILE') {
      print([{ name: raw, status: st }])
      return
    }
    if (recursive) {
      const rows: { name: string; status: RemoteStatus }[] = []
      const walk = async (dir: string): Promise<void> => {
        for (const e of await ctx.client.list(dir)) {
          const full = remoteJoin(dir, e.pathSuffix)
          rows.push({ name: full, status: e })
          if (e.type === 'DIRECTORY') await walk(full)
        }
      }
      await walk(path)
      print(rows)
      return
    }
    const entries = await ctx.client.list(path)
    if (paths.length > 1) {
      if (!first) ctx.io.out('')
      ctx.io.out(`${raw}:`)
    }
    first = false
    print(entries.map((e) => ({ name: e.pathSuffix, status: e })))
  })
}

async function runMkdir(ctx: Ctx): Promise<number> {
  const mode = ctx.values['mode'] as string | undefined
  if (mode !== undefined) checkMode(mode, '-m')
  const parents = ctx.values['parents'] === true
  return forEach(ctx, ctx.args, async (raw) => {
    const path = ctx.remote(raw)
    if (!parents) {
      // WebHDFS MKDIRS always creates parents and accepts an existing directory: check first, as mkdir.
      if ((await ctx.client.statusOrUndefined(path)) !== undefined)
        throw new RemoteError(409, 'FileAlreadyExistsException', `${path} already exists`)
      const parent = path.slice(0, path.lastIndexOf('/')) || '/'
      const ps = await ctx.client.statusOrUndefined(parent)
      if (ps === undefined)
        throw new RemoteError(
          404,
          'FileNotFoundException',
          `${parent} does not exist (use -p to create parents)`,
        )
      if (ps.type !== 'DIRECTORY')
        throw new RemoteError(403, 'ParentNotDirectoryException', `${parent} is not a directory`)
    }
    await ctx.client.mkdirs(path, mode)
  })
}

async function runPutCmd(ctx: Ctx): Promise<number> {
  const dstRaw = ctx.args[ctx.args.length - 1]!
  const dst = ctx.remote(dstRaw)
  const plan = await planPut(ctx.client, ctx.args.slice(0, -1), dst, dstRaw, process.cwd())
  report(ctx, await runPut(ctx.client, plan, ctx.values['force'] === true))
  return EXIT_OK
}

async function runGetCmd(ctx: Ctx): Promise<number> {
  const dst = ctx.args[ctx.args.length - 1]!
  const sources = ctx.args.slice(0, -1).map((p) => ctx.remote(p))
  const plan = await planGet(ctx.client, sources, dst, ctx.values['force'] === true)
  report(ctx, await runGet(ctx.client, plan))
  return EXIT_OK
}

function report(ctx: Ctx, outcome: TransferOutcome): void {
  for (const line of outcome.failures) ctx.fail(new Error(line))
}

async function runCat(ctx: Ctx): Promise<number> {
  return forEach(ctx, ctx.args, async (raw) => {
    const body = await ctx.client.open(ctx.remote(raw))
    for await (const chunk of body) {
      // Respect back-pressure: a slow reader of stdout (a pager) must not make the CLI buffer the file.
      if (!process.stdout.write(chunk as Buffer))
        await new Promise<void>((r) => process.stdout.once('drain', () => r()))
    }
  })
}

async function runRm(ctx: Ctx): Promise<number> {
  const recursive = ctx.values['recursive'] === true
  const force = ctx.values['force'] === true
  return forEach(ctx, ctx.args, async (raw) => {
    const path = ctx.remote(raw)
    if (path === '/') throw new RemoteError(403, 'IllegalArgumentException', 'refusing to remove /')
    if (!recursive) {
      // As rm: a directory, even an empty one, needs -r.
      const st = await ctx.client.statusOrUndefined(path)
      if (st === undefined) {
        if (force) return
        throw new RemoteError(404, 'FileNotFoundException', `${path}: no such file or directory`)
      }
      if (st.type === 'DIRECTORY')
        throw new RemoteError(403, 'PathIsDirectoryException', `${path} is a directory (use -r)`)
    }
    const deleted = await ctx.client.delete(path, recursive)
    if (!deleted && !force)
      throw new RemoteError(404, 'FileNotFoundException', `${path}: no such file or directory`)
  })
}

async function runMv(ctx: Ctx): Promise<number> {
  const dst = ctx.remote(ctx.args[ctx.args.length - 1]!)
  const sources = ctx.args.slice(0, -1)
  if (sources.length > 1) {
    const st = await ctx.client.statusOrUndefined(dst)
    if (st?.type !== 'DIRECTORY')
      throw new RemoteError(
        404,
        'FileNotFoundException',
        `${dst} is not a directory to move several sources into`,
      )
  }
  return forEach(ctx, sources, async (raw) => {
    const src = ctx.remote(raw)
    if (await ctx.client.rename(src, dst)) return
    // Hadoop's rename only answers false: find out why, for a message that helps.
    if ((await ctx.client.statusOrUndefined(src)) === undefined)
      throw new RemoteError(404, 'FileNotFoundException', `${src}: no such file or directory`)
    const target = await ctx.client.statusOrUndefined(dst)
    const into = target?.type === 'DIRECTORY' ? remoteJoin(dst, remoteBase(src)) : dst
    throw new RemoteError(
      409,
      'IOException',
      `cannot move ${src} to ${into}${target !== undefined ? ' (the destination exists)' : ' (does its parent exist?)'}`,
    )
  })
}

async function runStat(ctx: Ctx): Promise<number> {
  const st = await ctx.client.nativeStat(ctx.remote(ctx.args[0]!))
  ctx.io.out(JSON.stringify(st, null, 2))
  return EXIT_OK
}

async function runChmod(ctx: Ctx): Promise<number> {
  const mode = checkMode(ctx.args[0]!, 'MODE')
  return forEach(ctx, ctx.args.slice(1), (raw) =>
    eachUnder(ctx, ctx.remote(raw), (p) => ctx.client.setPermission(p, mode)),
  )
}

async function runChown(ctx: Ctx): Promise<number> {
  const spec = ctx.args[0]!
  const m = /^([^:\s]*)(?::([^:\s]*))?$/.exec(spec)
  const owner = m?.[1] || undefined
  const group = m?.[2] || undefined
  if (m === null || (owner === undefined && group === undefined))
    throw new ConfigError(
      'BAD_CONFIG_VALUE',
      `chown: bad owner '${spec}' (expected OWNER, OWNER:GROUP or :GROUP)`,
    )
  return forEach(ctx, ctx.args.slice(1), (raw) =>
    eachUnder(ctx, ctx.remote(raw), (p) => ctx.client.setOwner(p, owner, group)),
  )
}

/** `fn(path)`, and with -R for everything under it (parents first). */
async function eachUnder(ctx: Ctx, path: string, fn: (p: string) => Promise<void>): Promise<void> {
  await fn(path)
  if (ctx.values['recursive'] !== true) return
  const st = await ctx.client.status(path)
  if (st.type !== 'DIRECTORY') return
  for (const e of await ctx.client.list(path)) await eachUnder(ctx, remoteJoin(path, e.pathSuffix), fn)
}

async function runFsck(ctx: Ctx): Promise<number> {
  const h = (await ctx.client.health()) as {
    blocks: number
    underReplicated: number
    missing: number
    corrupt: number
    underReplicatedBlocks: { id: number; path: string; live: number; replication: number }[]
    missingBlocks: { id: number; path: string }[]
    corruptReplicas: { id: number; path: string; nodes: string[] }[]
    datanodes: { id: string; zone: string; state: string; live: boolean }[]
  }
  if (ctx.values['json'] === true) ctx.io.out(JSON.stringify(h, null, 2))
  else {
    const live = h.datanodes.filter((d) => d.live).length
    ctx.io.out(`blocks: ${h.blocks}  datanodes: ${live} live of ${h.datanodes.length}`)
    ctx.io.out(`under-replicated: ${h.underReplicated}  missing: ${h.missing}  corrupt: ${h.corrupt}`)
    for (const b of h.underReplicatedBlocks)
      ctx.io.out(`UNDER_REPLICATED blk_${b.id} ${b.path} ${b.live}/${b.replication}`)
    for (const b of h.missingBlocks) ctx.io.out(`MISSING blk_${b.id} ${b.path}`)
    for (const b of h.corruptReplicas) ctx.io.out(`CORRUPT blk_${b.id} ${b.path} on ${b.nodes.join(',')}`)
    // Datanodes the leader does not count (dead, gone, or silent): their replicas are not live.
    for (const d of h.datanodes) if (!d.live) ctx.io.out(`DATANODE_DOWN ${d.id} ${d.zone} ${d.state}`)
    ctx.io.out(h.missing + h.corrupt === 0 ? 'Status: HEALTHY' : 'Status: CORRUPT')
  }
  return h.missing + h.corrupt === 0 ? EXIT_OK : EXIT_FAILURE
}

async function runDu(ctx: Ctx): Promise<number> {
  const paths = ctx.args.length === 0 ? ['/'] : ctx.args
  const human = ctx.values['human'] === true
  const size = (n: number) => (human ? humanBytes(n) : String(n))
  const rows: [string, string][] = []
  const code = await forEach(ctx, paths, async (raw) => {
    const path = ctx.remote(raw)
    if (ctx.values['summary'] === true) {
      rows.push([size((await ctx.client.contentSummary(path)).length), raw])
      return
    }
    const st = await ctx.client.status(path)
    if (st.type === 'FILE') {
      rows.push([size(st.length), raw])
      return
    }
    for (const e of await ctx.client.list(path)) {
      const child = remoteJoin(path, e.pathSuffix)
      const n = e.type === 'FILE' ? e.length : (await ctx.client.contentSummary(child)).length
      rows.push([size(n), child])
    }
  })
  const width = Math.max(0, ...rows.map(([s]) => s.length))
  for (const [s, p] of rows) ctx.io.out(`${s.padStart(width)}  ${p}`)
  return code
}

/** An octal permission (1 to 4 digits, at most 1777), else a usage error. */
function checkMode(mode: string, what: string): string {
  if (!/^[0-1]?[0-7]{1,3}$/.test(mode))
    throw new ConfigError(
      'BAD_CONFIG_VALUE',
      `${what}: bad mode '${mode}' (expected octal, e.g. 755 or 1777)`,
    )
  return mode
}
