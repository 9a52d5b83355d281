import type { StateMachine } from '../consensus/state-machine.js'

/** The part of a Raft group that areas above meta use: propose a command, fence a read. */
export interface ConsensusGroup {
  /** Commits `command` and resolves with the state machine's result for that entry. */
  propose(command: Uint8Array, opts?: { signal?: AbortSignal }): Promise<unknown>
  /** Resolves once this replica has applied everything committed before the call (linearizable read). */
  readBarrier(opts?: { signal?: AbortSignal }): Promise<void>
}

/**
 * A one-replica, in-process "group": every proposal commits at once, in call order. For unit tests and
 * single-process tools; the daemon uses the real RaftGroup behind the same {@link ConsensusGroup}.
 */
export function createLocalGroup<R>(
  sm: StateMachine<R>,
  opts: { term?: number } = {},
): ConsensusGroup & { readonly lastIndex: number } {
  let index = 0
  let tail: Promise<unknown> = Promise.resolve()
  const term = opts.term ?? 1
  return {
    get lastIndex() {
      return index
    },
    propose(command, o) {
      if (o?.signal?.aborted) return Promise.reject(o.signal.reason)
      const run = tail.then(async () => {
        const results = await sm.apply([{ index: ++index, term, data: command }])
        return results[0]
      })
      tail = run.catch(() => undefined)
      return run
    },
    readBarrier: () => tail.then(() => undefined),
  }
}
