/**
 * The worker's reservation table: the one authority over the node's GPUs (and its CPU and memory
 * share). A placer's Reserve is decided here, atomically — one synchronous call checks and takes the
 * resources — so two placers acting on the same stale view can never both get a GPU: the second is
 * refused and retries elsewhere.
 *
 * A reservation is `held` (with an expiry: the placement is not committed yet) or `bound` (the placement
 * is in Raft; the task runs or is starting; no expiry — it ends when the task's end is committed). The
 * table neither reads a clock nor runs timers: the worker passes `nowMs` in and drives expiry.
 */
import type { GpuDevice } from './types.js'

export interface Reservation {
  readonly id: string
  readonly jobId: number
  readonly attempt: number
  readonly rank: number
  /** GPU UUIDs, lowest index first. */
  readonly gpus: readonly string[]
  readonly cpus: number
  readonly memoryMiB: number
  /** Rendezvous port held for a gang's rank 0 (0 = none). */
  readonly port: number
  readonly state: 'held' | 'bound'
  /** Held: when the hold lapses. */
  readonly expiresMs: number
  readonly createdMs: number
}

export interface ReserveAsk {
  readonly reservationId: string
  readonly jobId: number
  readonly attempt: number
  readonly rank: number
  readonly gpus: number
  readonly gpuModel: string
  readonly cpus: number
  readonly memoryMiB: number
  readonly ttlMs: number
  readonly wantPort: boolean
}

export type ReserveOutcome =
  | { readonly ok: true; readonly reservation: Reservation; readonly repeated: boolean }
  | { readonly ok: false; readonly reason: string }

/** Bugs the simulator can plant to prove its checkers catch them (never set outside tests). */
export type ReservationBug = 'double-reserve'

export interface ReservationTableInit {
  readonly gpus: readonly GpuDevice[]
  readonly cpus: number
  readonly memoryMiB: number
  /** Ports for gangs' rendezvous, [min, max] inclusive (default 29500..29999). */
  readonly portRange?: readonly [number, number]
  /** Bound on reservations (default 1024): each holds at least a slot even with 0 GPUs. */
  readonly reservationsMax?: number
  readonly knownBugs?: ReadonlySet<ReservationBug>
}

export class ReservationTable {
  private devices: GpuDevice[]
  private readonly byId = new Map<string, Reservation>()
  /** GPU uuid → reservation id. */
  private readonly gpuOwner = new Map<string, string>()
  private readonly portsUsed = new Set<number>()
  private readonly cpus: number
  private readonly memoryMiB: number
  private cpusUsed = 0
  private memoryMiBUsed = 0
  private readonly portMin: number
  private readonly portMax: number
  private readonly reservationsMax: number
  private readonly bugs: ReadonlySet<ReservationBug>

  constructor(init: ReservationTableInit) {
    this.devices = [...init.gpus].sort((a, b) => a.index - b.index)
    this.cpus = init.cpus
    this.memoryMiB = init.memoryMiB
    ;[this.portMin, this.portMax] = init.portRange ?? [29500, 29999]
    this.reservationsMax = init.reservationsMax ?? 1024
    this.bugs = init.knownBugs ?? new Set()
  }

  /**
   * Holds `ask.gpus` healthy free GPUs (of `gpuModel` when given, lowest index first) and the CPU and
   * memory, until `nowMs + ttlMs`; or refuses with the reason. A repeated id answers what the first did
   * while that reservation lives.
   */
  reserve(ask: ReserveAsk, nowMs: number): ReserveOutcome {
    const existing = this.byId.get(ask.reservationId)
    if (existing !== undefined) {
      if (existing.jobId !== ask.jobId || existing.attempt !== ask.attempt || existing.rank !== ask.rank)
        return { ok: false, reason: `reservation id ${ask.reservationId} is taken by another task` }
      return { ok: true, reservation: existing, repeated: true }
    }
    if (ask.reservationId === '') return { ok: false, reason: 'no reservation id' }
    if (this.byId.size >= this.reservationsMax) return { ok: false, reason: 'reservation table full' }
    if (ask.cpus > this.cpus - this.cpusUsed + 1e-9)
      return { ok: false, reason: `${ask.cpus} CPUs asked, ${round3(this.cpus - this.cpusUsed)} free` }
    if (ask.memoryMiB > this.memoryMiB - this.memoryMiBUsed)
      return { ok: false, reason: `${ask.memoryMiB} MiB asked, ${this.memoryMiB - this.memoryMiBUsed} free` }
    const chosen: string[] = []
    for (const d of this.devices) {
      if (chosen.length === ask.gpus) break
      if (!d.healthy) continue
      if (ask.gpuModel !== '' && d.model !== ask.gpuModel) continue
      if (this.gpuOwner.has(d.uuid) && !this.bugs.has('double-reserve')) continue
      chosen.push(d.uuid)
    }
    if (chosen.length < ask.gpus) {
      const model = ask.gpuModel === '' ? '' : ` ${ask.gpuModel}`
      return { ok: false, reason: `${ask.gpus}${model} GPUs asked, ${chosen.length} free` }
    }
    let port = 0
    if (ask.wantPort) {
      for (let p = this.portMin; p <= this.portMax; p++)
        if (!this.portsUsed.has(p)) {
          port = p
          break
        }
      if (port === 0) return { ok: false, reason: 'no rendezvous port free' }
    }
    const r: Reservation = {
      id: ask.reservationId,
      jobId: ask.jobId,
      attempt: ask.attempt,
      rank: ask.rank,
      gpus: chosen,
      cpus: ask.cpus,
      memoryMiB: ask.memoryMiB,
      port,
      state: 'held',
      expiresMs: nowMs + Math.max(0, ask.ttlMs),
      createdMs: nowMs,
    }
    this.add(r)
    return { ok: true, reservation: r, repeated: false }
  }

