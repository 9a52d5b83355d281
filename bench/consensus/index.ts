/**
 * Consensus benchmark (issue #3 item 6): proposals/s and commit latency (p50/p99) of a 3-node
 * RaftGroup in one process — memory network (protobuf-encoded messages), real LevelDB storage with
 * fsync in temp dirs — at 1, 16 and 256 concurrent proposers, each proposing on the leader as soon as
 * its previous proposal was applied there.
 *
 * Baseline, measured in the same run with the same concurrency and value size: ONE LevelDB where the
 * writers' values are grouped into one fsync'ed batch per group of writes (group commit, one batch in
 * flight at a time) — what a single-node store with perfect batching costs. Goal: Raft ≥ 50% of the
 * baseline's throughput at 256 proposers.
 *
 * Usage: `npm run bench -- consensus [--quick]`, or
 * `npm run bench -- consensus --quick --proposers=256` (one point).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import {
  createMemoryNetwork,
  createRaftGroup,
  createSeededRng,
  openLevelStorage,
  type AppliedEntry,
  type RaftGroup,
  type RaftPersistence,
  type StateMachine,
} from '../../src/consensus/index.js'
import { newReport, round, summarize, type Bench, type BenchReport } from '../harness.js'

const VALUE_BYTES = 128
const PROPOSER_COUNTS = [1, 16, 256]

interface Row {
  proposers: number
  proposalsPerS: number
  p50Ms: number
  p99Ms: number
  count: number
}

/** A trivial deterministic state machine: counts commands (the bench measures consensus, not apply). */
class CounterMachine implements StateMachine<null> {
  count = 0
  apply(entries: readonly AppliedEntry[]): null[] {
    this.count += entries.length
    return entries.map(() => null)
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(String(this.count))
  }
  restore(data: Uint8Array): void {
    this.count = Number(new TextDecoder().decode(data))
  }
}

/** Runs `proposers` closed-loop workers calling `op` for durationMs; returns the row. */
async function closedLoop(
  proposers: number,
  durationMs: number,
  op: (worker: number, i: number) => Promise<unknown>,
): Promise<Row> {
  const latencies: number[] = []
  const start = performance.now()
  const end = start + durationMs
  await Promise.all(
    Array.from({ length: proposers }, async (_, w) => {
      for (let i = 0; performance.now() < end; i++) {
        const t0 = performance.now()
        await op(w, i)
        latencies.push(performance.now() - t0)
      }
    }),
  )
  const elapsedS = (performance.now() - start) / 1000
  const sum = summarize(latencies)
  return {
    proposers,
    proposalsPerS: Math.round(latencies.length / elapsedS),
    p50Ms: round(sum.p50Ms, 2),
    p99Ms: round(sum.p99Ms, 2),
    count: latencies.length,
  }
}

const batchNotes: string[] = []

/** Per node: fsync'ed writes, entries written, time in writes (for the notes: batch sizes). */
const stats = new Map<string, { writes: number; entries: number; writeMs: number }>()

