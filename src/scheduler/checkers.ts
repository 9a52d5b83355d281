/**
 * Cluster-wide invariants of GPU scheduling, as pure functions over what the workers and the replicated
 * state hold. Apart from the tests on purpose: the seeded simulation calls them after every event, and
 * the cluster tests can call them on what the nodes report.
 *
 * - exclusive GPUs: on one node, no GPU belongs to two reservations (held or bound), nor to two tasks;
 * - no overcommit: on one node, the GPUs of its reservations never outnumber its GPUs;
 * - committed bindings: no two RUNNING jobs in the replicated state name the same GPU of the same node;
 * - gang all-or-nothing: a task starts only when its whole placement (every task of the attempt) is
 *   committed, and on the GPUs that placement names.
 */
import type { Reservation } from './reservations.js'
import { JOB_STATE, type JobRecord } from './types.js'
import type { WorkerTask } from './worker.js'

export type ViolationKind = 'gpu-shared' | 'gpu-overcommit' | 'binding-shared' | 'gang-partial'

export interface Violation {
  readonly kind: ViolationKind
  readonly message: string
}

/** What one worker holds, as its agent reports it. */
export interface WorkerSnapshot {
  readonly node: string
  /** Every GPU uuid of the node. */
  readonly gpus: readonly string[]
  readonly reservations: readonly Reservation[]
  readonly tasks: readonly WorkerTask[]
}

export function checkWorker(w: WorkerSnapshot): Violation[] {
  const out: Violation[] = []
  const owner = new Map<string, string>()
  let held = 0
  for (const r of w.reservations) {
    held += r.gpus.length
    for (const g of r.gpus) {
      const other = owner.get(g)
      if (other !== undefined)
        out.push({
          kind: 'gpu-shared',
          message: `${w.node}: GPU ${g} is in reservations ${other} and ${r.id}`,
        })
      owner.set(g, r.id)
    }
  }
  if (held > w.gpus.length)
    out.push({
      kind: 'gpu-overcommit',
      message: `${w.node}: ${held} GPUs reserved, the node has ${w.gpus.length}`,
    })
  const taskOwner = new Map<string, string>()
  for (const t of w.tasks) {
    for (const g of t.gpus) {
      const tag = `job ${t.jobId} attempt ${t.attempt} rank ${t.rank}`
      const other = taskOwner.get(g)
      if (other !== undefined)
        out.push({ kind: 'gpu-shared', message: `${w.node}: GPU ${g} runs ${other} and ${tag}` })
      taskOwner.set(g, tag)
    }
  }
  return out
}

/** No two running jobs bound to the same GPU of a node in the replicated state. */
export function checkBindings(running: readonly JobRecord[]): Violation[] {
  const out: Violation[] = []
  const owner = new Map<string, number>()
  for (const job of running) {
    if (job.state !== JOB_STATE.RUNNING) continue
    for (const t of job.tasks)
      for (const g of t.gpus) {
        const key = `${t.node}/${g}`
        const other = owner.get(key)
        if (other !== undefined && other !== job.id)
          out.push({
            kind: 'binding-shared',
            message: `GPU ${key} is bound to running jobs ${other} and ${job.id}`,
          })
        owner.set(key, job.id)
      }
  }
  return out
}

/**
 * At the moment a task starts: its job (as committed) must run this attempt with every task placed, and
 * this task where the placement says. `job` is the committed record read at that moment.
 */
export function checkTaskStart(
  job: JobRecord | undefined,
  task: { node: string; jobId: number; attempt: number; rank: number; gpus: readonly string[] },
): Violation[] {
  const tag = `job ${task.jobId} attempt ${task.attempt} rank ${task.rank} on ${task.node}`
  if (job === undefined)
    return [{ kind: 'gang-partial', message: `${tag} started; the job is not committed` }]
  if (job.state !== JOB_STATE.RUNNING || job.attempts !== task.attempt)
    return [
      {
        kind: 'gang-partial',
        message: `${tag} started while the job is state ${job.state} attempt ${job.attempts}`,
      },
    ]
  if (job.tasks.length !== job.spec.tasks)
    return [
      {
        kind: 'gang-partial',
        message: `${tag} started with ${job.tasks.length} of ${job.spec.tasks} tasks placed`,
      },
    ]
  const placed = job.tasks.find((t) => t.rank === task.rank)
  if (placed === undefined || placed.node !== task.node || placed.gpus.join(',') !== task.gpus.join(','))
    return [{ kind: 'gang-partial', message: `${tag} started on GPUs the placement does not name` }]
  return []
}

/** Every check over a whole cluster at one instant. */
export function checkCluster(workers: readonly WorkerSnapshot[], running: readonly JobRecord[]): Violation[] {
  return [...workers.flatMap(checkWorker), ...checkBindings(running)]
}
