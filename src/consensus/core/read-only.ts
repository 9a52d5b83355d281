import type { Message, NodeId, ReadState } from './types.js'

interface ReadIndexStatus {
  req: Message
  index: number
  acks: Map<NodeId, boolean>
}

/** Pending ReadIndex requests waiting for a heartbeat quorum (etcd's readOnly, ReadOnlySafe). */
export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>()
  private queue: string[] = []

  constructor(readonly option: 'safe' | 'lease') {}

  get size(): number {
    return this.queue.length
  }

  addRequest(index: number, m: Message): void {
    const key = ctxKey(m.entries[0]!.data)
    if (this.pending.has(key)) return
    this.pending.set(key, { index, req: m, acks: new Map() })
    this.queue.push(key)
  }

  /** Records a heartbeat ack carrying `context`; returns the acks so far (undefined if unknown context). */
  recvAck(id: NodeId, context: Uint8Array): Map<NodeId, boolean> | undefined {
    const rs = this.pending.get(ctxKey(context))
    if (!rs) return undefined
    rs.acks.set(id, true)
    return rs.acks
  }

  /** Dequeues every request up to and including the one for `context` (heartbeats are ordered). */
  advance(context: Uint8Array): { req: Message; index: number }[] {
    const key = ctxKey(context)
    const i = this.queue.indexOf(key)
    if (i < 0) return []
    const out: { req: Message; index: number }[] = []
    for (const k of this.queue.slice(0, i + 1)) {
      const rs = this.pending.get(k)
      if (!rs) throw new Error('cannot find corresponding read state from pending map')
      out.push({ req: rs.req, index: rs.index })
      this.pending.delete(k)
    }
    this.queue = this.queue.slice(i + 1)
    return out
  }

  lastPendingRequestCtx(): Uint8Array | undefined {
    const k = this.queue[this.queue.length - 1]
    return k === undefined ? undefined : this.pending.get(k)!.req.entries[0]!.data
  }
}

export function ctxKey(b: Uint8Array): string {
  let s = ''
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!)
  return s
}

export type { ReadState }
