/**
 * One-time join tokens: `hj1.<id>.<secret>`, a 64-bit id (16 hex digits) and a 256-bit random secret
 * (base64url). The cluster keeps the id and the secret's SHA-256 only; the secret is shown once, to the
 * admin who made it, and travels once, inside the joining node's encrypted p2p request. As kubeadm's
 * bootstrap tokens: the id names the token in lists and logs, the secret is the proof.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { AdmissionError } from './errors.js'

export const JOIN_TOKEN_PREFIX = 'hj1'
const ID_PATTERN = /^[0-9a-f]{16}$/
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/

export interface NewJoinToken {
  readonly id: string
  /** The whole token, to give to the joining node. */
  readonly token: string
  readonly secretHash: Uint8Array
}

export interface ParsedJoinToken {
  readonly id: string
  readonly secretHash: Uint8Array
}

export function generateJoinToken(): NewJoinToken {
  const id = randomBytes(8).toString('hex')
  const secret = randomBytes(32).toString('base64url')
  return { id, token: `${JOIN_TOKEN_PREFIX}.${id}.${secret}`, secretHash: hashSecret(secret) }
}

/** Splits a token into its id and its secret's hash; JOIN_TOKEN_INVALID when it is not one. */
export function parseJoinToken(token: string): ParsedJoinToken {
  const parts = token.trim().split('.')
  if (
    parts.length !== 3 ||
    parts[0] !== JOIN_TOKEN_PREFIX ||
    !ID_PATTERN.test(parts[1]!) ||
    !SECRET_PATTERN.test(parts[2]!)
  )
    throw new AdmissionError(
      'JOIN_TOKEN_INVALID',
      `not a join token (expected ${JOIN_TOKEN_PREFIX}.<id>.<secret>)`,
    )
  return { id: parts[1]!, secretHash: hashSecret(parts[2]!) }
}

/** Constant-time comparison of two secret hashes. */
export function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.length > 0 && timingSafeEqual(a, b)
}

/**
 * The token a `--join-token` setting stands for: the token itself, or the path of a file holding it
 * (as `--swarm-key` and HOPSD_KEY take either). Undefined for an unset setting.
 */
export function resolveJoinToken(setting: string | undefined): string | undefined {
  if (setting === undefined || setting === '') return undefined
  if (setting.startsWith(`${JOIN_TOKEN_PREFIX}.`)) return setting.trim()
  try {
    return readFileSync(setting, 'utf8').trim()
  } catch (err) {
    throw new AdmissionError(
      'JOIN_TOKEN_INVALID',
      `--join-token is neither a token nor a readable file (${(err as Error).message})`,
    )
  }
}

function hashSecret(secret: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(secret).digest())
}
