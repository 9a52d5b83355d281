/**
 * An N-node hopsd cluster on loopback, for tests and benchmarks: one `hopsd start` process per node
 * ({@link startNode}), all holding one fresh swarm key, each on its own free HTTP and p2p port and data
 * dir, in zones z1..zN unless told otherwise, every node listing the seed nodes' p2p addresses in
 * `--join`, and `--bootstrap-expect` = the number of metadata nodes started together.
 *
 * A node whose freshly picked port another process bound between {@link freePorts} and the node's own
 * bind (the daemon exits with PORT_IN_USE) is started again on new ports, up to `portAttempts` times;
 * it still joins every seed, so the others meet it. Ports and data dirs given in a spec are kept as
 * they are (no retry). Nodes can be added later ({@link LoopbackCluster.start}) and restarted on the
 * same data dir, ports and flags ({@link LoopbackCluster.restart}).
 *
 * Nodes run `--auth simple` unless the options say `auth: 'secure'` (hopsd's own default): tests act as
 * anyone through WebHDFS `user.name`; tests of authentication use {@link LoopbackCluster.adminKey}.
 *
 * Every node is also registered with {@link stopAllNodes}; the cluster's directory (a
 * {@link makeTempDir} one unless `dir` is given) goes with {@link removeTempDirs}.
 *
 * @example
 * ```ts
 * // 3 nodes, z1..z3, every role, --join all three, --bootstrap-expect 3:
 * const cluster = await startCluster({ nodes: 3, env: { HOPSD_LOG_LEVEL: 'warn' } })
 * const [a, b, c] = cluster.handles
 *
 * // 3 metadata + 1 datanode-only node; only the metadata nodes are --join seeds, --bootstrap-expect 3:
 * const meta = (i: number) => ({ zone: `z${i}`, roles: ['metadata'] })
 * const c2 = await startCluster({
 *   nodes: [meta(1), meta(2), meta(3), { zone: 'z1', roles: ['datanode'], seed: false }],
 *   extraArgs: ['--raft-tick-ms', '20'],
 * })
 * c2.nodes[1]!.handle.kill('SIGKILL')
 * await c2.restart(c2.nodes[1]!)   // same data dir, ports and flags: the same node id
 * await c2.stop()
 * ```
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROLES as HOPSD_ROLES } from '../../src/node/config.js'
import { generateSwarmKey } from '../../src/node/p2p/swarm-key.js'
import { freePorts, makeTempDir, startNode, waitFor, type NodeHandle } from './index.js'

/** Writes a fresh swarm key file (`/key/swarm/psk/1.0.0/`, `/base16/`, 64 hex digits), mode 0600; returns `path`. */
export function writeSwarmKey(path: string): string {
  writeFileSync(path, generateSwarmKey(), { mode: 0o600 })
  return path
}

/**
 * Membership and Raft timings for tests that want failures noticed fast yet still hold on a loaded
 * 2-core host: gossip every 100 ms, suspect after 600 ms, dead after 1.5 s, Raft tick 20 ms.
 */
export const FAST_TIMING_ARGS = [
  '--gossip-interval-ms',
  '100',
  '--suspect-after-ms',
  '600',
  '--dead-after-ms',
  '1500',
  '--raft-tick-ms',
  '20',
] as const

/** One node to start. Every field is optional; the defaults depend on the node's position k (1-based). */
export interface LoopbackNodeSpec {
  /** A label for logs and failure reports (default `n<k>`). */
  readonly name?: string
  /** `--zone` (default `z<k>`). */
  readonly zone?: string
  /** `--roles`; default the cluster's `roles`, else no flag (hopsd runs every role). */
  readonly roles?: readonly string[]
  /** Whether this node's p2p address is on every node's `--join` list (default true). */
  readonly seed?: boolean
  /** Arguments after the cluster's `extraArgs`. */
  readonly extraArgs?: readonly string[]
  /** Environment over the cluster's `env`. */
  readonly env?: Record<string, string | undefined>
  /** Another swarm key file than the cluster's (a node that must not get in). */
  readonly swarmKeyFile?: string
  /** `HOST:PORT` to reuse; a free loopback port when omitted. */
  readonly http?: string
  /** `HOST:PORT` to reuse; a free loopback port when omitted. */
  readonly p2p?: string
  /** The data dir (created if missing); default `<dir>/n<k>`. */
  readonly dataDir?: string
}

