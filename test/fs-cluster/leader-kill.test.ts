// A stream of small-file creates while the Raft leader is killed (SIGKILL) mid-stream loses no
// acknowledged file. Several writers, each with its own paths, write through every node (the leader and
// the followers) with the native one-request PUT; a failed attempt (connection error, timeout, 5xx) is
// retried on the next node with the same bytes and overwrite=false. Two kinds of writers:
//  - with an idempotency key (`clientId` + `seq`, the consensus layer's client sessions): a retry is
//    applied at most once and answers the first try's result, so it must never see FILE_ALREADY_EXISTS;
//  - without one (what WebHDFS clients do): a retry whose first attempt did commit answers
//    FILE_ALREADY_EXISTS; the writer reads the file back and counts it as its own only when the bytes
//    are identical (paths are unique per writer, so nobody else could have written them).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeTempDirs, waitFor } from '../helpers/index.js'
import {
  leaderOf,
  startFsCluster,
  waitForHealthyCluster,
  type ClusterNode,
  type FsCluster,
} from './cluster.js'
import { changes, getFile, putFile, webhdfs, type ChangeEventDoc } from './client.js'

const SEED = Number(process.env['HOPSD_TEST_SEED'] ?? Date.now() % 2 ** 31)
const WRITERS = 6
const FILES_PER_WRITER = 30
/** The leader dies once this many creates were acknowledged (of WRITERS * FILES_PER_WRITER). */
const KILL_AFTER_ACKS = 40
/** A single file gives up (and fails the test) after this long of retries. */
const FILE_DEADLINE_MS = 60_000
const ATTEMPT_TIMEOUT_MS = 20_000

let cluster: FsCluster
let failed = false

beforeAll(async () => {
  console.log(`leader-kill SEED=${SEED} (HOPSD_TEST_SEED=${SEED} replays sizes and contents)`)
  cluster = await startFsCluster({ metadata: 3, prefix: 'hopsd-fs-leader-kill-' })
}, 150_000)

afterAll(async () => {
  if (failed && cluster !== undefined)
    console.log(`SEED=${SEED}\n${cluster.logTails(40)}\n${await cluster.stacks()}`)
  await cluster?.stop()
  removeTempDirs()
}, 60_000)

/** mulberry32: one seeded stream for sizes and bytes. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

interface Acked {
  path: string
  data: Buffer
  attempts: number
  /** The create answered FILE_ALREADY_EXISTS on a retry and the bytes read back were ours. */
  viaReadBack: boolean
}

interface StreamStats {
  acked: Acked[]
  /** Failed attempts by reason (connection error, HTTP status + code). */
  failures: Map<string, number>
}

/** Why an attempt failed, when it may be retried; undefined when the answer is final. */
function retriable(status: number, body: Buffer): string | undefined {
  if (status < 500) return undefined
  let code = ''
  try {
    code = JSON.parse(body.toString()).error?.code ?? ''
  } catch {
    // not JSON: the status says enough
  }
  return `${status} ${code}`
}

async function writeOne(
  path: string,
  data: Buffer,
  nodes: () => ClusterNode[],
  home: number,
  stats: StreamStats,
  session: { clientId: string; seq: number } | undefined,
): Promise<void> {
  const deadline = Date.now() + FILE_DEADLINE_MS
  const count = (why: string) => stats.failures.set(why, (stats.failures.get(why) ?? 0) + 1)
  for (let attempt = 1; ; attempt++) {
    if (Date.now() > deadline) throw new Error(`${path}: no acknowledgement within ${FILE_DEADLINE_MS} ms`)
    const list = nodes()
    const node = list[(home + attempt - 1) % list.length]!
    let status: number
    let body: Buffer
    try {
      const r = await putFile(node, path, data, { timeoutMs: ATTEMPT_TIMEOUT_MS, session })
      status = r.status
      body = r.body
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } }
      count(`connection: ${e.cause?.code ?? e.name}`)
      continue
    }
    if (status === 201) {
      stats.acked.push({ path, data, attempts: attempt, viaReadBack: false })
      return
    }
    const why = retriable(status, body)
    if (why !== undefined) {
      count(why)
      continue
    }
    const code = JSON.parse(body.toString()).error?.code
    if (status === 403 && code === 'FILE_ALREADY_EXISTS' && attempt > 1 && session === undefined) {
      // An earlier attempt committed after all (its answer was lost with the leader): ours only when
      // the bytes are identical. Read from the node that just answered (linearizable).
      const back = await getFile(node, path, { timeoutMs: ATTEMPT_TIMEOUT_MS })
      expect(back.status, `${path} read back`).toBe(200)
      expect(back.body.equals(data), `${path}: FILE_ALREADY_EXISTS with other bytes`).toBe(true)
      count('403 FILE_ALREADY_EXISTS (retry of a committed create)')
      stats.acked.push({ path, data, attempts: attempt, viaReadBack: true })
      return
    }
    throw new Error(`${path} via ${node.name}: final answer ${status} ${body.toString()}`)
  }
}

