/**
 * One simulation run (TigerBeetle's VOPR, for hopsd's Raft): 3 or 5 REAL RaftGroups — the production
 * driver (createRaftGroup) over the real core — in one process, with a simulated clock, network and
 * disk, all derived from one seed. Nothing reads real time or real randomness; every callback runs from
 * the scheduler, and after each event the simulator drains the microtask queue (setImmediate runs
 * after every pending microtask) so the async driver advances exactly as far as that event allows.
 * Same seed → same events in the same order → byte-identical trace.
 *
 * A run:
 * 1. The seed picks the knobs (swarm testing): cluster size, network latency/loss/duplication,
 *    partition and crash rates, disk latency and error rate, clock rates, workload shape, Raft config.
 * 2. Safety phase: clients run a read/write/cas workload while the nemesis crashes and restarts nodes,
 *    partitions the network (symmetric and asymmetric) and the disks fail writes.
 * 3. Liveness phase: everything heals; a leader must emerge, every operation issued after the heal must
 *    complete, and all nodes must converge, within a bound.
 * After every event the invariants (./checkers.ts) are checked; at the end the client history must be
 * linearizable (./linearizability.ts).
 */
import { SeededRng } from '../../src/consensus/rng.js'
import { createRaftGroup } from '../../src/consensus/raft-group.js'
import type { RaftGroup, RaftGroupConfig, RaftGroupStatus } from '../../src/consensus/raft-group-types.js'
import { isConsensusError } from '../../src/consensus/errors.js'
import type { KnownBug, NodeId } from '../../src/consensus/core/types.js'
import type { AppliedEntry } from '../../src/consensus/state-machine.js'
import { RaftInvariants, type Violation } from './checkers.js'
import { createSimDisk, entryHash, healthyDisk, type DiskKnobs, type SimDisk } from './disk.js'
import {
  createKvStateMachine,
  createDurableKvStateMachine,
  SimKvStore,
  encodeCommand,
  type KvCommand,
  type KvResult,
  type KvStateMachine,
  type KvValue,
} from './kv.js'
import { checkHistory, describeViolation, type HistoryEvent, type OpF } from './linearizability.js'
import { createSimNetwork, healthyNetwork, type NetworkKnobs, type SimNetwork } from './network.js'
import { createRawDriverGroup } from './raw-driver.js'
import { createRng, type SimRng } from './rng.js'
import { nodeClock, Scheduler, type NodeClock } from './scheduler.js'

export interface SimOptions {
  readonly seed: number
  /** Cluster size; drawn from the seed when absent. */
  readonly nodes?: 3 | 5
  /** Planted bugs (issue #3 item 5). */
  readonly knownBugs?: ReadonlySet<KnownBug>
  /** Trace lines kept for the failure report. */
  readonly traceKeep?: number
  /** Receives every trace line as it happens (--verbose). */
  readonly onTrace?: (line: string) => void
  /**
   * 'group' (default): the production driver, createRaftGroup. 'raw': ./raw-driver.ts over RawNode
   * (no client sessions, so clients don't retry a write whose outcome is unknown).
   */
  readonly driver?: 'group' | 'raw'
  /**
   * Replaces knobs drawn from the seed (swarm testing: a search for a planted bug may bias the fault
   * mix). The run stays a pure function of (seed, overrides).
   */
  readonly knobOverrides?: Partial<Omit<SimKnobs, 'raft'>> & { readonly raft?: Partial<RaftGroupConfig> }
}

export interface SimKnobs {
  readonly nodes: number
  readonly network: NetworkKnobs
  readonly disk: DiskKnobs
  readonly clockRates: readonly number[]
  /** Mean time between nemesis actions, and the action weights. */
  readonly nemesisIntervalMs: number
  readonly crashWeight: number
  readonly partitionWeight: number
  readonly healWeight: number
  readonly downtimeMaxMs: number
  readonly partitionMaxMs: number
  /**
   * Probability that the nemesis isolates a newly elected leader moments after its election (Jepsen's
   * "isolate the leader"): leaders with unreplicated tails, the raw material of Raft's Figure 8.
   */
  readonly isolateNewLeaderProbability: number
  readonly clients: number
  readonly keys: number
  readonly thinkMaxMs: number
  readonly readBarrierFraction: number
  /**
   * Proposals carry a client session (exactly-once; a write is retried after an unknown outcome).
   * Always drawn true; false (knobOverrides) shows what session-less proposals meet on a duplicating
   * network: they apply twice (the 'exactly-once' check).
   */
  readonly sessions: boolean
  /**
   * The state machine keeps a durable state (DurableState, as src/meta does): a restart opens it and
   * skips the entries it holds; unsynced writes may be lost in a crash. Not drawn (seeds replay as
   * before); the suite runs seeds with it on (knobOverrides).
   */
  readonly durableState: boolean
  readonly opDeadlineMs: number
  readonly attemptTimeoutMs: number
  readonly safetyMs: number
  /** The network of the liveness phase: healthy, and FIFO per link unless overridden. */
  readonly healedNetwork: NetworkKnobs
  readonly raft: Partial<RaftGroupConfig>
}

