/**
 * Issue 11 item 7 against real processes on a secure cluster (hopsd start's default auth): node
 * admission and identity beyond the swarm key. Each test attacks what the code before admission let
 * through.
 *  - A host with the swarm key and no admission asks to join (metadata role): it stays pending, never
 *    becomes a learner, and nothing of the replicated state reaches its disk — its Raft storage is
 *    empty, and neither the cluster id nor a file written meanwhile is anywhere in its data dir.
 *  - Approved by an admin (`hopsd node approve`), the same node becomes a learner, and a voter when one
 *    dies, as any metadata node does.
 *  - A join token (`hopsd token create --role metadata`) admits one node once: a second node with it is
 *    refused (JOIN_TOKEN_USED) and left pending; an expired token is refused (JOIN_TOKEN_EXPIRED).
 *  - A certificate request naming hosts that lead to other nodes (127.0.0.1, localhost, from a host
 *    on 127.0.0.2) is refused; asking for its own address only, the same host gets a certificate naming
 *    just that and its id.
 *  - A revoked node (`hopsd node revoke`) is cut off: every node disconnects and refuses it, it leaves the
 *    Raft group, its certificate is refused as an HTTPS client certificate (CERT_REVOKED), while the rest
 *    of the cluster keeps committing.
 *  - The CA's private key is in no Raft log entry, snapshot, file or log of any node (recovered from a
 *    metadata node's wrapped copy with that node's wrapping key, then searched for in every form).
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { X509Certificate } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { JOIN_PROTOCOL } from '../../src/node/admission/index.js'
import { createNodeKey } from '../../src/node/ca/index.js'
import { createP2PHost, isP2PError, P2P_TIMINGS_TEST, request, type P2PHost } from '../../src/node/p2p/index.js'
import { hopsd as clusterProto } from '../../src/proto/cluster.js'
import { makeTempDir, runHopsd, waitFor, type NodeHandle } from '../helpers/index.js'
import { CLUSTER_TEST_TIMEOUT_MS, timingArgs, useCluster } from '../cluster/harness.js'
import { startTlsNode, stopAllTlsNodes, type TlsNode } from '../tls/tls-node.js'
import { filesUnder, findKey, keyNeedles, raftContents, recoverCaKey } from './ca-key.js'
import { call } from './client.js'

const cpb = clusterProto.cluster

/** What a test file holds: text, so that it reads back through a JSON-speaking client unchanged. */
const contentFor = (path: string) => Buffer.from(`the content of ${path}, written by the admission test`)

interface Doc {
  clusterId: string
  leader: { id: string } | null
  voters: { id: string }[]
  learners: { id: string }[]
}

interface Admission {
  id: string
  state: string
  roles: string[]
  via: string
}

