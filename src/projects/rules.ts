/**
 * File access inside projects, decided for the project-user principal (src/fs/access.ts PathRules, run
 * by the namespace inside apply for writes and after the read barrier for reads):
 *
 * - `/Projects/<p>/...` is reached only by a principal acting in a project (a project key, the header
 *   X-Hopsd-Project, WebHDFS `project=`), or by an admin acting in none (the HDFS superuser);
 * - a member of `p` acting in `p` reads and writes inside the datasets of `p`; datasets themselves (the
 *   names directly under `/Projects/<p>`) are made and removed through the projects API only;
 * - Data Scientists cannot change permissions or owners of anything in a dataset, nor read the bytes of
 *   a sensitive dataset (every read through the API leaves the project) — but a job's task (a job key,
 *   made by the cluster for the job) reads its own project's sensitive datasets: it runs inside it;
 * - a principal of `q` reaches a dataset of `p` only when `p` shared it with `q` — through the alias
 *   `/Projects/<q>/<p>::<dataset>` or its own path — read-only or read-write as shared, never its
 *   permissions; renames never move data across a project or dataset boundary (only a Data Owner moves
 *   data between datasets of its own project);
 * - a principal acting in an existing project reaches nothing outside `/Projects/<p>` but the metadata
 *   of `/` and `/Projects` (so that data cannot be carried out into a place another project reads).
 *
 * Once admitted, the POSIX bits are not checked again inside projects (the rules above are the
 * authority there); what a project-user creates is owned by `<project>__<user>`.
 * Every decision reads the replicated tables: a removed member is refused by the next command and by the
 * next read after its barrier, on every node.
 */
import {
  FsError,
  PROJECTS_DIR,
  type Admitted,
  type Caller,
  type FsAction,
  type PathRules,
} from '../fs/index.js'
import { aliasName, projectUserName, type ProjectRole } from './names.js'
import type { ProjectStore } from './store.js'

