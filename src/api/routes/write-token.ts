/**
 * The token of a two-step WebHDFS write (CREATE/APPEND → 307 → data): step one parses and checks every
 * parameter once and signs what the data step will act on — the caller (user and groups: the whole
 * principal), the op, the path, the create options, the inline threshold, the route and the node the
 * Location points at, an expiry. Step two acts on the signed grant alone, never on query parameters,
 * so nothing about the write can be changed on the second hop: an altered token fails its MAC, a
 * token taken to another route or node, or used for another op or path, is refused.
 *
 * A CREATE token works once. An APPEND token works for every POST within its lifetime (fsspec posts
 * each chunk of a file to the one Location it got, as HDFS allows); the node serves them one at a time,
 * in the order they arrive.
 *
 * The token travels as `hopsd.token=<payload>.<mac>` (base64url JSON and HMAC-SHA256); the request log
 * redacts it (src/api/server.ts).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { FsError, type Caller } from '../../fs/index.js'

/** The create options a CREATE's data step acts on (parsed and checked in step one). */
export interface CreateGrant {
  readonly overwrite: boolean
  readonly createParent: boolean
  /** 0: the cluster default. */
  readonly replication: number
  /** 0: the cluster default. */
  readonly blockSize: number
  readonly permission: number
  /** Hadoop CreateFlags that act on placement: the writing node is not preferred for the first replica. */
  readonly noLocalWrite: boolean
}

/** What step one grants the data step. */
export interface WriteGrant {
  readonly caller: Caller
  readonly op: 'CREATE' | 'APPEND'
  readonly path: string
  /** CREATE only. */
  readonly create?: CreateGrant
  /** Bodies up to this many bytes become one inline command. */
  readonly inlineThreshold: number
  /** Where the data step is served: the WebHDFS route of a metadata node, or a datanode's data route. */
  readonly route: 'webhdfs' | 'datanode'
  /** The node id the Location points at. */
  readonly node: string
  readonly expiresMs: number
  readonly nonce: string
}

export interface WriteTokens {
  /** Signs a grant for `ttl` from now. */
  issue(grant: Omit<WriteGrant, 'expiresMs' | 'nonce'>): string
  /**
   * The grant of `token` when it is genuine, unexpired and meant for this route, node, op and path;
   * ACCESS_DENIED otherwise. A CREATE token is spent by this call.
   */
  verify(
    token: string,
    expect: { route: WriteGrant['route']; node: string; op: string; path: string },
  ): WriteGrant
  /** Runs `fn` after every earlier call for the same grant has finished (APPEND POSTs in order). */
  serialize<T>(grant: WriteGrant, fn: () => Promise<T>): Promise<T>
}

const VERSION = 1
/** Spent CREATE nonces kept until they expire; bounded. */
const SPENT_MAX = 100_000
/** Grants with a POST in flight or queued; bounded. */
const QUEUES_MAX = 10_000

/** The token key every node of a cluster derives from the shared swarm key. */
export function writeTokenKey(swarmKey: Uint8Array): Uint8Array {
  return createHash('sha256').update('hopsd webhdfs write token v1\n').update(swarmKey).digest()
}

export function createWriteTokens(opts: {
  key: Uint8Array
  /** Lifetime of a token (default 10 minutes: a large file posted as many APPEND chunks needs one). */
  ttlMs?: number
  clock?: () => number
}): WriteTokens {
  const ttlMs = opts.ttlMs ?? 10 * 60_000
  const clock = opts.clock ?? Date.now
  const spent = new Map<string, number>()
  const queues = new Map<string, Promise<unknown>>()
  const mac = (payload: string): Buffer =>
    createHmac('sha256', opts.key).update(`hopsd write token v${VERSION}\n`).update(payload).digest()
  const denied = (why: string): FsError => new FsError('ACCESS_DENIED', `invalid hopsd.token: ${why}`)
  return {
    issue(grant) {
      const full: WriteGrant = {
        ...grant,
        caller: { user: grant.caller.user, groups: [...grant.caller.groups] },
        expiresMs: clock() + ttlMs,
        nonce: randomBytes(12).toString('base64url'),
      }
      const payload = Buffer.from(JSON.stringify({ v: VERSION, ...full }), 'utf8').toString('base64url')
      return `${payload}.${mac(payload).toString('base64url')}`
    },
    verify(token, expect) {
      const dot = token.indexOf('.')
      if (dot <= 0 || token.length > 8192) throw denied('malformed')
      const payload = token.slice(0, dot)
      const got = Buffer.from(token.slice(dot + 1), 'base64url')
      const want = mac(payload)
      if (got.length !== want.length || !timingSafeEqual(got, want)) throw denied('signature mismatch')
      let grant: WriteGrant & { v?: number }
      try {
        grant = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as WriteGrant & { v?: number }
      } catch {
        throw denied('malformed')
      }
      if (grant.v !== VERSION) throw denied('unknown version')
      const now = clock()
      if (!(grant.expiresMs > now)) throw denied('expired')
      if (grant.route !== expect.route) throw denied(`issued for the ${grant.route} route`)
      if (grant.node !== expect.node) throw denied('issued for another node')
      if (grant.op !== expect.op) throw denied(`issued for ${grant.op}, not ${expect.op}`)
      if (grant.path !== expect.path) throw denied('issued for another path')
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
