/**
 * The `metadata` module (role metadata): the node's replica of the cluster metadata — the Raft group
 * (LevelDB under `<data-dir>/raft`, libp2p transport) driving the metadata state machine (fs namespace,
 * cluster identity and CA) — and the self-assembly loop around it:
 *
 *  - until the node belongs to a group, it takes part in the bootstrap protocol (src/node/assembly);
 *  - on the leader, every tick: initialise the cluster once (id, CA certificate, the CA key wrapped to
 *    the leader, the bootstrap voters admitted), then carry out the trust duties (revoked nodes leave the
 *    group; a new CRL once the state holds a revocation the last one lacks) and one zone-aware
 *    membership step (admitted metadata nodes in as learners, promotions, replacement of dead voters);
 *  - on every metadata node, every tick: the peer gate learns the revoked nodes and the newest CRL
 *    from the replica;
 *  - it answers node-to-node requests: bootstrap promises, proposals forwarded by nodes without the
 *    metadata role, and the cluster status for them. (Admission requests: the admission module.)
 *
 * The CA's private key never enters the state in plaintext: `ca` holds this node's wrapping key
 * (`<data-dir>/tls/wrap.key`) and unwraps this node's copy in memory (src/node/admission/keyring.ts).
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { Counter, Gauge, type Registry } from 'prom-client'
import {
  createRaftGroup,
  defaultRaftGroupConfig,
  createSeededRng,
  openLevelStorage,
  type RaftGroup,
  type RaftGroupStatus,
  type RaftLogger,
} from '../../consensus/index.js'
import { authModule, createLocalAuthenticator, type Authenticator, type AuthStore } from '../../auth/index.js'
import { namespaceAndBlockModules, namespaceModule, type Namespace } from '../../fs/index.js'
import { projectsModule, type ProjectStore } from '../../projects/index.js'
import {
  createMetaStateMachine,
  encodeCommand,
  openLevelValueStore,
  type DiskValuesStats,
  type MetaStateMachine,
} from '../../meta/index.js'
import { jobsModule, type JobsModule } from '../../scheduler/index.js'
import { servingModule as servingMetaModule } from '../../serving/index.js'
import { hopsd } from '../../proto/cluster.js'
import {
  BootstrapCoordinator,
  filePromiseStore,
  planMembershipStep,
  votersWantedFor,
  type BootstrapState,
  type MetadataCandidate,
} from '../assembly/index.js'
import { StartupError } from '../errors.js'
import { createCaKeyring, loadOrCreateWrappingKey, type CaKeyring } from '../admission/index.js'
import { createClusterCa, issueCrl } from '../ca/index.js'
import type { Logger } from '../logger.js'
import { requireService, type NodeModule } from '../module.js'
import {
  createChannel,
  createLibp2pRaftTransport,
  handleRequests,
  request,
  RAFT_PROTOCOL,
  type Channel,
} from '../p2p/index.js'
import { Periodic } from '../../lib/index.js'
import type { NodeView } from '../membership/index.js'
import type { P2PNode } from './p2p-module.js'
import { clusterModule, type ClusterTable } from './meta-module.js'
import { TLS_DIR } from './p2p-module.js'
import { plantedApplyFaultPath, withPlantedApplyFault } from './planted-fault.js'
import { buildClusterStatus, type ClusterStatus } from './status.js'
import { asAuthenticated, credentialFromProto, grantVerifier } from './trust.js'

import pb = hopsd.cluster

export const PROTOCOLS = {
  bootstrap: '/hopsd/bootstrap/1.0.0',
  propose: '/hopsd/propose/1.0.0',
  status: '/hopsd/cluster-status/1.0.0',
} as const

/** A learner within this many entries of the commit index counts as caught up (may be promoted). */
const CAUGHT_UP_LAG_ENTRIES = 64
/**
 * `<data-dir>/meta-values`: the LevelDB of the rows kept on disk. Emptied at every start (rebuilt from
 * the Raft snapshot and log): it takes them out of the heap, it is not yet the replica's durable state.
 */
const META_VALUES_DIR = 'meta-values'
/** Forwarded proposals wait at most this long (the caller's own deadline may be shorter). */
const FORWARD_TIMEOUT_MS_MAX = 30_000

