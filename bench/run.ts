// `npm run bench -- NAME [--quick] [args...]`: runs bench/NAME/index.ts, prints its table and writes
// bench/results/NAME.json. Benchmarks never run in the test suite.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { formatReport, hostInfo, type Bench, type BenchReport } from './harness.js'

const benchDir = dirname(fileURLToPath(import.meta.url))

function available(): string[] {
  return readdirSync(benchDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(benchDir, d.name, 'index.ts')))
    .map((d) => d.name)
    .sort()
}

async function main(argv: string[]): Promise<number> {
  const name = argv.find((a) => !a.startsWith('-'))
  const quick = argv.includes('--quick')
  const args = argv.filter((a) => a !== name && a !== '--quick')
  if (name === undefined || !/^[a-z0-9][a-z0-9-]*$/.test(name) || !available().includes(name)) {
    process.stderr.write(
      `bench: ${name === undefined ? 'name a benchmark' : `no benchmark '${name}'`}; available: ${available().join(', ')}\n`,
    )
    return 2
  }
  const mod = (await import(pathToFileURL(join(benchDir, name, 'index.ts')).href)) as { default?: Bench }
  if (typeof mod.default !== 'function') {
    process.stderr.write(`bench: bench/${name}/index.ts does not default-export a benchmark function\n`)
    return 2
  }
  process.stdout.write(`bench: running ${name}${quick ? ' (quick)' : ''}...\n`)
  const raw = await mod.default({ quick, args })
  // Fill what a benchmark may leave out, so every result file has the same shape.
  const report: BenchReport = {
    ...raw,
    name: raw.name ?? name,
    quick: raw.quick ?? quick,
    startedAt: raw.startedAt ?? new Date().toISOString(),
    host: raw.host ?? hostInfo(),
    rows: raw.rows ?? [],
    baseline: raw.baseline ?? [],
    ratios: raw.ratios ?? [],
    notes: raw.notes ?? [],
  }
  if (report.baseline.length === 0) report.notes.push('WARNING: no baseline was measured in this run')
  process.stdout.write(formatReport(report) + '\n')
  const outDir = join(benchDir, 'results')
  mkdirSync(outDir, { recursive: true })
  const out = join(outDir, `${name}.json`)
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n')
  process.stdout.write(`\nbench: wrote ${out}\n`)
  return 0
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  },
)
