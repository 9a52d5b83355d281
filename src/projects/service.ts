/**
 * The projects service of a metadata node: every change is one command to the metadata group
 * (authorized again inside apply, src/projects/store.ts); reads come from this replica after a read
 * barrier, so a change another node committed is seen by the next read here.
 */
import { commandIdentity, type Principal } from '../auth/index.js'
import {
  CommandRejected,
  encodeCommand,
  type ConsensusGroup,
  type MetaResult,
  type MetaStateMachine,
  type metaProto,
} from '../meta/index.js'
import type { Namespace } from '../fs/index.js'
import { isProjectErrorCode, ProjectError } from './errors.js'
import { projectPath, type ProjectRole, type ShareAccess } from './names.js'
import type { ProjectOpResults, ProjectStore, ShareRecord } from './store.js'

type CommandProps = metaProto.meta.Command.$Properties

export interface ProjectServiceInit {
  readonly consensus: ConsensusGroup
  readonly stateMachine: MetaStateMachine
  /** This node's id: commands record which node authenticated their principal. */
  readonly nodeId: string
  readonly clock?: () => number
  /** GPU milliseconds charged to a project so far (the scheduler's jobs module); none: 0. */
  readonly gpuUsageMs?: (project: string) => number
}

/** A project as `GET /api/v1/projects/:name` shows it to a member (or an admin). */
export interface ProjectView {
  readonly name: string
  readonly createdMs: number
  readonly createdBy: string
  /** The caller's role ('' for an admin who is no member). */
  readonly role: ProjectRole | ''
  readonly members: { user: string; role: ProjectRole; addedMs: number; addedBy: string }[]
  readonly datasets: {
    name: string
    path: string
    sensitive: boolean
    createdMs: number
    shares: { project: string; access: ShareAccess }[]
  }[]
  /** Datasets other projects shared with this one, as this project sees them. */
  readonly shared: { alias: string; path: string; project: string; dataset: string; access: ShareAccess }[]
  readonly quota: ProjectQuotaView
}

/** Usage against quota: -1 = no limit. */
export interface ProjectQuotaView {
  readonly storageBytes: { used: number; quota: number }
  readonly fileCount: { used: number; quota: number }
  readonly gpuHours: { used: number; quota: number }
}

export class ProjectService {
  readonly #consensus: ConsensusGroup
  readonly #sm: MetaStateMachine
  readonly #nodeId: string
  readonly #clock: () => number
  readonly #gpuUsageMs: (project: string) => number

  constructor(init: ProjectServiceInit) {
    this.#consensus = init.consensus
    this.#sm = init.stateMachine
    this.#nodeId = init.nodeId
    this.#clock = init.clock ?? Date.now
    this.#gpuUsageMs = init.gpuUsageMs ?? (() => 0)
  }

  get store(): ProjectStore {
    return this.#sm.module<ProjectStore>('projects')
  }

  // ---- changes (one command each)

  create(caller: Principal, name: string): Promise<ProjectOpResults['createProject']> {
    return this.propose(caller, { createProject: { name } })
  }

  delete(caller: Principal, name: string, confirm: string): Promise<ProjectOpResults['deleteProject']> {
    return this.propose(caller, { deleteProject: { name, confirm } })
  }

  setMember(
    caller: Principal,
    project: string,
    user: string,
    role: ProjectRole,
  ): Promise<ProjectOpResults['setMember']> {
    return this.propose(caller, { setMember: { project, user, role } })
  }

  removeMember(caller: Principal, project: string, user: string): Promise<ProjectOpResults['removeMember']> {
    return this.propose(caller, { removeMember: { project, user } })
  }

  createDataset(
    caller: Principal,
    project: string,
    name: string,
    sensitive: boolean,
  ): Promise<ProjectOpResults['createDataset']> {
    return this.propose(caller, { createDataset: { project, name, sensitive } })
  }

  deleteDataset(
    caller: Principal,
    project: string,
    name: string,
  ): Promise<ProjectOpResults['deleteDataset']> {
    return this.propose(caller, { deleteDataset: { project, name } })
  }

  share(
    caller: Principal,
    project: string,
    dataset: string,
    target: string,
    access: ShareAccess,
  ): Promise<ProjectOpResults['shareDataset']> {
    return this.propose(caller, { shareDataset: { project, dataset, target, access } })
  }

