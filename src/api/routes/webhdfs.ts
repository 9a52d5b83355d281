/**
 * WebHDFS (Hadoop's REST API for HDFS) at `/webhdfs/v1/<path>?op=...`, following Hadoop's JSON shapes,
 * parameters and status codes so that clients no one here wrote — HdfsCLI, fsspec, Hadoop's own
 * webhdfs:// — work unmodified. Parameters are read by one parser (webhdfs-params.ts) with Hadoop's
 * rules; a repeated or nameless parameter is refused before anything happens.
 *
 * Writes are Hadoop's two-step flow: step one (CREATE/APPEND without data) parses and checks every
 * parameter once and answers 307 with a Location carrying `hopsd.token` (./write-token.ts): a signed
 * grant of the caller, the op, the path, every parameter the data step acts on, the inline threshold,
 * the route and node it is for and an expiry. The data step acts on the grant alone: nothing about the
 * write can be changed on the second hop. Step one never reads a body (the server answers
 * `Expect: 100-continue` only for the data step, see src/api/http-guards.ts), so `curl -L -T big` sends
 * its data once, to the Location: a datanode's data route (src/api/routes/datanode.ts), or this route
 * when the cluster has no datanode. CREATE answers 201, APPEND 200. `noredirect=true` answers 200
 * `{"Location": ...}`.
 * OPEN and GETFILECHECKSUM answer directly (Hadoop's clients accept that, as with HttpFS).
 *
 * The caller is the principal the API's auth hook verified (`request.caller`; the routes accept a
 * request without one — `config.auth: optional` — only for the second hop of a write, which its
 * `hopsd.token` authenticates). Delegation tokens: GETDELEGATIONTOKEN (`{"Token":{"urlString"}}`),
 * RENEWDELEGATIONTOKEN (`{"long": expiry}`), CANCELDELEGATIONTOKEN (200), in Hadoop's shapes.
 * Authentication failures answer 401 (429 when rate-limited) with the reason.
 *
 * Errors are `{"RemoteException":{exception, javaClassName, message}}` with Hadoop's status codes.
 */
