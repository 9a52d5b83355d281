// How the CLI calls a node's JSON API (`hopsd status`, `user`, `key`): node's own http/https clients
// (fetch cannot take a CA), the API key as `Authorization: Bearer`, an https:// address verified against
// `--ca` (the cluster CA) unless `--insecure`. A refusal becomes an ApiError with the server's code.
import { readFileSync } from 'node:fs'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { ConfigError } from '../node/index.js'
import { loadCredential } from './credentials.js'

export const DEFAULT_ADDR = 'http://127.0.0.1:9870'
/** node:tls codes of a certificate chain the client does not trust. */
const UNTRUSTED_CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
])

/** The flags every API command takes (parseArgs options). */
export const API_FLAGS = {
  addr: { type: 'string' },
  key: { type: 'string' },
  ca: { type: 'string' },
  insecure: { type: 'boolean' },
} as const

export const API_FLAG_HELP: [string, string][] = [
  ['--addr URL', `a node's HTTP API, http:// or https:// (default ${DEFAULT_ADDR}; env HOPSD_ADDR)`],
  [
    '--key FILE',
    'the API key to send (else $HOPSD_KEY, the key or a file, else ~/.config/hopsd/credentials)',
  ],
  ['--ca FILE', 'trust this CA for https:// (the cluster CA: <data-dir>/tls/ca.crt; env HOPSD_CA)'],
  ['--insecure', 'do not verify the https:// certificate (a node still on its self-signed one)'],
]

/** The server refused (status and code from its error body) or could not be reached (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

export interface ApiTarget {
  readonly addr: string
  readonly key?: string
  readonly ca?: string
  readonly insecure: boolean
}

/** The target from the common flags and the environment. */
export function apiTarget(flags: Record<string, string | boolean | undefined>): ApiTarget {
  const addr = (flags['addr'] as string | undefined) ?? process.env['HOPSD_ADDR'] ?? DEFAULT_ADDR
  try {
    new URL(addr)
  } catch {
    throw new ConfigError('BAD_ADDRESS', `--addr: not a URL: ${addr}`)
  }
  const caFile = (flags['ca'] as string | undefined) ?? nonEmpty(process.env['HOPSD_CA'])
  let ca: string | undefined
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile, 'utf8')
    } catch (err) {
      throw new ConfigError('BAD_CONFIG_VALUE', `--ca: cannot read ${caFile} (${(err as Error).message})`)
    }
  }
  const cred = loadCredential(flags['key'] as string | undefined)
  return { addr, ca, insecure: flags['insecure'] === true, ...(cred ? { key: cred.key } : {}) }
}

/** One JSON request; resolves with the parsed body of a 2xx answer, rejects with ApiError otherwise. */
export async function apiJson<T = unknown>(
  target: ApiTarget,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 30_000,
): Promise<T> {
  const url = new URL(path, target.addr)
  let res: { status: number; text: string }
  try {
    res = await send(url, method, target, body === undefined ? undefined : JSON.stringify(body), timeoutMs)
  } catch (err) {
    const code = (err as { code?: string }).code ?? ''
    const hint = UNTRUSTED_CERT_CODES.has(code)
      ? ' (trust the cluster CA with --ca <data-dir>/tls/ca.crt, or --insecure while the node is self-signed)'
      : ''
    throw new ApiError(0, 'UNREACHABLE', `cannot reach ${target.addr}: ${(err as Error).message}${hint}`)
  }
  let parsed: unknown
  try {
    parsed = res.text === '' ? undefined : JSON.parse(res.text)
  } catch {
    throw new ApiError(
      res.status,
      'HTTP',
      `${target.addr} answered ${res.status} with a body that is not JSON`,
    )
  }
  if (res.status < 200 || res.status >= 300) {
    const e = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error
    throw new ApiError(
      res.status,
      e?.code ?? 'HTTP',
      `${target.addr} answered ${res.status}: ${e?.message ?? ''}`,
    )
  }
  return parsed as T
}

