/**
 * The rocm-smi driver: `rocm-smi --showproductname --showmeminfo vram --showuse --showtemp
 * --showuniqueid --showbus --showpower --json` prints `{"card0": {...}, "card1": {...}, "system": {...}}`
 * with every value a string. Key names change between ROCm versions ("Card series" in ROCm 5,
 * "Card Series" in 6; "Temperature (Sensor edge) (C)" and, in ROCm 2, "(c)"; "Average Graphics Package
 * Power (W)" and later "Current Socket Graphics Package Power (W)"), so values are found by pattern,
 * case-insensitively. "N/A" is null.
 *
 * rocm-smi without the amdgpu driver logs "Driver not initialized (amdgpu not found in modules)" on
 * stderr and exits 0 (rocm_smi.py, initializeRsmi): no JSON on stdout is a failed reading whatever the
 * exit status.
 */
import { describeOutcome } from './run.js'
import type { ToolReadOptions } from './nvidia.js'
import type { DeviceReading, DriverReading } from './types.js'
import { amdUuid, isRecord, parseToolJson } from './json-output.js'
import { MIB, numberOrNull, textOrNull } from './values.js'

export const ROCM_SMI_ARGS = [
  '--showproductname',
  '--showmeminfo',
  'vram',
  '--showuse',
  '--showtemp',
  '--showuniqueid',
  '--showbus',
  '--showpower',
  '--json',
] as const

/** Patterns for each value, in order of preference. */
const KEYS = {
  model: [/^card series$/i, /^device name$/i, /^card model$/i],
  memoryTotalB: [/^vram total memory \(b\)$/i],
  memoryUsedB: [/^vram total used memory \(b\)$/i],
  utilizationPct: [/^gpu use \(%\)$/i],
  temperatureC: [
    /^temperature \(sensor edge\) \(c\)$/i,
    /^temperature \(sensor junction\) \(c\)$/i,
    /^temperature \(sensor [^)]*\) \(c\)$/i,
  ],
  powerW: [/^(average|current socket) graphics package power \(w\)$/i, /^power \(w\)$/i],
  uniqueId: [/^unique id$/i],
  busId: [/^pci bus$/i],
} as const

function find(card: Record<string, unknown>, patterns: readonly RegExp[]): string | null {
  for (const p of patterns) {
    for (const [key, value] of Object.entries(card)) {
      if (p.test(key.trim()) && typeof value === 'string') {
        const t = textOrNull(value)
        if (t !== null) return t
      }
    }
  }
  return null
}

/** Parses rocm-smi's JSON document into devices (ordered by card number). */
export function parseRocmSmi(
  doc: unknown,
): { ok: true; devices: DeviceReading[] } | { ok: false; reason: string } {
  if (!isRecord(doc)) return { ok: false, reason: 'rocm-smi printed JSON that is not an object of cards' }
  const cards = Object.entries(doc)
    .map(([key, value]) => ({ m: /^card(\d+)$/.exec(key), value }))
    .filter((c): c is { m: RegExpExecArray; value: unknown } => c.m !== null)
    .sort((a, b) => Number(a.m[1]) - Number(b.m[1]))
  const devices: DeviceReading[] = []
  const uuids = new Set<string>()
  for (const { m, value } of cards) {
    if (!isRecord(value))
      return { ok: false, reason: `rocm-smi printed ${m[0]} as something other than an object` }
    const index = Number(m[1])
    const errors: string[] = []
    const num = (name: string, patterns: readonly RegExp[]): number | null => {
      const text = find(value, patterns)
      if (text === null) return null
      const n = numberOrNull(text)
      if (n === undefined) {
        errors.push(`${name} is '${text.slice(0, 60)}'`)
        return null
      }
      return n
    }
    const memTotal = num('VRAM total', KEYS.memoryTotalB)
    const memUsed = num('VRAM used', KEYS.memoryUsedB)
    let model = find(value, KEYS.model)
    // Older ROCm printed the PCI device id as "Card model" ("0x0b0c"); a name is better than that.
    if (model === null || /^0x[0-9a-f]+$/i.test(model)) model = find(value, [/^card series$/i]) ?? 'AMD GPU'
    const busId = find(value, KEYS.busId)
    let uuid = amdUuid(find(value, KEYS.uniqueId))
    if (uuid !== null && uuids.has(uuid)) uuid = null // two cards with one id: fall back to the index for both
    const key = uuid ?? `AMD-card${index}`
    if (uuid !== null) uuids.add(uuid)
    devices.push({
      uuid: key,
      index,
      vendor: 'amd',
      model,
      busId,
      memoryTotalMiB: memTotal === null ? null : Math.floor(memTotal / MIB),
      memoryUsedMiB: memUsed === null ? null : Math.floor(memUsed / MIB),
      utilizationPct: num('GPU use', KEYS.utilizationPct),
      temperatureC: num('temperature', KEYS.temperatureC),
      powerW: num('power', KEYS.powerW),
      visible: { env: 'ROCR_VISIBLE_DEVICES', value: uuid ?? String(index) },
      mig: null,
      error: errors.length === 0 ? null : errors.join('; '),
    })
  }
  return { ok: true, devices }
}

export async function readRocmSmi(opts: ToolReadOptions): Promise<DriverReading> {
  const command = opts.command ?? 'rocm-smi'
  const out = await opts.run(command, ROCM_SMI_ARGS, {
    timeoutMs: opts.timeoutMs,
    outputBytesMax: opts.outputBytesMax,
    signal: opts.signal,
  })
  if (out.kind === 'missing') return { ok: false, kind: 'missing', reason: describeOutcome(command, out) }
  if (out.kind !== 'exited' || out.code !== 0)
    return { ok: false, kind: 'failed', reason: describeOutcome(command, out) }
  const doc = parseToolJson(command, out.stdout, out.stderr)
  if (!doc.ok) return { ok: false, kind: 'failed', reason: doc.reason }
  const parsed = parseRocmSmi(doc.value)
  if (!parsed.ok) return { ok: false, kind: 'failed', reason: parsed.reason }
  const system = isRecord(doc.value) && isRecord(doc.value['system']) ? doc.value['system'] : {}
  return { ok: true, devices: parsed.devices, driverVersion: find(system, [/^driver version$/i]) }
}
