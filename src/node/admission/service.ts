/**
 * What an admin does with node admission, on a metadata node: make and delete join tokens, list the
 * nodes (pending, admitted, revoked), approve a pending node, revoke a node. Every change is one
 * command proposed as the admin (apply checks the admin again, and records who); reads come from this
 * replica after a read barrier. The HTTP routes (src/api/routes/admission.ts) and the CLI
 * (`hopsd token`, `hopsd node`) sit on top.
 */
import { encodeCommand, type ConsensusGroup, type MetaResult } from '../../meta/index.js'
import { CommandRejected } from '../../meta/index.js'
import { ROLES } from '../config.js'
import { AdmissionError } from './errors.js'
import { generateJoinToken } from './join-token.js'
import { stateName, type AdmissionRecord, type ClusterTable, type JoinTokenRecord } from './state.js'

/** Join tokens last a day unless made with another lifetime (kubeadm's bootstrap tokens do the same). */
export const JOIN_TOKEN_TTL_S_DEFAULT = 86_400
export const JOIN_TOKEN_TTL_S_MAX = 30 * 86_400

/**
 * Who acts, as a command records it: the verified caller's identity fields (src/auth
 * `commandIdentity(principal, nodeId)` makes them), so apply checks the caller and the auth guard can
 * refuse a command whose credential was revoked before it commits.
 */
export interface Actor {
  readonly user: string
  readonly groups: readonly string[]
  readonly project?: string
  readonly authVia?: string
  readonly authNode?: string
}

export interface NodeAdmissionInfo {
  readonly id: string
  readonly state: 'pending' | 'admitted' | 'revoked'
  readonly roles: string[]
  readonly zone: string
  readonly hosts: string[]
  readonly via: string
  readonly requestedMs: number
  readonly admittedMs: number
  readonly revokedMs: number
  readonly revokedBy: string
  readonly reason: string
  /** The node holds a copy of the CA key wrapped to it (admitted metadata nodes). */
  readonly caKeyCopy: boolean
}

export interface JoinTokenInfo {
  readonly id: string
  readonly roles: string[]
  readonly createdMs: number
  readonly expiresMs: number
  readonly createdBy: string
  readonly usedMs: number
  readonly usedBy: string
  readonly state: 'open' | 'used' | 'expired'
}

export interface AdmissionService {
  createToken(
    actor: Actor,
    opts: { roles: readonly string[]; expiresS?: number },
    signal?: AbortSignal,
  ): Promise<JoinTokenInfo & { token: string }>
  deleteToken(actor: Actor, id: string, signal?: AbortSignal): Promise<void>
  tokens(signal?: AbortSignal): Promise<JoinTokenInfo[]>
  nodes(filter?: { state?: NodeAdmissionInfo['state'] }, signal?: AbortSignal): Promise<NodeAdmissionInfo[]>
  approve(
    actor: Actor,
    id: string,
    roles?: readonly string[],
    signal?: AbortSignal,
  ): Promise<NodeAdmissionInfo>
  revoke(actor: Actor, id: string, reason?: string, signal?: AbortSignal): Promise<NodeAdmissionInfo>
}

export function createAdmissionService(init: {
  readonly group: ConsensusGroup
  readonly state: () => ClusterTable
  readonly now?: () => number
}): AdmissionService {
  const now = init.now ?? Date.now
  const propose = async (actor: Actor, body: object, signal?: AbortSignal): Promise<unknown> => {
    const result = (await init.group.propose(
      encodeCommand({
        nowMs: now(),
        user: actor.user,
        groups: [...actor.groups],
        ...(actor.project === undefined ? {} : { project: actor.project }),
        ...(actor.authVia === undefined ? {} : { authVia: actor.authVia }),
        ...(actor.authNode === undefined ? {} : { authNode: actor.authNode }),
        ...body,
      }),
      { signal },
    )) as MetaResult
    if (!result.ok) throw new CommandRejected(result.code, result.message)
    return result.value
  }
  const nodeInfo = (r: AdmissionRecord): NodeAdmissionInfo => ({
    id: r.id,
    state: stateName(r.state),
    roles: [...r.roles],
    zone: r.zone,
    hosts: [...r.hosts],
    via: r.via,
    requestedMs: r.requestedMs,
    admittedMs: r.admittedMs,
    revokedMs: r.revokedMs,
    revokedBy: r.revokedBy,
    reason: r.reason,
    caKeyCopy: init.state().wrappedKey(r.id) !== undefined,
  })
  const tokenInfo = (t: JoinTokenRecord, nowMs: number): JoinTokenInfo => ({
    id: t.id,
    roles: [...t.roles],
    createdMs: t.createdMs,
    expiresMs: t.expiresMs,
    createdBy: t.createdBy,
    usedMs: t.usedMs,
    usedBy: t.usedBy,
    state: t.usedMs !== 0 ? 'used' : t.expiresMs <= nowMs ? 'expired' : 'open',
  })
  const record = (id: string): AdmissionRecord => {
    const r = init.state().admission(id)
    if (r === undefined) throw new AdmissionError('NODE_UNKNOWN', `no node ${id} is known`)
    return r
  }
  return {
    async createToken(actor, opts, signal) {
      const roles = [...new Set(opts.roles)]
      const bad = roles.filter((r) => !(ROLES as readonly string[]).includes(r))
      if (roles.length === 0 || bad.length > 0)
        throw new CommandRejected('INVALID_ARGUMENT', `roles must be some of ${ROLES.join(', ')}`)
      const ttlS = opts.expiresS ?? JOIN_TOKEN_TTL_S_DEFAULT
      if (!Number.isInteger(ttlS) || ttlS < 1 || ttlS > JOIN_TOKEN_TTL_S_MAX)
        throw new CommandRejected('INVALID_ARGUMENT', `expiresS must be 1..${JOIN_TOKEN_TTL_S_MAX}`)
      const t = generateJoinToken()
      const nowMs = now()
      await propose(
        actor,
        { createJoinToken: { id: t.id, secretHash: t.secretHash, roles, expiresMs: nowMs + ttlS * 1000 } },
        signal,
      )
      const made = init
        .state()
        .joinTokens()
        .find((r) => r.id === t.id)
      if (made === undefined) throw new Error('admission: a committed join token is not in the state')
      return { ...tokenInfo(made, nowMs), token: t.token }
    },
    async deleteToken(actor, id, signal) {
      await propose(actor, { deleteJoinToken: { id } }, signal)
    },
    async tokens(signal) {
      await init.group.readBarrier({ signal })
      const nowMs = now()
      return init
        .state()
        .joinTokens()
        .map((t) => tokenInfo(t, nowMs))
    },
    async nodes(filter = {}, signal) {
      await init.group.readBarrier({ signal })
      return init
        .state()
        .admissions()
        .map(nodeInfo)
        .filter((n) => filter.state === undefined || n.state === filter.state)
    },
    async approve(actor, id, roles = [], signal) {
      await propose(actor, { admitNode: { nodeId: id, roles: [...roles] } }, signal)
      return nodeInfo(record(id))
    },
    async revoke(actor, id, reason = '', signal) {
      await propose(actor, { revokeNode: { nodeId: id, reason } }, signal)
      return nodeInfo(record(id))
    },
  }
}
