import { crc32 } from 'node:zlib'
import { MetaError } from './errors.js'
import { SortedKeys } from './sorted-map.js'
import type { ValueOp, ValueStore, ValueStoreView } from './value-store.js'

/** Encodes a table's values (protobuf, deterministic): snapshots, and the rows kept on disk. */
export interface Codec<V> {
  encode(value: V): Uint8Array
  decode(bytes: Uint8Array): V
  /**
   * Optional: a cheaper decode whose fields read the same but are not all own properties (a protobuf
   * message object): for the hooks of a table opened at start, which read a few fields and keep none
   * of the object. Never a value stored or handed to a module.
   */
  decodeLean?(bytes: Uint8Array): V
}

/** A consistent capture of a table's rows, read later (a snapshot encoded off the apply path). */
export interface CapturedRows {
  /** The rows as they were at the capture, encoded, in key order. */
  rows(): Iterable<[string, Uint8Array]>
  /** Frees what the capture holds (a LevelDB snapshot). */
  release(): Promise<void>
}

/** The ordered rows of one table, wherever their values live. */
export interface Rows<V> {
  readonly size: number
  get(key: string): V | undefined
  has(key: string): boolean
  set(key: string, value: V): void
  /**
   * Sets a row from its encoding (a restore): rows kept encoded skip decoding and encoding it again
   * (`value`: the decoded row when the caller has it).
   */
  setEncoded?(key: string, bytes: Uint8Array, value?: V): void
  /**
   * Takes a row the store holds already (opening it at start): nothing is written. Returns the decoded
   * value when asked to (`decode`) or when the rows keep it decoded anyway.
   */
  adopt?(key: string, bytes: Uint8Array, decode: boolean): V | undefined
  /** The store "table" a restart reads these rows from (`<table>~slim` for slim copies). */
  readonly openName?: string
  delete(key: string): boolean
  clear(): void
  range(start: string, end?: string, startExclusive?: boolean): IterableIterator<[string, V]>
  countRange(start: string, end?: string, startExclusive?: boolean): number
  firstKey(): string | undefined
  capture(): CapturedRows
}

/** Counters of the disk-kept tables' reads, for /metrics. */
export interface DiskValuesStats {
  cacheHits: number
  pendingHits: number
  diskReads: number
  writes: number
  writeErrors: number
  /** Rows written by apply and not yet in the store. */
  pendingRows: number
  cachedRows: number
  cachedBytes: number
}

/** Rows of one write of a new generation (a restore): LevelDB's memtable takes a batch whole. */
const WRITE_BATCH_ROWS = 10_000
/** Pace of the background check of every row after a start (DiskValues.verify). */
const VERIFY_BYTES_PER_S = 64 << 20
/** What a cached row costs beyond its encoded bytes (the decoded object's fields, the LRU's entry). */
const CACHED_ROW_OVERHEAD_BYTES = 200
/** The store's one key outside the generations: which generation is the state, and at what index. */
const META_KEY = 'meta'
/** The "table" of the consensus layer's client sessions, kept with the rows (DurableState). */
export const SESSIONS_TABLE = '~session'

/** What the store's meta row says. */
export interface StoreMeta {
  /** The generation of keys (`g<generation>/<table>/<key>`) that holds the state. */
  readonly generation: number
  /** The Raft index the state is at (what the driver persisted; no-ops and conf changes included). */
  readonly index: number
  /** The state machine's own applied index then (the last entry it applied; in its snapshots). */
  readonly smApplied: number
}

interface Pending {
  readonly bytes: Uint8Array | undefined
}

/** The writes of the entries up to one persisted index: written as one atomic batch with its meta. */
interface Sealed {
  readonly generation: number
  readonly rows: Map<string, Pending>
  readonly meta: Uint8Array
}

