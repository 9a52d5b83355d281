// The CA key wrapped to one metadata node: only that node's wrapping key unwraps it, an altered copy or
// another cluster's is refused, and the copy holds neither the key's DER nor its PEM text. CRLs: the CA
// signs them, a revoked certificate is refused by verifyNodeCertificate and by a real HTTPS server
// whose secure context holds the CRL.
import { createServer, request } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { describe, expect, it } from 'vitest'
import {
  certificateSerial,
  createClusterCa,
  createNodeKey,
  createWrappingKey,
  issueCrl,
  issueNodeCertificate,
  unwrapCaKey,
  verifyCrl,
  verifyNodeCertificate,
  wrapCaKey,
  wrappingKeyFromPem,
} from '../../src/node/ca/index.js'

describe('CA key wrapping', () => {
  it('only the recipient unwraps; another key, another cluster or one flipped bit is refused', async () => {
    const ca = await createClusterCa('c1')
    const mine = createWrappingKey()
    const other = createWrappingKey()
    const copy = wrapCaKey(ca.keyPem, { nodeId: 'm1', clusterId: 'c1', recipientKey: mine.publicKey })
    expect(unwrapCaKey(copy, wrappingKeyFromPem(mine.privateKeyPem), 'c1')).toBe(ca.keyPem)
    expect(() => unwrapCaKey(copy, other, 'c1')).toThrow(/another key/)
    expect(() => unwrapCaKey({ ...copy, recipientKey: other.publicKey }, other, 'c1')).toThrow(
      /does not decrypt/,
    )
    expect(() => unwrapCaKey(copy, mine, 'c2')).toThrow(/does not decrypt/)
    expect(() => unwrapCaKey({ ...copy, nodeId: 'm2' }, mine, 'c1')).toThrow(/does not decrypt/)
    const flipped = Uint8Array.from(copy.ciphertext)
    flipped[5]! ^= 1
    expect(() => unwrapCaKey({ ...copy, ciphertext: flipped }, mine, 'c1')).toThrow(/does not decrypt/)
    // Two copies for the same node differ (fresh ephemeral key and IV each time).
    const again = wrapCaKey(ca.keyPem, { nodeId: 'm1', clusterId: 'c1', recipientKey: mine.publicKey })
    expect(Buffer.from(again.ciphertext).equals(Buffer.from(copy.ciphertext))).toBe(false)
    const blob = Buffer.concat([copy.ciphertext, copy.ephemeralKey, copy.iv, copy.recipientKey])
    const der = Buffer.from(ca.keyPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64')
    expect(blob.includes(der.subarray(der.length - 32))).toBe(false)
    expect(blob.toString('latin1')).not.toContain('PRIVATE KEY')
  })
})

describe('CRLs', () => {
  it('revoke a node certificate for verifyNodeCertificate and for a real HTTPS server', async () => {
    const ca = await createClusterCa('c1')
    const serverKey = await createNodeKey()
    const clientKey = await createNodeKey()
    const issue = (nodeId: string, publicKeyPem: string) =>
      issueNodeCertificate(ca, { nodeId, zone: 'z1', publicKeyPem, hosts: ['127.0.0.1'] })
    const serverCert = await issue('srv', serverKey.publicKeyPem)
    const clientCert = await issue('cli', clientKey.publicKeyPem)
    const crlPem = await issueCrl(ca, {
      number: 7,
      revoked: [{ serial: certificateSerial(clientCert), revokedMs: Date.now() }],
    })
    const crl = await verifyCrl(ca.certPem, crlPem)
    expect(crl.number).toBe(7)
    expect([...crl.revoked]).toEqual([certificateSerial(clientCert)])
    await expect(
      verifyNodeCertificate(ca.certPem, clientCert, { revoked: crl.revoked }),
    ).rejects.toMatchObject({
      code: 'CERTIFICATE_REVOKED',
    })
    await expect(
      verifyNodeCertificate(ca.certPem, serverCert, { revoked: crl.revoked }),
    ).resolves.toMatchObject({
      nodeId: 'srv',
    })
    await expect(verifyCrl((await createClusterCa('c1')).certPem, crlPem)).rejects.toMatchObject({
      code: 'CERTIFICATE_INVALID',
    })

    const verdict = async (
      crlOption: string | undefined,
    ): Promise<{ authorized: boolean; error: unknown }> => {
      const server = createServer(
        {
          key: serverKey.keyPem,
          cert: serverCert,
          ca: ca.certPem,
          requestCert: true,
          rejectUnauthorized: false,
          ...(crlOption === undefined ? {} : { crl: crlOption }),
        },
        (req, res) => {
          const socket = req.socket as TLSSocket
          res.end(JSON.stringify({ authorized: socket.authorized, error: socket.authorizationError ?? null }))
        },
      )
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      try {
        const port = (server.address() as AddressInfo).port
        return await new Promise((resolve, reject) => {
          request(
            { host: '127.0.0.1', port, ca: ca.certPem, key: clientKey.keyPem, cert: clientCert },
            (res) => {
              let body = ''
              res.on('data', (d: Buffer) => (body += d.toString()))
              res.on('end', () => resolve(JSON.parse(body)))
            },
          )
            .on('error', reject)
            .end()
        })
      } finally {
        server.close()
      }
    }
    expect(await verdict(undefined)).toEqual({ authorized: true, error: null })
    expect(await verdict(await issueCrl(ca, { number: 1, revoked: [] }))).toEqual({
      authorized: true,
      error: null,
    })
    expect(await verdict(crlPem)).toEqual({ authorized: false, error: 'CERT_REVOKED' })
  })
})
