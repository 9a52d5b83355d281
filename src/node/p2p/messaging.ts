/**
 * A framed message channel over one libp2p protocol (e.g. `/hopsd/raft/1.0.0`), for fire-and-forget
 * traffic that tolerates loss (Raft retransmits).
 *
 * - One long-lived outbound stream per peer carries every frame to it (the connection is shared with
 *   everything else; the stream is reused until it breaks, then reopened).
 * - Each peer has a bounded queue (`queueDepthMax` frames); when it is full a frame is dropped by
 *   `dropPolicy` and counted — memory never grows with a slow or absent peer.
 * - Backpressure: a frame is handed to the stream only while the stream accepts more
 *   (`send()` returned true); otherwise the pump waits for 'drain', so at most one frame is buffered
 *   beyond the muxer's window and the rest wait in the bounded queue.
 * - A failed stream open is retried with capped backoff while frames are waiting.
 *
 * Contract: `send` never blocks and never throws for network reasons; frames to one peer arrive in
 * order over one stream (a reconnect may lose frames in flight, never reorder what is delivered on
 * the new stream relative to each other). The handler is called for each inbound frame in arrival
 * order per stream, never concurrently with itself; it must not block (queue work elsewhere).
 */
import type { Stream } from '@libp2p/interface'
import { abortableDelay, backoffDelayMs, type BackoffOptions } from './backoff.js'
import { P2PError } from './errors.js'
import { encodeFrame, readFrames } from './framing.js'
import type { P2PHost } from './host.js'
import { nullLogger, type P2PLogger } from './logger.js'
import { BoundedQueue, type DropPolicy } from './queue.js'
import { waitForDrain } from './drain.js'
import { Uint8ArrayList } from 'uint8arraylist'

export interface ChannelInit {
  /** The libp2p protocol id, e.g. `/hopsd/raft/1.0.0`. */
  readonly protocol: string
  /** Frames waiting per peer before dropping (default 1024). */
  readonly queueDepthMax?: number
  /** Which frame goes when the queue is full (default 'oldest': keep the newest). */
  readonly dropPolicy?: DropPolicy
  /** Largest frame accepted either way (default 4 MiB); larger outbound frames are dropped and counted. */
  readonly frameBytesMax?: number
  /** Backoff between failed stream opens to a peer (default 50 ms doubling to 2 s). */
  readonly reconnectBackoff?: BackoffOptions
  readonly logger?: P2PLogger
}

export interface ChannelStats {
  /** Frames handed to a stream. */
  readonly sent: number
  /** Frames delivered to the handler. */
  readonly received: number
  /** Frames dropped because a peer's queue was full. */
  readonly droppedQueueFull: number
  /** Frames dropped for other reasons: too large, stream broke while writing, channel stopped. */
  readonly droppedOther: number
  /** Outbound streams opened (the first per peer, then one per reconnect). */
  readonly streamsOpened: number
  /** Failed attempts to open an outbound stream. */
  readonly openFailures: number
  /** Frames waiting in all queues right now. */
  readonly queued: number
}

export type FrameHandler = (from: string, frame: Uint8Array) => void

export interface Channel {
  readonly protocol: string
  /** Registers the inbound protocol handler. */
  start(): Promise<void>
  /** Unregisters, closes outbound streams and drops what is queued. Idempotent. */
  stop(): Promise<void>
  /** Queues `frame` for `peer`; false when it was dropped (queue full under 'newest', too large, stopped). */
  send(peer: string, frame: Uint8Array): boolean
  setHandler(handler: FrameHandler): void
  stats(): ChannelStats
  /** Frames waiting for `peer`. */
  queueDepth(peer: string): number
}

interface PeerOut {
  readonly peer: string
  readonly queue: BoundedQueue<Uint8Array>
  stream: Stream | undefined
  /** A pump is running or scheduled for this peer. */
  pumping: boolean
  failures: number
}

/** Frames queued for a peer are written together up to about this many bytes per write. */
const BATCH_BYTES_MAX = 256 * 1024

/** How long `stop()` lets each outbound stream flush before aborting it. */
const STOP_FLUSH_MS = 500

export const CHANNEL_DEFAULTS = {
  queueDepthMax: 1024,
  frameBytesMax: 4 << 20,
  reconnectBackoff: { baseMs: 50, maxMs: 2_000 },
} as const

