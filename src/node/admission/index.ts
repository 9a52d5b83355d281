/**
 * Node admission: which hosts are cluster nodes, beyond holding the swarm key. The replicated state of
 * admissions, join tokens, issued certificates, CRLs and the CA key copies wrapped to metadata nodes
 * (the `cluster` meta module); the admission desk metadata nodes run on `/hopsd/join/1.0.0`; the check
 * that a certificate names only addresses that lead to its node; and the peer gate every p2p stream
 * and connection passes. README "Node admission" tells the operator's side.
 *
 * @example
 * ```ts
 * const sm = createMetaStateMachine({ modules: [clusterModule()] })
 * const trust = createPeerTrust({ host, logger })     // every node: installs itself as the host's gate
 * await trust.start()
 * trust.setCa(caPem); trust.setCertificate(certPem)   // from now on peers must show node certificates
 * const { token } = generateJoinToken()               // an admin's: CreateJoinToken carries only its hash
 * const issuer = createIssuer({ selfId, state: () => sm.module('cluster'), keyring, propose, ... })
 * await issuer.handle(peerId, { roles: ['metadata'], joinToken: token, ... }, signal) // → ISSUED | PENDING | REDIRECT
 * ```
 */
export { ADMISSION_ERRORS, AdmissionError, isAdmissionError, type AdmissionErrorCode } from './errors.js'
export {
  ClusterTable,
  clusterModule,
  stateName,
  JOIN_TOKENS_MAX,
  type AdmissionRecord,
  type AdmissionStateName,
  type CertificateRecord,
  type ClusterInfo,
  type CrlRecord,
  type JoinTokenRecord,
  type WrappedKeyRecord,
} from './state.js'
export {
  generateJoinToken,
  parseJoinToken,
  resolveJoinToken,
  JOIN_TOKEN_PREFIX,
  type NewJoinToken,
  type ParsedJoinToken,
} from './join-token.js'
export { checkHosts, HOSTS_MAX, type HostCheck, type HostCheckInit } from './hosts.js'
export { createCaKeyring, loadOrCreateWrappingKey, WRAP_KEY_FILE, type CaKeyring } from './keyring.js'
export {
  createIssuer,
  NODE_CERT_VALIDITY_MS,
  type CommandBody,
  type Issuer,
  type IssuerInit,
  type JoinRequest,
} from './issuer.js'
export {
  createPeerTrust,
  JOIN_PROTOCOL,
  NODE_CERT_PROTOCOL,
  OPEN_PROTOCOLS,
  TRUST_TIMINGS,
  type PeerStatus,
  type PeerTrust,
  type PeerTrustInit,
  type TrustReport,
  type TrustTimings,
} from './trust.js'
export {
  createAdmissionService,
  JOIN_TOKEN_TTL_S_DEFAULT,
  JOIN_TOKEN_TTL_S_MAX,
  type Actor,
  type AdmissionService,
  type JoinTokenInfo,
  type NodeAdmissionInfo,
} from './service.js'
