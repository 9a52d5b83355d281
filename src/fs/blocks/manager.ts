/**
 * The block manager (on metadata nodes): the metadata side of large files.
 *
 *  - On the Raft leader, it keeps the datanodes' soft state (heartbeats: capacity, free space) in
 *    memory (./datanodes.ts), and turns each block report into replica-set deltas committed as one
 *    UpdateReplicas (nothing when the map already agrees): Raft sees deltas, not reports. Reports are
 *    incremental (the replicas added, changed or deleted since the last one) on top of a full report
 *    this leader took in its term; it asks for a full one when it has none, or after dropping the
 *    node's replicas.
 *  - It places new blocks (`/hopsd/block-alloc/1.0.0`): the writer's own node first, other zones,
 *    then the same zone (./placement.ts), and commits AddBlock with the chosen targets.
 *  - Its reconcile loop (leader only, ./reconcile.ts) re-replicates, removes surplus and corrupt
 *    replicas, and finishes decommissioning.
 *  - On every metadata node: reads of files in blocks (a replica on this node, then this zone, then any;
 *    a replica that fails its checksum is skipped — its datanode reports it), the WebHDFS step-one
 *    redirect target for writes (a datanode), a file's block layout and the fsck health report —
 *    answered from the leader's knowledge (asked over `/hopsd/block-health/1.0.0` elsewhere), or
 *    UNAVAILABLE while no one can know: no leader, or a new leader that has not yet heard every live
 *    datanode (it would count their replicas missing).
 */
import { Counter, type Registry } from 'prom-client'
import type { Clock, Rng } from '../../consensus/index.js'
import { Periodic } from '../../lib/index.js'
import {
  encodeCommand,
  metaProto,
  type ConsensusGroup,
  type MetaResult,
  type MetaStateMachine,
} from '../../meta/index.js'
import { hopsd } from '../../proto/datanode.js'
import { HopsError } from '../../errors.js'
import { BlockCrcMd5, fileChecksumOf } from '../checksum.js'
import { errorFromResult, FsError } from '../errors.js'
import { silentFsLogger, type FsLogger } from '../logger.js'
import type { Namespace } from '../namespace.js'
import type { ClusterView, PeerNetwork } from '../peers.js'
import type { Caller } from '../permission.js'
import { AuthError, commandIdentity, type Authenticator, type Principal } from '../../auth/index.js'
import { BLOCK_STATE, type BlockMap, type BlockRecord } from './blockmap.js'
import { Datanodes } from './datanodes.js'
import { chooseTargets } from './placement.js'
import { BLOCK_PROTOCOLS, type AllocReply, type AllocRequest } from './protocol.js'
import { READ_PIECE_BYTES, readRemote, type BlockReads, type ReadBuffers } from './reads.js'
import { goodLiveReplicas, reconcileStep } from './reconcile.js'

import pb = hopsd.datanode
import mpb = metaProto.meta

/** The part of the local Raft group the block manager uses: commands, read barriers, who leads. */
export interface LeaderGroup extends ConsensusGroup {
  status(): { readonly role: string; readonly leaderId: string; readonly term: number }
}

/** A datanode's local replicas, as the block manager reads them (src/fs/datanode's BlockStore fits). */
export interface LocalReplicas {
  /** Bytes [offset, offset+length) of a replica (fewer at its end); into `into` when given. */
  read(blockId: number, offset: number, length: number, into?: Buffer): Promise<Uint8Array>
  /** The replica's stamp and length, when this node holds it. */
  info(blockId: number): { readonly genStamp: number; readonly length: number } | undefined
}

export interface BlockManagerInit {
  readonly selfId: string
  readonly zone: string
  /** The local metadata replica: its Raft group and state machine (with the `fs` and `blocks` modules). */
  readonly group: LeaderGroup
  readonly stateMachine: MetaStateMachine
  /** The gossip view: liveness, zones and HTTP addresses of the other nodes. */
  readonly cluster: ClusterView
  readonly peers: PeerNetwork
  /** Wall-clock ms (the view's `lastSeenMs` and commands' `nowMs` are on that time line). */
  readonly clock: Clock
  /** Seeded: tie-breaks in placement and replica order. */
  readonly rng: Rng
  readonly heartbeatMs: number
  /** The gossip view's dead-after threshold (--dead-after-ms). */
  readonly deadAfterMs: number
  /** How long a dead datanode's replicas still count (--replica-grace-ms). */
  readonly replicaGraceMs: number
  /** Blocks one reconcile round looks at (default RECONCILE_BLOCKS_PER_STEP; see ./reconcile.ts). */
  readonly reconcileBlocksPerStep?: number
  readonly logger?: FsLogger
  /** Where the block manager's metrics go (the daemon's registry); none without it. */
  readonly metrics?: Registry
  /** How other nodes' APIs are reached (write Locations point at a datanode's): https with --tls. */
  readonly httpScheme?: 'http' | 'https'
  /**
   * Checks who an allocation is for (src/auth): a block is allocated as the principal its request's
   * grant proves (the grant a metadata node signed for the write), never as the request's `user`.
   * Without it (tests of the block manager alone) the request's user is taken as it is. Reads re-check
   * their caller with it after their barrier (Authenticator.recheck).
   */
  readonly authenticator?: Authenticator
}

