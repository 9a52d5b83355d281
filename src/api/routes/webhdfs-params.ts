/**
 * WebHDFS query parameters, read one way on every route and in both steps of a write (the route of a
 * metadata node, a datanode's data route): Hadoop's rules, as its NameNode and DataNode apply them.
 *
 * - Names are case-insensitive (Hadoop's ParamFilter lowercases them): `OP=CREATE` is `op=CREATE`.
 * - Op names and booleans are case-insensitive (`op=create`, `overwrite=TRUE`).
 * - An empty value counts as absent, and so does `null` for numbers (Hadoop's Param.Domain).
 * - Refused with 400 before anything is done: a parameter without a name (`&=x`), a parameter given
 *   twice (only `xattr.name` may repeat, as GETXATTRS takes several), a value outside its domain.
 * - Unknown names are ignored, as Hadoop ignores them.
 *
 * The same table documents the routes (OpenAPI): `op` enumerated per method, every parameter typed.
 */
import { FsError } from '../../fs/index.js'

export type HttpMethod = 'GET' | 'PUT' | 'POST' | 'DELETE'

/** The ops hopsd serves, by method (Hadoop's GetOpParam, PutOpParam, PostOpParam, DeleteOpParam). */
export const WEBHDFS_OPS = {
  GET: [
    'OPEN',
    'GETFILESTATUS',
    'LISTSTATUS',
    'LISTSTATUS_BATCH',
    'GETCONTENTSUMMARY',
    'GETQUOTAUSAGE',
    'GETFILECHECKSUM',
    'GETHOMEDIRECTORY',
    'GETFILEBLOCKLOCATIONS',
    'GET_BLOCK_LOCATIONS',
    'GETTRASHROOT',
    'GETSERVERDEFAULTS',
    'GETSTATUS',
    'CHECKACCESS',
    'GETXATTRS',
    'LISTXATTRS',
    'GETDELEGATIONTOKEN',
  ],
  PUT: [
    'CREATE',
    'MKDIRS',
    'RENAME',
    'SETPERMISSION',
    'SETOWNER',
    'SETTIMES',
    'SETREPLICATION',
    'SETXATTR',
    'REMOVEXATTR',
    'SETQUOTA',
    'SETQUOTABYSTORAGETYPE',
    'RENEWDELEGATIONTOKEN',
    'CANCELDELEGATIONTOKEN',
  ],
  POST: ['APPEND', 'CONCAT', 'TRUNCATE'],
  DELETE: ['DELETE'],
} as const satisfies Record<HttpMethod, readonly string[]>

export type WebHdfsOp = (typeof WEBHDFS_OPS)[HttpMethod][number]

/** Ops Hadoop defines that hopsd does not serve: UnsupportedOperationException, not "no such op". */
export const WEBHDFS_UNSUPPORTED_OPS: Readonly<Record<HttpMethod, readonly string[]>> = {
  GET: [
    'GETACLSTATUS',
    'GETALLSTORAGEPOLICY',
    'GETSTORAGEPOLICY',
    'GETECPOLICY',
    'GETSNAPSHOTDIFF',
    'GETSNAPSHOTDIFFLISTING',
    'GETSNAPSHOTTABLEDIRECTORYLIST',
    'GETLINKTARGET',
    'GETFILELINKSTATUS',
    'GETECPOLICIES',
    'GETECCODECS',
    'GETTRASHROOTS',
    'GETSNAPSHOTLIST',
  ],
  PUT: [
    'CREATESYMLINK',
    'MODIFYACLENTRIES',
    'REMOVEACLENTRIES',
    'REMOVEDEFAULTACL',
    'REMOVEACL',
    'SATISFYSTORAGEPOLICY',
    'SETACL',
    'ENABLEECPOLICY',
    'DISABLEECPOLICY',
    'SETECPOLICY',
    'ALLOWSNAPSHOT',
    'DISALLOWSNAPSHOT',
    'CREATESNAPSHOT',
    'RENAMESNAPSHOT',
    'SETSTORAGEPOLICY',
  ],
  POST: ['UNSETECPOLICY', 'UNSETSTORAGEPOLICY'],
  DELETE: ['DELETESNAPSHOT'],
}

