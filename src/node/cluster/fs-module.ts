/**
 * The `fs` module (every node). A metadata node serves the file-system routes (WebHDFS and
 * /api/v1/fs) from its own replica: writes go through Raft, reads are linearizable by a read barrier.
 * A node without the metadata role has no replica: it forwards those routes over HTTP to a live
 * metadata node (its own zone first), so clients may still talk to any node. The forwarded request
 * carries the metadata node's address as Host, so WebHDFS redirects point straight at the node that
 * signed them. It also carries the caller's credential as it came (headers and parameters): the
 * metadata node authenticates the caller itself; this node has refused bad credentials already
 * (its own auth hook, with the per-source limit), and lets requests without any through.
 */
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Gauge } from 'prom-client'
import {
  createWriteTokens,
  fsRoutes,
  mapError,
  toRemoteException,
  webhdfsRoutes,
  type ApiRoutes,
} from '../../api/index.js'
import { HopsError } from '../../errors.js'
import { createFsService, createSubtreePurger, type FsService, type Namespace } from '../../fs/index.js'
import type { Principal } from '../../auth/index.js'
import { requireService, type NodeModule } from '../module.js'
import type { ClusterClient } from './client-module.js'
import { grantSigner, grantVerifierOf } from './trust.js'
import { parseHostPort } from '../p2p/index.js'

export function fsModule(): NodeModule<'fs'> {
  return {
    name: 'fs',
    create(components) {
      const local = components.services.metadata
      if (local !== undefined) {
        const fs: FsService = createFsService({
          consensus: {
            propose: (cmd, opts) => local.group.propose(cmd, opts),
            readBarrier: (opts) => local.group.readBarrier(opts),
          },
          stateMachine: local.stateMachine,
          // The API authenticated the caller without a barrier (authFresh: false): check again after ours.
          recheck: (caller) => local.authenticator.recheck(caller as Principal),
        })
        const blocks = components.services.blockmanager
        const webhdfs = webhdfsRoutes({
          fs,
          blocks,
          nodeId: components.identity.id,
          // Write Locations are this node's grants (signed with its node key); the datanode that gets
          // the data, and the metadata group its commands go to, check them against the group's members.
          tokens: createWriteTokens({
            signer: grantSigner(components.identity),
            verifier: grantVerifierOf((id) => local.isMember(id)),
          }),
          delegation: components.services.auth?.service,
          fsStatus:
            blocks === undefined
              ? undefined
              : async (signal) => {
                  // The datanodes' soft state lives on the leader: the block manager asks it over p2p
                  // when this node is not the leader. Only live datanodes count, as HDFS's -df does.
                  const live = (await blocks.health(signal)).datanodes.filter((d) => d.live)
                  return {
                    capacity: live.reduce((n, d) => n + d.capacityBytes, 0),
                    used: live.reduce((n, d) => n + d.usedBytes, 0),
                    remaining: live.reduce((n, d) => n + d.availableBytes, 0),
                  }
                },
        })
        const native = fsRoutes({ fs, blocks })
        // Recursive deletes detach their directory at once; the leader frees it in bounded steps.
        const purger = createSubtreePurger({
          ns: () => local.stateMachine.module<Namespace>('fs'),
          purgeStep: (signal) => fs.purgeDetachedStep({ signal }),
          isLeader: () => {
            if (local.bootstrapState().phase !== 'member') return false
            const st = local.group.status()
            return st.role === 'leader' && st.leaderId === components.identity.id
          },
          log: components.logger.child({ area: 'purge' }),
        })
        new Gauge({
          name: 'hopsd_fs_detached_subtrees',
          help: 'Subtrees that recursive deletes detached and the metadata leader has not purged yet (this replica).',
          registers: [components.metrics],
          collect() {
            this.set(local.stateMachine.module<Namespace>('fs').detachedCount)
          },
        })
        new Gauge({
          name: 'hopsd_fs_purged_inodes',
          help: 'Inodes of deleted subtrees this node purged as the metadata leader, since it started.',
          registers: [components.metrics],
          collect() {
            this.set(purger.stats().purged)
          },
        })
        new Gauge({
          name: 'hopsd_fs_subtree_locks',
          help: 'Subtree locks in this replica (subtree operations under way, or expired ones not yet dropped).',
          registers: [components.metrics],
          collect() {
            this.set(local.stateMachine.module<Namespace>('fs').subtreeLockCount)
          },
        })
        new Gauge({
          name: 'hopsd_fs_subtree_walk_max_inodes',
          help: 'The most inodes one applied command walked in a subtree on this replica since it started (bounded by subtreeBatchInodes and purgeBatchInodes).',
          registers: [components.metrics],
          collect() {
            this.set(local.stateMachine.module<Namespace>('fs').subtreeWalkStats.maxApplyInodes)
          },
        })
        new Gauge({
          name: 'hopsd_fs_subtree_operations',
          help: 'Deletes, renames and first quotas this node ran as subtree operations (lock, walk, commit) since it started.',
          registers: [components.metrics],
          collect() {
            this.set(fs.subtreeOpCount)
          },
        })
        return {
          api: fs,
          service: {
            start: async () => purger.start(),
            stop: () => purger.stop(),
          },
          routes: {
            name: 'fs',
            async register(app) {
              await app.register(async (scope) => webhdfs.register(scope))
              await app.register(async (scope) => native.register(scope))
            },
          },
        }
      }
      const cluster = requireService(components, 'cluster')
      // With --tls every node's API speaks HTTPS: forward over HTTPS, trusting the cluster CA only.
      const tls = components.config.tls ? requireService(components, 'tls') : undefined
      return {
        routes: fsProxyRoutes(cluster, tls === undefined ? undefined : { ca: () => tls.clusterCaPem() }),
      }
    },
  }
}