export interface SimResult {
  readonly seed: number
  readonly knobs: SimKnobs
  readonly violation: Violation | undefined
  /** The last `traceKeep` trace lines. */
  readonly trace: readonly string[]
  /** FNV-1a of every trace line: equal for equal seeds. */
  readonly traceHash: string
  readonly history: readonly HistoryEvent[]
  readonly stats: {
    events: number
    simMs: number
    ops: number
    okOps: number
    infoOps: number
    crashes: number
    partitions: number
    diskErrors: number
    leaders: number
    messages: number
    checkerSteps: number
    /** 1 when the linearizability search ran out of budget (neither proven nor refuted). */
    linearizabilityUnknown: number
  }
}

/** Draws every knob of a run from its seed. */
export function drawKnobs(rng: SimRng, nodes?: 3 | 5): SimKnobs {
  const n = nodes ?? rng.pick([3, 5] as const)
  const latencyMinMs = 0.5 + rng.float() * 2
  const network: NetworkKnobs = {
    latencyMinMs,
    latencyMaxMs: latencyMinMs + rng.float() * rng.pick([1, 5, 15]),
    jitterMs: rng.float() * rng.pick([0.5, 3, 10]),
    tailProbability: rng.pick([0, 0.01, 0.05]),
    tailMs: rng.between(20, 300),
    dropProbability: rng.pick([0, 0.01, 0.05, 0.1, 0.2]),
    duplicateProbability: rng.pick([0, 0.01, 0.05, 0.1]),
    fifo: rng.chance(0.5),
  }
  const writeLatencyMinMs = 0.2 + rng.float()
  const disk: DiskKnobs = {
    writeLatencyMinMs,
    writeLatencyMaxMs: writeLatencyMinMs + rng.float() * rng.pick([1, 5, 20]),
    writeErrorProbability: rng.pick([0, 0, 0.001, 0.005, 0.02]),
    keepInFlightOnCrashProbability: rng.pick([0, 0.5, 1]),
  }
  const skew = rng.pick([0, 0.05, 0.2])
  const clockRates = Array.from({ length: n }, () => 1 + (rng.float() * 2 - 1) * skew)
  return {
    nodes: n,
    network,
    disk,
    clockRates,
    nemesisIntervalMs: rng.pick([50, 150, 400]),
    crashWeight: rng.pick([0, 1, 3]),
    partitionWeight: rng.pick([0, 1, 3]),
    healWeight: rng.pick([1, 2]),
    downtimeMaxMs: rng.pick([100, 500, 1500]),
    partitionMaxMs: rng.pick([100, 500, 1500]),
    isolateNewLeaderProbability: rng.pick([0, 0, 0.2, 0.5]),
    clients: rng.between(2, 5),
    keys: rng.between(1, 4),
    thinkMaxMs: rng.pick([5, 30, 100]),
    readBarrierFraction: rng.pick([0, 0.5, 1]),
    sessions: true,
    durableState: false,
    opDeadlineMs: rng.between(1500, 2500),
    attemptTimeoutMs: rng.between(300, 900),
    safetyMs: rng.between(1000, 3000),
    healedNetwork: healthyNetwork,
    raft: {
      tickMs: 20,
      electionTicks: 10,
      heartbeatTicks: rng.pick([2, 3]),
      inflightMsgsMax: rng.pick([1, 4, 64]),
      maxBatchBytes: rng.pick([64, 256, 4096, 1 << 20]),
      snapshotEntries: rng.pick([10, 40, 10_000]),
      // Snapshots exactly every snapshotEntries (no draw: seeds keep replaying the histories they did).
      snapshotLogRatio: 0,
      snapshotChunkBytes: rng.pick([64, 1024, 256 << 10]),
      proposalTimeoutMs: 5_000,
      preVote: rng.chance(0.7),
      checkQuorum: rng.chance(0.7),
      readOnlyOption: 'safe',
      sessionsMax: 1000,
      sessionResultsMax: 16,
    },
  }
}

/**
 * A fault mix that makes Raft's Figure 8 likely: every new leader is cut off moments after its
 * election (before its first entries spread, or mid catch-up), isolations outlast election timeouts,
 * and one entry travels per MsgApp (so a follower can hold an old-term entry without the new leader's
 * no-op). Used to search for the 'commit-old-term' planted bug; `--faults figure8` in the CLI.
 */
export const figure8Faults: NonNullable<SimOptions['knobOverrides']> = {
  nodes: 3,
  crashWeight: 0,
  partitionWeight: 0,
  healWeight: 1,
  nemesisIntervalMs: 3000,
  partitionMaxMs: 1000,
  isolateNewLeaderProbability: 1,
  raft: { maxBatchBytes: 64, inflightMsgsMax: 1 },
}

