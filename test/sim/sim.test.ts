import { describe, expect, it } from 'vitest'
import { runSimulation, type SimOptions, type SimResult } from './cluster.js'

/**
 * The deterministic simulation in the normal test suite: a few hundred seeds. The CLI runs thousands
 * (`npm run sim -- --seeds 10000`). SIM_TEST_SEEDS / SIM_TEST_BASE change the range.
 */
const suiteSeeds = Number(process.env.SIM_TEST_SEEDS ?? 250)
const suiteBase = Number(process.env.SIM_TEST_BASE ?? 1)

export function failureReport(r: SimResult, opts: Omit<SimOptions, 'seed'> = {}): string {
  const flags = [
    opts.driver === 'raw' ? ' --driver raw' : '',
    ...[...(opts.knownBugs ?? [])].map((b) => ` --bug ${b}`),
  ].join('')
  return [
    `SEED=${r.seed} ${r.violation?.kind}: ${r.violation?.message}`,
    `replay: npm run sim -- --seeds 1 --seed ${r.seed}${flags} --verbose`,
    ...r.trace.slice(-80).map((l) => `  ${l}`),
  ].join('\n')
}

async function runSeeds(
  opts: Omit<SimOptions, 'seed'>,
  count = suiteSeeds,
): Promise<{ okOps: number; crashes: number; partitions: number }> {
  const totals = { okOps: 0, crashes: 0, partitions: 0 }
  for (let seed = suiteBase; seed < suiteBase + count; seed++) {
    const r = await runSimulation({ ...opts, seed })
    if (r.violation !== undefined) throw new Error(failureReport(r, opts))
    totals.okOps += r.stats.okOps
    totals.crashes += r.stats.crashes
    totals.partitions += r.stats.partitions
  }
  return totals
}

describe('deterministic simulation', () => {
  it('replays exactly: the same seed gives the same trace, stats and history', async () => {
    for (const seed of [11, 12]) {
      const a = await runSimulation({ seed })
      const b = await runSimulation({ seed })
      expect(a.traceHash, `SEED=${seed}`).toBe(b.traceHash)
      expect(a.stats, `SEED=${seed}`).toEqual(b.stats)
      expect(JSON.stringify(a.history), `SEED=${seed}`).toBe(JSON.stringify(b.history))
      expect(a.history.length).toBeGreaterThan(0)
    }
    const c = await runSimulation({ seed: 13 })
    const d = await runSimulation({ seed: 14 })
    expect(c.traceHash).not.toBe(d.traceHash)
  })

  it(`the production driver (createRaftGroup) passes ${suiteSeeds} seeds of faults`, async () => {
    const t = await runSeeds({ driver: 'group' })
    // The runs must exercise something: answered operations, crashes, partitions.
    expect(t.okOps).toBeGreaterThan(suiteSeeds * 10)
    expect(t.crashes).toBeGreaterThan(suiteSeeds)
    expect(t.partitions).toBeGreaterThan(suiteSeeds)
  }, 300_000)

  it(`a durable state machine (restarts open its store; unsynced writes lost in crashes) passes ${suiteSeeds} seeds`, async () => {
    const t = await runSeeds({ driver: 'group', knobOverrides: { durableState: true } })
    expect(t.okOps).toBeGreaterThan(suiteSeeds * 10)
    expect(t.crashes).toBeGreaterThan(suiteSeeds)
  }, 300_000)

  it(`the core alone (RawNode under the simulator's own driver) passes ${Math.ceil(suiteSeeds / 2)} seeds`, async () => {
    const t = await runSeeds({ driver: 'raw' }, Math.ceil(suiteSeeds / 2))
    expect(t.okOps).toBeGreaterThan(suiteSeeds * 5)
  }, 300_000)
})