/** Hadoop's CreateFlag values (createflag is a comma list of them). */
export const CREATE_FLAGS = [
  'CREATE',
  'OVERWRITE',
  'APPEND',
  'SYNC_BLOCK',
  'LAZY_PERSIST',
  'NEW_BLOCK',
  'NO_LOCAL_WRITE',
  'SHOULD_REPLICATE',
  'IGNORE_CLIENT_LOCALITY',
  'NO_LOCAL_RACK',
] as const
export type CreateFlag = (typeof CREATE_FLAGS)[number]

/** Storage types that take a quota (Hadoop's StorageType.getTypesSupportingQuota: the non-transient ones). */
export const QUOTA_STORAGE_TYPES = ['SSD', 'DISK', 'ARCHIVE', 'PROVIDED', 'NVDIMM'] as const
export type QuotaStorageType = (typeof QUOTA_STORAGE_TYPES)[number]

/** Hadoop's Long.MAX_VALUE spelling of "leave this quota as it is" (HdfsConstants.QUOTA_DONT_SET). */
export const QUOTA_DONT_SET_TEXT = '9223372036854775807'

type ParamType = 'boolean' | 'long' | 'int' | 'short' | 'octal' | 'string' | 'flags' | 'fsaction'

interface ParamSpec {
  readonly type: ParamType
  readonly min?: number
  readonly max?: number
  /** May be given more than once. */
  readonly multi?: boolean
  /** The ops that read it (for the document). */
  readonly ops: readonly string[]
  readonly description: string
}

const LONG_MAX = 2n ** 63n - 1n
const INT_MAX = 2 ** 31 - 1

