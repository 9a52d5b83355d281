/**
 * The simulator's replicated state machine: a small key-value store of registers (src/consensus's
 * StateMachine contract). Commands are bytes (JSON text: tiny, and readable in traces); results are
 * deterministic. Values are numbers (the workload writes unique values) or null (never written).
 */
import type {
  AppliedEntry,
  DurableState,
  SessionChange,
  StateMachine,
} from '../../src/consensus/state-machine.js'

export type KvValue = number | null

export type KvCommand =
  /** `id` makes every read command unique (the exactly-once check compares command bytes). */
  | { readonly op: 'read'; readonly key: string; readonly id?: number | string }
  | { readonly op: 'write'; readonly key: string; readonly value: number }
  | { readonly op: 'cas'; readonly key: string; readonly expected: KvValue; readonly value: number }

export type KvResult =
  | { readonly op: 'read'; readonly value: KvValue }
  | { readonly op: 'write' }
  | { readonly op: 'cas'; readonly ok: boolean; readonly value: KvValue }
  /** An entry that is not a KV command (empty no-op entries, conf changes seen as data). */
  | { readonly op: 'noop' }

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeCommand(cmd: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd))
}

export function decodeCommand(data: Uint8Array): KvCommand | undefined {
  if (data.length === 0 || data[0] !== 0x7b /* '{' */) return undefined
  const parsed = JSON.parse(decoder.decode(data)) as KvCommand
  return parsed
}

export interface KvStateMachine extends StateMachine<KvResult> {
  /** A local (possibly stale) read; linearizable after readBarrier(). */
  get(key: string): KvValue
  /** Index of the last applied entry this instance saw (0 before any). */
  readonly appliedIndex: number
}

export interface KvObserver {
  /** Called for every applied entry, in order (the checkers watch state-machine safety through it). */
  onApply(entry: AppliedEntry): void
  onRestore(data: Uint8Array): void
}

export function createKvStateMachine(observer?: KvObserver): KvStateMachine {
  let data = new Map<string, number>()
  let appliedIndex = 0

  function applyOne(entry: AppliedEntry): KvResult {
    if (entry.index <= appliedIndex) {
      throw new Error(`kv: apply of index ${entry.index} after ${appliedIndex} (out of order or twice)`)
    }
    appliedIndex = entry.index
    observer?.onApply(entry)
    const cmd = decodeCommand(entry.data)
    if (cmd === undefined) return { op: 'noop' }
    const cur = data.get(cmd.key) ?? null
    switch (cmd.op) {
      case 'read':
        return { op: 'read', value: cur }
      case 'write':
        data.set(cmd.key, cmd.value)
        return { op: 'write' }
      case 'cas':
        if (cur !== cmd.expected) return { op: 'cas', ok: false, value: cur }
        data.set(cmd.key, cmd.value)
        return { op: 'cas', ok: true, value: cmd.value }
    }
  }

  return {
    apply(entries) {
      return entries.map(applyOne)
    },
    snapshot() {
      const keys = [...data.keys()].sort()
      return encoder.encode(JSON.stringify({ appliedIndex, kv: keys.map((k) => [k, data.get(k)]) }))
    },
    restore(bytes) {
      observer?.onRestore(bytes)
      if (bytes.length === 0) {
        data = new Map()
        // A fresh state machine (bootstrap snapshot); the index comes with the first applied entry.
        appliedIndex = 0
        return
      }
      const parsed = JSON.parse(decoder.decode(bytes)) as { appliedIndex: number; kv: [string, number][] }
      data = new Map(parsed.kv)
      appliedIndex = parsed.appliedIndex
    },
    get(key) {
      return data.get(key) ?? null
    },
    get appliedIndex() {
      return appliedIndex
    },
  }
}

/** One write of the durable KV: the rows changed since the last (or a whole new map), its index. */
interface KvBatch {
  readonly index: number
  readonly smApplied: number
  /** A restore's whole map (replaces every row), else undefined. */
  readonly replace: Map<string, number> | undefined
  readonly puts: ReadonlyMap<string, number>
  readonly sessions: readonly SessionChange[]
}

interface KvImage {
  index: number
  smApplied: number
  data: Map<string, number>
  sessions: Map<string, Uint8Array>
}