export interface StartNodesOptions {
  /**
   * `--bootstrap-expect` for the nodes of this call: a number, `null` for no flag, or (undefined) the
   * number of nodes of this call that run the metadata role (no flag when none does).
   */
  readonly bootstrapExpect?: number | null
  /**
   * Resolve only when every node of this call holds its node certificate and sees each connected
   * node of the cluster as `verified` at its peer gate (GET /api/v1/node → trust), within this many
   * ms; until then the gate keeps Raft, gossip and blocks away from a node, so a test's short
   * deadlines would measure admission instead of what they test. Default: {@link startCluster}
   * waits (90 s), {@link LoopbackCluster.start} does not (a node without admission never certifies).
   */
  readonly certifiedTimeoutMs?: number
}

export interface StartClusterOptions extends StartNodesOptions {
  /** How many nodes (all defaults), or one spec per node; 0 makes only the directory and the key. */
  readonly nodes: number | readonly LoopbackNodeSpec[]
  /** The cluster's directory (created if missing); default a fresh {@link makeTempDir}(`prefix`). */
  readonly dir?: string
  /** Prefix of the temp dir when `dir` is not given (default `hopsd-cluster-`). */
  readonly prefix?: string
  /** Use this swarm key file instead of writing a fresh `<dir>/swarm.key`. */
  readonly swarmKeyFile?: string
  /** `--roles` of every node whose spec names none. */
  readonly roles?: readonly string[]
  /** Arguments for every node, after `--swarm-key FILE`. */
  readonly extraArgs?: readonly string[]
  /** Environment of every node (over this process's). */
  readonly env?: Record<string, string | undefined>
  /** How long each node may take to answer /health (default 60 s: tsx on a loaded 2-core host). */
  readonly readyTimeoutMs?: number
  /** Starts of one node on fresh ports when the daemon says PORT_IN_USE (default 3). */
  readonly portAttempts?: number
  /**
   * `--auth` of every node: `simple` by default (tests act as anyone with `user.name`); tests of
   * authentication pass `secure` and use the admin key the bootstrapping node writes
   * ({@link LoopbackCluster.adminKey}).
   */
  readonly auth?: 'simple' | 'secure'
}

/** `trust` of GET /api/v1/node: the node's own certificate and its peers at the peer gate. */
interface NodeTrust {
  readonly certified: boolean
  readonly peers: readonly { readonly id: string; readonly status: string }[]
}

/** A node of the cluster: where it lives and its current process. */
export interface LoopbackNode {
  /** Position in start order over the cluster's life, from 1. */
  readonly index: number
  readonly name: string
  readonly zone: string
  /** The roles it runs (with no `--roles` flag: every role, as hopsd's default). */
  readonly roles: readonly string[]
  readonly dataDir: string
  /** `HOST:PORT` of its HTTP API (also `handle.http`; kept across restarts). */
  readonly http: string
  /** `HOST:PORT` of its p2p listener (kept across restarts). */
  readonly p2p: string
  /** Whether its p2p address is on the `--join` lists. */
  readonly seed: boolean
  /** The running process, or the last one; {@link LoopbackCluster.restart} replaces it. */
  handle: NodeHandle
}

/** What a node was started with, for restarts. */
interface Launch {
  readonly spec: LoopbackNodeSpec
  readonly bootstrapExpect: number | null
}

const DEFAULT_READY_TIMEOUT_MS = 60_000
const DEFAULT_PORT_ATTEMPTS = 3
/** hopsd's roles: what a node started without `--roles` runs. */
const ROLES: readonly string[] = HOPSD_ROLES

