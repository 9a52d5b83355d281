import { ClassicLevel } from 'classic-level'
import {
  decodeEntry,
  decodeHardState,
  decodeSnapshotMetadata,
  encodeEntry,
  encodeHardState,
  encodeSnapshotMetadata,
} from '../codec.js'
import { EMPTY_BYTES, type Entry, type HardState, type Snapshot } from '../core/types.js'
import type { PersistBatch, PersistedState, RaftPersistence } from './types.js'

/**
 * Raft storage in LevelDB (classic-level). Key layout (one keyspace per node directory):
 *   'h'             HardState
 *   'm'             SnapshotMetadata of the latest snapshot (index, term, conf state)
 *   'd'             the latest snapshot's data
 *   'e' + u64 BE    the entry at that index (big-endian so that key order is index order)
 *
 * Every write is ONE `batch(ops, {sync: true})`: atomic and fsync'ed. Entries at or below the
 * snapshot index are ignored by load(), so dropping them after a compaction is done lazily with
 * clear() outside the batch (cheap, and safe if a crash interrupts it); entries that a truncation or a
 * snapshot install replace are deleted inside the batch, since they could otherwise be read back.
 */
export interface LevelStorage extends RaftPersistence {
  readonly dir: string
}

const K_HARD = Uint8Array.of(0x68) // 'h'
const K_META = Uint8Array.of(0x6d) // 'm'
const K_DATA = Uint8Array.of(0x64) // 'd'
const E_PREFIX = 0x65 // 'e'

function entryKey(index: number): Uint8Array {
  const k = new Uint8Array(9)
  k[0] = E_PREFIX
  new DataView(k.buffer).setBigUint64(1, BigInt(index))
  return k
}

type Op = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array }

/** Opens (creating if needed) the Raft storage of one node in a LevelDB directory. */
export async function openLevelStorage(dir: string): Promise<LevelStorage> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  // What is on disk, tracked to know which keys a truncation must delete.
  let snapIndex = 0
  let firstEntry = 1 // first entry index that may exist on disk
  let lastIndex = 0
  let pendingClear: Promise<void> = Promise.resolve()

  const get = async (key: Uint8Array): Promise<Uint8Array | undefined> => {
    const v = await db.get(key)
    return v ?? undefined
  }

  return {
    dir,
    async load(): Promise<PersistedState> {
      const hsBytes = await get(K_HARD)
      const hardState: HardState = hsBytes ? decodeHardState(hsBytes) : { term: 0, vote: '', commit: 0 }
      const metaBytes = await get(K_META)
      let snapshot: Snapshot | null = null
      if (metaBytes) {
        const metadata = decodeSnapshotMetadata(metaBytes)
        snapshot = { metadata, data: (await get(K_DATA)) ?? EMPTY_BYTES }
      }
      snapIndex = snapshot?.metadata.index ?? 0
      const entries: Entry[] = []
      for await (const value of db.values({ gt: entryKey(snapIndex), lt: entryKey(Number.MAX_SAFE_INTEGER) })) {
        const e = decodeEntry(value)
        const expected = entries.length > 0 ? entries[entries.length - 1]!.index + 1 : snapIndex + 1
        if (e.index !== expected) throw new Error(`raft storage ${dir}: gap in log at ${e.index}, expected ${expected}`)
        entries.push(e)
      }
      firstEntry = 1
      lastIndex = entries.length > 0 ? entries[entries.length - 1]!.index : snapIndex
      return { hardState, snapshot, entries }
    },

    async write(b: PersistBatch): Promise<void> {
      const ops: Op[] = []
      let newSnapIndex = snapIndex
      let newLast = lastIndex
      let clearTo = 0
      if (b.snapshot) {
        const idx = b.snapshot.metadata.index
        ops.push({ type: 'put', key: K_META, value: encodeSnapshotMetadata(b.snapshot.metadata) })
        ops.push({ type: 'put', key: K_DATA, value: b.snapshot.data })
        // Entries after the snapshot index belong to a log that the snapshot replaces.
        for (let i = idx + 1; i <= lastIndex; i++) ops.push({ type: 'del', key: entryKey(i) })
        newSnapIndex = idx
        newLast = idx
        clearTo = idx
      }
      if (b.compact && b.compact.metadata.index > newSnapIndex) {
        ops.push({ type: 'put', key: K_META, value: encodeSnapshotMetadata(b.compact.metadata) })
        ops.push({ type: 'put', key: K_DATA, value: b.compact.data })
        newSnapIndex = b.compact.metadata.index
        clearTo = newSnapIndex
        if (newLast < newSnapIndex) newLast = newSnapIndex
      }
      if (b.entries.length > 0) {
        const first = b.entries[0]!.index
        for (let i = Math.max(first, b.entries[b.entries.length - 1]!.index + 1); i <= newLast; i++)
          ops.push({ type: 'del', key: entryKey(i) })
        for (const e of b.entries) ops.push({ type: 'put', key: entryKey(e.index), value: encodeEntry(e) })
        newLast = b.entries[b.entries.length - 1]!.index
      }
      if (b.hardState) ops.push({ type: 'put', key: K_HARD, value: encodeHardState(b.hardState) })
      if (ops.length === 0) return
      await pendingClear
      await db.batch(ops, { sync: true })
      snapIndex = newSnapIndex
      lastIndex = newLast
      if (clearTo > 0 && clearTo >= firstEntry) {
        const from = firstEntry
        firstEntry = clearTo + 1
        // Lazy: load() ignores entries ≤ the snapshot index anyway.
        pendingClear = db.clear({ gte: entryKey(from), lte: entryKey(clearTo) }).catch(() => undefined)
      }
    },

    async close(): Promise<void> {
      await pendingClear
      await db.close()
    },
  }
}
