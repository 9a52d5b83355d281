// TLS client certificates as credentials, over real HTTPS sockets: the API server asks for a client
// certificate and the auth hook accepts one the cluster CA issued for a user — and refuses one from
// another CA, an expired one, or one whose user was removed; a node certificate names no user.
import { request } from 'node:https'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createApiServer,
  createMetricsRegistry,
  homeDirectories,
  usersRoutes,
  type ApiServer,
} from '../../src/api/index.js'
import { webhdfsRoutes } from '../../src/api/routes/webhdfs.js'
import {
  createClusterCa,
  createNodeKey,
  issueNodeCertificate,
  issueUserCertificate,
  type ClusterCaMaterial,
} from '../../src/node/ca/index.js'
import { silentLogger } from '../../src/node/index.js'
import { makeAuth, type AuthEnv } from './harness.js'

interface Client {
  key?: string
  cert?: string
  bearer?: string
}

function get(
  port: number,
  ca: string,
  path: string,
  client: Client = {},
): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        ca,
        key: client.key,
        cert: client.cert,
        headers: client.bearer ? { authorization: `Bearer ${client.bearer}` } : {},
        agent: false,
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (text += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

describe('TLS client certificates', () => {
  let env: AuthEnv
  let ca: ClusterCaMaterial
  let api: ApiServer
  let port = 0
  const userCert = async (c: ClusterCaMaterial, user: string, now?: Date, days?: number): Promise<Client> => {
    const k = await createNodeKey()
    return {
      key: k.keyPem,
      cert: await issueUserCertificate(c, { user, publicKeyPem: k.publicKeyPem, validityDays: days }, now),
    }
  }

  beforeAll(async () => {
    env = await makeAuth({ mode: 'secure' })
    ca = await createClusterCa('c1')
    const serverKey = await createNodeKey()
    const serverCert = await issueNodeCertificate(ca, {
      nodeId: 'server',
      zone: 'z1',
      publicKeyPem: serverKey.publicKeyPem,
      hosts: ['127.0.0.1'],
    })
    api = await createApiServer({
      logger: silentLogger(),
      registry: createMetricsRegistry(),
      openapi: { title: 'hopsd', version: 'test' },
      https: { keyPem: serverKey.keyPem, certPem: serverCert, caPem: ca.certPem },
      auth: { authenticator: env.authn },
      routes: [
        webhdfsRoutes({ fs: env.fs }),
        usersRoutes({
          auth: env.auth,
          createHome: homeDirectories(env.fs),
          issueCertificate: async (user, publicKeyPem, validityDays) => ({
            certificatePem: await issueUserCertificate(ca, { user, publicKeyPem, validityDays }),
            caCertificatePem: ca.certPem,
          }),
        }),
      ],
    })
    port = (await api.listen({ host: '127.0.0.1', port: 0 })).port
    await env.auth.addUser(env.admin, 'alice', ['staff'])
    await homeDirectories(env.fs)(env.admin, 'alice')
  })
  afterAll(() => api?.close())

  it('a certificate the cluster CA issued for a user authenticates as that user', async () => {
    const r = await get(port, ca.certPem, '/webhdfs/v1/?op=GETHOMEDIRECTORY', await userCert(ca, 'alice'))
    expect(r).toEqual({ status: 200, body: { Path: '/user/alice' } })
  })

  it('one from another CA, an expired one, or a removed user: 401 with the reason', async () => {
    const other = await createClusterCa('other')
    const forged = await get(
      port,
      ca.certPem,
      '/webhdfs/v1/?op=GETHOMEDIRECTORY',
      await userCert(other, 'alice'),
    )
    expect(forged.status).toBe(401)
    expect(forged.body.RemoteException.message).toMatch(/client certificate refused/)
    const old = await userCert(ca, 'alice', new Date(Date.now() - 3 * 86_400_000), 1)
    const expired = await get(port, ca.certPem, '/webhdfs/v1/?op=GETHOMEDIRECTORY', old)
    expect(expired.status).toBe(401)
    expect(expired.body.RemoteException.message).toMatch(/expired/)
    await env.auth.addUser(env.admin, 'temp')
    const temp = await userCert(ca, 'temp')
    expect((await get(port, ca.certPem, '/webhdfs/v1/?op=GETHOMEDIRECTORY', temp)).status).toBe(200)
    await env.auth.removeUser(env.admin, 'temp')
    const gone = await get(port, ca.certPem, '/webhdfs/v1/?op=GETHOMEDIRECTORY', temp)
    expect(gone.status).toBe(401)
    expect(gone.body.RemoteException.message).toMatch(/removed/)
  })

  it("a node certificate names no user: the request's other credential decides", async () => {
    const k = await createNodeKey()
    const node = {
      key: k.keyPem,
      cert: await issueNodeCertificate(ca, {
        nodeId: 'n2',
        zone: 'z2',
        publicKeyPem: k.publicKeyPem,
        hosts: [],
      }),
    }
    expect((await get(port, ca.certPem, '/webhdfs/v1/?op=GETHOMEDIRECTORY', node)).status).toBe(401)
    const withKey = await get(port, ca.certPem, '/webhdfs/v1/?op=GETHOMEDIRECTORY', {
      ...node,
      bearer: env.adminKey,
    })
    expect(withKey.body).toEqual({ Path: '/user/admin' })
  })

  it('POST /api/v1/users/:name/certificate: the user itself or an admin, never another user', async () => {
    const { key: bobKey } = await env.auth.createKey(env.admin, { user: 'alice' })
    const k = await createNodeKey()
    const post = (bearer: string, user: string) =>
      new Promise<{ status: number; body: any }>((resolve, reject) => {
        const body = JSON.stringify({ publicKeyPem: k.publicKeyPem })
        const req = request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: `/api/v1/users/${user}/certificate`,
            ca: ca.certPem,
            agent: false,
            headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
          },
          (res) => {
            let text = ''
            res.on('data', (d) => (text += d))
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }))
          },
        )
        req.on('error', reject)
        req.end(body)
      })
    const own = await post(bobKey, 'alice')
    expect(own.status).toBe(201)
    expect(
      (
        await get(port, ca.certPem, '/webhdfs/v1/?op=GETHOMEDIRECTORY', {
          key: k.keyPem,
          cert: own.body.certificatePem,
        })
      ).body,
    ).toEqual({ Path: '/user/alice' })
    expect((await post(bobKey, 'admin')).status).toBe(404)
  })
})
