import { describe, expect, it } from 'vitest'
import type { KnownBug } from '../../src/consensus/core/types.js'
import type { ViolationKind } from './checkers.js'
import { figure8Faults, runSimulation, type SimOptions } from './cluster.js'

/**
 * The checks can fail: each planted bug (config.testing.knownBugs, off by default) must make the
 * simulator report the violation it causes, within a bounded search over seeds. A bug may make other
 * checkers trip first on some seeds; those seeds are listed if the search fails.
 */
const cases: {
  bug: KnownBug
  kinds: readonly ViolationKind[]
  seedsMax: number
  options?: Omit<SimOptions, 'seed' | 'knownBugs'>
}[] = [
  // Two candidates win the same term.
  { bug: 'double-vote', kinds: ['election-safety'], seedsMax: 200 },
  // A leader counts a follower's ack before the follower's fsync, and its own copy before its own:
  // a committed entry is durable on fewer than a quorum.
  { bug: 'ack-before-fsync', kinds: ['durability'], seedsMax: 100 },
  // Figure 8: an old-term entry committed by counting replicas is overwritten by a later leader.
  {
    bug: 'commit-old-term',
    kinds: ['leader-completeness', 'state-machine-safety', 'durability', 'log-matching'],
    seedsMax: 800,
    options: { knobOverrides: figure8Faults },
  },
]

describe('planted bugs are caught by the simulator', () => {
  for (const { bug, kinds, seedsMax, options } of cases) {
    it(`${bug} → ${kinds[0]}`, async () => {
      const others: string[] = []
      for (let seed = 1; seed <= seedsMax; seed++) {
        const r = await runSimulation({ ...options, seed, knownBugs: new Set([bug]) })
        if (r.violation === undefined) continue
        const line = `SEED=${seed} ${r.violation.kind}: ${r.violation.message.split('\n')[0]}`
        if (kinds.includes(r.violation.kind)) {
          // Found: print it, so the run can be replayed.
          console.log(`planted bug ${bug}: ${line}`)
          expect(kinds).toContain(r.violation.kind)
          return
        }
        others.push(line)
      }
      throw new Error(
        `${bug}: no ${kinds.join('/')} violation in ${seedsMax} seeds; other violations:\n${others.join('\n')}`,
      )
    }, 300_000)
  }

  it('the same seeds without the bug report nothing of the kind (the search is not finding noise)', async () => {
    // The first seeds of the figure-8 fault mix, bug off: any violation here is a real Raft bug.
    for (let seed = 1; seed <= 30; seed++) {
      const r = await runSimulation({ seed, knobOverrides: figure8Faults })
      if (r.violation !== undefined)
        throw new Error(`SEED=${seed} (figure8 faults, no bug): ${r.violation.kind}: ${r.violation.message}`)
    }
  }, 300_000)
})
