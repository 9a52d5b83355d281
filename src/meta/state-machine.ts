import type { AppliedEntry, DurableState, SessionChange, StateMachine } from '../consensus/index.js'
import { hopsd } from '../proto/meta.js'
import { CommandRejected, MetaError } from './errors.js'
import { be16, be64, fromBe64 } from './keys.js'
import { ADMIN_GROUP, checkSettings, parseSetting, readSettings, type ClusterSettings } from './settings.js'
import { DiskValues, SESSIONS_TABLE, checkTableName, type DiskValuesStats } from './disk-values.js'
import { Journal, MemoryRows, Table, type Codec, type TableHooks } from './table.js'
import type { CapturedRows } from './disk-values.js'
import { ProtoStreamReader, WIRE_LEN, WIRE_VARINT, lenField, varintField } from '../lib/index.js'
import type { ValueStore } from './value-store.js'

import pb = hopsd.meta

export type Command = pb.Command
/** The name of the operation a Command carries (its oneof). */
export type CommandOp = NonNullable<pb.Command['op']>

/** What apply() answers for each entry: the op's value, or why the command changed nothing. */
export type MetaResult = { ok: true; value: unknown } | { ok: false; code: string; message: string }

/** One namespace (or other) mutation, as the change log keeps it. */
export interface ChangeEvent {
  readonly index: number
  readonly op: string
  readonly path: string
  readonly dst: string
  readonly inodeId: number
  readonly user: string
  readonly timeMs: number
}

/** What a module sees while it applies one command. */
export interface ApplyContext {
  readonly index: number
  readonly cmd: Command
  readonly settings: ClusterSettings
  /** The caller is the superuser or in the supergroup. */
  readonly isSuperuser: boolean
  /** Appends an event to the change log (rolled back with the command if it fails). */
  emit(event: { op: string; path: string; dst?: string; inodeId: number }): void
  /**
   * Changes a cluster setting as part of this command (rolled back with it): parsed and range-checked
   * like SetSetting (INVALID_SETTING). The module checks who may; SetSetting itself needs the superuser.
   */
  setSetting(name: string, value: string): void
}

/**
 * A set of tables and the commands that change them (the fs namespace is the first). A module refuses a
 * command by throwing a {@link CommandRejected}; anything else thrown is a bug and halts the node.
 */
export interface MetaModule {
  readonly name: string
  readonly ops: readonly CommandOp[]
  apply(ctx: ApplyContext): unknown
  /** Writes the module's initial rows (e.g. the root inode) into an empty state; journaled. */
  init?(ctx: { settings: ClusterSettings }): void
  /**
   * Called before every command, whatever module applies it (deterministic, like apply): throw a
   * {@link CommandRejected} to refuse the command. The auth module checks here that the credential a
   * command was authenticated with is still valid when it commits (src/auth/store.ts).
   */
  guard?(ctx: { readonly index: number; readonly cmd: Command; readonly settings: ClusterSettings }): void
}

/** How a table keeps its rows. */
export interface TableOptions {
  /**
   * Keys in memory, values on disk (a bounded cache of hot rows in memory): for the tables that grow
   * with the namespace. Only where the state machine was given a value store; in memory otherwise.
   */
  readonly onDisk?: boolean
  /**
   * For an `onDisk` table whose rows carry bulk (inline bytes): the value without it, which the table
   * also keeps, and which is all a restart reads (its hooks see these slim values then: a hook must not
   * need the bulk).
   */
  readonly slim?: (value: any) => any
}

/** What a module factory may use: its own tables, and the cluster settings. */
export interface MetaStore {
  table<V>(name: string, codec: Codec<V>, hooks?: TableHooks<V>, opts?: TableOptions): Table<V>
  settings(): ClusterSettings
  isSuperuser(user: string, groups: readonly string[]): boolean
}

export type MetaModuleFactory<M extends MetaModule = MetaModule> = (store: MetaStore) => M

export interface MetaStateMachineInit {
  readonly modules: readonly MetaModuleFactory[]
  /** Bound on concurrent {@link MetaStateMachine.waitForChanges} callers plus subscribers. */
  readonly changeWaitersMax?: number
  /**
   * The largest command the consensus group takes (its maxBatchBytes): settings that would need larger
   * ones (an inlineThreshold a file's command cannot carry) are refused.
   */
  readonly commandBytesMax?: number
  /**
   * The replica's store (its durable state: see {@link MetaStateMachine.durable}), and how many bytes
   * of the `onDisk` tables' decoded rows stay cached in memory (default 64 MiB). Without it every table
   * is in memory only, and a restart restores the Raft snapshot.
   */
  readonly values?: {
    readonly store: ValueStore
    readonly cacheBytes?: number
    onWriteError?(err: Error): void
  }
}

