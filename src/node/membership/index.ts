/**
 * The gossip membership view: every node publishes its NodeInfo (zone, roles, addresses, version,
 * capacity, state) on a gossipsub topic and pushes it directly to new neighbours; every node keeps a
 * view with liveness (alive → suspect → dead from silence; left on a graceful leave).
 *
 * @example
 * ```ts
 * const membership = createMembership({
 *   host,                                          // a started P2PHost (src/node/p2p)
 *   self: { zone: 'z1', roles: ['metadata'], httpAddr: '10.0.0.1:9870', version: VERSION },
 *   config: MEMBERSHIP_LAN,
 *   logger,
 * })
 * await membership.start()
 * membership.on('change', (c) => logger.info(c, 'member change'))
 * membership.update({ capacity: { ...caps, gpusFree: 2 } })   // published at once
 * membership.view()                                // [{ id, zone, ..., liveness: 'alive', lastSeenMs }]
 * await membership.stop()                          // announces 'left'
 * ```
 */
export {
  createMembership,
  MEMBERSHIP_TOPIC,
  MEMBERSHIP_PUSH_PROTOCOL,
  MEMBERSHIP_PROBE_PROTOCOL,
  type Membership,
  type MembershipInit,
  type MembershipStats,
  type SelfInfo,
  type SelfUpdate,
} from './membership.js'
export { MEMBERSHIP_LAN, MEMBERSHIP_TEST, validateMembershipConfig, type MembershipConfig } from './config.js'
export { realClock, type Clock, type TimerHandle } from './clock.js'
export { MembershipView, type IngestOutcome } from './view.js'
export { encodeNodeInfo, decodeNodeInfo, NODE_INFO_LIMITS, type DecodeResult } from './codec.js'
export {
  EMPTY_CAPACITY,
  type Liveness,
  type MembershipChange,
  type MembershipChangeKind,
  type NodeCapacity,
  type NodeInfo,
  type NodeState,
  type NodeView,
} from './types.js'
