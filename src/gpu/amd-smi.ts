/**
 * The amd-smi driver (ROCm 6 and later, rocm-smi's successor). Two commands:
 * - `amd-smi static --asic --bus --vram --json`: per GPU the market name, the ASIC serial (the 64-bit
 *   unique id that rocminfo and ROCR_VISIBLE_DEVICES call `GPU-<hex>`), the PCI address and VRAM size;
 *   read at discovery and again when the set of GPUs changes.
 * - `amd-smi metric --usage --mem-usage --temperature --power --json`: use, VRAM, temperature, power;
 *   read at every sample.
 *
 * The JSON is a bare list `[{"gpu": 0, …}]` in ROCm 6.x and `{"gpu_data": [{"gpu": 0, …}]}` in later
 * releases; values are `{"value": 42, "unit": "%"}`, or the string "N/A" (null). Memory units are
 * printed "MB" but are MiB (amd-smi divides bytes by 1024²). amd-smi exits 255 with "Driver not loaded
 * (amdgpu not found in modules)" on stderr when the driver is missing (amdsmi_init.py).
 */
import { describeOutcome } from './run.js'
import type { ToolReadOptions } from './nvidia.js'
import type { DeviceReading, DriverReading } from './types.js'
import { amdUuid, isRecord, parseToolJson } from './json-output.js'
import { numberOrNull, textOrNull } from './values.js'

export const AMD_SMI_STATIC_ARGS = ['static', '--asic', '--bus', '--vram', '--json'] as const
export const AMD_SMI_METRIC_ARGS = [
  'metric',
  '--usage',
  '--mem-usage',
  '--temperature',
  '--power',
  '--json',
] as const

export interface AmdStatic {
  readonly gpu: number
  readonly model: string
  readonly uuid: string | null
  readonly busId: string | null
  readonly memoryTotalMiB: number | null
}

export interface AmdMetric {
  readonly gpu: number
  readonly utilizationPct: number | null
  readonly memoryTotalMiB: number | null
  readonly memoryUsedMiB: number | null
  readonly temperatureC: number | null
  readonly powerW: number | null
  readonly errors: readonly string[]
}

type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string }

/** The per-GPU entries of a document, bare or wrapped in gpu_data. */
export function amdSmiEntries(doc: unknown, what: string): Parsed<Record<string, unknown>[]> {
  const list = Array.isArray(doc)
    ? doc
    : isRecord(doc) && Array.isArray(doc['gpu_data'])
      ? doc['gpu_data']
      : null
  if (list === null)
    return {
      ok: false,
      reason: `amd-smi ${what} printed JSON that is neither a list nor {"gpu_data": [...]}`,
    }
  const entries: Record<string, unknown>[] = []
  for (const e of list) {
    if (!isRecord(e) || typeof e['gpu'] !== 'number' || !Number.isInteger(e['gpu']) || e['gpu'] < 0) {
      return { ok: false, reason: `amd-smi ${what} printed an entry without a GPU number` }
    }
    entries.push(e)
  }
  return { ok: true, value: entries }
}

/** A leaf value: `{"value": 42, "unit": "%"}`, a bare number, "42 %", or "N/A". undefined: unreadable. */
export function amdValue(
  leaf: unknown,
  unitScale: Readonly<Record<string, number>> = {},
): number | null | undefined {
  if (leaf === undefined || leaf === null) return null
  if (typeof leaf === 'number') return Number.isFinite(leaf) ? leaf : undefined
  if (isRecord(leaf)) {
    const n = amdValue(leaf['value'])
    const unit = typeof leaf['unit'] === 'string' ? leaf['unit'] : ''
    return n === null || n === undefined ? n : n * (unitScale[unit] ?? 1)
  }
  if (typeof leaf === 'string') {
    const m = /^\s*([0-9.]+)\s*(\S*)\s*$/.exec(leaf)
    if (m !== null) {
      const n = numberOrNull(m[1]!)
      return n === null || n === undefined ? n : n * (unitScale[m[2]!] ?? 1)
    }
    return numberOrNull(leaf)
  }
  return undefined
}

const MEMORY_UNITS = { MB: 1, MiB: 1, GB: 1024, GiB: 1024 }

function path(entry: Record<string, unknown>, ...keys: string[]): unknown {
  let v: unknown = entry
  for (const k of keys) v = isRecord(v) ? v[k] : undefined
  return v
}

export function parseAmdSmiStatic(doc: unknown): Parsed<AmdStatic[]> {
  const entries = amdSmiEntries(doc, 'static')
  if (!entries.ok) return entries
  const seen = new Set<string>()
  return {
    ok: true,
    value: entries.value.map((e) => {
      const name = path(e, 'asic', 'market_name')
      const serial = path(e, 'asic', 'asic_serial')
      const bdf = path(e, 'bus', 'bdf')
      let uuid = amdUuid(typeof serial === 'string' ? serial : null)
      if (uuid !== null && seen.has(uuid)) uuid = null
      if (uuid !== null) seen.add(uuid)
      const size = amdValue(path(e, 'vram', 'size'), MEMORY_UNITS)
      return {
        gpu: e['gpu'] as number,
        model: (typeof name === 'string' ? textOrNull(name) : null) ?? 'AMD GPU',
        uuid,
        busId: typeof bdf === 'string' ? textOrNull(bdf) : null,
        memoryTotalMiB: size === undefined || size === null ? null : Math.floor(size),
      }
    }),
  }
}

