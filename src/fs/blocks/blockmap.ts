/**
 * The block map: the `blocks` module of the metadata state machine. Files larger than inlineThreshold
 * keep their bytes in blocks on datanodes; the namespace's inode lists its blocks (id, length,
 * genStamp) once they are committed, and this module keeps the rest as hard state in Raft:
 *
 * | table            | key                 | value          |
 * | ---------------- | ------------------- | -------------- |
 * | `fs.block`       | `<blockId be64>`    | BlockRecord: inode, length, genStamp, state, checksum summary, replicas, corrupt replicas, pipeline targets |
 * | `fs.datanode`    | `<node id>`         | DatanodeRecord: NORMAL / DRAINING / DECOMMISSIONED |
 * | `fs.blockcounter`| `nextBlockId`       | Counter        |
 *
 * Commands (proto/meta.proto):
 *  - AddBlock{path, targets}: a new UNDER_CONSTRUCTION block of a file under the caller's lease; the
 *    targets come from placement run by the proposer (./placement.ts), revalidated here: distinct,
 *    at most the file's replication, none draining or decommissioned. genStamp = the Raft index.
 *  - CompleteFile{path, blocks, dropInline}: the blocks (with lengths, checksums and the replicas that
 *    acked) become COMPLETE and are appended to the inode, and the file closes: new blocks become
 *    visible on close. Blocks of the file still under construction and not listed are forgotten.
 *  - UpdateReplicas{added, removed, corrupt}: replica-set deltas from block reports, reads that met a
 *    bad checksum and the leader's reconcile loop (superuser).
 *  - SetDatanodeState{node, state}: decommissioning (superuser).
 *  - RemoveBlocks{ids}: forgets blocks no file refers to (superuser; a block still referenced is kept).
 *
 * Soft state — heartbeats, capacity, which node is live — stays in the leader's memory and the gossip
 * view (./manager.ts, ./datanodes.ts); only the deltas that change the map go through Raft.
 */
import {
  CommandRejected,
  metaProto,
  protoCodec,
  type ApplyContext,
  type MetaModule,
  type MetaModuleFactory,
  type MetaStore,
  type Table,
} from '../../meta/index.js'
import { be64 } from '../../meta/index.js'
import { FsError } from '../errors.js'
import { counterCodec, type Block } from '../inode.js'
import type { Namespace } from '../namespace.js'

import pb = metaProto.meta

export const BLOCK_OPS = [
  'addBlock',
  'completeFile',
  'updateReplicas',
  'setDatanodeState',
  'removeBlocks',
] as const

export type BlockState = 'UNDER_CONSTRUCTION' | 'COMPLETE'
export type DatanodeState = 'NORMAL' | 'DRAINING' | 'DECOMMISSIONED'

export interface BlockRecord {
  readonly id: number
  readonly inodeId: number
  readonly length: number
  readonly genStamp: number
  readonly state: number
  readonly checksum: number
  readonly replicas: readonly string[]
  readonly corrupt: readonly string[]
  readonly targets: readonly string[]
  readonly replication: number
}

export interface DatanodeRecord {
  readonly id: string
  readonly state: number
  readonly changedMs: number
}

const UC = pb.BlockState.UNDER_CONSTRUCTION
const COMPLETE = pb.BlockState.COMPLETE
const STATE_NAMES: Record<number, DatanodeState> = { 0: 'NORMAL', 1: 'DRAINING', 2: 'DECOMMISSIONED' }

export function datanodeStateName(n: number): DatanodeState {
  return STATE_NAMES[n] ?? 'NORMAL'
}

export class BlockMap implements MetaModule {
  readonly name = 'blocks'
  readonly ops = BLOCK_OPS
  private readonly blocks: Table<BlockRecord>
  private readonly datanodes: Table<DatanodeRecord>
  private readonly counters: Table<{ value: number }>
  /** node → block ids it holds or is to hold (derived, kept by the table hooks). */
  private readonly byNode = new Map<string, Set<number>>()

