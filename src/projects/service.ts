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
import {
  checkProjectName,
  projectPath,
  projectUserName,
  type ProjectRole,
  type ShareAccess,
} from './names.js'
import type { ProjectCertificateRecord, ProjectOpResults, ProjectStore, ShareRecord } from './store.js'

type CommandProps = metaProto.meta.Command.$Properties

export interface ProjectServiceInit {
  readonly consensus: ConsensusGroup
  readonly stateMachine: MetaStateMachine
  /** This node's id: commands record which node authenticated their principal. */
  readonly nodeId: string
  readonly clock?: () => number
  /** GPU milliseconds charged to a project so far (the scheduler's jobs module); none: 0. */
  readonly gpuUsageMs?: (project: string) => number
  /** Signs project-user certificates (where the CA key is); none: certificates answer UNAVAILABLE. */
  readonly certificates?: ProjectCertificateSigner
}

/**
 * The cluster CA as the projects area uses it (src/node composes it from src/node/ca and the CA key this
 * node unwrapped). Both functions throw errors with a `code`: CertificateError-like ones for bad input
 * (mapped to INVALID_CERTIFICATE_REQUEST), CA_KEY_UNAVAILABLE / UNAVAILABLE when this node cannot sign.
 */
export interface ProjectCertificateSigner {
  /** The public key of a request (an SPKI PEM, or a CSR whose signature verifies), with the CSR's CN. */
  publicKeyOf(req: {
    publicKeyPem?: string
    csrPem?: string
  }): Promise<{ publicKeyPem: string; subjectCn?: string }>
  /** A fresh serial: lowercase hex, no leading zeros. */
  newSerial(): string
  sign(req: {
    project: string
    user: string
    publicKeyPem: string
    serial: string
    notBeforeMs: number
    notAfterMs: number
  }): Promise<{ certificatePem: string; caCertificatePem: string }>
}

/** What `POST /api/v1/projects/:name/certs` takes. */
export interface ProjectCertificateAsk {
  readonly publicKeyPem?: string
  readonly csrPem?: string
  /** Lifetime in seconds; default min(1 day, the setting projectCertValidityMaxS). */
  readonly ttlS?: number
  /** Must be the caller (certificates are for oneself); default the caller. */
  readonly user?: string
}

/** A certificate as the list route shows it. */
export interface ProjectCertificateView {
  readonly serial: string
  readonly project: string
  readonly user: string
  /** `<project>__<user>`: the certificate's CN. */
  readonly subject: string
  readonly notBefore: string
  readonly notAfter: string
  readonly issued: string
  /** ISO time of the revocation, or null. */
  readonly revoked: string | null
  readonly revokedBy: string
  readonly status: 'valid' | 'expired' | 'revoked'
}

/** A new certificate: the view, and the PEMs the member keeps beside its private key. */
export interface IssuedProjectCertificate extends ProjectCertificateView {
  readonly certificatePem: string
  readonly caCertificatePem: string
  /** The certificate followed by the cluster CA's (what clients that take one file want). */
  readonly chainPem: string
}

