/**
 * The `cluster` table set of the metadata state machine: the cluster's identity and CA certificate,
 * the CA key wrapped to each admitted metadata node, and node admission — admission records, one-time
 * join tokens, the certificates issued to each node and the CRL that revokes them.
 *
 * | table               | key                | value             |
 * | ------------------- | ------------------ | ----------------- |
 * | `cluster`           | `info`             | ClusterInfo       |
 * | `cluster.cakey`     | node id            | WrappedCaKey      |
 * | `admission.node`    | node id            | AdmissionRecord   |
 * | `admission.token`   | token id           | JoinTokenRecord   |
 * | `admission.cert`    | `<node id>/<serial>` | CertificateRecord |
 * | `admission.crl`     | `crl`              | CrlRecord         |
 *
 * Every command here is the cluster's or an admin's (the superuser check); a node never proposes for
 * itself — the metadata node its request reached proposes after checking who asked (the p2p peer id).
 * Apply is deterministic: time comes in the command (`nowMs`), and a token is checked by the hash of its
 * secret, which the command carries (never the secret).
 */
import {
  CommandRejected,
  protoCodec,
  type ApplyContext,
  type MetaModule,
  type MetaModuleFactory,
} from '../../meta/index.js'
import { hopsd } from '../../proto/meta.js'
import { ROLES } from '../config.js'
import { AdmissionError } from './errors.js'
import { sameHash } from './join-token.js'

import pb = hopsd.meta

export interface ClusterInfo {
  readonly clusterId: string
  readonly caCertPem: string
  /** Set only in the state of a cluster created before CA key wrapping (refused at start). */
  readonly caKeyPem: string
  readonly createdMs: number
  readonly legacyPlaintextCa: boolean
}

export type AdmissionStateName = 'pending' | 'admitted' | 'revoked'

export interface AdmissionRecord {
  readonly id: string
  readonly state: pb.AdmissionState
  readonly roles: string[]
  readonly zone: string
  readonly hosts: string[]
  readonly via: string
  readonly requestedMs: number
  readonly admittedMs: number
  readonly revokedMs: number
  readonly revokedBy: string
  readonly reason: string
}

export interface JoinTokenRecord {
  readonly id: string
  readonly secretHash: Uint8Array
  readonly roles: string[]
  readonly createdMs: number
  readonly expiresMs: number
  readonly createdBy: string
  readonly usedMs: number
  readonly usedBy: string
}

export interface CertificateRecord {
  readonly serial: string
  readonly nodeId: string
  readonly issuedMs: number
  readonly notAfterMs: number
}

export interface CrlRecord {
  readonly number: number
  readonly crlPem: string
  readonly revocations: number
  readonly publishedMs: number
}

export interface WrappedKeyRecord {
  readonly nodeId: string
  readonly recipientKey: Uint8Array
  readonly ephemeralKey: Uint8Array
  readonly iv: Uint8Array
  readonly ciphertext: Uint8Array
  readonly wrappedMs: number
}

const INFO_KEY = 'info'
const CRL_KEY = 'crl'
/** Join tokens kept at most (used and expired ones are dropped first when a new one needs room). */
export const JOIN_TOKENS_MAX = 1000
/** Certificate records kept per node (older ones — superseded by renewals — go first). */
const CERTS_PER_NODE_MAX = 16

export const ADMISSION_STATE_NAMES: Record<number, AdmissionStateName> = {
  [pb.AdmissionState.PENDING]: 'pending',
  [pb.AdmissionState.ADMITTED]: 'admitted',
  [pb.AdmissionState.REVOKED]: 'revoked',
}

export class ClusterTable implements MetaModule {
  readonly name = 'cluster'
  readonly ops = [
    'initCluster',
    'wrapCaKey',
    'createJoinToken',
    'deleteJoinToken',
    'requestAdmission',
    'admitNode',
    'revokeNode',
    'recordCertificate',
    'publishCrl',
  ] as const
  readonly #info
  readonly #cakeys
  readonly #nodes
  readonly #tokens
  readonly #certs
  readonly #crl
  readonly #settings: () => { auth?: string }

