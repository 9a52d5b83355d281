/**
 * The cluster view of one node: the newest resource ad of every gpu node, with its age, and expiry of
 * nodes that went silent. What placement samples from; soft state, possibly stale — the workers are the
 * authority and refuse what they cannot give.
 *
 * Ordering: an ad replaces the entry when its (incarnation, seq) is newer; the same (incarnation, seq)
 * only refreshes the entry's age (a periodic re-publication); older ones are dropped (reordered or late).
 *
 * Local holds: a placer counts the resources of its own reservations in flight against the entry
 * ({@link ResourceView.hold}), so its concurrent placements do not all pick the same free GPUs while the
 * worker's next ad is on its way.
 */
import { freeGpus, type ResourceAd } from './ads.js'
import type { CapacitySummary } from './spec.js'
import type { Clock } from './world.js'

export interface ViewEntry {
  readonly ad: ResourceAd
  /** When this node's ad (this one or an identical re-publication) last arrived, on the view's clock. */
  readonly receivedMs: number
  /** Healthy free GPUs in the ad (cached). */
  readonly freeGpus: number
  /** GPUs / CPUs / memory held by this node's own reservations in flight. */
  readonly heldGpus: number
  readonly heldCpus: number
  readonly heldMemoryMiB: number
}

export interface ResourceViewInit {
  readonly clock: Clock
  /** A node silent for this long leaves the view (default 10 s). */
  readonly expiryMs?: number
  /** Bound on nodes kept (default 100 000): a flood of forged ids cannot grow memory without end. */
  readonly nodesMax?: number
}

export type ViewListener = (entry: ViewEntry, previous: ViewEntry | undefined) => void

export class ResourceView {
  private readonly entries = new Map<string, ViewEntry>()
  private readonly clock: Clock
  readonly expiryMs: number
  private readonly nodesMax: number
  private readonly listeners = new Set<ViewListener>()
  /** Bumped when what capacity() reports may have changed. */
  private version = 0
  private capacityCache: { version: number; value: CapacitySummary } | undefined

  constructor(init: ResourceViewInit) {
    this.clock = init.clock
    this.expiryMs = init.expiryMs ?? 10_000
    this.nodesMax = init.nodesMax ?? 100_000
  }

  /** Takes `ad` if it is newer than what the view has; true when taken (or refreshed). */
  apply(ad: ResourceAd): boolean {
    const prev = this.entries.get(ad.node)
    const now = this.clock.now()
    if (prev !== undefined) {
      const p = prev.ad
      if (ad.incarnation < p.incarnation || (ad.incarnation === p.incarnation && ad.seq < p.seq)) return false
      if (ad.incarnation === p.incarnation && ad.seq === p.seq) {
        this.entries.set(ad.node, { ...prev, receivedMs: now })
        return true
      }
    } else if (this.entries.size >= this.nodesMax) return false
    const entry: ViewEntry = {
      ad,
      receivedMs: now,
      freeGpus: freeGpus(ad),
      heldGpus: prev?.heldGpus ?? 0,
      heldCpus: prev?.heldCpus ?? 0,
      heldMemoryMiB: prev?.heldMemoryMiB ?? 0,
    }
    this.entries.set(ad.node, entry)
    // Capacity (the largest node, per resource) changes with health, models, totals and membership —
    // not with allocations, which is what almost every ad reports.
    if (prev === undefined || !sameCapacity(prev.ad, ad)) this.version++
    for (const l of this.listeners) l(entry, prev)
    return true
  }

  get(node: string): ViewEntry | undefined {
    return this.entries.get(node)
  }

  get size(): number {
    return this.entries.size
  }

  /** Every entry (iteration order: first arrival). Do not mutate the view while iterating. */
  all(): IterableIterator<ViewEntry> {
    return this.entries.values()
  }

  ageMs(node: string): number | undefined {
    const e = this.entries.get(node)
    return e === undefined ? undefined : this.clock.now() - e.receivedMs
  }

  /** Drops nodes silent for longer than expiryMs; returns their ids. */
  expire(): string[] {
    const now = this.clock.now()
    const gone: string[] = []
    for (const [node, e] of this.entries) if (now - e.receivedMs > this.expiryMs) gone.push(node)
    for (const node of gone) this.entries.delete(node)
    if (gone.length > 0) this.version++
    return gone
  }

  /** Forgets a node at once (it was seen dead by other means). */
  remove(node: string): void {
    if (this.entries.delete(node)) this.version++
  }

  /** Counts a reservation of this node's placer against `node` until {@link release}d. */
  hold(node: string, gpus: number, cpus: number, memoryMiB: number): void {
    this.adjust(node, gpus, cpus, memoryMiB)
  }

  release(node: string, gpus: number, cpus: number, memoryMiB: number): void {
    this.adjust(node, -gpus, -cpus, -memoryMiB)
  }

  /** Called after every ad the view takes (not for refreshes). Must not throw. */
  onChange(listener: ViewListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** The largest node per resource (JOB_TOO_LARGE checks). Cached until the view changes. */
  capacity(): CapacitySummary {
    if (this.capacityCache?.version === this.version) return this.capacityCache.value
    let gpusMax = 0
    let cpusMax = 0
    let memoryMiBMax = 0
    let gpusTotal = 0
    const byModel = new Map<string, number>()
    const zones = new Set<string>()
    for (const { ad } of this.entries.values()) {
      const healthy = ad.gpus.filter((g) => g.healthy)
      gpusMax = Math.max(gpusMax, healthy.length)
      gpusTotal += healthy.length
      cpusMax = Math.max(cpusMax, ad.cpus)
      memoryMiBMax = Math.max(memoryMiBMax, ad.memoryMiB)
      zones.add(ad.zone)
      const counts = new Map<string, number>()
      for (const g of healthy) counts.set(g.model, (counts.get(g.model) ?? 0) + 1)
      for (const [m, n] of counts) byModel.set(m, Math.max(byModel.get(m) ?? 0, n))
    }
    const value: CapacitySummary = {
      nodes: this.entries.size,
      gpusMax,
      gpusMaxByModel: byModel,
      cpusMax,
      memoryMiBMax,
      gpusTotal,
      zones,
    }
    this.capacityCache = { version: this.version, value }
    return value
  }

  private adjust(node: string, gpus: number, cpus: number, memoryMiB: number): void {
    const e = this.entries.get(node)
    if (e === undefined) return
    this.entries.set(node, {
      ...e,
      heldGpus: Math.max(0, e.heldGpus + gpus),
      heldCpus: Math.max(0, e.heldCpus + cpus),
      heldMemoryMiB: Math.max(0, e.heldMemoryMiB + memoryMiB),
    })
  }
}

/** Whether two ads of a node report the same capacity (ignoring what is allocated). */
function sameCapacity(a: ResourceAd, b: ResourceAd): boolean {
  if (
    a.zone !== b.zone ||
    a.cpus !== b.cpus ||
    a.memoryMiB !== b.memoryMiB ||
    a.gpus.length !== b.gpus.length
  )
    return false
  for (let i = 0; i < a.gpus.length; i++) {
    const x = a.gpus[i]!
    const y = b.gpus[i]!
    if (x.healthy !== y.healthy || x.model !== y.model) return false
  }
  return true
}
