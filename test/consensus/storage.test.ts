import { afterAll, describe, expect, it } from 'vitest'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import {
  createMemoryStorage,
  createSeededRng,
  openLevelStorage,
  type Entry,
  type PersistBatch,
  type PersistedState,
  type RaftPersistence,
  type Snapshot,
} from '../../src/consensus/index.js'
import { limitSize } from '../../src/consensus/core/log.js'
import { makeTempDir, removeTempDirs } from '../helpers/index.js'

afterAll(() => removeTempDirs())

const ent = (index: number, term: number, data = `e${index}`): Entry => ({
  index,
  term,
  type: 0,
  data: new TextEncoder().encode(data),
  clientId: index % 2 ? 'c' : '',
  seq: index,
  origin: 'n#1',
  originSeq: index,
})
const snap = (index: number, term: number, voters = ['a', 'b']): Snapshot => ({
  data: new TextEncoder().encode(`state@${index}`),
  metadata: { index, term, confState: { voters, learners: ['l'] } },
})
/** Buffer (from protobuf/LevelDB) vs Uint8Array: compare bytes, not classes. */
const norm = (x: unknown): unknown =>
  x instanceof Uint8Array
    ? Array.from(x)
    : Array.isArray(x)
      ? x.map(norm)
      : x && typeof x === 'object'
        ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, norm(v)]))
        : x
const batch = (b: Partial<PersistBatch>): PersistBatch => ({
  hardState: null,
  entries: [],
  snapshot: null,
  compact: null,
  ...b,
})
const range = (lo: number, hi: number, term: number): Entry[] =>
  Array.from({ length: hi - lo + 1 }, (_, i) => ent(lo + i, term))

/** Each storage kind: open (fresh or again on the same medium). */
const kinds: [string, () => { open: () => Promise<RaftPersistence> }][] = [
  [
    'memory',
    () => {
      let last: PersistedState | undefined
      let cur: ReturnType<typeof createMemoryStorage> | undefined
      return {
        open: async () => {
          if (cur) last = cur.contents()
          cur = createMemoryStorage(last)
          return cur
        },
      }
    },
  ],
  [
    'level',
    () => {
      const dir = join(makeTempDir('raft-storage-'), 'db')
      return { open: () => openLevelStorage(dir) }
    },
  ],
]