export interface MetadataNode {
  readonly group: RaftGroup
  readonly stateMachine: MetaStateMachine
  readonly cluster: ClusterTable
  /** This node's hold on the CA key: its wrapping key and, once wrapped to it, the key in memory. */
  readonly ca: CaKeyring
  /**
   * Authenticates credentials against this replica (src/auth), after a read barrier; accepts grants
   * signed by current members of the group. The API hook, forwarded proposals and block allocation use it.
   */
  readonly authenticator: Authenticator
  /** The `auth` module of the state machine (users, keys, tokens). */
  readonly auth: AuthStore
  /** Whether `id` is a voter or learner of the group now (a node whose grants are believed). */
  isMember(id: string): boolean
  /** Where the bootstrap protocol stands ('member' once the node belongs to a group). */
  bootstrapState(): BootstrapState
  status(): ClusterStatus
}

export function metadataModule(): NodeModule<'metadata'> {
  return {
    name: 'metadata',
    roles: ['metadata'],
    create(components) {
      const { config, identity } = components
      const logger = components.logger
      const p2p = requireService(components, 'p2p')
      const membership = requireService(components, 'membership')
      const selfId = identity.id

      let namespace: Namespace | undefined
      // The bulk of the tables' rows (the inodes, inline bytes included) on disk, out of the heap.
      const valueStore = openLevelValueStore(join(config.dataDir, META_VALUES_DIR))
      const stateMachine = createMetaStateMachine({
        values: {
          store: valueStore,
          cacheBytes: config.metaCacheMib * 1024 * 1024,
          onWriteError: (err) =>
            components.fatal({
              code: 'STORAGE_FAILED',
              message: `the metadata value store cannot write: ${err.message}`,
            }),
        },
        modules: [
          ...namespaceAndBlockModules((store) => (namespace = namespaceModule()(store))),
          projectsModule(() => namespace!),
          clusterModule(),
          authModule(),
          jobsModule(),
          servingMetaModule(),
        ],
        // The group below runs with the default maxBatchBytes: settings must fit it.
        commandBytesMax: defaultRaftGroupConfig.maxBatchBytes,
      })
      const cluster = stateMachine.module<ClusterTable>('cluster')
      const ca = createCaKeyring({
        selfId,
        wrapping: loadOrCreateWrappingKey(join(config.dataDir, TLS_DIR)),
        state: () => cluster,
        onError: (err) =>
          logger.error({ err: (err as Error).message }, 'this node cannot unwrap its CA key copy'),
      })
      const authStore = stateMachine.module<AuthStore>('auth')
      const projectStore = stateMachine.module<ProjectStore>('projects')
      authStore.attachProjectMembership((project, user, su) =>
        projectStore.requireKeyProject(project, user, su),
      )
      // Project-user certificates authenticate only while the projects module's record says so.
      authStore.attachProjectCertificates((serial, project, user, nowMs) =>
        projectStore.checkCertificate(serial, project, user, nowMs),
      )
      // Jobs belong to projects: submissions and kills are decided by membership inside apply.
      stateMachine
        .module<JobsModule>('jobs')
        .attachProjects({ roleOf: (project, user) => projectStore.member(project, user)?.role })
      const members = (): string[] => {
        if (group === undefined) return []
        const st = group.status()
        return [...st.voters, ...st.learners]
      }
      const authenticator = createLocalAuthenticator({
        store: () => authStore,
        settings: () => stateMachine.settings(),
        isSuperuser: (u, g) => stateMachine.isSuperuser(u, g),
        bootstrapMode: config.auth,
        barrier: (signal) => requireGroup().readBarrier({ signal }),
        grants: grantVerifier(members),
      })
      let group: RaftGroup | undefined
      let channel: Channel | undefined
      const unhandles: (() => Promise<void>)[] = []
      let bootState: BootstrapState = { phase: 'waiting', reason: 'starting' }
      const verifying = new AbortController()
      let loop: Periodic | undefined

      const requireGroup = (): RaftGroup => {
        if (group === undefined) throw new Error('metadata: group used before start')
        return group
      }
      // Figures read from the Raft group when scraped (a group not started yet, or stopped: none).
      const statusOf = (): RaftGroupStatus | undefined => {
        try {
          return group?.status()
        } catch {
          return undefined
        }
      }
      const fromStatus = (of: (s: RaftGroupStatus) => number) => () => {
        const s = statusOf()
        return s === undefined ? undefined : of(s)
      }
      const fromValues = (of: (s: DiskValuesStats) => number) => () => {
        const s = stateMachine.diskValueStats()
        return s === undefined ? undefined : of(s)
      }
      registerScrapedMetrics(components.metrics, [
        // What reads cost: a read barrier per linearizable read, ReadIndex rounds shared by concurrent ones.
        {
          counter: 'hopsd_metadata_read_barriers_total',
          help: 'Read barriers (linearizable reads) this metadata replica waited for, since it started.',
          read: fromStatus((s) => s.reads?.barriers ?? 0),
        },
        {
          counter: 'hopsd_metadata_read_rounds_total',
          help: 'ReadIndex rounds this replica sent for its read barriers (concurrent barriers share one).',
          read: fromStatus((s) => s.reads?.rounds ?? 0),
        },
        // Snapshots (the latest one's index, installs from a leader, one being received) and what the
        // driver's mirror of the log holds in memory.
        {
          counter: 'hopsd_raft_snapshots_installed_total',
          help: 'Snapshots this metadata replica installed from a leader since it started.',
          read: fromStatus((s) => s.snapshots?.installed ?? 0),
        },
        {
          counter: 'hopsd_raft_log_read_back_entries_total',
          help: 'Log entries read back from the Raft storage (older than the in-memory tail) since start.',
          read: fromStatus((s) => s.log?.readBackEntries ?? 0),
        },
        {
          gauge: 'hopsd_raft_snapshot_index',
          help: 'Raft index of the latest snapshot this metadata replica holds (taken or installed).',
          read: fromStatus((s) => s.snapshots?.index ?? 0),
        },
        {
          gauge: 'hopsd_meta_start_seconds_load',
          help: 'This start: seconds reading the Raft storage (hard state, log; not the snapshot data).',
          read: fromStatus((s) => (s.start?.loadMs ?? 0) / 1000),
        },
        {
          gauge: 'hopsd_meta_start_seconds_store_open',
          help: 'This start: seconds opening the metadata store (keys, small tables, indexes; slim rows).',
          read: fromStatus((s) => (s.start?.storeOpenMs ?? 0) / 1000),
        },
        {
          gauge: 'hopsd_meta_start_seconds_snapshot',
          help: 'This start: seconds checking the snapshot file, or restoring from it when the store was behind.',
          read: fromStatus((s) => (s.start?.snapshotMs ?? 0) / 1000),
        },
        {
          gauge: 'hopsd_raft_snapshot_receiving_bytes',
          help: 'Bytes of a snapshot from the leader received so far and not yet installed (0 when none).',
          read: fromStatus((s) => s.snapshots?.receivingBytes ?? 0),
        },
        {
          gauge: 'hopsd_raft_log_memory_bytes',
          help: 'Bytes of Raft log entries (and snapshot data) the driver holds in memory.',
          read: fromStatus((s) => (s.log?.bytes ?? 0) + (s.log?.snapshotDataBytes ?? 0)),
        },
        // The rows kept on disk: what memory they hold.
        {
          gauge: 'hopsd_meta_values_cached_bytes',
          help: 'Bytes (encoded, plus a fixed overhead per row) of disk-kept metadata rows cached in memory.',
          read: fromValues((s) => s.cachedBytes),
        },
        {
          gauge: 'hopsd_meta_values_pending_rows',
          help: 'Metadata rows written by apply and not yet in the value store (LevelDB).',
          read: fromValues((s) => s.pendingRows),
        },
      ])
      // The rows kept on disk: where their reads were served from.
      new Counter({
        name: 'hopsd_meta_values_reads_total',
        help: 'Reads of metadata rows kept on disk (inodes, blocks), by where they were served from.',
        labelNames: ['source'],
        registers: [components.metrics],
        collect() {
          const s = stateMachine.diskValueStats()
          this.reset()
          if (s === undefined) return
          this.inc({ source: 'cache' }, s.cacheHits)
          this.inc({ source: 'pending' }, s.pendingHits)
          this.inc({ source: 'disk' }, s.diskReads)
        },
      })
      const hasRaftState = (): boolean => {
        const st = requireGroup().status()
        return st.lastIndex > 0 || st.voters.length > 0 || st.learners.length > 0
      }
      const metadataPeers = () =>
        membership.view().filter((n) => n.roles.includes('metadata') && n.liveness !== 'left')

      const coordinator = new BootstrapCoordinator({
        selfId,
        expect: config.bootstrapExpect,
        store: filePromiseStore(join(config.dataDir, 'bootstrap-promise.json')),
        hasRaftState,
        candidates: () =>
          metadataPeers()
            .filter((n) => n.liveness === 'alive')
            .map((n) => n.id),
        request: async (peer, req, signal) => {
          const body = pb.BootstrapRequest.encode({
            kind:
              req.kind === 'release' ? pb.BootstrapRequest.Kind.RELEASE : pb.BootstrapRequest.Kind.PROMISE,
            initiator: req.initiator,
            voters: [...req.voters],
            clusterId: req.clusterId,
          }).finish()
          const reply = pb.BootstrapReply.decode(
            await request(p2p.host(), peer, PROTOCOLS.bootstrap, body, { signal, timeoutMs: 3_000 }),
          )
          return { accepted: reply.accepted, reason: reply.reason, promisedTo: reply.promisedTo || undefined }
        },
        bootstrap: async (promise) => {
          logger.info(
            { voters: promise.voters, clusterId: promise.clusterId },
            'bootstrapping the metadata group',
          )
          await requireGroup().bootstrap([...promise.voters])
        },
        newClusterId: () => randomUUID(),
      })

      const node: MetadataNode = {
        get group() {
          return requireGroup()
        },
        stateMachine,
        cluster,
        ca,
        authenticator,
        auth: authStore,
        isMember: (id) => members().includes(id),
        bootstrapState: () => bootState,
        status: () =>
          buildClusterStatus(
            requireGroup().status(),
            cluster.info()?.clusterId,
            membership.view(),
            authenticator.mode(),
          ),
      }

      return {
        api: node,
        service: {
          async start() {
            const host = p2p.host()
            await valueStore.opened
            const storage = await openLevelStorage(join(config.dataDir, 'raft'))
            channel = createChannel(host, {
              protocol: RAFT_PROTOCOL,
              logger: logger.child({ area: 'raft-net' }),
            })
            group = createRaftGroup({
              id: selfId,
              storage,
              transport: createLibp2pRaftTransport(channel, { selfId, logger }),
              stateMachine: withPlantedApplyFault(stateMachine, plantedApplyFaultPath()),
              rng: createSeededRng(randomBytes(4).readUInt32LE(0)),
              config: { tickMs: config.raftTickMs },
              logger: raftLogger(logger.child({ area: 'raft' })),
            })
            group.subscribe((ev) => {
              if (ev.type === 'leader') logger.info({ leader: ev.leaderId, term: ev.term }, 'raft leader')
              if (ev.type === 'membership')
                logger.info({ voters: ev.voters, learners: ev.learners }, 'raft membership')
              // The group stopped on its own (storage or apply failure): this replica is dead. Say so
              // on /health and exit, so that a supervisor restarts the node from its disk.
              if (ev.type === 'stopped' && ev.error !== undefined) {
                const code = (ev.error as { code?: string }).code ?? 'STORAGE_FAILED'
                components.fatal({ code, message: `the metadata Raft group stopped: ${ev.error.message}` })
              }
            })
            await channel.start()
            await group.start()
            await refuseLegacyState(group, cluster, logger)
            // The restart read the slim rows only: every other row is checked now, off the start.
            const t0 = performance.now()
            void stateMachine.verifyStore(verifying.signal).then(
              (rows) =>
                logger.info({ rows, ms: Math.round(performance.now() - t0) }, 'metadata store checked'),
              (err: unknown) => {
                if (verifying.signal.aborted) return
                const code = (err as { code?: string }).code ?? 'STORE_CORRUPT'
                components.fatal({ code, message: (err as Error).message })
              },
            )
            unhandles.push(
              await handleRequests(host, PROTOCOLS.bootstrap, async (from, body) => {
                const req = pb.BootstrapRequest.decode(body)
                const reply = await coordinator.handleRequest(from, {
                  kind: req.kind === pb.BootstrapRequest.Kind.RELEASE ? 'release' : 'promise',
                  initiator: req.initiator,
                  voters: req.voters,
                  clusterId: req.clusterId,
                })
                return pb.BootstrapReply.encode({ ...reply, promisedTo: reply.promisedTo ?? '' }).finish()
              }),
              await handleRequests(
                host,
                PROTOCOLS.propose,
                async (_from, body, signal) => {
                  const req = pb.ProposeRequest.decode(body)
                  const timeoutMs = Math.min(req.timeoutMs || FORWARD_TIMEOUT_MS_MAX, FORWARD_TIMEOUT_MS_MAX)
                  const deadline = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
                  // A peer's word for who is calling counts for nothing: its credential is checked
                  // here and the command proposed as the principal it proves (src/node/cluster/trust.ts).
                  const { command, principal } = await asAuthenticated(
                    authenticator,
                    credentialFromProto(req.credential),
                    req.command,
                    selfId,
                    deadline,
                  )
                  const result = await requireGroup().propose(command, {
                    signal: deadline,
                    // Sessions are per principal: another user's clientId names another session.
                    session: req.clientId
                      ? { clientId: `${principal.user}\u0000${req.clientId}`, seq: req.seq }
                      : undefined,
                  })
                  return pb.ProposeReply.encode({ resultJson: JSON.stringify(result ?? null) }).finish()
                },
                { timeoutMs: FORWARD_TIMEOUT_MS_MAX },
              ),
              await handleRequests(host, PROTOCOLS.status, async () =>
                pb.ClusterStatusReply.encode({ statusJson: JSON.stringify(node.status()) }).finish(),
              ),
            )
            loop = new Periodic({
              intervalMs: Math.min(1_000, Math.max(100, config.gossipIntervalMs)),
              tick: async (signal) => {
                if (!hasRaftState()) {
                  // A node given a join token joins a cluster that exists: it waits to be added to the
                  // group and never bootstraps one of its own. Its first ticks can come before gossip
                  // has told it of any metadata node, and with the default --bootstrap-expect 1 it then
                  // saw only itself and bootstrapped a second cluster (caught in test/trust/admission).
                  if (config.joinToken !== undefined) {
                    bootState = { phase: 'waiting', reason: 'joining an existing cluster (--join-token)' }
                    return
                  }
                  bootState = await coordinator.step(signal)
                  if (bootState.phase === 'waiting')
                    logger.debug({ reason: bootState.reason }, 'bootstrap waiting')
                  return
                }
                bootState = { phase: 'member' }
                const g = requireGroup()
                if (cluster.info()?.legacyPlaintextCa === true) {
                  logger.error({}, legacyMessage())
                  return
                }
                syncTrust(p2p, cluster)
                const st = g.status()
                if (st.role !== 'leader' || st.leaderId !== selfId) return
                await ensureClusterInitialised(
                  g,
                  stateMachine,
                  cluster,
                  coordinator,
                  ca,
                  membership.view(),
                  selfId,
                  config,
                  logger,
                )
                await publishCrl(g, stateMachine, cluster, ca, logger)
                // A revoked node leaves the group before anything else changes it.
                const revoked = [...st.voters, ...st.learners].find(
                  (id) => id !== selfId && cluster.isRevoked(id),
                )
                if (revoked !== undefined) {
                  logger.warn({ peer: revoked }, 'membership step: removing a revoked node')
                  await g.removeNode(revoked, { signal })
                  return
                }
                const view = membership.view()
                const now = Date.now()
                const nodes: MetadataCandidate[] = view
                  // Only nodes admitted for the metadata role become replicas (and receive the state).
                  .filter(
                    (n) => n.roles.includes('metadata') && (n.self || cluster.isAdmitted(n.id, 'metadata')),
                  )
                  .map((n) => {
                    // A member whose Raft messages reach this leader is up, whatever gossip says: gossip
                    // can lag or break one way (seen under load right after a learner got its
                    // certificate), and removing a replica that answers every heartbeat would be wrong.
                    const raftHeard = (st.progress?.[n.id]?.heardAgoMs ?? Infinity) < config.deadAfterMs
                    const liveness = n.self || (raftHeard && n.liveness !== 'left') ? 'alive' : n.liveness
                    return {
                      id: n.id,
                      zone: n.zone,
                      liveness,
                      deadForMs:
                        liveness === 'dead' ? Math.max(0, now - n.lastSeenMs - config.deadAfterMs) : 0,
                      caughtUp: (st.progress?.[n.id]?.match ?? 0) + CAUGHT_UP_LAG_ENTRIES >= st.commitIndex,
                    }
                  })
                const metadataCount = nodes.filter(
                  (n) => n.liveness === 'alive' || n.liveness === 'suspect',
                ).length
                const step = planMembershipStep({
                  config: { voters: st.voters, learners: st.learners },
                  nodes,
                  votersWanted: votersWantedFor(Math.max(metadataCount, st.voters.length), config.voters),
                  deadGraceMs: config.voterGraceMs,
                  leaderId: selfId,
                })
                if (step === undefined) return
                logger.info({ step: step.type, peer: step.id, reason: step.reason }, 'membership step')
                const opts = { signal }
                if (step.type === 'addLearner') await g.addLearner(step.id, opts)
                else if (step.type === 'promote') await g.promoteLearner(step.id, opts)
                else await g.removeNode(step.id, opts)
              },
              onError: (err) =>
                logger.warn(
                  { err: (err as Error).message, code: (err as { code?: string }).code },
                  'reconcile step failed',
                ),
            })
            loop.start()
          },
          async stop(signal) {
            verifying.abort()
            await loop?.stop()
            // Hand leadership over before leaving, so the cluster doesn't wait out an election timeout.
            if (group !== undefined) await transferLeadershipAway(group, signal, logger)
            for (const unhandle of unhandles.splice(0)) await unhandle().catch(() => undefined)
            await group?.stop()
            await channel?.stop()
            await stateMachine.valuesSettled()
            await valueStore.close()
          },
        },
      }
    },
  }
}

