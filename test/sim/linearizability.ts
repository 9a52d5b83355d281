/**
 * Linearizability checker for a key-value store whose keys are independent registers with
 * read / write / compare-and-set — Wing & Gong's search as refined by Lowe and by Porcupine
 * (github.com/anishathalye/porcupine):
 *
 * - P-compositionality: a history is linearizable iff its restriction to every key is, so the
 *   history is split per key and each key is searched on its own (small searches instead of one
 *   exponential one).
 * - The search walks a doubly linked list of call/return entries sorted by time. At a call it tries
 *   to linearize that operation now (the model's step must accept it); the op's call and return are
 *   lifted out of the list and the search restarts from the head. Meeting a return entry means the
 *   operation it closes was not linearized before its response: backtrack.
 * - Memoization (Lowe): a configuration is (set of linearized ops, model state); a configuration
 *   already explored is never explored again. Sets are bitsets, found through a Zobrist hash.
 * - Work is bounded: after `stepBudget` search steps per key the answer is `unknown`, never a hang.
 *
 * Operation outcomes (Jepsen's convention):
 * - `ok`: took effect exactly once, between its invoke and its ok.
 * - `fail`: definitely did not take effect — dropped before the search. A cas whose comparison did not
 *   match is reported as `fail` (it changed nothing).
 * - `info` (or an invoke with no completion): indeterminate — it may have taken effect at any point
 *   after its invoke, or never. Modelled as an operation that returns at +infinity whose step always
 *   succeeds (a write sets the value; a cas sets it only if the comparison matches). "Never" is
 *   covered because an op returning at +infinity can always be linearized after everything else,
 *   where it is unobservable. Indeterminate reads constrain nothing and are dropped.
 *
 * Time: events are ordered by `time`; equal times are ordered by their position in the history (the
 * recorder appends events in the order they happened), so a response and an invoke at the same
 * timestamp are sequential when the response was recorded first.
 */

export type Value = number | string | null

export type OpType = 'invoke' | 'ok' | 'fail' | 'info'
export type OpF = 'read' | 'write' | 'cas'

/** One line of a history, exactly the JSON-lines format written by `--history-out`. */
export interface HistoryEvent {
  readonly process: number
  readonly type: OpType
  readonly f: OpF
  readonly key: string
  /** read: the value read (on ok; null on invoke); write: the value; cas: [expected, new]. */
  readonly value: Value | readonly [Value, Value]
  readonly time: number
}

/** A completed (or indeterminate) operation, as the search sees it. */
export interface Operation {
  readonly id: number
  readonly process: number
  readonly f: OpF
  readonly key: string
  readonly value: Value | readonly [Value, Value]
  /** Position of the invoke in the sorted order of all call/return entries. */
  readonly callTime: number
  /** Sorted position of the completion, or +Infinity when indeterminate. */
  readonly returnTime: number
  readonly indeterminate: boolean
}

export type KeyVerdict =
  | { readonly key: string; readonly result: 'ok'; readonly steps: number }
  | { readonly key: string; readonly result: 'unknown'; readonly steps: number }
  | {
      readonly key: string
      readonly result: 'violation'
      readonly steps: number
      /** The longest prefix of operations the search managed to linearize. */
      readonly longestLinearization: readonly Operation[]
      /** Operations that could not be placed after that prefix (the ones whose returns blocked). */
      readonly stuckAt: Operation | undefined
      readonly operations: readonly Operation[]
    }

export interface CheckResult {
  /** `violation` if any key is not linearizable; else `unknown` if any key ran out of budget; else `ok`. */
  readonly result: 'ok' | 'violation' | 'unknown'
  readonly keys: readonly KeyVerdict[]
  /** First non-linearizable key, if any. */
  readonly violation: Extract<KeyVerdict, { result: 'violation' }> | undefined
}

export interface CheckOptions {
  /** Search steps allowed per key before giving up with `unknown`. */
  readonly stepBudgetPerKey?: number
  /** Initial value of every key. */
  readonly initialValue?: Value
}

const stepBudgetPerKeyDefault = 2_000_000

/** Thrown for a malformed history (a bug in the recorder, not a linearizability violation). */
export class MalformedHistoryError extends Error {
  readonly code = 'MALFORMED_HISTORY'
  constructor(message: string) {
    super(message)
    this.name = 'MalformedHistoryError'
  }
}