  constructor(store: Parameters<MetaModuleFactory>[0]) {
    this.#info = store.table<ClusterInfo>('cluster', protoCodec(pb.ClusterInfo))
    this.#cakeys = store.table<WrappedKeyRecord>('cluster.cakey', protoCodec(pb.WrappedCaKey))
    this.#nodes = store.table<AdmissionRecord>('admission.node', protoCodec(pb.AdmissionRecord))
    this.#tokens = store.table<JoinTokenRecord>('admission.token', protoCodec(pb.JoinTokenRecord))
    this.#certs = store.table<CertificateRecord>('admission.cert', protoCodec(pb.CertificateRecord))
    this.#crl = store.table<CrlRecord>('admission.crl', protoCodec(pb.CrlRecord))
    this.#settings = () => store.settings() as { auth?: string }
  }

  apply(ctx: ApplyContext): unknown {
    const cmd = ctx.cmd
    if (!ctx.isSuperuser)
      throw new CommandRejected('ACCESS_DENIED', `${cmd.op} is reserved to admins and the cluster itself`)
    switch (cmd.op) {
      case 'initCluster':
        return this.#init(cmd.initCluster!, cmd.nowMs)
      case 'wrapCaKey':
        return this.#wrap(cmd.wrapCaKey!, cmd.nowMs)
      case 'createJoinToken':
        return this.#createToken(cmd.createJoinToken!, cmd.nowMs, cmd.user)
      case 'deleteJoinToken':
        return this.#deleteToken(cmd.deleteJoinToken!)
      case 'requestAdmission':
        return this.#request(cmd.requestAdmission!, cmd.nowMs)
      case 'admitNode':
        return this.#admit(cmd.admitNode!, cmd.nowMs, cmd.user)
      case 'revokeNode':
        return this.#revoke(cmd.revokeNode!, cmd.nowMs, cmd.user)
      case 'recordCertificate':
        return this.#recordCertificate(cmd.recordCertificate!, cmd.nowMs)
      case 'publishCrl':
        return this.#publishCrl(cmd.publishCrl!, cmd.nowMs)
      default:
        throw new Error(`cluster: command without one of its ops (${cmd.op})`)
    }
  }

  // ---------------------------------------------------------------------------------------- reads

  /** The cluster's identity and CA certificate, once initialised (read from this replica). */
  info(): ClusterInfo | undefined {
    return this.#info.get(INFO_KEY)
  }

  /** The CA key copy wrapped to `nodeId`, if one was made. */
  wrappedKey(nodeId: string): WrappedKeyRecord | undefined {
    return this.#cakeys.get(nodeId)
  }

  admission(nodeId: string): AdmissionRecord | undefined {
    return this.#nodes.get(nodeId)
  }

