/**
 * The simulator's replicated state machine: a small key-value store of registers (src/consensus's
 * StateMachine contract). Commands are bytes (JSON text: tiny, and readable in traces); results are
 * deterministic. Values are numbers (the workload writes unique values) or null (never written).
 */
import type { AppliedEntry, StateMachine } from '../../src/consensus/state-machine.js'

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
