/**
 * Cluster self-assembly: bootstrapping the metadata group exactly once, and zone-aware voter placement.
 *
 * @example
 * const boot = new BootstrapCoordinator({ selfId, expect: 3, store: filePromiseStore(path), ... })
 * // on every reconcile tick until it answers 'member' or 'bootstrapped':
 * await boot.step(signal)
 * // on the leader, every reconcile tick:
 * const step = planMembershipStep({ config, nodes, votersWanted: 3, deadGraceMs, leaderId })
 */
export {
  BootstrapCoordinator,
  filePromiseStore,
  type BootstrapInit,
  type BootstrapPromise,
  type BootstrapReply,
  type BootstrapRequest,
  type BootstrapState,
  type PromiseStore,
} from './bootstrap.js'
export {
  planMembershipStep,
  votersWantedFor,
  type GroupConfig,
  type MembershipStep,
  type MetadataCandidate,
  type PlanInput,
} from './voters.js'