/** Where a file's bytes can be read: each block (an inline file: one piece) with its good live replicas. */
export interface LocatedFile {
  readonly length: number
  readonly underConstruction: boolean
  readonly blocks: readonly {
    readonly blockId: number
    readonly genStamp: number
    readonly offset: number
    readonly length: number
    /** Every replica known is corrupt. */
    readonly corrupt: boolean
    readonly replicas: readonly { node: string; host: string; port: number; zone: string }[]
  }[]
}

export interface BlockHealth {
  readonly blocks: number
  readonly underReplicated: number
  readonly missing: number
  readonly corrupt: number
  readonly underReplicatedBlocks: { id: number; path: string; live: number; replication: number }[]
  readonly missingBlocks: { id: number; path: string }[]
  readonly corruptReplicas: { id: number; path: string; nodes: string[] }[]
  /**
   * Every datanode the leader knows of — from heartbeats, the block map's replicas and the gossip view —
   * the dead included. `live`: the leader counts its replicas (the view holds it alive or suspect, and
   * it heartbeats); capacity figures are its last heartbeat's (0: none to this leader).
   */
  readonly datanodes: {
    id: string
    zone: string
    state: string
    live: boolean
    /** When this leader last had its heartbeat (ms since the epoch); 0: never. */
    lastHeartbeatMs: number
    availableBytes: number
    usedBytes: number
    capacityBytes: number
  }[]
}

/** A file's blocks with their replicas' nodes and zones (GET /api/v1/fs/blocks). */
export interface FileBlocks {
  readonly path: string
  readonly length: number
  readonly inlined: boolean
  readonly replication: number
  readonly blockSize: number
  readonly blocks: {
    id: number
    offset: number
    length: number
    genStamp: number
    replicas: { node: string; zone: string }[]
    corrupt: string[]
  }[]
}

/** Reads of files in blocks (`open`, `checksum`: see BlockReads) and the leader's block management. */
export interface BlockManager extends BlockReads {
  /** The leader's side of a heartbeat (answers leader: false elsewhere). */
  heartbeat(from: string, req: pb.IHeartbeatRequest): Promise<pb.IHeartbeatReply>
  /** Places and commits the next block of a file (leader only: NOT_LEADER elsewhere). */
  allocate(req: AllocRequest, signal?: AbortSignal): Promise<AllocReply>
  /** A datanode to send write data to (this node when it is one): its API's base URL and node id. */
  writeTarget(): { url: string; node: string } | undefined
  inlineThreshold(): number
  /** A datanode's zone (heartbeats on the leader, the gossip view elsewhere). */
  zoneOf(node: string): string
  /**
   * The fsck report from the leader's knowledge: computed here on the leader, asked of the leader
   * elsewhere. UNAVAILABLE when it cannot be known: no leader (or it does not answer), or a leader that
   * has not yet heard from every datanode the view holds alive since it took over (for at most
   * `deadAfterMs` plus a few heartbeats).
   */
  health(signal?: AbortSignal): Promise<BlockHealth>
  /** The datanode of this node hands its store over (local reads), and hears of corrupt local replicas. */
  attachLocalStore(store: LocalReplicas, onCorrupt: (blockId: number) => void): void
  /**
   * Where the bytes of a file can be read (WebHDFS GETFILEBLOCKLOCATIONS), read linearizably: each
   * block with its good replicas on live nodes (host and port of their API, zone); an inline file is
   * one piece held by the live metadata nodes.
   */
  locate(caller: Caller, path: string, signal?: AbortSignal): Promise<LocatedFile>
  /** The datanodes' capacity, used and remaining bytes (this node's soft state: the leader's is whole). */
  fsStatus(): { capacity: number; used: number; remaining: number }
  /** A file's block layout, read linearizably; the caller needs read access to the file. */
  fileBlocks(caller: Caller, path: string, signal?: AbortSignal): Promise<FileBlocks>
  /** Starts (DRAINING) or cancels (NORMAL) a decommission; admins only (checked in apply). */
  setDatanodeState(caller: Principal, node: string, state: 'NORMAL' | 'DRAINING'): Promise<unknown>
  /** One step of the reconcile loop (a no-op off the leader); the loop runs it every heartbeat interval. */
  reconcile(): Promise<void>
  /** Reconcile rounds run here as leader, and the most blocks one of them looked at. */
  reconcileStats(): { rounds: number; maxBlocksLooked: number }
  /** Serves the heartbeat and allocation protocols and starts the reconcile loop. */
  start(signal?: AbortSignal): Promise<void>
  stop(signal?: AbortSignal): Promise<void>
}

