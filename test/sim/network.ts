/**
 * The simulated network: one RaftTransport per node incarnation, messages carried as protobuf bytes
 * (the production encoding, and no object is shared between nodes) through the scheduler.
 *
 * Faults, all drawn from the run's Rng: per-message delay (a base latency per directed link plus
 * uniform jitter, with an occasional long tail — random delays reorder messages), drop, duplication
 * (the copy gets its own delay), optional FIFO order per link (TCP-like runs), and partitions: any set of directed links can be blocked, which
 * expresses symmetric splits, isolation and asymmetric partitions (a hears b, b doesn't hear a).
 * A message is checked against partitions when sent AND when delivered.
 */
import { decodeMessage, encodeMessage } from '../../src/consensus/codec.js'
import type { Message, NodeId } from '../../src/consensus/core/types.js'
import type { RaftTransport } from '../../src/consensus/transport.js'
import type { SimRng } from './rng.js'
import type { Scheduler } from './scheduler.js'

export interface NetworkKnobs {
  /** Per-link base latency is drawn once per link in [latencyMinMs, latencyMaxMs]. */
  readonly latencyMinMs: number
  readonly latencyMaxMs: number
  /** Uniform jitter added to every message, in [0, jitterMs]. */
  readonly jitterMs: number
  /** Probability that a message takes the long tail: an extra delay in [0, tailMs]. */
  readonly tailProbability: number
  readonly tailMs: number
  readonly dropProbability: number
  readonly duplicateProbability: number
  /** Per directed link, deliver in send order (a TCP-like stream) instead of reordering freely. */
  readonly fifo: boolean
}

export const healthyNetwork: NetworkKnobs = {
  latencyMinMs: 1,
  latencyMaxMs: 3,
  jitterMs: 1,
  tailProbability: 0,
  tailMs: 0,
  dropProbability: 0,
  duplicateProbability: 0,
  fifo: true,
}

export interface NetworkStats {
  sent: number
  delivered: number
  dropped: number
  duplicated: number
  blocked: number
}

export interface SimNetwork {
  /** A fresh endpoint for a node incarnation; the previous one of that node goes dead. */
  attach(id: NodeId, incarnation: number): RaftTransport
  /** The node is down: messages to it are dropped, its old endpoints go dead. */
  detach(id: NodeId): void
  /** Blocks messages from → to (one direction). */
  block(from: NodeId, to: NodeId): void
  unblock(from: NodeId, to: NodeId): void
  /** Removes every partition. */
  healPartitions(): void
  isBlocked(from: NodeId, to: NodeId): boolean
  setKnobs(knobs: NetworkKnobs): void
  readonly knobs: NetworkKnobs
  readonly stats: NetworkStats
  /** Blocked directed links, for the trace. */
  describePartitions(): string
}

export type TraceFn = (line: () => string) => void

