/**
 * The etcd peer of bench/fs-small: a 3-member etcd cluster on loopback (Debian's `etcd-server`, installed
 * with apt-get when `etcd` is not on PATH and the bench runs as root), and its JSON gateway's
 * `POST /v3/kv/put` as the small write hopsd's native PUT is compared with. etcd is the system people run
 * for exactly this (replicated small values, Raft with an fsync per batch), so it is the peer the
 * small-write path has to beat.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { freePorts, waitFor } from '../../test/helpers/index.js'

export interface EtcdCluster {
  /** Client URLs, one per member (`http://127.0.0.1:PORT`). */
  readonly urls: readonly string[]
  readonly pids: readonly number[]
  readonly version: string
  stop(): Promise<void>
}

/** `etcd` on PATH, installing Debian's package when missing; the reason when neither works. */
export function ensureEtcd(): { ok: true; version: string } | { ok: false; why: string } {
  const probe = (): string | undefined => {
    const r = spawnSync('etcd', ['--version'], { encoding: 'utf8' })
    return r.status === 0 ? (/etcd Version: (\S+)/.exec(r.stdout)?.[1] ?? 'unknown') : undefined
  }
  const have = probe()
  if (have !== undefined) return { ok: true, version: have }
  if (process.getuid?.() !== 0) return { ok: false, why: 'etcd is not installed and the bench is not root' }
  const apt = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'etcd-server'], {
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    timeout: 300_000,
  })
  const after = probe()
  if (after !== undefined) return { ok: true, version: after }
  return { ok: false, why: `apt-get install etcd-server failed: ${(apt.stderr ?? '').trim().slice(-300)}` }
}

/** Starts `members` etcd processes under `dir` and waits until the cluster takes a put. */
export async function startEtcd(dir: string, members = 3, version = ''): Promise<EtcdCluster> {
  const ports = (await freePorts(members * 2)).map((a) => Number(a.split(':')[1]))
  const names = Array.from({ length: members }, (_, i) => `m${i + 1}`)
  const peerUrl = (i: number): string => `http://127.0.0.1:${ports[2 * i + 1]}`
  const clientUrl = (i: number): string => `http://127.0.0.1:${ports[2 * i]}`
  const initial = names.map((n, i) => `${n}=${peerUrl(i)}`).join(',')
  const children: ChildProcess[] = names.map((name, i) =>
    spawn(
      'etcd',
      [
        `--name=${name}`,
        `--data-dir=${join(dir, name)}`,
        `--listen-client-urls=${clientUrl(i)}`,
        `--advertise-client-urls=${clientUrl(i)}`,
        `--listen-peer-urls=${peerUrl(i)}`,
        `--initial-advertise-peer-urls=${peerUrl(i)}`,
        `--initial-cluster=${initial}`,
        '--initial-cluster-state=new',
        '--initial-cluster-token=hopsd-bench',
        '--logger=zap',
        '--log-level=error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    ),
  )
  let stderr = ''
  for (const c of children)
    c.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)))
  const stop = async (): Promise<void> => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve()
            c.once('exit', () => resolve())
            c.kill('SIGTERM')
          }),
      ),
    )
  }
  const urls = names.map((_, i) => clientUrl(i))
  try {
    await waitFor(
      async () => {
        if (children.some((c) => c.exitCode !== null)) throw new Error(`an etcd member exited: ${stderr}`)
        const answers = await Promise.all(urls.map((u) => etcdPut(u, 'bench-ready', 'ok').catch(() => false)))
        return answers.every(Boolean)
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'etcd to take a put on every member' },
    )
  } catch (err) {
    await stop()
    throw err
  }
  return { urls, pids: children.map((c) => c.pid!), version, stop }
}

/** One put through etcd's JSON gateway (keys and values are base64 in its JSON). */
async function etcdPut(url: string, key: string, value: string): Promise<boolean> {
  const res = await fetch(`${url}/v3/kv/put`, {
    method: 'POST',
    body: JSON.stringify({
      key: Buffer.from(key).toString('base64'),
      value: Buffer.from(value).toString('base64'),
    }),
  })
  await res.arrayBuffer()
  return res.ok
}
