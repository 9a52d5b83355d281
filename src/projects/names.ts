import { PROJECTS_DIR } from '../fs/index.js'
import { ProjectError } from './errors.js'

/**
 * Project and dataset names: they become path segments (`/Projects/<project>/<dataset>`) and Kafka
 * topic prefixes, so lowercase letters, digits and `_` only; `__` is reserved as the separator of
 * project-user names (`<project>__<user>`), `::` as the one of shared datasets' aliases.
 */
export const PROJECT_NAME_PATTERN = '^[a-z][a-z0-9_]{0,62}$'
const NAME_RE = new RegExp(PROJECT_NAME_PATTERN)

/** The datasets every project gets; they cannot be deleted (jobs write Logs, models go to Models). */
export const DEFAULT_DATASETS = ['Resources', 'Logs', 'Models', 'Experiments', 'Jupyter'] as const

export type ProjectRole = 'DATA_OWNER' | 'DATA_SCIENTIST'
export const ROLES: readonly ProjectRole[] = ['DATA_OWNER', 'DATA_SCIENTIST']

export type ShareAccess = 'read' | 'write'

/** INVALID_PROJECT_NAME unless `name` is a valid project (or dataset) name; says which rule it breaks. */
export function checkProjectName(name: string, what: 'project' | 'dataset'): void {
  if (typeof name !== 'string' || name === '')
    throw new ProjectError('INVALID_PROJECT_NAME', `a ${what} name is required`)
  if (name.includes('::'))
    throw new ProjectError(
      'INVALID_PROJECT_NAME',
      `${JSON.stringify(name)}: "::" names a shared dataset (<project>::<dataset>), never a ${what}`,
    )
  if (name.includes('__'))
    throw new ProjectError(
      'INVALID_PROJECT_NAME',
      `${JSON.stringify(name)}: "__" separates project and user in project-user names`,
    )
  if (!NAME_RE.test(name))
    throw new ProjectError(
      'INVALID_PROJECT_NAME',
      `${JSON.stringify(name.slice(0, 80))}: a ${what} name is 1..63 characters of [a-z0-9_], starting with a letter`,
    )
}

/** A dataset a Data Owner may name: a valid name, or one of the default datasets. */
export function checkDatasetName(name: string): void {
  if ((DEFAULT_DATASETS as readonly string[]).includes(name)) return
  checkProjectName(name, 'dataset')
}

/** `/Projects/<project>` */
export function projectPath(project: string): string {
  return `/${PROJECTS_DIR}/${project}`
}

/** `/Projects/<project>/<dataset>` */
export function datasetPath(project: string, dataset: string): string {
  return `/${PROJECTS_DIR}/${project}/${dataset}`
}

/** The alias under which project `target` sees dataset `dataset` of `owner`: `<owner>::<dataset>`. */
export function aliasName(owner: string, dataset: string): string {
  return `${owner}::${dataset}`
}

/** The POSIX identity of a project-user (Hopsworks' naming): `<project>__<user>`. */
export function projectUserName(project: string, user: string): string {
  return `${project}__${user}`
}
