/**
 * The CA's private key, wrapped (encrypted) to one metadata node at a time.
 *
 * The replicated state never holds the CA key in plaintext: it holds one copy per admitted metadata
 * node, each encrypted to that node's own X25519 *wrapping key*, whose private half stays in the node's
 * data dir (`tls/wrap.key`, mode 0600) and is never replicated. A copy in a Raft entry, a snapshot or a
 * learner's disk is useless without the disk of the node it was made for. The construction is HPKE's
 * base mode (RFC 9180) spelled out with node:crypto primitives — DHKEM(X25519) with an ephemeral key,
 * HKDF-SHA256, AES-256-GCM — not HPKE's wire format: an ephemeral X25519 key agreement with the
 * recipient's key, HKDF over the shared secret with both public keys as salt, AES-256-GCM with the
 * cluster id and node id as associated data (a copy cannot be passed off as another node's or another
 * cluster's). Anchors: Vault keeps its PKI keys under a barrier key nobody stores in plaintext; Consul
 * Connect's built-in CA keeps its root key in the Raft state in plaintext, which is what this avoids.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto'
import { CertificateError } from './ca.js'

const INFO = Buffer.from('hopsd ca key wrap v1')
const IV_BYTES = 12
const TAG_BYTES = 16

/** A node's wrapping key pair (X25519). */
export interface WrappingKey {
  /** PKCS#8 PEM of the private key: stays in the node's data dir. */
  readonly privateKeyPem: string
  /** The raw 32-byte public key: what the node sends with its certificate request. */
  readonly publicKey: Uint8Array
}

/** One wrapped copy of the CA key, as the state keeps it (`WrappedCaKey` in proto/meta.proto). */
export interface WrappedKey {
  readonly nodeId: string
  readonly recipientKey: Uint8Array
  readonly ephemeralKey: Uint8Array
  readonly iv: Uint8Array
  readonly ciphertext: Uint8Array
}

export function createWrappingKey(): WrappingKey {
  const { privateKey, publicKey } = generateKeyPairSync('x25519')
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKey: rawPublicKey(publicKey),
  }
}

/** The wrapping key from its PKCS#8 PEM (throws CertificateError when it is not an X25519 key). */
export function wrappingKeyFromPem(privateKeyPem: string): WrappingKey {
  let key: KeyObject
  try {
    key = createPrivateKey(privateKeyPem)
  } catch (err) {
    throw new CertificateError(`not a private key: ${(err as Error).message}`)
  }
  if (key.asymmetricKeyType !== 'x25519') throw new CertificateError('the wrapping key is not an X25519 key')
  return { privateKeyPem, publicKey: rawPublicKey(createPublicKey(key)) }
}

/**
 * Encrypts `caKeyPem` (the CA's PKCS#8 PEM) to `recipientKey`, the raw X25519 public key of node
 * `nodeId` in cluster `clusterId`. The plaintext is the key's DER, not its PEM text.
 */
export function wrapCaKey(
  caKeyPem: string,
  to: { nodeId: string; clusterId: string; recipientKey: Uint8Array },
): WrappedKey {
  const recipient = x25519PublicKey(to.recipientKey)
  const ephemeral = generateKeyPairSync('x25519')
  const ephemeralKey = rawPublicKey(ephemeral.publicKey)
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient })
  const key = deriveKey(shared, ephemeralKey, to.recipientKey)
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(aad(to.clusterId, to.nodeId))
  const der = createPrivateKey(caKeyPem).export({ format: 'der', type: 'pkcs8' })
  const ciphertext = Buffer.concat([cipher.update(der), cipher.final(), cipher.getAuthTag()])
  der.fill(0)
  key.fill(0)
  return {
    nodeId: to.nodeId,
    recipientKey: Uint8Array.from(to.recipientKey),
    ephemeralKey,
    iv: new Uint8Array(iv),
    ciphertext: new Uint8Array(ciphertext),
  }
}

/**
 * Decrypts a copy made for this node: returns the CA key's PKCS#8 PEM (kept in memory by the caller,
 * never written). Throws CertificateError when the copy is not for `wrapping` or was altered.
 */
export function unwrapCaKey(wrapped: WrappedKey, wrapping: WrappingKey, clusterId: string): string {
  if (!Buffer.from(wrapped.recipientKey).equals(Buffer.from(wrapping.publicKey)))
    throw new CertificateError(`the CA key copy of ${wrapped.nodeId} is wrapped to another key`)
  if (wrapped.ciphertext.length <= TAG_BYTES || wrapped.iv.length !== IV_BYTES)
    throw new CertificateError('the wrapped CA key is malformed')
  const shared = diffieHellman({
    privateKey: createPrivateKey(wrapping.privateKeyPem),
    publicKey: x25519PublicKey(wrapped.ephemeralKey),
  })
  const key = deriveKey(shared, wrapped.ephemeralKey, wrapping.publicKey)
  const decipher = createDecipheriv('aes-256-gcm', key, wrapped.iv)
  decipher.setAAD(aad(clusterId, wrapped.nodeId))
  const body = wrapped.ciphertext.subarray(0, wrapped.ciphertext.length - TAG_BYTES)
  decipher.setAuthTag(wrapped.ciphertext.subarray(wrapped.ciphertext.length - TAG_BYTES))
  let der: Buffer
  try {
    der = Buffer.concat([decipher.update(body), decipher.final()])
  } catch {
    throw new CertificateError(
      `the CA key copy of ${wrapped.nodeId} does not decrypt (altered, or another cluster's)`,
    )
  } finally {
    key.fill(0)
  }
  const pem = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
    .export({ format: 'pem', type: 'pkcs8' })
    .toString()
  der.fill(0)
  return pem
}

function deriveKey(shared: Buffer, ephemeralKey: Uint8Array, recipientKey: Uint8Array): Buffer {
  const salt = Buffer.concat([ephemeralKey, recipientKey])
  const key = Buffer.from(hkdfSync('sha256', shared, salt, INFO, 32))
  shared.fill(0)
  return key
}

function aad(clusterId: string, nodeId: string): Buffer {
  return Buffer.from(`${clusterId}\0${nodeId}`)
}

function rawPublicKey(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' })
  return new Uint8Array(Buffer.from(jwk.x!, 'base64url'))
}

/** An X25519 public key from its 32 raw bytes (CertificateError for anything else). */
export function x25519PublicKey(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new CertificateError('an X25519 public key is 32 bytes')
  try {
    return createPublicKey({
      key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') },
      format: 'jwk',
    })
  } catch (err) {
    throw new CertificateError(`bad X25519 public key: ${(err as Error).message}`)
  }
}
