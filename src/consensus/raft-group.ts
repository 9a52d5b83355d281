// STUB (interface first); the implementation follows.
import type { RaftGroup, RaftGroupInit } from './raft-group-types.js'

export function createRaftGroup(_init: RaftGroupInit): RaftGroup {
  throw new Error('createRaftGroup: not implemented yet')
}
