/**
 * The benchmark contract and helpers. A benchmark is `bench/<name>/index.ts` default-exporting a
 * {@link Bench}; `npm run bench -- NAME [--quick] [args...]` (bench/run.ts) runs it, prints the table and
 * writes `bench/results/NAME.json`. Every figure comes with the baseline it was measured beside, in the
 * same run on the same machine — figures from different runs or machines are not compared.
 *
 * @example
 * ```ts
 * const bench: Bench = async ({ quick }) => {
 *   const report = newReport('example', quick)
 *   report.baseline.push({ target: 'bare', opsPerS: 1000 })
 *   report.rows.push({ target: 'hopsd', opsPerS: 800 })
 *   report.ratios.push({ figure: 'opsPerS', ratio: 0.8 })
 *   return report
 * }
 * export default bench
 * ```
 */
import { readFileSync } from 'node:fs'
import { request, type Agent } from 'node:http'
import { cpus, loadavg, totalmem } from 'node:os'

/** One line of figures: names to numbers (or short labels). Units last in names: `p99Ms`, `reqPerS`. */
export type BenchRow = Record<string, string | number>

export interface HostInfo {
  readonly cpus: number
  readonly cpuModel: string
  readonly nodeVersion: string
  readonly platform: string
  readonly arch: string
  readonly totalMemBytes: number
  /** 1, 5 and 15 minute load averages when the run started: other work on the machine skews figures. */
  readonly loadAvg: readonly number[]
}

export interface BenchReport {
  name: string
  /** A short run (seconds): for checking that the benchmark works, not for its figures. */
  quick: boolean
  startedAt: string
  host: HostInfo
  /** Figures of what is measured. */
  rows: BenchRow[]
  /** Figures of the baseline, measured in the same run under the same load. */
  baseline: BenchRow[]
  /** Measured / baseline, one record per compared figure. */
  ratios: BenchRow[]
  /** Conditions that matter to read the figures (what shares the CPU, what was on or off). */
  notes: string[]
}

export interface BenchOptions {
  readonly quick: boolean
  /** Arguments after the name, other than --quick. */
  readonly args: string[]
}

export type Bench = (opts: BenchOptions) => Promise<BenchReport>

export function hostInfo(): HostInfo {
  const list = cpus()
  return {
    cpus: list.length,
    cpuModel: list[0]?.model ?? 'unknown',
    nodeVersion: process.version,
    platform: process.platform,
    arch: process.arch,
    totalMemBytes: totalmem(),
    loadAvg: loadavg().map((l) => round(l, 2)),
  }
}

export function newReport(name: string, quick: boolean): BenchReport {
  return {
    name,
    quick,
    startedAt: new Date().toISOString(),
    host: hostInfo(),
    rows: [],
    baseline: [],
    ratios: [],
    notes: [],
  }
}

/** The p-th percentile (0..100) of `values`, nearest-rank; NaN for no values. Does not modify `values`. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN
  if (p < 0 || p > 100) throw new RangeError(`percentile ${p} is not in 0..100`)
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[rank - 1]!
}

export interface LatencySummary {
  count: number
  meanMs: number
  p50Ms: number
  p90Ms: number
  p99Ms: number
  maxMs: number
}

export function summarize(latenciesMs: readonly number[]): LatencySummary {
  const sorted = [...latenciesMs].sort((a, b) => a - b)
  // Nearest rank on the already sorted copy (percentile() would sort again for each figure).
  const pick = (p: number) =>
    sorted.length === 0 ? NaN : sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!
  const sum = sorted.reduce((a, b) => a + b, 0)
  return {
    count: sorted.length,
    meanMs: round(sum / Math.max(1, sorted.length), 3),
    p50Ms: round(pick(50), 3),
    p90Ms: round(pick(90), 3),
    p99Ms: round(pick(99), 3),
    maxMs: round(pick(100), 3),
  }
}

export function round(n: number, digits = 2): number {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

/** A plain-text table of rows; columns are the union of the rows' keys, in first-seen order. */
export function formatTable(rows: readonly BenchRow[]): string {
  if (rows.length === 0) return '(no rows)'
  const columns: string[] = []
  for (const row of rows) for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key)
  const cell = (v: string | number | undefined) =>
    v === undefined
      ? ''
      : typeof v === 'number'
        ? Number.isInteger(v)
          ? String(v)
          : v.toFixed(Math.abs(v) >= 100 ? 0 : 3)
        : v
  const cells = rows.map((row) => columns.map((c) => cell(row[c])))
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)))
  const line = (values: string[]) =>
    values
      .map((v, i) => (/^-?[\d.]+$/.test(v) ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(columns), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n')
}

/** The report as the runner prints it. */
export function formatReport(report: BenchReport): string {
  const h = report.host
  return [
    `${report.name}${report.quick ? ' (quick)' : ''} — ${report.startedAt} — ${h.cpus} × ${h.cpuModel}, Node ${h.nodeVersion}, load ${h.loadAvg?.join(' ') ?? '?'}`,
    '',
    'measured:',
    formatTable(report.rows),
    '',
    'baseline (same run):',
    formatTable(report.baseline),
    '',
    'ratios (measured / baseline):',
    formatTable(report.ratios),
    ...(report.notes.length > 0 ? ['', 'notes:', ...report.notes.map((n) => `- ${n}`)] : []),
  ].join('\n')
}

/**
 * CPU seconds (user + system) the processes `pids` have used so far, from /proc/PID/stat; undefined
 * where there is no /proc.
 * Per unit of work it moves far less than throughput does when other load shares the host.
 */
export function cpuSecondsOf(pids: readonly number[]): number | undefined {
  if (pids.length === 0) return undefined
  try {
    let ticks = 0
    for (const pid of pids) {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
      ticks += Number(fields[11]) + Number(fields[12]) // utime, stime (after the comm field)
    }
    return ticks / CLOCK_TICKS_PER_S
  } catch {
    return undefined
  }
}
/** USER_HZ: the unit of /proc/PID/stat times on Linux. */
const CLOCK_TICKS_PER_S = 100

/**
 * The environment of the daemons a bench starts: warn-level logs, plus NODE_OPTIONS from
 * BENCH_DAEMON_NODE_OPTIONS when set (e.g. `--perf-basic-prof` for `perf record -p`, or `--cpu-prof`),
 * so that profiles come from the daemons and not from npm or the bench process.
 */
export function daemonEnv(): Record<string, string> {
  const opts = process.env.BENCH_DAEMON_NODE_OPTIONS
  return { HOPSD_LOG_LEVEL: 'warn', ...(opts ? { NODE_OPTIONS: opts } : {}) }
}

/** What one HTTP request of a load generator got back: the status, a redirect's target, the whole body. */
export interface HttpAnswer {
  status: number
  location: string | undefined
  body: Buffer
}

/**
 * One request over `agent` (keep-alive sockets of a load generator); resolves with the status and the
 * whole body, never rejects on a status — only on a socket error or no answer within `timeoutMs`.
 */
export function sendHttp(
  agent: Agent,
  method: string,
  url: string,
  body?: Buffer,
  opts: { contentType?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  const timeoutMs = opts.timeoutMs ?? 30_000
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent,
        timeout: timeoutMs,
        headers: {
          ...opts.headers,
          ...(body === undefined
            ? { 'content-length': 0 }
            : {
                'content-type': opts.contentType ?? 'application/octet-stream',
                'content-length': body.length,
              }),
        },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            location: res.headers.location,
            body: Buffer.concat(chunks),
          }),
        )
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end(body)
  })
}
