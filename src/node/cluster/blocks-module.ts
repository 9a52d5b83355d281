/**
 * The `blockmanager` module (role metadata): the metadata side of large files.
 *
 *  - On the Raft leader, it keeps the datanodes' soft state (heartbeats: capacity, free space) in
 *    memory, and turns each block report into replica-set deltas committed as one UpdateReplicas
 *    (nothing when the map already agrees): Raft sees deltas, not reports. Reports are incremental
 *    (the replicas added, changed or deleted since the last one) on top of a full report this leader
 *    took in its term; it asks for a full one when it has none, or after dropping the node's replicas.
 *  - It places new blocks (`/hopsd/block-alloc/1.0.0`): the writer's own node first, other zones,
 *    then the same zone (src/fs/placement.ts), and commits AddBlock with the chosen targets.
 *  - Its reconcile loop (leader only): forgets orphaned blocks (RemoveBlocks); drops the replicas of a
 *    datanode dead beyond --replica-grace-ms; re-replicates under-replicated blocks by handing a
 *    TransferCommand to a datanode holding a good replica (in its next heartbeat reply); removes surplus
 *    replicas; and reports a draining datanode DECOMMISSIONED once all its blocks live elsewhere.
 *  - On every metadata node: reads of files in blocks (a replica on this node, then this zone, then any;
 *    a replica that fails its checksum is skipped — its datanode reports it), the WebHDFS step-one
 *    redirect target for writes (a datanode), and GET /api/v1/fs/blocks and /api/v1/fs/health.
 */
import type { FastifyInstance } from 'fastify'
import { Counter } from 'prom-client'
import { READ_PIECE_BYTES, type ApiRoutes, type BlockReads, type ReadBuffers } from '../../api/index.js'
import {
  BLOCK_STATE,
  BlockCrcMd5,
  chooseTargets,
  fileChecksumOf,
  FsError,
  type BlockMap,
  type BlockRecord,
  type Caller,
  type DatanodeCandidate,
  type Namespace,
} from '../../fs/index.js'
import type { BlockStore } from '../../fs/blockstore/index.js'
import { encodeCommand, metaProto, type MetaResult } from '../../meta/index.js'
import { hopsd } from '../../proto/datanode.js'
import { errorFromResult } from '../../fs/errors.js'
import { requireService, type NodeModule } from '../module.js'
import { handleRequests, type P2PHost } from '../p2p/index.js'
import { readRemote } from './block-pipeline.js'
import type { MetadataNode } from './metadata-module.js'
import type { P2PNode } from './p2p-module.js'
import type { MembershipLike, MemberLike } from './status.js'

import pb = hopsd.datanode
import mpb = metaProto.meta
import { Periodic } from './periodic.js'

export const BLOCK_PROTOCOLS = {
  report: '/hopsd/block-report/1.0.0',
  alloc: '/hopsd/block-alloc/1.0.0',
} as const

/** A transfer handed out is not handed out again for this long. */
const TRANSFER_TIMEOUT_MS = 30_000
const REMOVE_BATCH_MAX = 1000

export interface AllocRequest {
  readonly path: string
  readonly user: string
  readonly groups: readonly string[]
  readonly clientName: string
  /** The writing node (first target when it is a datanode). */
  readonly writer: string
  /** Datanodes that failed in this write's pipelines. */
  readonly exclude: readonly string[]
}

export interface AllocReply {
  readonly blockId: number
  readonly genStamp: number
  readonly targets: string[]
  readonly blockSize: number
}

export interface BlockHealth {
  readonly blocks: number
  readonly underReplicated: number
  readonly missing: number
  readonly corrupt: number
  readonly underReplicatedBlocks: { id: number; path: string; live: number; replication: number }[]
  readonly missingBlocks: { id: number; path: string }[]
  readonly corruptReplicas: { id: number; path: string; nodes: string[] }[]
  readonly datanodes: {
    id: string
    zone: string
    state: string
    live: boolean
    availableBytes: number
    usedBytes: number
    capacityBytes: number
  }[]
}

