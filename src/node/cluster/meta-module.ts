/**
 * The `cluster` table set of the metadata state machine: the cluster id and the cluster CA, written once
 * by the bootstrap initiator with an `InitCluster` command. A second InitCluster with the same id is a
 * no-op (the initiator retries until it sees its command applied); one with another id is refused.
 */
import {
  CommandRejected,
  protoCodec,
  type ApplyContext,
  type MetaModule,
  type MetaModuleFactory,
} from '../../meta/index.js'
import { hopsd } from '../../proto/meta.js'

import pb = hopsd.meta

export interface ClusterInfo {
  readonly clusterId: string
  readonly caCertPem: string
  readonly caKeyPem: string
  readonly createdMs: number
}

const INFO_KEY = 'info'

export class ClusterTable implements MetaModule {
  readonly name = 'cluster'
  readonly ops = ['initCluster'] as const
  readonly #info

  constructor(store: Parameters<MetaModuleFactory>[0]) {
    this.#info = store.table<ClusterInfo>('cluster', protoCodec(pb.ClusterInfo))
  }

  apply(ctx: ApplyContext): unknown {
    const init = ctx.cmd.initCluster
    if (!init) throw new Error('cluster: command without initCluster')
    if (!ctx.isSuperuser)
      throw new CommandRejected('ACCESS_DENIED', 'only the superuser initialises the cluster')
    if (!init.clusterId || !init.caCertPem || !init.caKeyPem) {
      throw new CommandRejected('INVALID_ARGUMENT', 'InitCluster needs clusterId, caCertPem and caKeyPem')
    }
    const existing = this.#info.get(INFO_KEY)
    if (existing !== undefined) {
      if (existing.clusterId === init.clusterId) return { clusterId: existing.clusterId, created: false }
      throw new CommandRejected('ALREADY_INITIALIZED', `the cluster is ${existing.clusterId} already`)
    }
    this.#info.put(INFO_KEY, {
      clusterId: init.clusterId,
      caCertPem: init.caCertPem,
      caKeyPem: init.caKeyPem,
      createdMs: ctx.cmd.nowMs,
    })
    return { clusterId: init.clusterId, created: true }
  }

  /** The cluster's identity and CA, once initialised (read from this replica). */
  info(): ClusterInfo | undefined {
    return this.#info.get(INFO_KEY)
  }
}

export function clusterModule(): MetaModuleFactory<ClusterTable> {
  return (store) => new ClusterTable(store)
}