/**
 * The rows of a metadata replica in a {@link ValueStore}: the replica's durable state. Tables made with
 * `onDisk` keep only their keys in memory (apply needs ordered, synchronous range scans, and LevelDB's
 * iterators are asynchronous) and read their values from here; every other table keeps its rows in
 * memory and writes them through (so a restart opens the store instead of replaying the log).
 *
 * Keys are `g<generation>/<table>/<key>`, plus one `meta` row naming the current generation and the
 * applied index. A restore writes a new generation (in slices: nothing names it yet) and switches to
 * it with the meta row; the old one is deleted after.
 *
 * Apply is synchronous and must read its own writes at once, while a LevelDB write completes later: a
 * write goes into `pending` (encoded), where reads find it, until the write that carries it has
 * completed. Writes are grouped by `seal(meta)` (the driver's persist after each applied batch): what
 * was written since the last seal, with the meta row, is one atomic LevelDB batch. Nothing is written
 * before the seal that covers it, so the store never holds part of an entry, or an entry without its
 * index. One write at a time, in order.
 *
 * A read looks in the cache of decoded rows, then in `pending`, then in the store (LevelDB's getSync).
 * The cache holds decoded rows read back (hot inodes: the path to a file is read on every operation)
 * up to `cacheBytes`, least recently used first out. Rows written by apply are not cached as written:
 * their byte arrays can be views into a whole Raft batch's buffer, which a cached row would keep alive.
 */
export class DiskValues {
  private readonly pending = new Map<string, Pending>()
  private unsealed = new Map<string, Pending>()
  private readonly sealed: Sealed[] = []
  private readonly cache = new Map<string, { value: unknown; cost: number }>()
  private cacheBytesNow = 0
  private generation = 0
  /** The generation the store's meta row names (-1: none yet). */
  private committedGeneration = -1
  /** The meta row of the last write that completed (re-written by a sync when nothing else is). */
  private writtenMeta: Uint8Array | undefined
  /** The store has completed a write or was opened: reads and views may reach LevelDB. */
  private storeReady = false
  private flushing: Promise<void> | undefined
  private again = false
  private clearOld = false
  private syncWaiters: { resolve: () => void; reject: (e: Error) => void }[] = []
  private readonly counters = { cacheHits: 0, pendingHits: 0, diskReads: 0, writes: 0, writeErrors: 0 }

  constructor(
    private readonly store: ValueStore,
    private readonly cacheBytes: number,
    private readonly onWriteError: (err: Error) => void = () => {},
  ) {}

  /**
   * The rows of table `name`, values on disk. With `slim`, each row also keeps a slim copy (the value
   * without its bulk: an inode without its inline bytes) under `<name>~slim`, which is all a restart
   * reads of the table: its keys and its hooks' indexes come from there.
   */
  rows<V>(name: string, codec: Codec<V>, slim?: (value: V) => V): Rows<V> {
    checkTableName(name)
    return new DiskRows<V>(this, name, codec, slim)
  }

  /** Where the rows of table `name` are now: `g<generation>/<name>/`. */
  prefix(name: string): string {
    return `g${this.generation}/${name}/`
  }

  /** The store's current generation (a prefix computed for another is stale). */
  get currentGeneration(): number {
    return this.generation
  }

  stats(): DiskValuesStats {
    return {
      ...this.counters,
      pendingRows: this.pending.size,
      cachedRows: this.cache.size,
      cachedBytes: this.cacheBytesNow,
    }
  }

  /**
   * Opens the store as it is (the constructor's rows, an empty state's, are dropped when it holds a
   * state): its meta row, or undefined when it holds none (a new replica; leftovers are deleted).
   */
  async open(): Promise<StoreMeta | undefined> {
    await this.store.opened
    this.storeReady = true
    const stored = this.store.read(META_KEY)
    if (stored === undefined) {
      await this.store.clearRange({})
      return undefined
    }
    const raw = unframe(META_KEY, stored)
    const meta = decodeMeta(raw)
    this.pending.clear()
    this.unsealed = new Map()
    this.sealed.length = 0
    this.cache.clear()
    this.cacheBytesNow = 0
    this.generation = meta.generation
    this.committedGeneration = meta.generation
    this.writtenMeta = raw
    // A restore that did not finish its switch left rows of another generation.
    await this.clearOtherGenerations()
    return meta
  }

