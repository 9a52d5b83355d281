/**
 * The datanode's HTTP route: WebHDFS CREATE/APPEND step two (`PUT|POST /api/v1/datanode/write/<path>`,
 * the Location a metadata node signed in step one). The route is open to the API's auth hook: the
 * Location's token authenticates it, and its `hopsd.grant` (the metadata node's signed grant for the
 * writer) goes with every command the write proposes. The body streams into the datanode's write path
 * (src/fs/datanode); errors answer as WebHDFS `RemoteException`s with the error table's status.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Datanode } from '../../fs/datanode/index.js'
import { FsError } from '../../fs/index.js'
import type { ApiRoutes } from '../server.js'
import { toRemoteException } from '../remote-exception.js'
import { createTokenSigner, signedFields } from './webhdfs.js'

export interface DatanodeRoutesDeps {
  readonly datanode: Pick<Datanode, 'write' | 'inlineThreshold'>
  /** The redirect-token key shared by the cluster (webhdfsTokenKey of the swarm key). */
  readonly tokenKey: Uint8Array
  /** Wall clock (ms) the tokens' expiry is checked against. */
  readonly clock: () => number
}

/** Lifetime of a redirect token, as WebHDFS step one signs it. */
const TOKEN_TTL_MS = 60_000

export function datanodeRoutes(deps: DatanodeRoutesDeps): ApiRoutes {
  const tokens = createTokenSigner(deps.tokenKey, TOKEN_TTL_MS, deps.clock)
  return {
    name: 'datanode',
    register(app: FastifyInstance) {
      app.removeAllContentTypeParsers()
      app.addContentTypeParser('*', (_req, payload, done) => done(null, payload))
      app.setErrorHandler((err: unknown, _req: FastifyRequest, reply: FastifyReply) => {
        const { status, body } = toRemoteException(err)
        void reply.status(status).type('application/json').send(body)
      })
      const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
        const q = req.query as Record<string, string | undefined>
        const op = (q['op'] ?? '').toUpperCase()
        if (op !== 'CREATE' && op !== 'APPEND')
          throw new FsError('INVALID_ARGUMENT', `the data route takes CREATE or APPEND, not ${op}`)
        const path = '/' + ((req.params as { '*'?: string })['*'] ?? '')
        const user = tokens.verify(q['hopsd.token'] ?? '', signedFields(op, path, q))
        const grant = q['hopsd.grant'] || undefined
        const int = (k: string, d: number): number => (q[k] === undefined || q[k] === '' ? d : Number(q[k]))
        await deps.datanode.write({
          op,
          path,
          user,
          grant,
          params: {
            overwrite: q['overwrite'] === 'true',
            permission: q['permission'] ? Number.parseInt(q['permission'], 8) : 0o644,
            replication: int('replication', 0),
            blockSize: int('blocksize', 0),
          },
          body: (req.body as AsyncIterable<Buffer> | undefined) ?? (async function* () {})(),
          inline: Number(q['hopsd.inline'] ?? deps.datanode.inlineThreshold()),
        })
        if (op === 'CREATE')
          return reply
            .status(201)
            .header('location', `hdfs://${req.headers.host ?? 'localhost'}${encodeURI(path)}`)
            .header('content-length', 0)
            .send()
        return reply.status(200).header('content-length', 0).send()
      }
      const schema = {
        summary: 'WebHDFS CREATE/APPEND step two on a datanode (signed Location from the metadata node)',
        tags: ['webhdfs'],
        response: { default: { description: 'empty; RemoteException JSON on errors' } },
      }
      app.route({
        method: ['PUT', 'POST'],
        url: '/api/v1/datanode/write/*',
        schema,
        // Authenticated by its signed Location (token), not by the hook: clients send no credential here.
        config: { auth: 'public' },
        handler,
      })
    },
  }
}
