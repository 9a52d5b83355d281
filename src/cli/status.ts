// `hopsd status [--addr URL]`: the cluster as one node sees it (GET /api/v1/cluster), as a table.
import { ConfigError } from '../node/index.js'
import { helpTable, parseFlags } from './args.js'
import { EXIT_FAILURE, EXIT_OK, reportError, type CliIo } from './output.js'

const DEFAULT_ADDR = 'http://127.0.0.1:9870'

interface Member {
  id: string
  zone: string
}

export interface ClusterDoc {
  clusterId: string
  leader: Member | null
  term: number
  commitIndex: number
  voters: Member[]
  learners: Member[]
  zones: Record<string, string[]>
}

export function statusHelp(): string {
  return [
    'Usage: hopsd status [--addr URL] [--json]',
    '',
    "Prints the cluster as the node at URL sees it: leader, term, voters and learners with their zones.",
    helpTable([
      ['--addr URL', `a node's HTTP API (default ${DEFAULT_ADDR}; env HOPSD_ADDR)`],
      ['--json', 'print the document as JSON'],
      ['-h, --help', 'this help'],
    ]),
  ].join('\n')
}

export async function runStatus(args: readonly string[], io: CliIo): Promise<number> {
  try {
    const flags = parseFlags('status', args, {
      addr: { type: 'string' },
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
    let res: Response
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
    } catch (err) {
      io.err(`hopsd: cannot reach ${addr}: ${(err as Error).message}`)
      return EXIT_FAILURE
    }
    const body = (await res.json()) as ClusterDoc & { error?: { code: string; message: string } }
    if (!res.ok) {
      io.err(`hopsd: ${addr} answered ${res.status}: ${body.error?.message ?? ''} [${body.error?.code ?? 'HTTP'}]`)
      return EXIT_FAILURE
    }
    io.out(flags['json'] === true ? JSON.stringify(body, null, 2) : renderStatus(body))
    return EXIT_OK
  } catch (err) {
    return reportError(io, err)
  }
}

/** The table `hopsd status` prints. */
export function renderStatus(doc: ClusterDoc): string {
  const rows: string[][] = [['NODE', 'ZONE', 'RAFT']]
  const role = new Map<string, string>()
  for (const v of doc.voters) role.set(v.id, v.id === doc.leader?.id ? 'leader' : 'voter')
  for (const l of doc.learners) role.set(l.id, 'learner')
  const zoneOf = new Map<string, string>()
  for (const [zone, ids] of Object.entries(doc.zones)) for (const id of ids) zoneOf.set(id, zone)
  for (const m of [...doc.voters, ...doc.learners]) zoneOf.set(m.id, m.zone || zoneOf.get(m.id) || '')
  const ids = [...zoneOf.keys()].sort((a, b) => rank(role.get(a)) - rank(role.get(b)) || (a < b ? -1 : 1))
  for (const id of ids) rows.push([id, zoneOf.get(id) ?? '', role.get(id) ?? '-'])
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const table = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd())
  return [
    `cluster   ${doc.clusterId || '(not initialised yet)'}`,
    `leader    ${doc.leader ? `${doc.leader.id} (${doc.leader.zone})` : '(none)'}`,
    `term      ${doc.term}`,
    `commit    ${doc.commitIndex}`,
    `voters    ${doc.voters.length} in ${new Set(doc.voters.map((v) => v.zone)).size} zone(s); learners ${doc.learners.length}`,
    '',
    ...table,
  ].join('\n')
}

function rank(role: string | undefined): number {
  return role === 'leader' ? 0 : role === 'voter' ? 1 : role === 'learner' ? 2 : 3
}
