/**
 * `--tls` end to end, with real processes: three nodes in three zones (two metadata nodes, one datanode
 * that has no replica and must ask over libp2p) each end up serving a certificate issued by the cluster
 * CA, naming the node and its zone; a client trusting only that CA gets /health; plain HTTP on the TLS
 * port fails; a node without the metadata role forwards fs requests over HTTPS; `hopsd status` works
 * with --ca; a restarted node serves its persisted certificate from its first handshake; WebHDFS writes
 * get https Locations, and HdfsCLI, fsspec and pandas trusting only the cluster CA write and read through
 * every node.
 */
import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateSwarmKey } from '../../src/node/p2p/index.js'
import { REPO_ROOT, freePorts, makeTempDir, removeTempDirs, runHopsd, waitFor } from '../helpers/index.js'
import { pythonEnv } from '../helpers/tools.js'
import {
  httpsGet,
  peerCertificate,
  startTlsNode,
  stopAllTlsNodes,
  type TlsNode,
  type TlsNodeOptions,
} from './tls-node.js'

/** Fast gossip and Raft, as the cluster tests use on a loaded 2-core machine. */
const TIMING_ARGS = [
  '--gossip-interval-ms',
  '150',
  '--suspect-after-ms',
  '900',
  '--dead-after-ms',
  '2000',
  '--raft-tick-ms',
  '40',
  '--voter-grace-ms',
  '2000',
]
const CERT_WAIT_MS = 90_000
const execFileP = promisify(execFile)

interface Spec {
  name: string
  zone: string
  roles: string[]
}

const SPECS: Spec[] = [
  { name: 'n1', zone: 'z1', roles: ['metadata'] },
  { name: 'n2', zone: 'z2', roles: ['metadata'] },
  { name: 'n3', zone: 'z3', roles: ['datanode'] },
]

