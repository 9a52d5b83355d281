/**
 * Cluster-test harness: real `hopsd start` processes on loopback (test/helpers startNode), one swarm key
 * per cluster, fast test timings, helpers to read the cluster document and to write/read small files,
 * and a cross-process lock so that only one cluster test file runs its daemons at a time (vitest runs
 * files in parallel; two 5-process clusters on a loaded 2-core machine would make every timing lie).
 *
 * @example
 * ```ts
 * const c = new TestCluster('boot')
 * beforeAll(() => c.open(), LOCK_WAIT_MS)        // takes the lock, makes the key and the temp dir
 * afterAll(() => c.close())                       // stops every node, prints log tails on failure
 * await c.startMany([{ zone: 'z1' }, { zone: 'z2' }, { zone: 'z3' }], { bootstrapExpect: 3 })
 * const doc = await c.waitForAgreement(c.nodes, { voters: 3 })
 * ```
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, onTestFailed } from 'vitest'
import { generateSwarmKey } from '../../src/node/p2p/index.js'
import {
  freePorts,
  getJson,
  isProcessAlive,
  makeTempDir,
  startNode,
  waitFor,
  type NodeHandle,
} from '../helpers/index.js'

/**
 * Timings for a loaded 2-core machine (load 8-10 is common): fast enough that the 5 s assertions hold,
 * slow enough that a busy event loop doesn't look like a dead node. Raft: elections after 10-20 ticks.
 */
export const TEST_TIMINGS = {
  gossipIntervalMs: 150,
  suspectAfterMs: 900,
  deadAfterMs: 2_000,
  raftTickMs: 40,
  voterGraceMs: 2_000,
} as const

export function timingArgs(t: Partial<typeof TEST_TIMINGS> = {}): string[] {
  const v = { ...TEST_TIMINGS, ...t }
  return [
    '--gossip-interval-ms',
    String(v.gossipIntervalMs),
    '--suspect-after-ms',
    String(v.suspectAfterMs),
    '--dead-after-ms',
    String(v.deadAfterMs),
    '--raft-tick-ms',
    String(v.raftTickMs),
    '--voter-grace-ms',
    String(v.voterGraceMs),
  ]
}

/** The superuser: permissions never get in the way of what these tests check. */
export const USER = 'hopsd'
/** How long beforeAll may wait for another cluster file to finish (the lock). */
export const LOCK_WAIT_MS = 400_000
/**
 * Per test: starting 3-5 daemons under tsx on a 2-core machine at load 20+ has taken 50 s; the
 * assertions with tight bounds (5 s fail-over, 5 s convergence) measure their own intervals.
 */
export const CLUSTER_TEST_TIMEOUT_MS = 180_000
/** Starts of one node on fresh ports when another process took them first. */
const PORT_RETRIES_MAX = 3
/** A fresh cluster (processes under tsx, on a loaded machine) may take this long to elect and commit. */
export const CLUSTER_READY_MS = 60_000

export interface ClusterMember {
  id: string
  zone: string
}

export interface ClusterDoc {
  clusterId: string
  leader: ClusterMember | null
  term: number
  commitIndex: number
  voters: ClusterMember[]
  learners: ClusterMember[]
  zones: Record<string, string[]>
}

export interface NodeViewEntry {
  id: string
  zone: string
  roles: string[]
  httpAddr: string
  liveness: 'alive' | 'suspect' | 'dead' | 'left'
  self: boolean
}

export interface NodeSpec {
  zone: string
  roles?: string[]
  /** Reuse these ports and data dir (a restart); fresh ones when omitted. */
  http?: string
  p2p?: string
  dataDir?: string
  /** A different swarm key file (the wrong-key test). */
  swarmKeyFile?: string
  extraArgs?: string[]
}

export interface StartOptions {
  bootstrapExpect?: number
  /** Override test timings for these nodes. */
  timings?: Partial<typeof TEST_TIMINGS>
}

/** The node's /api/v1/cluster document. */
export function clusterOf(node: NodeHandle): Promise<ClusterDoc> {
  return getJson<ClusterDoc>(`${node.url}/api/v1/cluster`)
}

/** The node's membership view (/api/v1/nodes). */
export async function viewOf(node: NodeHandle): Promise<NodeViewEntry[]> {
  return (await getJson<{ nodes: NodeViewEntry[] }>(`${node.url}/api/v1/nodes`)).nodes
}

/** The part of the cluster document every node must agree on once it settles. */
export function agreementKey(doc: ClusterDoc): string {
  return JSON.stringify({
    clusterId: doc.clusterId,
    leader: doc.leader?.id ?? null,
    voters: doc.voters.map((v) => `${v.id}@${v.zone}`).sort(),
    learners: doc.learners.map((v) => `${v.id}@${v.zone}`).sort(),
  })
}

const agent = new Agent({ keepAlive: true, maxSockets: 16 })

interface HttpAnswer {
  status: number
  body: Buffer
}

function send(method: string, url: string, body?: Buffer, timeoutMs = 15_000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent,
        timeout: timeoutMs,
        headers:
          body === undefined
            ? { 'content-length': 0 }
            : { 'content-type': 'application/octet-stream', 'content-length': body.length },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end(body)
  })
}

