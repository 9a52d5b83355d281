/**
 * The scheduler's {@link SchedTransport} over this node's libp2p host: Reserve/Release/Commit travel on
 * the request protocol {@link SCHED_PROTOCOL} (src/node/p2p/rpc.ts: one stream per request, a deadline),
 * resource ads on the gossipsub topic `ADS_TOPIC` (signed messages only; the sender is the peer id that
 * signed, so a node cannot publish an ad in another node's name — the view also checks `ad.node`).
 *
 * Gossipsub does not hand a node its own publications; the transport's contract says subscribers get
 * them, so `publish` also calls the local subscribers (the placer on a gpu node sees its own worker).
 */
import type { Message } from '@libp2p/gossipsub'
import {
  TransportError,
  type RequestHandler,
  type SchedTransport,
  type TopicHandler,
} from '../../scheduler/index.js'
import type { Logger } from '../logger.js'
import { handleRequests, isP2PError, request, type P2PHost } from '../p2p/index.js'

export const SCHED_PROTOCOL = '/hopsd/sched/1.0.0'
/** Largest scheduler request or reply (a Reserve with its ad: a few hundred bytes). */
const SCHED_FRAME_BYTES_MAX = 64 * 1024
/** Requests in flight per connection on the protocol (a placer's reserves are one per task). */
const SCHED_INFLIGHT_MAX = 64

export interface Libp2pSchedTransport extends SchedTransport {
  /** Registers the protocol and the topic listener (after the host started). */
  start(): Promise<void>
  stop(): Promise<void>
}

export function libp2pSchedTransport(
  self: string,
  host: () => P2PHost,
  logger: Logger,
): Libp2pSchedTransport {
  let handler: RequestHandler | undefined
  const topics = new Map<string, Set<TopicHandler>>()
  let unhandle: (() => Promise<void>) | undefined
  let started = false

  const deliver = (topic: string, from: string, data: Uint8Array): void => {
    for (const h of topics.get(topic) ?? []) {
      try {
        h(from, data)
      } catch (err) {
        logger.warn({ err, topic }, 'sched: a topic handler threw')
      }
    }
  }
  const onMessage = (evt: CustomEvent<Message>): void => {
    const msg = evt.detail
    if (msg.type !== 'signed' || !topics.has(msg.topic)) return
    deliver(msg.topic, msg.from.toString(), msg.data)
  }

  return {
    self,
    async start() {
      if (started) return
      started = true
      const h = host()
      unhandle = await handleRequests(
        h,
        SCHED_PROTOCOL,
        async (from, body) => {
          if (handler === undefined)
            throw Object.assign(new Error('no scheduler worker here'), { code: 'NO_WORKER' })
          return handler(from, body)
        },
        { frameBytesMax: SCHED_FRAME_BYTES_MAX, inflightMax: SCHED_INFLIGHT_MAX },
      )
      h.pubsub.addEventListener('message', onMessage)
      for (const topic of topics.keys()) h.pubsub.subscribe(topic)
    },
    async stop() {
      if (!started) return
      started = false
      const h = host()
      h.pubsub.removeEventListener('message', onMessage)
      // A daemon stopping after a failed start may have stopped libp2p's pubsub first: nothing to leave then.
      try {
        for (const topic of topics.keys()) h.pubsub.unsubscribe(topic)
      } catch {
        // gossipsub already stopped ("Pubsub is not started"): the subscriptions went with it.
      }
      await unhandle?.().catch(() => undefined)
    },
    async request(peer, payload, opts) {
      if (peer === self && handler !== undefined) return handler(self, payload)
      try {
        return await request(host(), peer, SCHED_PROTOCOL, payload, {
          timeoutMs: opts.timeoutMs,
          signal: opts.signal,
          frameBytesMax: SCHED_FRAME_BYTES_MAX,
        })
      } catch (err) {
        if (isP2PError(err) && (err.code === 'REQUEST_TIMEOUT' || err.code === 'REQUEST_ABORTED'))
          throw new TransportError(err.code, err.message)
        throw new TransportError('PEER_UNREACHABLE', (err as Error).message)
      }
    },
    handle(h) {
      handler = h
    },
    publish(topic, payload) {
      deliver(topic, self, payload)
      if (!started) return
      host()
        .pubsub.publish(topic, payload)
        .catch((err: unknown) =>
          logger.debug({ err: (err as Error).message, topic }, 'sched: publish failed'),
        )
    },
    subscribe(topic, h) {
      let set = topics.get(topic)
      if (set === undefined) {
        set = new Set()
        topics.set(topic, set)
        if (started) host().pubsub.subscribe(topic)
      }
      set.add(h)
      return () => {
        set.delete(h)
        if (set.size === 0) {
          topics.delete(topic)
          if (started) host().pubsub.unsubscribe(topic)
        }
      }
    },
  }
}
