/**
 * An in-memory {@link SchedTransport} network for tests and the bench: every message is delivered
 * through the injected clock after a latency drawn from the seeded Rng (so messages reorder unless
 * `fifo`), and may be dropped. Crashed nodes neither send nor receive (their peers' requests time out,
 * as with a host that died); a restarted node gets a fresh endpoint.
 */
import { TransportError } from './errors.js'
import type { RequestHandler, RequestOptions, SchedTransport, TopicHandler } from './transport.js'
import { uniform, type Clock, type Rng } from './world.js'

export interface MemorySchedNetworkInit {
  readonly clock: Clock
  readonly rng: Rng
  /** One-way latency of requests and replies, uniform in [min, max] ms (default 0..1). */
  readonly latencyMs?: readonly [number, number]
  /** One-way latency of published messages (stale gossip: make it larger), default = latencyMs. */
  readonly publishLatencyMs?: readonly [number, number]
  /** Probability that a request or a reply is lost (default 0). */
  readonly dropRate?: number
  /** Probability that a published message is lost for one subscriber (default 0). */
  readonly publishDropRate?: number
}

export interface MemorySchedNetwork {
  /** The endpoint of `node` (created on first use; a crashed node's is fresh after {@link restart}). */
  endpoint(node: string): SchedTransport
  /** The node stops sending and receiving; its handlers and subscriptions are gone. */
  crash(node: string): void
  /** A crashed node comes back with a fresh endpoint (no handler, no subscription). */
  restart(node: string): SchedTransport
  isUp(node: string): boolean
  /** Messages delivered and dropped so far. */
  readonly stats: { delivered: number; dropped: number }
}

interface Endpoint extends SchedTransport {
  handler: RequestHandler | undefined
  readonly topics: Map<string, Set<TopicHandler>>
  up: boolean
}

export function createMemorySchedNetwork(init: MemorySchedNetworkInit): MemorySchedNetwork {
  const { clock, rng } = init
  const [latMin, latMax] = init.latencyMs ?? [0, 1]
  const [pubMin, pubMax] = init.publishLatencyMs ?? [latMin, latMax]
  const dropRate = init.dropRate ?? 0
  const publishDropRate = init.publishDropRate ?? 0
  const nodes = new Map<string, Endpoint>()
  const stats = { delivered: 0, dropped: 0 }

  const delay = (min: number, max: number): number => min + uniform(rng) * (max - min)
  const lost = (rate: number): boolean => rate > 0 && uniform(rng) < rate
  const deliver = (fn: () => void, ms: number): void => {
    clock.setTimeout(fn, ms)
  }

  const make = (self: string): Endpoint => {
    const ep: Endpoint = {
      self,
      handler: undefined,
      topics: new Map(),
      up: true,
      request(peer, payload, opts: RequestOptions) {
        return new Promise<Uint8Array>((resolve, reject) => {
          if (opts.signal?.aborted)
            return reject(new TransportError('REQUEST_ABORTED', `request to ${peer} aborted`))
          let settled = false
          const finish = (fn: () => void): void => {
            if (settled) return
            settled = true
            clock.clearTimeout(timer)
            opts.signal?.removeEventListener('abort', onAbort)
            fn()
          }
          const timer = clock.setTimeout(
            () =>
              finish(() =>
                reject(
                  new TransportError('REQUEST_TIMEOUT', `${peer} did not answer in ${opts.timeoutMs} ms`),
                ),
              ),
            opts.timeoutMs,
          )
          const onAbort = (): void =>
            finish(() => reject(new TransportError('REQUEST_ABORTED', `request to ${peer} aborted`)))
          opts.signal?.addEventListener('abort', onAbort, { once: true })
          if (!ep.up) return
          if (lost(dropRate)) {
            stats.dropped++
            return
          }
          deliver(
            () => {
              const target = nodes.get(peer)
              if (!ep.up || target === undefined || !target.up) return // a dead host: no answer
              stats.delivered++
              const h = target.handler
              if (h === undefined)
                return finish(() =>
                  reject(new TransportError('PEER_UNREACHABLE', `${peer} serves no requests`)),
                )
              let reply: Uint8Array | Promise<Uint8Array>
              try {
                reply = h(self, payload)
              } catch {
                return finish(() =>
                  reject(new TransportError('PEER_UNREACHABLE', `${peer} failed the request`)),
                )
              }
              Promise.resolve(reply).then(
                (bytes) => {
                  if (!target.up || lost(dropRate)) {
                    stats.dropped++
                    return
                  }
                  deliver(
                    () => {
                      if (!ep.up) return
                      stats.delivered++
                      finish(() => resolve(bytes))
                    },
                    delay(latMin, latMax),
                  )
                },
                () =>
                  finish(() => reject(new TransportError('PEER_UNREACHABLE', `${peer} failed the request`))),
              )
            },
            delay(latMin, latMax),
          )
        })
      },
      handle(handler) {
        ep.handler = handler
      },
      publish(topic, payload) {
        if (!ep.up) return
        for (const target of nodes.values()) {
          const subs = target.topics.get(topic)
          if (subs === undefined || subs.size === 0) continue
          if (lost(publishDropRate)) {
            stats.dropped++
            continue
          }
          deliver(
            () => {
              if (!target.up) return
              stats.delivered++
              for (const h of [...(target.topics.get(topic) ?? [])]) h(self, payload)
            },
            delay(pubMin, pubMax),
          )
        }
      },
      subscribe(topic, handler) {
        let subs = ep.topics.get(topic)
        if (subs === undefined) ep.topics.set(topic, (subs = new Set()))
        subs.add(handler)
        return () => subs!.delete(handler)
      },
    }
    return ep
  }

  return {
    endpoint(node) {
      let ep = nodes.get(node)
      if (ep === undefined) nodes.set(node, (ep = make(node)))
      return ep
    },
    crash(node) {
      const ep = nodes.get(node)
      if (ep === undefined) return
      ep.up = false
      ep.handler = undefined
      ep.topics.clear()
    },
    restart(node) {
      const ep = make(node)
      nodes.set(node, ep)
      return ep
    },
    isUp(node) {
      return nodes.get(node)?.up ?? false
    },
    stats,
  }
}
