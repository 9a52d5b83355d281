/**
 * How principals travel between nodes (issue 11 item 6), for the modules that forward or receive:
 *  - credentials in p2p messages (`Credential` in proto/cluster.proto) to and from the auth area's
 *    {@link Credentials};
 *  - grants: signed with this node's libp2p key, and checked against the signer's peer id (an Ed25519
 *    peer id is its public key) and against the metadata group's current members;
 *  - a forwarded command proposed as the principal its credential proves — never as its own `user`.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import {
  AuthError,
  commandIdentity,
  type Authenticator,
  type Credentials,
  type CredentialUse,
  type GrantSigner,
  type GrantVerifier,
  type Principal,
} from '../../auth/index.js'
import { metaProto } from '../../meta/index.js'
import { hopsd } from '../../proto/cluster.js'
import type { NodeIdentity } from '../identity.js'

import pb = hopsd.cluster
import mpb = metaProto.meta

/** A credential as a p2p message carries it (no client certificate: it authenticates only at its edge). */
export function credentialToProto(c: Credentials | undefined, source = ''): pb.ICredential {
  if (c === undefined) return { anonymous: true, source }
  return {
    bearer: c.bearer ?? '',
    delegation: c.delegation ?? '',
    userName: c.userName ?? '',
    assertion: c.grant ?? '',
    basicUser: c.basic?.user ?? '',
    // Basic's password is a key: it travels as `bearer`, with the Basic user name to check it against.
    ...(c.basic !== undefined && c.bearer === undefined ? { bearer: c.basic.password } : {}),
    anonymous: isEmpty(c),
    source,
  }
}

export function credentialFromProto(p: pb.ICredential | null | undefined): Credentials {
  if (p == null || p.anonymous) return {}
  const out: { -readonly [K in keyof Credentials]: Credentials[K] } = {}
  if (p.bearer) {
    if (p.basicUser) out.basic = { user: p.basicUser, password: p.bearer }
    else out.bearer = p.bearer
  }
  if (p.delegation) out.delegation = p.delegation
  if (p.userName) out.userName = p.userName
  if (p.assertion) out.grant = p.assertion
  return out
}

function isEmpty(c: Credentials): boolean {
  return (
    c.bearer === undefined &&
    c.basic === undefined &&
    c.delegation === undefined &&
    c.userName === undefined &&
    c.grant === undefined
  )
}

/** Signs grants with the node key (the libp2p Ed25519 key: the node id is its public key). */
export function grantSigner(identity: NodeIdentity): GrantSigner {
  return { nodeId: identity.id, sign: (data) => identity.privateKey.sign(data) }
}

/**
 * Checks grants: the signature against the signer's peer id, the signer against `members()` (the
 * metadata group's voters and learners as this replica knows them).
 */
export function grantVerifier(members: () => readonly string[]): GrantVerifier {
  return grantVerifierOf((id) => members().includes(id))
}

/** Checks grants: the signature against the signer's peer id, the signer by `trusted`. */
export function grantVerifierOf(trusted: (nodeId: string) => boolean): GrantVerifier {
  return {
    trusted,
    async verify(nodeId, data, signature) {
      try {
        const key = peerIdFromString(nodeId).publicKey
        if (key === undefined) return false
        return await key.verify(data, signature)
      } catch {
        return false
      }
    },
  }
}

/**
 * What a command does to which path (what a grant must cover), with the file it names by inode id if
 * any (a writer names the path its write began at and the file); undefined for commands grants never cover.
 */
export function commandUse(cmd: mpb.Command): CredentialUse | undefined {
  const op = cmd.op
  if (op === undefined) return undefined
  const body = (cmd as unknown as Record<string, { path?: string; fileId?: number } | undefined>)[op]
  const path = body?.path
  if (typeof path !== 'string' || path === '') return undefined
  const fileId = Number(body?.fileId ?? 0)
  return fileId > 0 ? { op, path, fileId } : { op, path }
}

/**
 * A command forwarded by another node (or by this node's datanode on a caller's behalf), made to act
 * as the principal `credential` proves: the credential is authenticated here (and again at commit),
 * and the command's identity fields are replaced by that principal's. Throws AuthError when the
 * credential proves nobody (UNAUTHENTICATED under secure auth) or is refused.
 */
export async function asAuthenticated(
  authenticator: Authenticator,
  credential: Credentials,
  command: Uint8Array,
  selfId: string,
  signal?: AbortSignal,
): Promise<{ command: Uint8Array; principal: Principal }> {
  let cmd: mpb.Command
  try {
    cmd = mpb.Command.decode(command)
  } catch {
    throw new AuthError('CREDENTIAL_INVALID', 'the forwarded command does not decode')
  }
  const use = commandUse(cmd)
  // No barrier: the command is checked again at commit by the auth guard (a revoked key, a cancelled
  // token or a removed user refuses it there), so the proposal costs no extra Raft round.
  const principal = await authenticator.authenticate(credential, {
    signal,
    fresh: false,
    ...(use ? { use } : {}),
  })
  if (principal === undefined)
    throw new AuthError(
      'UNAUTHENTICATED',
      'a forwarded command needs the credential of the caller it acts for',
    )
  const id = commandIdentity(principal, selfId)
  cmd.user = id.user!
  cmd.groups = id.groups!
  cmd.project = id.project!
  cmd.authVia = id.authVia!
  cmd.authNode = id.authNode!
  return { command: mpb.Command.encode(cmd).finish(), principal }
}
