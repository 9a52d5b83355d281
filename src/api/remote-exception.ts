/**
 * Errors as WebHDFS answers them: `{"RemoteException":{exception, javaClassName, message}}`, with the
 * HTTP status of the one error table (src/errors.ts) — the same status the JSON routes answer (the
 * API's error mapper). Hadoop's clients rethrow the Java exception named by `javaClassName`:
 *  - file-system and auth codes carry their own exception names (src/fs/errors.ts, src/auth/errors.ts:
 *    a token refused is Hadoop's InvalidToken); an admin-only refusal is an AccessControlException;
 *  - other known codes get one by status: 503/504 RetriableException (the client may retry: no leader
 *    yet, a proposal dropped or timed out, a peer that did not answer), 400 IllegalArgumentException,
 *    404 FileNotFoundException, anything else IOException;
 *  - an error a peer answered with (REMOTE_ERROR) is told by the peer's code when the table knows it;
 *  - unknown errors are bugs: 500 RuntimeException "internal error" (the route logs the details).
 */
import { AUTH_ERRORS } from '../auth/index.js'
import { ERROR_TABLE, errorInfo, isErrorCode } from '../errors.js'
import { FS_ERRORS } from '../fs/index.js'

export interface RemoteExceptionBody {
  RemoteException: { exception: string; javaClassName: string; message: string }
}

const RETRIABLE = ['RetriableException', 'org.apache.hadoop.ipc.RetriableException'] as const
const ILLEGAL_ARGUMENT = ['IllegalArgumentException', 'java.lang.IllegalArgumentException'] as const
const NOT_FOUND = ['FileNotFoundException', 'java.io.FileNotFoundException'] as const
const IO = ['IOException', 'java.io.IOException'] as const
const ACCESS_CONTROL = [
  'AccessControlException',
  'org.apache.hadoop.security.AccessControlException',
] as const

/** The RemoteException body and status for any error a WebHDFS or datanode route throws. */
export function toRemoteException(err: unknown): { status: number; body: RemoteExceptionBody } {
  const e = err as {
    validation?: unknown
    statusCode?: number
    code?: unknown
    remoteCode?: unknown
    message?: unknown
  } | null
  const message = typeof e?.message === 'string' ? e.message : String(err)
  const remote = (status: number, [exception, javaClassName]: readonly [string, string], msg = message) => ({
    status,
    body: { RemoteException: { exception, javaClassName, message: msg } },
  })
  // fastify's own client errors: schema validation, a body too large or of a type not accepted.
  if (e?.validation !== undefined || e?.statusCode === 400) return remote(400, ILLEGAL_ARGUMENT)
  if (e?.statusCode === 413 && !isErrorCode(String(e?.code))) return remote(413, IO)
  if (e?.statusCode === 415 && !isErrorCode(String(e?.code))) return remote(415, ILLEGAL_ARGUMENT)
  const forwarded =
    e?.code === 'REMOTE_ERROR' && typeof e.remoteCode === 'string' && isErrorCode(e.remoteCode)
      ? { code: e.remoteCode }
      : err
  const { code, row } = errorInfo(forwarded)
  if (code === 'INTERNAL')
    return remote(
      ERROR_TABLE.INTERNAL.httpStatus,
      ['RuntimeException', 'java.lang.RuntimeException'],
      'internal error',
    )
  if (Object.hasOwn(FS_ERRORS, code)) {
    const fs = FS_ERRORS[code as keyof typeof FS_ERRORS]
    return remote(row.httpStatus, [fs.exception, fs.javaClassName])
  }
  if (Object.hasOwn(AUTH_ERRORS, code)) {
    const a = AUTH_ERRORS[code as keyof typeof AUTH_ERRORS]
    return remote(row.httpStatus, [a.exception, a.javaClassName])
  }
  if (code === 'SUPERUSER_REQUIRED') return remote(row.httpStatus, ACCESS_CONTROL)
  const status = row.httpStatus
  if (status === 503 || status === 504) return remote(status, RETRIABLE)
  if (status === 400) return remote(status, ILLEGAL_ARGUMENT)
  if (status === 404) return remote(status, NOT_FOUND)
  return remote(status, IO)
}
