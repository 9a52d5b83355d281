/**
 * Authentication: the credentials a request carries → a verified {@link Principal}, checked against
 * this replica's users, keys and tokens (src/auth/store.ts). The order (the first credential present
 * decides; a bad one is refused, never skipped for the next):
 *   1. a TLS client certificate issued by the cluster CA for a user (its chain checked by the TLS stack),
 *      or for a project-user (`CN=<project>__<user>`; its serial must be recorded by the projects area,
 *      not revoked or expired, and the user still a member — checked on every request);
 *   2. an API key: `Authorization: Bearer <key>`, or HTTP Basic with the key as the password (fsspec's
 *      WebHDFS takes user/password but no header; the Basic user name must be the key's user or empty);
 *   3. WebHDFS `delegation=<token>`: a delegation token (HdfsCLI's TokenClient, fsspec's `token=`), or
 *      an API key given there (the same clients, without a round trip to get a token);
 *   4. a principal grant signed by a metadata node (a write's token with the commands and block
 *      allocations it makes; forwarded proposals);
 *   5. WebHDFS `user.name`, only while the cluster runs simple auth (otherwise a 401 that says so);
 *   6. nothing: anonymous — `dr.who` under simple auth, no principal under secure auth.
 * Groups always come from the user record. Every refusal is an {@link AuthError} with a reason.
 *
 * Freshness: with a `barrier` (the metadata group's read barrier) every authentication first catches
 * the replica up with the leader's commit index, so a key revoked anywhere is refused here at once.
 */
import type { ClusterSettings } from '../meta/index.js'
import { looksLikeApiKey, parseApiKey, secretMatches } from './api-key.js'
import { AuthError } from './errors.js'
import { grantCovers, looksLikeGrant, verifyGrant, type GrantVerifier } from './grant.js'
import { decodeTokenUrlString } from './hadoop-token.js'
import { ANONYMOUS_USER, authViaOf, isValidName, type Principal } from './principal.js'
import { createHash, timingSafeEqual } from 'node:crypto'
import type { AuthStore } from './store.js'

/** What a request presented, as the edge found it. Secrets are never logged. */
export interface Credentials {
  /** A client certificate the TLS stack verified against the cluster CA (or why it did not). */
  readonly certificate?: ClientCertificate
  readonly bearer?: string
  readonly basic?: { readonly user: string; readonly password: string }
  /** WebHDFS `delegation=`. */
  readonly delegation?: string
  /** WebHDFS `user.name`. */
  readonly userName?: string
  /**
   * A principal grant: a forwarded proposal's or block allocation's (a write's `hopsd.token`). HTTP
   * requests carry none: a write's second hop is checked by its route (src/api/routes/write-token.ts).
   */
  readonly grant?: string
}

export interface ClientCertificate {
  /** The TLS handshake verified the chain against the cluster CA (node's `socket.authorized`). */
  readonly verified: boolean
  /** Why not, when not (node's `authorizationError`). */
  readonly error?: string
  /**
   * Subject alternative name URIs (`hopsd://user/<name>` names a user, `hopsd://project-user/<project>/<user>`
   * a project-user, `hopsd://node/<id>` a node).
   */
  readonly uris: readonly string[]
  readonly serial: string
  readonly notAfterMs: number
}

/** What a credential is used for, when its scope matters (grants). */
export interface CredentialUse {
  readonly op: string
  readonly path: string
  /** The file the use names by inode id (a writer's command after a rename), if it names one. */
  readonly fileId?: number
}

export interface AuthenticateOpts {
  readonly signal?: AbortSignal
  /**
   * Catch the replica up first (default true). False when the caller re-checks the principal itself
   * once its own read barrier is done ({@link Authenticator.recheck}) or at commit (the auth guard):
   * then one barrier serves both.
   */
  readonly fresh?: boolean
  /** The operation and path the request performs; a grant must cover it (no `use`: grants refused). */
  readonly use?: CredentialUse | readonly CredentialUse[]
}

export interface Authenticator {
  /**
   * The principal the credentials prove; undefined when there are none under secure auth. Throws
   * {@link AuthError} (401: why) for a bad, expired, revoked or unaccepted credential; UNAVAILABLE-coded
   * errors when the node cannot check now.
   */
  authenticate(credentials: Credentials, opts?: AuthenticateOpts): Promise<Principal | undefined>
  /** How the cluster authenticates now (its `auth` setting; the node's own `--auth` until bootstrap). */
  mode(): 'simple' | 'secure'
  /**
   * Checks again, against this replica as it is now, that `p`'s credential still holds (not revoked,
   * expired, removed or disabled); throws the AuthError. For callers that authenticated with
   * `fresh: false` and have since passed a read barrier. A no-op where there is no replica.
   */
  recheck(p: Principal): void
}

