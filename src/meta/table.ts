import type { CapturedRows, Codec, Rows } from './disk-values.js'
import { SortedMap } from './sorted-map.js'

export type { Codec } from './disk-values.js'

/**
 * Hooks that keep a derived index (e.g. inode id → key) in step with a table. Called for every
 * change, including rollbacks and restores, so the index can never drift from the table.
 */
export interface TableHooks<V> {
  onSet?(key: string, prev: V | undefined, next: V): void
  onDelete?(key: string, prev: V): void
  onClear?(): void
}

/**
 * Undo log of the command being applied: every table write records how to undo itself, so a command
 * that fails halfway is rolled back to the state before it — apply is all-or-nothing.
 */
export class Journal {
  private undo: Array<() => void> = []
  private active = false

  begin(): void {
    if (this.active) throw new Error('Journal: nested begin')
    this.active = true
    this.undo = []
  }

  commit(): void {
    this.active = false
    this.undo = []
  }

  rollback(): void {
    const undo = this.undo
    this.undo = []
    for (let i = undo.length - 1; i >= 0; i--) undo[i]!()
    this.active = false
  }

  record(fn: () => void): void {
    if (!this.active) throw new Error('Journal: table written outside a command')
    this.undo.push(fn)
  }
}

/** Where a table kept in memory writes its rows through to (the replica's durable store). */
export interface WriteThrough {
  /** The store key prefix of the table's rows now (it changes with a restore). */
  prefix(): string
  write(key: string, bytes: Uint8Array | undefined): void
}

/**
 * A table's rows in memory: keys and decoded values in a {@link SortedMap}; with `through`, every
 * change is also written (encoded) to the replica's store, which a restart opens.
 */
export class MemoryRows<V> extends SortedMap<V> implements Rows<V> {
  constructor(
    private readonly codec: Codec<V>,
    private readonly through?: WriteThrough,
  ) {
    super()
  }

  override set(key: string, value: V): void {
    super.set(key, value)
    if (this.through !== undefined) this.through.write(this.through.prefix() + key, this.codec.encode(value))
  }

  override delete(key: string): boolean {
    if (!super.delete(key)) return false
    if (this.through !== undefined) this.through.write(this.through.prefix() + key, undefined)
    return true
  }

  adopt(key: string, bytes: Uint8Array): V {
    // Decoded from a copy: a decoded row's byte fields are views into what it was decoded from.
    const value = this.codec.decode(bytes.slice())
    super.set(key, value)
    return value
  }

  /** Holds references to the rows (immutable values) and encodes them when read. */
  capture(): CapturedRows {
    const rows = [...this.entries()]
    const codec = this.codec
    return {
      *rows() {
        for (const [k, v] of rows) yield [k, codec.encode(v)]
      },
      release: async () => {},
    }
  }
}

/**
 * One metadata table: an ordered key space of values that are treated as immutable — to change a
 * value, put a new object (the undo log keeps the old one by reference). Its rows are in memory, or,
 * for a table made with `onDisk`, keys in memory and values on disk (src/meta/disk-values.ts): a value
 * read back is then an equal copy, not the object put.
 */
export class Table<V> {
  private readonly map: Rows<V>

  constructor(
    readonly name: string,
    readonly codec: Codec<V>,
    private readonly journal: Journal,
    private readonly hooks: TableHooks<V> = {},
    rows?: Rows<V>,
  ) {
    this.map = rows ?? new MemoryRows(codec)
  }

  get size(): number {
    return this.map.size
  }

  get(key: string): V | undefined {
    return this.map.get(key)
  }

  has(key: string): boolean {
    return this.map.has(key)
  }

  range(start: string, end?: string, startExclusive = false): IterableIterator<[string, V]> {
    return this.map.range(start, end, startExclusive)
  }

  countRange(start: string, end?: string, startExclusive = false): number {
    return this.map.countRange(start, end, startExclusive)
  }