/**
 * The disk of a durable KV (src/meta's LevelDB store, modelled): writes are atomic and ordered; those
 * not synced may be lost in a crash, a suffix of them (LevelDB's log keeps a prefix of what it was
 * given). Survives the node's incarnations, like its Raft disk.
 */
export class SimKvStore {
  private image: KvImage = { index: 0, smApplied: 0, data: new Map(), sessions: new Map() }
  private unsynced: KvBatch[] = []
  writes = 0
  lostWrites = 0

  write(b: KvBatch): void {
    this.unsynced.push(b)
    this.writes++
  }

  sync(): void {
    for (const b of this.unsynced.splice(0)) fold(this.image, b)
  }

  /** The machine dies: `keep(n)` says how many of the n unsynced writes had reached the disk. */
  crash(keep: (n: number) => number): void {
    const n = this.unsynced.length
    const k = n === 0 ? 0 : keep(n)
    for (const b of this.unsynced.slice(0, k)) fold(this.image, b)
    this.lostWrites += n - k
    this.unsynced = []
  }

  /** What a process opening the store reads: every write it was given (a restart without a crash). */
  read(): KvImage {
    const view: KvImage = {
      index: this.image.index,
      smApplied: this.image.smApplied,
      data: new Map(this.image.data),
      sessions: new Map(this.image.sessions),
    }
    for (const b of this.unsynced) fold(view, b)
    return view
  }
}

function fold(img: KvImage, b: KvBatch): void {
  if (b.replace !== undefined) {
    img.data = new Map(b.replace)
    img.sessions = new Map()
  }
  for (const [k, v] of b.puts) img.data.set(k, v)
  for (const s of b.sessions) {
    if (s.session === undefined) img.sessions.delete(s.clientId)
    else img.sessions.set(s.clientId, s.session)
  }
  img.index = b.index
  img.smApplied = b.smApplied
}

/**
 * The KV with a durable state (src/consensus's DurableState, as src/meta implements it): the rows an
 * apply changes reach the store only with the driver's persist, with the sessions and the index; a
 * restore's rows replace the store's with the persist that follows it.
 */
export function createDurableKvStateMachine(store: SimKvStore, observer?: KvObserver): KvStateMachine {
  const kv = createKvStateMachine(observer)
  let changed = new Map<string, number>()
  let replaced = false
  let opened = false
  const apply = (entries: readonly AppliedEntry[]): KvResult[] => {
    const results = kv.apply(entries) as KvResult[]
    for (const e of entries) {
      const cmd = decodeCommand(e.data)
      if (cmd !== undefined && cmd.op !== 'read') changed.set(cmd.key, kv.get(cmd.key) as number)
    }
    return results
  }
  const durable: DurableState = {
    async open() {
      if (opened) throw new Error('kv: store opened twice')
      opened = true
      const img = store.read()
      if (img.index === 0) return { appliedIndex: 0, sessions: [] }
      kv.restore(encodeKvSnapshot(img.smApplied, img.data))
      return { appliedIndex: img.index, sessions: [...img.sessions.values()] }
    },
    persist(index, sessions) {
      store.write({
        index,
        smApplied: kv.appliedIndex,
        replace: replaced ? kvMap(kv) : undefined,
        puts: changed,
        sessions,
      })
      changed = new Map()
      replaced = false
    },
    async sync() {
      store.sync()
    },
  }
  return {
    apply,
    snapshot: () => kv.snapshot(),
    restore(bytes) {
      kv.restore(bytes)
      changed = new Map()
      replaced = true
    },
    get: (key) => kv.get(key),
    get appliedIndex() {
      return kv.appliedIndex
    },
    durable,
  }
}

function encodeKvSnapshot(appliedIndex: number, data: ReadonlyMap<string, number>): Uint8Array {
  const keys = [...data.keys()].sort()
  return encoder.encode(JSON.stringify({ appliedIndex, kv: keys.map((k) => [k, data.get(k)]) }))
}

function kvMap(kv: KvStateMachine): Map<string, number> {
  const parsed = JSON.parse(decoder.decode(kv.snapshot() as Uint8Array)) as { kv: [string, number][] }
  return new Map(parsed.kv)
}
