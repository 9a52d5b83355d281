/**
 * The daemon's configuration: one table of keys ({@link CONFIG_KEYS}) read from three sources, merged
 * flags > config file > HOPSD_* environment > defaults, and validated once, here, at the edge. Inside
 * the daemon a {@link NodeConfig} is trusted.
 *
 * Every key has one spelling per source, derived from its flag name: `--bootstrap-expect` on the
 * command line, `bootstrap-expect` (or `bootstrapExpect`) in the YAML/JSON file, `HOPSD_BOOTSTRAP_EXPECT`
 * in the environment. To add a key (say `--swarm-key`), add a field to {@link NodeConfig} and a row to
 * {@link CONFIG_KEYS}; the CLI flags, the file keys, the environment variables, the help text and the
 * validation all follow from the row. Cross-field rules go in {@link checkCrossField}.
 *
 * @example
 * ```ts
 * const config = resolveConfig({ flags: { zone: 'z1', roles: 'metadata' }, env: process.env, cwd: process.cwd() })
 * ```
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { formatGpuSpec, isGpuError, parseGpuSpec, type GpuSpec } from '../gpu/index.js'
import { ConfigError } from './errors.js'

export const ROLES = ['metadata', 'datanode', 'gpu', 'serving'] as const
export type Role = (typeof ROLES)[number]

export interface HostPort {
  readonly host: string
  readonly port: number
}

export interface NodeConfig {
  /** Absolute path of the data directory (created on first start). */
  readonly dataDir: string
  /** Availability zone of this host; voters and replicas are spread across zones. */
  readonly zone: string
  /** What this node does; every node also serves the HTTP API and the gossip view. */
  readonly roles: readonly Role[]
  /** Address of the local HTTP API. */
  readonly http: HostPort
  /** Address of the libp2p listener (nodes talk to each other here). */
  readonly p2p: HostPort
  /**
   * How block data moves between nodes (pipeline writes, replica copies, remote block reads): `tls`,
   * direct TLS connections authenticated with node certificates (libp2p only toward peers without a
   * data-plane address yet); `libp2p`, over the libp2p streams that carry Raft and gossip.
   */
  readonly dataPlane: 'tls' | 'libp2p'
  /** Address of the data-plane TLS listener (datanodes); undefined = the p2p host, any free port. */
  readonly dataAddr: HostPort | undefined
  /** p2p addresses of other nodes to join through (may include this node's own). */
  readonly join: readonly HostPort[]
  /** Number of metadata nodes that must be present before the Raft group bootstraps. */
  readonly bootstrapExpect: number
  /**
   * The cluster's swarm key: the key file's text or a path to it; undefined = `<data-dir>/swarm.key`,
   * created on first start (fine for one node; a cluster shares one key made by `hopsd keygen`).
   */
  readonly swarmKey: string | undefined
  /**
   * A one-time join token (`hopsd token create`), or the path of a file holding one: lets this node be
   * admitted to a cluster that enforces admission (secure auth) without an admin's approval. Used once;
   * an admitted node needs it no more.
   */
  readonly joinToken: string | undefined
  /** Raft voters wanted (3 or 5); the other metadata nodes are learners. */
  readonly voters: 3 | 5
  /** Serve the HTTP API over TLS with the node certificate issued by the cluster CA. */
  readonly tls: boolean
  /**
   * How the cluster authenticates callers, chosen at bootstrap (the cluster's `auth` setting then
   * decides; an admin may change it): `secure` believes only keys, tokens and certificates; `simple`
   * also WebHDFS `user.name` (dev and tests). Until bootstrap, this node applies its own value.
   */
  readonly auth: 'simple' | 'secure'
  /** Gossip heartbeat period of the membership view. */
  readonly gossipIntervalMs: number
  /** A peer silent this long is suspect. */
  readonly suspectAfterMs: number
  /** A peer silent this long is dead. */
  readonly deadAfterMs: number
  /** A voter dead this long is replaced by a learner from another zone. */
  readonly voterGraceMs: number
  /** Raft tick; the election timeout is 10 ticks (randomised up to 20). */
  readonly raftTickMs: number
  /** MiB of decoded metadata rows kept on disk (the inodes) that a metadata replica caches in memory. */
  readonly metaCacheMib: number
  /** Datanode data directories (absolute); empty = `<data-dir>/blocks`. */
  readonly blockDirs: readonly string[]
  /** A datanode dead this long has its replicas re-created elsewhere. */
  readonly replicaGraceMs: number
  /** Bytes the datanode may use for blocks in all (0 = what the disks hold). */
  readonly blockCapacityBytes: number
  /** Bytes per second the block scanner re-verifies against their checksums (0 = no scanner). */
  readonly blockScanBytesPerS: number
  /**
   * How a node with the gpu role finds its GPUs (src/gpu): auto, none, one driver, or declared GPUs.
   * Nodes without the gpu role run no GPU discovery; for them only `auto` and `none` are accepted.
   */
  readonly gpus: GpuSpec
}

