// A small HTTP client for the fs routes of one node (native /api/v1/fs and WebHDFS), as the cluster tests
// use them: every call returns status and body, never throws on an HTTP error status.
import type { ClusterNode } from './cluster.js'

export interface Reply {
  readonly status: number
  readonly body: Buffer
  readonly headers: Headers
  /** The body as JSON (throws when it is not). */
  json(): any
}

const REQUEST_TIMEOUT_MS = 20_000

export async function call(
  url: string,
  init: { method?: string; body?: Uint8Array | string; timeoutMs?: number; redirect?: 'manual' } = {},
): Promise<Reply> {
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    body: init.body,
    headers: init.body !== undefined ? { 'content-type': 'application/octet-stream' } : undefined,
    redirect: init.redirect ?? 'manual',
    signal: AbortSignal.timeout(init.timeoutMs ?? REQUEST_TIMEOUT_MS),
  })
  const body = Buffer.from(await res.arrayBuffer())
  return {
    status: res.status,
    body,
    headers: res.headers,
    json: () => JSON.parse(body.toString('utf8')),
  }
}

export function urlOf(node: ClusterNode | string): string {
  return typeof node === 'string' ? node : node.handle.url
}

const q = (params: Record<string, string | number | boolean | undefined>): string =>
  Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&')

// ---- native /api/v1/fs

export function putFile(
  node: ClusterNode | string,
  path: string,
  data: Uint8Array,
  opts: {
    user?: string
    overwrite?: boolean
    timeoutMs?: number
    /** Idempotency: a retry with the same clientId and seq is applied at most once. */
    session?: { clientId: string; seq: number }
  } = {},
): Promise<Reply> {
  const params = {
    path,
    'user.name': opts.user ?? 'hopsd',
    overwrite: opts.overwrite,
    clientId: opts.session?.clientId,
    seq: opts.session?.seq,
  }
  return call(`${urlOf(node)}/api/v1/fs/files?${q(params)}`, {
    method: 'PUT',
    body: data,
    timeoutMs: opts.timeoutMs,
  })
}

export function getFile(
  node: ClusterNode | string,
  path: string,
  opts: { user?: string; stale?: boolean; timeoutMs?: number } = {},
): Promise<Reply> {
  return call(
    `${urlOf(node)}/api/v1/fs/files?${q({ path, 'user.name': opts.user ?? 'hopsd', stale: opts.stale })}`,
    { timeoutMs: opts.timeoutMs },
  )
}

export function nativeStat(
  node: ClusterNode | string,
  path: string,
  opts: { user?: string; stale?: boolean } = {},
): Promise<Reply> {
  return call(
    `${urlOf(node)}/api/v1/fs/stat?${q({ path, 'user.name': opts.user ?? 'hopsd', stale: opts.stale })}`,
  )
}

export interface ChangeEventDoc {
  index: number
  op: string
  path: string
  dst: string
  inodeId: number
  user: string
  timeMs: number
}

export async function changes(
  node: ClusterNode | string,
  since = 0,
  opts: { waitMs?: number; limit?: number } = {},
): Promise<{ events: ChangeEventDoc[]; truncated: boolean; lastIndex: number }> {
  const r = await call(
    `${urlOf(node)}/api/v1/fs/changes?${q({ since, waitMs: opts.waitMs, limit: opts.limit ?? 10_000 })}`,
    { timeoutMs: (opts.waitMs ?? 0) + REQUEST_TIMEOUT_MS },
  )
  if (r.status !== 200) throw new Error(`changes: ${r.status} ${r.body.toString()}`)
  return r.json()
}

// ---- WebHDFS

export function webhdfs(
  node: ClusterNode | string,
  method: string,
  path: string,
  op: string,
  params: Record<string, string | number | boolean | undefined> = {},
  body?: Uint8Array,
): Promise<Reply> {
  const user = params['user.name'] ?? 'hopsd'
  return call(`${urlOf(node)}/webhdfs/v1${path}?${q({ op, ...params, 'user.name': user })}`, {
    method,
    body,
  })
}

/**
 * Hadoop's two-step CREATE: step one without data (expects 307 and a Location), step two sends the
 * bytes to the Location. Returns both replies and the Location.
 */
export async function webhdfsCreate(
  node: ClusterNode | string,
  path: string,
  data: Uint8Array,
  params: Record<string, string | number | boolean | undefined> = {},
): Promise<{ step1: Reply; step2?: Reply; location?: string }> {
  const step1 = await webhdfs(node, 'PUT', path, 'CREATE', params)
  const location = step1.headers.get('location') ?? undefined
  if (step1.status !== 307 || location === undefined) return { step1 }
  const step2 = await call(location, { method: 'PUT', body: data })
  return { step1, step2, location }
}
