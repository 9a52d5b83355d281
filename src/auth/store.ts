/**
 * The `auth` module of the metadata state machine: users, API keys and WebHDFS delegation tokens, in
 * the replicated state (so every metadata node authenticates the same way and a revocation holds
 * everywhere), with the rules of who may change what checked inside apply() — a command is refused
 * there whoever proposed it.
 *
 * | table        | key                        | value                  |
 * | ------------ | -------------------------- | ---------------------- |
 * | `auth.user`  | `<name>`                   | UserRecord             |
 * | `auth.key`   | `<id>` (16 hex digits)     | ApiKeyRecord           |
 * | `auth.token` | `<seq be64 hex>`           | DelegationTokenRecord  |
 * | `auth.meta`  | `tokenSeq`, `bootstrapped` | Counter                |
 *
 * Secrets never enter the log: keys and tokens are stored as SHA-256 hashes. A revoked key and a
 * cancelled token keep their row (so they are refused as *revoked*, not unknown) until their user is
 * removed, or the room is needed (keys), or their max date passes (tokens).
 */
import {
  ADMIN_GROUP,
  be64,
  MetaError,
  protoCodec,
  metaProto,
  type ApplyContext,
  type MetaModule,
  type MetaStore,
  type Table,
} from '../meta/index.js'
import { AuthError } from './errors.js'
import { isValidName } from './principal.js'

import pb = metaProto.meta

export interface UserRecord {
  readonly name: string
  readonly groups: string[]
  readonly disabled: boolean
  readonly createdMs: number
}

export interface ApiKeyRecord {
  readonly id: string
  readonly name: string
  readonly user: string
  readonly project: string
  readonly secretHash: Uint8Array
  readonly createdMs: number
  /** 0 = never. */
  readonly expiresMs: number
  /** 0 = not revoked. */
  readonly revokedMs: number
  readonly createdBy: string
  /** The job a job key was made for ('' or absent: an ordinary key; rows older than the field). */
  readonly job?: string
}

export interface DelegationTokenRecord {
  readonly seq: number
  readonly owner: string
  readonly renewer: string
  readonly passwordHash: Uint8Array
  readonly issueMs: number
  readonly maxDateMs: number
  readonly expiresMs: number
  /** 0 = not cancelled. */
  readonly cancelledMs: number
  readonly kind: string
  readonly service: string
  readonly project: string
}

/** The user the cluster creates at bootstrap; in group {@link ADMIN_GROUP}. */
export const ADMIN_USER = 'admin'
/** Hadoop's defaults (dfs.namenode.delegation.token.renew-interval / max-lifetime). */
export const TOKEN_RENEW_INTERVAL_MS = 24 * 3_600_000
export const TOKEN_MAX_LIFETIME_MS = 7 * 24 * 3_600_000
export const USERS_MAX = 100_000
export const GROUPS_PER_USER_MAX = 64
/** Key rows per user, revoked and expired ones included (those are dropped first when room is needed). */
export const KEYS_PER_USER_MAX = 100
/** Token rows per user; expired and cancelled ones are dropped first when room is needed. */
export const TOKENS_PER_USER_MAX = 1000
const KEY_NAME_CHARS_MAX = 128
const SERVICE_CHARS_MAX = 256
/** Rows past their max date dropped per IssueToken (a bounded sweep keeps apply short). */
const TOKEN_SWEEP_MAX = 100
const KEY_ID_RE = /^[0-9a-f]{16}$/

const AUTH_OPS = [
  'addUser',
  'removeUser',
  'updateUser',
  'createKey',
  'revokeKey',
  'issueToken',
  'renewToken',
  'cancelToken',
  'bootstrapAuth',
] as const

/** What each op's apply returns (the `value` of a successful MetaResult). */
export interface AuthOpResults {
  addUser: { name: string }
  removeUser: { name: string; keysRemoved: number; tokensRemoved: number }
  updateUser: { name: string; groups: string[]; disabled: boolean }
  createKey: { id: string; user: string; expiresMs: number }
  revokeKey: { id: string; revokedMs: number }
  issueToken: {
    seq: number
    owner: string
    renewer: string
    issueMs: number
    maxDateMs: number
    expiresMs: number
  }
  renewToken: { seq: number; expiresMs: number }
  cancelToken: { seq: number }
  bootstrapAuth: { admin: string; keyId: string; auth: string }
}

