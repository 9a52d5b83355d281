/**
 * etcd's test `network` for the pure core: RawNodes over MemoryLogs, delivered synchronously and in
 * order, with cut/isolate/heal and message filters. Each Ready is performed by the contract: persist
 * into the MemoryLog, send, "apply" (record), advance.
 */
import {
  MemoryLog,
  RawNode,
  SeededRng,
  defaultCoreConfig,
  decodeConfChange,
  EntryType,
  MessageType,
  type Entry,
  type Message,
  type RaftConfig,
  type NodeId,
  type ReadState,
} from '../../src/consensus/index.js'

export interface CoreNode {
  id: NodeId
  node: RawNode
  log: MemoryLog
  applied: Entry[]
  readStates: ReadState[]
}

export class CoreNetwork {
  readonly nodes = new Map<NodeId, CoreNode>()
  private readonly cut = new Set<string>()
  private readonly isolated = new Set<NodeId>()
  /** Drops a message when it returns true. */
  dropIf: ((m: Message) => boolean) | null = null
  readonly rng: SeededRng

  constructor(
    readonly ids: NodeId[],
    readonly opts: Partial<RaftConfig> & { seed?: number; learners?: NodeId[] } = {},
  ) {
    this.rng = new SeededRng(opts.seed ?? 1)
    for (const id of ids) this.add(id, ids, opts.learners ?? [])
  }

  add(id: NodeId, voters: NodeId[], learners: NodeId[] = []): CoreNode {
    const log = new MemoryLog()
    if (voters.length > 0) {
      log.applySnapshot({
        data: new Uint8Array(),
        metadata: { index: 1, term: 1, confState: { voters, learners } },
      })
      log.setHardState({ term: 1, vote: '', commit: 1 })
    }
    return this.addWithLog(id, log)
  }

  addWithLog(id: NodeId, log: MemoryLog): CoreNode {
    const { seed: _s, learners: _l, ...cfg } = this.opts
    const node = new RawNode({ ...defaultCoreConfig, ...cfg, id, storage: log, rng: this.rng.fork() })
    const n: CoreNode = { id, node, log, applied: [], readStates: [] }
    this.nodes.set(id, n)
    return n
  }

  get(id: NodeId): CoreNode {
    const n = this.nodes.get(id)
    if (!n) throw new Error(`no node ${id}`)
    return n
  }

  isolate(id: NodeId): void {
    this.isolated.add(id)
  }
  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}>${b}`)
    this.cut.add(`${b}>${a}`)
  }
  heal(): void {
    this.cut.clear()
    this.isolated.clear()
  }

  private blocked(m: Message): boolean {
    return this.isolated.has(m.from) || this.isolated.has(m.to) || this.cut.has(`${m.from}>${m.to}`)
  }

  /** Performs Readys and delivers messages until quiet (bounded). Returns the delivered messages. */
  stabilize(maxRounds = 10_000): Message[] {
    const delivered: Message[] = []
    for (let round = 0; round < maxRounds; round++) {
      const queue: Message[] = []
      for (const n of [...this.nodes.values()]) {
        while (n.node.hasReady()) queue.push(...this.perform(n))
      }
      if (queue.length === 0) return delivered
      for (const m of queue) {
        if (this.blocked(m) || this.dropIf?.(m)) continue
        const to = this.nodes.get(m.to)
        if (!to) continue
        delivered.push(m)
        try {
          to.node.step(m)
        } catch (e) {
          if ((e as { code?: string }).code !== 'PROPOSAL_DROPPED') throw e
        }
      }
    }
    throw new Error('network did not stabilize')
  }

  /** One Ready, by the contract. Returns the messages to deliver. */
  perform(n: CoreNode): Message[] {
    const rd = n.node.ready()
    if (rd.snapshot) n.log.applySnapshot(rd.snapshot)
    if (rd.entries.length > 0) n.log.append(rd.entries)
    if (rd.hardState) n.log.setHardState(rd.hardState)
    for (const e of rd.committedEntries) {
      n.applied.push(e)
      if (e.type === EntryType.ConfChange) n.node.applyConfChange(decodeConfChange(e.data))
    }
    n.readStates.push(...rd.readStates)
    n.node.advance(rd)
    return [...rd.earlyMessages, ...rd.messages]
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.get(id).node.tick()
  }

  /** Makes `id` campaign and runs to quiet. */
  elect(id: NodeId): void {
    this.get(id).node.campaign()
    this.stabilize()
  }

  step(m: Partial<Message> & Pick<Message, 'type' | 'to' | 'from'>): void {
    const full: Message = {
      term: 0,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      snapshot: null,
      reject: false,
      rejectHint: 0,
      context: new Uint8Array(),
      snapOffset: 0,
      snapTotalBytes: 0,
      ...m,
    }
    this.get(full.to).node.step(full)
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.node.status().role === 'leader').map((n) => n.id)
  }

  dataOf(id: NodeId): string[] {
    return this.get(id)
      .applied.filter((e) => e.type === EntryType.Normal && e.data.length > 0)
      .map((e) => new TextDecoder().decode(e.data))
  }
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
export { MessageType }
