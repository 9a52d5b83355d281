/**
 * What bench/fs-mix sends, without any I/O: the operation mix, the file sizes, and the seeded choice of
 * both. Kept apart from the load generator so that a unit test (test/bench/fs-mix.test.ts) can check the
 * table and the determinism of the chooser without starting anything.
 *
 * @example
 * ```ts
 * const chooser = new MixChooser(new SeededRng(42))
 * const op = chooser.nextOp() // 'read' about 68.7 % of the time
 * const bytes = chooser.nextFileBytes() // 0 .. 32 KiB
 * ```
 */
import type { Rng } from '../../src/consensus/index.js'

/** The operations of the mix; each maps to one WebHDFS op (see webhdfs-load.ts). */
export type MixOp =
  | 'read'
  | 'statFile'
  | 'listDir'
  | 'statDir'
  | 'create'
  | 'rename'
  | 'delete'
  | 'listFile'
  | 'chown'
  | 'setReplication'
  | 'mkdir'
  | 'chmod'

/** Shares are in parts per million, so that the table sums exactly (1,000,000). */
export const PARTS = 1_000_000

/**
 * The Spotify operation mix HopsFS was benchmarked with (Niazi et al., "HopsFS: Scaling Hierarchical
 * File System Metadata Using NewSQL Databases", FAST '17), as issue 13 quotes it: read file 68.7 %,
 * stat file 13.0 %, list dir 8.5 %, stat dir 4.0 %, create 2.7 %, rename 1.3 %, delete 0.75 %, list
 * file 0.5 %, and chown, setReplication, mkdir and chmod sharing the rest (0.55 %). The paper's split
 * of that rest was not at hand, so it is shared equally: 0.1375 % each.
 */
export const SPOTIFY_MIX: readonly { readonly op: MixOp; readonly parts: number }[] = [
  { op: 'read', parts: 687_000 },
  { op: 'statFile', parts: 130_000 },
  { op: 'listDir', parts: 85_000 },
  { op: 'statDir', parts: 40_000 },
  { op: 'create', parts: 27_000 },
  { op: 'rename', parts: 13_000 },
  { op: 'delete', parts: 7_500 },
  { op: 'listFile', parts: 5_000 },
  { op: 'chown', parts: 1_375 },
  { op: 'setReplication', parts: 1_375 },
  { op: 'mkdir', parts: 1_375 },
  { op: 'chmod', parts: 1_375 },
]

/**
 * File sizes, 0 B to 32 KiB: the small-file range issue 13 names for HopsFS's small-file mix (files
 * HopsFS keeps in its metadata tables; Niazi et al., "Size Matters: Improving the Performance of Small
 * Files in Hadoop", Middleware '18, whose production traces had about a quarter of all files under
 * 16 KB). The paper's histogram was not at hand, so the weights below are ours: they lean to the
 * smallest sizes as such traces do, with a tenth of the files empty. Uniform within each bucket.
 */
export const FILE_SIZE_BUCKETS: readonly {
  readonly minBytes: number
  readonly maxBytes: number
  readonly parts: number
}[] = [
  { minBytes: 0, maxBytes: 0, parts: 100_000 },
  { minBytes: 1, maxBytes: 1024, parts: 300_000 },
  { minBytes: 1025, maxBytes: 4096, parts: 300_000 },
  { minBytes: 4097, maxBytes: 16_384, parts: 200_000 },
  { minBytes: 16_385, maxBytes: 32_768, parts: 100_000 },
]

/** Picks from a table of `parts` (summing to {@link PARTS}) by one draw of `rng`. */
function pick<T extends { readonly parts: number }>(table: readonly T[], rng: Rng): T {
  let x = rng.nextInt(PARTS)
  for (const row of table) {
    if (x < row.parts) return row
    x -= row.parts
  }
  throw new Error(`table parts sum to less than ${PARTS}`)
}

/** One client's sequence of operations and file sizes; the same rng seed gives the same sequence. */
export class MixChooser {
  constructor(private readonly rng: Rng) {}

  nextOp(): MixOp {
    return pick(SPOTIFY_MIX, this.rng).op
  }

  nextFileBytes(): number {
    const b = pick(FILE_SIZE_BUCKETS, this.rng)
    return b.minBytes + this.rng.nextInt(b.maxBytes - b.minBytes + 1)
  }

  /** A uniform index in [0, n). */
  nextIndex(n: number): number {
    return this.rng.nextInt(n)
  }
}
