/**
 * The cluster certificate authority.
 *
 * At bootstrap the first Raft leader creates one CA. Its certificate lives in the replicated state; its
 * private key only as copies wrapped to each admitted metadata node's own key (./wrap.ts), so every
 * metadata node can issue node certificates, the CA survives the loss of any node, and the Raft log and
 * snapshots never hold the key in plaintext. A node asks for its certificate over an authenticated
 * libp2p connection (pnet + Noise prove it holds the swarm key and its peer id); the issuer binds that
 * peer id, the node's zone and the addresses it checked lead to the node into the certificate, and
 * revokes certificates with CRLs signed by the same key. ECDSA P-256: key generation and verification are ~100x cheaper than RSA-2048, which
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
const HOUR_MS = 3_600_000

/** The CA with its private key, as a metadata node holds it in memory once it unwrapped its copy. */
export interface ClusterCaMaterial {
  readonly clusterId: string
  readonly certPem: string
  /** PKCS#8 PEM of the CA's private key: in memory only, never written, replicated or served. */
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
  /**
   * IP addresses and DNS names the node serves on. The issuer of a cluster certificate passes only
   * names it checked lead to the node (src/node/admission/hosts.ts); nothing here checks them.
   */
  readonly hosts: readonly string[]
  readonly validityDays?: number
  /** The certificate's lifetime in ms (overrides validityDays); clamped to the CA's own end. */
  readonly validityMs?: number
  /** The serial number (hex; see {@link newSerial}), when the issuer recorded it beforehand. */
  readonly serial?: string
}

export interface NodeCertificateInfo {
  readonly nodeId: string
  readonly zone: string
  readonly clusterId: string
  readonly notAfter: Date
  /** The serial number, lowercase hex without leading zeros ({@link normalizeSerial}). */
  readonly serial: string
}

export class CertificateError extends Error {
  override readonly name = 'CertificateError'
  readonly code: 'CERTIFICATE_INVALID' | 'CERTIFICATE_REVOKED'

  constructor(message: string, code: 'CERTIFICATE_INVALID' | 'CERTIFICATE_REVOKED' = 'CERTIFICATE_INVALID') {
    super(message)
    this.code = code
  }
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
  const validityMs = request.validityMs ?? (request.validityDays ?? NODE_VALIDITY_DAYS_DEFAULT) * DAY_MS
  const notAfterMs = Math.min(now.getTime() + validityMs, caCert.notAfter.getTime())
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: request.serial ?? newSerial(),
    subject: `CN=${escapeDn(request.nodeId)}, OU=${escapeDn(request.zone)}, O=hopsd cluster ${escapeDn(ca.clusterId)}`,
    issuer: caCert.subject,
    // Backdated against clock skew, by a tenth of the lifetime at most: a short-lived certificate's
    // renewal point (a third of its life before the end) must stay after its issue.
    notBefore: new Date(now.getTime() - Math.min(HOUR_MS, validityMs / 10)),
    notAfter: new Date(notAfterMs),
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
    extensions: await clientCertificateExtensions(caCert, `hopsd://user/${encodeURIComponent(request.user)}`),
  })
  return cert.toString('pem')
}

/** A client certificate's extensions: an end entity, for client authentication only, named by `uri`. */
async function clientCertificateExtensions(
  caCert: x509.X509Certificate,
  uri: string,
): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }]),
    await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
  ]
}

/** What a project-user certificate names and when it is valid (the record the cluster keeps of it). */
export interface ProjectUserCertificateRequest {
  readonly project: string
  readonly user: string
  /** SPKI PEM of the client's P-256 key; the private key never leaves the client. */
  readonly publicKeyPem: string
  /** Hex, recorded in the replicated state beforehand ({@link newSerial}). */
  readonly serial: string
  readonly notBeforeMs: number
  readonly notAfterMs: number
}

/** The URI a project-user certificate names its principal by: `hopsd://project-user/<project>/<user>`. */
export function projectUserUri(project: string, user: string): string {
  return `hopsd://project-user/${encodeURIComponent(project)}/${encodeURIComponent(user)}`
}

/**
 * Issues a project-user certificate (Hopsworks' identity of a user acting in one project): CN =
 * `<project>__<user>` (what Kafka's principal builders read), SAN `URI:hopsd://project-user/<p>/<u>`
 * (what the API's auth hook reads), client authentication only, valid exactly for the recorded window
 * (clamped to the CA's own end). Nothing here checks who may have one: the projects area decides that
 * and records the serial; only a recorded serial authenticates.
 */
