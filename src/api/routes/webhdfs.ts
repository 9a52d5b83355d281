/**
 * WebHDFS (Hadoop's REST API for HDFS) at `/webhdfs/v1/<path>?op=...`, following the spec's JSON shapes
 * so that clients no one here wrote — HdfsCLI, fsspec, Hadoop's own webhdfs:// — work unmodified.
 *
 * Writes are Hadoop's two-step flow: step one (CREATE/APPEND without data) answers 307 with a Location
 * back to this node carrying `hopsd.token`, an HMAC over the caller, the op, the path, the write
 * parameters and a short expiry, single use — clients do not repeat `user.name` on the second hop, so
 * the Location carries the identity, and a token cannot be forged, altered or replayed. Step two sends
 * the data there: CREATE answers 201, APPEND 200. `noredirect=true` answers 200 `{"Location": ...}`.
 * OPEN and GETFILECHECKSUM answer directly (Hadoop's clients accept that, as with HttpFS).
 *
 * The caller is the principal the API's auth hook verified (`request.caller`; the routes accept a
 * request without one — `config.auth: optional` — only for the second hop of a write, which its
 * `hopsd.token` authenticates). Delegation tokens: GETDELEGATIONTOKEN (`{"Token":{"urlString"}}`),
 * RENEWDELEGATIONTOKEN (`{"long": expiry}`), CANCELDELEGATIONTOKEN (200), in Hadoop's shapes.
 *
 * Errors are `{"RemoteException":{exception, javaClassName, message}}` with Hadoop's status codes;
 * authentication failures answer 401 (429 when rate-limited) with the reason.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { sendBlocked, type BlockReads } from './block-reads.js'
import { toRemoteException } from '../remote-exception.js'

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { FsError, type Caller, type FileStatus, type FsService } from '../../fs/index.js'
import type { GrantScope, Principal } from '../../auth/index.js'
import { callerOf } from '../auth-hook.js'
import type { ApiRoutes } from '../server.js'

export interface WebHdfsDeps {
  readonly fs: FsService
  /** HMAC key of redirect tokens. Default: random per process (the Location always points back to this node). */
  readonly tokenKey?: Uint8Array
  /** Lifetime of a redirect token (default 60 s). */
  readonly tokenTtlMs?: number
  /** Wall clock (ms). */
  readonly clock?: () => number
  /** Largest body accepted on the data step (default 17 MiB: above any inlineThreshold, so the fs says why). */
  readonly bodyLimitBytes?: number
  /**
   * Files in blocks (src/fs/blocks): step one of CREATE/APPEND redirects to a
   * datanode's data route (`writeTarget`, signed with the shared `tokenKey`), and OPEN streams a file in
   * blocks. Without it every file is inline.
   */
  readonly blocks?: BlockReads & {
    writeTarget(): string | undefined
    inlineThreshold(): number
  }
  /** GET/RENEW/CANCELDELEGATIONTOKEN (src/auth AuthService); without it they are unsupported. */
  readonly delegation?: DelegationTokens
  /**
   * Signs a principal grant for the second hop of a write (`hopsd.grant` in the Location): the
   * datanode proposes the write's commands with it, so the metadata group knows a metadata node
   * authenticated the writer (src/auth/grant.ts). Without it the Location carries none.
   */
  readonly grants?: { sign(caller: Principal, scope: GrantScope): Promise<string> }
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

/** What a write's grant lets the datanode do on the written path (creates may clean up after a failure). */
export const WRITE_GRANT_OPS: Readonly<Record<'CREATE' | 'APPEND', readonly string[]>> = {
  CREATE: ['createFile', 'append', 'addBlock', 'completeFile', 'delete', 'read'],
  APPEND: ['append', 'addBlock', 'completeFile', 'createFile', 'read'],
}

/** The redirect-token key every node of a cluster derives from the shared swarm key. */
export function webhdfsTokenKey(swarmKey: Uint8Array): Uint8Array {
  return createHash('sha256').update('hopsd webhdfs redirect token\n').update(swarmKey).digest()
}

const TOKENS_MAX = 100_000
/** LISTSTATUS answers everything in one body; past this, clients must page with LISTSTATUS_BATCH. */
const LISTSTATUS_ENTRIES_MAX = 100_000

