import { ClassicLevel } from 'classic-level'

/** One change to the value store: a put (`value`) or a delete (no value). */
export interface ValueOp {
  readonly key: string
  readonly value?: Uint8Array
}

/** A consistent read view of the store as it was when taken (a LevelDB snapshot). */
export interface ValueStoreView {
  read(key: string): Uint8Array | undefined
  close(): Promise<void>
}

/** Rows a scan reads per call into LevelDB. */
const SCAN_BATCH_ROWS = 1000

/** Options of one write. */
export interface ValueWriteOptions {
  /** Durable before it resolves (fsync of LevelDB's log: every earlier write with it). */
  readonly sync?: boolean
}

/** A key range: `gte <= key < lt` (either end open when absent). */
export interface KeyRange {
  readonly gte?: string
  readonly lt?: string
}

/**
 * Where a metadata replica keeps its tables' rows (src/meta/disk-values.ts): a key-value store with
 * synchronous point reads (apply is synchronous and deterministic: it cannot await a read) and
 * asynchronous, ordered, atomic batch writes. Keys are strings, values the rows' protobuf encodings.
 */
export interface ValueStore {
  /** Resolves when the store is open (rejects with why it could not open). */
  readonly opened: Promise<void>
  /** The value written last under `key` by a write that has completed, or undefined. */
  read(key: string): Uint8Array | undefined
  /** Writes the ops as one atomic batch. Callers never overlap two writes (DiskValues chains them). */
  write(ops: readonly ValueOp[], opts?: ValueWriteOptions): Promise<void>
  /** A read view that later writes do not change. */
  view(): ValueStoreView
  /** The rows in the range, in key order, a batch at a time (the store opened at start). */
  scan(range: KeyRange): AsyncIterable<[string, Uint8Array][]>
  /** Deletes every key in the range (old generations after a restore, leftovers at start). */
  clearRange(range: KeyRange): Promise<void>
  close(): Promise<void>
}

/**
 * The LevelDB store of a metadata replica's tables, in `dir`: the replica's durable state (with the
 * applied index it holds, src/meta/disk-values.ts), opened as it is at start. Opening is synchronous
 * for the caller: LevelDB opens in the background and defers writes until it is open; `opened` says
 * when reads can reach it.
 */
export function openLevelValueStore(dir: string): ValueStore {
  const db = new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
  const opened = db.open()
  // Until someone awaits `opened`, a failure shows in the first write, which rejects with it.
  opened.catch(() => {})
  return {
    opened,
    read: (key) => db.getSync(key),
    write: (ops, opts) =>
      db.batch(
        ops.map((op) =>
          op.value === undefined
            ? { type: 'del' as const, key: op.key }
            : { type: 'put' as const, key: op.key, value: op.value },
        ),
        { sync: opts?.sync === true },
      ),
    view: () => {
      const snapshot = db.snapshot()
      return {
        read: (key) => db.getSync(key, { snapshot }),
        close: () => snapshot.close(),
      }
    },
    scan: async function* (range) {
      // nextv: one native call per batch, not one promise per row (a million rows at start).
      const it = db.iterator({ ...range })
      try {
        for (
          let rows = await it.nextv(SCAN_BATCH_ROWS);
          rows.length > 0;
          rows = await it.nextv(SCAN_BATCH_ROWS)
        )
          yield rows
      } finally {
        await it.close()
      }
    },
    clearRange: (range) => db.clear({ ...range }),
    close: () => db.close(),
  }
}
