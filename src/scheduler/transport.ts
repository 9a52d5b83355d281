/**
 * How scheduler messages travel: request/reply to one peer (Reserve, Release, Commit) and
 * publish/subscribe on a topic (resource ads). Bytes in, bytes out: the scheduler encodes its messages
 * with protobuf (proto/sched.proto) whatever carries them. Two implementations: the in-memory network
 * ({@link createMemorySchedNetwork}, tests and the bench) and, with the node integration, libp2p
 * (a request protocol and a gossipsub topic).
 *
 * Contract, for every implementation:
 * - `request` resolves with the peer handler's reply, or rejects with a TransportError: PEER_UNREACHABLE
 *   (no such peer or no handler), REQUEST_TIMEOUT (no reply within timeoutMs: the request may or may not
 *   have been handled — the caller must make requests idempotent), REQUEST_ABORTED (the signal aborted).
 * - Handlers run one message at a time per call, may be async, and must not throw for bad input (they
 *   answer it); a handler that throws makes the request fail with PEER_UNREACHABLE.
 * - `publish` is fire and forget: messages may be lost, delayed, duplicated or reordered; subscribers
 *   receive their own node's publications too.
 */

export interface RequestOptions {
  readonly timeoutMs: number
  readonly signal?: AbortSignal
}

export type RequestHandler = (from: string, payload: Uint8Array) => Uint8Array | Promise<Uint8Array>
export type TopicHandler = (from: string, payload: Uint8Array) => void

export interface SchedTransport {
  /** This node's id. */
  readonly self: string
  request(peer: string, payload: Uint8Array, opts: RequestOptions): Promise<Uint8Array>
  /** Serves requests to this node; one handler (a second call replaces it, undefined removes it). */
  handle(handler: RequestHandler | undefined): void
  publish(topic: string, payload: Uint8Array): void
  /** Returns the unsubscribe function. */
  subscribe(topic: string, handler: TopicHandler): () => void
}