/** Reads of files in blocks (`open`, `checksum`: see BlockReads) and the leader's block management. */
export interface BlockManager extends BlockReads {
  /** The leader's side of a heartbeat (answers leader: false elsewhere). */
  heartbeat(from: string, req: pb.IHeartbeatRequest): Promise<pb.IHeartbeatReply>
  /** Places and commits the next block of a file (leader only: NOT_LEADER elsewhere). */
  allocate(req: AllocRequest, signal?: AbortSignal): Promise<AllocReply>
  /** The HTTP base URL of a datanode to send write data to (this node when it is one). */
  writeTarget(): string | undefined
  inlineThreshold(): number
  /** A datanode's zone (heartbeats on the leader, the gossip view elsewhere). */
  zoneOf(node: string): string
  health(): BlockHealth
  /** The leader's HTTP address when another node leads (undefined on the leader or when unknown). */
  leaderHttp(): string | undefined
  /** The datanode module of this node hands its store over (local reads), and hears of corrupt local replicas. */
  attachLocalStore(store: BlockStore, onCorrupt: (blockId: number) => void): void
}

interface DnSoft {
  zone: string
  lastMs: number
  capacityBytes: number
  usedBytes: number
  availableBytes: number
  pendingDeletes: Set<number>
  pendingTransfers: pb.ITransferCommand[]
  /**
   * The Raft term in which this leader took the datanode's last full report; -1: none, or its replicas
   * were dropped since. An incremental report only applies on top of a full one this leader has seen
   * in its term: otherwise the reply asks for a full report (as a new HDFS NameNode does).
   */
  fullReportTerm: number
}

