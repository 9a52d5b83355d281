/**
 * The simulator's seeded PRNG: SplitMix64 seeding xoshiro128** (32-bit state words, so everything stays
 * in fast int32 arithmetic). One seed derives everything in a run; `fork(label)` derives an independent
 * stream (for a node, the network, the workload) so that adding draws in one place does not shift the
 * draws of another — traces stay comparable across small code changes.
 */
export interface SimRng {
  /** Uniform integer in [0, n). n must be a positive safe integer ≤ 2^32. */
  int(n: number): number
  /** Uniform integer in [lo, hi] (inclusive). */
  between(lo: number, hi: number): number
  /** Uniform float in [0, 1). */
  float(): number
  /** True with probability p. */
  chance(p: number): boolean
  pick<T>(items: readonly T[]): T
  /** Raw 32-bit unsigned output. */
  u32(): number
  /** An independent stream derived from this one's seed and a label (does not consume draws). */
  fork(label: string): SimRng
  readonly seed: bigint
}

const mask64 = (1n << 64n) - 1n

function splitmix64(state: bigint): [bigint, bigint] {
  const next = (state + 0x9e3779b97f4a7c15n) & mask64
  let z = next
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask64
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask64
  z = z ^ (z >> 31n)
  return [next, z]
}

function hashLabel(label: string): bigint {
  // FNV-1a 64.
  let h = 0xcbf29ce484222325n
  for (let i = 0; i < label.length; i++) {
    h ^= BigInt(label.charCodeAt(i))
    h = (h * 0x100000001b3n) & mask64
  }
  return h
}

export function createRng(seed: number | bigint): SimRng {
  const seed64 = BigInt.asUintN(64, BigInt(seed))
  let sm = seed64
  const s = new Uint32Array(4)
  for (let i = 0; i < 2; i++) {
    const [next, z] = splitmix64(sm)
    sm = next
    s[2 * i] = Number(z & 0xffffffffn)
    s[2 * i + 1] = Number(z >> 32n)
  }
  if ((s[0]! | s[1]! | s[2]! | s[3]!) === 0) s[0] = 1

  function u32(): number {
    // xoshiro128**
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0
    const t = s[1]! << 9
    s[2]! ^= s[0]!
    s[3]! ^= s[1]!
    s[1]! ^= s[2]!
    s[0]! ^= s[3]!
    s[2]! ^= t
    s[3] = rotl(s[3]!, 11)
    return result
  }

  function int(n: number): number {
    if (!(n > 0 && n <= 0x1_0000_0000 && Number.isInteger(n))) throw new Error(`rng.int: bad bound ${n}`)
    // Lemire-style rejection to avoid modulo bias.
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % n)
    for (;;) {
      const x = u32()
      if (x < limit) return x % n
    }
  }

  const rng: SimRng = {
    seed: seed64,
    u32,
    int,
    between: (lo, hi) => lo + int(hi - lo + 1),
    float: () => (u32() * 0x20_0000 + (u32() >>> 11)) / 2 ** 53,
    chance: (p) => (p <= 0 ? false : p >= 1 ? true : rng.float() < p),
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new Error('rng.pick: empty')
      return items[int(items.length)]!
    },
    fork: (label) => createRng(splitmix64(seed64 ^ hashLabel(label))[1]),
  }
  return rng
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0
}
