/**
 * One test per rule of the Raft paper (and of the extensions), in the spirit of etcd's
 * raft_paper_test.go. Deterministic: the network is synchronous and the Rng seeded.
 */
import { describe, expect, it } from 'vitest'
import {
  ConfChangeType,
  EntryType,
  MessageType,
  MemoryLog,
  RawNode,
  SeededRng,
  defaultCoreConfig,
  encodeConfChange,
  raftpb,
  validateConfig,
  type Message,
} from '../../src/consensus/index.js'
import { CoreNetwork, enc } from './core-harness.js'

const ids3 = ['a', 'b', 'c']

describe('core: election (§5.2)', () => {
  it('a follower campaigns after its randomized election timeout and wins with a majority', () => {
    const net = new CoreNetwork(ids3)
    net.tick('a', 2 * defaultCoreConfig.electionTicks)
    net.stabilize()
    expect(net.leaders()).toEqual(['a'])
    expect(net.get('b').node.status().lead).toBe('a')
  })

  it('the election timeout is randomized in [electionTicks, 2*electionTicks)', () => {
    const seen = new Set<number>()
    for (let seed = 1; seed <= 50; seed++) {
      const net = new CoreNetwork(['a'], { seed })
      seen.add(net.get('a').node.raft.randomizedElectionTimeout)
    }
    for (const t of seen) expect(t >= 10 && t < 20).toBe(true)
    expect(seen.size).toBeGreaterThan(3)
  })

  it('a node grants at most one vote per term', () => {
    const net = new CoreNetwork(ids3, { preVote: false })
    const c = net.get('c').node
    c.step(vote('a', 'c', 2))
    c.step(vote('b', 'c', 2))
    const resps = net.perform(net.get('c')).filter((m) => m.type === MessageType.MsgVoteResp)
    expect(resps.map((m) => [m.to, m.reject])).toEqual([
      ['a', false],
      ['b', true],
    ])
  })

  it("planted bug 'double-vote' grants the second vote", () => {
    const net = new CoreNetwork(ids3, { preVote: false, knownBugs: new Set(['double-vote']) })
    const c = net.get('c').node
    c.step(vote('a', 'c', 2))
    c.step(vote('b', 'c', 2))
    const resps = net.perform(net.get('c')).filter((m) => m.type === MessageType.MsgVoteResp)
    expect(resps.map((m) => m.reject)).toEqual([false, false])
  })

  it('a vote is refused to a candidate whose log is less up-to-date (§5.4.1)', () => {
    const net = new CoreNetwork(ids3, { checkQuorum: false, preVote: false })
    net.elect('a')
    net.get('a').node.propose(enc('x'))
    net.stabilize()
    const st = net.get('b').node.status()
    net.get('b').node.step(vote('c', 'b', st.term + 1, st.lastIndex - 1, st.term))
    const resp = net.perform(net.get('b')).find((m) => m.type === MessageType.MsgVoteResp)!
    expect(resp.reject).toBe(true)
  })

  it('a candidate that learns of a leader of its term steps down', () => {
    const net = new CoreNetwork(ids3, { preVote: false })
    net.isolate('b')
    net.get('b').node.campaign()
    net.stabilize()
    expect(net.get('b').node.status().role).toBe('candidate')
    net.heal()
    net.elect('a') // higher term than b's
    expect(net.get('b').node.status().role).toBe('follower')
    expect(net.get('b').node.status().lead).toBe('a')
  })
})

