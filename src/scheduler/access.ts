/**
 * Who may do what with a project's jobs: the one decision the jobs API (and, for submissions and kills,
 * the jobs module's apply) asks. Projects (src/projects) are the authority: the answer reads their
 * replicated member table at every check, so nothing outlives a membership change — a member removed
 * from a project is refused by the next request that reads after its removal (the service reads after a
 * read barrier; apply reads the table as of the command).
 *
 * The rule ({@link projectJobAccess}):
 *  - submit to P: a member of P (any role), either with its own credential or acting in P (a project
 *    key, `X-Hopsd-Project: P`); a principal acting in another project is refused (acting in Q is a
 *    different principal); admins submit to any project name, existing or not (as before projects);
 *  - see P's jobs (record, logs): the members of P (not acting in another project), and admins;
 *  - kill a job of P: its submitter while still a member of P, P's Data Owners (neither acting in
 *    another project), and admins.
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
}

/** The projects' membership as the jobs see it (src/projects ProjectStore has this shape). */
export interface JobProjects {
  /** `user`'s role in `project`, or undefined when it is no member (or there is no such project). */
  roleOf(project: string, user: string): 'DATA_OWNER' | 'DATA_SCIENTIST' | undefined
}

/** The principal the command or request is made as, reduced to what the rule needs. */
interface Who {
  readonly user: string
  readonly project?: string
  readonly superuser?: boolean
}

const actsElsewhere = (who: Who, project: string): boolean =>
  (who.project ?? '') !== '' && who.project !== project

/** Why `who` may not submit to `project`, or undefined. Shared by the service and the jobs module. */
export function projectSubmitDenied(projects: JobProjects, who: Who, project: string): string | undefined {
  if (who.user === ANONYMOUS_USER || who.user === '') return 'anonymous callers may not submit jobs'
  if (actsElsewhere(who, project)) return `${who.user} acts in project ${who.project}, not ${project}`
  if (who.superuser === true) return undefined
  if (projects.roleOf(project, who.user) === undefined)
    return `${who.user} is not a member of project ${project}`
  return undefined
}

/** Whether `who` may kill `job`. Shared by the service and the jobs module. */
export function projectMayKill(
  projects: JobProjects,
  who: Who,
  job: Pick<JobRecord, 'owner' | 'project'>,
): boolean {
  if (who.superuser === true) return true
  if (actsElsewhere(who, job.project)) return false
  const role = projects.roleOf(job.project, who.user)
  if (role === undefined) return false
  return role === 'DATA_OWNER' || who.user === job.owner
}

/** The projects' answer (see the file's comment). `projects` is read at every call, never cached. */
export function projectJobAccess(projects: JobProjects): JobAccess {
  return {
    submitDenied: (caller, project) => projectSubmitDenied(projects, caller, project),
    maySee(caller, job) {
      if (caller.superuser === true) return true
      if (actsElsewhere(caller, job.project)) return false
      return projects.roleOf(job.project, caller.user) !== undefined
    },
    mayKill: (caller, job) => projectMayKill(projects, caller, job),
  }
}