async function raftRun(proposers: number, durationMs: number): Promise<Row> {
  stats.clear()
  const dir = mkdtempSync(join(tmpdir(), 'hopsd-bench-raft-'))
  const ids = ['n1', 'n2', 'n3']
  const net = createMemoryNetwork({ encode: true })
  const groups: RaftGroup[] = []
  try {
    for (const [i, id] of ids.entries()) {
      const level = await openLevelStorage(join(dir, id))
      const st = stats.get(id) ?? { writes: 0, entries: 0, writeMs: 0 }
      stats.set(id, st)
      const storage: RaftPersistence = {
        load: () => level.load(),
        close: () => level.close(),
        async write(b) {
          const t0 = performance.now()
          await level.write(b)
          st.writes++
          st.entries += b.entries.length
          st.writeMs += performance.now() - t0
        },
      }
      const g = createRaftGroup({
        id,
        storage,
        transport: net.transport(id),
        stateMachine: new CounterMachine(),
        rng: createSeededRng(1000 + i),
        config: { tickMs: 50, electionTicks: 20, heartbeatTicks: 2, proposalTimeoutMs: 30_000 },
      })
      await g.start()
      groups.push(g)
    }
    await Promise.all(groups.map((g) => g.bootstrap(ids)))
    const leaderId = await groups[0]!.waitForLeader()
    const leader = groups.find((g) => g.id === leaderId)!
    const value = new Uint8Array(VALUE_BYTES).fill(7)
    await leader.propose(value) // warm-up: the leader's first entry of its term is committed
    const row = await closedLoop(proposers, durationMs, () => leader.propose(value))
    batchNotes.push(
      `raft ${proposers} proposers: ` +
        [...stats]
          .map(
            ([id, s]) =>
              `${id}${id === leaderId ? '(leader)' : ''} ${s.writes} writes, ${(s.entries / Math.max(1, s.writes)).toFixed(1)} entries/write, ${(s.writeMs / Math.max(1, s.writes)).toFixed(2)} ms/write`,
          )
          .join('; '),
    )
    return row
  } finally {
    for (const g of groups) await g.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function baselineRun(proposers: number, durationMs: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'hopsd-bench-base-'))
  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, 'db'), {
    keyEncoding: 'view',
    valueEncoding: 'view',
  })
  await db.open()
  // Group commit: writes queue while one batch is being fsync'ed; the next batch takes them all.
  let queue: { key: Uint8Array; value: Uint8Array; done: () => void }[] = []
  let writing = false
  let seq = 0
  const pump = async (): Promise<void> => {
    if (writing) return
    writing = true
    while (queue.length > 0) {
      const batch = queue
      queue = []
      await db.batch(
        batch.map((w) => ({ type: 'put' as const, key: w.key, value: w.value })),
        { sync: true },
      )
      for (const w of batch) w.done()
    }
    writing = false
  }
  const value = new Uint8Array(VALUE_BYTES).fill(7)
  const write = (): Promise<void> =>
    new Promise<void>((done) => {
      const key = new Uint8Array(9)
      key[0] = 0x65
      new DataView(key.buffer).setBigUint64(1, BigInt(++seq))
      queue.push({ key, value, done })
      void pump()
    })
  try {
    return await closedLoop(proposers, durationMs, write)
  } finally {
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const consensusBench: Bench = async (opts): Promise<BenchReport> => {
  const durationMs = opts.quick ? 2_000 : 10_000
  const arg = opts.args.find((x) => x.startsWith('--proposers='))
  const counts = arg ? arg.slice('--proposers='.length).split(',').map(Number) : PROPOSER_COUNTS
  const report = newReport('consensus', opts.quick)
  for (const n of counts) {
    // Interleaved, so that both see the same disk and CPU conditions.
    const b = await baselineRun(n, durationMs)
    const r = await raftRun(n, durationMs)
    report.baseline.push({ target: 'leveldb-group-commit', ...b })
    report.rows.push({ target: 'raft-3-nodes', ...r })
    report.ratios.push({
      figure: 'proposalsPerS',
      proposers: n,
      ratio: round(r.proposalsPerS / b.proposalsPerS, 2),
    })
  }
  const at256 = report.ratios.find((r) => r.proposers === 256)?.ratio
  report.notes.push(
    `3-node RaftGroup in one process, memory network (protobuf-encoded), LevelDB with sync writes; ${VALUE_BYTES}-byte commands; ${durationMs} ms per point; closed loop: each proposer proposes on the leader as soon as its previous proposal was applied there`,
    'baseline: one LevelDB, group commit (one fsync per batch of queued writes, one batch in flight), same concurrency and value size',
    ...batchNotes.splice(0),
    at256 === undefined
      ? 'goal (≥ 0.5 of baseline at 256 proposers): not measured'
      : `goal: ≥ 0.5 of baseline at 256 proposers — ${Number(at256) >= 0.5 ? 'met' : 'NOT met'} (${at256})`,
  )
  return report
}

export default consensusBench
