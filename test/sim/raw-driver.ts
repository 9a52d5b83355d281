/**
 * A minimal driver over the pure core (RawNode) that follows the Ready contract to the letter, for the
 * simulator's `--driver raw` mode: it proves the core alone (and the simulator) independently of the
 * production driver (createRaftGroup). It implements the part of RaftGroup the simulator uses: start,
 * bootstrap, propose (no client sessions: a retried command applies twice; but a proposal the network
 * duplicated applies once), readBarrier, status, subscribe. No log compaction.
 *
 * Loop, one Ready at a time (core/types.ts `Ready`):
 *   send earlyMessages → persist (one atomic write) → mirror into MemoryLog → send messages →
 *   restore snapshot / apply committed entries → advance → serve read states.
 */
import { decodeConfChange } from '../../src/consensus/codec.js'
import type { RaftConfig } from '../../src/consensus/core/config.js'
import { defaultCoreConfig } from '../../src/consensus/core/config.js'
import { RawNode } from '../../src/consensus/core/raw-node.js'
import { EntryType, type Message, type ReadState, type Ready } from '../../src/consensus/core/types.js'
import { ConsensusError } from '../../src/consensus/errors.js'
import { MemoryLog } from '../../src/consensus/memory-log.js'
import {
  defaultRaftGroupConfig,
  type CallOptions,
  type ProposeOptions,
  type RaftGroup,
  type RaftGroupEvent,
  type RaftGroupInit,
  type RaftGroupStatus,
} from '../../src/consensus/raft-group-types.js'