export class LoopbackCluster {
  /** The cluster's directory: the swarm key and the nodes' data dirs. */
  readonly dir: string
  /** The swarm key file every node gets (`--swarm-key`), unless its spec names another. */
  readonly swarmKeyFile: string
  /** Every node started, in start order; a stopped or killed node stays (for restarts). */
  readonly nodes: LoopbackNode[] = []
  readonly #opts: StartClusterOptions
  readonly #launches = new Map<LoopbackNode, Launch>()
  /** The next node's position (a failed start uses its numbers up: no data dir is used twice). */
  #next = 1

  /** Makes the directory and the key; no node yet (see {@link startCluster}). */
  constructor(opts: Omit<StartClusterOptions, 'nodes'> = {}) {
    this.#opts = { ...opts, nodes: 0 }
    this.dir = opts.dir ?? makeTempDir(opts.prefix ?? 'hopsd-cluster-')
    mkdirSync(this.dir, { recursive: true })
    this.swarmKeyFile = opts.swarmKeyFile ?? writeSwarmKey(join(this.dir, 'swarm.key'))
  }

  /** The nodes' current processes, in start order. */
  get handles(): NodeHandle[] {
    return this.nodes.map((n) => n.handle)
  }

  /** The p2p addresses on every `--join` list: the seed nodes', in start order. */
  seedAddrs(): string[] {
    return this.nodes.filter((n) => n.seed).map((n) => n.p2p)
  }