function send(
  url: URL,
  method: string,
  target: ApiTarget,
  body: string | undefined,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
      res.on('error', reject)
    }
    const headers: Record<string, string> = {}
    if (target.key !== undefined) headers['authorization'] = `Bearer ${target.key}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const signal = AbortSignal.timeout(timeoutMs)
    const opts = { method, headers, signal }
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { ...opts, ca: target.ca, rejectUnauthorized: !target.insecure }, onResponse)
        : httpRequest(url, opts, onResponse)
    req.on('error', reject)
    req.end(body)
  })
}

/** The ApiError of a non-2xx answer: its `{error: {code, message}}` body, or `fallback` as the message. */
function apiErrorOf(target: ApiTarget, status: number, body: string, fallback: string): ApiError {
  let e: { code?: string; message?: string } | undefined
  try {
    e = (JSON.parse(body) as { error?: { code?: string; message?: string } }).error
  } catch {
    e = undefined
  }
  return new ApiError(
    status,
    e?.code ?? 'HTTP',
    `${target.addr} answered ${status}: ${e?.message ?? fallback}`,
  )
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s
}

/**
 * One request whose answer is text (a job's log): each piece goes to `onChunk` as it arrives, so a
 * followed log prints while the job runs. Resolves once the answer ended; rejects with ApiError on a
 * non-2xx answer (its JSON error body) or when the node cannot be reached.
 */
export function apiStream(
  target: ApiTarget,
  path: string,
  onChunk: (text: string) => void,
  timeoutMs = 24 * 3600_000,
): Promise<void> {
  const url = new URL(path, target.addr)
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      res.setEncoding('utf8')
      const status = res.statusCode ?? 0
      if (status < 200 || status >= 300) {
        let text = ''
        res.on('data', (d: string) => (text += d))
        res.on('end', () => reject(apiErrorOf(target, status, text, '')))
        return
      }
      res.on('data', (d: string) => onChunk(d))
      res.on('end', () => resolve())
      res.on('error', reject)
    }
    const headers: Record<string, string> = {}
    if (target.key !== undefined) headers['authorization'] = `Bearer ${target.key}`
    const opts = { method: 'GET', headers, signal: AbortSignal.timeout(timeoutMs) }
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { ...opts, ca: target.ca, rejectUnauthorized: !target.insecure }, onResponse)
        : httpRequest(url, opts, onResponse)
    req.on('error', (err) =>
      reject(new ApiError(0, 'UNREACHABLE', `cannot reach ${target.addr}: ${err.message}`)),
    )
    req.end()
  })
}

/**
 * One request whose body streams from `body` (an upload: a model file) and whose answer is JSON, as
 * {@link apiJson}; or whose answer streams into `sink` (a download). Neither holds a whole file.
 */
export function apiBinary<T = unknown>(
  target: ApiTarget,
  method: string,
  path: string,
  opts: {
    headers?: Record<string, string>
    body?: NodeJS.ReadableStream
    sink?: NodeJS.WritableStream
    timeoutMs?: number
  },
): Promise<T> {
  const url = new URL(path, target.addr)
  return new Promise((resolve, reject) => {
    const fail = (status: number, text: string): void => reject(apiErrorOf(target, status, text, text))
    const onResponse = (res: IncomingMessage) => {
      const status = res.statusCode ?? 0
      const ok = status >= 200 && status < 300
      if (ok && opts.sink !== undefined) {
        res.pipe(opts.sink)
        opts.sink.on('finish', () => resolve(undefined as T))
        opts.sink.on('error', reject)
        res.on('error', reject)
        return
      }
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('error', reject)
      res.on('end', () => {
        if (!ok) return fail(status, text)
        try {
          resolve((text === '' ? undefined : JSON.parse(text)) as T)
        } catch {
          reject(
            new ApiError(status, 'HTTP', `${target.addr} answered ${status} with a body that is not JSON`),
          )
        }
      })
    }
    const headers: Record<string, string> = { ...opts.headers }
    if (target.key !== undefined) headers['authorization'] = `Bearer ${target.key}`
    if (opts.body !== undefined) headers['content-type'] = 'application/octet-stream'
    const o = { method, headers, signal: AbortSignal.timeout(opts.timeoutMs ?? 24 * 3600_000) }
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { ...o, ca: target.ca, rejectUnauthorized: !target.insecure }, onResponse)
        : httpRequest(url, o, onResponse)
    req.on('error', (err) =>
      reject(new ApiError(0, 'UNREACHABLE', `cannot reach ${target.addr}: ${err.message}`)),
    )
    if (opts.body === undefined) req.end()
    else {
      opts.body.on('error', (err: Error) => {
        req.destroy()
        reject(err)
      })
      opts.body.pipe(req)
    }
  })
}
