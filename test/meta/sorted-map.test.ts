import { describe, expect, it } from 'vitest'
import { SortedMap } from '../../src/meta/sorted-map.js'

/** A tiny seeded PRNG (mulberry32) so that a failure replays. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('SortedMap', () => {
  it('matches a sorted reference under random inserts and deletes (seeded)', () => {
    const seed = 12345
    const rand = rng(seed)
    const m = new SortedMap<number>()
    const ref = new Map<string, number>()
    for (let i = 0; i < 20_000; i++) {
      const key =
        'k' +
        Math.floor(rand() * 5000)
          .toString()
          .padStart(5, '0')
      if (rand() < 0.65) {
        m.set(key, i)
        ref.set(key, i)
      } else {
        expect(m.delete(key), `seed ${seed}`).toBe(ref.delete(key))
      }
    }
    const sorted = [...ref.keys()].sort()
    expect([...m.entries()].map(([k]) => k)).toEqual(sorted)
    expect(m.size).toBe(ref.size)
    const lo = 'k01000'
    const hi = 'k02000'
    const want = sorted.filter((k) => k >= lo && k < hi)
    expect([...m.range(lo, hi)].map(([k]) => k)).toEqual(want)
    expect(m.countRange(lo, hi)).toBe(want.length)
    expect(m.countRange(lo, hi, true)).toBe(want.filter((k) => k !== lo).length)
    expect([...m.range(sorted[10]!, undefined, true)][0]![0]).toBe(sorted[11])
    expect(m.firstKey()).toBe(sorted[0])
  })

  it('range past the end and on an empty map yields nothing', () => {
    const m = new SortedMap<number>()
    expect([...m.range('a')]).toEqual([])
    expect(m.countRange('a')).toBe(0)
    m.set('b', 1)
    expect([...m.range('c')]).toEqual([])
    expect(m.countRange('a', 'b')).toBe(0)
    expect(m.countRange('a', 'c')).toBe(1)
  })
})
