// The tls module's parts without a cluster: the certificate files, the request loop, the hosts a
// certificate must name, the temporary self-signed certificate, and the API server's certificate swap.
import { X509Certificate } from 'node:crypto'
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import pino from 'pino'
import { Registry } from 'prom-client'
import { createApiServer, type ApiServer } from '../../src/api/index.js'
import {
  createClusterCa,
  createNodeKey,
  issueNodeCertificate,
  type ClusterCaMaterial,
  type NodeKeyMaterial,
} from '../../src/node/ca/index.js'
import {
  certificateCoversHost,
  certificateHosts,
  createCertificateStore,
  obtainCertificate,
  renewAtMs,
  selfSignedCertificate,
  TLS_FILES,
  type CertificateReply,
  type CertificateSource,
  type TlsMaterial,
} from '../../src/node/cluster/tls-module.js'
import { P2PError } from '../../src/node/p2p/index.js'
import { makeTempDir, removeTempDirs } from '../helpers/index.js'
import { peerCertificate } from './tls-node.js'

afterAll(removeTempDirs)

const NODE = '12D3KooWnode'
const HOSTS = ['127.0.0.1', 'localhost']
const FAST = { baseMs: 1, maxMs: 5 }

async function clusterMaterial(
  ca: ClusterCaMaterial,
  key: NodeKeyMaterial,
  nodeId = NODE,
): Promise<TlsMaterial> {
  const certPem = await issueNodeCertificate(ca, {
    nodeId,
    zone: 'z1',
    publicKeyPem: key.publicKeyPem,
    hosts: HOSTS,
  })
  return {
    keyPem: key.keyPem,
    certPem,
    caPem: ca.certPem,
    issuer: 'cluster',
    notAfter: new X509Certificate(certPem).validToDate,
  }
}

/** A source answering like a metadata node with the CA `ca`. */
function issuing(ca: ClusterCaMaterial, nodeId = NODE): CertificateSource {
  return async (req) => ({
    clusterId: ca.clusterId,
    caCertificatePem: ca.certPem,
    certificatePem: await issueNodeCertificate(ca, { nodeId, ...req }),
  })
}

describe('certificate files', () => {
  it('persist and load: key 0600, no temporary files left, the same material back', async () => {
    const dir = join(makeTempDir(), 'tls')
    const store = createCertificateStore(dir)
    expect(await store.load(NODE)).toEqual({})
    const material = await clusterMaterial(await createClusterCa('c1'), await createNodeKey())
    store.saveCertificate(material)
    expect(statSync(join(dir, TLS_FILES.key)).mode & 0o777).toBe(0o600)
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    expect(readdirSync(dir).sort()).toEqual([TLS_FILES.ca, TLS_FILES.key, TLS_FILES.cert].sort())
    const loaded = await store.load(NODE)
    expect(loaded.problem).toBeUndefined()
    expect(loaded.material).toEqual(material)
    expect(loaded.key?.keyPem).toBe(material.keyPem)
  })

  it('a key alone (a request under way) is kept, and is not a problem', async () => {
    const store = createCertificateStore(join(makeTempDir(), 'tls'))
    const key = await createNodeKey()
    store.saveKey(key)
    const loaded = await store.load(NODE)
    expect(loaded).toEqual({
      key: { keyPem: key.keyPem, publicKeyPem: expect.stringContaining('PUBLIC KEY') },
    })
    // The public key read back from the file is the one the CA will sign.
    const ca = await createClusterCa('c1')
    const certPem = await issueNodeCertificate(ca, {
      nodeId: NODE,
      zone: 'z1',
      publicKeyPem: loaded.key!.publicKeyPem,
      hosts: HOSTS,
    })
    expect(
      new X509Certificate(certPem).checkPrivateKey(
        (await import('node:crypto')).createPrivateKey(key.keyPem),
      ),
    ).toBe(true)
  })

  it('refuses a certificate for another node, from another CA, for another key, or expired — keeping the key', async () => {
    const ca = await createClusterCa('c1')
    const key = await createNodeKey()
    const cases: [string, TlsMaterial, Date | undefined, RegExp][] = [
      ['another node', await clusterMaterial(ca, key, 'someone-else'), undefined, /names node someone-else/],
      [
        'another CA',
        { ...(await clusterMaterial(ca, key)), caPem: (await createClusterCa('c2')).certPem },
        undefined,
        /not signed/,
      ],
      [
        'another key',
        { ...(await clusterMaterial(ca, await createNodeKey())), keyPem: key.keyPem },
        undefined,
        /not for node.key/,
      ],
      ['expired', await clusterMaterial(ca, key), new Date(Date.now() + 400 * 86_400_000), /expired/],
    ]
    for (const [what, material, now, problem] of cases) {
      const store = createCertificateStore(join(makeTempDir(), 'tls'))
      store.saveCertificate(material)
      const loaded = await store.load(NODE, now)
      expect(loaded.material, what).toBeUndefined()
      expect(loaded.problem, what).toMatch(problem)
      expect(loaded.key?.keyPem, what).toBe(material.keyPem)
    }
  })

  it('reports a certificate without its CA, and a corrupt key', async () => {
    const dir = join(makeTempDir(), 'tls')
    const store = createCertificateStore(dir)
    const material = await clusterMaterial(await createClusterCa('c1'), await createNodeKey())
    store.saveCertificate(material)
    writeFileSync(join(dir, TLS_FILES.ca), '')
    expect((await store.load(NODE)).problem).toMatch(/parse/)
    writeFileSync(join(dir, TLS_FILES.key), 'garbage')
    expect(await store.load(NODE)).toEqual({
      problem: expect.stringMatching(/node.key is not a private key/),
    })
  })
})