  constructor(
    store: MetaStore,
    private readonly ns: () => Namespace,
  ) {
    const index = (r: BlockRecord, add: boolean): void => {
      for (const n of new Set([...r.replicas, ...r.corrupt])) {
        let s = this.byNode.get(n)
        if (add) {
          if (s === undefined) this.byNode.set(n, (s = new Set()))
          s.add(r.id)
        } else {
          s?.delete(r.id)
          if (s?.size === 0) this.byNode.delete(n)
        }
      }
    }
    this.blocks = store.table('fs.block', protoCodec<BlockRecord>(pb.BlockRecord), {
      onSet: (_k, prev, next) => {
        if (prev) index(prev, false)
        index(next, true)
      },
      onDelete: (_k, prev) => index(prev, false),
      onClear: () => this.byNode.clear(),
    })
    this.datanodes = store.table('fs.datanode', protoCodec<DatanodeRecord>(pb.DatanodeRecord))
    this.counters = store.table('fs.blockcounter', counterCodec)
  }

  init(): void {
    if (!this.counters.has('nextBlockId')) this.counters.put('nextBlockId', { value: 1 << 30 })
  }

  apply(ctx: ApplyContext): unknown {
    const cmd = ctx.cmd
    if (cmd.user === '') throw new FsError('ACCESS_DENIED', 'the command carries no user')
    switch (cmd.op) {
      case 'addBlock':
        return this.addBlock(ctx, cmd.addBlock!)
      case 'completeFile':
        return this.completeFile(ctx, cmd.completeFile!)
      case 'updateReplicas':
        this.requireSuperuser(ctx)
        return this.updateReplicas(cmd.updateReplicas!)
      case 'setDatanodeState': {
        this.requireSuperuser(ctx)
        const c = cmd.setDatanodeState!
        if (!c.node) throw new FsError('INVALID_ARGUMENT', 'SetDatanodeState needs a node')
        this.datanodes.put(c.node, { id: c.node, state: c.state ?? 0, changedMs: cmd.nowMs })
        return { node: c.node, state: datanodeStateName(c.state ?? 0) }
      }
      case 'removeBlocks':
        this.requireSuperuser(ctx)
        return this.removeBlocks(cmd.removeBlocks!.ids ?? [])
      default:
        throw new Error(`blocks: op ${String(cmd.op)} routed to the block map`)
    }
  }

  // ---- commands

  private addBlock(ctx: ApplyContext, c: pb.IAddBlock): { blockId: number; genStamp: number } {
    const file = this.ns().fileUnderLease(ctx, c.path ?? '')
    const targets = c.targets ?? []
    if (targets.length === 0) throw new FsError('NOT_ENOUGH_DATANODES', 'AddBlock carries no targets')
    if (new Set(targets).size !== targets.length)
      throw new FsError('INVALID_ARGUMENT', 'AddBlock targets repeat')
    if (targets.length > file.replication)
      throw new FsError('INVALID_ARGUMENT', `${targets.length} targets for replication ${file.replication}`)
    for (const t of targets) {
      const st = this.datanodes.get(t)?.state ?? 0
      if (st !== 0) throw new FsError('NOT_ENOUGH_DATANODES', `datanode ${t} is ${datanodeStateName(st)}`)
    }
    const id = this.counters.get('nextBlockId')!.value
    this.counters.put('nextBlockId', { value: id + 1 })
    this.blocks.put(be64(id), {
      id,
      inodeId: file.id,
      length: 0,
      genStamp: ctx.index,
      state: UC,
      checksum: 0,
      replicas: [],
      corrupt: [],
      targets: [...targets],
      replication: file.replication,
    })
    return { blockId: id, genStamp: ctx.index }
  }

  private completeFile(ctx: ApplyContext, c: pb.ICompleteFile): { size: number } {
    const path = c.path ?? ''
    const file = this.ns().fileUnderLease(ctx, path)
    const commits = c.blocks ?? []
    const listed: Block[] = []
    for (const b of commits) {
      const id = Number(b.id ?? 0)
      const rec = this.blocks.get(be64(id))
      if (
        rec === undefined ||
        rec.inodeId !== file.id ||
        rec.state !== UC ||
        rec.genStamp !== Number(b.genStamp ?? 0)
      )
        throw new FsError('INVALID_ARGUMENT', `block ${id} is not a block under construction of ${path}`)
      const replicas = [...new Set(b.replicas ?? [])].sort()
      if (replicas.length === 0) throw new FsError('INVALID_ARGUMENT', `block ${id} has no replica`)
      const length = Number(b.length ?? 0)
      this.blocks.put(be64(id), {
        ...rec,
        state: COMPLETE,
        length,
        checksum: b.checksum ?? 0,
        replicas,
        replication: file.replication,
      })
      listed.push({ id, length, genStamp: rec.genStamp })
    }
    const done = new Set(listed.map((b) => b.id))
    for (const [key, rec] of [...this.blocks.range('')]) {
      if (rec.inodeId === file.id && rec.state === UC && !done.has(rec.id)) this.blocks.delete(key)
    }
    const inode = this.ns().completeWithBlocks(ctx, path, listed, !!c.dropInline)
    return { size: inode.size }
  }