/**
 * The leader writes the cluster id and CA once; the bootstrap initiator's id wins when it has one. The
 * CA key goes into the state only wrapped to this node; the Raft voters of the bootstrap and the nodes
 * alive in this node's view are admitted by it, for the roles their gossip says they run.
 */
async function ensureClusterInitialised(
  group: RaftGroup,
  sm: MetaStateMachine,
  cluster: ClusterTable,
  coordinator: BootstrapCoordinator,
  keyring: CaKeyring,
  view: readonly NodeView[],
  selfId: string,
  config: { zone: string; roles: readonly string[] },
  logger: Logger,
): Promise<void> {
  if (cluster.info() !== undefined) return
  const clusterId = coordinator.promisedClusterId() ?? randomUUID()
  const ca = await createClusterCa(clusterId)
  // The bootstrap voters, and every node the gossip view shows alive now: they were there while the
  // cluster trusted swarm-key holders (the bootstrap window); anyone later needs a token or an admin.
  const voters = group.status().voters
  const present = view.filter((n) => !n.self && n.liveness === 'alive').map((n) => n.id)
  const admitted = [...new Set([...voters, ...present])].map((id) => {
    const n = view.find((v) => v.id === id)
    if (id === selfId) return { id, roles: [...config.roles], zone: config.zone }
    const roles = n === undefined ? [] : [...n.roles]
    // A voter is a metadata node whatever its gossip said (or whether it said anything yet).
    return {
      id,
      roles: voters.includes(id) ? [...new Set(['metadata', ...roles])] : roles,
      zone: n?.zone ?? '',
    }
  })
  const result = (await group.propose(
    encodeCommand({
      nowMs: Date.now(),
      user: sm.settings().superuser,
      initCluster: {
        clusterId,
        caCertPem: ca.certPem,
        wrappedKey: keyring.wrapOwn(ca, selfId),
        admitted,
      },
    }),
  )) as { ok: boolean; code?: string; message?: string }
  if (result.ok)
    logger.info(
      { clusterId, admitted: voters },
      'cluster initialised: id, CA certificate and the CA key wrapped to this node in the replicated state',
    )
  else logger.warn({ code: result.code, reason: result.message }, 'cluster initialisation refused')
}

