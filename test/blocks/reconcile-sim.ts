/**
 * A seeded simulation of the block manager's reconcile logic (src/fs/blocks) through datanode deaths and
 * returns, corrupt replicas, decommissions, file deletes and creates. What runs is the real block
 * manager over the real metadata state machine (namespace + block map, a one-replica group); the
 * datanodes are simulated: each has a disk (block → generation, corrupt?), a real BlockReporter for its
 * heartbeats, and carries out the leader's replies (deletes, transfers) at once. Time is a virtual clock
 * (one heartbeat interval per step) and every choice — of the simulation and of the block manager —
 * draws from one seed, so a seed replays exactly.
 *
 * Safety (every step): no reconcile step lowers a block's good replicas below its replication, and no
 * delete hits a replica the map still counts (./invariants.ts). Liveness: after the chaos, with every
 * datanode that may come back back, the cluster converges (checkConverged) within a bound of steps.
 */
import { createHash } from 'node:crypto'
import type { Clock } from '../../src/consensus/index.js'
import { SeededRng } from '../../src/consensus/index.js'
import {
  BLOCK_STATE,
  createBlockManager,
  type BlockManager,
  type BlockMap,
} from '../../src/fs/blocks/index.js'
import { BlockReporter } from '../../src/fs/datanode/index.js'
import {
  createFsService,
  namespaceAndBlockModules,
  namespaceModule,
  type ClusterMember,
  type FsService,
  type PeerNetwork,
} from '../../src/fs/index.js'
import {
  createLocalGroup,
  createMetaStateMachine,
  encodeCommand,
  type MetaResult,
} from '../../src/meta/index.js'
import {
  checkConverged,
  checkDeleteIsOfUncounted,
  checkNoRemovalBelowFactor,
  type BlockView,
  type DatanodeView,
  type DiskView,
} from './invariants.js'

export const HEARTBEAT_MS = 1_000
const DEAD_AFTER_MS = 3_000
const REPLICA_GRACE_MS = 8_000
const DATANODES = 7
const ZONES = 3
/** At most this many datanodes down at once (a permanently dead one included). */
const DOWN_MAX = 2
/** Datanodes draining or decommissioned at most. */
const RETIRED_MAX = 2
const SELF = 'meta'
const SU = { user: 'hopsd', groups: [] as string[] }

export interface SimOptions {
  readonly seed: number
  /** Steps with faults (default 120). */
  readonly chaosSteps?: number
  /** Steps allowed to converge after the faults (default 240: several transfer timeouts). */
  readonly settleStepsMax?: number
  /** Blocks one reconcile round looks at (the manager's reconcileBlocksPerStep; default its own). */
  readonly blocksPerStep?: number
}

export interface SimStats {
  kills: number
  permanentKills: number
  restarts: number
  corruptions: number
  decommissions: number
  fileDeletes: number
  fileCreates: number
  transfers: number
  deletes: number
  blocks: number
}

export interface SimResult {
  readonly seed: number
  /** The first broken invariant's report (undefined: every invariant held and the cluster converged). */
  readonly violation: string | undefined
  readonly stats: SimStats
  /** Steps the settle phase took to converge. */
  readonly settleSteps: number
  readonly trace: readonly string[]
  readonly traceHash: string
  /** The most blocks one reconcile round looked at. */
  readonly maxBlocksLooked: number
}

interface SimDatanode {
  readonly id: string
  readonly zone: string
  live: boolean
  /** Dead for good: never restarted (its blocks must be re-created elsewhere). */
  permanent: boolean
  lastSeenMs: number
  readonly disk: Map<number, { genStamp: number; length: number; corrupt: boolean; incarnation: number }>
  /** The store's incarnation counter (a replica written again is a new incarnation). */
  incarnations: number
  reporter: BlockReporter
  /** Replicas found corrupt (by the scanner or a failed read), reported with the next heartbeat. */
  readonly corruptToReport: Set<number>
}

class Violation extends Error {}