export class AuthStore implements MetaModule {
  readonly name = 'auth'
  readonly ops = AUTH_OPS
  readonly #users: Table<UserRecord>
  readonly #keys: Table<ApiKeyRecord>
  readonly #tokens: Table<DelegationTokenRecord>
  readonly #meta: Table<{ value: number }>
  /** Derived indexes (kept in step by table hooks, rollbacks and restores included). */
  readonly #keysByUser = new Map<string, Set<string>>()
  readonly #tokensByOwner = new Map<string, Set<string>>()

  constructor(store: MetaStore) {
    this.#users = store.table('auth.user', protoCodec<UserRecord>(pb.UserRecord))
    this.#keys = store.table(
      'auth.key',
      protoCodec<ApiKeyRecord>(pb.ApiKeyRecord),
      indexHooks(this.#keysByUser, (v) => v.user),
    )
    this.#tokens = store.table(
      'auth.token',
      protoCodec<DelegationTokenRecord>(pb.DelegationTokenRecord),
      indexHooks(this.#tokensByOwner, (v) => v.owner),
    )
    this.#meta = store.table('auth.meta', protoCodec<{ value: number }>(pb.Counter))
  }

  #projectMember: ((project: string, user: string, isSuperuser: boolean) => void) | undefined

  /**
   * Set once by the projects module: throws (a CommandRejected) unless `user` is a member of `project`,
   * so that a key acting in a project is made only for its members — by themselves or by admins. (A
   * project that does not exist: admins only, as the job runtime's keys for a project label.)
   */
  attachProjectMembership(check: (project: string, user: string, isSuperuser: boolean) => void): void {
    this.#projectMember = check
  }

  #projectCertificate: ((serial: string, project: string, user: string, nowMs: number) => void) | undefined

  /**
   * Set once by the projects module: throws the AuthError unless the project-user certificate `serial`
   * is recorded for `user` in `project`, not revoked, not expired at `nowMs`, and the user still a
   * member. Without it project-user certificates authenticate nobody.
   */
  attachProjectCertificates(
    check: (serial: string, project: string, user: string, nowMs: number) => void,
  ): void {
    this.#projectCertificate = check
  }

  // ---- queries (this replica)

  user(name: string): UserRecord | undefined {
    return this.#users.get(name)
  }

  /** Users in name order, at most `limit`, after `startAfter`. */
  users(opts: { startAfter?: string; limit?: number } = {}): UserRecord[] {
    const out: UserRecord[] = []
    for (const [, u] of this.#users.range(opts.startAfter ?? '', undefined, opts.startAfter !== undefined)) {
      if (out.length >= (opts.limit ?? USERS_MAX)) break
      out.push(u)
    }
    return out
  }

  get userCount(): number {
    return this.#users.size
  }

  key(id: string): ApiKeyRecord | undefined {
    return this.#keys.get(id)
  }

