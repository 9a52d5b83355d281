import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, describe, expect, it } from 'vitest'
import {
  openLevelValueStore,
  type ValueStore,
  CommandRejected,
  createMetaStateMachine,
  encodeCommand,
  protoCodec,
  metaProto,
  type MetaModuleFactory,
  type MetaResult,
  type MetaStateMachine,
} from '../../src/meta/index.js'
import { namespaceModule } from '../../src/fs/index.js'

type Cmd = Parameters<typeof encodeCommand>[0]

function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A random stream of namespace commands over a small universe of paths and users: many fail. */
function randomCommands(seed: number, n: number): Cmd[] {
  const rand = rng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
  const paths = ['/a', '/a/b', '/a/b/c', '/a/f', '/b', '/b/f', '/b/g', '/c', '/a/b/c/f', '/bad/../x']
  const users = [
    { user: 'hopsd', groups: [] },
    { user: 'alice', groups: ['staff'] },
    { user: 'bob', groups: ['staff'] },
  ]
  const out: Cmd[] = []
  let now = 1_000_000
  for (let i = 0; i < n; i++) {
    now += Math.floor(rand() * 40_000)
    const who = pick(users)
    const base = { nowMs: now, ...who, clientName: pick(['', 'c1', 'c2']) }
    const path = pick(paths)
    const data = new Uint8Array(Math.floor(rand() * 50)).fill(i & 0xff)
    const ops: Cmd[] = [
      { ...base, mkdirs: { path, permission: pick([0o755, 0o777, 0o700]) } },
      {
        ...base,
        createFile: {
          path,
          data,
          overwrite: rand() < 0.5,
          permission: 0o644,
          close: rand() < 0.7,
          createParent: rand() < 0.5,
        },
      },
      { ...base, append: { path, data, close: rand() < 0.5 } },
      { ...base, closeFile: { path } },
      { ...base, rename: { src: path, dst: pick(paths), legacy: rand() < 0.5, overwrite: rand() < 0.5 } },
      { ...base, delete: { path, recursive: rand() < 0.5 } },
      { ...base, setPermission: { path, permission: pick([0o755, 0o777, 0o700, 0o1777]) } },
      { ...base, setOwner: { path, owner: pick(['', 'alice', 'bob']), group: pick(['', 'staff']) } },
      { ...base, setTimes: { path, mtime: pick([-1, now]), atime: pick([-1, 5]) } },
      { ...base, setReplication: { path, replication: pick([1, 2, 3, 0]) } },
      {
        ...base,
        setXAttr: {
          path,
          name: pick(['user.a', 'user.b', 'trusted.t']),
          value: data,
          flags: pick([0, 1, 2]),
        },
      },
      { ...base, removeXAttr: { path, name: pick(['user.a', 'user.b']) } },
      { ...base, renewLease: {} },
      { ...base, recoverLease: { path } },
      { ...base, setSetting: { name: 'inlineThreshold', value: pick(['100', '65536']) } },
    ]
    out.push(pick(ops))
  }
  return out
}

const newSm = (): MetaStateMachine => createMetaStateMachine({ modules: [namespaceModule()] })