/** After heal: time allowed for a leader to emerge and the clients' last operations to finish. */
const clientsStopAfterHealMs = 800
const livenessBoundMs = 6000

interface SimNode {
  readonly id: NodeId
  readonly index: number
  readonly disk: SimDisk
  readonly rng: SimRng
  /** The durable state's disk (knobs.durableState), and the draws of what a crash keeps of it. */
  readonly kvStore: SimKvStore
  readonly kvRng: SimRng
  incarnation: number
  up: boolean
  group: RaftGroup | undefined
  kv: KvStateMachine | undefined
  clock: NodeClock | undefined
  /** The status check restarts its monotonicity checks after a restart. */
  freshIncarnation: boolean
  restartTimer: ReturnType<Scheduler['after']> | undefined
}

interface ClientOp {
  readonly f: OpF
  readonly key: string
  readonly cmd: KvCommand
  readonly session: { clientId: string; seq: number } | undefined
  readonly invokedAt: number
  readonly deadline: number
  ambiguous: boolean
  done: boolean
  attempts: number
}

interface Client {
  readonly index: number
  process: number
  seq: number
  leaderHint: NodeId
  op: ClientOp | undefined
  /** Ops invoked after the heal and not completed ok / cas-fail (liveness). */
  okAfterHeal: number
}