/** Bytes of decoded disk-kept rows cached in memory when the caller names no bound. */
const DEFAULT_VALUE_CACHE_BYTES = 64 << 20

/** 2: a table's rows in chunks (several TableSnapshot entries of one name); 1 (one each) still restores. */
const SNAPSHOT_VERSION = 2
/** A table chunk of a snapshot ends after this many rows or bytes of values: what a restore holds. */
const SNAPSHOT_CHUNK_ROWS = 1000
const SNAPSHOT_CHUNK_BYTES = 1 << 20
/** A streamed restore writes its rows to the store every this many (restorePieces: bounded memory). */
const RESTORE_SPILL_ROWS = 10_000
/** Rows encoded between two turns of the event loop while a snapshot is encoded in the background. */
const SNAPSHOT_ENCODE_SLICE = 2000

/** A codec from a generated protobuf message class; values are plain objects of the message's shape. */
export function protoCodec<V>(t: {
  encode(v: any): { finish(): Uint8Array }
  decode(b: Uint8Array): any
  toObject(m: any, o: { defaults: boolean }): unknown
}): Codec<V> {
  // toObject with defaults: every field an own property, as values built by apply() have them — so a
  // restored replica re-encodes byte-identically to one that applied the log.
  return {
    encode: (v) => t.encode(v).finish(),
    decode: (b) => t.toObject(t.decode(b), { defaults: true }) as V,
    // The message object: defaults on its prototype, so reads see the same values (a start's hooks).
    decodeLean: (b) => t.decode(b) as V,
  }
}

/**
 * The replicated state machine of all cluster metadata. Commands are protobuf {@link Command}s; each
 * is applied all-or-nothing (an undo journal rolls back a refused command), deterministically (time and
 * identity come inside the command), and yields a {@link MetaResult}.
 *
 * Concurrency: apply/snapshot/restore are called by one driver, never concurrently (the
 * StateMachine contract); reads by modules' query methods run between applies on the same thread.
 */
export class MetaStateMachine implements StateMachine<MetaResult> {
  private readonly journal = new Journal()
  private readonly tables = new Map<string, Table<any>>()
  private readonly modules = new Map<string, MetaModule>()
  private readonly byOp = new Map<CommandOp, MetaModule>()
  private readonly guards: MetaModule[] = []
  private readonly settingTable: Table<{ value: string }>
  private readonly counterTable: Table<{ value: number }>
  private readonly changeTable: Table<ChangeEvent>
  private cachedSettings: ClusterSettings | undefined
  private applied = 0
  private pendingEvents: ChangeEvent[] = []
  private readonly waiters = new Set<() => void>()
  private readonly changeWaitersMax: number
  private readonly commandBytesMax: number | undefined
  private readonly diskValues: DiskValues | undefined
  /** The highest index persisted (the driver's, no-ops included). */
  private persistedIndex = 0
  /**
   * With a store: the replica's durable state for the Raft driver. A restart opens the store (rows,
   * client sessions, applied index) instead of restoring the snapshot and applying the log again.
   */
  readonly durable: DurableState | undefined