interface KeyDef<K extends keyof NodeConfig> {
  readonly key: K
  /** Flag name without dashes; the file key is the same (or its camelCase), the env var HOPSD_ + upper snake. */
  readonly flag: string
  /** Placeholder in help text, e.g. HOST:PORT. */
  readonly valueName: string
  readonly description: string
  /** Default as shown in help and README. */
  readonly defaultText: string
  readonly defaultValue: (cwd: string) => NodeConfig[K]
  /** Turns a raw value (a string from a flag or env var, any YAML value from the file) into a typed one. */
  readonly parse: (raw: unknown, name: string, cwd: string) => NodeConfig[K]
}

function def<K extends keyof NodeConfig>(d: KeyDef<K>): KeyDef<K> {
  return d
}

export const DEFAULT_HTTP = '127.0.0.1:9870'
export const DEFAULT_P2P = '127.0.0.1:4001'
export const DEFAULT_DATA_DIR = './hopsd-data'

/** The configuration keys, in help-text order. One row per key: see the module comment. */
export const CONFIG_KEYS = [
  def({
    key: 'dataDir',
    flag: 'data-dir',
    valueName: 'DIR',
    description: 'data directory: node key, lock, metadata and blocks; created on first start',
    defaultText: DEFAULT_DATA_DIR,
    defaultValue: (cwd) => resolve(cwd, DEFAULT_DATA_DIR),
    parse: (raw, name, cwd) => resolve(cwd, parseNonEmptyString(raw, name)),
  }),
  def({
    key: 'zone',
    flag: 'zone',
    valueName: 'NAME',
    description: 'availability zone of this host (letters, digits, ".", "_", "-")',
    defaultText: 'default',
    defaultValue: () => 'default',
    parse: parseZone,
  }),
  def({
    key: 'roles',
    flag: 'roles',
    valueName: 'LIST',
    description: `comma list of ${ROLES.join(',')}`,
    defaultText: ROLES.join(','),
    defaultValue: () => [...ROLES],
    parse: parseRoles,
  }),
  def({
    key: 'http',
    flag: 'http',
    valueName: 'HOST:PORT',
    description: 'address of the local HTTP API',
    defaultText: DEFAULT_HTTP,
    defaultValue: () => parseAddress(DEFAULT_HTTP, 'default'),
    parse: (raw, name) => parseAddress(parseNonEmptyString(raw, name), name),
  }),
  def({
    key: 'p2p',
    flag: 'p2p',
    valueName: 'HOST:PORT',
    description: 'address of the p2p listener (node to node)',
    defaultText: DEFAULT_P2P,
    defaultValue: () => parseAddress(DEFAULT_P2P, 'default'),
    parse: (raw, name) => parseAddress(parseNonEmptyString(raw, name), name),
  }),
  def({
    key: 'dataPlane',
    flag: 'data-plane',
    valueName: 'MODE',
    description:
      'how block data moves between nodes: direct TLS connections with node certificates, or libp2p streams',
    defaultText: 'tls',
    defaultValue: () => 'tls' as const,
    parse: (raw, name) => {
      const v = parseNonEmptyString(raw, name)
      if (v !== 'tls' && v !== 'libp2p')
        throw new ConfigError('BAD_CONFIG_VALUE', `${name}: expected tls or libp2p, got ${JSON.stringify(v)}`)
      return v
    },
  }),
  def({
    key: 'dataAddr',
    flag: 'data-addr',
    valueName: 'HOST:PORT',
    description: 'address of the data-plane TLS listener of a datanode (block streams)',
    defaultText: '<p2p host>:0 (any free port, advertised through gossip)',
    defaultValue: () => undefined,
    parse: (raw, name) => parseAddress(parseNonEmptyString(raw, name), name),
  }),
  def({
    key: 'join',
    flag: 'join',
    valueName: 'HOST:PORT[,...]',
    description: 'p2p addresses of other nodes to join through',
    defaultText: '(none)',
    defaultValue: () => [],
    parse: (raw, name) => parseList(raw, name).map((item) => parseAddress(item, name)),
  }),
  def({
    key: 'bootstrapExpect',
    flag: 'bootstrap-expect',
    valueName: 'N',
    description: 'metadata nodes to wait for before the metadata group bootstraps',
    defaultText: '1',
    defaultValue: () => 1,
    parse: (raw, name) => parseInteger(raw, name, 1, 7),
  }),
  def({
    key: 'swarmKey',
    flag: 'swarm-key',
    valueName: 'FILE',
    description:
      "the cluster's swarm key file (from 'hopsd keygen'); HOPSD_SWARM_KEY may hold the key itself",
    defaultText: '<data-dir>/swarm.key, created if missing',
    defaultValue: () => undefined,
    parse: (raw, name, cwd) => {
      const value = parseNonEmptyString(raw, name)
      // The key's own text (from the environment) stays as it is; a path resolves like the data dir.
      return value.trimStart().startsWith('/key/swarm/') ? value : resolve(cwd, value)
    },
  }),
  def({
    key: 'joinToken',
    flag: 'join-token',
    valueName: 'TOKEN',
    description:
      "a one-time join token from 'hopsd token create' (or a file holding it): admits this node to a cluster with secure auth without an admin's approval",
    defaultText: 'none: an admin approves the node (hopsd node approve ID)',
    defaultValue: () => undefined,
    parse: (raw, name, cwd) => {
      const value = parseNonEmptyString(raw, name).trim()
      // The token itself (from the environment, say) stays as it is; a path resolves like the data dir.
      return value.startsWith('hj1.') ? value : resolve(cwd, value)
    },
  }),
  def({
    key: 'voters',
    flag: 'voters',
    valueName: 'N',
    description: 'Raft voters wanted, 3 or 5, at most one per zone while zones suffice',
    defaultText: '3',
    defaultValue: () => 3 as const,
    parse: (raw, name) => {
      const n = parseInteger(raw, name, 3, 5)
      if (n !== 3 && n !== 5) throw new ConfigError('BAD_CONFIG_VALUE', `${name}: expected 3 or 5, got ${n}`)
      return n
    },
  }),
  def({
    key: 'tls',
    flag: 'tls',
    valueName: 'BOOL',
    description: 'serve the HTTP API over TLS with the node certificate from the cluster CA',
    defaultText: 'false',
    defaultValue: () => false,
    parse: parseBoolean,
  }),
  def({
    key: 'auth',
    flag: 'auth',
    valueName: 'MODE',
    description:
      'how the cluster authenticates callers, chosen at bootstrap: secure (keys, tokens, certificates) or simple (also WebHDFS user.name; dev and tests)',
    defaultText: 'secure',
    defaultValue: () => 'secure' as const,
    parse: (raw, name) => {
      const v = parseNonEmptyString(raw, name)
      if (v !== 'simple' && v !== 'secure')
        throw new ConfigError(
          'BAD_CONFIG_VALUE',
          `${name}: expected simple or secure, got ${JSON.stringify(v)}`,
        )
      return v
    },
  }),
  def({
    key: 'gossipIntervalMs',
    flag: 'gossip-interval-ms',
    valueName: 'MS',
    description: 'how often a node publishes its NodeInfo to the membership view',
    defaultText: '1000',
    defaultValue: () => 1000,
    parse: (raw, name) => parseInteger(raw, name, 10, 60_000),
  }),
  def({
    key: 'suspectAfterMs',
    flag: 'suspect-after-ms',
    valueName: 'MS',
    description: 'a node not heard from for this long is suspect',
    defaultText: '5000',
    defaultValue: () => 5000,
    parse: (raw, name) => parseInteger(raw, name, 20, 600_000),
  }),
  def({
    key: 'deadAfterMs',
    flag: 'dead-after-ms',
    valueName: 'MS',
    description: 'a node not heard from for this long is dead',
    defaultText: '30000',
    defaultValue: () => 30_000,
    parse: (raw, name) => parseInteger(raw, name, 40, 3_600_000),
  }),
  def({
    key: 'voterGraceMs',
    flag: 'voter-grace-ms',
    valueName: 'MS',
    description: 'a voter dead this long is replaced by a learner from another zone',
    defaultText: '60000',
    defaultValue: () => 60_000,
    parse: (raw, name) => parseInteger(raw, name, 0, 86_400_000),
  }),
  def({
    key: 'raftTickMs',
    flag: 'raft-tick-ms',
    valueName: 'MS',
    description: 'Raft tick; elections time out after 10 to 20 ticks, heartbeats every tick',
    defaultText: '100',
    defaultValue: () => 100,
    parse: (raw, name) => parseInteger(raw, name, 5, 10_000),
  }),
  def({
    key: 'metaCacheMib',
    flag: 'meta-cache-mib',
    valueName: 'MIB',
    description: 'memory for the hot rows of the metadata tables kept on disk (inodes and inline bytes)',
    defaultText: '64',
    defaultValue: () => 64,
    parse: (raw, name) => parseInteger(raw, name, 1, 1_048_576),
  }),
  def({
    key: 'blockDirs',
    flag: 'block-dirs',
    valueName: 'DIR[,DIR]',
    description: 'datanode directories for block replicas',
    defaultText: '<data-dir>/blocks',
    defaultValue: () => [],
    parse: (raw, name, cwd) => parseList(raw, name).map((d) => resolve(cwd, d)),
  }),
  def({
    key: 'replicaGraceMs',
    flag: 'replica-grace-ms',
    valueName: 'MS',
    description: 'a datanode dead this long has its block replicas re-created on other nodes',
    defaultText: '120000',
    defaultValue: () => 120_000,
    parse: (raw, name) => parseInteger(raw, name, 0, 86_400_000),
  }),
  def({
    key: 'blockScanBytesPerS',
    flag: 'block-scan-bytes-per-s',
    valueName: 'BYTES',
    description: 'the block scanner re-verifies replicas against their checksums at this rate (0: off)',
    defaultText: '1048576',
    defaultValue: () => 1_048_576,
    parse: (raw, name) => parseInteger(raw, name, 0, 2 ** 34),
  }),
  def({
    key: 'blockCapacityBytes',
    flag: 'block-capacity-bytes',
    valueName: 'BYTES',
    description: 'bytes the datanode may use for blocks (0: what its disks hold)',
    defaultText: '0',
    defaultValue: () => 0,
    parse: (raw, name) => parseInteger(raw, name, 0, Number.MAX_SAFE_INTEGER),
  }),
  def({
    key: 'gpus',
    flag: 'gpus',
    valueName: 'SPEC',
    description:
      'GPUs of a gpu node: auto (nvidia-smi, then rocm-smi, then amd-smi), none, nvidia-smi, rocm-smi, amd-smi, or declared:COUNT[:MODEL[:MEMORY_MIB]] (the file also takes a list of declared GPUs)',
    defaultText: 'auto',
    defaultValue: () => ({ kind: 'auto' }) as const,
    parse: parseGpus,
  }),
] as const