describe('obtainCertificate', () => {
  const request = (key: NodeKeyMaterial) => ({ zone: 'z1', publicKeyPem: key.publicKeyPem, hosts: HOSTS })

  it('retries with backoff until a metadata node has the CA, then verifies and returns the certificate', async () => {
    const ca = await createClusterCa('c1')
    const key = await createNodeKey()
    let calls = 0
    const notYet: CertificateSource = async () => {
      calls++
      if (calls < 3) throw new P2PError('REMOTE_ERROR', 'no CA yet', { remoteCode: 'UNAVAILABLE' })
      return issuing(ca)(request(key), AbortSignal.timeout(1_000))
    }
    let rounds = 0
    const got = await obtainCertificate({
      request: request(key),
      nodeId: NODE,
      keyPem: key.keyPem,
      sources: () => {
        rounds++
        return rounds === 1 ? [] : [{ name: 'm1', source: notYet }] // no metadata node known at first
      },
      signal: AbortSignal.timeout(10_000),
      backoff: FAST,
    })
    expect(calls).toBe(3)
    expect(got).toMatchObject({ issuer: 'cluster', caPem: ca.certPem, keyPem: key.keyPem })
    expect(new X509Certificate(got.certPem).subject).toContain(`CN=${NODE}`)
  })

  it('skips answers that are not for this node or this key, and takes the next source', async () => {
    const ca = await createClusterCa('c1')
    const key = await createNodeKey()
    const wrongNode = issuing(ca, 'someone-else')
    const wrongKey: CertificateSource = async (req, signal) =>
      issuing(ca)({ ...req, publicKeyPem: (await createNodeKey()).publicKeyPem }, signal)
    const forged: CertificateSource = async (req, signal) => {
      const reply: CertificateReply = await issuing(await createClusterCa('evil'))(req, signal)
      return { ...reply, caCertificatePem: ca.certPem } // claims the real CA, signed by another
    }
    const got = await obtainCertificate({
      request: request(key),
      nodeId: NODE,
      keyPem: key.keyPem,
      sources: () => [
        { name: 'a', source: wrongNode },
        { name: 'b', source: wrongKey },
        { name: 'c', source: forged },
        { name: 'd', source: issuing(ca) },
      ],
      signal: AbortSignal.timeout(10_000),
      backoff: FAST,
    })
    expect(got.caPem).toBe(ca.certPem)
  })

  it('fails with CERTIFICATE_INVALID after roundsMax, and stops when aborted', async () => {
    const key = await createNodeKey()
    const never: CertificateSource = async () => {
      throw new P2PError('PEER_UNREACHABLE', 'down')
    }
    const base = { request: request(key), nodeId: NODE, keyPem: key.keyPem, backoff: FAST }
    await expect(
      obtainCertificate({
        ...base,
        sources: () => [{ name: 'm1', source: never }],
        signal: AbortSignal.timeout(10_000),
        roundsMax: 3,
      }),
    ).rejects.toMatchObject({
      code: 'CERTIFICATE_INVALID',
      message: expect.stringContaining('PEER_UNREACHABLE'),
    })
    const abort = new AbortController()
    const pending = obtainCertificate({ ...base, sources: () => [], signal: abort.signal })
    abort.abort(new Error('stopping'))
    await expect(pending).rejects.toThrow('stopping')
  })
})

