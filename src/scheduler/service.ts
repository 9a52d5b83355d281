/**
 * The jobs service the API calls (src/api/routes/jobs.ts: POST/GET/DELETE /api/v1/jobs): validation at
 * the edge, the refusal of jobs that could never fit, the caller's access, the script's readability, the
 * quota, then one command to the metadata group. Reads come from this replica after an optional read
 * barrier.
 *
 * Who may see and touch a job is decided by `access` (src/scheduler/access.ts; until projects land its
 * interim answer lets the job's owner and the superuser in, nobody else), or the older `mayAccess` /
 * `maySubmit` hooks.
 */
import type { Credentials } from '../auth/index.js'
import type { JobAccess } from './access.js'
import type { JobsModule, JobListQuery, JobOpResults } from './jobs-module.js'
import { SchedError } from './errors.js'
import type { Caller, JobProposer } from './proposer.js'
import { checkFits, validateJobSubmission, type CapacitySummary } from './spec.js'
import { jobView, type JobRecord, type JobView } from './types.js'

export interface JobServiceInit {
  /** This node: the placer of the jobs submitted here. */
  readonly self: string
  readonly propose: JobProposer
  readonly jobs: () => JobsModule
  /** The largest node per resource, from this node's view (JOB_TOO_LARGE). */
  readonly capacity: () => CapacitySummary
  /** Fences reads (a linearizable read); default none (this replica as it is). */
  readonly readBarrier?: () => Promise<void>
  /** Why the project may not place more now (quota.ts quotaCheck), or undefined. */
  readonly quotaExhausted?: (project: string) => string | undefined
  readonly isSuperuser: (caller: Caller) => boolean
  /** Whether `caller` may see and act on `job` (default: its owner or the superuser). */
  readonly mayAccess?: (caller: Caller, job: JobRecord) => boolean
  /** Whether `caller` may submit to `project` (default: anyone; projects will say who is a member). */
  readonly maySubmit?: (caller: Caller, project: string) => boolean
  /** Who may submit, see and kill (wins over mayAccess / maySubmit). */
  readonly access?: JobAccess
  /**
   * Why `caller` cannot read the script at `path` (missing, no permission), or undefined when it can;
   * rejects when that cannot be known now. Without it, scripts are not checked before the run.
   */
  readonly scriptProblem?: (
    caller: Caller,
    path: string,
    opts: { credential?: Credentials; signal?: AbortSignal },
  ) => Promise<string | undefined>
}

export interface ServiceCallOpts {
  readonly signal?: AbortSignal
  /** The caller's credential, for a command the metadata node authenticates (see ProposeCallOpts). */
  readonly credential?: Credentials
}

export class JobService {
  private readonly init: JobServiceInit

  constructor(init: JobServiceInit) {
    this.init = init
  }

  /**
   * Validates, checks that the caller may submit to the project, that the job can ever fit, that the
   * caller can read its script and that the project has quota, and commits it QUEUED.
   */
  async submit(caller: Caller, body: unknown, opts: ServiceCallOpts = {}): Promise<{ id: number }> {
    const { project, name, spec } = validateJobSubmission(body)
    const denied =
      this.init.access?.submitDenied(caller, project) ??
      (this.init.maySubmit && !this.init.maySubmit(caller, project)
        ? `${caller.user} may not submit jobs to ${project}`
        : undefined)
    if (denied !== undefined) throw new SchedError('JOB_ACCESS_DENIED', denied)
    checkFits(spec, this.init.capacity())
    if (spec.script !== '' && this.init.scriptProblem !== undefined) {
      // The task reads it as the project-user (the submitter acting in the job's project): so here.
      const problem = await this.init.scriptProblem({ ...caller, project }, spec.script, opts)
      if (problem !== undefined) throw new SchedError('INVALID_JOB_SPEC', problem)
    }
    const over = this.init.quotaExhausted?.(project)
    if (over !== undefined) throw new SchedError('QUOTA_EXHAUSTED', over)
    return (await this.init.propose(
      {
        submitJob: {
          project,
          name,
          placer: this.init.self,
          spec: { ...spec, command: [...spec.command], env: spec.env.map((e) => ({ ...e })) },
        },
      },
      { as: caller, signal: opts.signal, credential: opts.credential },
    )) as JobOpResults['submitJob']
  }

  async get(caller: Caller, id: number): Promise<JobView> {
    await this.init.readBarrier?.()
    const job = this.init.jobs().get(id)
    if (job === undefined || !this.mayAccess(caller, job))
      throw new SchedError('JOB_NOT_FOUND', `no job ${id}`)
    return jobView(job)
  }

  /** One page of the jobs the caller may see. */
  async list(caller: Caller, q: JobListQuery = {}): Promise<JobView[]> {
    await this.init.readBarrier?.()
    return this.init
      .jobs()
      .list(q)
      .filter((j) => this.mayAccess(caller, j))
      .map(jobView)
  }

  /** Kills a job: a queued one at once, a running one through its workers (SIGTERM, then SIGKILL). */
  async kill(caller: Caller, id: number, opts: ServiceCallOpts = {}): Promise<JobOpResults['killJob']> {
    await this.init.readBarrier?.()
    const job = this.init.jobs().get(id)
    if (job === undefined || !this.mayAccess(caller, job))
      throw new SchedError('JOB_NOT_FOUND', `no job ${id}`)
    if (this.init.access !== undefined && !this.init.access.mayKill(caller, job))
      throw new SchedError('JOB_ACCESS_DENIED', `${caller.user} may not kill job ${id}`)
    return (await this.init.propose(
      { killJob: { jobId: id } },
      { as: caller, signal: opts.signal, credential: opts.credential },
    )) as JobOpResults['killJob']
  }

  /** Whether `caller` may see `job` (its record and logs). */
  maySee(caller: Caller, job: JobRecord): boolean {
    return this.mayAccess(caller, job)
  }

  private mayAccess(caller: Caller, job: JobRecord): boolean {
    if (this.init.access) return this.init.access.maySee(caller, job)
    if (this.init.mayAccess) return this.init.mayAccess(caller, job)
    return caller.user === job.owner || this.init.isSuperuser(caller)
  }
}