  /** The rows of one table (or `<table>~slim`) in the current generation, in key order, in batches. */
  async *scanTable(name: string): AsyncIterable<[string, Uint8Array][]> {
    const prefix = this.prefix(name)
    for await (const rows of this.store.scan(prefixRange(prefix)))
      yield rows.map(([full, bytes]) => [full.slice(prefix.length), unframe(full, bytes)])
  }

  /**
   * Reads every row of the current generation and checks its checksum (STORE_CORRUPT), a batch per
   * turn of the event loop: a restart reads only the slim rows, so the full rows are checked after the
   * node serves (a row read before that is checked when read). Stops early when a restore starts a new
   * generation or `signal` aborts. Resolves with the rows checked.
   */
  async verify(signal?: AbortSignal): Promise<number> {
    const generation = this.generation
    let n = 0
    let bytesRead = 0
    const t0 = performance.now()
    for await (const rows of this.store.scan(prefixRange(`g${generation}/`))) {
      if (signal?.aborted === true || this.generation !== generation) break
      for (const [full, bytes] of rows) {
        unframe(full, bytes)
        bytesRead += bytes.length
      }
      n += rows.length
      // Paced: a background task, and every value read is a copy in memory until V8 collects it (read
      // at full speed, a million inline files took the C allocator's heap up by a GiB it kept).
      const ahead = (bytesRead / VERIFY_BYTES_PER_S) * 1000 - (performance.now() - t0)
      await new Promise<void>((resolve) => (ahead > 1 ? setTimeout(resolve, ahead) : setImmediate(resolve)))
    }
    return n
  }

  /**
   * Ends the group of writes of one persisted index: they go to the store as one atomic batch with the
   * meta row (generation, index), after every group sealed before.
   */
  seal(index: number, smApplied: number): void {
    const meta = encodeMeta({ generation: this.generation, index, smApplied })
    this.sealed.push({ generation: this.generation, rows: this.unsealed, meta })
    this.unsealed = new Map()
    this.flush()
  }

  /**
   * Starts a new generation (a restore): the rows written from now on are invisible in the store until
   * a seal switches to it, and the old generation is deleted after that. Reads of the old one end now.
   */
  newGeneration(): void {
    this.pending.clear()
    this.unsealed = new Map()
    this.cache.clear()
    this.cacheBytesNow = 0
    this.generation++
  }

  /** Rows written since the last seal. */
  get unsealedRows(): number {
    return this.unsealed.size
  }

  /**
   * During a restore (a generation no meta row names yet): writes the rows written so far and drops
   * them from memory, so a restore of a state larger than memory holds only what it has not written.
   * They stay invisible in the store until the persist after the restore switches to their generation.
   */
  async spill(): Promise<void> {
    if (this.generation === this.committedGeneration) return
    await this.settled() // one write at a time: what was sealed before the restore goes first
    const rows = this.unsealed
    this.unsealed = new Map()
    await this.writeInSlices(opsOf(rows))
    this.storeReady = true
    this.forgetWritten(rows)
  }

  /** Starts writing what is sealed (unless a write runs: it goes on with it when done). */
  flush(): void {
    if (this.sealed.length === 0 && this.syncWaiters.length === 0 && !this.clearOld) return
    if (this.flushing !== undefined) {
      this.again = true
      return
    }
    this.flushing = this.writeSealed().finally(() => {
      this.flushing = undefined
      // Work that came while the last round was ending (its resolved syncs let callers run first).
      if (this.again) this.flush()
    })
  }

  /** Resolves when everything sealed at the call has been written (or its write failed). */
  async settled(): Promise<void> {
    this.flush()
    while (this.flushing !== undefined) await this.flushing
  }

