// `hopsd fs` as a user runs it: the real CLI process against a real `hopsd start` node (see server.ts).
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, makeTempDir, removeTempDirs, runHopsd, type RunResult } from '../helpers/index.js'
import { startFsServer, type FsServer } from './server.js'

let server: FsServer
let dir: string

beforeAll(async () => {
  server = await startFsServer()
  dir = makeTempDir('hopsd-cli-fs-')
  // A local tree to put: two CSVs, a text file, a nested directory.
  mkdirSync(join(dir, 'data', 'nested'), { recursive: true })
  writeFileSync(join(dir, 'data', 'a.csv'), 'x,y\n1,2\n')
  writeFileSync(join(dir, 'data', 'b.csv'), 'x,y\n3,4\n')
  writeFileSync(join(dir, 'data', 'notes.txt'), 'not a csv\n')
  writeFileSync(join(dir, 'data', 'nested', 'deep.bin'), Buffer.from([0, 1, 2, 255]))
  writeFileSync(join(dir, 'hello.txt'), 'hello, hopsd\n')
})

afterAll(async () => {
  await server?.stop()
  removeTempDirs()
})

/** `hopsd fs ARGS` as the superuser (hopsd) unless `user` is given, from the temp dir. */
function fs(args: string[], user = 'hopsd'): Promise<RunResult> {
  return runHopsd(['fs', ...args], {
    cwd: dir,
    env: { HOPSD_ADDR: server.url, HOPSD_USER: user, HOPSD_DEBUG: undefined },
  })
}

async function ok(args: string[], user?: string): Promise<string> {
  const r = await fs(args, user)
  expect(r.stderr, `hopsd fs ${args.join(' ')}`).toBe('')
  expect(r.code, `hopsd fs ${args.join(' ')}`).toBe(0)
  return r.stdout
}

/** Fails with exit `code` and exactly one line on stderr, no stack trace; returns that line. */
async function fails(args: string[], code: 1 | 2, user?: string): Promise<string> {
  const r = await fs(args, user)
  expect(r.code, `hopsd fs ${args.join(' ')}: ${r.stderr}`).toBe(code)
  const lines = r.stderr.split('\n').filter((l) => l !== '')
  expect(lines, r.stderr).toHaveLength(1)
  expect(r.stderr).not.toMatch(/\n\s+at /)
  return lines[0]!
}

