/**
 * The NVIDIA driver: `nvidia-smi --query-gpu=… --format=csv,noheader,nounits` for every GPU, and
 * `nvidia-smi -L` for the MIG instances of GPUs in MIG mode.
 *
 * The CSV has no quoting: fields are separated by ", " (a model name has spaces but, in practice, no
 * comma), so a line with another number of fields than asked for cannot be trusted and makes every GPU
 * unhealthy. `[N/A]` and `[Not Supported]` are null. Any other bracketed value (`[Unknown Error]`,
 * `[GPU requires reset]`) is that GPU reporting an error: it becomes unhealthy with the field named.
 *
 * A GPU in MIG mode is not scheduled whole: its MIG instances are (CUDA_VISIBLE_DEVICES takes their
 * UUIDs, in both the current `MIG-<uuid>` form and the `MIG-GPU-<uuid>/<gi>/<ci>` form of drivers
 * before R470). nvidia-smi gives no per-instance memory in the query, so an instance's memory is the
 * size in its profile name (`3g.20gb` → 20480 MiB; the usable size is a few percent less).
 */
import { describeOutcome, type CommandRunner } from './run.js'
import type { DeviceReading, DriverReading } from './types.js'
import { clip, numberOrNull, textOrNull } from './values.js'

export const NVIDIA_QUERY_FIELDS = [
  'index',
  'uuid',
  'name',
  'pci.bus_id',
  'memory.total',
  'memory.used',
  'utilization.gpu',
  'temperature.gpu',
  'power.draw',
  'compute_mode',
  'mig.mode.current',
  'driver_version',
] as const

export const NVIDIA_QUERY_ARGS = [
  `--query-gpu=${NVIDIA_QUERY_FIELDS.join(',')}`,
  '--format=csv,noheader,nounits',
] as const
export const NVIDIA_LIST_ARGS = ['-L'] as const

/**
 * nvidia-smi's exit status is NVML's return code (nvml.h `nvmlReturn_t`; the man page's RETURN VALUE
 * lists most of them): what each means, for health reasons.
 */
export const NVIDIA_EXIT_CODES: Readonly<Record<number, string>> = {
  2: 'invalid argument (a driver too old for the query fields?)',
  3: 'operation not available on the device',
  4: 'insufficient permission',
  6: 'a query found no such object',
  8: "a GPU's external power cables are not attached",
  9: 'NVIDIA driver is not loaded',
  10: 'the NVIDIA kernel detected an interrupt issue with a GPU',
  12: 'NVML shared library not found',
  13: 'NVML does not implement this function',
  14: 'infoROM is corrupted',
  15: 'a GPU has fallen off the bus or is otherwise inaccessible',
  16: 'a GPU requires a reset',
  17: 'an operating system call failed',
  18: 'driver/library version mismatch',
  255: 'other error or internal driver error',
}

export interface NvidiaQueryRow {
  readonly index: number
  readonly uuid: string
  readonly name: string
  readonly busId: string | null
  readonly memoryTotalMiB: number | null
  readonly memoryUsedMiB: number | null
  readonly utilizationPct: number | null
  readonly temperatureC: number | null
  readonly powerW: number | null
  /** Default, Exclusive_Process, Exclusive_Thread, Prohibited; null when not given. */
  readonly computeMode: string | null
  /** null: the GPU does not support MIG. */
  readonly migEnabled: boolean | null
  readonly driverVersion: string | null
  /** Fields this GPU reported in error; empty when none. */
  readonly errors: readonly string[]
}

export type ParseResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string }

const NUMERIC = {
  'memory.total': 'memoryTotalMiB',
  'memory.used': 'memoryUsedMiB',
  'utilization.gpu': 'utilizationPct',
  'temperature.gpu': 'temperatureC',
  'power.draw': 'powerW',
} as const

