// `hopsd status [--addr URL] [--ca FILE | --insecure]`: the cluster as one node sees it
// (GET /api/v1/cluster), as a table. An https:// address is verified against --ca (the cluster CA,
// `<data-dir>/tls/ca.crt` of any node) or the system's CAs; --insecure skips verification, for a node
// that still serves its temporary self-signed certificate.
import { API_FLAG_HELP, API_FLAGS, ApiError, apiJson, apiTarget } from './api-client.js'
import { helpTable, parseFlags } from './args.js'
import { EXIT_FAILURE, EXIT_OK, reportError, type CliIo } from './output.js'

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
  /** How the cluster authenticates callers (`simple` or `secure`). */
  auth?: string
}

export function statusHelp(): string {
  return [
    'Usage: hopsd status [--addr URL] [--key FILE] [--ca FILE | --insecure] [--json]',
    '',
    'Prints the cluster as the node at URL sees it: leader, term, voters and learners with their zones,',
    "and every node's liveness in that node's gossip view (alive, suspect, dead).",
    helpTable([...API_FLAG_HELP, ['--json', 'print the document as JSON'], ['-h, --help', 'this help']]),
  ].join('\n')
}

export async function runStatus(args: readonly string[], io: CliIo): Promise<number> {
  try {
    const flags = parseFlags('status', args, {
      ...API_FLAGS,
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    })
    if (flags['help'] === true) {
      io.out(statusHelp())
      return EXIT_OK
    }
    const target = apiTarget(flags)
    let body: ClusterDoc
    try {
      body = await apiJson<ClusterDoc>(target, 'GET', '/api/v1/cluster', undefined, 10_000)
    } catch (err) {
      if (!(err instanceof ApiError)) throw err
      io.err(`hopsd: ${err.message}${err.status === 0 ? '' : ` [${err.code}]`}`)
      return EXIT_FAILURE
    }
    io.out(flags['json'] === true ? JSON.stringify(body, null, 2) : renderStatus(body))
    return EXIT_OK
  } catch (err) {
    return reportError(io, err)
  }
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
    ...(doc.auth !== undefined ? [`auth      ${doc.auth}`] : []),
    `voters    ${doc.voters.length} in ${new Set(doc.voters.map((v) => v.zone)).size} zone(s)${notAlive(doc.voters)}; learners ${doc.learners.length}${notAlive(doc.learners)}`,
    '',
    ...table,
  ].join('\n')
}

function rank(role: string | undefined): number {
  return role === 'leader' ? 0 : role === 'voter' ? 1 : role === 'learner' ? 2 : 3
}
