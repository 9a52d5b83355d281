// `hopsd status [--addr URL] [--ca FILE | --insecure]`: the cluster as one node sees it
// (GET /api/v1/cluster), as a table. An https:// address is verified against --ca (the cluster CA,
// `<data-dir>/tls/ca.crt` of any node) or the system's CAs; --insecure skips verification, for a node
// that still serves its temporary self-signed certificate.
import { readFileSync } from 'node:fs'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { ConfigError } from '../node/index.js'
import { helpTable, parseFlags } from './args.js'
import { EXIT_FAILURE, EXIT_OK, reportError, type CliIo } from './output.js'

const DEFAULT_ADDR = 'http://127.0.0.1:9870'
/** node:tls codes of a certificate chain the client does not trust. */
const UNTRUSTED_CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
])

interface Member {
  id: string
  zone: string
  /** alive, suspect, dead, left or unknown, in the answering node's gossip view (absent: an older node). */
  liveness?: string
}

export interface ClusterDoc {
  clusterId: string
  leader: Member | null
  term: number
  commitIndex: number
  voters: Member[]
  learners: Member[]
  zones: Record<string, string[]>
  /** Every node of the answering node's view but those that left (absent: an older node). */
  nodes?: Member[]
}

export function statusHelp(): string {
  return [
    'Usage: hopsd status [--addr URL] [--ca FILE | --insecure] [--json]',
    '',
    'Prints the cluster as the node at URL sees it: leader, term, voters and learners with their zones,',
    "and every node's liveness in that node's gossip view (alive, suspect, dead).",
    helpTable([
      ['--addr URL', `a node's HTTP API, http:// or https:// (default ${DEFAULT_ADDR}; env HOPSD_ADDR)`],
      ['--ca FILE', 'trust this CA for https:// (the cluster CA: <data-dir>/tls/ca.crt; env HOPSD_CA)'],
      ['--insecure', 'do not verify the https:// certificate (a node still on its self-signed one)'],
      ['--json', 'print the document as JSON'],
      ['-h, --help', 'this help'],
    ]),
  ].join('\n')
}

export async function runStatus(args: readonly string[], io: CliIo): Promise<number> {
  try {
    const flags = parseFlags('status', args, {
      addr: { type: 'string' },
      ca: { type: 'string' },
      insecure: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    })
    if (flags['help'] === true) {
      io.out(statusHelp())
      return EXIT_OK
    }
    const addr = (flags['addr'] as string | undefined) ?? process.env['HOPSD_ADDR'] ?? DEFAULT_ADDR
    let url: URL
    try {
      url = new URL('/api/v1/cluster', addr)
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
    let res: { status: number; ok: boolean; text: string }
    try {
      res = await getText(url, { ca, insecure: flags['insecure'] === true, timeoutMs: 10_000 })
    } catch (err) {
      const code = (err as { code?: string }).code ?? ''
      const hint = UNTRUSTED_CERT_CODES.has(code)
        ? ' (trust the cluster CA with --ca <data-dir>/tls/ca.crt, or --insecure while the node is self-signed)'
        : ''
      io.err(`hopsd: cannot reach ${addr}: ${(err as Error).message}${hint}`)
      return EXIT_FAILURE
    }
    let body: ClusterDoc & { error?: { code: string; message: string } }
    try {
      body = JSON.parse(res.text) as typeof body
    } catch {
      io.err(`hopsd: ${addr} answered ${res.status} with a body that is not JSON`)
      return EXIT_FAILURE
    }
    if (!res.ok) {
      io.err(
        `hopsd: ${addr} answered ${res.status}: ${body.error?.message ?? ''} [${body.error?.code ?? 'HTTP'}]`,
      )
      return EXIT_FAILURE
    }
    io.out(flags['json'] === true ? JSON.stringify(body, null, 2) : renderStatus(body))
    return EXIT_OK
  } catch (err) {
    return reportError(io, err)
  }
}

/** GET over http or https (node's own clients: fetch cannot take a CA). */
function getText(
  url: URL,
  opts: { ca?: string; insecure: boolean; timeoutMs: number },
): Promise<{ status: number; ok: boolean; text: string }> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => {
        const status = res.statusCode ?? 0
        resolve({ status, ok: status >= 200 && status < 300, text })
      })
      res.on('error', reject)
    }
    const signal = AbortSignal.timeout(opts.timeoutMs)
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { signal, ca: opts.ca, rejectUnauthorized: !opts.insecure }, onResponse)
        : httpRequest(url, { signal }, onResponse)
    req.on('error', reject)
    req.end()
  })
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s
}

/**
 * The table `hopsd status` prints: every Raft member and every other node of the answering node's
 * view, with its liveness there — a voter killed a moment ago shows as `voter` + `suspect`, then `dead`.
 */
export function renderStatus(doc: ClusterDoc): string {
  const rows: string[][] = [['NODE', 'ZONE', 'RAFT', 'LIVENESS']]
  const role = new Map<string, string>()
  for (const v of doc.voters) role.set(v.id, v.id === doc.leader?.id ? 'leader' : 'voter')
  for (const l of doc.learners) role.set(l.id, 'learner')
  const zoneOf = new Map<string, string>()
  const livenessOf = new Map<string, string>()
  for (const [zone, ids] of Object.entries(doc.zones)) for (const id of ids) zoneOf.set(id, zone)
  for (const m of [...(doc.nodes ?? []), ...doc.voters, ...doc.learners]) {
    zoneOf.set(m.id, m.zone || zoneOf.get(m.id) || '')
    if (m.liveness !== undefined) livenessOf.set(m.id, m.liveness)
  }
  const ids = [...zoneOf.keys()].sort((a, b) => rank(role.get(a)) - rank(role.get(b)) || (a < b ? -1 : 1))
  for (const id of ids) rows.push([id, zoneOf.get(id) ?? '', role.get(id) ?? '-', livenessOf.get(id) ?? '?'])
  const notAlive = (ms: readonly Member[]): string => {
    const counts = new Map<string, number>()
    for (const m of ms) {
      const l = livenessOf.get(m.id)
      if (l !== undefined && l !== 'alive') counts.set(l, (counts.get(l) ?? 0) + 1)
    }
    return counts.size === 0 ? '' : ` (${[...counts].map(([l, n]) => `${n} ${l}`).join(', ')})`
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const table = rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  )
  return [
    `cluster   ${doc.clusterId || '(not initialised yet)'}`,
    `leader    ${doc.leader ? `${doc.leader.id} (${doc.leader.zone})` : '(none)'}`,
    `term      ${doc.term}`,
    `commit    ${doc.commitIndex}`,
    `voters    ${doc.voters.length} in ${new Set(doc.voters.map((v) => v.zone)).size} zone(s)${notAlive(doc.voters)}; learners ${doc.learners.length}${notAlive(doc.learners)}`,
    '',
    ...table,
  ].join('\n')
}

function rank(role: string | undefined): number {
  return role === 'leader' ? 0 : role === 'voter' ? 1 : role === 'learner' ? 2 : 3
}
