/** A few RaftGroups over a memory network, with a tiny KV state machine, for driver tests. */
import {
  createMemoryNetwork,
  createMemoryStorage,
  createRaftGroup,
  createSeededRng,
  openLevelStorage,
  type AppliedEntry,
  type MemoryNetwork,
  type NodeId,
  type RaftGroup,
  type RaftGroupConfig,
  type RaftPersistence,
  type StateMachine,
} from '../../src/consensus/index.js'
import { waitFor } from '../helpers/index.js'

/** "set k v" → returns the previous value; "incr k" → returns the new value. Counts applies. */
export class KvMachine implements StateMachine<string | number | null> {
  data = new Map<string, string>()
  applied: number[] = []
  commands: string[] = []

  apply(entries: readonly AppliedEntry[]): (string | number | null)[] {
    return entries.map((e) => {
      if (this.applied.length > 0 && e.index <= this.applied[this.applied.length - 1]!)
        throw new Error(`apply out of order: ${e.index}`)
      this.applied.push(e.index)
      const cmd = new TextDecoder().decode(e.data)
      this.commands.push(cmd)
      const [op, k, v] = cmd.split(' ')
      if (op === 'set') {
        const prev = this.data.get(k!) ?? null
        this.data.set(k!, v!)
        return prev
      }
      if (op === 'incr') {
        const n = Number(this.data.get(k!) ?? '0') + 1
        this.data.set(k!, String(n))
        return n
      }
      return null
    })
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify([...this.data]))
  }
  restore(data: Uint8Array): void {
    this.data = new Map(JSON.parse(new TextDecoder().decode(data)) as [string, string][])
    this.applied = []
    this.commands = []
  }
}

/**
 * A KvMachine whose snapshots are captured at once and encoded a turn of the event loop later (the
 * driver's background path): entries applied meanwhile must not leak into the capture.
 */
export class LaterKvMachine extends KvMachine {
  encodes = 0
  snapshotLater(): () => Promise<Uint8Array> {
    const captured = [...this.data]
    return async () => {
      await new Promise<void>((resolve) => setImmediate(resolve))
      this.encodes++
      return new TextEncoder().encode(JSON.stringify(captured))
    }
  }
}

/**
 * A KvMachine whose snapshots travel in pieces (snapshotPieces / restorePieces, as src/meta's): with
 * LevelDB storage the driver writes them to the file as they are encoded and receives them into a
 * file, never whole in memory.
 */
export class PiecesKvMachine extends KvMachine {
  piecesEncoded = 0
  piecesRestores = 0
  snapshotPieces(): () => AsyncIterable<Uint8Array> {
    const bytes = new TextEncoder().encode(JSON.stringify([...this.data]))
    const counted = (): void => void this.piecesEncoded++
    return async function* () {
      for (let off = 0; off < bytes.length; off += 7) {
        if (off % 70 === 0) await new Promise<void>((resolve) => setImmediate(resolve))
        counted()
        yield bytes.subarray(off, off + 7)
      }
    }
  }
  async restorePieces(pieces: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = []
    for await (const p of pieces) parts.push(Uint8Array.from(p))
    this.restore(Buffer.concat(parts))
    this.piecesRestores++
  }
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

export interface Member {
  id: NodeId
  group: RaftGroup
  sm: KvMachine
  storage: RaftPersistence
}

export class TestCluster {
  readonly net: MemoryNetwork
  readonly members = new Map<NodeId, Member>()
  private seed: number

  constructor(
    readonly opts: {
      seed?: number
      config?: Partial<RaftGroupConfig>
      levelDir?: string
      /** State machines with snapshotLater (snapshots encoded in the background). */
      laterSnapshots?: boolean
      piecesSnapshots?: boolean
    } = {},
  ) {
    this.net = createMemoryNetwork()
    this.seed = opts.seed ?? 1
  }

  async add(id: NodeId, storage?: RaftPersistence): Promise<Member> {
    const st =
      storage ??
      (this.opts.levelDir ? await openLevelStorage(`${this.opts.levelDir}/${id}`) : createMemoryStorage())
    const sm = this.opts.piecesSnapshots
      ? new PiecesKvMachine()
      : this.opts.laterSnapshots
        ? new LaterKvMachine()
        : new KvMachine()
    const group = createRaftGroup({
      id,
      storage: st,
      transport: this.net.transport(id),
      stateMachine: sm,
      rng: createSeededRng(this.seed++),
      config: {
        tickMs: 10,
        electionTicks: 10,
        heartbeatTicks: 1,
        proposalTimeoutMs: 5_000,
        ...this.opts.config,
      },
    })
    await group.start()
    const m = { id, group, sm, storage: st }
    this.members.set(id, m)
    return m
  }

  static async bootstrap(
    ids: NodeId[],
    opts: ConstructorParameters<typeof TestCluster>[0] = {},
  ): Promise<TestCluster> {
    const c = new TestCluster(opts)
    for (const id of ids) await c.add(id)
    await Promise.all(ids.map((id) => c.get(id).group.bootstrap(ids)))
    await c.leader()
    return c
  }

  get(id: NodeId): Member {
    const m = this.members.get(id)
    if (!m) throw new Error(`no member ${id}`)
    return m
  }

  /** Waits until the live members agree on one leader; returns it. */
  async leader(timeoutMs = 5_000): Promise<Member> {
    return waitFor(
      () => {
        const ms = [...this.members.values()]
        const leaders = ms.filter((m) => m.group.status().role === 'leader')
        if (leaders.length !== 1) return undefined
        const l = leaders[0]!
        return ms.every((m) => m.group.status().leaderId === l.id) ? l : undefined
      },
      { timeoutMs, intervalMs: 5, what: 'a single leader' },
    )
  }

  async stop(id: NodeId): Promise<void> {
    const m = this.get(id)
    await m.group.stop()
    this.members.delete(id)
  }

  async stopAll(): Promise<void> {
    for (const id of [...this.members.keys()]) await this.stop(id)
  }

  /** Waits until every member applied at least `index`. */
  async allApplied(index: number, timeoutMs = 5_000): Promise<void> {
    await waitFor(() => [...this.members.values()].every((m) => m.group.status().appliedIndex >= index), {
      timeoutMs,
      intervalMs: 5,
      what: `all applied ≥ ${index}`,
    })
  }
}
