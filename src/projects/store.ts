/**
 * The `projects` module of the metadata state machine: projects, their members and roles, datasets and
 * shares, in the replicated state, with the rules of who may change what checked inside apply(). The
 * namespace changes a command makes (`/Projects/<name>` and its datasets, a deletion's subtree) are
 * made in the same apply through the namespace's system operations, so they commit or roll back with
 * the command.
 *
 * | table              | key                            | value                |
 * | ------------------ | ------------------------------ | -------------------- |
 * | `projects.project` | `<name>`                       | ProjectRecord        |
 * | `projects.member`  | `<project>/<user>`             | ProjectMemberRecord  |
 * | `projects.dataset` | `<project>/<dataset>`          | DatasetRecord        |
 * | `projects.share`   | `<project>/<dataset>/<target>` | DatasetShareRecord   |
 * | `projects.cert`    | `<serial>` (hex)               | ProjectCertificateRecord |
 *
 * Derived indexes (kept by table hooks through commits, rollbacks and restores): the projects of each
 * user, the shares into each project, the certificates of each project-user. Nothing outside the tables caches a membership: every check reads
 * them, so a change holds for the next command and the next read after its barrier, on every node.
 */
import {
  MetaError,
  protoCodec,
  metaProto,
  type ApplyContext,
  type MetaModule,
  type MetaStore,
  type Table,
} from '../meta/index.js'
import { AuthError } from '../auth/index.js'
import type { Namespace } from '../fs/index.js'
import { ProjectError } from './errors.js'
import {
  checkDatasetName,
  checkProjectName,
  DEFAULT_DATASETS,
  datasetPath,
  projectPath,
  ROLES,
  type ProjectRole,
  type ShareAccess,
} from './names.js'

import pb = metaProto.meta

export interface ProjectRecord {
  readonly name: string
  readonly createdMs: number
  readonly createdBy: string
  /** -1 = no limit. */
  readonly gpuHoursQuota: number
}

export interface MemberRecord {
  readonly project: string
  readonly user: string
  readonly role: ProjectRole
  readonly addedMs: number
  readonly addedBy: string
}

export interface DatasetRecord {
  readonly project: string
  readonly name: string
  readonly sensitive: boolean
  readonly createdMs: number
  readonly createdBy: string
}

export interface ShareRecord {
  /** The project that owns the dataset. */
  readonly project: string
  readonly dataset: string
  /** The project it is shared with. */
  readonly target: string
  readonly access: ShareAccess
  readonly sharedMs: number
  readonly sharedBy: string
}

/**
 * A project-user certificate the cluster CA issued (CN=`<project>__<user>`). The row is what makes it a
 * credential: a serial without a row, a revoked row, a row past its end, or a row whose user is no
 * longer a member authenticates nobody (checked on every request, src/auth's authenticator).
 */
export interface ProjectCertificateRecord {
  readonly serial: string
  readonly project: string
  readonly user: string
  readonly notBeforeMs: number
  readonly notAfterMs: number
  /** 0 = not revoked. */
  readonly revokedMs: number
  readonly revokedBy: string
  readonly issuedMs: number
}

export const PROJECTS_MAX = 10_000
/** Certificate rows per project-user; revoked and expired ones are dropped first when room is needed. */
export const CERTS_PER_MEMBER_MAX = 100
/** How far before its issue a certificate may start (clock skew between client and nodes). */
export const CERT_BACKDATE_MS_MAX = 3_600_000
const SERIAL_RE = /^[1-9a-f][0-9a-f]{0,39}$/
export const MEMBERS_PER_PROJECT_MAX = 1000
export const DATASETS_PER_PROJECT_MAX = 1000
export const SHARES_PER_DATASET_MAX = 100
/** Projects a user may be a member of (bounds the list a user sees). */
export const PROJECTS_PER_USER_MAX = 1000

