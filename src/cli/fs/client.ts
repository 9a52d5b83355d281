// The HTTP client behind `hopsd fs`: WebHDFS (`/webhdfs/v1/<path>?op=…`) for namespace ops and large
// transfers, the native `/api/v1/fs/*` routes where one request does what WebHDFS needs two for.
// Every failure the server reports becomes a RemoteError carrying the server's own message.
import { Readable } from 'node:stream'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'

/** A FileStatus as WebHDFS answers it (permission is octal text). */
export interface RemoteStatus {
  readonly pathSuffix: string
  readonly type: 'FILE' | 'DIRECTORY'
  readonly length: number
  readonly owner: string
  readonly group: string
  readonly permission: string
  readonly modificationTime: number
  readonly replication: number
  readonly childrenNum: number
}

export interface ContentSummary {
  readonly directoryCount: number
  readonly fileCount: number
  readonly length: number
  readonly spaceConsumed: number
}

/**
 * The server refused a request (or could not be reached). `exception` is WebHDFS's RemoteException
 * name, or the native API's error code; `status` is 0 when no answer came back.
 */
export class RemoteError extends Error {
  constructor(
    readonly status: number,
    readonly exception: string,
    message: string,
  ) {
    super(message)
    this.name = 'RemoteError'
  }
}

/** Bound on one request's wait for response headers: a hung node should not hang the CLI forever. */
const REQUEST_TIMEOUT_MS = 120_000

export interface FsClientInit {
  /** Base URL of the node's API, e.g. `http://127.0.0.1:9870`. */
  readonly baseUrl: string
  /** Sent as WebHDFS `user.name` on every request when there is no key (simple auth). */
  readonly user: string
  /** An API key, sent as `Authorization: Bearer` on every request (then no `user.name` is sent). */
  readonly key?: string
}

export class FsClient {
  readonly baseUrl: string
  /** Who relative paths belong to (`/user/<user>`). */
  user: string
  readonly #key: string | undefined

  constructor(init: FsClientInit) {
    this.baseUrl = init.baseUrl.replace(/\/+$/, '')
    this.user = init.user
    this.#key = init.key
  }

  /** GETHOMEDIRECTORY: the caller's home as the cluster sees it (with a key: the key's user's). */
  async homeDirectory(): Promise<string> {
    return (await this.webhdfsJson<{ Path: string }>('GET', '/', 'GETHOMEDIRECTORY')).Path
  }

  // ------------------------------------------------------------------------------------- namespace

  async status(path: string): Promise<RemoteStatus> {
    const body = await this.webhdfsJson<{ FileStatus: RemoteStatus }>('GET', path, 'GETFILESTATUS')
    return body.FileStatus
  }

  /** The status, or undefined when the path does not exist. */
  async statusOrUndefined(path: string): Promise<RemoteStatus | undefined> {
    try {
      return await this.status(path)
    } catch (err) {
      if (err instanceof RemoteError && err.status === 404 && err.exception === 'FileNotFoundException')
        return undefined
      throw err
    }
  }

  /** Entries of a directory (a file lists as itself, with an empty pathSuffix). */
  async list(path: string): Promise<RemoteStatus[]> {
    const body = await this.webhdfsJson<{ FileStatuses: { FileStatus: RemoteStatus[] } }>(
      'GET',
      path,
      'LISTSTATUS',
    )
    return body.FileStatuses.FileStatus
  }

  async contentSummary(path: string): Promise<ContentSummary> {
    const body = await this.webhdfsJson<{ ContentSummary: ContentSummary }>('GET', path, 'GETCONTENTSUMMARY')
    return body.ContentSummary
  }

  async mkdirs(path: string, permission?: string): Promise<void> {
    await this.webhdfsJson('PUT', path, 'MKDIRS', permission === undefined ? {} : { permission })
  }

  /** Hadoop's rename: false when it did not happen (source missing, destination taken, ...). */
  async rename(src: string, dst: string): Promise<boolean> {
    const body = await this.webhdfsJson<{ boolean: boolean }>('PUT', src, 'RENAME', { destination: dst })
    return body.boolean
  }

  /** False when the path did not exist. */
  async delete(path: string, recursive: boolean): Promise<boolean> {
    const body = await this.webhdfsJson<{ boolean: boolean }>('DELETE', path, 'DELETE', {
      recursive: String(recursive),
    })
    return body.boolean
  }

  async setPermission(path: string, permission: string): Promise<void> {
    await this.webhdfs('PUT', path, 'SETPERMISSION', { permission })
  }

  async setOwner(path: string, owner: string | undefined, group: string | undefined): Promise<void> {
    const params: Record<string, string> = {}
    if (owner !== undefined) params['owner'] = owner
    if (group !== undefined) params['group'] = group
    await this.webhdfs('PUT', path, 'SETOWNER', params)
  }

  /** `GET /api/v1/fs/stat`: the native status, with `inlined`. */
  async nativeStat(path: string): Promise<Record<string, unknown>> {
    const res = await this.send('GET', this.nativeUrl('/api/v1/fs/stat', { path }))
    return (await res.json()) as Record<string, unknown>
  }

  /** `GET /api/v1/fs/health`: block counts and lists (under-replicated, missing, corrupt), datanodes. */
  async health(): Promise<Record<string, unknown>> {
    const res = await this.send('GET', this.nativeUrl('/api/v1/fs/health', {}))
    return (await res.json()) as Record<string, unknown>
  }

  // ------------------------------------------------------------------------------------- data

