/**
 * The placer: places one queued job from this node's view, Sparrow-style, and commits the placement.
 *
 * 1. Sample d feasible workers per task from the view and order them by best fit (placement.ts).
 * 2. Ask the chosen worker(s) to Reserve. The worker decides atomically; a refusal (the view was stale)
 *    refreshes the view from the reply and costs a retry on the next candidate, or a new sample after a
 *    backoff — never a double allocation. Bounded: `roundsMax` rounds.
 *    Gangs (`tasks` > 1) reserve every task in one global order (node id, then rank), each hold with a
 *    short TTL; the first refusal releases every hold of the round. No partial hold outlives a round, so
 *    two gangs competing for the same workers cannot deadlock: one wins, the other backs off and retries.
 * 3. Commit: PlaceJob through `propose` (the state machine revalidates: still QUEUED at this attempt, no
 *    GPU bound elsewhere). If it is refused, every hold is released. Then each worker gets Commit, binds
 *    its hold and starts its task.
 *
 * Concurrency: `place` calls may overlap (the queue runs several); they share the view, where each counts
 * its reservations in flight so that they spread over different workers.
 */
import { SchedError, isSchedError, type SchedErrorCode } from './errors.js'
import { chooseGangSlots, sampleCandidates, type TaskShape } from './placement.js'
import type { JobProposer } from './proposer.js'
import { WorkerRpcClient, type ReserveReply } from './rpc.js'
import type { SchedTransport } from './transport.js'
import type { JobRecord, TaskPlacement } from './types.js'
import type { ResourceView, ViewEntry } from './view.js'
import { sleep, uniform, type Clock, type Rng } from './world.js'

export interface PlacerInit {
  /** This node's id (part of reservation ids). */
  readonly self: string
  readonly transport: SchedTransport
  readonly view: ResourceView
  readonly clock: Clock
  readonly rng: Rng
  readonly propose: JobProposer
  /** d: workers sampled per task (default 2, Sparrow's). */
  readonly sampleSize?: number
  /** Deadline of one Reserve/Release/Commit request (default 1000 ms). */
  readonly requestTimeoutMs?: number
  /** Hold of a single task's reservation until it is committed (default 5000 ms). */
  readonly reserveTtlMs?: number
  /** Hold of each gang task's reservation (default 2000 ms): short, so an abandoned gang frees fast. */
  readonly gangTtlMs?: number
  /** Sample-and-reserve rounds before the job goes back to wait (default 4). */
  readonly roundsMax?: number
  /** Backoff between rounds, [base, max] ms with jitter (default [1, 50]). */
  readonly backoffMs?: readonly [number, number]
  /** Why the project may not place more (its GPU-hour quota is used up), or undefined. */
  readonly quotaExhausted?: (project: string) => string | undefined
  /** Bugs a test can plant to prove its checks catch them (never set outside tests). */
  readonly knownBugs?: ReadonlySet<PlacerBug>
}

/** 'gang-keep-partial': a refused gang round keeps the holds it got (hold and wait). */
export type PlacerBug = 'gang-keep-partial'

export type PlaceFailure =
  | Extract<SchedErrorCode, 'NO_CAPACITY' | 'QUOTA_EXHAUSTED' | 'JOB_STATE_CONFLICT' | 'GPU_CONFLICT'>
  | 'COMMIT_UNKNOWN'

export type PlaceResult =
  | {
      readonly placed: true
      readonly runId: string
      readonly tasks: readonly TaskPlacement[]
      readonly rounds: number
      /** Reserve requests refused (or unanswered) on the way. */
      readonly refusals: number
      /** From the start of `place` to PlaceJob committed. */
      readonly latencyMs: number
    }
  | {
      readonly placed: false
      /**
       * NO_CAPACITY: nothing fits now (the job waits). QUOTA_EXHAUSTED: the project is over quota.
       * JOB_STATE_CONFLICT: the job is no longer queued at this attempt (placed elsewhere, killed).
       * GPU_CONFLICT: the state machine saw a GPU bound elsewhere (stale: retry later).
       * COMMIT_UNKNOWN: PlaceJob failed without an answer (it may have committed; the workers' holds
       * settle it by looking the job up when they lapse).
       */
      readonly code: PlaceFailure
      readonly reason: string
      readonly rounds: number
      readonly refusals: number
    }

interface Hold {
  readonly node: string
  readonly rank: number
  readonly reservationId: string
  readonly gpus: readonly string[]
  readonly port: number
  readonly addr: string
}

export class Placer {
  private readonly init: PlacerInit
  private readonly rpc: WorkerRpcClient
  private readonly d: number
  private readonly timeoutMs: number
  private readonly roundsMax: number
  /** Reservation ids are `<self>.<incarnation>.<n>.<rank>`: unique across this placer's restarts. */
  private readonly incarnation: number
  private counter = 0

