/**
 * `npm run sim -- --seeds N [--seed S] [--history-out FILE] [--nodes 3|5] [--verbose] [--bug NAME]`
 *
 * Runs N seeds (S, S+1, ...; S defaults to one drawn from the wall clock, printed first). On the first
 * failing seed prints `SEED=<n>`, the violation, the last trace lines and the command that replays it,
 * and exits 1. When every seed passes the last line is exactly `sim: N seeds, 0 violations`.
 * --keep-going runs every seed and lists each failing one (one line each) instead of stopping.
 * --history-out writes the client history of the LAST seed run (the failing one, if any) as JSON lines.
 */
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import type { KnownBug } from '../../src/consensus/core/types.js'
import { figure8Faults, runSimulation, type SimResult } from './cluster.js'
import type { HistoryEvent } from './linearizability.js'
import { healthyNetwork } from './network.js'

const knownBugNames: readonly KnownBug[] = ['double-vote', 'commit-old-term', 'ack-before-fsync']

function usage(msg: string): never {
  process.stderr.write(
    `${msg}\nusage: npm run sim -- --seeds N [--seed S] [--history-out FILE] [--nodes 3|5] [--verbose] [--driver group|raw] [--faults swarm|figure8] [--reorder-after-heal] [--keep-going] [--bug ${knownBugNames.join('|')}]\n`,
  )
  process.exit(2)
}

