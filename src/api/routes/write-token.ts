/**
 * The token of a two-step WebHDFS write (CREATE/APPEND → 307 → data), `hopsd.token` in the Location:
 * one principal grant (src/auth/grant.ts) signed with the key of the metadata node that answered step
 * one, and the only credential of the second hop. It carries
 *  - the caller step one authenticated (user, groups, project), and a scope — the write's path and the
 *    metadata commands it needs (for an APPEND also the file's inode id): the datanode passes the token
 *    with every command and block allocation of the write, and the metadata group checks it (a trusted
 *    signer, unexpired, covering the command) and runs the command as that principal;
 *  - terms: the op, every parameter the data step acts on (create options, the inline threshold,
 *    NO_LOCAL_WRITE), the route and node the Location points at, and a nonce.
 * Step two acts on the token alone, never on query parameters: an altered token fails its signature, a
 * token signed by anything but a metadata node of the cluster is refused, and one taken to another
 * route or node, or used for another op or path, is refused.
 *
 * A CREATE token works once (per node: the node is in the token). An APPEND token works for every POST
 * within its lifetime (fsspec posts each chunk of a file to the one Location it got, as HDFS allows);
 * the node serves them one at a time, in the order they arrive.
 *
 * The request log redacts it (src/api/http-guards.ts redactUrl).
 */
import { generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto'
import {
  signGrant,
  verifyGrant,
  type GrantSigner,
  type GrantTerms,
  type GrantVerifier,
  type Principal,
} from '../../auth/index.js'
import { FsError } from '../../fs/index.js'
import type { WebHdfsQuery } from './webhdfs-params.js'

/** The create options a CREATE's data step acts on (parsed and checked in step one). */
export interface CreateGrant {
  readonly overwrite: boolean
  readonly createParent: boolean
  /** A createflag without CREATE: the file must exist already. */
  readonly mustExist: boolean
  /** 0: the cluster default. */
  readonly replication: number
  /** 0: the cluster default. */
  readonly blockSize: number
  readonly permission: number
}

/** What step one grants the data step. */
export interface WriteGrant {
  /** The writer, as the metadata node that signed the token authenticated it. */
  readonly caller: Principal
  readonly op: 'CREATE' | 'APPEND'
  readonly path: string
  /** CREATE only. */
  readonly create?: CreateGrant
  /** APPEND only: the file (inode) step one found at `path`; the append follows it through renames. */
  readonly fileId?: number
  /** Bodies up to this many bytes become one inline command. */
  readonly inlineThreshold: number
  /** Hadoop's NO_LOCAL_WRITE createflag: the writing node is not preferred for the first replica. */
  readonly noLocalWrite: boolean
  /** Where the data step is served: the WebHDFS route of a metadata node, or a datanode's data route. */
  readonly route: 'webhdfs' | 'datanode'
  /** The node id the Location points at. */
  readonly node: string
  readonly expiresMs: number
  readonly nonce: string
  /** The token itself: the grant the write's commands and block allocations carry. */
  readonly token: string
}

export type WriteGrantRequest = Omit<WriteGrant, 'caller' | 'expiresMs' | 'nonce' | 'token'>

export interface WriteTokens {
  /** Signs a token for `caller` and `grant`, valid for the tokens' lifetime from now. */
  issue(caller: Principal, grant: WriteGrantRequest): Promise<string>
  /**
   * The grant of `token` when it is genuine (a trusted signer), unexpired and meant for this route,
   * node, op and path; ACCESS_DENIED otherwise. A CREATE token is spent by this call.
   */
  verify(
    token: string,
    expect: { route: WriteGrant['route']; node: string; op: string; path: string },
    /** Further checks on the genuine grant before a CREATE token is spent (a refused request spends none). */
    check?: (grant: WriteGrant) => void,
  ): Promise<WriteGrant>
  /** Runs `fn` after every earlier call for the same grant has finished (APPEND POSTs in order). */
  serialize<T>(grant: WriteGrant, fn: () => Promise<T>): Promise<T>
}

/**
 * The metadata commands a write's token covers on its path (the block manager checks `addBlock` before
 * it reopens an append's last block). A failed CREATE deletes the file it made (by inode id, under its
 * lease); commands by inode id are bound to the write's lease in apply.
 */
export const WRITE_GRANT_OPS: Readonly<Record<'CREATE' | 'APPEND', readonly string[]>> = {
  CREATE: ['createFile', 'addBlock', 'updatePipeline', 'completeFile', 'delete'],
  APPEND: ['append', 'addBlock', 'updatePipeline', 'completeFile'],
}

/** Lifetime of a token: the whole upload (the last CompleteFile carries it too) and every APPEND chunk. */
export const WRITE_TOKEN_TTL_MS = 3_600_000
const VERSION = 2
/** Spent CREATE nonces kept until they expire; bounded. */
const SPENT_MAX = 100_000
/** Grants with a POST in flight or queued; bounded. */
const QUEUES_MAX = 10_000

export function createWriteTokens(opts: {
  /** Signs tokens (a metadata node's key); without it this node verifies only. */
  signer?: GrantSigner
  /** Checks signatures and that the signer is a metadata node of the cluster. */
  verifier: GrantVerifier
  ttlMs?: number
  clock?: () => number
}): WriteTokens {
  const ttlMs = opts.ttlMs ?? WRITE_TOKEN_TTL_MS
  const clock = opts.clock ?? Date.now
  const spent = new Map<string, number>()
  const queues = new Map<string, Promise<unknown>>()
  const denied = (why: string): FsError => new FsError('ACCESS_DENIED', `invalid hopsd.token: ${why}`)
  return {
    async issue(caller, grant) {
      if (opts.signer === undefined) throw new Error('write tokens: this node signs none')
      const terms: GrantTerms = {
        v: VERSION,
        op: grant.op,
        route: grant.route,
        node: grant.node,
        inline: grant.inlineThreshold,
        noLocalWrite: grant.noLocalWrite,
        nonce: randomBytes(12).toString('base64url'),
        ...(grant.create === undefined ? {} : { create: { ...grant.create } }),
      }
      return signGrant(
        opts.signer,
        caller,
        {
          path: grant.path,
          ops: WRITE_GRANT_OPS[grant.op],
          ...(grant.fileId === undefined ? {} : { fileId: grant.fileId }),
        },
        clock() + ttlMs,
        terms,
      )
    },
    async verify(token, expect, check) {
      const now = clock()
      const r = await verifyGrant(token, opts.verifier, now)
      if ('refused' in r) throw denied(r.reason)
      const grant = writeGrantOf(token, r.principal, r.scope, r.expiresMs, r.terms)
      if (grant === undefined) throw denied('not a write token')
      if (grant.route !== expect.route) throw denied(`issued for the ${grant.route} route`)
      if (grant.node !== expect.node) throw denied('issued for another node')
      if (grant.op !== expect.op) throw denied(`issued for ${grant.op}, not ${expect.op}`)
      if (grant.path !== expect.path) throw denied('issued for another path')
      check?.(grant)
      if (grant.op === 'CREATE') {
        if (spent.has(grant.nonce)) throw denied('already used')
        if (spent.size >= SPENT_MAX) for (const [n, e] of spent) if (e <= now) spent.delete(n)
        if (spent.size >= SPENT_MAX)
          throw new FsError('INVALID_ARGUMENT', 'too many write tokens outstanding; retry shortly')
        spent.set(grant.nonce, grant.expiresMs)
      }
      return grant
    },
    serialize(grant, fn) {
      const prev = queues.get(grant.nonce)
      if (prev === undefined && queues.size >= QUEUES_MAX)
        return Promise.reject(new FsError('INVALID_ARGUMENT', 'too many writes in flight; retry shortly'))
      const run = (prev ?? Promise.resolve()).then(fn, fn)
      const tail = run.catch(() => undefined)
      queues.set(grant.nonce, tail)
      void tail.then(() => {
        if (queues.get(grant.nonce) === tail) queues.delete(grant.nonce)
      })
      return run
    },
  }
}

/** The write grant a verified principal grant holds, or undefined when its terms are not a write's. */
function writeGrantOf(
  token: string,
  caller: Principal,
  scope: { path: string; ops: readonly string[]; fileId?: number },
  expiresMs: number,
  terms: GrantTerms | undefined,
): WriteGrant | undefined {
  if (terms === undefined || terms['v'] !== VERSION) return undefined
  const { op, route, node, inline, noLocalWrite, nonce, create } = terms
  if (op !== 'CREATE' && op !== 'APPEND') return undefined
  if (route !== 'webhdfs' && route !== 'datanode') return undefined
  if (typeof node !== 'string' || typeof nonce !== 'string' || typeof noLocalWrite !== 'boolean') return undefined
  if (typeof inline !== 'number' || !Number.isSafeInteger(inline) || inline < 0) return undefined
  // The scope is the op's: a token's commands are what its op needs, never more.
  const ops = WRITE_GRANT_OPS[op]
  if (scope.ops.length !== ops.length || !ops.every((o) => scope.ops.includes(o))) return undefined
  let createGrant: CreateGrant | undefined
  if (op === 'CREATE') {
    createGrant = createGrantOf(create)
    if (createGrant === undefined) return undefined
  } else if (create !== undefined) return undefined
  return {
    caller,
    op,
    path: scope.path,
    ...(createGrant === undefined ? {} : { create: createGrant }),
    ...(op === 'APPEND' && scope.fileId !== undefined ? { fileId: scope.fileId } : {}),
    inlineThreshold: inline,
    noLocalWrite,
    route,
    node,
    expiresMs,
    nonce,
    token,
  }
}

function createGrantOf(t: GrantTerms[string]): CreateGrant | undefined {
  if (typeof t !== 'object' || t === null) return undefined
  const { overwrite, createParent, mustExist, replication, blockSize, permission } = t
  if (typeof overwrite !== 'boolean' || typeof createParent !== 'boolean' || typeof mustExist !== 'boolean')
    return undefined
  for (const n of [replication, blockSize, permission])
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return undefined
  return {
    overwrite,
    createParent,
    mustExist,
    replication: replication as number,
    blockSize: blockSize as number,
    permission: permission as number,
  }
}

/**
 * A signer and verifier of this process alone (in-process servers and tests: Locations then work back
 * to the node that signed them only). The daemon signs with its node key and trusts the metadata group.
 */
export function localGrantKeys(nodeId = `local-${randomBytes(6).toString('hex')}`): {
  signer: GrantSigner
  verifier: GrantVerifier
} {
  const { privateKey: key, publicKey: pub } = generateKeyPairSync('ed25519')
  return {
    signer: { nodeId, sign: (data) => sign(null, data, key) },
    verifier: {
      trusted: (id) => id === nodeId,
      async verify(id, data, signature) {
        try {
          return id === nodeId && verify(null, data, pub, signature)
        } catch {
          return false
        }
      },
    },
  }
}

/**
 * Parameters a data step may carry besides its token: the op, and what clients add on their own
 * (HdfsCLI sends its session's `user.name` or `delegation` with every request, the Location included).
 */
const STEP_TWO_PARAMS = new Set(['op', 'hopsd.token', 'user.name', 'delegation', 'buffersize', 'noredirect'])

/**
 * Refuses a data step whose query carries anything the token does not cover: every parameter the
 * write acts on is in the token, so one added to the Location (an `overwrite`, a `hopsd.inline`) can
 * only be an attempt to change the write. `user.name`, when a client adds it, must name the token's user.
 */
export function checkDataStepQuery(q: WebHdfsQuery, grant: WriteGrant): void {
  for (const name of q.names()) {
    if (!STEP_TWO_PARAMS.has(name))
      throw new FsError(
        'ACCESS_DENIED',
        `invalid hopsd.token: the parameter ${JSON.stringify(name.slice(0, 60))} is not part of the signed Location`,
      )
  }
  const user = q.string('user.name')
  if (user !== undefined && user !== grant.caller.user)
    throw new FsError('ACCESS_DENIED', `invalid hopsd.token: issued to ${grant.caller.user}, not ${user}`)
  q.long('buffersize')
}