describe('obtainCertificate: admission answers', () => {
  const request = (key: NodeKeyMaterial) => ({
    zone: 'z1',
    publicKeyPem: key.publicKeyPem,
    hosts: ['127.0.0.1', 'localhost', '10.0.0.9'],
    roles: ['datanode'],
  })

  it('follows a redirect to the metadata nodes named, drops refused hosts, and waits while pending', async () => {
    const ca = await createClusterCa('c1')
    const key = await createNodeKey()
    const asked: string[] = []
    let pendingRounds = 2
    const datanode: CertificateSource = async () => {
      asked.push('datanode')
      return {
        clusterId: '',
        certificatePem: '',
        caCertificatePem: '',
        status: 'redirect',
        redirect: [{ id: 'm1', addrs: [] }],
      }
    }
    const m1: CertificateSource = async (req, signal) => {
      asked.push(`m1:${req.hosts.join(',')}`)
      if (pendingRounds-- > 0)
        return { clusterId: 'c1', certificatePem: '', caCertificatePem: '', status: 'pending' }
      if (req.hosts.includes('10.0.0.9'))
        return {
          clusterId: 'c1',
          certificatePem: '',
          caCertificatePem: '',
          status: 'hosts-refused',
          refusedHosts: ['10.0.0.9'],
        }
      return issuing(ca)(req, signal)
    }
    const refused: string[] = []
    const got = await obtainCertificate({
      request: request(key),
      nodeId: NODE,
      keyPem: key.keyPem,
      sources: () => [{ name: 'datanode', source: datanode }],
      follow: (targets) => targets.map((t) => ({ name: t.id, source: m1 })),
      onRefusedHosts: (h) => refused.push(...h),
      signal: AbortSignal.timeout(10_000),
      backoff: FAST,
    })
    expect(asked).toEqual([
      'datanode',
      'm1:127.0.0.1,localhost,10.0.0.9', // pending: the round ends
      'datanode',
      'm1:127.0.0.1,localhost,10.0.0.9', // pending again
      'datanode',
      'm1:127.0.0.1,localhost,10.0.0.9', // refused a host: asked again without it
      'm1:127.0.0.1,localhost',
    ])
    expect(refused).toEqual(['10.0.0.9'])
    expect(certificateCoversHost(got.certPem, '10.0.0.9')).toBe(false)
    expect(certificateCoversHost(got.certPem, 'localhost')).toBe(true)
  })

  it('refuses an answer under another CA than the one the node trusts', async () => {
    const ca = await createClusterCa('c1')
    const rogue = await createClusterCa('c1')
    const key = await createNodeKey()
    await expect(
      obtainCertificate({
        request: request(key),
        nodeId: NODE,
        keyPem: key.keyPem,
        pinnedCa: () => ca.certPem,
        sources: () => [{ name: 'rogue', source: issuing(rogue) }],
        signal: AbortSignal.timeout(10_000),
        backoff: FAST,
        roundsMax: 2,
      }),
    ).rejects.toMatchObject({ message: expect.stringContaining('another CA') })
  })

  it('renews a third of the way before the end, at most 30 days before', async () => {
    const ca = await createClusterCa('c1')
    const key = await createNodeKey()
    const year = await clusterMaterial(ca, key)
    expect(year.notAfter.getTime() - renewAtMs(year)).toBe(30 * 86_400_000)
    const certPem = await issueNodeCertificate(ca, {
      nodeId: NODE,
      zone: 'z1',
      publicKeyPem: key.publicKeyPem,
      hosts: HOSTS,
      validityMs: 90_000,
    })
    const short = { certPem, notAfter: new X509Certificate(certPem).validToDate }
    // Backdated by a tenth of its life (9 s): renewed a third of (90 + 9) s before the end, after issue.
    const lifeMs = short.notAfter.getTime() - new X509Certificate(certPem).validFromDate.getTime()
    expect(lifeMs).toBe(99_000)
    expect(short.notAfter.getTime() - renewAtMs(short)).toBe(33_000)
  })
})