export async function runReconcileSim(opts: SimOptions): Promise<SimResult> {
  const rng = new SeededRng(opts.seed)
  const simRng = rng.fork()
  const managerRng = rng.fork()
  const trace: string[] = []
  const stats: SimStats = {
    kills: 0,
    permanentKills: 0,
    restarts: 0,
    corruptions: 0,
    decommissions: 0,
    fileDeletes: 0,
    fileCreates: 0,
    transfers: 0,
    deletes: 0,
    blocks: 0,
  }
  let nowMs = 1_700_000_000_000
  const clock: Clock = {
    now: () => nowMs,
    // The manager's own loop is not started here: the simulation runs its steps.
    setTimeout: () => {
      throw new Error('the simulation drives the block manager; nothing schedules timers')
    },
    clearTimeout: () => undefined,
  }
  const sm = createMetaStateMachine({ modules: namespaceAndBlockModules(namespaceModule()) })
  const local = createLocalGroup(sm)
  const group = { ...local, status: () => ({ role: 'leader', leaderId: SELF, term: 1 }) }
  const fs: FsService = createFsService({ consensus: local, stateMachine: sm, clock: () => nowMs })
  const map = (): BlockMap => sm.module<BlockMap>('blocks')

  const nodes: SimDatanode[] = Array.from({ length: DATANODES }, (_, i) => ({
    id: `dn${i + 1}`,
    zone: `z${(i % ZONES) + 1}`,
    live: true,
    permanent: false,
    lastSeenMs: nowMs,
    disk: new Map(),
    incarnations: 0,
    reporter: new BlockReporter(() => nowMs),
    corruptToReport: new Set(),
  }))
  const byId = new Map(nodes.map((n) => [n.id, n]))
  const view = (): ClusterMember[] => [
    {
      id: SELF,
      zone: 'z1',
      roles: ['metadata'],
      httpAddr: '',
      liveness: 'alive',
      lastSeenMs: nowMs,
      self: true,
    },
    ...nodes.map((n): ClusterMember => ({
      id: n.id,
      zone: n.zone,
      roles: ['datanode'],
      httpAddr: '',
      liveness: n.live ? 'alive' : 'dead',
      lastSeenMs: n.live ? nowMs : n.lastSeenMs,
      self: false,
    })),
  ]
  const manager: BlockManager = createBlockManager({
    selfId: SELF,
    zone: 'z1',
    group,
    stateMachine: sm,
    cluster: { view },
    peers: noNetwork,
    clock,
    rng: managerRng,
    heartbeatMs: HEARTBEAT_MS,
    deadAfterMs: DEAD_AFTER_MS,
    replicaGraceMs: REPLICA_GRACE_MS,
    ...(opts.blocksPerStep === undefined ? {} : { reconcileBlocksPerStep: opts.blocksPerStep }),
  })

  // ---- views for the checkers
  const blockViews = (): BlockView[] =>
    [...map().all()].map((r) => ({
      id: r.id,
      genStamp: r.genStamp,
      replication: r.replication,
      complete: r.state === BLOCK_STATE.COMPLETE,
      replicas: [...r.replicas],
      corrupt: [...r.corrupt],
    }))
  const nodeViews = (): Map<string, DatanodeView> =>
    new Map(nodes.map((n) => [n.id, { id: n.id, live: n.live, state: map().datanodeState(n.id) }]))
  const diskViews = (): Map<string, DiskView> => new Map(nodes.map((n) => [n.id, n.disk]))
  const fail = (what: string, found: string[]): void => {
    if (found.length > 0) throw new Violation(`${what}: ${found.join('; ')}`)
  }

  // ---- the datanodes' side
  const heartbeat = async (n: SimDatanode): Promise<void> => {
    const report = n.reporter.next(
      [...n.disk].map(([id, r]) => ({
        id,
        genStamp: r.genStamp,
        length: r.length,
        incarnation: r.incarnation,
      })),
    )
    const sentCorrupt = [...n.corruptToReport]
    const reply = await manager.heartbeat(n.id, {
      zone: n.zone,
      capacityBytes: 1e12,
      usedBytes: 0,
      availableBytes: 1e12,
      blocks: [...report.blocks],
      corrupt: sentCorrupt,
      incremental: report.incremental,
      deleted: [...report.deleted],
    })
    n.reporter.answered(report, reply.fullReportRequested === true)
    if (reply.fullReportRequested === true) return
    for (const id of sentCorrupt) n.corruptToReport.delete(id)
    for (const raw of reply.deleteBlocks ?? []) {
      const id = Number(raw)
      const block = blockViews().find((b) => b.id === id)
      fail('delete of a counted replica', checkDeleteIsOfUncounted(block, n.id, n.disk.get(id)))
      if (n.disk.delete(id)) {
        stats.deletes++
        trace.push(`${n.id} deletes ${id}`)
      }
    }
    for (const t of reply.transfers ?? []) transfer(n, Number(t.blockId), Number(t.genStamp), t.targets ?? [])
  }

  /** A replica finalised on `n`'s disk (as BlockStore does it: a new incarnation). */
  const write = (n: SimDatanode, blockId: number, genStamp: number, length: number): void => {
    n.disk.set(blockId, { genStamp, length, corrupt: false, incarnation: ++n.incarnations })
  }

  /** A replica copy through a pipeline to `targets`: all of them get it, or none (a dead one fails it). */
  const transfer = (
    source: SimDatanode,
    blockId: number,
    genStamp: number,
    targets: readonly string[],
  ): void => {
    const r = source.disk.get(blockId)
    if (r === undefined || r.genStamp !== genStamp) return
    if (r.corrupt) {
      source.corruptToReport.add(blockId) // the read fails its checksum: reported
      return
    }
    const to = targets.map((t) => byId.get(t)!)
    if (to.some((t) => !t.live)) {
      trace.push(`transfer ${blockId} ${source.id}→${targets} fails`)
      return
    }
    for (const t of to) write(t, blockId, genStamp, r.length)
    stats.transfers++
    trace.push(`transfer ${blockId} ${source.id}→${targets}`)
  }

  const heartbeatAll = async (): Promise<void> => {
    for (const n of shuffled(nodes, simRng)) if (n.live) await heartbeat(n)
  }

  const reconcile = async (): Promise<void> => {
    const before = blockViews()
    await manager.reconcile()
    fail('replicas removed below the factor', checkNoRemovalBelowFactor(before, blockViews(), nodeViews()))
  }

  // ---- files
  let files: string[] = []
  let fileSeq = 0
  const createFile = async (): Promise<void> => {
    const path = `/f${++fileSeq}`
    const clientName = `sim-${fileSeq}`
    const replication = 2 + simRng.nextInt(2)
    await fs.create(SU, path, new Uint8Array(0), { close: false, clientName, replication })
    const commits = []
    try {
      for (let b = 1 + simRng.nextInt(2); b > 0; b--) {
        const alloc = await manager.allocate({
          path,
          user: SU.user,
          groups: [],
          clientName,
          writer: 'client',
          exclude: [],
        })
        const length = 1 + simRng.nextInt(1 << 20)
        for (const t of alloc.targets) write(byId.get(t)!, alloc.blockId, alloc.genStamp, length)
        commits.push({
          id: alloc.blockId,
          genStamp: alloc.genStamp,
          length,
          checksum: 0,
          replicas: alloc.targets,
        })
      }
    } catch (err) {
      if ((err as { code?: string }).code !== 'NOT_ENOUGH_DATANODES') throw err
      await fs.delete(SU, path) // too few datanodes up: the write fails, no file is left
      trace.push(`create ${path} fails`)
      return
    }
    const r = (await local.propose(
      encodeCommand({ nowMs, ...SU, clientName, completeFile: { path, blocks: commits } }),
    )) as MetaResult
    if (!r.ok) throw new Error(`completeFile ${path}: ${r.code} ${r.message}`)
    files.push(path)
    stats.fileCreates++
    stats.blocks += commits.length
    trace.push(
      `create ${path} r${replication} blocks ${commits.map((c) => `${c.id}@${c.replicas}`).join(' ')}`,
    )
  }

  // ---- faults
  const down = (): number => nodes.filter((n) => !n.live).length
  /** Good copies of a block on datanodes that are up or will come back. */
  const recoverable = (blockId: number, genStamp: number, except?: SimDatanode): number =>
    nodes.filter((n) => {
      const r = n.disk.get(blockId)
      return n !== except && !n.permanent && r !== undefined && r.genStamp === genStamp && !r.corrupt
    }).length
  const mapBlock = (id: number) => map().block(id)

  const kill = (): void => {
    const candidates = nodes.filter((n) => n.live && map().datanodeState(n.id) !== 'DRAINING')
    if (down() >= DOWN_MAX || candidates.length === 0) return
    const n = pick(candidates, simRng)
    // Dead for good only where every block it holds has a good copy elsewhere that will be back.
    const canBePermanent =
      !nodes.some((x) => x.permanent) &&
      [...n.disk].every(
        ([id, r]) => r.corrupt || mapBlock(id) === undefined || recoverable(id, r.genStamp, n) > 0,
      )
    n.live = false
    n.lastSeenMs = nowMs
    n.permanent = canBePermanent && simRng.nextInt(3) === 0
    n.corruptToReport.clear()
    stats.kills++
    if (n.permanent) stats.permanentKills++
    trace.push(`kill ${n.id}${n.permanent ? ' for good' : ''}`)
  }
  const restart = (n: SimDatanode): void => {
    n.live = true
    n.reporter = new BlockReporter(() => nowMs) // a new process: a full report first
    // What it knew of corrupt replicas died with the process; its block scanner finds them again.
    for (const [id, r] of n.disk) if (r.corrupt) n.corruptToReport.add(id)
    stats.restarts++
    trace.push(`restart ${n.id}`)
  }
  /**
   * Corrupts a good replica of a block that keeps another good copy and has no corrupt one yet. One
   * corrupt copy per block at a time leaves room to converge: with four NORMAL datanodes left, a block
   * with two good and two corrupt copies has no target left (the block manager, like HDFS, keeps
   * corrupt copies while the block is under-replicated, and never copies onto a node holding one).
   */
  const corrupt = (): void => {
    const choices: [SimDatanode, number][] = []
    for (const n of nodes)
      if (n.live)
        for (const [id, r] of n.disk)
          if (
            !r.corrupt &&
            mapBlock(id)?.genStamp === r.genStamp &&
            recoverable(id, r.genStamp) >= 2 &&
            !nodes.some((x) => x.disk.get(id)?.corrupt === true)
          )
            choices.push([n, id])
    if (choices.length === 0) return
    const [n, id] = pick(choices, simRng)
    n.disk.get(id)!.corrupt = true
    n.corruptToReport.add(id) // the block scanner finds it
    stats.corruptions++
    trace.push(`corrupt ${id} on ${n.id}`)
  }
  const decommission = async (): Promise<void> => {
    const retired = nodes.filter((n) => map().datanodeState(n.id) !== 'NORMAL').length
    const normalLive = nodes.filter((n) => n.live && map().datanodeState(n.id) === 'NORMAL')
    // Enough NORMAL datanodes stay for replication 3 even with DOWN_MAX of them down.
    if (retired >= RETIRED_MAX || normalLive.length <= 3 + DOWN_MAX - down()) return
    const n = pick(normalLive, simRng)
    await manager.setDatanodeState({ ...SU, via: 'cluster', superuser: true }, n.id, 'DRAINING')
    stats.decommissions++
    trace.push(`decommission ${n.id}`)
  }
  const deleteFile = async (): Promise<void> => {
    if (files.length === 0) return
    const path = pick(files, simRng)
    await fs.delete(SU, path)
    files = files.filter((f) => f !== path)
    stats.fileDeletes++
    trace.push(`delete ${path}`)
  }

  const chaosStep = async (): Promise<void> => {
    const roll = simRng.nextInt(100)
    if (roll < 8) kill()
    else if (roll < 18) {
      const back = nodes.filter((n) => !n.live && !n.permanent)
      if (back.length > 0) restart(pick(back, simRng))
    } else if (roll < 23) corrupt()
    else if (roll < 25) await decommission()
    else if (roll < 28) await deleteFile()
    else if (roll < 33) await createFile()
  }

  let violation: string | undefined
  let settleSteps = 0
  try {
    await heartbeatAll()
    for (let i = 0; i < 12; i++) await createFile()
    for (let step = 0; step < (opts.chaosSteps ?? 120); step++) {
      await chaosStep()
      nowMs += HEARTBEAT_MS
      await heartbeatAll()
      await reconcile()
    }
    for (const n of nodes) if (!n.live && !n.permanent) restart(n)
    const settleMax = opts.settleStepsMax ?? 240
    let left: string[] = []
    for (settleSteps = 1; settleSteps <= settleMax; settleSteps++) {
      nowMs += HEARTBEAT_MS
      await heartbeatAll()
      await reconcile()
      left = checkConverged(blockViews(), nodeViews(), diskViews())
      if (left.length === 0) break
    }
    fail(`not converged after ${settleMax} quiet steps`, left)
  } catch (err) {
    if (!(err instanceof Violation)) throw err
    violation = err.message
  }
  return {
    seed: opts.seed,
    violation,
    stats,
    settleSteps,
    trace,
    traceHash: createHash('sha256').update(trace.join('\n')).digest('hex'),
    maxBlocksLooked: manager.reconcileStats().maxBlocksLooked,
  }
}

/** The block manager serves nothing and reads nothing here: the simulation calls it directly. */
const noNetwork: PeerNetwork = {
  openStream: () => Promise.reject(new Error('no network in the simulation')),
  handleStreams: () => Promise.reject(new Error('no network in the simulation')),
  request: () => Promise.reject(new Error('no network in the simulation')),
  handleRequests: () => Promise.reject(new Error('no network in the simulation')),
}

function pick<T>(items: readonly T[], rng: SeededRng): T {
  return items[rng.nextInt(items.length)]!
}

function shuffled<T>(items: readonly T[], rng: SeededRng): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}