  constructor(init: PlacerInit) {
    this.init = init
    this.rpc = new WorkerRpcClient(init.transport)
    this.d = Math.max(1, init.sampleSize ?? 2)
    this.timeoutMs = init.requestTimeoutMs ?? 1000
    this.roundsMax = Math.max(1, init.roundsMax ?? 4)
    this.incarnation = init.clock.now()
  }

  /** Places `job` (QUEUED) once: reserved and committed, or a reason it could not be now. */
  async place(job: JobRecord, signal?: AbortSignal): Promise<PlaceResult> {
    const t0 = this.init.clock.now()
    const over = this.init.quotaExhausted?.(job.project)
    if (over !== undefined)
      return { placed: false, code: 'QUOTA_EXHAUSTED', reason: over, rounds: 0, refusals: 0 }
    const shape: TaskShape = {
      gpus: job.spec.gpus,
      gpuModel: job.spec.gpuModel,
      cpus: job.spec.cpus,
      memoryMiB: job.spec.memoryMiB,
      zone: job.spec.zone,
    }
    const attempt = job.attempts + 1
    const exclude = new Set<string>()
    let refusals = 0
    let lastReason = 'no worker in the view fits the job'
    for (let round = 1; round <= this.roundsMax; round++) {
      signal?.throwIfAborted()
      const n = ++this.counter
      const holds =
        job.spec.tasks === 1
          ? await this.reserveOne(job, attempt, shape, n, exclude, (why) => {
              refusals++
              lastReason = why
            })
          : await this.reserveGang(job, attempt, shape, n, exclude, (why) => {
              refusals++
              lastReason = why
            })
      if (holds === 'none-fit')
        return { placed: false, code: 'NO_CAPACITY', reason: lastReason, rounds: round, refusals }
      if (holds === undefined) {
        if (round < this.roundsMax) await sleep(this.init.clock, this.backoff(round), signal)
        continue
      }
      return this.commit(job, attempt, holds, round, refusals, t0, signal)
    }
    return { placed: false, code: 'NO_CAPACITY', reason: lastReason, rounds: this.roundsMax, refusals }
  }

  // ---- reserving

  /** One task: the sampled candidates in best-fit order, until one accepts. */
  private async reserveOne(
    job: JobRecord,
    attempt: number,
    shape: TaskShape,
    n: number,
    exclude: Set<string>,
    refused: (why: string) => void,
  ): Promise<Hold[] | undefined | 'none-fit'> {
    const candidates = sampleCandidates(this.init.view.all(), shape, this.d, this.init.rng, exclude)
    if (candidates.length === 0) return 'none-fit'
    for (const c of candidates) {
      const hold = await this.reserve(
        job,
        attempt,
        shape,
        c,
        0,
        `${this.idPrefix(n)}.0`,
        this.init.reserveTtlMs ?? 5000,
      )
      if (typeof hold !== 'string') return [hold]
      exclude.add(c.ad.node)
      refused(hold)
    }
    return undefined
  }

  /** A gang: slots for every task, reserved one by one in global order; all or none. */
  private async reserveGang(
    job: JobRecord,
    attempt: number,
    shape: TaskShape,
    n: number,
    exclude: Set<string>,
    refused: (why: string) => void,
  ): Promise<Hold[] | undefined | 'none-fit'> {
    const slots = chooseGangSlots(this.init.view.all(), shape, job.spec.tasks, this.d, this.init.rng, exclude)
    if (slots === undefined) return 'none-fit'
    // The global order: by node id; ranks follow it, so rank 0 is the first node.
    const ordered = slots
      .map((e) => e)
      .sort((a, b) => (a.ad.node < b.ad.node ? -1 : a.ad.node > b.ad.node ? 1 : 0))
    const holds: Hold[] = []
    const ttl = this.init.gangTtlMs ?? 2000
    for (let rank = 0; rank < ordered.length; rank++) {
      const hold = await this.reserve(
        job,
        attempt,
        shape,
        ordered[rank]!,
        rank,
        `${this.idPrefix(n)}.${rank}`,
        ttl,
      )
      if (typeof hold === 'string') {
        refused(hold)
        if (!this.init.knownBugs?.has('gang-keep-partial')) this.releaseAll(holds)
        return undefined
      }
      holds.push(hold)
    }
    return holds
  }