describe('hosts', () => {
  it('names the bound hosts; loopback adds localhost; a wildcard adds loopback and the interfaces', () => {
    expect(certificateHosts({ host: '127.0.0.1', port: 1 }, { host: '127.0.0.1', port: 2 })).toEqual(HOSTS)
    expect(certificateHosts({ host: '10.0.1.5', port: 1 }, { host: 'node1.example', port: 2 })).toEqual([
      '10.0.1.5',
      'node1.example',
    ])
    const wildcard = certificateHosts({ host: '0.0.0.0', port: 1 }, { host: '10.0.1.5', port: 2 })
    expect(wildcard).toEqual(expect.arrayContaining(['127.0.0.1', 'localhost', '10.0.1.5']))
    expect(wildcard).not.toContain('0.0.0.0')
  })

  it('checks whether a certificate covers a host, by IP or by name', async () => {
    const key = await createNodeKey()
    const { certPem } = await clusterMaterial(await createClusterCa('c1'), key)
    expect(certificateCoversHost(certPem, '127.0.0.1')).toBe(true)
    expect(certificateCoversHost(certPem, 'localhost')).toBe(true)
    expect(certificateCoversHost(certPem, '10.0.1.5')).toBe(false)
    expect(certificateCoversHost(certPem, 'node1.example')).toBe(false)
  })
})

describe('self-signed certificate and the API server swap', () => {
  let api: ApiServer | undefined
  afterAll(async () => api?.close())

  it('serves HTTPS with the temporary certificate, then the cluster one after setCertificate', async () => {
    const key = await createNodeKey()
    const temporary = await selfSignedCertificate(NODE, 'z1', key, HOSTS)
    expect(temporary.issuer).toBe('self-signed')
    const tempCa = new X509Certificate(temporary.caPem)
    expect(new X509Certificate(temporary.certPem).verify(tempCa.publicKey)).toBe(true)

    api = await createApiServer({
      logger: pino({ level: 'silent' }),
      registry: new Registry(),
      routes: [],
      openapi: { title: 't', version: '0' },
      https: {},
    })
    expect(api.secure).toBe(true)
    await expect(api.listen({ host: '127.0.0.1', port: 0 })).rejects.toThrow('without a certificate')
    api.setCertificate(temporary)
    const bound = await api.listen({ host: '127.0.0.1', port: 0 })
    const addr = `127.0.0.1:${bound.port}`
    expect((await peerCertificate(addr)).fingerprint256).toBe(
      new X509Certificate(temporary.certPem).fingerprint256,
    )

    const cluster = await clusterMaterial(await createClusterCa('c1'), key)
    api.setCertificate(cluster)
    expect((await peerCertificate(addr)).fingerprint256).toBe(
      new X509Certificate(cluster.certPem).fingerprint256,
    )
    expect(existsSync(join(process.cwd(), TLS_FILES.key))).toBe(false) // the temporary one is never written
  })
})