/** A forwarded request whose metadata node sends nothing for this long is given up. */
const FORWARD_IDLE_MS = 60_000

const HOP_BY_HOP = new Set([
  // Answered by this node itself (src/api/http-guards.ts): not asked again of the metadata node.
  'expect',
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
])

/** How to reach metadata nodes over HTTPS: the CA to trust (undefined until the cluster CA is known). */
export interface ForwardTls {
  ca(): string | undefined
}

/**
 * Forwards the routes a node without a replica cannot serve — file system, users, keys, cluster
 * settings, node admission, projects — to a metadata node (over HTTPS with `tls`).
 */
export function fsProxyRoutes(cluster: ClusterClient, tls?: ForwardTls): ApiRoutes {
  return proxyRoutes(
    cluster,
    [
      '/webhdfs/v1',
      '/webhdfs/v1/*',
      '/api/v1/fs/*',
      '/api/v1/users',
      '/api/v1/users/*',
      '/api/v1/keys',
      '/api/v1/keys/*',
      '/api/v1/cluster/settings',
      '/api/v1/cluster/settings/*',
      // Node admission (src/api/routes/admission.ts): state only metadata nodes hold.
      '/api/v1/nodes/admission',
      '/api/v1/nodes/*',
      '/api/v1/join-tokens',
      '/api/v1/join-tokens/*',
      '/api/v1/projects',
      '/api/v1/projects/*',
    ],
    'fs',
    tls,
  )
}

/**
 * Routes of `urls` (every method) forwarded to a live metadata node, its own zone first: the caller's
 * credential travels as it came and the metadata node authenticates it (this node has refused bad
 * credentials already). Registered in a scope of their own (they replace the content parsers).
 */
export function proxyRoutes(
  cluster: ClusterClient,
  urls: readonly string[],
  tag: string,
  tls?: ForwardTls,
  /** Silence after which a forwarded exchange is given up (default 60 s; longer for followed streams). */
  idleMs?: number,
): ApiRoutes {
  return {
    name: `${tag}-proxy`,
    register(app: FastifyInstance) {
      // What this node refuses itself (bad credentials, no metadata node) answers as the metadata node
      // would: a RemoteException on WebHDFS, the error body elsewhere.
      app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
        const { status, body } = req.url.startsWith('/webhdfs/') ? toRemoteException(err) : mapError(err)
        if (status >= 500) req.log.error({ err }, 'forwarding failed')
        void reply.status(status).type('application/json').send(body)
      })
      // Bodies are streamed through untouched, whatever their type.
      app.removeAllContentTypeParsers()
      app.addContentTypeParser('*', (_req, payload, done) => done(null, payload))
      const schema = {
        summary: 'Forwarded to a metadata node (this node holds no metadata replica)',
        tags: [tag],
        response: { default: { description: 'the metadata node’s answer' } },
      }
      const handler = (req: FastifyRequest, reply: FastifyReply) =>
        forward(cluster, req, reply, tls, idleMs ?? FORWARD_IDLE_MS)
      for (const url of urls) {
        app.route({
          method: ['GET', 'PUT', 'POST', 'PATCH', 'DELETE'],
          url,
          schema,
          // Bad credentials stop here; none at all go on (a write's second hop): the metadata node decides.
          config: { auth: 'optional' },
          handler,
        })
      }
    },
  }
}

async function forward(
  cluster: ClusterClient,
  req: FastifyRequest,
  reply: FastifyReply,
  tls: ForwardTls | undefined,
  idleMs: number,
): Promise<void> {
  const target = cluster.metadataTargets().find((n) => n.httpAddr !== '')
  if (target === undefined) throw new HopsError('UNAVAILABLE', 'no live metadata node is known yet')
  const { host, port } = httpAddressOf(target)
  const headers: IncomingHttpHeaders = {}
  for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v
  headers['host'] = target.httpAddr
  headers['x-forwarded-for'] = req.ip
  await new Promise<void>((resolve, reject) => {
    const options = { host, port, method: req.method, path: req.url, headers }
    const onResponse = (res: IncomingMessage) => {
      const out: Record<string, string | string[]> = {}
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v
      // A body the metadata node answered without reading (a write's step one) is not drained here.
      if (!req.raw.complete) out['connection'] = 'close'
      reply.code(res.statusCode ?? 502).headers(out)
      void reply.send(res)
      resolve()
    }
    if (tls !== undefined && tls.ca() === undefined) {
      reject(
        new HopsError(
          'UNAVAILABLE',
          'this node does not know the cluster CA yet: cannot verify metadata nodes',
        ),
      )
      return
    }
    const upstream =
      tls === undefined
        ? httpRequest(options, onResponse)
        : httpsRequest({ ...options, ca: tls.ca() }, onResponse)
    upstream.on('error', (err) =>
      reject(
        new HopsError('UNAVAILABLE', `metadata node ${target.id} did not answer: ${err.message}`, {
          cause: err,
        }),
      ),
    )
    // A deadline on silence, and nothing left running when our client goes away.
    upstream.setTimeout(idleMs, () => upstream.destroy(new Error(`no answer within ${idleMs} ms`)))
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) upstream.destroy(new Error('the client went away'))
    })
    const body = req.body as NodeJS.ReadableStream | undefined
    if (body && typeof body.pipe === 'function') body.pipe(upstream)
    else upstream.end()
  })
}

/** The HTTP address a metadata node gossips; a malformed one makes that node unusable, not us. */
function httpAddressOf(target: { id: string; httpAddr: string }): { host: string; port: number } {
  try {
    return parseHostPort(target.httpAddr)
  } catch (err) {
    throw new HopsError('UNAVAILABLE', `metadata node ${target.id} gossips a bad HTTP address`, {
      cause: err,
    })
  }
}