export async function issueProjectUserCertificate(
  ca: ClusterCaMaterial,
  request: ProjectUserCertificateRequest,
): Promise<string> {
  if (
    !/^[a-z][a-z0-9_]{0,62}$/.test(request.project) ||
    !/^[A-Za-z_][A-Za-z0-9._-]{0,63}$/.test(request.user)
  )
    throw new CertificateError('not a project and user name')
  if (!(request.notAfterMs > request.notBeforeMs))
    throw new CertificateError('notAfter must follow notBefore')
  const caCert = new x509.X509Certificate(ca.certPem)
  const caKey = await importPkcs8Pem(ca.keyPem)
  const publicKey = await importSpkiPem(request.publicKeyPem)
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: request.serial,
    subject: `CN=${escapeDn(`${request.project}__${request.user}`)}, OU=${escapeDn(request.project)}, O=hopsd cluster ${escapeDn(ca.clusterId)}`,
    issuer: caCert.subject,
    notBefore: new Date(request.notBeforeMs),
    notAfter: new Date(Math.min(request.notAfterMs, caCert.notAfter.getTime())),
    signingAlgorithm: SIGNING,
    publicKey,
    signingKey: caKey,
    extensions: await clientCertificateExtensions(caCert, projectUserUri(request.project, request.user)),
  })
  return cert.toString('pem')
}

/**
 * The public key a client sent: an SPKI PEM of a P-256 key as it is, or a PKCS#10 request's (its
 * signature checked: the client holds the key), with the request's subject CN when it names one.
 * Throws CertificateError for anything else.
 */
export async function publicKeyOfRequest(req: {
  readonly publicKeyPem?: string
  readonly csrPem?: string
}): Promise<{ publicKeyPem: string; subjectCn?: string }> {
  if ((req.publicKeyPem === undefined) === (req.csrPem === undefined))
    throw new CertificateError('send either publicKeyPem or csrPem')
  if (req.publicKeyPem !== undefined) {
    if (!/-----BEGIN PUBLIC KEY-----/.test(req.publicKeyPem))
      throw new CertificateError('bad public key: expected an SPKI PEM (BEGIN PUBLIC KEY)')
    await importSpkiPem(req.publicKeyPem)
    return { publicKeyPem: req.publicKeyPem }
  }
  let csr: x509.Pkcs10CertificateRequest
  try {
    csr = new x509.Pkcs10CertificateRequest(req.csrPem!)
  } catch (err) {
    throw new CertificateError(`bad certificate request: ${(err as Error).message}`)
  }
  let signed = false
  try {
    signed = await csr.verify()
  } catch (err) {
    throw new CertificateError(`bad certificate request: ${(err as Error).message}`)
  }
  if (!signed) throw new CertificateError('bad certificate request: its signature does not verify')
  const publicKeyPem = toPem(csr.publicKey.rawData, 'PUBLIC KEY')
  await importSpkiPem(publicKeyPem)
  const cn = firstAttribute(csr.subjectName, 'CN')
  return cn === undefined ? { publicKeyPem } : { publicKeyPem, subjectCn: cn }
}

/**
 * Checks that `certPem` was issued by the CA, is valid at `now`, (if given) names `expectedNodeId` and
 * is not among the `revoked` serials (CERTIFICATE_REVOKED). Returns what the certificate says about the node.
 */
export async function verifyNodeCertificate(
  caCertPem: string,
  certPem: string,
  options: { expectedNodeId?: string; now?: Date; revoked?: ReadonlySet<string> } = {},
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
  const serial = normalizeSerial(cert.serialNumber)
  if (options.revoked?.has(serial) === true)
    throw new CertificateError(`certificate ${serial} of node ${nodeId} is revoked`, 'CERTIFICATE_REVOKED')
  return { nodeId, zone, clusterId: org.slice('hopsd cluster '.length), notAfter: cert.notAfter, serial }
}

/** A fresh random serial number (hex, 128 bits, positive). */
export function newSerial(): string {
  return randomSerial()
}

