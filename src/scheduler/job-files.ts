/**
 * How a worker touches the file system on a job's behalf — its logs, its script — as the job's own
 * principal (the short-lived credential of the project-user, see job-runtime.ts), never as the node: the
 * file system checks the job's permissions, exactly as it checks the program's own calls.
 *
 * {@link webHdfsFiles} speaks WebHDFS to a node's HTTP API (the worker's own node: any node serves the
 * file system, forwarding when it holds no replica), with Hadoop's two-step CREATE/APPEND: step one
 * answers the Location (`noredirect=true`), step two sends the bytes there (a datanode when the cluster
 * has one, which also moves a file past the inline threshold into blocks).
 */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'

/** What a task authenticates with: an API key, or (simple auth only) a user name. */
export interface JobCredential {
  /** `hk.<id>.<secret>`, sent as `Authorization: Bearer`. */
  readonly key?: string
  /** Sent as WebHDFS `user.name` when there is no key (the cluster runs simple auth). */
  readonly userName?: string
  /**
   * The project the user name acts in, sent as WebHDFS `project=` (a key acts in the project it was
   * made for and needs none).
   */
  readonly project?: string
}

export interface JobFiles {
  /** Creates a directory and its missing parents (mode 755). */
  mkdirs(path: string, signal?: AbortSignal): Promise<void>
  /** Creates a file with `data` (empty by default); fails if it exists. */
  create(path: string, data?: Uint8Array, signal?: AbortSignal): Promise<void>
  /** Appends `data` to a file (opened and closed again by the append). */
  append(path: string, data: Uint8Array, signal?: AbortSignal): Promise<void>
  /** A whole file, at most `bytesMax` bytes (FILE_TOO_LARGE beyond). */
  read(path: string, bytesMax: number, signal?: AbortSignal): Promise<Uint8Array>
  /** Resolves when the principal may read the file (`r--`); rejects with the refusal otherwise. */
  checkRead(path: string, signal?: AbortSignal): Promise<void>
}

/** A refusal or failure of the file system (the server's RemoteException, or no answer: status 0). */
export class JobFilesError extends Error {
  constructor(
    readonly status: number,
    /** Hadoop's exception name (FileNotFoundException, AccessControlException, ...), or a local code. */
    readonly exception: string,
    message: string,
  ) {
    super(message)
    this.name = 'JobFilesError'
  }
}

export interface WebHdfsFilesInit {
  /** The node's API, `http://HOST:PORT` or `https://…`. */
  readonly baseUrl: string
  readonly credential: JobCredential
  /** The CA to trust for https:// (the cluster CA). */
  readonly ca?: () => string | undefined
  /** Deadline of one request (default 30 s). */
  readonly timeoutMs?: number
}

/** Largest JSON answer read (a Location, a boolean, an error). */
const JSON_BYTES_MAX = 64 * 1024

