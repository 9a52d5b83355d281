// A real hopsd cluster for the block tests (test/helpers startCluster): `hopsd start` processes on
// loopback. The first three nodes are metadata + datanode in zones z1..z3; further nodes are datanodes
// (zones z1, z2, ...). Fast timings for a loaded 2-core machine; a short --replica-grace-ms so
// re-replication starts soon. A node that was killed can be started again (same data dir, ports and
// flags) with `restart`.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FAST_TIMING_ARGS, startCluster, waitFor, type LoopbackNode } from '../helpers/index.js'

export const SU = 'hopsd'
export const MIB = 1024 * 1024

/** A node: name n1.., zone, roles, data dir, ports and current process. */
export type BNode = LoopbackNode

export interface BCluster {
  readonly nodes: BNode[]
  stop(): Promise<void>
  /**
   * Starts `n` again after its process exited (same data dir, ports and flags: the same node id), and
   * waits until the metadata leader counts its datanode live again.
   */
  restart(n: BNode): Promise<void>
  logTails(lines?: number): string
}

export async function startBlockCluster(
  opts: {
    metadata?: number
    datanodes?: number
    extraArgs?: (i: number) => string[]
  } = {},
): Promise<BCluster> {
  const metaCount = opts.metadata ?? 3
  const total = metaCount + (opts.datanodes ?? 0)
  // --join lists the metadata nodes; --bootstrap-expect is their count (startCluster's default).
  const lc = await startCluster({
    prefix: 'hopsd-blocks-',
    nodes: Array.from({ length: total }, (_, i) => ({
      zone: `z${(i % 3) + 1}`,
      roles: i < metaCount ? ['metadata', 'datanode'] : ['datanode'],
      seed: i < metaCount,
      extraArgs: opts.extraArgs?.(i) ?? [],
    })),
    extraArgs: [...FAST_TIMING_ARGS, '--replica-grace-ms', '1000'],
    env: { HOPSD_LOG_LEVEL: 'info' },
  })
  const nodes = lc.nodes
  const cluster: BCluster = {
    nodes,
    async stop() {
      await lc.stop(10_000)
    },
    async restart(n) {
      await lc.restart(n)
      // Ask another running metadata node (a datanode-only node serves no /api/v1/fs/health).
      const running = (x: BNode): boolean =>
        x.handle.process.exitCode === null && x.handle.process.signalCode === null
      const via = nodes.find((x) => x !== n && x.roles.includes('metadata') && running(x)) ?? n
      await waitFor(async () => (await datanodeInfo(via, n.handle.id))?.live === true, {
        timeoutMs: 60_000,
        intervalMs: 200,
        what: `${n.name} live again after its restart`,
      })
    },
    logTails(lines = 30) {
      return lc.logTails(lines)
    },
  }
  try {
    await waitFor(
      async () => {
        const h = await getJ(nodes[0]!, '/api/v1/fs/health')
        const live = (h.datanodes as { live: boolean }[]).filter((d) => d.live).length
        return (
          live === total && (await Promise.all(nodes.map((n) => stat(n, '/')))).every((s) => s !== undefined)
        )
      },
      { timeoutMs: 90_000, intervalMs: 200, what: `a leader and ${total} live datanodes` },
    )
  } catch (err) {
    const health = await getJ(nodes[0]!, '/api/v1/fs/health').catch((e: unknown) => String(e))
    const tails = cluster.logTails()
    await cluster.stop()
    console.error('health at failure:', JSON.stringify(health))
    throw new Error(`cluster did not assemble: ${(err as Error).message}\n${tails}`)
  }
  return cluster
}

export async function getJ(n: BNode, path: string): Promise<any> {
  const res = await fetch(`${n.handle.url}${path}`, { signal: AbortSignal.timeout(10_000) })
  if (res.status !== 200) throw new Error(`${n.name} ${path}: ${res.status} ${await res.text()}`)
  return res.json()
}

export interface BlocksDoc {
  blocks: {
    id: number
    genStamp: number
    length: number
    replicas: { node: string; zone: string }[]
    corrupt: string[]
  }[]
}