/**
 * Metrics read from their source when scraped: a counter holds a count since start, a gauge a level;
 * `read` answers undefined when the source has nothing to say (a counter then reads 0, a gauge 0).
 */
function registerScrapedMetrics(
  registry: Registry,
  metrics: readonly ({ help: string; read: () => number | undefined } & (
    { counter: string } | { gauge: string }
  ))[],
): void {
  for (const m of metrics) {
    if ('counter' in m)
      new Counter({
        name: m.counter,
        help: m.help,
        registers: [registry],
        collect() {
          this.reset()
          const v = m.read()
          if (v !== undefined) this.inc(v)
        },
      })
    else
      new Gauge({
        name: m.gauge,
        help: m.help,
        registers: [registry],
        collect() {
          this.set(m.read() ?? 0)
        },
      })
  }
}

/**
 * What the peer gate learns from the replica: revoked nodes (disconnected, refused), admitted ones (they
 * pass before their certificate arrives) and the newest CRL.
 */
function syncTrust(p2p: P2PNode, cluster: ClusterTable): void {
  const trust = p2p.trust()
  trust.setRevokedNodes(cluster.revokedNodes())
  trust.setAdmittedNodes(cluster.admittedNodes())
  const crl = cluster.crl()
  if (crl !== undefined && crl.number > (trust.crl()?.number ?? 0)) void trust.offerCrl(crl.crlPem)
}

