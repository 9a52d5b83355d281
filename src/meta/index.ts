/**
 * The replicated metadata of the cluster: one deterministic state machine over tables (the fs
 * namespace is the first table set; nodes, jobs, models, ... join as further modules), driven by a
 * Raft group through the {@link StateMachine} contract.
 *
 * @example
 * ```ts
 * import { createMetaStateMachine, createLocalGroup, encodeCommand } from '../meta/index.js'
 * import { namespaceModule } from '../fs/index.js'
 *
 * const sm = createMetaStateMachine({ modules: [namespaceModule()] })
 * const group = createLocalGroup(sm) // or the real RaftGroup, driving the same `sm`
 * const result = await group.propose(encodeCommand({ nowMs: Date.now(), user: 'hopsd', setSetting: { name: 'inlineThreshold', value: '32768' } }))
 * // → { ok: true, value: { name: 'inlineThreshold', value: '32768' } }
 * const { events } = sm.changesSince(0)
 * ```
 */
export {
  createMetaStateMachine,
  encodeCommand,
  protoCodec,
  MetaStateMachine,
  type ApplyContext,
  type ChangeEvent,
  type Command,
  type CommandOp,
  type MetaModule,
  type MetaModuleFactory,
  type MetaResult,
  type MetaStateMachineInit,
  type MetaStore,
  type TableOptions,
} from './state-machine.js'
export { openLevelValueStore, type ValueStore, type ValueOp, type ValueStoreView } from './value-store.js'
export type { DiskValuesStats } from './disk-values.js'
export { createLocalGroup, type ConsensusGroup, type ProposeOpts } from './local-group.js'
export { CommandRejected, MetaError, META_ERRORS, type MetaErrorCode } from './errors.js'
export { ADMIN_GROUP, SETTING_DEFS, type ClusterSettings, type SettingName } from './settings.js'
export { be64, be16, inodeKey, childrenRange } from './keys.js'
export type { Codec, Table, TableHooks } from './table.js'
export { hopsd as metaProto } from '../proto/meta.js'
