/**
 * --join addresses: plain HOST:PORT (no peer ids), resolved to IPs and turned into bare TCP multiaddrs.
 * The same list may be given to every host, including its own address, so we must recognise "me":
 * {@link isOwnAddress} does it statically (same port, and the IP is the listen IP, or loopback/a local
 * interface when listening on loopback/0.0.0.0); the join loop also treats libp2p's "Can not dial self"
 * (seen after the handshake) as "me", which covers NAT-ed or aliased names this check can't see.
 */
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { P2PError } from './errors.js'

/** Same shape as the daemon's config HostPort (src/node/config.ts). */
export interface HostPort {
  readonly host: string
  readonly port: number
}

/** Parses 'HOST:PORT' or '[IPv6]:PORT'; objects are validated and passed through. */
export function parseHostPort(input: string | HostPort): HostPort {
  if (typeof input !== 'string') {
    if (!validPort(input.port) || input.host === '') {
      throw new P2PError(
        'JOIN_ADDRESS_INVALID',
        `bad join address ${JSON.stringify(input)} (expected HOST:PORT)`,
      )
    }
    return { host: input.host, port: input.port }
  }
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(input.trim())
  const port = m === null ? NaN : Number(m[3])
  if (m === null || !validPort(port)) {
    throw new P2PError('JOIN_ADDRESS_INVALID', `bad join address '${input}' (expected HOST:PORT)`)
  }
  return { host: m[1] ?? m[2]!, port }
}

export function formatHostPort(a: HostPort): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535
}

/** The IPs a host name stands for ('localhost' is loopback without asking DNS). */
export async function resolveHost(host: string): Promise<string[]> {
  if (isIP(host) !== 0) return [host]
  if (host === 'localhost') return ['127.0.0.1']
  const found = await lookup(host, { all: true })
  return [...new Set(found.map((a) => a.address))]
}

/** `/ip4/IP/tcp/PORT` (or ip6): a bare dial address, without `/p2p/<id>` — libp2p 3 dials it fine. */
export function tcpMultiaddr(ip: string, port: number): Multiaddr {
  return multiaddr(`/${isIP(ip) === 6 ? 'ip6' : 'ip4'}/${ip}/tcp/${port}`)
}

/** IP and port of a TCP multiaddr, or undefined for anything else. */
export function ipPortOf(ma: Multiaddr): { ip: string; port: number } | undefined {
  let ip: string | undefined
  let port: number | undefined
  for (const c of ma.getComponents()) {
    if ((c.name === 'ip4' || c.name === 'ip6') && c.value !== undefined) ip = c.value
    else if (c.name === 'tcp' && c.value !== undefined) port = Number(c.value)
  }
  return ip === undefined || port === undefined ? undefined : { ip, port }
}

export function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1' || ip === '::ffff:127.0.0.1'
}

export function isUnspecified(ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::'
}

/** IPs of this machine's interfaces (loopback included). */
export function localIps(): Set<string> {
  const ips = new Set<string>(['127.0.0.1', '::1'])
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) ips.add(a.address)
  return ips
}

/**
 * Whether dialing `target` (a resolved IP and port) would reach this node, listening on `listen`
 * (resolved IP, actual bound port). Loopback targets match a loopback or wildcard listener; any local
 * interface IP matches a wildcard listener.
 */
export function isOwnAddress(
  target: { ip: string; port: number },
  listen: { ip: string; port: number },
  ownIps: Set<string> = localIps(),
): boolean {
  if (target.port !== listen.port) return false
  if (target.ip === listen.ip) return true
  if (isUnspecified(listen.ip)) return isLoopback(target.ip) || ownIps.has(target.ip)
  if (isLoopback(listen.ip)) return isLoopback(target.ip)
  return false
}
