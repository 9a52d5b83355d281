import { CommandRejected } from '../meta/index.js'

/**
 * Errors of authentication and of the users/keys/tokens state, one row per stable code: the HTTP
 * status, and how WebHDFS reports it (Hadoop's exception simple name and javaClassName: a token
 * failure is Hadoop's `InvalidToken`, which Hadoop's own client answers by fetching a new token).
 * Every 401 says why in its message (no credentials, malformed, unknown, expired, revoked, disabled).
 */
export const AUTH_ERRORS = {
  UNAUTHENTICATED: row(
    401,
    'SecurityException',
    'java.lang.SecurityException',
    'The request carries no credentials and the route needs a caller (send Authorization: Bearer <key>, a delegation token or a client certificate).',
  ),
  CREDENTIAL_INVALID: row(
    401,
    'SecurityException',
    'java.lang.SecurityException',
    'A key, token, grant or certificate that is malformed, unknown, or whose secret or signature does not match.',
  ),
  CREDENTIAL_EXPIRED: row(
    401,
    'InvalidToken',
    'org.apache.hadoop.security.token.SecretManager$InvalidToken',
    'The key, token, grant or certificate has expired.',
  ),
  CREDENTIAL_REVOKED: row(
    401,
    'InvalidToken',
    'org.apache.hadoop.security.token.SecretManager$InvalidToken',
    'The key or token was revoked (or cancelled), or its user was removed.',
  ),
  USER_DISABLED: row(
    401,
    'SecurityException',
    'java.lang.SecurityException',
    'The credential is valid but its user is disabled.',
  ),
  SIMPLE_AUTH_DISABLED: row(
    401,
    'SecurityException',
    'java.lang.SecurityException',
    'WebHDFS user.name is not believed: the cluster runs secure auth (send a key, token or certificate).',
  ),
  TOO_MANY_AUTH_FAILURES: row(
    429,
    'RetriableException',
    'org.apache.hadoop.ipc.RetriableException',
    'Too many failed authentications from this source address; retry after the Retry-After seconds.',
  ),
  TOKEN_INVALID: row(
    403,
    'InvalidToken',
    'org.apache.hadoop.security.token.SecretManager$InvalidToken',
    'The delegation token given to RENEW/CANCELDELEGATIONTOKEN is malformed, unknown, expired or not yours to renew or cancel.',
  ),
  USER_NOT_FOUND: row(404, 'IOException', 'java.io.IOException', 'No user of that name.'),
  USER_EXISTS: row(409, 'IOException', 'java.io.IOException', 'A user of that name exists already.'),
  KEY_NOT_FOUND: row(404, 'IOException', 'java.io.IOException', 'No API key with that id (or not yours).'),
  AUTH_LIMIT: row(
    409,
    'IOException',
    'java.io.IOException',
    'A limit or rule of users, keys and tokens: too many users, keys or live tokens per user; removing or disabling oneself; a project key made by a non-admin; a principal acting in a project making a key for none or another project.',
  ),
  ADMIN_EXISTS: row(
    409,
    'IOException',
    'java.io.IOException',
    'The cluster created its admin user and key already.',
  ),
} as const

export type AuthErrorCode = keyof typeof AUTH_ERRORS

export interface AuthErrorRow {
  readonly httpStatus: number
  readonly exception: string
  readonly javaClassName: string
  readonly description: string
}

function row(
  httpStatus: number,
  exception: string,
  javaClassName: string,
  description: string,
): AuthErrorRow {
  return { httpStatus, exception, javaClassName, description }
}

/**
 * A typed auth error. Thrown inside apply() it refuses the command (extends CommandRejected); thrown by
 * the authenticator it becomes the 401 (429, 403, ...) of its row. Branch on `code`.
 */
export class AuthError extends CommandRejected {
  declare readonly code: AuthErrorCode
  /** TOO_MANY_AUTH_FAILURES: seconds until the source may try again. */
  readonly retryAfterS?: number

  constructor(code: AuthErrorCode, message?: string, opts: { retryAfterS?: number } = {}) {
    super(code, message ?? AUTH_ERRORS[code].description)
    if (opts.retryAfterS !== undefined) this.retryAfterS = opts.retryAfterS
  }

  get httpStatus(): number {
    return AUTH_ERRORS[this.code].httpStatus
  }

  /** The WebHDFS `RemoteException` body for this error. */
  toRemoteException(): { RemoteException: { exception: string; javaClassName: string; message: string } } {
    const r = AUTH_ERRORS[this.code]
    return {
      RemoteException: { exception: r.exception, javaClassName: r.javaClassName, message: this.message },
    }
  }
}

export function isAuthError(err: unknown, code?: AuthErrorCode): err is AuthError {
  return err instanceof AuthError && (code === undefined || err.code === code)
}

export function isAuthErrorCode(code: string): code is AuthErrorCode {
  return Object.hasOwn(AUTH_ERRORS, code)
}

/** The AuthError for a refused command's `{ code, message }`, or undefined when the code is not auth's. */
export function authErrorFromResult(code: string, message: string): AuthError | undefined {
  return isAuthErrorCode(code) ? new AuthError(code, message) : undefined
}