/** Parses the query CSV. Blank lines are skipped; any malformed line fails the whole reading. */
export function parseNvidiaQuery(stdout: string): ParseResult<NvidiaQueryRow[]> {
  const rows: NvidiaQueryRow[] = []
  const seen = new Set<string>()
  for (const raw of stdout.split(/\r?\n/)) {
    if (raw.trim() === '') continue
    const cells = raw.split(', ')
    if (cells.length !== NVIDIA_QUERY_FIELDS.length) {
      return {
        ok: false,
        reason: `nvidia-smi printed a line with ${cells.length} fields, expected ${NVIDIA_QUERY_FIELDS.length}: '${clip(raw)}'`,
      }
    }
    const field = (name: (typeof NVIDIA_QUERY_FIELDS)[number]): string =>
      cells[NVIDIA_QUERY_FIELDS.indexOf(name)]!.trim()
    const index = Number(field('index'))
    if (!/^\d{1,4}$/.test(field('index')) || !Number.isInteger(index)) {
      return { ok: false, reason: `nvidia-smi printed a GPU index that is not a number: '${clip(raw)}'` }
    }
    const uuid = field('uuid')
    if (!/^GPU-[0-9A-Fa-f-]{8,64}$/.test(uuid) || seen.has(uuid)) {
      return {
        ok: false,
        reason: `nvidia-smi printed a missing, malformed or repeated GPU UUID: '${clip(raw)}'`,
      }
    }
    seen.add(uuid)
    const errors: string[] = []
    const numbers: Record<string, number | null> = {}
    for (const [name, key] of Object.entries(NUMERIC)) {
      const text = field(name as keyof typeof NUMERIC)
      const n = numberOrNull(text)
      if (n === undefined) {
        errors.push(`${name} is '${clip(text, 60)}'`)
        numbers[key] = null
      } else numbers[key] = n
    }
    for (const name of [
      'name',
      'pci.bus_id',
      'compute_mode',
      'mig.mode.current',
      'driver_version',
    ] as const) {
      const text = field(name)
      if (/^\[.*\]$/.test(text) && textOrNull(text) !== null) errors.push(`${name} is '${clip(text, 60)}'`)
    }
    const computeMode = bracketFree(field('compute_mode'))
    if (computeMode === 'Prohibited') errors.push('compute mode is Prohibited (no process may use it)')
    const mig = bracketFree(field('mig.mode.current'))
    rows.push({
      index,
      uuid,
      name: bracketFree(field('name')) ?? 'NVIDIA GPU',
      busId: bracketFree(field('pci.bus_id')),
      memoryTotalMiB: numbers['memoryTotalMiB'] ?? null,
      memoryUsedMiB: numbers['memoryUsedMiB'] ?? null,
      utilizationPct: numbers['utilizationPct'] ?? null,
      temperatureC: numbers['temperatureC'] ?? null,
      powerW: numbers['powerW'] ?? null,
      computeMode,
      migEnabled: mig === 'Enabled' ? true : mig === 'Disabled' ? false : null,
      driverVersion: bracketFree(field('driver_version')),
      errors,
    })
  }
  return { ok: true, value: rows }
}

/** A value, or null when unavailable or an error placeholder (reported separately). */
function bracketFree(text: string): string | null {
  const t = textOrNull(text)
  return t === null || /^\[.*\]$/.test(t) ? null : t
}

export interface NvidiaListedGpu {
  readonly index: number
  readonly name: string
  readonly uuid: string
  readonly mig: readonly { readonly profile: string; readonly deviceIndex: number; readonly uuid: string }[]
}

const LIST_GPU = /^GPU (\d+): (.+) \(UUID: (GPU-[0-9A-Fa-f-]+)\)\s*$/
// "  MIG 1g.10gb     Device  0: (UUID: MIG-feb8…)" and the older "  MIG 3g.20gb Device 0: (UUID: MIG-GPU-…/1/0)".
const LIST_MIG =
  /^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s+\(UUID:\s+(MIG-(?:GPU-[0-9A-Fa-f-]+\/\d+\/\d+|[0-9A-Fa-f-]+))\)\s*$/

/** Parses `nvidia-smi -L`. Lines of other shapes (none are known today) are ignored. */
export function parseNvidiaList(stdout: string): ParseResult<NvidiaListedGpu[]> {
  const gpus: { index: number; name: string; uuid: string; mig: NvidiaListedGpu['mig'][number][] }[] = []
  for (const line of stdout.split(/\r?\n/)) {
    const g = LIST_GPU.exec(line)
    if (g !== null) {
      gpus.push({ index: Number(g[1]), name: g[2]!.trim(), uuid: g[3]!, mig: [] })
      continue
    }
    const m = LIST_MIG.exec(line)
    if (m !== null) {
      const parent = gpus.at(-1)
      if (parent === undefined)
        return { ok: false, reason: `nvidia-smi -L listed a MIG device before any GPU: '${clip(line)}'` }
      parent.mig.push({ profile: m[1]!, deviceIndex: Number(m[2]), uuid: m[3]! })
    }
  }
  return { ok: true, value: gpus }
}

