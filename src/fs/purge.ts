/**
 * The purge loop of recursive deletes (HopsFS runs subtree operations as a protocol of small
 * transactions; this is its second half). A Delete of a directory with children detaches it in one
 * small command (src/fs/namespace.ts); the metadata leader then proposes PurgeDetached steps, one after
 * another, each freeing at most the cluster's `purgeBatchInodes` inodes, until no detached subtree is
 * left. Between two steps the event loop is free: Raft heartbeats, reads and other commands run.
 *
 * The detached roots are replicated state, so the purge resumes wherever it stopped: the loop wakes on
 * every detach applied on this node (`Namespace.onDetached`) and otherwise checks every `intervalMs`,
 * so a new leader, or a node restarted from its log or a snapshot, finishes what another began.
 */
import { Periodic, type PeriodicTimers } from '../lib/index.js'
import type { FsLogger } from './logger.js'
import type { Namespace, OpResults } from './namespace.js'

export interface SubtreePurgerInit {
  /** This replica's namespace (how many detached subtrees are left). */
  readonly ns: () => Namespace
  /** Proposes one PurgeDetached step as the superuser; rejects on a refusal. */
  readonly purgeStep: (signal: AbortSignal) => Promise<OpResults['purgeDetached']>
  /** Whether this node leads the metadata group now (only the leader purges). */
  readonly isLeader: () => boolean
  /** How often to look for detached subtrees without being woken (a leader change, a restart). */
  readonly intervalMs?: number
  readonly timers?: PeriodicTimers
  readonly log: FsLogger
}

export interface SubtreePurger {
  start(): void
  stop(): Promise<void>
  /** Runs the loop now (when it is not running already). */
  kick(): void
  /** Steps proposed and inodes purged by this node since it started. */
  stats(): { steps: number; purged: number }
}

export const PURGE_INTERVAL_MS = 1_000

export function createSubtreePurger(init: SubtreePurgerInit): SubtreePurger {
  const abort = new AbortController()
  let running: Promise<void> | undefined
  let steps = 0
  let purged = 0
  let loop: Periodic | undefined

  const run = async (signal: AbortSignal): Promise<void> => {
    while (!signal.aborted && init.isLeader() && init.ns().detachedCount > 0) {
      const r = await init.purgeStep(signal)
      steps++
      purged += r.purged
      if (r.remaining === 0) init.log.info({ steps, purged }, 'deleted subtrees purged')
      if (r.purged === 0) break
    }
  }
  const once = (): Promise<void> => {
    running ??= run(abort.signal).finally(() => (running = undefined))
    return running
  }

  return {
    start() {
      init.ns().onDetached = () => this.kick()
      loop = new Periodic({
        intervalMs: init.intervalMs ?? PURGE_INTERVAL_MS,
        timers: init.timers,
        tick: () => once(),
        onError: (err) => init.log.warn({ err: (err as Error).message }, 'purging deleted subtrees failed'),
      })
      loop.start()
    },
    async stop() {
      abort.abort()
      init.ns().onDetached = undefined
      await loop?.stop()
      await running?.catch(() => undefined)
    },
    kick() {
      if (abort.signal.aborted || running !== undefined) return
      // Woken from inside apply: propose after the current command finished.
      setImmediate(() => {
        if (!abort.signal.aborted)
          once().catch((err: unknown) =>
            init.log.warn({ err: (err as Error).message }, 'purging deleted subtrees failed'),
          )
      })
    },
    stats: () => ({ steps, purged }),
  }
}
