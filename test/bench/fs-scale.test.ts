// bench/fs-scale's pure parts (bench/fs-scale/plan.ts): which file is what, the half-and-half size
// split, and the per-file arithmetic of its figures. No daemon, no timing asserted.
import { describe, expect, it } from 'vitest'
import {
  FILES_PER_DIR,
  INLINE_FILE_BYTES,
  fileAt,
  perFileBytes,
  sizeSplit,
} from '../../bench/fs-scale/plan.js'

describe('bench/fs-scale plan', () => {
  it('interleaves 4 KiB and empty files, 1,000 per directory', () => {
    expect(fileAt('/scale/fill', 0)).toEqual({ path: '/scale/fill/d0/f0', bytes: INLINE_FILE_BYTES })
    expect(fileAt('/scale/fill', 1)).toEqual({ path: '/scale/fill/d0/f1', bytes: 0 })
    expect(fileAt('/scale/fill', FILES_PER_DIR - 1).path).toBe('/scale/fill/d0/f999')
    expect(fileAt('/scale/fill', FILES_PER_DIR).path).toBe('/scale/fill/d1/f1000')
    expect(INLINE_FILE_BYTES).toBe(4096)
    expect(() => fileAt('/x', -1)).toThrow(RangeError)
    expect(() => fileAt('/x', 1.5)).toThrow(RangeError)
  })

  it('the size split agrees with fileAt for even and odd counts', () => {
    for (const n of [0, 1, 2, 7, 1000, 200_001]) {
      const split = sizeSplit(n)
      expect(split.inline + split.empty).toBe(n)
      if (n <= 1000) {
        const inline = Array.from({ length: n }, (_, i) => fileAt('/r', i)).filter((f) => f.bytes > 0).length
        expect(split.inline).toBe(inline)
      }
      expect(split.inlineBytes).toBe(split.inline * INLINE_FILE_BYTES)
    }
    expect(sizeSplit(1_000_000)).toEqual({ inline: 500_000, empty: 500_000, inlineBytes: 2_048_000_000 })
  })

  it('per-file bytes: the growth over the files, negative when it shrank, NaN without files', () => {
    expect(perFileBytes(1_500_000_000, 300_000_000, 200_000)).toBe(6000)
    expect(perFileBytes(100, 300, 100)).toBe(-2)
    expect(perFileBytes(100, 50, 0)).toBeNaN()
  })
})