  unshare(
    caller: Principal,
    project: string,
    dataset: string,
    target: string,
  ): Promise<ProjectOpResults['unshareDataset']> {
    return this.propose(caller, { unshareDataset: { project, dataset, target } })
  }

  /** Admins: storage bytes and file count on /Projects/<name>, GPU-hours for the scheduler (-1 = none). */
  setQuota(
    caller: Principal,
    project: string,
    q: { storageBytes: number; fileCount: number; gpuHours: number },
  ): Promise<ProjectOpResults['setProjectQuota']> {
    return this.propose(caller, { setProjectQuota: { project, ...q } })
  }

  // ---- reads (after a read barrier)

  /** The projects the caller is a member of; admins acting in no project see all. */
  async list(caller: Principal, signal?: AbortSignal): Promise<{ name: string; role: ProjectRole | '' }[]> {
    await this.#consensus.readBarrier({ signal })
    const store = this.store
    if (caller.superuser && (caller.project ?? '') === '')
      return store
        .projects()
        .map((p) => ({ name: p.name, role: store.member(p.name, caller.user)?.role ?? '' }))
    return store
      .projectsOf(caller.user)
      .filter((p) => (caller.project ?? '') === '' || caller.project === p)
      .map((p) => ({ name: p, role: store.member(p, caller.user)!.role }))
  }

  /** One project, for its members and admins; PROJECT_NOT_FOUND for anyone else. */
  async describe(caller: Principal, name: string, signal?: AbortSignal): Promise<ProjectView> {
    await this.#consensus.readBarrier({ signal })
    const store = this.store
    const p = store.project(name)
    const me = store.member(name, caller.user)
    const acting = caller.project ?? ''
    if (p === undefined || (me === undefined && !caller.superuser) || (acting !== '' && acting !== name))
      throw new ProjectError('PROJECT_NOT_FOUND', `no project ${JSON.stringify(name)} (or not a member)`)
    const shareView = (s: ShareRecord) => ({ project: s.target, access: s.access })
    return {
      name: p.name,
      createdMs: p.createdMs,
      createdBy: p.createdBy,
      role: me?.role ?? '',
      members: store.members(name).map((m) => ({
        user: m.user,
        role: m.role,
        addedMs: m.addedMs,
        addedBy: m.addedBy,
      })),
      datasets: store.datasets(name).map((d) => ({
        name: d.name,
        path: `${projectPath(name)}/${d.name}`,
        sensitive: d.sensitive,
        createdMs: d.createdMs,
        shares: store.sharesOf(name, d.name).map(shareView),
      })),
      shared: store.sharesInto(name).map((s) => ({
        alias: `${s.project}::${s.dataset}`,
        path: `${projectPath(name)}/${s.project}::${s.dataset}`,
        project: s.project,
        dataset: s.dataset,
        access: s.access,
      })),
      quota: await this.quotaOf(name, p.gpuHoursQuota, signal),
    }
  }

  private async quotaOf(
    name: string,
    gpuHoursQuota: number,
    signal?: AbortSignal,
  ): Promise<ProjectQuotaView> {
    const ns = this.#sm.module<Namespace>('fs')
    const su = { user: this.#sm.settings().superuser, groups: [] }
    const u = await ns.quotaUsage(su, projectPath(name), { signal })
    return {
      storageBytes: { used: u.spaceConsumed, quota: u.spaceQuota },
      fileCount: { used: u.fileAndDirectoryCount, quota: u.quota },
      gpuHours: { used: this.#gpuUsageMs(name) / 3_600_000, quota: gpuHoursQuota },
    }
  }

  private async propose<K extends keyof ProjectOpResults>(
    caller: Principal,
    cmd: CommandProps & { [P in K]?: unknown },
  ): Promise<ProjectOpResults[K]> {
    const data = encodeCommand({ ...cmd, ...commandIdentity(caller, this.#nodeId), nowMs: this.#clock() })
    const result = (await this.#consensus.propose(data)) as MetaResult
    if (!result.ok) {
      if (isProjectErrorCode(result.code)) throw new ProjectError(result.code, result.message)
      throw new CommandRejected(result.code, result.message)
    }
    return result.value as ProjectOpResults[K]
  }
}

export function createProjectService(init: ProjectServiceInit): ProjectService {
  return new ProjectService(init)
}
