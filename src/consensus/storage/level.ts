// STUB (interface first); the implementation follows.
import type { RaftPersistence } from './types.js'

export interface LevelStorage extends RaftPersistence {
  readonly dir: string
}

/** Opens (creating if needed) the Raft storage of one node in a LevelDB directory. */
export async function openLevelStorage(_dir: string): Promise<LevelStorage> {
  throw new Error('openLevelStorage: not implemented yet')
}
