/**
 * The daemon's composition: which modules run, in which order, for which roles. Order is dependency
 * order (a module sees the services of the modules above it); stop runs in reverse. A module here only
 * wires config and services into its area's `createX(init)`; the logic lives in the area.
 *
 *   p2p         (every node)       libp2p host with the node key and the swarm key (src/node/p2p), and
 *                                  its peer gate: node certificates beyond the swarm key (src/node/admission)
 *   membership  (every node)       gossip view of the cluster, GET /api/v1/nodes (src/node/membership)
 *   metadata    (roles: metadata)  Raft group + metadata state machine + self-assembly (src/node/cluster)
 *   cluster     (every node)       the cluster seen from this node, GET /api/v1/cluster; forwards when
 *                                  the node holds no metadata replica
 *   auth        (every node)       who is calling (src/auth): the API's authentication (local on metadata
 *                                  nodes, through a metadata node elsewhere), grants, audit; on metadata
 *                                  nodes the users/keys/audit/settings routes and the admin bootstrap
 *   admission   (every node)       /hopsd/join/1.0.0: admission and node certificates on metadata nodes,
 *                                  a redirect to them elsewhere (src/node/admission)
 *   tls         (every node)       the node certificate from the cluster CA: obtained, renewed, shown to
 *                                  peers by the p2p gate, served with --tls
 *   dataplane   (every node)       block streams over direct TLS between nodes (src/node/dataplane), with
 *                                  the node certificate; a datanode listens (--data-addr) once certified
 *   blockmanager (roles: metadata) src/fs/blocks: block placement, reports → replica deltas,
 *                                  re-replication, reads of files in blocks; routes in
 *                                  src/api/routes/blocks.ts (GET /api/v1/fs/blocks, /api/v1/fs/health)
 *   datanode    (roles: datanode)  src/fs/datanode: block store, write pipeline, block reads, heartbeats,
 *                                  scanner; write route in src/api/routes/datanode.ts
 *   capacity    (every node)       measures disks (statfs), block bytes, CPUs and memory into the
 *                                  node's gossip NodeInfo
 *   fs          (every node)       WebHDFS and /api/v1/fs, from the local replica or forwarded
 *   projects    (roles: metadata)  projects, members, datasets, shares (src/projects), /api/v1/projects;
 *                                  forwarded by the fs module on nodes without a replica
 *   scheduler   (every node)       GPU jobs (src/scheduler): the gossip view of the workers, GET /api/v1/gpus;
 *                                  with a metadata replica the jobs API, placer, queue and (leader)
 *                                  reconciler; with the gpu role too the worker over src/gpu's inventory
 *   serving     (every node)       models and deployments (src/serving): with a metadata replica the
 *                                  registry and deployments API, /v2 inference routing, (leader) the
 *                                  placement loop; with the serving role too the agent running replicas
 * Each is one `NodeModule` row below; see src/node/module.ts for the contract.
 */
import { admissionModule } from './cluster/admission-module.js'
import { authNodeModule } from './cluster/auth-module.js'
import { blockManagerModule } from './cluster/blocks-module.js'
import { capacityModule } from './cluster/capacity-module.js'
import { clusterClientModule } from './cluster/client-module.js'
import { dataPlaneModule } from './cluster/dataplane-module.js'
import { datanodeModule } from './cluster/datanode-module.js'
import { fsModule } from './cluster/fs-module.js'
import { membershipModule } from './cluster/membership-module.js'
import { metadataModule } from './cluster/metadata-module.js'
import { p2pModule } from './cluster/p2p-module.js'
import { tlsModule } from './cluster/tls-module.js'
import { schedulerModule } from './cluster/sched-module.js'
import { projectsNodeModule } from './cluster/projects-module.js'
import { servingModule } from './cluster/serving-module.js'
import type { NodeModule } from './module.js'

export const DEFAULT_MODULES: readonly NodeModule[] = [
  p2pModule(),
  membershipModule(),
  metadataModule(),
  clusterClientModule(),
  authNodeModule(),
  admissionModule(),
  tlsModule(),
  dataPlaneModule(),
  blockManagerModule(),
  datanodeModule(),
  capacityModule(),
  fsModule(),
  projectsNodeModule(),
  schedulerModule(),
  servingModule(),
]
