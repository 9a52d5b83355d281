/**
 * The `--gpus` setting: which driver finds this host's GPUs. Parsed once at the edge (the config table
 * in src/node/config.ts calls {@link parseGpuSpec}); inside, a {@link GpuSpec} is trusted.
 *
 * Forms (a string from a flag, variable or file; or, from the file, a list of declared GPUs):
 * - `auto`: try nvidia-smi, then rocm-smi, then amd-smi; the first that is installed is used.
 * - `none`: no GPUs.
 * - `nvidia-smi`, `rocm-smi`, `amd-smi`: that driver only.
 * - `declared:COUNT[:MODEL[:MEMORY_MIB]]`: COUNT GPUs managed elsewhere (or for tests), never sampled.
 * - a list of `{ model?, memory-mib?, uuid?, vendor? }`: declared GPUs one by one.
 */
import { GpuError } from './errors.js'
import type { GpuVendor } from './types.js'

export const GPU_DRIVERS = ['nvidia-smi', 'rocm-smi', 'amd-smi'] as const
export type GpuToolDriver = (typeof GPU_DRIVERS)[number]

/** A GPU that the operator declares rather than discovers. */
export interface DeclaredGpu {
  readonly model: string
  /** null: unknown. */
  readonly memoryMiB: number | null
  /** null: the inventory keys it `declared-<index>` and selects it by index. */
  readonly uuid: string | null
  readonly vendor: GpuVendor
}

export type GpuSpec =
  | { readonly kind: 'none' }
  | { readonly kind: 'auto' }
  | { readonly kind: 'driver'; readonly driver: GpuToolDriver }
  | { readonly kind: 'declared'; readonly gpus: readonly DeclaredGpu[] }

/** At most this many GPUs may be declared (the largest hosts have 8 to 16; MIG makes up to 7 each). */
export const DECLARED_GPUS_MAX = 64
/** 16 TiB in MiB: larger is a typo. */
const MEMORY_MIB_MAX = 16 * 1024 * 1024
const MODEL_CHARS_MAX = 128
export const DEFAULT_DECLARED_MODEL = 'declared GPU'

const FORMS = 'none, auto, nvidia-smi, rocm-smi, amd-smi or declared:COUNT[:MODEL[:MEMORY_MIB]]'

/** Parses a `--gpus` value; throws {@link GpuError} BAD_GPU_SPEC with a message saying what is wrong. */
export function parseGpuSpec(raw: unknown): GpuSpec {
  if (Array.isArray(raw)) return { kind: 'declared', gpus: parseDeclaredList(raw) }
  if (typeof raw !== 'string')
    throw bad(`expected ${FORMS}, or a list of declared GPUs; got ${describe(raw)}`)
  const text = raw.trim()
  if (text === 'none') return { kind: 'none' }
  if (text === 'auto') return { kind: 'auto' }
  if ((GPU_DRIVERS as readonly string[]).includes(text))
    return { kind: 'driver', driver: text as GpuToolDriver }
  if (text === 'declared' || text.startsWith('declared:'))
    return { kind: 'declared', gpus: parseDeclaredText(text) }
  throw bad(`'${clip(text)}' is not one of ${FORMS}`)
}

/** The spec as a `--gpus` string, for messages (a declared list prints as its count and first GPU). */
export function formatGpuSpec(spec: GpuSpec): string {
  switch (spec.kind) {
    case 'none':
    case 'auto':
      return spec.kind
    case 'driver':
      return spec.driver
    case 'declared': {
      const first = spec.gpus[0]!
      const parts = [`declared:${spec.gpus.length}`]
      if (first.model !== DEFAULT_DECLARED_MODEL || first.memoryMiB !== null) parts.push(first.model)
      if (first.memoryMiB !== null) parts.push(String(first.memoryMiB))
      return parts.join(':')
    }
  }
}

function parseDeclaredText(text: string): DeclaredGpu[] {
  const parts = text.split(':')
  if (parts.length < 2 || parts.length > 4) {
    throw bad(`'${clip(text)}': expected declared:COUNT[:MODEL[:MEMORY_MIB]] (a model may not contain ':')`)
  }
  const count = parseCount(parts[1]!, text)
  const model = parts.length >= 3 ? parseModel(parts[2]!, `'${clip(text)}'`) : DEFAULT_DECLARED_MODEL
  const memoryMiB = parts.length === 4 ? parseMemory(parts[3]!, `'${clip(text)}'`) : null
  return Array.from({ length: count }, () => ({ model, memoryMiB, uuid: null, vendor: 'nvidia' as const }))
}