/** A file's blocks and their replicas (GET /api/v1/fs/blocks), as node `n` sees them. */
export function blocksOf(n: BNode, path: string): Promise<BlocksDoc> {
  return getJ(n, `/api/v1/fs/blocks?path=${encodeURIComponent(path)}`)
}

export interface DatanodeInfo {
  id: string
  zone: string
  state: string
  live: boolean
}

/** The metadata leader's view of datanode `id` (GET /api/v1/fs/health, asked through `n`). */
export async function datanodeInfo(n: BNode, id: string): Promise<DatanodeInfo | undefined> {
  const h = await getJ(n, '/api/v1/fs/health')
  return (h.datanodes as DatanodeInfo[]).find((d) => d.id === id)
}

/** Sets a datanode DRAINING or NORMAL through node `n` (PUT /api/v1/fs/datanodes/state). */
export function setDatanodeState(
  n: BNode,
  id: string,
  state: 'DRAINING' | 'NORMAL',
  user = SU,
): Promise<Response> {
  return fetch(
    `${n.handle.url}/api/v1/fs/datanodes/state?node=${encodeURIComponent(id)}&state=${state}&user.name=${user}`,
    { method: 'PUT', signal: AbortSignal.timeout(10_000) },
  )
}

/** The first of `candidates` that is not the metadata leader (asked through `n`). */
export async function nonLeader(n: BNode, candidates: readonly BNode[]): Promise<BNode> {
  const status = await getJ(n, '/api/v1/cluster')
  const pick = candidates.find((c) => c.handle.id !== status.leader?.id)
  if (pick === undefined) throw new Error('every candidate is the leader')
  return pick
}

/** WebHDFS DELETE through node `n`. */
export async function webhdfsDelete(n: BNode, path: string): Promise<boolean> {
  const res = await fetch(`${n.handle.url}/webhdfs/v1${path}?op=DELETE&user.name=${SU}`, {
    method: 'DELETE',
    signal: AbortSignal.timeout(30_000),
  })
  if (res.status !== 200) throw new Error(`DELETE ${path}: ${res.status} ${await res.text()}`)
  return ((await res.json()) as { boolean: boolean }).boolean
}

async function stat(n: BNode, path: string): Promise<unknown> {
  return getJ(n, `/api/v1/fs/stat?path=${encodeURIComponent(path)}&user.name=${SU}`)
}

/** WebHDFS two-step CREATE through node `n`; returns the data step's response. */
export async function webhdfsCreate(
  n: BNode,
  path: string,
  data: Uint8Array | AsyncIterable<Uint8Array>,
  params = '',
): Promise<Response> {
  const step1 = await fetch(
    `${n.handle.url}/webhdfs/v1${path}?op=CREATE&user.name=${SU}&overwrite=true${params}`,
    {
      method: 'PUT',
      redirect: 'manual',
    },
  )
  if (step1.status !== 307) throw new Error(`step one answered ${step1.status}: ${await step1.text()}`)
  const location = step1.headers.get('location')!
  return fetch(location, {
    method: 'PUT',
    body: data as unknown as Blob,
    duplex: 'half',
    signal: AbortSignal.timeout(240_000),
  } as RequestInit)
}

export async function webhdfsOpen(
  n: BNode,
  path: string,
  extra = '',
): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`${n.handle.url}/webhdfs/v1${path}?op=OPEN&user.name=${SU}${extra}`, {
    signal: AbortSignal.timeout(120_000),
  })
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) }
}

export function pseudoRandom(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    b.writeUInt32LE(x, Math.min(i, n - 4))
  }
  return b
}

/** Where node `n` keeps its finalized replica of block `b` (the block store's layout). */
export function replicaFile(n: BNode, b: { id: number; genStamp: number }): string {
  return join(n.dataDir, 'blocks', 'finalized', String(b.id % 64), `blk_${b.id}_${b.genStamp}`)
}

/** Flips bits of one byte of a file on disk (a replica that rotted); `at` < 0 counts from the end. */
export function flipByte(file: string, at: number, mask = 0x5a): void {
  const raw = readFileSync(file)
  raw[at < 0 ? raw.length + at : at]! ^= mask
  writeFileSync(file, raw)
}
