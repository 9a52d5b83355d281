/**
 * Placement choices, pure: which workers of a view can take a task, a sample of d of them (the power of
 * d choices, as Sparrow samples), scored by best fit on GPUs — the worker left with the fewest free GPUs
 * wins, so whole free nodes stay whole for the 8-GPU jobs — and, for gangs, slots for every task at once.
 * Nothing here talks to a worker; the placer asks the chosen ones to reserve.
 */
import { freeGpus } from './ads.js'
import type { ViewEntry } from './view.js'
import { type Rng } from './world.js'

/** What one task needs. */
export interface TaskShape {
  readonly gpus: number
  /** '' = any. */
  readonly gpuModel: string
  readonly cpus: number
  readonly memoryMiB: number
  /** '' = any. */
  readonly zone: string
}

/** Free GPUs of an entry (of `model` when not ''), less this placer's reservations in flight. */
export function effectiveFreeGpus(e: ViewEntry, model: string): number {
  return (model === '' ? e.freeGpus : freeGpus(e.ad, model)) - e.heldGpus
}

/** Whether the entry, as the view knows it, can take one task of `shape` (given extra local use). */
export function fits(
  e: ViewEntry,
  shape: TaskShape,
  used?: { gpus: number; cpus: number; memoryMiB: number },
): boolean {
  if (shape.zone !== '' && e.ad.zone !== shape.zone) return false
  const u = used ?? NONE
  if (effectiveFreeGpus(e, shape.gpuModel) - u.gpus < shape.gpus) return false
  if (e.ad.cpusFree - e.heldCpus - u.cpus + 1e-9 < shape.cpus) return false
  if (e.ad.memoryMiBFree - e.heldMemoryMiB - u.memoryMiB < shape.memoryMiB) return false
  return true
}

const NONE = { gpus: 0, cpus: 0, memoryMiB: 0 }

/** Best fit: lower is better — GPUs left free after the task, then CPUs left (fractions). */
export function fitScore(e: ViewEntry, shape: TaskShape): number {
  const gpusLeft = effectiveFreeGpus(e, shape.gpuModel) - shape.gpus
  const cpusLeft = Math.max(0, e.ad.cpusFree - e.heldCpus - shape.cpus)
  return gpusLeft * 1e6 + Math.min(cpusLeft, 1e6 - 1)
}

/**
 * Up to `d` entries drawn uniformly among those that fit (reservoir sampling: one pass, no copy of the
 * view), best fit first; ties keep the random draw order. Excluded nodes are skipped.
 */
export function sampleCandidates(
  entries: Iterable<ViewEntry>,
  shape: TaskShape,
  d: number,
  rng: Rng,
  exclude?: ReadonlySet<string>,
): ViewEntry[] {
  const sample: ViewEntry[] = []
  let seen = 0
  for (const e of entries) {
    if (exclude?.has(e.ad.node) || !fits(e, shape)) continue
    seen++
    if (sample.length < d) sample.push(e)
    else {
      const j = rng.nextInt(seen)
      if (j < d) sample[j] = e
    }
  }
  // Shuffle ties' order fairly: the reservoir keeps arrival order for the first d.
  for (let i = sample.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1)
    ;[sample[i], sample[j]] = [sample[j]!, sample[i]!]
  }
  return sample
    .map((e, i) => ({ e, s: fitScore(e, shape), i }))
    .sort((a, b) => a.s - b.s || a.i - b.i)
    .map((x) => x.e)
}

/**
 * Slots for `tasks` tasks of `shape` (a gang): candidates sampled `d` per task, best fit first, each
 * taking as many tasks as it has room for. Undefined when the sample cannot hold them all.
 */
export function chooseGangSlots(
  entries: Iterable<ViewEntry>,
  shape: TaskShape,
  tasks: number,
  d: number,
  rng: Rng,
  exclude?: ReadonlySet<string>,
): ViewEntry[] | undefined {
  const candidates = sampleCandidates(entries, shape, d * tasks, rng, exclude)
  const used = new Map<string, { gpus: number; cpus: number; memoryMiB: number }>()
  const slots: ViewEntry[] = []
  for (const e of candidates) {
    for (;;) {
      if (slots.length === tasks) return slots
      const u = used.get(e.ad.node) ?? { ...NONE }
      if (!fits(e, shape, u)) break
      used.set(e.ad.node, {
        gpus: u.gpus + shape.gpus,
        cpus: u.cpus + shape.cpus,
        memoryMiB: u.memoryMiB + shape.memoryMiB,
      })
      slots.push(e)
    }
  }
  return slots.length === tasks ? slots : undefined
}