// Each test runs the CLI 5-12 times (a process start each, 1-3 s on a loaded 2-core machine).
describe('hopsd fs against a node', { timeout: 120_000 }, () => {
  it('mkdir -p makes parents; mkdir without -p needs the parent and refuses an existing path', async () => {
    await ok(['mkdir', '-p', '/m/a/b/c'])
    expect(await ok(['ls', '/m/a/b'])).toBe('c\n')
    expect(await fails(['mkdir', '/m/x/y'], 1)).toMatch(/^hopsd: fs mkdir: \/m\/x does not exist \(use -p/)
    expect(await fails(['mkdir', '/m/a'], 1)).toMatch(/\/m\/a already exists/)
    await ok(['mkdir', '-m', '700', '/m/private'])
    expect(await ok(['ls', '-l', '/m'])).toMatch(
      /^drwx------ +- hopsd +\S+ +0 \d{4}-\d\d-\d\d \d\d:\d\d private$/m,
    )
  })

  it('put a file, cat it back; stat prints the native status with inlined: true', async () => {
    await ok(['put', 'hello.txt', '/one/hello.txt'])
    // The target's parent did not exist: put of one file to a new name creates it.
    expect(await ok(['cat', '/one/hello.txt'])).toBe('hello, hopsd\n')
    const st = JSON.parse(await ok(['stat', '/one/hello.txt'])) as Record<string, unknown>
    expect(st).toMatchObject({
      path: '/one/hello.txt',
      type: 'FILE',
      length: 13,
      inlined: true,
      owner: 'hopsd',
    })
    // Without -f an existing file stays; with -f it is replaced.
    expect(await fails(['put', 'data/a.csv', '/one/hello.txt'], 1)).toMatch(
      /already exists \[FILE_ALREADY_EXISTS\]$/,
    )
    await ok(['put', '-f', 'data/a.csv', '/one/hello.txt'])
    expect(await ok(['cat', '/one/hello.txt'])).toBe('x,y\n1,2\n')
  })

  it('put a directory recursively, ls / ls -l / ls -R, get it back recursively byte for byte', async () => {
    await ok(['mkdir', '-p', '/trees'])
    await ok(['put', 'data', '/trees'])
    expect(await ok(['ls', '/trees/data'])).toBe('a.csv\nb.csv\nnested\nnotes.txt\n')
    const long = await ok(['ls', '-l', '/trees/data'])
    expect(long).toMatch(/^-rw-r--r-- +\d+ hopsd +\S+ +8 .* a\.csv$/m)
    expect(long).toMatch(/^drwxr-xr-x +- hopsd +\S+ +0 .* nested$/m)
    expect(await ok(['ls', '-R', '/trees'])).toBe(
      [
        '/trees/data',
        '/trees/data/a.csv',
        '/trees/data/b.csv',
        '/trees/data/nested',
        '/trees/data/nested/deep.bin',
        '/trees/data/notes.txt',
        '',
      ].join('\n'),
    )
    await ok(['get', '/trees/data', 'copy'])
    expect(readdirSync(join(dir, 'copy')).sort()).toEqual(['a.csv', 'b.csv', 'nested', 'notes.txt'])
    expect(readFileSync(join(dir, 'copy', 'nested', 'deep.bin'))).toEqual(Buffer.from([0, 1, 2, 255]))
    expect(readFileSync(join(dir, 'copy', 'a.csv'), 'utf8')).toBe('x,y\n1,2\n')
    // A second get into an existing directory lands beside; an existing file needs -f.
    await ok(['get', '/trees/data/nested/deep.bin', 'copy'])
    expect(readFileSync(join(dir, 'copy', 'deep.bin'))).toEqual(Buffer.from([0, 1, 2, 255]))
    expect(await fails(['get', '/trees/data/a.csv', 'copy/a.csv'], 1)).toMatch(
      /copy\/a\.csv already exists \(use -f/,
    )
    await ok(['get', '-f', '/trees/data/b.csv', 'copy/a.csv'])
    expect(readFileSync(join(dir, 'copy', 'a.csv'), 'utf8')).toBe('x,y\n3,4\n')
  })

  it('put expands a quoted local glob itself, into a directory it creates', async () => {
    await ok(['put', 'data/*.csv', '/globbed'])
    expect(await ok(['ls', '/globbed'])).toBe('a.csv\nb.csv\n')
    expect(await fails(['put', 'data/*.parquet', '/globbed'], 1)).toMatch(
      /data\/\*\.parquet: no local file matches/,
    )
  })

  it('mv renames and moves into a directory; rm needs -r for directories; rm -f ignores missing paths', async () => {
    await ok(['mkdir', '-p', '/mv/dir'])
    await ok(['put', 'hello.txt', '/mv/a.txt'])
    await ok(['mv', '/mv/a.txt', '/mv/b.txt'])
    await ok(['mv', '/mv/b.txt', '/mv/dir'])
    expect(await ok(['ls', '-R', '/mv'])).toBe('/mv/dir\n/mv/dir/b.txt\n')
    expect(await fails(['mv', '/mv/nope', '/mv/x'], 1)).toMatch(/\/mv\/nope: no such file or directory/)
    expect(await fails(['rm', '/mv/dir'], 1)).toMatch(/\/mv\/dir is a directory \(use -r\)/)
    await ok(['rm', '/mv/dir/b.txt'])
    await ok(['rm', '-r', '/mv'])
    expect(await fails(['ls', '/mv'], 1)).toMatch(/^hopsd: fs ls: .*\[FileNotFoundException\]$/)
    expect(await fails(['rm', '/mv'], 1)).toMatch(/no such file or directory/)
    await ok(['rm', '-f', '/mv'])
  })

  it('chmod sets the mode (-R below); chown as the superuser; chown as another user is denied (exit 1)', async () => {
    await ok(['mkdir', '-p', '/perm/sub'])
    await ok(['put', 'hello.txt', '/perm/sub/f.txt'])
    await ok(['chmod', '-R', '750', '/perm/sub'])
    expect(await ok(['ls', '-l', '/perm/sub'])).toMatch(/^-rwxr-x--- .* f\.txt$/m)
    await ok(['chown', 'alice:staff', '/perm/sub'])
    expect(await ok(['ls', '-l', '/perm'])).toMatch(/^drwxr-x--- +- alice +staff +0 .* sub$/m)
    const denied = await fails(['chown', 'bob', '/perm/sub'], 1, 'alice')
    expect(denied).toMatch(/^hopsd: fs chown: .*\[AccessControlException\]$/)
    expect(denied).toMatch(/alice is not a super ?user/i)
    expect(await fails(['cat', '/perm/sub/f.txt'], 1, 'eve')).toMatch(/\[AccessControlException\]$/)
  })

  it('du per entry and du -s in total, with human sizes', async () => {
    await ok(['mkdir', '-p', '/du/d'])
    writeFileSync(join(dir, 'k3.bin'), Buffer.alloc(3 * 1024 + 512))
    await ok(['put', 'k3.bin', '/du/d/k3.bin'])
    await ok(['put', 'hello.txt', '/du/hello.txt'])
    expect(await ok(['du', '/du'])).toBe('3584  /du/d\n  13  /du/hello.txt\n')
    expect(await ok(['du', '-s', '/du'])).toBe('3597  /du\n')
    expect(await ok(['du', '-s', '-h', '/du'])).toBe('3.5 K  /du\n')
  })

  it('a file above the inline threshold goes into blocks on the datanode and round-trips', async () => {
    const big = Buffer.alloc(100 * 1024)
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff
    writeFileSync(join(dir, 'big.bin'), big)
    if (server.kind === 'inproc') {
      // The in-process routes have no datanode behind them: the write is refused with one line.
      expect(await fails(['put', 'big.bin', '/big.bin'], 1)).toMatch(
        /^hopsd: fs put: big\.bin -> \/big\.bin: /,
      )
      return
    }
    await ok(['put', 'big.bin', '/big.bin'])
    const st = JSON.parse(await ok(['stat', '/big.bin'])) as {
      inlined: boolean
      length?: number
      size?: number
    }
    expect(st.inlined).toBe(false)
    await ok(['get', '/big.bin', 'big-copy.bin'])
    expect(readFileSync(join(dir, 'big-copy.bin')).equals(big)).toBe(true)
  })

  it('an unreachable node is one line and exit 1', async () => {
    // A port that was free a moment ago: nothing listens there.
    const addr = await freePort()
    const r = await runHopsd(['fs', '--addr', addr, 'ls', '/'], { cwd: dir })
    expect(r.code).toBe(1)
    expect(r.stderr).toBe(
      `hopsd: fs ls: cannot reach http://${addr} (ECONNREFUSED); is a node running there? [UNREACHABLE]\n`,
    )
  })
})

describe('hopsd fs with bad input exits 2 with one line', () => {
  it.each([
    [['fs', 'frobnicate'], /unknown command 'fs frobnicate'.*\[UNKNOWN_COMMAND\]$/],
    [['fs', 'ls', '--bogus'], /unknown flag --bogus for 'hopsd fs ls'.*\[UNKNOWN_FLAG\]$/],
    [['fs', 'mkdir'], /missing operand: usage: hopsd fs mkdir.*\[UNKNOWN_FLAG\]$/],
    [['fs', 'stat', '/a', '/b'], /too many operands.*\[UNKNOWN_FLAG\]$/],
    [['fs', 'chmod', 'u+x', '/a'], /bad mode 'u\+x'.*\[BAD_CONFIG_VALUE\]$/],
    [['fs', 'chown', 'a:b:c', '/a'], /bad owner 'a:b:c'.*\[BAD_CONFIG_VALUE\]$/],
    [['fs', '--addr', 'ftp://x', 'ls'], /--addr: bad address 'ftp:\/\/x'.*\[BAD_ADDRESS\]$/],
  ])('hopsd %j', async (args, want) => {
    const r = await runHopsd(args, { cwd: dir })
    expect(r.code, r.stderr).toBe(2)
    const lines = r.stderr.split('\n').filter((l) => l !== '')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(want)
  })
})