function parseCount(text: string, whole: string): number {
  const n = /^\d{1,3}$/.test(text) ? Number(text) : NaN
  if (!Number.isInteger(n) || n < 1 || n > DECLARED_GPUS_MAX) {
    throw bad(
      `'${clip(whole)}': COUNT must be an integer in 1..${DECLARED_GPUS_MAX} (use 'none' for no GPUs)`,
    )
  }
  return n
}

function parseModel(text: string, where: string): string {
  const model = text.trim()
  if (model === '' || model.length > MODEL_CHARS_MAX || /[\u0000-\u001f\u007f]/.test(model)) {
    throw bad(`${where}: MODEL must be 1..${MODEL_CHARS_MAX} printable characters`)
  }
  return model
}

function parseMemory(raw: unknown, where: string): number {
  const n =
    typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d{1,9}\s*$/.test(raw) ? Number(raw) : NaN
  if (!Number.isSafeInteger(n) || n < 1 || n > MEMORY_MIB_MAX) {
    throw bad(`${where}: MEMORY_MIB must be an integer in 1..${MEMORY_MIB_MAX} (MiB, no unit)`)
  }
  return n
}

const LIST_KEYS = new Map([
  ['model', 'model'],
  ['memory-mib', 'memoryMiB'],
  ['memoryMiB', 'memoryMiB'],
  ['uuid', 'uuid'],
  ['vendor', 'vendor'],
])

function parseDeclaredList(items: unknown[]): DeclaredGpu[] {
  if (items.length < 1 || items.length > DECLARED_GPUS_MAX) {
    throw bad(`a list of declared GPUs must have 1..${DECLARED_GPUS_MAX} entries, got ${items.length}`)
  }
  const seen = new Set<string>()
  return items.map((item, i) => {
    const where = `declared GPU #${i}`
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      throw bad(`${where}: expected a mapping with model, memory-mib, uuid or vendor; got ${describe(item)}`)
    }
    const fields: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(item)) {
      const name = LIST_KEYS.get(key)
      if (name === undefined)
        throw bad(`${where}: unknown key '${clip(key)}' (known: model, memory-mib, uuid, vendor)`)
      fields[name] = value
    }
    const model =
      fields['model'] === undefined
        ? DEFAULT_DECLARED_MODEL
        : parseModel(stringOf(fields['model'], where), where)
    const memoryMiB = fields['memoryMiB'] === undefined ? null : parseMemory(fields['memoryMiB'], where)
    const vendor = fields['vendor'] === undefined ? 'nvidia' : parseVendor(fields['vendor'], where)
    let uuid: string | null = null
    if (fields['uuid'] !== undefined) {
      uuid = stringOf(fields['uuid'], where).trim()
      if (!/^[A-Za-z0-9][A-Za-z0-9/._-]{0,127}$/.test(uuid)) {
        throw bad(`${where}: uuid '${clip(uuid)}' must be 1..128 letters, digits, '-', '_', '.', '/'`)
      }
      if (seen.has(uuid)) throw bad(`${where}: uuid '${uuid}' is declared twice`)
      seen.add(uuid)
    }
    return { model, memoryMiB, uuid, vendor }
  })
}

function parseVendor(raw: unknown, where: string): GpuVendor {
  if (raw === 'nvidia' || raw === 'amd') return raw
  throw bad(`${where}: vendor must be nvidia or amd, got ${describe(raw)}`)
}

function stringOf(raw: unknown, where: string): string {
  if (typeof raw === 'number') return String(raw)
  if (typeof raw !== 'string') throw bad(`${where}: expected a string, got ${describe(raw)}`)
  return raw
}

function bad(message: string): GpuError {
  return new GpuError('BAD_GPU_SPEC', message)
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}

function describe(raw: unknown): string {
  if (typeof raw === 'string') return `'${clip(raw)}'`
  if (raw === null || raw === undefined) return 'nothing'
  if (Array.isArray(raw)) return 'a list'
  if (typeof raw === 'object') return 'a mapping'
  return String(raw)
}
