import { ClassicLevel } from 'classic-level'
import { rmSync } from 'node:fs'

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

/**
 * Where the metadata tables kept on disk keep their encoded rows: a key-value store with synchronous
 * point reads (apply is synchronous and deterministic: it cannot await a read) and asynchronous,
 * ordered batch writes. Keys are strings, values the rows' protobuf encodings.
 */
export interface ValueStore {
  /** Resolves when the store is open (rejects with why it could not open). */
  readonly opened: Promise<void>
  /** The value written last under `key` by a write that has completed, or undefined. */
  read(key: string): Uint8Array | undefined
  /** Writes the ops as one atomic batch. Callers never overlap two writes (DiskValues chains them). */
  write(ops: readonly ValueOp[]): Promise<void>
  /** A read view that later writes do not change. */
  view(): ValueStoreView
  /** Deletes every key with this prefix (in the background: old generations after a restore). */
  clearPrefix(prefix: string): Promise<void>
  close(): Promise<void>
}

/**
 * The LevelDB value store of a metadata replica, in `dir`. Not yet durable state: the directory is
 * emptied when opened, and the replica's tables are rebuilt from the Raft snapshot and log as before —
 * what moves to disk is the bulk of the rows, out of the heap (issue 13 item 1, first step; making the
 * store the replica's durable state, written with its applied index, is the next). Opening is
 * synchronous for the caller: LevelDB opens in the background and defers writes until it is open;
 * reads only reach LevelDB for rows a completed write put there, so never before it is open.
 */
export function openLevelValueStore(dir: string): ValueStore {
  rmSync(dir, { recursive: true, force: true })
  const db = new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
  const opened = db.open()
  // Until someone awaits `opened`, a failure shows in the first write, which rejects with it.
  opened.catch(() => {})
  return {
    opened,
    read: (key) => db.getSync(key),
    write: (ops) =>
      db.batch(
        ops.map((op) =>
          op.value === undefined
            ? { type: 'del' as const, key: op.key }
            : { type: 'put' as const, key: op.key, value: op.value },
        ),
      ),
    view: () => {
      const snapshot = db.snapshot()
      return {
        read: (key) => db.getSync(key, { snapshot }),
        close: () => snapshot.close(),
      }
    },
    // Every key with the prefix sorts at or after it and before the prefix with its last character
    // incremented, whatever characters follow.
    clearPrefix: (prefix) =>
      db.clear({
        gte: prefix,
        lt: prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1),
      }),
    close: () => db.close(),
  }
}
