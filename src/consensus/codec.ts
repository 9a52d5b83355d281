/**
 * protobuf <-> core types. The core works on plain objects (./core/types.ts); these functions are the
 * only place that knows the generated protobufjs classes. Decoding fills every field (no undefined),
 * so decoded messages satisfy the core's types exactly.
 */
import { hopsd } from '../proto/raft.js'
import {
  EMPTY_BYTES,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type Snapshot,
} from './core/types.js'

const pb = hopsd.raft

export function encodeMessage(msg: Message): Uint8Array {
  return pb.Message.encode(msg as unknown as hopsd.raft.Message.$Properties).finish()
}

export function decodeMessage(bytes: Uint8Array): Message {
  const m = pb.Message.decode(bytes)
  return {
    type: m.type as number,
    to: m.to,
    from: m.from,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries.map(normEntry),
    commit: m.commit,
    snapshot: m.snapshot ? normSnapshot(m.snapshot) : null,
    reject: m.reject,
    rejectHint: m.rejectHint,
    context: m.context ?? EMPTY_BYTES,
    snapOffset: m.snapOffset,
    snapTotalBytes: m.snapTotalBytes,
  }
}

export function normEntry(e: hopsd.raft.Entry.$Properties): Entry {
  return {
    term: e.term ?? 0,
    index: e.index ?? 0,
    type: (e.type as number | null | undefined) ?? 0,
    data: e.data ?? EMPTY_BYTES,
    clientId: e.clientId ?? '',
    seq: e.seq ?? 0,
    origin: e.origin ?? '',
    originSeq: e.originSeq ?? 0,
  }
}

export function normConfState(c: hopsd.raft.ConfState.$Properties | null | undefined): ConfState {
  return { voters: [...(c?.voters ?? [])], learners: [...(c?.learners ?? [])] }
}

export function normSnapshot(s: hopsd.raft.Snapshot.$Properties): Snapshot {
  const md = s.metadata
  return {
    data: s.data ?? EMPTY_BYTES,
    metadata: { index: md?.index ?? 0, term: md?.term ?? 0, confState: normConfState(md?.confState) },
  }
}

export function encodeEntry(e: Entry): Uint8Array {
  return pb.Entry.encode(e as unknown as hopsd.raft.Entry.$Properties).finish()
}

export function decodeEntry(bytes: Uint8Array): Entry {
  return normEntry(pb.Entry.decode(bytes))
}

export function encodeHardState(hs: HardState): Uint8Array {
  return pb.HardState.encode(hs).finish()
}

export function decodeHardState(bytes: Uint8Array): HardState {
  const h = pb.HardState.decode(bytes)
  return { term: h.term, vote: h.vote, commit: h.commit }
}

export function encodeSnapshotMetadata(md: Snapshot['metadata']): Uint8Array {
  return pb.SnapshotMetadata.encode(md).finish()
}

export function decodeSnapshotMetadata(bytes: Uint8Array): Snapshot['metadata'] {
  const m = pb.SnapshotMetadata.decode(bytes)
  return { index: m.index, term: m.term, confState: normConfState(m.confState) }
}

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return pb.ConfChange.encode(cc as unknown as hopsd.raft.ConfChange.$Properties).finish()
}

export function decodeConfChange(bytes: Uint8Array): ConfChange {
  const c = pb.ConfChange.decode(bytes)
  return { type: c.type as number, nodeId: c.nodeId, context: c.context ?? EMPTY_BYTES }
}

export { hopsd as raftpb }