import type { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { FsError, type Caller, type FsService } from '../../fs/index.js'
import type { Principal } from '../../auth/index.js'
import { callerOf, forwardedCredentials, type ForwardedCredentials } from '../auth-hook.js'
import { toRemoteException } from '../remote-exception.js'
import type { ApiRoutes } from '../server.js'
import { sendBlocked, type BlockReads } from './block-reads.js'
import {
  blockLocationsJson,
  blocksInRange,
  contentSummaryJson,
  fileStatusJson,
  fsStatusJson,
  locatedBlocksJson,
  quotaUsageJson,
  serverDefaultsJson,
  type LocatedFile,
} from './webhdfs-json.js'
import {
  checkDataStepQuery,
  createWriteTokens,
  localGrantKeys,
  type CreateGrant,
  type WriteTokens,
} from './write-token.js'
import {
  QUOTA_STORAGE_TYPES,
  WEBHDFS_OPS,
  WEBHDFS_UNSUPPORTED_OPS,
  WebHdfsQuery,
  invalid,
  webhdfsQuerySchema,
  type HttpMethod,
} from './webhdfs-params.js'

export { fileStatusJson } from './webhdfs-json.js'

export interface WebHdfsDeps {
  readonly fs: FsService
  /** This node's id: the node a Location back to this route is for. */
  readonly nodeId?: string
  /**
   * The write tokens (shared by the cluster: the datanode a Location points at verifies them). Default:
   * a random key per process (Locations then only work back to this node).
   */
  readonly tokens?: WriteTokens
  /** Wall clock (ms). */
  readonly clock?: () => number
  /**
   * Files in blocks (src/fs/blocks): step one of CREATE/APPEND redirects to a datanode's data route
   * (`writeTarget`, signed with the shared `tokenKey`), OPEN streams a file in blocks, and block
   * locations and the cluster's capacity come from it. Without it every file is inline and this node is
   * the only place to read one.
   */
  readonly blocks?: BlockReads & {
    /** A datanode to send write data to: its HTTP(S) base URL and node id. */
    writeTarget(): { url: string; node: string } | undefined
    inlineThreshold(): number
    /** Where each block of a file lives (inline files: the metadata nodes, as one piece). */
    locate?(caller: Caller, path: string, signal?: AbortSignal): Promise<LocatedFile>
  }
  /**
   * Capacity, used and remaining bytes of the cluster's datanodes (HDFS's getStats); none without.
   * `forward`: the caller's credential, to ask the metadata leader on its behalf.
   */
  readonly fsStatus?: (
    signal: AbortSignal,
    forward: ForwardedCredentials,
  ) => Promise<{ capacity: number; used: number; remaining: number }>
  /** GET/RENEW/CANCELDELEGATIONTOKEN (src/auth AuthService); without it they are unsupported. */
  readonly delegation?: DelegationTokens
}

/** The delegation-token operations WebHDFS exposes (src/auth AuthService has them). */
export interface DelegationTokens {
  issueToken(
    caller: Principal,
    req: { renewer?: string; service?: string; secure?: boolean },
  ): Promise<{ urlString: string; seq: number }>
  renewToken(caller: Principal, urlString: string): Promise<number>
  cancelToken(caller: Principal, urlString: string): Promise<void>
}

const SELF = 'self'
/** LISTSTATUS answers everything in one body; past this, clients must page with LISTSTATUS_BATCH. */
const LISTSTATUS_ENTRIES_MAX = 100_000

const remoteExceptionSchema = {
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

/** The routes' documented answers (the per-op JSON shapes are Hadoop's, see webhdfs-json.ts). */
function responsesOf(method: HttpMethod): Record<string, unknown> {
  const ok = {
    description: 'the WebHDFS JSON of the op; OPEN: the bytes; SET* ops: empty',
    content: {
      'application/json': { schema: { type: 'object', additionalProperties: true } },
      'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
    },
  }
  const redirect = {
    description: 'step one of CREATE/APPEND: the Location to send the data to (no body)',
    headers: { Location: { schema: { type: 'string' } } },
  }
  return {
    200: ok,
    ...(method === 'PUT'
      ? {
          201: {
            description: 'step two of CREATE: the file is written (no body)',
            headers: redirect.headers,
          },
        }
      : {}),
    ...(method === 'PUT' || method === 'POST' ? { 307: redirect } : {}),
    '4xx': remoteExceptionSchema,
    '5xx': remoteExceptionSchema,
  }
}

export function webhdfsRoutes(deps: WebHdfsDeps): ApiRoutes {
  const clock = deps.clock ?? Date.now
  const tokens = deps.tokens ?? createWriteTokens({ ...localGrantKeys(deps.nodeId ?? SELF), clock })
  return {
    name: 'webhdfs',
    register(app: FastifyInstance) {
      // WebHDFS bodies are file bytes whatever their content type (or none). They are left unread here:
      // step one of a write answers without them; step two reads them as it writes.
      app.removeAllContentTypeParsers()
      app.addContentTypeParser('*', (_req, payload, done) => done(null, payload))
      app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
        const { status, body } = toRemoteException(err)
        if (status >= 500) request.log.error({ err }, 'webhdfs request failed')
        // A body we did not read stays unread: close the connection rather than drain it.
        if (!request.raw.complete) void reply.header('connection', 'close')
        void reply.status(status).type('application/json').send(body)
      })
      const handler = (method: HttpMethod) => async (request: FastifyRequest, reply: FastifyReply) => {
        const params = request.params as { '*'?: string }
        return serve(deps, tokens, clock, method, '/' + (params['*'] ?? ''), request, reply)
      }
      for (const url of ['/webhdfs/v1', '/webhdfs/v1/*']) {
        for (const method of ['GET', 'PUT', 'POST', 'DELETE'] as const) {
          app.route({
            method,
            url,
            // A caller is required by every op but the second hop of a write (its hopsd.token
            // authenticates it): serve() asks for the caller where it needs one. Every op re-checks
            // the caller after its own barrier or at commit: no second barrier in the hook.
            config: { auth: 'optional', authFresh: false },
            schema: {
              summary: `WebHDFS ${method} ops (${WEBHDFS_OPS[method].join(', ')})`,
              tags: ['webhdfs'],
              querystring: webhdfsQuerySchema(method),
              ...(method === 'PUT' || method === 'POST'
                ? {
                    requestBody: {
                      description: 'step two of CREATE/APPEND: the bytes (step one takes none)',
                      content: {
                        'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
                      },
                    },
                  }
                : {}),
              response: responsesOf(method),
            },
            // The query is parsed by WebHdfsQuery (Hadoop's rules); the schema above documents it.
            validatorCompiler: () => () => true,
            handler: handler(method),
          })
        }
      }
    },
  }
}