export function parseAmdSmiMetric(doc: unknown): Parsed<AmdMetric[]> {
  const entries = amdSmiEntries(doc, 'metric')
  if (!entries.ok) return entries
  return {
    ok: true,
    value: entries.value.map((e) => {
      const errors: string[] = []
      const read = (name: string, leaf: unknown, scale?: Readonly<Record<string, number>>): number | null => {
        const n = amdValue(leaf, scale)
        if (n === undefined) {
          errors.push(`${name} is ${JSON.stringify(leaf)?.slice(0, 60)}`)
          return null
        }
        return n
      }
      const power = path(e, 'power', 'socket_power') ?? path(e, 'power', 'average_socket_power')
      const edge = path(e, 'temperature', 'edge')
      return {
        gpu: e['gpu'] as number,
        utilizationPct: read('usage.gfx_activity', path(e, 'usage', 'gfx_activity')),
        memoryTotalMiB: read('mem_usage.total_vram', path(e, 'mem_usage', 'total_vram'), MEMORY_UNITS),
        memoryUsedMiB: read('mem_usage.used_vram', path(e, 'mem_usage', 'used_vram'), MEMORY_UNITS),
        temperatureC: read('temperature', amdValue(edge) === null ? path(e, 'temperature', 'hotspot') : edge),
        powerW: read('power.socket_power', power),
        errors,
      }
    }),
  }
}

/** Joins static and metric entries by GPU number into devices. */
export function amdSmiDevices(statics: readonly AmdStatic[], metrics: readonly AmdMetric[]): DeviceReading[] {
  return [...statics]
    .sort((a, b) => a.gpu - b.gpu)
    .map((s) => {
      const m = metrics.find((x) => x.gpu === s.gpu)
      const memoryTotalMiB = s.memoryTotalMiB ?? m?.memoryTotalMiB ?? null
      return {
        uuid: s.uuid ?? `AMD-gpu${s.gpu}`,
        index: s.gpu,
        vendor: 'amd' as const,
        model: s.model,
        busId: s.busId,
        memoryTotalMiB: memoryTotalMiB === null ? null : Math.floor(memoryTotalMiB),
        memoryUsedMiB: m?.memoryUsedMiB ?? null,
        utilizationPct: m?.utilizationPct ?? null,
        temperatureC: m?.temperatureC ?? null,
        powerW: m?.powerW ?? null,
        visible: { env: 'ROCR_VISIBLE_DEVICES' as const, value: s.uuid ?? String(s.gpu) },
        mig: null,
        error:
          m === undefined
            ? `amd-smi metric did not list GPU ${s.gpu}`
            : m.errors.length === 0
              ? null
              : m.errors.join('; '),
      }
    })
}

/**
 * A reader that keeps the static part between readings: it runs `static` first, and again whenever
 * `metric` lists another set of GPU numbers than the static part it holds.
 */
export function createAmdSmiReader(
  opts: Omit<ToolReadOptions, 'signal'>,
): (signal?: AbortSignal) => Promise<DriverReading> {
  const command = opts.command ?? 'amd-smi'
  let statics: AmdStatic[] | null = null
  const runJson = async (
    args: readonly string[],
    what: string,
    signal?: AbortSignal,
  ): Promise<Parsed<unknown> & { missing?: boolean }> => {
    const out = await opts.run(command, args, {
      timeoutMs: opts.timeoutMs,
      outputBytesMax: opts.outputBytesMax,
      signal,
    })
    if (out.kind === 'missing') return { ok: false, reason: describeOutcome(command, out), missing: true }
    if (out.kind !== 'exited' || out.code !== 0)
      return { ok: false, reason: describeOutcome(`${command} ${what}`, out) }
    const doc = parseToolJson(`${command} ${what}`, out.stdout, out.stderr)
    return doc.ok ? { ok: true, value: doc.value } : doc
  }
  const readStatic = async (signal?: AbortSignal): Promise<DriverReading | null> => {
    const doc = await runJson(AMD_SMI_STATIC_ARGS, 'static', signal)
    if (!doc.ok) return { ok: false, kind: doc.missing === true ? 'missing' : 'failed', reason: doc.reason }
    const parsed = parseAmdSmiStatic(doc.value)
    if (!parsed.ok) return { ok: false, kind: 'failed', reason: parsed.reason }
    statics = parsed.value
    return null
  }
  return async (signal) => {
    if (statics === null) {
      const failed = await readStatic(signal)
      if (failed !== null) return failed
    }
    const doc = await runJson(AMD_SMI_METRIC_ARGS, 'metric', signal)
    if (!doc.ok) return { ok: false, kind: doc.missing === true ? 'missing' : 'failed', reason: doc.reason }
    const metrics = parseAmdSmiMetric(doc.value)
    if (!metrics.ok) return { ok: false, kind: 'failed', reason: metrics.reason }
    const same = (a: readonly { gpu: number }[], b: readonly { gpu: number }[]): boolean =>
      a.length === b.length && a.every((x) => b.some((y) => y.gpu === x.gpu))
    if (!same(statics!, metrics.value)) {
      const failed = await readStatic(signal)
      if (failed !== null) return failed
    }
    return { ok: true, devices: amdSmiDevices(statics!, metrics.value), driverVersion: null }
  }
}
