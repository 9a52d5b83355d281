import { crc32 } from 'node:zlib'
import { hopsd } from '../proto/raft.js'
import { EMPTY_BYTES } from './core/types.js'
import { ConsensusError } from './errors.js'
import type { ResultCodec } from './raft-group-types.js'
import type { SessionChange } from './state-machine.js'
import type { SnapshotReader } from './storage/types.js'
import { ProtoStreamReader, WIRE_LEN, fieldHeader, lenField } from '../lib/index.js'

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
  /** Clients whose session changed (or went) since the last takeChanges: a durable state writes them. */
  private changed = new Set<string>()

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
    this.changed.add(clientId)
    while (this.sessions.size > this.sessionsMax) {
      const oldest = this.sessions.keys().next().value as string
      this.sessions.delete(oldest)
      this.changed.add(oldest)
    }
  }

  /** The sessions changed since the last call, each encoded whole (absent: removed), and forgets them. */
  takeChanges(codec: ResultCodec): SessionChange[] {
    const out: SessionChange[] = []
    for (const clientId of this.changed) {
      const s = this.sessions.get(clientId)
      out.push(
        s === undefined
          ? { clientId }
          : { clientId, session: hopsd.raft.Session.encode(sessionProto(clientId, s, codec)).finish() },
      )
    }
    this.changed.clear()
    return out
  }

  toProto(codec: ResultCodec): hopsd.raft.Session.$Properties[] {
    const out: hopsd.raft.Session.$Properties[] = []
    for (const [clientId, s] of this.sessions) out.push(sessionProto(clientId, s, codec))
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
      // Restored from a snapshot: a durable state writes the whole table with the restored rows.
      t.changed.add(s.clientId ?? '')
    }
    return t
  }

  /**
   * The table a durable state machine kept (each session encoded on its own, in any order): eviction
   * order is the order of each client's last applied command, as on a replica that never restarted.
   */
  static fromStored(
    stored: readonly Uint8Array[],
    codec: ResultCodec,
    sessionsMax: number,
    resultsMax: number,
  ): SessionTable {
    const sessions = stored.map((b) => hopsd.raft.Session.decode(b))
    sessions.sort((a, b) => Number(a.lastIndex) - Number(b.lastIndex))
    const t = SessionTable.fromProto(sessions, codec, sessionsMax, resultsMax)
    t.changed.clear()
    return t
  }
}

function sessionProto(clientId: string, s: SessionState, codec: ResultCodec): hopsd.raft.Session.$Properties {
  return {
    clientId,
    floorSeq: s.floorSeq,
    lastIndex: s.lastIndex,
    results: [...s.results].map(([seq, r]) => ({ seq, result: codec.encode(r) })),
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
  return crcBytes(crc)
}

/** A CRC-32 as the envelope records it: 4 bytes, big-endian. */
function crcBytes(crc: number): Uint8Array {
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
  let state = env.state ?? EMPTY_BYTES
  if (state.length === 0 && env.stateChunks.length > 0) state = Buffer.concat(env.stateChunks)
  const stored = env.checksum ?? EMPTY_BYTES
  if (stored.length > 0) {
    const computed = envelopeChecksum(state, env.sessions)
    if (!Buffer.from(stored).equals(Buffer.from(computed))) throw corrupt(stored, computed, state.length)
  }
  return { state, sessions: env.sessions }
}

function corrupt(stored: Uint8Array, computed: Uint8Array, stateBytes: number): ConsensusError {
  return new ConsensusError(
    'SNAPSHOT_CORRUPT',
    `checksum ${Buffer.from(stored).toString('hex')} recorded, ${Buffer.from(computed).toString('hex')} computed over ${stateBytes} bytes`,
  )
}

/**
 * The envelope around a state encoded in pieces (a snapshot written to its file as it is encoded):
 * each piece a `stateChunks` entry, then the sessions, then the checksum. Never holds the state whole.
 */
export async function* wrapSnapshotPieces(
  state: AsyncIterable<Uint8Array>,
  sessions: hopsd.raft.Session.$Properties[],
): AsyncIterable<Uint8Array> {
  let crc = 0
  for await (const piece of state) {
    if (piece.length === 0) continue
    crc = crc32(piece, crc)
    yield fieldHeader(4, WIRE_LEN, piece.length)
    yield piece
  }
  for (const s of sessions) {
    const bytes = hopsd.raft.Session.encode(s).finish()
    crc = crc32(bytes, crc)
    yield lenField(2, bytes)
  }
  yield lenField(3, crcBytes(crc))
}

/** Bytes of a stored snapshot read at a time, and the largest state piece handed to a restore. */
const STORED_READ_BYTES = 4 << 20

/** A stored snapshot's bytes in pieces. */
async function* readerPieces(reader: SnapshotReader): AsyncIterable<Uint8Array> {
  for (let off = 0; off < reader.size; off += STORED_READ_BYTES)
    yield await reader.read(off, Math.min(STORED_READ_BYTES, reader.size - off))
}

/**
 * Checks a stored snapshot's checksum reading it in pieces (never whole; either layout of the state)
 * and returns its sessions: SNAPSHOT_CORRUPT when it fails, before anything is restored from it.
 */
export async function verifyStoredSnapshot(reader: SnapshotReader): Promise<hopsd.raft.Session[]> {
  const r = new ProtoStreamReader(readerPieces(reader))
  const sessions: hopsd.raft.Session[] = []
  let stored: Uint8Array = EMPTY_BYTES
  let crc = 0
  let stateBytes = 0
  try {
    for (let f = await r.nextField(); f !== undefined; f = await r.nextField()) {
      if ((f.field === 1 || f.field === 4) && f.wireType === WIRE_LEN) {
        for await (const piece of r.pieces(await r.varint(), STORED_READ_BYTES)) {
          crc = crc32(piece, crc)
          stateBytes += piece.length
        }
      } else if (f.field === 2 && f.wireType === WIRE_LEN) {
        const bytes = await r.bytes(await r.varint())
        crc = crc32(bytes, crc)
        sessions.push(hopsd.raft.Session.decode(bytes))
      } else if (f.field === 3 && f.wireType === WIRE_LEN) {
        stored = Uint8Array.from(await r.bytes(await r.varint()))
      } else await r.skip(f.wireType)
    }
  } catch (err) {
    throw new ConsensusError('SNAPSHOT_CORRUPT', `undecodable: ${(err as Error).message}`, { cause: err })
  }
  const computed = crcBytes(crc)
  if (stored.length > 0 && !Buffer.from(stored).equals(Buffer.from(computed)))
    throw corrupt(stored, computed, stateBytes)
  return sessions
}

/** The state of a stored snapshot (checked first with verifyStoredSnapshot) in pieces, in order. */
export async function* storedStatePieces(reader: SnapshotReader): AsyncIterable<Uint8Array> {
  const r = new ProtoStreamReader(readerPieces(reader))
  for (let f = await r.nextField(); f !== undefined; f = await r.nextField()) {
    if ((f.field === 1 || f.field === 4) && f.wireType === WIRE_LEN)
      yield* r.pieces(await r.varint(), STORED_READ_BYTES)
    else await r.skip(f.wireType)
  }
}