async function serve(
  deps: WebHdfsDeps,
  tokens: WriteTokens,
  clock: () => number,
  method: HttpMethod,
  rawPath: string,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  const fs = deps.fs
  const q = WebHdfsQuery.fromUrl(request.raw.url ?? request.url)
  const op = q.op()
  if (!(WEBHDFS_OPS[method] as readonly string[]).includes(op)) {
    if (WEBHDFS_UNSUPPORTED_OPS[method].includes(op))
      throw new FsError('UNSUPPORTED_OPERATION', `Operation ${op} is not supported by hopsd`)
    const kind = method[0] + method.slice(1).toLowerCase()
    throw invalid(
      'op',
      op,
      `${op} is not a valid ${method} operation. No enum constant ${kind}OpParam.Op.${op}`,
    )
  }
  const path = rawPath.length > 1 && rawPath.endsWith('/') ? rawPath.slice(0, -1) : rawPath
  if ((op === 'CREATE' || op === 'APPEND') && q.string('hopsd.token') !== undefined)
    return twoStep(deps, tokens, op, path, undefined, q, request, reply)
  const caller: Principal = callerOf(request)
  const json = (body: unknown): FastifyReply => reply.type('application/json').send(JSON.stringify(body))
  const empty = (): FastifyReply =>
    reply.status(200).type('application/octet-stream').header('content-length', 0).send()
  const signal = abortOnClose(reply)
  switch (op) {
    case 'GETFILESTATUS':
      return json({ FileStatus: fileStatusJson(await fs.stat(caller, path), '') })
    case 'LISTSTATUS': {
      const all: unknown[] = []
      let startAfter: string | undefined
      for (;;) {
        const page = await fs.list(caller, path, { startAfter })
        for (const e of page.entries) all.push(fileStatusJson(e, page.ofFile ? '' : e.name))
        if (page.remaining === 0 || page.entries.length === 0) break
        if (all.length >= LISTSTATUS_ENTRIES_MAX)
          throw new FsError(
            'INVALID_ARGUMENT',
            `${path} has over ${LISTSTATUS_ENTRIES_MAX} entries: use LISTSTATUS_BATCH`,
          )
        startAfter = page.entries[page.entries.length - 1]!.name
      }
      return json({ FileStatuses: { FileStatus: all } })
    }
    case 'LISTSTATUS_BATCH': {
      const page = await fs.list(caller, path, { startAfter: q.string('startafter') })
      const entries = page.entries.map((e) => fileStatusJson(e, page.ofFile ? '' : e.name))
      return json({
        DirectoryListing: {
          partialListing: { FileStatuses: { FileStatus: entries } },
          remainingEntries: page.remaining,
        },
      })
    }
    case 'GETCONTENTSUMMARY':
      return json(contentSummaryJson(await fs.contentSummary(caller, path)))
    case 'GETQUOTAUSAGE':
      return json(quotaUsageJson(await fs.quotaUsage(caller, path)))
    case 'GETFILECHECKSUM':
      return json({
        FileChecksum:
          (await deps.blocks?.checksum(caller, path, signal)) ?? (await fs.checksum(caller, path)),
      })
    case 'GETHOMEDIRECTORY':
      return json({ Path: fs.homeDirectory(caller) })
    case 'GETTRASHROOT':
      return json({ Path: fs.trashRoot(caller) })
    case 'GETSERVERDEFAULTS':
      return json(serverDefaultsJson(fs.defaults))
    case 'GETSTATUS': {
      // HDFS's getStats: the datanodes' totals (none without datanodes).
      const s = (await deps.fsStatus?.(signal, forwardedCredentials(request))) ?? {
        capacity: 0,
        used: 0,
        remaining: 0,
      }
      return json(fsStatusJson(s))
    }
    case 'CHECKACCESS': {
      const action = q.fsAction()
      if (action === undefined)
        throw new FsError('INVALID_ARGUMENT', 'Required param fsaction for op: CHECKACCESS is null or empty')
      await fs.checkAccess(caller, path, action)
      return empty()
    }
    case 'GETFILEBLOCKLOCATIONS':
    case 'GET_BLOCK_LOCATIONS': {
      const offset = q.long('offset') ?? 0
      const length = q.long('length') ?? -1
      const file = await locate(deps, caller, path, request, signal)
      const blocks = blocksInRange(file, offset, length)
      return json(
        op === 'GETFILEBLOCKLOCATIONS'
          ? blockLocationsJson(blocks)
          : locatedBlocksJson(file, blocks, clock()),
      )
    }
    case 'GETXATTRS': {
      const encoding = (q.string('encoding') ?? 'text').toLowerCase()
      if (!['text', 'hex', 'base64'].includes(encoding))
        throw invalid(
          'encoding',
          encoding,
          `No enum constant org.apache.hadoop.fs.XAttrCodec.${encoding.toUpperCase()}`,
        )
      const names = q.strings('xattr.name')
      const xattrs = await fs.getXAttrs(caller, path, names.length > 0 ? names : undefined)
      return json({
        XAttrs: xattrs.map((x) => ({ name: x.name, value: encodeXAttrValue(x.value, encoding) })),
      })
    }
    case 'LISTXATTRS':
      return json({ XAttrNames: JSON.stringify(await fs.listXAttrs(caller, path)) })
    case 'OPEN': {
      const offset = q.long('offset') ?? 0
      const length = q.long('length') ?? -1
      q.long('buffersize')
      if (q.boolean('noredirect', false))
        return json({ Location: selfUrl(request, { noredirect: undefined }) })
      const blocks = deps.blocks
      if (blocks && (await sendBlocked(reply, (b) => blocks.open(caller, path, offset, length, signal, b))))
        return reply
      const data = await fs.read(caller, path, { offset, length })
      return reply
        .type('application/octet-stream')
        .header('content-length', data.length)
        .send(Buffer.from(data.buffer, data.byteOffset, data.length))
    }
    case 'MKDIRS':
      q.octal('unmaskedpermission')
      await fs.mkdirs(caller, path, { permission: q.octal('permission') ?? 0o755 })
      return json({ boolean: true })
    case 'CREATE':
    case 'APPEND':
      return twoStep(deps, tokens, op, path, caller, q, request, reply)
    case 'GETDELEGATIONTOKEN': {
      const t = await delegation(deps).issueToken(caller, {
        renewer: q.string('renewer'),
        service: q.string('service') ?? request.headers.host ?? '',
        secure: request.protocol === 'https',
      })
      request.auditKind = 'token.create'
      request.auditPath = `token:${t.seq}`
      return json({ Token: { urlString: t.urlString } })
    }
    case 'RENEWDELEGATIONTOKEN': {
      const expiresMs = await delegation(deps).renewToken(caller, requiredToken(q, op))
      request.auditKind = 'token.renew'
      return json({ long: expiresMs })
    }
    case 'CANCELDELEGATIONTOKEN':
      await delegation(deps).cancelToken(caller, requiredToken(q, op))
      request.auditKind = 'token.cancel'
      return empty()
    case 'RENAME': {
      const dst = q.string('destination')
      if (dst === undefined)
        throw new FsError('INVALID_ARGUMENT', 'Required param destination for op: RENAME is null or empty')
      return json({ boolean: await fs.renameLegacy(caller, path, dst) })
    }
    case 'DELETE':
      return json({ boolean: await fs.delete(caller, path, { recursive: q.boolean('recursive', false) }) })
    case 'SETPERMISSION':
      await fs.setPermission(caller, path, q.octal('permission') ?? 0o755)
      return empty()
    case 'SETOWNER':
      await fs.setOwner(caller, path, q.string('owner'), q.string('group'))
      return empty()
    case 'SETTIMES':
      await fs.setTimes(caller, path, q.long('modificationtime') ?? -1, q.long('accesstime') ?? -1)
      return empty()
    case 'SETREPLICATION': {
      const replication = q.long('replication')
      if (replication === undefined)
        throw new FsError(
          'INVALID_ARGUMENT',
          'Required param replication for op: SETREPLICATION is null or empty',
        )
      return json({ boolean: await fs.setReplication(caller, path, replication) })
    }
    case 'SETXATTR': {
      const name = q.string('xattr.name')
      if (name === undefined)
        throw new FsError('INVALID_ARGUMENT', 'Required param xattr.name for op: SETXATTR is null or empty')
      const flagRaw = (q.string('flag') ?? '').toUpperCase()
      const flags = flagRaw
        .split(',')
        .map((f) => f.trim())
        .filter((f) => f !== '')
      if (flags.some((f) => f !== 'CREATE' && f !== 'REPLACE'))
        throw invalid('flag', flagRaw, `No enum constant org.apache.hadoop.fs.XAttrSetFlag.${flagRaw}`)
      const flag = flags.length === 1 ? (flags[0] as 'CREATE' | 'REPLACE') : undefined
      await fs.setXAttr(caller, path, name, decodeXAttrValue(q.raw('xattr.value') ?? ''), flag)
      return empty()
    }
    case 'REMOVEXATTR': {
      const name = q.string('xattr.name')
      if (name === undefined)
        throw new FsError(
          'INVALID_ARGUMENT',
          'Required param xattr.name for op: REMOVEXATTR is null or empty',
        )
      await fs.removeXAttr(caller, path, name)
      return empty()
    }
    case 'SETQUOTA': {
      const namespace = q.quota('namespacequota') ?? 'keep'
      const storagespace = q.quota('storagespacequota') ?? 'keep'
      await fs.setQuota(caller, path, { namespace, storagespace })
      return empty()
    }
    case 'SETQUOTABYSTORAGETYPE': {
      const type = q.string('storagetype')
      if (type === undefined)
        throw new FsError(
          'INVALID_ARGUMENT',
          'Required param storagetype for op: SETQUOTABYSTORAGETYPE is null or empty',
        )
      if (!(QUOTA_STORAGE_TYPES as readonly string[]).includes(type.toUpperCase()))
        throw invalid('storagetype', type, `Quota for storage type '${type}' is not supported`)
      const storagespace = q.quota('storagespacequota')
      if (storagespace === undefined)
        throw new FsError(
          'INVALID_ARGUMENT',
          'Required param storagespacequota for op: SETQUOTABYSTORAGETYPE is null or empty',
        )
      await fs.setQuota(caller, path, { storagespace, storageType: type.toUpperCase() })
      return empty()
    }
    case 'CONCAT': {
      const sources = (q.string('sources') ?? '').split(',').filter((s) => s !== '')
      if (sources.length === 0)
        throw new FsError('INVALID_ARGUMENT', 'Required param sources for op: CONCAT is null or empty')
      await fs.concat(caller, path, sources)
      return empty()
    }
    case 'TRUNCATE': {
      const newLength = q.long('newlength')
      if (newLength === undefined)
        throw new FsError('INVALID_ARGUMENT', 'Required param newlength for op: TRUNCATE is null or empty')
      return json({ boolean: await fs.truncate(caller, path, newLength) })
    }
  }
  throw new Error(`webhdfs: op ${op} allowed but not served`)
}

