/**
 * The daemon's composition: which modules run, in which order, for which roles. Order is dependency
 * order (a module sees the services of the modules above it); stop runs in reverse.
 *
 * Seams for the areas that arrive next, in this order:
 *   p2p         (every node)       src/node/p2p: libp2p host, reusing the node key (NodeComponents.identity)
 *   membership  (every node)       src/node/membership: gossip view, needs p2p
 *   raft        (roles: metadata)  src/consensus: the Raft group, storage under <data-dir>/raft
 *   meta        (roles: metadata)  src/meta: the replicated state machine driven by raft
 *   fs          (every node)       src/fs: namespace ops and routes (src/api/routes/fs.ts)
 * Each is one `NodeModule` row below; see src/node/module.ts for the contract.
 */
import type { NodeModule } from './module.js'

export const DEFAULT_MODULES: readonly NodeModule[] = []
