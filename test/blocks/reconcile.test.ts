// The block manager's reconcile logic under a seeded simulation (./reconcile-sim.ts): datanode deaths
// and returns, corrupt replicas, decommissions, deletes — safety every step, convergence at the end.
// Replay one seed: BLOCKS_SIM_SEED=<n> npx vitest run test/blocks/reconcile.test.ts
// More seeds: BLOCKS_SIM_SEEDS=<count> (default 40) from BLOCKS_SIM_BASE (default 1).
import { describe, expect, it } from 'vitest'
import {
  checkConverged,
  checkDeleteIsOfUncounted,
  checkNoRemovalBelowFactor,
  type BlockView,
  type DatanodeView,
} from './invariants.js'
import { runReconcileSim, type SimResult } from './reconcile-sim.js'

const one = process.env['BLOCKS_SIM_SEED']
const base = Number(process.env['BLOCKS_SIM_BASE'] ?? 1)
const seeds = one !== undefined ? [Number(one)] : range(base, Number(process.env['BLOCKS_SIM_SEEDS'] ?? 40))

function report(r: SimResult): string {
  return [
    `SEED=${r.seed} ${r.violation}`,
    `replay: BLOCKS_SIM_SEED=${r.seed} npx vitest run test/blocks/reconcile.test.ts`,
    ...r.trace.slice(-40).map((l) => `  ${l}`),
  ].join('\n')
}

describe('block reconcile (seeded simulation)', () => {
  it(`keeps every block at its replication through deaths, returns, corruption and decommissions (${seeds.length} seeds)`, async () => {
    const totals = {
      kills: 0,
      permanentKills: 0,
      restarts: 0,
      corruptions: 0,
      decommissions: 0,
      transfers: 0,
    }
    const totalsDeletes = { deletes: 0, fileDeletes: 0 }
    for (const seed of seeds) {
      const r = await runReconcileSim({ seed })
      if (r.violation !== undefined) throw new Error(report(r))
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r.stats[k]
      totalsDeletes.deletes += r.stats.deletes
      totalsDeletes.fileDeletes += r.stats.fileDeletes
    }
    if (one !== undefined) return
    // The runs must exercise what they claim to.
    for (const [k, v] of Object.entries({ ...totals, ...totalsDeletes })) expect(v, k).toBeGreaterThan(0)
    expect(totals.kills).toBeGreaterThan(seeds.length)
  }, 600_000)

  it('bounded rounds: each looks at most blocksPerStep blocks from a resumable cursor, and the cluster still converges', async () => {
    let bounded = 0
    for (const seed of seeds.slice(0, 10)) {
      const r = await runReconcileSim({ seed, blocksPerStep: 3, settleStepsMax: 2_000 })
      if (r.violation !== undefined) throw new Error(report(r))
      expect(r.maxBlocksLooked).toBeLessThanOrEqual(3)
      if (r.stats.blocks > 3) bounded++
    }
    // The bound bit: maps larger than one round's slice were reconciled all the same.
    if (one === undefined) expect(bounded).toBeGreaterThan(0)
  }, 600_000)

  it('replays exactly: the same seed gives the same trace', async () => {
    const a = await runReconcileSim({ seed: 7, chaosSteps: 60 })
    const b = await runReconcileSim({ seed: 7, chaosSteps: 60 })
    expect(a.trace.length).toBeGreaterThan(10)
    expect(a.traceHash).toBe(b.traceHash)
    expect(a.stats).toEqual(b.stats)
    const c = await runReconcileSim({ seed: 8, chaosSteps: 60 })
    expect(c.traceHash).not.toBe(a.traceHash)
  }, 120_000)
})

describe('block invariants (the checkers can fail)', () => {
  const nodes = new Map<string, DatanodeView>(
    ['a', 'b', 'c', 'd'].map((id) => [id, { id, live: id !== 'd', state: 'NORMAL' as const }]),
  )
  const block = (replicas: string[], extra: Partial<BlockView> = {}): BlockView => ({
    id: 1,
    genStamp: 5,
    replication: 2,
    complete: true,
    replicas,
    corrupt: [],
    ...extra,
  })

  it('a removal below the factor is reported; one of a surplus or a dead replica is not', () => {
    expect(checkNoRemovalBelowFactor([block(['a', 'b'])], [block(['a'])], nodes)).toHaveLength(1)
    expect(checkNoRemovalBelowFactor([block(['a', 'b', 'c'])], [block(['a', 'b'])], nodes)).toEqual([])
    expect(checkNoRemovalBelowFactor([block(['a', 'd'])], [block(['a'])], nodes)).toEqual([])
    expect(checkNoRemovalBelowFactor([block(['a', 'b'])], [], nodes)).toEqual([]) // an orphan forgotten
  })

  it('a delete of a replica the map counts is reported; of a stale or unlisted one not', () => {
    expect(checkDeleteIsOfUncounted(block(['a', 'b']), 'a', { genStamp: 5 })).toHaveLength(1)
    expect(checkDeleteIsOfUncounted(block(['a', 'b']), 'a', { genStamp: 4 })).toEqual([])
    expect(checkDeleteIsOfUncounted(block(['b', 'c']), 'a', { genStamp: 5 })).toEqual([])
    expect(checkDeleteIsOfUncounted(undefined, 'a', { genStamp: 5 })).toEqual([])
  })

  it('convergence needs exactly the replication on disks, listed, and nothing left over', () => {
    const disk = (ids: number[], corrupt = false) => new Map(ids.map((id) => [id, { genStamp: 5, corrupt }]))
    const disks = new Map([
      ['a', disk([1])],
      ['b', disk([1])],
      ['c', disk([])],
      ['d', disk([])],
    ])
    expect(checkConverged([block(['a', 'b'])], nodes, disks)).toEqual([])
    expect(checkConverged([block(['a'])], nodes, disks).length).toBeGreaterThan(0) // b unlisted
    expect(checkConverged([block(['a', 'b'], { replication: 3 })], nodes, disks).length).toBeGreaterThan(0)
    const corruptB = new Map(disks).set('b', disk([1], true))
    expect(checkConverged([block(['a', 'b'])], nodes, corruptB).length).toBeGreaterThan(0)
    const leftover = new Map(disks).set('c', disk([9]))
    expect(checkConverged([block(['a', 'b'])], nodes, leftover)).toEqual([
      'c keeps block 9, which the map no longer has',
    ])
    const draining = new Map(nodes).set('c', { id: 'c', live: true, state: 'DRAINING' })
    expect(checkConverged([block(['a', 'b'])], draining, disks)).toEqual(['c is still DRAINING'])
  })
})

function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i)
}