/** Every parameter hopsd reads, with its domain (Hadoop's *Param classes). */
export const WEBHDFS_PARAMS: Readonly<Record<string, ParamSpec>> = {
  'user.name': {
    type: 'string',
    ops: ['*'],
    description:
      'the caller under simple auth only, read by the auth hook (`dr.who` when absent); secure auth answers 401',
  },
  delegation: {
    type: 'string',
    ops: ['*'],
    description: 'a delegation token (or an API key): the credential, read by the auth hook',
  },
  project: {
    type: 'string',
    ops: ['*'],
    description:
      'act as the caller within this project (a project-user principal), as the header X-Hopsd-Project; read by the auth hook',
  },
  renewer: {
    type: 'string',
    ops: ['GETDELEGATIONTOKEN'],
    description: 'the user who may renew the token (default: its owner)',
  },
  service: {
    type: 'string',
    ops: ['GETDELEGATIONTOKEN'],
    description: "the token's service (default: the Host the request names), for Hadoop's token selection",
  },
  kind: { type: 'string', ops: ['GETDELEGATIONTOKEN'], description: 'accepted; the kind is WEBHDFS (SWEBHDFS over TLS)' },
  token: {
    type: 'string',
    ops: ['RENEWDELEGATIONTOKEN', 'CANCELDELEGATIONTOKEN'],
    description: 'the delegation token (its URL string)',
  },
  noredirect: {
    type: 'boolean',
    ops: ['CREATE', 'APPEND', 'OPEN'],
    description: 'answer 200 `{"Location": …}` instead of 307',
  },
  overwrite: { type: 'boolean', ops: ['CREATE'], description: 'replace an existing file' },
  createflag: {
    type: 'flags',
    ops: ['CREATE'],
    description: `comma list of ${CREATE_FLAGS.join(', ')} (case-insensitive); empty: CREATE, with OVERWRITE when overwrite=true`,
  },
  createparent: {
    type: 'boolean',
    ops: ['CREATE'],
    description:
      'create missing parent directories (default true); false answers 404 when the parent is missing',
  },
  blocksize: {
    type: 'long',
    min: 1,
    ops: ['CREATE'],
    description: 'block size in bytes (a multiple of 512, at least the cluster minBlockSize)',
  },
  buffersize: {
    type: 'int',
    min: 1,
    ops: ['CREATE', 'APPEND', 'OPEN'],
    description: 'accepted (Hadoop clients send it); hopsd sizes its own buffers',
  },
  replication: {
    type: 'short',
    min: 1,
    ops: ['CREATE', 'SETREPLICATION'],
    description: 'replicas per block',
  },
  permission: {
    type: 'octal',
    min: 0,
    max: 0o1777,
    ops: ['CREATE', 'MKDIRS', 'SETPERMISSION'],
    description: 'octal mode, 0 to 1777',
  },
  unmaskedpermission: {
    type: 'octal',
    min: 0,
    max: 0o1777,
    ops: ['CREATE', 'MKDIRS'],
    description: 'accepted; hopsd applies `permission` as given (no umask)',
  },
  offset: {
    type: 'long',
    min: 0,
    ops: ['OPEN', 'GETFILEBLOCKLOCATIONS', 'GET_BLOCK_LOCATIONS'],
    description: 'byte offset',
  },
  length: {
    type: 'long',
    min: 0,
    ops: ['OPEN', 'GETFILEBLOCKLOCATIONS', 'GET_BLOCK_LOCATIONS'],
    description: 'bytes (default: to the end)',
  },
  destination: { type: 'string', ops: ['RENAME'], description: 'the new path' },
  recursive: { type: 'boolean', ops: ['DELETE'], description: 'delete a non-empty directory' },
  owner: { type: 'string', ops: ['SETOWNER'], description: 'new owner' },
  group: { type: 'string', ops: ['SETOWNER'], description: 'new group' },
  modificationtime: {
    type: 'long',
    min: -1,
    ops: ['SETTIMES'],
    description: 'ms since the epoch; -1 unchanged',
  },
  accesstime: { type: 'long', min: -1, ops: ['SETTIMES'], description: 'ms since the epoch; -1 unchanged' },
  startafter: { type: 'string', ops: ['LISTSTATUS_BATCH'], description: 'list after this name' },
  'xattr.name': {
    type: 'string',
    multi: true,
    ops: ['GETXATTRS', 'SETXATTR', 'REMOVEXATTR'],
    description: 'xattr name (repeatable for GETXATTRS)',
  },
  'xattr.value': { type: 'string', ops: ['SETXATTR'], description: 'value: "text", 0x hex or 0s base64' },
  encoding: { type: 'string', ops: ['GETXATTRS'], description: 'text, hex or base64' },
  flag: { type: 'string', ops: ['SETXATTR'], description: 'CREATE or REPLACE' },
  sources: { type: 'string', ops: ['CONCAT'], description: 'comma list of the files appended to the target' },
  newlength: { type: 'long', min: 0, ops: ['TRUNCATE'], description: 'the new length in bytes' },
  fsaction: { type: 'fsaction', ops: ['CHECKACCESS'], description: 'the access to check, as `[r-][w-][x-]`' },
  namespacequota: {
    type: 'long',
    min: -1,
    ops: ['SETQUOTA'],
    description: `names (files and directories) allowed under the directory, itself included; -1 clears, ${QUOTA_DONT_SET_TEXT} keeps`,
  },
  storagespacequota: {
    type: 'long',
    min: -1,
    ops: ['SETQUOTA', 'SETQUOTABYSTORAGETYPE'],
    description: `bytes of replicas allowed under the directory; -1 clears, ${QUOTA_DONT_SET_TEXT} keeps`,
  },
  storagetype: {
    type: 'string',
    ops: ['SETQUOTABYSTORAGETYPE'],
    description: `the storage type: ${QUOTA_STORAGE_TYPES.join(', ')}`,
  },
  'hopsd.token': {
    type: 'string',
    ops: ['CREATE', 'APPEND'],
    description: 'step two of a write: the token of the Location step one answered (do not set by hand)',
  },
}

/** A parsed WebHDFS query: names lowercased, no repeats (but `xattr.name`), no empty names. */
export class WebHdfsQuery {
  private constructor(private readonly values: ReadonlyMap<string, readonly string[]>) {}