describe.each(kinds)('%s storage', (_name, medium) => {
  it('starts empty', async () => {
    const m = medium()
    const s = await m.open()
    expect(await s.load()).toEqual({
      hardState: { term: 0, vote: '', commit: 0 },
      snapshot: null,
      entries: [],
    })
    await s.close()
  })

  it('a restart recovers exactly what was persisted: entries, truncation, hard state', async () => {
    const m = medium()
    let s = await m.open()
    await s.load()
    await s.write(batch({ entries: range(1, 10, 1), hardState: { term: 1, vote: 'a', commit: 5 } }))
    await s.write(batch({ entries: range(7, 8, 2), hardState: { term: 2, vote: 'b', commit: 6 } })) // truncates 9, 10
    await s.close()
    s = await m.open()
    const st = await s.load()
    expect(st.hardState).toEqual({ term: 2, vote: 'b', commit: 6 })
    expect(norm(st.entries)).toEqual(norm([...range(1, 6, 1), ...range(7, 8, 2)]))
    expect(st.snapshot).toBeNull()
    await s.close()
  })

  it('after compaction and after a snapshot install', async () => {
    const m = medium()
    let s = await m.open()
    await s.load()
    await s.write(batch({ entries: range(1, 20, 1), hardState: { term: 1, vote: '', commit: 20 } }))
    await s.write(batch({ compact: snap(12, 1) }))
    await s.close()
    s = await m.open()
    let st = await s.load()
    expect(norm(st.snapshot)).toEqual(norm(snap(12, 1)))
    expect(norm(st.entries)).toEqual(norm(range(13, 20, 1)))
    // A snapshot from the leader replaces the whole log (even entries after its index).
    await s.write(
      batch({
        snapshot: snap(15, 3, ['a', 'b', 'c']),
        entries: range(16, 17, 3),
        hardState: { term: 3, vote: '', commit: 15 },
      }),
    )
    await s.close()
    s = await m.open()
    st = await s.load()
    expect(norm(st.snapshot)).toEqual(norm(snap(15, 3, ['a', 'b', 'c'])))
    expect(norm(st.entries)).toEqual(norm(range(16, 17, 3)))
    expect(st.hardState).toEqual({ term: 3, vote: '', commit: 15 })
    await s.close()
  })

  it('random batches: load() always equals a model of the completed writes', async () => {
    const seed = 42
    const rng = createSeededRng(seed)
    const m = medium()
    let s = await m.open()
    await s.load()
    let model: Entry[] = []
    let modelSnap: Snapshot | null = null
    let term = 1
    for (let step = 0; step < 40; step++) {
      const last = model.length ? model[model.length - 1]!.index : (modelSnap?.metadata.index ?? 0)
      const base = modelSnap?.metadata.index ?? 0
      const r = rng.nextInt(10)
      if (r < 6 || last === base) {
        const from = base + 1 + rng.nextInt(last - base + 1)
        if (rng.nextInt(3) === 0) term++
        const es = range(from, from + rng.nextInt(5), term)
        await s.write(batch({ entries: es }))
        model = model.filter((e) => e.index < from).concat(es)
      } else if (r < 8) {
        const at = base + 1 + rng.nextInt(last - base)
        const t = model.find((e) => e.index === at)!.term
        modelSnap = snap(at, t)
        await s.write(batch({ compact: modelSnap }))
        model = model.filter((e) => e.index > at)
      } else {
        await s.close()
        s = await m.open()
      }
      const st = await s.load()
      expect(norm(st.entries), `seed ${seed} step ${step}`).toEqual(norm(model))
      expect(norm(st.snapshot), `seed ${seed} step ${step}`).toEqual(norm(modelSnap))
      // Loaded again with only a tail (a start): the newest entries, and every older one's term.
      const lazy = await s.load({ tailBytes: rng.nextInt(100) })
      if (lazy.logStored !== undefined) {
        const lastNow = model.length ? model[model.length - 1]!.index : (modelSnap?.metadata.index ?? 0)
        expect(lazy.logStored.last, `seed ${seed} step ${step}`).toBe(lastNow)
        expect(norm(lazy.entries), `seed ${seed} step ${step}`).toEqual(
          norm(model.slice(model.length - lazy.entries.length)),
        )
        if (model.length > 0) expect(lazy.entries.length, `seed ${seed} step ${step}`).toBeGreaterThan(0)
        const termOf = (i: number): number => {
          let t = -1
          for (const r of lazy.logStored!.runs) if (r.first <= i) t = r.term
          return t
        }
        for (const e of model)
          expect(termOf(e.index), `seed ${seed} step ${step} entry ${e.index}`).toBe(e.term)
      } else {
        expect(norm(lazy.entries), `seed ${seed} step ${step}`).toEqual(norm(model))
      }
      // Read back synchronously, whole or in pieces bounded by bytes.
      if (model.length > 0) {
        const lo = model[0]!.index
        const hi = model[model.length - 1]!.index + 1
        expect(norm(s.readEntries!(lo, hi, Infinity)), `seed ${seed} step ${step}`).toEqual(norm(model))
        const maxBytes = rng.nextInt(120)
        const part = s.readEntries!(lo, hi, maxBytes)
        expect(norm(part), `seed ${seed} step ${step}`).toEqual(norm(limitSize(model, maxBytes)))
      }
    }
    await s.close()
  })

  it('readEntries: entries a compaction dropped stay readable until the next write; then reads after a restart', async () => {
    const m = medium()
    let s = await m.open()
    await s.load()
    for (let i = 0; i < 5; i++) await s.write(batch({ entries: range(1 + i * 4, 4 + i * 4, 1) }))
    expect(norm(s.readEntries!(3, 11, Infinity))).toEqual(norm(range(3, 10, 1)))
    await s.write(batch({ compact: snap(9, 1) }))
    // The driver still sees the old log until this write's promise resolved: it may read 2..9 meanwhile.
    expect(norm(s.readEntries!(2, 12, Infinity))).toEqual(norm(range(2, 11, 1)))
    await s.write(batch({ entries: range(21, 22, 2) }))
    expect(norm(s.readEntries!(10, 23, Infinity))).toEqual(norm([...range(10, 20, 1), ...range(21, 22, 2)]))
    await s.close()
    s = await m.open()
    const st = await s.load()
    expect(norm(st.entries)).toEqual(norm([...range(10, 20, 1), ...range(21, 22, 2)]))
    expect(norm(s.readEntries!(10, 14, 61))).toEqual(norm(range(10, 11, 1))) // 30 + 31 bytes
    await s.close()
  })

  it('openSnapshot reads the latest snapshot in pieces; another (index, term) is refused', async () => {
    const m = medium()
    let s = await m.open()
    await s.load()
    expect(await s.openSnapshot!(5, 1)).toBeNull()
    await s.write(batch({ entries: range(1, 20, 1) }))
    const big: Snapshot = { ...snap(12, 1), data: Uint8Array.from({ length: 10_000 }, (_, i) => i % 251) }
    await s.write(batch({ compact: big }))
    expect(await s.openSnapshot!(12, 2)).toBeNull()
    expect(await s.openSnapshot!(11, 1)).toBeNull()
    const readAll = async (st: RaftPersistence, index: number, term: number): Promise<number[]> => {
      const r = (await st.openSnapshot!(index, term))!
      const parts: number[] = []
      for (let off = 0; off < r.size; off += 3000) parts.push(...(await r.read(off, 3000)))
      await r.close()
      return parts
    }
    expect(await readAll(s, 12, 1)).toEqual(Array.from(big.data))
    // A reader opened before a newer snapshot replaced this one still reads it whole.
    const early = (await s.openSnapshot!(12, 1))!
    await s.write(batch({ compact: snap(15, 1) }))
    expect(Array.from(await early.read(0, 10_000))).toEqual(Array.from(big.data))
    await early.close()
    expect(await s.openSnapshot!(12, 1)).toBeNull()
    await s.close()
    s = await m.open()
    await s.load()
    expect(await readAll(s, 15, 1)).toEqual(Array.from(snap(15, 1).data))
    await s.close()
  })
})

