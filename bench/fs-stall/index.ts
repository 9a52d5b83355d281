/**
 * bench/fs-stall: the longest event-loop stall on the metadata leader during a content summary and a
 * recursive delete of a big tree (issue 12 item 6; goal: under 50 ms, so that no election is ever
 * triggered — Raft heartbeats share the loop).
 *
 * A 3-node cluster (`startCluster`: zones z1..z3, `--bootstrap-expect 3`) gets FILES empty files
 * (`PUT /api/v1/fs/files`, 1,000 per directory, 64 clients spread over the nodes). Then, on the leader:
 *   - idle: nothing for a few seconds (baseline: what the loop stalls with no subtree work);
 *   - GETCONTENTSUMMARY of the tree (WebHDFS, sent to the leader, which walks it);
 *   - DELETE recursive=true of the tree, until the leader's purge loop has freed it
 *     (`hopsd_fs_detached_subtrees` back to 0).
 * The stall is prom-client's `nodejs_eventloop_lag_max_seconds` (perf_hooks monitorEventLoopDelay,
 * 10 ms resolution; reset at every scrape, so the figure of a phase is the largest over the phase's
 * scrapes) — wall time, preemption by other load included — and hopsd's
 * `hopsd_eventloop_busy_stall_max_seconds`, the same gap counting only the CPU time the daemon had. The Raft term before and after says whether an election happened.
 *
 * Second baseline, in this process on the same tree size: the state machine alone (no Raft, no HTTP):
 * the CPU time of one unbounded purge command (purgeBatchInodes = 10^9: what the single delete command
 * cost before) and of one content-summary walk in one go (as before), against the longest bounded
 * purge step and the mean chunk of 5,000 inodes. CPU, not wall time: the host's load does not inflate it.
 *
 * Usage: `npm run bench -- fs-stall [--quick] [--files N]`
 */
import { Agent, request } from 'node:http'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { createFsService, namespaceModule, type Namespace } from '../../src/fs/index.js'
import { createLocalGroup, createMetaStateMachine } from '../../src/meta/index.js'
import { makeTempDir, removeTempDirs, startCluster, stopAllNodes, waitFor } from '../../test/helpers/index.js'
import { daemonEnv, newReport, round, type Bench } from '../harness.js'

const USER = 'hopsd'
const PER_DIR = 1000
const CLIENTS = 64
const ROOT = '/stall'

interface Answer {
  status: number
  body: string
}

