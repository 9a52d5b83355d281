/**
 * How a node without a metadata replica asks one over a libp2p request protocol: each live metadata node
 * in turn (the cluster client's targets: own zone first) until one answers. A refusal the handler
 * answered with its own code (`remoteCode`) ends the tries — every metadata node would answer the same —
 * and is handed to `refusal` to become the area's typed error; a node that cannot be reached, times out
 * or fails otherwise is skipped for the next. Shared by the scheduler's (sched-meta.ts) and serving's
 * (serving-meta.ts) node ↔ metadata node protocols.
 */
import { HopsError } from '../../errors.js'
import { request, type P2PHost } from '../p2p/index.js'

export interface AskMetadataInit {
  readonly host: () => P2PHost
  /** Live metadata nodes, best first (ClusterClient.metadataTargets). */
  readonly targets: () => readonly { id: string }[]
  readonly protocol: string
  readonly timeoutMs: number
  readonly frameBytesMax: number
  /** The typed error for a handler's refusal with `code`, or undefined to try the next node. */
  readonly refusal: (code: string, message: string) => Error | undefined
}

/** Returns `ask(body, signal)`: the first answer of a metadata node, or the refusal, or UNAVAILABLE. */
export function metadataAsker(
  init: AskMetadataInit,
): (body: Uint8Array, signal?: AbortSignal) => Promise<Uint8Array> {
  return async (body, signal) => {
    const targets = init.targets()
    if (targets.length === 0) throw new HopsError('UNAVAILABLE', 'no live metadata node is known yet')
    let last: unknown
    for (const t of targets) {
      try {
        return await request(init.host(), t.id, init.protocol, body, {
          signal,
          timeoutMs: init.timeoutMs,
          frameBytesMax: init.frameBytesMax,
        })
      } catch (err) {
        const remote = (err as { remoteCode?: unknown }).remoteCode
        if (typeof remote === 'string') {
          // The handler's own words, without the transport's "<peer> answered <code>: " before them.
          const message = (err as Error).message.replace(/^\S+ answered [A-Z0-9_]+: /, '')
          const refused = init.refusal(remote, message)
          if (refused !== undefined) throw refused
        }
        if (signal?.aborted) throw err
        last = err
      }
    }
    throw new HopsError('UNAVAILABLE', `no metadata node answered (last: ${(last as Error).message})`, {
      cause: last,
    })
  }
}
