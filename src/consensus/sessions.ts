import { crc32 } from 'node:zlib'
import { hopsd } from '../proto/raft.js'
import { EMPTY_BYTES } from './core/types.js'
import { ConsensusError } from './errors.js'
import type { ResultCodec } from './raft-group-types.js'

/**
 * Client sessions for exactly-once commands (Raft thesis §6.3). Updated only at apply time, in log
 * order, so every replica holds the same table; it travels inside snapshots (SnapshotEnvelope).
 *
 * Per client: results of the last `resultsMax` seqs applied, and `floorSeq` — every seq ≤ floor counts
 * as applied (its result was evicted). At most `sessionsMax` clients: the one whose last command is
 * oldest in the log is evicted first (deterministic: a function of the log alone).
 */
export type SessionCheck = { kind: 'new' } | { kind: 'duplicate'; result: unknown } | { kind: 'expired' }

interface SessionState {
  floorSeq: number
  lastIndex: number
  results: Map<number, unknown>
}

export class SessionTable {
  /** Map order = eviction order: a client is re-inserted whenever it applies a command. */
  private sessions = new Map<string, SessionState>()

  constructor(
    private readonly sessionsMax: number,
    private readonly resultsMax: number,
  ) {}

  get size(): number {
    return this.sessions.size
  }

  check(clientId: string, seq: number): SessionCheck {
    const s = this.sessions.get(clientId)
    if (!s) return { kind: 'new' }
    if (s.results.has(seq)) return { kind: 'duplicate', result: s.results.get(seq) }
    if (seq <= s.floorSeq) return { kind: 'expired' }
    return { kind: 'new' }
  }

  record(clientId: string, seq: number, index: number, result: unknown): void {
    let s = this.sessions.get(clientId)
    if (s) this.sessions.delete(clientId)
    else s = { floorSeq: 0, lastIndex: 0, results: new Map() }
    s.lastIndex = index
    s.results.set(seq, result)
    if (s.results.size > this.resultsMax) {
      let min = Infinity
      for (const k of s.results.keys()) if (k < min) min = k
      s.results.delete(min)
      s.floorSeq = Math.max(s.floorSeq, min)
    }
    this.sessions.set(clientId, s)
    while (this.sessions.size > this.sessionsMax) {
      const oldest = this.sessions.keys().next().value as string
      this.sessions.delete(oldest)
    }
  }

  toProto(codec: ResultCodec): hopsd.raft.Session.$Properties[] {
    const out: hopsd.raft.Session.$Properties[] = []
    for (const [clientId, s] of this.sessions) {
      out.push({
        clientId,
        floorSeq: s.floorSeq,
        lastIndex: s.lastIndex,
        results: [...s.results].map(([seq, r]) => ({ seq, result: codec.encode(r) })),
      })
    }
    return out
  }

  static fromProto(
    sessions: readonly hopsd.raft.Session.$Properties[],
    codec: ResultCodec,
    sessionsMax: number,
    resultsMax: number,
  ): SessionTable {
    const t = new SessionTable(sessionsMax, resultsMax)
    for (const s of sessions) {
      const results = new Map<number, unknown>()
      for (const r of s.results ?? []) results.set(r.seq ?? 0, codec.decode(r.result ?? EMPTY_BYTES))
      t.sessions.set(s.clientId ?? '', { floorSeq: s.floorSeq ?? 0, lastIndex: s.lastIndex ?? 0, results })
    }
    return t
  }
}

export const jsonResultCodec: ResultCodec = {
  encode(r) {
    return r === undefined ? EMPTY_BYTES : new TextEncoder().encode(JSON.stringify(r))
  },
  decode(b) {
    return b.length === 0 ? undefined : JSON.parse(new TextDecoder().decode(b))
  },
}

export function wrapSnapshot(state: Uint8Array, sessions: SessionTable, codec: ResultCodec): Uint8Array {
  return wrapCapturedSnapshot(state, sessions.toProto(codec))
}

/** The envelope around a state captured earlier, with the session table as it was then. */
export function wrapCapturedSnapshot(
  state: Uint8Array,
  sessions: hopsd.raft.Session.$Properties[],
): Uint8Array {
  return hopsd.raft.SnapshotEnvelope.encode({
    state,
    sessions,
    checksum: envelopeChecksum(state, sessions),
  }).finish()
}

/** CRC-32 of the state, continued over each session's encoding: 4 bytes big-endian. */
function envelopeChecksum(
  state: Uint8Array,
  sessions: readonly hopsd.raft.Session.$Properties[],
): Uint8Array {
  let crc = crc32(state)
  for (const s of sessions) crc = crc32(hopsd.raft.Session.encode(s).finish(), crc)
  const out = new Uint8Array(4)
  new DataView(out.buffer).setUint32(0, crc >>> 0)
  return out
}

export function unwrapSnapshot(data: Uint8Array): {
  state: Uint8Array
  sessions: hopsd.raft.Session.$Properties[]
} {
  let env: hopsd.raft.SnapshotEnvelope
  try {
    env = hopsd.raft.SnapshotEnvelope.decode(data)
  } catch (err) {
    throw new ConsensusError('SNAPSHOT_CORRUPT', `undecodable: ${(err as Error).message}`, { cause: err })
  }
  const state = env.state ?? EMPTY_BYTES
  const stored = env.checksum ?? EMPTY_BYTES
  if (stored.length > 0) {
    const computed = envelopeChecksum(state, env.sessions)
    if (!Buffer.from(stored).equals(Buffer.from(computed)))
      throw new ConsensusError(
        'SNAPSHOT_CORRUPT',
        `checksum ${Buffer.from(stored).toString('hex')} recorded, ${Buffer.from(computed).toString('hex')} computed over ${state.length} bytes`,
      )
  }
  return { state, sessions: env.sessions }
}