export type ConfigKeyDef = (typeof CONFIG_KEYS)[number]

/** HOPSD_DATA_DIR for data-dir. */
export function envName(flag: string): string {
  return 'HOPSD_' + flag.toUpperCase().replaceAll('-', '_')
}

/** The config file path may come from --config or HOPSD_CONFIG (never from the file itself). */
export const CONFIG_FILE_ENV = 'HOPSD_CONFIG'

export interface ConfigSources {
  /** Flag values as strings, keyed by flag name (`data-dir`); undefined = not given. */
  readonly flags?: Readonly<Record<string, string | undefined>>
  /** The environment; only HOPSD_* variables are read. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Path of a YAML or JSON config file (from --config, else HOPSD_CONFIG). */
  readonly configFile?: string
  /** Relative paths (data dir, config file) resolve against this directory. */
  readonly cwd: string
}

/**
 * Merges the sources (flags > file > env > defaults) and validates every value and the cross-field
 * rules. Throws {@link ConfigError} with a one-line message naming the flag, variable or file key.
 */
export function resolveConfig(sources: ConfigSources): NodeConfig {
  const { cwd } = sources
  const flags = sources.flags ?? {}
  const env = sources.env ?? {}
  const filePath = sources.configFile ?? flags['config'] ?? nonEmpty(env[CONFIG_FILE_ENV])
  const file = filePath === undefined ? undefined : readConfigFile(resolve(cwd, filePath))

  const out: Record<string, unknown> = {}
  for (const k of CONFIG_KEYS) {
    const flagValue = flags[k.flag]
    const envValue = nonEmpty(env[envName(k.flag)])
    if (flagValue !== undefined) out[k.key] = k.parse(flagValue, `--${k.flag}`, cwd)
    else if (file !== undefined && file.values.has(k.flag)) {
      // Relative paths in the file resolve against the file's directory, like most daemons do.
      out[k.key] = k.parse(file.values.get(k.flag), `config file ${file.path}: ${k.flag}`, file.dir)
    } else if (envValue !== undefined) out[k.key] = k.parse(envValue, envName(k.flag), cwd)
    else out[k.key] = k.defaultValue(cwd)
  }
  const config = out as unknown as NodeConfig
  checkCrossField(config)
  return config
}

