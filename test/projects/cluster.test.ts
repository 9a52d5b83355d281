/**
 * Issue 14 (projects) on a real secure cluster: 3 metadata+datanode nodes in 3 zones and a datanode-only
 * node that forwards. Users alice, bob, carol and eve; alice owns project `a`, bob owns `b`, carol is a
 * Data Scientist of both. Each test attacks what a cluster without the projects rules let through:
 *  - bad names and path tricks → 400/403 with the reason, nothing changed; deletion needs confirm=NAME;
 *  - the role × operation × (own, shared read-only, shared read-write, foreign) matrix through WebHDFS
 *    and the native API, for principals chosen by a project key, X-Hopsd-Project and `project=`;
 *  - the same person in two projects moves nothing between them with either project's credentials;
 *  - unsharing, a member removed, a role changed: refused by the next request on every node;
 *  - audit events of shares, membership and role changes and denials; the CLI; HdfsCLI and fsspec with
 *    a project-scoped key.
 */
import { execFile } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { runProject } from '../../src/cli/project.js'
import { makeTempDir, REPO_ROOT, runHopsd, waitFor, type NodeHandle } from '../helpers/index.js'
import { CLUSTER_TEST_TIMEOUT_MS, useCluster } from '../cluster/harness.js'
import { pythonEnv } from '../helpers/tools.js'
import { call, type Answer, type CallOpts } from '../trust/client.js'

const run = promisify(execFile)
const PYTHON_TIMEOUT_MS = 240_000

