import type { StateMachine } from '../consensus/index.js'

/** The part of a Raft group that areas above meta use: propose a command, fence a read. */
export interface ConsensusGroup {
  /**
   * Commits `command` and resolves with the state machine's result for that entry. With `session`, the
   * command is applied at most once per (clientId, seq): a retry, on this node or any other, resolves
   * with the first try's result (the consensus layer's client sessions).
   */
  propose(command: Uint8Array, opts?: ProposeOpts): Promise<unknown>
  /** Resolves once this replica has applied everything committed before the call (linearizable read). */
  readBarrier(opts?: { signal?: AbortSignal }): Promise<void>
}

export interface ProposeOpts {
  readonly signal?: AbortSignal
  /** Exactly-once: the client's id and the command's sequence number (from 1, increasing per client). */
  readonly session?: { readonly clientId: string; readonly seq: number }
}

/** Session results a local group remembers (the oldest are forgotten first). */
const LOCAL_SESSION_RESULTS_MAX = 10_000

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
  const sessionResults = new Map<string, Promise<unknown>>()
  return {
    get lastIndex() {
      return index
    },
    propose(command, o) {
      if (o?.signal?.aborted) return Promise.reject(o.signal.reason)
      const key = o?.session === undefined ? undefined : `${o.session.clientId}\u0000${o.session.seq}`
      const seen = key === undefined ? undefined : sessionResults.get(key)
      if (seen !== undefined) return seen
      const run = tail.then(async () => {
        const results = await sm.apply([{ index: ++index, term, data: command }])
        return results[0]
      })
      tail = run.catch(() => undefined)
      if (key !== undefined) {
        sessionResults.set(key, run)
        if (sessionResults.size > LOCAL_SESSION_RESULTS_MAX)
          sessionResults.delete(sessionResults.keys().next().value as string)
      }
      return run
    },
    readBarrier: () => tail.then(() => undefined),
  }
}