  /** Resolves once everything sealed before the call is durable (a synced LevelDB write after it). */
  sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.syncWaiters.push({ resolve, reject })
      this.flush()
    })
  }

  // ---- used by DiskRows and the write-through tables ----

  read<V>(key: string, codec: Codec<V>): V | undefined {
    const cached = this.cache.get(key)
    if (cached !== undefined) {
      this.counters.cacheHits++
      this.cache.delete(key) // re-inserted: most recently used last
      this.cache.set(key, cached)
      return cached.value as V
    }
    let bytes: Uint8Array | undefined
    const p = this.pending.get(key)
    if (p !== undefined) {
      this.counters.pendingHits++
      bytes = p.bytes
    } else {
      this.counters.diskReads++
      const stored = this.storeReady ? this.store.read(key) : undefined
      bytes = stored === undefined ? undefined : unframe(key, stored)
    }
    if (bytes === undefined) return undefined
    const value = codec.decode(bytes)
    this.remember(key, value, bytes.length)
    return value
  }

  write(key: string, bytes: Uint8Array | undefined): void {
    const p = { bytes }
    this.pending.set(key, p)
    this.unsealed.set(key, p)
    this.forget(key)
  }

  /** A read view of every row as it is now: pending rows copied, the rest from a store snapshot. */
  view(): ValueStoreView {
    const pending = new Map(this.pending)
    // Before the store is open or written, every row is pending (and LevelDB may still be opening).
    const store = this.storeReady ? this.store.view() : undefined
    return {
      read: (key) => {
        const p = pending.get(key)
        if (p !== undefined) return p.bytes
        const stored = store?.read(key)
        return stored === undefined ? undefined : unframe(key, stored)
      },
      close: async () => await store?.close(),
    }
  }

  // ---- internals ----

  private async writeSealed(): Promise<void> {
    do {
      this.again = false
      const batches = this.sealed.splice(0)
      const waiters = this.syncWaiters.splice(0)
      let done = 0
      try {
        while (done < batches.length) {
          // Consecutive groups of one generation go as one write (the newest meta row wins).
          const generation = batches[done]!.generation
          const rows = new Map<string, Pending>()
          let meta = batches[done]!.meta
          let end = done
          for (; end < batches.length && batches[end]!.generation === generation; end++) {
            for (const [k, p] of batches[end]!.rows) rows.set(k, p)
            meta = batches[end]!.meta
          }
          const ops = opsOf(rows)
          const metaOp = { key: META_KEY, value: frame(META_KEY, meta) }
          if (generation !== this.committedGeneration) {
            // Invisible until the meta row names its generation: slices, the meta row in the last one.
            await this.writeInSlices(ops, metaOp)
            if (this.committedGeneration >= 0) this.clearOld = true
            this.committedGeneration = generation
          } else {
            await this.store.write([...ops, metaOp])
          }
          this.counters.writes++
          this.storeReady = true
          this.writtenMeta = meta
          this.forgetWritten(rows)
          done = end
        }
        if (this.clearOld) {
          this.clearOld = false
          await this.clearOtherGenerations()
        }
        if (waiters.length > 0 && this.writtenMeta !== undefined)
          await this.store.write([{ key: META_KEY, value: frame(META_KEY, this.writtenMeta) }], {
            sync: true,
          })
        for (const w of waiters) w.resolve()
      } catch (err) {
        // Kept (reads are served from `pending`) and written by the next flush, in order.
        this.sealed.unshift(...batches.slice(done))
        this.counters.writeErrors++
        this.again = false
        for (const w of [...waiters, ...this.syncWaiters.splice(0)]) w.reject(err as Error)
        this.onWriteError(err as Error)
        return
      }
    } while (this.again || this.sealed.length > 0 || this.syncWaiters.length > 0)
  }

  /** Deletes every key but the current generation's and the meta row. */
  private async clearOtherGenerations(): Promise<void> {
    const current = prefixRange(`g${this.committedGeneration}/`)
    await this.store.clearRange({ lt: current.gte })
    // The meta row sorts after every generation.
    await this.store.clearRange({ gte: current.lt, lt: META_KEY })
    await this.store.clearRange({ gte: `${META_KEY}\u0000` })
  }

  /** Writes ops in slices of WRITE_BATCH_ROWS (a new generation's rows), `last` in the last slice. */
  private async writeInSlices(ops: readonly ValueOp[], last?: ValueOp): Promise<void> {
    let i = 0
    for (; ops.length - i > WRITE_BATCH_ROWS; i += WRITE_BATCH_ROWS)
      await this.store.write(ops.slice(i, i + WRITE_BATCH_ROWS))
    const rest = last === undefined ? ops.slice(i) : [...ops.slice(i), last]
    if (rest.length > 0) await this.store.write(rest)
  }

  /** Rows a write carried leave `pending`, unless written again since (then still pending). */
  private forgetWritten(rows: ReadonlyMap<string, Pending>): void {
    for (const [key, p] of rows) if (this.pending.get(key) === p) this.pending.delete(key)
  }

  private remember(key: string, value: unknown, bytes: number): void {
    const cost = bytes + CACHED_ROW_OVERHEAD_BYTES
    if (cost > this.cacheBytes) return
    this.cache.set(key, { value, cost })
    this.cacheBytesNow += cost
    for (const [k, c] of this.cache) {
      if (this.cacheBytesNow <= this.cacheBytes) break
      this.cache.delete(k)
      this.cacheBytesNow -= c.cost
    }
  }

  private forget(key: string): void {
    const c = this.cache.get(key)
    if (c === undefined) return
    this.cache.delete(key)
    this.cacheBytesNow -= c.cost
  }
}

