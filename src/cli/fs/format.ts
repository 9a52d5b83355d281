// Text shapes of `hopsd fs` output: `ls -l` rows, human sizes, remote paths.
import type { RemoteStatus } from './client.js'

const UNITS = ['K', 'M', 'G', 'T', 'P', 'E']

/** Sizes as `hdfs dfs -h` writes them: `1023`, `1.5 K`, `12.0 M` (powers of 1024). */
export function humanBytes(n: number): string {
  if (n < 1024) return String(Math.round(n))
  let v = n
  let i = -1
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(1)} ${UNITS[i]}`
}

/** `drwxr-xr-x` from the type and an octal permission string (sticky bit as `t`/`T`). */
export function modeString(type: 'FILE' | 'DIRECTORY', permissionOctal: string): string {
  const mode = Number.parseInt(permissionOctal, 8)
  let s = type === 'DIRECTORY' ? 'd' : '-'
  for (const shift of [6, 3, 0]) {
    const bits = (mode >> shift) & 7
    s += (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (bits & 1 ? 'x' : '-')
  }
  if (mode & 0o1000) s = s.slice(0, 9) + (mode & 1 ? 't' : 'T')
  return s
}

/** `2024-05-01 13:07` in local time, as `hdfs dfs -ls` shows it. */
export function shortTime(ms: number): string {
  const d = new Date(ms)
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`
}

/** `ls -l` rows, columns aligned across the listing. */
export function longListing(
  entries: readonly { name: string; status: RemoteStatus }[],
  human: boolean,
): string[] {
  const cols = entries.map(({ name, status: s }) => [
    modeString(s.type, s.permission),
    s.type === 'DIRECTORY' ? '-' : String(s.replication),
    s.owner,
    s.group,
    human ? humanBytes(s.length) : String(s.length),
    shortTime(s.modificationTime),
    name,
  ])
  const widths = [0, 1, 2, 3, 4].map((i) => Math.max(0, ...cols.map((c) => c[i]!.length)))
  return cols.map((c) =>
    [
      c[0],
      c[1]!.padStart(widths[1]!),
      c[2]!.padEnd(widths[2]!),
      c[3]!.padEnd(widths[3]!),
      c[4]!.padStart(widths[4]!),
      c[5],
      c[6],
    ].join(' '),
  )
}

/** Joins remote path components ('/a' + 'b' → '/a/b'). */
export function remoteJoin(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`
}

/** The last component of a remote path ('' for the root). */
export function remoteBase(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

/**
 * An absolute, normalized remote path: relative paths are taken from the user's home directory
 * (`/user/NAME`, as Hadoop does), `.`/`..` resolved, trailing slashes dropped.
 */
export function resolveRemote(path: string, user: string): string {
  const full = path.startsWith('/') ? path : `/user/${user}/${path}`
  const out: string[] = []
  for (const part of full.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') out.pop()
    else out.push(part)
  }
  return '/' + out.join('/')
}
