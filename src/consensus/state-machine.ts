/**
 * The contract between a Raft group and the replicated state machine it drives (src/meta implements
 * it for the cluster's metadata). This file is shared by several areas: change it only on purpose.
 *
 * Ordering and concurrency guarantees given by the driver:
 * - `apply` is called with committed entries in strictly increasing index order, each entry exactly
 *   once per state-machine lifetime (a restart restores the latest snapshot, then re-applies the
 *   committed entries after it; with `durable`, a restart opens the store and applies only the entries
 *   after the index it holds).
 * - `apply`, `snapshot` and `restore` are never called concurrently with each other (the encoder that
 *   `snapshotLater` returns does run concurrently with `apply`: that is its purpose).
 * - Commands retried by a client (same client id and sequence number) are filtered out by the
 *   consensus layer before `apply`: the state machine sees each client command once.
 *
 * Requirements on the implementation:
 * - `apply` must be deterministic: the same entries applied to the same state give the same state and
 *   the same results on every node. No clock, no randomness, no I/O that can fail differently per node;
 *   time comes inside the command (the proposer stamps it).
 * - A command that is invalid (bad path, permission denied, ...) is not an exception: it is applied as a
 *   no-op and its result says why. Throwing from `apply` means a bug and halts the node.
 * - `snapshot` captures the state as of the last applied entry; `restore` replaces the whole state.
 */
export interface AppliedEntry {
  /** Raft log index of the entry (1-based, strictly increasing). */
  readonly index: number
  /** Term in which the entry was proposed. */
  readonly term: number
  /** The command, opaque to consensus (src/meta encodes it with protobuf). */
  readonly data: Uint8Array
}

export interface StateMachine<Result = unknown> {
  /** Applies committed entries in order; returns one result per entry, in the same order. */
  apply(entries: readonly AppliedEntry[]): Result[] | Promise<Result[]>
  /** Serializes the whole state as of the last applied index. */
  snapshot(): Uint8Array | Promise<Uint8Array>
  /**
   * Optional, preferred by the driver when present: captures the state as of the last applied index
   * at the call (cheaply, without encoding) and returns a function that encodes that capture. The
   * driver runs the encoder while it keeps applying entries, so the capture must not change with later
   * applies (e.g. hold references to immutable values), and the encoder must not touch live state.
   * The bytes must be those snapshot() would have returned at the capture.
   */
  snapshotLater?(): () => Uint8Array | Promise<Uint8Array>
  /**
   * Optional, preferred over snapshotLater by a driver whose storage writes snapshots as they come
   * (stageSnapshotPieces): the same capture, but the encoder yields the bytes in pieces (their
   * concatenation is what snapshot() would have returned) and never holds them whole.
   */
  snapshotPieces?(): () => AsyncIterable<Uint8Array>
  /** Replaces the whole state with a snapshot produced by `snapshot` (possibly on another node). */
  restore(data: Uint8Array): void | Promise<void>
  /** Optional: `restore` from the snapshot's bytes in pieces of any size (a state larger than memory). */
  restorePieces?(pieces: AsyncIterable<Uint8Array>): Promise<void>
  /**
   * Optional: the state machine keeps its state durably itself (src/meta: LevelDB), so a restart opens
   * it instead of restoring the Raft snapshot and re-applying the log (etcd's consistent index).
   */
  readonly durable?: DurableState
}

/** A client session as the driver encodes it (its whole record), or its removal (`session` absent). */
export interface SessionChange {
  readonly clientId: string
  readonly session?: Uint8Array
}

/**
 * The durable half of a state machine. The driver's client sessions (exactly-once retries) are part of
 * the replica's state: they are written with the rows of the entries that changed them, so the store
 * always holds the state and the sessions of one and the same applied index.
 *
 * - `open` is called once, before anything else: the applied index the store holds (0 when empty) and
 *   the sessions written with it. The driver then restores the Raft snapshot only when the store is
 *   behind it, and skips (never applies again) the entries at or below the store's index.
 * - `persist(index, changes)` follows every apply (and restore): everything applied so far, the session
 *   changes and the index go to the store as one atomic batch (in order; not necessarily synced).
 *   Nothing applied is written before the `persist` that covers it.
 * - `sync` resolves once everything persisted before the call survives a machine crash (fsync): the
 *   driver calls it before it drops the log entries a snapshot covers.
 */
export interface DurableState {
  open(): Promise<{ appliedIndex: number; sessions: readonly Uint8Array[] }>
  persist(appliedIndex: number, sessions: readonly SessionChange[]): void
  sync(): Promise<void>
}
