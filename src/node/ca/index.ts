/**
 * Cluster CA: create the CA at bootstrap, issue node certificates, verify them.
 *
 * @example
 * const ca = await createClusterCa(clusterId)             // stored in the replicated state
 * const key = await createNodeKey()                         // stays on the node
 * const certPem = await issueNodeCertificate(ca, { nodeId, zone, publicKeyPem: key.publicKeyPem, hosts: ['127.0.0.1'] })
 * https.createServer({ key: key.keyPem, cert: certPem }, handler)
 */
export {
  createClusterCa,
  createNodeKey,
  issueNodeCertificate,
  issueUserCertificate,
  verifyNodeCertificate,
  nodeUri,
  CertificateError,
  type ClusterCaMaterial,
  type NodeKeyMaterial,
  type NodeCertificateRequest,
  type NodeCertificateInfo,
} from './ca.js'