  /**
   * Parses the raw query string (after `?`, undecoded). INVALID_ARGUMENT for an empty name or a
   * repeated parameter.
   */
  static parse(rawQuery: string): WebHdfsQuery {
    const values = new Map<string, string[]>()
    if (rawQuery.length > 0) {
      let params: URLSearchParams
      try {
        params = new URLSearchParams(rawQuery)
      } catch {
        throw new FsError('INVALID_ARGUMENT', 'the query string does not decode')
      }
      for (const [rawName, value] of params) {
        const name = rawName.toLowerCase()
        if (name === '') {
          // `&=x` used to fill in every missing parameter (a delete became recursive, a caller the superuser).
          throw new FsError('INVALID_ARGUMENT', 'a query parameter has an empty name')
        }
        const list = values.get(name)
        if (list === undefined) values.set(name, [value])
        else {
          if (WEBHDFS_PARAMS[name]?.multi !== true)
            throw new FsError(
              'INVALID_ARGUMENT',
              `Invalid value for webhdfs parameter "${clip(name)}": given more than once`,
            )
          list.push(value)
        }
      }
    }
    return new WebHdfsQuery(values)
  }

  /** The query of a request URL (`/path?query`). */
  static fromUrl(url: string): WebHdfsQuery {
    const q = url.indexOf('?')
    return WebHdfsQuery.parse(q < 0 ? '' : url.slice(q + 1))
  }

  /** Whether the parameter is given with a non-empty value. */
  has(name: string): boolean {
    return this.raw(name) !== undefined
  }

  /** Every name given (lowercased). */
  names(): string[] {
    return [...this.values.keys()]
  }

  /** The value as given; undefined when absent or empty (Hadoop: empty = not given). */
  raw(name: string): string | undefined {
    const v = this.values.get(name)?.[0]
    return v === undefined || v.trim() === '' ? undefined : v
  }

  string(name: string): string | undefined {
    return this.raw(name)
  }

  /** Every value of a repeatable parameter (empty ones dropped). */
  strings(name: string): string[] {
    return (this.values.get(name) ?? []).filter((v) => v.trim() !== '')
  }

  /** The op, upper-cased; INVALID_ARGUMENT when missing. */
  op(): string {
    const v = this.raw('op')
    if (v === undefined) throw invalid('op', '', 'missing')
    return v.toUpperCase()
  }

  boolean(name: string, dflt: boolean): boolean {
    const v = this.raw(name)
    if (v === undefined) return dflt
    const lower = v.toLowerCase()
    if (lower === 'true') return true
    if (lower === 'false') return false
    throw invalid(name, v, `Failed to parse "${clip(v)}" to Boolean.`)
  }

  /** A decimal integer within the parameter's domain (and JavaScript's safe integers); undefined when absent. */
  long(name: string): number | undefined {
    const spec = WEBHDFS_PARAMS[name]
    const v = this.raw(name)
    if (v === undefined || v === 'null') return undefined
    if (!/^[+-]?\d{1,19}$/.test(v))
      throw invalid(name, v, `Failed to parse "${clip(v)}" as a radix-10 long integer.`)
    const big = BigInt(v)
    if (big > LONG_MAX || big < -LONG_MAX - 1n)
      throw invalid(name, v, `Failed to parse "${clip(v)}" as a radix-10 long integer.`)
    const max = spec?.type === 'int' ? INT_MAX : spec?.type === 'short' ? 32767 : undefined
    if (max !== undefined && big > BigInt(max))
      throw invalid(name, v, `Failed to parse "${clip(v)}" as a radix-10 ${spec!.type}.`)
    if (spec?.min !== undefined && big < BigInt(spec.min))
      throw invalid(name, v, `Invalid parameter range: ${name} = ${v} < ${spec.min}`)
    if (spec?.max !== undefined && big > BigInt(spec.max))
      throw invalid(name, v, `Invalid parameter range: ${name} = ${v} > ${spec.max}`)
    // Past 2^53 (Hadoop clients send Long.MAX_VALUE for "to the end"): as large as JavaScript counts.
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER
    if (big < BigInt(Number.MIN_SAFE_INTEGER)) return Number.MIN_SAFE_INTEGER
    return Number(big)
  }

  /** A quota: a long, with Hadoop's Long.MAX_VALUE meaning "leave it" (returned as 'keep'). */
  quota(name: string): number | 'keep' | undefined {
    const v = this.raw(name)
    if (v !== undefined && v.replace(/^\+/, '') === QUOTA_DONT_SET_TEXT) return 'keep'
    return this.long(name)
  }

