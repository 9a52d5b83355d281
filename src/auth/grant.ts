/**
 * Principal grants: a principal, signed by the node that authenticated it, narrowed to one path and
 * a few operations, for a short time. They carry an identity to where the caller's own credential does
 * not travel — the second hop of a WebHDFS write (the client sends its data to a datanode's Location
 * without credentials) and the proposals that datanode makes on the caller's behalf.
 *
 * `hg1.<payload>.<signature>`: the payload is base64url JSON, the signature the signer's node key
 * (Ed25519, the libp2p peer key: the node id *is* the public key, so nobody needs a directory to
 * check it). A receiver accepts a grant only when the signature verifies against the node id it
 * names, that node is one the receiver trusts to authenticate callers (a metadata replica: it holds
 * the users and keys it checked), the grant has not expired, and its scope covers what is asked.
 * Not single-use here on purpose: fsspec posts every 4 MiB chunk of a file to one APPEND Location (the
 * receiver of a grant decides whether it spends one: a CREATE Location works once, see
 * src/api/routes/write-token.ts).
 *
 * A grant may carry `terms`: what the node it is addressed to acts on (a write Location's op, create
 * options, inline threshold, route and node, a nonce). They are signed with the rest, so the second hop
 * of a write can be changed in nothing; the auth area does not read them.
 */
import type { Principal } from './principal.js'

/** Signs with this node's key (the libp2p Ed25519 key). */
export interface GrantSigner {
  /** This node's id (its libp2p peer id). */
  readonly nodeId: string
  sign(data: Uint8Array): Promise<Uint8Array> | Uint8Array
}

/** Checks grants made by other nodes. */
export interface GrantVerifier {
  /** True when `signature` is `nodeId`'s key's signature of `data` (false on any malformed input). */
  verify(nodeId: string, data: Uint8Array, signature: Uint8Array): Promise<boolean>
  /** Whether `nodeId` may vouch for callers: a metadata replica (voter or learner) now. */
  trusted(nodeId: string): boolean
}

/** What a grant allows: operations on one path. */
export interface GrantScope {
  /** The absolute path the grant is for. */
  readonly path: string
  /** Metadata command ops (`createFile`, `append`, `addBlock`, `completeFile`, `delete`) and `read`. */
  readonly ops: readonly string[]
  /**
   * The file (inode id) at `path` the grant is for, when the signer knew it (an APPEND's step one): a
   * command naming a file by inode id is covered only when it names this one.
   */
  readonly fileId?: number
}

/** JSON values a grant's terms may hold. */
export type GrantTerms = { readonly [k: string]: string | number | boolean | GrantTerms | undefined }

export interface GrantClaims {
  readonly principal: Principal
  readonly scope: GrantScope
  readonly signer: string
  readonly expiresMs: number
  /** What the receiving node acts on (signed with the rest; see the module's comment). */
  readonly terms?: GrantTerms
}

const PREFIX = 'hg1'
/** Grants longer than this are refused as malformed (a principal with 64 groups fits easily). */
export const GRANT_CHARS_MAX = 8192

interface Payload {
  n: string
  u: string
  g: string[]
  p: string
  v: string
  c: string
  su: boolean
  path: string
  ops: string[]
  e: number
  f?: number
  t?: GrantTerms
}

export async function signGrant(
  signer: GrantSigner,
  principal: Principal,
  scope: GrantScope,
  expiresMs: number,
  terms?: GrantTerms,
): Promise<string> {
  const payload: Payload = {
    n: signer.nodeId,
    u: principal.user,
    g: [...principal.groups],
    p: principal.project ?? '',
    v: principal.via,
    c: principal.credentialId ?? '',
    su: principal.superuser,
    path: scope.path,
    ops: [...scope.ops],
    e: expiresMs,
    ...(scope.fileId === undefined ? {} : { f: scope.fileId }),
    ...(terms === undefined ? {} : { t: terms }),
  }
  const body = Buffer.from(JSON.stringify(payload), 'utf8')
  const sig = await signer.sign(signedBytes(body))
  return `${PREFIX}.${body.toString('base64url')}.${Buffer.from(sig).toString('base64url')}`
}

