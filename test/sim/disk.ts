/**
 * The simulated disk of one node: consensus's memory persistence (`createMemoryStorage`) holds what is
 * durable (fsync'ed); this wrapper models the device in front of it.
 *
 * - A write completes after a simulated latency, then it is durable (applied to the memory storage).
 * - A crash loses the write in flight — or, with some probability, it had reached the platter and is
 *   kept (the contract allows either, never part of a batch). Its promise never settles: the process
 *   that was waiting on it is gone.
 * - A write may fail with an I/O error (the batch is then durable or not, at random); the driver must
 *   stop the node (STORAGE_FAILED) and never reuse the storage.
 *
 * One `SimDisk` lives as long as the simulated machine; each node incarnation opens it anew (`open`).
 * The disk also keeps a compact view of the durable log (index → term, entry hash) that the checkers read.
 */
import type { Entry } from '../../src/consensus/core/types.js'
import { createMemoryStorage, type MemoryStorage } from '../../src/consensus/storage/memory.js'
import type { PersistBatch, PersistedState, RaftPersistence } from '../../src/consensus/storage/types.js'
import type { SimRng } from './rng.js'
import type { Scheduler } from './scheduler.js'

export interface DiskKnobs {
  readonly writeLatencyMinMs: number
  readonly writeLatencyMaxMs: number
  /** Probability that a write fails with an I/O error. */
  readonly writeErrorProbability: number
  /** Probability that the write in flight at a crash survives it. */
  readonly keepInFlightOnCrashProbability: number
}

export const healthyDisk: DiskKnobs = {
  writeLatencyMinMs: 0.5,
  writeLatencyMaxMs: 2,
  writeErrorProbability: 0,
  keepInFlightOnCrashProbability: 0.5,
}

/** What the checkers see of a durable log. */
export interface DurableLogView {
  /** Index and term of the durable snapshot (0, 0 when none). */
  readonly snapshotIndex: number
  readonly snapshotTerm: number
  /** Term of entry i is terms[i - snapshotIndex - 1]. */
  readonly terms: readonly number[]
  readonly hashes: readonly number[]
  readonly hardState: { readonly term: number; readonly vote: string; readonly commit: number }
}

export interface DurableWrite {
  readonly batch: PersistBatch
  /** The durable view after the write. */
  readonly after: DurableLogView
}

export interface SimDisk {
  /** Storage for a new incarnation; the previous incarnation must have crashed or stopped. */
  open(incarnation: number): RaftPersistence
  /** The machine crashed: the write in flight is lost or kept (at random), its promise never settles. */
  crash(): void
  setKnobs(knobs: DiskKnobs): void
  view(): DurableLogView
  readonly stats: { writes: number; errors: number; lostOnCrash: number; keptOnCrash: number }
}

export function createSimDisk(
  name: string,
  sched: Scheduler,
  rng: SimRng,
  initialKnobs: DiskKnobs,
  onDurable: (w: DurableWrite) => void,
  trace: (line: () => string) => void,
): SimDisk {
  let knobs = initialKnobs
  let durable: MemoryStorage = createMemoryStorage()
  let view = emptyView()
  let current:
    { incarnation: number; dead: boolean; inFlight: { batch: PersistBatch } | undefined } | undefined
  const stats = { writes: 0, errors: 0, lostOnCrash: 0, keptOnCrash: 0 }

  function makeDurable(batch: PersistBatch): void {
    // The memory storage applies the batch synchronously inside its async write (before any await).
    void durable.write(batch)
    view = applyToView(view, batch)
    onDurable({ batch, after: view })
  }

  return {
    open(incarnation) {
      if (current !== undefined && !current.dead) throw new Error(`${name}: disk opened twice`)
      // A fresh MemoryStorage over the durable contents: nothing of the old incarnation is shared.
      durable = createMemoryStorage(durable.contents())
      const me: { incarnation: number; dead: boolean; inFlight: { batch: PersistBatch } | undefined } = {
        incarnation,
        dead: false,
        inFlight: undefined,
      }
      current = me
      return {
        async load(): Promise<PersistedState> {
          if (me.dead) return new Promise<never>(() => {})
          return durable.contents()
        },
        write(batch: PersistBatch): Promise<void> {
          if (me.dead) return new Promise<never>(() => {})
          if (me.inFlight !== undefined) throw new Error(`${name}: concurrent writes (the driver must wait)`)
          const w = { batch }
          me.inFlight = w
          const latency =
            knobs.writeLatencyMinMs + rng.float() * (knobs.writeLatencyMaxMs - knobs.writeLatencyMinMs)
          const fails = rng.chance(knobs.writeErrorProbability)
          const appliedDespiteError = fails && rng.chance(0.5)
          return new Promise<void>((resolve, reject) => {
            sched.after(latency, `${name}:disk`, () => {
              if (me.dead || me.inFlight !== w) return // crashed meanwhile: crash() decided its fate
              me.inFlight = undefined
              stats.writes++
              if (fails) {
                stats.errors++
                if (appliedDespiteError) makeDurable(batch)
                trace(() => `${name} disk write error (batch ${appliedDespiteError ? 'durable' : 'lost'})`)
                reject(new Error(`${name}: simulated disk write error`))
                return
              }
              makeDurable(batch)
              trace(() => `${name} disk write done ${describeBatch(batch)}`)
              resolve()
            })
          })
        },
        async close() {
          me.dead = true
        },
        // The driver reads back what is durable: the snapshot it sends, entries out of its memory.
        openSnapshot(index, term) {
          if (me.dead) return new Promise<never>(() => {})
          return durable.openSnapshot!(index, term)
        },
        readEntries(lo, hi, maxBytes) {
          return durable.readEntries!(lo, hi, maxBytes)
        },
      }
    },
    crash() {
      if (current === undefined || current.dead) return
      current.dead = true
      const w = current.inFlight
      current.inFlight = undefined
      if (w !== undefined) {
        if (rng.chance(knobs.keepInFlightOnCrashProbability)) {
          stats.keptOnCrash++
          makeDurable(w.batch)
          trace(() => `${name} crash: in-flight write kept ${describeBatch(w.batch)}`)
        } else {
          stats.lostOnCrash++
          trace(() => `${name} crash: in-flight write lost ${describeBatch(w.batch)}`)
        }
      }
    },
    setKnobs(k) {
      knobs = k
    },
    view: () => view,
    stats,
  }
}