function send(agent: Agent, method: string, url: string, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, timeout: 120_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      )
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer`)))
    req.on('error', reject)
    req.end(body)
  })
}

/** One gauge of a Prometheus text page. */
function metric(page: string, name: string): number {
  const m = new RegExp(`^${name} ([0-9.eE+-]+)$`, 'm').exec(page)
  if (m === null) throw new Error(`no ${name} in /metrics`)
  return Number(m[1])
}

const bench: Bench = async ({ quick, args }) => {
  const { values } = parseArgs({ args, options: { files: { type: 'string' } }, strict: true })
  const files = Number(values.files ?? (quick ? 5_000 : 100_000))
  if (!Number.isInteger(files) || files < PER_DIR) throw new Error(`--files takes an integer >= ${PER_DIR}`)
  const dirs = Math.ceil(files / PER_DIR)
  const report = newReport('fs-stall', quick)
  const dir = makeTempDir('hopsd-bench-fs-stall-')
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS })
  try {
    const cluster = await startCluster({ dir: join(dir, 'cluster'), nodes: 3, env: daemonEnv() })
    const urls = cluster.handles.map((h) => h.url)
    const status = async (): Promise<{ leader: string; term: number }> => {
      const r = await send(agent, 'GET', `${urls[0]}/api/v1/cluster`)
      const j = JSON.parse(r.body) as { leader: { id: string } | null; term: number }
      if (j.leader === null) throw new Error('no leader yet')
      return { leader: j.leader.id, term: j.term }
    }
    await waitFor(
      async () =>
        (
          await send(
            agent,
            'PUT',
            `${urls[0]}/api/v1/fs/files?path=/ready&overwrite=true&user.name=${USER}`,
            Buffer.alloc(0),
          )
        ).status === 201,
      { timeoutMs: 120_000, intervalMs: 250, what: 'the cluster to take a write' },
    )
    const ids = await Promise.all(
      urls.map(
        async (u) => (JSON.parse((await send(agent, 'GET', `${u}/api/v1/node`)).body) as { id: string }).id,
      ),
    )
    const leaderUrl = (): string => urls[ids.indexOf(leaderNow!.leader)]!
    let leaderNow = await status()

    // Build the tree.
    const t0 = performance.now()
    let next = 0
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        for (let i = next++; i < files; i = next++) {
          const path = `${ROOT}/d${Math.floor(i / PER_DIR)}/f${i % PER_DIR}`
          const r = await send(
            agent,
            'PUT',
            `${urls[c % urls.length]}/api/v1/fs/files?path=${encodeURIComponent(path)}&user.name=${USER}`,
            Buffer.alloc(0),
          )
          if (r.status !== 201) throw new Error(`create ${path}: ${r.status} ${r.body}`)
        }
      }),
    )
    const buildS = (performance.now() - t0) / 1000
    report.notes.push(
      `${files} empty files in ${dirs} directories built in ${round(buildS, 1)} s (${round(files / buildS, 0)} creates/s)`,
    )
    leaderNow = await status()

    /** Runs `work` on the leader, scraping its /metrics every 200 ms; the largest lag max seen. */
    const phase = async (name: string, work: () => Promise<void>): Promise<void> => {
      const url = leaderUrl()
      const before = leaderNow.term
      await send(agent, 'GET', `${url}/metrics`) // resets the loop-delay histogram
      let maxS = 0
      let busyS = 0
      let done = false
      const scrape = async (): Promise<string> => {
        const page = (await send(agent, 'GET', `${url}/metrics`)).body
        maxS = Math.max(maxS, metric(page, 'nodejs_eventloop_lag_max_seconds'))
        busyS = Math.max(busyS, metric(page, 'hopsd_eventloop_busy_stall_max_seconds'))
        return page
      }
      const poller = (async () => {
        while (!done) {
          await new Promise((r) => setTimeout(r, 200))
          await scrape()
        }
      })()
      const start = performance.now()
      await work()
      const wallMs = performance.now() - start
      done = true
      await poller
      await scrape()
      leaderNow = await status()
      const row = {
        phase: name,
        maxStallMs: round(maxS * 1000, 1),
        maxBusyStallMs: round(busyS * 1000, 1),
        wallMs: round(wallMs, 0),
        termBefore: before,
        termAfter: leaderNow.term,
        election: leaderNow.term !== before ? 'yes' : 'no',
      }
      ;(name === 'idle' ? report.baseline : report.rows).push(row)
    }

    const idleMs = quick ? 2_000 : 5_000
    await phase('idle', () => new Promise((r) => setTimeout(r, idleMs)))
    let summary: Record<string, number> = {}
    await phase('GETCONTENTSUMMARY', async () => {
      const r = await send(
        agent,
        'GET',
        `${leaderUrl()}/webhdfs/v1${ROOT}?op=GETCONTENTSUMMARY&user.name=${USER}`,
      )
      if (r.status !== 200) throw new Error(`GETCONTENTSUMMARY: ${r.status} ${r.body}`)
      summary = (JSON.parse(r.body) as { ContentSummary: Record<string, number> }).ContentSummary
    })
    if (summary.fileCount !== files)
      throw new Error(`the summary counted ${summary.fileCount} files, not ${files}`)
    await phase('DELETE recursive + purge', async () => {
      const r = await send(
        agent,
        'DELETE',
        `${leaderUrl()}/webhdfs/v1${ROOT}?op=DELETE&recursive=true&user.name=${USER}`,
      )
      if (r.status !== 200 || !r.body.includes('true')) throw new Error(`DELETE: ${r.status} ${r.body}`)
      await waitFor(
        async () =>
          metric((await send(agent, 'GET', `${leaderUrl()}/metrics`)).body, 'hopsd_fs_detached_subtrees') ===
          0,
        { timeoutMs: 600_000, intervalMs: 200, what: 'the purge to finish' },
      )
    })
    const gone = await send(agent, 'GET', `${urls[0]}/api/v1/fs/stat?path=${ROOT}&user.name=${USER}`)
    if (gone.status !== 404) throw new Error(`${ROOT} still there after the delete: ${gone.status}`)
    await stopAllNodes()

    // Baseline 2: the state machine alone, in this process, unbounded against bounded.
    report.baseline.push(...(await inProcess(files)))
    const idle = report.baseline[0]!.maxStallMs as number
    const idleBusy = report.baseline[0]!.maxBusyStallMs as number
    for (const row of report.rows)
      report.ratios.push({
        figure: `maxBusyStallMs ${row.phase} / idle`,
        ratio: round((row.maxBusyStallMs as number) / Math.max(idleBusy, 0.1), 2),
      })
    for (const row of report.rows)
      report.ratios.push({
        figure: `maxStallMs ${row.phase} / idle`,
        ratio: round((row.maxStallMs as number) / Math.max(idle, 0.1), 2),
      })
    const cpu = (phase: string): number =>
      report.baseline.find((r) => r.phase === phase)!.cpuMsLongestStep as number
    report.ratios.push(
      {
        figure: 'longest purge command CPU: 1000 per command / unbounded',
        ratio: round(
          cpu('in-process purge, 1000 per command') / cpu('in-process purge, unbounded (one command)'),
          3,
        ),
      },
      {
        figure: 'longest content-summary step CPU: 5000 per chunk / one walk',
        ratio: round(
          cpu('in-process content summary, 5000 per chunk (mean)') /
            cpu('in-process content summary, one walk'),
          3,
        ),
      },
    )
    report.notes.push(
      'maxStallMs: prom-client nodejs_eventloop_lag_max_seconds on the leader (monitorEventLoopDelay, 10 ms resolution), the largest over the phase: wall time, so it includes time the OS kept the daemon off the CPU on a loaded host',
      'maxBusyStallMs: hopsd_eventloop_busy_stall_max_seconds on the leader (src/node/loop-stall.ts): the longest gap between 10 ms timer turns counting only the CPU time the daemon had in it',
      'in-process rows: CPU ms of this process around one command (or walk) on a bare state machine (no Raft, no HTTP): what one step holds the loop for, measured in CPU so that the host load does not inflate it',
      '3 daemons and the load generator share the host: see host.loadAvg',
    )
    return report
  } finally {
    agent.destroy()
    await stopAllNodes()
    removeTempDirs()
  }
}

/** CPU milliseconds of this process while `fn` runs (robust to the host's load, unlike wall time). */
async function cpuMs(fn: () => Promise<unknown>): Promise<number> {
  const c = process.cpuUsage()
  await fn()
  const d = process.cpuUsage(c)
  return (d.user + d.system) / 1000
}

/**
 * The same tree on a bare state machine: CPU time of the longest single command, bounded and
 * unbounded, and of a content summary in one walk against one chunk of contentSummaryBatchInodes.
 */
async function inProcess(files: number): Promise<Record<string, string | number>[]> {
  const rows: Record<string, string | number>[] = []
  const su = { user: USER, groups: [] }
  const build = async (): Promise<{ fs: ReturnType<typeof createFsService>; ns: Namespace }> => {
    const sm = createMetaStateMachine({ modules: [namespaceModule()] })
    const fs = createFsService({ consensus: createLocalGroup(sm), stateMachine: sm })
    for (let i = 0; i < files; i++)
      await fs.create(su, `${ROOT}/d${Math.floor(i / PER_DIR)}/f${i % PER_DIR}`, new Uint8Array(0))
    return { fs, ns: sm.module<Namespace>('fs') }
  }
  const { fs, ns } = await build()
  // Content summary: the whole tree in one walk (what GETCONTENTSUMMARY held the loop for before), and
  // the mean per chunk of the default 5,000 inodes.
  const whole = await cpuMs(() => ns.contentSummary(su, ROOT, { batchInodes: 1_000_000_000 }))
  const chunked = await cpuMs(() => ns.contentSummary(su, ROOT, { batchInodes: 5000 }))
  const chunks = Math.ceil((files + files / PER_DIR + 1) / 5000)
  rows.push(
    { phase: 'in-process content summary, one walk', cpuMsLongestStep: round(whole, 1), steps: 1 },
    {
      phase: 'in-process content summary, 5000 per chunk (mean)',
      cpuMsLongestStep: round(chunked / chunks, 1),
      steps: chunks,
    },
  )
  for (const batch of [1_000_000_000, 1000]) {
    const { fs: f, ns: n } = batch === 1000 ? await build() : { fs, ns }
    await f.setSetting(su, 'purgeBatchInodes', String(batch))
    const detach = await cpuMs(() => f.delete(su, ROOT, { recursive: true }))
    let longest = 0
    let steps = 0
    while (n.detachedCount > 0) {
      longest = Math.max(longest, await cpuMs(() => f.purgeDetachedStep()))
      steps++
    }
    rows.push({
      phase:
        batch === 1000 ? 'in-process purge, 1000 per command' : 'in-process purge, unbounded (one command)',
      cpuMsLongestStep: round(longest, 1),
      cpuMsDetach: round(detach, 2),
      steps,
    })
  }
  return rows
}

export default bench
