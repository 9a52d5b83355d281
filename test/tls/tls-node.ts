/**
 * Helpers of the TLS tests: `hopsd start --tls` as a child process (test/helpers' startNode probes plain
 * HTTP, so it cannot tell when a TLS node is up), HTTPS requests with a chosen CA, and the certificate a
 * node presents in the handshake.
 */
import { spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { request as httpsRequest } from 'node:https'
import { connect } from 'node:tls'
import { freePort, hopsdCommand, REPO_ROOT, waitFor, type ExitInfo } from '../helpers/index.js'

export interface TlsNodeOptions {
  readonly dataDir: string
  readonly zone: string
  readonly roles?: readonly string[]
  readonly http?: string
  readonly p2p?: string
  readonly join?: readonly string[]
  readonly bootstrapExpect?: number
  readonly extraArgs?: readonly string[]
  readonly readyTimeoutMs?: number
}

export interface TlsNode {
  /** `https://HOST:PORT` */
  readonly url: string
  readonly http: string
  readonly p2p: string
  readonly id: string
  readonly exited: Promise<ExitInfo>
  stop(timeoutMs?: number): Promise<ExitInfo>
  logs(): string
}

const live = new Set<TlsNode>()

/** Starts `hopsd start --tls …` and waits until /health answers over HTTPS (any certificate). */
export async function startTlsNode(opts: TlsNodeOptions): Promise<TlsNode> {
  const http = opts.http ?? (await freePort())
  const p2p = opts.p2p ?? (await freePort())
  const args = [
    'start',
    '--tls',
    '--data-dir',
    opts.dataDir,
    '--http',
    http,
    '--p2p',
    p2p,
    '--zone',
    opts.zone,
  ]
  if (opts.roles !== undefined) args.push('--roles', opts.roles.join(','))
  if (opts.join !== undefined && opts.join.length > 0) args.push('--join', opts.join.join(','))
  if (opts.bootstrapExpect !== undefined) args.push('--bootstrap-expect', String(opts.bootstrapExpect))
  // Simple auth unless the test asks otherwise (as test/helpers startNode does).
  if (!(opts.extraArgs ?? []).includes('--auth')) args.push('--auth', 'simple')
  args.push(...(opts.extraArgs ?? []))
  const base = hopsdCommand()
  const child = spawn(base.command, [...base.args, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d))
  let exitInfo: ExitInfo | undefined
  const exited = new Promise<ExitInfo>((resolve) =>
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal }
      resolve(exitInfo)
    }),
  )
  const url = `https://${http}`
  const node: TlsNode = {
    url,
    http,
    p2p,
    id: '',
    exited,
    async stop(timeoutMs = 15_000) {
      if (exitInfo === undefined) child.kill('SIGTERM')
      const timer = setTimeout(() => exitInfo === undefined && child.kill('SIGKILL'), timeoutMs)
      const info = await exited
      clearTimeout(timer)
      live.delete(node)
      return info
    },
    logs: () => output,
  }
  live.add(node)
  try {
    const id = await waitFor(
      async () => {
        if (exitInfo !== undefined)
          throw new Error(`hopsd exited ${JSON.stringify(exitInfo)}: ${output.slice(-2000)}`)
        const res = await httpsGet(`${url}/health`, { insecure: true, timeoutMs: 2_000 })
        return res.status === 200 ? (JSON.parse(res.text) as { id: string }).id : undefined
      },
      { timeoutMs: opts.readyTimeoutMs ?? 60_000, intervalMs: 100, what: `${url}/health` },
    )
    ;(node as { id: string }).id = id
  } catch (err) {
    await node.stop(2_000)
    throw err
  }
  return node
}

export async function stopAllTlsNodes(): Promise<void> {
  await Promise.all([...live].map((n) => n.stop()))
}

/** GET over HTTPS, trusting only `ca` (or nothing: `insecure`). */
export function httpsGet(
  url: string,
  opts: { ca?: string; insecure?: boolean; timeoutMs?: number; method?: string; body?: Buffer },
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: opts.method ?? 'GET',
        ca: opts.ca,
        rejectUnauthorized: opts.insecure !== true,
        signal: AbortSignal.timeout(opts.timeoutMs ?? 5_000),
        headers: opts.body === undefined ? {} : { 'content-type': 'application/octet-stream' },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (text += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(opts.body)
  })
}

/** The certificate the server at HOST:PORT presents (no verification: the test checks it). */
export function peerCertificate(hostPort: string): Promise<X509Certificate> {
  const i = hostPort.lastIndexOf(':')
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: hostPort.slice(0, i),
      port: Number(hostPort.slice(i + 1)),
      rejectUnauthorized: false,
      timeout: 5_000,
    })
    socket.once('secureConnect', () => {
      const raw = socket.getPeerX509Certificate()
      socket.destroy()
      if (raw === undefined) reject(new Error('no peer certificate'))
      else resolve(raw)
    })
    socket.once('timeout', () => socket.destroy(new Error('TLS handshake timed out')))
    socket.once('error', reject)
  })
}
