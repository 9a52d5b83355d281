// GPU jobs under `--auth secure`: one `hopsd start` node (metadata, datanode, gpu; two declared T4s) and a
// gpu-only node (gpu; two declared A100s; no metadata replica: it runs its worker through the metadata
// node). A job acts as its submitter: its logs are written with the submitter's credential, and the program
// gets an API key of the submitter acting in the job's project (HOPSD_KEY), which works while the task runs
// and is revoked when it ends. Another user's key neither sees nor kills the job.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  FAST_TIMING_ARGS,
  removeTempDirs,
  startCluster,
  stopAllNodes,
  waitFor,
  type LoopbackCluster,
} from '../helpers/index.js'

let cluster: LoopbackCluster
let admin = ''
const keys: Record<string, string> = {}
let failed = false

async function call(
  key: string,
  method: string,
  path: string,
  body?: unknown,
  via = 0,
): Promise<{ status: number; text: string; json(): any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${cluster.nodes[via]!.handle.url}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  })
  const text = await res.text()
  return { status: res.status, text, json: () => JSON.parse(text) }
}

beforeAll(async () => {
  cluster = await startCluster({
    prefix: 'hopsd-jobs-secure-',
    nodes: [{ extraArgs: ['--gpus', 'declared:2:T4:16000'] }],
    roles: ['metadata', 'datanode', 'gpu'],
    auth: 'secure',
    extraArgs: [...FAST_TIMING_ARGS],
  })
  admin = await cluster.adminKey(90_000)
  for (const user of ['alice', 'bob']) {
    const made = await waitFor(
      async () => {
        const res = await call(admin, 'POST', '/api/v1/users', { name: user })
        return res.status === 201 || res.status === 200 ? res : undefined
      },
      { timeoutMs: 60_000, intervalMs: 250, what: `user ${user}` },
    )
    expect(made.json().home).toBe(`/user/${user}`)
    const key = await call(admin, 'POST', '/api/v1/keys', { user })
    expect(key.status, key.text).toBe(201)
    keys[user] = key.json().key as string
  }
  // A node joining a secure cluster after its bootstrap needs an admission: a join token for the gpu role.
  const joinToken = await call(admin, 'POST', '/api/v1/join-tokens', { roles: ['gpu'] })
  expect(joinToken.status, joinToken.text).toBe(201)
  await cluster.start(
    [
      {
        roles: ['gpu'],
        extraArgs: ['--gpus', 'declared:2:A100:40000', '--join-token', joinToken.json().token as string],
      },
    ],
    { certifiedTimeoutMs: 90_000 },
  )
  // Every job belongs to a project: alice owns `demo`; bob owns `other`, with a file in it.
  for (const [user, name] of [
    ['alice', 'demo'],
    ['bob', 'other'],
  ] as const) {
    const made = await call(keys[user]!, 'POST', '/api/v1/projects', { name })
    expect(made.status, made.text).toBe(201)
  }
  const secret = await fetch(
    `${cluster.nodes[0]!.handle.url}/api/v1/fs/files?path=/Projects/other/Resources/secret.txt`,
    {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${keys['bob']!}`,
        'x-hopsd-project': 'other',
        'content-type': 'application/octet-stream',
      },
      body: 'bob-secret',
      signal: AbortSignal.timeout(20_000),
    },
  )
  expect(secret.status, await secret.text()).toBeLessThan(300)
  // alice is a member of `other` too: with her own key she reads it (acting in other), so a refusal of her
  // job's key comes from that key acting in demo only.
  const join = await call(keys['bob']!, 'POST', '/api/v1/projects/other/members', {
    user: 'alice',
    role: 'DATA_SCIENTIST',
  })
  expect(join.status, join.text).toBeLessThan(300)
  const own = await fetch(
    `${cluster.nodes[0]!.handle.url}/api/v1/fs/files?path=/Projects/other/Resources/secret.txt`,
    {
      headers: { authorization: `Bearer ${keys['alice']!}`, 'x-hopsd-project': 'other' },
      signal: AbortSignal.timeout(20_000),
    },
  )
  expect(await own.text()).toBe('bob-secret')
  await waitFor(async () => (await call(keys['alice']!, 'GET', '/api/v1/gpus')).json().nodes?.length === 2, {
    // Resource gossip under the whole suite's load: 60 s ran out once here (alone it takes seconds).
    timeoutMs: 120_000,
    what: 'both workers in the view',
  })
}, 240_000)

afterAll(async () => {
  if (failed && cluster !== undefined) console.log(cluster.logTails(60))
  await cluster?.stop(10_000)
  await stopAllNodes()
  removeTempDirs()
}, 60_000)

describe('GPU jobs with authentication', () => {
  it('a job runs as its submitter with a key of its own, revoked when it ends', async () => {
    try {
      // The program calls the API with its own key: who it is, and its own job as that principal sees it.
      const script = [
        'echo "key=$HOPSD_KEY"',
        'echo "user=$HOPSD_USER"',
        'curl -s -H "Authorization: Bearer $HOPSD_KEY" "$HOPSD_ADDR/api/v1/jobs/$HOPSD_JOB_ID" > "$PWD/job.json"',
        'echo "job=$(cat "$PWD/job.json")"',
        // Attack: another project's data through the task's key (a key acting in demo).
        'O="$HOPSD_ADDR/webhdfs/v1/Projects/other/Resources/secret.txt?op=OPEN"',
        'echo "other=$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $HOPSD_KEY" "$O")"',
        'echo "otherp=$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $HOPSD_KEY" "$O&project=other")"',
        'echo "otherh=$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $HOPSD_KEY" -H "X-Hopsd-Project: other" "$HOPSD_ADDR/api/v1/fs/files?path=/Projects/other/Resources/secret.txt")"',
        // Its own project it reads and writes.
        'echo "mine=$(curl -s -o /dev/null -w "%{http_code}" -X PUT -H "Authorization: Bearer $HOPSD_KEY" -H "content-type: application/octet-stream" --data-binary x "$HOPSD_ADDR/api/v1/fs/files?path=/Projects/demo/Resources/from-job-$HOPSD_JOB_ID")"',
      ].join('; ')
      const sub = await call(keys['alice']!, 'POST', '/api/v1/jobs', {
        project: 'demo',
        name: 'whoami',
        command: ['bash', '-c', script],
        gpus: 1,
      })
      expect(sub.status, sub.text).toBe(201)
      const id = sub.json().id as number
      // bob's key: no such job, and no submitting to demo (he is no member of it).
      expect((await call(keys['bob']!, 'GET', `/api/v1/jobs/${id}`)).status).toBe(404)
      expect((await call(keys['bob']!, 'DELETE', `/api/v1/jobs/${id}`)).status).toBe(404)
      const intruder = await call(keys['bob']!, 'POST', '/api/v1/jobs', {
        project: 'demo',
        name: 'intruder',
        command: ['true'],
        gpus: 1,
      })
      expect(intruder.status, intruder.text).toBe(403)
      const done = await waitFor(
        async () => {
          const j = (await call(keys['alice']!, 'GET', `/api/v1/jobs/${id}`)).json()
          return ['SUCCEEDED', 'FAILED', 'KILLED', 'LOST'].includes(j.state) ? j : undefined
        },
        { timeoutMs: 60_000, intervalMs: 250, what: `job ${id} to end` },
      )
      expect(done.state, JSON.stringify(done)).toBe('SUCCEEDED')
      const out = await call(keys['alice']!, 'GET', `/api/v1/jobs/${id}/logs`)
      expect(out.status, out.text).toBe(200)
      const lines = Object.fromEntries(
        out.text
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      )
      expect(lines['user']).toBe('alice')
      expect(lines['key']).toMatch(/^hk\./)
      // With its key the program saw its own job: it acted as alice.
      const seen = JSON.parse(lines['job']!)
      expect(seen).toMatchObject({ id, owner: 'alice', state: 'RUNNING' })
      // Its key acts in demo: another project's data (of which alice herself is a member) is out of its
      // reach, whichever way it asks; its own project it writes.
      expect(lines['other']).toBe('403')
      expect(lines['otherp']).toBe('403')
      expect(lines['otherh']).toBe('403')
      expect(lines['mine']).toMatch(/^20[01]$/)
      // The task's key is revoked once the task ended (the revocation follows the end's commit).
      await waitFor(async () => (await call(lines['key']!, 'GET', `/api/v1/jobs/${id}`)).status === 401, {
        timeoutMs: 20_000,
        what: "the task's key to be revoked",
      })
      // The log is in demo's Logs dataset, owned by the project-user demo__alice: alice acting in demo
      // reads it; bob (no member) cannot, acting in demo or not.
      const path = `/webhdfs/v1/Projects/demo/Logs/whoami/${done.runId}/stdout?op=GETFILESTATUS`
      const st = await call(keys['alice']!, 'GET', `${path}&project=demo`)
      expect(st.status, st.text).toBe(200)
      expect(st.json().FileStatus.owner).toBe('demo__alice')
      expect((await call(keys['bob']!, 'GET', path)).status).toBe(403)
      expect((await call(keys['bob']!, 'GET', `${path}&project=demo`)).status).toBe(403)
    } catch (err) {
      failed = true
      throw err
    }
  }, 120_000)

  it('on a gpu-only worker too: its own key (through the worker node, forwarded), revoked when it ends; logs as the submitter', async () => {
    try {
      // The program calls the API with its own key: who it is, and its own job as that principal sees it.
      const script = [
        'echo "key=$HOPSD_KEY"',
        'echo "user=$HOPSD_USER"',
        'echo "addr=$HOPSD_ADDR"',
        'curl -s -H "Authorization: Bearer $HOPSD_KEY" "$HOPSD_ADDR/api/v1/jobs/$HOPSD_JOB_ID" > "$PWD/job.json"',
        'echo "job=$(cat "$PWD/job.json")"',
        // Attack: another project's data through the task's key (a key acting in demo).
        'O="$HOPSD_ADDR/webhdfs/v1/Projects/other/Resources/secret.txt?op=OPEN"',
        'echo "other=$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $HOPSD_KEY" "$O")"',
        'echo "otherp=$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $HOPSD_KEY" "$O&project=other")"',
        'echo "otherh=$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $HOPSD_KEY" -H "X-Hopsd-Project: other" "$HOPSD_ADDR/api/v1/fs/files?path=/Projects/other/Resources/secret.txt")"',
        // Its own project it reads and writes.
        'echo "mine=$(curl -s -o /dev/null -w "%{http_code}" -X PUT -H "Authorization: Bearer $HOPSD_KEY" -H "content-type: application/octet-stream" --data-binary x "$HOPSD_ADDR/api/v1/fs/files?path=/Projects/demo/Resources/from-job-$HOPSD_JOB_ID")"',
      ].join('; ')
      const sub = await call(
        keys['alice']!,
        'POST',
        '/api/v1/jobs',
        {
          project: 'demo',
          name: 'whoami-gpu-only',
          command: ['bash', '-c', script],
          gpus: 1,
          gpuModel: 'A100',
        },
        1,
      )
      expect(sub.status, sub.text).toBe(201)
      const id = sub.json().id as number
      // bob's key: no such job.
      expect((await call(keys['bob']!, 'GET', `/api/v1/jobs/${id}`)).status).toBe(404)
      expect((await call(keys['bob']!, 'DELETE', `/api/v1/jobs/${id}`)).status).toBe(404)
      const done = await waitFor(
        async () => {
          const j = (await call(keys['alice']!, 'GET', `/api/v1/jobs/${id}`)).json()
          return ['SUCCEEDED', 'FAILED', 'KILLED', 'LOST'].includes(j.state) ? j : undefined
        },
        { timeoutMs: 60_000, intervalMs: 250, what: `job ${id} to end` },
      )
      expect(done.state, JSON.stringify(done)).toBe('SUCCEEDED')
      expect(done.tasks[0].node).toBe(cluster.nodes[1]!.handle.id)
      const out = await call(keys['alice']!, 'GET', `/api/v1/jobs/${id}/logs`, undefined, 1)
      expect(out.status, out.text).toBe(200)
      const lines = Object.fromEntries(
        out.text
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      )
      expect(lines['user']).toBe('alice')
      expect(lines['addr']).toBe(cluster.nodes[1]!.handle.url)
      expect(lines['key']).toMatch(/^hk\./)
      // With its key the program saw its own job: it acted as alice.
      const seen = JSON.parse(lines['job']!)
      expect(seen).toMatchObject({ id, owner: 'alice', state: 'RUNNING' })
      // Its key acts in demo: another project's data (of which alice herself is a member) is out of its
      // reach, whichever way it asks; its own project it writes.
      expect(lines['other']).toBe('403')
      expect(lines['otherp']).toBe('403')
      expect(lines['otherh']).toBe('403')
      expect(lines['mine']).toMatch(/^20[01]$/)
      // The task's key is revoked once the task ended (the revocation follows the end's commit).
      await waitFor(async () => (await call(lines['key']!, 'GET', `/api/v1/jobs/${id}`)).status === 401, {
        timeoutMs: 20_000,
        what: "the task's key to be revoked",
      })
      // The log is in demo's Logs dataset, owned by the project-user demo__alice: alice acting in demo
      // reads it; bob (no member) cannot, acting in demo or not.
      const path = `/webhdfs/v1/Projects/demo/Logs/whoami-gpu-only/${done.runId}/stdout?op=GETFILESTATUS`
      const st = await call(keys['alice']!, 'GET', `${path}&project=demo`)
      expect(st.status, st.text).toBe(200)
      expect(st.json().FileStatus.owner).toBe('demo__alice')
      expect((await call(keys['bob']!, 'GET', path)).status).toBe(403)
      expect((await call(keys['bob']!, 'GET', `${path}&project=demo`)).status).toBe(403)
    } catch (err) {
      failed = true
      throw err
    }
  }, 120_000)
})