/** Rules that span keys, checked once the values are merged. */
function checkCrossField(config: NodeConfig): void {
  if (config.deadAfterMs <= config.suspectAfterMs) {
    throw new ConfigError(
      'BAD_CONFIG_VALUE',
      `--dead-after-ms (${config.deadAfterMs}) must be greater than --suspect-after-ms (${config.suspectAfterMs})`,
    )
  }
  if (config.suspectAfterMs < 2 * config.gossipIntervalMs) {
    throw new ConfigError(
      'BAD_CONFIG_VALUE',
      `--suspect-after-ms (${config.suspectAfterMs}) must be at least two gossip intervals (${2 * config.gossipIntervalMs})`,
    )
  }
  if (!config.roles.includes('gpu') && (config.gpus.kind === 'declared' || config.gpus.kind === 'driver')) {
    throw new ConfigError(
      'BAD_GPU_SPEC',
      `--gpus ${formatGpuSpec(config.gpus)} needs the gpu role (--roles is ${config.roles.join(',')}); nodes without it find no GPUs`,
    )
  }
  if (config.http.port !== 0 && sameAddress(config.http, config.p2p)) {
    throw new ConfigError(
      'BAD_ADDRESS',
      `--http and --p2p are both ${formatAddress(config.http)}: they must differ`,
    )
  }
}

