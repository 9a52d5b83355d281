/**
 * Projects on one in-process replica (the real state machine with the fs namespace and the projects
 * module, a local group): the commands, their refusals (nothing changed), and file access decided for
 * project-user principals — the role × operation × (own, shared read-only, shared read-write, foreign)
 * matrix through the fs service. test/projects/cluster.test.ts runs the same rules on real daemons.
 */
import { describe, expect, it } from 'vitest'
import type { Principal } from '../../src/auth/index.js'
import { createFsService, namespaceModule, type Namespace } from '../../src/fs/index.js'
import { createLocalGroup, createMetaStateMachine } from '../../src/meta/index.js'
import { createProjectService, projectsModule, type ProjectStore } from '../../src/projects/index.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

function user(name: string, project?: string, superuser = false): Principal {
  return {
    user: name,
    groups: superuser ? ['admin'] : [],
    via: 'simple',
    superuser,
    ...(project ? { project } : {}),
  }
}

const ADMIN = user('admin', undefined, true)

function setup() {
  let ns: Namespace | undefined
  const sm = createMetaStateMachine({
    modules: [(store) => (ns = namespaceModule()(store)), projectsModule(() => ns!)],
  })
  const group = createLocalGroup(sm)
  const fs = createFsService({ consensus: group, stateMachine: sm })
  const projects = createProjectService({ consensus: group, stateMachine: sm, nodeId: 'n1' })
  return { sm, fs, projects, store: () => sm.module<ProjectStore>('projects') }
}

