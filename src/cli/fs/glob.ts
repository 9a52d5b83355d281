// Local glob expansion for `hopsd fs put 'data/*.csv' /dst`: the shell may have left the pattern
// unexpanded (quoted, or a shell without globbing), so the CLI expands it itself. A small matcher
// rather than fs.promises.glob: that one is experimental (a warning on stderr) in the Node 22 releases
// the package still allows.
//
// Supported: `*` and `?` within one path component, `[abc]` / `[a-z]` / `[!a]` classes, and `**` as a
// whole component for any number of directories. Like a shell, `*` does not match a leading dot.
import { readdir } from 'node:fs/promises'
import { isAbsolute, join, sep } from 'node:path'

/** Bound on matches of one pattern: a runaway `**` should fail clearly, not exhaust memory. */
export const GLOB_MATCHES_MAX = 1_000_000

export function hasGlob(pattern: string): boolean {
  return /[*?[]/.test(pattern)
}

/** The paths matching `pattern` (relative to `cwd` unless absolute), sorted; [] when none. */
export async function expandGlob(pattern: string, cwd: string): Promise<string[]> {
  if (!hasGlob(pattern)) return [pattern]
  const absolute = isAbsolute(pattern)
  const parts = pattern.split(/[\\/]+/).filter((p, i) => p !== '' || i === 0)
  const start = absolute ? sep : ''
  const out: string[] = []
  const walk = async (prefix: string, rest: readonly string[]): Promise<void> => {
    if (rest.length === 0) {
      if (prefix !== '') out.push(prefix)
      if (out.length > GLOB_MATCHES_MAX)
        throw new RangeError(`${pattern} matches over ${GLOB_MATCHES_MAX} paths`)
      return
    }
    const [head, ...tail] = rest as [string, ...string[]]
    if (head === '' && absolute) return walk(sep, tail)
    if (!hasGlob(head)) return walk(prefix === '' ? head : join(prefix, head), tail)
    const dir = join(cwd, prefix === '' ? '.' : prefix)
    const base = isAbsolute(prefix) ? prefix : dir
    let entries: { name: string; isDirectory(): boolean }[]
    try {
      entries = await readdir(base, { withFileTypes: true })
    } catch {
      return // not a directory, or unreadable: no matches below it (as a shell)
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    if (head === '**') {
      // Zero directories, then each directory (recursively, through `**` again).
      await walk(prefix, tail)
      for (const e of entries) {
        if (e.isDirectory() && !e.name.startsWith('.'))
          await walk(prefix === '' ? e.name : join(prefix, e.name), rest)
      }
      return
    }
    const re = segmentRegExp(head)
    for (const e of entries) {
      if (!re.test(e.name)) continue
      if (tail.length > 0 && !e.isDirectory()) continue
      await walk(prefix === '' ? e.name : join(prefix, e.name), tail)
    }
  }
  await walk(start, parts)
  return [...new Set(out)]
}

/** One path component's pattern as an anchored RegExp. Exported for tests. */
export function segmentRegExp(segment: string): RegExp {
  let re = segment.startsWith('.') ? '' : '(?!\\.)'
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!
    if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else if (c === '[') {
      const close = segment.indexOf(']', i + 2)
      if (close === -1) {
        re += '\\['
        continue
      }
      let body = segment.slice(i + 1, close)
      const negate = body.startsWith('!') || body.startsWith('^')
      if (negate) body = body.slice(1)
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]]/g, '\\$&')}]`
      i = close
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}
