/**
 * The auth service of a metadata node: users, API keys and delegation tokens, changed through the
 * metadata group (one command each, authorized again inside apply) and read from this replica after a
 * read barrier. The secrets of new keys and tokens are made here, shown once, and only their hashes
 * are proposed.
 */
import { randomBytes } from 'node:crypto'
import {
  CommandRejected,
  encodeCommand,
  type ConsensusGroup,
  type MetaResult,
  type MetaStateMachine,
  type metaProto,
} from '../meta/index.js'
import { generateApiKey, type NewApiKey } from './api-key.js'
import { AuthError, authErrorFromResult } from './errors.js'
import {
  decodeTokenUrlString,
  encodeTokenUrlString,
  SWEBHDFS_TOKEN_KIND,
  WEBHDFS_TOKEN_KIND,
} from './hadoop-token.js'
import { authViaOf, type Principal } from './principal.js'
import type { ApiKeyRecord, AuthOpResults, AuthStore, UserRecord } from './store.js'
import { createHash } from 'node:crypto'

type CommandProps = metaProto.meta.Command.$Properties

/** Default lifetime of a key made without `expiresS` (0 asks for a key that never expires). */
export const KEY_DEFAULT_EXPIRES_S = 90 * 24 * 3600
/** The longest lifetime a key may be given, in seconds (10 years). */
export const KEY_EXPIRES_S_MAX = 10 * 365 * 24 * 3600

export interface AuthServiceInit {
  readonly consensus: ConsensusGroup
  readonly stateMachine: MetaStateMachine
  /** This node's id: commands record which node authenticated their principal. */
  readonly nodeId: string
  readonly clock?: () => number
  /** Randomness of key ids, key secrets and token passwords (injectable for seeded tests). */
  readonly random?: (n: number) => Uint8Array
}

/** A key as listed: everything but the secret (which nobody has any more). */
export interface ApiKeyInfo {
  readonly id: string
  readonly name: string
  readonly user: string
  readonly project: string
  readonly createdMs: number
  readonly expiresMs: number
  readonly revokedMs: number
  readonly createdBy: string
  readonly state: 'active' | 'expired' | 'revoked'
}

export interface CreatedKey extends ApiKeyInfo {
  /** The key itself (`hk.<id>.<secret>`), shown this once. */
  readonly key: string
}

export class AuthService {
  readonly #consensus: ConsensusGroup
  readonly #sm: MetaStateMachine
  readonly #nodeId: string
  readonly #clock: () => number
  readonly #random: (n: number) => Uint8Array

  constructor(init: AuthServiceInit) {
    this.#consensus = init.consensus
    this.#sm = init.stateMachine
    this.#nodeId = init.nodeId
    this.#clock = init.clock ?? Date.now
    this.#random = init.random ?? randomBytes
  }

  private get store(): AuthStore {
    return this.#sm.module<AuthStore>('auth')
  }

  // ---- users (admins; a user may read its own record)

  async addUser(caller: Principal, name: string, groups: readonly string[] = []): Promise<UserRecord> {
    await this.propose(caller, { addUser: { name, groups: [...groups] } })
    return this.store.user(name)!
  }

  async removeUser(caller: Principal, name: string): Promise<AuthOpResults['removeUser']> {
    return this.propose(caller, { removeUser: { name } })
  }

  async setUser(
    caller: Principal,
    name: string,
    change: { groups?: readonly string[]; disabled?: boolean },
  ): Promise<UserRecord> {
    await this.propose(caller, {
      updateUser: {
        name,
        setGroups: change.groups !== undefined,
        groups: [...(change.groups ?? [])],
        setDisabled: change.disabled !== undefined,
        disabled: change.disabled ?? false,
      },
    })
    return this.store.user(name)!
  }

