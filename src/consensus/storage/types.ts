import type { Entry, HardState, Snapshot, SnapshotMetadata } from '../core/types.js'

/** The data of one durable snapshot, read in pieces (a snapshot of a large state is hundreds of MB). */
export interface SnapshotReader {
  readonly size: number
  /** Bytes [offset, offset + length) of the data (a new array the caller may keep). */
  read(offset: number, length: number): Promise<Uint8Array>
  close(): Promise<void>
}

/** What a node finds on its disk at start. */
export interface PersistedState {
  /** Zero hard state ({term: 0, vote: '', commit: 0}) when nothing was ever written. */
  hardState: HardState
  /** The latest snapshot (metadata and data), or null when none. */
  snapshot: Snapshot | null
  /** Entries after the snapshot's index, in index order, contiguous. */
  entries: Entry[]
  /**
   * The snapshot's data was left on disk (load's `withoutSnapshotData`): `snapshot.data` is empty, and
   * `openSnapshot` reads it.
   */
  snapshotStored?: boolean
  /**
   * With load's `tailBytes`: `entries` holds only the newest entries (about `tailBytes` of them); the
   * older ones stay on disk (`readEntries`), known by the terms of their runs: `runs[k]` starts at
   * `first` and lasts until the next run, the last one until `last`.
   */
  logStored?: { runs: { first: number; term: number }[]; last: number }
}

/** A snapshot arriving from the leader in chunks, written to disk as they come (never held whole). */
export interface SnapshotReceiver {
  /** Writes bytes [offset, offset + bytes.length) of the snapshot's data (any order; again is harmless). */
  write(offset: number, bytes: Uint8Array): Promise<void>
  /** Reads back what was received (its checksum is checked before it is accepted). */
  open(): Promise<SnapshotReader>
  /**
   * Makes it durable and staged, like stageSnapshot: a write whose `snapshot` has its metadata (and
   * empty data) records it without its data.
   */
  complete(): Promise<void>
  /** Drops what was received. */
  abort(): Promise<void>
}

/**
 * One atomic, durable write: everything a Ready (or a local compaction) asks to persist. Applied in
 * this order inside the batch: `snapshot` (discards every persisted entry), then `compact` (discards
 * entries ≤ its index), then `entries` (discards persisted entries at indexes ≥ entries[0].index,
 * i.e. log truncation, then writes them), then `hardState`.
 */
export interface PersistBatch {
  hardState: HardState | null
  entries: Entry[]
  /** A snapshot received from the leader: replaces the whole log. */
  snapshot: Snapshot | null
  /** A snapshot taken locally: stored as the latest snapshot, entries up to its index are dropped. */
  compact: Snapshot | null
}

/**
 * Durable storage of one Raft node: LevelDB in production (./level.ts), memory in tests and in the
 * simulator (./memory.ts), which wraps it to model a disk.
 *
 * Contract:
 * - `write` calls are issued one at a time by the driver (the next only after the previous settled).
 * - `write` resolves only once the batch is durable (fsync'ed): a crash after resolution keeps it; a
 *   crash before may keep it or not, but never part of it (atomic).
 * - `write` may take any time (a simulated disk delays it) and may reject (a disk error): the driver
 *   then stops the node with STORAGE_FAILED — it never retries a write whose outcome it doesn't know.
 * - `load` is called once before any write and returns exactly what completed writes left.
 */
export interface RaftPersistence {
  /**
   * With `withoutSnapshotData`, a storage that has `openSnapshot` may leave the snapshot's data on disk
   * (`snapshotStored`): a snapshot of a large state is not read into memory to start. With
   * `tailBytes`, a storage that has `readEntries` may return only the log's newest entries
   * (`logStored`): a start does not decode a log it would not keep in memory.
   */
  load(opts?: { withoutSnapshotData?: boolean; tailBytes?: number }): Promise<PersistedState>
  write(batch: PersistBatch): Promise<void>
  close(): Promise<void>
  /**
   * Optional: makes a locally taken snapshot's data durable ahead of the `write({compact})` that
   * records it, so that write stays small. May run while `write`s are in flight (it touches only the
   * snapshot's own storage); until a write names it, the staged data is not part of the state.
   */
  stageSnapshot?(snap: Snapshot): Promise<void>
  /**
   * Optional, with `readEntries`: lets the driver keep neither the snapshot's data nor the whole log
   * in memory. Opens the data of the latest durable snapshot if it is the one at (index, term); null
   * when the storage holds another one by now (a newer snapshot replaced it). The reader keeps
   * working if the snapshot is replaced while it is open.
   */
  openSnapshot?(index: number, term: number): Promise<SnapshotReader | null>
  /**
   * Optional: the persisted entries [lo, hi), in order, at most maxBytes (entrySizeBytes) but at least
   * one, read synchronously (the core's LogStorage is synchronous). The driver asks only for entries
   * after the latest snapshot that completed writes left, and it may ask while a write is in flight:
   * the entries a compaction drops must stay readable until the write after it (the driver updates its
   * view of the log only once a write has completed).
   */
  readEntries?(lo: number, hi: number, maxBytes: number): Entry[]
  /**
   * Optional, with `openSnapshot`: a locally taken snapshot written to its file as it is encoded (the
   * envelope's pieces), staged like stageSnapshot; resolves with its size in bytes. The `compact` write
   * that records it carries its metadata and empty data.
   */
  stageSnapshotPieces?(metadata: SnapshotMetadata, pieces: AsyncIterable<Uint8Array>): Promise<number>
  /** Optional, with `openSnapshot`: receives a snapshot from the leader into a file (`size` bytes). */
  receiveSnapshot?(metadata: SnapshotMetadata, size: number): Promise<SnapshotReceiver>
}