export interface LocalAuthenticatorInit {
  /** The `auth` module of this replica. */
  store(): AuthStore
  settings(): ClusterSettings
  isSuperuser(user: string, groups: readonly string[]): boolean
  /** This node's `--auth`: the mode until the cluster's bootstrap writes the `auth` setting. */
  readonly bootstrapMode: 'simple' | 'secure'
  /** Catches the replica up before a credential is checked (the metadata group's read barrier). */
  barrier?(signal?: AbortSignal): Promise<void>
  /** Checks grants; without it grants are refused. */
  readonly grants?: GrantVerifier
  /** Wall clock (ms). */
  readonly clock?: () => number
}

const USER_URI_PREFIX = 'hopsd://user/'
export const PROJECT_USER_URI_PREFIX = 'hopsd://project-user/'
/** Hadoop's default dfs.webhdfs.user.provider.user.pattern, bounded. */
const SIMPLE_NAME_RE = /^[A-Za-z_][A-Za-z0-9._-]{0,255}\$?$/

export function createLocalAuthenticator(init: LocalAuthenticatorInit): Authenticator {
  const clock = init.clock ?? Date.now
  const mode = (): 'simple' | 'secure' =>
    init.store().bootstrapped() ? init.settings().auth : init.bootstrapMode

  /** A principal for a user record: exists, enabled; groups from the record. */
  const principalOf = (
    user: string,
    via: Principal['via'],
    credentialId: string | undefined,
    project: string,
    missing: () => AuthError,
  ): Principal => {
    const u = init.store().user(user)
    if (u === undefined) throw missing()
    if (u.disabled) throw new AuthError('USER_DISABLED', `user ${user} is disabled`)
    return {
      user,
      groups: u.groups,
      ...(project ? { project } : {}),
      via,
      ...(credentialId !== undefined ? { credentialId } : {}),
      superuser: init.isSuperuser(user, u.groups),
    }
  }

  const byKey = (key: string, basicUser?: string): Principal => {
    const parsed = parseApiKey(key)
    if (parsed === undefined)
      throw new AuthError('CREDENTIAL_INVALID', 'malformed API key (expected hk.<id>.<secret>)')
    const k = init.store().key(parsed.id)
    if (k === undefined) throw new AuthError('CREDENTIAL_INVALID', `unknown API key ${parsed.id}`)
    if (!secretMatches(parsed.secret, k.secretHash))
      throw new AuthError('CREDENTIAL_INVALID', `wrong secret for API key ${parsed.id}`)
    if (k.revokedMs !== 0)
      throw new AuthError(
        'CREDENTIAL_REVOKED',
        `API key ${k.id} was revoked at ${new Date(k.revokedMs).toISOString()}`,
      )
    if (k.expiresMs !== 0 && k.expiresMs <= clock())
      throw new AuthError(
        'CREDENTIAL_EXPIRED',
        `API key ${k.id} expired at ${new Date(k.expiresMs).toISOString()}`,
      )
    if (basicUser !== undefined && basicUser !== '' && basicUser !== k.user)
      throw new AuthError('CREDENTIAL_INVALID', `API key ${k.id} is not ${basicUser}'s`)
    const p = principalOf(
      k.user,
      'key',
      k.id,
      k.project,
      () => new AuthError('CREDENTIAL_REVOKED', `the user of API key ${k.id} was removed`),
    )
    return k.job ? { ...p, job: k.job } : p
  }

  const byToken = (urlString: string): Principal => {
    const t = decodeTokenUrlString(urlString)
    if (t === undefined) throw new AuthError('CREDENTIAL_INVALID', 'malformed delegation token')
    const seq = t.identifier.sequenceNumber
    const rec = init.store().token(seq)
    if (rec === undefined) throw new AuthError('CREDENTIAL_INVALID', `unknown delegation token ${seq}`)
    const hash = createHash('sha256').update(t.password).digest()
    if (hash.length !== rec.passwordHash.length || !timingSafeEqual(hash, rec.passwordHash))
      throw new AuthError('CREDENTIAL_INVALID', `wrong password for delegation token ${seq}`)
    if (t.identifier.owner !== rec.owner || t.identifier.issueDate !== rec.issueMs)
      throw new AuthError('CREDENTIAL_INVALID', `delegation token ${seq} was altered`)
    if (rec.cancelledMs !== 0)
      throw new AuthError(
        'CREDENTIAL_REVOKED',
        `delegation token ${seq} was cancelled at ${new Date(rec.cancelledMs).toISOString()}`,
      )
    if (rec.expiresMs <= clock())
      throw new AuthError(
        'CREDENTIAL_EXPIRED',
        `delegation token ${seq} expired at ${new Date(rec.expiresMs).toISOString()}`,
      )
    return principalOf(
      rec.owner,
      'token',
      String(seq),
      rec.project,
      () => new AuthError('CREDENTIAL_REVOKED', `the owner of delegation token ${seq} was removed`),
    )
  }

  const byCertificate = (c: ClientCertificate): Principal | undefined => {
    if (!c.verified && c.error === 'CERT_HAS_EXPIRED')
      throw new AuthError('CREDENTIAL_EXPIRED', `client certificate ${c.serial} has expired`)
    if (!c.verified)
      throw new AuthError(
        'CREDENTIAL_INVALID',
        `client certificate refused: ${c.error ?? 'not issued by the cluster CA'}`,
      )
    if (c.notAfterMs <= clock())
      throw new AuthError(
        'CREDENTIAL_EXPIRED',
        `client certificate ${c.serial} expired at ${new Date(c.notAfterMs).toISOString()}`,
      )
    const projectUri = c.uris.find((u) => u.startsWith(PROJECT_USER_URI_PREFIX))
    if (projectUri !== undefined) {
      const [project, user, ...more] = projectUri.slice(PROJECT_USER_URI_PREFIX.length).split('/')
      const name = (s: string | undefined) => {
        try {
          return s === undefined ? '' : decodeURIComponent(s)
        } catch {
          return ''
        }
      }
      if (more.length > 0 || name(project) === '' || !isValidName(name(user)))
        throw new AuthError('CREDENTIAL_INVALID', `client certificate ${c.serial} names no project-user`)
      const serial = c.serial.toLowerCase().replace(/^0+(?=.)/, '')
      // The record decides, on every request: recorded, not revoked or expired, still a member.
      init
        .store()
        .checkStillValid(name(user), `project-certificate:${serial}`, clock(), mode(), name(project))
      return principalOf(
        name(user),
        'project-certificate',
        serial,
        name(project),
        () => new AuthError('CREDENTIAL_REVOKED', `the user of client certificate ${serial} was removed`),
      )
    }
    const uri = c.uris.find((u) => u.startsWith(USER_URI_PREFIX))
    // A node certificate (nodes calling each other's APIs) names no user: the request's other
    // credentials, which the node forwards, say who the caller is.
    if (uri === undefined) return undefined
    const user = decodeURIComponent(uri.slice(USER_URI_PREFIX.length))
    return principalOf(
      user,
      'certificate',
      c.serial,
      '',
      () => new AuthError('CREDENTIAL_REVOKED', `the user of client certificate ${c.serial} was removed`),
    )
  }

  const byGrant = async (grant: string, opts: AuthenticateOpts): Promise<Principal> => {
    if (init.grants === undefined)
      throw new AuthError('CREDENTIAL_INVALID', 'this node does not accept principal grants')
    const r = await verifyGrant(grant, init.grants, clock())
    if ('refused' in r)
      throw new AuthError(r.refused === 'expired' ? 'CREDENTIAL_EXPIRED' : 'CREDENTIAL_INVALID', r.reason)
    const uses =
      opts.use === undefined ? [] : Array.isArray(opts.use) ? opts.use : [opts.use as CredentialUse]
    if (uses.length === 0 || !uses.every((u) => grantCovers(r.scope, u)))
      throw new AuthError(
        'CREDENTIAL_INVALID',
        `the grant covers ${r.scope.ops.join(',')} on ${r.scope.path} only`,
      )
    const p = r.principal
    // The user may have been removed or disabled since: the record decides again, groups included.
    const u = init.store().user(p.user)
    if (u === undefined) {
      if (mode() === 'secure')
        throw new AuthError('CREDENTIAL_REVOKED', `the user ${p.user} of the grant was removed`)
      return { ...p, groups: [], superuser: init.isSuperuser(p.user, []) }
    }
    return principalOf(
      p.user,
      'assertion',
      p.credentialId,
      p.project ?? '',
      () => new AuthError('CREDENTIAL_REVOKED', 'removed'),
    )
  }

  const simple = (name: string | undefined): Principal => {
    const user = name === undefined || name === '' ? ANONYMOUS_USER : name
    if (!SIMPLE_NAME_RE.test(user))
      throw new AuthError(
        'CREDENTIAL_INVALID',
        `user.name ${JSON.stringify(user.slice(0, 64))} is not a user name`,
      )
    const u = init.store().user(user)
    if (u?.disabled) throw new AuthError('USER_DISABLED', `user ${user} is disabled`)
    const groups = u?.groups ?? []
    return { user, groups, via: 'simple', superuser: init.isSuperuser(user, groups) }
  }

  return {
    mode,
    recheck(p) {
      // A bare {user, groups} (an internal caller, a test) names no credential to re-check.
      if (typeof (p as Partial<Principal>).via !== 'string') return
      init.store().checkStillValid(p.user, authViaOf(p), clock(), mode(), p.project ?? '')
    },
    async authenticate(c, opts = {}) {
      const present =
        c.certificate !== undefined ||
        c.bearer !== undefined ||
        c.basic !== undefined ||
        c.delegation !== undefined ||
        c.grant !== undefined
      if (present && init.barrier !== undefined && opts.fresh !== false) await init.barrier(opts.signal)
      // Without a barrier first (fresh: false), this replica may not have applied a credential made a
      // moment ago through another node: a refusal is checked once more after catching up (a refusal
      // that stands costs one barrier).
      const caughtUp = async <T>(check: () => T): Promise<T> => {
        try {
          return check()
        } catch (err) {
          if (!(err instanceof AuthError) || opts.fresh !== false || init.barrier === undefined) throw err
          await init.barrier(opts.signal)
          return check()
        }
      }
      if (c.certificate !== undefined) {
        const cert = c.certificate
        // A project certificate is checked against its record, made at runtime through any node.
        const project = cert.uris.some((u) => u.startsWith(PROJECT_USER_URI_PREFIX))
        const p = project ? await caughtUp(() => byCertificate(cert)) : byCertificate(cert)
        if (p !== undefined) return p
      }
      if (c.bearer !== undefined) return caughtUp(() => byKey(c.bearer!))
      if (c.basic !== undefined) return caughtUp(() => byKey(c.basic!.password, c.basic!.user))
      if (c.delegation !== undefined) {
        const d = c.delegation
        return caughtUp(() => (looksLikeApiKey(d) ? byKey(d) : byToken(d)))
      }
      if (c.grant !== undefined) {
        if (!looksLikeGrant(c.grant)) throw new AuthError('CREDENTIAL_INVALID', 'malformed principal grant')
        return byGrant(c.grant, opts)
      }
      if (mode() === 'secure') {
        if (c.userName !== undefined && c.userName !== '')
          throw new AuthError(
            'SIMPLE_AUTH_DISABLED',
            `user.name=${JSON.stringify(c.userName.slice(0, 64))} is not believed: the cluster runs secure auth (send Authorization: Bearer <key>, delegation=<token> or a client certificate)`,
          )
        return undefined
      }
      return simple(c.userName)
    },
  }
}

