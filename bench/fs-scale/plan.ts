/**
 * The pure parts of bench/fs-scale: which file of the namespace is what (path and size), and the
 * per-file arithmetic of the figures. Kept apart from the bench so that a unit test checks them
 * (test/bench/fs-scale.test.ts) without starting a daemon.
 *
 * @example
 * ```ts
 * fileAt('/scale/fill', 1001) // { path: '/scale/fill/d1/f1001', bytes: 0 }
 * perFileBytes(1_500_000_000, 300_000_000, 200_000) // 6000
 * ```
 */

/** Bytes of an inline file: the 4 KiB. */
export const INLINE_FILE_BYTES = 4096
/** Files per directory: small enough that no listing or directory entry set grows with N. */
export const FILES_PER_DIR = 1000

export interface PlannedFile {
  readonly path: string
  /** 4 KiB (inline) for even indexes, 0 (empty) for odd ones: half and half, interleaved. */
  readonly bytes: number
}

/** File `i` (from 0) under `root`: `root/d<i div 1000>/f<i>`, half 4 KiB and half empty. */
export function fileAt(root: string, i: number): PlannedFile {
  if (!Number.isInteger(i) || i < 0) throw new RangeError(`file index ${i} is not a non-negative integer`)
  return {
    path: `${root}/d${Math.floor(i / FILES_PER_DIR)}/f${i}`,
    bytes: i % 2 === 0 ? INLINE_FILE_BYTES : 0,
  }
}

/** How many of the first `n` files are inline (4 KiB) and how many empty. */
export function sizeSplit(n: number): { inline: number; empty: number; inlineBytes: number } {
  const inline = Math.ceil(n / 2)
  return { inline, empty: n - inline, inlineBytes: inline * INLINE_FILE_BYTES }
}

/**
 * Bytes per file that `files` files added to a measure that was `before` without them (RSS, heap,
 * disk); NaN when no file was made. Negative when the measure shrank (a GC, a compaction): reported
 * as is, never clamped.
 */
export function perFileBytes(after: number, before: number, files: number): number {
  if (files <= 0) return NaN
  return (after - before) / files
}
