/**
 * The cluster certificate authority.
 *
 * At bootstrap the metadata group creates one CA; its key and certificate live in the replicated state,
 * so every metadata node can issue node certificates and the CA survives the loss of any node. A node
 * asks for its certificate over an authenticated libp2p connection (pnet + Noise prove it holds the swarm
 * key and its peer id); the issuer binds that peer id, the node's zone and its addresses into the
 * certificate. ECDSA P-256: key generation and verification are ~100x cheaper than RSA-2048, which
 * matters when a whole rack of nodes joins at once.
 */
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'

type CryptoKey = webcrypto.CryptoKey
type CryptoKeyPair = webcrypto.CryptoKeyPair

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])

const EC_KEY: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' }
const SIGNING: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' }
const CA_VALIDITY_DAYS = 3650
const NODE_VALIDITY_DAYS_DEFAULT = 365
const USER_VALIDITY_DAYS_DEFAULT = 30
const DAY_MS = 86_400_000

/** What the replicated state keeps of the CA. PEM strings so that they survive any serialization. */
export interface ClusterCaMaterial {
  readonly clusterId: string
  readonly certPem: string
  /** PKCS#8 PEM of the CA's private key: replicated metadata, never served over the API. */
  readonly keyPem: string
}

export interface NodeKeyMaterial {
  /** PKCS#8 PEM, for node:tls `key`. */
  readonly keyPem: string
  /** SubjectPublicKeyInfo PEM: what the node sends in its join request. */
  readonly publicKeyPem: string
}

export interface NodeCertificateRequest {
  readonly nodeId: string
  readonly zone: string
  readonly publicKeyPem: string
  /** IP addresses and DNS names the node serves on (its HTTP and p2p hosts). */
  readonly hosts: readonly string[]
  readonly validityDays?: number
}

export interface NodeCertificateInfo {
  readonly nodeId: string
  readonly zone: string
  readonly clusterId: string
  readonly notAfter: Date
}

export class CertificateError extends Error {
  override readonly name = 'CertificateError'
  readonly code = 'CERTIFICATE_INVALID'
}

/** Creates a new self-signed cluster CA. `now` is injected so that tests can issue at a fixed time. */
export async function createClusterCa(clusterId: string, now: Date = new Date()): Promise<ClusterCaMaterial> {
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPair
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=hopsd cluster CA, O=hopsd cluster ${escapeDn(clusterId)}`,
    notBefore: new Date(now.getTime() - DAY_MS),
    notAfter: new Date(now.getTime() + CA_VALIDITY_DAYS * DAY_MS),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  })
  return { clusterId, certPem: cert.toString('pem'), keyPem: await exportPkcs8Pem(keys.privateKey) }
}

/** A node's own TLS key pair; the private key never leaves the node. */
export async function createNodeKey(): Promise<NodeKeyMaterial> {
  const keys = (await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPair
  const spki = await webcrypto.subtle.exportKey('spki', keys.publicKey)
  return { keyPem: await exportPkcs8Pem(keys.privateKey), publicKeyPem: toPem(spki, 'PUBLIC KEY') }
}

/**
 * Issues a node certificate: CN = node id, OU = zone, SANs = the node's hosts plus a URI naming the node,
 * valid for both TLS server and client authentication (nodes call each other's HTTP APIs).
 */
export async function issueNodeCertificate(
  ca: ClusterCaMaterial,
  request: NodeCertificateRequest,
  now: Date = new Date(),
): Promise<string> {
  if (request.nodeId.length === 0 || request.zone.length === 0) {
    throw new CertificateError('node id and zone must be non-empty')
  }
  const caCert = new x509.X509Certificate(ca.certPem)
  const caKey = await importPkcs8Pem(ca.keyPem)
  const publicKey = await importSpkiPem(request.publicKeyPem)
  const names: x509.JsonGeneralName[] = [{ type: 'url', value: nodeUri(request.nodeId) }]
  for (const host of request.hosts) {
    names.push({ type: isIpAddress(host) ? 'ip' : 'dns', value: host })
  }
  const validityDays = request.validityDays ?? NODE_VALIDITY_DAYS_DEFAULT
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${escapeDn(request.nodeId)}, OU=${escapeDn(request.zone)}, O=hopsd cluster ${escapeDn(ca.clusterId)}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - DAY_MS),
    notAfter: new Date(now.getTime() + validityDays * DAY_MS),
    signingAlgorithm: SIGNING,
    publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  })
  return cert.toString('pem')
}

/**
 * Issues a user's client certificate: CN = the user, SAN `URI:hopsd://user/<name>` (what the API's auth
 * hook reads), client authentication only, for `validityDays` (default 30). The user makes its key pair
 * and sends the public key; the private key never leaves it.
 */