  /**
   * Starts nodes into the cluster, all at once, and resolves when each answers /health. They join
   * every seed (the earlier ones and those of this call). If one cannot start, the others of this call
   * are stopped and the promise rejects with its error and their log tails.
   */
  async start(
    nodes: number | readonly LoopbackNodeSpec[],
    opts: StartNodesOptions = {},
  ): Promise<LoopbackNode[]> {
    const specs: readonly LoopbackNodeSpec[] =
      typeof nodes === 'number' ? Array.from({ length: nodes }, () => ({})) : nodes
    if (specs.length === 0) return []
    const metadataNodes = specs.filter((s) => (s.roles ?? this.#opts.roles ?? ROLES).includes('metadata'))
    const bootstrapExpect =
      opts.bootstrapExpect !== undefined ? opts.bootstrapExpect : metadataNodes.length || null
    const ports = await freePorts(specs.length * 2)
    const first = this.#next
    this.#next += specs.length
    const planned = specs.map((spec, i) => ({
      spec,
      http: spec.http ?? ports[2 * i]!,
      p2p: spec.p2p ?? ports[2 * i + 1]!,
    }))
    const seeds = [...this.seedAddrs(), ...planned.filter((p) => p.spec.seed !== false).map((p) => p.p2p)]
    const settled = await Promise.allSettled(
      planned.map(async ({ spec, http, p2p }, i): Promise<LoopbackNode> => {
        const index = first + i
        const fresh = spec.http === undefined && spec.p2p === undefined
        const attempts = this.#opts.portAttempts ?? DEFAULT_PORT_ATTEMPTS
        for (let attempt = 1; ; attempt++) {
          try {
            const handle = await this.#run(index, spec, http, p2p, seeds, bootstrapExpect)
            const node: LoopbackNode = {
              index,
              name: spec.name ?? `n${index}`,
              zone: spec.zone ?? `z${index}`,
              roles: spec.roles ?? this.#opts.roles ?? ROLES,
              dataDir: this.#dataDir(index, spec),
              http,
              p2p,
              seed: spec.seed !== false,
              handle,
            }
            this.#launches.set(node, { spec, bootstrapExpect })
            return node
          } catch (err) {
            const message = String((err as Error).message)
            if (!fresh || attempt >= attempts || !message.includes('PORT_IN_USE')) throw err
            process.stderr.write(
              `${this.dir}: node ${spec.name ?? `n${index}`}: ${message.slice(0, 200)}; new ports, attempt ${attempt + 1}\n`,
            )
            ;[http, p2p] = (await freePorts(2)) as [string, string]
          }
        }
      }),
    )
    const started = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
    const failed = settled.find((r) => r.status === 'rejected')
    if (failed !== undefined) {
      const tails = this.logTails(20, { nodes: started })
      await Promise.all(started.map((n) => n.handle.stop(10_000)))
      const why = `${specs.length - started.length} of ${specs.length} nodes did not start`
      const reason = failed.reason as Error
      throw new Error(`${why}: ${reason.message}\n${tails}`, { cause: reason })
    }
    this.nodes.push(...started)
    if (opts.certifiedTimeoutMs !== undefined)
      await this.awaitCertified(started, opts.certifiedTimeoutMs).catch(async (err: unknown) => {
        await Promise.all(started.map((n) => n.handle.stop(10_000)))
        throw err
      })
    return started
  }

  /**
   * Waits until each of `nodes` (default all running) holds its node certificate and every node of
   * the cluster it is connected to is `verified` at its peer gate (see
   * {@link StartNodesOptions.certifiedTimeoutMs}).
   */
  async awaitCertified(nodes: readonly LoopbackNode[] = this.nodes, timeoutMs = 90_000): Promise<void> {
    const ids = () => new Set(this.nodes.map((n) => n.handle.id).filter((id) => id !== ''))
    const headers = async (): Promise<Record<string, string>> =>
      this.#opts.auth === 'secure' ? { authorization: `Bearer ${await this.adminKey(timeoutMs)}` } : {}
    const query = this.#opts.auth === 'secure' ? '' : '?user.name=hopsd'
    const pending = async (): Promise<string[]> => {
      const h = await headers()
      const known = ids()
      const left: string[] = []
      for (const n of nodes) {
        const trust = await fetch(`${n.handle.url}/api/v1/node${query}`, { headers: h })
          .then(async (r) => (r.ok ? ((await r.json()) as { trust?: NodeTrust }).trust : undefined))
          .catch(() => undefined)
        const unverified = (trust?.peers ?? []).filter((p) => known.has(p.id) && p.status !== 'verified')
        if (trust?.certified !== true || unverified.length > 0)
          left.push(`${n.name}: certified ${trust?.certified ?? '?'}, unverified peers ${unverified.length}`)
      }
      return left
    }
    let last: string[] = []
    await waitFor(
      async () => {
        last = await pending()
        return last.length === 0 ? true : undefined
      },
      { timeoutMs, intervalMs: 200, what: `${this.dir}: certified nodes` },
    ).catch((err: Error) => {
      throw new Error(`${err.message} (${last.join('; ')})\n${this.logTails(20, { nodes })}`, {
        cause: err,
      })
    })
  }

  /**
   * Starts `node` again once its process has exited: same data dir, ports and flags (so the same node
   * id), joining every seed the cluster knows now. `bootstrapExpect` replaces the node's first one
   * (`null`: no flag).
   */
  async restart(node: LoopbackNode, opts: StartNodesOptions = {}): Promise<NodeHandle> {
    const launch = this.#launches.get(node)
    if (launch === undefined) throw new Error('restart: not a node of this cluster')
    await node.handle.exited
    node.handle = await this.#run(
      node.index,
      launch.spec,
      node.http,
      node.p2p,
      this.seedAddrs(),
      opts.bootstrapExpect !== undefined ? opts.bootstrapExpect : launch.bootstrapExpect,
    )
    return node.handle
  }

  /**
   * The admin key (`<data-dir>/admin.key` of the node that initialised the cluster), once one node has
   * written it; waits up to `timeoutMs` (the cluster initialises itself seconds after it forms).
   */
  async adminKey(timeoutMs = 60_000): Promise<string> {
    return waitFor(
      () => {
        for (const n of this.nodes) {
          try {
            return readFileSync(join(n.dataDir, 'admin.key'), 'utf8').trim()
          } catch {
            // not this one (yet)
          }
        }
        return undefined
      },
      { timeoutMs, intervalMs: 200, what: `${this.dir}: an admin.key in a node's data dir` },
    )
  }

  /** Stops every node still running (SIGTERM, SIGKILL after `timeoutMs`). */
  async stop(timeoutMs = 10_000): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.handle.stop(timeoutMs)))
  }

  /**
   * The last `lines` lines of each node's output (stdout, then stderr), under a `----- ` header line
   * naming the node; `exclude` drops lines before counting (e.g. request logs).
   */
  /**
   * Writes every node's whole stdout and stderr under `dir/<label>/` (nothing when `dir` is unset): the
   * tails printed on failure hold the last lines only (HOPSD_TEST_LOG_DIR).
   */
  writeLogs(dir: string | undefined, label: string): void {
    if (dir === undefined || dir === '') return
    const into = join(dir, `${label}-${Date.now()}`)
    mkdirSync(into, { recursive: true })
    for (const n of this.nodes) {
      const { stdout, stderr } = n.handle.logs()
      writeFileSync(join(into, `${n.name}-${n.zone}-${n.handle.id || 'unknown'}.log`), stdout + stderr)
    }
    process.stderr.write(`full node logs of ${label}: ${into}\n`)
  }

  logTails(
    lines = 40,
    opts: { nodes?: readonly LoopbackNode[]; exclude?: (line: string) => boolean } = {},
  ): string {
    return (opts.nodes ?? this.nodes)
      .map((n) => {
        const { stdout, stderr } = n.handle.logs()
        const tail = (stdout + stderr)
          .trimEnd()
          .split('\n')
          .filter((l) => opts.exclude === undefined || !opts.exclude(l))
          .slice(-lines)
          .join('\n')
        return (
          `----- ${n.name} (${n.zone}, ${n.roles.join(',')}, ${n.handle.url}, p2p ${n.p2p}, ` +
          `id ${n.handle.id || '?'}, pid ${n.handle.pid}) -----\n${tail}`
        )
      })
      .join('\n')
  }

  #dataDir(index: number, spec: LoopbackNodeSpec): string {
    return spec.dataDir ?? join(this.dir, `n${index}`)
  }

  /** One `hopsd start` of the node at `index` with these addresses; resolves when /health answers. */
  async #run(
    index: number,
    spec: LoopbackNodeSpec,
    http: string,
    p2p: string,
    seeds: readonly string[],
    bootstrapExpect: number | null,
  ): Promise<NodeHandle> {
    const dataDir = this.#dataDir(index, spec)
    mkdirSync(dataDir, { recursive: true })
    return startNode({
      dataDir,
      zone: spec.zone ?? `z${index}`,
      roles: spec.roles ?? this.#opts.roles,
      http,
      p2p,
      // A seed started again on new ports (PORT_IN_USE) lists its own new address too.
      join: spec.seed !== false ? [...new Set([...seeds, p2p])] : seeds,
      bootstrapExpect: bootstrapExpect ?? undefined,
      extraArgs: [
        '--swarm-key',
        spec.swarmKeyFile ?? this.swarmKeyFile,
        ...(this.#opts.extraArgs ?? []),
        ...(spec.extraArgs ?? []),
      ],
      env: { ...this.#opts.env, ...spec.env },
      readyTimeoutMs: this.#opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
      auth: this.#opts.auth,
    })
  }
}

/**
 * Makes the cluster's directory and swarm key, starts `nodes` (see {@link LoopbackCluster.start}) and
 * resolves when every node answers /health (not when a leader is elected: wait for what the test
 * needs). On failure the nodes that did start are stopped.
 */
export async function startCluster(opts: StartClusterOptions): Promise<LoopbackCluster> {
  const cluster = new LoopbackCluster(opts)
  await cluster.start(opts.nodes, {
    bootstrapExpect: opts.bootstrapExpect,
    certifiedTimeoutMs: opts.certifiedTimeoutMs ?? 90_000,
  })
  return cluster
}