const DEFAULT_CERT_TTL_S = 86_400
/** Backdating of notBefore against clock skew: a tenth of the lifetime, a minute at most. */
const CERT_BACKDATE_MS = 60_000

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
  readonly #signer: ProjectCertificateSigner | undefined

  constructor(init: ProjectServiceInit) {
    this.#consensus = init.consensus
    this.#sm = init.stateMachine
    this.#nodeId = init.nodeId
    this.#clock = init.clock ?? Date.now
    this.#gpuUsageMs = init.gpuUsageMs ?? (() => 0)
    this.#signer = init.certificates
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

  // ---- project-user certificates

  /**
   * Issues the caller a certificate of `project` (CN=`<project>__<user>`) for the public key it sent:
   * checked (names, lifetime, membership after a barrier, the CSR's subject) before anything is signed;
   * signed here, where the CA key is; recorded by one command whose apply checks it all again. Only a
   * recorded certificate authenticates, so one signed whose command failed is worth nothing.
   */
  async issueCertificate(
    caller: Principal,
    project: string,
    ask: ProjectCertificateAsk,
    signal?: AbortSignal,
  ): Promise<IssuedProjectCertificate> {
    checkProjectName(project, 'project')
    const user = ask.user ?? caller.user
    if (user !== caller.user)
      throw new ProjectError(
        'PROJECT_ACCESS_DENIED',
        `${caller.user} may get project certificates for itself only, not for ${JSON.stringify(user)}`,
      )
    const acting = caller.project ?? ''
    if (acting !== '' && acting !== project)
      throw new ProjectError(
        'PROJECT_ACCESS_DENIED',
        `${caller.user} acts in project ${acting}: it may not get a certificate of project ${project}`,
      )
    const maxS = this.#sm.settings().projectCertValidityMaxS
    const ttlS = ask.ttlS ?? Math.min(DEFAULT_CERT_TTL_S, maxS)
    if (!Number.isSafeInteger(ttlS) || ttlS < 1 || ttlS > maxS)
      throw new ProjectError(
        'INVALID_CERTIFICATE_REQUEST',
        `ttlS is 1..${maxS} seconds (setting projectCertValidityMaxS)`,
      )
    await this.#consensus.readBarrier({ signal })
    if (this.store.project(project) === undefined || this.store.member(project, user) === undefined)
      throw new ProjectError('PROJECT_NOT_FOUND', `no project ${JSON.stringify(project)} (or not a member)`)
    const signer = this.signer()
    let key: { publicKeyPem: string; subjectCn?: string }
    try {
      key = await signer.publicKeyOf({
        ...(ask.publicKeyPem !== undefined ? { publicKeyPem: ask.publicKeyPem } : {}),
        ...(ask.csrPem !== undefined ? { csrPem: ask.csrPem } : {}),
      })
    } catch (err) {
      throw new ProjectError('INVALID_CERTIFICATE_REQUEST', (err as Error).message)
    }
    const subject = projectUserName(project, user)
    if (key.subjectCn !== undefined && key.subjectCn !== subject)
      throw new ProjectError(
        'PROJECT_ACCESS_DENIED',
        `the request names ${JSON.stringify(key.subjectCn.slice(0, 140))}: ${caller.user} gets ${subject} only`,
      )
    const nowMs = this.#clock()
    const serial = signer.newSerial()
    // X.509 times are whole seconds: the record says exactly what the certificate says.
    const notBeforeMs = wholeSecond(nowMs - Math.min(CERT_BACKDATE_MS, (ttlS * 1000) / 10))
    const notAfterMs = wholeSecond(nowMs + ttlS * 1000)
    const pems = await signer.sign({
      project,
      user,
      publicKeyPem: key.publicKeyPem,
      serial,
      notBeforeMs,
      notAfterMs,
    })
    const row = await this.propose<'issueProjectCertificate'>(
      caller,
      { issueProjectCertificate: { project, user, serial, notBeforeMs, notAfterMs } },
      nowMs,
    )
    return {
      ...certificateView(row, nowMs),
      ...pems,
      chainPem: `${pems.certificatePem.trimEnd()}\n${pems.caCertificatePem.trimEnd()}\n`,
    }
  }

  /** The caller's certificates of `project`; a Data Owner's (or an admin's): every member's. */
  async certificates(
    caller: Principal,
    project: string,
    signal?: AbortSignal,
  ): Promise<ProjectCertificateView[]> {
    await this.#consensus.readBarrier({ signal })
    const store = this.store
    const me = store.member(project, caller.user)
    const acting = caller.project ?? ''
    const admin = caller.superuser && acting === ''
    if (
      store.project(project) === undefined ||
      (me === undefined && !admin) ||
      (acting !== '' && acting !== project)
    )
      throw new ProjectError('PROJECT_NOT_FOUND', `no project ${JSON.stringify(project)} (or not a member)`)
    const all = admin || me?.role === 'DATA_OWNER'
    const nowMs = this.#clock()
    return store.certificates(project, all ? undefined : caller.user).map((c) => certificateView(c, nowMs))
  }

  async revokeCertificate(
    caller: Principal,
    project: string,
    serial: string,
  ): Promise<ProjectCertificateView> {
    const row = await this.propose<'revokeProjectCertificate'>(caller, {
      revokeProjectCertificate: { project, serial: serial.toLowerCase().replace(/^0+(?=.)/, '') },
    })
    return certificateView(row, this.#clock())
  }

  private signer(): ProjectCertificateSigner {
    if (this.#signer === undefined)
      throw new CommandRejected(
        'UNAVAILABLE',
        'this node cannot sign project certificates (no cluster CA here)',
      )
    return this.#signer
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
    nowMs: number = this.#clock(),
  ): Promise<ProjectOpResults[K]> {
    const data = encodeCommand({ ...cmd, ...commandIdentity(caller, this.#nodeId), nowMs })
    const result = (await this.#consensus.propose(data)) as MetaResult
    if (!result.ok) {
      if (isProjectErrorCode(result.code)) throw new ProjectError(result.code, result.message)
      throw new CommandRejected(result.code, result.message)
    }
    return result.value as ProjectOpResults[K]
  }
}

function wholeSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000
}

function certificateView(c: ProjectCertificateRecord, nowMs: number): ProjectCertificateView {
  return {
    serial: c.serial,
    project: c.project,
    user: c.user,
    subject: projectUserName(c.project, c.user),
    notBefore: new Date(c.notBeforeMs).toISOString(),
    notAfter: new Date(c.notAfterMs).toISOString(),
    issued: new Date(c.issuedMs).toISOString(),
    revoked: c.revokedMs === 0 ? null : new Date(c.revokedMs).toISOString(),
    revokedBy: c.revokedBy,
    status: c.revokedMs !== 0 ? 'revoked' : c.notAfterMs <= nowMs ? 'expired' : 'valid',
  }
}

export function createProjectService(init: ProjectServiceInit): ProjectService {
  return new ProjectService(init)
}
