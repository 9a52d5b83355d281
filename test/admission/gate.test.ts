// The peer gate with real libp2p hosts on loopback, all holding the same swarm key: certified peers
// talk (requests, gossip) while a peer without a certificate — or with another CA's, or another
// node's — gets nothing but the admission protocols and is let go after the grace period; a CRL
// offered to one node reaches the others, and the revoked node is disconnected and refused.
import { describe, expect, it } from 'vitest'
import type { Message } from '@libp2p/gossipsub'
import { createPeerTrust, JOIN_PROTOCOL, type PeerTrust } from '../../src/node/admission/index.js'
import {
  certificateSerial,
  createClusterCa,
  createNodeKey,
  issueCrl,
  issueNodeCertificate,
  type ClusterCaMaterial,
} from '../../src/node/ca/index.js'
import { handleRequests, request, type P2PHost } from '../../src/node/p2p/index.js'
import { hostPort, makeHost, stopHostsAfterEach, waitFor } from '../p2p/util.js'

stopHostsAfterEach()

const ECHO = '/test/echo/1.0.0'
const TOPIC = 'gate-test'
const TIMINGS = { graceMs: 3_000, sweepMs: 100, verifyWaitMs: 1_500, exchangeTimeoutMs: 2_000 }

interface Node {
  host: P2PHost
  trust: PeerTrust
  heard: string[]
}

async function certFor(ca: ClusterCaMaterial, host: P2PHost): Promise<string> {
  const key = await createNodeKey()
  return issueNodeCertificate(ca, { nodeId: host.id, zone: 'z1', publicKeyPem: key.publicKeyPem, hosts: [] })
}

/** A host with its gate, an echo protocol, and the gossip it hears on TOPIC. */
async function node(join: string[] = []): Promise<Node> {
  const host = await makeHost({ join })
  const trust = createPeerTrust({ host, logger: quiet, timings: TIMINGS })
  await trust.start()
  await handleRequests(host, ECHO, async (_from, body) => body)
  await handleRequests(host, JOIN_PROTOCOL, async () => new TextEncoder().encode('admission desk'))
  const heard: string[] = []
  host.pubsub.subscribe(TOPIC)
  host.pubsub.addEventListener('message', (evt: CustomEvent<Message>) => {
    if (evt.detail.topic === TOPIC) heard.push(new TextDecoder().decode(evt.detail.data))
  })
  return { host, trust, heard }
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} }

async function echo(from: Node, to: Node): Promise<string> {
  try {
    const reply = await request(from.host, to.host.id, ECHO, new TextEncoder().encode('ping'), {
      timeoutMs: 4_000,
    })
    return new TextDecoder().decode(reply)
  } catch (err) {
    const e = err as { code?: string; remoteCode?: string }
    return e.code === 'REMOTE_ERROR' ? `remote:${e.remoteCode}` : (e.code ?? String(err))
  }
}

async function publish(from: Node, text: string): Promise<void> {
  await from.host.pubsub.publish(TOPIC, new TextEncoder().encode(text)).catch(() => undefined)
}

