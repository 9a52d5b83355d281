// The AMD tools print JSON, sometimes after a warning line of their own (amd-smi's "WARNING: …" when
// the user is not in the render group). The document starts at the first line that starts with '{' or
// '['; anything before it is kept as the tool's complaint for health reasons.
import { clip } from './values.js'

export type JsonDocument =
  { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string }

export function parseToolJson(tool: string, stdout: string, stderr: string): JsonDocument {
  const lines = stdout.split(/\r?\n/)
  const start = lines.findIndex((l) => /^\s*[[{]/.test(l))
  const complaint = (
    stderr.split(/\r?\n/).find((l) => l.trim() !== '') ??
    lines.find((l) => l.trim() !== '') ??
    ''
  ).trim()
  if (start < 0) {
    return { ok: false, reason: `${tool} printed no JSON${complaint === '' ? '' : `: ${clip(complaint)}`}` }
  }
  try {
    return { ok: true, value: JSON.parse(lines.slice(start).join('\n')) }
  } catch (err) {
    return {
      ok: false,
      reason: `${tool} printed JSON that does not parse (${clip((err as Error).message, 100)})`,
    }
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** `GPU-<16 hex digits>` from a 64-bit unique id as the AMD tools print it (`0x719d…`, `0x4162405E51BB99B0`). */
export function amdUuid(uniqueId: string | null): string | null {
  if (uniqueId === null) return null
  const m = /^(?:0x)?([0-9A-Fa-f]{1,16})$/.exec(uniqueId.trim())
  if (m === null || /^0+$/.test(m[1]!)) return null
  return `GPU-${m[1]!.toLowerCase().padStart(16, '0')}`
}
