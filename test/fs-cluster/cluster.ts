// A real hopsd cluster for the fs cluster tests (test/helpers startCluster): `hopsd start` processes on
// loopback, zones z1..zN, one swarm key, --join listing every metadata node, --bootstrap-expect = the
// metadata count, and the fast timings that hold on a loaded 2-core machine. Ready when every metadata
// node reports a leader and all metadata nodes as voters, and every node (datanode-only ones too) serves
// the file system.
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  FAST_TIMING_ARGS,
  makeTempDir,
  startCluster,
  stopAllNodes,
  waitFor,
  type LoopbackNode,
  type LoopbackNodeSpec,
} from '../helpers/index.js'

export const SUPERUSER = 'hopsd'

/** A node: name (m1.. metadata, d1.. datanode-only), zone, roles, data dir, ports, current process. */
export type ClusterNode = LoopbackNode

export interface FsCluster {
  readonly nodes: ClusterNode[]
  /** The metadata nodes (voters). */
  readonly metadata: ClusterNode[]
  /** Nodes started with `--roles datanode` (no metadata replica: they forward the fs routes). */
  readonly datanodes: ClusterNode[]
  /** Starts `node` again on its data dir and addresses (after a kill or stop). */
  restart(node: ClusterNode): Promise<void>
  /** Stops every node still running (SIGTERM, then SIGKILL). */
  stop(): Promise<void>
  /** Last `lines` lines of every node's output, for failure reports. */
  logTails(lines?: number): string
  /**
   * The JavaScript stack of every running node (a Node.js diagnostic report on SIGUSR2: it interrupts
   * even a busy event loop), for failure reports of nodes that stopped answering.
   */
  stacks(): Promise<string>
}

export interface ClusterStatusDoc {
  clusterId: string
  leader: { id: string; zone: string } | null
  term: number
  commitIndex: number
  voters: { id: string; zone: string }[]
  learners: { id: string; zone: string }[]
}

export async function clusterStatus(node: ClusterNode, timeoutMs = 3_000): Promise<ClusterStatusDoc> {
  const res = await fetch(`${node.handle.url}/api/v1/cluster`, { signal: AbortSignal.timeout(timeoutMs) })
  if (res.status !== 200) throw new Error(`${node.name}: /api/v1/cluster answered ${res.status}`)
  return (await res.json()) as ClusterStatusDoc
}

export async function startFsCluster(
  opts: { metadata?: number; datanodes?: number; prefix?: string; readyTimeoutMs?: number } = {},
): Promise<FsCluster> {
  const metaCount = opts.metadata ?? 3
  const dataCount = opts.datanodes ?? 0
  const dir = makeTempDir(opts.prefix ?? 'hopsd-fs-cluster-')
  const reportDir = join(dir, 'reports')
  mkdirSync(reportDir)
  const specs: LoopbackNodeSpec[] = Array.from({ length: metaCount + dataCount }, (_, i) => ({
    name: i < metaCount ? `m${i + 1}` : `d${i - metaCount + 1}`,
    zone: `z${(i % metaCount) + 1}`,
    roles: i < metaCount ? ['metadata'] : ['datanode'],
    // --join lists the metadata nodes only.
    seed: i < metaCount,
  }))
  // --bootstrap-expect: the metadata count (startCluster's default).
  const lc = await startCluster({
    dir,
    nodes: specs,
    extraArgs: FAST_TIMING_ARGS,
    env: {
      HOPSD_LOG_LEVEL: 'info',
      NODE_OPTIONS: `--report-on-signal --report-signal=SIGUSR2 --report-compact --report-directory=${reportDir}`,
    },
  })

  const nodes = lc.nodes
  const cluster: FsCluster = {
    nodes,
    get metadata() {
      return nodes.filter((n) => n.roles.includes('metadata'))
    },
    get datanodes() {
      return nodes.filter((n) => !n.roles.includes('metadata'))
    },
    async restart(node) {
      await lc.restart(node)
    },
    async stop() {
      await lc.stop(10_000)
      // Any other node this worker started (a restart that failed half-way) goes too.
      await stopAllNodes()
    },
    logTails(lines = 40) {
      return lc.logTails(lines)
    },
    async stacks() {
      const out: string[] = []
      for (const n of nodes) {
        const pid = n.handle.pid
        const mine = () => readdirSync(reportDir).filter((f) => f.includes(`.${pid}.`))
        const before = mine().length
        n.handle.kill('SIGUSR2')
        try {
          // The report appears first and is filled after: wait until it parses.
          const report = await waitFor(
            () => {
              if (mine().length <= before) return undefined
              return JSON.parse(readFileSync(join(reportDir, mine()[mine().length - 1]!), 'utf8'))
            },
            { timeoutMs: 5_000, what: `a diagnostic report of ${n.name}` },
          )
          out.push(`----- ${n.name} stack -----\n${(report.javascriptStack?.stack ?? []).join('\n')}`)
        } catch (err) {
          // The report is written from the event loop: none means the loop is blocked or starved. Say
          // how much CPU the process got (starved: runnable, little CPU; spinning: a full core) and
          // where each thread waits (wchan).
          out.push(`----- ${n.name}: no stack (${(err as Error).message}); ${await cpuState(pid)}`)
        }
      }
      return out.join('\n')
    },
  }
  try {
    await waitForHealthyCluster(cluster, opts.readyTimeoutMs ?? 90_000)
  } catch (err) {
    const tails = cluster.logTails()
    await cluster.stop()
    throw new Error(`cluster did not assemble: ${(err as Error).message}\n${tails}`)
  }
  return cluster
}

