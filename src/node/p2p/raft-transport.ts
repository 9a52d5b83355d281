/**
 * The consensus `RaftTransport` over a libp2p {@link Channel}: each Raft message is one protobuf frame
 * (src/consensus codec) on the peer's long-lived stream. Node ids are libp2p peer ids, so `to` is
 * dialed as is (the peer store learns addresses from --join, identify and the membership gossip).
 *
 * Contract kept (src/consensus/transport.ts): `send` never blocks or throws — a full queue drops
 * (counted in the channel's stats), an unreachable peer is retried in the background while new
 * messages replace old ones; the handler is never called from within `send` (even for messages to
 * ourselves, which go through setImmediate) and never re-entrantly. Frames that don't decode, or
 * whose `from` isn't the peer that sent them, are dropped and counted.
 */
import { decodeMessage, encodeMessage, type Message, type RaftTransport } from '../../consensus/index.js'
import type { Channel } from './messaging.js'
import { nullLogger, type P2PLogger } from './logger.js'

export const RAFT_PROTOCOL = '/hopsd/raft/1.0.0'

export interface Libp2pRaftTransport extends RaftTransport {
  /** Frames refused on receipt (undecodable, or claiming another sender). */
  rejected(): number
}

export function createLibp2pRaftTransport(
  channel: Channel,
  init: { selfId: string; logger?: P2PLogger },
): Libp2pRaftTransport {
  const logger = init.logger ?? nullLogger
  let handler: ((msg: Message) => void) | undefined
  let rejected = 0
  channel.setHandler((from, frame) => {
    let msg: Message
    try {
      msg = decodeMessage(frame)
    } catch (err) {
      rejected++
      logger.warn({ peer: from, err: (err as Error).message }, 'raft transport: undecodable frame dropped')
      return
    }
    if (msg.from !== from) {
      rejected++
      logger.warn(
        { peer: from, claimed: msg.from },
        'raft transport: message claiming another sender dropped',
      )
      return
    }
    handler?.(msg)
  })
  return {
    send(to, msg) {
      if (to === init.selfId) {
        setImmediate(() => handler?.(msg))
        return
      }
      channel.send(to, encodeMessage(msg))
    },
    setHandler(h) {
      handler = h
    },
    rejected: () => rejected,
  }
}
