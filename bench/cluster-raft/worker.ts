/**
 * One process of the bench/cluster-raft benchmark: a libp2p host (TCP + pnet + Noise + Yamux, the
 * daemon's stack), the Raft channel and transport over it, and a RaftGroup on LevelDB with a trivial
 * state machine — the daemon's consensus path without HTTP, fs or the metadata state machine.
 *
 * Driven by the parent (bench/cluster-raft/index.ts) with one JSON object per line:
 *   stdin  {"cmd":"bootstrap","voters":[ids]} | {"cmd":"status"} |
 *          {"cmd":"run","proposers":N,"durationMs":D} | {"cmd":"stop"}
 *   stdout {"type":"ready","id":ID} once connected to every --join peer, then one answer per command:
 *          {"type":"status",...} | {"type":"result",...} | {"type":"error","message":...} | {"type":"stopped"}
 * Logs go to stderr. `run` is answered by the leader only (others answer an error): it runs N
 * closed-loop proposers for D ms, each proposing as soon as its previous proposal was applied here.
 *
 * Usage: node --import tsx bench/cluster-raft/worker.ts --data-dir DIR --listen HOST:PORT
 *        --join HOST:PORT,... --swarm-key FILE [--tick-ms 50]
 */
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  createRaftGroup,
  createSeededRng,
  openLevelStorage,
  type AppliedEntry,
  type RaftGroup,
  type RaftPersistence,
  type StateMachine,
} from '../../src/consensus/index.js'
// identity.js directly, not node/index.js: the worker needs no daemon, api or fs code.
import { loadOrCreateIdentity } from '../../src/node/identity.js'
import {
  createChannel,
  createLibp2pRaftTransport,
  createP2PHost,
  loadSwarmKeyFile,
  P2P_TIMINGS_TEST,
  RAFT_PROTOCOL,
  type P2PLogger,
} from '../../src/node/p2p/index.js'
import { round, summarize } from '../harness.js'

/** The same command size as bench/consensus (and index.ts), so the rows compare. */
const VALUE_BYTES = 128

class CounterMachine implements StateMachine<null> {
  count = 0
  apply(entries: readonly AppliedEntry[]): null[] {
    this.count += entries.length
    return entries.map(() => null)
  }
  snapshot(): Uint8Array {
    return new TextEncoder().encode(String(this.count))
  }
  restore(data: Uint8Array): void {
    this.count = Number(new TextDecoder().decode(data))
  }
}

const stderrLogger: P2PLogger = {
  debug() {},
  info() {},
  warn: (obj, msg) => process.stderr.write(`warn ${msg ?? ''} ${JSON.stringify(obj)}\n`),
  error: (obj, msg) => process.stderr.write(`error ${msg ?? ''} ${JSON.stringify(obj)}\n`),
}