/** Pairs invokes with completions; drops failed ops and indeterminate reads. */
export function operationsFromHistory(history: readonly HistoryEvent[]): Operation[] {
  // Sort positions: by time, ties by history position (stable sort).
  const order = history.map((_, i) => i)
  order.sort((a, b) => history[a]!.time - history[b]!.time || a - b)
  const rank = new Array<number>(history.length)
  order.forEach((historyIndex, sortedIndex) => {
    rank[historyIndex] = sortedIndex
  })

  const open = new Map<number, number>() // process -> history index of its open invoke
  const completion = new Map<number, number>() // invoke index -> completion index
  history.forEach((event, i) => {
    if (event.type === 'invoke') {
      if (open.has(event.process)) {
        throw new MalformedHistoryError(
          `process ${event.process} invoked at event ${i} with an op still open`,
        )
      }
      open.set(event.process, i)
      return
    }
    const invokeIndex = open.get(event.process)
    if (invokeIndex === undefined) {
      throw new MalformedHistoryError(`process ${event.process} completed at event ${i} with no open op`)
    }
    const invoke = history[invokeIndex]!
    if (invoke.f !== event.f || invoke.key !== event.key) {
      throw new MalformedHistoryError(
        `event ${i} completes a different op than process ${event.process} invoked`,
      )
    }
    if (event.time < invoke.time) {
      throw new MalformedHistoryError(`event ${i} completes before its invoke`)
    }
    open.delete(event.process)
    completion.set(invokeIndex, i)
  })

  const ops: Operation[] = []
  history.forEach((event, i) => {
    if (event.type !== 'invoke') return
    const completionIndex = completion.get(i)
    const done = completionIndex === undefined ? undefined : history[completionIndex]!
    if (done?.type === 'fail') return
    const indeterminate = done === undefined || done.type === 'info'
    if (indeterminate && event.f === 'read') return
    if (event.f === 'cas' && !isPair(event.value)) {
      throw new MalformedHistoryError(`cas at event ${i} needs value [expected, new]`)
    }
    ops.push({
      id: ops.length,
      process: event.process,
      f: event.f,
      key: event.key,
      // A read's value is what the ok returned; writes and cas carry theirs on the invoke.
      value: event.f === 'read' ? done!.value : event.value,
      callTime: rank[i]!,
      returnTime: indeterminate ? Number.POSITIVE_INFINITY : rank[completionIndex!]!,
      indeterminate,
    })
  })
  return ops
}

function isPair(v: unknown): v is readonly [Value, Value] {
  return Array.isArray(v) && v.length === 2
}

/** The register model: returns the next state, or `undefined` when the op cannot happen in `state`. */
function step(state: Value, op: Operation): Value | undefined {
  switch (op.f) {
    case 'read':
      return op.value === state ? state : undefined
    case 'write':
      return op.value as Value
    case 'cas': {
      const [expected, next] = op.value as readonly [Value, Value]
      if (expected === state) return next
      // An indeterminate cas whose comparison fails simply did nothing.
      return op.indeterminate ? state : undefined
    }
  }
}

interface Entry {
  readonly op: Operation
  readonly isCall: boolean
  readonly time: number
  match: Entry | undefined // call -> its return
  prev: Entry | undefined
  next: Entry | undefined
}

/** Checks a whole history, key by key. */
export function checkHistory(history: readonly HistoryEvent[], options: CheckOptions = {}): CheckResult {
  const ops = operationsFromHistory(history)
  const byKey = new Map<string, Operation[]>()
  for (const op of ops) {
    let list = byKey.get(op.key)
    if (list === undefined) byKey.set(op.key, (list = []))
    list.push(op)
  }
  const keys = [...byKey.keys()].sort()
  const verdicts = keys.map((key) => checkKey(key, byKey.get(key)!, options))
  const violation = verdicts.find(
    (v): v is Extract<KeyVerdict, { result: 'violation' }> => v.result === 'violation',
  )
  const result =
    violation !== undefined ? 'violation' : verdicts.some((v) => v.result === 'unknown') ? 'unknown' : 'ok'
  return { result, keys: verdicts, violation }
}

