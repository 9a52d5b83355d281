/**
 * The native file-system API under /api/v1/fs/ for what WebHDFS lacks:
 * - `GET  /api/v1/fs/stat?path=`      the status, with `inlined` (later: block locations with zones)
 * - `PUT  /api/v1/fs/files?path=`     a whole small file in one request (create+write+close: one Raft command);
 *                                     `clientId` + `seq` make a retry safe: applied at most once, through any
 *                                     node, and a retry answers the first try's result
 * - `GET  /api/v1/fs/files?path=`     its bytes (offset, length)
 * - `GET  /api/v1/fs/changes?since=`  the change log after a Raft index: long-poll (`waitMs`), or
 *                                     server-sent events with `Accept: text/event-stream`
 * The caller is the principal the API's auth hook verified (`request.caller`); `user.name` counts only
 * under simple auth, and only through that hook. Errors go through the
 * API's one mapper (src/api/error-mapper.ts): `{"error":{"code","message"}}` with the joined table's
 * status (FS_ERRORS' rows for fs codes); only the /webhdfs routes answer RemoteException, as WebHDFS
 * requires.
 */
import { sendBlocked, type BlockReads } from './block-reads.js'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Caller, FsService } from '../../fs/index.js'
import { callerOf as verifiedCaller } from '../auth-hook.js'
import type { ApiRoutes } from '../server.js'
import { HopsError } from '../../errors.js'

export interface FsRoutesDeps {
  readonly fs: FsService
  /** Files in blocks: GET /api/v1/fs/files streams them from the replicas. Without it all are inline. */
  readonly blocks?: BlockReads
  /** Largest file body accepted (default 17 MiB: above any inlineThreshold, so the fs says why). */
  readonly bodyLimitBytes?: number
}

/** Long-poll bound. */
const WAIT_MS_MAX = 30_000
const CHANGES_LIMIT_MAX = 10_000
/** Idempotency client ids are kept in every replica's session table: keep them short. */
const CLIENT_ID_CHARS_MAX = 128
/** Integers past 2^53 do not survive JSON numbers: the schemas refuse them with 400. */
const SAFE_MAX = Number.MAX_SAFE_INTEGER

const errorSchema = {
  type: 'object',
  properties: {
    error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
  },
} as const

const statusSchema = {
  type: 'object',
  required: ['path', 'fileId', 'type', 'length', 'permission', 'owner', 'group', 'inlined'],
  properties: {
    path: { type: 'string' },
    fileId: { type: 'integer' },
    type: { type: 'string', enum: ['FILE', 'DIRECTORY'] },
    length: { type: 'integer' },
    permission: { type: 'string', description: 'octal' },
    owner: { type: 'string' },
    group: { type: 'string' },
    modificationTime: { type: 'integer' },
    accessTime: { type: 'integer' },
    replication: { type: 'integer' },
    blockSize: { type: 'integer' },
    childrenNum: { type: 'integer' },
    inlined: { type: 'boolean', description: 'the content lives inside the metadata (small file)' },
    leaseHolder: { type: ['string', 'null'], description: 'the writer holding the file open, if any' },
  },
} as const

const eventSchema = {
  type: 'object',
  properties: {
    index: { type: 'integer', description: 'Raft index of the command' },
    op: { type: 'string' },
    path: { type: 'string' },
    dst: { type: 'string' },
    inodeId: { type: 'integer' },
    user: { type: 'string' },
    timeMs: { type: 'integer' },
  },
} as const

const userNameParam = {
  type: 'string',
  description: 'the caller under simple auth only (read by the auth hook, never by the route)',
} as const

const pathQuery = {
  type: 'object',
  required: ['path'],
  properties: { path: { type: 'string' }, 'user.name': userNameParam, stale: { type: 'boolean' } },
} as const