describe('core: log replication (§5.3)', () => {
  it('the leader replicates, followers apply the same entries in order', () => {
    const net = new CoreNetwork(ids3)
    net.elect('a')
    for (let i = 0; i < 10; i++) net.get('a').node.propose(enc(`e${i}`))
    net.stabilize()
    for (const id of ids3) expect(net.dataOf(id)).toEqual(Array.from({ length: 10 }, (_, i) => `e${i}`))
  })

  it('proposals made while a write is in flight are batched into one append', () => {
    const net = new CoreNetwork(ids3)
    net.elect('a')
    const a = net.get('a').node
    for (let i = 0; i < 5; i++) a.propose(enc(`e${i}`))
    const rd = a.ready()
    expect(rd.entries.length).toBe(5)
    const apps = rd.earlyMessages.filter((m) => m.type === MessageType.MsgApp && m.to === 'b')
    expect(apps.reduce((n, m) => n + m.entries.length, 0)).toBe(5)
    expect(rd.messages.filter((m) => m.type === MessageType.MsgApp)).toEqual([]) // leader appends go early
  })

  it('a follower rejects an append whose previous entry does not match (log matching)', () => {
    const net = new CoreNetwork(ids3)
    net.elect('a')
    const b = net.get('b')
    const st = b.node.status()
    b.node.step(app('a', 'b', st.term, st.lastIndex + 5, st.term, []))
    const resp = net.perform(b).find((m) => m.type === MessageType.MsgAppResp)!
    expect(resp.reject).toBe(true)
    expect(resp.rejectHint).toBe(st.lastIndex)
  })

  it('fast backtracking: a follower with a long conflicting tail converges in a few round trips', () => {
    const net = new CoreNetwork(ids3, { preVote: false, checkQuorum: false })
    net.elect('a')
    // a, cut off, appends 50 entries nobody else gets (it still believes it leads).
    net.isolate('a')
    for (let i = 0; i < 50; i++) net.get('a').node.propose(enc(`stale${i}`))
    net.stabilize()
    // b and c elect b in a higher term and commit 50 others.
    net.heal()
    net.isolate('a')
    net.elect('b')
    for (let i = 0; i < 50; i++) net.get('b').node.propose(enc(`good${i}`))
    net.stabilize()
    // c takes over with the long log: its first probe to a is at its last index, 50 entries away.
    net.elect('c')
    net.heal()
    net.tick('c', 2)
    const delivered = net.stabilize()
    const rejects = delivered.filter((m) => m.type === MessageType.MsgAppResp && m.from === 'a' && m.reject)
    expect(rejects.length).toBeGreaterThan(0)
    expect(rejects.length).toBeLessThanOrEqual(3)
    expect(net.dataOf('a')).toEqual(net.dataOf('c'))
    expect(net.get('a').node.raft.raftLog.lastIndex()).toBe(net.get('c').node.raft.raftLog.lastIndex())
    expect(net.dataOf('a')).not.toContain('stale0')
  })
})

describe('core: commit (§5.3, §5.4.2, Figure 8)', () => {
  it("the leader's own copy counts only after its write is persisted (advance)", () => {
    const net = new CoreNetwork(ids3)
    net.elect('a')
    const a = net.get('a')
    a.node.propose(enc('x'))
    const rd = a.node.ready() // not persisted yet
    const toB = rd.earlyMessages.filter((m) => m.to === 'b')
    for (const m of toB) net.get('b').node.step(m)
    for (const m of net.perform(net.get('b'))) if (m.to === 'a') a.node.step(m)
    const idx = rd.entries[rd.entries.length - 1]!.index
    expect(a.node.status().commit).toBeLessThan(idx) // one durable copy (b) of three
    a.log.append(rd.entries)
    if (rd.hardState) a.log.setHardState(rd.hardState)
    a.node.advance(rd)
    expect(a.node.status().commit).toBe(idx) // a + b durable
  })

  it('an entry of an earlier term is not committed by counting replicas (Figure 8)', () => {
    const { net, oldIndex } = figure8()
    expect(net.get('a').node.status().commit).toBeLessThan(oldIndex)
  })

  it("planted bug 'commit-old-term' commits it", () => {
    const { net, oldIndex } = figure8(new Set(['commit-old-term']))
    expect(net.get('a').node.status().commit).toBeGreaterThanOrEqual(oldIndex)
  })
})

describe('core: PreVote and CheckQuorum', () => {
  it('a node back from a partition does not depose a healthy leader (PreVote)', () => {
    const net = new CoreNetwork(ids3)
    net.elect('a')
    const term = net.get('a').node.status().term
    net.isolate('c')
    for (let i = 0; i < 100; i++) net.tick('c')
    net.stabilize()
    expect(net.get('c').node.status().term).toBe(term) // pre-votes failed: no term inflation
    net.heal()
    net.tick('a', 2)
    net.stabilize()
    expect(net.leaders()).toEqual(['a'])
    expect(net.get('a').node.status().term).toBe(term)
  })

  it('an isolated leader steps down after an election timeout (CheckQuorum)', () => {
    const net = new CoreNetwork(ids3)
    net.elect('a')
    net.isolate('a')
    for (let i = 0; i < 2 * defaultCoreConfig.electionTicks; i++) {
      net.tick('a')
      net.stabilize()
    }
    expect(net.get('a').node.status().role).toBe('follower')
  })

  it("followers in their leader's lease ignore vote requests", () => {
    const net = new CoreNetwork(ids3, { preVote: false })
    net.elect('a')
    const b = net.get('b')
    b.node.step(vote('c', 'b', 10, 100, 10))
    expect(net.perform(b).filter((m) => m.type === MessageType.MsgVoteResp)).toEqual([])
    expect(b.node.status().term).toBeLessThan(10)
  })
})

