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
 * Usage: `npm run bench -- consensus [--quick]`, or directly:
 * `./node_modules/.bin/node --import tsx bench/consensus/index.ts [--quick]`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
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

const VALUE_BYTES = 128
const PROPOSER_COUNTS = (process.env.BENCH_PROPOSERS ?? "1,16,256").split(",").map(Number)

export interface Row {
  proposers: number
  proposalsPerSec: number
  p50Ms: number
  p99Ms: number
  count: number
}

export interface ConsensusBenchReport {
  name: string
  quick: boolean
  rows: Row[]
  baseline: Row[]
  ratios: { proposers: number; ratio: number }[]
  notes: string[]
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

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

/** Runs `proposers` closed-loop workers calling `op` for durationMs; returns the row. */
async function closedLoop(proposers: number, durationMs: number, op: (worker: number, i: number) => Promise<unknown>): Promise<Row> {
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
  const sorted = Float64Array.from(latencies).sort()
  return {
    proposers,
    proposalsPerSec: Math.round(latencies.length / elapsedS),
    p50Ms: round2(percentile(sorted, 50)),
    p99Ms: round2(percentile(sorted, 99)),
    count: latencies.length,
  }
}

const batchNotes: string[] = []
const round2 = (x: number): number => Math.round(x * 100) / 100

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
          .map(([id, s]) => `${id}${id === leaderId ? '(leader)' : ''} ${s.writes} writes, ${(s.entries / Math.max(1, s.writes)).toFixed(1)} entries/write, ${(s.writeMs / Math.max(1, s.writes)).toFixed(2)} ms/write`)
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
  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dir, 'db'), { keyEncoding: 'view', valueEncoding: 'view' })
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

export default async function consensusBench(opts: { quick: boolean; args: string[] }): Promise<ConsensusBenchReport> {
  const durationMs = opts.quick ? 2_000 : 10_000
  const rows: Row[] = []
  const baseline: Row[] = []
  for (const n of PROPOSER_COUNTS) {
    // Interleaved, so that both see the same disk conditions.
    baseline.push(await baselineRun(n, durationMs))
    rows.push(await raftRun(n, durationMs))
  }
  const ratios = rows.map((r, i) => ({ proposers: r.proposers, ratio: round2(r.proposalsPerSec / baseline[i]!.proposalsPerSec) }))
  const at256 = ratios.find((r) => r.proposers === 256)?.ratio ?? 0
  return {
    name: 'consensus',
    quick: opts.quick,
    rows,
    baseline,
    ratios,
    notes: [
      `3-node RaftGroup in one process, memory network (protobuf-encoded), LevelDB with sync writes; ${VALUE_BYTES}-byte commands; ${durationMs} ms per point`,
      'baseline: one LevelDB, group commit (one fsync per batch of queued writes), same concurrency',
      ...batchNotes.splice(0),
      `goal: ≥ 0.5 of baseline at 256 proposers — ${at256 >= 0.5 ? 'met' : 'NOT met'} (${at256})`,
    ],
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick')
  const report = await consensusBench({ quick, args: process.argv.slice(2) })
  console.log('proposers  raft/s   p50ms  p99ms | base/s   p50ms  p99ms | ratio')
  for (const [i, r] of report.rows.entries()) {
    const b = report.baseline[i]!
    console.log(
      `${String(r.proposers).padStart(9)} ${String(r.proposalsPerSec).padStart(8)} ${String(r.p50Ms).padStart(7)} ${String(r.p99Ms).padStart(6)} | ${String(b.proposalsPerSec).padStart(7)} ${String(b.p50Ms).padStart(7)} ${String(b.p99Ms).padStart(6)} | ${report.ratios[i]!.ratio}`,
    )
  }
  for (const n of report.notes) console.log(n)
}