/** Nominal memory of a MIG profile from its name: `1g.10gb`, `1c.3g.71gb`, `1g.10gb+me` → GB × 1024. */
export function migProfileMiB(profile: string): number | null {
  const m = /(\d+)gb/i.exec(profile)
  return m === null ? null : Number(m[1]) * 1024
}

/** The schedulable devices: whole GPUs not in MIG mode, and the MIG instances of those that are. */
export function nvidiaDevices(
  rows: readonly NvidiaQueryRow[],
  listed: readonly NvidiaListedGpu[],
): DeviceReading[] {
  const out: DeviceReading[] = []
  for (const row of rows) {
    const error = row.errors.length === 0 ? null : row.errors.join('; ')
    if (row.migEnabled !== true) {
      out.push({
        uuid: row.uuid,
        index: row.index,
        vendor: 'nvidia',
        model: row.name,
        busId: row.busId,
        memoryTotalMiB: row.memoryTotalMiB,
        memoryUsedMiB: row.memoryUsedMiB,
        utilizationPct: row.utilizationPct,
        temperatureC: row.temperatureC,
        powerW: row.powerW,
        visible: { env: 'CUDA_VISIBLE_DEVICES', value: row.uuid },
        mig: null,
        error,
      })
      continue
    }
    const parent = listed.find((g) => g.uuid === row.uuid)
    for (const inst of parent?.mig ?? []) {
      out.push({
        uuid: inst.uuid,
        index: row.index,
        vendor: 'nvidia',
        model: `${row.name} MIG ${inst.profile}`,
        busId: row.busId,
        memoryTotalMiB: migProfileMiB(inst.profile),
        memoryUsedMiB: null,
        utilizationPct: null,
        temperatureC: row.temperatureC,
        powerW: row.powerW,
        visible: { env: 'CUDA_VISIBLE_DEVICES', value: inst.uuid },
        mig: { parentUuid: row.uuid, profile: inst.profile, deviceIndex: inst.deviceIndex },
        error,
      })
    }
  }
  return out
}

export interface ToolReadOptions {
  readonly run: CommandRunner
  readonly command?: string
  readonly timeoutMs: number
  readonly outputBytesMax: number
  readonly signal?: AbortSignal
}

/** One reading: the query, then `-L` when a GPU is in MIG mode. */
export async function readNvidia(opts: ToolReadOptions): Promise<DriverReading> {
  const command = opts.command ?? 'nvidia-smi'
  const runOpts = { timeoutMs: opts.timeoutMs, outputBytesMax: opts.outputBytesMax, signal: opts.signal }
  const query = await opts.run(command, NVIDIA_QUERY_ARGS, runOpts)
  if (query.kind === 'missing') return { ok: false, kind: 'missing', reason: describeOutcome(command, query) }
  if (query.kind !== 'exited' || query.code !== 0)
    return { ok: false, kind: 'failed', reason: nvidiaFailure(command, query) }
  const rows = parseNvidiaQuery(query.stdout)
  if (!rows.ok) return { ok: false, kind: 'failed', reason: rows.reason }
  let listed: NvidiaListedGpu[] = []
  if (rows.value.some((r) => r.migEnabled === true)) {
    const list = await opts.run(command, NVIDIA_LIST_ARGS, runOpts)
    if (list.kind !== 'exited' || list.code !== 0)
      return { ok: false, kind: 'failed', reason: nvidiaFailure(`${command} -L`, list) }
    const parsed = parseNvidiaList(list.stdout)
    if (!parsed.ok) return { ok: false, kind: 'failed', reason: parsed.reason }
    listed = parsed.value
  }
  return {
    ok: true,
    devices: nvidiaDevices(rows.value, listed),
    driverVersion: rows.value[0]?.driverVersion ?? null,
  }
}

function nvidiaFailure(command: string, outcome: Parameters<typeof describeOutcome>[1]): string {
  const text = describeOutcome(command, outcome)
  if (outcome.kind !== 'exited') return text
  const meaning = NVIDIA_EXIT_CODES[outcome.code]
  return meaning === undefined
    ? text
    : text.replace(`exited ${outcome.code}`, `exited ${outcome.code} (${meaning})`)
}