describe('core: learners and membership', () => {
  it('a learner receives entries but neither votes nor campaigns nor counts for commit', () => {
    const net = new CoreNetwork(['a', 'b'], { learners: ['l'] })
    net.add('l', ['a', 'b'], ['l'])
    net.elect('a')
    net.get('a').node.propose(enc('x'))
    net.stabilize()
    expect(net.dataOf('l')).toEqual(['x'])
    net.tick('l', 100)
    net.stabilize()
    expect(net.get('l').node.status().role).toBe('follower')
    net.isolate('b')
    net.get('a').node.propose(enc('y'))
    net.stabilize()
    expect(net.dataOf('a')).toEqual(['x']) // a + learner are not a quorum of {a, b}
  })

  it('only one membership change at a time; a new leader takes none before its first entry applies', () => {
    const net = new CoreNetwork(ids3)
    net.elect('a')
    const a = net.get('a').node
    a.proposeConfChange(
      encodeConfChange({ type: ConfChangeType.AddLearner, nodeId: 'd', context: new Uint8Array() }),
    )
    a.proposeConfChange(
      encodeConfChange({ type: ConfChangeType.AddLearner, nodeId: 'e', context: new Uint8Array() }),
    )
    net.stabilize()
    const confs = net.get('a').applied.filter((e) => e.type === EntryType.ConfChange)
    expect(confs.length).toBe(1) // the second became an empty normal entry
    expect(a.status().learners).toEqual(['d'])
  })

  it('promote a learner, then remove a voter', () => {
    const net = new CoreNetwork(ids3)
    net.add('d', [], [])
    net.elect('a')
    const a = net.get('a').node
    const cc = (type: ConfChangeType, nodeId: string): Uint8Array =>
      encodeConfChange({ type, nodeId, context: new Uint8Array() })
    a.proposeConfChange(cc(ConfChangeType.AddLearner, 'd'))
    net.stabilize()
    a.proposeConfChange(cc(ConfChangeType.PromoteLearner, 'd'))
    net.stabilize()
    expect(a.status().voters).toEqual(['a', 'b', 'c', 'd'])
    a.proposeConfChange(cc(ConfChangeType.RemoveNode, 'b'))
    net.stabilize()
    expect(a.status().voters).toEqual(['a', 'c', 'd'])
    expect(net.get('d').node.status().voters).toEqual(['a', 'c', 'd'])
  })
})

describe('core: leadership transfer, ReadIndex, snapshots', () => {
  it('transfers leadership with TimeoutNow', () => {
    const net = new CoreNetwork(ids3)
    net.elect('a')
    net.get('a').node.transferLeader('c')
    const msgs = net.stabilize()
    expect(msgs.some((m) => m.type === MessageType.MsgTimeoutNow && m.to === 'c')).toBe(true)
    expect(net.leaders()).toEqual(['c'])
  })

  it('ReadIndex on the leader answers after a heartbeat quorum; a follower gets it forwarded', () => {
    const net = new CoreNetwork(ids3)
    net.elect('a')
    net.get('a').node.propose(enc('x'))
    net.stabilize()
    const commit = net.get('a').node.status().commit
    net.get('a').node.readIndex(enc('r1'))
    net.get('b').node.readIndex(enc('r2'))
    const msgs = net.stabilize()
    expect(msgs.some((m) => m.type === MessageType.MsgHeartbeat)).toBe(true)
    expect(net.get('a').readStates).toEqual([{ index: commit, context: enc('r1') }])
    expect(net.get('b').readStates).toEqual([{ index: commit, context: enc('r2') }])
  })

  it('a leader without a quorum answers no ReadIndex', () => {
    const net = new CoreNetwork(ids3)
    net.elect('a')
    net.isolate('a')
    net.get('a').node.readIndex(enc('r'))
    net.stabilize()
    expect(net.get('a').readStates).toEqual([])
  })

  it('a follower behind the compaction point gets a snapshot, then appends', () => {
    const net = new CoreNetwork(ids3)
    net.elect('a')
    net.isolate('c')
    for (let i = 0; i < 20; i++) net.get('a').node.propose(enc(`e${i}`))
    net.stabilize()
    const a = net.get('a')
    const applied = a.node.status().applied
    a.log.compact({
      data: enc('state'),
      metadata: { index: applied, term: a.log.term(applied), confState: { voters: ids3, learners: [] } },
    })
    net.heal()
    net.get('a').node.propose(enc('after'))
    const msgs = net.stabilize()
    expect(msgs.some((m) => m.type === MessageType.MsgSnap && m.to === 'c')).toBe(true)
    expect(net.get('c').log.snapshot().metadata.index).toBe(applied)
    expect(net.dataOf('c')).toEqual(['after'])
    expect(net.get('c').node.status().commit).toBe(a.node.status().commit)
  })
})

