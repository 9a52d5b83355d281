/**
 * Jobs belong to projects (src/scheduler/access.ts): who may submit to, see and kill a project's jobs,
 * decided from the projects module's replicated member table — through the jobs service (the API's
 * path) and inside the jobs module's apply (a command proposed around the service). One in-process
 * replica: the real state machine with the fs namespace, the projects and the jobs modules.
 */
import { describe, expect, it } from 'vitest'
import type { Principal } from '../../src/auth/index.js'
import { namespaceModule, type Namespace } from '../../src/fs/index.js'
import { createLocalGroup, createMetaStateMachine } from '../../src/meta/index.js'
import { createProjectService, projectsModule, type ProjectStore } from '../../src/projects/index.js'
import {
  JobService,
  createJobProposer,
  jobsModule,
  projectJobAccess,
  type JobProjects,
  type JobsModule,
} from '../../src/scheduler/index.js'

function user(name: string, project?: string, superuser = false): Principal {
  return {
    user: name,
    groups: superuser ? ['admin'] : [],
    via: 'simple',
    superuser,
    ...(project ? { project } : {}),
  }
}

const ADMIN = { ...user('hopsd', undefined, true) }
const SUBMISSION = { name: 'train', command: ['true'], gpus: 1 }

async function setup() {
  let ns: Namespace | undefined
  const sm = createMetaStateMachine({
    modules: [(store) => (ns = namespaceModule()(store)), projectsModule(() => ns!), jobsModule()],
  })
  const store = (): ProjectStore => sm.module<ProjectStore>('projects')
  const membership: JobProjects = { roleOf: (p, u) => store().member(p, u)?.role }
  const jobs = (): JobsModule => sm.module<JobsModule>('jobs')
  jobs().attachProjects(membership)
  const group = createLocalGroup(sm)
  const clock = { now: () => 1_000_000, setTimeout: () => 0, clearTimeout: () => undefined }
  const propose = createJobProposer({ group, clock, node: { user: 'hopsd', groups: [] } })
  const service = new JobService({
    self: 'n1',
    propose,
    jobs,
    capacity: () => ({
      nodes: 1,
      gpusMax: 8,
      gpusMaxByModel: new Map(),
      cpusMax: 64,
      memoryMiBMax: 1 << 20,
      gpusTotal: 8,
      zones: new Set(['z1']),
    }),
    isSuperuser: (c) => c.superuser === true,
    access: projectJobAccess(membership),
  })
  const projects = createProjectService({ consensus: group, stateMachine: sm, nodeId: 'n1' })
  // alice owns `fraud` with bob as a Data Scientist; carol owns `ads`.
  await projects.create(user('alice'), 'fraud')
  await projects.setMember(user('alice'), 'fraud', 'bob', 'DATA_SCIENTIST')
  await projects.create(user('carol'), 'ads')
  return { sm, service, propose, projects, jobs }
}

const codeOf = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: unknown) => String((e as { code?: string }).code ?? e),
  )