/** A table's name is one segment of a store key; `~` names are the consensus layer's. */
export function checkTableName(name: string): void {
  if (name.includes('/') || name.startsWith('~') || name.length === 0)
    throw new Error(`meta: a table's name has no '/' and does not start with '~': ${name}`)
}

/**
 * A row as stored: a CRC-32 over its key and value, then the value. LevelDB checks its blocks' own
 * checksums only when asked to (classic-level never does), so a damaged file would be served as it is;
 * every read from the store checks this one (STORE_CORRUPT), the key included so that a value found
 * under another key is caught too.
 */
function frame(key: string, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(value.length + 4)
  new DataView(out.buffer).setUint32(0, crc32(value, crc32(key)) >>> 0)
  out.set(value, 4)
  return out
}

function unframe(key: string, stored: Uint8Array): Uint8Array {
  const body = stored.subarray(4)
  if (
    stored.length < 4 ||
    new DataView(stored.buffer, stored.byteOffset, 4).getUint32(0) !== crc32(body, crc32(key)) >>> 0
  )
    throw new MetaError('STORE_CORRUPT', `the metadata store's row ${key} fails its checksum`)
  return body
}

/** The store ops writing `rows`, framed (a delete for a row without bytes). */
function opsOf(rows: ReadonlyMap<string, Pending>): ValueOp[] {
  return [...rows].map(([key, p]) => (p.bytes ? { key, value: frame(key, p.bytes) } : { key }))
}

/** Every key that starts with `prefix` (which ends with '/': '0' is the character after it). */
function prefixRange(prefix: string): { gte: string; lt: string } {
  return { gte: prefix, lt: `${prefix.slice(0, -1)}0` }
}

function encodeMeta(m: StoreMeta): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(m))
}

function decodeMeta(b: Uint8Array): StoreMeta {
  let m: Partial<StoreMeta>
  try {
    m = JSON.parse(new TextDecoder().decode(b)) as Partial<StoreMeta>
  } catch (err) {
    throw new MetaError(
      'STORE_CORRUPT',
      `the metadata store's meta row is unreadable: ${(err as Error).message}`,
    )
  }
  if (![m.generation, m.index, m.smApplied].every((n) => Number.isSafeInteger(n) && (n as number) >= 0))
    throw new MetaError(
      'STORE_CORRUPT',
      `the metadata store's meta row is invalid: ${new TextDecoder().decode(b)}`,
    )
  return m as StoreMeta
}

