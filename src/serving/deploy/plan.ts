/**
 * The placement step of the deployments' reconcile loop (pure: the leader's loop calls it with the
 * committed deployment and the live serving nodes, and proposes what it answers as one
 * SetDeploymentReplicas, which apply refuses if the deployment moved on meanwhile).
 *
 * - Replicas on nodes that are gone (dead, left, no longer serving) and replicas that `failed` are
 *   removed; the count of the current version is brought to `replicasWanted` by placing new ones.
 * - New replicas go to the zone holding fewest of this deployment's replicas, then the node holding
 *   fewest, then (ties) the node id: spread across zones first, then across nodes — among the nodes
 *   where the replica fits: a deployment's `cpus` and `memoryMiB` (0: none asked) within the node's free
 *   CPU cores and memory (its gossiped capacity minus what the replicas placed there, of every
 *   deployment, ask; the caller works that out, {@link freeResources}). A replica that fits nowhere is
 *   not placed; why is the step's `pending` (committed as the deployment's `pending`, '' once none is).
 * - A rolling update: replicas of another version stay until `replicasWanted` replicas of the current
 *   version are **ready**; then they are removed (their nodes drain them: requests in flight finish).
 * - Autoscaling (with `scale`, and max > min): the requests in flight the ready replicas of the current
 *   version last reported, over `inflightPerReplicaTarget`, rounded up and held within min..max, is the
 *   replica count wanted. Up at once; down one replica at a time, and only `scaleDownDelayMs` after the
 *   last change. The decision and its reason are committed with the step (the deployment's `lastScale`).
 */
import type { Deployment, ReplicaRecord } from '../registry/types.js'

export interface ServingNode {
  readonly id: string
  readonly zone: string
  /** CPU cores free for new replicas (capacity minus the replicas placed there); undefined: not known. */
  readonly cpusFree?: number
  /** MiB of memory free for new replicas; undefined: not known. */
  readonly memoryMiBFree?: number
}

/** What a node offers, from its gossiped capacity (undefined: not known yet). */
export interface NodeResources {
  readonly id: string
  readonly zone: string
  readonly cpuCores?: number
  readonly memoryMiB?: number
}

/**
 * Each node's free CPU cores and memory: its capacity minus the `cpus` and `memoryMiB` of every replica
 * of `deployments` placed on it (old versions during a rolling update included: they run until removed).
 */
export function freeResources(
  nodes: readonly NodeResources[],
  deployments: readonly {
    readonly cpus: number
    readonly memoryMiB: number
    readonly replicas: readonly { readonly node: string }[]
  }[],
): ServingNode[] {
  const used = new Map<string, { cpus: number; memoryMiB: number }>()
  for (const d of deployments)
    for (const r of d.replicas) {
      const u = used.get(r.node) ?? { cpus: 0, memoryMiB: 0 }
      used.set(r.node, { cpus: u.cpus + d.cpus, memoryMiB: u.memoryMiB + d.memoryMiB })
    }
  return nodes.map((n) => {
    const u = used.get(n.id) ?? { cpus: 0, memoryMiB: 0 }
    return {
      id: n.id,
      zone: n.zone,
      ...(n.cpuCores === undefined ? {} : { cpusFree: n.cpuCores - u.cpus }),
      ...(n.memoryMiB === undefined ? {} : { memoryMiBFree: n.memoryMiB - u.memoryMiB }),
    }
  })
}

/** Whether a replica asking `cpus` and `memoryMiB` fits on `n` (what is not asked always fits). */
export function fits(n: ServingNode, cpus: number, memoryMiB: number): boolean {
  const ok = (asked: number, free: number | undefined) => asked <= 0 || (free !== undefined && free >= asked)
  return ok(cpus, n.cpusFree) && ok(memoryMiB, n.memoryMiBFree)
}

export interface PlanStep {
  readonly add: { node: string; zone: string; version: string }[]
  readonly remove: string[]
  readonly why: string[]
  /** A new replica count, when the autoscaler changed it (else undefined: keep). */
  readonly replicasWanted?: number
  readonly scaleReason?: string
  /** Why replicas of the current version are not placed ('' when all are). */
  readonly pending: string
}

export interface ScaleSettings {
  readonly nowMs: number
  /** Requests in flight per ready replica the autoscaler aims at. */
  readonly inflightPerReplicaTarget: number
  /** Time since the last change before scaling down. */
  readonly scaleDownDelayMs: number
}

/** The replica count the autoscaler wants now, and why (undefined: keep `replicasWanted`). */
export function autoscale(d: Deployment, s: ScaleSettings): { wanted: number; reason: string } | undefined {
  if (d.replicasMax <= d.replicasMin) return undefined
  const ready = d.replicas.filter((r) => r.state === 'ready' && r.version === d.version)
  if (ready.length === 0) return undefined
  const inflight = ready.reduce((n, r) => n + r.inflight, 0)
  const target = Math.max(1, s.inflightPerReplicaTarget)
  const desired = Math.min(d.replicasMax, Math.max(d.replicasMin, Math.ceil(inflight / target)))
  const load = `${inflight} requests in flight on ${ready.length} ready replicas (target ${target} each)`
  if (desired > d.replicasWanted) return { wanted: desired, reason: `up to ${desired}: ${load}` }
  if (
    desired < d.replicasWanted &&
    ready.length >= d.replicasWanted &&
    s.nowMs - d.lastScaleMs >= s.scaleDownDelayMs
  )
    return { wanted: d.replicasWanted - 1, reason: `down to ${d.replicasWanted - 1}: ${load}` }
  return undefined
}

