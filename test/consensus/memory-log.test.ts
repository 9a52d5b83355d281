import { describe, expect, it } from 'vitest'
import {
  CompactedError,
  UnavailableError,
  type Entry,
  type Snapshot,
} from '../../src/consensus/core/types.js'
import { createSeededRng, MemoryLog } from '../../src/consensus/index.js'

const ent = (index: number, term: number, bytes = 10): Entry => ({
  index,
  term,
  type: 0,
  data: new Uint8Array(bytes).fill(index & 0xff),
  clientId: '',
  seq: 0,
  origin: '',
  originSeq: 0,
})
const snap = (index: number, term: number): Snapshot => ({
  data: new TextEncoder().encode(`state@${index}`),
  metadata: { index, term, confState: { voters: ['a'], learners: [] } },
})

/** What a call returns, or the class of error it throws. */
function outcome(f: () => unknown): unknown {
  try {
    const v = f()
    return Array.isArray(v) ? v.map((e: Entry) => `${e.index}/${e.term}/${e.data.length}`) : v
  } catch (e) {
    if (e instanceof CompactedError) return 'compacted'
    if (e instanceof UnavailableError) return 'unavailable'
    return 'error'
  }
}

describe('MemoryLog with a bounded tail (entries read back from storage)', () => {
  it('answers exactly as a log that keeps every entry in memory, through appends, truncations, compactions and snapshots', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rng = createSeededRng(seed)
      // The persisted log, as the storage holds it (the driver appends to the mirror after a write).
      let persisted = new Map<number, Entry>()
      let reads = 0
      const full = new MemoryLog()
      const bounded = new MemoryLog({
        tailBytes: 120 + rng.nextInt(200),
        snapshotMetadataOnly: true,
        readEntries: (lo, hi, maxBytes) => {
          reads++
          const out: Entry[] = []
          let size = 0
          for (let i = lo; i < hi; i++) {
            const e = persisted.get(i)
            if (!e) throw new Error(`no entry ${i}`)
            size += e.data.length + 24
            if (out.length > 0 && size > maxBytes) break
            out.push(e)
          }
          return out
        },
      })
      let term = 1
      for (let step = 0; step < 300; step++) {
        const first = full.firstIndex()
        const last = full.lastIndex()
        const r = rng.nextInt(10)
        if (r < 6) {
          // Append, sometimes over a suffix (a new leader's entries).
          const from = rng.nextInt(4) === 0 ? first + rng.nextInt(last - first + 2) : last + 1
          if (rng.nextInt(3) === 0) term++
          const es = Array.from({ length: 1 + rng.nextInt(6) }, (_, i) =>
            ent(from + i, term, rng.nextInt(40)),
          )
          for (const [i] of persisted) if (i >= from) persisted.delete(i)
          for (const e of es) persisted.set(e.index, e)
          full.append(es)
          bounded.append(es)
        } else if (r < 8 && last >= first) {
          const at = first + rng.nextInt(last - first + 1)
          const s = snap(at, full.term(at))
          full.compact(s)
          bounded.compact(s)
          for (const [i] of persisted) if (i <= at) persisted.delete(i)
        } else if (r < 9) {
          const s = snap(last + rng.nextInt(5), ++term)
          full.applySnapshot(s)
          bounded.applySnapshot(s)
          persisted = new Map()
        }
        const what = `seed ${seed} step ${step}`
        expect(bounded.firstIndex(), what).toBe(full.firstIndex())
        expect(bounded.lastIndex(), what).toBe(full.lastIndex())
        expect(bounded.snapshot().metadata, what).toEqual(full.snapshot().metadata)
        expect(bounded.snapshot().data.length, what).toBe(0)
        expect(bounded.isDataless(bounded.snapshot()), what).toBe(true)
        for (let i = full.firstIndex() - 2; i <= full.lastIndex() + 1; i++)
          expect(
            outcome(() => bounded.term(i)),
            `${what} term(${i})`,
          ).toEqual(outcome(() => full.term(i)))
        for (let k = 0; k < 5; k++) {
          const lo = full.firstIndex() - 1 + rng.nextInt(full.lastIndex() - full.firstIndex() + 3)
          const hi = lo + rng.nextInt(full.lastIndex() + 2 - lo)
          const maxBytes = rng.nextInt(3) === 0 ? Infinity : rng.nextInt(300)
          expect(
            outcome(() => bounded.entries(lo, hi, maxBytes)),
            `${what} entries(${lo}, ${hi})`,
          ).toEqual(outcome(() => full.entries(lo, hi, maxBytes)))
        }
        expect(bounded.memoryStats().bytes, what).toBeLessThanOrEqual(320 + 64)
      }
      expect(reads, `seed ${seed}`).toBeGreaterThan(0)
    }
  })

  it('does not keep a received buffer alive through views: data much smaller than its buffer is copied', () => {
    const log = new MemoryLog({ readEntries: () => [], tailBytes: 1 << 20 })
    const frame = new Uint8Array(1 << 20)
    const e = { ...ent(1, 1), data: frame.subarray(100, 140) }
    e.data.fill(7)
    log.append([e])
    const kept = log.entries(1, 2, Infinity)[0]!
    expect(Array.from(kept.data)).toEqual(Array.from(e.data))
    expect(kept.data.buffer.byteLength).toBeLessThan(1024)
    // Entries that fill their buffer are kept as they are.
    const own = ent(2, 1, 5000)
    log.append([own])
    expect(log.entries(2, 3, Infinity)[0]!.data).toBe(own.data)
  })
})