export async function runSimulation(options: SimOptions): Promise<SimResult> {
  const seed = options.seed
  const driver = options.driver ?? 'group'
  /** Without sessions a retried write could apply twice: then an unknown outcome ends the op. */
  const useSessions = driver === 'group' && options.knobOverrides?.sessions !== false
  const retryAmbiguousWrites = useSessions
  const rootRng = createRng(seed)
  const drawn = drawKnobs(
    rootRng.fork('knobs'),
    (options.knobOverrides?.nodes as 3 | 5 | undefined) ?? options.nodes,
  )
  const o = options.knobOverrides
  const knobs: SimKnobs =
    o === undefined
      ? drawn
      : {
          ...drawn,
          ...o,
          clockRates: o.clockRates ?? drawn.clockRates.slice(0, o.nodes ?? drawn.nodes),
          raft: { ...drawn.raft, ...o.raft },
        }
  if (knobs.clockRates.length !== knobs.nodes) throw new Error('sim: clockRates must have one rate per node')
  const sched = new Scheduler()
  const traceKeep = options.traceKeep ?? 400
  const traceRing: string[] = []
  let traceHash = 0x811c9dc5
  let lastTraceTime = -1

  function trace(line: () => string): void {
    const text = `${sched.now().toFixed(3)} ${line()}`
    for (let i = 0; i < text.length; i++) {
      traceHash ^= text.charCodeAt(i)
      traceHash = Math.imul(traceHash, 0x01000193)
    }
    traceHash ^= 10
    traceHash = Math.imul(traceHash, 0x01000193)
    traceRing.push(text)
    if (traceRing.length > traceKeep * 2) traceRing.splice(0, traceRing.length - traceKeep)
    options.onTrace?.(text)
    lastTraceTime = sched.now()
  }
  void lastTraceTime

  const ids = Array.from({ length: knobs.nodes }, (_, i) => `n${i + 1}`)
  const net: SimNetwork = createSimNetwork(ids, sched, rootRng.fork('network'), knobs.network, trace)
  const inv = new RaftInvariants(ids, (id) => nodeById(id).disk.view())
  const stats = {
    events: 0,
    simMs: 0,
    ops: 0,
    okOps: 0,
    infoOps: 0,
    crashes: 0,
    partitions: 0,
    diskErrors: 0,
    leaders: 0,
    messages: 0,
    checkerSteps: 0,
    linearizabilityUnknown: 0,
  }
  let violation: Violation | undefined
  const fail = (kind: Violation['kind'], message: string): void => {
    if (violation === undefined) {
      violation = { kind, message }
      trace(() => `VIOLATION ${kind}: ${message}`)
    }
  }

  const nodes: SimNode[] = ids.map((id, index) => {
    const rng = rootRng.fork(`node-${id}`)
    const disk = createSimDisk(
      id,
      sched,
      rng.fork('disk'),
      knobs.disk,
      (w) => {
        inv.onDurableEntries(
          id,
          w.batch.entries.map((e) => ({ index: e.index, term: e.term, hash: entryHash(e) })),
          w.after,
        )
      },
      trace,
    )
    return {
      id,
      index,
      disk,
      rng,
      kvStore: new SimKvStore(),
      kvRng: rng.fork('kv-store'),
      incarnation: 0,
      up: false,
      group: undefined,
      kv: undefined,
      clock: undefined,
      freshIncarnation: true,
      restartTimer: undefined,
    }
  })
  function nodeById(id: NodeId): SimNode {
    const n = nodes.find((x) => x.id === id)
    if (n === undefined) throw new Error(`no node ${id}`)
    return n
  }

  const raftConfig: Partial<RaftGroupConfig> = {
    // The log kept in memory: as many bytes as one MsgApp carries (no draw of its own, so seeds replay
    // the histories they did): with small batches almost every entry a follower or an apply needs is
    // read back from the simulated disk.
    logCacheBytes: knobs.raft.maxBatchBytes,
    ...knobs.raft,
    ...(options.knownBugs !== undefined && options.knownBugs.size > 0
      ? { testing: { knownBugs: options.knownBugs } }
      : {}),
  }

  // ---- node lifecycle -----------------------------------------------------------------------------

  function startNode(n: SimNode): void {
    n.incarnation++
    const inc = n.incarnation
    const alive = (): boolean => n.up && n.incarnation === inc
    n.up = true
    n.freshIncarnation = true
    const clock = nodeClock(sched, n.id, knobs.clockRates[n.index]!, n.index * 1000)
    n.clock = clock
    const transport = net.attach(n.id, inc)
    const storage = n.disk.open(inc)
    const observer = {
      onApply(e: AppliedEntry) {
        if (!alive()) return
        inv.onApply(n.id, e.index, e.term, dataHash(e.data))
        if (e.data.length > 0) inv.onApplyCommand(n.id, e.index, textDecoder.decode(e.data))
      },
      onRestore() {},
    }
    const kv = knobs.durableState
      ? createDurableKvStateMachine(n.kvStore, observer)
      : createKvStateMachine(observer)
    n.kv = kv
    const diskEmpty = n.disk.view().hardState.term === 0 && n.disk.view().snapshotIndex === 0
    const diskErrorsAtStart = n.disk.stats.errors
    trace(() => `${n.id} start incarnation ${inc}${diskEmpty ? ' (empty disk)' : ''}`)
    let group: RaftGroup
    try {
      group = (driver === 'raw' ? createRawDriverGroup : createRaftGroup)({
        id: n.id,
        storage,
        transport,
        stateMachine: kv,
        clock,
        rng: new SeededRng(n.rng.u32()),
        config: raftConfig,
        logger: {
          debug() {},
          info() {},
          warn: (msg) => alive() && trace(() => `${n.id} warn ${msg}`),
          error: (msg) => alive() && trace(() => `${n.id} error ${msg}`),
        },
      })
    } catch (err) {
      fail('node-failure', `${n.id}: createRaftGroup threw: ${errorText(err)}`)
      return
    }
    n.group = group
    group.subscribe((ev) => {
      if (!alive()) return
      if (ev.type === 'leader') trace(() => `${n.id} sees leader ${ev.leaderId || '-'} term ${ev.term}`)
      if (ev.type === 'stopped') {
        const storageFailed = isConsensusError(ev.error, 'STORAGE_FAILED')
        trace(() => `${n.id} stopped${ev.error ? `: ${errorText(ev.error)}` : ''}`)
        if (ev.error !== undefined && !storageFailed) {
          fail('node-failure', `${n.id} stopped with an unexpected error: ${errorText(ev.error)}`)
        }
        if (storageFailed) stats.diskErrors++
        crashNode(n, 'stopped by the driver')
        if (phase === 'safety') scheduleRestart(n)
        else startNode(n)
      }
    })
    group
      .start()
      .then(async () => {
        if (!alive() || !diskEmpty) return
        try {
          await group.bootstrap(ids)
          // The core is replaced at bootstrap: whatever term it had reached before is gone (it was
          // never persisted nor sent), so per-incarnation monotonicity starts over.
          n.freshIncarnation = true
        } catch (err) {
          if (isConsensusError(err, 'ALREADY_BOOTSTRAPPED') || !alive()) return
          if (!isConsensusError(err) && n.disk.stats.errors > diskErrorsAtStart) {
            // The disk failed the bootstrap write and the driver passed the raw error up without
            // stopping (see the report): the operator restarts the process.
            trace(() => `${n.id} bootstrap failed on a disk error: ${errorText(err)}`)
            crashNode(n, 'bootstrap write failed')
            if (phase === 'safety') scheduleRestart(n)
            else startNode(n)
            return
          }
          throw err
        }
      })
      .catch((err: unknown) => {
        if (!alive()) return
        if (isConsensusError(err, 'STOPPED') || isConsensusError(err, 'STORAGE_FAILED')) return
        fail('node-failure', `${n.id}: start/bootstrap failed: ${errorText(err)}`)
      })
  }

  /** The machine dies: timers, sockets and the disk's unsynced write go; nothing else runs for it. */
  function crashNode(n: SimNode, why: string): void {
    if (!n.up) return
    n.up = false
    n.clock?.stopAll()
    net.detach(n.id)
    n.disk.crash()
    if (knobs.durableState) n.kvStore.crash((k) => n.kvRng.between(0, k))
    n.group = undefined
    n.kv = undefined
    trace(() => `${n.id} crash (${why})`)
  }

  function scheduleRestart(n: SimNode): void {
    if (n.restartTimer !== undefined) return
    const downMs = 10 + rootRngNemesis.float() * knobs.downtimeMaxMs
    n.restartTimer = sched.after(downMs, `${n.id}:restart`, () => {
      n.restartTimer = undefined
      if (!n.up) startNode(n)
    })
  }

  // ---- nemesis --------------------------------------------------------------------------------------

  const rootRngNemesis = rootRng.fork('nemesis')
  let phase = 'safety' as 'safety' | 'liveness'
  let healTimer: ReturnType<Scheduler['after']> | undefined

  function nemesisStep(): void {
    if (phase !== 'safety') return
    const rng = rootRngNemesis
    const total = knobs.crashWeight + knobs.partitionWeight + knobs.healWeight
    let x = rng.float() * total
    if ((x -= knobs.crashWeight) < 0) {
      const up = nodes.filter((n) => n.up)
      if (up.length > 0) {
        const victim = pickTarget(rng, up)
        stats.crashes++
        crashNode(victim, 'nemesis')
        scheduleRestart(victim)
      }
    } else if ((x -= knobs.partitionWeight) < 0) {
      partition(rng)
    } else {
      net.healPartitions()
      trace(() => 'nemesis: heal partitions')
    }
    sched.after(rng.float() * 2 * knobs.nemesisIntervalMs, 'nemesis', nemesisStep)
  }

  /** Half the time the nemesis goes for a node that believes it leads (as Jepsen's nemeses do). */
  function pickTarget(rng: SimRng, among: readonly SimNode[]): SimNode {
    if (rng.chance(0.5)) {
      const leaders = among.filter((n) => n.up && n.group !== undefined && n.group.status().role === 'leader')
      if (leaders.length > 0) return rng.pick(leaders)
    }
    return rng.pick(among)
  }

  let leadersSeen = 0
  /** Called after each step: a leader of a new term may get isolated right away. */
  function maybeIsolateNewLeader(): void {
    if (inv.leaders.size === leadersSeen) return
    leadersSeen = inv.leaders.size
    if (phase !== 'safety' || !rootRngNemesis.chance(knobs.isolateNewLeaderProbability)) return
    const newest = [...inv.leaders.entries()].reduce((a, b) => (b[0] > a[0] ? b : a))
    const [term, leader] = newest
    // Either before its first messages can arrive, or a few round trips later (mid catch-up).
    const oneWayMs = knobs.network.latencyMaxMs + knobs.network.jitterMs
    const delayMs = rootRngNemesis.chance(0.5)
      ? rootRngNemesis.float() * knobs.network.latencyMinMs
      : rootRngNemesis.float() * 10 * oneWayMs
    sched.after(delayMs, 'nemesis:isolate-leader', () => {
      if (phase !== 'safety') return
      net.healPartitions()
      stats.partitions++
      for (const b of ids) {
        if (b === leader) continue
        net.block(leader, b)
        net.block(b, leader)
      }
      trace(() => `nemesis: isolate new leader ${leader} of term ${term}: ${net.describePartitions()}`)
      scheduleHeal(rootRngNemesis)
    })
  }

  function scheduleHeal(rng: SimRng): void {
    if (healTimer !== undefined) sched.cancel(healTimer)
    healTimer = sched.after(10 + rng.float() * knobs.partitionMaxMs, 'nemesis:heal', () => {
      healTimer = undefined
      if (phase !== 'safety') return
      net.healPartitions()
      trace(() => 'nemesis: partition healed')
    })
  }

  function partition(rng: SimRng): void {
    net.healPartitions()
    stats.partitions++
    const kind = rng.pick(['isolate', 'split', 'asymmetric', 'links'] as const)
    if (kind === 'isolate') {
      const a = pickTarget(rng, nodes).id
      for (const b of ids) {
        if (b === a) continue
        net.block(a, b)
        net.block(b, a)
      }
    } else if (kind === 'split') {
      const side = new Set(ids.filter(() => rng.chance(0.5)))
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) net.block(a, b)
    } else if (kind === 'asymmetric') {
      // One node can send but not receive, or receive but not send.
      const a = pickTarget(rng, nodes).id
      const deaf = rng.chance(0.5)
      for (const b of ids) {
        if (b === a) continue
        if (deaf) net.block(b, a)
        else net.block(a, b)
      }
    } else {
      for (const a of ids) for (const b of ids) if (a !== b && rng.chance(0.3)) net.block(a, b)
    }
    trace(() => `nemesis: partition ${kind}: ${net.describePartitions()}`)
    scheduleHeal(rng)
  }

  function heal(): void {
    phase = 'liveness'
    trace(() => 'HEAL: liveness phase')
    net.healPartitions()
    net.setKnobs(knobs.healedNetwork)
    for (const n of nodes) {
      n.disk.setKnobs(healthyDisk)
      if (n.restartTimer !== undefined) {
        sched.cancel(n.restartTimer)
        n.restartTimer = undefined
      }
      if (!n.up) startNode(n)
    }
  }

  // ---- clients --------------------------------------------------------------------------------------

  const history: HistoryEvent[] = []
  const workloadRng = rootRng.fork('workload')
  const keys = Array.from({ length: knobs.keys }, (_, i) => `k${i}`)
  let nextValue = 1
  let nextProcess = knobs.clients
  /** Values written per key (cas picks its expected value among them). */
  const writtenValues = new Map<string, number[]>()
  const clients: Client[] = Array.from({ length: knobs.clients }, (_, i) => ({
    index: i,
    process: i,
    seq: 0,
    leaderHint: '',
    op: undefined,
    okAfterHeal: 0,
  }))
  let healAt = knobs.safetyMs
  let clientsStopAt = knobs.safetyMs + clientsStopAfterHealMs

  function record(c: Client, type: HistoryEvent['type'], op: ClientOp, value: HistoryEvent['value']): void {
    const ev: HistoryEvent = { process: c.process, type, f: op.f, key: op.key, value, time: sched.now() }
    history.push(ev)
    trace(() => `client p${c.process} ${type} ${op.f} ${op.key} ${JSON.stringify(value)}`)
  }

  function invokeValue(cmd: KvCommand): HistoryEvent['value'] {
    return cmd.op === 'read' ? null : cmd.op === 'write' ? cmd.value : [cmd.expected, cmd.value]
  }

  function scheduleClient(c: Client): void {
    const wait = workloadRng.float() * knobs.thinkMaxMs
    sched.after(wait, `client${c.index}`, () => {
      // After the heal every client must still complete one operation (liveness), then stops.
      if (sched.now() >= clientsStopAt && c.okAfterHeal > 0) return
      issue(c)
    })
  }

  function issue(c: Client): void {
    const rng = workloadRng
    const key = rng.pick(keys)
    const f = rng.pick<OpF>(['read', 'read', 'write', 'write', 'cas'])
    let cmd: KvCommand
    const opId = stats.ops + 1
    if (f === 'read') cmd = { op: 'read', key, id: opId }
    else if (f === 'write') cmd = { op: 'write', key, value: nextValue++ }
    else {
      const seen = writtenValues.get(key) ?? []
      const expected: KvValue =
        seen.length === 0 || rng.chance(0.1)
          ? null
          : seen[seen.length - 1 - rng.int(Math.min(3, seen.length))]!
      cmd = { op: 'cas', key, expected, value: nextValue++ }
    }
    if (cmd.op !== 'read') {
      const list = writtenValues.get(key) ?? []
      list.push(cmd.value)
      writtenValues.set(key, list)
    }
    const op: ClientOp = {
      f,
      key,
      cmd,
      // Every proposal carries the client's session (reads through the log too: a network-duplicated
      // proposal must apply once). ReadIndex reads don't use it.
      session: useSessions ? { clientId: `client-${c.index}`, seq: ++c.seq } : undefined,
      invokedAt: sched.now(),
      deadline: sched.now() + knobs.opDeadlineMs,
      ambiguous: false,
      done: false,
      attempts: 0,
    }
    c.op = op
    stats.ops++
    record(c, 'invoke', op, invokeValue(cmd))
    attempt(c, op)
  }

  /**
   * The bytes proposed by an attempt. A retried write/cas resends the same bytes under the same
   * session (the driver must apply it once); a read through the log is idempotent, so a retry is a
   * fresh command when there is no session to deduplicate it.
   */
  function attemptCommand(op: ClientOp): KvCommand {
    if (op.cmd.op !== 'read' || op.session !== undefined) return op.cmd
    return { ...op.cmd, id: `${op.cmd.id}.${op.attempts}` }
  }

  function finish(c: Client, op: ClientOp, type: 'ok' | 'fail' | 'info', value: HistoryEvent['value']): void {
    if (op.done) return
    op.done = true
    c.op = undefined
    record(c, type, op, value)
    if (type === 'ok') stats.okOps++
    if (type === 'info') {
      stats.infoOps++
      // Jepsen's convention: an indeterminate op stays open forever, so the client continues as a new process.
      c.process = nextProcess++
    }
    // Liveness: after the heal every client must get an answer from the cluster (an ok, or a cas that
    // was refused because it compared unequal); until it does it keeps trying, within the bound.
    if (op.invokedAt > healAt && phase === 'liveness') {
      if (type === 'ok' || (type === 'fail' && op.f === 'cas' && !op.ambiguous)) c.okAfterHeal++
    }
    scheduleClient(c)
  }

  function attempt(c: Client, op: ClientOp): void {
    if (op.done) return
    if (sched.now() >= op.deadline) {
      finish(c, op, op.ambiguous ? 'info' : 'fail', invokeValue(op.cmd))
      return
    }
    if (op.ambiguous && !retryAmbiguousWrites) {
      finish(c, op, 'info', invokeValue(op.cmd))
      return
    }
    op.attempts++
    const rng = workloadRng
    // Its own hint mostly; sometimes the newest leader anyone has seen (clients that follow leadership
    // announcements: a leader that was just cut off still gets writes, so logs diverge); else any node.
    const x = rng.float()
    const target =
      c.leaderHint !== '' && x < 0.6
        ? nodeById(c.leaderHint)
        : x < 0.8 && inv.newestLeader !== undefined
          ? nodeById(inv.newestLeader)
          : rng.pick(nodes)
    const retry = (why: string): void => {
      trace(() => `client p${c.process} attempt ${op.attempts} on ${target.id}: ${why}`)
      if (op.done) return
      const backoff = 5 + rng.float() * 40
      sched.after(backoff, `client${c.index}:retry`, () => attempt(c, op))
    }
    if (!target.up || target.group === undefined || target.kv === undefined) {
      // Connection refused: this attempt did nothing.
      c.leaderHint = ''
      retry('node down')
      return
    }
    const group = target.group
    const kv = target.kv
    const inc = target.incarnation
    const alive = (): boolean => target.up && target.incarnation === inc
    const controller = new AbortController()
    let settled = false
    const timer = sched.after(
      Math.min(knobs.attemptTimeoutMs, op.deadline - sched.now()),
      `client${c.index}:timeout`,
      () => {
        if (settled) return
        settled = true
        controller.abort()
        // The request may have reached the leader: from now on the op's outcome is unknown.
        if (op.f !== 'read') op.ambiguous = true
        c.leaderHint = ''
        retry('timeout')
      },
    )
    let promise: Promise<KvValue | KvResult | unknown>
    const useBarrier = op.f === 'read' && rng.chance(knobs.readBarrierFraction)
    try {
      promise = useBarrier
        ? group.readBarrier({ signal: controller.signal }).then(() => (alive() ? kv.get(op.key) : undefined))
        : group.propose(encodeCommand(attemptCommand(op)), {
            signal: controller.signal,
            ...(op.session !== undefined ? { session: op.session } : {}),
          })
    } catch (err) {
      promise = Promise.reject(err)
    }
    promise.then(
      (result) => {
        // A dead node's answer never reaches the client.
        if (settled || !alive()) return
        settled = true
        sched.cancel(timer)
        c.leaderHint = target.id
        if (useBarrier) {
          finish(c, op, 'ok', result as KvValue)
          return
        }
        const r = result as KvResult
        if (r.op === 'read') finish(c, op, 'ok', r.value)
        else if (r.op === 'write') finish(c, op, 'ok', op.cmd.op === 'write' ? op.cmd.value : null)
        else if (r.op === 'cas') finish(c, op, r.ok ? 'ok' : 'fail', invokeValue(op.cmd))
        else fail('node-failure', `${target.id}: unexpected result ${JSON.stringify(result)}`)
      },
      (err: unknown) => {
        if (settled || !alive()) return
        settled = true
        sched.cancel(timer)
        const code = isConsensusError(err) ? err.code : undefined
        if (code === undefined) {
          fail('node-failure', `${target.id}: ${op.f} rejected with a non-consensus error: ${errorText(err)}`)
          return
        }
        if (isConsensusError(err) && err.leaderHint !== '') c.leaderHint = err.leaderHint
        else c.leaderHint = ''
        // Codes documented as "did not happen" leave the op's outcome as it was; any other makes it unknown.
        if (!definitelyNotApplied.has(code) && op.f !== 'read') op.ambiguous = true
        retry(code)
      },
    )
  }

  // ---- the run --------------------------------------------------------------------------------------

  trace(() => `seed ${seed} knobs ${JSON.stringify(knobs)}`)
  for (const n of nodes) startNode(n)
  for (const c of clients) scheduleClient(c)
  sched.after(rootRngNemesis.float() * knobs.nemesisIntervalMs, 'nemesis', nemesisStep)
  sched.after(knobs.safetyMs, 'heal', heal)
  const endAt = knobs.safetyMs + livenessBoundMs
  healAt = knobs.safetyMs
  clientsStopAt = healAt + clientsStopAfterHealMs

  const eventsMax = 2_000_000
  let converged = false
  for (;;) {
    const ev = sched.next()
    if (ev === undefined) break
    if (ev.at > endAt) break
    stats.events++
    if (stats.events > eventsMax) {
      fail('liveness', `more than ${eventsMax} events`)
      break
    }
    try {
      ev.run()
    } catch (err) {
      fail('node-failure', `event ${ev.label} threw: ${errorText(err)}`)
    }
    await drainMicrotasks()
    checkStep(touchedNode(ev.label))
    if (violation !== undefined) break
    if (
      phase === 'liveness' &&
      sched.now() >= clientsStopAt &&
      clients.every((c) => c.op === undefined && c.okAfterHeal > 0)
    ) {
      if (isConverged()) {
        converged = true
        break
      }
    }
  }
  if (violation === undefined && !converged) {
    fail('liveness', `no convergence ${livenessBoundMs} ms after the heal: ${describeCluster()}`)
  }
  if (violation === undefined) {
    for (const c of clients) {
      if (c.okAfterHeal === 0) fail('liveness', `client ${c.index} completed no operation after the heal`)
    }
  }
  if (violation === undefined) {
    const lin = checkHistory(history)
    if (lin.result === 'violation') fail('linearizability', describeViolation(lin.violation!))
    else if (lin.result === 'unknown') {
      stats.linearizabilityUnknown = 1
      trace(() => 'linearizability: unknown (search budget exhausted)')
    }
  }

  // Leave no timers or promises of this run behind.
  for (const n of nodes) crashNode(n, 'end of run')
  stats.simMs = sched.now()
  stats.leaders = inv.leaders.size
  stats.messages = net.stats.sent
  trace(() => `end: ${violation === undefined ? 'ok' : `${violation.kind}`} ${JSON.stringify(stats)}`)
  return {
    seed,
    knobs,
    violation,
    trace: traceRing.slice(-traceKeep),
    traceHash: (traceHash >>> 0).toString(16).padStart(8, '0'),
    history,
    stats,
  }

  /**
   * After an event: every node the event could have changed reports its status. An event labelled
   * for one node (its timer, its disk, a message delivered to it) runs only that node's code, and
   * the microtasks it queues belong to that node too; anything else (clients, nemesis) checks all.
   */
  function checkStep(touched: NodeId | undefined): void {
    stats.checkerSteps++
    for (const n of nodes) {
      if (!n.up || n.group === undefined) continue
      if (touched !== undefined && n.id !== touched) continue
      let s: RaftGroupStatus
      try {
        s = n.group.status()
      } catch (err) {
        fail('node-failure', `${n.id}: status() threw: ${errorText(err)}`)
        return
      }
      inv.observe(
        { id: n.id, role: s.role, term: s.term, commitIndex: s.commitIndex, appliedIndex: s.appliedIndex },
        n.freshIncarnation,
      )
      n.freshIncarnation = false
      if (s.leaderId !== '' && s.leaderId !== n.id) inv.observeLeaderClaim(s.term, s.leaderId, n.id)
    }
    inv.checkDurabilityNow()
    if (inv.violation !== undefined) fail(inv.violation.kind, inv.violation.message)
    maybeIsolateNewLeader()
  }

  function isConverged(): boolean {
    const up = nodes.filter((n) => n.up && n.group !== undefined)
    if (up.length !== nodes.length) return false
    const statuses = up.map((n) => n.group!.status())
    const leader = statuses.find((s) => s.role === 'leader')
    if (leader === undefined) return false
    return statuses.every(
      (s) => s.leaderId === leader.id && s.term === leader.term && s.appliedIndex === leader.commitIndex,
    )
  }

  function describeCluster(): string {
    return nodes
      .map((n) => {
        if (!n.up || n.group === undefined) return `${n.id}:down`
        const s = n.group.status()
        return `${n.id}:${s.role} t${s.term} lead=${s.leaderId || '-'} commit=${s.commitIndex} applied=${s.appliedIndex} last=${s.lastIndex}`
      })
      .join(' ')
  }
}