/** Linux only: CPU time the process used over a short window, and where each thread waits. */
async function cpuState(pid: number): Promise<string> {
  const ticks = (): number => {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return Number(f[11]) + Number(f[12]) // utime + stime (fields 14, 15), in clock ticks
  }
  try {
    const t0 = ticks()
    const windowMs = 1_000
    await new Promise((r) => setTimeout(r, windowMs)) // a measurement window, not synchronisation
    const used = ticks() - t0
    const threads = readdirSync(`/proc/${pid}/task`).map((tid) => {
      const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')
      const name = st[0]!.split(' (')[1]
      let wchan = ''
      try {
        wchan = readFileSync(`/proc/${pid}/task/${tid}/wchan`, 'utf8')
      } catch {
        // not readable here
      }
      return `${name}:${st[1]!.split(' ')[0]}${wchan && wchan !== '0' ? `@${wchan}` : ''}`
    })
    return `cpu ${used} ticks in ${windowMs} ms; threads ${threads.join(' ')}`
  } catch (err) {
    return `no /proc state (${(err as Error).message})`
  }
}

/**
 * Every running metadata node sees the same leader and `voters` voters; every running node serves a
 * linearizable fs read (which also proves the cluster initialised and datanodes know a metadata node).
 */
export async function waitForHealthyCluster(
  cluster: FsCluster,
  timeoutMs: number,
  opts: { voters?: number; nodes?: ClusterNode[] } = {},
): Promise<string> {
  const voters = opts.voters ?? cluster.metadata.length
  const nodes = opts.nodes ?? cluster.nodes
  return waitFor(
    async () => {
      const metas = nodes.filter((n) => n.roles.includes('metadata'))
      const docs = await Promise.all(metas.map((n) => clusterStatus(n)))
      const leader = docs[0]?.leader?.id
      if (leader === undefined) return false
      if (!docs.every((d) => d.leader?.id === leader && d.voters.length === voters && d.clusterId !== ''))
        return false
      for (const n of nodes) {
        const res = await fetch(`${n.handle.url}/api/v1/fs/stat?path=/&user.name=${SUPERUSER}`, {
          signal: AbortSignal.timeout(3_000),
        })
        if (res.status !== 200) return false
      }
      return leader
    },
    { timeoutMs, intervalMs: 100, what: `a leader, ${voters} voters and fs service on every node` },
  )
}

/** The metadata node that leads now (as the first running metadata node reports it). */
export async function leaderOf(cluster: FsCluster): Promise<ClusterNode> {
  const id = await waitFor(
    async () => {
      for (const n of cluster.metadata) {
        try {
          const d = await clusterStatus(n)
          if (d.leader !== null) return d.leader.id
        } catch {
          // a node that is down: ask the next
        }
      }
      return undefined
    },
    { timeoutMs: 30_000, what: 'a leader' },
  )
  const node = cluster.metadata.find((n) => n.handle.id === id)
  if (node === undefined) throw new Error(`leader ${id} is none of the cluster's metadata nodes`)
  return node
}