type Query = Record<string, string | string[] | undefined>

const GET_OPS = new Set([
  'OPEN',
  'GETFILESTATUS',
  'LISTSTATUS',
  'LISTSTATUS_BATCH',
  'GETCONTENTSUMMARY',
  'GETFILECHECKSUM',
  'GETHOMEDIRECTORY',
  'GETXATTRS',
  'LISTXATTRS',
  'GETDELEGATIONTOKEN',
])
const PUT_OPS = new Set([
  'CREATE',
  'MKDIRS',
  'RENAME',
  'SETPERMISSION',
  'SETOWNER',
  'SETTIMES',
  'SETREPLICATION',
  'SETXATTR',
  'REMOVEXATTR',
  'RENEWDELEGATIONTOKEN',
  'CANCELDELEGATIONTOKEN',
])
const POST_OPS = new Set(['APPEND'])
const DELETE_OPS = new Set(['DELETE'])
/** Ops Hadoop defines that hopsd does not serve (yet): UnsupportedOperationException, not "unknown op". */
const KNOWN_UNSUPPORTED = new Set([
  'GETFILEBLOCKLOCATIONS',
  'GET_BLOCK_LOCATIONS',
  'GETACLSTATUS',
  'GETTRASHROOT',
  'GETSTORAGEPOLICY',
  'GETSERVERDEFAULTS',
  'CHECKACCESS',
  'GETSNAPSHOTDIFF',
  'GETQUOTAUSAGE',
  'GETECPOLICY',
  'GETFILELINKSTATUS',
  'GETSTATUS',
  'CREATESYMLINK',
  'MODIFYACLENTRIES',
  'REMOVEACLENTRIES',
  'REMOVEDEFAULTACL',
  'REMOVEACL',
  'SETACL',
  'CREATESNAPSHOT',
  'RENAMESNAPSHOT',
  'SETSTORAGEPOLICY',
  'SETQUOTA',
  'SETQUOTABYSTORAGETYPE',
  'ALLOWSNAPSHOT',
  'DISALLOWSNAPSHOT',
  'CONCAT',
  'TRUNCATE',
  'UNSETSTORAGEPOLICY',
  'DELETESNAPSHOT',
  'SATISFYSTORAGEPOLICY',
])

const remoteExceptionSchema = {
  type: 'object',
  properties: {
    RemoteException: {
      type: 'object',
      properties: {
        exception: { type: 'string' },
        javaClassName: { type: 'string' },
        message: { type: 'string' },
      },
    },
  },
} as const

const querySchema = {
  type: 'object',
  properties: {
    op: { type: 'string', description: 'the WebHDFS operation (case-insensitive)' },
    'user.name': {
      description: 'the caller under simple auth only (the last one when repeated; read by the auth hook)',
    },
    delegation: { description: 'a delegation token (or an API key): the credential, read by the auth hook' },
  },
  additionalProperties: true,
} as const

/** Every op answers its own WebHDFS shape (FileStatus, FileStatuses, DirectoryListing, boolean, ...). */
const okSchema = {
  description: 'the WebHDFS JSON of the op (or the file bytes for OPEN)',
  type: 'object',
  additionalProperties: true,
} as const

export function webhdfsRoutes(deps: WebHdfsDeps): ApiRoutes {
  const clock = deps.clock ?? Date.now
  const tokens = createTokenSigner(deps.tokenKey ?? randomBytes(32), deps.tokenTtlMs ?? 60_000, clock)
  return {
    name: 'webhdfs',
    register(app: FastifyInstance) {
      // WebHDFS bodies are file bytes whatever their content type (or none): take them raw.
      app.removeAllContentTypeParsers()
      app.addContentTypeParser(
        '*',
        { parseAs: 'buffer', bodyLimit: deps.bodyLimitBytes ?? 17 * 1024 * 1024 },
        (_req, body, done) => done(null, body),
      )
      app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
        const { status, body } = toRemoteException(err)
        if (status >= 500) request.log.error({ err }, 'webhdfs request failed')
        void reply.status(status).type('application/json').send(body)
      })
      const handler = (method: string) => async (request: FastifyRequest, reply: FastifyReply) => {
        const params = request.params as { '*'?: string }
        return serve(deps, tokens, method, '/' + (params['*'] ?? ''), request, reply)
      }
      for (const url of ['/webhdfs/v1', '/webhdfs/v1/*']) {
        for (const method of ['GET', 'PUT', 'POST', 'DELETE'] as const) {
          app.route({
            method,
            url,
            // A caller is required by every op but the second hop of a write (its hopsd.token
            // authenticates it): serve() asks for the caller where it needs one.
            // Every op re-checks the caller after its own barrier or at commit: no second barrier.
            config: { auth: 'optional', authUse: grantUse, authFresh: false },
            schema: {
              summary: `WebHDFS ${method} ops (${[...{ GET: GET_OPS, PUT: PUT_OPS, POST: POST_OPS, DELETE: DELETE_OPS }[method]].join(', ')})`,
              tags: ['webhdfs'],
              querystring: querySchema,
              response: {
                '2xx': okSchema,
                '307': okSchema,
                '4xx': remoteExceptionSchema,
                '5xx': remoteExceptionSchema,
              },
            },
            handler: handler(method),
          })
        }
      }
    },
  }
}

