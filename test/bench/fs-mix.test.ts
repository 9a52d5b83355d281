// Smoke check of bench/fs-mix's workload table, so that the benchmark's code does not rot unnoticed:
// the Spotify mix and the size buckets sum to 100 %, the seeded chooser repeats itself for a seed and
// lands near the table's shares. No timing is asserted (benchmarks never are).
import { describe, expect, it } from 'vitest'
import { SeededRng } from '../../src/consensus/index.js'
import { FILE_SIZE_BUCKETS, MixChooser, PARTS, SPOTIFY_MIX, type MixOp } from '../../bench/fs-mix/mix.js'

describe('bench/fs-mix workload', () => {
  it("the op mix and the size buckets each sum to 100 %, with the issue's shares", () => {
    expect(SPOTIFY_MIX.reduce((s, r) => s + r.parts, 0)).toBe(PARTS)
    expect(FILE_SIZE_BUCKETS.reduce((s, r) => s + r.parts, 0)).toBe(PARTS)
    const share = (op: MixOp) => SPOTIFY_MIX.find((r) => r.op === op)!.parts / (PARTS / 100)
    expect(share('read')).toBe(68.7)
    expect(share('statFile')).toBe(13)
    expect(share('delete')).toBe(0.75)
    expect(new Set(SPOTIFY_MIX.map((r) => r.op)).size).toBe(12)
    expect(Math.max(...FILE_SIZE_BUCKETS.map((b) => b.maxBytes))).toBe(32_768)
  })

  it('the same seed chooses the same ops and sizes; another seed does not', () => {
    const seq = (seed: number) => {
      const c = new MixChooser(new SeededRng(seed))
      return Array.from({ length: 500 }, () => `${c.nextOp()}:${c.nextFileBytes()}`)
    }
    expect(seq(1234)).toEqual(seq(1234))
    expect(seq(1234)).not.toEqual(seq(1235))
  })

  it('draws ops near their shares and sizes inside 0..32 KiB', () => {
    const c = new MixChooser(new SeededRng(7))
    const counts = new Map<MixOp, number>()
    const draws = 200_000
    let minBytes = Infinity
    let maxBytes = -Infinity
    for (let i = 0; i < draws; i++) {
      const op = c.nextOp()
      counts.set(op, (counts.get(op) ?? 0) + 1)
      const bytes = c.nextFileBytes()
      minBytes = Math.min(minBytes, bytes)
      maxBytes = Math.max(maxBytes, bytes)
    }
    expect(minBytes).toBe(0)
    expect(maxBytes).toBeLessThanOrEqual(32_768)
    for (const { op, parts } of SPOTIFY_MIX) {
      const expected = (parts / PARTS) * draws
      // Within 5 standard deviations of a binomial count (and every op drawn at least once).
      const sd = Math.sqrt(expected * (1 - parts / PARTS))
      expect(Math.abs((counts.get(op) ?? 0) - expected)).toBeLessThan(5 * sd + 1)
      expect(counts.get(op) ?? 0).toBeGreaterThan(0)
    }
  })
})