  constructor(init: MetaStateMachineInit) {
    this.changeWaitersMax = init.changeWaitersMax ?? 10_000
    this.commandBytesMax = init.commandBytesMax
    if (init.values !== undefined)
      this.diskValues = new DiskValues(
        init.values.store,
        init.values.cacheBytes ?? DEFAULT_VALUE_CACHE_BYTES,
        init.values.onWriteError,
      )
    const invalidate = {
      onSet: () => (this.cachedSettings = undefined),
      onDelete: () => (this.cachedSettings = undefined),
      onClear: () => (this.cachedSettings = undefined),
    }
    this.settingTable = this.table('setting', protoCodec(pb.Setting), invalidate)
    this.counterTable = this.table('counter', protoCodec(pb.Counter))
    this.changeTable = this.table('changelog', protoCodec(pb.ChangeEvent))
    const store: MetaStore = {
      table: (name, codec, hooks, opts) => this.table(name, codec, hooks, opts),
      settings: () => this.settings(),
      isSuperuser: (user, groups) => this.isSuperuser(user, groups),
    }
    for (const factory of init.modules) {
      const m = factory(store)
      if (this.modules.has(m.name)) throw new Error(`meta: module ${m.name} registered twice`)
      this.modules.set(m.name, m)
      if (m.guard !== undefined) this.guards.push(m)
      for (const op of m.ops) {
        if (this.byOp.has(op) || op === 'setSetting') throw new Error(`meta: op ${op} claimed twice`)
        this.byOp.set(op, m)
      }
    }
    this.initModules()
    const dv = this.diskValues
    this.durable =
      dv === undefined
        ? undefined
        : {
            open: () => this.openStore(dv),
            persist: (index, sessions) => this.persist(dv, index, sessions),
            sync: () => dv.sync(),
          }
  }

  /** A module by name (its query methods serve reads from this replica). */
  module<M extends MetaModule>(name: string): M {
    const m = this.modules.get(name)
    if (!m) throw new Error(`meta: no module ${name}`)
    return m as M
  }

  /** The disk-kept tables' counters (undefined when every table is in memory). */
  diskValueStats(): DiskValuesStats | undefined {
    return this.diskValues?.stats()
  }

  /**
   * Resolves when every row applied so far is written to the store (those no persist covered yet go
   * with this replica's applied index: for callers without a Raft driver, and a stop).
   */
  async valuesSettled(): Promise<void> {
    const dv = this.diskValues
    if (dv === undefined) return
    dv.seal(Math.max(this.persistedIndex, this.applied), this.applied)
    await dv.settled()
  }

  /**
   * Checks every row of the store against its checksum, in the background (STORE_CORRUPT): a restart
   * reads only what it needs (the slim rows of the big tables), so the rest is checked after it. A
   * store-less state machine has nothing to check.
   */
  async verifyStore(signal?: AbortSignal): Promise<number> {
    return (await this.diskValues?.verify(signal)) ?? 0
  }

  /** Raft index of the last applied entry (0 before any). */
  get appliedIndex(): number {
    return this.applied
  }

  settings(): ClusterSettings {
    return (this.cachedSettings ??= readSettings(this.settingTable))
  }

  /** The `superuser` setting's user, or a member of the `supergroup` setting's group or of `admin`. */
  isSuperuser(user: string, groups: readonly string[]): boolean {
    const s = this.settings()
    return user === s.superuser || groups.includes(s.supergroup) || groups.includes(ADMIN_GROUP)
  }

  apply(entries: readonly AppliedEntry[]): MetaResult[] {
    // With a store, the rows go to disk with the driver's persist (DurableState), never before.
    const results = entries.map((e) => this.applyOne(e))
    if (this.pendingEvents.length > 0) {
      this.pendingEvents = []
      this.wakeWaiters()
    }
    return results
  }

  snapshot(): Uint8Array {
    const captured = this.captureTables()
    const bytes = Buffer.concat([...snapshotPieces(this.applied, captured)])
    for (const t of captured) void t.rows.release() // a disk table's capture holds a LevelDB snapshot
    return bytes
  }

  /**
   * Captures the state now (references to the immutable rows, or a store snapshot: milliseconds even
   * for a large namespace) and returns the encoder, which the Raft driver runs while apply goes on. The
   * encoder yields to the event loop every SNAPSHOT_ENCODE_SLICE rows, so a snapshot of a large
   * namespace no longer stops the node for as long as encoding takes. Same bytes as snapshot() at the
   * capture.
   */
  snapshotLater(): () => Promise<Uint8Array> {
    const encode = this.snapshotPieces()
    return async () => {
      const pieces: Uint8Array[] = []
      for await (const p of encode()) pieces.push(p)
      return Buffer.concat(pieces)
    }
  }

  /**
   * As {@link snapshotLater}, but the encoder yields the bytes in pieces (a table chunk each) and never
   * holds the whole: the driver writes them to the snapshot file as they come.
   */
  snapshotPieces(): () => AsyncIterable<Uint8Array> {
    const appliedIndex = this.applied
    const captured = this.captureTables()
    return async function* () {
      try {
        let sinceYield = 0
        for (const piece of snapshotPieces(appliedIndex, captured, (rows) => (sinceYield += rows))) {
          yield piece
          if (sinceYield >= SNAPSHOT_ENCODE_SLICE) {
            sinceYield = 0
            await new Promise<void>((resolve) => setImmediate(resolve))
          }
        }
      } finally {
        await Promise.all(captured.map((t) => t.rows.release()))
      }
    }
  }

