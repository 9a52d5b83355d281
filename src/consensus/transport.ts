import type { Message, NodeId } from './core/types.js'

/**
 * How a RaftGroup talks to its peers. Implemented in memory (./transport/memory.ts) for tests and
 * benchmarks, and over libp2p streams by src/node/p2p (encode with ./codec.ts).
 *
 * Contract:
 * - `send` must not block and must not throw for network reasons: it may drop, delay or reorder
 *   messages (Raft retransmits). It may be called very often; batch on the wire if useful.
 * - The transport may keep a reference to `msg`; the sender never mutates a message after sending.
 * - The handler is called with messages addressed to this node, never synchronously from `send`,
 *   never concurrently with itself (JS is single-threaded; don't call it re-entrantly either).
 */
export interface RaftTransport {
  send(to: NodeId, msg: Message): void
  setHandler(handler: (msg: Message) => void): void
}
