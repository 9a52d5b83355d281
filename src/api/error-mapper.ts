// The one place where errors become HTTP responses: `{"error":{"code","message"}}` with the status the
// error table (src/errors.ts) gives the code. Schema validation and fastify's own client errors map to
// the generic codes; anything unknown is a bug: 500 INTERNAL, details in the log, not in the body.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ERROR_TABLE, errorInfo, type ErrorCode } from '../errors.js'

export interface ErrorBody {
  error: { code: string; message: string }
}

/** Fastify's client errors (bad JSON, body too large, wrong content type) by status. */
const CODE_BY_STATUS: Readonly<Record<number, ErrorCode>> = {
  400: 'BAD_REQUEST',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  503: 'UNAVAILABLE',
}

export function mapError(err: unknown): { status: number; body: ErrorBody } {
  const fe = err as Partial<FastifyError> & { validation?: unknown }
  if (fe?.validation !== undefined) {
    return { status: 400, body: { error: { code: 'BAD_REQUEST', message: fe.message ?? 'invalid request' } } }
  }
  const { code, row } = errorInfo(err)
  if (code !== 'INTERNAL')
    return { status: row.httpStatus, body: { error: { code, message: messageOf(err) } } }
  // A fastify error with a client status (FST_ERR_CTP_*): the client's fault, say so.
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500
  const mapped = CODE_BY_STATUS[status]
  if (status >= 400 && status < 500 && mapped !== undefined) {
    return { status, body: { error: { code: mapped, message: messageOf(err) } } }
  }
  if (status >= 400 && status < 500) {
    return { status: 400, body: { error: { code: 'BAD_REQUEST', message: messageOf(err) } } }
  }
  return {
    status: ERROR_TABLE.INTERNAL.httpStatus,
    body: { error: { code: 'INTERNAL', message: 'internal error' } },
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * fastify's `frameworkErrors`: the router's own refusals (FST_ERR_BAD_URL, FST_ERR_MAX_PARAM_LENGTH)
 * answered in the API's error shape — a RemoteException on WebHDFS paths, `{"error"}` elsewhere.
 */
export function answerFrameworkError(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const fe = err as Partial<FastifyError>
  const message = messageOf(err)
  const status = fe?.statusCode === 414 ? 414 : 400
  if ((request.raw.url ?? '').startsWith('/webhdfs/')) {
    void reply
      .status(status)
      .type('application/json')
      .send({
        RemoteException: {
          exception: 'IllegalArgumentException',
          javaClassName: 'java.lang.IllegalArgumentException',
          message,
        },
      })
    return
  }
  const body: ErrorBody = { error: { code: 'BAD_REQUEST', message } }
  void reply.status(status).type('application/json').send(body)
}

/** Installs the error and not-found handlers on the root instance (children inherit them). */
export function installErrorMapper(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = mapError(err)
    if (status >= 500) request.log.error({ err }, 'request failed')
    void reply.status(status).type('application/json').send(body)
  })
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const body: ErrorBody = {
      error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url}` },
    }
    void reply.status(404).type('application/json').send(body)
  })
}

/**
 * Answers 405 with `Allow` for a path that exists for other methods (WebHDFS paths as a
 * RemoteException, as Hadoop answers).
 */
export function methodNotAllowed(
  reply: FastifyReply,
  method: string,
  path: string,
  allowed: readonly string[],
): FastifyReply {
  const message = `${method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`
  void reply.status(405).header('allow', allowed.join(', ')).type('application/json')
  if (path.startsWith('/webhdfs/'))
    return reply.send({
      RemoteException: {
        exception: 'UnsupportedOperationException',
        javaClassName: 'java.lang.UnsupportedOperationException',
        message,
      },
    })
  return reply.send({ error: { code: 'METHOD_NOT_ALLOWED', message } } satisfies ErrorBody)
}

/** JSON schema of the error body, for route schemas and the OpenAPI document. */
export const errorBodySchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'stable error code (see the README error reference)' },
        message: { type: 'string' },
      },
    },
  },
} as const