/** Serial numbers compare as lowercase hex without leading zeros (how CRLs and parsers may print them). */
export function normalizeSerial(serial: string): string {
  return serial.toLowerCase().replace(/^0+(?=.)/, '')
}

/** The serial number of a certificate ({@link normalizeSerial}d). */
export function certificateSerial(certPem: string): string {
  return normalizeSerial(new x509.X509Certificate(certPem).serialNumber)
}

// ---------------------------------------------------------------------------------------------- CRLs

const CRL_NUMBER_OID = '2.5.29.20'

/** A verified CRL: its number and the serials it revokes. */
export interface CrlInfo {
  readonly number: number
  readonly thisUpdate: Date
  readonly revoked: ReadonlySet<string>
  readonly pem: string
}

/**
 * Signs a certificate revocation list (X.509 v2, with a CRL number) naming `revoked` serials, PEM with
 * OpenSSL's `X509 CRL` label (node:tls `crl` reads only that). Its nextUpdate is the CA's own end:
 * nodes keep the highest-numbered CRL they have seen rather than fetching on a schedule, and OpenSSL
 * refuses every client certificate once the CRL it checks against has passed its nextUpdate.
 * (nextUpdate is also what lets @peculiar/x509 parse the entries: without it they read as none.)
 */
export async function issueCrl(
  ca: ClusterCaMaterial,
  crl: { number: number; revoked: readonly { serial: string; revokedMs: number }[] },
  now: Date = new Date(),
): Promise<string> {
  if (!Number.isSafeInteger(crl.number) || crl.number < 1)
    throw new CertificateError('CRL number must be ≥ 1')
  const caCert = new x509.X509Certificate(ca.certPem)
  const caKey = await importPkcs8Pem(ca.keyPem)
  const generated = await x509.X509CrlGenerator.create({
    issuer: caCert.subject,
    thisUpdate: now,
    nextUpdate: caCert.notAfter,
    signingAlgorithm: SIGNING,
    signingKey: caKey,
    extensions: [
      new x509.Extension(CRL_NUMBER_OID, false, derInteger(crl.number)),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
    entries: crl.revoked.map((r) => ({
      serialNumber: r.serial,
      revocationDate: new Date(r.revokedMs),
      reason: x509.X509CrlReason.cessationOfOperation,
    })),
  })
  return toPem(generated.rawData, 'X509 CRL')
}

/** Parses and verifies a CRL against the CA; throws CertificateError when it is not the CA's. */
export async function verifyCrl(caCertPem: string, crlPem: string): Promise<CrlInfo> {
  let crl: x509.X509Crl
  let caCert: x509.X509Certificate
  try {
    crl = new x509.X509Crl(fromPem(crlPem))
    caCert = new x509.X509Certificate(caCertPem)
  } catch (err) {
    throw new CertificateError(`cannot parse CRL: ${(err as Error).message}`)
  }
  if (!(await crl.verify({ publicKey: caCert.publicKey })))
    throw new CertificateError('the CRL is not signed by the cluster CA')
  const ext = crl.extensions.find((e) => e.type === CRL_NUMBER_OID)
  if (ext === undefined) throw new CertificateError('the CRL has no CRL number')
  return {
    number: parseDerInteger(new Uint8Array(ext.value)),
    thisUpdate: crl.thisUpdate,
    revoked: new Set(crl.entries.map((e) => normalizeSerial(e.serialNumber))),
    pem: crlPem,
  }
}

function derInteger(n: number): ArrayBuffer {
  const bytes: number[] = []
  let v = BigInt(n)
  do {
    bytes.unshift(Number(v & 0xffn))
    v >>= 8n
  } while (v > 0n)
  if (bytes[0]! & 0x80) bytes.unshift(0)
  return new Uint8Array([0x02, bytes.length, ...bytes]).buffer
}

function parseDerInteger(der: Uint8Array): number {
  if (der[0] !== 0x02 || der.length < 3 || der[1] !== der.length - 2 || der.length > 10)
    throw new CertificateError('the CRL number is not a small DER INTEGER')
  let v = 0n
  for (const b of der.subarray(2)) v = (v << 8n) | BigInt(b)
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CertificateError('the CRL number is too large')
  return Number(v)
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
  const body = pem.replace(/-----(BEGIN|END) [A-Z0-9 ]+-----/g, '').replace(/\s+/g, '')
  return new Uint8Array(Buffer.from(body, 'base64'))
}
