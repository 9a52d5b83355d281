/**
 * API keys: `hk.<id>.<secret>` — a 64-bit random id (16 hex digits) that finds the key's row, and a
 * 256-bit random secret (43 base64url characters) shown once at creation. The replicated state keeps
 * only SHA-256(secret): a fast hash is enough for a uniformly random 256-bit secret (nothing to
 * brute-force), and it keeps authentication cheap. Comparison is constant-time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

export const API_KEY_PREFIX = 'hk'
const KEY_RE = /^hk\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/
const SECRET_BYTES = 32

export interface NewApiKey {
  readonly id: string
  /** The whole key (`hk.<id>.<secret>`): give it to the user once, never store it. */
  readonly key: string
  /** SHA-256 of the secret: what the replicated state keeps. */
  readonly secretHash: Uint8Array
}

/** A fresh key; `random` is injectable for seeded tests. */
export function generateApiKey(random: (n: number) => Uint8Array = randomBytes): NewApiKey {
  return generatePrefixedKey(API_KEY_PREFIX, random)
}

/**
 * A fresh key of the same shape under another prefix (`<prefix>.<id>.<secret>`), for credentials other
 * areas keep in tables of their own (inference keys, `hik.`): the same randomness and hashing.
 */
export function generatePrefixedKey(
  prefix: string,
  random: (n: number) => Uint8Array = randomBytes,
): NewApiKey {
  const id = Buffer.from(random(8)).toString('hex')
  const secret = Buffer.from(random(SECRET_BYTES)).toString('base64url')
  return { id, key: `${prefix}.${id}.${secret}`, secretHash: hashSecret(secret) }
}

/** The id and secret of a well-formed `<prefix>.<id>.<secret>` key; undefined when malformed. */
export function parsePrefixedKey(key: string, prefix: string): { id: string; secret: string } | undefined {
  if (!key.startsWith(`${prefix}.`)) return undefined
  const m = KEY_RE.exec(`${API_KEY_PREFIX}${key.slice(prefix.length)}`)
  return m === null ? undefined : { id: m[1]!, secret: m[2]! }
}

/** Whether `s` has the shape of an API key (it may still be unknown, expired or revoked). */
export function looksLikeApiKey(s: string): boolean {
  return s.startsWith(`${API_KEY_PREFIX}.`)
}

/** The id and secret of a well-formed key; undefined when malformed. */
export function parseApiKey(key: string): { id: string; secret: string } | undefined {
  const m = KEY_RE.exec(key)
  return m === null ? undefined : { id: m[1]!, secret: m[2]! }
}

export function hashSecret(secret: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(secret, 'utf8').digest())
}

/** Constant-time comparison of the hash of `secret` with a stored hash. */
export function secretMatches(secret: string, storedHash: Uint8Array): boolean {
  const h = hashSecret(secret)
  return storedHash.length === h.length && timingSafeEqual(h, storedHash)
}