/** alice owns `a` (datasets: d read-shared with b, w write-shared with b, s sensitive); bob owns `b`; carol is a DS of `a`. */
async function world() {
  const w = setup()
  const { projects, fs } = w
  await projects.create(user('alice'), 'a')
  await projects.create(user('bob'), 'b')
  await projects.create(user('dave'), 'c')
  await projects.setMember(user('alice'), 'a', 'carol', 'DATA_SCIENTIST')
  await projects.setMember(user('bob'), 'b', 'carol', 'DATA_SCIENTIST')
  await projects.createDataset(user('alice'), 'a', 'd', false)
  await projects.createDataset(user('alice'), 'a', 'w', false)
  await projects.createDataset(user('alice'), 'a', 's', true)
  await projects.share(user('alice'), 'a', 'd', 'b', 'read')
  await projects.share(user('alice'), 'a', 'w', 'b', 'write')
  const aliceA = user('alice', 'a')
  for (const ds of ['d', 'w', 's']) await fs.create(aliceA, `/Projects/a/${ds}/f.txt`, enc(`${ds}-data`))
  await fs.create(user('bob', 'b'), '/Projects/b/Resources/b.txt', enc('b-data'))
  return w
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'allow'
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

describe('projects (one replica)', () => {
  it('lays out /Projects/<name> with the default datasets; the creator is its Data Owner', async () => {
    const { projects, fs } = setup()
    await projects.create(user('alice'), 'fraud')
    const names = (await fs.list(ADMIN, '/Projects/fraud')).entries.map((e) => e.name)
    expect(names).toEqual(['Experiments', 'Jupyter', 'Logs', 'Models', 'Resources'])
    const view = await projects.describe(user('alice'), 'fraud')
    expect(view.members).toMatchObject([{ user: 'alice', role: 'DATA_OWNER' }])
    expect(view.role).toBe('DATA_OWNER')
    expect(await projects.list(user('alice'))).toEqual([{ name: 'fraud', role: 'DATA_OWNER' }])
    expect(await projects.list(user('bob'))).toEqual([])
    expect((await projects.list(ADMIN)).map((p) => p.name)).toEqual(['fraud'])
  })

  it('refuses bad names and tricks with the reason, changing nothing', async () => {
    const { projects, sm, fs } = setup()
    const before = sm.appliedIndex
    for (const bad of ['A', '9a', 'a__b', 'a::b', 'a/b', '..', 'a-b', '', 'x'.repeat(64), 'a%2Fb']) {
      const err = await projects.create(user('alice'), bad).catch((e: unknown) => e)
      expect((err as { code: string }).code, bad).toBe('INVALID_PROJECT_NAME')
    }
    await projects.create(user('alice'), 'a')
    for (const bad of ['x::y', 'a__b', 'Bad', '../b']) {
      const err = await projects.createDataset(user('alice'), 'a', bad, false).catch((e: unknown) => e)
      expect((err as { code: string }).code, bad).toBe('INVALID_PROJECT_NAME')
    }
    expect((await fs.list(ADMIN, '/Projects/a')).entries).toHaveLength(5)
    expect(sm.appliedIndex).toBeGreaterThan(before)
    // Deletion needs the confirmation; the project is still whole after a refusal.
    expect(await outcome(projects.delete(user('alice'), 'a', ''))).toBe('CONFIRM_REQUIRED')
    expect(await outcome(projects.delete(user('alice'), 'a', 'b'))).toBe('CONFIRM_REQUIRED')
    expect((await fs.list(ADMIN, '/Projects/a')).entries).toHaveLength(5)
    await projects.delete(user('alice'), 'a', 'a')
    expect(await outcome(fs.stat(ADMIN, '/Projects/a'))).toBe('FILE_NOT_FOUND')
    expect(await projects.list(user('alice'))).toEqual([])
  })

  it('members and roles: only Data Owners manage; the last Data Owner stays; effective on the next command', async () => {
    const { projects, fs } = await world()
    expect(await outcome(projects.setMember(user('carol'), 'a', 'eve', 'DATA_OWNER'))).toBe(
      'PROJECT_ACCESS_DENIED',
    )
    expect(await outcome(projects.setMember(user('eve'), 'a', 'eve', 'DATA_OWNER'))).toBe('PROJECT_NOT_FOUND')
    expect(await outcome(projects.removeMember(user('alice'), 'a', 'alice'))).toBe('LAST_DATA_OWNER')
    expect(await outcome(projects.setMember(user('alice'), 'a', 'alice', 'DATA_SCIENTIST'))).toBe(
      'LAST_DATA_OWNER',
    )
    // carol writes as a member; once removed, her next write and read are refused.
    await fs.create(user('carol', 'a'), '/Projects/a/d/carol.txt', enc('x'))
    await projects.removeMember(user('alice'), 'a', 'carol')
    expect(await outcome(fs.create(user('carol', 'a'), '/Projects/a/d/carol2.txt', enc('x')))).toBe(
      'ACCESS_DENIED',
    )
    expect(await outcome(fs.read(user('carol', 'a'), '/Projects/a/d/f.txt'))).toBe('ACCESS_DENIED')
    // A role change holds at once: promoted, carol (re-added) may change permissions.
    await projects.setMember(user('alice'), 'a', 'carol', 'DATA_SCIENTIST')
    expect(await outcome(fs.setPermission(user('carol', 'a'), '/Projects/a/d/f.txt', 0o600))).toBe(
      'ACCESS_DENIED',
    )
    await projects.setMember(user('alice'), 'a', 'carol', 'DATA_OWNER')
    expect(await outcome(fs.setPermission(user('carol', 'a'), '/Projects/a/d/f.txt', 0o600))).toBe('allow')
  })

  it('keys acting in a project: members only; a project label that is no project: admins only', async () => {
    const { store, projects } = await world()
    expect(() => store().requireKeyProject('a', 'carol', false)).not.toThrow()
    expect(() => store().requireKeyProject('a', 'eve', false)).toThrow(/not a member/)
    expect(() => store().requireKeyProject('a', 'eve', true)).toThrow(/not a member/)
    expect(() => store().requireKeyProject('demo', 'eve', true)).not.toThrow()
    expect(() => store().requireKeyProject('demo', 'eve', false)).toThrow(/not a member/)
    expect(await outcome(projects.setMember(user('alice'), 'a', 'eve', 'OWNER' as never))).toBe(
      'INVALID_PROJECT_REQUEST',
    )
    expect(await outcome(projects.setMember(user('alice'), 'a', 'e/ve', 'DATA_OWNER'))).toBe(
      'INVALID_PROJECT_REQUEST',
    )
  })

  it('files made by a project-user are owned by <project>__<user>', async () => {
    const { fs } = await world()
    expect((await fs.stat(ADMIN, '/Projects/a/d/f.txt')).owner).toBe('a__alice')
  })

  it('the role × operation × project matrix (fs service)', async () => {
    const { fs } = await world()
    // Principals: carol acting in a (DS of a) or in b (DS of b, which a shared d read and w write with).
    const cases: [string, Principal, () => Promise<unknown>, string][] = []
    const add = (name: string, p: Principal, op: (p: Principal) => Promise<unknown>, want: string) =>
      cases.push([name, p, () => op(p), want])
    const DO = user('alice', 'a')
    const DS = user('carol', 'a')
    const B = user('carol', 'b')
    const NON = user('eve', 'a')
    for (const [role, p, own] of [
      ['DO', DO, 'allow'],
      ['DS', DS, 'allow'],
      ['non-member', NON, 'ACCESS_DENIED'],
      ['admin', ADMIN, 'allow'],
    ] as const) {
      add(`${role} list own`, p, (c) => fs.list(c, '/Projects/a/d'), own)
      add(`${role} read own`, p, (c) => fs.read(c, '/Projects/a/d/f.txt'), own)
      add(`${role} write own`, p, (c) => fs.create(c, `/Projects/a/d/${c.user}.new`, enc('x')), own)
      add(
        `${role} rename inside own`,
        p,
        (c) => fs.rename(c, '/Projects/a/d/f.txt', '/Projects/a/d/g.txt'),
        own,
      )
      add(`${role} rename back`, p, (c) => fs.rename(c, '/Projects/a/d/g.txt', '/Projects/a/d/f.txt'), own)
      add(`${role} delete own`, p, (c) => fs.delete(c, `/Projects/a/d/${c.user}.new`), own)
      add(
        `${role} read foreign`,
        p,
        (c) => fs.read(c, '/Projects/b/Resources/b.txt'),
        role === 'admin' ? 'allow' : 'ACCESS_DENIED',
      )
      add(
        `${role} list foreign`,
        p,
        (c) => fs.list(c, '/Projects/b'),
        role === 'admin' ? 'allow' : 'ACCESS_DENIED',
      )
    }
    add('DS chmod dataset', DS, (c) => fs.setPermission(c, '/Projects/a/d', 0o700), 'ACCESS_DENIED')
    add('DS chmod file', DS, (c) => fs.setPermission(c, '/Projects/a/d/f.txt', 0o600), 'ACCESS_DENIED')
    add('DO chmod file', DO, (c) => fs.setPermission(c, '/Projects/a/d/f.txt', 0o640), 'allow')
    add('DS reads sensitive', DS, (c) => fs.read(c, '/Projects/a/s/f.txt'), 'ACCESS_DENIED')
    add('DS lists sensitive', DS, (c) => fs.list(c, '/Projects/a/s'), 'allow')
    add('DO reads sensitive', DO, (c) => fs.read(c, '/Projects/a/s/f.txt'), 'allow')
    // A job's task (a job key) runs inside the project: it reads what its Data Scientist cannot download,
    // and only in its own project.
    const DS_JOB: Principal = { ...DS, via: 'key', job: '7' }
    add('DS job reads sensitive', DS_JOB, (c) => fs.read(c, '/Projects/a/s/f.txt'), 'allow')
    add(
      'DS job of b reads foreign',
      { ...B, via: 'key', job: '8' },
      (c) => fs.read(c, '/Projects/a/s/f.txt'),
      'ACCESS_DENIED',
    )
    add(
      'DS moves sensitive to another dataset',
      DS,
      (c) => fs.rename(c, '/Projects/a/s/f.txt', '/Projects/a/d/s.txt'),
      'ACCESS_DENIED',
    )
    add('DS makes a dataset by mkdir', DS, (c) => fs.mkdirs(c, '/Projects/a/mine'), 'ACCESS_DENIED')
    add(
      'DO deletes a dataset by fs',
      DO,
      (c) => fs.delete(c, '/Projects/a/d', { recursive: true }),
      'ACCESS_DENIED',
    )
    // Shared read-only (d) and read-write (w), seen by b through the alias.
    add('b lists alias dir', B, (c) => fs.list(c, '/Projects/b/a::d'), 'allow')
    add('b reads shared ro', B, (c) => fs.read(c, '/Projects/b/a::d/f.txt'), 'allow')
    add('b writes shared ro', B, (c) => fs.create(c, '/Projects/b/a::d/x', enc('x')), 'ACCESS_DENIED')
    add('b writes shared rw', B, (c) => fs.create(c, '/Projects/b/a::w/x', enc('x')), 'allow')
    add('b deletes in shared rw', B, (c) => fs.delete(c, '/Projects/b/a::w/x'), 'allow')
    add('b chmods shared rw', B, (c) => fs.setPermission(c, '/Projects/b/a::w/f.txt', 0o777), 'ACCESS_DENIED')
    add(
      'b renames shared out into b',
      B,
      (c) => fs.rename(c, '/Projects/b/a::w/f.txt', '/Projects/b/Resources/f.txt'),
      'ACCESS_DENIED',
    )
    add(
      'b renames b data into shared rw',
      B,
      (c) => fs.rename(c, '/Projects/b/Resources/b.txt', '/Projects/b/a::w/b.txt'),
      'ACCESS_DENIED',
    )
    add('b reads a unshared dataset', B, (c) => fs.read(c, '/Projects/a/s/f.txt'), 'ACCESS_DENIED')
    add('b alias of unshared', B, (c) => fs.read(c, '/Projects/b/a::s/f.txt'), 'FILE_NOT_FOUND')
    add('c uses b’s alias', user('dave', 'c'), (c) => fs.read(c, '/Projects/b/a::d/f.txt'), 'ACCESS_DENIED')
    // Outside /Projects a principal of a project reaches nothing; without a project nothing inside.
    add(
      'a principal writes /tmp',
      DO,
      (c) => fs.create(c, '/tmp/leak', enc('x'), { createParent: true }),
      'ACCESS_DENIED',
    )
    add(
      'plain user reads a project',
      user('alice'),
      (c) => fs.read(c, '/Projects/a/d/f.txt'),
      'ACCESS_DENIED',
    )
    add('path trick', B, (c) => fs.read(c, '/Projects/b/../a/d/f.txt'), 'INVALID_PATH')
    add('alias of an alias', B, (c) => fs.read(c, '/Projects/b/a::d/a::d/f.txt'), 'INVALID_PATH')
    const failures: string[] = []
    for (const [name, , run, want] of cases) {
      const got = await outcome(run())
      if (got !== want) failures.push(`${name}: want ${want}, got ${got}`)
    }
    expect(failures).toEqual([])
  })

  it('the alias lists under the sharing project and goes at once when unshared; no chains', async () => {
    const { fs, projects } = await world()
    const B = user('bob', 'b')
    const names = (await fs.list(B, '/Projects/b')).entries.map((e) => e.name)
    expect(names).toContain('a::d')
    expect(names).toContain('a::w')
    expect(dec(await fs.read(B, '/Projects/b/a::d/f.txt'))).toBe('d-data')
    // No bytes copied: one inode, seen under two paths.
    expect((await fs.stat(B, '/Projects/b/a::d/f.txt')).fileId).toBe(
      (await fs.stat(user('alice', 'a'), '/Projects/a/d/f.txt')).fileId,
    )
    expect(await outcome(projects.share(user('bob'), 'b', 'a::d', 'c', 'read'))).toBe('SHARE_REFUSED')
    expect(await outcome(projects.share(user('alice'), 'a', 'd', 'a', 'read'))).toBe('SHARE_REFUSED')
    expect(await outcome(projects.share(user('carol'), 'a', 'd', 'c', 'read'))).toBe('PROJECT_ACCESS_DENIED')
    await projects.unshare(user('alice'), 'a', 'd', 'b')
    expect(await outcome(fs.read(B, '/Projects/b/a::d/f.txt'))).toBe('FILE_NOT_FOUND')
    expect(await outcome(fs.read(B, '/Projects/a/d/f.txt'))).toBe('ACCESS_DENIED')
    expect((await fs.list(B, '/Projects/b')).entries.map((e) => e.name)).not.toContain('a::d')
  })
})
