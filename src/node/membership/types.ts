/** The membership data model: what nodes say about themselves, and what each observer concludes. */

/**
 * What a node declares about its own lifecycle. Not whether it is up: that is {@link Liveness}, which
 * each observer concludes (the two never use the same word for different things).
 */
export type NodeState = 'active' | 'draining' | 'leaving' | 'left'

/** What an observer concludes from when it last heard from a node ('left' = announced departure). */
export type Liveness = 'alive' | 'suspect' | 'dead' | 'left'

/** Resources a node offers (soft state: authorities revalidate before committing). */
export interface NodeCapacity {
  /** Size of the file systems holding the data dir and block dirs (each counted once). */
  readonly diskBytesTotal: number
  /** Bytes used there, by anything. */
  readonly diskBytesUsed: number
  /** Bytes free there for an unprivileged writer. */
  readonly diskBytesFree: number
  /** Bytes of hopsd's finalised block replicas on this node (0 without the datanode role). */
  readonly blockBytesUsed: number
  readonly gpus: number
  readonly gpusFree: number
  readonly cpuCores: number
  readonly memoryBytes: number
}

export interface NodeInfo {
  /** Node id = libp2p peer id. */
  readonly id: string
  readonly zone: string
  readonly roles: readonly string[]
  /** HOST:PORT of the node's HTTP API. */
  readonly httpAddr: string
  /** Multiaddrs the node listens on (with /p2p/<id>). */
  readonly p2pAddrs: readonly string[]
  /** HOST:PORT of the node's data-plane TLS listener (block streams); '' when it has none. */
  readonly dataAddr: string
  readonly version: string
  readonly capacity: NodeCapacity
  readonly state: NodeState
  /** Start time of the node's current run (ms): a restart supersedes everything said before. */
  readonly incarnation: number
  /** Publication counter within an incarnation: stale or duplicate news is ignored. */
  readonly seq: number
  /** Sender's clock when sent (display only). */
  readonly sentAtMs: number
}

export interface NodeView extends Omit<NodeInfo, 'state'> {
  /**
   * What the node last declared, while this observer still hears it or it left; `unknown` once the
   * observer holds it dead (a dead node declares nothing: its last word is history, not its state).
   */
  readonly state: NodeState | 'unknown'
  /** The one answer to "is it up?" in this observer's view. */
  readonly liveness: Liveness
  /** When this observer last heard from the node (its clock, ms since the epoch in production). */
  readonly lastSeenMs: number
  /** True for the observing node's own entry. */
  readonly self: boolean
}

export type MembershipChangeKind = 'joined' | 'updated' | 'liveness' | 'removed'

export interface MembershipChange {
  readonly kind: MembershipChangeKind
  readonly id: string
  /** The node as it is now (as it was last, for 'removed'). */
  readonly node: NodeView
  /** For 'liveness': what it was before. */
  readonly previous?: Liveness
}

export const EMPTY_CAPACITY: NodeCapacity = {
  diskBytesTotal: 0,
  diskBytesUsed: 0,
  diskBytesFree: 0,
  blockBytesUsed: 0,
  gpus: 0,
  gpusFree: 0,
  cpuCores: 0,
  memoryBytes: 0,
}