function out(obj: object): void {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'data-dir': { type: 'string' },
      listen: { type: 'string' },
      join: { type: 'string' },
      'swarm-key': { type: 'string' },
      'tick-ms': { type: 'string', default: '50' },
      seed: { type: 'string', default: '1' },
    },
  })
  const dataDir = values['data-dir']!
  const joinAddrs = values.join!.split(',')
  const identity = await loadOrCreateIdentity(dataDir)
  const host = await createP2PHost({
    privateKey: identity.privateKey,
    listen: values.listen!,
    swarmKey: loadSwarmKeyFile(values['swarm-key']!),
    join: joinAddrs,
    logger: stderrLogger,
    timings: P2P_TIMINGS_TEST,
  })
  const level = await openLevelStorage(join(dataDir, 'raft'))
  const stats = { writes: 0, entries: 0, writeMs: 0 }
  const storage: RaftPersistence = {
    load: () => level.load(),
    close: () => level.close(),
    async write(b) {
      const t0 = performance.now()
      await level.write(b)
      stats.writes++
      stats.entries += b.entries.length
      stats.writeMs += performance.now() - t0
    },
  }
  const channel = createChannel(host, { protocol: RAFT_PROTOCOL, logger: stderrLogger })
  const group: RaftGroup = createRaftGroup({
    id: host.id,
    storage,
    transport: createLibp2pRaftTransport(channel, { selfId: host.id, logger: stderrLogger }),
    stateMachine: new CounterMachine(),
    rng: createSeededRng(Number(values.seed)),
    // As bench/consensus's in-process group, so the two rows differ only by the network and processes.
    config: {
      tickMs: Number(values['tick-ms']),
      electionTicks: 20,
      heartbeatTicks: 2,
      proposalTimeoutMs: 30_000,
    },
  })
  await channel.start()
  await group.start()

  // Ready once connected to every other --join address (the transport dials peers by id).
  const others = joinAddrs.length - 1
  const deadline = Date.now() + 60_000
  while (host.peers().length < others) {
    if (Date.now() > deadline)
      throw new Error(`connected to ${host.peers().length} of ${others} peers after 60 s`)
    await new Promise((r) => setTimeout(r, 50))
  }
  out({ type: 'ready', id: host.id })

  const value = new Uint8Array(VALUE_BYTES).fill(7)
  const handle = async (cmd: { cmd: string; voters?: string[]; proposers?: number; durationMs?: number }) => {
    switch (cmd.cmd) {
      case 'bootstrap':
        await group.bootstrap(cmd.voters!)
        return { type: 'bootstrapped' }
      case 'status': {
        const st = group.status()
        return {
          type: 'status',
          id: st.id,
          leaderId: st.leaderId,
          role: st.role,
          term: st.term,
          commitIndex: st.commitIndex,
        }
      }
      case 'run': {
        const st = group.status()
        if (st.leaderId !== host.id)
          return { type: 'error', message: `not the leader (leader: ${st.leaderId})` }
        await group.propose(value) // warm-up: the leader's own entry of its term is committed
        const before = { ...stats }
        const netBefore = channel.stats()
        const latencies: number[] = []
        const start = performance.now()
        const end = start + cmd.durationMs!
        await Promise.all(
          Array.from({ length: cmd.proposers! }, async () => {
            while (performance.now() < end) {
              const t0 = performance.now()
              await group.propose(value)
              latencies.push(performance.now() - t0)
            }
          }),
        )
        const elapsedS = (performance.now() - start) / 1000
        const sum = summarize(latencies)
        const writes = stats.writes - before.writes
        const net = channel.stats()
        return {
          type: 'result',
          proposers: cmd.proposers,
          proposalsPerS: Math.round(latencies.length / elapsedS),
          p50Ms: round(sum.p50Ms, 2),
          p99Ms: round(sum.p99Ms, 2),
          count: latencies.length,
          leaderWrites: writes,
          leaderEntriesPerWrite: round((stats.entries - before.entries) / Math.max(1, writes), 1),
          leaderMsPerWrite: round((stats.writeMs - before.writeMs) / Math.max(1, writes), 2),
          framesSent: net.sent - netBefore.sent,
          framesDropped:
            net.droppedQueueFull + net.droppedOther - netBefore.droppedQueueFull - netBefore.droppedOther,
        }
      }
      case 'stop':
        await group.stop()
        await channel.stop()
        await host.stop()
        return { type: 'stopped' }
      default:
        return { type: 'error', message: `unknown command ${cmd.cmd}` }
    }
  }

  // Commands one at a time, in order.
  let chain: Promise<unknown> = Promise.resolve()
  createInterface({ input: process.stdin }).on('line', (line) => {
    chain = chain.then(async () => {
      try {
        const answer = await handle(JSON.parse(line) as { cmd: string })
        out(answer)
        if (answer.type === 'stopped') process.exit(0)
      } catch (err) {
        out({ type: 'error', message: (err as Error).message })
      }
    })
  })
}

main().catch((err: unknown) => {
  process.stderr.write(
    `cluster-raft worker: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  )
  process.exit(1)
})