/** PUT a small file through `node` (native one-request route); throws unless 201. */
export async function putFile(node: NodeHandle, path: string, data: Buffer): Promise<void> {
  const url = `${node.url}/api/v1/fs/files?path=${encodeURIComponent(path)}&user.name=${USER}`
  const res = await send('PUT', url, data)
  if (res.status !== 201) throw new Error(`PUT ${path} via ${node.url}: ${res.status} ${res.body.toString()}`)
}

/** Reads a file through WebHDFS OPEN on `node`; throws unless 200. */
export async function readFile(node: NodeHandle, path: string): Promise<Buffer> {
  const url = `${node.url}/webhdfs/v1${path}?op=OPEN&user.name=${USER}`
  const res = await send('GET', url)
  if (res.status !== 200)
    throw new Error(`OPEN ${path} via ${node.url}: ${res.status} ${res.body.toString()}`)
  return res.body
}

/** Same file contents for a test write: deterministic from the path, so a reader can check it. */
export function contentFor(path: string, bytes = 256): Buffer {
  const out = Buffer.alloc(bytes)
  let h = 2166136261
  for (const ch of path) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0
  for (let i = 0; i < bytes; i++) {
    h = Math.imul(h ^ i, 16777619) >>> 0
    out[i] = h & 0xff
  }
  return out
}

// ------------------------------------------------------------------------------------------ the lock

const LOCK_DIR = join(tmpdir(), 'hopsd-test-cluster.lock')

/**
 * Takes the cross-process cluster-test lock (a directory holding the owner's pid); a lock whose owner
 * died is taken over. Polls with a deadline (no fixed sleep decides anything).
 */
async function acquireLock(timeoutMs: number): Promise<void> {
  await waitFor(
    () => {
      try {
        mkdirSync(LOCK_DIR)
        writeFileSync(join(LOCK_DIR, 'pid'), String(process.pid))
        return true
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
        let owner = NaN
        try {
          owner = Number(readFileSync(join(LOCK_DIR, 'pid'), 'utf8'))
        } catch {
          // the owner is between mkdir and writing its pid: wait
          return false
        }
        if (Number.isInteger(owner) && owner > 0 && !isProcessAlive(owner)) {
          rmSync(LOCK_DIR, { recursive: true, force: true })
        }
        return false
      }
    },
    { timeoutMs, intervalMs: 250, what: `the cluster-test lock ${LOCK_DIR}` },
  )
}

function releaseLock(): void {
  try {
    if (Number(readFileSync(join(LOCK_DIR, 'pid'), 'utf8')) === process.pid) {
      rmSync(LOCK_DIR, { recursive: true, force: true })
    }
  } catch {
    // not ours, or gone
  }
}

// ----------------------------------------------------------------------------------------- a cluster

export interface StartedNode {
  handle: NodeHandle
  spec: Required<Pick<NodeSpec, 'zone' | 'http' | 'p2p' | 'dataDir'>> & NodeSpec
}

export class TestCluster {
  readonly name: string
  dir = ''
  swarmKeyFile = ''
  /** Every node started, in start order (killed ones stay, with their specs, for restarts). */
  readonly started: StartedNode[] = []
  #count = 0
  #failed = false

  constructor(name: string) {
    this.name = name
  }

  async open(): Promise<void> {
    await acquireLock(LOCK_WAIT_MS - 10_000)
    this.dir = makeTempDir(`hopsd-cluster-${this.name}-`)
    this.swarmKeyFile = join(this.dir, 'swarm.key')
    writeFileSync(this.swarmKeyFile, generateSwarmKey(), { mode: 0o600 })
  }

  /** Marks the run failed, so close() prints the nodes' log tails. */
  markFailed(): void {
    this.#failed = true
  }