/** Where a file's bytes live: from the block manager, or (no datanodes) this node as the one place. */
async function locate(
  deps: WebHdfsDeps,
  caller: Caller,
  path: string,
  request: FastifyRequest,
  signal: AbortSignal,
): Promise<LocatedFile> {
  if (deps.blocks?.locate !== undefined) return deps.blocks.locate(caller, path, signal)
  const st = await deps.fs.stat(caller, path)
  if (st.type !== 'FILE') throw new FsError('IS_A_DIRECTORY', `Path is not a file: ${path}`)
  const host = request.hostname.replace(/:\d+$/, '')
  const port = Number(request.port ?? 0)
  return {
    length: st.length,
    underConstruction: st.leaseHolder !== null,
    blocks:
      st.length === 0
        ? []
        : [
            {
              blockId: 0,
              genStamp: 0,
              offset: 0,
              length: st.length,
              corrupt: false,
              replicas: [{ node: 'self', host, port, zone: '' }],
            },
          ],
  }
}

function delegation(deps: WebHdfsDeps): DelegationTokens {
  if (deps.delegation === undefined)
    throw new FsError('UNSUPPORTED_OPERATION', 'delegation tokens are not served by this node')
  return deps.delegation
}

function requiredToken(q: WebHdfsQuery, op: string): string {
  const t = q.string('token')
  if (t === undefined) throw new FsError('INVALID_ARGUMENT', `Required param token for op: ${op} is null or empty`)
  return t
}