  /** One Reserve; the hold, or why not. The view counts it while in flight and takes the reply's ad. */
  private async reserve(
    job: JobRecord,
    attempt: number,
    shape: TaskShape,
    target: ViewEntry,
    rank: number,
    reservationId: string,
    ttlMs: number,
  ): Promise<Hold | string> {
    const node = target.ad.node
    const view = this.init.view
    view.hold(node, shape.gpus, shape.cpus, shape.memoryMiB)
    let reply: ReserveReply
    try {
      reply = await this.rpc.reserve(
        node,
        {
          reservationId,
          jobId: job.id,
          attempt,
          rank,
          gpus: shape.gpus,
          gpuModel: shape.gpuModel,
          cpus: shape.cpus,
          memoryMiB: shape.memoryMiB,
          ttlMs,
          wantPort: rank === 0,
        },
        { timeoutMs: this.timeoutMs },
      )
    } catch (err) {
      view.release(node, shape.gpus, shape.cpus, shape.memoryMiB)
      // No answer: the worker may hold it. Release it (best effort); its TTL ends it anyway.
      void this.rpc.release(node, reservationId, { timeoutMs: this.timeoutMs }).catch(() => undefined)
      return `${node}: ${(err as Error).message}`
    }
    view.release(node, shape.gpus, shape.cpus, shape.memoryMiB)
    if (reply.ad !== undefined) view.apply(reply.ad)
    if (!reply.ok) return `${node} refused: ${reply.reason}`
    return {
      node,
      rank,
      reservationId,
      gpus: reply.gpus,
      port: reply.port,
      addr: reply.ad?.addr || target.ad.addr || node,
    }
  }

  private releaseAll(holds: readonly Hold[]): void {
    for (const h of holds)
      void this.rpc.release(h.node, h.reservationId, { timeoutMs: this.timeoutMs }).catch(() => undefined)
  }

  // ---- committing

  private async commit(
    job: JobRecord,
    attempt: number,
    holds: readonly Hold[],
    rounds: number,
    refusals: number,
    t0: number,
    signal: AbortSignal | undefined,
  ): Promise<PlaceResult> {
    const tasks: TaskPlacement[] = holds.map((h) => ({
      rank: h.rank,
      node: h.node,
      gpus: h.gpus,
      addr: h.addr,
    }))
    let runId: string
    try {
      const value = (await this.init.propose(
        {
          placeJob: {
            jobId: job.id,
            attempt,
            tasks: tasks.map((t) => ({ rank: t.rank, node: t.node, gpus: [...t.gpus], addr: t.addr })),
            masterPort: holds.find((h) => h.rank === 0)?.port ?? 0,
          },
        },
        { signal },
      )) as { runId: string }
      runId = value.runId
    } catch (err) {
      if (isSchedError(err)) {
        this.releaseAll(holds)
        const code: PlaceFailure = err.code === 'GPU_CONFLICT' ? 'GPU_CONFLICT' : 'JOB_STATE_CONFLICT'
        return { placed: false, code, reason: err.message, rounds, refusals }
      }
      return { placed: false, code: 'COMMIT_UNKNOWN', reason: (err as Error).message, rounds, refusals }
    }
    const latencyMs = this.init.clock.now() - t0
    void this.sendCommits(job, attempt, holds)
    return { placed: true, runId, tasks, rounds, refusals, latencyMs }
  }

  /**
   * Tells each worker to bind and start. A worker that refuses (its hold lapsed before the commit and it
   * could not confirm it) means the run cannot start whole: the job is queued again (RequeueJob), or, if
   * a task already started, reported lost.
   */
  private async sendCommits(job: JobRecord, attempt: number, holds: readonly Hold[]): Promise<void> {
    const replies = await Promise.all(
      holds.map(
        (h) =>
          this.rpc
            .commit(
              h.node,
              { reservationId: h.reservationId, jobId: job.id, attempt },
              { timeoutMs: this.timeoutMs },
            )
            .catch(() => ({ ok: true as const })), // no answer: the hold's expiry confirms it from Raft
      ),
    )
    const refused = replies.find((r) => !r.ok)
    if (refused === undefined) return
    const reason = `a worker refused the commit: ${(refused as { reason: string }).reason}`
    try {
      await this.init.propose({ requeueJob: { jobId: job.id, attempt, reason } })
    } catch (err) {
      if (isSchedError(err, 'JOB_STATE_CONFLICT'))
        await this.init.propose({ markJobLost: { jobId: job.id, attempt, reason } }).catch(() => undefined)
    }
  }

  private idPrefix(n: number): string {
    return `${this.init.self}.${this.incarnation}.${n}`
  }

  private backoff(round: number): number {
    const [base, max] = this.init.backoffMs ?? [1, 50]
    const ceiling = Math.min(max, base * 2 ** round)
    return ceiling / 2 + uniform(this.init.rng) * (ceiling / 2)
  }
}

/** A result as an error, for callers that want one (the API's synchronous placement, if any). */
export function placeFailureError(r: Extract<PlaceResult, { placed: false }>): SchedError {
  const code: SchedErrorCode = r.code === 'COMMIT_UNKNOWN' ? 'NO_CAPACITY' : r.code
  return new SchedError(code, r.reason)
}