const textDecoder = new TextDecoder()

/** Error codes documented as "the command did not and will not take effect". */
const definitelyNotApplied = new Set<string>([
  'NOT_LEADER',
  'NO_LEADER',
  'QUEUE_FULL',
  'PROPOSAL_TOO_LARGE',
  'PROPOSAL_DROPPED',
])

/** The one node an event belongs to, from its label ("n1:timer", "n2:disk", "net n1->n2"), if any. */
function touchedNode(label: string): NodeId | undefined {
  if (label.startsWith('net ')) return label.slice(label.indexOf('->') + 2)
  const colon = label.indexOf(':')
  if (colon > 0 && label[0] === 'n' && !label.startsWith('nemesis')) {
    const suffix = label.slice(colon + 1)
    if (suffix === 'timer' || suffix === 'disk') return label.slice(0, colon)
  }
  return undefined
}

/** Lets every pending microtask (and the ones they queue) run: setImmediate fires after all of them. */
function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

function dataHash(data: Uint8Array): number {
  let h = 0x811c9dc5
  for (let i = 0; i < data.length; i++) {
    h ^= data[i]!
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return `${err.name}${code !== undefined ? `(${String(code)})` : ''}: ${err.message}${err.stack ? `\n${err.stack.split('\n').slice(1, 6).join('\n')}` : ''}`
  }
  return String(err)
}