describe.sequential('--tls with the node certificate from the cluster CA', () => {
  let dir: string
  let options: TlsNodeOptions[]
  const nodes: TlsNode[] = []
  const caPem = (i: number) => readFileSync(join(options[i]!.dataDir, 'tls', 'ca.crt'), 'utf8')

  beforeAll(async () => {
    dir = makeTempDir('hopsd-tls-')
    const swarmKey = join(dir, 'swarm.key')
    writeFileSync(swarmKey, generateSwarmKey(), { mode: 0o600 })
    const https = await freePorts(3)
    const p2p = await freePorts(3)
    options = SPECS.map((s, i) => ({
      dataDir: join(dir, s.name),
      zone: s.zone,
      roles: s.roles,
      http: https[i],
      p2p: p2p[i],
      join: p2p,
      bootstrapExpect: 2,
      extraArgs: ['--swarm-key', swarmKey, ...TIMING_ARGS],
    }))
    nodes.push(...(await Promise.all(options.map((o) => startTlsNode(o)))))
  }, 120_000)

  afterAll(async () => {
    await stopAllTlsNodes()
    removeTempDirs()
  })

  it(
    'every node ends up serving a certificate of the cluster CA: CN = its id, OU = its zone',
    async () => {
      for (const [i, node] of nodes.entries()) {
        const { cert, ca } = await waitFor(
          async () => {
            const ca = new X509Certificate(caPem(i))
            const cert = await peerCertificate(node.http)
            return cert.checkIssued(ca) && cert.verify(ca.publicKey) ? { cert, ca } : undefined
          },
          {
            timeoutMs: CERT_WAIT_MS,
            intervalMs: 200,
            what: `${SPECS[i]!.name} serving a cluster certificate`,
          },
        )
        expect(cert.issuer).toBe(ca.subject)
        expect(cert.subject).toContain(`CN=${node.id}`)
        expect(cert.subject).toContain(`OU=${SPECS[i]!.zone}`)
        expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1')
        const info = JSON.parse((await httpsGet(`${node.url}/api/v1/node`, { ca: ca.toString() })).text)
        expect(info.tls).toMatchObject({ enabled: true, issuer: 'cluster' })
        expect(info.http).toBe(node.url)
      }
      // One cluster, one CA.
      expect(new Set([0, 1, 2].map(caPem)).size).toBe(1)
    },
    CERT_WAIT_MS * 3 + 10_000,
  )

  it('a client trusting only the cluster CA gets /health; plain HTTP on the TLS port fails', async () => {
    const ca = caPem(0)
    for (const node of nodes) {
      const res = await httpsGet(`${node.url}/health`, { ca })
      expect(res.status).toBe(200)
      expect(JSON.parse(res.text).id).toBe(node.id)
      await expect(
        fetch(`http://${node.http}/health`, { signal: AbortSignal.timeout(5_000) }),
      ).rejects.toThrow()
    }
    // The system's CAs alone do not trust it.
    await expect(httpsGet(`${nodes[0]!.url}/health`, {})).rejects.toMatchObject({
      code: expect.stringMatching(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/),
    })
  })

  it('a node without the metadata role forwards fs requests over HTTPS', async () => {
    const ca = caPem(2)
    const put = await waitFor(
      async () => {
        const res = await httpsGet(
          `${nodes[2]!.url}/api/v1/fs/files?path=/tls-probe&user.name=hopsd&overwrite=true`,
          {
            ca,
            method: 'PUT',
            body: Buffer.from('over https'),
          },
        )
        return res.status === 201 ? res : undefined
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'a PUT through the datanode' },
    )
    expect(JSON.parse(put.text)).toMatchObject({ size: 10 })
    const get = await httpsGet(`${nodes[2]!.url}/api/v1/fs/files?path=/tls-probe&user.name=hopsd`, { ca })
    expect(get).toEqual({ status: 200, text: 'over https' })
  })

  it('WebHDFS writes: https Locations; a follower asks the leader over https', async () => {
    const ca = caPem(0)
    // Step one on a metadata node: the Location is the datanode's, over https.
    const step = async (op: 'CREATE' | 'APPEND', path: string): Promise<string> => {
      const res = await httpsGet(
        `${nodes[0]!.url}/webhdfs/v1${path}?op=${op}&user.name=hopsd&noredirect=true`,
        { ca, method: op === 'CREATE' ? 'PUT' : 'POST' },
      )
      expect(res.status, res.text).toBe(200)
      const location = (JSON.parse(res.text) as { Location: string }).Location
      expect(location.startsWith(`${nodes[2]!.url}/api/v1/datanode/write/`)).toBe(true)
      return location
    }
    const small = Buffer.from('0123456789')
    const big = Buffer.alloc(200 * 1024, 7)
    const created = await waitFor(
      async () => {
        const r = await httpsGet(await step('CREATE', '/tls/f.bin'), { ca, method: 'PUT', body: small })
        return r.status === 201 ? r : undefined
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'a CREATE over https' },
    )
    expect(created.status).toBe(201)
    // The file grows past the inline threshold: the datanode (no metadata replica) gets its inline
    // bytes with the append it proposes, allocates blocks from the leader, then writes them.
    const appended = await httpsGet(await step('APPEND', '/tls/f.bin'), {
      ca,
      method: 'POST',
      body: big,
      timeoutMs: 30_000,
    })
    expect(appended.status, appended.text).toBe(200)
    const st = await httpsGet(`${nodes[1]!.url}/api/v1/fs/stat?path=/tls/f.bin&user.name=hopsd`, { ca })
    expect(JSON.parse(st.text)).toMatchObject({ length: small.length + big.length, inlined: false })
    // Every metadata node answers fsck: the follower asks the leader over https.
    for (const n of nodes.slice(0, 2)) {
      const h = await httpsGet(`${n.url}/api/v1/fs/health`, { ca, timeoutMs: 15_000 })
      expect(h.status, h.text).toBe(200)
      expect(JSON.parse(h.text).blocks).toBeGreaterThanOrEqual(1)
    }
  }, 120_000)

  it('WebHDFS CREATE, APPEND and OPEN from HdfsCLI, fsspec and pandas verifying the cluster CA, through every node', async () => {
    const ca = caPem(0)
    const caFile = join(dir, 'ca.pem')
    writeFileSync(caFile, ca)
    // A directory of a user who is not the superuser.
    for (const [op, method, q] of [
      ['MKDIRS', 'PUT', ''],
      ['SETOWNER', 'PUT', '&owner=alice&group=staff'],
    ] as const) {
      const r = await httpsGet(`${nodes[0]!.url}/webhdfs/v1/user/alice/tls?op=${op}&user.name=hopsd${q}`, {
        ca,
        method,
      })
      expect(r.status, r.text).toBe(200)
    }
    const { stdout } = await execFileP(
      (await pythonEnv()).python,
      [
        join(REPO_ROOT, 'test/python/tls_ops.py'),
        caFile,
        'alice',
        '/user/alice/tls',
        ...nodes.map((n) => n.url),
      ],
      {
        timeout: 240_000,
        maxBuffer: 16 * 1024 * 1024,
        // requests lets these variables override a session's own `verify`: the clients must use the CA
        // they are given, nothing from the host.
        env: Object.fromEntries(
          Object.entries(process.env).filter(([k]) => k !== 'REQUESTS_CA_BUNDLE' && k !== 'CURL_CA_BUNDLE'),
        ),
      },
    ).catch((err: { message: string; stdout?: string; stderr?: string }) => {
      throw new Error(`tls_ops.py failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`)
    })
    expect(stdout).toContain('tls clients ok')
  }, 300_000)

  it('hopsd status talks to a TLS node with --ca, and says how without it', async () => {
    const caFile = join(options[0]!.dataDir, 'tls', 'ca.crt')
    const ok = await runHopsd(['status', '--addr', nodes[0]!.url, '--ca', caFile, '--json'])
    expect(ok.code).toBe(0)
    const doc = JSON.parse(ok.stdout)
    expect(doc.clusterId).toMatch(/^[0-9a-f-]{36}$/)
    expect(doc.leader).not.toBeNull()
    const untrusted = await runHopsd(['status', '--addr', nodes[0]!.url])
    expect(untrusted.code).toBe(1)
    expect(untrusted.stderr).toContain('--ca')
  })

  it('a restarted node serves its persisted certificate from the first handshake', async () => {
    const persisted = new X509Certificate(readFileSync(join(options[1]!.dataDir, 'tls', 'node.crt')))
    expect(await nodes[1]!.stop()).toEqual({ code: 0, signal: null })
    nodes[1] = await startTlsNode(options[1]!)
    const served = await peerCertificate(nodes[1].http)
    expect(served.fingerprint256).toBe(persisted.fingerprint256)
    const info = JSON.parse((await httpsGet(`${nodes[1].url}/api/v1/node`, { ca: caPem(1) })).text)
    expect(info.tls).toMatchObject({
      enabled: true,
      issuer: 'cluster',
      notAfter: persisted.validToDate.toISOString(),
    })
    // Nothing was requested again: the persisted certificate was valid and covered the node's hosts.
    expect(nodes[1].logs()).not.toContain('persisted node certificate not usable')
    expect(nodes[1].logs()).not.toContain('node certificate issued by the cluster CA')
  }, 90_000)
})