  restore(data: Uint8Array): void {
    const snap = pb.Snapshot.decode(data)
    const restore = this.beginRestore(snap.version)
    for (const t of snap.tables) restore.table(t)
    restore.end(Number(snap.appliedIndex))
  }

  /**
   * Restores from the snapshot's bytes in pieces of any size: one table chunk (SNAPSHOT_CHUNK_*) in
   * memory at a time, so a new replica installs a snapshot larger than its memory.
   */
  async restorePieces(pieces: AsyncIterable<Uint8Array>): Promise<void> {
    const r = new ProtoStreamReader(pieces)
    let version = 0
    let appliedIndex = 0
    let restore: ReturnType<MetaStateMachine['beginRestore']> | undefined
    for (let f = await r.nextField(); f !== undefined; f = await r.nextField()) {
      if (f.field === 1 && f.wireType === WIRE_VARINT) version = await r.varint()
      else if (f.field === 2 && f.wireType === WIRE_VARINT) appliedIndex = await r.varint()
      else if (f.field === 3 && f.wireType === WIRE_LEN) {
        // Version and index come first in every snapshot this code or an older one wrote.
        restore ??= this.beginRestore(version)
        restore.table(pb.TableSnapshot.decode(await r.bytes(await r.varint())))
        if ((this.diskValues?.unsealedRows ?? 0) >= RESTORE_SPILL_ROWS) await this.diskValues!.spill()
      } else await r.skip(f.wireType)
    }
    ;(restore ?? this.beginRestore(version)).end(appliedIndex)
  }

  /**
   * A restore, table chunk by table chunk: a table's first chunk replaces its rows, the next ones add
   * to them (version 1 had one chunk per table), and a table no chunk names is emptied at the end.
   */
  private beginRestore(version: number): {
    table(t: pb.ITableSnapshot): void
    end(appliedIndex: number): void
  } {
    if (version !== SNAPSHOT_VERSION && version !== 1)
      throw new Error(`meta: snapshot version ${version} unsupported`)
    // The restored rows go to a new generation of the store, switched to by the persist that follows.
    this.diskValues?.newGeneration()
    const seen = new Set<string>()
    return {
      table: (t) => {
        const name = t.name ?? ''
        const table = this.tables.get(name)
        if (!table) throw new Error(`meta: snapshot has unknown table ${name}`)
        if (!seen.has(name)) table.load([], [])
        seen.add(name)
        table.append(t.keys ?? [], t.values ?? [])
      },
      end: (appliedIndex) => {
        for (const [name, table] of this.tables) if (!seen.has(name)) table.load([], [])
        this.applied = appliedIndex
        this.cachedSettings = undefined
        this.initModules()
        this.wakeWaiters()
      },
    }
  }

  private captureTables(): { name: string; rows: CapturedRows }[] {
    return [...this.tables.keys()].sort().map((name) => ({ name, rows: this.tables.get(name)!.capture() }))
  }

  // ---- change log ----

  /**
   * Events with index > since, oldest first, at most `limit`. `truncated` says events after `since`
   * were already dropped (the log keeps `changeLogMax`): the reader missed some and should rescan.
   */
  changesSince(
    since: number,
    limit = 1000,
  ): { events: ChangeEvent[]; truncated: boolean; lastIndex: number } {
    const events: ChangeEvent[] = []
    for (const [, e] of this.changeTable.range(be64(since + 1))) {
      if (events.length >= limit) break
      events.push(e)
    }
    const trimmedThrough = this.counterTable.get('changelogTrimmedThrough')?.value ?? 0
    return { events, truncated: since < trimmedThrough, lastIndex: this.lastEventIndex() }
  }

  /** Index of the newest event (0 when none). */
  lastEventIndex(): number {
    return this.counterTable.get('changelogLastIndex')?.value ?? 0
  }

