// The gossip membership view with real libp2p hosts on loopback: 5 nodes converge, a crashed node
// becomes suspect then dead everywhere, a graceful leave is seen as left, updates spread, lies refused.
import { afterEach, describe, expect, it } from 'vitest'
import {
  createMembership,
  encodeNodeInfo,
  MEMBERSHIP_TEST,
  MEMBERSHIP_TOPIC,
  type Membership,
  type MembershipChange,
} from '../../src/node/membership/index.js'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { P2PHost } from '../../src/node/p2p/index.js'
import { freePorts, makeHost, stopHostsAfterEach, waitFor } from '../p2p/util.js'

stopHostsAfterEach()
const memberships: Membership[] = []
afterEach(async () => {
  await Promise.all(memberships.splice(0).map((m) => m.stop({ leave: false })))
})

const cfg = MEMBERSHIP_TEST

interface Node {
  host: P2PHost
  m: Membership
  changes: MembershipChange[]
}

async function startNode(listen: string, join: string[], zone: string): Promise<Node> {
  const host = await makeHost({ listen, join })
  const m = createMembership({
    host,
    self: {
      zone,
      roles: ['metadata', 'datanode'],
      httpAddr: `127.0.0.1:${9000 + memberships.length}`,
      version: '0.1.0',
    },
    config: cfg,
  })
  const changes: MembershipChange[] = []
  m.on('change', (c) => changes.push(c))
  await m.start()
  memberships.push(m)
  return { host, m, changes }
}

/** Every node's view lists exactly `ids`, all with `liveness`. */
function converged(nodes: Node[], ids: string[], liveness = 'alive'): boolean {
  const want = [...ids].sort().join(',')
  return nodes.every((n) => {
    const v = n.m.view()
    return (
      v
        .map((x) => x.id)
        .sort()
        .join(',') === want && v.every((x) => x.liveness === liveness)
    )
  })
}

async function cluster(size: number): Promise<{ nodes: Node[]; convergedMs: number; sinceLastMs: number }> {
  const addrs = await freePorts(size)
  const t0 = Date.now()
  // Every host gets the same --join list, its own address included; they start one after another.
  const nodes: Node[] = []
  for (let i = 0; i < size; i++) nodes.push(await startNode(addrs[i]!, addrs, `z${(i % 3) + 1}`))
  const tLast = Date.now()
  const ids = nodes.map((n) => n.host.id)
  await waitFor(() => converged(nodes, ids), {
    timeoutMs: 5_000,
    intervalMs: 20,
    what: `${size} views converged`,
  })
  return { nodes, convergedMs: Date.now() - t0, sinceLastMs: Date.now() - tLast }
}

