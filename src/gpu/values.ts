// Small value parsers shared by the drivers. The vendor tools print "not available" in several ways;
// every one of them becomes null, never 0, because 0 is a real reading (an idle GPU).

/** What nvidia-smi, rocm-smi and amd-smi print for a value they cannot give. */
const UNAVAILABLE = new Set(['', 'N/A', '[N/A]', '[Not Supported]', 'Not Supported', '[Not Available]'])

export function isUnavailable(text: string): boolean {
  return UNAVAILABLE.has(text.trim())
}

/** A decimal number, or null when unavailable; undefined when the text is neither (a parse error). */
export function numberOrNull(text: string): number | null | undefined {
  const t = text.trim()
  if (isUnavailable(t)) return null
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(t)) return undefined
  return Number(t)
}

export function textOrNull(text: string): string | null {
  const t = text.trim()
  return isUnavailable(t) ? null : t
}

export const MIB = 1024 * 1024

/** Clips a string for a one-line reason. */
export function clip(text: string, charsMax = 160): string {
  const t = text.replace(/\s+/g, ' ').trim()
  return t.length > charsMax ? `${t.slice(0, charsMax - 3)}...` : t
}