export function webHdfsFiles(init: WebHdfsFilesInit): JobFiles {
  const timeoutMs = init.timeoutMs ?? 30_000
  const { key, userName, project } = init.credential

  const url = (path: string, params: Record<string, string>): URL => {
    const u = new URL(`/webhdfs/v1${encodePath(path)}`, init.baseUrl)
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v)
    if (key === undefined && userName !== undefined) {
      u.searchParams.set('user.name', userName)
      if (project !== undefined && project !== '') u.searchParams.set('project', project)
    }
    return u
  }
  const auth = (): Record<string, string> => (key === undefined ? {} : { authorization: `Bearer ${key}` })

  const call = async (
    method: string,
    u: URL,
    opts: { body?: Uint8Array; headers?: Record<string, string>; bytesMax?: number; signal?: AbortSignal },
  ): Promise<{ status: number; body: Buffer }> => {
    const res = await send(method, u, {
      ...opts,
      ca: init.ca?.(),
      timeoutMs,
      bytesMax: opts.bytesMax ?? JSON_BYTES_MAX,
    })
    if (res.status >= 200 && res.status < 300) return res
    throw remoteError(res.status, res.body, `${method} ${u.pathname}`)
  }

  /** Step one (the Location, as the principal), then step two (the bytes, to the Location). */
  const twoStep = async (
    method: 'PUT' | 'POST',
    path: string,
    params: Record<string, string>,
    data: Uint8Array,
    signal: AbortSignal | undefined,
  ): Promise<void> => {
    const first = await call(method, url(path, { ...params, noredirect: 'true' }), {
      headers: auth(),
      signal,
    })
    const location = parseJson<{ Location?: string }>(first.body).Location
    if (typeof location !== 'string')
      throw new JobFilesError(first.status, 'BAD_ANSWER', `${params['op']} ${path}: no Location`)
    await call(method, new URL(location), {
      body: data,
      headers: { 'content-type': 'application/octet-stream' },
      signal,
    })
  }

  return {
    async mkdirs(path, signal) {
      await call('PUT', url(path, { op: 'MKDIRS', permission: '755' }), { headers: auth(), signal })
    },
    create: (path, data = new Uint8Array(0), signal) =>
      twoStep('PUT', path, { op: 'CREATE', overwrite: 'false' }, data, signal),
    append: (path, data, signal) => twoStep('POST', path, { op: 'APPEND' }, data, signal),
    async read(path, bytesMax, signal) {
      const res = await call('GET', url(path, { op: 'OPEN' }), { headers: auth(), bytesMax, signal })
      return new Uint8Array(res.body.buffer, res.body.byteOffset, res.body.length)
    },
    async checkRead(path, signal) {
      await call('GET', url(path, { op: 'CHECKACCESS', fsaction: 'r--' }), { headers: auth(), signal })
    },
  }
}

function encodePath(path: string): string {
  return path
    .split('/')
    .map((c) => encodeURIComponent(c))
    .join('/')
}

function parseJson<T>(body: Buffer): T {
  try {
    return JSON.parse(body.toString('utf8')) as T
  } catch {
    return {} as T
  }
}

function remoteError(status: number, body: Buffer, what: string): JobFilesError {
  const parsed = parseJson<{
    RemoteException?: { exception?: string; message?: string }
    error?: { code?: string; message?: string }
  }>(body)
  const re = parsed.RemoteException
  if (re !== undefined)
    return new JobFilesError(status, re.exception ?? 'RemoteException', `${what}: ${re.message ?? ''}`)
  const e = parsed.error
  return new JobFilesError(status, e?.code ?? 'HTTP', `${what}: ${status} ${e?.message ?? ''}`)
}

interface SendOpts {
  readonly body?: Uint8Array
  readonly headers?: Record<string, string>
  readonly ca?: string
  readonly timeoutMs: number
  readonly bytesMax: number
  readonly signal?: AbortSignal
}

/** One request; the answer's body is read up to `bytesMax` (more fails the call). */
function send(method: string, u: URL, opts: SendOpts): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const signal = AbortSignal.any([
      AbortSignal.timeout(opts.timeoutMs),
      ...(opts.signal === undefined ? [] : [opts.signal]),
    ])
    const headers: Record<string, string | number> = {
      ...opts.headers,
      'content-length': opts.body?.length ?? 0,
    }
    const onResponse = (res: IncomingMessage): void => {
      const chunks: Buffer[] = []
      let bytes = 0
      res.on('data', (c: Buffer) => {
        bytes += c.length
        if (bytes > opts.bytesMax) {
          res.destroy()
          reject(
            new JobFilesError(
              res.statusCode ?? 0,
              'FILE_TOO_LARGE',
              `${method} ${u.pathname}: the answer is over ${opts.bytesMax} bytes`,
            ),
          )
          return
        }
        chunks.push(c)
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
      res.on('error', (err) => reject(unreachable(method, u, err)))
    }
    const req =
      u.protocol === 'https:'
        ? httpsRequest(u, { method, headers, signal, ca: opts.ca }, onResponse)
        : httpRequest(u, { method, headers, signal }, onResponse)
    req.on('error', (err) => reject(unreachable(method, u, err)))
    req.end(
      opts.body === undefined
        ? undefined
        : Buffer.from(opts.body.buffer, opts.body.byteOffset, opts.body.length),
    )
  })
}

function unreachable(method: string, u: URL, err: Error): JobFilesError {
  return new JobFilesError(0, 'UNREACHABLE', `${method} ${u.host}${u.pathname}: ${err.message}`)
}
