import { SortedKeys } from './sorted-map.js'
import type { ValueStore, ValueStoreView } from './value-store.js'

/** Encodes a table's values (protobuf, deterministic): snapshots, and the rows kept on disk. */
export interface Codec<V> {
  encode(value: V): Uint8Array
  decode(bytes: Uint8Array): V
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
  /** Sets a row from its encoding (a restore): rows kept encoded skip decoding and encoding it again. */
  setEncoded?(key: string, bytes: Uint8Array): void
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

/** Rows of one write batch: bounds a restore's batches (LevelDB's memtable takes them whole). */
const WRITE_BATCH_ROWS = 10_000
/** What a cached row costs beyond its encoded bytes (the decoded object's fields, the LRU's entry). */
const CACHED_ROW_OVERHEAD_BYTES = 200

interface Pending {
  readonly bytes: Uint8Array | undefined
}

/**
 * The values of the metadata tables kept on disk (`MetaStore.table(..., { onDisk: true })`), shared by
 * those tables: their keys stay in memory (apply needs ordered, synchronous range scans, and LevelDB's
 * iterators are asynchronous), their encoded values go to a {@link ValueStore}.
 *
 * Apply is synchronous and must read its own writes at once, while a LevelDB write completes later: a
 * write goes into `pending` (encoded) and stays there until the batch that carries it has completed;
 * a read looks in the cache of decoded rows, then in `pending`, then in the store (LevelDB's getSync).
 * `flush()`, called at the end of every applied batch of entries, writes what is pending as one batch
 * (chained: one write at a time, in order). A capture for a snapshot takes a copy of `pending` and a
 * LevelDB snapshot at the same instant, so it sees exactly the state at the capture.
 *
 * The cache holds decoded rows read back (hot inodes: the path to a file is read on every operation)
 * up to `cacheBytes`, least recently used first out. Rows written by apply are not cached as written:
 * their byte arrays can be views into a whole Raft batch's buffer, which a cached row would keep alive.
 */
export class DiskValues {
  private readonly pending = new Map<string, Pending>()
  private readonly cache = new Map<string, { value: unknown; cost: number }>()
  private cacheBytesNow = 0
  private readonly clears: string[] = []
  private flushing: Promise<void> | undefined
  private again = false
  /** A write has completed: the store is open and holds rows (before, every row is pending). */
  private wrote = false
  private readonly counters = { cacheHits: 0, pendingHits: 0, diskReads: 0, writes: 0, writeErrors: 0 }

  constructor(
    private readonly store: ValueStore,
    private readonly cacheBytes: number,
    private readonly onWriteError: (err: Error) => void = () => {},
  ) {}

  /** The rows of table `name`, values on disk. */
  rows<V>(name: string, codec: Codec<V>): Rows<V> {
    if (name.includes('/')) throw new Error(`meta: a disk table's name has no '/': ${name}`)
    return new DiskRows<V>(this, name, codec)
  }

  stats(): DiskValuesStats {
    return {
      ...this.counters,
      pendingRows: this.pending.size,
      cachedRows: this.cache.size,
      cachedBytes: this.cacheBytesNow,
    }
  }

  /** Starts writing what is pending (unless a write runs: it goes on with it when done). */
  flush(): void {
    if (this.pending.size === 0 && this.clears.length === 0) return
    if (this.flushing !== undefined) {
      this.again = true
      return
    }
    this.flushing = this.writePending().finally(() => (this.flushing = undefined))
  }

  /** Resolves when everything pending at the call has been written (or its write failed). */
  async settled(): Promise<void> {
    this.flush()
    while (this.flushing !== undefined) await this.flushing
  }

  // ---- used by DiskRows ----

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
      bytes = this.store.read(key)
    }
    if (bytes === undefined) return undefined
    const value = codec.decode(bytes)
    this.remember(key, value, bytes.length)
    return value
  }

  write(key: string, bytes: Uint8Array | undefined): void {
    this.pending.set(key, { bytes })
    this.forget(key)
  }

  /** Drops every row under `prefix` (a table cleared by a restore): now for reads, in the store later. */
  dropPrefix(prefix: string): void {
    for (const key of [...this.pending.keys()]) if (key.startsWith(prefix)) this.pending.delete(key)
    for (const key of [...this.cache.keys()]) if (key.startsWith(prefix)) this.forget(key)
    this.clears.push(prefix)
  }

  /** A read view of every row as it is now: pending rows copied, the rest from a store snapshot. */
  view(): ValueStoreView {
    const pending = new Map(this.pending)
    // Before any write has completed every row is pending (and LevelDB may still be opening).
    const store = this.wrote ? this.store.view() : undefined
    return {
      read: (key) => {
        const p = pending.get(key)
        return p !== undefined ? p.bytes : store?.read(key)
      },
      close: async () => await store?.close(),
    }
  }

  // ---- internals ----

  private async writePending(): Promise<void> {
    do {
      this.again = false
      try {
        for (const prefix of this.clears.splice(0)) await this.store.clearPrefix(prefix)
        const batch = [...this.pending]
        for (let i = 0; i < batch.length; i += WRITE_BATCH_ROWS) {
          const slice = batch.slice(i, i + WRITE_BATCH_ROWS)
          await this.store.write(slice.map(([key, p]) => ({ key, ...(p.bytes ? { value: p.bytes } : {}) })))
          this.counters.writes++
          this.wrote = true
          // A row written again since is still pending: only the entries this batch carried go.
          for (const [key, p] of slice) if (this.pending.get(key) === p) this.pending.delete(key)
        }
      } catch (err) {
        // Kept pending (reads are served from there) and written by the next flush.
        this.counters.writeErrors++
        this.onWriteError(err as Error)
        return
      }
    } while (this.again || this.clears.length > 0)
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

/**
 * One disk-kept table: its keys in memory (ordered), its values through {@link DiskValues} under the
 * prefix `<table>/<generation>/`. A clear (restore) starts a new generation, so the old rows vanish at
 * once for reads and are deleted from the store in the background.
 */
class DiskRows<V> implements Rows<V> {
  private readonly keys = new SortedKeys()
  private generation = 0
  private prefix: string

  constructor(
    private readonly values: DiskValues,
    private readonly name: string,
    private readonly codec: Codec<V>,
  ) {
    this.prefix = `${name}/0/`
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
  }

  setEncoded(key: string, bytes: Uint8Array): void {
    this.keys.add(key)
    this.values.write(this.prefix + key, bytes)
  }

  delete(key: string): boolean {
    if (!this.keys.remove(key)) return false
    this.values.write(this.prefix + key, undefined)
    return true
  }

  clear(): void {
    this.keys.clear()
    this.values.dropPrefix(this.prefix)
    this.prefix = `${this.name}/${++this.generation}/`
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