describe('leader killed during a stream of creates', () => {
  it('loses no acknowledged file; the survivors and the restarted node agree', async () => {
    try {
      const random = rng(SEED)
      const files = Array.from({ length: WRITERS }, (_, w) =>
        Array.from({ length: FILES_PER_WRITER }, (_, k) => {
          const size = 1 + Math.floor(random() * 4096)
          const data = Buffer.alloc(size)
          for (let i = 0; i < size; i++) data[i] = Math.floor(random() * 256)
          return { path: `/stream/w${w}/f${String(k).padStart(3, '0')}`, data }
        }),
      )
      const stats: StreamStats = { acked: [], failures: new Map() }
      let victim: ClusterNode | undefined
      const live = (): ClusterNode[] => cluster.metadata.filter((n) => n !== victim)

      // Kill the leader once KILL_AFTER_ACKS creates are acknowledged, while the writers keep going.
      const killed = (async () => {
        await waitFor(() => stats.acked.length >= KILL_AFTER_ACKS, {
          timeoutMs: 120_000,
          intervalMs: 5,
          what: `${KILL_AFTER_ACKS} acknowledged creates`,
        })
        const leader = await leaderOf(cluster)
        victim = leader
        leader.handle.kill('SIGKILL')
        const ackedAtKill = stats.acked.length
        console.log(`killed leader ${leader.name} (${leader.handle.id}) after ${ackedAtKill} acks`)
        return { leader, ackedAtKill }
      })()
      const t0 = Date.now()
      // Even writers carry an idempotency key, odd ones do not.
      const clientIdOf = (w: number) => (w % 2 === 0 ? `leader-kill-${SEED}-w${w}` : undefined)
      await Promise.all(
        files.map(async (mine, w) => {
          const clientId = clientIdOf(w)
          for (const [k, f] of mine.entries()) {
            const session = clientId === undefined ? undefined : { clientId, seq: k + 1 }
            await writeOne(f.path, f.data, live, w, stats, session)
          }
        }),
      )
      const { leader: dead, ackedAtKill } = await killed
      expect((await dead.handle.exited).signal).toBe('SIGKILL')
      const readBack = stats.acked.filter((a) => a.viaReadBack).length
      const retried = stats.acked.filter((a) => a.attempts > 1).map((a) => `${a.path}@${a.attempts}`)
      console.log(
        `stream: ${stats.acked.length} acked in ${Date.now() - t0} ms (${ackedAtKill} before the kill), ` +
          `${readBack} via read-back; failed attempts: ${JSON.stringify(Object.fromEntries(stats.failures))}; ` +
          `acked after retries: ${retried.join(' ')}`,
      )
      expect(ackedAtKill).toBeLessThan(WRITERS * FILES_PER_WRITER) // the kill happened mid-stream
      expect(stats.acked).toHaveLength(WRITERS * FILES_PER_WRITER)

      // Every acknowledged file, right bytes, on both survivors (linearizable reads).
      const survivors = live()
      expect(survivors).toHaveLength(2)
      await waitForHealthyCluster(cluster, 60_000, { voters: 3, nodes: survivors })
      for (const n of survivors) await expectFiles(n, stats.acked, {})
      // Nothing but the acknowledged files exists (no file a writer never saw acknowledged).
      for (const n of survivors) {
        for (let w = 0; w < WRITERS; w++) {
          const r = await webhdfs(n, 'GET', `/stream/w${w}`, 'LISTSTATUS')
          expect(r.status).toBe(200)
          const names = (r.json().FileStatuses.FileStatus as { pathSuffix: string }[]).map(
            (s) => s.pathSuffix,
          )
          expect(names).toEqual(files[w]!.map((f) => f.path.split('/').pop()))
        }
      }
      // Each path was created exactly once in the log, whatever the retries.
      const survivorLog = await changes(survivors[0]!, 0)
      const creates = survivorLog.events.filter((e) => e.op === 'create' && e.path.startsWith('/stream/'))
      expect(creates).toHaveLength(WRITERS * FILES_PER_WRITER)

      // The killed node comes back on its data dir and catches up.
      await cluster.restart(dead)
      await waitForHealthyCluster(cluster, 90_000, { voters: 3 })
      const target = (await changes(survivors[0]!, 0)).lastIndex
      await waitFor(async () => (await changes(dead, 0, { limit: 1 })).lastIndex >= target, {
        timeoutMs: 60_000,
        what: `${dead.name} to apply through index ${target}`,
      })
      // Its own replica (stale reads: no barrier) has every file, and the same change log.
      await expectFiles(dead, stats.acked, { stale: true })
      const logs = await Promise.all(cluster.metadata.map((n) => changes(n, 0)))
      const upTo = (events: ChangeEventDoc[]) => events.filter((e) => e.index <= target)
      for (const log of logs) expect(upTo(log.events)).toEqual(upTo(logs[0]!.events))
    } catch (err) {
      failed = true
      throw err
    }
  }, 420_000)
})

async function expectFiles(node: ClusterNode, acked: Acked[], opts: { stale?: boolean }): Promise<void> {
  // A few reads at a time: enough to be quick, few enough for a loaded machine.
  const queue = [...acked]
  const worker = async () => {
    for (let a = queue.shift(); a !== undefined; a = queue.shift()) {
      const r = await getFile(node, a.path, { stale: opts.stale })
      expect(r.status, `${a.path} on ${node.name}: ${r.status === 200 ? '' : r.body.toString()}`).toBe(200)
      expect(r.body.equals(a.data), `${a.path} on ${node.name}: bytes`).toBe(true)
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
}
