/**
 * The `cluster` table set of the metadata state machine lives with node admission
 * (src/node/admission/state.ts): the cluster id, the CA certificate and its key wrapped to each metadata
 * node, admissions, join tokens, certificates and CRLs.
 */
export { ClusterTable, clusterModule, type ClusterInfo } from '../admission/index.js'