describe.sequential('node admission on a secure cluster', { timeout: CLUSTER_TEST_TIMEOUT_MS }, () => {
  const c = useCluster('admission', { auth: 'secure' })
  let metas: NodeHandle[] = []
  let admin = ''
  let x: NodeHandle // asked without admission, approved later
  let y: NodeHandle // admitted by a join token, revoked later
  const plain: P2PHost[] = []
  const tlsNodes: TlsNode[] = []
  const tlsDirs: string[] = []
  const ownDirs: string[] = []

  const doc = async (n: NodeHandle): Promise<Doc> => {
    const r = await call(n.url, 'GET', '/api/v1/cluster', { key: admin })
    if (r.status !== 200) throw new Error(`${n.url}: ${r.status} ${r.text}`)
    return r.json()
  }
  const members = (d: Doc) => [...d.voters, ...d.learners].map((m) => m.id)
  const cli = (args: string[], node = metas[0]!) =>
    runHopsd([...args, '--addr', node.url], { env: { HOPSD_KEY: admin }, timeoutMs: 60_000 })
  const admissions = async (): Promise<Admission[]> => {
    const r = await call(metas[0]!.url, 'GET', '/api/v1/nodes/admission', { key: admin })
    if (r.status !== 200) throw new Error(`admission list: ${r.status} ${r.text}`)
    return r.json().nodes
  }
  const admissionOf = async (id: string) => (await admissions()).find((a) => a.id === id)
  /** The peer gate of a node that authenticates the admin (a metadata replica, or one that asks one). */
  const trustOf = async (url: string) => {
    const r = await call(url, 'GET', '/api/v1/node', { key: admin })
    if (r.status !== 200) throw new Error(`${url}/api/v1/node: ${r.status} ${r.text}`)
    return r.json().trust as { certified: boolean; denied: number; peers: { id: string; status: string }[] }
  }
  const put = async (n: NodeHandle, path: string) => {
    const r = await call(n.url, 'PUT', `/api/v1/fs/files?path=${encodeURIComponent(path)}`, {
      key: admin,
      body: contentFor(path),
      headers: { 'content-type': 'application/octet-stream' },
    })
    if (r.status !== 201) throw new Error(`PUT ${path}: ${r.status} ${r.text}`)
  }
  const read = async (n: NodeHandle, path: string) => {
    const r = await call(n.url, 'GET', `/api/v1/fs/files?path=${encodeURIComponent(path)}`, { key: admin })
    return r.status === 200 ? Buffer.from(r.text, 'latin1') : undefined
  }
  const token = async (roles: string, extra: string[] = []) => {
    const made = await cli(['token', 'create', '--role', roles, ...extra])
    expect(made.code, made.stderr).toBe(0)
    expect(made.stdout).toMatch(/^hj1\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}\n$/)
    return made.stdout.trim()
  }

  beforeAll(
    () =>
      c.guard(async () => {
        metas = await c.startMany([{ zone: 'z1' }, { zone: 'z2' }, { zone: 'z3' }], { bootstrapExpect: 3 })
        admin = await c.adminKey(90_000)
        await waitFor(
          async () => {
            for (const n of metas) {
              const d = await doc(n).catch(() => undefined)
              if (d?.leader == null || d.voters.length !== 3) return false
            }
            return true
          },
          { timeoutMs: 90_000, intervalMs: 200, what: '3 voters seen by every node' },
        )
      }),
    300_000,
  )
  afterAll(async () => {
    await Promise.all(plain.map((h) => h.stop()))
    await stopAllTlsNodes()
    // The TLS node's and the CLI test's own dirs (the cluster's go with the cluster).
    for (const d of ownDirs) rmSync(d, { recursive: true, force: true })
  })

  it('a host with the swarm key but no admission stays pending, never becomes a learner, and never receives the state', async () => {
    await put(metas[0]!, '/before-x')
    x = await c.start({ zone: 'z4' }, { bootstrapExpect: 3 })
    // It asked, and waits for an admin.
    const pending = await waitFor(
      async () => ((await admissionOf(x.id))?.state === 'pending' ? true : undefined),
      {
        timeoutMs: 60_000,
        what: 'the new node pending',
      },
    )
    expect(pending).toBe(true)
    const listed = await cli(['node', 'ls', '--pending'])
    expect(listed.stdout).toContain(x.id)
    await put(metas[1]!, '/while-x-waits')
    const xDir = c.started.find((n) => n.handle === x)!.dataDir
    // Watch for 8 s (the leader's membership loop runs every 150 ms, a learner would be added in one
    // round): X is never a member, never certified, and every metadata node keeps it out of the gossip.
    const seen: string[] = []
    let polls = 0
    const until = Date.now() + 8_000
    await waitFor(
      async () => {
        polls++
        for (const n of metas) if (members(await doc(n)).includes(x.id)) seen.push(`member on ${n.url}`)
        if (existsSync(join(xDir, 'tls', 'node.crt'))) seen.push('X holds a certificate')
        for (const n of metas)
          for (const p of (await trustOf(n.url)).peers)
            if (p.id === x.id && p.status === 'verified') seen.push(`verified by ${n.url}`)
        return Date.now() >= until
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'the observation window' },
    )
    expect(polls).toBeGreaterThan(5)
    expect(seen).toEqual([])
    expect(x.logs().stdout).toContain('waiting to be admitted')
    // Its disk: no Raft state at all, no certificate, and nothing of the state.
    const dir = xDir
    const clusterId = (await doc(metas[0]!)).clusterId
    await x.stop()
    const raft = await raftContents(dir)
    expect(raft.entries).toEqual([])
    expect(raft.snapshot).toEqual([])
    expect(existsSync(join(dir, 'tls', 'node.crt'))).toBe(false)
    const marks = [Buffer.from(clusterId), contentFor('/before-x'), contentFor('/while-x-waits')]
    const found = [...filesUnder(dir)].filter(([, bytes]) =>
      marks.some((m) => Buffer.from(bytes).includes(m)),
    )
    expect(found.map(([f]) => f)).toEqual([])
  })

  it('an admin approves it: it becomes a learner, then a voter when a voter dies', async () => {
    x = await c.restart(x, { bootstrapExpect: 3 })
    const approved = await cli(['node', 'approve', x.id])
    expect(approved.code, approved.stderr).toBe(0)
    expect(await admissionOf(x.id)).toMatchObject({
      state: 'admitted',
      via: 'approved:admin',
      roles: expect.arrayContaining(['metadata']),
    })
    // Approved, X asks again (backoff up to 10 s), is certified, then added: under the whole suite's
    // load on two cores this has taken longer than 90 s.
    await waitFor(async () => (await doc(metas[0]!)).learners.some((l) => l.id === x.id), {
      timeoutMs: 150_000,
      what: 'X a learner',
    })
    await waitFor(
      async () => (await read(x, '/while-x-waits'))?.equals(contentFor('/while-x-waits')) === true,
      {
        timeoutMs: 30_000,
        what: 'X serving the replicated state',
      },
    )
    const leader = (await doc(metas[0]!)).leader!.id
    const victim = metas.find((n) => n.id !== leader)!
    victim.kill('SIGKILL')
    metas = metas.filter((n) => n !== victim)
    await waitFor(
      async () => {
        const d = await doc(metas[0]!)
        return d.voters.some((v) => v.id === x.id) && !members(d).includes(victim.id)
      },
      { timeoutMs: 60_000, what: 'X promoted in place of the dead voter' },
    )
    metas.push(x)
  }, 330_000)

  it('a join token admits one node, once; a used or an expired token is refused', async () => {
    const once = await token('metadata')
    const expiring = await token('datanode', ['--expires-s', '1'])
    await waitFor(
      async () => {
        const ls = await cli(['token', 'ls', '--json'])
        return (JSON.parse(ls.stdout) as { id: string; state: string }[]).some(
          (t) => expiring.includes(t.id) && t.state === 'expired',
        )
      },
      { timeoutMs: 20_000, what: 'the short token expired' },
    )
    y = await c.start({ zone: 'z5', extraArgs: ['--join-token', once] }, { bootstrapExpect: 3 })
    await waitFor(async () => (await doc(metas[0]!)).learners.some((l) => l.id === y.id), {
      timeoutMs: 90_000,
      what: 'Y a learner by its token',
    })
    expect((await admissionOf(y.id))?.via).toMatch(/^token:[0-9a-f]{16}$/)
    const [z, w] = await c.startMany(
      [
        { zone: 'z6', extraArgs: ['--join-token', once] },
        { zone: 'z6', roles: ['datanode'], extraArgs: ['--join-token', expiring] },
      ],
      { bootstrapExpect: 3 },
    )
    await waitFor(
      () => z!.logs().stdout.includes('JOIN_TOKEN_USED') && w!.logs().stdout.includes('JOIN_TOKEN_EXPIRED'),
      {
        timeoutMs: 60_000,
        what: 'the used and the expired token refused',
      },
    )
    expect(await admissionOf(z!.id)).toMatchObject({ state: 'pending' })
    expect(await admissionOf(w!.id)).toMatchObject({ state: 'pending' })
    expect(members(await doc(metas[0]!))).not.toContain(z!.id)
    expect(existsSync(join(c.started.find((n) => n.handle === z)!.dataDir, 'tls', 'node.crt'))).toBe(false)
    await Promise.all([z!.stop(), w!.stop()])
  })

  it('a certificate request naming hosts that lead to other nodes is refused', async () => {
    // A host with the swarm key and a token, listening on 127.0.0.2 only: 127.0.0.1 and 'localhost' are
    // where the cluster's nodes listen, not it.
    // (The token first: a node lets an uncertified peer go after a grace period, and a CLI run may take
    // that long on a loaded machine.)
    const joinToken = await token('datanode')
    const host = await createP2PHost({
      privateKey: await generateKeyPair('Ed25519'),
      listen: '127.0.0.2:0',
      swarmKey: readFileSync(c.swarmKeyFile),
      join: [metas[0]!.p2p],
      timings: P2P_TIMINGS_TEST,
    })
    plain.push(host)
    await waitFor(() => host.isConnected(metas[0]!.id), {
      timeoutMs: 20_000,
      what: 'the plain host connected',
    })
    const key = await createNodeKey()
    const body = (hosts: string[]) =>
      cpb.CertificateRequest.encode({
        zone: 'z9',
        publicKeyPem: key.publicKeyPem,
        hosts,
        roles: ['datanode'],
        joinToken,
        p2pPort: host.listenAddress().port,
      }).finish()
    // The node lets an uncertified peer go after its grace period (5 s with the test timings), which a
    // loaded machine can spend between two asks: a joining node dials again, and so does this one.
    const ask = async (hosts: string[]) => {
      for (let attempt = 1; ; attempt++) {
        try {
          if (!host.isConnected(metas[0]!.id)) await host.dial(metas[0]!.p2p)
          return cpb.CertificateReply.decode(
            await request(host, metas[0]!.id, JOIN_PROTOCOL, body(hosts), { timeoutMs: 15_000 }),
          )
        } catch (err) {
          if (attempt >= 3 || !isP2PError(err, 'PEER_UNREACHABLE')) throw err
        }
      }
    }
    const refused = await ask(['127.0.0.2', 'localhost', '127.0.0.1'])
    expect(refused.status).toBe(cpb.CertificateReply.Status.HOSTS_REFUSED)
    expect(refused.certificatePem).toBe('')
    expect([...refused.refusedHosts].sort()).toEqual(['127.0.0.1', 'localhost'])
    // Asking only for its own address, it gets a certificate naming that and its id, nothing else.
    const issued = await ask(['127.0.0.2'])
    expect(issued.status).toBe(cpb.CertificateReply.Status.ISSUED)
    const cert = new X509Certificate(issued.certificatePem)
    expect(cert.subject).toContain(`CN=${host.id}`)
    expect(cert.subjectAltName?.split(', ').sort()).toEqual(
      ['IP Address:127.0.0.2', `URI:hopsd://node/${host.id}`].sort(),
    )
    expect(cert.checkHost('localhost')).toBeUndefined()
    expect(cert.checkIP('127.0.0.1')).toBeUndefined()
  })

  it('a revoked node is cut off everywhere — p2p and HTTPS — while the cluster keeps working', async () => {
    // A metadata node serving HTTPS (it asks for client certificates and holds the cluster's CRL).
    const tParent = makeTempDir('hopsd-admission-tls-')
    ownDirs.push(tParent)
    const tDir = join(tParent, 't')
    const t = await startTlsNode({
      dataDir: tDir,
      zone: 'z7',
      roles: ['metadata'],
      join: metas.map((n) => n.p2p),
      extraArgs: [
        '--swarm-key',
        c.swarmKeyFile,
        '--auth',
        'secure',
        '--join-token',
        await token('metadata'),
        ...timingArgs(),
      ],
    })
    tlsNodes.push(t)
    const yDir = c.started.find((n) => n.handle === y)!.dataDir
    tlsDirs.push(tDir)
    const ca = () => readFileSync(join(tDir, 'tls', 'ca.crt'), 'utf8')
    await waitFor(
      () => existsSync(join(tDir, 'tls', 'ca.crt')) && t.logs().includes('HTTPS certificate switched'),
      {
        timeoutMs: 90_000,
        what: 'T serving the cluster certificate',
      },
    )
    const asY = () =>
      httpsStatus(`${t.url}/api/v1/node`, {
        ca: ca(),
        cert: readFileSync(join(yDir, 'tls', 'node.crt'), 'utf8'),
        key: readFileSync(join(yDir, 'tls', 'node.key'), 'utf8'),
      })
    await waitFor(async () => (await asY()).status === 200, {
      timeoutMs: 30_000,
      what: 'Y’s certificate accepted',
    })

    const revoked = await cli(['node', 'revoke', y.id, '--reason', 'test'])
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(await admissionOf(y.id)).toMatchObject({ state: 'revoked' })
    // Every metadata node refuses it; it leaves the Raft group; it is disconnected from every node.
    await waitFor(
      async () => {
        const d = await doc(metas[0]!)
        if (members(d).includes(y.id)) return false
        for (const n of metas) {
          const tr = await trustOf(n.url)
          if (tr.denied < 1 || tr.peers.some((p) => p.id === y.id && p.status !== 'revoked')) return false
        }
        return true
      },
      { timeoutMs: 60_000, what: 'Y cut off by every node' },
    )
    // Its join loop keeps dialing: no node keeps a connection with it.
    const sightings: string[] = []
    const until = Date.now() + 3_000
    await waitFor(
      async () => {
        for (const n of metas)
          if ((await trustOf(n.url)).peers.some((p) => p.id === y.id && p.status !== 'revoked'))
            sightings.push(n.url)
        return Date.now() >= until
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'a quiet period' },
    )
    expect(sightings).toEqual([])
    // HTTPS: its certificate fails verification as a client certificate.
    const refused = await waitFor(
      async () => {
        const r = await asY()
        return r.status === 401 ? r : undefined
      },
      { timeoutMs: 30_000, what: 'Y’s certificate refused over HTTPS' },
    )
    expect(refused.body).toContain('CERT_REVOKED')
    // The cluster goes on.
    await put(metas[0]!, '/after-revoke')
    for (const n of metas)
      await waitFor(
        async () => (await read(n, '/after-revoke'))?.equals(contentFor('/after-revoke')) === true,
        {
          timeoutMs: 30_000,
          what: `${n.url} reads a file written after the revocation`,
        },
      )
  })

  it('tokens and approvals need an admin (the CLI sends the key from --key, HOPSD_KEY or the credentials file); they are audited', async () => {
    const n = metas[0]!
    const home = makeTempDir('hopsd-admission-cli-')
    ownDirs.push(home)
    const made = await call(n.url, 'POST', '/api/v1/users', { key: admin, body: { name: 'eve' } })
    expect(made.status, made.text).toBe(201)
    const eve = (await call(n.url, 'POST', '/api/v1/keys', { key: admin, body: { user: 'eve' } })).json()
      .key as string
    writeFileSync(join(home, 'eve.key'), `${eve}\n`, { mode: 0o600 })
    mkdirSync(join(home, 'admin', 'hopsd'), { recursive: true })
    writeFileSync(join(home, 'admin', 'hopsd', 'credentials'), `key = ${admin}\n`, { mode: 0o600 })
    const as = (env: Record<string, string | undefined>, args: string[]) =>
      runHopsd([...args, '--addr', n.url], { env: { HOPSD_KEY: undefined, ...env }, timeoutMs: 60_000 })
    const nobody = { XDG_CONFIG_HOME: join(home, 'nobody') }
    // Open tokens only: making a token drops the used and expired ones (the table is bounded).
    const tokenIds = async () =>
      (
        (await call(n.url, 'GET', '/api/v1/join-tokens', { key: admin })).json().tokens as {
          id: string
          state: string
        }[]
      )
        .filter((t) => t.state === 'open')
        .map((t) => t.id)
        .sort()
    const before = await tokenIds()
    const pending = (await admissions()).filter((a) => a.state === 'pending').map((a) => a.id)
    expect(pending.length).toBeGreaterThan(0) // Z and W of the token test wait still
    const routes: [string, string, object?][] = [
      ['POST', '/api/v1/join-tokens', { roles: ['metadata'] }],
      ['GET', '/api/v1/join-tokens'],
      ['DELETE', `/api/v1/join-tokens/${before[0] ?? '0123456789abcdef'}`],
      ['GET', '/api/v1/nodes/admission'],
      ['POST', `/api/v1/nodes/${pending[0]!}/approve`, {}],
      ['POST', `/api/v1/nodes/${metas[1]!.id}/revoke`, {}],
    ]
    // Every admission route: no credential 401, eve's key 403.
    for (const [method, path, body] of routes) {
      expect((await call(n.url, method, path, { body })).status, `${method} ${path}`).toBe(401)
      expect((await call(n.url, method, path, { key: eve, body })).status, `${method} ${path}`).toBe(403)
    }
    // The CLI the same way: no credential, eve's key from --key FILE, then from HOPSD_KEY.
    for (const [env, args, code] of [
      [nobody, ['token', 'create', '--role', 'metadata'], 'UNAUTHENTICATED'],
      [nobody, ['node', 'approve', pending[0]!, '--key', join(home, 'eve.key')], 'SUPERUSER_REQUIRED'],
      [{ ...nobody, HOPSD_KEY: eve }, ['node', 'revoke', metas[1]!.id], 'SUPERUSER_REQUIRED'],
    ] as const) {
      const r = await as(env, [...args])
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1)
      expect(r.stdout).toBe('')
      expect(r.stderr).toMatch(new RegExp(`^hopsd: ${args[0]} ${args[1]}: .*\\[${code}\\]\\n$`))
    }
    // Nothing made, deleted, admitted or revoked.
    expect(await tokenIds()).toEqual(before)
    expect(await admissionOf(pending[0]!)).toMatchObject({ state: 'pending' })
    expect(await admissionOf(metas[1]!.id)).toMatchObject({ state: 'admitted' })

    // The admin's key from the credentials file: a token, printed alone, then deleted unused.
    const ok = await as({ XDG_CONFIG_HOME: join(home, 'admin') }, ['token', 'create', '--role', 'datanode'])
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toMatch(/^hj1\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}\n$/)
    const id = ok.stdout.split('.')[1]!
    expect(await tokenIds()).toEqual([...before, id].sort())
    const rm = await as({ XDG_CONFIG_HOME: join(home, 'admin') }, ['token', 'rm', id])
    expect(rm.code, rm.stderr).toBe(0)
    expect(await tokenIds()).toEqual(before)

    const r = await call(n.url, 'GET', '/api/v1/audit?limit=10000', { key: admin })
    expect(r.status).toBe(200)
    const events = r.json().events as { kind: string; decision: string; user: string; path: string }[]
    expect(events).toContainEqual(
      expect.objectContaining({
        kind: 'join-token.create',
        decision: 'allow',
        user: 'admin',
        path: `join-token:${id}`,
      }),
    )
    expect(events).toContainEqual(
      expect.objectContaining({
        kind: 'join-token.delete',
        decision: 'allow',
        user: 'admin',
        path: `join-token:${id}`,
      }),
    )
    expect(events).toContainEqual(
      expect.objectContaining({
        kind: 'node.revoke',
        decision: 'allow',
        user: 'admin',
        path: `node:${y.id}`,
      }),
    )
    expect(events).toContainEqual(
      expect.objectContaining({ kind: 'access.denied', decision: 'deny', user: 'eve' }),
    )
    expect(r.text).not.toContain(ok.stdout.trim().split('.')[2])
  }, 300_000)

  it('the CA private key is in no Raft log entry, no snapshot and no file of any node', async () => {
    const nodes = c.started.filter((n) => metas.includes(n.handle) || n.handle === y)
    const logs = [
      ...nodes.map((n) => n.handle.logs().stdout + n.handle.logs().stderr),
      ...tlsNodes.map((t) => t.logs()),
    ]
    const dirs = [...nodes.map((n) => n.dataDir), ...tlsDirs]
    await Promise.all([...nodes.map((n) => n.handle.stop()), stopAllTlsNodes()])
    const raft = await Promise.all(dirs.map((d) => raftContents(d)))
    const keyPem = recoverCaKey(raft[0]!, nodes[0]!.handle.id, nodes[0]!.dataDir)
    const needles = keyNeedles(keyPem)
    // The search finds the key where it is (so an empty result below means something).
    expect(findKey(needles, [['a planted copy', Buffer.from(`x${keyPem}y`)]])).not.toEqual([])
    expect(
      findKey(needles, [['a planted DER', Buffer.concat([Buffer.from('x'), needles[0]!.bytes])]]),
    ).not.toEqual([])
    const haystacks: [string, Uint8Array][] = []
    for (const [i, dir] of dirs.entries()) {
      for (const f of filesUnder(dir)) haystacks.push(f)
      raft[i]!.entries.forEach((e, j) => haystacks.push([`${dir} raft entry ${j}`, e]))
      raft[i]!.snapshot.forEach((s, j) => haystacks.push([`${dir} raft snapshot ${j}`, s]))
      haystacks.push([`${dir} logs`, Buffer.from(logs[i]!)])
    }
    expect(raft.every((r) => r.entries.length + r.snapshot.length > 0)).toBe(true)
    expect(findKey(needles, haystacks)).toEqual([])
    // Each metadata node holds a copy only it can open.
    for (const [i, n] of nodes.entries()) expect(recoverCaKey(raft[i]!, n.handle.id, n.dataDir)).toBe(keyPem)
  })
})

/** GET over HTTPS with a client certificate; the status and body (never rejects on a status). */
function httpsStatus(
  url: string,
  tls: { ca: string; cert: string; key: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // A connection of its own (no keep-alive agent): each probe is a new TLS handshake, which is what
    // the CRL is checked in. Reusing the connection the accepted probe opened went on being served.
    const req = httpsRequest(url, { ...tls, agent: false, timeout: 10_000 }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer`)))
    req.on('error', reject)
    req.end()
  })
}