interface ConfigFile {
  readonly path: string
  readonly dir: string
  /** Values keyed by flag name (camelCase keys in the file are mapped to it). */
  readonly values: Map<string, unknown>
}

const FILE_KEYS = new Map<string, string>(
  CONFIG_KEYS.flatMap((k) => [
    [k.flag, k.flag],
    [k.key, k.flag],
  ]),
)

function readConfigFile(path: string): ConfigFile {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError('BAD_CONFIG_FILE', `config file ${path}: cannot read it (${errnoText(err)})`, {
      cause: err,
    })
  }
  let doc: unknown
  try {
    // YAML is a superset of JSON: one parser reads both.
    doc = parseYaml(text, { prettyErrors: false, uniqueKeys: true })
  } catch (err) {
    const first = String((err as Error).message).split('\n')[0]
    throw new ConfigError('BAD_CONFIG_FILE', `config file ${path}: not valid YAML or JSON (${first})`, {
      cause: err,
    })
  }
  if (doc === null || doc === undefined) doc = {}
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError('BAD_CONFIG_FILE', `config file ${path}: expected a mapping of keys to values`)
  }
  const values = new Map<string, unknown>()
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const flag = FILE_KEYS.get(key)
    if (flag === undefined) {
      throw new ConfigError(
        'BAD_CONFIG_FILE',
        `config file ${path}: unknown key '${key}' (known: ${CONFIG_KEYS.map((k) => k.flag).join(', ')})`,
      )
    }
    if (values.has(flag))
      throw new ConfigError('BAD_CONFIG_FILE', `config file ${path}: key '${flag}' given twice`)
    values.set(flag, value)
  }
  return { path, dir: resolve(path, '..'), values }
}

// ---- value parsers: each throws a ConfigError naming `name` (the flag, env var or file key) ----

function parseNonEmptyString(raw: unknown, name: string): string {
  if (typeof raw === 'number') raw = String(raw)
  if (typeof raw !== 'string' || raw.trim() === '') {
    throw new ConfigError('BAD_CONFIG_VALUE', `${name}: expected a non-empty string, got ${describe(raw)}`)
  }
  return raw.trim()
}