/** Deadline of asking the leader for its fsck report. */
const HEALTH_TIMEOUT_MS = 10_000

export function createBlockManager(init: BlockManagerInit): BlockManager {
  const { selfId, clock, rng, group: metaGroup } = init
  const log = init.logger ?? silentFsLogger
  const sm = init.stateMachine
  const map = (): BlockMap => sm.module<BlockMap>('blocks')
  const ns = (): Namespace => sm.module<Namespace>('fs')
  const transfersInFlight = new Map<number, number>()
  const reconcileCursor = { after: -1 }
  const reconcileStats = { rounds: 0, maxBlocksLooked: 0 }
  let localStore: LocalReplicas | undefined
  let reportLocalCorrupt: (blockId: number) => void = () => undefined
  let loop: Periodic | undefined
  const unhandles: (() => Promise<void>)[] = []
  const datanodes = new Datanodes({
    selfId,
    clock,
    view: init.cluster,
    heartbeatMs: init.heartbeatMs,
    deadAfterMs: init.deadAfterMs,
    replicaGraceMs: init.replicaGraceMs,
    selfIsDatanode: () => localStore !== undefined,
  })
  const soft = datanodes.soft
  const reportsTaken =
    init.metrics === undefined
      ? undefined
      : new Counter({
          name: 'hopsd_block_reports_total',
          help: 'Block reports this node took as the metadata leader: full, incremental, or refused (an incremental report without a full one in this term: a full one was asked for).',
          labelNames: ['kind'] as const,
          registers: [init.metrics],
        })

  const isLeader = (): boolean => {
    const st = metaGroup.status()
    return st.role === 'leader' && st.leaderId === selfId
  }
  /** The term this node leads in, and since when (ms): how long it has had to hear every datanode. */
  let leading = { term: -1, sinceMs: 0 }
  const noteLeading = (term: number): void => {
    if (leading.term !== term) leading = { term, sinceMs: clock.now() }
  }
  const su = (): string => sm.settings().superuser
  const propose = async (cmd: mpb.Command.$Properties, signal?: AbortSignal): Promise<unknown> => {
    const r = (await metaGroup.propose(encodeCommand({ nowMs: clock.now(), user: su(), ...cmd }), {
      signal,
    })) as MetaResult
    if (!r.ok) throw errorFromResult(r.code, r.message)
    return r.value
  }
  const goodLive = (r: BlockRecord): string[] => goodLiveReplicas(r, map(), datanodes)
  const pathOf = (r: BlockRecord): string => {
    const inode = ns().fileById(r.inodeId)
    return inode ? inodePath(ns(), inode.id) : ''
  }
  /** A random tie-break key per item (drawn from the seeded rng). */
  const shuffleKey = (): number => rng.nextInt(0x1_0000_0000)

  /** Replicas to read from: this node's, then this zone's, then any (ties in random order); not the dead. */
  const orderReplicas = (replicas: readonly string[]): string[] => {
    const rank = (n: string): number =>
      n === selfId && localStore ? 0 : datanodes.zoneOf(n) === init.zone ? 1 : 2
    return replicas
      .filter((n) => (n === selfId ? localStore !== undefined : datanodes.memberOf(n)?.liveness !== 'dead'))
      .map((n) => ({ n, rank: rank(n), key: shuffleKey() }))
      .sort((a, b) => a.rank - b.rank || a.key - b.key)
      .map((x) => x.n)
  }

  /** Bytes [from, to) of block `id` from its best replica, falling over to the next on failure. */
  const readBlock = async function* (
    id: number,
    from: number,
    to: number,
    signal?: AbortSignal,
    buffers?: ReadBuffers,
  ): AsyncGenerator<Uint8Array> {
    const rec = map().block(id)
    const replicas = orderReplicas(rec?.replicas ?? [])
    // A replica older than the block is never served; after a truncate inside it, one at the stamp
    // before still holds the kept prefix until its datanode truncates it.
    const minGenStamp = rec === undefined ? 0 : rec.truncateFromGenStamp || rec.genStamp
    let pos = from
    let lastErr: unknown
    for (const node of replicas) {
      try {
        if (node === selfId && localStore !== undefined) {
          while (pos < to) {
            const into = await buffers?.take()
            let piece: Uint8Array
            try {
              const info = localStore.info(id)
              if (info === undefined || info.genStamp < minGenStamp || info.length < to)
                throw new FsError('BLOCK_NOT_FOUND', `the replica of ${id} here is stale or short`)
              piece = await localStore.read(id, pos, Math.min(READ_PIECE_BYTES, to - pos), into)
            } catch (err) {
              if (into !== undefined) buffers?.release(into)
              throw err
            }
            if (piece.length === 0) {
              if (into !== undefined) buffers?.release(into)
              throw new FsError('BLOCK_NOT_FOUND', `short replica of ${id}`)
            }
            pos += piece.length
            yield piece
          }
        } else {
          for await (const piece of readRemote(init.peers, node, id, pos, to - pos, minGenStamp, signal)) {
            pos += piece.length
            yield piece
          }
        }
        if (pos >= to) return
      } catch (err) {
        lastErr = err
        if ((err as { code?: string }).code === 'CORRUPT_REPLICA' && node === selfId) reportLocalCorrupt(id)
        log.info({ block: id, node, err: (err as Error).message }, 'replica read failed; trying the next')
      }
    }
    throw new FsError(
      'BLOCK_NOT_FOUND',
      `no replica of block ${id} could be read (${(lastErr as Error | undefined)?.message ?? 'no replicas'})`,
    )
  }

  const heartbeat = async (from: string, req: pb.IHeartbeatRequest): Promise<pb.IHeartbeatReply> => {
    if (!isLeader()) return { leader: false }
    const term = metaGroup.status().term
    noteLeading(term)
    const s = datanodes.entry(from)
    Object.assign(s, {
      zone: req.zone ?? '',
      lastMs: clock.now(),
      capacityBytes: Number(req.capacityBytes ?? 0),
      usedBytes: Number(req.usedBytes ?? 0),
      availableBytes: Number(req.availableBytes ?? 0),
    })
    const incremental = req.incremental === true
    // Deltas on top of a full report from another term (or from before the node's replicas were
    // dropped) could leave the map wrong for good: take the liveness, ask for a full report.
    if (incremental && s.fullReportTerm !== term) {
      reportsTaken?.inc({ kind: 'refused' })
      return { leader: true, fullReportRequested: true }
    }
    reportsTaken?.inc({ kind: incremental ? 'incremental' : 'full' })
    const m = map()
    const reported = new Map<number, pb.IStoredBlock>()
    for (const b of req.blocks ?? []) reported.set(Number(b.id), b)
    const added: mpb.IReplicaChange[] = []
    const removed: mpb.IReplicaChange[] = []
    const corrupt: mpb.IReplicaChange[] = []
    const deletes = new Set<number>()
    const corruptIds = new Set((req.corrupt ?? []).map(Number))
    for (const id of corruptIds) {
      const r = m.block(id)
      if (r !== undefined && !r.corrupt.includes(from)) corrupt.push({ blockId: id, node: from })
      if (r === undefined) deletes.add(id)
    }
    const truncates: pb.ITruncateCommand[] = []
    for (const [id, b] of reported) {
      const r = m.block(id)
      const gs = Number(b.genStamp)
      if (r !== undefined && r.appendGenStamp !== 0 && gs === r.appendGenStamp) continue // an append finishing
      if (r !== undefined && r.truncateFromGenStamp !== 0 && gs === r.truncateFromGenStamp) {
        // Truncated inside the block: this replica still has the older, longer form.
        truncates.push({ blockId: id, fromGenStamp: gs, toGenStamp: r.genStamp, length: r.length })
        continue
      }
      // A replica at another stamp (older: a pipeline or an append went on without it), or of another
      // length than the block's, never counts and is deleted.
      const wrongLength = r !== undefined && r.state === BLOCK_STATE.COMPLETE && Number(b.length) !== r.length
      if (r === undefined || r.genStamp !== gs || wrongLength) {
        deletes.add(id)
        if (r !== undefined && (r.replicas.includes(from) || r.corrupt.includes(from)))
          removed.push({ blockId: id, node: from })
      } else if (r.truncateFromGenStamp !== 0) {
        s.truncated.add(id)
        continue
      } else if (r.corrupt.includes(from)) {
        // As HDFS: a corrupt replica goes only once enough good ones exist (it may be the last copy).
        if (goodLive(r).length >= r.replication) deletes.add(id)
      } else if (corruptIds.has(id) || r.state !== BLOCK_STATE.COMPLETE || r.replicas.includes(from)) continue
      else if (goodLive(r).length < r.replication && !s.pendingDeletes.has(id))
        added.push({ blockId: id, node: from })
      else deletes.add(id)
    }
    // Replicas the map has on this node and the node no longer holds: every one not in a full
    // report, or those an incremental one lists as deleted.
    const gone = incremental ? (req.deleted ?? []).map(Number) : m.blocksOn(from)
    for (const id of gone) {
      const r = m.block(id)
      if (r === undefined || reported.has(id) || r.state !== BLOCK_STATE.COMPLETE) continue
      if (r.replicas.includes(from) || r.corrupt.includes(from)) removed.push({ blockId: id, node: from })
    }
    for (const id of s.pendingDeletes) deletes.add(id)
    s.pendingDeletes.clear()
    for (const t of s.pendingTruncates.values()) if (!reported.has(Number(t.blockId))) truncates.push(t)
    s.pendingTruncates.clear()
    if (added.length + removed.length + corrupt.length > 0) {
      await propose({ updateReplicas: { added, removed, corrupt } })
      if (corrupt.length > 0)
        log.warn({ node: from, blocks: corrupt.map((c) => c.blockId) }, 'corrupt replicas reported')
    }
    if (!incremental) s.fullReportTerm = term
    const transfers = s.pendingTransfers.splice(0)
    return { leader: true, deleteBlocks: [...deletes], transfers, truncates }
  }

  /** Proposes a block command as the writer: the principal of its grant, with its lease (clientName). */
  const asWriter = async (
    req: AllocRequest,
    cmd: mpb.Command.$Properties,
    signal?: AbortSignal,
  ): Promise<unknown> => {
    const identity = await allocationIdentity(req, signal)
    const r = (await metaGroup.propose(
      encodeCommand({
        nowMs: clock.now(),
        ...identity,
        clientName: req.clientName,
        ...cmd,
      }),
      { signal },
    )) as MetaResult
    if (!r.ok) throw errorFromResult(r.code, r.message)
    return r.value
  }

  /** Who the block is allocated as: the principal of the request's grant (see BlockManagerInit.authenticator). */
  const allocationIdentity = async (
    req: AllocRequest,
    signal?: AbortSignal,
  ): Promise<Pick<mpb.ICommand, 'user' | 'groups' | 'project' | 'authVia' | 'authNode'>> => {
    const authn = init.authenticator
    if (authn === undefined) return { user: req.user, groups: [...req.groups] }
    if (req.grant === undefined || req.grant === '')
      throw new AuthError('UNAUTHENTICATED', 'a block allocation needs the grant of the write it is for')
    // Checked again at commit by the auth guard: no barrier here.
    const p = await authn.authenticate(
      { grant: req.grant },
      {
        signal,
        fresh: false,
        use: { op: 'addBlock', path: req.path, ...(req.fileId ? { fileId: req.fileId } : {}) },
      },
    )
    if (p === undefined) throw new AuthError('UNAUTHENTICATED')
    return commandIdentity(p, selfId)
  }

  const allocate = async (req: AllocRequest, signal?: AbortSignal): Promise<AllocReply> => {
    if (!isLeader()) throw Object.assign(new Error('not the metadata leader'), { code: 'NOT_LEADER' })
    // The writer saw its CreateFile/Append applied on its own replica; this one may apply it a moment
    // later: read after a barrier (one round per block).
    await metaGroup.readBarrier({ signal })
    const id = req.fileId !== undefined && req.fileId > 0 ? req.fileId : ns().idOf(req.path)
    const file = id === undefined ? undefined : ns().fileById(id)
    if (file === undefined) throw new FsError('FILE_NOT_FOUND', `File does not exist: ${req.path}`)
    if (req.continueLast === true) {
      // An append continues the partial last block on its good live replicas (the writer first).
      const last = file.blocks[file.blocks.length - 1]
      const rec = last === undefined ? undefined : map().block(last.id)
      const live = rec === undefined ? [] : goodLive(rec).filter((n) => !req.exclude.includes(n))
      if (rec !== undefined && rec.length < file.blockSize && live.length > 0) {
        const targets = [...live].sort((a, b) => Number(b === req.writer) - Number(a === req.writer))
        const v = (await asWriter(req, { reopenBlock: { fileId: file.id, targets } }, signal)) as {
          blockId: number
          genStamp: number
          fromGenStamp: number
          length: number
        }
        return {
          blockId: v.blockId,
          genStamp: v.genStamp,
          targets,
          blockSize: file.blockSize,
          reopen: { fromGenStamp: v.fromGenStamp, resumeFrom: v.length, length: v.length },
        }
      }
    }
    const candidates = datanodes.candidates(map())
    const targets = chooseTargets({
      candidates,
      count: file.replication,
      blockBytes: file.blockSize,
      writer: req.noLocalWrite === true ? undefined : req.writer,
      exclude: req.exclude,
      rng,
    })
    const roomless = candidates.filter(
      (c) => c.live && !c.retired && !req.exclude.includes(c.id) && c.availableBytes < file.blockSize,
    )
    if (targets.length === 0 && roomless.length > 0) {
      throw new FsError(
        'DISK_FULL',
        `no live datanode has ${file.blockSize} bytes free for the next block of ${req.path}`,
      )
    }
    if (targets.length === 0) {
      throw new FsError(
        'NOT_ENOUGH_DATANODES',
        `no live datanode with ${file.blockSize} bytes free (known: ${soft.size}, live: ${candidates.filter((c) => c.live).length}, excluded: ${req.exclude.join(',') || 'none'})`,
      )
    }
    const v = (await asWriter(req, { addBlock: { path: req.path, fileId: file.id, targets } }, signal)) as {
      blockId: number
      genStamp: number
    }
    return { blockId: v.blockId, genStamp: v.genStamp, targets, blockSize: file.blockSize }
  }

  /**
   * The fsck report on the leader. It would count the replicas of a datanode it has not heard from
   * missing, so until every datanode the view holds alive has given it a full report in its term, it
   * says it cannot know yet (UNAVAILABLE) — for at most `deadAfterMs` plus ten heartbeats, after which
   * a datanode that still has not reported is taken as not live.
   */
  const leaderHealth = (): BlockHealth => {
    const term = metaGroup.status().term
    noteLeading(term)
    const view = init.cluster.view()
    // Datanodes in the view that have not sent this leader a full report in its term.
    const notReported = view.filter(
      (n) => n.roles.includes('datanode') && soft.get(n.id)?.fullReportTerm !== term,
    )
    const unheard = notReported.filter((n) => (n.self ? localStore !== undefined : n.liveness === 'alive'))
    // Those that may hold replicas this leader cannot confirm: alive or suspect (suspect counts as live:
    // gossip flaps under load). This node's own datanode is always live to it.
    const unheardIds = new Set(
      notReported
        .filter((n) => !n.self && (n.liveness === 'alive' || n.liveness === 'suspect'))
        .map((n) => n.id),
    )
    const learningMs = clock.now() - leading.sinceMs
    if (unheard.length > 0 && learningMs < init.deadAfterMs + 10 * init.heartbeatMs) {
      throw new HopsError(
        'UNAVAILABLE',
        `the metadata leader took over ${learningMs} ms ago and has not yet heard from ${unheard.length} live datanode(s) (${unheard.map((n) => n.id).join(', ')}): block health is not known yet; retry`,
      )
    }
    const out: { -readonly [K in keyof BlockHealth]: BlockHealth[K] } = {
      blocks: 0,
      underReplicated: 0,
      missing: 0,
      corrupt: 0,
      underReplicatedBlocks: [],
      missingBlocks: [],
      corruptReplicas: [],
      datanodes: [],
    }
    // Every datanode known: heartbeats, replica holders, and the view's datanodes (the dead included).
    const known = new Set<string>(soft.keys())
    for (const n of view) if (n.roles.includes('datanode') && n.liveness !== 'left') known.add(n.id)
    for (const r of map().all()) {
      for (const n of r.replicas) known.add(n)
      for (const n of r.corrupt) known.add(n)
      if (r.state !== BLOCK_STATE.COMPLETE) continue
      out.blocks++
      const live = r.replicas.filter((n) => datanodes.isLive(n)).length
      // A replica on a datanode alive in the view that has not reported to this leader yet (past the
      // learning window: a loaded node can be slow to find a new leader) is not known to be lost: such
      // a block is under-replicated as far as this leader can confirm, never missing.
      if (live === 0 && !r.replicas.some((n) => unheardIds.has(n))) {
        out.missing++
        out.missingBlocks.push({ id: r.id, path: pathOf(r) })
      } else if (goodLive(r).length < r.replication) {
        out.underReplicated++
        out.underReplicatedBlocks.push({ id: r.id, path: pathOf(r), live, replication: r.replication })
      }
      if (r.corrupt.length > 0) {
        out.corrupt++
        out.corruptReplicas.push({ id: r.id, path: pathOf(r), nodes: [...r.corrupt] })
      }
    }
    for (const id of [...known].sort()) {
      const s = soft.get(id)
      out.datanodes.push({
        id,
        zone: datanodes.zoneOf(id),
        state: map().datanodeState(id),
        live: datanodes.isLive(id),
        lastHeartbeatMs: s?.lastMs ?? 0,
        availableBytes: s?.availableBytes ?? 0,
        usedBytes: s?.usedBytes ?? 0,
        capacityBytes: s?.capacityBytes ?? 0,
      })
    }
    return out
  }

  const reconcile = async (): Promise<void> => {
    if (!isLeader()) return
    const looked = await reconcileStep({
      map,
      datanodes,
      transfersInFlight,
      propose,
      clock,
      rng,
      log,
      cursor: reconcileCursor,
      blocksPerStep: init.reconcileBlocksPerStep,
    })
    reconcileStats.rounds++
    reconcileStats.maxBlocksLooked = Math.max(reconcileStats.maxBlocksLooked, looked)
  }

  return {
    heartbeat,
    allocate,
    reconcile,
    reconcileStats: () => ({ ...reconcileStats }),
    attachLocalStore(store, onCorrupt) {
      localStore = store
      reportLocalCorrupt = onCorrupt
    },
    inlineThreshold: () => sm.settings().inlineThreshold,
    zoneOf: (node) => datanodes.zoneOf(node),
    writeTarget() {
      const scheme = init.httpScheme ?? 'http'
      const view = init.cluster.view()
      const self = view.find((n) => n.self)
      if (localStore !== undefined && self?.httpAddr)
        return { url: `${scheme}://${self.httpAddr}`, node: selfId }
      const dns = view
        .filter((n) => !n.self && n.roles.includes('datanode') && n.liveness === 'alive' && n.httpAddr !== '')
        .map((n) => ({ n, sameZone: Number(n.zone === init.zone), key: shuffleKey() }))
        .sort((a, b) => b.sameZone - a.sameZone || a.key - b.key)
      return dns[0] ? { url: `${scheme}://${dns[0].n.httpAddr}`, node: dns[0].n.id } : undefined
    },

    async locate(caller, path, signal) {
      await metaGroup.readBarrier({ signal })
      init.authenticator?.recheck(caller as Principal)
      const file = ns().fileForRead(caller, path)
      const where = (
        node: string,
      ): { node: string; host: string; port: number; zone: string } | undefined => {
        const addr = init.cluster.view().find((n) => n.id === node)?.httpAddr ?? ''
        const colon = addr.lastIndexOf(':')
        if (colon <= 0) return undefined
        return {
          node,
          host: addr.slice(0, colon).replace(/^\[|\]$/g, ''),
          port: Number(addr.slice(colon + 1)),
          zone: datanodes.zoneOf(node) || (init.cluster.view().find((n) => n.id === node)?.zone ?? ''),
        }
      }
      const underConstruction = ns().hasLease(file.id)
      if (file.inlined) {
        const holders = init.cluster
          .view()
          .filter((n) => n.roles.includes('metadata') && (n.self || n.liveness === 'alive'))
          .map((n) => where(n.id))
          .filter((r) => r !== undefined)
        return {
          length: file.size,
          underConstruction,
          blocks:
            file.size === 0
              ? []
              : [
                  {
                    blockId: 0,
                    genStamp: 0,
                    offset: 0,
                    length: file.size,
                    corrupt: false,
                    replicas: holders,
                  },
                ],
        }
      }
      const m = map()
      let offset = 0
      // Liveness from the gossip view: heartbeats (the leader's soft state) are not known off the leader.
      const up = (n: string): boolean => {
        if (n === selfId) return localStore !== undefined
        const l = datanodes.memberOf(n)?.liveness
        return l === 'alive' || l === 'suspect'
      }
      const blocks = file.blocks.map((b) => {
        const r = m.block(b.id)
        const good = r === undefined ? [] : r.replicas.filter(up)
        const replicas = orderReplicas(good)
          .map(where)
          .filter((x) => x !== undefined)
        const out = {
          blockId: b.id,
          genStamp: b.genStamp,
          offset,
          length: b.length,
          corrupt: good.length === 0 && (r?.corrupt.length ?? 0) > 0,
          replicas,
        }
        offset += b.length
        return out
      })
      return { length: file.size, underConstruction, blocks }
    },

    fsStatus() {
      let capacity = 0
      let used = 0
      let remaining = 0
      for (const [id, s] of soft) {
        if (!datanodes.isLive(id)) continue
        capacity += s.capacityBytes
        used += s.usedBytes
        remaining += s.availableBytes
      }
      return { capacity, used, remaining }
    },

    async open(caller, path, offset, length, signal, buffers, opts) {
      if (opts?.stale !== true) await metaGroup.readBarrier({ signal })
      init.authenticator?.recheck(caller as Principal)
      const file = ns().fileForRead(caller, path)
      if (offset > file.size)
        throw new FsError('INVALID_ARGUMENT', `Offset=${offset} out of the range [0, ${file.size}]`)
      const end = length < 0 ? file.size : Math.min(file.size, offset + length)
      if (file.inlined) {
        // Served here, after the barrier above: handing it back to the fs service would cost an inline
        // read a second barrier (issue 13 item 4). The view is state: it is sent, never mutated.
        const bytes = file.data.subarray(offset, end)
        return { length: bytes.length, stream: onePiece(bytes) }
      }
      const blocks = file.blocks.map((b) => ({ ...b }))
      async function* stream(): AsyncGenerator<Uint8Array> {
        let base = 0
        for (const b of blocks) {
          const s = Math.max(offset, base)
          const e = Math.min(end, base + b.length)
          if (s < e) yield* readBlock(b.id, s - base, e - base, signal, buffers)
          base += b.length
          if (base >= end) break
        }
      }
      return { length: end - offset, stream: stream() }
    },

    async checksum(caller, path, signal) {
      await metaGroup.readBarrier({ signal })
      init.authenticator?.recheck(caller as Principal)
      const file = ns().fileForRead(caller, path)
      if (file.inlined) return undefined
      // Computed from the bytes, block by block, as HDFS's NameNode assembles it from its
      // DataNodes: the same value the file had while it was inline (distcp compares these).
      const md5s: Buffer[] = []
      for (const b of file.blocks) {
        const block = new BlockCrcMd5()
        for await (const piece of readBlock(b.id, 0, b.length, signal)) block.update(piece)
        md5s.push(block.digest())
      }
      return fileChecksumOf(md5s, file.blockSize)
    },

    async fileBlocks(caller, path, signal) {
      await metaGroup.readBarrier({ signal })
      init.authenticator?.recheck(caller as Principal)
      const file = ns().fileForRead(caller, path)
      const m = map()
      let offset = 0
      return {
        path,
        length: file.size,
        inlined: file.inlined,
        replication: file.replication,
        blockSize: file.blockSize,
        blocks: file.blocks.map((b) => {
          const r = m.block(b.id)
          const out = {
            id: b.id,
            offset,
            length: b.length,
            genStamp: b.genStamp,
            replicas: (r?.replicas ?? []).map((n) => ({ node: n, zone: datanodes.zoneOf(n) })),
            corrupt: [...(r?.corrupt ?? [])],
          }
          offset += b.length
          return out
        }),
      }
    },

    async setDatanodeState(caller, node, state) {
      const r = (await metaGroup.propose(
        encodeCommand({
          nowMs: clock.now(),
          ...commandIdentity(caller, selfId),
          setDatanodeState: {
            node,
            state: state === 'DRAINING' ? mpb.DatanodeState.DRAINING : mpb.DatanodeState.DATANODE_NORMAL,
          },
        }),
      )) as MetaResult
      if (!r.ok) throw errorFromResult(r.code, r.message)
      return r.value
    },

    async health(signal) {
      if (isLeader()) return leaderHealth()
      const leaderId = metaGroup.status().leaderId
      if (leaderId === '' || leaderId === selfId)
        throw new HopsError('UNAVAILABLE', 'no metadata leader is known: block health cannot be known now')
      let reply: Uint8Array
      try {
        reply = await init.peers.request(leaderId, BLOCK_PROTOCOLS.health, new Uint8Array(), {
          signal,
          timeoutMs: HEALTH_TIMEOUT_MS,
        })
      } catch (err) {
        const e = err as { code?: string; remoteCode?: string; message?: string }
        const why =
          e.remoteCode === 'UNAVAILABLE' ? String(e.message) : `${e.code ?? ''} ${String(e.message)}`
        throw new HopsError(
          'UNAVAILABLE',
          `the metadata leader ${leaderId} cannot tell block health now: ${why}`,
        )
      }
      return JSON.parse(new TextDecoder().decode(reply)) as BlockHealth
    },

    async start() {
      unhandles.push(
        await init.peers.handleRequests(BLOCK_PROTOCOLS.report, async (from, body) =>
          pb.HeartbeatReply.encode(await heartbeat(from, pb.HeartbeatRequest.decode(body))).finish(),
        ),
        await init.peers.handleRequests(
          BLOCK_PROTOCOLS.alloc,
          async (_from, body, signal) =>
            new TextEncoder().encode(
              JSON.stringify(
                await allocate(JSON.parse(new TextDecoder().decode(body)) as AllocRequest, signal),
              ),
            ),
          { timeoutMs: 15_000 },
        ),
        await init.peers.handleRequests(
          BLOCK_PROTOCOLS.health,
          async () => {
            if (!isLeader())
              throw new HopsError('UNAVAILABLE', `${selfId} is no longer the metadata leader; retry`)
            return new TextEncoder().encode(JSON.stringify(leaderHealth()))
          },
          { timeoutMs: HEALTH_TIMEOUT_MS },
        ),
      )
      loop = new Periodic({
        intervalMs: init.heartbeatMs,
        firstDelayMs: init.heartbeatMs,
        tick: reconcile,
        onError: (err) => log.warn({ err: (err as Error).message }, 'block reconcile step failed'),
        timers: clock,
      })
      loop.start()
    },
    async stop() {
      await loop?.stop()
      for (const u of unhandles.splice(0)) await u().catch(() => undefined)
    },
  }
}

function inodePath(ns: Namespace, id: number): string {
  const names: string[] = []
  let inode = ns.fileById(id)
  while (inode !== undefined && inode.parent !== 0) {
    names.push(inode.name)
    inode = ns.fileById(inode.parent)
  }
  return '/' + names.reverse().join('/')
}

/** One piece as a stream (an inline file's bytes). */
async function* onePiece(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  if (bytes.length > 0) yield bytes
}