async function serve(
  deps: WebHdfsDeps,
  tokens: TokenSigner,
  method: string,
  rawPath: string,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  const fs = deps.fs
  const q = request.query as Query
  const opRaw = one(q, 'op')
  if (opRaw === undefined)
    throw new FsError('INVALID_ARGUMENT', 'Invalid value for webhdfs parameter "op": missing')
  const op = opRaw.toUpperCase()
  const allowed = { GET: GET_OPS, PUT: PUT_OPS, POST: POST_OPS, DELETE: DELETE_OPS }[method]!
  if (!allowed.has(op)) {
    if (KNOWN_UNSUPPORTED.has(op))
      throw new FsError('UNSUPPORTED_OPERATION', `Operation ${op} is not supported by hopsd`)
    throw new FsError(
      'INVALID_ARGUMENT',
      `Invalid value for webhdfs parameter "op": No enum constant ${method === 'GET' ? 'Get' : method === 'PUT' ? 'Put' : method === 'POST' ? 'Post' : 'Delete'}OpParam.Op.${op}`,
    )
  }
  const path = rawPath.length > 1 && rawPath.endsWith('/') ? rawPath.slice(0, -1) : rawPath
  if ((op === 'CREATE' || op === 'APPEND') && one(q, 'hopsd.token') !== undefined)
    return twoStep(deps, tokens, op, path, undefined, request, reply)
  const caller: Principal = callerOf(request)
  const json = (body: unknown): FastifyReply => reply.type('application/json').send(JSON.stringify(body))
  const ok = { boolean: true }
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
      const page = await fs.list(caller, path, { startAfter: one(q, 'startafter') || undefined })
      const entries = page.entries.map((e) => fileStatusJson(e, page.ofFile ? '' : e.name))
      return json({
        DirectoryListing: {
          partialListing: { FileStatuses: { FileStatus: entries } },
          remainingEntries: page.remaining,
        },
      })
    }
    case 'GETCONTENTSUMMARY': {
      const s = await fs.contentSummary(caller, path)
      return json({
        ContentSummary: {
          directoryCount: s.directoryCount,
          fileCount: s.fileCount,
          length: s.length,
          quota: s.quota,
          spaceConsumed: s.spaceConsumed,
          spaceQuota: s.spaceQuota,
          typeQuota: {},
        },
      })
    }
    case 'GETFILECHECKSUM':
      return json({
        FileChecksum: (await deps.blocks?.checksum(caller, path)) ?? (await fs.checksum(caller, path)),
      })
    case 'GETHOMEDIRECTORY':
      return json({ Path: fs.homeDirectory(caller) })
    case 'GETXATTRS': {
      const names = many(q, 'xattr.name')
      const encoding = (one(q, 'encoding') ?? 'text').toLowerCase()
      if (!['text', 'hex', 'base64'].includes(encoding))
        throw new FsError('INVALID_ARGUMENT', `Invalid value for webhdfs parameter "encoding": ${encoding}`)
      const xattrs = await fs.getXAttrs(caller, path, names)
      return json({
        XAttrs: xattrs.map((x) => ({ name: x.name, value: encodeXAttrValue(x.value, encoding) })),
      })
    }
    case 'LISTXATTRS':
      return json({ XAttrNames: JSON.stringify(await fs.listXAttrs(caller, path)) })
    case 'OPEN': {
      const offset = int(q, 'offset', 0, 0)
      const length = q['length'] === undefined ? -1 : int(q, 'length', -1, 0)
      if (bool(q, 'noredirect', false)) return json({ Location: selfUrl(request, { noredirect: undefined }) })
      const blocks = deps.blocks
      if (
        blocks &&
        (await sendBlocked(reply, (b) => blocks.open(caller, path, offset, length, undefined, b)))
      )
        return reply
      const data = await fs.read(caller, path, { offset, length })
      return reply
        .type('application/octet-stream')
        .header('content-length', data.length)
        .send(Buffer.from(data.buffer, data.byteOffset, data.length))
    }
    case 'MKDIRS':
      await fs.mkdirs(caller, path, { permission: permission(q, 0o755) })
      return json(ok)
    case 'CREATE':
    case 'APPEND':
      return twoStep(deps, tokens, op, path, caller, request, reply)
    case 'GETDELEGATIONTOKEN': {
      const t = await delegation(deps).issueToken(caller, {
        renewer: one(q, 'renewer') || undefined,
        service: one(q, 'service') || request.headers.host || '',
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
      return reply.status(200).header('content-length', 0).send()
    case 'RENAME': {
      const dst = one(q, 'destination')
      if (!dst)
        throw new FsError('INVALID_ARGUMENT', 'Required param destination for op: RENAME is null or empty')
      return json({ boolean: await fs.renameLegacy(caller, path, dst) })
    }
    case 'DELETE':
      return json({ boolean: await fs.delete(caller, path, { recursive: bool(q, 'recursive', false) }) })
    case 'SETPERMISSION':
      await fs.setPermission(caller, path, permission(q, 0o755))
      return reply.status(200).send()
    case 'SETOWNER': {
      const owner = one(q, 'owner') || undefined
      const group = one(q, 'group') || undefined
      await fs.setOwner(caller, path, owner, group)
      return reply.status(200).send()
    }
    case 'SETTIMES':
      await fs.setTimes(caller, path, int(q, 'modificationtime', -1, -1), int(q, 'accesstime', -1, -1))
      return reply.status(200).send()
    case 'SETREPLICATION':
      return json({ boolean: await fs.setReplication(caller, path, int(q, 'replication', 0, 1)) })
    case 'SETXATTR': {
      const name = one(q, 'xattr.name')
      if (!name)
        throw new FsError('INVALID_ARGUMENT', 'Required param xattr.name for op: SETXATTR is null or empty')
      const flagRaw = (one(q, 'flag') ?? '').toUpperCase()
      const flags = flagRaw
        .split(',')
        .map((f) => f.trim())
        .filter((f) => f !== '')
      if (flags.some((f) => f !== 'CREATE' && f !== 'REPLACE'))
        throw new FsError('INVALID_ARGUMENT', `Invalid value for webhdfs parameter "flag": ${flagRaw}`)
      const flag = flags.length === 1 ? (flags[0] as 'CREATE' | 'REPLACE') : undefined
      await fs.setXAttr(caller, path, name, decodeXAttrValue(one(q, 'xattr.value') ?? ''), flag)
      return reply.status(200).send()
    }
    case 'REMOVEXATTR': {
      const name = one(q, 'xattr.name')
      if (!name)
        throw new FsError(
          'INVALID_ARGUMENT',
          'Required param xattr.name for op: REMOVEXATTR is null or empty',
        )
      await fs.removeXAttr(caller, path, name)
      return reply.status(200).send()
    }
  }
  throw new Error(`webhdfs: op ${op} allowed but not served`)
}

function delegation(deps: WebHdfsDeps): DelegationTokens {
  if (deps.delegation === undefined)
    throw new FsError('UNSUPPORTED_OPERATION', 'delegation tokens are not served by this node')
  return deps.delegation
}

function requiredToken(q: Query, op: string): string {
  const t = one(q, 'token')
  if (!t) throw new FsError('INVALID_ARGUMENT', `Required param token for op: ${op} is null or empty`)
  return t
}

/** Grants on WebHDFS: only an OPEN of the very path the grant names (a datanode reading back inline bytes). */
function grantUse(request: FastifyRequest): { op: string; path: string } | undefined {
  const q = request.query as Query
  if (request.method !== 'GET' || (one(q, 'op') ?? '').toUpperCase() !== 'OPEN') return undefined
  const params = request.params as { '*'?: string }
  const raw = '/' + (params['*'] ?? '')
  return { op: 'read', path: raw.length > 1 && raw.endsWith('/') ? raw.slice(0, -1) : raw }
}

/** CREATE / APPEND: step one (no token) redirects with a signed Location; step two (token) writes. */
async function twoStep(
  deps: WebHdfsDeps,
  tokens: TokenSigner,
  op: 'CREATE' | 'APPEND',
  path: string,
  caller: Principal | undefined,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<unknown> {
  const q = request.query as Query
  const token = one(q, 'hopsd.token')
  const signed = signedFields(op, path, q)
  if (token === undefined) {
    if (caller === undefined) throw new Error('webhdfs: step one without a caller')
    // Validate now: a bad parameter should fail step one, not after the client sent its data.
    if (op === 'CREATE') {
      permission(q, 0o644)
      int(q, 'replication', 0, 1)
      int(q, 'blocksize', 0, 1)
      bool(q, 'overwrite', false)
    }
    const user = caller.user
    const issued = tokens.issue(user, signed)
    // The Location carries no credential of the caller's (its token says who writes); `user.name`
    // stays only under simple auth, where it is what identifies the caller anyway.
    let location = selfUrl(request, {
      'user.name': caller.via === 'simple' ? user : undefined,
      delegation: undefined,
      'hopsd.token': issued,
      noredirect: undefined,
    })
    if (deps.grants !== undefined) {
      const grant = await deps.grants.sign(caller, { path, ops: WRITE_GRANT_OPS[op] })
      const url = new URL(location)
      url.searchParams.set('hopsd.grant', grant)
      location = url.toString()
    }
    const target = deps.blocks?.writeTarget()
    if (target !== undefined) {
      // The data goes to a datanode: small bodies still become one inline command there.
      const url = new URL(location)
      const dn = new URL(`/api/v1/datanode/write${encodePath(path)}${url.search}`, target)
      dn.searchParams.set('hopsd.inline', String(deps.blocks!.inlineThreshold()))
      location = dn.toString()
    }
    if (bool(q, 'noredirect', false))
      return reply.type('application/json').send(JSON.stringify({ Location: location }))
    return reply.status(307).header('location', location).header('content-length', 0).send()
  }
  const fs = deps.fs
  const user = tokens.verify(token, signed)
  const who: Caller = { user, groups: [] }
  const body = request.body
  const data =
    body instanceof Buffer ? new Uint8Array(body.buffer, body.byteOffset, body.length) : new Uint8Array(0)
  if (op === 'CREATE') {
    await fs.create(who, path, data, {
      overwrite: bool(q, 'overwrite', false),
      permission: permission(q, 0o644),
      replication: int(q, 'replication', 0, 1),
      blockSize: int(q, 'blocksize', 0, 1),
    })
    return reply
      .status(201)
      .header('location', `hdfs://${request.headers.host ?? 'localhost'}${encodeURI(path)}`)
      .header('content-length', 0)
      .send()
  }
  await fs.append(who, path, data)
  return reply.status(200).header('content-length', 0).send()
}

// ------------------------------------------------------------------------------------ JSON shapes

/** A FileStatus as WebHDFS's JsonUtil writes it. */
export function fileStatusJson(s: FileStatus, pathSuffix: string): Record<string, unknown> {
  return {
    accessTime: s.accessTime,
    blockSize: s.blockSize,
    childrenNum: s.childrenNum,
    fileId: s.fileId,
    group: s.group,
    length: s.length,
    modificationTime: s.modificationTime,
    owner: s.owner,
    pathSuffix,
    permission: (s.permission & 0o1777).toString(8),
    replication: s.replication,
    storagePolicy: 0,
    type: s.type,
  }
}

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

// ------------------------------------------------------------------------------------ parameters

function one(q: Query, name: string): string | undefined {
  const v = q[name] ?? q[Object.keys(q).find((k) => k.toLowerCase() === name) ?? '']
  if (Array.isArray(v)) return v[v.length - 1]
  return v
}

function many(q: Query, name: string): string[] | undefined {
  const v = q[name]
  if (v === undefined) return undefined
  return Array.isArray(v) ? v : [v]
}

function int(q: Query, name: string, dflt: number, min: number): number {
  const raw = one(q, name)
  if (raw === undefined || raw === '') return dflt
  if (!/^-?\d{1,16}$/.test(raw) || Number(raw) < min || !Number.isSafeInteger(Number(raw))) {
    throw new FsError(
      'INVALID_ARGUMENT',
      `Invalid value for webhdfs parameter "${name}": ${JSON.stringify(raw.slice(0, 50))}`,
    )
  }
  return Number(raw)
}

function bool(q: Query, name: string, dflt: boolean): boolean {
  const raw = one(q, name)
  if (raw === undefined || raw === '') return dflt
  const v = raw.toLowerCase()
  if (v === 'true') return true
  if (v === 'false') return false
  throw new FsError(
    'INVALID_ARGUMENT',
    `Invalid value for webhdfs parameter "${name}": ${JSON.stringify(raw.slice(0, 50))}`,
  )
}

/** Hadoop's PermissionParam: 1 to 4 octal digits, at most 1777. */
function permission(q: Query, dflt: number): number {
  const raw = one(q, 'permission')
  if (raw === undefined || raw === '') return dflt
  if (!/^[0-1]?[0-7]{1,3}$/.test(raw))
    throw new FsError(
      'INVALID_ARGUMENT',
      `Invalid value for webhdfs parameter "permission": ${JSON.stringify(raw.slice(0, 50))}`,
    )
  return Number.parseInt(raw, 8)
}

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

/** The parameters a redirect token binds: a changed one on the second hop voids the token. */
export function signedFields(op: string, path: string, q: Query): string {
  return [
    op,
    path,
    ...['overwrite', 'permission', 'replication', 'blocksize'].map((k) => `${k}=${one(q, k) ?? ''}`),
  ].join('\n')
}

// ------------------------------------------------------------------------------------ tokens

export interface TokenSigner {
  issue(user: string, fields: string): string
  /** The user the token was issued to; ACCESS_DENIED when forged, altered, expired or used. */
  verify(token: string, fields: string): string
}

export function createTokenSigner(key: Uint8Array, ttlMs: number, clock: () => number): TokenSigner {
  /** Used nonces until their expiry: a token works once. Bounded: expired ones are dropped first. */
  const used = new Map<string, number>()
  const mac = (payload: string): Buffer => createHmac('sha256', key).update(payload).digest()
  const denied = (why: string): FsError => new FsError('ACCESS_DENIED', `invalid hopsd.token: ${why}`)
  return {
    issue(user, fields) {
      const expiry = clock() + ttlMs
      const nonce = randomBytes(12).toString('base64url')
      const userB64 = Buffer.from(user, 'utf8').toString('base64url')
      const sig = mac(`${userB64}.${expiry}.${nonce}\n${fields}`).toString('base64url')
      return `${userB64}.${expiry}.${nonce}.${sig}`
    },
    verify(token, fields) {
      const parts = token.split('.')
      if (parts.length !== 4) throw denied('malformed')
      const [userB64, expiryRaw, nonce, sig] = parts as [string, string, string, string]
      const want = mac(`${userB64}.${expiryRaw}.${nonce}\n${fields}`)
      const got = Buffer.from(sig, 'base64url')
      if (got.length !== want.length || !timingSafeEqual(got, want)) throw denied('signature mismatch')
      const expiry = Number(expiryRaw)
      const now = clock()
      if (!(expiry > now)) throw denied('expired')
      if (used.has(nonce)) throw denied('already used')
      if (used.size >= TOKENS_MAX) for (const [n, e] of used) if (e <= now) used.delete(n)
      if (used.size >= TOKENS_MAX)
        throw new FsError('INVALID_ARGUMENT', 'too many outstanding write tokens; retry shortly')
      used.set(nonce, expiry)
      return Buffer.from(userB64, 'base64url').toString('utf8')
    },
  }
}

// ------------------------------------------------------------------------------------ errors

/** The RemoteException body and status for any error a WebHDFS route throws: through the error table. */
export { toRemoteException }