export function fsRoutes(deps: FsRoutesDeps): ApiRoutes {
  const { fs } = deps
  return {
    name: 'fs',
    register(app: FastifyInstance) {
      app.addContentTypeParser(
        'application/octet-stream',
        { parseAs: 'buffer', bodyLimit: deps.bodyLimitBytes ?? 17 * 1024 * 1024 },
        (_req, body, done) => done(null, body),
      )
      app.get(
        '/api/v1/fs/stat',
        {
          // The fs service re-checks the caller after its read barrier, or at commit.
          config: { authFresh: false },
          schema: {
            summary: 'Status of a path, with whether the file is inlined',
            tags: ['fs'],
            querystring: pathQuery,
            response: { 200: statusSchema, '4xx': errorSchema },
          },
        },
        async (request) => {
          const q = request.query as { path: string; stale?: boolean }
          const s = await fs.stat(callerOf(request), q.path, { stale: q.stale })
          return { ...s, path: q.path, permission: s.permission.toString(8) }
        },
      )

      app.put(
        '/api/v1/fs/files',
        {
          // The fs service re-checks the caller after its read barrier, or at commit.
          config: { authFresh: false },
          schema: {
            summary: 'Write a whole small file in one request (one Raft command)',
            tags: ['fs'],
            requestBody: {
              description: 'the file bytes (at most inlineThreshold)',
              content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
            },
            querystring: {
              type: 'object',
              required: ['path'],
              properties: {
                path: { type: 'string' },
                'user.name': userNameParam,
                overwrite: { type: 'boolean', default: false },
                permission: { type: 'string', pattern: '^[0-1]?[0-7]{1,3}$' },
                replication: { type: 'integer', minimum: 1, maximum: 512 },
                clientId: {
                  type: 'string',
                  minLength: 1,
                  maxLength: CLIENT_ID_CHARS_MAX,
                  description: 'idempotency: the writer id (a random UUID per client), with `seq`',
                },
                seq: {
                  type: 'integer',
                  minimum: 1,
                  maximum: SAFE_MAX,
                  description:
                    'idempotency: the number of this write, increasing per clientId; a retry repeats it',
                },
              },
              dependencies: { clientId: ['seq'], seq: ['clientId'] },
            },
            response: {
              201: {
                type: 'object',
                required: ['fileId', 'size'],
                properties: { fileId: { type: 'integer' }, size: { type: 'integer' } },
              },
              '4xx': errorSchema,
            },
          },
        },
        async (request, reply) => {
          const q = request.query as {
            path: string
            overwrite: boolean
            permission?: string
            replication?: number
            clientId?: string
            seq?: number
          }
          const body = request.body
          // Only raw bytes are a file: a body another parser read (text/plain as a string, JSON) is
          // refused rather than written as an empty file. No body at all is an empty file.
          if (body !== undefined && body !== null && !(body instanceof Buffer))
            throw new HopsError(
              'UNSUPPORTED_MEDIA_TYPE',
              `a file's bytes are sent as application/octet-stream, not ${request.headers['content-type']}`,
            )
          const data =
            body instanceof Buffer
              ? new Uint8Array(body.buffer, body.byteOffset, body.length)
              : new Uint8Array(0)
          const r = await fs.create(callerOf(request), q.path, data, {
            overwrite: q.overwrite,
            permission: q.permission === undefined ? undefined : Number.parseInt(q.permission, 8),
            replication: q.replication,
            session: q.clientId === undefined ? undefined : { clientId: q.clientId, seq: q.seq! },
          })
          return reply.status(201).send(r)
        },
      )

      app.get(
        '/api/v1/fs/files',
        {
          // The fs service re-checks the caller after its read barrier, or at commit.
          config: { authFresh: false },
          schema: {
            summary: "A file's bytes",
            tags: ['fs'],
            querystring: {
              type: 'object',
              required: ['path'],
              properties: {
                path: { type: 'string' },
                'user.name': userNameParam,
                offset: { type: 'integer', minimum: 0, maximum: SAFE_MAX },
                length: { type: 'integer', minimum: 0, maximum: SAFE_MAX },
                stale: { type: 'boolean' },
              },
            },
            response: {
              200: {
                description: 'the bytes',
                content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
              },
              '4xx': errorSchema,
            },
          },
        },
        async (request, reply) => {
          const q = request.query as { path: string; offset?: number; length?: number; stale?: boolean }
          const caller = callerOf(request)
          const blocks = deps.blocks
          // Reads from remote replicas end when the client goes away.
          const ac = new AbortController()
          reply.raw.once('close', () => {
            if (!reply.raw.writableFinished) ac.abort()
          })
          if (
            blocks &&
            (await sendBlocked(reply, (b) =>
              blocks.open(caller, q.path, q.offset ?? 0, q.length ?? -1, ac.signal, b, { stale: q.stale }),
            ))
          )
            return reply
          const data = await fs.read(caller, q.path, q)
          return reply
            .type('application/octet-stream')
            .header('content-length', data.length)
            .send(Buffer.from(data.buffer, data.byteOffset, data.length))
        },
      )

      app.get(
        '/api/v1/fs/changes',
        {
          // The fs service re-checks the caller after its read barrier, or at commit.
          config: { authFresh: false },
          schema: {
            summary:
              'Namespace change events after a Raft index that the caller may see (long-poll, or server-sent events)',
            tags: ['fs'],
            querystring: {
              type: 'object',
              properties: {
                since: { type: 'integer', minimum: 0, maximum: SAFE_MAX, default: 0 },
                limit: { type: 'integer', minimum: 1, maximum: CHANGES_LIMIT_MAX, default: 1000 },
                waitMs: {
                  type: 'integer',
                  minimum: 0,
                  maximum: WAIT_MS_MAX,
                  default: 0,
                  description: 'long-poll: wait this long for an event when none is there yet',
                },
                stale: {
                  type: 'boolean',
                  description: "this replica's events without a read barrier (may lag the leader)",
                },
              },
            },
            response: {
              200: {
                type: 'object',
                required: ['events', 'truncated', 'lastIndex'],
                properties: {
                  events: { type: 'array', items: eventSchema },
                  truncated: {
                    type: 'boolean',
                    description: 'events after `since` were already dropped from the bounded log',
                  },
                  lastIndex: { type: 'integer' },
                  nextSince: {
                    type: 'integer',
                    description:
                      'where to continue (`since` of the next call): past the events hidden from the caller',
                  },
                },
              },
              '4xx': errorSchema,
            },
          },
        },
        async (request, reply) => {
          const q = request.query as { since: number; limit: number; waitMs: number; stale?: boolean }
          const caller = callerOf(request)
          if ((request.headers.accept ?? '').includes('text/event-stream'))
            return streamChanges(fs, caller, q.since, request, reply)
          if (q.waitMs > 0) {
            const ac = new AbortController()
            const timer = setTimeout(() => ac.abort(), q.waitMs)
            const onClose = (): void => ac.abort()
            request.raw.once('close', onClose)
            try {
              await fs.waitForChanges(q.since, ac.signal)
            } finally {
              clearTimeout(timer)
              request.raw.off('close', onClose)
            }
          }
          return fs.changesFor(caller, q.since, q.limit, { stale: q.stale })
        },
      )
    },
  }
}