describe('membership over gossip', () => {
  it('5 nodes converge (every view lists 5 alive) within 5 s, with zones, roles and addresses', async () => {
    const { nodes, convergedMs, sinceLastMs } = await cluster(5)
    console.info(
      `membership: 5 nodes converged ${sinceLastMs} ms after the last started (${convergedMs} ms after the first)`,
    )
    expect(sinceLastMs).toBeLessThan(5_000)
    const a = nodes[0]!
    const other = a.m.get(nodes[4]!.host.id)!
    expect(other).toMatchObject({
      zone: 'z2',
      roles: ['metadata', 'datanode'],
      version: '0.1.0',
      state: 'active',
      self: false,
    })
    expect(other.p2pAddrs.some((x) => x.endsWith(`/p2p/${nodes[4]!.host.id}`))).toBe(true)
    expect(a.m.view()[0]).toMatchObject({ id: a.host.id, self: true, liveness: 'alive' })
  })

  it('a node starting into a converged 4-node cluster is in every view (and sees all)', async () => {
    const addrs = await freePorts(5)
    const nodes: Node[] = []
    for (let i = 0; i < 4; i++) nodes.push(await startNode(addrs[i]!, addrs, 'z1'))
    await waitFor(
      () =>
        converged(
          nodes,
          nodes.map((n) => n.host.id),
        ),
      { timeoutMs: 15_000, what: '4 converged' },
    )
    const t0 = Date.now()
    nodes.push(await startNode(addrs[4]!, addrs, 'z2'))
    await waitFor(
      () =>
        converged(
          nodes,
          nodes.map((n) => n.host.id),
        ),
      {
        // A deadline for a loaded host (the suite runs files in parallel on 2 cores); the time it
        // took is printed below — convergence speed is measured, not asserted.
        timeoutMs: 15_000,
        intervalMs: 10,
        what: 'the 5th node in every view',
      },
    )
    console.info(`membership: a 5th node was in all 5 views ${Date.now() - t0} ms after it started`)
  })

  it('a crashed node (no LEFT) becomes suspect, then dead, in every other view within the timeouts', async () => {
    const { nodes } = await cluster(5)
    const victim = nodes[2]!
    const others = nodes.filter((n) => n !== victim)
    const crashedAt = Date.now()
    await victim.m.stop({ leave: false }) // crash: go quiet without announcing anything
    await victim.host.stop()
    const id = victim.host.id
    await waitFor(() => others.every((n) => ['suspect', 'dead'].includes(n.m.get(id)?.liveness ?? '')), {
      timeoutMs: cfg.suspectAfterMs + 2_000,
      intervalMs: 10,
      what: 'victim suspect everywhere',
    })
    const suspectMs = Date.now() - crashedAt
    await waitFor(() => others.every((n) => n.m.get(id)?.liveness === 'dead'), {
      timeoutMs: cfg.deadAfterMs + 2_000,
      intervalMs: 10,
      what: 'victim dead everywhere',
    })
    const deadMs = Date.now() - crashedAt
    console.info(
      `membership: crash seen as suspect after ${suspectMs} ms, dead after ${deadMs} ms (thresholds ${cfg.suspectAfterMs}/${cfg.deadAfterMs} ms)`,
    )
    // Each observer saw alive -> suspect -> dead, in that order, never 'left'.
    for (const n of others) {
      const seen = n.changes.filter((c) => c.id === id && c.kind === 'liveness').map((c) => c.node.liveness)
      expect(seen).toEqual(['suspect', 'dead'])
    }
    // The survivors still see each other alive.
    for (const n of others) {
      for (const o of others) expect(n.m.get(o.host.id)?.liveness).toBe('alive')
    }
  })

  it('gossip that goes quiet one way while the connection works: direct probes keep the peer alive', async () => {
    const { nodes } = await cluster(3)
    const [a, b] = nodes as [Node, Node, Node]
    const bId = b.host.id
    // a's gossipsub stops delivering b's NodeInfos (from b or forwarded by c); the connections stay up,
    // as they did when a leader's view lost a learner that answered every Raft heartbeat.
    a.host.pubsub.topicValidators.set(MEMBERSHIP_TOPIC, (_peer, msg) =>
      msg.type === 'signed' && msg.from.toString() === bId
        ? TopicValidatorResult.Ignore
        : TopicValidatorResult.Accept,
    )
    const from = a.changes.length
    // Three answered probes span more than deadAfterMs of gossip silence about b.
    await waitFor(() => a.m.stats().probesAnswered >= 3, {
      timeoutMs: cfg.deadAfterMs * 5,
      intervalMs: 20,
      what: 'three probes of b answered',
    })
    // b was probed: it started its own gossip with a over (its outbound side is what breaks for real).
    expect(b.m.stats().gossipRestarts).toBeGreaterThanOrEqual(1)
    const seen = a.changes.slice(from).filter((c) => c.id === bId && c.kind === 'liveness')
    expect(seen.map((c) => c.node.liveness)).not.toContain('dead')
    expect(a.m.get(bId)?.liveness).not.toBe('dead')
    // Without a connection there is nothing to probe: b's crash is still seen as dead.
    await b.m.stop({ leave: false })
    await b.host.stop()
    await waitFor(() => a.m.get(bId)?.liveness === 'dead', {
      timeoutMs: cfg.deadAfterMs + 2_000,
      intervalMs: 10,
      what: 'b dead at a after its crash',
    })
  })

  it('a graceful leave is seen as left (not suspect, not dead)', async () => {
    const { nodes } = await cluster(3)
    const leaver = nodes[1]!
    const others = nodes.filter((n) => n !== leaver)
    await leaver.m.stop() // announces 'left'
    await leaver.host.stop()
    const id = leaver.host.id
    await waitFor(() => others.every((n) => n.m.get(id)?.liveness === 'left'), {
      timeoutMs: 3_000,
      what: 'left everywhere',
    })
    // Still left well past the suspect and dead thresholds.
    const until = Date.now() + cfg.deadAfterMs + 200
    await waitFor(() => Date.now() >= until || others.some((n) => n.m.get(id)?.liveness !== 'left'), {
      timeoutMs: cfg.deadAfterMs + 2_000,
      what: 'time past the dead threshold',
    })
    for (const n of others) {
      expect(n.m.get(id)?.liveness).toBe('left')
      expect(
        n.changes.filter((c) => c.id === id && c.kind === 'liveness').map((c) => c.node.liveness),
      ).toEqual(['left'])
    }
  })

  it('spreads updates at once and refuses a NodeInfo about another node', async () => {
    const { nodes } = await cluster(3)
    const [a, b, c] = nodes as [Node, Node, Node]
    a.m.update({
      state: 'draining',
      capacity: {
        diskBytesTotal: 1e12,
        diskBytesUsed: 4e11,
        diskBytesFree: 5e11,
        blockBytesUsed: 3e11,
        gpus: 2,
        gpusFree: 1,
        cpuCores: 8,
        memoryBytes: 64e9,
      },
    })
    await waitFor(
      () =>
        [b, c].every(
          (n) =>
            n.m.get(a.host.id)?.state === 'draining' &&
            n.m.get(a.host.id)?.capacity.gpus === 2 &&
            n.m.get(a.host.id)?.capacity.blockBytesUsed === 3e11,
        ),
      {
        timeoutMs: 2_000,
        what: 'update seen',
      },
    )
    // b publishes a NodeInfo claiming to be c (signed by b): everyone refuses it.
    const lie = { ...c.m.self(), zone: 'evil', seq: c.m.self().seq + 1_000 }
    const rejectedBefore = a.m.stats().rejected
    await b.host.pubsub.publish(MEMBERSHIP_TOPIC, encodeNodeInfo(lie))
    await waitFor(() => a.m.stats().rejected > rejectedBefore, { timeoutMs: 2_000, what: 'lie rejected' })
    expect(a.m.get(c.host.id)?.zone).not.toBe('evil')
  })
})
