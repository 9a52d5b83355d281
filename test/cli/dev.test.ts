// `hopsd dev`: a local cluster of child processes, each healthy, none restarted, all stopped on SIGTERM.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  freePorts,
  hopsdCommand,
  isProcessAlive,
  makeTempDir,
  removeTempDirs,
  waitFor,
  getJson,
} from '../helpers/index.js'

afterAll(removeTempDirs)

describe('hopsd dev', () => {
  it('--nodes 2 starts two healthy nodes in zones z1, z2, reports a dead one, and stops both on SIGTERM', async () => {
    const dir = makeTempDir('hopsd-dev-')
    const [http] = await freePorts(2, { consecutive: true })
    const [p2p] = await freePorts(2, { consecutive: true })
    const { command, args } = hopsdCommand()
    const dev = spawn(
      command,
      [...args, 'dev', '--nodes', '2', '--data-dir', dir, '--http', http!, '--p2p', p2p!],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let stdout = ''
    let stderr = ''
    dev.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    dev.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
      dev.on('exit', (code, signal) => r({ code, signal })),
    )
    let pids: number[] = []
    try {
      await waitFor(() => stdout.includes('cluster up'), {
        timeoutMs: 45_000,
        what: `dev cluster up (${stdout}${stderr})`,
      })
      const nodes = [
        ...stdout.matchAll(/^ {2}(n\d) {2}zone (z\d) {2}(http:\/\/\S+) {2}p2p \S+ {2}pid (\d+)/gm),
      ].map((m) => ({
        name: m[1]!,
        zone: m[2]!,
        url: m[3]!,
        pid: Number(m[4]),
      }))
      pids = nodes.map((n) => n.pid)
      expect(nodes.map((n) => [n.name, n.zone])).toEqual([
        ['n1', 'z1'],
        ['n2', 'z2'],
      ])
      expect(nodes[0]!.url).toBe(`http://${http}`)
      const healths = await Promise.all(nodes.map((n) => getJson(`${n.url}/health`)))
      expect(healths.map((h) => h.zone)).toEqual(['z1', 'z2'])
      expect(healths[0].id).not.toBe(healths[1].id)
      const info = await getJson(`${nodes[1]!.url}/api/v1/node`)
      expect(info.bootstrapExpect).toBe(2)
      expect(info.join).toHaveLength(2)
      expect(existsSync(join(dir, 'n1', 'node.key'))).toBe(true)
      expect(existsSync(join(dir, 'n2.log'))).toBe(true)
      // Simple auth (user.name is believed), and the admin key printed, working as a bearer key.
      const admin = await waitFor(() => /admin key (hk\.\S+) \(in (\S+);/.exec(stdout), {
        timeoutMs: 60_000,
        what: `dev to print the admin key (${stdout}${stderr})`,
      })
      expect(readFileSync(admin[2]!, 'utf8').trim()).toBe(admin[1])
      const doc = await fetch(`${nodes[0]!.url}/api/v1/cluster`, {
        headers: { authorization: `Bearer ${admin[1]}` },
      })
      expect(((await doc.json()) as { auth: string }).auth).toBe('simple')

      // A node that dies is reported, not restarted.
      process.kill(nodes[1]!.pid, 'SIGKILL')
      await waitFor(() => stderr.includes('n2 exited (signal SIGKILL)'), { what: 'dev to report n2' })
      expect(stderr).toMatch(/not restarting/)

      dev.kill('SIGTERM')
      expect(await exited).toEqual({ code: 0, signal: null })
      expect(stdout).toContain('all nodes stopped')
      for (const n of nodes) expect(isProcessAlive(n.pid)).toBe(false)
    } finally {
      // The nodes run in their own process groups: never leave them behind when the test fails.
      if (dev.exitCode === null) dev.kill('SIGKILL')
      for (const pid of pids) if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL')
    }
  })
})
