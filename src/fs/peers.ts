/**
 * What the file system needs of the network between nodes and of the cluster view, as narrow
 * interfaces the daemon implements (src/node: libp2p today) and passes in — as consensus defines its
 * `RaftTransport`. The fs area never sees libp2p; a second implementation (direct TLS connections
 * between nodes for bulk block data, src/node/dataplane) implements the same {@link PeerStreams}.
 *
 * Contract common to every implementation:
 * - Peers are named by node id. A stream or request reaches exactly that node, authenticated by the
 *   implementation (libp2p: the peer id is the node key; TLS: the node certificate).
 * - A frame is one message, delivered whole and in order; frames bigger than the reader's
 *   `frameBytesMax` fail the read (the peer cannot make us buffer without limit).
 * - Every call that may wait takes an AbortSignal; an aborted call rejects and leaves nothing open.
 * - Handlers may run concurrently with each other (one per inbound stream or request).
 */

/** One bidirectional stream of frames between this node and a peer, for one protocol. */
export interface PeerStream {
  /**
   * Queues one frame, given whole or as parts that are sent back to back as one frame without being
   * joined (a packet's header and its data). Resolves at once while the transport has room, else
   * once it drained (backpressure). Rejects when the stream is no longer open or `signal` aborts.
   */
  send(frame: Uint8Array | readonly Uint8Array[], signal?: AbortSignal): Promise<void>
  /**
   * The peer's frames in order, until it closes its side. Call once. Throws when a frame announces
   * more than `frameBytesMax` bytes, or the stream is aborted.
   */
  frames(frameBytesMax: number): AsyncIterable<Uint8Array>
  /** Ends this side after what was sent (the peer's `frames()` then ends); reading goes on. */
  close(signal?: AbortSignal): Promise<void>
  /** Ends both sides at once, discarding what is queued; the peer sees an error. */
  abort(err: Error): void
  /** False once the stream was closed on both sides, aborted or reset. */
  readonly open: boolean
}

/** Runs one inbound stream; the stream is the handler's to close (or abort). */
export type PeerStreamHandler = (stream: PeerStream, from: string) => Promise<void>

/** Byte streams to and from peers, by protocol name (the block pipeline, block reads). */
export interface PeerStreams {
  /** Opens a stream to `peer` for `protocol`. Rejects when the peer cannot be reached or does not serve it. */
  openStream(peer: string, protocol: string, opts?: { signal?: AbortSignal }): Promise<PeerStream>
  /**
   * Serves `protocol`: each inbound stream goes to `handler`. `streamsMax` bounds the streams open at
   * once per peer connection. Resolves with a function that stops serving it.
   */
  handleStreams(
    protocol: string,
    handler: PeerStreamHandler,
    opts?: { streamsMax?: number },
  ): Promise<() => Promise<void>>
}

/** Answers one request; an error with a string `code` answers with that code. */
export type PeerRequestHandler = (from: string, body: Uint8Array, signal: AbortSignal) => Promise<Uint8Array>

/** Request/reply with a deadline (heartbeats, block allocation). */
export interface PeerRpc {
  /**
   * Sends `body` to `peer` on `protocol` and resolves with the answer. Fails after `timeoutMs` (the
   * implementation's default when absent) or when `signal` aborts. A handler's error reaches the
   * caller with `code: 'REMOTE_ERROR'` and the handler's code in `remoteCode`; a transport failure
   * carries its own code (REQUEST_TIMEOUT, PEER_UNREACHABLE, ...).
   */
  request(
    peer: string,
    protocol: string,
    body: Uint8Array,
    opts?: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<Uint8Array>
  /** Serves `protocol` with `handler`, each run within `timeoutMs`; resolves with a function that stops it. */
  handleRequests(
    protocol: string,
    handler: PeerRequestHandler,
    opts?: { timeoutMs?: number },
  ): Promise<() => Promise<void>>
}

/** Both: what the block manager and the datanode are given. */
export interface PeerNetwork extends PeerStreams, PeerRpc {}

/** One node as the cluster's gossip view shows it (src/node/membership's NodeView fits). */
export interface ClusterMember {
  readonly id: string
  readonly zone: string
  readonly roles: readonly string[]
  /** HOST:PORT of its HTTP API ('' when unknown). */
  readonly httpAddr: string
  readonly liveness: 'alive' | 'suspect' | 'dead' | 'left'
  /** When it was last heard of, on the time line of the Clock given to the fs area (wall-clock ms). */
  readonly lastSeenMs: number
  /** This node. */
  readonly self: boolean
}

/** The cluster's gossip view: soft state, possibly stale, never a reason to commit anything by itself. */
export interface ClusterView {
  view(): readonly ClusterMember[]
}