type Backend = 'memory' | 'disk'
const made: { sm: MetaStateMachine; store: ValueStore; dir: string }[] = []
afterAll(async () => {
  for (const { sm, store, dir } of made.splice(0)) {
    await sm.valuesSettled()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

/**
 * A state machine whose inodes are kept in memory, or on disk (a real LevelDB in a temp dir) behind
 * a cache of 4 KiB, so that nearly every read of a row not pending goes to LevelDB.
 */
function newSmOf(backend: Backend): MetaStateMachine {
  if (backend === 'memory') return newSm()
  const dir = mkdtempSync(join(tmpdir(), 'hopsd-meta-values-'))
  const store = openLevelValueStore(dir)
  const sm = createMetaStateMachine({ modules: [namespaceModule()], values: { store, cacheBytes: 4096 } })
  made.push({ sm, store, dir })
  return sm
}

/** Lets the disk rows reach LevelDB (later reads come from there, not from what is pending). */
const settle = (sm: MetaStateMachine): Promise<void> => sm.valuesSettled()

function applyAll(sm: MetaStateMachine, cmds: Cmd[], firstIndex: number): MetaResult[] {
  return sm.apply(cmds.map((c, i) => ({ index: firstIndex + i, term: 1, data: encodeCommand(c) })))
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const tablesOf = (snap: Uint8Array): string =>
  JSON.stringify(
    metaProto.meta.Snapshot.decode(snap).tables.map((t) => [t.name, t.keys, (t.values ?? []).map(hex)]),
  )

describe.each(['memory', 'disk'] as const)('MetaStateMachine, rows in %s', (backend) => {
  const newSm = (): MetaStateMachine => newSmOf(backend)

  it('is deterministic: the same command stream gives identical snapshots and results', async () => {
    const seed = 4242
    const cmds = randomCommands(seed, 600)
    const a = newSm()
    const b = newSm()
    const ra = applyAll(a, cmds.slice(0, 300), 1)
    const rb = applyAll(b, cmds.slice(0, 300), 1)
    await settle(b) // b reads its rows back from LevelDB from here on, a from what is pending
    ra.push(...applyAll(a, cmds.slice(300), 301))
    rb.push(...applyAll(b, cmds.slice(300), 301))
    expect(rb, `seed ${seed}`).toEqual(ra)
    expect(hex(b.snapshot()), `seed ${seed}`).toBe(hex(a.snapshot()))
    expect(ra.filter((r) => r.ok).length).toBeGreaterThan(100) // the stream does real work ...
    expect(ra.filter((r) => !r.ok).length).toBeGreaterThan(100) // ... and meets many refusals
  })

  it('snapshotLater: the capture is the state at the call, whatever is applied while it encodes', async () => {
    const seed = 99
    const cmds = randomCommands(seed, 600)
    const sm = newSm()
    applyAll(sm, cmds.slice(0, 200), 1)
    await settle(sm)
    applyAll(sm, cmds.slice(200, 300), 201) // some rows in LevelDB, some pending at the capture
    const expected = sm.snapshot()
    const encode = sm.snapshotLater()
    applyAll(sm, cmds.slice(300), 301) // renames, deletes, new files after the capture
    await settle(sm) // ... and written to LevelDB before the capture is read
    expect(hex(sm.snapshot()), `seed ${seed}`).not.toBe(hex(expected))
    expect(hex(await encode()), `seed ${seed}`).toBe(hex(expected))
  })

  it('a refused command leaves the state byte-identical', async () => {
    const seed = 777
    const cmds = randomCommands(seed, 400)
    const sm = newSm()
    for (let i = 0; i < cmds.length; i++) {
      if (i % 50 === 0) await settle(sm)
      const before = sm.snapshot()
      const [r] = applyAll(sm, [cmds[i]!], i + 1)
      if (!r!.ok) {
        // Only the applied index moves on a no-op; compare with it patched back.
        const after = newSm()
        after.restore(sm.snapshot())
        const reference = newSm()
        reference.restore(before)
        reference.apply([{ index: i + 1, term: 1, data: new Uint8Array(0) }]) // a malformed entry: a pure no-op
        expect(hex(after.snapshot()), `seed ${seed} command ${i}: ${JSON.stringify(r)}`).toBe(
          hex(reference.snapshot()),
        )
      }
    }
  })

  it('snapshot/restore round trip: a restored replica continues exactly like the original', async () => {
    const seed = 99
    const cmds = randomCommands(seed, 500)
    const original = newSm()
    applyAll(original, cmds.slice(0, 250), 1)
    await settle(original)
    const restored = newSm()
    restored.restore(original.snapshot())
    await settle(restored)
    expect(hex(restored.snapshot())).toBe(hex(original.snapshot()))
    expect(restored.appliedIndex).toBe(250)
    const r1 = applyAll(original, cmds.slice(250), 251)
    const r2 = applyAll(restored, cmds.slice(250), 251)
    expect(r2, `seed ${seed}`).toEqual(r1)
    expect(hex(restored.snapshot()), `seed ${seed}`).toBe(hex(original.snapshot()))
    expect(restored.changesSince(0)).toEqual(original.changesSince(0))
    // restore replaces everything: a replica with other state becomes identical too
    const other = newSm()
    applyAll(other, randomCommands(1, 50), 1)
    await settle(other)
    other.restore(original.snapshot())
    expect(hex(other.snapshot())).toBe(hex(original.snapshot()))
    await settle(other) // the old rows deleted from LevelDB, the new ones written
    expect(hex(other.snapshot())).toBe(hex(original.snapshot()))
  })
  it('streams: tables in chunks, pieces of any size restore the same state, version 1 still restores', async () => {
    const sm = newSm()
    const files: Cmd[] = Array.from({ length: 2600 }, (_, i) => ({
      nowMs: 1_000 + i,
      user: 'hopsd',
      groups: [],
      createFile: {
        path: `/d${i % 3}/f${i}`,
        data: new Uint8Array(i % 7 === 0 ? 2000 : 10).fill(i & 0xff),
        close: true,
        createParent: true,
      },
    }))
    applyAll(sm, files, 1)
    await settle(sm)
    const whole = sm.snapshot()
    const decoded = metaProto.meta.Snapshot.decode(whole)
    expect(decoded.version).toBe(2)
    expect(decoded.tables.filter((t) => t.name === 'fs.inode').length).toBeGreaterThanOrEqual(3)
    const later: Uint8Array[] = []
    for await (const p of sm.snapshotPieces()()) later.push(p)
    expect(hex(Buffer.concat(later))).toBe(hex(whole))
    // Pieces cut anywhere (inside varints and rows): a reader of the wire format, not of our chunks.
    const rand = rng(5)
    async function* cut(): AsyncIterable<Uint8Array> {
      for (let off = 0; off < whole.length;) {
        const n = 1 + Math.floor(rand() * (rand() < 0.5 ? 7 : 70_000))
        yield whole.subarray(off, off + n)
        off += n
      }
    }
    const streamed = newSm()
    await streamed.restorePieces(cut())
    expect(hex(streamed.snapshot())).toBe(hex(whole))
    // What the version before wrote (one entry per table) restores to the same rows.
    const merged = new Map<string, { keys: string[]; values: Uint8Array[] }>()
    for (const t of decoded.tables) {
      const m = merged.get(t.name ?? '') ?? { keys: [], values: [] }
      m.keys.push(...(t.keys ?? []))
      m.values.push(...(t.values ?? []))
      merged.set(t.name ?? '', m)
    }
    const v1 = metaProto.meta.Snapshot.encode({
      version: 1,
      appliedIndex: decoded.appliedIndex,
      tables: [...merged].map(([name, m]) => ({ name, ...m })),
    }).finish()
    const old = newSm()
    old.restore(v1)
    expect(hex(old.snapshot())).toBe(hex(whole))
  })
})

describe('MetaStateMachine', () => {
  it('malformed entries and unknown operations are no-ops with a reason', () => {
    const sm = newSm()
    const [bad, empty] = sm.apply([
      { index: 1, term: 1, data: Uint8Array.of(0xff, 0xff, 0xff) },
      { index: 2, term: 1, data: encodeCommand({ nowMs: 1, user: 'x' }) },
    ])
    expect(bad).toMatchObject({ ok: false, code: 'MALFORMED_COMMAND' })
    expect(empty).toMatchObject({ ok: false, code: 'UNKNOWN_OPERATION' })
    expect(sm.appliedIndex).toBe(2)
    const noFs = createMetaStateMachine({ modules: [] })
    expect(
      noFs.apply([
        { index: 1, term: 1, data: encodeCommand({ nowMs: 1, user: 'x', mkdirs: { path: '/a' } }) },
      ])[0],
    ).toMatchObject({
      ok: false,
      code: 'UNKNOWN_OPERATION',
    })
    expect(() => sm.apply([{ index: 2, term: 1, data: new Uint8Array(0) }])).toThrow(/applied after/)
  })

  it('a restored replica keeps no view into the snapshot it was restored from', async () => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    // A table kept in memory whose rows are byte arrays as decoded (as protobuf decodes a bytes field:
    // a view into the buffer it decodes from).
    const blobs: MetaModuleFactory = (store) => {
      const t = store.table<Uint8Array>('blobs', { encode: (v) => v, decode: (b) => b })
      return {
        name: 'blobs',
        ops: ['renewLease'],
        apply(ctx) {
          t.put(`k${ctx.index}`, new Uint8Array(16).fill(ctx.index))
        },
      }
    }
    const modules = [blobs]
    const sm = createMetaStateMachine({ modules })
    applyAll(
      sm,
      Array.from({ length: 50 }, (): Cmd => ({ nowMs: 1, user: 'u', renewLease: {} })),
      1,
    )
    let data: Uint8Array | undefined = sm.snapshot()
    const ref = new WeakRef(data.buffer) // the memory (views keep it, not the view object)
    const restored = createMetaStateMachine({ modules })
    restored.restore(data)
    data = undefined
    expect(hex(restored.snapshot())).toBe(hex(sm.snapshot()))
    for (let i = 0; i < 50 && ref.deref() !== undefined; i++) {
      await new Promise<void>((resolve) => setImmediate(resolve))
      gc()
    }
    expect(ref.deref(), 'the snapshot buffer is still referenced').toBeUndefined()
  })

  it('rolls back writes made before a refusal, and halts on a bug', () => {
    let mode: 'refuse' | 'bug' = 'refuse'
    const probe: MetaModuleFactory = (store) => {
      const t = store.table<{ value: number }>('probe', protoCodec(metaProto.meta.Counter))
      return {
        name: 'probe',
        ops: ['renewLease'],
        apply(ctx) {
          t.put('k', { value: ctx.index })
          ctx.emit({ op: 'probe', path: '/', inodeId: 0 })
          if (mode === 'bug') throw new Error('a bug')
          throw new CommandRejected('INVALID_ARGUMENT', 'refused after writing')
        },
      }
    }
    const sm = createMetaStateMachine({ modules: [probe] })
    const before = sm.snapshot()
    const [r] = sm.apply([
      { index: 1, term: 1, data: encodeCommand({ nowMs: 1, user: 'u', renewLease: {} }) },
    ])
    expect(r).toEqual({ ok: false, code: 'INVALID_ARGUMENT', message: 'refused after writing' })
    expect(sm.changesSince(0).events).toEqual([])
    expect(tablesOf(sm.snapshot())).toEqual(tablesOf(before)) // same tables; only appliedIndex moved
    mode = 'bug'
    expect(() =>
      sm.apply([{ index: 2, term: 1, data: encodeCommand({ nowMs: 1, user: 'u', renewLease: {} }) }]),
    ).toThrow('a bug')
  })

  it('settings: defaults, superuser-only changes, validated values', () => {
    const sm = newSm()
    expect(sm.settings()).toMatchObject({
      inlineThreshold: 65536,
      superuser: 'hopsd',
      supergroup: 'supergroup',
    })
    const [denied, ok, bad] = applyAll(
      sm,
      [
        { nowMs: 1, user: 'alice', setSetting: { name: 'inlineThreshold', value: '1' } },
        { nowMs: 1, user: 'hopsd', setSetting: { name: 'inlineThreshold', value: '1024' } },
        { nowMs: 1, user: 'hopsd', setSetting: { name: 'inlineThreshold', value: '1e3' } },
      ],
      1,
    )
    expect(denied).toMatchObject({ ok: false, code: 'SUPERUSER_REQUIRED' })
    expect(ok).toEqual({ ok: true, value: { name: 'inlineThreshold', value: '1024' } })
    expect(bad).toMatchObject({ ok: false, code: 'INVALID_SETTING' })
    expect(sm.settings().inlineThreshold).toBe(1024)
  })

  it('bounds change-log waiters', async () => {
    const sm = createMetaStateMachine({ modules: [namespaceModule()], changeWaitersMax: 1 })
    const ac = new AbortController()
    const first = sm.waitForChanges(0, ac.signal)
    await expect(sm.waitForChanges(0)).rejects.toMatchObject({ code: 'WAITERS_EXHAUSTED' })
    ac.abort()
    await first
  })
})

describe('MetaStateMachine, inodes on disk', () => {
  const SU = { user: 'hopsd', groups: [] as string[] }
  const create = (path: string, data: Uint8Array, nowMs = 1_000): Cmd => ({
    nowMs,
    ...SU,
    createFile: { path, data, permission: 0o644, close: true, createParent: true },
  })

  it('keeps inline bytes on disk: reads come back from LevelDB, the cache stays within its bound', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hopsd-meta-values-'))
    const store = openLevelValueStore(dir)
    const cacheBytes = 64 * 1024
    const sm = createMetaStateMachine({ modules: [namespaceModule()], values: { store, cacheBytes } })
    made.push({ sm, store, dir })
    const files = Array.from({ length: 200 }, (_, i) => ({
      path: `/d${i % 4}/f${i}`,
      data: new Uint8Array(3000).fill(i & 0xff),
    }))
    const results = applyAll(
      sm,
      files.map((f) => create(f.path, f.data)),
      1,
    )
    expect(results.every((r) => r.ok)).toBe(true)
    await settle(sm)
    expect(sm.diskValueStats()!.pendingRows).toBe(0)
    const ns = sm.module<import('../../src/fs/index.js').Namespace>('fs')
    for (const f of files) expect(hex(ns.read(SU, f.path))).toBe(hex(f.data))
    const stats = sm.diskValueStats()!
    // 600 KB of files through a 64 KiB cache: most reads went to LevelDB, and the cache kept its bound.
    expect(stats.diskReads).toBeGreaterThan(150)
    expect(stats.cachedBytes).toBeLessThanOrEqual(cacheBytes)
    expect(stats.cachedRows).toBeGreaterThan(0)
  })

  it('a restore starts a new generation of rows and deletes the old one from LevelDB', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hopsd-meta-values-'))
    const store = openLevelValueStore(dir)
    const sm = createMetaStateMachine({ modules: [namespaceModule()], values: { store, cacheBytes: 4096 } })
    made.push({ sm, store, dir })
    applyAll(sm, [create('/old', new Uint8Array([1, 2, 3]))], 1)
    await settle(sm)
    const oldKeys = metaProto.meta.Snapshot.decode(sm.snapshot()).tables.find(
      (t) => t.name === 'fs.inode',
    )!.keys!
    expect(oldKeys.some((k) => store.read(`g0/fs.inode/${k}`) !== undefined)).toBe(true)
    const source = newSm()
    applyAll(source, [create('/new', new Uint8Array([4, 5]))], 1)
    sm.restore(source.snapshot())
    expect(hex(sm.snapshot())).toBe(hex(source.snapshot()))
    await settle(sm)
    for (const k of oldKeys) expect(store.read(`g0/fs.inode/${k}`)).toBeUndefined()
    expect(hex(sm.module<import('../../src/fs/index.js').Namespace>('fs').read(SU, '/new'))).toBe('0405')
    expect(hex(sm.snapshot())).toBe(hex(source.snapshot()))
  })

  it('a failed write keeps the rows pending and readable, says so, and the next flush writes them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hopsd-meta-values-'))
    const real = openLevelValueStore(dir)
    let failNext = true
    const store: ValueStore = {
      ...real,
      write: (ops) => {
        if (!failNext) return real.write(ops)
        failNext = false
        return Promise.reject(new Error('disk full'))
      },
    }
    const errors: string[] = []
    const sm = createMetaStateMachine({
      modules: [namespaceModule()],
      values: { store, cacheBytes: 4096, onWriteError: (e) => errors.push(e.message) },
    })
    made.push({ sm, store: real, dir })
    const reference = newSm()
    const cmds = randomCommands(5, 200)
    applyAll(sm, cmds, 1)
    applyAll(reference, cmds, 1)
    await settle(sm)
    expect(errors).toEqual(['disk full'])
    expect(sm.diskValueStats()!.pendingRows).toBeGreaterThan(0)
    expect(hex(sm.snapshot())).toBe(hex(reference.snapshot()))
    await settle(sm) // the next flush writes what the failed one could not
    expect(sm.diskValueStats()!.pendingRows).toBe(0)
    expect(hex(sm.snapshot())).toBe(hex(reference.snapshot()))
  })
})