  get(id: string): Reservation | undefined {
    return this.byId.get(id)
  }

  /** Drops a held reservation (a bound one is left alone: its task runs). True when dropped. */
  release(id: string): boolean {
    const r = this.byId.get(id)
    if (r === undefined || r.state !== 'held') return false
    this.remove(r)
    return true
  }

  /**
   * The placement is committed: the hold becomes bound to (jobId, attempt) and no longer expires.
   * Refused when the reservation is gone (expired, released) or was made for another job or attempt.
   */
  bind(
    id: string,
    jobId: number,
    attempt: number,
  ): { ok: true; reservation: Reservation } | { ok: false; reason: string } {
    const r = this.byId.get(id)
    if (r === undefined) return { ok: false, reason: `reservation ${id} is gone (expired or released)` }
    if (r.jobId !== jobId || r.attempt !== attempt)
      return { ok: false, reason: `reservation ${id} is for job ${r.jobId} attempt ${r.attempt}` }
    if (r.state === 'bound') return { ok: true, reservation: r }
    const bound: Reservation = { ...r, state: 'bound', expiresMs: 0 }
    this.byId.set(id, bound)
    return { ok: true, reservation: bound }
  }

  /** The task ended and its end is committed: its resources are free again. */
  unbind(id: string): boolean {
    const r = this.byId.get(id)
    if (r === undefined) return false
    this.remove(r)
    return true
  }

  /** Held reservations whose expiry has passed (the caller decides: bind after a lookup, or release). */
  expired(nowMs: number): Reservation[] {
    const out: Reservation[] = []
    for (const r of this.byId.values()) if (r.state === 'held' && r.expiresMs <= nowMs) out.push(r)
    return out
  }

  /** Extends a held reservation (its placement is being confirmed). */
  extend(id: string, untilMs: number): void {
    const r = this.byId.get(id)
    if (r !== undefined && r.state === 'held') this.byId.set(id, { ...r, expiresMs: untilMs })
  }

  all(): Reservation[] {
    return [...this.byId.values()]
  }

  bound(): Reservation[] {
    return this.all().filter((r) => r.state === 'bound')
  }

  /** The reservation a GPU belongs to, if any. */
  ownerOf(uuid: string): string | undefined {
    return this.gpuOwner.get(uuid)
  }

  get cpusFree(): number {
    return round3(this.cpus - this.cpusUsed)
  }

  get memoryMiBFree(): number {
    return this.memoryMiB - this.memoryMiBUsed
  }

  get gpus(): readonly GpuDevice[] {
    return this.devices
  }

  /**
   * New device list from discovery (health changes). A GPU that disappears or turns unhealthy keeps its
   * reservation (its task runs on); it only gets no new ones.
   */
  setGpus(gpus: readonly GpuDevice[]): void {
    this.devices = [...gpus].sort((a, b) => a.index - b.index)
  }

  /** The reservations, to persist (a restarted worker learns what it had promised). */
  snapshot(): Reservation[] {
    return this.all()
  }

  /** Loads persisted reservations into an empty table (a restart). */
  restore(list: readonly Reservation[]): void {
    if (this.byId.size > 0) throw new Error('ReservationTable.restore: the table is not empty')
    for (const r of list) this.add(r)
  }

  private add(r: Reservation): void {
    this.byId.set(r.id, r)
    for (const g of r.gpus) this.gpuOwner.set(g, r.id)
    if (r.port !== 0) this.portsUsed.add(r.port)
    this.cpusUsed += r.cpus
    this.memoryMiBUsed += r.memoryMiB
  }

  private remove(r: Reservation): void {
    this.byId.delete(r.id)
    for (const g of r.gpus) if (this.gpuOwner.get(g) === r.id) this.gpuOwner.delete(g)
    if (r.port !== 0) this.portsUsed.delete(r.port)
    this.cpusUsed -= r.cpus
    this.memoryMiBUsed -= r.memoryMiB
    if (this.byId.size === 0) {
      this.cpusUsed = 0
      this.memoryMiBUsed = 0
    }
  }
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000
}