  /** `PUT /api/v1/fs/files`: a whole small file in one request (one Raft command). */
  async putSmall(path: string, data: Uint8Array, overwrite: boolean): Promise<void> {
    const res = await this.send(
      'PUT',
      this.nativeUrl('/api/v1/fs/files', { path, overwrite: String(overwrite) }),
      data,
    )
    await res.arrayBuffer()
  }

  /**
   * WebHDFS CREATE (two steps: `noredirect=true` gives the Location, the data goes there), then
   * APPEND for every further chunk. `chunks` yields the file's bytes in order.
   */
  async putChunked(
    path: string,
    chunks: AsyncIterable<Uint8Array>,
    overwrite: boolean,
    onBytes: (n: number) => void,
  ): Promise<void> {
    let created = false
    try {
      for await (const chunk of chunks) {
        if (!created) {
          await this.twoStep('PUT', path, 'CREATE', { overwrite: String(overwrite) }, chunk)
          created = true
        } else {
          await this.twoStep('POST', path, 'APPEND', {}, chunk)
        }
        onBytes(chunk.length)
      }
      if (!created)
        await this.twoStep('PUT', path, 'CREATE', { overwrite: String(overwrite) }, new Uint8Array(0))
    } catch (err) {
      // A half-written file is worse than none: remove what this call created, then report the cause.
      if (created) await this.delete(path, false).catch(() => undefined)
      throw err
    }
  }

  /** WebHDFS OPEN as a byte stream (redirects followed). */
  async open(path: string): Promise<Readable> {
    const res = await this.send('GET', this.webhdfsUrl(path, 'OPEN', {}))
    if (res.body === null) return Readable.from([])
    return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>)
  }

  // ------------------------------------------------------------------------------------- plumbing

  private async twoStep(
    method: 'PUT' | 'POST',
    path: string,
    op: 'CREATE' | 'APPEND',
    params: Record<string, string>,
    data: Uint8Array,
  ): Promise<void> {
    const step1 = await this.webhdfsJson<{ Location: string }>(method, path, op, {
      ...params,
      noredirect: 'true',
    })
    const res = await this.send(method, step1.Location, data)
    await res.arrayBuffer()
  }

  private async webhdfs(
    method: string,
    path: string,
    op: string,
    params: Record<string, string> = {},
  ): Promise<Response> {
    return this.send(method, this.webhdfsUrl(path, op, params))
  }

  private async webhdfsJson<T = unknown>(
    method: string,
    path: string,
    op: string,
    params: Record<string, string> = {},
  ): Promise<T> {
    const res = await this.webhdfs(method, path, op, params)
    return (await res.json()) as T
  }

  webhdfsUrl(path: string, op: string, params: Record<string, string>): string {
    const encoded = path
      .split('/')
      .map((s) => encodeURIComponent(s))
      .join('/')
    const q = new URLSearchParams({ op, ...this.identity(), ...params })
    return `${this.baseUrl}/webhdfs/v1${encoded}?${q.toString()}`
  }

  private nativeUrl(route: string, params: Record<string, string>): string {
    const q = new URLSearchParams({ ...params, ...this.identity() })
    return `${this.baseUrl}${route}?${q.toString()}`
  }

  /** `user.name` under simple auth; nothing when a key says who we are. */
  private identity(): Record<string, string> {
    return this.#key === undefined ? { 'user.name': this.user } : {}
  }

  /** One request; any non-2xx answer (or none) becomes a RemoteError. */
  private async send(method: string, url: string, body?: Uint8Array): Promise<Response> {
    let res: Response
    const headers: Record<string, string> = {}
    if (body !== undefined) headers['content-type'] = 'application/octet-stream'
    // Only to the node we were pointed at: a write's Location (a datanode) needs no credential.
    if (this.#key !== undefined && url.startsWith(this.baseUrl + '/'))
      headers['authorization'] = `Bearer ${this.#key}`
    try {
      res = await fetch(url, {
        method,
        body,
        headers,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      })
    } catch (err) {
      throw unreachable(this.baseUrl, err)
    }
    if (res.ok) return res
    throw await errorOf(res)
  }
}

/** The server's error body (WebHDFS RemoteException or the native `{error:{code,message}}`) as a RemoteError. */
async function errorOf(res: Response): Promise<RemoteError> {
  const text = await res.text().catch(() => '')
  try {
    const body = JSON.parse(text) as {
      RemoteException?: { exception?: string; message?: string }
      error?: { code?: string; message?: string }
      message?: string
    }
    if (body.RemoteException)
      return new RemoteError(
        res.status,
        body.RemoteException.exception ?? 'RemoteException',
        body.RemoteException.message ?? `HTTP ${res.status}`,
      )
    if (body.error)
      return new RemoteError(
        res.status,
        body.error.code ?? 'ERROR',
        body.error.message ?? `HTTP ${res.status}`,
      )
  } catch {
    // not JSON: fall through to the status line
  }
  return new RemoteError(res.status, `HTTP_${res.status}`, `HTTP ${res.status} ${res.statusText}`.trim())
}

function unreachable(baseUrl: string, err: unknown): RemoteError {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } }
  if (e.name === 'TimeoutError')
    return new RemoteError(0, 'TIMEOUT', `${baseUrl} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`)
  const why = e.cause?.code ?? e.cause?.message ?? e.message ?? String(err)
  return new RemoteError(0, 'UNREACHABLE', `cannot reach ${baseUrl} (${why}); is a node running there?`)
}