  /** An octal mode within the parameter's domain (Hadoop's PermissionParam). */
  octal(name: string): number | undefined {
    const spec = WEBHDFS_PARAMS[name]
    const v = this.raw(name)
    if (v === undefined || v === 'null') return undefined
    if (!/^[+-]?[0-7]{1,6}$/.test(v))
      throw invalid(name, v, `Failed to parse "${clip(v)}" as a radix-8 short integer.`)
    const n = Number.parseInt(v, 8)
    if (spec?.min !== undefined && n < spec.min)
      throw invalid(name, v, `Invalid parameter range: ${name} = ${v} < ${spec.min.toString(8)}`)
    if (spec?.max !== undefined && n > spec.max)
      throw invalid(name, v, `Invalid parameter range: ${name} = ${v} > ${spec.max.toString(8)}`)
    return n
  }

  /** Hadoop's CreateFlagParam: a comma list of CreateFlag names, case-insensitive; empty = none. */
  createFlags(): Set<CreateFlag> {
    const v = this.raw('createflag')
    const out = new Set<CreateFlag>()
    if (v === undefined) return out
    for (const part of v.split(',')) {
      const f = part.trim().toUpperCase()
      if (!(CREATE_FLAGS as readonly string[]).includes(f))
        throw invalid('createflag', v, `No enum constant org.apache.hadoop.fs.CreateFlag.${clip(f)}`)
      out.add(f as CreateFlag)
    }
    return out
  }

  /** Hadoop's FsActionParam: `[r-][w-][x-]`, as permission bits (r=4, w=2, x=1). */
  fsAction(): number | undefined {
    const v = this.raw('fsaction')
    if (v === undefined || v === 'null') return undefined
    if (!/^[r-][w-][x-]$/.test(v))
      throw invalid('fsaction', v, `"${clip(v)}" does not match the pattern [r-][w-][x-]`)
    return (v[0] === 'r' ? 4 : 0) | (v[1] === 'w' ? 2 : 0) | (v[2] === 'x' ? 1 : 0)
  }
}

/** Hadoop's message for a parameter outside its domain (ExceptionHandler wraps ParamException so). */
export function invalid(name: string, value: string, why: string): FsError {
  void value
  return new FsError('INVALID_ARGUMENT', `Invalid value for webhdfs parameter "${clip(name)}": ${why}`)
}

function clip(s: string): string {
  return s.length > 60 ? s.slice(0, 60) + '…' : s
}

/**
 * The querystring schema of one method's WebHDFS route, for the OpenAPI document (the server parses
 * with {@link WebHdfsQuery}, not with this schema): `op` enumerated, every parameter typed as text with
 * the pattern its parser accepts.
 */
export function webhdfsQuerySchema(method: HttpMethod): Record<string, unknown> {
  const ops: readonly string[] = WEBHDFS_OPS[method]
  const properties: Record<string, unknown> = {
    op: {
      type: 'string',
      enum: [...ops],
      description: `the operation (case-insensitive). Hadoop's other ${method} ops (${WEBHDFS_UNSUPPORTED_OPS[method].join(', ')}) answer 400 UnsupportedOperationException`,
    },
  }
  for (const [name, spec] of Object.entries(WEBHDFS_PARAMS)) {
    const usedBy = spec.ops.includes('*') ? ops : spec.ops.filter((o) => ops.includes(o))
    if (usedBy.length === 0) continue
    properties[name] = {
      type: 'string',
      ...patternOf(spec),
      description: `${spec.description} (${spec.ops.includes('*') ? 'every op' : usedBy.join(', ')})`,
    }
  }
  return { type: 'object', required: ['op'], properties, additionalProperties: true }
}

function patternOf(spec: ParamSpec): { pattern?: string } {
  switch (spec.type) {
    case 'boolean':
      return { pattern: '^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$' }
    case 'octal':
      return { pattern: '^[01]?[0-7]{1,3}$' }
    case 'long':
    case 'int':
    case 'short':
      return { pattern: spec.min !== undefined && spec.min >= 0 ? '^[0-9]{1,15}$' : '^-?[0-9]{1,15}$' }
    case 'fsaction':
      return { pattern: '^[r-][w-][x-]$' }
    default:
      return {}
  }
}