export function projectPathRules(store: ProjectStore): PathRules {
  const deny = (why: string): never => {
    throw new FsError('ACCESS_DENIED', `Permission denied: ${why}`)
  }
  const roleIn = (project: string, user: string): ProjectRole | undefined => store.member(project, user)?.role

  const rules: PathRules = {
    resolveAlias(names) {
      if (names.length < 3 || names[0] !== PROJECTS_DIR) return names
      const alias = names[2]!
      const sep = alias.indexOf('::')
      if (sep < 0) return names
      const owner = alias.slice(0, sep)
      const dataset = alias.slice(sep + 2)
      if (store.share(owner, dataset, names[1]!) === undefined || store.dataset(owner, dataset) === undefined)
        throw new FsError(
          'FILE_NOT_FOUND',
          `File does not exist: /${names.slice(0, 3).join('/')} (no dataset ${dataset} of ${owner} is shared with ${names[1]})`,
        )
      return [PROJECTS_DIR, owner, dataset, ...names.slice(3)]
    },

    aliasesIn(names) {
      if (names.length !== 2 || names[0] !== PROJECTS_DIR) return []
      return store.sharesInto(names[1]!).map((s) => ({
        name: aliasName(s.project, s.dataset),
        target: [PROJECTS_DIR, s.project, s.dataset],
      }))
    },

    identity(caller) {
      const project = caller.project ?? ''
      if (project === '' || store.project(project) === undefined) return caller
      return { user: projectUserName(project, caller.user), groups: [project], project }
    },

    admit(caller, su, names, action): Admitted {
      const acting = caller.project ?? ''
      const inProjects = names.length >= 2 && names[0] === PROJECTS_DIR
      if (!inProjects) {
        // Outside /Projects: plain HDFS, except for a principal of an existing project.
        if (acting === '' || store.project(acting) === undefined) return { caller, su }
        if (action === 'read' && names.length <= 1) return { caller, su }
        return deny(`${caller.user} acts in project ${acting}: it reaches only /${PROJECTS_DIR}/${acting}`)
      }
      const owner = names[1]!
      if (acting === '') {
        if (su) return { caller, su }
        return deny(
          `/${PROJECTS_DIR}/${owner} is reached acting in a project (a project key, X-Hopsd-Project or project=)`,
        )
      }
      const role = roleIn(acting, caller.user)
      if (role === undefined) return deny(`${caller.user} is not a member of project ${acting}`)
      const posix: Admitted = { caller: rules.identity(caller), su: true }
      const dataset = names[2]
      if (owner === acting) {
        if (store.project(owner) === undefined) return deny(`no project ${owner}`)
        if (dataset === undefined) {
          if (action === 'read') return posix
          return deny(`the project directory changes through the projects API only`)
        }
        const ds = store.dataset(owner, dataset)
        if (ds === undefined || names.length === 3) {
          // A dataset itself, or a name directly under the project that is no dataset.
          if (action === 'read' || (action === 'read-content' && ds !== undefined)) return posix
          if (action === 'change-permission' && ds !== undefined && role === 'DATA_OWNER') return posix
          if (ds === undefined)
            return deny(`datasets of ${owner} are made through POST /api/v1/projects/${owner}/datasets`)
          if (action === 'change-permission')
            return deny(
              `${caller.user} is a Data Scientist of ${owner}: it cannot change a dataset's permissions`,
            )
          return deny(`dataset ${owner}/${dataset} is created and deleted through the projects API only`)
        }
        if (action === 'change-permission' && role !== 'DATA_OWNER')
          return deny(
            `${caller.user} is a Data Scientist of ${owner}: it cannot change a dataset's permissions`,
          )
        // A job runs inside the project: its task reads the sensitive dataset its submitter cannot
        // download (Hopsworks: data stays in the project, processing happens in it).
        if (action === 'read-content' && ds.sensitive && role !== 'DATA_OWNER' && !isJob(caller))
          return deny(
            `dataset ${owner}/${dataset} is sensitive: a Data Scientist cannot read it out of the project`,
          )
        return posix
      }
      // Another project's path: only a dataset it shared with the acting project.
      if (dataset === undefined) return deny(`project ${acting} cannot see project ${owner}`)
      const share = store.share(owner, dataset, acting)
      if (share === undefined) return deny(`dataset ${owner}/${dataset} is not shared with project ${acting}`)
      if (action === 'read') return posix
      if (action === 'read-content') {
        if (store.dataset(owner, dataset)?.sensitive && role !== 'DATA_OWNER')
          return deny(
            `dataset ${owner}/${dataset} is sensitive: a Data Scientist cannot read it out of the project`,
          )
        return posix
      }
      if (action === 'change-permission')
        return deny(`the permissions of ${owner}/${dataset} belong to project ${owner}`)
      if (share.access !== 'write')
        return deny(`dataset ${owner}/${dataset} is shared with ${acting} read-only`)
      if (names.length === 3)
        return deny(`a shared dataset itself is not changed by the projects it is shared with`)
      return posix
    },

    admitMove(caller, su, src, dst) {
      const srcIn = src.length >= 2 && src[0] === PROJECTS_DIR
      const dstIn = dst.length >= 2 && dst[0] === PROJECTS_DIR
      if (!srcIn && !dstIn) return
      if ((caller.project ?? '') === '' && su) return
      if (srcIn !== dstIn || src[1] !== dst[1])
        return deny(
          `data does not move between projects (${src.slice(0, 2).join('/')} → ${dst.slice(0, 2).join('/')})`,
        )
      if (src[2] !== dst[2]) {
        const acting = caller.project ?? ''
        if (acting !== src[1] || roleIn(acting, caller.user) !== 'DATA_OWNER')
          deny(`only a Data Owner of ${src[1]} moves data between its datasets`)
      }
    },
  }
  return rules
}

export type { Caller, FsAction }

/** A job's task acting in its project (a job key): it reads the project's sensitive datasets. */
function isJob(caller: Caller): boolean {
  return (caller.job ?? '') !== ''
}