describe.sequential('projects on a secure cluster', { timeout: CLUSTER_TEST_TIMEOUT_MS }, () => {
  const c = useCluster('projects', { auth: 'secure' })
  let metas: NodeHandle[] = []
  let all: NodeHandle[] = []
  let dn: NodeHandle
  let admin = ''
  const key: Record<string, string> = {}
  const url = (n: NodeHandle) => n.url

  /** A request as `who` (a user's own key, or a key given), optionally acting in `project` by header. */
  const as = (who: string, opts: CallOpts & { project?: string } = {}): CallOpts => ({
    ...opts,
    key: key[who] ?? who,
    headers: { ...opts.headers, ...(opts.project ? { 'x-hopsd-project': opts.project } : {}) },
  })

  /** A WebHDFS call; a 307 (CREATE's step one) is followed once with the same credential. */
  async function webhdfs(
    n: NodeHandle,
    method: string,
    path: string,
    query: string,
    opts: CallOpts,
  ): Promise<Answer> {
    const first = await call(url(n), method, `/webhdfs/v1${path}?${query}`, { ...opts, body: undefined })
    if (first.status !== 307) return first
    const loc = new URL(String(first.headers['location']))
    return call(loc.origin, method, `${loc.pathname}${loc.search}`, opts)
  }

  beforeAll(
    () =>
      c.guard(async () => {
        await pythonEnv()
        const started = await c.startMany(
          [
            // One GPU worker (declared), so that job submissions get as far as the project's GPU-hour quota.
            {
              zone: 'z1',
              roles: ['metadata', 'datanode', 'gpu'],
              extraArgs: ['--gpus', 'declared:1:T4:16000'],
            },
            { zone: 'z2' },
            { zone: 'z3' },
            { zone: 'z1', roles: ['datanode'] },
          ].map((s) => ({ ...s, roles: s.roles ?? ['metadata', 'datanode'] })),
          { bootstrapExpect: 3 },
        )
        metas = started.slice(0, 3)
        dn = started[3]!
        all = started
        admin = await c.adminKey(90_000)
        key['admin'] = admin
        await waitFor(
          async () => {
            for (const n of all) {
              const r = await call(url(n), 'GET', '/api/v1/cluster', { key: admin })
              if (r.status !== 200 || r.json().leader === null || r.json().voters.length !== 3) return false
            }
            return true
          },
          { timeoutMs: 90_000, intervalMs: 200, what: 'the admin key accepted by every node' },
        )
        for (const name of ['alice', 'bob', 'carol', 'eve']) {
          const u = await call(url(metas[0]!), 'POST', '/api/v1/users', { key: admin, body: { name } })
          expect(u.status, u.text).toBe(201)
          const k = await call(url(metas[1]!), 'POST', '/api/v1/keys', { key: admin, body: { user: name } })
          expect(k.status, k.text).toBe(201)
          key[name] = k.json().key
        }
      }),
    300_000,
  )

  it('creates, lists and describes projects; bad names and tricks are refused with the reason, nothing changed', async () => {
    const a = await call(url(metas[0]!), 'POST', '/api/v1/projects', as('alice', { body: { name: 'a' } }))
    expect(a.status, a.text).toBe(201)
    expect(a.json().role).toBe('DATA_OWNER')
    expect(a.json().datasets.map((d: { path: string }) => d.path)).toEqual([
      '/Projects/a/Experiments',
      '/Projects/a/Jupyter',
      '/Projects/a/Logs',
      '/Projects/a/Models',
      '/Projects/a/Resources',
    ])
    // Through the forwarding node too.
    const b = await call(url(dn), 'POST', '/api/v1/projects', as('bob', { body: { name: 'b' } }))
    expect(b.status, b.text).toBe(201)
    for (const n of all) {
      expect((await call(url(n), 'GET', '/api/v1/projects', as('alice'))).json().projects).toEqual([
        { name: 'a', role: 'DATA_OWNER' },
      ])
      const every = (await call(url(n), 'GET', '/api/v1/projects', as('admin'))).json().projects
      expect(every.map((p: { name: string }) => p.name)).toEqual(['a', 'b'])
    }
    // A non-member learns nothing of a project.
    expect((await call(url(metas[1]!), 'GET', '/api/v1/projects/a', as('eve'))).status).toBe(404)
    const bad: [string, RegExp][] = [
      ['A', /\[a-z0-9_\]/],
      ['a__x', /"__"/],
      ['x::y', /"::"/],
      ['../b', /\[a-z0-9_\]/],
      ['a/b', /\[a-z0-9_\]/],
      ['9x', /starting with a letter/],
    ]
    for (const [name, why] of bad) {
      const r = await call(url(metas[2]!), 'POST', '/api/v1/projects', as('alice', { body: { name } }))
      expect(r.status, name).toBe(400)
      expect(r.json().error.code).toBe('INVALID_PROJECT_NAME')
      expect(r.json().error.message).toMatch(why)
    }
    for (const name of ['x::y', 'a__b', 'Bad']) {
      const r = await call(
        url(metas[0]!),
        'POST',
        '/api/v1/projects/a/datasets',
        as('alice', { body: { name } }),
      )
      expect(r.status, name).toBe(400)
    }
    // A percent-encoded slash in a route parameter is a name with a slash: refused.
    const enc = await call(
      url(metas[0]!),
      'DELETE',
      '/api/v1/projects/a%2F..%2Fb?confirm=a%2F..%2Fb',
      as('alice'),
    )
    expect([400, 404]).toContain(enc.status)
    const noConfirm = await call(url(metas[0]!), 'DELETE', '/api/v1/projects/a', as('alice'))
    expect(noConfirm.status).toBe(400)
    expect(noConfirm.json().error.code).toBe('CONFIRM_REQUIRED')
    const wrong = await call(url(metas[0]!), 'DELETE', '/api/v1/projects/a?confirm=b', as('alice'))
    expect(wrong.status).toBe(400)
    const notOwner = await call(url(metas[0]!), 'DELETE', '/api/v1/projects/b?confirm=b', as('alice'))
    expect(notOwner.status).toBe(404)
    // Nothing changed: the same projects, the same datasets.
    expect(
      (await call(url(metas[1]!), 'GET', '/api/v1/projects', as('admin')))
        .json()
        .projects.map((p: { name: string }) => p.name),
    ).toEqual(['a', 'b'])
    expect(
      (await call(url(metas[1]!), 'GET', '/api/v1/projects/a', as('alice'))).json().datasets,
    ).toHaveLength(5)
    // Delete with the confirmation: the project and its directory go.
    const t = await call(url(metas[0]!), 'POST', '/api/v1/projects', as('eve', { body: { name: 'tmp' } }))
    expect(t.status).toBe(201)
    const del = await call(url(metas[1]!), 'DELETE', '/api/v1/projects/tmp?confirm=tmp', as('eve'))
    expect(del.status, del.text).toBe(200)
    expect((await call(url(metas[2]!), 'GET', '/api/v1/projects/tmp', as('admin'))).status).toBe(404)
    expect((await webhdfs(metas[2]!, 'GET', '/Projects/tmp', 'op=GETFILESTATUS', as('admin'))).status).toBe(
      404,
    )
  })

  it('members, roles, datasets and shares: Data Owners only; each change and denial is an audit event', async () => {
    const n = metas[1]!
    const add = (p: string, who: string, user: string, role: string) =>
      call(url(n), 'POST', `/api/v1/projects/${p}/members`, as(who, { body: { user, role } }))
    expect((await add('a', 'alice', 'carol', 'DATA_SCIENTIST')).status).toBe(201)
    expect((await add('b', 'bob', 'carol', 'DATA_SCIENTIST')).status).toBe(201)
    // A Data Scientist manages nothing; a non-member is told nothing.
    const ds = await add('a', 'carol', 'eve', 'DATA_OWNER')
    expect(ds.status).toBe(403)
    expect(ds.json().error.code).toBe('PROJECT_ACCESS_DENIED')
    expect((await add('a', 'eve', 'eve', 'DATA_OWNER')).status).toBe(404)
    const badRole = await add('a', 'alice', 'eve', 'OWNER')
    expect(badRole.status).toBe(400)
    const last = await call(url(n), 'DELETE', '/api/v1/projects/a/members/alice', as('alice'))
    expect(last.status).toBe(409)
    expect(last.json().error.code).toBe('LAST_DATA_OWNER')
    // A role change is one command: eve joins as Data Scientist, then becomes Data Owner, then leaves.
    expect((await add('a', 'alice', 'eve', 'DATA_SCIENTIST')).json().previousRole).toBe('')
    expect((await add('a', 'alice', 'eve', 'DATA_OWNER')).json().previousRole).toBe('DATA_SCIENTIST')
    expect((await call(url(n), 'DELETE', '/api/v1/projects/a/members/eve', as('alice'))).status).toBe(200)
    for (const [name, sensitive] of [
      ['d', false],
      ['w', false],
      ['s', true],
    ] as const) {
      const r = await call(
        url(n),
        'POST',
        '/api/v1/projects/a/datasets',
        as('alice', { body: { name, sensitive } }),
      )
      expect(r.status, r.text).toBe(201)
    }
    const dsMake = await call(
      url(n),
      'POST',
      '/api/v1/projects/a/datasets',
      as('carol', { body: { name: 'x' } }),
    )
    expect(dsMake.status).toBe(403)
    const share = (who: string, ds: string, project: string, access: string) =>
      call(url(n), 'POST', `/api/v1/projects/a/datasets/${ds}/shares`, as(who, { body: { project, access } }))
    expect((await share('alice', 'd', 'b', 'read')).status).toBe(201)
    expect((await share('alice', 'w', 'b', 'write')).status).toBe(201)
    expect((await share('carol', 'd', 'b', 'write')).status).toBe(403) // Data Scientists cannot share
    expect((await share('alice', 'd', 'a', 'read')).json().error.code).toBe('SHARE_REFUSED')
    // No chains: b cannot pass on what a shared with it.
    const chain = await call(
      url(n),
      'POST',
      '/api/v1/projects/b/datasets/a::d/shares',
      as('bob', { body: { project: 'a', access: 'read' } }),
    )
    expect(chain.status).toBe(400)
    expect(chain.json().error.code).toBe('SHARE_REFUSED')
    const view = (await call(url(metas[2]!), 'GET', '/api/v1/projects/b', as('bob'))).json()
    expect(view.shared.map((s: { alias: string; access: string }) => `${s.alias}:${s.access}`)).toEqual([
      'a::d:read',
      'a::w:write',
    ])
    const events = (await call(url(n), 'GET', '/api/v1/audit?limit=1000', as('admin'))).json().events as {
      kind: string
      decision: string
      user: string
      path: string
      code: string
    }[]
    const has = (kind: string, decision: string, path: RegExp) =>
      events.some((e) => e.kind === kind && e.decision === decision && path.test(e.path))
    expect(has('project.member.add', 'allow', /project:a user:carol/)).toBe(true)
    expect(has('project.role.change', 'allow', /project:a user:eve role:DATA_OWNER/)).toBe(true)
    expect(has('project.member.remove', 'allow', /project:a user:eve/)).toBe(true)
    expect(has('project.share', 'allow', /project:a dataset:d with:b access:read/)).toBe(true)
    expect(has('access.denied', 'deny', /project:a dataset:d with:b/)).toBe(true)
    expect(
      events.some(
        (e) => e.kind === 'access.denied' && e.code === 'PROJECT_ACCESS_DENIED' && e.user === 'carol',
      ),
    ).toBe(true)
  })

  it('project-user principals: a project key, X-Hopsd-Project and project=; keys only for members', async () => {
    const n = metas[0]!
    const mk = await call(
      url(n),
      'POST',
      '/api/v1/keys',
      as('carol', { body: { user: 'carol', project: 'a' } }),
    )
    expect(mk.status, mk.text).toBe(201)
    key['carol@a'] = mk.json().key
    const mkB = await call(
      url(n),
      'POST',
      '/api/v1/keys',
      as('carol', { body: { user: 'carol', project: 'b' } }),
    )
    key['carol@b'] = mkB.json().key
    const eve = await call(url(n), 'POST', '/api/v1/keys', as('eve', { body: { user: 'eve', project: 'a' } }))
    expect(eve.status).toBe(404)
    expect(eve.json().error.code).toBe('PROJECT_NOT_FOUND')
    // alice writes the files the matrix reads (native API, header).
    for (const ds of ['d', 'w', 's']) {
      const put = await call(url(n), 'PUT', `/api/v1/fs/files?path=/Projects/a/${ds}/f.txt`, {
        ...as('alice', { project: 'a' }),
        body: `${ds}-data`,
      })
      expect(put.status, put.text).toBe(201)
    }
    const putB = await call(url(n), 'PUT', '/api/v1/fs/files?path=/Projects/b/Resources/b.txt', {
      ...as('bob', { project: 'b' }),
      body: 'b-data',
    })
    expect(putB.status, putB.text).toBe(201)
    // The three ways to act in a: the project key, the header, the WebHDFS parameter.
    const viaKey = await webhdfs(metas[1]!, 'GET', '/Projects/a/d/f.txt', 'op=OPEN', as('carol@a'))
    expect(viaKey.status, viaKey.text).toBe(200)
    expect(viaKey.text).toBe('d-data')
    expect(
      (await webhdfs(metas[1]!, 'GET', '/Projects/a/d/f.txt', 'op=OPEN', as('carol', { project: 'a' }))).text,
    ).toBe('d-data')
    expect((await webhdfs(dn, 'GET', '/Projects/a/d/f.txt', 'op=OPEN&project=a', as('carol'))).text).toBe(
      'd-data',
    )
    // Without a project, a member reads nothing of it; a project key cannot switch projects.
    const plain = await webhdfs(metas[1]!, 'GET', '/Projects/a/d/f.txt', 'op=OPEN', as('carol'))
    expect(plain.status).toBe(403)
    expect(plain.json().RemoteException.message).toMatch(/acting in a project/)
    const switched = await webhdfs(
      metas[1]!,
      'GET',
      '/Projects/b/Resources/b.txt',
      'op=OPEN',
      as('carol@a', { project: 'b' }),
    )
    expect(switched.status).toBe(403)
    const badHeader = await call(
      url(n),
      'GET',
      '/api/v1/fs/stat?path=/Projects/a',
      as('carol', { project: 'a/../b' }),
    )
    expect(badHeader.status).toBe(400)
  })

  it('the role × operation × project matrix, through WebHDFS and the native API', async () => {
    const k = await call(
      url(metas[0]!),
      'POST',
      '/api/v1/keys',
      as('alice', { body: { user: 'alice', project: 'a' } }),
    )
    key['alice@a'] = k.json().key
    key['bob@b'] = (
      await call(url(metas[0]!), 'POST', '/api/v1/keys', as('bob', { body: { user: 'bob', project: 'b' } }))
    ).json().key
    type Cell = [string, string, () => Promise<Answer>, number]
    const cells: Cell[] = []
    const n = metas[2]!
    /** `who` is a key name; `eve@a` is eve's own key acting in a by header (she is no member of a). */
    const opts = (who: string) => (who === 'eve@a' ? as('eve', { project: 'a' }) : as(who))
    const wh = (who: string, method: string, path: string, query: string, body?: string) => () =>
      webhdfs(n, method, path, query, { ...opts(who), ...(body === undefined ? {} : { body }) })
    const native = (who: string, method: string, path: string, body?: string) => () =>
      call(url(n), method, path, { ...opts(who), ...(body === undefined ? {} : { body }) })
    const principals = [
      ['DO', 'alice@a', 200],
      ['DS', 'carol@a', 200],
      ['non-member', 'eve@a', 403],
      ['no project', 'carol', 403],
      ['admin', 'admin', 200],
    ] as const
    let i = 0
    for (const [role, who, own] of principals) {
      const f = `/Projects/a/d/${role}-${i++}.txt`
      cells.push([`${role} list own`, role, wh(who, 'GET', '/Projects/a/d', 'op=LISTSTATUS'), own])
      cells.push([`${role} read own (WebHDFS)`, role, wh(who, 'GET', '/Projects/a/d/f.txt', 'op=OPEN'), own])
      cells.push([
        `${role} read own (native)`,
        role,
        native(who, 'GET', '/api/v1/fs/files?path=/Projects/a/d/f.txt'),
        own,
      ])
      cells.push([
        `${role} write own (WebHDFS)`,
        role,
        wh(who, 'PUT', f, 'op=CREATE', 'x'),
        own === 200 ? 201 : own,
      ])
      cells.push([
        `${role} write own (native)`,
        role,
        native(who, 'PUT', `/api/v1/fs/files?path=${f}.n`, 'x'),
        own === 200 ? 201 : own,
      ])
      cells.push([`${role} rename in own`, role, wh(who, 'PUT', f, `op=RENAME&destination=${f}.r`), own])
      cells.push([`${role} delete own`, role, wh(who, 'DELETE', `${f}.r`, 'op=DELETE'), own])
      const foreign = role === 'admin' ? 200 : 403 // carol is a member of b, but acts in a or in none
      cells.push([
        `${role} read foreign`,
        role,
        wh(who, 'GET', '/Projects/b/Resources/b.txt', 'op=OPEN'),
        foreign,
      ])
      cells.push([`${role} list foreign`, role, wh(who, 'GET', '/Projects/b', 'op=LISTSTATUS'), foreign])
      cells.push([
        `${role} write foreign`,
        role,
        native(who, 'PUT', `/api/v1/fs/files?path=/Projects/b/Resources/${role}.txt`, 'x'),
        role === 'admin' ? 201 : 403,
      ])
    }
    cells.push([
      'DO chmod',
      'DO',
      wh('alice@a', 'PUT', '/Projects/a/d/f.txt', 'op=SETPERMISSION&permission=640'),
      200,
    ])
    cells.push([
      'DS chmod',
      'DS',
      wh('carol@a', 'PUT', '/Projects/a/d/f.txt', 'op=SETPERMISSION&permission=777'),
      403,
    ])
    cells.push([
      'DS chmod dataset',
      'DS',
      wh('carol@a', 'PUT', '/Projects/a/d', 'op=SETPERMISSION&permission=777'),
      403,
    ])
    cells.push(['DS downloads sensitive', 'DS', wh('carol@a', 'GET', '/Projects/a/s/f.txt', 'op=OPEN'), 403])
    cells.push([
      'DS downloads sensitive (native)',
      'DS',
      native('carol@a', 'GET', '/api/v1/fs/files?path=/Projects/a/s/f.txt'),
      403,
    ])
    cells.push(['DS lists sensitive', 'DS', wh('carol@a', 'GET', '/Projects/a/s', 'op=LISTSTATUS'), 200])
    cells.push([
      'DS moves sensitive out',
      'DS',
      wh('carol@a', 'PUT', '/Projects/a/s/f.txt', 'op=RENAME&destination=/Projects/a/d/leak.txt'),
      403,
    ])
    cells.push(['DO downloads sensitive', 'DO', wh('alice@a', 'GET', '/Projects/a/s/f.txt', 'op=OPEN'), 200])
    cells.push([
      'DS makes a dataset by MKDIRS',
      'DS',
      wh('carol@a', 'PUT', '/Projects/a/mine', 'op=MKDIRS'),
      403,
    ])
    // Project b: shared read-only (d) and read-write (w), seen as /Projects/b/a::<dataset>.
    cells.push(['b lists its project', 'B', wh('bob@b', 'GET', '/Projects/b', 'op=LISTSTATUS'), 200])
    cells.push(['b reads shared ro', 'B', wh('bob@b', 'GET', '/Projects/b/a::d/f.txt', 'op=OPEN'), 200])
    cells.push([
      'b writes shared ro',
      'B',
      wh('bob@b', 'PUT', '/Projects/b/a::d/x.txt', 'op=CREATE', 'x'),
      403,
    ])
    cells.push([
      'b deletes in shared ro',
      'B',
      wh('bob@b', 'DELETE', '/Projects/b/a::d/f.txt', 'op=DELETE'),
      403,
    ])
    cells.push([
      'b writes shared rw',
      'B',
      wh('bob@b', 'PUT', '/Projects/b/a::w/x.txt', 'op=CREATE', 'x'),
      201,
    ])
    cells.push([
      'b renames in shared rw',
      'B',
      wh('bob@b', 'PUT', '/Projects/b/a::w/x.txt', 'op=RENAME&destination=/Projects/b/a::w/y.txt'),
      200,
    ])
    cells.push([
      'b renames out of shared rw',
      'B',
      wh('bob@b', 'PUT', '/Projects/b/a::w/y.txt', 'op=RENAME&destination=/Projects/b/Resources/y.txt'),
      403,
    ])
    cells.push([
      'b renames into shared rw',
      'B',
      wh('bob@b', 'PUT', '/Projects/b/Resources/b.txt', 'op=RENAME&destination=/Projects/b/a::w/b.txt'),
      403,
    ])
    cells.push([
      'b chmods shared rw',
      'B',
      wh('bob@b', 'PUT', '/Projects/b/a::w/y.txt', 'op=SETPERMISSION&permission=777'),
      403,
    ])
    cells.push(['b shares on', 'B', native('bob@b', 'POST', '/api/v1/projects/b/datasets/a::w/shares'), 400])
    cells.push(['b reads unshared', 'B', wh('bob@b', 'GET', '/Projects/a/s/f.txt', 'op=OPEN'), 403])
    cells.push(['b alias of unshared', 'B', wh('bob@b', 'GET', '/Projects/b/a::s/f.txt', 'op=OPEN'), 404])
    cells.push([
      'path trick ..',
      'B',
      native('bob@b', 'GET', '/api/v1/fs/files?path=/Projects/b/../a/s/f.txt'),
      400,
    ])
    cells.push(['alias of an alias', 'B', wh('bob@b', 'GET', '/Projects/b/a::d/a::d/f.txt', 'op=OPEN'), 400])
    cells.push([
      'a principal writes outside',
      'DO',
      native('alice@a', 'PUT', '/api/v1/fs/files?path=/tmp/leak.txt', 'x'),
      403,
    ])
    const failures: string[] = []
    for (const [name, , fn, want] of cells) {
      const r = await fn()
      if (r.status !== want) failures.push(`${name}: want ${want}, got ${r.status} ${r.text.slice(0, 200)}`)
    }
    expect(failures).toEqual([])
    // LISTSTATUS of b shows the aliases.
    const names = (await webhdfs(n, 'GET', '/Projects/b', 'op=LISTSTATUS', as('bob@b')))
      .json()
      .FileStatuses.FileStatus.map((s: { pathSuffix: string }) => s.pathSuffix)
    expect(names).toEqual(expect.arrayContaining(['a::d', 'a::w', 'Resources']))
  })

  it('the same person in a and b moves no data between them with either credential', async () => {
    const n = metas[1]!
    // carol@a reads a, but writes nothing into b; carol@b writes b, but reads nothing of a (Resources
    // is not shared with b).
    const put = await call(url(n), 'PUT', '/api/v1/fs/files?path=/Projects/a/Resources/r.txt', {
      ...as('alice@a'),
      body: 'a-only',
    })
    expect(put.status, put.text).toBe(201)
    const readA = await webhdfs(n, 'GET', '/Projects/a/Resources/r.txt', 'op=OPEN', as('carol@a'))
    expect(readA.status).toBe(200)
    const intoB = await call(url(n), 'PUT', '/api/v1/fs/files?path=/Projects/b/Resources/copy.txt', {
      ...as('carol@a'),
      body: readA.text,
    })
    expect(intoB.status).toBe(403)
    expect((await webhdfs(n, 'GET', '/Projects/a/Resources/r.txt', 'op=OPEN', as('carol@b'))).status).toBe(
      403,
    )
    const mv = await webhdfs(
      n,
      'PUT',
      '/Projects/a/Resources/r.txt',
      'op=RENAME&destination=/Projects/b/Resources/r.txt',
      as('carol@a'),
    )
    expect(mv.status).toBe(403)
    const mvB = await webhdfs(
      n,
      'PUT',
      '/Projects/a/Resources/r.txt',
      'op=RENAME&destination=/Projects/b/Resources/r.txt',
      as('carol@b'),
    )
    expect(mvB.status).toBe(403)
    // Nor through a place outside both (a principal of a project reaches nothing outside it).
    expect(
      (await call(url(n), 'PUT', '/api/v1/fs/files?path=/tmp/carol.txt', { ...as('carol@a'), body: 'x' }))
        .status,
    ).toBe(403)
    expect(
      (await webhdfs(n, 'GET', '/Projects/b/Resources/copy.txt', 'op=GETFILESTATUS', as('admin'))).status,
    ).toBe(404)
  })

  it('unsharing and removing a member hold on the next request on every node', async () => {
    for (const n of all)
      expect((await webhdfs(n, 'GET', '/Projects/b/a::d/f.txt', 'op=OPEN', as('bob@b'))).status).toBe(200)
    const un = await call(url(metas[0]!), 'DELETE', '/api/v1/projects/a/datasets/d/shares/b', as('alice'))
    expect(un.status, un.text).toBe(200)
    for (const n of all) {
      expect((await webhdfs(n, 'GET', '/Projects/b/a::d/f.txt', 'op=OPEN', as('bob@b'))).status).toBe(404)
      expect((await webhdfs(n, 'GET', '/Projects/a/d/f.txt', 'op=OPEN', as('bob@b'))).status).toBe(403)
    }
    for (const n of all)
      expect((await webhdfs(n, 'GET', '/Projects/a/d/f.txt', 'op=OPEN', as('carol@a'))).status).toBe(200)
    const rm = await call(url(metas[2]!), 'DELETE', '/api/v1/projects/a/members/carol', as('alice'))
    expect(rm.status, rm.text).toBe(200)
    // Her project key still authenticates, but every node refuses her in a at once (no cache outlives it).
    for (const n of all) {
      const r = await webhdfs(n, 'GET', '/Projects/a/d/f.txt', 'op=OPEN', as('carol@a'))
      expect(r.status, n.url).toBe(403)
      expect(r.json().RemoteException.message).toMatch(/not a member of project a/)
      const w = await call(url(n), 'PUT', '/api/v1/fs/files?path=/Projects/a/d/carol.txt', {
        ...as('carol@a'),
        body: 'x',
      })
      expect(w.status).toBe(403)
    }
    // A role change likewise: eve joins as Data Scientist (cannot chmod), becomes Data Owner (can).
    await call(
      url(metas[0]!),
      'POST',
      '/api/v1/projects/a/members',
      as('alice', { body: { user: 'eve', role: 'DATA_SCIENTIST' } }),
    )
    expect(
      (
        await webhdfs(
          metas[1]!,
          'PUT',
          '/Projects/a/d/f.txt',
          'op=SETPERMISSION&permission=600',
          as('eve', { project: 'a' }),
        )
      ).status,
    ).toBe(403)
    await call(
      url(metas[0]!),
      'POST',
      '/api/v1/projects/a/members',
      as('alice', { body: { user: 'eve', role: 'DATA_OWNER' } }),
    )
    expect(
      (
        await webhdfs(
          metas[2]!,
          'PUT',
          '/Projects/a/d/f.txt',
          'op=SETPERMISSION&permission=600',
          as('eve', { project: 'a' }),
        )
      ).status,
    ).toBe(200)
  })

  it('quotas: file count and storage on /Projects/<name> leave nothing half-written; GPU-hours refuse jobs; usage shown', async () => {
    const n = metas[1]!
    expect(
      (await call(url(n), 'POST', '/api/v1/projects', as('alice', { body: { name: 'q' } }))).status,
    ).toBe(201)
    // Not for Data Owners: admins set quotas.
    const mine = await call(
      url(n),
      'PUT',
      '/api/v1/projects/q/quota',
      as('alice', { body: { storageBytes: 1, fileCount: 1, gpuHours: 1 } }),
    )
    expect(mine.status).toBe(403)
    const before = (await call(url(n), 'GET', '/api/v1/projects/q', as('alice'))).json().quota
    expect(before.fileCount).toEqual({ used: 6, quota: -1 }) // the project directory and its 5 datasets
    const set = await call(
      url(n),
      'PUT',
      '/api/v1/projects/q/quota',
      as('admin', { body: { storageBytes: 1_000_000, fileCount: 9, gpuHours: 0 } }),
    )
    expect(set.status, set.text).toBe(200)
    expect(set.json().quota.storageBytes.quota).toBe(1_000_000)
    const put = (path: string, body: string | Buffer) =>
      call(url(n), 'PUT', `/api/v1/fs/files?path=${path}`, { ...as('alice', { project: 'q' }), body })
    // Three names fit (6 + 3 = 9); the fourth is refused and not there.
    for (const i of [1, 2, 3]) expect((await put(`/Projects/q/Resources/f${i}`, 'x')).status).toBe(201)
    const fourth = await put('/Projects/q/Resources/f4', 'x')
    expect(fourth.status).toBe(403)
    expect(fourth.json().error.code).toBe('NS_QUOTA_EXCEEDED')
    expect(
      (await webhdfs(n, 'GET', '/Projects/q/Resources/f4', 'op=GETFILESTATUS', as('admin'))).status,
    ).toBe(404)
    // A large file over the storage quota (2 MiB × replication against 1 MB) fails and leaves no file.
    await call(
      url(n),
      'PUT',
      '/api/v1/projects/q/quota',
      as('admin', { body: { storageBytes: 1_000_000, fileCount: 100, gpuHours: 0 } }),
    )
    const big = await webhdfs(n, 'PUT', '/Projects/q/Resources/big.bin', 'op=CREATE', {
      ...as('alice', { project: 'q' }),
      body: Buffer.alloc(2 * 1024 * 1024, 7),
    })
    expect(big.status, big.text).toBeGreaterThanOrEqual(400)
    expect(big.text).toMatch(/DSQuotaExceeded|DS_QUOTA_EXCEEDED|quota/i)
    await waitFor(
      async () =>
        (await webhdfs(n, 'GET', '/Projects/q/Resources/big.bin', 'op=GETFILESTATUS', as('admin'))).status ===
        404,
      { timeoutMs: 30_000, what: 'the failed write removed' },
    )
    const after = (await call(url(metas[2]!), 'GET', '/api/v1/projects/q', as('alice'))).json().quota
    expect(after.fileCount.used).toBe(9)
    expect(after.storageBytes.used).toBeLessThan(1_000_000)
    expect(after.gpuHours).toEqual({ used: 0, quota: 0 })
    // GPU-hours: a quota of 0 refuses the project's jobs (the worker's GPU is in the view first).
    await waitFor(
      async () => (await call(url(metas[0]!), 'GET', '/api/v1/gpus', as('admin'))).json().nodes.length === 1,
      {
        timeoutMs: 60_000,
        what: 'the GPU worker in the view',
      },
    )
    const job = await call(
      url(metas[0]!),
      'POST',
      '/api/v1/jobs',
      as('alice', { body: { project: 'q', name: 't', command: ['true'], gpus: 1 } }),
    )
    expect(job.status, job.text).toBe(403)
    expect(job.json().error.code).toBe('QUOTA_EXHAUSTED')
    expect(job.json().error.message).toMatch(/GPU-hours/)
  })

  it('hopsd project: create, ls, member, dataset, share, rm; refusals are one line and exit 1', async () => {
    const dir = makeTempDir('hopsd-project-cli-')
    try {
      const keyFile = join(dir, 'bob.key')
      writeFileSync(keyFile, key['bob'] + '\n', { mode: 0o600 })
      const addr = ['--addr', url(metas[1]!), '--key', keyFile]
      // The binary dispatches `project` (one spawn: tsx is slow on a loaded host); the rest runs the same
      // CLI code in this process, against the same daemons.
      const made = await runHopsd(['project', 'create', 'cli', ...addr], { timeoutMs: 120_000 })
      expect(made.code, made.stderr).toBe(0)
      expect(made.stdout).toMatch(/created project cli/)
      const hopsd = async (...args: string[]) => {
        const out: string[] = []
        const err: string[] = []
        const code = await runProject([...args, ...addr], {
          out: (l) => out.push(l),
          err: (l) => err.push(l),
        })
        return { code, stdout: out.join('\n'), stderr: err.join('\n') }
      }
      expect((await hopsd('member', 'add', 'cli', 'eve', '--role', 'DATA_SCIENTIST')).stdout).toMatch(
        /added eve to cli as DATA_SCIENTIST/,
      )
      expect((await hopsd('dataset', 'create', 'cli', 'raw', '--sensitive')).stdout).toMatch(/sensitive/)
      expect((await hopsd('share', 'cli', 'raw', 'b', '--access', 'write')).stdout).toMatch(
        /\/Projects\/b\/cli::raw/,
      )
      const ls = await hopsd('ls', 'cli')
      expect(ls.code, ls.stderr).toBe(0)
      expect(ls.stdout).toMatch(/raw\s+yes\s+b\(write\)/)
      expect(ls.stdout).toMatch(/eve\s+DATA_SCIENTIST/)
      expect((await hopsd('share', 'cli', 'raw', 'b', '--remove')).code).toBe(0)
      const bad = await hopsd('create', 'Bad')
      expect(bad.code).toBe(1)
      expect(bad.stderr).toMatch(/^hopsd: project create: .*\[INVALID_PROJECT_NAME\]$/)
      const noConfirm = await hopsd('rm', 'cli')
      expect(noConfirm.code).toBe(1)
      expect(noConfirm.stderr).toMatch(/CONFIRM_REQUIRED/)
      expect((await hopsd('rm', 'cli', '--confirm', 'cli')).code).toBe(0)
      expect((await hopsd('ls')).stdout).not.toMatch(/\bcli\b/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it(
    'HdfsCLI and fsspec work inside a project with a project-scoped key, and read nothing of another project',
    async () => {
      const k = await call(
        url(metas[0]!),
        'POST',
        '/api/v1/keys',
        as('bob', { body: { user: 'bob', project: 'b' } }),
      )
      const { hostname, port } = new URL(url(metas[1]!))
      try {
        const { stdout } = await run(
          (await pythonEnv()).python,
          [
            join(REPO_ROOT, 'test/python/project_key_ops.py'),
            url(metas[1]!),
            hostname,
            port,
            'b',
            k.json().key,
            '/Projects/a/s/f.txt',
          ],
          { timeout: PYTHON_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
        )
        expect(stdout).toContain('project key ok')
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string; message: string }
        throw new Error(`project_key_ops.py failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`)
      }
    },
    PYTHON_TIMEOUT_MS,
  )
})
