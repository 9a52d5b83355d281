// Bad input to the real `hopsd` process: one line on stderr naming the problem, exit code 2, no stack.
import { createServer, type Server } from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, makeTempDir, removeTempDirs, runHopsd } from '../helpers/index.js'

let dir: string
let busy: Server
let busyAddr: string

beforeAll(async () => {
  dir = makeTempDir('hopsd-bad-input-')
  busyAddr = await freePort()
  const [host, port] = busyAddr.split(':') as [string, string]
  busy = createServer()
  await new Promise<void>((r) => busy.listen({ host, port: Number(port) }, () => r()))
})

afterAll(async () => {
  await new Promise<void>((r) => busy.close(() => r()))
  removeTempDirs()
})

/** Runs `hopsd args` and checks the bad-input contract; returns the one stderr line. */
async function expectBadInput(args: string[], env: Record<string, string> = {}): Promise<string> {
  // 60 s: a CLI run takes 10-30 s of wall time on a machine shared by several test runs.
  const res = await runHopsd(args, { env, cwd: dir, timeoutMs: 60_000 })
  expect(res.code, `stderr: ${res.stderr}`).toBe(2)
  const lines = res.stderr.split('\n').filter((l) => l !== '')
  expect(lines).toHaveLength(1)
  expect(res.stderr).not.toMatch(/\n\s+at /) // no stack trace
  return lines[0]!
}

