import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { checkHistory, type HistoryEvent } from './linearizability.js'

const dir = mkdtempSync(join(tmpdir(), 'hopsd-sim-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function sim(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/sim/cli.ts', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('npm run sim (the CLI other tools parse)', () => {
  it('ends with "sim: N seeds, 0 violations" and writes the history as JSON lines', () => {
    const out = join(dir, 'history.jsonl')
    const r = sim(['--seeds', '2', '--seed', '11', '--history-out', out])
    expect(r.status, r.stdout + r.stderr).toBe(0)
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines[lines.length - 1]).toBe('sim: 2 seeds, 0 violations')

    const text = readFileSync(out, 'utf8')
    const events = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as HistoryEvent)
    expect(events.length).toBeGreaterThan(10)
    for (const e of events) {
      expect(Object.keys(e)).toEqual(['process', 'type', 'f', 'key', 'value', 'time'])
      expect(['invoke', 'ok', 'fail', 'info']).toContain(e.type)
      expect(['read', 'write', 'cas']).toContain(e.f)
      expect(typeof e.process).toBe('number')
      expect(typeof e.key).toBe('string')
      expect(typeof e.time).toBe('number')
      if (e.f === 'cas') expect(Array.isArray(e.value) && e.value.length === 2).toBe(true)
    }
    expect(events.some((e) => e.f === 'cas')).toBe(true)
    expect(checkHistory(events).result).toBe('ok')
  })

  it('prints SEED=, the violation and a replay command, and exits 1, on a failing seed', () => {
    const r = sim(['--seeds', '3', '--seed', '1', '--bug', 'ack-before-fsync'])
    expect(r.status).toBe(1)
    expect(r.stdout).toMatch(/^SEED=1$/m)
    expect(r.stdout).toContain('violation: durability')
    expect(r.stdout).toContain('replay: npm run sim -- --seeds 1 --seed 1 --bug ack-before-fsync --verbose')
    expect(r.stdout).not.toContain('0 violations')
  })
})