describe('core: config and wire', () => {
  it('Config validation rejects bad and cross-field settings', () => {
    const base = { ...defaultCoreConfig, id: 'a', storage: new MemoryLog(), rng: new SeededRng(1) }
    expect(() => validateConfig(base)).not.toThrow()
    expect(() => validateConfig({ ...base, electionTicks: 1, heartbeatTicks: 1 })).toThrow(/electionTicks/)
    expect(() => validateConfig({ ...base, inflightMsgsMax: 0 })).toThrow(/inflightMsgsMax/)
    expect(() => validateConfig({ ...base, readOnlyOption: 'lease', checkQuorum: false })).toThrow(/lease/)
    expect(() => validateConfig({ ...base, id: '' })).toThrow(/id/)
    expect(() => new RawNode({ ...base, heartbeatTicks: 20 })).toThrow(/INVALID_CONFIG|electionTicks/)
  })

  it('core enums carry the numbers of proto/raft.proto', () => {
    for (const [name, num] of Object.entries(raftpb.raft.MessageType)) {
      if (typeof num === 'number') expect(MessageType[name as keyof typeof MessageType]).toBe(num)
    }
  })
})

// ---------------------------------------------------------------- helpers

function vote(from: string, to: string, term: number, index = 1, logTerm = 1): Message {
  return msg({ type: MessageType.MsgVote, from, to, term, index, logTerm })
}

function app(
  from: string,
  to: string,
  term: number,
  index: number,
  logTerm: number,
  entries: Message['entries'],
): Message {
  return msg({ type: MessageType.MsgApp, from, to, term, index, logTerm, entries })
}

function msg(m: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    to: '',
    from: '',
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    snapshot: null,
    reject: false,
    rejectHint: 0,
    context: new Uint8Array(),
    snapOffset: 0,
    snapTotalBytes: 0,
    ...m,
  }
}

/**
 * Figure 8: leader a (term 2) appends an entry that reaches only b. Later a leads again in a higher
 * term (voted by c and d) and replicates the old entry to c and d, but its own new-term entry reaches
 * nobody. The old entry is then on a majority (a, c, d, and b) — yet it must not be committed by
 * counting replicas: only once an entry of the current term is on a majority (§5.4.2).
 */
function figure8(knownBugs?: ReadonlySet<'commit-old-term'>): { net: CoreNetwork; oldIndex: number } {
  const net = new CoreNetwork(['a', 'b', 'c', 'd', 'e'], {
    preVote: false,
    checkQuorum: false,
    knownBugs,
    maxSizePerMsgBytes: 1,
  })
  net.elect('a')
  net.isolate('c')
  net.isolate('d')
  net.isolate('e')
  net.get('a').node.propose(enc('old'))
  net.stabilize()
  const oldIndex = net.get('a').node.status().lastIndex
  expect(net.get('a').node.status().commit).toBeLessThan(oldIndex)
  // Entries of the new term never reach a follower that already holds the old entry.
  const acked = new Set<string>()
  net.dropIf = (m) => {
    if (m.type === MessageType.MsgAppResp && !m.reject && m.index >= oldIndex) acked.add(m.from)
    return m.type === MessageType.MsgApp && acked.has(m.to) && m.entries.some((e) => e.index > oldIndex)
  }
  net.heal()
  net.isolate('b')
  net.isolate('e')
  const a = net.get('a').node
  a.raft.becomeFollower(a.status().term, '') // a "restarts"
  a.campaign()
  net.stabilize()
  expect(net.leaders()).toEqual(['a'])
  net.tick('a', 3)
  net.stabilize()
  expect(acked.has('c') && acked.has('d')).toBe(true)
  return { net, oldIndex }
}