/** A user name in a client certificate's SAN (what the CA writes for a user certificate). */
export function userCertificateUri(user: string): string {
  if (!isValidName(user)) throw new RangeError(`not a user name: ${user}`)
  return `${USER_URI_PREFIX}${encodeURIComponent(user)}`
}

/**
 * An authenticator without a replica, for servers that have no users (in-process tests of routes):
 * simple auth only — `user.name` is believed (no name: dr.who), groups are empty, the superuser is
 * `superuser` (default `hopsd`); every other credential is refused. Never used by the daemon.
 */
export function createSimpleAuthenticator(opts: { superuser?: string } = {}): Authenticator {
  const su = opts.superuser ?? 'hopsd'
  return {
    mode: () => 'simple',
    recheck: () => undefined,
    async authenticate(c) {
      if (
        c.certificate?.uris.some(
          (u) => u.startsWith(USER_URI_PREFIX) || u.startsWith(PROJECT_USER_URI_PREFIX),
        ) ||
        c.bearer !== undefined ||
        c.basic !== undefined ||
        c.delegation !== undefined ||
        c.grant !== undefined
      )
        throw new AuthError(
          'CREDENTIAL_INVALID',
          'this server knows no keys, tokens or certificates (simple auth only)',
        )
      const user = c.userName === undefined || c.userName === '' ? ANONYMOUS_USER : c.userName
      if (!SIMPLE_NAME_RE.test(user))
        throw new AuthError(
          'CREDENTIAL_INVALID',
          `user.name ${JSON.stringify(user.slice(0, 64))} is not a user name`,
        )
      return { user, groups: [], via: 'simple', superuser: user === su }
    },
  }
}