  private updateReplicas(c: pb.IUpdateReplicas): { changed: number } {
    let changed = 0
    const edit = (
      ch: pb.IReplicaChange,
      fn: (r: BlockRecord, node: string) => BlockRecord | undefined,
    ): void => {
      const key = be64(Number(ch.blockId ?? 0))
      const rec = this.blocks.get(key)
      if (rec === undefined || !ch.node) return
      const next = fn(rec, ch.node)
      if (next !== undefined) {
        this.blocks.put(key, next)
        changed++
      }
    }
    for (const ch of c.removed ?? [])
      edit(ch, (r, n) =>
        r.replicas.includes(n) || r.corrupt.includes(n)
          ? { ...r, replicas: r.replicas.filter((x) => x !== n), corrupt: r.corrupt.filter((x) => x !== n) }
          : undefined,
      )
    for (const ch of c.corrupt ?? [])
      edit(ch, (r, n) =>
        r.corrupt.includes(n)
          ? undefined
          : { ...r, replicas: r.replicas.filter((x) => x !== n), corrupt: [...r.corrupt, n].sort() },
      )
    for (const ch of c.added ?? [])
      edit(ch, (r, n) =>
        r.state !== COMPLETE || r.replicas.includes(n) || r.corrupt.includes(n)
          ? undefined
          : { ...r, replicas: [...r.replicas, n].sort() },
      )
    return { changed }
  }

  private removeBlocks(ids: readonly number[]): { removed: number } {
    let removed = 0
    for (const raw of ids) {
      const id = Number(raw)
      const rec = this.blocks.get(be64(id))
      if (rec === undefined || !this.isOrphan(rec)) continue
      this.blocks.delete(be64(id))
      removed++
    }
    return { removed }
  }

  private requireSuperuser(ctx: ApplyContext): void {
    if (!ctx.isSuperuser)
      throw new CommandRejected('ACCESS_DENIED', `${ctx.cmd.user} may not change the block map`)
  }

  // ---- queries (this replica)

  block(id: number): BlockRecord | undefined {
    return this.blocks.get(be64(id))
  }

  /** Every block record, in id order. */
  *all(): IterableIterator<BlockRecord> {
    for (const [, r] of this.blocks.range('')) yield r
  }

  get size(): number {
    return this.blocks.size
  }

  /** Ids of the blocks `node` holds (good or corrupt replicas). */
  blocksOn(node: string): number[] {
    return [...(this.byNode.get(node) ?? [])]
  }

  datanodeState(node: string): DatanodeState {
    return datanodeStateName(this.datanodes.get(node)?.state ?? 0)
  }

  datanodeRecords(): DatanodeRecord[] {
    return [...this.datanodes.range('')].map(([, r]) => r)
  }

  /** No file refers to the block any more (its inode is gone, or it was abandoned). */
  isOrphan(rec: BlockRecord): boolean {
    const inode = this.ns().fileById(rec.inodeId)
    if (inode === undefined) return true
    if (inode.blocks.some((b) => b.id === rec.id)) return false
    return rec.state !== UC || !this.ns().hasLease(inode.id)
  }
}

/**
 * The namespace and the block map as modules of the metadata state machine, in this order (the block
 * map calls the namespace's block hooks inside its apply).
 */
export function namespaceAndBlockModules(
  namespaceFactory: MetaModuleFactory<Namespace>,
): [MetaModuleFactory<Namespace>, MetaModuleFactory<BlockMap>] {
  let ns: Namespace | undefined
  return [
    (store) => (ns = namespaceFactory(store)),
    (store) =>
      new BlockMap(store, () => {
        if (ns === undefined) throw new Error('blocks: the namespace module is not registered before it')
        return ns
      }),
  ]
}

export const BLOCK_STATE = { UNDER_CONSTRUCTION: UC, COMPLETE } as const