export function planDeployment(
  d: Deployment,
  nodes: readonly ServingNode[],
  scale?: ScaleSettings,
): PlanStep | undefined {
  const live = new Map(nodes.map((n) => [n.id, n]))
  const remove: string[] = []
  const why: string[] = []
  const kept: ReplicaRecord[] = []
  for (const r of d.replicas) {
    if (!live.has(r.node)) {
      remove.push(r.id)
      why.push(`${r.id}: node ${r.node} is gone`)
    } else if (r.state === 'failed') {
      remove.push(r.id)
      why.push(`${r.id}: failed (${r.error || 'no reason given'})`)
    } else kept.push(r)
  }
  const current = kept.filter((r) => r.version === d.version)
  const old = kept.filter((r) => r.version !== d.version)
  const scaled = scale === undefined ? undefined : autoscale(d, scale)
  const want = scaled?.wanted ?? d.replicasWanted
  if (scaled !== undefined) why.push(scaled.reason)
  const add: PlanStep['add'] = []
  let pending = ''
  if (current.length > want) {
    // Surplus: the least useful first (not ready, then the newest).
    const surplus = [...current]
      .sort((a, b) => Number(a.state === 'ready') - Number(b.state === 'ready') || b.placedMs - a.placedMs)
      .slice(0, current.length - want)
    for (const r of surplus) {
      remove.push(r.id)
      why.push(`${r.id}: more than ${want} replicas`)
    }
  } else if (current.length < want) {
    const perZone = new Map<string, number>()
    const perNode = new Map<string, number>()
    for (const r of [...current, ...old]) {
      perZone.set(r.zone, (perZone.get(r.zone) ?? 0) + 1)
      perNode.set(r.node, (perNode.get(r.node) ?? 0) + 1)
    }
    // Free resources as this step uses them up.
    const free = new Map([...live.values()].map((n) => [n.id, { ...n }]))
    for (let i = current.length; i < want; i++) {
      const candidates = [...free.values()].filter((n) => fits(n, d.cpus, d.memoryMiB))
      if (candidates.length === 0) {
        pending = pendingReason(d, want - i, [...free.values()])
        why.push(pending)
        break
      }
      const n = candidates.sort(
        (a, b) =>
          (perZone.get(a.zone) ?? 0) - (perZone.get(b.zone) ?? 0) ||
          (perNode.get(a.id) ?? 0) - (perNode.get(b.id) ?? 0) ||
          (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
      )[0]!
      add.push({ node: n.id, zone: n.zone, version: d.version })
      perZone.set(n.zone, (perZone.get(n.zone) ?? 0) + 1)
      perNode.set(n.id, (perNode.get(n.id) ?? 0) + 1)
      free.set(n.id, {
        ...n,
        ...(n.cpusFree === undefined ? {} : { cpusFree: n.cpusFree - d.cpus }),
        ...(n.memoryMiBFree === undefined ? {} : { memoryMiBFree: n.memoryMiBFree - d.memoryMiB }),
      })
      why.push(`place ${d.name} version ${d.version} on ${n.id} (${n.zone})`)
    }
  }
  const readyCurrent = current.filter((r) => r.state === 'ready').length
  if (old.length > 0 && readyCurrent >= want)
    for (const r of old) {
      remove.push(r.id)
      why.push(`${r.id}: version ${r.version} replaced by ${d.version} (${readyCurrent} ready)`)
    }
  const pendingChanged = pending !== (d.pending ?? '')
  if (add.length === 0 && remove.length === 0 && scaled === undefined && !pendingChanged) return undefined
  return { add, remove, why, replicasWanted: scaled?.wanted, scaleReason: scaled?.reason, pending }
}

/** Why `missing` replicas of `d` fit on none of `nodes` (stable while nothing changes: no timestamps). */
function pendingReason(d: Deployment, missing: number, nodes: readonly ServingNode[]): string {
  const asked = [
    ...(d.cpus > 0 ? [`${d.cpus} CPU cores`] : []),
    ...(d.memoryMiB > 0 ? [`${d.memoryMiB} MiB of memory`] : []),
  ].join(' and ')
  const head = `${missing} replica${missing === 1 ? '' : 's'} pending`
  if (nodes.length === 0) return `${head}: no live serving node`
  const most = (f: (n: ServingNode) => number | undefined) =>
    Math.max(...nodes.map((n) => f(n) ?? Number.NEGATIVE_INFINITY))
  const cpus = most((n) => n.cpusFree)
  const mem = most((n) => n.memoryMiBFree)
  const round = (x: number) => (Number.isFinite(x) ? String(Math.round(x * 100) / 100) : 'unknown')
  return (
    `${head}: no serving node has ${asked} free ` +
    `(${nodes.length} live; most free: ${round(cpus)} CPU cores, ${round(mem)} MiB)`
  )
}