/** CREATE / APPEND: step one (no token) redirects with a signed Location; step two (token) writes. */
async function twoStep(
  deps: WebHdfsDeps,
  tokens: WriteTokens,
  op: 'CREATE' | 'APPEND',
  path: string,
  caller: Principal | undefined,
  q: WebHdfsQuery,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  const token = q.string('hopsd.token')
  const self = deps.nodeId ?? SELF
  if (token === undefined) {
    if (caller === undefined) throw new Error('webhdfs: step one without a caller')
    // Every parameter is read once, here: the data step acts on the signed grant only.
    const create = op === 'CREATE' ? createOptions(q) : undefined
    const noLocalWrite = op === 'CREATE' && q.createFlags().has('NO_LOCAL_WRITE')
    q.long('buffersize')
    const noredirect = q.boolean('noredirect', false)
    // An append is bound to the file (inode) it finds now, as HDFS binds it when the client calls
    // append(): a rename before the data arrives keeps it.
    const found = op === 'APPEND' ? await deps.fs.stat(caller, path) : undefined
    const fileId = found?.type === 'FILE' ? found.fileId : undefined
    const target = deps.blocks?.writeTarget()
    // The Location carries no credential of the caller's: its token says who writes.
    const issued = await tokens.issue(caller, {
      op,
      path,
      ...(create === undefined ? {} : { create }),
      ...(fileId === undefined ? {} : { fileId }),
      inlineThreshold: deps.blocks?.inlineThreshold() ?? deps.fs.inlineThreshold,
      noLocalWrite,
      route: target === undefined ? 'webhdfs' : 'datanode',
      node: target?.node ?? self,
    })
    const base = target?.url ?? `${request.protocol}://${request.headers.host ?? 'localhost'}`
    const route = target === undefined ? '/webhdfs/v1' : '/api/v1/datanode/write'
    const location = `${base}${route}${encodePath(path)}?op=${op}&hopsd.token=${issued}`
    // The client may have started sending a body (no Expect: 100-continue): it is not read here.
    if (!request.raw.complete) void reply.header('connection', 'close')
    if (noredirect) return reply.type('application/json').send(JSON.stringify({ Location: location }))
    return reply.status(307).header('location', location).header('content-length', 0).send()
  }
  // The data step on this route: a cluster without datanodes keeps every file inline.
  const grant = await tokens.verify(token, { route: 'webhdfs', node: self, op, path }, (g) =>
    checkDataStepQuery(q, g),
  )
  const run = async (): Promise<FastifyReply> => {
    const data = await readBody(request.body as Readable | undefined, grant.inlineThreshold, path)
    if (op === 'CREATE') {
      await deps.fs.create(grant.caller, path, data, grant.create)
      return reply
        .status(201)
        .header('location', `hdfs://${request.headers.host ?? 'localhost'}${encodeURI(path)}`)
        .header('content-length', 0)
        .send()
    }
    await deps.fs.append(grant.caller, path, data, grant.fileId === undefined ? {} : { fileId: grant.fileId })
    return reply.status(200).header('content-length', 0).send()
  }
  return op === 'APPEND' ? tokens.serialize(grant, run) : run()
}

