import { SortedMap } from './sorted-map.js'

/** Encodes a table's values for snapshots (protobuf, deterministic). */
export interface Codec<V> {
  encode(value: V): Uint8Array
  decode(bytes: Uint8Array): V
}

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

/**
 * One metadata table: an ordered key space of values that are treated as immutable — to change a
 * value, put a new object (the undo log keeps the old one by reference).
 */
export class Table<V> {
  private readonly map = new SortedMap<V>()

  constructor(
    readonly name: string,
    readonly codec: Codec<V>,
    private readonly journal: Journal,
    private readonly hooks: TableHooks<V> = {},
  ) {}

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
    this.rawSet(key, value)
  }

  delete(key: string): boolean {
    const prev = this.map.get(key)
    if (prev === undefined) return false
    this.journal.record(() => this.rawSet(key, prev))
    this.rawDelete(key)
    return true
  }

  /** Keys and encoded values in key order. */
  dump(): { keys: string[]; values: Uint8Array[] } {
    const keys: string[] = []
    const values: Uint8Array[] = []
    for (const [k, v] of this.map.entries()) {
      keys.push(k)
      values.push(this.codec.encode(v))
    }
    return { keys, values }
  }

  /**
   * The rows as they are now, to encode later (snapshots off the apply path): values are immutable, so
   * holding the references is a consistent capture however the table changes afterwards.
   */
  capture(): [string, V][] {
    return [...this.map.entries()]
  }

  /** Replaces the whole content (restore): not journaled. */
  load(keys: readonly string[], values: readonly Uint8Array[]): void {
    if (keys.length !== values.length)
      throw new Error(`Table ${this.name}: ${keys.length} keys, ${values.length} values`)
    this.map.clear()
    this.hooks.onClear?.()
    for (let i = 0; i < keys.length; i++) this.rawSet(keys[i]!, this.codec.decode(values[i]!))
  }

  private rawSet(key: string, value: V): void {
    const prev = this.map.get(key)
    this.map.set(key, value)
    this.hooks.onSet?.(key, prev, value)
  }

  private rawDelete(key: string): void {
    const prev = this.map.get(key)
    if (prev === undefined) return
    this.map.delete(key)
    this.hooks.onDelete?.(key, prev)
  }
}