  /**
   * Resolves when an event newer than `since` exists (at once when one does), or when `signal`
   * aborts (with no error: the caller then reads whatever there is). Bounded by changeWaitersMax.
   */
  waitForChanges(since: number, signal?: AbortSignal): Promise<void> {
    if (this.lastEventIndex() > since || signal?.aborted) return Promise.resolve()
    if (this.waiters.size >= this.changeWaitersMax) return Promise.reject(new MetaError('WAITERS_EXHAUSTED'))
    return new Promise((resolve) => {
      const done = (): void => {
        this.waiters.delete(done)
        signal?.removeEventListener('abort', done)
        resolve()
      }
      this.waiters.add(done)
      signal?.addEventListener('abort', done, { once: true })
    })
  }

  // ---- internals ----

  /**
   * Opens the store (DurableState.open): a store holding a state replaces the empty one the
   * constructor built (the tables' rows, their hooks' indexes, the applied index); an empty store keeps
   * it, and the first persist writes it.
   */
  private async openStore(dv: DiskValues): Promise<{ appliedIndex: number; sessions: Uint8Array[] }> {
    const meta = await dv.open()
    if (meta === undefined) return { appliedIndex: 0, sessions: [] }
    for (const t of this.tables.values()) t.reset()
    const sessions: Uint8Array[] = []
    let atTable = ''
    let atKey = ''
    const at = (): string => (atTable === '' ? '' : `${atTable}/${atKey}`)
    try {
      for (const table of this.tables.values()) {
        atTable = table.openName
        for await (const rows of dv.scanTable(table.openName))
          for (const [key, bytes] of rows) {
            atKey = key
            table.adopt(key, bytes)
          }
      }
      atTable = SESSIONS_TABLE
      for await (const rows of dv.scanTable(SESSIONS_TABLE))
        for (const [key, bytes] of rows) {
          atKey = key
          sessions.push(bytes.slice())
        }
    } catch (err) {
      // LevelDB's own corruption errors, a row that fails its checksum or does not decode.
      throw new MetaError(
        'STORE_CORRUPT',
        `the metadata store is damaged${at() === '' ? '' : ` (after ${at()})`}: ${(err as Error).message}`,
      )
    }
    this.applied = meta.smApplied
    this.persistedIndex = meta.index
    this.cachedSettings = undefined
    return { appliedIndex: meta.index, sessions }
  }

  private persist(dv: DiskValues, index: number, sessions: readonly SessionChange[]): void {
    for (const s of sessions) dv.write(dv.prefix(SESSIONS_TABLE) + s.clientId, s.session)
    this.persistedIndex = Math.max(this.persistedIndex, index)
    dv.seal(index, this.applied)
  }

  private table<V>(name: string, codec: Codec<V>, hooks?: TableHooks<V>, opts?: TableOptions): Table<V> {
    if (this.tables.has(name)) throw new Error(`meta: table ${name} defined twice`)
    const dv = this.diskValues
    let rows
    if (dv !== undefined) {
      checkTableName(name)
      rows =
        opts?.onDisk === true
          ? dv.rows(name, codec, opts.slim)
          : new MemoryRows(codec, { prefix: () => dv.prefix(name), write: (k, b) => dv.write(k, b) })
    }
    const t = new Table<V>(name, codec, this.journal, hooks, rows)
    this.tables.set(name, t)
    return t
  }

  private initModules(): void {
    this.journal.begin()
    try {
      for (const m of this.modules.values()) m.init?.({ settings: this.settings() })
      this.journal.commit()
    } catch (err) {
      this.journal.rollback()
      throw err
    }
  }

  private applyOne(entry: AppliedEntry): MetaResult {
    if (entry.index <= this.applied)
      throw new Error(`meta: entry ${entry.index} applied after ${this.applied}`)
    this.applied = entry.index
    let cmd: Command
    try {
      cmd = pb.Command.decode(entry.data)
    } catch (err) {
      return {
        ok: false,
        code: 'MALFORMED_COMMAND',
        message: `entry ${entry.index}: ${(err as Error).message}`,
      }
    }
    const op = cmd.op
    if (op === undefined)
      return { ok: false, code: 'UNKNOWN_OPERATION', message: `entry ${entry.index} carries no operation` }
    const eventsBefore = this.pendingEvents.length
    this.journal.begin()
    try {
      for (const g of this.guards) g.guard!({ index: entry.index, cmd, settings: this.settings() })
      const value = op === 'setSetting' ? this.applySetSetting(cmd) : this.applyModuleOp(op, entry.index, cmd)
      this.journal.commit()
      return { ok: true, value: value ?? null }
    } catch (err) {
      this.journal.rollback()
      this.pendingEvents.length = eventsBefore
      if (err instanceof CommandRejected) return { ok: false, code: err.code, message: err.message }
      throw err
    }
  }