/**
 * The create options of a CREATE's parameters, as Hadoop's DataNode derives them (WebHdfsHandler):
 * an empty createflag is CREATE (+OVERWRITE with overwrite=true); APPEND with OVERWRITE is refused; a
 * flag set without CREATE only replaces an existing file.
 */
export function createOptions(q: WebHdfsQuery): CreateGrant {
  const overwrite = q.boolean('overwrite', false)
  const flags = q.createFlags()
  if (flags.size === 0) flags.add('CREATE')
  if (overwrite) flags.add('OVERWRITE')
  if (flags.has('APPEND') && flags.has('OVERWRITE'))
    throw invalid(
      'createflag',
      [...flags].join(','),
      `[${[...flags].join(', ')}]Both append and overwrite options cannot be enabled.`,
    )
  q.octal('unmaskedpermission')
  return {
    overwrite: flags.has('OVERWRITE'),
    createParent: q.boolean('createparent', true),
    mustExist: !flags.has('CREATE'),
    permission: q.octal('permission') ?? 0o644,
    replication: q.long('replication') ?? 0,
    blockSize: q.long('blocksize') ?? 0,
  }
}

/** Reads a request body of at most `limit` bytes; FILE_TOO_LARGE_FOR_INLINE past it (the rest stays unread). */
async function readBody(body: Readable | undefined, limit: number, path: string): Promise<Uint8Array> {
  if (body === undefined || typeof (body as { on?: unknown }).on !== 'function') return new Uint8Array(0)
  const parts: Buffer[] = []
  let size = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) {
      body.destroy()
      throw new FsError(
        'FILE_TOO_LARGE_FOR_INLINE',
        `${path}: more than inlineThreshold (${limit}) bytes, and this node has no datanodes to store blocks on`,
      )
    }
    parts.push(chunk)
  }
  const all = Buffer.concat(parts, size)
  return new Uint8Array(all.buffer, all.byteOffset, all.length)
}

