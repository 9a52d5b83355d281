/**
 * The datanode's HTTP route: the data step of WebHDFS CREATE/APPEND (`PUT|POST
 * /api/v1/datanode/write/<path>?op=OP&hopsd.token=…`, the Location a metadata node signed in step one).
 * The route is open to the API's auth hook: the token is the whole request. It names the caller, the
 * op, the path, every create option, the inline threshold, this route and this node (./write-token.ts),
 * and goes with every command and block allocation the write makes, so that the metadata group runs
 * them as the caller it names. Anything else in the query is refused, so nothing about a write can be
 * changed on its second hop. A CREATE token works once; an APPEND token takes every POST within its
 * lifetime, one after the other in arrival order (fsspec posts each chunk of a file to the one Location
 * it got). The body streams into the datanode's write path
 * (src/fs/datanode); errors answer as WebHDFS `RemoteException`s with the error table's status.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Datanode } from '../../fs/datanode/index.js'
import { FsError } from '../../fs/index.js'
import type { ApiRoutes } from '../server.js'
import { toRemoteException } from '../remote-exception.js'
import { WebHdfsQuery } from './webhdfs-params.js'
import { checkDataStepQuery, type WriteTokens } from './write-token.js'

export interface DatanodeRoutesDeps {
  readonly datanode: Pick<Datanode, 'write'>
  /** This node's id: tokens for another node are refused. */
  readonly nodeId: string
  /** The cluster's write tokens (the same key as the metadata nodes that sign step one). */
  readonly tokens: WriteTokens
}

const remoteException = {
  description: "Hadoop's RemoteException",
  type: 'object',
  required: ['RemoteException'],
  properties: {
    RemoteException: {
      type: 'object',
      required: ['exception', 'javaClassName', 'message'],
      properties: {
        exception: { type: 'string' },
        javaClassName: { type: 'string' },
        message: { type: 'string' },
      },
    },
  },
} as const

export function datanodeRoutes(deps: DatanodeRoutesDeps): ApiRoutes {
  return {
    name: 'datanode',
    register(app: FastifyInstance) {
      app.removeAllContentTypeParsers()
      app.addContentTypeParser('*', (_req, payload, done) => done(null, payload))
      app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
        const { status, body } = toRemoteException(err)
        if (status >= 500) req.log.error({ err }, 'datanode write failed')
        // A body left unread is not drained: the connection closes after the answer.
        if (!req.raw.complete) void reply.header('connection', 'close')
        void reply.status(status).type('application/json').send(body)
      })
      const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
        const q = WebHdfsQuery.fromUrl(req.raw.url ?? req.url)
        const op = q.op()
        if ((op !== 'CREATE' || req.method !== 'PUT') && (op !== 'APPEND' || req.method !== 'POST'))
          throw new FsError(
            'INVALID_ARGUMENT',
            `the data route takes PUT CREATE or POST APPEND, not ${req.method} ${op}`,
          )
        const path = '/' + ((req.params as { '*'?: string })['*'] ?? '')
        const token = q.string('hopsd.token')
        if (token === undefined)
          throw new FsError('ACCESS_DENIED', 'the data route needs the hopsd.token of step one')
        const grant = await deps.tokens.verify(
          token,
          { route: 'datanode', node: deps.nodeId, op, path },
          (g) => checkDataStepQuery(q, g),
        )
        const write = (): Promise<void> =>
          deps.datanode.write({
            op: grant.op,
            path: grant.path,
            user: grant.caller.user,
            groups: grant.caller.groups,
            grant: grant.token,
            ...(grant.create === undefined ? {} : { create: grant.create }),
            ...(grant.fileId === undefined ? {} : { fileId: grant.fileId }),
            inline: grant.inlineThreshold,
            noLocalWrite: grant.noLocalWrite,
            body: (req.body as AsyncIterable<Buffer> | undefined) ?? (async function* () {})(),
          })
        if (op === 'APPEND') await deps.tokens.serialize(grant, write)
        else await write()
        if (op === 'CREATE')
          return reply
            .status(201)
            .header('location', `hdfs://${req.headers.host ?? 'localhost'}${encodeURI(path)}`)
            .header('content-length', 0)
            .send()
        return reply.status(200).header('content-length', 0).send()
      }
      const schema = {
        summary: 'WebHDFS CREATE/APPEND data step on a datanode (the Location signed in step one)',
        tags: ['webhdfs'],
        querystring: {
          type: 'object',
          required: ['op', 'hopsd.token'],
          properties: {
            op: { type: 'string', enum: ['CREATE', 'APPEND'], description: 'PUT CREATE or POST APPEND' },
            'hopsd.token': { type: 'string', description: 'the token of the Location step one answered' },
          },
        },
        requestBody: {
          description: 'the bytes of the file (CREATE) or to append (APPEND)',
          content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
        },
        response: {
          200: { description: 'APPEND: the bytes are appended (no body)' },
          201: {
            description: 'CREATE: the file is written (no body)',
            headers: { Location: { schema: { type: 'string' } } },
          },
          '4xx': remoteException,
          '5xx': remoteException,
        },
      }
      app.route({
        method: ['PUT', 'POST'],
        url: '/api/v1/datanode/write/*',
        schema,
        // The query is parsed by WebHdfsQuery; the schema documents it.
        validatorCompiler: () => () => true,
        // Authenticated by its signed Location (the token), not by the hook: clients send no credential here.
        config: { auth: 'public' },
        handler,
      })
    },
  }
}