/** The leader signs a new CRL once the state holds a revocation the last CRL does not cover. */
async function publishCrl(
  group: RaftGroup,
  sm: MetaStateMachine,
  cluster: ClusterTable,
  keyring: CaKeyring,
  logger: Logger,
): Promise<void> {
  const revocations = cluster.revocationCount()
  const current = cluster.crl()
  if (revocations === 0 || (current?.revocations ?? 0) >= revocations) return
  const material = keyring.material()
  if (material === undefined) return // another leader (holding its copy) will
  const nowMs = Date.now()
  const number = (current?.number ?? 0) + 1
  const revoked = cluster.revokedCertificates(nowMs)
  const crlPem = await issueCrl(material, { number, revoked }, new Date(nowMs))
  const result = (await group.propose(
    encodeCommand({
      nowMs,
      user: sm.settings().superuser,
      publishCrl: { number, crlPem, revocations },
    }),
  )) as { ok: boolean }
  if (result.ok) logger.info({ number, certificates: revoked.length }, 'CRL published')
}

function legacyMessage(): string {
  return (
    'this cluster was created by hopsd before CA key wrapping: its Raft log and snapshots hold the CA ' +
    "private key in plaintext. hopsd refuses such a state: create a new cluster (README, 'Node admission')"
  )
}