describe('level storage: snapshot files', () => {
  it('keeps snapshot data in <dir>.snap/, one file for the latest snapshot; staged files count only once recorded', async () => {
    const dir = join(makeTempDir('raft-storage-'), 'db')
    const files = (): string[] => readdirSync(`${dir}.snap`).sort()
    let s = await openLevelStorage(dir)
    await s.load()
    await s.write(batch({ entries: range(1, 30, 1), hardState: { term: 1, vote: '', commit: 30 } }))
    await s.write(batch({ compact: snap(10, 1) }))
    expect(files()).toEqual(['0000000000000010-1.snap'])
    // Staged ahead (off the driver's loop): the file exists but is not the state until a write names it.
    await s.stageSnapshot!(snap(20, 1))
    expect(files()).toEqual(['0000000000000010-1.snap', '0000000000000020-1.snap'])
    await s.close()
    s = await openLevelStorage(dir)
    let st = await s.load()
    expect(norm(st.snapshot)).toEqual(norm(snap(10, 1)))
    expect(files()).toEqual(['0000000000000010-1.snap']) // the unrecorded staged file is gone
    await s.stageSnapshot!(snap(20, 1))
    await s.write(batch({ compact: snap(20, 1) }))
    expect(files()).toEqual(['0000000000000020-1.snap'])
    await s.close()
    s = await openLevelStorage(dir)
    st = await s.load()
    expect(norm(st.snapshot)).toEqual(norm(snap(20, 1)))
    expect(norm(st.entries)).toEqual(norm(range(21, 30, 1)))
    await s.close()
  })
})