/** The search for one key (operations all on that key). */
export function checkKey(key: string, ops: readonly Operation[], options: CheckOptions = {}): KeyVerdict {
  const stepBudget = options.stepBudgetPerKey ?? stepBudgetPerKeyDefault
  const initial = options.initialValue ?? null
  const n = ops.length
  if (n === 0) return { key, result: 'ok', steps: 0 }

  // Local ids 0..n-1 for the bitset.
  const local = ops.map((op, i) => ({ ...op, id: i }))
  const head = buildList(local)

  const words = Math.ceil(n / 32)
  const bits = new Uint32Array(words)
  // Zobrist keys: two independent 32-bit hashes per op, from a fixed-seed generator (deterministic).
  const zobrist = zobristKeys(n)
  let hashA = 0
  let hashB = 0
  const cache = new Map<string, Uint32Array[]>()

  const calls: { entry: Entry; state: Value; afterInfo: boolean }[] = []
  let state: Value = initial
  // True when the last op linearized was indeterminate (see `admissible`).
  let afterInfo = false
  let linearizedCount = 0
  // Once every determinate op is linearized the rest (indeterminate) can go last, in any order: done.
  let determinateLeft = local.filter((op) => !op.indeterminate).length
  let longest: Operation[] = []
  let stuckAt: Operation | undefined
  let steps = 0
  let entry = head.next

  while (head.next !== undefined && determinateLeft > 0) {
    steps++
    if (steps > stepBudget) return { key, result: 'unknown', steps }
    if (entry === undefined) {
      // Unreachable: the list always ends with the return entries of the ops left. Backtrack anyway.
      const top = calls.pop()
      if (top === undefined) break
      entry = undoCall(top)
      continue
    }
    if (entry.isCall) {
      const next = admissible(entry.op, state, afterInfo) ? step(state, entry.op) : undefined
      if (next !== undefined) {
        const id = entry.op.id
        bits[id >>> 5]! |= 1 << (id & 31)
        const ha = hashA ^ zobrist[2 * id]!
        const hb = hashB ^ zobrist[2 * id + 1]!
        const cacheKey = `${ha}:${hb}:${entry.op.indeterminate ? 'i' : 'd'}${stateKey(next)}`
        if (cacheInsert(cache, cacheKey, bits)) {
          calls.push({ entry, state, afterInfo })
          state = next
          afterInfo = entry.op.indeterminate
          hashA = ha
          hashB = hb
          linearizedCount++
          if (!entry.op.indeterminate) determinateLeft--
          if (linearizedCount > longest.length) {
            longest = calls.map((c) => ops[c.entry.op.id]!)
            stuckAt = undefined
          }
          lift(entry)
          entry = head.next
        } else {
          bits[id >>> 5]! &= ~(1 << (id & 31))
          entry = entry.next
        }
      } else {
        entry = entry.next
      }
    } else {
      // A return whose call is not linearized yet: this prefix is a dead end.
      if (linearizedCount === longest.length && stuckAt === undefined) stuckAt = ops[entry.op.id]
      const top = calls.pop()
      if (top === undefined) {
        return {
          key,
          result: 'violation',
          steps,
          longestLinearization: longest,
          stuckAt,
          operations: ops,
        }
      }
      entry = undoCall(top)
    }
  }
  return { key, result: 'ok', steps }

  function undoCall(top: { entry: Entry; state: Value; afterInfo: boolean }): Entry | undefined {
    const id = top.entry.op.id
    bits[id >>> 5]! &= ~(1 << (id & 31))
    hashA ^= zobrist[2 * id]!
    hashB ^= zobrist[2 * id + 1]!
    linearizedCount--
    if (!top.entry.op.indeterminate) determinateLeft++
    state = top.state
    afterInfo = top.afterInfo
    unlift(top.entry)
    return top.entry.next
  }
}

/**
 * Pruning for indeterminate ops, sound because such an op may always be dropped ("never happened")
 * and never has to precede anything: from any valid linearization we can drop (1) an indeterminate
 * op that does not change the state, (2) one followed by a determinate write or by an indeterminate
 * write (its effect is overwritten), (3) a trailing run of them. What is left has every indeterminate
 * op in a run that starts with at most one write, continues with cas ops that change the state, and
 * ends at a determinate read or cas. So the search only admits:
 * - an indeterminate op if it changes the state, and if it is a write, only at the start of a run;
 * - after an indeterminate op, no determinate write.
 * `afterInfo` is part of the memoized configuration (it restricts what may follow).
 */