/**
 * A data dir whose state (snapshot or local log) was written by hopsd before CA key wrapping is refused
 * at start, once the entries committed before the restart are applied (a bounded wait).
 */
async function refuseLegacyState(group: RaftGroup, cluster: ClusterTable, logger: Logger): Promise<void> {
  const commit = group.status().commitIndex
  const deadline = Date.now() + 30_000
  while (group.status().appliedIndex < commit && Date.now() < deadline) await delay(20)
  const info = cluster.info()
  if (info !== undefined && (info.legacyPlaintextCa || info.caKeyPem !== '')) {
    logger.error({}, legacyMessage())
    throw new StartupError('CLUSTER_STATE_UNSUPPORTED', legacyMessage())
  }
}

async function transferLeadershipAway(group: RaftGroup, signal: AbortSignal, logger: Logger): Promise<void> {
  const st = group.status()
  if (st.role !== 'leader') return
  const target = st.voters
    .filter((id) => id !== st.id)
    .sort((a, b) => (st.progress?.[b]?.match ?? 0) - (st.progress?.[a]?.match ?? 0))[0]
  if (target === undefined) return
  try {
    await group.transferLeadership(target, { signal: AbortSignal.any([signal, AbortSignal.timeout(2_000)]) })
    logger.info({ to: target }, 'leadership transferred before shutdown')
  } catch (err) {
    logger.warn({ to: target, err: (err as Error).message }, 'leadership transfer before shutdown failed')
  }
}

function raftLogger(logger: Logger): RaftLogger {
  return {
    debug: (msg, fields) => logger.debug(fields ?? {}, msg),
    info: (msg, fields) => logger.info(fields ?? {}, msg),
    warn: (msg, fields) => logger.warn(fields ?? {}, msg),
    error: (msg, fields) => logger.error(fields ?? {}, msg),
  }
}
