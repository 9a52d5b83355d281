/**
 * Cluster CA: create the CA at bootstrap, issue node certificates, verify them, revoke them with CRLs,
 * and wrap the CA's private key to each metadata node's own key (the state holds only wrapped copies).
 *
 * @example
 * const ca = await createClusterCa(clusterId)             // the key stays in memory
 * const wrapping = createWrappingKey()                      // a metadata node's, in its data dir
 * const copy = wrapCaKey(ca.keyPem, { nodeId, clusterId, recipientKey: wrapping.publicKey }) // replicated
 * unwrapCaKey(copy, wrapping, clusterId) === ca.keyPem      // only with that node's wrapping key
 * const key = await createNodeKey()                         // stays on the node
 * const certPem = await issueNodeCertificate(ca, { nodeId, zone, publicKeyPem: key.publicKeyPem, hosts: ['127.0.0.1'] })
 * const crlPem = await issueCrl(ca, { number: 1, revoked: [{ serial: certificateSerial(certPem), revokedMs: Date.now() }] })
 * await verifyNodeCertificate(ca.certPem, certPem, { revoked: (await verifyCrl(ca.certPem, crlPem)).revoked }) // throws CERTIFICATE_REVOKED
 */
export {
  createClusterCa,
  createNodeKey,
  issueNodeCertificate,
  issueUserCertificate,
  issueProjectUserCertificate,
  publicKeyOfRequest,
  projectUserUri,
  verifyNodeCertificate,
  nodeUri,
  newSerial,
  normalizeSerial,
  certificateSerial,
  issueCrl,
  verifyCrl,
  CertificateError,
  type ClusterCaMaterial,
  type CrlInfo,
  type NodeKeyMaterial,
  type NodeCertificateRequest,
  type NodeCertificateInfo,
  type ProjectUserCertificateRequest,
} from './ca.js'
export {
  createWrappingKey,
  wrappingKeyFromPem,
  wrapCaKey,
  unwrapCaKey,
  x25519PublicKey,
  type WrappingKey,
  type WrappedKey,
} from './wrap.js'