function admissible(op: Operation, state: Value, afterInfo: boolean): boolean {
  if (op.indeterminate) {
    if (op.f === 'write') return !afterInfo && op.value !== state
    const [expected, next] = op.value as readonly [Value, Value]
    return expected === state && next !== state
  }
  return !(afterInfo && op.f === 'write')
}

function stateKey(v: Value): string {
  return v === null ? 'n' : typeof v === 'number' ? `#${v}` : `s${v}`
}

/** Adds (hash, bitset) to the cache; false if that exact configuration is already there. */
function cacheInsert(cache: Map<string, Uint32Array[]>, key: string, bits: Uint32Array): boolean {
  const bucket = cache.get(key)
  if (bucket === undefined) {
    cache.set(key, [bits.slice()])
    return true
  }
  for (const seen of bucket) {
    if (equalBits(seen, bits)) return false
  }
  bucket.push(bits.slice())
  return true
}

function equalBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

function zobristKeys(n: number): Uint32Array {
  const keys = new Uint32Array(2 * n)
  let s = 0x9e3779b9
  for (let i = 0; i < keys.length; i++) {
    // xorshift32 with a fixed seed: deterministic, independent of the simulation's Rng.
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    keys[i] = s
  }
  return keys
}

/** Builds the sentinel-headed list of call and return entries sorted by time (calls first on ties). */
function buildList(ops: readonly Operation[]): Entry {
  const entries: Entry[] = []
  for (const op of ops) {
    const call: Entry = {
      op,
      isCall: true,
      time: op.callTime,
      match: undefined,
      prev: undefined,
      next: undefined,
    }
    const ret: Entry = {
      op,
      isCall: false,
      time: op.returnTime,
      match: undefined,
      prev: undefined,
      next: undefined,
    }
    call.match = ret
    entries.push(call, ret)
  }
  entries.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op.id - b.op.id : a.isCall ? -1 : 1))
  const head: Entry = {
    op: undefined as unknown as Operation,
    isCall: false,
    time: Number.NEGATIVE_INFINITY,
    match: undefined,
    prev: undefined,
    next: undefined,
  }
  let prev = head
  for (const e of entries) {
    prev.next = e
    e.prev = prev
    prev = e
  }
  return head
}

/** Removes a call entry and its return from the list (they stay linked to their neighbours for unlift). */
function lift(call: Entry): void {
  call.prev!.next = call.next
  if (call.next !== undefined) call.next.prev = call.prev
  const ret = call.match!
  ret.prev!.next = ret.next
  if (ret.next !== undefined) ret.next.prev = ret.prev
}

/** Reinserts what `lift` removed, in reverse order. */
function unlift(call: Entry): void {
  const ret = call.match!
  ret.prev!.next = ret
  if (ret.next !== undefined) ret.next.prev = ret
  call.prev!.next = call
  if (call.next !== undefined) call.next.prev = call
}

/** A short human-readable rendering of a violation, for the simulator's report. */
export function describeViolation(v: Extract<KeyVerdict, { result: 'violation' }>): string {
  const fmt = (op: Operation): string =>
    `p${op.process} ${op.f}(${JSON.stringify(op.value)})${op.indeterminate ? '?' : ''} [${op.callTime}, ${
      op.returnTime === Number.POSITIVE_INFINITY ? '∞' : op.returnTime
    }]`
  const lines = [
    `key ${JSON.stringify(v.key)}: not linearizable (${v.operations.length} ops, ${v.steps} search steps)`,
    `  longest linearizable prefix (${v.longestLinearization.length} ops): ${v.longestLinearization.map(fmt).join(' -> ') || '(none)'}`,
  ]
  if (v.stuckAt !== undefined) lines.push(`  then no order fits before the response of: ${fmt(v.stuckAt)}`)
  lines.push(`  operations:`)
  for (const op of v.operations) lines.push(`    ${fmt(op)}`)
  return lines.join('\n')
}
