/**
 * Issue 14 item 5, project-user certificates, on a real secure cluster with `--tls`: three
 * metadata+datanode nodes in three zones. alice owns projects `p` and `q`; bob is a Data Scientist of `p`.
 * A member gets a certificate through `hopsd project cert` (key made locally, 0600) and reads and writes
 * in the project over HTTPS with it alone. Each attack below is refused by one defence:
 *  - the same certificate cannot reach project `q` (a project-user is one project's principal);
 *  - revoked, expired (a lifetime of 3 s) and removed-member certificates are refused by the next request
 *    on every node (the record is read on every request);
 *  - alice cannot get `p__bob` (by naming bob, or by a CSR whose CN says so);
 *  - a certificate from another CA with the same CN and serial fails;
 *  - bad input (project name, public key, lifetime over projectCertValidityMaxS) → 400, nothing recorded.
 */
// @peculiar/x509 (the CSRs below) needs the Reflect metadata API before it loads.
import 'reflect-metadata'
import { createPublicKey, generateKeyPairSync, webcrypto, X509Certificate } from 'node:crypto'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import * as x509 from '@peculiar/x509'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runProject } from '../../src/cli/project.js'
import { createClusterCa, issueProjectUserCertificate } from '../../src/node/ca/index.js'
import { generateSwarmKey } from '../../src/node/p2p/index.js'
import { acquireClusterLock, LOCK_WAIT_MS, releaseClusterLock } from '../cluster/harness.js'
import { freePorts, makeTempDir, removeTempDirs, waitFor } from '../helpers/index.js'
import { httpsGet, startTlsNode, stopAllTlsNodes, type TlsNode } from '../tls/tls-node.js'

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

interface Client {
  /** A client certificate and its key (PEM). */
  cert?: string
  key?: string
  /** An API key, as Authorization: Bearer. */
  bearer?: string
  headers?: Record<string, string>
  body?: Buffer | object
}

interface Answer {
  status: number
  text: string
  json(): any
}

/** One HTTPS request on a fresh connection (a new handshake), trusting only the cluster CA. */
function call(url: string, ca: string, method: string, path: string, c: Client = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...c.headers }
  if (c.bearer !== undefined) headers['authorization'] = `Bearer ${c.bearer}`
  let body: Buffer | undefined
  if (c.body !== undefined) {
    body = Buffer.isBuffer(c.body) ? c.body : Buffer.from(JSON.stringify(c.body))
    headers['content-type'] = Buffer.isBuffer(c.body) ? 'application/octet-stream' : 'application/json'
  }
  headers['content-length'] = String(body?.length ?? 0)
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `${url}${path}`,
      { method, headers, ca, cert: c.cert, key: c.key, agent: false, signal: AbortSignal.timeout(30_000) },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (d: Buffer) => chunks.push(d))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          resolve({ status: res.statusCode ?? 0, text, json: () => JSON.parse(text) })
        })
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

function newKey(): { keyPem: string; publicKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  }
}