/**
 * One disk-kept table: its keys in memory (ordered), its values through {@link DiskValues} under the
 * prefix of the store's current generation (a restore starts a new one: the old rows vanish at once
 * for reads and are deleted from the store in the background).
 */
class DiskRows<V> implements Rows<V> {
  private readonly keys = new SortedKeys()
  private prefixGeneration = -1
  private prefixNow = ''
  private slimPrefixNow = ''

  constructor(
    private readonly values: DiskValues,
    private readonly name: string,
    private readonly codec: Codec<V>,
    private readonly slim?: (value: V) => V,
  ) {}

  /** The key prefixes of the rows and of their slim copies in the store's current generation. */
  private refresh(): void {
    if (this.prefixGeneration === this.values.currentGeneration) return
    this.prefixGeneration = this.values.currentGeneration
    this.prefixNow = this.values.prefix(this.name)
    this.slimPrefixNow = this.values.prefix(`${this.name}~slim`)
  }

  private get prefix(): string {
    this.refresh()
    return this.prefixNow
  }

  /** Writes the slim copy of a row (or deletes it). */
  private writeSlim(key: string, value: V | undefined): void {
    if (this.slim === undefined) return
    this.refresh()
    const bytes = value === undefined ? undefined : this.codec.encode(this.slim(value))
    this.values.write(this.slimPrefixNow + key, bytes)
  }

  get size(): number {
    return this.keys.size
  }

  get(key: string): V | undefined {
    if (!this.keys.has(key)) return undefined
    const v = this.values.read(this.prefix + key, this.codec)
    if (v === undefined) throw new Error(`meta: table ${this.name} lost the value of ${key}`)
    return v
  }

  has(key: string): boolean {
    return this.keys.has(key)
  }

  set(key: string, value: V): void {
    this.keys.add(key)
    this.values.write(this.prefix + key, this.codec.encode(value))
    this.writeSlim(key, value)
  }

  setEncoded(key: string, bytes: Uint8Array, value?: V): void {
    this.keys.add(key)
    this.values.write(this.prefix + key, bytes)
    if (this.slim !== undefined) this.writeSlim(key, value ?? this.codec.decode(bytes))
  }

  /** At open: the key, and the value decoded when asked to (the slim copy, for a table that has one). */
  adopt(key: string, bytes: Uint8Array, decode: boolean): V | undefined {
    this.keys.add(key)
    if (!decode) return undefined
    return this.codec.decodeLean !== undefined ? this.codec.decodeLean(bytes) : this.codec.decode(bytes)
  }

  /** What a restart reads of this table: `<name>~slim` when it keeps slim copies. */
  get openName(): string {
    return this.slim === undefined ? this.name : `${this.name}~slim`
  }

  delete(key: string): boolean {
    if (!this.keys.remove(key)) return false
    this.values.write(this.prefix + key, undefined)
    this.writeSlim(key, undefined)
    return true
  }

  /** The keys only: the rows in the store go with their generation (DiskValues.newGeneration). */
  clear(): void {
    this.keys.clear()
  }

  *range(start: string, end?: string, startExclusive = false): IterableIterator<[string, V]> {
    for (const key of this.keys.range(start, end, startExclusive)) yield [key, this.get(key)!]
  }

  countRange(start: string, end?: string, startExclusive = false): number {
    return this.keys.countRange(start, end, startExclusive)
  }

  firstKey(): string | undefined {
    return this.keys.firstKey()
  }

  capture(): CapturedRows {
    const keys = this.keys.toArray()
    const prefix = this.prefix
    const view = this.values.view()
    const name = this.name
    return {
      *rows() {
        for (const key of keys) {
          const bytes = view.read(prefix + key)
          if (bytes === undefined) throw new Error(`meta: table ${name} lost the value of ${key}`)
          yield [key, bytes]
        }
      },
      release: () => view.close(),
    }
  }
}
