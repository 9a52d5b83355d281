/**
 * NodeInfo <-> protobuf (proto/gossip.proto). Decoding validates what a peer may send: bounded
 * strings and lists, a known state, and an id (the caller checks it against the sender's peer id).
 * Anything else is refused with a reason, never thrown past the receiver.
 */
import { hopsd_gossip } from '../../proto/gossip.js'
import { EMPTY_CAPACITY, type NodeCapacity, type NodeInfo, type NodeState } from './types.js'

const pb = hopsd_gossip

/** Limits on what one NodeInfo may carry (a peer's bug must not bloat every view). */
export const NODE_INFO_LIMITS = { stringLengthMax: 256, rolesMax: 16, p2pAddrsMax: 16 } as const

const STATE_TO_PB: Record<NodeState, hopsd_gossip.NodeState> = {
  active: pb.NodeState.ALIVE, // the wire name predates the word `active` (the enum is append-only)
  draining: pb.NodeState.DRAINING,
  leaving: pb.NodeState.LEAVING,
  left: pb.NodeState.LEFT,
}
const PB_TO_STATE = new Map<number, NodeState>(
  Object.entries(STATE_TO_PB).map(([k, v]) => [v, k as NodeState]),
)

export function encodeNodeInfo(info: NodeInfo): Uint8Array {
  return pb.MembershipMessage.encode({
    node: {
      id: info.id,
      zone: info.zone,
      roles: [...info.roles],
      httpAddr: info.httpAddr,
      p2pAddrs: [...info.p2pAddrs],
      version: info.version,
      capacity: { ...info.capacity },
      state: STATE_TO_PB[info.state],
      incarnation: info.incarnation,
      seq: info.seq,
      sentAtMs: info.sentAtMs,
      dataAddr: info.dataAddr,
    },
  }).finish()
}

export type DecodeResult = { ok: true; info: NodeInfo } | { ok: false; reason: string }

export function decodeNodeInfo(bytes: Uint8Array): DecodeResult {
  let m: hopsd_gossip.MembershipMessage
  try {
    m = pb.MembershipMessage.decode(bytes)
  } catch (err) {
    return { ok: false, reason: `not a MembershipMessage (${(err as Error).message})` }
  }
  const n = m.node
  if (n === null || n === undefined) return { ok: false, reason: 'no node in the message' }
  const state = PB_TO_STATE.get(n.state as number)
  if (state === undefined) return { ok: false, reason: `unknown state ${String(n.state)}` }
  const strings = [
    n.id ?? '',
    n.zone ?? '',
    n.httpAddr ?? '',
    n.dataAddr ?? '',
    n.version ?? '',
    ...(n.roles ?? []),
    ...(n.p2pAddrs ?? []),
  ]
  if (strings.some((s) => s.length > NODE_INFO_LIMITS.stringLengthMax))
    return { ok: false, reason: 'a string field is too long' }
  if ((n.roles ?? []).length > NODE_INFO_LIMITS.rolesMax) return { ok: false, reason: 'too many roles' }
  if ((n.p2pAddrs ?? []).length > NODE_INFO_LIMITS.p2pAddrsMax)
    return { ok: false, reason: 'too many p2p addresses' }
  if (!n.id) return { ok: false, reason: 'empty id' }
  const c = n.capacity
  const capacity: NodeCapacity = c
    ? {
        diskBytesTotal: c.diskBytesTotal ?? 0,
        diskBytesUsed: c.diskBytesUsed ?? 0,
        diskBytesFree: c.diskBytesFree ?? 0,
        blockBytesUsed: c.blockBytesUsed ?? 0,
        gpus: c.gpus ?? 0,
        gpusFree: c.gpusFree ?? 0,
        cpuCores: c.cpuCores ?? 0,
        memoryBytes: c.memoryBytes ?? 0,
      }
    : EMPTY_CAPACITY
  return {
    ok: true,
    info: {
      id: n.id,
      zone: n.zone ?? '',
      roles: [...(n.roles ?? [])],
      httpAddr: n.httpAddr ?? '',
      p2pAddrs: [...(n.p2pAddrs ?? [])],
      dataAddr: n.dataAddr ?? '',
      version: n.version ?? '',
      capacity,
      state,
      incarnation: n.incarnation ?? 0,
      seq: n.seq ?? 0,
      sentAtMs: n.sentAtMs ?? 0,
    },
  }
}