  /** Runs `fn` (a beforeAll body); a throw marks the run failed, so the log tails are printed. */
  async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      this.#failed = true
      throw err
    }
  }

  /** Stops every node that still runs, prints log tails if a test failed, releases the lock. */
  async close(): Promise<void> {
    try {
      await Promise.all(this.started.map((n) => n.handle.stop(5_000)))
      if (this.#failed || process.env['HOPSD_TEST_LOGS'] === '1') this.printLogs()
    } finally {
      releaseLock()
    }
  }

  printLogs(lines = 40): void {
    for (const n of this.started) {
      const { stdout, stderr } = n.handle.logs()
      // Request lines drown what matters (elections, membership, errors): leave them out of the tail.
      const tail = (s: string) =>
        s
          .trimEnd()
          .split('\n')
          .filter((l) => !l.includes('"msg":"request"'))
          .slice(-lines)
          .join('\n')
      process.stderr.write(
        `\n----- ${this.name}: node ${n.handle.id || '?'} zone ${n.spec.zone} http ${n.spec.http} p2p ${n.spec.p2p}` +
          ` (pid ${n.handle.pid}) -----\n${tail(stdout)}\n${tail(stderr)}\n`,
      )
    }
  }

  /** The p2p addresses every node joins (all of the cluster's, its own included: the join loop skips it). */
  joinAddrs(): string[] {
    return this.started.map((n) => n.spec.p2p)
  }

  /**
   * Starts the nodes at once (they all join every address of the cluster and of each other). A node whose
   * fresh port another process took between `freePorts` and its bind (PORT_IN_USE) is started again on
   * new ports, at most {@link PORT_RETRIES_MAX} times; it still joins everyone, so the others meet it.
   */
  async startMany(specs: NodeSpec[], opts: StartOptions = {}): Promise<NodeHandle[]> {
    const ports = await freePorts(specs.length * 2)
    const full = specs.map((s, i) => ({
      ...s,
      http: s.http ?? ports[2 * i]!,
      p2p: s.p2p ?? ports[2 * i + 1]!,
      dataDir: s.dataDir ?? join(this.dir, `n${++this.#count}`),
      fresh: s.http === undefined && s.p2p === undefined,
    }))
    const joinAddrs = [...new Set([...this.joinAddrs(), ...full.map((s) => s.p2p)])]
    return Promise.all(
      full.map(async ({ fresh, ...spec }) => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await this.#start(spec, [...new Set([...joinAddrs, spec.p2p])], opts)
          } catch (err) {
            if (
              !fresh ||
              attempt >= PORT_RETRIES_MAX ||
              !String((err as Error).message).includes('PORT_IN_USE')
            )
              throw err
            process.stderr.write(
              `${this.name}: ${(err as Error).message.slice(0, 200)}; new ports, attempt ${attempt + 1}\n`,
            )
            const [http, p2p] = await freePorts(2)
            spec.http = http!
            spec.p2p = p2p!
          }
        }
      }),
    )
  }

  async start(spec: NodeSpec, opts: StartOptions = {}): Promise<NodeHandle> {
    return (await this.startMany([spec], opts))[0]!
  }

  /** Restarts a stopped or killed node with the same data dir and ports. */
  async restart(handle: NodeHandle, opts: StartOptions = {}): Promise<NodeHandle> {
    const old = this.started.find((n) => n.handle === handle)
    if (old === undefined) throw new Error('restart: not a node of this cluster')
    await handle.exited
    return this.#start(old.spec, this.joinAddrs(), opts, old)
  }

  async #start(spec: StartedNode['spec'], join: string[], opts: StartOptions, replace?: StartedNode) {
    mkdirSync(spec.dataDir, { recursive: true })
    const handle = await startNode({
      dataDir: spec.dataDir,
      zone: spec.zone,
      roles: spec.roles,
      http: spec.http,
      p2p: spec.p2p,
      join,
      bootstrapExpect: opts.bootstrapExpect,
      extraArgs: [
        '--swarm-key',
        spec.swarmKeyFile ?? this.swarmKeyFile,
        ...timingArgs(opts.timings),
        ...(spec.extraArgs ?? []),
      ],
      readyTimeoutMs: 60_000,
    })
    if (replace !== undefined) replace.handle = handle
    else this.started.push({ handle, spec })
    return handle
  }

  /** Nodes whose process is still running. */
  get live(): NodeHandle[] {
    return this.started
      .map((n) => n.handle)
      .filter((h) => h.process.exitCode === null && h.process.signalCode === null)
  }

  zoneOf(handle: NodeHandle): string {
    return this.started.find((n) => n.handle === handle)!.spec.zone
  }

  /**
   * Waits until every node in `nodes` answers the same cluster document (id, leader, voters, learners),
   * with a cluster id and a leader, and `check` accepts it; returns that document.
   */
  async waitForAgreement(
    nodes: NodeHandle[],
    check: (doc: ClusterDoc) => boolean = () => true,
    opts: { timeoutMs?: number; what?: string } = {},
  ): Promise<ClusterDoc> {
    let last: string[] = []
    try {
      return await waitFor(
        async () => {
          const docs = await Promise.all(nodes.map((n) => clusterOf(n)))
          last = docs.map(agreementKey)
          const first = docs[0]!
          if (first.clusterId === '' || first.leader === null) return undefined
          if (!last.every((k) => k === last[0])) return undefined
          return check(first) ? first : undefined
        },
        {
          timeoutMs: opts.timeoutMs ?? CLUSTER_READY_MS,
          intervalMs: 100,
          what: opts.what ?? 'the nodes to agree on /api/v1/cluster',
        },
      )
    } catch (err) {
      throw new Error(`${(err as Error).message}; last documents: ${last.join(' | ')}`)
    }
  }

  /** The handle of the node with this id. */
  byId(id: string): NodeHandle {
    const n = this.started.find((s) => s.handle.id === id)
    if (n === undefined) throw new Error(`no node ${id} in this cluster`)
    return n.handle
  }
}

/**
 * Registers the vitest hooks of a cluster file: open (takes the lock) before all, note failures (log
 * tails are printed on close), close after all — even when a test or a hook failed.
 */
export function useCluster(name: string): TestCluster {
  const c = new TestCluster(name)
  beforeAll(() => c.open(), LOCK_WAIT_MS)
  beforeEach(() => {
    onTestFailed(() => c.markFailed())
  })
  afterAll(() => c.close(), 60_000)
  return c
}