describe('hopsd with bad input exits 2 with one clear line', () => {
  it('unknown command', async () => {
    expect(await expectBadInput(['launch'])).toMatch(/^hopsd: unknown command 'launch'.*\[UNKNOWN_COMMAND\]$/)
  })

  it('unknown flag', async () => {
    expect(await expectBadInput(['start', '--nope'])).toMatch(
      /^hopsd: unknown flag --nope .*\[UNKNOWN_FLAG\]$/,
    )
  })

  it('unknown role', async () => {
    expect(await expectBadInput(['start', '--roles', 'metadata,cpu'])).toMatch(
      /^hopsd: --roles: unknown role 'cpu' .*\[UNKNOWN_ROLE\]$/,
    )
  })

  it('bad address', async () => {
    expect(await expectBadInput(['start', '--http', 'nohost:'])).toMatch(
      /^hopsd: --http: bad address 'nohost:'.*\[BAD_ADDRESS\]$/,
    )
  })

  it('bad --gpus spec', async () => {
    expect(await expectBadInput(['start', '--gpus', 'declared:2:A100:80GB'])).toMatch(
      /^hopsd: --gpus: 'declared:2:A100:80GB': MEMORY_MIB must be an integer .*\[BAD_GPU_SPEC\]$/,
    )
  })

  it('bad value from the environment', async () => {
    expect(await expectBadInput(['start'], { HOPSD_BOOTSTRAP_EXPECT: 'many' })).toMatch(
      /^hopsd: HOPSD_BOOTSTRAP_EXPECT: expected an integer.*\[BAD_CONFIG_VALUE\]$/,
    )
  })

  it('port in use (HTTP and p2p)', async () => {
    const dataDir = join(dir, 'port')
    const p2p = await freePort()
    expect(await expectBadInput(['start', '--data-dir', dataDir, '--http', busyAddr, '--p2p', p2p])).toMatch(
      new RegExp(`^hopsd: HTTP address ${busyAddr} is already in use \\[PORT_IN_USE\\]$`),
    )
    const http = await freePort()
    expect(await expectBadInput(['start', '--data-dir', dataDir, '--http', http, '--p2p', busyAddr])).toMatch(
      new RegExp(`^hopsd: p2p address ${busyAddr} is already in use \\[PORT_IN_USE\\]$`),
    )
  })

  it('unwritable data dir', async () => {
    // A path under a regular file cannot be created, whoever runs the test (root ignores chmod).
    const file = join(dir, 'a-file')
    writeFileSync(file, 'x')
    expect(await expectBadInput(['start', '--data-dir', join(file, 'data')])).toMatch(
      /^hopsd: data dir .*a-file\/data cannot be created \(ENOTDIR\) \[DATA_DIR_UNWRITABLE\]$/,
    )
  })

  it('bad config file', async () => {
    const bad = join(dir, 'bad.yaml')
    writeFileSync(bad, 'zone: z1\nzone: z2\n')
    expect(await expectBadInput(['start', '--config', bad])).toMatch(
      /^hopsd: config file .*bad\.yaml: not valid YAML.*\[BAD_CONFIG_FILE\]$/,
    )
    expect(await expectBadInput(['start', '--config', join(dir, 'none.yaml')])).toMatch(
      /^hopsd: config file .*none\.yaml: cannot read it \(ENOENT\) \[BAD_CONFIG_FILE\]$/,
    )
  })

  // --addr names a port that answers no HTTP: a usage error must come before any request is tried.
  const noApi = () => ['--addr', `http://${busyAddr}`]

  it(
    'token: a missing or unknown role, a bad lifetime, a missing id, an unknown command',
    { timeout: 300_000 },
    async () => {
      const addr = noApi()
      expect(await expectBadInput(['token', 'create', ...addr])).toMatch(
        /^hopsd: usage: hopsd token create --role ROLE.*\[UNKNOWN_FLAG\]$/,
      )
      expect(await expectBadInput(['token', 'create', '--role', 'metadata,cpu', ...addr])).toMatch(
        /^hopsd: --role: unknown role 'cpu' .*\[UNKNOWN_ROLE\]$/,
      )
      expect(
        await expectBadInput(['token', 'create', '--role', 'datanode', '--expires-s', '1h', ...addr]),
      ).toMatch(/^hopsd: --expires-s: not a number of seconds: 1h \[BAD_CONFIG_VALUE\]$/)
      expect(await expectBadInput(['token', 'rm', ...addr])).toMatch(
        /^hopsd: usage: hopsd token rm ID \[UNKNOWN_FLAG\]$/,
      )
      expect(await expectBadInput(['token', 'burn', ...addr])).toMatch(
        /^hopsd: unknown command 'token burn' \(commands: create, ls, rm\) \[UNKNOWN_COMMAND\]$/,
      )
    },
  )

  it('node: a missing id, an unknown role or state', { timeout: 300_000 }, async () => {
    const addr = noApi()
    expect(await expectBadInput(['node', 'approve', ...addr])).toMatch(
      /^hopsd: usage: hopsd node approve ID.*\[UNKNOWN_FLAG\]$/,
    )
    expect(await expectBadInput(['node', 'approve', 'n1', '--role', 'gpus', ...addr])).toMatch(
      /^hopsd: --role: unknown role 'gpus' .*\[UNKNOWN_ROLE\]$/,
    )
    expect(await expectBadInput(['node', 'ls', '--state', 'waiting', ...addr])).toMatch(
      /^hopsd: --state: 'waiting' is none of pending, admitted, revoked \[BAD_CONFIG_VALUE\]$/,
    )
    expect(await expectBadInput(['node', 'revoke', ...addr])).toMatch(
      /^hopsd: usage: hopsd node revoke ID.*\[UNKNOWN_FLAG\]$/,
    )
  })

  it('dev: bad node count', async () => {
    expect(await expectBadInput(['dev', '--nodes', 'lots'])).toMatch(
      /^hopsd: --nodes: expected an integer.*\[BAD_CONFIG_VALUE\]$/,
    )
  })
})

describe('hopsd --version and --help', () => {
  it('prints the version and exits 0', async () => {
    const res = await runHopsd(['--version'])
    expect(res.code).toBe(0)
    expect(res.stdout).toMatch(/^hopsd \d+\.\d+\.\d+/)
  })

  it('prints help for each command', async () => {
    const res = await runHopsd(['start', '--help'])
    expect(res.code).toBe(0)
    expect(res.stdout).toContain('--bootstrap-expect N')
  })
})
