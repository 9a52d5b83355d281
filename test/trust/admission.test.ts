/**
 * Issue 11 item 7 against real processes: node admission and identity beyond the swarm key. Each test
 * attacks what the code before admission let through.
 *  - A certificate request naming a host that does not lead to the requester (another node's address
 *    and name) is refused; the same requester gets a certificate naming only its own address.
 *  - The CA's private key is in no Raft log entry, no snapshot and no file of any node (recovered from a
 *    metadata node's wrapped copy with that node's wrapping key, then searched for in every form).
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import { JOIN_PROTOCOL } from '../../src/node/admission/index.js'
import { createNodeKey } from '../../src/node/ca/index.js'
import { createP2PHost, P2P_TIMINGS_TEST, request, type P2PHost } from '../../src/node/p2p/index.js'
import { hopsd as clusterProto } from '../../src/proto/cluster.js'
import { waitFor, type NodeHandle } from '../helpers/index.js'
import { CLUSTER_TEST_TIMEOUT_MS, contentFor, putFile, useCluster } from '../cluster/harness.js'
import { filesUnder, findKey, keyNeedles, raftContents, recoverCaKey } from './ca-key.js'

const cpb = clusterProto.cluster

describe.sequential('node admission on a real cluster', { timeout: CLUSTER_TEST_TIMEOUT_MS }, () => {
  const c = useCluster('admission')
  let metas: NodeHandle[] = []
  const plain: P2PHost[] = []
  afterAll(async () => {
    await Promise.all(plain.map((h) => h.stop()))
  })

  it('a certificate request naming a host that does not lead to the requester is refused', async () => {
    metas = await c.startMany([{ zone: 'z1' }, { zone: 'z2' }, { zone: 'z3' }], { bootstrapExpect: 3 })
    await c.waitForAgreement(metas, (d) => d.voters.length === 3)
    // A host with the swarm key listening on 127.0.0.2 only: 127.0.0.1 and 'localhost' are where the
    // cluster's nodes listen, not it.
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
    const ask = async (hosts: string[]) =>
      cpb.CertificateReply.decode(
        await request(
          host,
          metas[0]!.id,
          JOIN_PROTOCOL,
          cpb.CertificateRequest.encode({
            zone: 'z9',
            publicKeyPem: key.publicKeyPem,
            hosts,
            roles: ['datanode'],
            p2pPort: host.listenAddress().port,
          }).finish(),
          { timeoutMs: 15_000 },
        ),
      )
    // (The CA exists a moment after the group forms: UNAVAILABLE until then.)
    const refused = await waitFor(() => ask(['127.0.0.2', 'localhost', '127.0.0.1']).catch(() => undefined), {
      timeoutMs: 30_000,
      what: 'an answer from the admission desk',
    })
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

  it('the CA private key is in no Raft log entry, no snapshot and no file of any node', async () => {
    // Some state first: files, so that the log holds more than the bootstrap.
    for (let i = 0; i < 5; i++) await putFile(metas[i % 3]!, `/ca-scan/${i}`, contentFor(`/ca-scan/${i}`))
    const nodes = c.started.filter((n) => metas.includes(n.handle))
    const logs = nodes.map((n) => n.handle.logs())
    await Promise.all(nodes.map((n) => n.handle.stop()))
    const raft = await Promise.all(nodes.map((n) => raftContents(n.dataDir)))
    const keyPem = recoverCaKey(raft[0]!, nodes[0]!.handle.id, nodes[0]!.dataDir)
    const needles = keyNeedles(keyPem)
    // The search finds the key where it is (so an empty result below means something).
    expect(findKey(needles, [['a planted copy', Buffer.from(`x${keyPem}y`)]])).not.toEqual([])
    expect(
      findKey(needles, [['a planted DER', Buffer.concat([Buffer.from('x'), needles[0]!.bytes])]]),
    ).not.toEqual([])

    const haystacks: [string, Uint8Array][] = []
    for (const [i, n] of nodes.entries()) {
      for (const f of filesUnder(n.dataDir)) haystacks.push(f)
      raft[i]!.entries.forEach((e, j) => haystacks.push([`${n.dataDir} raft entry ${j}`, e]))
      raft[i]!.snapshot.forEach((s, j) => haystacks.push([`${n.dataDir} raft snapshot ${j}`, s]))
      haystacks.push([`${n.dataDir} logs`, Buffer.from(logs[i]!.stdout + logs[i]!.stderr)])
    }
    expect(raft.every((r) => r.entries.length + r.snapshot.length > 0)).toBe(true)
    expect(findKey(needles, haystacks)).toEqual([])
    // Every metadata node holds a copy only it can open: each one unwraps its own.
    for (const [i, n] of nodes.entries()) expect(recoverCaKey(raft[i]!, n.handle.id, n.dataDir)).toBe(keyPem)
  })
})
