// The seeded scheduling simulation: worker deaths and restarts, stale and lossy gossip, lost requests,
// kills, gangs — the invariant checkers after every event, and every job must end once faults stop.
// SCHED_SIM_SEEDS=N runs more seeds; a failure prints SEED=<n> (replay: SCHED_SIM_SEED=<n>).
import { describe, expect, it } from 'vitest'
import { runSchedSim } from './sim.js'

const first = Number(process.env.SCHED_SIM_SEED ?? 1)
const count = Number(process.env.SCHED_SIM_SEEDS ?? (process.env.SCHED_SIM_SEED ? 1 : 12))

describe('scheduler simulation', () => {
  it(`seeds ${first}..${first + count - 1}: no GPU given twice, gangs all or nothing, every job ends`, async () => {
    const totals: Record<string, number> = {}
    let crashes = 0
    for (let seed = first; seed < first + count; seed++) {
      const r = await runSchedSim({ seed })
      if (r.violation !== undefined) {
        const line = `SEED=${seed} ${r.violation.kind} at ${r.violation.atMs} ms: ${r.violation.message} (knobs ${JSON.stringify(r.knobs)})`
        console.log(line)
        throw new Error(line)
      }
      for (const [k, v] of Object.entries(r.ended)) totals[k] = (totals[k] ?? 0) + v
      crashes += r.crashes
    }
    // The runs did something: jobs succeeded, workers crashed, and crashes cost some runs.
    expect(totals.SUCCEEDED ?? 0).toBeGreaterThan(100)
    expect(crashes).toBeGreaterThan(5)
    expect(totals.RUNNING ?? 0).toBe(0)
    expect(totals.QUEUED ?? 0).toBe(0)
  }, 600_000)

  // The checkers can fail: each planted bug must be reported within a bounded search over seeds.
  const planted = [
    { bug: 'double-reserve', kind: 'gpu-shared' },
    { bug: 'start-on-reserve', kind: 'gang-partial' },
  ] as const
  for (const { bug, kind } of planted) {
    it(`planted bug ${bug} → ${kind}`, async () => {
      const seen: string[] = []
      for (let seed = 1; seed <= 30; seed++) {
        const r = await runSchedSim({ seed, workerBugs: new Set([bug]), safetyMs: 8000 })
        if (r.violation === undefined) continue
        seen.push(`SEED=${seed} ${r.violation.kind}`)
        if (r.violation.kind === kind) {
          console.log(`planted bug ${bug}: SEED=${seed} ${r.violation.message}`)
          return
        }
      }
      throw new Error(`${bug}: no ${kind} violation in 30 seeds; saw ${seen.join(', ') || 'none'}`)
    }, 600_000)
  }
})
