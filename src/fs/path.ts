import { FsError } from './errors.js'

/** Bounds of a path, as HDFS has them (dfs.namenode.fs-limits.max-component-length, PATH_MAX-ish). */
export const NAME_BYTES_MAX = 255
export const PATH_BYTES_MAX = 8000
/**
 * The directory of projects: the projects area (src/projects) lays out `/Projects/<project>/<dataset>`,
 * and a dataset another project shared with `<project>` appears there as `<owner>::<dataset>`.
 */
export const PROJECTS_DIR = 'Projects'
/** A shared dataset's alias name: `<owner project>::<dataset>`, both parts project-style names. */
const ALIAS_NAME_RE = /^[a-z][a-z0-9_]{0,62}::[A-Za-z][A-Za-z0-9_]{0,62}$/

/** Whether `name` has the shape of a shared dataset's alias (`<owner>::<dataset>`). */
export function isAliasName(name: string): boolean {
  return ALIAS_NAME_RE.test(name)
}

/** Directory depth bound (HDFS's dfs.namenode.fs-limits.max-directory-items aside, INodesInPath caps depth too). */
export const PATH_DEPTH_MAX = 1000

const encoder = new TextEncoder()

/**
 * Splits an absolute, normalized path into its names; throws INVALID_PATH otherwise.
 * Refused: relative paths, empty segments (`//`, a trailing `/` except for the root), `.` and `..`,
 * NUL and other control characters (C0, DEL, C1), `:` (HDFS forbids it in names), names over 255 UTF-8
 * bytes, paths over 8,000 bytes, lone UTF-16 surrogates (no UTF-8 form). The one name with `:`
 * accepted is an alias of a shared dataset (`<owner>::<dataset>`) directly under `/Projects/<project>`:
 * the namespace resolves it (src/fs/access.ts), nothing can be created under that name.
 */
export function parsePath(path: string): string[] {
  if (typeof path !== 'string' || path.length === 0) throw new FsError('INVALID_PATH', 'the path is empty')
  if (path[0] !== '/') throw new FsError('INVALID_PATH', `the path is not absolute: ${quote(path)}`)
  if (path.length > PATH_BYTES_MAX || encoder.encode(path).length > PATH_BYTES_MAX) {
    throw new FsError('INVALID_PATH', `the path is over ${PATH_BYTES_MAX} bytes`)
  }
  if (path === '/') return []
  const names = path.slice(1).split('/')
  if (names.length > PATH_DEPTH_MAX)
    throw new FsError('INVALID_PATH', `the path is deeper than ${PATH_DEPTH_MAX}`)
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!
    if (i === 2 && names[0] === PROJECTS_DIR && isAliasName(name)) continue
    checkName(name, path)
  }
  return names
}

/** Validates one path component (see {@link parsePath}). */
export function checkName(name: string, path = name): void {
  if (name.length === 0) throw new FsError('INVALID_PATH', `empty path segment in ${quote(path)}`)
  if (name === '.' || name === '..') throw new FsError('INVALID_PATH', `"${name}" segment in ${quote(path)}`)
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name))
    throw new FsError('INVALID_PATH', `control character in ${quote(path)}`)
  if (name.includes(':'))
    throw new FsError(
      'INVALID_PATH',
      isAliasName(name)
        ? `${quote(name)} names a shared dataset: only directly under /${PROJECTS_DIR}/<project>, never created: ${quote(path)}`
        : `":" in a name: ${quote(path)}`,
    )
  if (!name.isWellFormed()) throw new FsError('INVALID_PATH', `lone surrogate in ${quote(path)}`)
  if (name.length * 3 > NAME_BYTES_MAX && encoder.encode(name).length > NAME_BYTES_MAX) {
    throw new FsError(
      'INVALID_PATH',
      `a name is over ${NAME_BYTES_MAX} bytes in ${quote(path.slice(0, 80))}…`,
    )
  }
}

/** Joins names back into an absolute path. */
export function joinPath(names: readonly string[]): string {
  return '/' + names.join('/')
}

/** `/a/b` → `/a`; the root's parent is the root. */
export function parentPath(path: string): string {
  const i = path.lastIndexOf('/')
  return i <= 0 ? '/' : path.slice(0, i)
}

/** True when `path` is `ancestor` or lies under it. */
export function isSameOrUnder(path: string, ancestor: string): boolean {
  if (ancestor === '/') return true
  return path === ancestor || path.startsWith(ancestor + '/')
}

function quote(s: string): string {
  return JSON.stringify(s.length > 200 ? s.slice(0, 200) + '…' : s)
}