export async function issueUserCertificate(
  ca: ClusterCaMaterial,
  request: { readonly user: string; readonly publicKeyPem: string; readonly validityDays?: number },
  now: Date = new Date(),
): Promise<string> {
  if (!/^[A-Za-z_][A-Za-z0-9._-]{0,63}$/.test(request.user)) throw new CertificateError('not a user name')
  const caCert = new x509.X509Certificate(ca.certPem)
  const caKey = await importPkcs8Pem(ca.keyPem)
  const publicKey = await importSpkiPem(request.publicKeyPem)
  const validityDays = request.validityDays ?? USER_VALIDITY_DAYS_DEFAULT
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${escapeDn(request.user)}, O=hopsd cluster ${escapeDn(ca.clusterId)}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + validityDays * DAY_MS),
    signingAlgorithm: SIGNING,
    publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'url', value: `hopsd://user/${encodeURIComponent(request.user)}` },
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  })
  return cert.toString('pem')
}

/**
 * Checks that `certPem` was issued by the CA, is valid at `now`, and (if given) names `expectedNodeId`.
 * Returns what the certificate says about the node.
 */
export async function verifyNodeCertificate(
  caCertPem: string,
  certPem: string,
  options: { expectedNodeId?: string; now?: Date } = {},
): Promise<NodeCertificateInfo> {
  const now = options.now ?? new Date()
  let cert: x509.X509Certificate
  let caCert: x509.X509Certificate
  try {
    cert = new x509.X509Certificate(certPem)
    caCert = new x509.X509Certificate(caCertPem)
  } catch (err) {
    throw new CertificateError(`cannot parse certificate: ${(err as Error).message}`)
  }
  const signedByCa = await cert.verify({ publicKey: caCert.publicKey, date: now })
  if (!signedByCa) throw new CertificateError('certificate is not signed by the cluster CA or is expired')
  const nodeId = firstAttribute(cert.subjectName, 'CN')
  const zone = firstAttribute(cert.subjectName, 'OU')
  const org = firstAttribute(cert.subjectName, 'O')
  if (!nodeId || !zone || !org?.startsWith('hopsd cluster ')) {
    throw new CertificateError('certificate is not a hopsd node certificate')
  }
  if (options.expectedNodeId !== undefined && options.expectedNodeId !== nodeId) {
    throw new CertificateError(`certificate names node ${nodeId}, expected ${options.expectedNodeId}`)
  }
  return { nodeId, zone, clusterId: org.slice('hopsd cluster '.length), notAfter: cert.notAfter }
}

export function nodeUri(nodeId: string): string {
  return `hopsd://node/${encodeURIComponent(nodeId)}`
}

function firstAttribute(name: x509.Name, type: string): string | undefined {
  const values = name.getField(type)
  return values[0]
}

function escapeDn(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, '\\$1')
}

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16))
  bytes[0] = bytes[0]! & 0x7f // positive INTEGER
  return Buffer.from(bytes).toString('hex')
}

function isIpAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':')
}

async function exportPkcs8Pem(key: CryptoKey): Promise<string> {
  return toPem(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY')
}

async function importPkcs8Pem(pem: string): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', fromPem(pem), EC_KEY, false, ['sign'])
}

async function importSpkiPem(pem: string): Promise<CryptoKey> {
  try {
    return await webcrypto.subtle.importKey('spki', fromPem(pem), EC_KEY, true, ['verify'])
  } catch (err) {
    throw new CertificateError(`bad public key: ${(err as Error).message}`)
  }
}

function toPem(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
  return `-----BEGIN ${label}-----\n${b64.trimEnd()}\n-----END ${label}-----\n`
}

function fromPem(pem: string): Uint8Array {
  const body = pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, '')
  return new Uint8Array(Buffer.from(body, 'base64'))
}
