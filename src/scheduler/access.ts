/**
 * Who may do what with a project's jobs, and how many GPU-hours the project may use: the one decision
 * the jobs API, the placers and the workers ask. Projects (src/projects: members with roles, per-project
 * GPU-hour quotas) decide it once they land; until then {@link interimJobAccess} stands in.
 *
 * TODO(projects): replace interimJobAccess by the projects area's answer — "only members of the project
 * see or touch its jobs" (any role may submit, see and kill), and the project's GPU-hour quota — and let
 * KillJob's apply accept members too (it checks owner or superuser today, src/scheduler/jobs-module.ts).
 */
import { ANONYMOUS_USER } from '../auth/index.js'
import type { Caller } from './proposer.js'
import type { JobRecord } from './types.js'

export interface JobAccess {
  /** Why `caller` may not submit jobs to `project`, or undefined when it may. */
  submitDenied(caller: Caller, project: string): string | undefined
  /** Whether `caller` may see `job` (its record, its logs). Jobs it may not see read as missing. */
  maySee(caller: Caller, job: JobRecord): boolean
  /** Whether `caller` may kill `job`. */
  mayKill(caller: Caller, job: JobRecord): boolean
  /** GPU-hours `project` may use in all; undefined: no limit. */
  quotaGpuHours(project: string): number | undefined
}

/**
 * Until projects land: any authenticated user submits to any project name, a job is seen and killed by
 * its owner and the superuser only, and no project has a quota. A principal acting in a project (an API
 * key made for one, such as a job's own credential) acts in that project only: acting in project A is a
 * different principal from acting in project B.
 */
export function interimJobAccess(): JobAccess {
  const inOtherProject = (caller: Caller, project: string): boolean =>
    (caller.project ?? '') !== '' && caller.project !== project
  return {
    submitDenied(caller, project) {
      if (caller.user === ANONYMOUS_USER || caller.user === '') return 'anonymous callers may not submit jobs'
      if (inOtherProject(caller, project))
        return `${caller.user} acts in project ${caller.project}, not ${project}`
      return undefined
    },
    maySee(caller, job) {
      if (caller.superuser === true) return true
      return caller.user === job.owner && !inOtherProject(caller, job.project)
    },
    mayKill(caller, job) {
      if (caller.superuser === true) return true
      return caller.user === job.owner && !inOtherProject(caller, job.project)
    },
    quotaGpuHours: () => undefined,
  }
}