  admissions(): AdmissionRecord[] {
    return [...this.#nodes.range('')].map(([, v]) => v)
  }

  /** Admitted and not revoked; with `role`, admitted for that role. */
  isAdmitted(nodeId: string, role?: string): boolean {
    const rec = this.#nodes.get(nodeId)
    return (
      rec !== undefined &&
      rec.state === pb.AdmissionState.ADMITTED &&
      (role === undefined || rec.roles.includes(role))
    )
  }

  isRevoked(nodeId: string): boolean {
    return this.#nodes.get(nodeId)?.state === pb.AdmissionState.REVOKED
  }

  /** Ids of every node admitted and not revoked. */
  admittedNodes(): string[] {
    return this.admissions()
      .filter((r) => r.state === pb.AdmissionState.ADMITTED)
      .map((r) => r.id)
  }

  /** Ids of every revoked node. */
  revokedNodes(): string[] {
    return this.admissions()
      .filter((r) => r.state === pb.AdmissionState.REVOKED)
      .map((r) => r.id)
  }

  joinTokens(): JoinTokenRecord[] {
    return [...this.#tokens.range('')].map(([, v]) => v)
  }

  certificates(nodeId: string): CertificateRecord[] {
    return [...this.#certs.range(`${nodeId}/`, `${nodeId}0`)].map(([, v]) => v)
  }

  /** What the next CRL must name: every recorded certificate of a revoked node not yet expired at `nowMs`. */
  revokedCertificates(nowMs: number): { serial: string; revokedMs: number; nodeId: string }[] {
    const out: { serial: string; revokedMs: number; nodeId: string }[] = []
    for (const rec of this.admissions()) {
      if (rec.state !== pb.AdmissionState.REVOKED) continue
      for (const c of this.certificates(rec.id))
        if (c.notAfterMs > nowMs) out.push({ serial: c.serial, revokedMs: rec.revokedMs, nodeId: rec.id })
    }
    return out
  }

  /** How many revocations the state holds (a CRL covering fewer is stale). */
  revocationCount(): number {
    return this.revokedNodes().length
  }

  crl(): CrlRecord | undefined {
    return this.#crl.get(CRL_KEY)
  }

  // ---------------------------------------------------------------------------------------- apply

  #init(init: pb.IInitCluster, nowMs: number): unknown {
    if (!init.clusterId || !init.caCertPem)
      throw new CommandRejected('INVALID_ARGUMENT', 'InitCluster needs clusterId and caCertPem')
    const existing = this.#info.get(INFO_KEY)
    if (existing !== undefined) {
      if (existing.clusterId === init.clusterId) return { clusterId: existing.clusterId, created: false }
      throw new CommandRejected('ALREADY_INITIALIZED', `the cluster is ${existing.clusterId} already`)
    }
    if (init.caKeyPem) {
      // Written by hopsd before CA key wrapping. Keep the fact, not the key: the node refuses the state.
      this.#info.put(INFO_KEY, {
        clusterId: init.clusterId,
        caCertPem: init.caCertPem,
        caKeyPem: '',
        createdMs: nowMs,
        legacyPlaintextCa: true,
      })
      return { clusterId: init.clusterId, created: true, legacy: true }
    }
    const wrapped = init.wrappedKey
    if (!wrapped?.nodeId || !wrapped.ciphertext?.length)
      throw new CommandRejected('INVALID_ARGUMENT', 'InitCluster needs the CA key wrapped to its node')
    this.#info.put(INFO_KEY, {
      clusterId: init.clusterId,
      caCertPem: init.caCertPem,
      caKeyPem: '',
      createdMs: nowMs,
      legacyPlaintextCa: false,
    })
    for (const m of init.admitted ?? []) {
      if (!m.id) continue
      this.#nodes.put(m.id, {
        ...emptyRecord(m.id),
        state: pb.AdmissionState.ADMITTED,
        roles: validRoles(m.roles ?? []),
        zone: m.zone ?? '',
        via: 'bootstrap',
        requestedMs: nowMs,
        admittedMs: nowMs,
      })
    }
    if (!this.isAdmitted(wrapped.nodeId, 'metadata'))
      throw new CommandRejected(
        'INVALID_ARGUMENT',
        'the CA key is wrapped to a node the bootstrap did not admit',
      )
    this.#cakeys.put(wrapped.nodeId, wrappedRecord(wrapped, nowMs))
    return { clusterId: init.clusterId, created: true }
  }

  #wrap(cmd: pb.IWrapCaKey, nowMs: number): unknown {
    const w = cmd.wrapped
    if (!w?.nodeId || !w.ciphertext?.length || w.recipientKey?.length !== 32)
      throw new CommandRejected('INVALID_ARGUMENT', 'WrapCaKey needs a node id, its key and the ciphertext')
    if (this.#info.get(INFO_KEY) === undefined)
      throw new CommandRejected('INVALID_ARGUMENT', 'the cluster has no CA yet')
    if (!this.isAdmitted(w.nodeId, 'metadata'))
      throw new AdmissionError('NODE_NOT_ADMITTED', `${w.nodeId} is not an admitted metadata node`)
    this.#cakeys.put(w.nodeId, wrappedRecord(w, nowMs))
    return { nodeId: w.nodeId }
  }

  #createToken(cmd: pb.ICreateJoinToken, nowMs: number, user: string): unknown {
    const id = cmd.id ?? ''
    if (!/^[0-9a-f]{16}$/.test(id) || cmd.secretHash?.length !== 32)
      throw new CommandRejected('INVALID_ARGUMENT', 'a join token needs a 16-hex-digit id and a SHA-256')
    if (this.#tokens.has(id)) throw new CommandRejected('INVALID_ARGUMENT', `join token ${id} exists already`)
    const roles = validRoles(cmd.roles ?? [])
    if (roles.length === 0)
      throw new CommandRejected('INVALID_ARGUMENT', 'a join token admits at least one role')
    const expiresMs = Number(cmd.expiresMs ?? 0)
    if (expiresMs <= nowMs)
      throw new CommandRejected('INVALID_ARGUMENT', 'a join token must expire in the future')
    // Used and expired tokens stay listed (a node that tries one again hears USED or EXPIRED, not
    // "unknown") until a new token needs their room.
    if (this.#tokens.size >= JOIN_TOKENS_MAX) this.#pruneTokens(nowMs)
    if (this.#tokens.size >= JOIN_TOKENS_MAX)
      throw new CommandRejected(
        'INVALID_ARGUMENT',
        `${JOIN_TOKENS_MAX} join tokens are open: delete some first`,
      )
    this.#tokens.put(id, {
      id,
      secretHash: cmd.secretHash,
      roles,
      createdMs: nowMs,
      expiresMs,
      createdBy: user,
      usedMs: 0,
      usedBy: '',
    })
    return { id, roles, expiresMs }
  }

  #deleteToken(cmd: pb.IDeleteJoinToken): unknown {
    const id = cmd.id ?? ''
    if (!this.#tokens.delete(id)) throw new AdmissionError('JOIN_TOKEN_INVALID', `no join token ${id}`)
    return { id, deleted: true }
  }

  #request(cmd: pb.IRequestAdmission, nowMs: number): unknown {
    const id = cmd.nodeId ?? ''
    if (id === '') throw new CommandRejected('INVALID_ARGUMENT', 'RequestAdmission needs a node id')
    const rec = this.#nodes.get(id)
    // An admitted or revoked node stays so; a pending one gets its latest request (first time kept).
    if (rec !== undefined && rec.state !== pb.AdmissionState.PENDING) return { state: stateName(rec.state) }
    this.#nodes.put(id, {
      ...(rec ?? emptyRecord(id)),
      state: pb.AdmissionState.PENDING,
      roles: validRoles(cmd.roles ?? []),
      zone: cmd.zone ?? '',
      hosts: (cmd.hosts ?? []).slice(0, 32),
      requestedMs: rec?.requestedMs || nowMs,
    })
    return { state: 'pending' }
  }

  #admit(cmd: pb.IAdmitNode, nowMs: number, user: string): unknown {
    const id = cmd.nodeId ?? ''
    if (id === '') throw new CommandRejected('INVALID_ARGUMENT', 'AdmitNode needs a node id')
    const rec = this.#nodes.get(id)
    if (rec?.state === pb.AdmissionState.REVOKED)
      throw new AdmissionError('NODE_REVOKED', `${id} was revoked; a revoked node is never admitted again`)
    let roles = validRoles(cmd.roles ?? [])
    let via: string
    if (cmd.tokenId) {
      const token = this.#tokens.get(cmd.tokenId)
      if (token === undefined || !sameHash(token.secretHash, cmd.tokenSecretHash ?? new Uint8Array()))
        throw new AdmissionError('JOIN_TOKEN_INVALID', 'unknown join token, or its secret does not match')
      if (token.usedMs !== 0)
        throw new AdmissionError(
          'JOIN_TOKEN_USED',
          `join token ${token.id} was used already (by ${token.usedBy})`,
        )
      if (nowMs >= token.expiresMs)
        throw new AdmissionError('JOIN_TOKEN_EXPIRED', `join token ${token.id} has expired`)
      // What needs a say is the metadata role (a replica receives the state); the others come with
      // any admission.
      if (roles.includes('metadata') && !token.roles.includes('metadata'))
        throw new AdmissionError(
          'JOIN_TOKEN_ROLES',
          `join token ${token.id} admits ${token.roles.join(',')}, not the metadata role the node runs`,
        )
      this.#tokens.put(token.id, { ...token, usedMs: nowMs, usedBy: id })
      via = `token:${token.id}`
    } else if (cmd.automatic) {
      if (this.#settings().auth === 'secure')
        throw new AdmissionError('NODE_NOT_ADMITTED', 'automatic admission is for simple auth only')
      via = 'automatic'
    } else {
      if (roles.length === 0) roles = rec?.roles ?? []
      if (roles.length === 0)
        throw new AdmissionError('NODE_UNKNOWN', `${id} has not asked to join: name the roles it may run`)
      via = `approved:${user}`
    }
    const merged = [...new Set([...(rec?.state === pb.AdmissionState.ADMITTED ? rec.roles : []), ...roles])]
    this.#nodes.put(id, {
      ...(rec ?? emptyRecord(id)),
      state: pb.AdmissionState.ADMITTED,
      roles: ROLES.filter((r) => merged.includes(r)),
      zone: cmd.zone || rec?.zone || '',
      via,
      requestedMs: rec?.requestedMs || nowMs,
      admittedMs: nowMs,
    })
    return { nodeId: id, roles: merged, via }
  }

  #revoke(cmd: pb.IRevokeNode, nowMs: number, user: string): unknown {
    const id = cmd.nodeId ?? ''
    const rec = this.#nodes.get(id)
    if (id === '' || rec === undefined) throw new AdmissionError('NODE_UNKNOWN', `no node ${id} is known`)
    if (rec.state === pb.AdmissionState.REVOKED) return { nodeId: id, revoked: false }
    this.#nodes.put(id, {
      ...rec,
      state: pb.AdmissionState.REVOKED,
      revokedMs: nowMs,
      revokedBy: user,
      reason: (cmd.reason ?? '').slice(0, 500),
    })
    this.#cakeys.delete(id)
    return { nodeId: id, revoked: true }
  }

  #recordCertificate(cmd: pb.IRecordCertificate, nowMs: number): unknown {
    const id = cmd.nodeId ?? ''
    const serial = (cmd.serial ?? '').toLowerCase().replace(/^0+(?=.)/, '')
    if (!/^[0-9a-f]{1,40}$/.test(serial))
      throw new CommandRejected('INVALID_ARGUMENT', 'RecordCertificate needs a hex serial')
    if (this.isRevoked(id)) throw new AdmissionError('NODE_REVOKED', `${id} was revoked`)
    if (!this.isAdmitted(id)) throw new AdmissionError('NODE_NOT_ADMITTED', `${id} is not admitted`)
    const mine = this.certificates(id)
    // Expired certificates need no revocation; past the bound, the oldest go (renewals supersede them).
    for (const c of mine.filter((c) => c.notAfterMs <= nowMs)) this.#certs.delete(`${id}/${c.serial}`)
    const live = mine.filter((c) => c.notAfterMs > nowMs).sort((a, b) => a.issuedMs - b.issuedMs)
    while (live.length >= CERTS_PER_NODE_MAX) this.#certs.delete(`${id}/${live.shift()!.serial}`)
    this.#certs.put(`${id}/${serial}`, {
      serial,
      nodeId: id,
      issuedMs: nowMs,
      notAfterMs: Number(cmd.notAfterMs ?? 0),
    })
    return { serial }
  }

  #publishCrl(cmd: pb.IPublishCrl, nowMs: number): unknown {
    const number = Number(cmd.number ?? 0)
    const current = this.#crl.get(CRL_KEY)
    if (!cmd.crlPem || number < 1)
      throw new CommandRejected('INVALID_ARGUMENT', 'PublishCrl needs a CRL and a number')
    if (current !== undefined && number <= current.number) return { number: current.number, published: false }
    this.#crl.put(CRL_KEY, {
      number,
      crlPem: cmd.crlPem,
      revocations: Number(cmd.revocations ?? 0),
      publishedMs: nowMs,
    })
    return { number, published: true }
  }

  #pruneTokens(nowMs: number): void {
    for (const [id, t] of [...this.#tokens.range('')])
      if (t.usedMs !== 0 || t.expiresMs <= nowMs) this.#tokens.delete(id)
  }
}