  async getUser(caller: Principal, name: string, signal?: AbortSignal): Promise<UserRecord> {
    if (!caller.superuser && caller.user !== name)
      throw new AuthError('USER_NOT_FOUND', `no user ${JSON.stringify(name)} (or not yours to see)`)
    await this.#consensus.readBarrier({ signal })
    const u = this.store.user(name)
    if (u === undefined) throw new AuthError('USER_NOT_FOUND', `no user ${JSON.stringify(name)}`)
    return u
  }

  async listUsers(
    caller: Principal,
    opts: { startAfter?: string; limit?: number; signal?: AbortSignal } = {},
  ) {
    requireAdmin(caller, 'list users')
    await this.#consensus.readBarrier({ signal: opts.signal })
    return this.store.users(opts)
  }

  // ---- API keys (admins for anyone; users for themselves)

  async createKey(
    caller: Principal,
    req: { user: string; name?: string; expiresS?: number; project?: string; job?: string },
  ): Promise<CreatedKey> {
    const expiresS = req.expiresS ?? KEY_DEFAULT_EXPIRES_S
    if (!Number.isInteger(expiresS) || expiresS < 0 || expiresS > KEY_EXPIRES_S_MAX)
      throw new AuthError('CREDENTIAL_INVALID', `expiresS must be 0 (never) or 1..${KEY_EXPIRES_S_MAX}`)
    const k = generateApiKey(this.#random)
    const nowMs = this.#clock()
    const expiresMs = expiresS === 0 ? 0 : nowMs + expiresS * 1000
    await this.propose(
      caller,
      {
        createKey: {
          id: k.id,
          name: req.name ?? '',
          user: req.user,
          project: req.project ?? '',
          secretHash: k.secretHash,
          expiresMs,
          job: req.job ?? '',
        },
      },
      nowMs,
    )
    return { ...keyInfo(this.store.key(k.id)!, nowMs), key: k.key }
  }

  async listKeys(
    caller: Principal,
    opts: { user?: string; signal?: AbortSignal } = {},
  ): Promise<ApiKeyInfo[]> {
    await this.#consensus.readBarrier({ signal: opts.signal })
    const now = this.#clock()
    if (!caller.superuser) return this.store.keysOf(caller.user).map((k) => keyInfo(k, now))
    const rows = opts.user !== undefined ? this.store.keysOf(opts.user) : this.store.keys()
    return rows.map((k) => keyInfo(k, now))
  }

  async revokeKey(caller: Principal, id: string): Promise<ApiKeyInfo> {
    await this.propose(caller, { revokeKey: { id } })
    return keyInfo(this.store.key(id)!, this.#clock())
  }

  // ---- WebHDFS delegation tokens

  /** GETDELEGATIONTOKEN: a token acting as the caller, in Hadoop's URL-string form. */
  async issueToken(
    caller: Principal,
    req: { renewer?: string; service?: string; secure?: boolean },
  ): Promise<{ urlString: string; seq: number; expiresMs: number }> {
    const password = this.#random(32)
    const kind = req.secure ? SWEBHDFS_TOKEN_KIND : WEBHDFS_TOKEN_KIND
    const service = req.service ?? ''
    const r = await this.propose(caller, {
      issueToken: {
        renewer: req.renewer ?? '',
        passwordHash: createHash('sha256').update(password).digest(),
        kind,
        service,
      },
    })
    const urlString = encodeTokenUrlString({
      identifier: {
        owner: r.owner,
        renewer: r.renewer,
        realUser: '',
        issueDate: r.issueMs,
        maxDate: r.maxDateMs,
        sequenceNumber: r.seq,
        masterKeyId: 0,
      },
      password,
      kind,
      service,
    })
    return { urlString, seq: r.seq, expiresMs: r.expiresMs }
  }

  /** RENEWDELEGATIONTOKEN (its renewer): the new expiry (ms). */
  async renewToken(caller: Principal, urlString: string): Promise<number> {
    const seq = await this.tokenSeq(urlString)
    return (await this.propose(caller, { renewToken: { seq } })).expiresMs
  }

  /** CANCELDELEGATIONTOKEN (its owner, its renewer, or an admin). */
  async cancelToken(caller: Principal, urlString: string): Promise<void> {
    await this.propose(caller, { cancelToken: { seq: await this.tokenSeq(urlString) } })
  }

  /**
   * Once per cluster (the node that initialised it): the user `admin` with a key that never expires,
   * and the `auth` setting. Returns the key, which the caller keeps in `<data-dir>/admin.key` — made
   * beforehand (`key`) when the caller writes the file before proposing, so that a crash between
   * commit and write cannot lose it. ADMIN_EXISTS when another node did it first.
   */
  async bootstrap(
    cluster: Principal,
    auth: 'simple' | 'secure',
    key: NewApiKey = generateApiKey(this.#random),
  ): Promise<{ id: string; key: string }> {
    const k = key
    await this.propose(cluster, { bootstrapAuth: { adminKeyId: k.id, adminKeyHash: k.secretHash, auth } })
    return { id: k.id, key: k.key }
  }

  /** Whether the cluster made its admin user and key (this replica). */
  bootstrapped(): boolean {
    return this.store.bootstrapped()
  }

  /** The token's sequence number, after checking the password (a caller must hold the whole token). */
  private async tokenSeq(urlString: string): Promise<number> {
    const t = decodeTokenUrlString(urlString)
    if (t === undefined) throw new AuthError('TOKEN_INVALID', 'malformed delegation token')
    await this.#consensus.readBarrier({})
    const rec = this.store.token(t.identifier.sequenceNumber)
    const hash = createHash('sha256').update(t.password).digest()
    if (rec === undefined || !Buffer.from(rec.passwordHash).equals(hash))
      throw new AuthError('TOKEN_INVALID', `unknown delegation token ${t.identifier.sequenceNumber}`)
    return rec.seq
  }

  private async propose<K extends keyof AuthOpResults>(
    caller: Principal,
    cmd: CommandProps & { [P in K]?: unknown },
    nowMs = this.#clock(),
  ): Promise<AuthOpResults[K]> {
    const data = encodeCommand({ ...cmd, ...commandIdentity(caller, this.#nodeId), nowMs })
    const result = (await this.#consensus.propose(data)) as MetaResult
    if (!result.ok) throw errorOfResult(result.code, result.message)
    return result.value as AuthOpResults[K]
  }
}

/** The identity fields of a Command for `principal`, authenticated by node `nodeId`. */
export function commandIdentity(
  principal: Principal,
  nodeId: string,
): Pick<CommandProps, 'user' | 'groups' | 'project' | 'authVia' | 'authNode'> {
  return {
    user: principal.user,
    groups: [...principal.groups],
    project: principal.project ?? '',
    authVia: authViaOf(principal),
    authNode: nodeId,
  }
}

/** The typed error for a refused auth command (auth's codes; meta's and others' keep their code). */
export function errorOfResult(code: string, message: string): Error {
  return authErrorFromResult(code, message) ?? new CommandRejected(code, message)
}

/** Admin operations outside apply (lists): SUPERUSER_REQUIRED, like apply's refusals. */
export function requireAdmin(caller: Principal, what: string): void {
  if (!caller.superuser)
    throw new CommandRejected('SUPERUSER_REQUIRED', `${caller.user} may not ${what}: admins only`)
}

function keyInfo(k: ApiKeyRecord, nowMs: number): ApiKeyInfo {
  return {
    id: k.id,
    name: k.name,
    user: k.user,
    project: k.project,
    createdMs: k.createdMs,
    expiresMs: k.expiresMs,
    revokedMs: k.revokedMs,
    createdBy: k.createdBy,
    state: k.revokedMs !== 0 ? 'revoked' : k.expiresMs !== 0 && k.expiresMs <= nowMs ? 'expired' : 'active',
  }
}

export function createAuthService(init: AuthServiceInit): AuthService {
  return new AuthService(init)
}