  private applyModuleOp(op: CommandOp, index: number, cmd: Command): unknown {
    const module = this.byOp.get(op)
    if (!module) throw new MetaError('UNKNOWN_OPERATION', `no module applies ${op}`)
    let seq = 0
    const ctx: ApplyContext = {
      index,
      cmd,
      settings: this.settings(),
      isSuperuser: this.isSuperuser(cmd.user, cmd.groups),
      emit: (e) => this.appendEvent(index, seq++, cmd, e),
      setSetting: (name, value) => this.putSetting(name, value),
    }
    return module.apply(ctx)
  }

  private applySetSetting(cmd: Command): unknown {
    if (!this.isSuperuser(cmd.user, cmd.groups))
      throw new MetaError('SUPERUSER_REQUIRED', `${cmd.user} may not change cluster settings`)
    return this.putSetting(cmd.setSetting?.name ?? '', cmd.setSetting?.value ?? '')
  }

  private putSetting(name: string, value: string): { name: string; value: string } {
    const stored = String(parseSetting(name, value))
    this.settingTable.put(name, { value: stored })
    checkSettings(this.settings(), { commandBytesMax: this.commandBytesMax })
    return { name, value: stored }
  }

  private appendEvent(
    index: number,
    seq: number,
    cmd: Command,
    e: { op: string; path: string; dst?: string; inodeId: number },
  ): void {
    const event: ChangeEvent = {
      index,
      op: e.op,
      path: e.path,
      dst: e.dst ?? '',
      inodeId: e.inodeId,
      user: cmd.user,
      timeMs: cmd.nowMs,
    }
    this.changeTable.put(be64(index) + be16(seq), event)
    this.counterTable.put('changelogLastIndex', { value: index })
    this.pendingEvents.push(event)
    const max = this.settings().changeLogMax
    while (this.changeTable.size > max) {
      const oldest = this.changeTable.firstKey()!
      this.changeTable.delete(oldest)
      this.counterTable.put('changelogTrimmedThrough', { value: fromBe64(oldest) })
    }
  }

  private wakeWaiters(): void {
    for (const w of [...this.waiters]) w()
  }
}

/**
 * The snapshot's bytes in pieces: the version, the applied index, then each table (in name order) as
 * chunks of at most SNAPSHOT_CHUNK_ROWS rows or about SNAPSHOT_CHUNK_BYTES of values, every table at
 * least one (an empty one names itself). Deterministic: the same rows give the same bytes on every
 * replica, whichever way it keeps them. `counted(rows)` hears how many rows each piece carried.
 */
function* snapshotPieces(
  appliedIndex: number,
  tables: readonly { name: string; rows: CapturedRows }[],
  counted: (rows: number) => void = () => {},
): Generator<Uint8Array> {
  yield varintField(1, SNAPSHOT_VERSION)
  if (appliedIndex > 0) yield varintField(2, appliedIndex)
  for (const t of tables) {
    let keys: string[] = []
    let values: Uint8Array[] = []
    let bytes = 0
    let emitted = false
    const chunk = (): Uint8Array => {
      const piece = lenField(3, pb.TableSnapshot.encode({ name: t.name, keys, values }).finish())
      counted(keys.length)
      keys = []
      values = []
      bytes = 0
      emitted = true
      return piece
    }
    for (const [k, v] of t.rows.rows()) {
      keys.push(k)
      values.push(v)
      bytes += v.length
      if (keys.length >= SNAPSHOT_CHUNK_ROWS || bytes >= SNAPSHOT_CHUNK_BYTES) yield chunk()
    }
    if (keys.length > 0 || !emitted) yield chunk()
  }
}

/** Encodes a command for `propose`. */
export function encodeCommand(cmd: pb.Command.$Properties): Uint8Array {
  return pb.Command.encode(cmd).finish()
}

/** Creates the state machine with the given modules (each a factory over the shared store). */
export function createMetaStateMachine(init: MetaStateMachineInit): MetaStateMachine {
  return new MetaStateMachine(init)
}