export function looksLikeGrant(s: string): boolean {
  return s.startsWith(`${PREFIX}.`)
}

/** Why a grant was refused: `invalid` (malformed, bad signature, untrusted signer) or `expired`. */
export type GrantRefusal = { refused: 'invalid' | 'expired'; reason: string }

/** Verifies a grant's form, signature, signer and expiry (not its scope: see {@link grantCovers}). */
export async function verifyGrant(
  grant: string,
  verifier: GrantVerifier,
  nowMs: number,
): Promise<GrantClaims | GrantRefusal> {
  const parts = grant.length <= GRANT_CHARS_MAX ? grant.split('.') : []
  if (parts.length !== 3 || parts[0] !== PREFIX) return { refused: 'invalid', reason: 'malformed grant' }
  const body = Buffer.from(parts[1]!, 'base64url')
  const sig = Buffer.from(parts[2]!, 'base64url')
  let p: Payload
  try {
    p = JSON.parse(body.toString('utf8')) as Payload
  } catch {
    return { refused: 'invalid', reason: 'malformed grant' }
  }
  if (!isPayload(p)) return { refused: 'invalid', reason: 'malformed grant' }
  if (!verifier.trusted(p.n))
    return {
      refused: 'invalid',
      reason: `grant signed by ${p.n}, which is not a metadata node of this cluster`,
    }
  if (!(await verifier.verify(p.n, signedBytes(body), sig)))
    return { refused: 'invalid', reason: 'grant signature does not verify' }
  if (!(p.e > nowMs)) return { refused: 'expired', reason: `grant expired at ${new Date(p.e).toISOString()}` }
  return {
    principal: {
      user: p.u,
      groups: p.g,
      ...(p.p ? { project: p.p } : {}),
      via: 'assertion',
      credentialId: p.n,
      superuser: p.su,
    },
    scope: { path: p.path, ops: p.ops, ...(p.f === undefined ? {} : { fileId: p.f }) },
    signer: p.n,
    expiresMs: p.e,
    ...(p.t === undefined ? {} : { terms: p.t }),
  }
}

/**
 * Whether a grant's scope covers `op` on `path` (and, for a use naming a file by inode id, on that file:
 * a scope that names its file covers no other).
 */
export function grantCovers(scope: GrantScope, use: { op: string; path: string; fileId?: number }): boolean {
  if (scope.path !== use.path || !scope.ops.includes(use.op)) return false
  return use.fileId === undefined || scope.fileId === undefined || use.fileId === scope.fileId
}

/** Domain separation: a node key signs grants only as grants. */
function signedBytes(body: Uint8Array): Uint8Array {
  return Buffer.concat([Buffer.from('hopsd principal grant v1\n'), body])
}

function isPayload(p: unknown): p is Payload {
  const o = p as Payload
  return (
    typeof o === 'object' &&
    o !== null &&
    typeof o.n === 'string' &&
    typeof o.u === 'string' &&
    o.u !== '' &&
    Array.isArray(o.g) &&
    o.g.every((g) => typeof g === 'string') &&
    typeof o.p === 'string' &&
    typeof o.v === 'string' &&
    typeof o.c === 'string' &&
    typeof o.su === 'boolean' &&
    typeof o.path === 'string' &&
    Array.isArray(o.ops) &&
    o.ops.every((x) => typeof x === 'string') &&
    typeof o.e === 'number' &&
    (o.f === undefined || (Number.isSafeInteger(o.f) && o.f > 0)) &&
    (o.t === undefined || (typeof o.t === 'object' && o.t !== null && !Array.isArray(o.t)))
  )
}