export function clusterModule(): MetaModuleFactory<ClusterTable> {
  return (store) => new ClusterTable(store)
}

export function stateName(state: pb.AdmissionState): AdmissionStateName {
  return ADMISSION_STATE_NAMES[state] ?? 'pending'
}

function emptyRecord(id: string): AdmissionRecord {
  return {
    id,
    state: pb.AdmissionState.PENDING,
    roles: [],
    zone: '',
    hosts: [],
    via: '',
    requestedMs: 0,
    admittedMs: 0,
    revokedMs: 0,
    revokedBy: '',
    reason: '',
  }
}

function validRoles(roles: readonly string[]): string[] {
  const bad = roles.filter((r) => !(ROLES as readonly string[]).includes(r))
  if (bad.length > 0) throw new CommandRejected('INVALID_ARGUMENT', `unknown role(s) ${bad.join(', ')}`)
  return ROLES.filter((r) => roles.includes(r))
}

function wrappedRecord(w: pb.IWrappedCaKey, nowMs: number): WrappedKeyRecord {
  return {
    nodeId: w.nodeId ?? '',
    recipientKey: w.recipientKey ?? new Uint8Array(),
    ephemeralKey: w.ephemeralKey ?? new Uint8Array(),
    iv: w.iv ?? new Uint8Array(),
    ciphertext: w.ciphertext ?? new Uint8Array(),
    wrappedMs: nowMs,
  }
}
