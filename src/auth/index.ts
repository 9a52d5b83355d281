/**
 * Who is calling: users, API keys and WebHDFS delegation tokens in the replicated state, the
 * authenticator that turns a request's credentials into a verified {@link Principal}, principal grants
 * that carry a principal between nodes with proof, authorization helpers, the audit trail and the
 * limiter of failed authentications. Edges (src/api's one hook) authenticate; areas authorize on the
 * principal they are given.
 *
 * @example
 * ```ts
 * import { createLocalGroup, createMetaStateMachine } from '../meta/index.js'
 * import { authModule, createAuthService, createLocalAuthenticator, clusterPrincipal, type AuthStore } from '../auth/index.js'
 *
 * const sm = createMetaStateMachine({ modules: [authModule()] })
 * const group = createLocalGroup(sm)
 * const auth = createAuthService({ consensus: group, stateMachine: sm, nodeId: 'n1' })
 * const { key: adminKey } = await auth.bootstrap(clusterPrincipal(), 'secure')
 * const authn = createLocalAuthenticator({
 *   store: () => sm.module<AuthStore>('auth'),
 *   settings: () => sm.settings(),
 *   isSuperuser: (u, g) => sm.isSuperuser(u, g),
 *   bootstrapMode: 'secure',
 *   barrier: (signal) => group.readBarrier({ signal }),
 * })
 * const admin = (await authn.authenticate({ bearer: adminKey }))! // { user: 'admin', groups: ['admin'], superuser: true, ... }
 * await auth.addUser(admin, 'alice', ['staff'])
 * const { key } = await auth.createKey(admin, { user: 'alice', name: 'laptop', expiresS: 86_400 })
 * await authn.authenticate({ bearer: key })          // → alice, groups ['staff'], via 'key'
 * await authn.authenticate({ userName: 'admin' })    // throws AuthError SIMPLE_AUTH_DISABLED (401)
 * ```
 */
export {
  AUTH_ERRORS,
  AuthError,
  authErrorFromResult,
  isAuthError,
  isAuthErrorCode,
  type AuthErrorCode,
  type AuthErrorRow,
} from './errors.js'
export {
  ANONYMOUS_USER,
  authViaOf,
  isValidName,
  NAME_PATTERN,
  type Principal,
  type PrincipalVia,
} from './principal.js'
export {
  generateApiKey,
  generatePrefixedKey,
  looksLikeApiKey,
  parseApiKey,
  parsePrefixedKey,
  secretMatches,
  API_KEY_PREFIX,
  type NewApiKey,
} from './api-key.js'
export {
  decodeTokenUrlString,
  encodeTokenUrlString,
  SWEBHDFS_TOKEN_KIND,
  WEBHDFS_TOKEN_KIND,
  type HadoopToken,
  type HadoopTokenIdentifier,
} from './hadoop-token.js'
export {
  ADMIN_USER,
  AuthStore,
  authModule,
  KEYS_PER_USER_MAX,
  TOKEN_MAX_LIFETIME_MS,
  TOKEN_RENEW_INTERVAL_MS,
  TOKENS_PER_USER_MAX,
  type ApiKeyRecord,
  type AuthOpResults,
  type DelegationTokenRecord,
  type UserRecord,
} from './store.js'
export {
  createLocalAuthenticator,
  createSimpleAuthenticator,
  PROJECT_USER_URI_PREFIX,
  userCertificateUri,
  type AuthenticateOpts,
  type Authenticator,
  type ClientCertificate,
  type CredentialUse,
  type Credentials,
  type LocalAuthenticatorInit,
} from './authenticator.js'
export {
  grantCovers,
  looksLikeGrant,
  signGrant,
  verifyGrant,
  GRANT_CHARS_MAX,
  type GrantClaims,
  type GrantScope,
  type GrantSigner,
  type GrantTerms,
  type GrantVerifier,
} from './grant.js'
export {
  AuthService,
  commandIdentity,
  createAuthService,
  errorOfResult,
  requireAdmin,
  KEY_DEFAULT_EXPIRES_S,
  KEY_EXPIRES_S_MAX,
  type ApiKeyInfo,
  type AuthServiceInit,
  type CreatedKey,
} from './service.js'
export { clusterPrincipal, requireCaller } from './authorize.js'
export { createFailureLimiter, type FailureLimiter, type FailureLimiterInit } from './rate-limit.js'
export {
  AUDIT_KINDS,
  createAuditLog,
  type AuditEvent,
  type AuditInput,
  type AuditKind,
  type AuditLog,
  type AuditLogInit,
} from './audit.js'
export { ADMIN_GROUP } from '../meta/index.js'