/** Aborts when the connection closes before the answer is sent (the client went away). */
function abortOnClose(reply: FastifyReply): AbortSignal {
  const ac = new AbortController()
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort()
  })
  return ac.signal
}

// ------------------------------------------------------------------------------------ xattr values

function encodeXAttrValue(v: Uint8Array, encoding: string): string {
  if (encoding === 'hex') return '0x' + Buffer.from(v).toString('hex')
  if (encoding === 'base64') return '0s' + Buffer.from(v).toString('base64')
  return JSON.stringify(Buffer.from(v).toString('utf8'))
}

/** Hadoop's XAttrCodec: `0x` hex, `0s` base64, `"..."` text, anything else as UTF-8 text. */
function decodeXAttrValue(s: string): Uint8Array {
  if (/^0x/i.test(s)) {
    const hex = s.slice(2)
    if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new FsError('INVALID_ARGUMENT', 'bad hex xattr.value')
    return Buffer.from(hex, 'hex')
  }
  if (/^0s/i.test(s)) return Buffer.from(s.slice(2), 'base64')
  if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) return Buffer.from(s.slice(1, -1), 'utf8')
  return Buffer.from(s, 'utf8')
}

// ------------------------------------------------------------------------------------ URLs

/** This request's URL with some parameters set (string) or removed (undefined). */
function selfUrl(request: FastifyRequest, set: Record<string, string | undefined>): string {
  const url = new URL(request.url, `${request.protocol}://${request.headers.host ?? 'localhost'}`)
  for (const [k, v] of Object.entries(set)) {
    for (const key of [...url.searchParams.keys()])
      if (key.toLowerCase() === k.toLowerCase()) url.searchParams.delete(key)
    if (v !== undefined) url.searchParams.set(k, v)
  }
  return url.toString()
}

function encodePath(path: string): string {
  return path
    .split('/')
    .map((c) => encodeURIComponent(c))
    .join('/')
}

// ------------------------------------------------------------------------------------ errors

/** The RemoteException body and status for any error a WebHDFS route throws: through the error table. */
export { toRemoteException }
