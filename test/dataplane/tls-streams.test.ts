// The TLS data plane over real sockets on loopback: a stream between two certified nodes carries frames
// both ways and ends cleanly; and every peer without a valid node certificate of the cluster is refused
// before it reaches a handler — no certificate, a self-signed one, one from another CA, a revoked one,
// a node revoked in the replicated state — as is a server that is not the node dialled.
import { connect } from 'node:tls'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { PeerStream } from '../../src/fs/index.js'
import {
  certificateSerial,
  createClusterCa,
  createNodeKey,
  issueCrl,
  issueNodeCertificate,
  verifyCrl,
  type ClusterCaMaterial,
} from '../../src/node/ca/index.js'
import type { HostPort } from '../../src/node/config.js'
import {
  createTlsDataPlane,
  type DataPlaneCredentials,
  type TlsDataPlane,
} from '../../src/node/dataplane/index.js'

const PROTOCOL = '/test/echo/1.0.0'
const quiet = { warn: () => undefined, info: () => undefined, debug: () => undefined }

let ca: ClusterCaMaterial
let otherCa: ClusterCaMaterial
const creds: Record<string, DataPlaneCredentials> = {}

async function nodeCredentials(authority: ClusterCaMaterial, nodeId: string): Promise<DataPlaneCredentials> {
  const key = await createNodeKey()
  const certPem = await issueNodeCertificate(authority, {
    nodeId,
    zone: 'z1',
    publicKeyPem: key.publicKeyPem,
    hosts: ['127.0.0.1'],
  })
  return { keyPem: key.keyPem, certPem, caPem: authority.certPem }
}

beforeAll(async () => {
  ca = await createClusterCa('c1')
  otherCa = await createClusterCa('c1') // the same cluster name, another key: a forged CA
  for (const id of ['server', 'client', 'revoked', 'denied', 'impostor'])
    creds[id] = await nodeCredentials(ca, id)
  creds['foreign'] = await nodeCredentials(otherCa, 'client')
  const self = await createClusterCa('self-signed client')
  creds['selfSigned'] = await nodeCredentials(self, 'client')
})

const planes: TlsDataPlane[] = []
afterEach(async () => {
  for (const p of planes.splice(0)) await p.close()
})

interface Server {
  plane: TlsDataPlane
  at: HostPort
  calls: string[]
  refusals: string[]
}

/** A data plane serving PROTOCOL (echoes each frame, then closes) as node `id`. */
async function serve(id: string, revokedSerials: ReadonlySet<string> = new Set()): Promise<Server> {
  const calls: string[] = []
  const refusals: string[] = []
  const plane = createTlsDataPlane({
    credentials: () => creds[id],
    revokedSerials: () => revokedSerials,
    deniedNode: (node) => node === 'denied',
    logger: quiet,
    onRefused: (reason) => refusals.push(reason),
  })
  planes.push(plane)
  await plane.handleStreams(PROTOCOL, async (stream, from) => {
    calls.push(from)
    for await (const f of stream.frames(1 << 20)) await stream.send([Buffer.from('echo:'), f])
    await stream.close()
  })
  const at = await plane.listen({ host: '127.0.0.1', port: 0 })
  return { plane, at, calls, refusals }
}

function client(id: string): TlsDataPlane {
  const plane = createTlsDataPlane({ credentials: () => creds[id], logger: quiet })
  planes.push(plane)
  return plane
}

async function roundTrip(stream: PeerStream, frames: string[]): Promise<string[]> {
  for (const f of frames) await stream.send(Buffer.from(f))
  await stream.close()
  const got: string[] = []
  for await (const f of stream.frames(1 << 20)) got.push(Buffer.from(f).toString())
  return got
}

/**
 * Dials `at` with raw node:tls as an attacker would (any certificate or none, trusting anything), asks
 * for PROTOCOL and collects every byte the server sends until it closes.
 */
