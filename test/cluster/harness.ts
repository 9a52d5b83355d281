/**
 * Cluster-test harness: real `hopsd start` processes on loopback (test/helpers startCluster), one swarm
 * key per cluster, fast test timings, helpers to read the cluster document and to write/read small files,
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
import {
  getJson,
  isProcessAlive,
  LoopbackCluster,
  removeTempDirs,
  waitFor,
  type LoopbackNode,
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
/** A fresh cluster (processes under tsx, on a loaded machine) may take this long to elect and commit. */
export const CLUSTER_READY_MS = 60_000

export interface ClusterMember {
  id: string
  zone: string
  /** In the answering node's gossip view: alive, suspect, dead, left or unknown. */
  liveness?: string
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
  /** `--bootstrap-expect`; no flag when omitted. */
  bootstrapExpect?: number
  /** Override test timings for the nodes this call starts (a restart keeps a node's timings). */
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

/** The lock for cluster files that start their daemons themselves (TLS nodes: test/tls/tls-node.ts). */
export const acquireClusterLock = (timeoutMs = LOCK_WAIT_MS - 10_000): Promise<void> => acquireLock(timeoutMs)
export const releaseClusterLock = (): void => releaseLock()

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

/** A node of a {@link TestCluster}: its zone, ports, data dir and current process. */
export type StartedNode = LoopbackNode

export class TestCluster {
  readonly name: string
  readonly #auth: 'simple' | 'secure' | undefined
  #cluster: LoopbackCluster | undefined
  #failed = false

  /** `auth`: the nodes' `--auth` (default simple, see test/helpers startCluster). */
  constructor(name: string, opts: { auth?: 'simple' | 'secure' } = {}) {
    this.name = name
    this.#auth = opts.auth
  }

  /** The admin key the node that initialised the cluster wrote (secure-auth tests). */
  adminKey(timeoutMs?: number): Promise<string> {
    return this.#c.adminKey(timeoutMs)
  }

  get #c(): LoopbackCluster {
    if (this.#cluster === undefined) throw new Error(`${this.name}: open() first`)
    return this.#cluster
  }

  /** The cluster's temp dir (swarm key, data dirs). */
  get dir(): string {
    return this.#c.dir
  }

  get swarmKeyFile(): string {
    return this.#c.swarmKeyFile
  }

  /** Every node started, in start order (killed ones stay, for restarts). */
  get started(): readonly StartedNode[] {
    return this.#cluster?.nodes ?? []
  }

  /**
   * Waits until `nodes` (default every node started) hold their node certificates and see their peers
   * verified: until then the peer gate keeps gossip, Raft and block traffic from a node.
   */
  awaitCertified(nodes: readonly StartedNode[] = this.started, timeoutMs = 90_000): Promise<void> {
    return this.#c.awaitCertified(nodes, timeoutMs)
  }

  async open(): Promise<void> {
    await acquireLock(LOCK_WAIT_MS - 10_000)
    this.#cluster = new LoopbackCluster({ prefix: `hopsd-cluster-${this.name}-`, auth: this.#auth })
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
      await this.#cluster?.stop(5_000)
      if (this.#failed || process.env['HOPSD_TEST_LOGS'] === '1') this.printLogs()
      if (this.#failed) this.#cluster?.writeLogs(process.env['HOPSD_TEST_LOG_DIR'], this.name)
    } finally {
      releaseLock()
      removeTempDirs()
    }
  }

  printLogs(lines = 40): void {
    if (this.#cluster === undefined) return
    // Request lines drown what matters (elections, membership, errors): leave them out of the tail.
    const tails = this.#cluster.logTails(lines, { exclude: (l) => l.includes('"msg":"request"') })
    process.stderr.write(`\n===== ${this.name} =====\n${tails}\n`)
  }

  /**
   * Starts the nodes at once; each joins every node of the cluster, earlier ones and these (a node whose
   * fresh port was taken before it bound it is started again on new ports: see startCluster).
   */
  async startMany(specs: NodeSpec[], opts: StartOptions = {}): Promise<NodeHandle[]> {
    const nodes = await this.#c.start(
      specs.map((s) => ({ ...s, extraArgs: [...timingArgs(opts.timings), ...(s.extraArgs ?? [])] })),
      { bootstrapExpect: opts.bootstrapExpect ?? null },
    )
    return nodes.map((n) => n.handle)
  }

  async start(spec: NodeSpec, opts: StartOptions = {}): Promise<NodeHandle> {
    return (await this.startMany([spec], opts))[0]!
  }

  /** Restarts a stopped or killed node with the same data dir, ports and flags. */
  async restart(handle: NodeHandle, opts: Pick<StartOptions, 'bootstrapExpect'> = {}): Promise<NodeHandle> {
    const node = this.started.find((n) => n.handle === handle)
    if (node === undefined) throw new Error('restart: not a node of this cluster')
    return this.#c.restart(node, { bootstrapExpect: opts.bootstrapExpect ?? null })
  }

  /** Nodes whose process is still running. */
  get live(): NodeHandle[] {
    return this.started
      .map((n) => n.handle)
      .filter((h) => h.process.exitCode === null && h.process.signalCode === null)
  }

  zoneOf(handle: NodeHandle): string {
    return this.started.find((n) => n.handle === handle)!.zone
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
export function useCluster(name: string, opts: { auth?: 'simple' | 'secure' } = {}): TestCluster {
  const c = new TestCluster(name, opts)
  beforeAll(() => c.open(), LOCK_WAIT_MS)
  beforeEach(() => {
    onTestFailed(() => c.markFailed())
  })
  afterAll(() => c.close(), 60_000)
  return c
}