const PROJECT_OPS = [
  'createProject',
  'deleteProject',
  'setMember',
  'removeMember',
  'createDataset',
  'deleteDataset',
  'shareDataset',
  'unshareDataset',
  'setProjectQuota',
  'issueProjectCertificate',
  'revokeProjectCertificate',
] as const

/** What each op's apply returns (the `value` of a successful MetaResult). */
export interface ProjectOpResults {
  createProject: { name: string }
  deleteProject: { name: string; deleted: boolean }
  setMember: { project: string; user: string; role: ProjectRole; previousRole: ProjectRole | '' }
  removeMember: { project: string; user: string }
  createDataset: { project: string; name: string; sensitive: boolean }
  deleteDataset: { project: string; name: string }
  shareDataset: { project: string; dataset: string; target: string; access: ShareAccess }
  unshareDataset: { project: string; dataset: string; target: string }
  setProjectQuota: { project: string }
  issueProjectCertificate: ProjectCertificateRecord
  revokeProjectCertificate: ProjectCertificateRecord
}

/** Project directories: owned by the superuser, group the project; the path rules decide access. */
const PROJECT_DIR_MODE = 0o770

export class ProjectStore implements MetaModule {
  readonly name = 'projects'
  readonly ops = PROJECT_OPS
  readonly #projects: Table<ProjectRecord>
  readonly #members: Table<MemberRecord>
  readonly #datasets: Table<DatasetRecord>
  readonly #shares: Table<ShareRecord>
  readonly #certs: Table<ProjectCertificateRecord>
  /** user → projects (derived). */
  readonly #byUser = new Map<string, Set<string>>()
  /** target project → share keys (derived). */
  readonly #sharesInto = new Map<string, Set<string>>()
  /** `<project>/<user>` → certificate serials (derived). */
  readonly #certsOf = new Map<string, Set<string>>()

