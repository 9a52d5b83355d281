// HTTP and p2p clients of the trust tests: requests with a chosen credential and source address
// (loopback has every 127.x address, so per-source rate limiting is testable on one host), and a
// "plain node" — a libp2p host holding the swarm key and nothing else — that crafts node-to-node
// requests.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { createP2PHost, request as p2pRequest, type P2PHost } from '../../src/node/p2p/index.js'
import { waitFor } from '../helpers/index.js'

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  json(): any
}

export interface CallOpts {
  /** Sent as `Authorization: Bearer`. */
  key?: string
  body?: string | Buffer | object
  headers?: Record<string, string>
  /** The client's source address (a 127.x address). */
  from?: string
  timeoutMs?: number
}

/** One request to `base` (`http://host:port`); never rejects on a status. */
export function call(base: string, method: string, path: string, opts: CallOpts = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.key !== undefined) headers['authorization'] = `Bearer ${opts.key}`
  let body: Buffer | undefined
  if (opts.body !== undefined) {
    if (Buffer.isBuffer(opts.body) || typeof opts.body === 'string') {
      body = Buffer.from(opts.body)
      headers['content-type'] ??= 'application/octet-stream'
    } else {
      body = Buffer.from(JSON.stringify(opts.body))
      headers['content-type'] = 'application/json'
    }
  }
  headers['content-length'] = String(body?.length ?? 0)
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${path}`,
      { method, headers, localAddress: opts.from, timeout: opts.timeoutMs ?? 30_000 },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) })
        })
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer`)))
    req.on('error', reject)
    req.end(body)
  })
}

/** A libp2p host with the cluster's swarm key and a fresh identity: what any key holder can run. */
export interface PlainNode {
  readonly host: P2PHost
  readonly id: string
  sign(data: Uint8Array): Promise<Uint8Array>
  /** A request to `peer` over `protocol`; resolves with the reply or the error's remote code. */
  ask(
    peer: string,
    protocol: string,
    body: Uint8Array,
  ): Promise<{ reply?: Uint8Array; code?: string; message?: string }>
  stop(): Promise<void>
}

export async function startPlainNode(
  swarmKeyFile: string,
  join: string[],
  peers: string[],
): Promise<PlainNode> {
  const privateKey = await generateKeyPair('Ed25519')
  const host = await createP2PHost({
    privateKey,
    listen: '127.0.0.1:0',
    swarmKey: readFileSync(swarmKeyFile, 'utf8'),
    join,
  })
  await waitFor(() => peers.every((p) => host.peers().includes(p)), {
    timeoutMs: 30_000,
    what: 'the plain node to connect to the cluster',
  })
  return {
    host,
    id: peerIdFromPrivateKey(privateKey).toString(),
    sign: async (d) => privateKey.sign(d),
    async ask(peer, protocol, body) {
      try {
        return { reply: await p2pRequest(host, peer, protocol, body, { timeoutMs: 15_000 }) }
      } catch (err) {
        const e = err as { remoteCode?: string; code?: string; message: string }
        return { code: e.remoteCode ?? e.code, message: e.message }
      }
    },
    stop: () => host.stop(),
  }
}