describe('MemoryLog started from a stored log (appendStored: term runs and a tail)', () => {
  it('answers exactly as one that appended every entry, and goes on appending and compacting alike', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rng = createSeededRng(seed)
      const base = rng.nextInt(20)
      let term = 1
      const all: Entry[] = []
      for (let i = base + 1; i <= base + 30 + rng.nextInt(50); i++) {
        if (rng.nextInt(6) === 0) term++
        all.push(ent(i, term, 1 + rng.nextInt(40)))
      }
      const reader = (lo: number, hi: number): Entry[] => all.filter((e) => e.index >= lo && e.index < hi)
      const full = new MemoryLog({ readEntries: reader, tailBytes: Infinity })
      const stored = new MemoryLog({ readEntries: reader, tailBytes: 200 })
      const s = snap(base, 1)
      full.applySnapshot(s)
      stored.applySnapshot(s)
      full.append(all)
      const runs: { first: number; term: number }[] = []
      for (const e of all)
        if (runs[runs.length - 1]?.term !== e.term) runs.push({ first: e.index, term: e.term })
      const tail = all.slice(all.length - 1 - rng.nextInt(5))
      stored.appendStored(runs, all[all.length - 1]!.index, tail)
      const check = (what: string): void => {
        const last = full.lastIndex()
        expect(stored.lastIndex(), `${what} seed ${seed}`).toBe(last)
        expect(stored.firstIndex(), `${what} seed ${seed}`).toBe(full.firstIndex())
        for (let i = full.firstIndex() - 1; i <= last + 1; i++)
          expect(
            outcome(() => stored.term(i)),
            `${what} seed ${seed} term ${i}`,
          ).toEqual(outcome(() => full.term(i)))
        for (let lo = full.firstIndex(); lo <= last; lo += 3)
          expect(
            outcome(() => stored.entries(lo, last + 1, Infinity)),
            `${what} seed ${seed} from ${lo}`,
          ).toEqual(outcome(() => full.entries(lo, last + 1, Infinity)))
      }
      check('started')
      // A new leader's entries truncate a suffix; then a compaction.
      const at = all[Math.floor(all.length / 2)]!.index
      const more = [ent(at, term + 1), ent(at + 1, term + 1)]
      all.splice(
        all.findIndex((e) => e.index === at),
        all.length,
        ...more,
      )
      full.append(more)
      stored.append(more)
      check('after a truncation')
      const c = snap(at - 1, full.term(at - 1))
      full.compact(c)
      stored.compact(c)
      check('after a compaction')
    }
  })
})