export function createChannel(host: P2PHost, init: ChannelInit): Channel {
  const protocol = init.protocol
  const queueDepthMax = init.queueDepthMax ?? CHANNEL_DEFAULTS.queueDepthMax
  const dropPolicy = init.dropPolicy ?? 'oldest'
  const frameBytesMax = init.frameBytesMax ?? CHANNEL_DEFAULTS.frameBytesMax
  const backoff = init.reconnectBackoff ?? CHANNEL_DEFAULTS.reconnectBackoff
  const logger = init.logger ?? nullLogger
  const stopCtl = new AbortController()
  const peers = new Map<string, PeerOut>()
  const inbound = new Set<Stream>()
  let handler: FrameHandler | undefined
  let started = false
  let stopped = false
  const stats = {
    sent: 0,
    received: 0,
    droppedQueueFull: 0,
    droppedOther: 0,
    streamsOpened: 0,
    openFailures: 0,
  }

  const onInbound = async (stream: Stream, from: string): Promise<void> => {
    inbound.add(stream)
    try {
      for await (const frame of readFrames(stream, frameBytesMax)) {
        if (stopped) break
        stats.received++
        try {
          handler?.(from, frame)
        } catch (err) {
          // The handler's contract is not to throw; a bug there must not cut the peer off.
          logger.error({ protocol, peer: from, err: (err as Error).message }, 'channel: frame handler threw')
        }
      }
    } catch (err) {
      logger.debug({ protocol, peer: from, err: (err as Error).message }, 'channel: inbound stream failed')
      stream.abort(err as Error)
    } finally {
      inbound.delete(stream)
    }
  }

  const openStream = async (p: PeerOut): Promise<Stream> => {
    const stream = await host.newStream(p.peer, protocol, { signal: stopCtl.signal })
    stats.streamsOpened++
    stream.addEventListener('close', () => {
      if (p.stream === stream) p.stream = undefined
    })
    return stream
  }

  const usable = (s: Stream | undefined): s is Stream =>
    s !== undefined && s.status === 'open' && s.writeStatus === 'writable'

  const pump = async (p: PeerOut): Promise<void> => {
    p.pumping = true
    try {
      while (p.queue.length > 0 && !stopped) {
        if (!usable(p.stream)) {
          p.stream = undefined
          try {
            p.stream = await openStream(p)
            p.failures = 0
          } catch (err) {
            if (stopped) return
            p.failures++
            stats.openFailures++
            const delayMs = backoffDelayMs(p.failures, backoff)
            logger.debug(
              { protocol, peer: p.peer, failures: p.failures, delayMs, err: (err as Error).message },
              'channel: cannot open stream',
            )
            await abortableDelay(delayMs, stopCtl.signal).catch(() => {})
            continue
          }
        }
        const stream: Stream = p.stream
        if (stream.writableNeedsDrain) {
          try {
            await waitForDrain(stream, stopCtl.signal)
          } catch {
            if (p.stream === stream) p.stream = undefined // closed while full: reopen
          }
          continue
        }
        // Everything queued goes out as one write (up to BATCH_BYTES_MAX): one muxer frame, one
        // encryption, one socket write for all the frames a Raft Ready produced for this peer.
        const batch = new Uint8ArrayList()
        let frames = 0
        while (p.queue.length > 0 && (frames === 0 || batch.byteLength < BATCH_BYTES_MAX)) {
          batch.append(encodeFrame(p.queue.shift()!))
          frames++
        }
        try {
          stream.send(batch) // false = now full: the loop waits for 'drain' before the next
          stats.sent += frames
        } catch (err) {
          stats.droppedOther++
          logger.debug(
            { protocol, peer: p.peer, err: (err as Error).message },
            'channel: stream broke while sending',
          )
          stream.abort(err as Error)
          if (p.stream === stream) p.stream = undefined
        }
      }
    } finally {
      p.pumping = false
    }
  }

  const channel: Channel = {
    protocol,
    async start() {
      if (started) return
      started = true
      await host.handle(protocol, (stream, from) => onInbound(stream, from))
    },
    async stop() {
      if (stopped) return
      stopped = true
      stopCtl.abort(new P2PError('P2P_STOPPED', 'the channel is stopping'))
      for (const p of peers.values()) {
        stats.droppedOther += p.queue.clear()
        const stream = p.stream
        // Let what was handed to the stream go out, but don't wait on a peer that stopped reading.
        if (stream !== undefined) {
          await stream
            .close({ signal: AbortSignal.timeout(STOP_FLUSH_MS) })
            .catch((err: unknown) => stream.abort(err as Error))
        }
      }
      for (const s of inbound) s.abort(new P2PError('P2P_STOPPED', 'the channel is stopping'))
      peers.clear()
      if (started) await host.unhandle(protocol).catch(() => {})
    },
    send(peer, frame) {
      if (stopped || frame.byteLength > frameBytesMax) {
        stats.droppedOther++
        return false
      }
      let p = peers.get(peer)
      if (p === undefined) {
        p = {
          peer,
          queue: new BoundedQueue(queueDepthMax, dropPolicy),
          stream: undefined,
          pumping: false,
          failures: 0,
        }
        peers.set(peer, p)
      }
      const dropped = p.queue.push(frame)
      stats.droppedQueueFull += dropped
      if (!p.pumping) {
        // The pump starts after the current task's synchronous sends (a microtask later), so frames
        // sent together leave together as one write.
        p.pumping = true
        const out = p
        queueMicrotask(() => {
          void pump(out).catch((err: unknown) => {
            logger.error({ protocol, peer, err: (err as Error).message }, 'channel: pump failed')
          })
        })
      }
      return dropped === 0 || dropPolicy === 'oldest'
    },
    setHandler(h) {
      handler = h
    },
    stats() {
      let queued = 0
      for (const p of peers.values()) queued += p.queue.length
      return { ...stats, queued }
    },
    queueDepth: (peer) => peers.get(peer)?.queue.length ?? 0,
  }
  return channel
}
