import { describe, expect, it } from 'vitest'
import { createServer } from 'node:https'
import { request } from 'node:https'
import type { AddressInfo } from 'node:net'
import {
  createClusterCa,
  createNodeKey,
  issueNodeCertificate,
  verifyNodeCertificate,
} from '../../src/node/ca/index.js'

describe('cluster CA', () => {
  it('issues a node certificate that verifies against the CA and names node and zone', async () => {
    const ca = await createClusterCa('cluster-1')
    const key = await createNodeKey()
    const certPem = await issueNodeCertificate(ca, {
      nodeId: '12D3KooWabc',
      zone: 'z2',
      publicKeyPem: key.publicKeyPem,
      hosts: ['127.0.0.1', 'node-a.example'],
    })
    const info = await verifyNodeCertificate(ca.certPem, certPem, { expectedNodeId: '12D3KooWabc' })
    expect(info).toMatchObject({ nodeId: '12D3KooWabc', zone: 'z2', clusterId: 'cluster-1' })
  })

  it('rejects a certificate from another CA, for another node, or expired', async () => {
    const ca = await createClusterCa('cluster-1')
    const other = await createClusterCa('cluster-2')
    const key = await createNodeKey()
    const req = { nodeId: 'n1', zone: 'z1', publicKeyPem: key.publicKeyPem, hosts: ['127.0.0.1'] }
    const foreign = await issueNodeCertificate(other, req)
    await expect(verifyNodeCertificate(ca.certPem, foreign)).rejects.toMatchObject({
      code: 'CERTIFICATE_INVALID',
    })
    const mine = await issueNodeCertificate(ca, { ...req, validityDays: 1 })
    await expect(verifyNodeCertificate(ca.certPem, mine, { expectedNodeId: 'n2' })).rejects.toMatchObject({
      code: 'CERTIFICATE_INVALID',
    })
    const later = new Date(Date.now() + 3 * 86_400_000)
    await expect(verifyNodeCertificate(ca.certPem, mine, { now: later })).rejects.toMatchObject({
      code: 'CERTIFICATE_INVALID',
    })
    await expect(verifyNodeCertificate(ca.certPem, 'not a cert')).rejects.toMatchObject({
      code: 'CERTIFICATE_INVALID',
    })
  })

  it('serves TLS that a client trusting only the cluster CA accepts', async () => {
    const ca = await createClusterCa('cluster-tls')
    const key = await createNodeKey()
    const cert = await issueNodeCertificate(ca, {
      nodeId: 'n1',
      zone: 'z1',
      publicKeyPem: key.publicKeyPem,
      hosts: ['127.0.0.1'],
    })
    const server = createServer({ key: key.keyPem, cert }, (_req, res) => res.end('ok'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const port = (server.address() as AddressInfo).port
      const body = await new Promise<string>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/', ca: ca.certPem }, (res) => {
          let data = ''
          res.on('data', (c) => (data += c))
          res.on('end', () => resolve(data))
        })
        req.on('error', reject)
        req.end()
      })
      expect(body).toBe('ok')
      const refused = new Promise<string>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/' }, () => resolve('accepted'))
        req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
        req.end()
      })
      expect(await refused).not.toBe('accepted')
    } finally {
      server.close()
    }
  })
})