describe('the peer gate', () => {
  it('lets certified peers talk and gossip; a swarm-key holder without a certificate gets only admission, then is let go', async () => {
    const ca = await createClusterCa('c1')
    const a = await node()
    const b = await node([hostPort(a.host)])
    const x = await node([hostPort(a.host), hostPort(b.host)]) // the swarm key, nothing else
    const dropped = new Set<string>()
    for (const n of [a, b])
      n.host.on('peer:disconnect', (peer) => peer === x.host.id && dropped.add(n.host.id))
    for (const n of [a, b]) {
      n.trust.setCertificate(await certFor(ca, n.host))
      n.trust.setCa(ca.certPem)
    }
    await waitFor(
      () => a.trust.status(b.host.id) === 'verified' && b.trust.status(a.host.id) === 'verified',
      {
        timeoutMs: 10_000,
        what: 'A and B verified each other',
      },
    )
    expect(await echo(a, b)).toBe('ping')
    expect(await echo(b, a)).toBe('ping')
    await waitFor(
      async () => {
        await publish(a, 'from-a')
        return b.heard.includes('from-a')
      },
      { timeoutMs: 10_000, intervalMs: 200, what: 'B hears A’s gossip' },
    )

    // X: refused both ways on every protocol but admission; it hears no gossip and nobody hears it.
    await waitFor(() => a.trust.status(x.host.id) === 'none', { timeoutMs: 10_000, what: 'A judged X' })
    expect(await echo(x, a)).not.toBe('ping')
    expect(await echo(a, x)).toBe('PEER_NOT_CERTIFIED')
    // (On a loaded machine the grace period may end meanwhile: X's join loop brings it back to ask.)
    const desk = await waitFor(
      () =>
        request(x.host, a.host.id, JOIN_PROTOCOL, new Uint8Array(), { timeoutMs: 4_000 }).catch(
          () => undefined,
        ),
      { timeoutMs: 20_000, what: 'X reaching the admission desk' },
    )
    expect(new TextDecoder().decode(desk)).toBe('admission desk')
    await publish(x, 'from-x')
    await publish(a, 'again-from-a')
    await waitFor(() => b.heard.includes('again-from-a'), { timeoutMs: 10_000, what: 'B hears A again' })
    expect(x.heard).toEqual([])
    expect([...a.heard, ...b.heard]).not.toContain('from-x')

    // After the grace period A and B let X go (its join loop brings it back, to ask for admission).
    await waitFor(() => dropped.has(a.host.id) && dropped.has(b.host.id), {
      timeoutMs: 20_000,
      what: 'X disconnected by A and by B',
    })
    expect(a.host.isConnected(b.host.id)).toBe(true)
  })

  it('refuses a certificate of another CA, and one that names another node', async () => {
    const ca = await createClusterCa('c1')
    const evil = await createClusterCa('c1')
    const a = await node()
    const b = await node([hostPort(a.host)])
    const c = await node([hostPort(a.host)])
    a.trust.setCertificate(await certFor(ca, a.host))
    a.trust.setCa(ca.certPem)
    b.trust.setCertificate(await certFor(evil, b.host)) // same cluster name, another key
    b.trust.setCa(evil.certPem)
    c.trust.setCertificate(await certFor(ca, a.host)) // A's own certificate (public), shown by C
    c.trust.setCa(ca.certPem)
    await waitFor(() => a.trust.status(b.host.id) === 'invalid' && a.trust.status(c.host.id) === 'invalid', {
      timeoutMs: 10_000,
      what: 'A refuses B and C',
    })
    const reasons = new Map(a.trust.report().peers.map((p) => [p.id, p.reason]))
    expect(reasons.get(b.host.id)).toMatch(/not signed by the cluster CA/)
    expect(reasons.get(c.host.id)).toMatch(/names node/)
    expect(await echo(b, a)).not.toBe('ping')
    expect(await echo(c, a)).not.toBe('ping')
  })

  it('a CRL offered to one node reaches the others; the revoked node is disconnected and refused on reconnect', async () => {
    const ca = await createClusterCa('c1')
    const a = await node()
    const b = await node([hostPort(a.host)])
    const c = await node([hostPort(a.host), hostPort(b.host)])
    const certs = new Map<Node, string>()
    for (const n of [a, b, c]) {
      certs.set(n, await certFor(ca, n.host))
      n.trust.setCertificate(certs.get(n))
      n.trust.setCa(ca.certPem)
    }
    await waitFor(
      () =>
        [a, b, c].every((n) => [a, b, c].every((m) => m === n || n.trust.status(m.host.id) === 'verified')),
      { timeoutMs: 15_000, what: 'everyone verified' },
    )
    const crl = await issueCrl(ca, {
      number: 1,
      revoked: [{ serial: certificateSerial(certs.get(c)!), revokedMs: Date.now() }],
    })
    expect(await a.trust.offerCrl(crl)).toBe(true)
    expect(await a.trust.offerCrl(crl)).toBe(false) // the same one again: nothing new
    // B never saw the CRL offered: A passed it on, and B cut C off too.
    await waitFor(() => b.trust.crl()?.number === 1, { timeoutMs: 10_000, what: 'B has CRL 1' })
    await waitFor(() => !a.host.isConnected(c.host.id) && !b.host.isConnected(c.host.id), {
      timeoutMs: 10_000,
      what: 'C disconnected by A and B',
    })
    expect(a.trust.status(c.host.id)).toBe('revoked')
    expect(b.trust.status(c.host.id)).toBe('revoked')
    // C's join loop dials A and B again and again (and so do we): the connection gater refuses it
    // every time, right after Noise names it.
    let sightings = 0
    for (let i = 0; i < 10; i++) {
      await c.host.dial(hostPort(a.host)).catch(() => undefined)
      if (a.host.isConnected(c.host.id) || b.host.isConnected(c.host.id)) sightings++
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(sightings).toBe(0)
    // A and B still talk.
    expect(await echo(a, b)).toBe('ping')
    // An older CRL never replaces a newer one; a CRL of another CA is ignored.
    const evil = await createClusterCa('c1')
    expect(await b.trust.offerCrl(await issueCrl(evil, { number: 9, revoked: [] }))).toBe(false)
    expect(b.trust.crl()?.number).toBe(1)
  })

  it('a metadata node lets a peer its state admits pass before its certificate; a stranger and a revoked id get nothing', async () => {
    const ca = await createClusterCa('c1')
    const a = await node() // the certified metadata node (the first leader of a bootstrap)
    const b = await node([hostPort(a.host)]) // a voter admitted by the bootstrap, no certificate yet
    const x = await node([hostPort(a.host)]) // a swarm-key holder the state does not admit
    a.trust.setCertificate(await certFor(ca, a.host))
    a.trust.setCa(ca.certPem)
    await waitFor(() => a.trust.status(b.host.id) === 'none' && a.trust.status(x.host.id) === 'none', {
      timeoutMs: 10_000,
      what: 'A judged B and X: no certificate',
    })
    expect(await echo(a, b)).toBe('PEER_NOT_CERTIFIED')

    a.trust.setAdmittedNodes([b.host.id])
    expect(a.trust.status(b.host.id)).toBe('admitted')
    expect(await echo(a, b)).toBe('ping') // A's Raft reaches B: B's certificate can be committed
    expect(await echo(b, a)).toBe('ping')
    expect(await echo(a, x)).toBe('PEER_NOT_CERTIFIED')
    expect(await echo(x, a)).not.toBe('ping')

    // B's certificate arrives: verified as any peer.
    b.trust.setCertificate(await certFor(ca, b.host))
    b.trust.setCa(ca.certPem)
    await waitFor(() => a.trust.status(b.host.id) === 'verified', { timeoutMs: 10_000, what: 'A verified B' })

    // Revoked in the state: refused although the admitted list still named it a moment ago.
    a.trust.setRevokedNodes([b.host.id])
    a.trust.setAdmittedNodes([b.host.id])
    await waitFor(() => !a.host.isConnected(b.host.id), { timeoutMs: 10_000, what: 'B disconnected' })
    expect(a.trust.status(b.host.id)).toBe('revoked')
    expect(await echo(b, a)).not.toBe('ping')
  })
})
