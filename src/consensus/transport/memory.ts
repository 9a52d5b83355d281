import type { Message, NodeId } from '../core/types.js'
import type { RaftTransport } from '../transport.js'
import { decodeMessage, encodeMessage } from '../codec.js'

export interface MemoryNetworkOptions {
  /**
   * Round-trip every message through its protobuf encoding (default true): catches encoding gaps and
   * gives benchmarks a realistic cost; false passes the objects by reference.
   */
  encode?: boolean
}

/**
 * An in-process network of RaftTransports (etcd's test `network`): delivery is asynchronous
 * (setImmediate, FIFO per sender), and links can be cut to simulate partitions.
 */
export interface MemoryNetwork {
  /** The transport for node `id` (created on first call). */
  transport(id: NodeId): RaftTransport
  /** Drops messages both ways between a and b until healed. */
  cut(a: NodeId, b: NodeId): void
  /** Cuts every link of `id`. */
  isolate(id: NodeId): void
  /** Restores every link. */
  heal(): void
  /** Messages delivered and dropped so far (for tests). */
  stats(): { delivered: number; dropped: number }
}

export function createMemoryNetwork(opts: MemoryNetworkOptions = {}): MemoryNetwork {
  const encode = opts.encode ?? true
  const handlers = new Map<NodeId, (msg: Message) => void>()
  const transports = new Map<NodeId, RaftTransport>()
  const cutLinks = new Set<string>()
  const isolated = new Set<NodeId>()
  let delivered = 0
  let dropped = 0

  const linkKey = (a: NodeId, b: NodeId): string => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`)
  const blocked = (a: NodeId, b: NodeId): boolean =>
    isolated.has(a) || isolated.has(b) || cutLinks.has(linkKey(a, b))

  // One queue per network, drained in one setImmediate: FIFO for every pair, cheap under load.
  let queue: { from: NodeId; to: NodeId; msg: Message | Uint8Array }[] = []
  let scheduled = false
  const drain = (): void => {
    scheduled = false
    const batch = queue
    queue = []
    for (const { from, to, msg } of batch) {
      const h = handlers.get(to)
      if (!h || blocked(from, to)) {
        dropped++
        continue
      }
      delivered++
      h(msg instanceof Uint8Array ? decodeMessage(msg) : msg)
    }
  }

  return {
    transport(id) {
      let t = transports.get(id)
      if (!t) {
        t = {
          send(to, msg) {
            if (blocked(id, to)) {
              dropped++
              return
            }
            queue.push({ from: id, to, msg: encode ? encodeMessage(msg) : msg })
            if (!scheduled) {
              scheduled = true
              setImmediate(drain)
            }
          },
          setHandler(handler) {
            handlers.set(id, handler)
          },
        }
        transports.set(id, t)
      }
      return t
    },
    cut(a, b) {
      cutLinks.add(linkKey(a, b))
    },
    isolate(id) {
      isolated.add(id)
    },
    heal() {
      cutLinks.clear()
      isolated.clear()
    },
    stats: () => ({ delivered, dropped }),
  }
}