describe.sequential('project-user certificates on a secure --tls cluster', { timeout: 240_000 }, () => {
  let dir: string
  let nodes: TlsNode[] = []
  let ca = ''
  let caFile = ''
  const key: Record<string, string> = {}
  const as = (who: string, c: Client = {}): Client => ({ ...c, bearer: key[who] })
  const api = (i: number, method: string, path: string, c?: Client) =>
    call(nodes[i]!.url, ca, method, path, c)

  /** A certificate of `project` for `user` (through the API with the user's key), with its key. */
  async function certFor(user: string, project: string, ttlS?: number): Promise<Client & { serial: string }> {
    const k = newKey()
    const r = await api(1, 'POST', `/api/v1/projects/${project}/certs`, {
      ...as(user),
      body: { publicKeyPem: k.publicKeyPem, ...(ttlS !== undefined ? { ttlS } : {}) },
    })
    expect(r.status, r.text).toBe(201)
    return { cert: r.json().certificatePem, key: k.keyPem, serial: r.json().serial }
  }

  const write = (i: number, path: string, data: string, c: Client) =>
    api(i, 'PUT', `/api/v1/fs/files?path=${encodeURIComponent(path)}`, { ...c, body: Buffer.from(data) })
  const read = (i: number, path: string, c: Client) =>
    api(i, 'GET', `/api/v1/fs/files?path=${encodeURIComponent(path)}`, c)
  const certsOf = async (project: string) =>
    (await api(0, 'GET', `/api/v1/projects/${project}/certs`, as('admin'))).json().certificates as {
      serial: string
      user: string
      status: string
    }[]

  // The lock first, in a hook of its own: other cluster files may hold it for minutes.
  beforeAll(() => acquireClusterLock(), LOCK_WAIT_MS)

  beforeAll(async () => {
    dir = makeTempDir('hopsd-pcert-')
    const swarmKey = join(dir, 'swarm.key')
    writeFileSync(swarmKey, generateSwarmKey(), { mode: 0o600 })
    const https = await freePorts(3)
    const p2p = await freePorts(3)
    nodes = await Promise.all(
      ['z1', 'z2', 'z3'].map((zone, i) =>
        startTlsNode({
          dataDir: join(dir, `n${i}`),
          zone,
          roles: ['metadata', 'datanode'],
          http: https[i],
          p2p: p2p[i],
          join: p2p,
          bootstrapExpect: 3,
          extraArgs: ['--swarm-key', swarmKey, '--auth', 'secure', ...TIMING_ARGS],
          readyTimeoutMs: 90_000,
        }),
      ),
    )
    // Every node serves the cluster's certificate (so it also verifies client certificates by that CA).
    caFile = await waitFor(
      () => [0, 1, 2].map((i) => join(dir, `n${i}`, 'tls', 'ca.crt')).find((f) => existsSync(f)),
      { timeoutMs: 90_000, intervalMs: 200, what: 'the cluster CA' },
    )
    ca = readFileSync(caFile, 'utf8')
    await waitFor(
      async () => {
        for (const n of nodes) {
          const r = await httpsGet(`${n.url}/health`, { ca, timeoutMs: 2_000 }).catch(() => undefined)
          if (r?.status !== 200) return false
        }
        return true
      },
      { timeoutMs: 90_000, intervalMs: 250, what: 'every node on its cluster certificate' },
    )
    key['admin'] = await waitFor(
      () =>
        [0, 1, 2]
          .map((i) => join(dir, `n${i}`, 'admin.key'))
          .filter((f) => existsSync(f))
          .map((f) => readFileSync(f, 'utf8').trim())[0],
      { timeoutMs: 90_000, intervalMs: 200, what: 'the admin key' },
    )
    await waitFor(
      async () => {
        for (let i = 0; i < 3; i++)
          if ((await api(i, 'GET', '/api/v1/projects', as('admin'))).status !== 200) return false
        return true
      },
      { timeoutMs: 90_000, intervalMs: 250, what: 'the admin key accepted by every node' },
    )
    for (const name of ['alice', 'bob']) {
      expect((await api(0, 'POST', '/api/v1/users', { ...as('admin'), body: { name } })).status).toBe(201)
      const k = await api(0, 'POST', '/api/v1/keys', { ...as('admin'), body: { user: name } })
      expect(k.status, k.text).toBe(201)
      key[name] = k.json().key
    }
    for (const name of ['p', 'q'])
      expect((await api(0, 'POST', '/api/v1/projects', { ...as('alice'), body: { name } })).status).toBe(201)
    const m = await api(0, 'POST', '/api/v1/projects/p/members', {
      ...as('alice'),
      body: { user: 'bob', role: 'DATA_SCIENTIST' },
    })
    expect(m.status, m.text).toBe(201)
    expect(
      (
        await write(
          0,
          '/Projects/q/Resources/secret.txt',
          'q only',
          as('alice', { headers: { 'x-hopsd-project': 'q' } }),
        )
      ).status,
    ).toBe(201)
  }, 300_000)

  afterAll(async () => {
    await stopAllTlsNodes()
    removeTempDirs()
    releaseClusterLock()
  }, 60_000)

  it('hopsd project cert: a member gets p__alice for a key made locally and works in p with the certificate alone', async () => {
    const out = join(dir, 'alice-certs')
    const keyFile = join(dir, 'alice.key')
    writeFileSync(keyFile, key['alice']!, { mode: 0o600 })
    const hopsd = async (...args: string[]) => {
      const lines: string[] = []
      const errs: string[] = []
      const code = await runProject([...args, '--addr', nodes[2]!.url, '--ca', caFile, '--key', keyFile], {
        out: (l) => lines.push(l),
        err: (l) => errs.push(l),
      })
      return { code, stdout: lines.join('\n'), stderr: errs.join('\n') }
    }
    const first = await hopsd('cert', 'p', '--out', out, '--days', '2')
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toMatch(/certificate p__alice serial [0-9a-f]+/)
    const files = { key: join(out, 'p__alice.key'), cert: join(out, 'p__alice.crt'), ca: join(out, 'ca.crt') }
    expect(statSync(files.key).mode & 0o777).toBe(0o600)
    const cert = readFileSync(files.cert, 'utf8')
    const x = new X509Certificate(cert)
    expect(x.subject).toMatch(/CN=p__alice/)
    expect(x.checkIssued(new X509Certificate(readFileSync(files.ca, 'utf8')))).toBe(true)
    // The certificate is for the key written here (which was never sent).
    expect(x.publicKey.export({ type: 'spki', format: 'pem' })).toBe(
      createPublicKey(readFileSync(files.key, 'utf8')).export({ type: 'spki', format: 'pem' }),
    )
    const lifeMs = x.validToDate.getTime() - Date.now()
    expect(lifeMs).toBeGreaterThan(2 * 86_400_000 - 120_000)
    expect(lifeMs).toBeLessThanOrEqual(2 * 86_400_000)
    const me = { cert, key: readFileSync(files.key, 'utf8') }
    for (let i = 0; i < 3; i++) {
      const w = await write(i, `/Projects/p/Resources/from-cert-${i}.txt`, `hello ${i}`, me)
      expect(w.status, w.text).toBe(201)
      const r = await read((i + 1) % 3, `/Projects/p/Resources/from-cert-${i}.txt`, me)
      expect(r.status, r.text).toBe(200)
      expect(r.text).toBe(`hello ${i}`)
    }
    // The principal is p__alice: the projects it lists are p only.
    const ls = await api(0, 'GET', '/api/v1/projects', me)
    expect(ls.json().projects).toEqual([{ name: 'p', role: 'DATA_OWNER' }])
    // Running it again renews: a new key and certificate; both are listed.
    const second = await hopsd('cert', 'p', '--out', out)
    expect(second.code, second.stderr).toBe(0)
    expect(readFileSync(files.cert, 'utf8')).not.toBe(cert)
    const listed = await hopsd('cert', 'p', '--list', '--json')
    expect(JSON.parse(listed.stdout).filter((c: { status: string }) => c.status === 'valid')).toHaveLength(2)
  })

  it('a certificate of p reaches nothing of q, though alice is a member of both', async () => {
    const me = await certFor('alice', 'p')
    const r = await read(0, '/Projects/q/Resources/secret.txt', me)
    expect(r.status, r.text).toBe(403)
    const w = await write(1, '/Projects/q/Resources/carried.txt', 'x', me)
    expect(w.status, w.text).toBe(403)
    const h = await read(2, '/Projects/q/Resources/secret.txt', {
      ...me,
      headers: { 'x-hopsd-project': 'q' },
    })
    expect(h.status, h.text).toBe(403)
    expect(h.json().error.code).toBe('PROJECT_ACCESS_DENIED')
    // Nor can it get itself a certificate of q.
    const k = newKey()
    const c = await api(0, 'POST', '/api/v1/projects/q/certs', {
      ...me,
      body: { publicKeyPem: k.publicKeyPem },
    })
    expect(c.status, c.text).toBe(403)
    // Nor mint a credential that acts in no project (or in q): an API key, a user certificate.
    for (const project of [undefined, 'q']) {
      const mk = await api(1, 'POST', '/api/v1/keys', {
        ...me,
        body: { user: 'alice', ...(project ? { project } : {}) },
      })
      expect(mk.status, mk.text).toBe(409)
      expect(mk.json().error.code).toBe('AUTH_LIMIT')
    }
    const uc = await api(2, 'POST', '/api/v1/users/alice/certificate', {
      ...me,
      body: { publicKeyPem: k.publicKeyPem },
    })
    expect(uc.status, uc.text).toBe(403)
    // A key of p it may make: it acts in p only.
    const pk = await api(1, 'POST', '/api/v1/keys', { ...me, body: { user: 'alice', project: 'p' } })
    expect(pk.status, pk.text).toBe(201)
    expect((await read(0, '/Projects/q/Resources/secret.txt', { bearer: pk.json().key })).status).toBe(403)
    // With alice's own key, acting in q, the file is there.
    expect(
      (
        await read(
          0,
          '/Projects/q/Resources/secret.txt',
          as('alice', { headers: { 'x-hopsd-project': 'q' } }),
        )
      ).text,
    ).toBe('q only')
  })

  it('a revoked certificate is refused by the next request on every node', async () => {
    const me = await certFor('alice', 'p')
    for (let i = 0; i < 3; i++)
      expect((await read(i, '/Projects/p/Resources/from-cert-0.txt', me)).status).toBe(200)
    // bob (a Data Scientist) cannot revoke alice's; she can.
    expect((await api(2, 'DELETE', `/api/v1/projects/p/certs/${me.serial}`, as('bob'))).status).toBe(404)
    const rv = await api(2, 'DELETE', `/api/v1/projects/p/certs/${me.serial}`, as('alice'))
    expect(rv.status, rv.text).toBe(200)
    expect(rv.json().status).toBe('revoked')
    for (let i = 0; i < 3; i++) {
      const r = await read(i, '/Projects/p/Resources/from-cert-0.txt', me)
      expect(r.status, `node ${i}`).toBe(401)
      expect(r.json().error.code).toBe('CREDENTIAL_REVOKED')
      expect((await write(i, `/Projects/p/Resources/revoked-${i}.txt`, 'x', me)).status).toBe(401)
    }
  })

  it('a member removed: her certificate is refused by the next request on every node', async () => {
    const bob = await certFor('bob', 'p')
    for (let i = 0; i < 3; i++)
      expect((await read(i, '/Projects/p/Resources/from-cert-0.txt', bob)).status).toBe(200)
    const rm = await api(0, 'DELETE', '/api/v1/projects/p/members/bob', as('alice'))
    expect(rm.status, rm.text).toBe(200)
    for (let i = 0; i < 3; i++) {
      const r = await read(i, '/Projects/p/Resources/from-cert-0.txt', bob)
      expect(r.status, `node ${i}: ${r.text}`).toBe(401)
      expect(r.json().error.code).toBe('CREDENTIAL_REVOKED')
    }
    // Added again, the old certificate stays dead: it went with the membership.
    expect(
      (
        await api(0, 'POST', '/api/v1/projects/p/members', {
          ...as('alice'),
          body: { user: 'bob', role: 'DATA_SCIENTIST' },
        })
      ).status,
    ).toBe(201)
    expect((await read(1, '/Projects/p/Resources/from-cert-0.txt', bob)).status).toBe(401)
  })

  it('an expired certificate is refused', async () => {
    const short = await certFor('alice', 'p', 3)
    const notAfterMs = new X509Certificate(short.cert!).validToDate.getTime()
    expect(notAfterMs - Date.now()).toBeLessThanOrEqual(3_000)
    const first = await read(0, '/Projects/p/Resources/from-cert-0.txt', short)
    // On a loaded machine the 3 s may be over already; either way it must end refused as expired.
    if (Date.now() < notAfterMs - 500) expect(first.status, first.text).toBe(200)
    for (let i = 0; i < 3; i++) {
      const r = await waitFor(
        async () => {
          const a = await read(i, '/Projects/p/Resources/from-cert-0.txt', short)
          return a.status === 200 ? undefined : a
        },
        { timeoutMs: 30_000, intervalMs: 200, what: `node ${i} refusing the expired certificate` },
      )
      expect(r.status).toBe(401)
      expect(r.json().error.code).toBe('CREDENTIAL_EXPIRED')
    }
  })

  it('alice cannot get a certificate of p__bob, neither by naming bob nor by a CSR saying so', async () => {
    const before = await certsOf('p')
    const k = newKey()
    const named = await api(0, 'POST', '/api/v1/projects/p/certs', {
      ...as('alice'),
      body: { publicKeyPem: k.publicKeyPem, user: 'bob' },
    })
    expect(named.status, named.text).toBe(403)
    expect(named.json().error.code).toBe('PROJECT_ACCESS_DENIED')
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=p__bob',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    })
    const byCsr = await api(1, 'POST', '/api/v1/projects/p/certs', {
      ...as('alice'),
      body: { csrPem: csr.toString('pem') },
    })
    expect(byCsr.status, byCsr.text).toBe(403)
    expect(byCsr.json().error.code).toBe('PROJECT_ACCESS_DENIED')
    // A CSR naming p__alice is fine.
    const own = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=p__alice',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    })
    const ok = await api(1, 'POST', '/api/v1/projects/p/certs', {
      ...as('alice'),
      body: { csrPem: own.toString('pem') },
    })
    expect(ok.status, ok.text).toBe(201)
    expect(ok.json().subject).toBe('p__alice')
    const after = await certsOf('p')
    expect(after.filter((c) => c.user === 'bob')).toEqual(before.filter((c) => c.user === 'bob'))
    expect(after).toHaveLength(before.length + 1)
  })

  it('a certificate from another CA with the same CN and a recorded serial is refused', async () => {
    const real = await certFor('alice', 'p')
    const other = await createClusterCa('impostor')
    const k = newKey()
    const now = Date.now()
    const forged = await issueProjectUserCertificate(other, {
      project: 'p',
      user: 'alice',
      publicKeyPem: k.publicKeyPem,
      serial: real.serial,
      notBeforeMs: now - 60_000,
      notAfterMs: now + 3_600_000,
    })
    expect(new X509Certificate(forged).subject).toMatch(/CN=p__alice/)
    for (let i = 0; i < 3; i++) {
      const r = await read(i, '/Projects/p/Resources/from-cert-0.txt', { cert: forged, key: k.keyPem })
      expect(r.status, r.text).toBe(401)
      expect(r.json().error.code).toBe('CREDENTIAL_INVALID')
    }
    expect((await read(0, '/Projects/p/Resources/from-cert-0.txt', real)).status).toBe(200)
  })

  it('bad input: a bad project name, a bad public key, a lifetime over the max → 400, nothing recorded', async () => {
    const before = await certsOf('p')
    const k = newKey()
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
      .publicKey.export({ type: 'spki', format: 'pem' })
      .toString()
    const cases: [string, object, string][] = [
      ['P!', { publicKeyPem: k.publicKeyPem }, 'INVALID_PROJECT_NAME'],
      ['p__x', { publicKeyPem: k.publicKeyPem }, 'INVALID_PROJECT_NAME'],
      ['p', { publicKeyPem: 'not a key' }, 'INVALID_CERTIFICATE_REQUEST'],
      ['p', { publicKeyPem: rsa }, 'INVALID_CERTIFICATE_REQUEST'],
      [
        'p',
        { csrPem: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' },
        'INVALID_CERTIFICATE_REQUEST',
      ],
      ['p', { publicKeyPem: k.publicKeyPem, csrPem: 'x' }, 'INVALID_CERTIFICATE_REQUEST'],
      ['p', {}, 'INVALID_CERTIFICATE_REQUEST'],
      ['p', { publicKeyPem: k.publicKeyPem, ttlS: 7 * 86_400 + 1 }, 'INVALID_CERTIFICATE_REQUEST'],
    ]
    for (const [project, body, code] of cases) {
      const r = await api(0, 'POST', `/api/v1/projects/${encodeURIComponent(project)}/certs`, {
        ...as('alice'),
        body,
      })
      expect(r.status, `${project} ${JSON.stringify(body).slice(0, 80)}: ${r.text}`).toBe(400)
      expect(r.json().error.code).toBe(code)
    }
    // The max is a cluster setting: lowered, a lifetime that was fine is refused.
    const s = await api(0, 'PUT', '/api/v1/cluster/settings/projectCertValidityMaxS', {
      ...as('admin'),
      body: { value: '60' },
    })
    expect(s.status, s.text).toBe(200)
    const over = await api(0, 'POST', '/api/v1/projects/p/certs', {
      ...as('alice'),
      body: { publicKeyPem: k.publicKeyPem, ttlS: 3600 },
    })
    expect(over.status, over.text).toBe(400)
    expect(over.json().error.message).toMatch(/projectCertValidityMaxS/)
    expect(await certsOf('p')).toEqual(before)
  })
})