async function attack(at: HostPort, cred?: DataPlaneCredentials): Promise<Buffer> {
  const sock = connect({
    host: at.host,
    port: at.port,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.3',
    ...(cred === undefined ? {} : { key: cred.keyPem, cert: cred.certPem }),
  })
  const got: Buffer[] = []
  await new Promise<void>((resolve) => {
    sock.on('secureConnect', () => {
      const name = Buffer.from(PROTOCOL)
      const head = Buffer.alloc(4)
      head.writeUInt32BE(name.length)
      sock.write(Buffer.concat([head, name]))
    })
    sock.on('data', (d: Buffer) => got.push(d))
    sock.on('error', () => undefined)
    sock.on('close', () => resolve())
    // A server that lets the attacker in keeps the connection open: end it (what arrived is the answer).
    setTimeout(() => sock.destroy(), 5_000).unref()
  })
  return Buffer.concat(got)
}

describe('the TLS data plane', () => {
  it('carries frames both ways between certified nodes, names the caller, and ends cleanly', async () => {
    const s = await serve('server')
    const stream = await client('client').openStream('server', s.at, PROTOCOL)
    const big = 'x'.repeat(300_000) // spans many TLS records
    expect(await roundTrip(stream, ['a', big, 'b'])).toEqual(['echo:a', `echo:${big}`, 'echo:b'])
    expect(stream.open).toBe(false)
    expect(s.calls).toEqual(['client'])
    expect(s.refusals).toEqual([])
  })

  it('refuses a protocol it does not serve', async () => {
    const s = await serve('server')
    await expect(client('client').openStream('server', s.at, '/not/served')).rejects.toMatchObject({
      code: 'PROTOCOL_UNSUPPORTED',
    })
  })

  it('refuses a peer without a certificate, with a self-signed one or one from another CA, in the handshake', async () => {
    const s = await serve('server')
    for (const cred of [undefined, creds['selfSigned'], creds['foreign']]) {
      expect((await attack(s.at, cred)).length).toBe(0) // not even a status frame
    }
    // The same through the data plane's own client (which also distrusts the server's CA).
    await expect(client('foreign').openStream('server', s.at, PROTOCOL)).rejects.toMatchObject({
      code: expect.stringMatching(/PEER_NOT_CERTIFIED|PEER_UNREACHABLE/),
    })
    expect(s.calls).toEqual([])
    expect(s.refusals.filter((r) => r === 'handshake').length).toBeGreaterThanOrEqual(3)
  })

  it('refuses a peer whose certificate is on the CRL, and a node revoked in the replicated state', async () => {
    const crl = await issueCrl(ca, {
      number: 1,
      revoked: [{ serial: certificateSerial(creds['revoked']!.certPem), revokedMs: Date.now() }],
    })
    const s = await serve('server', (await verifyCrl(ca.certPem, crl)).revoked)
    // The handshake itself succeeds (the CA signed both): the data plane's own checks refuse them.
    expect((await attack(s.at, creds['revoked'])).length).toBe(0)
    expect((await attack(s.at, creds['denied'])).length).toBe(0)
    await expect(client('revoked').openStream('server', s.at, PROTOCOL)).rejects.toThrow()
    expect(s.calls).toEqual([])
    expect(s.refusals.filter((r) => r === 'certificate').length).toBe(3)
    // A certified node still gets through.
    const ok = await client('client').openStream('server', s.at, PROTOCOL)
    expect(await roundTrip(ok, ['hi'])).toEqual(['echo:hi'])
  })

  it('refuses a server whose certificate names another node than the one dialled', async () => {
    const s = await serve('impostor')
    await expect(client('client').openStream('server', s.at, PROTOCOL)).rejects.toMatchObject({
      code: 'PEER_NOT_CERTIFIED',
      message: expect.stringContaining('names node impostor'),
    })
    expect(s.calls).toEqual([])
  })

  it('a stream aborted by one side fails the other side’s reads (never a clean end)', async () => {
    const s = await serve('server')
    const stream = await client('client').openStream('server', s.at, PROTOCOL)
    await stream.send(Buffer.from('one'))
    const frames = stream.frames(1 << 20)[Symbol.asyncIterator]()
    expect(Buffer.from((await frames.next()).value as Uint8Array).toString()).toBe('echo:one')
    stream.abort(new Error('gone'))
    await expect(frames.next()).rejects.toThrow()
    expect(stream.open).toBe(false)
  })
})