  /** Every key row of `user` (revoked and expired ones included), oldest first. */
  keysOf(user: string): ApiKeyRecord[] {
    const ids = this.#keysByUser.get(user)
    if (ids === undefined) return []
    return [...ids]
      .map((id) => this.#keys.get(id)!)
      .sort((a, b) => a.createdMs - b.createdMs || cmp(a.id, b.id))
  }

  /** Every key row, in id order, at most `limit`. */
  keys(limit = USERS_MAX): ApiKeyRecord[] {
    const out: ApiKeyRecord[] = []
    for (const [, k] of this.#keys.range('')) {
      if (out.length >= limit) break
      out.push(k)
    }
    return out
  }

  token(seq: number): DelegationTokenRecord | undefined {
    return Number.isSafeInteger(seq) && seq >= 0 ? this.#tokens.get(be64(seq)) : undefined
  }

  /** Whether BootstrapAuth was applied (the admin user and key exist, or existed). */
  bootstrapped(): boolean {
    return this.#meta.has('bootstrapped')
  }

  /**
   * Whether the credential a principal was authenticated with still holds in this state: its key not
   * revoked or expired at `nowMs`, its token not cancelled or expired, its user present and enabled.
   * Throws the AuthError of the refusal. `via` is Command.authVia ("key:<id>", "token:<seq>",
   * "certificate:<serial>", "project-certificate:<serial>", "assertion:<node>", "simple", "cluster", or ''
   * for commands that name none). `project`: the project the principal acts in (a project certificate's).
   */
  checkStillValid(user: string, via: string, nowMs: number, mode: 'simple' | 'secure', project = ''): void {
    const colon = via.indexOf(':')
    const kind = colon < 0 ? via : via.slice(0, colon)
    const id = colon < 0 ? '' : via.slice(colon + 1)
    if (kind === 'key') {
      const k = this.#keys.get(id)
      if (k === undefined) throw new AuthError('CREDENTIAL_REVOKED', `API key ${id} no longer exists`)
      if (k.revokedMs !== 0) throw new AuthError('CREDENTIAL_REVOKED', `API key ${id} was revoked`)
      if (k.expiresMs !== 0 && k.expiresMs <= nowMs)
        throw new AuthError(
          'CREDENTIAL_EXPIRED',
          `API key ${id} expired at ${new Date(k.expiresMs).toISOString()}`,
        )
      if (k.user !== user) throw new AuthError('CREDENTIAL_INVALID', `API key ${id} is not ${user}'s`)
    } else if (kind === 'token') {
      const t = this.token(Number(id))
      if (t === undefined || t.cancelledMs !== 0)
        throw new AuthError('CREDENTIAL_REVOKED', `delegation token ${id} was cancelled`)
      if (t.expiresMs <= nowMs)
        throw new AuthError('CREDENTIAL_EXPIRED', `delegation token ${id} has expired`)
      if (t.owner !== user)
        throw new AuthError('CREDENTIAL_INVALID', `delegation token ${id} is not ${user}'s`)
    } else if (kind === 'project-certificate') {
      if (this.#projectCertificate === undefined)
        throw new AuthError('CREDENTIAL_INVALID', 'project certificates are not accepted here')
      this.#projectCertificate(id, project, user, nowMs)
    } else if (kind !== 'certificate' && kind !== 'assertion') return
    const u = this.#users.get(user)
    if (u === undefined) {
      // Under simple auth a grant may name anyone (user.name is believed anyway).
      if (kind === 'assertion' && mode === 'simple') return
      throw new AuthError('CREDENTIAL_REVOKED', `user ${user} was removed`)
    }
    if (u.disabled) throw new AuthError('USER_DISABLED', `user ${user} is disabled`)
  }

  /**
   * Every command, before it applies: the credential its principal was authenticated with must still
   * hold. A key revoked (a token cancelled, a user removed or disabled) at index i is refused for every
   * command after i, through whichever node it came — the log orders them.
   */
  guard(ctx: { readonly cmd: ApplyContext['cmd']; readonly settings: ApplyContext['settings'] }): void {
    const { cmd } = ctx
    if (cmd.authVia === '') return
    this.checkStillValid(
      cmd.user,
      cmd.authVia,
      cmd.nowMs,
      this.bootstrapped() ? ctx.settings.auth : 'simple',
      cmd.project,
    )
  }

  // ---- apply

  apply(ctx: ApplyContext): unknown {
    const cmd = ctx.cmd
    switch (cmd.op) {
      case 'addUser':
        return this.addUser(ctx, cmd.addUser!)
      case 'removeUser':
        return this.removeUser(ctx, cmd.removeUser!)
      case 'updateUser':
        return this.updateUser(ctx, cmd.updateUser!)
      case 'createKey':
        return this.createKey(ctx, cmd.createKey!)
      case 'revokeKey':
        return this.revokeKey(ctx, cmd.revokeKey!)
      case 'issueToken':
        return this.issueToken(ctx, cmd.issueToken!)
      case 'renewToken':
        return this.renewToken(ctx, cmd.renewToken!)
      case 'cancelToken':
        return this.cancelToken(ctx, cmd.cancelToken!)
      case 'bootstrapAuth':
        return this.bootstrapAuth(ctx, cmd.bootstrapAuth!)
    }
    throw new Error(`auth: op ${cmd.op} is not auth's`)
  }

  private addUser(ctx: ApplyContext, op: pb.IAddUser): AuthOpResults['addUser'] {
    requireAdmin(ctx, 'add users')
    const name = op.name ?? ''
    checkName(name, 'user')
    const groups = checkGroups(op.groups ?? [])
    if (this.#users.has(name)) throw new AuthError('USER_EXISTS', `user ${name} exists already`)
    if (this.#users.size >= USERS_MAX) throw new AuthError('AUTH_LIMIT', `the cluster has ${USERS_MAX} users`)
    this.#users.put(name, { name, groups, disabled: false, createdMs: ctx.cmd.nowMs })
    return { name }
  }

  private removeUser(ctx: ApplyContext, op: pb.IRemoveUser): AuthOpResults['removeUser'] {
    requireAdmin(ctx, 'remove users')
    const name = op.name ?? ''
    if (!this.#users.has(name)) throw new AuthError('USER_NOT_FOUND', `no user ${JSON.stringify(name)}`)
    if (name === ctx.cmd.user) throw new AuthError('AUTH_LIMIT', 'a user cannot remove itself')
    const keyIds = [...(this.#keysByUser.get(name) ?? [])]
    for (const id of keyIds) this.#keys.delete(id)
    const tokenKeys = [...(this.#tokensByOwner.get(name) ?? [])]
    for (const k of tokenKeys) this.#tokens.delete(k)
    this.#users.delete(name)
    return { name, keysRemoved: keyIds.length, tokensRemoved: tokenKeys.length }
  }

  private updateUser(ctx: ApplyContext, op: pb.IUpdateUser): AuthOpResults['updateUser'] {
    requireAdmin(ctx, 'change users')
    const name = op.name ?? ''
    const u = this.#users.get(name)
    if (u === undefined) throw new AuthError('USER_NOT_FOUND', `no user ${JSON.stringify(name)}`)
    const groups = op.setGroups ? checkGroups(op.groups ?? []) : u.groups
    const disabled = op.setDisabled ? !!op.disabled : u.disabled
    if (
      name === ctx.cmd.user &&
      (disabled || (op.setGroups && !groups.includes(ADMIN_GROUP) && u.groups.includes(ADMIN_GROUP)))
    )
      throw new AuthError('AUTH_LIMIT', 'an admin cannot disable itself or leave the admin group')
    this.#users.put(name, { ...u, groups, disabled })
    return { name, groups, disabled }
  }

  private createKey(ctx: ApplyContext, op: pb.ICreateKey): AuthOpResults['createKey'] {
    const { cmd } = ctx
    const user = op.user ?? ''
    const id = op.id ?? ''
    if (!ctx.isSuperuser && user !== cmd.user)
      throw new AuthError('KEY_NOT_FOUND', `${cmd.user} may create keys for itself only, not for ${user}`)
    // A principal acting in a project (a project key, a project-user certificate) makes keys of that
    // project only: a key acting in none or in another would carry it out of its project.
    if (cmd.project !== '' && (op.project ?? '') !== cmd.project)
      throw new AuthError(
        'AUTH_LIMIT',
        `${cmd.user} acts in project ${cmd.project}: it makes keys acting in ${cmd.project} only`,
      )
    if ((op.project ?? '') !== '') {
      // A key acting in a project is for a member of it (the projects module answers); without that
      // module only admins make them.
      if (this.#projectMember !== undefined) this.#projectMember(op.project!, user, ctx.isSuperuser)
      else if (!ctx.isSuperuser)
        throw new AuthError('AUTH_LIMIT', 'keys acting in a project are created by an admin here')
    }
    const job = op.job ?? ''
    // Job keys read sensitive datasets inside their project: only the cluster makes them, for a task it
    // starts (never a request, whoever sends it), and always acting in the job's project.
    if (job !== '' && (!ctx.isSuperuser || cmd.authVia !== 'cluster' || (op.project ?? '') === ''))
      throw new AuthError('AUTH_LIMIT', 'job keys are made by the cluster for a task of a project job only')
    if (job.length > KEY_NAME_CHARS_MAX || /[\u0000-\u001f]/.test(job))
      throw new AuthError('CREDENTIAL_INVALID', 'a job id is at most 64 printable characters')
    const u = this.#users.get(user)
    if (u === undefined) throw new AuthError('USER_NOT_FOUND', `no user ${JSON.stringify(user)}`)
    if (u.disabled) throw new AuthError('USER_DISABLED', `user ${user} is disabled`)
    if (!KEY_ID_RE.test(id)) throw new AuthError('CREDENTIAL_INVALID', 'a key id is 16 hex digits')
    if (this.#keys.has(id)) throw new AuthError('CREDENTIAL_INVALID', `key id ${id} is taken; make a new key`)
    const hash = op.secretHash ?? new Uint8Array(0)
    if (hash.length !== 32) throw new AuthError('CREDENTIAL_INVALID', 'a key hash is 32 bytes (SHA-256)')
    const name = op.name ?? ''
    if (name.length > KEY_NAME_CHARS_MAX || /[\u0000-\u001f]/.test(name))
      throw new AuthError(
        'CREDENTIAL_INVALID',
        `a key name is at most ${KEY_NAME_CHARS_MAX} printable characters`,
      )
    const expiresMs = Number(op.expiresMs ?? 0)
    if (expiresMs !== 0 && expiresMs <= cmd.nowMs)
      throw new AuthError('CREDENTIAL_EXPIRED', 'the key would expire before it is made')
    this.makeRoomForKey(user, cmd.nowMs)
    this.#keys.put(id, {
      id,
      name,
      user,
      project: op.project ?? '',
      secretHash: hash,
      createdMs: cmd.nowMs,
      expiresMs,
      revokedMs: 0,
      createdBy: cmd.user,
      job,
    })
    return { id, user, expiresMs }
  }

  /** At the limit, drops the user's oldest revoked or expired key rows; refuses when all are live. */
  private makeRoomForKey(user: string, nowMs: number): void {
    const rows = this.keysOf(user)
    if (rows.length < KEYS_PER_USER_MAX) return
    const dead = rows.filter((k) => k.revokedMs !== 0 || (k.expiresMs !== 0 && k.expiresMs <= nowMs))
    const drop = rows.length - KEYS_PER_USER_MAX + 1
    if (dead.length < drop)
      throw new AuthError('AUTH_LIMIT', `${user} has ${KEYS_PER_USER_MAX} live keys; revoke some first`)
    for (const k of dead.slice(0, drop)) this.#keys.delete(k.id)
  }

  private revokeKey(ctx: ApplyContext, op: pb.IRevokeKey): AuthOpResults['revokeKey'] {
    const k = this.#keys.get(op.id ?? '')
    // Someone else's key reads as unknown: a user learns nothing about others' key ids.
    if (k === undefined || (!ctx.isSuperuser && k.user !== ctx.cmd.user))
      throw new AuthError('KEY_NOT_FOUND', `no key ${JSON.stringify(op.id ?? '')}`)
    if (k.revokedMs !== 0) return { id: k.id, revokedMs: k.revokedMs }
    this.#keys.put(k.id, { ...k, revokedMs: ctx.cmd.nowMs })
    return { id: k.id, revokedMs: ctx.cmd.nowMs }
  }

  private issueToken(ctx: ApplyContext, op: pb.IIssueToken): AuthOpResults['issueToken'] {
    const { cmd } = ctx
    const owner = cmd.user
    // Hadoop: "Delegation Token can be issued only with kerberos or web authentication" — a token
    // never begets a token, so a stolen one cannot outlive its max date.
    if (cmd.authVia.startsWith('token'))
      throw new AuthError('TOKEN_INVALID', 'a delegation token cannot be used to get another one')
    const u = this.#users.get(owner)
    if (u === undefined)
      throw new AuthError(
        'USER_NOT_FOUND',
        `no user ${JSON.stringify(owner)}: tokens are for users the cluster knows`,
      )
    if (u.disabled) throw new AuthError('USER_DISABLED', `user ${owner} is disabled`)
    const renewer = op.renewer || owner
    checkName(renewer, 'renewer')
    const hash = op.passwordHash ?? new Uint8Array(0)
    if (hash.length !== 32)
      throw new AuthError('CREDENTIAL_INVALID', 'a token password hash is 32 bytes (SHA-256)')
    const kind = op.kind ?? ''
    const service = op.service ?? ''
    if (kind.length > SERVICE_CHARS_MAX || service.length > SERVICE_CHARS_MAX)
      throw new AuthError(
        'CREDENTIAL_INVALID',
        `token kind and service are at most ${SERVICE_CHARS_MAX} characters`,
      )
    this.sweepTokens(cmd.nowMs)
    this.makeRoomForToken(owner, cmd.nowMs)
    const seq = (this.#meta.get('tokenSeq')?.value ?? 0) + 1
    if (seq > 0x7fffffff) throw new AuthError('AUTH_LIMIT', 'token sequence numbers are exhausted')
    this.#meta.put('tokenSeq', { value: seq })
    const maxDateMs = cmd.nowMs + TOKEN_MAX_LIFETIME_MS
    const expiresMs = Math.min(cmd.nowMs + TOKEN_RENEW_INTERVAL_MS, maxDateMs)
    this.#tokens.put(be64(seq), {
      seq,
      owner,
      renewer,
      passwordHash: hash,
      issueMs: cmd.nowMs,
      maxDateMs,
      expiresMs,
      cancelledMs: 0,
      kind,
      service,
      project: cmd.project,
    })
    return { seq, owner, renewer, issueMs: cmd.nowMs, maxDateMs, expiresMs }
  }

  /** Drops up to TOKEN_SWEEP_MAX of the oldest rows whose max date passed (they can never be valid). */
  private sweepTokens(nowMs: number): void {
    let n = 0
    for (const [k, t] of [...this.#tokens.range('')].slice(0, TOKEN_SWEEP_MAX)) {
      if (t.maxDateMs > nowMs) continue
      this.#tokens.delete(k)
      if (++n >= TOKEN_SWEEP_MAX) break
    }
  }

  private makeRoomForToken(owner: string, nowMs: number): void {
    const keys = [...(this.#tokensByOwner.get(owner) ?? [])].sort()
    if (keys.length < TOKENS_PER_USER_MAX) return
    const dead = keys.filter((k) => {
      const t = this.#tokens.get(k)!
      return t.cancelledMs !== 0 || t.expiresMs <= nowMs
    })
    const drop = keys.length - TOKENS_PER_USER_MAX + 1
    if (dead.length < drop)
      throw new AuthError(
        'AUTH_LIMIT',
        `${owner} has ${TOKENS_PER_USER_MAX} live delegation tokens; cancel some first`,
      )
    for (const k of dead.slice(0, drop)) this.#tokens.delete(k)
  }

  private renewToken(ctx: ApplyContext, op: pb.IRenewToken): AuthOpResults['renewToken'] {
    const { cmd } = ctx
    const t = this.token(op.seq ?? 0)
    if (t === undefined) throw new AuthError('TOKEN_INVALID', `no delegation token ${op.seq}`)
    if (t.cancelledMs !== 0) throw new AuthError('TOKEN_INVALID', `delegation token ${t.seq} was cancelled`)
    if (t.expiresMs <= cmd.nowMs)
      throw new AuthError('TOKEN_INVALID', `delegation token ${t.seq} has expired`)
    if (t.renewer !== cmd.user)
      throw new AuthError('TOKEN_INVALID', `${cmd.user} tries to renew a token with renewer ${t.renewer}`)
    const expiresMs = Math.min(cmd.nowMs + TOKEN_RENEW_INTERVAL_MS, t.maxDateMs)
    this.#tokens.put(be64(t.seq), { ...t, expiresMs })
    return { seq: t.seq, expiresMs }
  }

  private cancelToken(ctx: ApplyContext, op: pb.ICancelToken): AuthOpResults['cancelToken'] {
    const { cmd } = ctx
    const t = this.token(op.seq ?? 0)
    if (t === undefined) throw new AuthError('TOKEN_INVALID', `no delegation token ${op.seq}`)
    if (!ctx.isSuperuser && cmd.user !== t.owner && cmd.user !== t.renewer)
      throw new AuthError(
        'TOKEN_INVALID',
        `${cmd.user} is neither the owner nor the renewer of token ${t.seq}`,
      )
    if (t.cancelledMs === 0) this.#tokens.put(be64(t.seq), { ...t, cancelledMs: cmd.nowMs })
    return { seq: t.seq }
  }

  private bootstrapAuth(ctx: ApplyContext, op: pb.IBootstrapAuth): AuthOpResults['bootstrapAuth'] {
    requireAdmin(ctx, 'bootstrap authentication')
    if (this.bootstrapped() || this.#users.has(ADMIN_USER))
      throw new AuthError('ADMIN_EXISTS', 'the cluster made its admin user and key already')
    const id = op.adminKeyId ?? ''
    const hash = op.adminKeyHash ?? new Uint8Array(0)
    if (!KEY_ID_RE.test(id) || hash.length !== 32)
      throw new AuthError('CREDENTIAL_INVALID', 'bad admin key id or hash')
    ctx.setSetting('auth', op.auth ?? '')
    const now = ctx.cmd.nowMs
    this.#users.put(ADMIN_USER, { name: ADMIN_USER, groups: [ADMIN_GROUP], disabled: false, createdMs: now })
    this.#keys.put(id, {
      id,
      name: 'bootstrap',
      user: ADMIN_USER,
      project: '',
      secretHash: hash,
      createdMs: now,
      expiresMs: 0,
      revokedMs: 0,
      createdBy: ctx.cmd.user,
    })
    this.#meta.put('bootstrapped', { value: now })
    return { admin: ADMIN_USER, keyId: id, auth: op.auth ?? '' }
  }
}

/** Admin-only commands: the superuser, or a member of the supergroup or of `admin`. */
function requireAdmin(ctx: ApplyContext, what: string): void {
  if (!ctx.isSuperuser)
    throw new MetaError('SUPERUSER_REQUIRED', `${ctx.cmd.user} may not ${what}: admins only`)
}

function checkName(name: string, what: string): void {
  if (!isValidName(name))
    throw new AuthError(
      'CREDENTIAL_INVALID',
      `a ${what} name is 1..64 characters of [A-Za-z0-9._-], starting with a letter or _`,
    )
}

function checkGroups(groups: readonly string[]): string[] {
  if (groups.length > GROUPS_PER_USER_MAX)
    throw new AuthError('AUTH_LIMIT', `a user has at most ${GROUPS_PER_USER_MAX} groups`)
  for (const g of groups) checkName(g, 'group')
  return [...new Set(groups)].sort()
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function indexHooks<V>(index: Map<string, Set<string>>, owner: (v: V) => string) {
  const add = (key: string, v: V): void => {
    const o = owner(v)
    let s = index.get(o)
    if (s === undefined) index.set(o, (s = new Set()))
    s.add(key)
  }
  const remove = (key: string, v: V): void => {
    const o = owner(v)
    const s = index.get(o)
    s?.delete(key)
    if (s?.size === 0) index.delete(o)
  }
  return {
    onSet: (key: string, prev: V | undefined, next: V) => {
      if (prev !== undefined) remove(key, prev)
      add(key, next)
    },
    onDelete: (key: string, prev: V) => remove(key, prev),
    onClear: () => index.clear(),
  }
}

/** The `auth` module's factory, for createMetaStateMachine({ modules: [..., authModule()] }). */
export function authModule(): (store: MetaStore) => AuthStore {
  return (store) => new AuthStore(store)
}