function parseZone(raw: unknown, name: string): string {
  const zone = parseNonEmptyString(raw, name)
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(zone)) {
    throw new ConfigError(
      'BAD_CONFIG_VALUE',
      `${name}: zone '${zone}' must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    )
  }
  return zone
}

function parseRoles(raw: unknown, name: string): Role[] {
  const items = parseList(raw, name)
  if (items.length === 0)
    throw new ConfigError('UNKNOWN_ROLE', `${name}: give at least one role of ${ROLES.join(',')}`)
  const roles: Role[] = []
  for (const item of items) {
    if (!(ROLES as readonly string[]).includes(item)) {
      throw new ConfigError('UNKNOWN_ROLE', `${name}: unknown role '${item}' (roles: ${ROLES.join(',')})`)
    }
    if (!roles.includes(item as Role)) roles.push(item as Role)
  }
  // Canonical order, so that two spellings of the same set compare equal.
  return ROLES.filter((r) => roles.includes(r))
}

/** A comma-separated string, or (from the file) an array of strings. */
function parseList(raw: unknown, name: string): string[] {
  if (Array.isArray(raw)) {
    return raw.map((item) => {
      if (typeof item !== 'string' || item.trim() === '') {
        throw new ConfigError(
          'BAD_CONFIG_VALUE',
          `${name}: expected a list of strings, got ${describe(item)} in it`,
        )
      }
      return item.trim()
    })
  }
  if (typeof raw !== 'string') {
    throw new ConfigError(
      'BAD_CONFIG_VALUE',
      `${name}: expected a comma list or an array, got ${describe(raw)}`,
    )
  }
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
}

/** --gpus: src/gpu owns the grammar; a bad value becomes a ConfigError naming where it came from. */
function parseGpus(raw: unknown, name: string): GpuSpec {
  try {
    return parseGpuSpec(raw)
  } catch (err) {
    if (isGpuError(err)) throw new ConfigError(err.code, `${name}: ${err.message}`, { cause: err })
    throw err
  }
}

function parseBoolean(raw: unknown, name: string): boolean {
  if (typeof raw === 'boolean') return raw
  if (typeof raw === 'string' && /^(true|1|yes|on)$/i.test(raw.trim())) return true
  if (typeof raw === 'string' && /^(false|0|no|off)$/i.test(raw.trim())) return false
  throw new ConfigError('BAD_CONFIG_VALUE', `${name}: expected true or false, got ${describe(raw)}`)
}

function parseInteger(raw: unknown, name: string, min: number, max: number): number {
  const n =
    typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(
      'BAD_CONFIG_VALUE',
      `${name}: expected an integer in ${min}..${max}, got ${describe(raw)}`,
    )
  }
  return n
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/

/** HOST:PORT, where HOST is a hostname, an IPv4 address or a bracketed IPv6 address. */
export function parseAddress(text: string, name: string): HostPort {
  const bad = (why: string): never => {
    throw new ConfigError('BAD_ADDRESS', `${name}: bad address '${text}' (${why}; expected HOST:PORT)`)
  }
  const m = /^(\[([0-9A-Fa-f:.]+)\]|[^:[\]]+):(\d{1,5})$/.exec(text.trim())
  if (m === null) return bad('not HOST:PORT')
  const port = Number(m[3])
  if (port > 65535) bad(`port ${port} is above 65535`)
  const host = m[2] ?? m[1]!
  if (m[2] === undefined && !IPV4.test(host) && (!HOSTNAME.test(host) || /^[\d.]+$/.test(host))) {
    bad(`'${host}' is not a hostname or IP address`)
  }
  return { host, port }
}

export function formatAddress(a: HostPort): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}

function sameAddress(a: HostPort, b: HostPort): boolean {
  return a.port === b.port && a.host === b.host
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s
}

function describe(raw: unknown): string {
  if (typeof raw === 'string') return `'${raw}'`
  if (raw === null || raw === undefined) return 'nothing'
  if (Array.isArray(raw)) return 'a list'
  if (typeof raw === 'object') return 'a mapping'
  return String(raw)
}

export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  return e?.code ?? e?.message ?? String(err)
}

/** `http://HOST:PORT` for a client on this host (wildcard binds are reached through loopback). */
export function httpUrl(a: HostPort): string {
  const host = a.host === '0.0.0.0' ? '127.0.0.1' : a.host === '::' ? '::1' : a.host
  return `http://${formatAddress({ host, port: a.port })}`
}

/** A configuration with every default, for tests and tools. */
export function defaultConfig(cwd: string, overrides: Partial<NodeConfig> = {}): NodeConfig {
  return { ...resolveConfig({ cwd }), ...overrides }
}