  firstKey(): string | undefined {
    return this.map.firstKey()
  }

  put(key: string, value: V): void {
    const prev = this.map.get(key)
    this.journal.record(() => (prev === undefined ? this.rawDelete(key) : this.rawSet(key, prev)))
    this.map.set(key, value)
    this.hooks.onSet?.(key, prev, value)
  }

  delete(key: string): boolean {
    const prev = this.map.get(key)
    if (prev === undefined) return false
    this.journal.record(() => this.rawSet(key, prev))
    this.map.delete(key)
    this.hooks.onDelete?.(key, prev)
    return true
  }

  /**
   * The rows as they are now, to encode later (snapshots off the apply path): a consistent capture
   * however the table changes afterwards (references to immutable values, or a store snapshot).
   */
  capture(): CapturedRows {
    return this.map.capture()
  }

  /** Empties the table without writing anything (before {@link adopt}ing a store's rows): not journaled. */
  reset(): void {
    this.map.clear()
    this.hooks.onClear?.()
  }

  /** The store "table" a restart reads this table's rows from (its slim copies, when it keeps them). */
  get openName(): string {
    return this.map.openName ?? this.name
  }

  /** Takes a row the replica's store holds (opened at start): nothing written, not journaled. */
  adopt(key: string, bytes: Uint8Array): void {
    const onSet = this.hooks.onSet
    const value = this.map.adopt!(key, bytes, onSet !== undefined)
    if (onSet !== undefined) onSet(key, undefined, value!)
  }

  /** Replaces the whole content (restore): not journaled. */
  load(keys: readonly string[], values: readonly Uint8Array[]): void {
    this.map.clear()
    this.hooks.onClear?.()
    this.append(keys, values)
  }

  /** Adds rows (a restore's next chunk of this table): not journaled. */
  append(keys: readonly string[], values: readonly Uint8Array[]): void {
    if (keys.length !== values.length)
      throw new Error(`Table ${this.name}: ${keys.length} keys, ${values.length} values`)
    // The values are views into the whole snapshot (hundreds of MB), and a decoded row's byte fields
    // are views into them: one row kept in memory would keep the whole snapshot alive. A table kept in
    // memory decodes from a copy of its own values (one buffer per table); a table on disk keeps a copy
    // of each encoding as it is (decoded only for its hooks).
    if (this.map.setEncoded !== undefined) {
      const onSet = this.hooks.onSet
      for (let i = 0; i < keys.length; i++) {
        const bytes = values[i]!.slice()
        const value = onSet === undefined ? undefined : this.codec.decode(bytes)
        this.map.setEncoded(keys[i]!, bytes, value)
        if (onSet !== undefined) onSet(keys[i]!, undefined, value!)
      }
      return
    }
    const from = copyTogether(values)
    for (let i = 0; i < keys.length; i++) this.rawSet(keys[i]!, this.codec.decode(from[i]!))
  }

  // Rollbacks and restores. The previous value is read only for a hook that wants it: on a disk table
  // that read can reach disk.
  private rawSet(key: string, value: V): void {
    const onSet = this.hooks.onSet
    const prev = onSet === undefined ? undefined : this.map.get(key)
    this.map.set(key, value)
    onSet?.(key, prev, value)
  }

  private rawDelete(key: string): void {
    const onDelete = this.hooks.onDelete
    if (onDelete === undefined) {
      this.map.delete(key)
      return
    }
    const prev = this.map.get(key)
    if (prev === undefined) return
    this.map.delete(key)
    onDelete(key, prev)
  }
}

/** The arrays copied into one new buffer, as views of it. */
function copyTogether(values: readonly Uint8Array[]): Uint8Array[] {
  let total = 0
  for (const v of values) total += v.length
  const buf = new Uint8Array(total)
  const out: Uint8Array[] = []
  let off = 0
  for (const v of values) {
    buf.set(v, off)
    out.push(buf.subarray(off, off + v.length))
    off += v.length
  }
  return out
}