export function blockManagerModule(): NodeModule {
  return {
    name: 'blockmanager',
    roles: ['metadata'],
    create(components) {
      const { config, identity, logger, metrics } = components
      const selfId = identity.id
      const p2p = requireService<P2PNode>(components, 'p2p')
      const membership = requireService<MembershipLike>(components, 'membership')
      const meta = requireService<MetadataNode>(components, 'metadata')
      const log = logger.child({ area: 'blocks' })
      const sm = meta.stateMachine
      const map = (): BlockMap => sm.module<BlockMap>('blocks')
      const ns = (): Namespace => sm.module<Namespace>('fs')
      const soft = new Map<string, DnSoft>()
      const transfersInFlight = new Map<number, number>()
      let localStore: BlockStore | undefined
      let reportLocalCorrupt: (blockId: number) => void = () => undefined
      let loop: Periodic | undefined
      const unhandles: (() => Promise<void>)[] = []
      const heartbeatMs = heartbeatIntervalMs(config.gossipIntervalMs)
      const reportsTaken = new Counter({
        name: 'hopsd_block_reports_total',
        help: 'Block reports this node took as the metadata leader: full, incremental, or refused (an incremental report without a full one in this term: a full one was asked for).',
        labelNames: ['kind'] as const,
        registers: [metrics],
      })

      const isLeader = (): boolean => {
        const st = meta.group.status()
        return st.role === 'leader' && st.leaderId === selfId
      }
      const su = (): string => sm.settings().superuser
      const propose = async (cmd: mpb.Command.$Properties, signal?: AbortSignal): Promise<unknown> => {
        const r = (await meta.group.propose(encodeCommand({ nowMs: Date.now(), user: su(), ...cmd }), {
          signal,
        })) as MetaResult
        if (!r.ok) throw errorFromResult(r.code, r.message)
        return r.value
      }
      const memberOf = (id: string): MemberLike | undefined => membership.view().find((n) => n.id === id)
      const isLive = (id: string): boolean => {
        if (id === selfId) return localStore !== undefined
        const m = memberOf(id)
        const s = soft.get(id)
        // Suspect counts as live (gossip flaps under load); dead or left, or no heartbeat for long, does not.
        return (
          m !== undefined &&
          (m.liveness === 'alive' || m.liveness === 'suspect') &&
          s !== undefined &&
          Date.now() - s.lastMs < 10 * heartbeatMs + config.deadAfterMs
        )
      }
      const deadLongEnough = (id: string): boolean => {
        if (id === selfId) return false
        const m = memberOf(id)
        const now = Date.now()
        if (m !== undefined && m.liveness !== 'dead' && m.liveness !== 'left') return false
        const lastSeen = Math.max(m?.lastSeenMs ?? 0, soft.get(id)?.lastMs ?? 0)
        return now - lastSeen - config.deadAfterMs > config.replicaGraceMs
      }
      const zoneOf = (id: string): string => soft.get(id)?.zone ?? memberOf(id)?.zone ?? ''
      /** Replicas that count: on a live node that is not retiring. */
      const goodLive = (r: BlockRecord): string[] =>
        r.replicas.filter((n) => isLive(n) && map().datanodeState(n) === 'NORMAL')
      const candidates = (): DatanodeCandidate[] =>
        [...soft.entries()].map(([id, s]) => ({
          id,
          zone: s.zone,
          live: isLive(id),
          retired: map().datanodeState(id) !== 'NORMAL',
          availableBytes: s.availableBytes,
        }))
      const pathOf = (r: BlockRecord): string => {
        const inode = ns().fileById(r.inodeId)
        return inode ? inodePath(ns(), inode.id) : ''
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
        let pos = from
        let lastErr: unknown
        for (const node of replicas) {
          try {
            if (node === selfId && localStore !== undefined) {
              while (pos < to) {
                const into = await buffers?.take()
                let piece: Uint8Array
                try {
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
              for await (const piece of readRemote(p2p.host(), node, id, pos, to - pos, signal)) {
                pos += piece.length
                yield piece
              }
            }
            if (pos >= to) return
          } catch (err) {
            lastErr = err
            if ((err as { code?: string }).code === 'CORRUPT_REPLICA' && node === selfId)
              reportLocalCorrupt(id)
            log.info({ block: id, node, err: (err as Error).message }, 'replica read failed; trying the next')
          }
        }
        throw new FsError(
          'BLOCK_NOT_FOUND',
          `no replica of block ${id} could be read (${(lastErr as Error | undefined)?.message ?? 'no replicas'})`,
        )
      }

      const manager: BlockManager = {
        attachLocalStore(store, onCorrupt) {
          localStore = store
          reportLocalCorrupt = onCorrupt
        },
        inlineThreshold: () => sm.settings().inlineThreshold,
        zoneOf: (node) => zoneOf(node),
        leaderHttp() {
          const st = meta.group.status()
          if (st.leaderId === undefined || st.leaderId === '' || st.leaderId === selfId) return undefined
          const addr = memberOf(st.leaderId)?.httpAddr
          return addr ? addr : undefined
        },
        writeTarget() {
          const view = membership.view()
          const self = view.find((n) => n.self)
          if (localStore !== undefined && self?.httpAddr) return `http://${self.httpAddr}`
          const dns = view
            .filter(
              (n) => !n.self && n.roles.includes('datanode') && n.liveness === 'alive' && n.httpAddr !== '',
            )
            .sort(
              (a, b) =>
                Number(b.zone === config.zone) - Number(a.zone === config.zone) || Math.random() - 0.5,
            )
          return dns[0] ? `http://${dns[0].httpAddr}` : undefined
        },

        async heartbeat(from, req) {
          if (!isLeader()) return { leader: false }
          const term = meta.group.status().term
          let s = soft.get(from)
          if (s === undefined) {
            s = {
              zone: '',
              lastMs: 0,
              capacityBytes: 0,
              usedBytes: 0,
              availableBytes: 0,
              pendingDeletes: new Set(),
              pendingTransfers: [],
              fullReportTerm: -1,
            }
            soft.set(from, s)
          }
          Object.assign(s, {
            zone: req.zone ?? '',
            lastMs: Date.now(),
            capacityBytes: Number(req.capacityBytes ?? 0),
            usedBytes: Number(req.usedBytes ?? 0),
            availableBytes: Number(req.availableBytes ?? 0),
          })
          const incremental = req.incremental === true
          // Deltas on top of a full report from another term (or from before the node's replicas were
          // dropped) could leave the map wrong for good: take the liveness, ask for a full report.
          if (incremental && s.fullReportTerm !== term) {
            reportsTaken.inc({ kind: 'refused' })
            return { leader: true, fullReportRequested: true }
          }
          reportsTaken.inc({ kind: incremental ? 'incremental' : 'full' })
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
          for (const [id, b] of reported) {
            const r = m.block(id)
            if (r === undefined || r.genStamp !== Number(b.genStamp)) deletes.add(id)
            else if (r.corrupt.includes(from)) {
              // As HDFS: a corrupt replica goes only once enough good ones exist (it may be the last copy).
              if (goodLive(r).length >= r.replication) deletes.add(id)
            } else if (corruptIds.has(id) || r.state !== BLOCK_STATE.COMPLETE || r.replicas.includes(from))
              continue
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
            if (r.replicas.includes(from) || r.corrupt.includes(from))
              removed.push({ blockId: id, node: from })
          }
          for (const id of s.pendingDeletes) deletes.add(id)
          s.pendingDeletes.clear()
          if (added.length + removed.length + corrupt.length > 0) {
            await propose({ updateReplicas: { added, removed, corrupt } })
            if (corrupt.length > 0)
              log.warn({ node: from, blocks: corrupt.map((c) => c.blockId) }, 'corrupt replicas reported')
          }
          if (!incremental) s.fullReportTerm = term
          const transfers = s.pendingTransfers.splice(0)
          return { leader: true, deleteBlocks: [...deletes], transfers }
        },

        async allocate(req, signal) {
          if (!isLeader()) throw Object.assign(new Error('not the metadata leader'), { code: 'NOT_LEADER' })
          const id = ns().idOf(req.path)
          const file = id === undefined ? undefined : ns().fileById(id)
          if (file === undefined) throw new FsError('FILE_NOT_FOUND', `File does not exist: ${req.path}`)
          const targets = chooseTargets({
            candidates: candidates(),
            count: file.replication,
            blockBytes: file.blockSize,
            writer: req.writer,
            exclude: req.exclude,
          })
          const roomless = candidates().filter(
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
              `no live datanode with ${file.blockSize} bytes free (known: ${soft.size}, live: ${candidates().filter((c) => c.live).length}, excluded: ${req.exclude.join(',') || 'none'})`,
            )
          }
          const r = (await meta.group.propose(
            encodeCommand({
              nowMs: Date.now(),
              user: req.user,
              groups: [...req.groups],
              clientName: req.clientName,
              addBlock: { path: req.path, targets },
            }),
            { signal },
          )) as MetaResult
          if (!r.ok) throw errorFromResult(r.code, r.message)
          const v = r.value as { blockId: number; genStamp: number }
          return { blockId: v.blockId, genStamp: v.genStamp, targets, blockSize: file.blockSize }
        },

        async open(caller, path, offset, length, signal, buffers) {
          await meta.group.readBarrier({ signal })
          const file = ns().fileForRead(caller, path)
          if (file.inlined) return undefined
          if (offset > file.size)
            throw new FsError('INVALID_ARGUMENT', `Offset=${offset} out of the range [0, ${file.size}]`)
          const end = length < 0 ? file.size : Math.min(file.size, offset + length)
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
          await meta.group.readBarrier({ signal })
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

        health() {
          const out: { -readonly [K in keyof BlockHealth]: BlockHealth[K] } = {
            blocks: 0,
            underReplicated: 0,
            missing: 0,
            corrupt: 0,
            underReplicatedBlocks: [],
            missingBlocks: [],
            corruptReplicas: [],
            datanodes: [...soft.entries()].map(([id, s]) => ({
              id,
              zone: s.zone,
              state: map().datanodeState(id),
              live: isLive(id),
              availableBytes: s.availableBytes,
              usedBytes: s.usedBytes,
              capacityBytes: s.capacityBytes,
            })),
          }
          for (const r of map().all()) {
            if (r.state !== BLOCK_STATE.COMPLETE) continue
            out.blocks++
            const live = r.replicas.filter((n) => isLive(n)).length
            if (live === 0) {
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
          return out
        },
      }

      const orderReplicas = (replicas: readonly string[]): string[] => {
        const rank = (n: string): number =>
          n === selfId && localStore ? 0 : zoneOf(n) === config.zone ? 1 : 2
        return [...replicas]
          .filter((n) => (n === selfId ? localStore !== undefined : memberOf(n)?.liveness !== 'dead'))
          .sort((a, b) => rank(a) - rank(b) || Math.random() - 0.5)
      }

      const reconcile = async (): Promise<void> => {
        if (!isLeader()) return
        const m = map()
        const now = Date.now()
        for (const [id, until] of transfersInFlight) if (until < now) transfersInFlight.delete(id)
        // 1. Orphans.
        const orphans: BlockRecord[] = []
        for (const r of m.all()) {
          if (orphans.length >= REMOVE_BATCH_MAX) break
          if (m.isOrphan(r)) orphans.push(r)
        }
        if (orphans.length > 0) {
          await propose({ removeBlocks: { ids: orphans.map((r) => r.id) } })
          // Their replicas go with the holders' next heartbeat replies (HDFS invalidates them the same
          // way): an incremental report never lists a replica again once it was reported.
          for (const r of orphans)
            for (const n of new Set([...r.replicas, ...r.corrupt, ...r.targets]))
              soft.get(n)?.pendingDeletes.add(r.id)
        }
        // 2. Datanodes dead beyond the grace: their replicas no longer count.
        const removed: mpb.IReplicaChange[] = []
        const holders = new Set<string>()
        for (const r of m.all()) for (const n of r.replicas) holders.add(n)
        for (const n of holders) {
          if (!deadLongEnough(n)) continue
          for (const id of m.blocksOn(n)) removed.push({ blockId: id, node: n })
          // Should it come back, what it still holds is learnt again from a full report.
          const dn = soft.get(n)
          if (dn !== undefined) dn.fullReportTerm = -1
          log.warn({ node: n }, 'datanode dead beyond the grace: re-replicating its blocks')
        }
        if (removed.length > 0) await propose({ updateReplicas: { removed } })
        // 3. Under-replicated → transfers; surplus and corrupt replicas → removals.
        const surplus: mpb.IReplicaChange[] = []
        for (const r of m.all()) {
          if (r.state !== BLOCK_STATE.COMPLETE) continue
          const good = goodLive(r)
          // A block back at its replication has no transfer left to wait for: forget the one handed out,
          // or a block healed less than TRANSFER_TIMEOUT_MS ago that loses another replica would wait
          // out the rest of that timeout before it is re-replicated again.
          if (good.length >= r.replication) transfersInFlight.delete(r.id)
          // Corrupt replicas go once enough good ones exist (as in HDFS, a corrupt one may be the last
          // copy until then). Incremental reports never list them again, so the delete is sent here.
          if (good.length >= r.replication)
            for (const n of r.corrupt) {
              surplus.push({ blockId: r.id, node: n })
              soft.get(n)?.pendingDeletes.add(r.id)
            }
          if (good.length < r.replication && !transfersInFlight.has(r.id)) {
            const sources = r.replicas.filter((n) => isLive(n))
            if (sources.length === 0) continue
            const targets = chooseTargets({
              candidates: candidates(),
              count: r.replication - good.length,
              blockBytes: r.length,
              existing: good.map((n) => ({ id: n, zone: zoneOf(n) })),
              exclude: [...r.replicas, ...r.corrupt],
            })
            if (targets.length === 0) continue
            const source = sources.sort(
              (a, b) =>
                Number(map().datanodeState(a) !== 'NORMAL') - Number(map().datanodeState(b) !== 'NORMAL'),
            )[0]!
            const s = soft.get(source)
            if (s === undefined) continue
            s.pendingTransfers.push({ blockId: r.id, genStamp: r.genStamp, targets })
            transfersInFlight.set(r.id, now + TRANSFER_TIMEOUT_MS)
            log.info({ block: r.id, source, targets }, 're-replicating')
          } else if (good.length > r.replication) {
            const byZone = new Map<string, number>()
            for (const n of good) byZone.set(zoneOf(n), (byZone.get(zoneOf(n)) ?? 0) + 1)
            const victim = [...good].sort(
              (a, b) =>
                (byZone.get(zoneOf(b)) ?? 0) - (byZone.get(zoneOf(a)) ?? 0) ||
                (soft.get(a)?.availableBytes ?? 0) - (soft.get(b)?.availableBytes ?? 0),
            )[0]!
            surplus.push({ blockId: r.id, node: victim })
            soft.get(victim)?.pendingDeletes.add(r.id)
          } else if (good.length >= r.replication) {
            for (const n of r.replicas) {
              if (map().datanodeState(n) === 'DECOMMISSIONED') {
                surplus.push({ blockId: r.id, node: n })
                soft.get(n)?.pendingDeletes.add(r.id)
              }
            }
          }
        }
        if (surplus.length > 0) await propose({ updateReplicas: { removed: surplus } })
        // 4. Decommissioning: a draining node whose blocks all live elsewhere is done.
        for (const d of m.datanodeRecords()) {
          if (m.datanodeState(d.id) !== 'DRAINING') continue
          const pending = m.blocksOn(d.id).filter((id) => {
            const r = m.block(id)!
            return r.state === BLOCK_STATE.COMPLETE && goodLive(r).length < r.replication
          })
          if (pending.length === 0) {
            await propose({ setDatanodeState: { node: d.id, state: mpb.DatanodeState.DECOMMISSIONED } })
            log.info({ node: d.id }, 'datanode decommissioned')
          }
        }
      }

      return {
        api: manager,
        routes: blockRoutes(manager, meta),
        service: {
          async start() {
            const host: P2PHost = p2p.host()
            unhandles.push(
              await handleRequests(host, BLOCK_PROTOCOLS.report, async (from, body) =>
                pb.HeartbeatReply.encode(
                  await manager.heartbeat(from, pb.HeartbeatRequest.decode(body)),
                ).finish(),
              ),
              await handleRequests(
                host,
                BLOCK_PROTOCOLS.alloc,
                async (_from, body, signal) =>
                  new TextEncoder().encode(
                    JSON.stringify(
                      await manager.allocate(
                        JSON.parse(new TextDecoder().decode(body)) as AllocRequest,
                        signal,
                      ),
                    ),
                  ),
                { timeoutMs: 15_000 },
              ),
            )
            loop = new Periodic({
              intervalMs: heartbeatMs,
              firstDelayMs: heartbeatMs,
              tick: reconcile,
              onError: (err) => log.warn({ err: (err as Error).message }, 'block reconcile step failed'),
            })
            loop.start()
          },
          async stop() {
            await loop?.stop()
            for (const u of unhandles.splice(0)) await u().catch(() => undefined)
          },
        },
      }
    },
  }
}

/** Datanode heartbeats: 5 gossip intervals, within 0.3..3 s (HDFS: 3 s). */
export function heartbeatIntervalMs(gossipIntervalMs: number): number {
  return Math.min(3_000, Math.max(300, 5 * gossipIntervalMs))
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

function blockRoutes(manager: BlockManager, meta: MetadataNode): ApiRoutes {
  const sm = meta.stateMachine
  return {
    name: 'blocks',
    register(app: FastifyInstance) {
      app.get(
        '/api/v1/fs/blocks',
        {
          schema: {
            summary: "A file's blocks with their replicas' nodes and zones",
            tags: ['fs'],
            querystring: {
              type: 'object',
              properties: { path: { type: 'string' }, 'user.name': { type: 'string' } },
              required: ['path'],
            },
            response: { 200: { type: 'object', additionalProperties: true } },
          },
        },
        async (req) => {
          const q = req.query as { path: string; 'user.name'?: string }
          await meta.group.readBarrier({ signal: AbortSignal.timeout(10_000) })
          const ns = sm.module<Namespace>('fs')
          const caller: Caller = { user: q['user.name'] ?? sm.settings().superuser, groups: [] }
          const file = ns.fileForRead(caller, q.path)
          const map = sm.module<BlockMap>('blocks')
          let offset = 0
          return {
            path: q.path,
            length: file.size,
            inlined: file.inlined,
            replication: file.replication,
            blockSize: file.blockSize,
            blocks: file.blocks.map((b) => {
              const r = map.block(b.id)
              const out = {
                id: b.id,
                offset,
                length: b.length,
                genStamp: b.genStamp,
                replicas: (r?.replicas ?? []).map((n) => ({ node: n, zone: manager.zoneOf(n) })),
                corrupt: [...(r?.corrupt ?? [])],
              }
              offset += b.length
              return out
            }),
          }
        },
      )
      app.put(
        '/api/v1/fs/datanodes/state',
        {
          schema: {
            summary:
              'Decommission a datanode (DRAINING: its blocks are copied elsewhere, then it is DECOMMISSIONED) or return it to NORMAL (superuser)',
            tags: ['fs'],
            querystring: {
              type: 'object',
              properties: {
                node: { type: 'string' },
                state: { type: 'string', enum: ['NORMAL', 'DRAINING'] },
                'user.name': { type: 'string' },
              },
              required: ['node', 'state'],
            },
            response: { 200: { type: 'object', additionalProperties: true } },
          },
        },
        async (req) => {
          const q = req.query as { node: string; state: 'NORMAL' | 'DRAINING'; 'user.name'?: string }
          const state =
            q.state === 'DRAINING' ? mpb.DatanodeState.DRAINING : mpb.DatanodeState.DATANODE_NORMAL
          const r = (await meta.group.propose(
            encodeCommand({
              nowMs: Date.now(),
              user: q['user.name'] ?? '',
              setDatanodeState: { node: q.node, state },
            }),
          )) as MetaResult
          if (!r.ok) throw errorFromResult(r.code, r.message)
          return r.value as Record<string, unknown>
        },
      )
      app.get(
        '/api/v1/fs/health',
        {
          schema: {
            summary: 'Under-replicated, missing and corrupt blocks; datanodes (fsck)',
            tags: ['fs'],
            response: { 200: { type: 'object', additionalProperties: true } },
          },
        },
        async () => {
          // Datanodes' soft state lives on the leader: ask it when this node is not the leader.
          const leader = manager.leaderHttp()
          if (leader === undefined) return manager.health()
          const res = await fetch(`http://${leader}/api/v1/fs/health`, {
            signal: AbortSignal.timeout(10_000),
          })
          if (res.status !== 200)
            throw new FsError('NOT_ENOUGH_DATANODES', `the leader answered ${res.status}`)
          return (await res.json()) as BlockHealth
        },
      )
    },
  }
}