  constructor(
    store: MetaStore,
    private readonly namespace: () => Namespace,
  ) {
    this.#projects = store.table('projects.project', protoCodec<ProjectRecord>(pb.ProjectRecord))
    this.#members = store.table(
      'projects.member',
      protoCodec<MemberRecord>(pb.ProjectMemberRecord),
      indexHooks(
        this.#byUser,
        (m) => m.user,
        (m) => m.project,
      ),
    )
    this.#datasets = store.table('projects.dataset', protoCodec<DatasetRecord>(pb.DatasetRecord))
    this.#shares = store.table(
      'projects.share',
      protoCodec<ShareRecord>(pb.DatasetShareRecord),
      indexHooks(
        this.#sharesInto,
        (s) => s.target,
        (_s, key) => key,
      ),
    )
    this.#certs = store.table(
      'projects.cert',
      protoCodec<ProjectCertificateRecord>(pb.ProjectCertificateRecord),
      indexHooks(
        this.#certsOf,
        (c) => `${c.project}/${c.user}`,
        (_c, key) => key,
      ),
    )
  }

  // ---- queries (this replica; callers outside apply read after a read barrier)

  project(name: string): ProjectRecord | undefined {
    return this.#projects.get(name)
  }

  /** Every project in name order, at most `limit`. */
  projects(limit = PROJECTS_MAX): ProjectRecord[] {
    const out: ProjectRecord[] = []
    for (const [, p] of this.#projects.range('')) {
      if (out.length >= limit) break
      out.push(p)
    }
    return out
  }

  /** The projects `user` is a member of, in name order. */
  projectsOf(user: string): string[] {
    return [...(this.#byUser.get(user) ?? [])].sort()
  }

  /**
   * Whether a key of `user` may act in `project`: PROJECT_NOT_FOUND unless `user` is a member of it. A
   * project that does not exist is for admins only (the job runtime makes task keys for a job's project
   * label; such a principal reaches nothing under /Projects, see rules.ts).
   */
  requireKeyProject(project: string, user: string, isSuperuser: boolean): void {
    if (this.project(project) === undefined) {
      if (isSuperuser) return
    } else if (this.member(project, user) !== undefined) return
    throw new ProjectError(
      'PROJECT_NOT_FOUND',
      `${user} is not a member of a project ${JSON.stringify(project)}`,
    )
  }

  member(project: string, user: string): MemberRecord | undefined {
    return this.#members.get(`${project}/${user}`)
  }

  members(project: string): MemberRecord[] {
    return [...this.#members.range(`${project}/`, `${project}0`)].map(([, m]) => m)
  }

  dataset(project: string, name: string): DatasetRecord | undefined {
    return this.#datasets.get(`${project}/${name}`)
  }

  datasets(project: string): DatasetRecord[] {
    return [...this.#datasets.range(`${project}/`, `${project}0`)].map(([, d]) => d)
  }

  share(project: string, dataset: string, target: string): ShareRecord | undefined {
    return this.#shares.get(`${project}/${dataset}/${target}`)
  }

  /** The shares of one dataset, by target. */
  sharesOf(project: string, dataset: string): ShareRecord[] {
    return [...this.#shares.range(`${project}/${dataset}/`, `${project}/${dataset}0`)].map(([, s]) => s)
  }

  /** The datasets other projects shared with `target`, sorted by owner then dataset. */
  sharesInto(target: string): ShareRecord[] {
    return [...(this.#sharesInto.get(target) ?? [])].sort().map((k) => this.#shares.get(k)!)
  }

  certificate(serial: string): ProjectCertificateRecord | undefined {
    return this.#certs.get(serial)
  }

  /** The certificate rows of `user` in `project` (every member's when no user), oldest first. */
  certificates(project: string, user?: string): ProjectCertificateRecord[] {
    const users = user !== undefined ? [user] : this.members(project).map((m) => m.user)
    return users
      .flatMap((u) => [...(this.#certsOf.get(`${project}/${u}`) ?? [])].map((k) => this.#certs.get(k)!))
      .sort((a, b) => a.issuedMs - b.issuedMs || (a.serial < b.serial ? -1 : 1))
  }

  /**
   * Whether a project-user certificate still authenticates `user` acting in `project` at `nowMs`:
   * recorded for exactly them, not revoked, not expired, the user still a member. Throws the
   * AuthError (401) that says why not. The authenticator calls it on every request, after the read
   * barrier; the auth guard at every commit.
   */
  checkCertificate(serial: string, project: string, user: string, nowMs: number): void {
    const c = this.#certs.get(serial)
    if (c === undefined)
      throw new AuthError(
        'CREDENTIAL_REVOKED',
        `project certificate ${serial} is not (or no longer) recorded`,
      )
    if (c.project !== project || c.user !== user)
      throw new AuthError('CREDENTIAL_INVALID', `certificate ${serial} is not ${project}__${user}'s`)
    if (c.revokedMs !== 0)
      throw new AuthError(
        'CREDENTIAL_REVOKED',
        `project certificate ${serial} was revoked at ${new Date(c.revokedMs).toISOString()}`,
      )
    if (c.notAfterMs <= nowMs)
      throw new AuthError(
        'CREDENTIAL_EXPIRED',
        `project certificate ${serial} expired at ${new Date(c.notAfterMs).toISOString()}`,
      )
    if (this.member(project, user) === undefined)
      throw new AuthError('CREDENTIAL_REVOKED', `${user} is no longer a member of project ${project}`)
  }

  // ---- apply

  apply(ctx: ApplyContext): unknown {
    const cmd = ctx.cmd
    if (cmd.user === '') throw new ProjectError('PROJECT_ACCESS_DENIED', 'the command carries no user')
    switch (cmd.op) {
      case 'createProject':
        return this.createProject(ctx, cmd.createProject!)
      case 'deleteProject':
        return this.deleteProject(ctx, cmd.deleteProject!)
      case 'setMember':
        return this.setMember(ctx, cmd.setMember!)
      case 'removeMember':
        return this.removeMember(ctx, cmd.removeMember!)
      case 'createDataset':
        return this.createDataset(ctx, cmd.createDataset!)
      case 'deleteDataset':
        return this.deleteDataset(ctx, cmd.deleteDataset!)
      case 'shareDataset':
        return this.shareDataset(ctx, cmd.shareDataset!)
      case 'unshareDataset':
        return this.unshareDataset(ctx, cmd.unshareDataset!)
      case 'setProjectQuota':
        return this.setProjectQuota(ctx, cmd.setProjectQuota!)
      case 'issueProjectCertificate':
        return this.issueCertificate(ctx, cmd.issueProjectCertificate!)
      case 'revokeProjectCertificate':
        return this.revokeCertificate(ctx, cmd.revokeProjectCertificate!)
    }
    throw new Error(`projects: op ${cmd.op} is not projects'`)
  }

  private createProject(ctx: ApplyContext, op: pb.ICreateProject): ProjectOpResults['createProject'] {
    const name = op.name ?? ''
    checkProjectName(name, 'project')
    const { cmd } = ctx
    if (this.#projects.has(name)) throw new ProjectError('PROJECT_EXISTS', `project ${name} exists already`)
    if (this.#projects.size >= PROJECTS_MAX)
      throw new ProjectError('PROJECT_LIMIT', `the cluster has ${PROJECTS_MAX} projects`)
    this.checkUserRoom(cmd.user)
    const fs = this.namespace().asSystem(ctx)
    if (fs.exists(projectPath(name)))
      throw new ProjectError('PROJECT_EXISTS', `${projectPath(name)} exists already in the file system`)
    if (!fs.exists('/Projects'))
      fs.mkdir('/Projects', {
        owner: ctx.settings.superuser,
        group: ctx.settings.supergroup,
        permission: 0o755,
      })
    const dir = { owner: ctx.settings.superuser, group: name, permission: PROJECT_DIR_MODE }
    fs.mkdir(projectPath(name), dir)
    this.#projects.put(name, { name, createdMs: cmd.nowMs, createdBy: cmd.user, gpuHoursQuota: -1 })
    for (const d of DEFAULT_DATASETS) {
      fs.mkdir(datasetPath(name, d), dir)
      this.#datasets.put(`${name}/${d}`, {
        project: name,
        name: d,
        sensitive: false,
        createdMs: cmd.nowMs,
        createdBy: cmd.user,
      })
    }
    this.#members.put(`${name}/${cmd.user}`, {
      project: name,
      user: cmd.user,
      role: 'DATA_OWNER',
      addedMs: cmd.nowMs,
      addedBy: cmd.user,
    })
    return { name }
  }

  private deleteProject(ctx: ApplyContext, op: pb.IDeleteProject): ProjectOpResults['deleteProject'] {
    const name = op.name ?? ''
    this.requireOwner(ctx, name, 'delete the project')
    if ((op.confirm ?? '') !== name)
      throw new ProjectError('CONFIRM_REQUIRED', `deleting project ${name} needs confirm=${name}`)
    const deleted = this.namespace().asSystem(ctx).deleteTree(projectPath(name))
    for (const s of this.sharesInto(name)) this.#shares.delete(shareKey(s))
    for (const [k] of [...this.#shares.range(`${name}/`, `${name}0`)]) this.#shares.delete(k)
    for (const [k] of [...this.#datasets.range(`${name}/`, `${name}0`)]) this.#datasets.delete(k)
    for (const c of this.certificates(name)) this.#certs.delete(c.serial)
    for (const [k] of [...this.#members.range(`${name}/`, `${name}0`)]) this.#members.delete(k)
    this.#projects.delete(name)
    return { name, deleted }
  }

  private setMember(ctx: ApplyContext, op: pb.ISetMember): ProjectOpResults['setMember'] {
    const project = op.project ?? ''
    this.requireOwner(ctx, project, 'add members or change roles')
    const user = op.user ?? ''
    if (!USER_RE.test(user))
      throw new ProjectError(
        'INVALID_PROJECT_REQUEST',
        'a user name is 1..64 characters of [A-Za-z0-9._-], starting with a letter or _',
      )
    const role = op.role as ProjectRole
    if (!ROLES.includes(role))
      throw new ProjectError('INVALID_PROJECT_REQUEST', `a role is one of ${ROLES.join(', ')}`)
    const prev = this.member(project, user)
    if (prev === undefined) {
      if (this.members(project).length >= MEMBERS_PER_PROJECT_MAX)
        throw new ProjectError('PROJECT_LIMIT', `project ${project} has ${MEMBERS_PER_PROJECT_MAX} members`)
      this.checkUserRoom(user)
    } else if (prev.role === 'DATA_OWNER' && role !== 'DATA_OWNER') this.requireAnotherOwner(project, user)
    const { cmd } = ctx
    this.#members.put(`${project}/${user}`, {
      project,
      user,
      role,
      addedMs: prev?.addedMs ?? cmd.nowMs,
      addedBy: prev?.addedBy ?? cmd.user,
    })
    return { project, user, role, previousRole: prev?.role ?? '' }
  }

  private removeMember(ctx: ApplyContext, op: pb.IRemoveMember): ProjectOpResults['removeMember'] {
    const project = op.project ?? ''
    const user = op.user ?? ''
    this.requireOwner(ctx, project, 'remove members')
    const prev = this.member(project, user)
    if (prev === undefined)
      throw new ProjectError('MEMBER_NOT_FOUND', `${user} is not a member of project ${project}`)
    if (prev.role === 'DATA_OWNER') this.requireAnotherOwner(project, user)
    // Its certificates go with the membership: re-adding the user brings none of them back.
    for (const c of this.certificates(project, user)) this.#certs.delete(c.serial)
    this.#members.delete(`${project}/${user}`)
    return { project, user }
  }

  private createDataset(ctx: ApplyContext, op: pb.ICreateDataset): ProjectOpResults['createDataset'] {
    const project = op.project ?? ''
    const name = op.name ?? ''
    this.requireOwner(ctx, project, 'create datasets')
    checkProjectName(name, 'dataset')
    if (this.dataset(project, name) !== undefined)
      throw new ProjectError('DATASET_EXISTS', `project ${project} has a dataset ${name} already`)
    if (this.datasets(project).length >= DATASETS_PER_PROJECT_MAX)
      throw new ProjectError('PROJECT_LIMIT', `project ${project} has ${DATASETS_PER_PROJECT_MAX} datasets`)
    const fs = this.namespace().asSystem(ctx)
    if (fs.exists(datasetPath(project, name)))
      throw new ProjectError('DATASET_EXISTS', `${datasetPath(project, name)} exists already`)
    fs.mkdir(datasetPath(project, name), {
      owner: ctx.settings.superuser,
      group: project,
      permission: PROJECT_DIR_MODE,
    })
    const sensitive = !!op.sensitive
    this.#datasets.put(`${project}/${name}`, {
      project,
      name,
      sensitive,
      createdMs: ctx.cmd.nowMs,
      createdBy: ctx.cmd.user,
    })
    return { project, name, sensitive }
  }

  private deleteDataset(ctx: ApplyContext, op: pb.IDeleteDataset): ProjectOpResults['deleteDataset'] {
    const project = op.project ?? ''
    const name = op.name ?? ''
    this.requireOwner(ctx, project, 'delete datasets')
    if (this.dataset(project, name) === undefined)
      throw new ProjectError('DATASET_NOT_FOUND', `project ${project} has no dataset ${JSON.stringify(name)}`)
    if ((DEFAULT_DATASETS as readonly string[]).includes(name))
      throw new ProjectError('PROJECT_ACCESS_DENIED', `${name} is a default dataset of every project`)
    this.namespace().asSystem(ctx).deleteTree(datasetPath(project, name))
    for (const s of this.sharesOf(project, name)) this.#shares.delete(shareKey(s))
    this.#datasets.delete(`${project}/${name}`)
    return { project, name }
  }

  private shareDataset(ctx: ApplyContext, op: pb.IShareDataset): ProjectOpResults['shareDataset'] {
    const project = op.project ?? ''
    const dataset = op.dataset ?? ''
    const target = op.target ?? ''
    this.requireOwner(ctx, project, 'share datasets')
    if (dataset.includes('::'))
      throw new ProjectError(
        'SHARE_REFUSED',
        `${dataset} is a dataset shared into ${project}: only its owner project shares it (no chains)`,
      )
    checkDatasetName(dataset)
    if (this.dataset(project, dataset) === undefined)
      throw new ProjectError(
        'DATASET_NOT_FOUND',
        `project ${project} has no dataset ${JSON.stringify(dataset)}`,
      )
    checkProjectName(target, 'project')
    if (target === project) throw new ProjectError('SHARE_REFUSED', 'a project does not share with itself')
    if (!this.#projects.has(target)) throw new ProjectError('PROJECT_NOT_FOUND', `no project ${target}`)
    const access = op.access as ShareAccess
    if (access !== 'read' && access !== 'write')
      throw new ProjectError('INVALID_PROJECT_REQUEST', 'access is "read" or "write"')
    const prev = this.share(project, dataset, target)
    if (prev === undefined && this.sharesOf(project, dataset).length >= SHARES_PER_DATASET_MAX)
      throw new ProjectError(
        'PROJECT_LIMIT',
        `${project}/${dataset} is shared with ${SHARES_PER_DATASET_MAX} projects`,
      )
    this.#shares.put(`${project}/${dataset}/${target}`, {
      project,
      dataset,
      target,
      access,
      sharedMs: ctx.cmd.nowMs,
      sharedBy: ctx.cmd.user,
    })
    return { project, dataset, target, access }
  }

  private unshareDataset(ctx: ApplyContext, op: pb.IUnshareDataset): ProjectOpResults['unshareDataset'] {
    const project = op.project ?? ''
    const dataset = op.dataset ?? ''
    const target = op.target ?? ''
    this.requireOwner(ctx, project, 'unshare datasets')
    if (this.share(project, dataset, target) === undefined)
      throw new ProjectError(
        'SHARE_NOT_FOUND',
        `${project}/${dataset} is not shared with ${JSON.stringify(target)}`,
      )
    this.#shares.delete(`${project}/${dataset}/${target}`)
    return { project, dataset, target }
  }

  private setProjectQuota(ctx: ApplyContext, op: pb.ISetProjectQuota): ProjectOpResults['setProjectQuota'] {
    if (!ctx.isSuperuser)
      throw new MetaError('SUPERUSER_REQUIRED', `${ctx.cmd.user} may not set project quotas: admins only`)
    const project = op.project ?? ''
    const p = this.#projects.get(project)
    if (p === undefined) throw new ProjectError('PROJECT_NOT_FOUND', `no project ${JSON.stringify(project)}`)
    const storage = Number(op.storageBytes ?? -1)
    const files = Number(op.fileCount ?? -1)
    const gpuHours = Number(op.gpuHours ?? -1)
    for (const [what, v] of [
      ['storageBytes', storage],
      ['fileCount', files],
    ] as const)
      if (!Number.isSafeInteger(v) || (v < 1 && v !== -1))
        throw new ProjectError('INVALID_PROJECT_REQUEST', `${what} is a positive integer, or -1 for none`)
    if (!Number.isFinite(gpuHours) || (gpuHours < 0 && gpuHours !== -1))
      throw new ProjectError('INVALID_PROJECT_REQUEST', 'gpuHours is a non-negative number, or -1 for none')
    this.namespace().asSystem(ctx).setQuota(projectPath(project), files, storage)
    this.#projects.put(project, { ...p, gpuHoursQuota: gpuHours })
    return { project }
  }

  private issueCertificate(
    ctx: ApplyContext,
    op: pb.IIssueProjectCertificate,
  ): ProjectOpResults['issueProjectCertificate'] {
    const { cmd } = ctx
    const project = op.project ?? ''
    const user = op.user ?? ''
    if (this.project(project) === undefined || this.member(project, cmd.user) === undefined)
      throw new ProjectError('PROJECT_NOT_FOUND', `no project ${JSON.stringify(project)} (or not a member)`)
    if (user !== cmd.user)
      throw new ProjectError(
        'PROJECT_ACCESS_DENIED',
        `${cmd.user} may get project certificates for itself only, not for ${JSON.stringify(user)}`,
      )
    if (cmd.project !== '' && cmd.project !== project)
      throw new ProjectError(
        'PROJECT_ACCESS_DENIED',
        `${cmd.user} acts in project ${cmd.project}: it may not get a certificate of project ${project}`,
      )
    const serial = op.serial ?? ''
    if (!SERIAL_RE.test(serial))
      throw new ProjectError('INVALID_CERTIFICATE_REQUEST', 'a serial is lowercase hex without leading zeros')
    if (this.#certs.has(serial))
      throw new ProjectError('INVALID_CERTIFICATE_REQUEST', `serial ${serial} is taken; sign again`)
    const notBeforeMs = Number(op.notBeforeMs ?? 0)
    const notAfterMs = Number(op.notAfterMs ?? 0)
    const maxMs = ctx.settings.projectCertValidityMaxS * 1000
    if (!(notAfterMs > cmd.nowMs && notAfterMs > notBeforeMs))
      throw new ProjectError('INVALID_CERTIFICATE_REQUEST', 'the certificate would end before it is recorded')
    if (notAfterMs - cmd.nowMs > maxMs)
      throw new ProjectError(
        'INVALID_CERTIFICATE_REQUEST',
        `a project certificate lasts at most ${ctx.settings.projectCertValidityMaxS} s (setting projectCertValidityMaxS)`,
      )
    if (notBeforeMs < cmd.nowMs - CERT_BACKDATE_MS_MAX)
      throw new ProjectError('INVALID_CERTIFICATE_REQUEST', 'notBefore is backdated by more than an hour')
    this.makeRoomForCertificate(project, user, cmd.nowMs)
    const row: ProjectCertificateRecord = {
      serial,
      project,
      user,
      notBeforeMs,
      notAfterMs,
      revokedMs: 0,
      revokedBy: '',
      issuedMs: cmd.nowMs,
    }
    this.#certs.put(serial, row)
    return row
  }

  /** At the limit, drops the member's oldest revoked or expired rows; refuses when all are live. */
  private makeRoomForCertificate(project: string, user: string, nowMs: number): void {
    const rows = this.certificates(project, user)
    if (rows.length < CERTS_PER_MEMBER_MAX) return
    const dead = rows.filter((c) => c.revokedMs !== 0 || c.notAfterMs <= nowMs)
    const drop = rows.length - CERTS_PER_MEMBER_MAX + 1
    if (dead.length < drop)
      throw new ProjectError(
        'PROJECT_LIMIT',
        `${user} has ${CERTS_PER_MEMBER_MAX} live certificates in ${project}; revoke some first`,
      )
    for (const c of dead.slice(0, drop)) this.#certs.delete(c.serial)
  }

  private revokeCertificate(
    ctx: ApplyContext,
    op: pb.IRevokeProjectCertificate,
  ): ProjectOpResults['revokeProjectCertificate'] {
    const { cmd } = ctx
    const project = op.project ?? ''
    const serial = op.serial ?? ''
    const me = this.member(project, cmd.user)
    const admin = ctx.isSuperuser && cmd.project === ''
    if (this.project(project) === undefined || (me === undefined && !admin))
      throw new ProjectError('PROJECT_NOT_FOUND', `no project ${JSON.stringify(project)} (or not a member)`)
    if (cmd.project !== '' && cmd.project !== project)
      throw new ProjectError(
        'PROJECT_ACCESS_DENIED',
        `${cmd.user} acts in project ${cmd.project}: it may not revoke certificates of project ${project}`,
      )
    const c = this.#certs.get(serial)
    const mayAll = admin || me?.role === 'DATA_OWNER'
    // Another member's certificate reads as unknown to a Data Scientist.
    if (c === undefined || c.project !== project || (!mayAll && c.user !== cmd.user))
      throw new ProjectError(
        'CERTIFICATE_NOT_FOUND',
        `project ${project} has no certificate ${serial} of yours`,
      )
    if (c.revokedMs !== 0) return c
    const row = { ...c, revokedMs: cmd.nowMs, revokedBy: cmd.user }
    this.#certs.put(serial, row)
    return row
  }

  // ---- rules of who may

  /** The project exists and the caller is one of its Data Owners, or an admin acting in no project. */
  private requireOwner(ctx: ApplyContext, project: string, what: string): ProjectRecord {
    const p = this.#projects.get(project)
    const { cmd } = ctx
    const m = this.member(project, cmd.user)
    if (p === undefined || (m === undefined && !ctx.isSuperuser))
      throw new ProjectError('PROJECT_NOT_FOUND', `no project ${JSON.stringify(project)} (or not a member)`)
    if (cmd.project !== '' && cmd.project !== project)
      throw new ProjectError(
        'PROJECT_ACCESS_DENIED',
        `${cmd.user} acts in project ${cmd.project}: it may not ${what} of project ${project}`,
      )
    if (m?.role === 'DATA_OWNER') return p
    if (ctx.isSuperuser && cmd.project === '') return p
    throw new ProjectError(
      'PROJECT_ACCESS_DENIED',
      `${cmd.user} is a ${m?.role ?? 'non-member'} of ${project}: only Data Owners ${what}`,
    )
  }

  private requireAnotherOwner(project: string, user: string): void {
    if (!this.members(project).some((m) => m.role === 'DATA_OWNER' && m.user !== user))
      throw new ProjectError('LAST_DATA_OWNER', `${user} is the last Data Owner of ${project}`)
  }

  private checkUserRoom(user: string): void {
    if ((this.#byUser.get(user)?.size ?? 0) >= PROJECTS_PER_USER_MAX)
      throw new ProjectError('PROJECT_LIMIT', `${user} is a member of ${PROJECTS_PER_USER_MAX} projects`)
  }
}

const USER_RE = /^[A-Za-z_][A-Za-z0-9._-]{0,63}$/

function shareKey(s: ShareRecord): string {
  return `${s.project}/${s.dataset}/${s.target}`
}

function indexHooks<V>(
  index: Map<string, Set<string>>,
  group: (v: V) => string,
  item: (v: V, key: string) => string,
) {
  const add = (key: string, v: V): void => {
    const g = group(v)
    let s = index.get(g)
    if (s === undefined) index.set(g, (s = new Set()))
    s.add(item(v, key))
  }
  const remove = (key: string, v: V): void => {
    const g = group(v)
    const s = index.get(g)
    s?.delete(item(v, key))
    if (s?.size === 0) index.delete(g)
  }
  return {
    onSet: (key: string, prev: V | undefined, next: V) => {
      if (prev !== undefined) remove(key, prev)
      add(key, next)
    },
    onDelete: (key: string, prev: V) => remove(key, prev),
    onClear: () => index.clear(),
  }
}