export function createSimNetwork(
  ids: readonly NodeId[],
  sched: Scheduler,
  rng: SimRng,
  initialKnobs: NetworkKnobs,
  trace: TraceFn,
): SimNetwork {
  let knobs = initialKnobs
  const stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, blocked: 0 }
  const blocked = new Set<string>()
  const linkKey = (from: NodeId, to: NodeId): string => `${from}>${to}`
  const baseLatency = new Map<string, number>()
  const drawLatencies = (): void => {
    for (const a of ids) {
      for (const b of ids) {
        if (a !== b)
          baseLatency.set(
            linkKey(a, b),
            knobs.latencyMinMs + rng.float() * (knobs.latencyMaxMs - knobs.latencyMinMs),
          )
      }
    }
  }
  drawLatencies()

  // Live endpoint per node: incarnation and handler.
  const live = new Map<NodeId, { incarnation: number; handler: ((m: Message) => void) | undefined }>()

  function delay(from: NodeId, to: NodeId): number {
    let d = baseLatency.get(linkKey(from, to))! + rng.float() * knobs.jitterMs
    if (rng.chance(knobs.tailProbability)) d += rng.float() * knobs.tailMs
    return d
  }

  /** FIFO links: the latest delivery time per directed link. */
  const lastDelivery = new Map<string, number>()

  function deliverLater(from: NodeId, to: NodeId, bytes: Uint8Array, what: string): void {
    let at = sched.now() + delay(from, to)
    if (knobs.fifo) {
      const key = linkKey(from, to)
      at = Math.max(at, lastDelivery.get(key) ?? 0)
      lastDelivery.set(key, at)
    }
    sched.after(at - sched.now(), `net ${from}->${to}`, () => {
      const endpoint = live.get(to)
      if (endpoint === undefined || endpoint.handler === undefined) {
        stats.dropped++
        trace(() => `drop(down) ${what}`)
        return
      }
      if (blocked.has(linkKey(from, to))) {
        stats.blocked++
        trace(() => `drop(partition) ${what}`)
        return
      }
      stats.delivered++
      trace(() => `deliver ${what}`)
      endpoint.handler(decodeMessage(bytes))
    })
  }

  return {
    attach(id, incarnation) {
      const endpoint: { incarnation: number; handler: ((m: Message) => void) | undefined } = {
        incarnation,
        handler: undefined,
      }
      live.set(id, endpoint)
      const isLive = (): boolean => live.get(id) === endpoint
      return {
        send(to: NodeId, msg: Message) {
          if (!isLive()) return // a crashed incarnation's late sends go nowhere
          stats.sent++
          const what = describeMessage(msg)
          if (to === id) throw new Error(`sim network: ${id} sent a message to itself: ${what}`)
          if (blocked.has(linkKey(id, to))) {
            stats.blocked++
            trace(() => `drop(partition) ${what}`)
            return
          }
          if (rng.chance(knobs.dropProbability)) {
            stats.dropped++
            trace(() => `drop(loss) ${what}`)
            return
          }
          const bytes = encodeMessage(msg)
          deliverLater(id, to, bytes, what)
          if (rng.chance(knobs.duplicateProbability)) {
            stats.duplicated++
            deliverLater(id, to, bytes, `${what} (dup)`)
          }
        },
        setHandler(handler) {
          if (isLive()) endpoint.handler = handler
        },
      }
    },
    detach(id) {
      live.delete(id)
    },
    block(from, to) {
      blocked.add(linkKey(from, to))
    },
    unblock(from, to) {
      blocked.delete(linkKey(from, to))
    },
    healPartitions() {
      blocked.clear()
    },
    isBlocked: (from, to) => blocked.has(linkKey(from, to)),
    setKnobs(k) {
      knobs = k
      drawLatencies()
    },
    get knobs() {
      return knobs
    },
    stats,
    describePartitions: () => (blocked.size === 0 ? 'none' : [...blocked].sort().join(' ')),
  }
}

const typeNames: Record<number, string> = {
  0: 'Hup',
  1: 'Beat',
  2: 'Prop',
  3: 'App',
  4: 'AppResp',
  5: 'Vote',
  6: 'VoteResp',
  7: 'Snap',
  8: 'Heartbeat',
  9: 'HeartbeatResp',
  10: 'Unreachable',
  11: 'SnapStatus',
  12: 'CheckQuorum',
  13: 'TransferLeader',
  14: 'TimeoutNow',
  15: 'ReadIndex',
  16: 'ReadIndexResp',
  17: 'PreVote',
  18: 'PreVoteResp',
}

export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${typeNames[m.type] ?? m.type} t${m.term}`
  if (m.logTerm !== 0 || m.index !== 0) s += ` lt${m.logTerm} i${m.index}`
  if (m.entries.length > 0) s += ` ents[${m.entries[0]!.index}..${m.entries[m.entries.length - 1]!.index}]`
  if (m.commit !== 0) s += ` c${m.commit}`
  if (m.reject) s += ` reject(hint ${m.rejectHint})`
  if (m.snapshot !== null) s += ` snap@${m.snapshot.metadata.index}/${m.snapshot.metadata.term}`
  return s
}