/** One history event per line, keys in the documented order. */
export function historyToJsonLines(history: readonly HistoryEvent[]): string {
  return history
    .map((e) =>
      JSON.stringify({ process: e.process, type: e.type, f: e.f, key: e.key, value: e.value, time: e.time }),
    )
    .join('\n')
    .concat(history.length > 0 ? '\n' : '')
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string' },
      seed: { type: 'string' },
      'history-out': { type: 'string' },
      nodes: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      bug: { type: 'string', multiple: true },
      'trace-lines': { type: 'string' },
      'keep-going': { type: 'boolean', default: false },
      driver: { type: 'string' },
      faults: { type: 'string' },
      'reorder-after-heal': { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  })
  if (values.seeds === undefined) usage('--seeds is required')
  const seeds = Number(values.seeds)
  if (!Number.isInteger(seeds) || seeds < 1) usage(`--seeds must be a positive integer, got ${values.seeds}`)
  let base: number
  if (values.seed !== undefined) {
    base = Number(values.seed)
    if (!Number.isSafeInteger(base) || base < 0)
      usage(`--seed must be a non-negative integer, got ${values.seed}`)
  } else {
    // The one place the simulator reads the wall clock: to pick a base seed, printed so it replays.
    base = Date.now() % 1_000_000_000
    process.stdout.write(`sim: base seed ${base} (replay with --seed ${base})\n`)
  }
  let nodes: 3 | 5 | undefined
  if (values.nodes !== undefined) {
    if (values.nodes !== '3' && values.nodes !== '5') usage('--nodes must be 3 or 5')
    nodes = Number(values.nodes) as 3 | 5
  }
  const bugs = new Set<KnownBug>()
  for (const b of values.bug ?? []) {
    if (!knownBugNames.includes(b as KnownBug)) usage(`unknown --bug ${b}`)
    bugs.add(b as KnownBug)
  }
  const traceLines = values['trace-lines'] !== undefined ? Number(values['trace-lines']) : 200
  const verbose = values.verbose
  const faults = values.faults ?? 'swarm'
  if (faults !== 'swarm' && faults !== 'figure8') usage('--faults must be swarm or figure8')
  const driver = values.driver ?? 'group'
  if (driver !== 'group' && driver !== 'raw') usage('--driver must be group or raw')

  const keepGoing = values['keep-going']
  // The healed network stays healthy but may reorder (the RaftTransport contract allows it).
  const reorder = values['reorder-after-heal']
    ? { healedNetwork: { ...healthyNetwork, fifo: false } }
    : undefined
  const knobOverrides =
    faults === 'figure8'
      ? { ...figure8Faults, ...(nodes !== undefined ? { nodes } : {}), ...reorder }
      : reorder
  const started = performance.now()
  let lastProgress = started
  let last: SimResult | undefined
  const failures: string[] = []
  const totals = { okOps: 0, infoOps: 0, crashes: 0, partitions: 0, linearizabilityUnknown: 0 }
  for (let i = 0; i < seeds; i++) {
    const seed = base + i
    const result = await runSimulation({
      seed,
      ...(nodes !== undefined ? { nodes } : {}),
      ...(bugs.size > 0 ? { knownBugs: bugs } : {}),
      traceKeep: traceLines,
      driver,
      ...(knobOverrides !== undefined ? { knobOverrides } : {}),
      ...(verbose ? { onTrace: (line: string) => process.stdout.write(`${line}\n`) } : {}),
    })
    last = result
    totals.okOps += result.stats.okOps
    totals.infoOps += result.stats.infoOps
    totals.crashes += result.stats.crashes
    totals.partitions += result.stats.partitions
    totals.linearizabilityUnknown += result.stats.linearizabilityUnknown
    if (result.violation !== undefined && keepGoing) {
      const line = `SEED=${seed} ${result.violation.kind}: ${result.violation.message.split('\n')[0]}`
      failures.push(line)
      process.stdout.write(`${line}\n`)
    } else if (result.violation !== undefined) {
      if (values['history-out'] !== undefined)
        writeFileSync(values['history-out'], historyToJsonLines(result.history))
      const replay = `npm run sim -- --seeds 1 --seed ${seed}${driver === 'raw' ? ' --driver raw' : ''}${faults !== 'swarm' ? ` --faults ${faults}` : ''}${values['reorder-after-heal'] ? ' --reorder-after-heal' : ''}${nodes !== undefined ? ` --nodes ${nodes}` : ''}${[
        ...bugs,
      ]
        .map((b) => ` --bug ${b}`)
        .join('')} --verbose`
      process.stdout.write(
        [
          '',
          `SEED=${seed}`,
          `violation: ${result.violation.kind}`,
          result.violation.message,
          `knobs: ${JSON.stringify(result.knobs)}`,
          `trace (last ${result.trace.length} lines, hash ${result.traceHash}):`,
          ...result.trace.map((l) => `  ${l}`),
          `SEED=${seed} ${result.violation.kind}`,
          `replay: ${replay}`,
          `sim: ${i + 1} seeds, 1 violation`,
          '',
        ].join('\n'),
      )
      process.exitCode = 1
      return
    }
    const now = performance.now()
    if (!verbose && (now - lastProgress > 2000 || i === seeds - 1) && seeds > 1) {
      lastProgress = now
      const elapsed = (now - started) / 1000
      process.stderr.write(
        `sim: ${i + 1}/${seeds} seeds ${failures.length > 0 ? `run (${failures.length} failed)` : 'ok'}, ${elapsed.toFixed(1)} s, ${((elapsed * 1000) / (i + 1)).toFixed(1)} ms/seed\n`,
      )
    }
  }
  if (values['history-out'] !== undefined && last !== undefined) {
    writeFileSync(values['history-out'], historyToJsonLines(last.history))
  }
  const elapsed = (performance.now() - started) / 1000
  process.stdout.write(
    `sim: ${seeds} seeds in ${elapsed.toFixed(1)} s: ${totals.okOps} ok ops, ${totals.infoOps} indeterminate, ${totals.crashes} crashes, ${totals.partitions} partitions; linearizability undecided (search budget) in ${totals.linearizabilityUnknown} seeds\n`,
  )
  if (failures.length > 0) process.exitCode = 1
  process.stdout.write(`sim: ${seeds} seeds, ${failures.length} violations\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`sim: crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exitCode = 1
})