function emptyView(): DurableLogView {
  return {
    snapshotIndex: 0,
    snapshotTerm: 0,
    terms: [],
    hashes: [],
    hardState: { term: 0, vote: '', commit: 0 },
  }
}

/** Mirrors MemoryStorage's batch order: snapshot, compact, entries (truncating), hard state. */
function applyToView(v: DurableLogView, b: PersistBatch): DurableLogView {
  let snapshotIndex = v.snapshotIndex
  let snapshotTerm = v.snapshotTerm
  let terms = v.terms.slice()
  let hashes = v.hashes.slice()
  if (b.snapshot) {
    snapshotIndex = b.snapshot.metadata.index
    snapshotTerm = b.snapshot.metadata.term
    terms = []
    hashes = []
  }
  if (b.compact) {
    const idx = b.compact.metadata.index
    if (idx > snapshotIndex) {
      const drop = idx - snapshotIndex
      snapshotTerm = b.compact.metadata.term
      terms = terms.slice(drop)
      hashes = hashes.slice(drop)
      snapshotIndex = idx
    }
  }
  if (b.entries.length > 0) {
    const first = b.entries[0]!.index
    const keep = Math.max(0, first - snapshotIndex - 1)
    terms.length = Math.min(terms.length, keep)
    hashes.length = Math.min(hashes.length, keep)
    for (const e of b.entries) {
      if (e.index <= snapshotIndex) continue
      terms.push(e.term)
      hashes.push(entryHash(e))
    }
  }
  const hardState = b.hardState ? { ...b.hardState } : v.hardState
  return { snapshotIndex, snapshotTerm, terms, hashes, hardState }
}

/** FNV-1a over what identifies an entry's content (data, type, session, proposer). */
export function entryHash(
  e: Pick<Entry, 'data' | 'type' | 'clientId' | 'seq' | 'origin' | 'originSeq'>,
): number {
  let h = 0x811c9dc5
  const mix = (byte: number): void => {
    h ^= byte
    h = Math.imul(h, 0x01000193)
  }
  for (let i = 0; i < e.data.length; i++) mix(e.data[i]!)
  mix(0xff)
  mix(e.type)
  for (let i = 0; i < e.clientId.length; i++) mix(e.clientId.charCodeAt(i) & 0xff)
  mix(e.seq & 0xff)
  mix((e.seq >>> 8) & 0xff)
  for (let i = 0; i < e.origin.length; i++) mix(e.origin.charCodeAt(i) & 0xff)
  mix(e.originSeq & 0xff)
  mix((e.originSeq >>> 8) & 0xff)
  return h >>> 0
}

export function describeBatch(b: PersistBatch): string {
  const parts: string[] = []
  if (b.snapshot) parts.push(`snap@${b.snapshot.metadata.index}/${b.snapshot.metadata.term}`)
  if (b.compact) parts.push(`compact@${b.compact.metadata.index}`)
  if (b.entries.length > 0) {
    parts.push(
      `ents[${b.entries[0]!.index}..${b.entries[b.entries.length - 1]!.index}] t${b.entries[b.entries.length - 1]!.term}`,
    )
  }
  if (b.hardState) parts.push(`hs(t${b.hardState.term} v${b.hardState.vote || '-'} c${b.hardState.commit})`)
  return parts.join(' ')
}

/** Term of index i in a durable view, or undefined when absent (compacted below the snapshot counts as absent). */
export function viewTerm(v: DurableLogView, i: number): number | undefined {
  if (i === v.snapshotIndex) return v.snapshotTerm
  if (i <= v.snapshotIndex) return undefined
  return v.terms[i - v.snapshotIndex - 1]
}

export function viewLastIndex(v: DurableLogView): number {
  return v.snapshotIndex + v.terms.length
}