/** A comment line every this often keeps an idle stream's connection from the server's idle timeout. */
const SSE_KEEPALIVE_MS = 15_000

/**
 * Server-sent events: one `data:` line per change event, `id:` = Raft index, until the client leaves.
 * Respects backpressure: a batch is written only once the socket took the last one (a slow reader holds
 * one batch in memory, never the log), and a reader gone quiet is dropped by the idle timeout.
 */
async function streamChanges(
  fs: FsService,
  caller: Caller,
  since: number,
  _request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  // The first batch after a read barrier (read-your-writes; a failure is still an ordinary error
  // answer), then the stream follows this replica's log.
  let batch = await fs.changesFor(caller, since, 1000)
  reply.hijack()
  const res = reply.raw
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  })
  const ac = new AbortController()
  res.once('close', () => ac.abort())
  const keepalive = setInterval(() => {
    if (!res.writableNeedDrain) res.write(': keepalive\n\n')
  }, SSE_KEEPALIVE_MS)
  let cursor = since
  try {
    for (;;) {
      let text = batch.truncated ? `event: truncated\ndata: {"since":${cursor}}\n\n` : ''
      for (const e of batch.events) text += `id: ${e.index}\ndata: ${JSON.stringify(e)}\n\n`
      if (text !== '' && !res.write(text)) await drainedOrClosed(res, ac.signal)
      // Past the events the caller may not see too: a reader never spins on a page of hidden events.
      const progressed = batch.nextSince > cursor
      cursor = batch.nextSince
      if (!progressed) await fs.waitForChanges(cursor, ac.signal)
      if (ac.signal.aborted) break
      batch = await fs.changesFor(caller, cursor, 1000, { stale: true })
    }
  } finally {
    clearInterval(keepalive)
    res.end()
  }
}

function drainedOrClosed(res: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      signal.removeEventListener('abort', done)
      resolve()
    }
    res.once('drain', done)
    signal.addEventListener('abort', done, { once: true })
  })
}

/** The verified caller (the auth hook's; these routes need one). */
function callerOf(request: FastifyRequest): Caller {
  return verifiedCaller(request)
}
