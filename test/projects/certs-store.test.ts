/**
 * Project-user certificates on one in-process replica (the real state machine with the fs, projects
 * and auth modules, a local group, the real CA code): what the commands record and refuse (nothing
 * changed), who sees and revokes which, and the authenticator's decision on every request — revoked,
 * expired (an injected clock), removed, re-added, disabled, a record for another project-user, a serial
 * never recorded — and the auth guard refusing a write at commit once the certificate is revoked.
 * test/projects/certs.test.ts runs the same on real daemons over TLS.
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto'
import { beforeEach, describe, expect, it } from 'vitest'
import {
  authModule,
  clusterPrincipal,
  createAuthService,
  createLocalAuthenticator,
  type Authenticator,
  type AuthService,
  type AuthStore,
  type ClientCertificate,
  type Principal,
} from '../../src/auth/index.js'
import { createFsService, namespaceModule, type Namespace } from '../../src/fs/index.js'
import {
  createLocalGroup,
  createMetaStateMachine,
  encodeCommand,
  type MetaResult,
} from '../../src/meta/index.js'
import {
  createClusterCa,
  issueProjectUserCertificate,
  newSerial,
  normalizeSerial,
  publicKeyOfRequest,
  type ClusterCaMaterial,
} from '../../src/node/ca/index.js'
import {
  createProjectService,
  projectsModule,
  type ProjectService,
  type ProjectStore,
} from '../../src/projects/index.js'

const publicKey = () =>
  generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    .publicKey.export({ type: 'spki', format: 'pem' })
    .toString()

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'ok'
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

describe('project-user certificates (one replica)', () => {
  let ca: ClusterCaMaterial
  let nowMs = Date.now()
  let projects: ProjectService
  let auth: AuthService
  let authn: Authenticator
  let store: () => ProjectStore
  let fs: ReturnType<typeof createFsService>
  let group: ReturnType<typeof createLocalGroup>
  let admin: Principal
  const alice: Principal = { user: 'alice', groups: [], via: 'simple', superuser: false }
  const bob: Principal = { user: 'bob', groups: [], via: 'simple', superuser: false }
  const carol: Principal = { user: 'carol', groups: [], via: 'simple', superuser: false }

  beforeEach(async () => {
    ca ??= await createClusterCa('c1')
    nowMs = Date.now()
    let ns: Namespace | undefined
    const sm = createMetaStateMachine({
      modules: [(s) => (ns = namespaceModule()(s)), projectsModule(() => ns!), authModule()],
    })
    const authStore = sm.module<AuthStore>('auth')
    store = () => sm.module<ProjectStore>('projects')
    authStore.attachProjectMembership((project, user, su) => store().requireKeyProject(project, user, su))
    authStore.attachProjectCertificates((serial, project, user, at) =>
      store().checkCertificate(serial, project, user, at),
    )
    group = createLocalGroup(sm)
    fs = createFsService({ consensus: group, stateMachine: sm })
    auth = createAuthService({ consensus: group, stateMachine: sm, nodeId: 'n1' })
    authn = createLocalAuthenticator({
      store: () => authStore,
      settings: () => sm.settings(),
      isSuperuser: (u, g) => sm.isSuperuser(u, g),
      bootstrapMode: 'secure',
      barrier: (signal) => group.readBarrier({ signal }),
      clock: () => nowMs,
    })
    const { key } = await auth.bootstrap(clusterPrincipal(), 'secure')
    admin = (await authn.authenticate({ bearer: key }))!
    for (const u of ['alice', 'bob', 'carol']) await auth.addUser(admin, u)
    projects = createProjectService({
      consensus: group,
      stateMachine: sm,
      nodeId: 'n1',
      clock: () => nowMs,
      certificates: {
        publicKeyOf: publicKeyOfRequest,
        newSerial: () => normalizeSerial(newSerial()),
        sign: async (req) => ({
          certificatePem: await issueProjectUserCertificate(ca, req),
          caCertificatePem: ca.certPem,
        }),
      },
    })
    await projects.create(alice, 'p')
    await projects.create(alice, 'q')
    await projects.setMember(alice, 'p', 'bob', 'DATA_SCIENTIST')
  })

  /** What the HTTPS server hands the authenticator for a verified certificate. */
  const presented = (pem: string): ClientCertificate => {
    const x = new X509Certificate(pem)
    return {
      verified: true,
      uris: (x.subjectAltName ?? '').split(/,\s*/).map((s) => s.replace(/^URI:/, '')),
      serial: x.serialNumber.toLowerCase(),
      notAfterMs: x.validToDate.getTime(),
    }
  }
  const authOf = (pem: string) => outcome(authn.authenticate({ certificate: presented(pem) }))

  it('issues CN=<project>__<user> for the key sent, for the recorded window, and authenticates that project-user', async () => {
    const c = await projects.issueCertificate(bob, 'p', { publicKeyPem: publicKey(), ttlS: 600 })
    const x = new X509Certificate(c.certificatePem)
    expect(x.subject).toMatch(/CN=p__bob/)
    expect(x.subjectAltName).toBe('URI:hopsd://project-user/p/bob')
    expect(x.validToDate.getTime()).toBe(Math.floor((nowMs + 600_000) / 1000) * 1000)
    expect(c.chainPem).toContain(ca.certPem.trim())
    expect(store().certificate(c.serial)).toMatchObject({
      project: 'p',
      user: 'bob',
      notAfterMs: x.validToDate.getTime(),
    })
    const p = await authn.authenticate({ certificate: presented(c.certificatePem) })
    expect(p).toMatchObject({ user: 'bob', project: 'p', via: 'project-certificate', credentialId: c.serial })
  })

  it('refuses revoked, expired, removed (and re-added), disabled, unrecorded and mismatched certificates', async () => {
    const revoked = await projects.issueCertificate(bob, 'p', { publicKeyPem: publicKey() })
    const expiring = await projects.issueCertificate(bob, 'p', { publicKeyPem: publicKey(), ttlS: 5 })
    const kept = await projects.issueCertificate(bob, 'p', { publicKeyPem: publicKey() })
    await projects.revokeCertificate(bob, 'p', revoked.serial)
    expect(await authOf(revoked.certificatePem)).toBe('CREDENTIAL_REVOKED')
    expect(await authOf(expiring.certificatePem)).toBe('ok')
    nowMs += 5_000
    expect(await authOf(expiring.certificatePem)).toBe('CREDENTIAL_EXPIRED')
    expect(await authOf(kept.certificatePem)).toBe('ok')
    await auth.setUser(admin, 'bob', { disabled: true })
    expect(await authOf(kept.certificatePem)).toBe('USER_DISABLED')
    await auth.setUser(admin, 'bob', { disabled: false })
    await projects.removeMember(alice, 'p', 'bob')
    expect(await authOf(kept.certificatePem)).toBe('CREDENTIAL_REVOKED')
    await projects.setMember(alice, 'p', 'bob', 'DATA_SCIENTIST')
    expect(await authOf(kept.certificatePem)).toBe('CREDENTIAL_REVOKED')
    // Signed by the CA but never recorded; recorded, but for another project-user than it names.
    const k = publicKey()
    const unrecorded = await issueProjectUserCertificate(ca, {
      project: 'p',
      user: 'alice',
      publicKeyPem: k,
      serial: normalizeSerial(newSerial()),
      notBeforeMs: nowMs,
      notAfterMs: nowMs + 60_000,
    })
    expect(await authOf(unrecorded)).toBe('CREDENTIAL_REVOKED')
    const real = await projects.issueCertificate(alice, 'p', { publicKeyPem: k })
    const claimsQ = await issueProjectUserCertificate(ca, {
      project: 'q',
      user: 'alice',
      publicKeyPem: k,
      serial: real.serial,
      notBeforeMs: nowMs,
      notAfterMs: nowMs + 60_000,
    })
    expect(await authOf(claimsQ)).toBe('CREDENTIAL_INVALID')
    expect(await authOf(real.certificatePem)).toBe('ok')
  })

  it('a certificate principal makes no credential that leaves its project', async () => {
    const c = await projects.issueCertificate(alice, 'p', { publicKeyPem: publicKey() })
    const p = (await authn.authenticate({ certificate: presented(c.certificatePem) }))!
    expect(await outcome(auth.createKey(p, { user: 'alice' }))).toBe('AUTH_LIMIT')
    expect(await outcome(auth.createKey(p, { user: 'alice', project: 'q' }))).toBe('AUTH_LIMIT')
    expect(await outcome(projects.issueCertificate(p, 'q', { publicKeyPem: publicKey() }))).toBe(
      'PROJECT_ACCESS_DENIED',
    )
    expect(await outcome(auth.createKey(p, { user: 'alice', project: 'p' }))).toBe('ok')
    expect(await outcome(projects.issueCertificate(p, 'p', { publicKeyPem: publicKey() }))).toBe('ok')
  })

  it('a write authenticated by a certificate revoked before its commit is refused at commit', async () => {
    const c = await projects.issueCertificate(alice, 'p', { publicKeyPem: publicKey() })
    const p = (await authn.authenticate({ certificate: presented(c.certificatePem) }, { fresh: false }))!
    expect(await outcome(fs.create(p, '/Projects/p/Resources/a.txt', new Uint8Array([1])))).toBe('ok')
    await projects.revokeCertificate(alice, 'p', c.serial)
    expect(await outcome(fs.create(p, '/Projects/p/Resources/b.txt', new Uint8Array([2])))).toBe(
      'CREDENTIAL_REVOKED',
    )
  })

  it('lists own certificates to members, all to Data Owners and admins; revocation by the user, Data Owners, admins', async () => {
    const b = await projects.issueCertificate(bob, 'p', { publicKeyPem: publicKey() })
    const a = await projects.issueCertificate(alice, 'p', { publicKeyPem: publicKey() })
    expect((await projects.certificates(bob, 'p')).map((c) => c.serial)).toEqual([b.serial])
    expect((await projects.certificates(alice, 'p')).map((c) => c.serial).sort()).toEqual(
      [a.serial, b.serial].sort(),
    )
    expect(await projects.certificates(admin, 'p')).toHaveLength(2)
    expect(await outcome(projects.certificates(carol, 'p'))).toBe('PROJECT_NOT_FOUND')
    expect(await outcome(projects.revokeCertificate(bob, 'p', a.serial))).toBe('CERTIFICATE_NOT_FOUND')
    expect(await outcome(projects.revokeCertificate(carol, 'p', a.serial))).toBe('PROJECT_NOT_FOUND')
    expect(await outcome(projects.revokeCertificate(alice, 'q', b.serial))).toBe('CERTIFICATE_NOT_FOUND')
    expect(store().certificate(a.serial)!.revokedMs).toBe(0)
    expect((await projects.revokeCertificate(alice, 'p', b.serial)).status).toBe('revoked')
    expect((await projects.revokeCertificate(admin, 'p', a.serial)).revokedBy).toBe('admin')
  })

  it('refuses what it must and records nothing: non-members, another user, another project, bad keys, lifetimes', async () => {
    const k = publicKey()
    const cases: [Principal, string, object, string][] = [
      [carol, 'p', { publicKeyPem: k }, 'PROJECT_NOT_FOUND'],
      [alice, 'p', { publicKeyPem: k, user: 'bob' }, 'PROJECT_ACCESS_DENIED'],
      [{ ...alice, project: 'q' }, 'p', { publicKeyPem: k }, 'PROJECT_ACCESS_DENIED'],
      [alice, 'P', { publicKeyPem: k }, 'INVALID_PROJECT_NAME'],
      [alice, 'p', { publicKeyPem: 'junk' }, 'INVALID_CERTIFICATE_REQUEST'],
      [alice, 'p', {}, 'INVALID_CERTIFICATE_REQUEST'],
      [alice, 'p', { publicKeyPem: k, ttlS: 7 * 86_400 + 1 }, 'INVALID_CERTIFICATE_REQUEST'],
      [alice, 'p', { publicKeyPem: k, ttlS: 0 }, 'INVALID_CERTIFICATE_REQUEST'],
    ]
    for (const [who, project, ask, code] of cases)
      expect(await outcome(projects.issueCertificate(who, project, ask)), JSON.stringify(ask)).toBe(code)
    expect(store().certificates('p')).toEqual([])
    // The command itself, proposed around the service, is judged again inside apply.
    const propose = async (user: string, op: object): Promise<string> => {
      const r = (await group.propose(
        encodeCommand({ issueProjectCertificate: op, user, authVia: 'simple', nowMs }),
      )) as MetaResult
      return r.ok ? 'ok' : r.code
    }
    const op = { project: 'p', user: 'bob', serial: 'abc', notBeforeMs: nowMs, notAfterMs: nowMs + 60_000 }
    expect(await propose('alice', op)).toBe('PROJECT_ACCESS_DENIED')
    expect(await propose('carol', { ...op, user: 'carol' })).toBe('PROJECT_NOT_FOUND')
    expect(await propose('bob', { ...op, serial: '0abc' })).toBe('INVALID_CERTIFICATE_REQUEST')
    expect(await propose('bob', { ...op, notAfterMs: nowMs + 7 * 86_400_000 + 1 })).toBe(
      'INVALID_CERTIFICATE_REQUEST',
    )
    expect(await propose('bob', { ...op, notBeforeMs: nowMs - 2 * 3_600_000 })).toBe(
      'INVALID_CERTIFICATE_REQUEST',
    )
    expect(store().certificates('p')).toEqual([])
    expect(await propose('bob', op)).toBe('ok')
    expect(await propose('bob', op)).toBe('INVALID_CERTIFICATE_REQUEST') // the serial is taken
    expect(
      store()
        .certificates('p')
        .map((c) => c.serial),
    ).toEqual(['abc'])
    // Deleting the project drops its certificates.
    await projects.delete(alice, 'p', 'p')
    expect(store().certificate('abc')).toBeUndefined()
  })
})