export function createRawDriverGroup(init: RaftGroupInit): RaftGroup {
  const cfg = { ...defaultRaftGroupConfig, ...init.config }
  const clock = init.clock!
  const listeners = new Set<(ev: RaftGroupEvent) => void>()
  const log = new MemoryLog()
  let node: RawNode | undefined
  let running = false
  let stopped = false
  let writing = false
  let tickTimer: unknown
  let appliedIndex = 0
  let originSeq = 0
  const origin = `${init.id}/${Math.floor(clock.now())}`
  const waiting = new Map<number, { resolve: (r: unknown) => void; reject: (e: unknown) => void }>()
  let readSeq = 0
  const reads = new Map<
    string,
    { resolve: () => void; reject: (e: unknown) => void; index: number | undefined }
  >()
  let leader = ''
  let term = 0
  /** Proposals applied, by proposer incarnation and number (rebuilt from the log on restart: no compaction). */
  const appliedProposals = new Set<string>()

  const emit = (ev: RaftGroupEvent): void => {
    for (const l of [...listeners]) l(ev)
  }

  function makeNode(): RawNode {
    const c: RaftConfig = {
      ...defaultCoreConfig,
      id: init.id,
      electionTicks: cfg.electionTicks,
      heartbeatTicks: cfg.heartbeatTicks,
      storage: log,
      applied: appliedIndex,
      maxSizePerMsgBytes: cfg.maxBatchBytes,
      inflightMsgsMax: cfg.inflightMsgsMax,
      checkQuorum: cfg.checkQuorum,
      preVote: cfg.preVote,
      readOnlyOption: cfg.readOnlyOption,
      rng: init.rng,
      ...(cfg.testing?.knownBugs ? { knownBugs: cfg.testing.knownBugs } : {}),
    }
    return new RawNode(c)
  }

  function tick(): void {
    if (stopped) return
    node?.tick()
    tickTimer = clock.setTimeout(tick, cfg.tickMs)
    pump()
  }

  /** Runs Ready cycles until none is pending; one at a time. */
  function pump(): void {
    if (stopped || node === undefined) return
    if (writing) {
      // Overlap: the leader's replication may leave while its own write is in flight.
      for (const m of node.takeEarlyMessages()) send(m)
      return
    }
    if (!node.hasReady()) return
    const rd = node.ready()
    writing = true
    void handleReady(rd).then(
      () => {
        writing = false
        pump()
      },
      (err: unknown) => {
        writing = false
        fatal(err)
      },
    )
  }

  function send(m: Message): void {
    init.transport.send(m.to, m)
  }

  async function handleReady(rd: Ready): Promise<void> {
    const n = node!
    for (const m of rd.earlyMessages) send(m)
    if (rd.hardState !== null || rd.entries.length > 0 || rd.snapshot !== null) {
      try {
        await init.storage.write({
          hardState: rd.hardState,
          entries: rd.entries,
          snapshot: rd.snapshot,
          compact: null,
        })
      } catch (err) {
        throw new ConsensusError('STORAGE_FAILED', String(err), { cause: err })
      }
      if (stopped) return
      if (rd.snapshot) log.applySnapshot(rd.snapshot)
      log.append(rd.entries)
      if (rd.hardState) log.setHardState(rd.hardState)
    }
    for (const m of rd.messages) send(m)
    if (rd.snapshot) {
      await init.stateMachine.restore(rd.snapshot.data)
      appliedIndex = rd.snapshot.metadata.index
    }
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) {
        n.applyConfChange(decodeConfChange(e.data))
        appliedIndex = e.index
        continue
      }
      // The network may duplicate a forwarded proposal (MsgProp): apply each (origin, originSeq) once.
      if (e.origin !== '') {
        const tag = `${e.origin}#${e.originSeq}`
        if (appliedProposals.has(tag)) {
          appliedIndex = e.index
          continue
        }
        appliedProposals.add(tag)
      }
      const [result] = await init.stateMachine.apply([{ index: e.index, term: e.term, data: e.data }])
      appliedIndex = e.index
      if (e.origin === origin) {
        const w = waiting.get(e.originSeq)
        waiting.delete(e.originSeq)
        w?.resolve(result)
      }
    }
    if (rd.softState !== null && (rd.softState.leader !== leader || n.raft.term !== term)) {
      leader = rd.softState.leader
      term = n.raft.term
      emit({ type: 'leader', leaderId: leader, term })
    }
    n.advance(rd)
    for (const rs of rd.readStates) serveRead(rs)
    for (const [, r] of reads) if (r.index !== undefined && appliedIndex >= r.index) r.resolve()
    for (const [k, r] of [...reads]) if (r.index !== undefined && appliedIndex >= r.index) reads.delete(k)
  }

  function serveRead(rs: ReadState): void {
    const key = new TextDecoder().decode(rs.context)
    const r = reads.get(key)
    if (r !== undefined) r.index = rs.index
  }

  function fatal(err: unknown): void {
    if (stopped) return
    stopped = true
    clock.clearTimeout(tickTimer)
    const error =
      err instanceof ConsensusError ? err : new ConsensusError('STORAGE_FAILED', String(err), { cause: err })
    for (const [, w] of waiting) w.reject(new ConsensusError('STOPPED'))
    waiting.clear()
    for (const [, r] of reads) r.reject(new ConsensusError('STOPPED'))
    reads.clear()
    emit({ type: 'stopped', error })
  }

  function withSignal<T>(opts: CallOptions | undefined, p: Promise<T>, cancel: () => void): Promise<T> {
    const signal = opts?.signal
    if (signal === undefined) return p
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        cancel()
        reject(new ConsensusError('ABORTED'))
      }
      if (signal.aborted) return onAbort()
      signal.addEventListener('abort', onAbort, { once: true })
      p.then(
        (v) => {
          signal.removeEventListener('abort', onAbort)
          resolve(v)
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort)
          reject(e)
        },
      )
    })
  }

  const group: RaftGroup = {
    id: init.id,
    async start() {
      const st = await init.storage.load()
      if (st.snapshot) {
        log.applySnapshot(st.snapshot)
        await init.stateMachine.restore(st.snapshot.data)
        appliedIndex = st.snapshot.metadata.index
      }
      log.append(st.entries)
      log.setHardState(st.hardState)
      node = makeNode()
      running = true
      init.transport.setHandler((m) => {
        if (stopped || node === undefined) return
        try {
          node.step(m)
        } catch (err) {
          if (!(err instanceof ConsensusError)) throw err
        }
        pump()
      })
      tickTimer = clock.setTimeout(tick, cfg.tickMs)
    },
    async stop() {
      stopped = true
      clock.clearTimeout(tickTimer)
    },
    async bootstrap(voterIds) {
      if (!running) throw new ConsensusError('STOPPED')
      if (log.lastIndex() > 0 || log.initialState().hardState.term > 0)
        throw new ConsensusError('ALREADY_BOOTSTRAPPED')
      const snapshot = {
        data: new Uint8Array(0),
        metadata: { index: 1, term: 1, confState: { voters: [...voterIds], learners: [] } },
      }
      const hardState = { term: 1, vote: '', commit: 1 }
      try {
        await init.storage.write({ hardState, entries: [], snapshot, compact: null })
      } catch (err) {
        const error = new ConsensusError('STORAGE_FAILED', String(err), { cause: err })
        fatal(error)
        throw error
      }
      log.applySnapshot(snapshot)
      log.setHardState(hardState)
      await init.stateMachine.restore(snapshot.data)
      appliedIndex = 1
      node = makeNode()
      pump()
    },
    propose(command: Uint8Array, opts?: ProposeOptions) {
      if (stopped || node === undefined) return Promise.reject(new ConsensusError('STOPPED'))
      const seq = ++originSeq
      const p = new Promise<unknown>((resolve, reject) => waiting.set(seq, { resolve, reject }))
      try {
        node.propose(command, { origin, originSeq: seq })
      } catch (err) {
        waiting.delete(seq)
        return Promise.reject(err)
      }
      pump()
      return withSignal(opts, p, () => waiting.delete(seq))
    },
    readBarrier(opts?: CallOptions) {
      if (stopped || node === undefined) return Promise.reject(new ConsensusError('STOPPED'))
      const key = `${origin}/r${++readSeq}`
      const p = new Promise<void>((resolve, reject) => reads.set(key, { resolve, reject, index: undefined }))
      try {
        node.readIndex(new TextEncoder().encode(key))
      } catch (err) {
        reads.delete(key)
        return Promise.reject(err)
      }
      pump()
      return withSignal(opts, p, () => reads.delete(key))
    },
    addVoter: () => Promise.reject(new Error('raw driver: not supported')),
    addLearner: () => Promise.reject(new Error('raw driver: not supported')),
    promoteLearner: () => Promise.reject(new Error('raw driver: not supported')),
    removeNode: () => Promise.reject(new Error('raw driver: not supported')),
    transferLeadership: () => Promise.reject(new Error('raw driver: not supported')),
    status(): RaftGroupStatus {
      if (node === undefined) {
        return {
          id: init.id,
          term: 0,
          role: 'follower' as RaftGroupStatus['role'],
          leaderId: '',
          commitIndex: 0,
          appliedIndex,
          voters: [],
          learners: [],
          lastIndex: 0,
        }
      }
      const s = node.status()
      return {
        id: init.id,
        term: s.term,
        role: s.role,
        leaderId: s.lead,
        commitIndex: s.commit,
        appliedIndex,
        voters: s.voters,
        learners: s.learners,
        lastIndex: s.lastIndex,
      }
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    waitForLeader: () => Promise.reject(new Error('raw driver: not supported')),
  }
  return group
}