describe('jobs belong to projects', () => {
  it('members submit with their own credential or acting in the project; others are refused', async () => {
    const { service, jobs } = await setup()
    expect(await codeOf(service.submit(user('bob'), { project: 'fraud', ...SUBMISSION }))).toBe('ok')
    expect(await codeOf(service.submit(user('alice', 'fraud'), { project: 'fraud', ...SUBMISSION }))).toBe(
      'ok',
    )
    // Attacks: a non-member, a member of another project, a member acting in another project.
    expect(await codeOf(service.submit(user('carol'), { project: 'fraud', ...SUBMISSION }))).toBe(
      'JOB_ACCESS_DENIED',
    )
    expect(await codeOf(service.submit(user('carol', 'ads'), { project: 'fraud', ...SUBMISSION }))).toBe(
      'JOB_ACCESS_DENIED',
    )
    expect(await codeOf(service.submit(user('alice', 'ads'), { project: 'fraud', ...SUBMISSION }))).toBe(
      'JOB_ACCESS_DENIED',
    )
    // A project that does not exist has no members.
    expect(await codeOf(service.submit(user('alice'), { project: 'nope', ...SUBMISSION }))).toBe(
      'JOB_ACCESS_DENIED',
    )
    expect(
      jobs()
        .list({})
        .map((j) => j.owner),
    ).toEqual(['bob', 'alice'])
    // Admins submit to any project name, as before projects.
    expect(await codeOf(service.submit(ADMIN, { project: 'nope', ...SUBMISSION }))).toBe('ok')
  })

  it('the jobs module refuses a non-member submission proposed around the service, changing nothing', async () => {
    const { propose, jobs } = await setup()
    const cmd = {
      submitJob: {
        project: 'fraud',
        name: 'x',
        placer: 'n1',
        spec: { command: ['true'], gpus: 1, tasks: 1 },
      },
    }
    expect(await codeOf(propose(cmd, { as: user('carol') }))).toBe('JOB_ACCESS_DENIED')
    expect(await codeOf(propose(cmd, { as: user('alice', 'ads') }))).toBe('JOB_ACCESS_DENIED')
    expect(jobs().list({})).toEqual([])
    expect(await codeOf(propose(cmd, { as: user('bob', 'fraud') }))).toBe('ok')
  })

  it("members see the project's jobs; non-members and principals of other projects do not", async () => {
    const { service } = await setup()
    const { id } = await service.submit(user('alice'), { project: 'fraud', ...SUBMISSION })
    expect((await service.get(user('bob'), id)).id).toBe(id)
    expect((await service.get(user('bob', 'fraud'), id)).id).toBe(id)
    expect((await service.list(user('bob'))).map((j) => j.id)).toEqual([id])
    expect(await codeOf(service.get(user('carol'), id))).toBe('JOB_NOT_FOUND')
    expect(await codeOf(service.get(user('alice', 'ads'), id))).toBe('JOB_NOT_FOUND')
    expect(await service.list(user('carol'))).toEqual([])
    expect((await service.get(ADMIN, id)).id).toBe(id)
  })

  it('kills: the submitter, Data Owners and admins; not another Data Scientist, not a non-member', async () => {
    const { service, projects, propose } = await setup()
    await projects.setMember(user('alice'), 'fraud', 'dan', 'DATA_SCIENTIST')
    const a = (await service.submit(user('bob'), { project: 'fraud', ...SUBMISSION })).id
    const b = (await service.submit(user('bob'), { project: 'fraud', ...SUBMISSION })).id
    const c = (await service.submit(user('bob'), { project: 'fraud', ...SUBMISSION })).id
    expect(await codeOf(service.kill(user('dan'), a))).toBe('JOB_ACCESS_DENIED')
    expect(await codeOf(service.kill(user('carol'), a))).toBe('JOB_NOT_FOUND')
    // Around the service, apply refuses too.
    expect(await codeOf(propose({ killJob: { jobId: a } }, { as: user('dan') }))).toBe('JOB_ACCESS_DENIED')
    expect(await codeOf(propose({ killJob: { jobId: a } }, { as: user('carol') }))).toBe('JOB_ACCESS_DENIED')
    expect((await service.kill(user('bob'), a)).state).toBe('KILLED')
    expect((await service.kill(user('alice', 'fraud'), b)).state).toBe('KILLED')
    expect((await service.kill(ADMIN, c)).state).toBe('KILLED')
  })

  it('a member removed from the project is refused on the next request, and cannot kill its own job', async () => {
    const { service, projects, propose } = await setup()
    const { id } = await service.submit(user('bob'), { project: 'fraud', ...SUBMISSION })
    await projects.removeMember(user('alice'), 'fraud', 'bob')
    expect(await codeOf(service.submit(user('bob'), { project: 'fraud', ...SUBMISSION }))).toBe(
      'JOB_ACCESS_DENIED',
    )
    expect(await codeOf(service.get(user('bob'), id))).toBe('JOB_NOT_FOUND')
    expect(await service.list(user('bob'))).toEqual([])
    expect(await codeOf(service.kill(user('bob'), id))).toBe('JOB_NOT_FOUND')
    expect(await codeOf(propose({ killJob: { jobId: id } }, { as: user('bob') }))).toBe('JOB_ACCESS_DENIED')
    // Added back, bob reaches the project's jobs again (nothing cached the refusal either).
    await projects.setMember(user('alice'), 'fraud', 'bob', 'DATA_SCIENTIST')
    expect((await service.get(user('bob'), id)).id).toBe(id)
  })
})
