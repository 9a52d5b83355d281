/**
 * Randomness and time come in from outside (STYLE.md "Inject the world"): the Raft core draws its
 * randomized election timeouts from an `Rng`, the driver schedules ticks through a `Clock`, so the
 * simulator can replay a run exactly from one seed.
 */

/** A source of random integers. Implementations used in tests/simulation must be seeded. */
export interface Rng {
  /** A uniformly distributed integer in [0, maxExclusive); maxExclusive ≥ 1. */
  nextInt(maxExclusive: number): number
}

/**
 * xoshiro128** seeded through splitmix32: small, fast, pure, good enough for timeouts and fault
 * injection (not cryptographic). The same seed gives the same sequence on every platform.
 */
export class SeededRng implements Rng {
  private s0: number
  private s1: number
  private s2: number
  private s3: number

  constructor(readonly seed: number) {
    let x = seed >>> 0
    const next = (): number => {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0
      let z = x
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
      return (z ^ (z >>> 16)) >>> 0
    }
    this.s0 = next()
    this.s1 = next()
    this.s2 = next()
    this.s3 = next()
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1 // the all-zero state is a fixed point
  }

  /** The next 32-bit unsigned value. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0
    const t = (this.s1 << 9) >>> 0
    this.s2 = (this.s2 ^ this.s0) >>> 0
    this.s3 = (this.s3 ^ this.s1) >>> 0
    this.s1 = (this.s1 ^ this.s2) >>> 0
    this.s0 = (this.s0 ^ this.s3) >>> 0
    this.s2 = (this.s2 ^ t) >>> 0
    this.s3 = rotl(this.s3, 11)
    return result
  }

  nextInt(maxExclusive: number): number {
    if (!(maxExclusive >= 1) || !Number.isInteger(maxExclusive))
      throw new RangeError(`nextInt(${maxExclusive})`)
    // Multiply-shift on 32 bits: bias below 2^-32 * maxExclusive, irrelevant for our ranges.
    return Math.floor((this.nextU32() / 0x1_0000_0000) * maxExclusive)
  }

  /** A new independent generator derived from this one (e.g. one per simulated node). */
  fork(): SeededRng {
    return new SeededRng(this.nextU32())
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0
}

export function createSeededRng(seed: number): SeededRng {
  return new SeededRng(seed)
}