describe('MetaStateMachine, the store is the durable state', () => {
  const SU = { user: 'hopsd', groups: [] as string[] }
  const dirs: string[] = []
  afterAll(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })
  const open = (dir: string): { sm: MetaStateMachine; store: ValueStore } => {
    const store = openLevelValueStore(dir)
    const sm = createMetaStateMachine({ modules: [namespaceModule()], values: { store, cacheBytes: 4096 } })
    return { sm, store }
  }
  const newDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'hopsd-meta-durable-'))
    dirs.push(d)
    return d
  }

  it('reopens at the last persist: rows, hook indexes, sessions and index; nothing applied after it', async () => {
    const dir = newDir()
    const a = open(dir)
    expect(await a.sm.durable!.open()).toEqual({ appliedIndex: 0, sessions: [] })
    const cmds = randomCommands(11, 400)
    applyAll(a.sm, cmds.slice(0, 250), 1)
    a.sm.durable!.persist(252, [
      { clientId: 'c1', session: new Uint8Array([1, 2, 3]) },
      { clientId: 'c2', session: new Uint8Array([4]) },
    ])
    applyAll(a.sm, cmds.slice(250, 300), 253)
    a.sm.durable!.persist(302, [{ clientId: 'c2' }])
    const atPersist = a.sm.snapshot()
    // Applied but never persisted: must not be in the store (a crash here loses it; the log has it).
    applyAll(a.sm, cmds.slice(300), 303)
    await a.sm.durable!.sync()
    const atEnd = a.sm.snapshot()
    await a.store.close()

    const b = open(dir)
    const opened = await b.sm.durable!.open()
    expect(opened.appliedIndex).toBe(302)
    expect(opened.sessions.map(hex)).toEqual(['010203'])
    expect(hex(b.sm.snapshot())).toBe(hex(atPersist))
    // Going on from there gives what the replica that never stopped has (indexes rebuilt included).
    applyAll(b.sm, cmds.slice(300), 303)
    expect(hex(b.sm.snapshot())).toBe(hex(atEnd))
    await b.sm.valuesSettled()
    await b.store.close()
  })

  it('a restore is switched to by its persist; reopened, the store holds the restored state only', async () => {
    const dir = newDir()
    const a = open(dir)
    await a.sm.durable!.open()
    applyAll(a.sm, randomCommands(3, 200), 1)
    a.sm.durable!.persist(200, [{ clientId: 'old', session: new Uint8Array([9]) }])
    await a.sm.durable!.sync()
    const source = createMetaStateMachine({ modules: [namespaceModule()] })
    applyAll(source, randomCommands(4, 300), 1)
    a.sm.restore(source.snapshot())
    a.sm.durable!.persist(300, [{ clientId: 'new', session: new Uint8Array([7]) }])
    await a.sm.durable!.sync()
    await a.store.close()

    const b = open(dir)
    const opened = await b.sm.durable!.open()
    expect(opened.appliedIndex).toBe(300)
    expect(opened.sessions.map(hex)).toEqual(['07'])
    expect(hex(b.sm.snapshot())).toBe(hex(source.snapshot()))
    // The old generation is gone from LevelDB: every key is the new one's, or the meta row.
    const keys: string[] = []
    for await (const rows of b.store.scan({})) for (const [k] of rows) keys.push(k)
    expect(keys.filter((k) => !k.startsWith('g1/') && k !== 'meta')).toEqual([])
    expect(keys.length).toBeGreaterThan(1)
    await b.store.close()
  })

  it('a streamed restore writes its rows as it goes (bounded memory) and is switched to by its persist', async () => {
    const source = createMetaStateMachine({ modules: [namespaceModule()] })
    const files: Cmd[] = Array.from({ length: 15_000 }, (_, i) => ({
      nowMs: 1_000,
      ...SU,
      createFile: { path: `/s${i % 10}/f${i}`, data: new Uint8Array(8), close: true, createParent: true },
    }))
    applyAll(source, files, 1)
    const whole = source.snapshot()
    const dir = newDir()
    const a = open(dir)
    await a.sm.durable!.open()
    let pendingMax = 0
    async function* pieces(): AsyncIterable<Uint8Array> {
      for (let off = 0; off < whole.length; off += 64 << 10) {
        pendingMax = Math.max(pendingMax, a.sm.diskValueStats()!.pendingRows)
        yield whole.subarray(off, off + (64 << 10))
      }
    }
    await a.sm.restorePieces(pieces())
    // Written every 10,000 rows: never the whole snapshot's 15,000 in memory.
    expect(pendingMax).toBeLessThan(12_000)
    expect(pendingMax).toBeGreaterThan(0)
    expect(hex(a.sm.snapshot())).toBe(hex(whole))
    a.sm.durable!.persist(15_000, [])
    await a.sm.durable!.sync()
    await a.store.close()
    const b = open(dir)
    expect((await b.sm.durable!.open()).appliedIndex).toBe(15_000)
    expect(hex(b.sm.snapshot())).toBe(hex(whole))
    await b.store.close()
  })

  it('a restore interrupted before its persist leaves the store at the state before it', async () => {
    const dir = newDir()
    const a = open(dir)
    await a.sm.durable!.open()
    applyAll(
      a.sm,
      [{ nowMs: 1, ...SU, createFile: { path: '/kept', data: new Uint8Array([1]), close: true } }],
      1,
    )
    a.sm.durable!.persist(1, [])
    const before = a.sm.snapshot()
    const source = createMetaStateMachine({ modules: [namespaceModule()] })
    applyAll(source, randomCommands(5, 100), 1)
    a.sm.restore(source.snapshot())
    await a.sm.durable!.sync() // writes what was sealed: not the restore, which no persist covers yet
    await a.store.close()
    const b = open(dir)
    expect((await b.sm.durable!.open()).appliedIndex).toBe(1)
    expect(hex(b.sm.snapshot())).toBe(hex(before))
    await b.store.close()
  })

  it('a damaged store: found by the check after open or when the row is read (STORE_CORRUPT), never served', async () => {
    const dir = newDir()
    const a = open(dir)
    await a.sm.durable!.open()
    const data = new Uint8Array([1, 2, 3, 4])
    applyAll(a.sm, [{ nowMs: 1, ...SU, createFile: { path: '/f', data, close: true } }], 1)
    a.sm.durable!.persist(1, [])
    await a.sm.valuesSettled()
    expect(await a.sm.verifyStore()).toBeGreaterThan(2)
    // One bit flipped in the row holding /f's bytes (a rotten block LevelDB does not check): it would
    // still decode, with other bytes.
    let key = ''
    for await (const rows of a.store.scan({ gte: 'g0/fs.inode/', lt: 'g0/fs.inode0' }))
      for (const [k, v] of rows) if (Buffer.from(v).includes(Buffer.from(data))) key = k
    expect(key).not.toBe('')
    const rotten = Uint8Array.from(a.store.read(key)!)
    rotten[rotten.length - 2]! ^= 0x01
    await a.store.write([{ key, value: rotten }])
    await a.store.close()

    // A restart reads the slim rows only: it opens; the background check and any read of the row refuse.
    const b = open(dir)
    expect((await b.sm.durable!.open()).appliedIndex).toBe(1)
    await expect(b.sm.verifyStore()).rejects.toMatchObject({ code: 'STORE_CORRUPT' })
    const ns = b.sm.module<import('../../src/fs/index.js').Namespace>('fs')
    expect(() => ns.read(SU, '/f')).toThrow(/STORE_CORRUPT|fails its checksum/)
    // A damaged slim row (what a restart reads) stops the open itself.
    const slimKey = key.replace('g0/fs.inode/', 'g0/fs.inode~slim/')
    const slim = Uint8Array.from(b.store.read(slimKey)!)
    slim[slim.length - 1]! ^= 0x01
    await b.store.write([{ key: slimKey, value: slim }])
    await b.store.close()
    const c = open(dir)
    await expect(c.sm.durable!.open()).rejects.toMatchObject({ code: 'STORE_CORRUPT' })
    // And a damaged meta row.
    await c.store.write([{ key: 'meta', value: new TextEncoder().encode('{"generation":') }])
    await c.store.close()
    const d = open(dir)
    await expect(d.sm.durable!.open()).rejects.toMatchObject({ code: 'STORE_CORRUPT' })
    await d.store.close()
  })
})
