/**
 * Which names a node certificate may carry: only addresses where the requesting node really listens.
 *
 * A node asks for its certificate with a list of hosts (its IPs and names). The issuer believes none of
 * them: like an ACME CA validating a domain, it checks each one leads to the requester — an IP by
 * dialing the requester's p2p port at that IP and letting Noise prove the peer id that answers; a name
 * by resolving it (issuer side) and requiring one of its addresses to be an IP that passed. A host that
 * fails refuses the whole request (the node asks again without it), so a node can never obtain a
 * certificate naming another node's address or a host name of its choosing.
 */
import { isIP } from 'node:net'

/** Hosts checked per request at most (more are refused): a wildcard bind names every interface. */
export const HOSTS_MAX = 16

export interface HostCheckInit {
  /** What the request named. */
  readonly hosts: readonly string[]
  /**
   * Dials `ip:port` and resolves when the peer that answers is the requester (Noise proves it);
   * rejects otherwise. Bounded by the caller's timeout.
   */
  readonly dialBack: (ip: string) => Promise<void>
  /** Resolves a host name to its IPs (the issuer's resolver). */
  readonly resolve: (name: string) => Promise<string[]>
}

export interface HostCheck {
  readonly verified: string[]
  /** Hosts that do not lead to the requester, with why. */
  readonly refused: { host: string; reason: string }[]
}

export async function checkHosts(init: HostCheckInit): Promise<HostCheck> {
  const hosts = [...new Set(init.hosts.map((h) => h.trim()).filter((h) => h !== ''))]
  const refused: { host: string; reason: string }[] = []
  const wanted = hosts.slice(0, HOSTS_MAX)
  for (const h of hosts.slice(HOSTS_MAX)) refused.push({ host: h, reason: `more than ${HOSTS_MAX} hosts` })

  const dials = new Map<string, Promise<string | undefined>>()
  // One dial at a time: concurrent dials to one peer may be merged by the dialer into one connection.
  let queue: Promise<unknown> = Promise.resolve()
  /** undefined when the requester answers at `ip`, else why not. */
  const reach = (ip: string): Promise<string | undefined> => {
    let p = dials.get(ip)
    if (p === undefined) {
      p = queue.then(() =>
        init.dialBack(ip).then(
          () => undefined,
          (err: unknown) => (err as Error).message ?? String(err),
        ),
      )
      queue = p
      dials.set(ip, p)
    }
    return p
  }

  const verified: string[] = []
  await Promise.all(
    wanted.map(async (host) => {
      if (!isHostSyntax(host)) {
        refused.push({ host, reason: 'not an IP address or a host name' })
        return
      }
      if (isIP(host) !== 0) {
        const why = await reach(host)
        if (why === undefined) verified.push(host)
        else refused.push({ host, reason: `the node does not answer there (${why})` })
        return
      }
      let ips: string[]
      try {
        ips = await init.resolve(host)
      } catch (err) {
        refused.push({ host, reason: `does not resolve (${(err as Error).message})` })
        return
      }
      const results = await Promise.all(ips.slice(0, HOSTS_MAX).map((ip) => reach(ip)))
      if (results.some((r) => r === undefined)) verified.push(host)
      else refused.push({ host, reason: `resolves to ${ips.join(', ')}, where the node does not answer` })
    }),
  )
  const order = new Map(hosts.map((h, i) => [h, i]))
  verified.sort((a, b) => order.get(a)! - order.get(b)!)
  refused.sort((a, b) => order.get(a.host)! - order.get(b.host)!)
  return { verified, refused }
}

/** An IP literal, or a DNS name of letters, digits, '-' and dots (no wildcards, no URLs). */
function isHostSyntax(host: string): boolean {
  if (isIP(host) !== 0) return true
  return host.length <= 253 && /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$/.test(host)
}
