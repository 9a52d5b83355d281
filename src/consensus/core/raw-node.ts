// STUB (interface first, for the simulator engineer); the implementation replaces the bodies.
import type { RaftConfig } from './config.js'
import type { ConfChange, ConfState, Message, NodeId, Ready, StateType } from './types.js'

/** Optional tags carried by a proposed entry (see Entry in ./types.ts). */
export interface ProposalMeta {
  clientId?: string
  seq?: number
  origin?: string
  originSeq?: number
}

export type ProgressStateType = 'probe' | 'replicate' | 'snapshot'

export interface ProgressStatus {
  match: number
  next: number
  state: ProgressStateType
  isLearner: boolean
  recentActive: boolean
  inflight: number
}

export interface RawNodeStatus {
  id: NodeId
  term: number
  vote: NodeId
  commit: number
  applied: number
  lead: NodeId
  role: StateType
  lastIndex: number
  voters: NodeId[]
  learners: NodeId[]
  leadTransferee: NodeId
  /** Leader only: per-peer replication progress. */
  progress: Record<NodeId, ProgressStatus>
}

/**
 * The Raft core's API (etcd's RawNode): not thread-safe, no I/O; the driver calls it from one loop.
 */
export class RawNode {
  constructor(_config: RaftConfig) {
    throw new Error('RawNode: not implemented yet')
  }
  tick(): void {}
  step(_msg: Message): void {}
  campaign(): void {}
  propose(_data: Uint8Array, _meta?: ProposalMeta): number {
    return 0
  }
  proposeConfChange(_cc: ConfChange, _meta?: ProposalMeta): number {
    return 0
  }
  applyConfChange(_cc: ConfChange): ConfState {
    return { voters: [], learners: [] }
  }
  readIndex(_context: Uint8Array): void {}
  transferLeader(_to: NodeId): void {}
  reportUnreachable(_id: NodeId): void {}
  reportSnapshot(_id: NodeId, _ok: boolean): void {}
  hasReady(): boolean {
    return false
  }
  ready(): Ready {
    throw new Error('not implemented')
  }
  advance(_rd: Ready): void {}
  status(): RawNodeStatus {
    throw new Error('not implemented')
  }
}
