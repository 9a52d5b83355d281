/**
 * The placer ↔ worker requests (proto/sched.proto SchedRequest/SchedReply) over a {@link SchedTransport}:
 * Reserve (hold resources for one task, with a TTL), Release (drop a hold), Commit (the placement is in
 * Raft: bind and start). Every request is idempotent by its reservation id, so a retry after a timeout is
 * safe.
 */
import { hopsd } from '../proto/sched.js'
import { adFromProto, adToProto, type ResourceAd } from './ads.js'
import type { RequestOptions, SchedTransport } from './transport.js'

import pb = hopsd.sched

export interface ReserveRequest {
  /** Unique per placement attempt and task: a retried request gets the first answer. */
  readonly reservationId: string
  readonly jobId: number
  readonly attempt: number
  readonly rank: number
  readonly gpus: number
  /** '' = any model. */
  readonly gpuModel: string
  readonly cpus: number
  readonly memoryMiB: number
  /** The hold lapses after this long unless committed (or confirmed in Raft by the worker). */
  readonly ttlMs: number
  /** Rank 0 of a gang: hold a rendezvous port too. */
  readonly wantPort: boolean
}

export type ReserveReply =
  | { readonly ok: true; readonly gpus: readonly string[]; readonly port: number; readonly ad?: ResourceAd }
  | { readonly ok: false; readonly reason: string; readonly ad?: ResourceAd }

export interface CommitRequest {
  readonly reservationId: string
  readonly jobId: number
  readonly attempt: number
}

export type CommitReply = { readonly ok: true } | { readonly ok: false; readonly reason: string }

/** What a worker serves. Calls for one worker are made one at a time (the transport's handler). */
export interface WorkerRpcHandler {
  reserve(req: ReserveRequest): ReserveReply
  release(reservationId: string): boolean
  commit(req: CommitRequest): CommitReply | Promise<CommitReply>
}

/** Serves `handler` on `transport` (replaces any handler there). */
export function serveWorkerRpc(transport: SchedTransport, handler: WorkerRpcHandler): void {
  transport.handle(async (_from, payload) => {
    let req: pb.SchedRequest
    try {
      req = pb.SchedRequest.decode(payload)
    } catch {
      return pb.SchedReply.encode({}).finish()
    }
    switch (req.op) {
      case 'reserve': {
        const r = req.reserve!
        const reply = handler.reserve({
          reservationId: r.reservationId ?? '',
          jobId: Number(r.jobId ?? 0),
          attempt: r.attempt ?? 0,
          rank: r.rank ?? 0,
          gpus: r.gpus ?? 0,
          gpuModel: r.gpuModel ?? '',
          cpus: r.cpus ?? 0,
          memoryMiB: Number(r.memoryMiB ?? 0),
          ttlMs: r.ttlMs ?? 0,
          wantPort: r.wantPort ?? false,
        })
        const ad = reply.ad === undefined ? null : adToProto(reply.ad)
        return pb.SchedReply.encode({
          reserve: reply.ok
            ? { ok: true, gpus: [...reply.gpus], port: reply.port, ad }
            : { ok: false, reason: reply.reason, ad },
        }).finish()
      }
      case 'release':
        return pb.SchedReply.encode({
          release: { released: handler.release(req.release!.reservationId ?? '') },
        }).finish()
      case 'commit': {
        const c = req.commit!
        const reply = await handler.commit({
          reservationId: c.reservationId ?? '',
          jobId: Number(c.jobId ?? 0),
          attempt: c.attempt ?? 0,
        })
        return pb.SchedReply.encode({
          commit: reply.ok ? { ok: true } : { ok: false, reason: reply.reason },
        }).finish()
      }
      default:
        return pb.SchedReply.encode({}).finish()
    }
  })
}

/** The placer's side. Rejects with the transport's errors; a malformed reply reads as a refusal. */
export class WorkerRpcClient {
  constructor(private readonly transport: SchedTransport) {}

  async reserve(worker: string, req: ReserveRequest, opts: RequestOptions): Promise<ReserveReply> {
    const bytes = await this.transport.request(
      worker,
      pb.SchedRequest.encode({ reserve: { ...req } }).finish(),
      opts,
    )
    const r = pb.SchedReply.decode(bytes).reserve
    if (!r) return { ok: false, reason: 'malformed reply' }
    const ad = r.ad ? adFromProto(r.ad) : undefined
    return r.ok
      ? { ok: true, gpus: r.gpus ?? [], port: r.port ?? 0, ad }
      : { ok: false, reason: r.reason ?? '', ad }
  }

  async release(worker: string, reservationId: string, opts: RequestOptions): Promise<boolean> {
    const bytes = await this.transport.request(
      worker,
      pb.SchedRequest.encode({ release: { reservationId } }).finish(),
      opts,
    )
    return pb.SchedReply.decode(bytes).release?.released ?? false
  }

  async commit(worker: string, req: CommitRequest, opts: RequestOptions): Promise<CommitReply> {
    const bytes = await this.transport.request(
      worker,
      pb.SchedRequest.encode({ commit: { ...req } }).finish(),
      opts,
    )
    const c = pb.SchedReply.decode(bytes).commit
    if (!c) return { ok: false, reason: 'malformed reply' }
    return c.ok ? { ok: true } : { ok: false, reason: c.reason ?? '' }
  }
}
