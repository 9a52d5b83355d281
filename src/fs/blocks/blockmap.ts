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
 *  - AddBlock{fileId, targets}: a new UNDER_CONSTRUCTION block of a file under the caller's lease; the
 *    targets come from placement run by the proposer (./placement.ts), revalidated here: distinct,
 *    at most the file's replication, none draining or decommissioned. genStamp = the Raft index. Its
 *    full size times replication is charged to the quotas above the file until it closes.
 *  - ReopenBlock{fileId, targets}: an append continues the file's partial last block: it gets a new
 *    stamp for the write (`appendGenStamp`) and its live replicas as pipeline; readers keep its
 *    committed length and stamp meanwhile.
 *  - UpdatePipeline{fileId, blockId, targets}: pipeline recovery — the block being written gets a new
 *    stamp and the surviving targets; replicas at the older stamp no longer count.
 *  - CompleteFile{fileId, blocks, dropInline}: the blocks (with lengths, checksums and the replicas that
 *    acked) become COMPLETE and are appended to the inode (a reopened last block is replaced), and the
 *    file closes: new bytes become visible on close. Blocks of the file still under construction and
 *    not listed are forgotten; a reopened block not listed keeps what it had.
 *  Writers name the file by inode id: a rename while the file is written keeps the write.
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
  'reopenBlock',
  'updatePipeline',
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
  /** Non-zero while an append writes the block: the stamp its new replicas get. */
  readonly appendGenStamp: number
  /** Non-zero after a truncate inside the block: the older stamp its replicas may still have. */
  readonly truncateFromGenStamp: number
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
  /** inode id → ids of its block records (derived, kept by the table hooks): CompleteFile's cost follows the file. */
  private readonly byInode = new Map<number, Set<number>>()

  constructor(
    store: MetaStore,
    private readonly ns: () => Namespace,
  ) {
    const index = (r: BlockRecord, add: boolean): void => {
      let mine = this.byInode.get(r.inodeId)
      if (add) {
        if (mine === undefined) this.byInode.set(r.inodeId, (mine = new Set()))
        mine.add(r.id)
      } else {
        mine?.delete(r.id)
        if (mine?.size === 0) this.byInode.delete(r.inodeId)
      }
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
    this.blocks = store.table(
      'fs.block',
      protoCodec<BlockRecord>(pb.BlockRecord),
      {
        onSet: (_k, prev, next) => {
          if (prev) index(prev, false)
          index(next, true)
        },
        onDelete: (_k, prev) => index(prev, false),
        onClear: () => {
          this.byNode.clear()
          this.byInode.clear()
        },
      },
      // One row per block: grows with the data, so its values live on disk (keys and the indexes above
      // stay in memory).
      { onDisk: true },
    )
    this.datanodes = store.table('fs.datanode', protoCodec<DatanodeRecord>(pb.DatanodeRecord))
    this.counters = store.table('fs.blockcounter', counterCodec)
    this.ns().attachBlockHooks({
      moveBlocks: (ids, inodeId) => {
        for (const id of ids) {
          const rec = this.blocks.get(be64(id))
          if (rec !== undefined) this.blocks.put(be64(id), { ...rec, inodeId })
        }
      },
      truncateBlock: (id, length, genStamp) => {
        const rec = this.blocks.get(be64(id))
        if (rec === undefined) throw new FsError('BLOCK_NOT_FOUND', `block ${id} is not in the block map`)
        this.blocks.put(be64(id), {
          ...rec,
          length,
          genStamp,
          truncateFromGenStamp: rec.truncateFromGenStamp || rec.genStamp,
          appendGenStamp: 0,
        })
      },
    })
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
      case 'reopenBlock':
        return this.reopenBlock(ctx, cmd.reopenBlock!)
      case 'updatePipeline':
        return this.updatePipeline(ctx, cmd.updatePipeline!)
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
    const file = this.ns().fileUnderLease(ctx, { fileId: Number(c.fileId ?? 0), path: c.path ?? '' })
    const targets = c.targets ?? []
    this.checkTargets(targets, file.replication)
    // HDFS charges a block under construction at its full size until it completes.
    this.ns().chargeBlock(file, file.blockSize * file.replication)
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
      appendGenStamp: 0,
      truncateFromGenStamp: 0,
    })
    return { blockId: id, genStamp: ctx.index }
  }

  /** Distinct targets, at most `replication`, none draining or decommissioned. */
  private checkTargets(targets: readonly string[], replication: number): void {
    if (targets.length === 0) throw new FsError('NOT_ENOUGH_DATANODES', 'the block has no targets')
    if (new Set(targets).size !== targets.length) throw new FsError('INVALID_ARGUMENT', 'targets repeat')
    if (targets.length > replication)
      throw new FsError('INVALID_ARGUMENT', `${targets.length} targets for replication ${replication}`)
    for (const t of targets) {
      const st = this.datanodes.get(t)?.state ?? 0
      if (st !== 0) throw new FsError('NOT_ENOUGH_DATANODES', `datanode ${t} is ${datanodeStateName(st)}`)
    }
  }

  /** An append continues the partial last block (HDFS's append): a new stamp for the write. */
  private reopenBlock(
    ctx: ApplyContext,
    c: pb.IReopenBlock,
  ): { blockId: number; genStamp: number; fromGenStamp: number; length: number } {
    const file = this.ns().fileUnderLease(ctx, { fileId: Number(c.fileId ?? 0) })
    const last = file.blocks[file.blocks.length - 1]
    const rec = last === undefined ? undefined : this.blocks.get(be64(last.id))
    if (rec === undefined || rec.state !== COMPLETE || rec.length >= file.blockSize)
      throw new FsError('INVALID_ARGUMENT', `inode ${file.id} has no partial last block to continue`)
    const targets = c.targets ?? []
    this.checkTargets(targets, file.replication)
    for (const t of targets)
      if (!rec.replicas.includes(t))
        throw new FsError('INVALID_ARGUMENT', `datanode ${t} holds no good replica of block ${rec.id}`)
    this.ns().chargeBlock(file, (file.blockSize - rec.length) * file.replication)
    this.blocks.put(be64(rec.id), {
      ...rec,
      appendGenStamp: ctx.index,
      truncateFromGenStamp: 0,
      targets: [...targets],
    })
    return { blockId: rec.id, genStamp: ctx.index, fromGenStamp: rec.genStamp, length: rec.length }
  }

  /** Pipeline recovery: the block being written gets a new stamp and the surviving targets. */
  private updatePipeline(ctx: ApplyContext, c: pb.IUpdatePipeline): { genStamp: number } {
    const file = this.ns().fileUnderLease(ctx, { fileId: Number(c.fileId ?? 0) })
    const id = Number(c.blockId ?? 0)
    const rec = this.blocks.get(be64(id))
    if (rec === undefined || rec.inodeId !== file.id || (rec.state !== UC && rec.appendGenStamp === 0))
      throw new FsError('INVALID_ARGUMENT', `block ${id} is not being written in inode ${file.id}`)
    const targets = c.targets ?? []
    this.checkTargets(targets, file.replication)
    this.blocks.put(
      be64(id),
      rec.state === UC
        ? { ...rec, genStamp: ctx.index, targets: [...targets] }
        : { ...rec, appendGenStamp: ctx.index, targets: [...targets] },
    )
    return { genStamp: ctx.index }
  }

  private completeFile(ctx: ApplyContext, c: pb.ICompleteFile): { size: number } {
    const ref = { fileId: Number(c.fileId ?? 0), path: c.path ?? '' }
    const file = this.ns().fileUnderLease(ctx, ref)
    const commits = c.blocks ?? []
    const listed: Block[] = []
    const lastId = file.blocks[file.blocks.length - 1]?.id
    for (const b of commits) {
      const id = Number(b.id ?? 0)
      const genStamp = Number(b.genStamp ?? 0)
      const rec = this.blocks.get(be64(id))
      const fresh = rec !== undefined && rec.state === UC && rec.genStamp === genStamp
      const appended =
        rec !== undefined && rec.state === COMPLETE && id === lastId && rec.appendGenStamp === genStamp
      if (rec === undefined || rec.inodeId !== file.id || !(fresh || appended))
        throw new FsError('INVALID_ARGUMENT', `block ${id} is not a block being written of inode ${file.id}`)
      const replicas = [...new Set(b.replicas ?? [])].sort()
      if (replicas.length === 0) throw new FsError('INVALID_ARGUMENT', `block ${id} has no replica`)
      const length = Number(b.length ?? 0)
      this.blocks.put(be64(id), {
        ...rec,
        state: COMPLETE,
        length,
        genStamp,
        checksum: b.checksum ?? 0,
        replicas,
        corrupt: [],
        targets: [],
        replication: file.replication,
        appendGenStamp: 0,
        truncateFromGenStamp: 0,
      })
      listed.push({ id, length, genStamp })
    }
    const done = new Set(listed.map((b) => b.id))
    // The file's own records only (a per-inode index), not the whole block table.
    for (const id of [...(this.byInode.get(file.id) ?? [])].sort((a, b) => a - b)) {
      const rec = this.blocks.get(be64(id))
      if (rec !== undefined && rec.state === UC && !done.has(id)) this.blocks.delete(be64(id))
    }
    // A reopened last block the writer did not finish keeps its committed length and stamp.
    const last = lastId === undefined ? undefined : this.blocks.get(be64(lastId))
    if (last !== undefined && last.appendGenStamp !== 0 && !done.has(last.id))
      this.blocks.put(be64(last.id), { ...last, appendGenStamp: 0, targets: [] })
    const inode = this.ns().completeWithBlocks(ctx, ref, listed, !!c.dropInline)
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
    for (const raw of c.truncated ?? []) {
      const key = be64(Number(raw))
      const rec = this.blocks.get(key)
      if (rec === undefined || rec.truncateFromGenStamp === 0) continue
      this.blocks.put(key, { ...rec, truncateFromGenStamp: 0 })
      changed++
    }
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

  /** Up to `limit` block records after block id `afterId` (exclusive; -1: from the first), in id order. */
  after(afterId: number, limit: number): BlockRecord[] {
    const out: BlockRecord[] = []
    const from = afterId < 0 ? '' : be64(afterId)
    for (const [, r] of this.blocks.range(from, undefined, afterId >= 0)) {
      if (out.length >= limit) break
      out.push(r)
    }
    return out
  }

  /** Nodes that hold a replica (good or corrupt) of some block: O(nodes), from the derived index. */
  holders(): string[] {
    return [...this.byNode.keys()]
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
