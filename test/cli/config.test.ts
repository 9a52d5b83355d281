// Configuration: merging flags > file > HOPSD_* env > defaults, and validation of every key. Bad input
// is a ConfigError with a stable code; the process-level tests (bad-input.test.ts) check exit code 2.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parseStartArgs, startHelp } from '../../src/cli/start.js'
import { planDev } from '../../src/cli/dev.js'
import { CONFIG_KEYS, ConfigError, envName, resolveConfig, ROLES } from '../../src/node/index.js'
import { makeTempDir, removeTempDirs } from '../helpers/index.js'

afterAll(removeTempDirs)

function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return (err as ConfigError).code
  }
  throw new Error('expected a ConfigError')
}

function messageOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    return (err as Error).message
  }
  throw new Error('expected an error')
}

describe('defaults', () => {
  it('gives every key its documented default', () => {
    const c = resolveConfig({ cwd: '/srv' })
    expect(c).toEqual({
      dataDir: '/srv/hopsd-data',
      zone: 'default',
      roles: [...ROLES],
      http: { host: '127.0.0.1', port: 9870 },
      p2p: { host: '127.0.0.1', port: 4001 },
      dataPlane: 'tls',
      dataAddr: undefined,
      join: [],
      bootstrapExpect: 1,
      swarmKey: undefined,
      voters: 3,
      tls: false,
      auth: 'secure',
      gossipIntervalMs: 1000,
      suspectAfterMs: 5000,
      deadAfterMs: 30_000,
      voterGraceMs: 60_000,
      raftTickMs: 100,
      metaCacheMib: 64,
      blockDirs: [],
      replicaGraceMs: 120_000,
      blockCapacityBytes: 0,
      blockScanBytesPerS: 1_048_576,
      gpus: { kind: 'auto' },
    })
  })
})

describe('flags', () => {
  it('parses every flag', () => {
    const c = parseStartArgs(
      [
        '--data-dir',
        'd',
        '--zone',
        'z2',
        '--roles',
        'gpu, metadata',
        '--http',
        '0.0.0.0:8080',
        '--p2p',
        '[::1]:4002',
        '--data-plane',
        'libp2p',
        '--data-addr',
        '[::1]:4100',
        '--join',
        'a.example:4001,10.0.0.2:4001',
        '--bootstrap-expect',
        '3',
        '--swarm-key',
        'keys/swarm.key',
        '--voters',
        '5',
        '--tls',
        '--auth',
        'simple',
        '--gossip-interval-ms',
        '100',
        '--suspect-after-ms',
        '500',
        '--dead-after-ms',
        '2000',
        '--voter-grace-ms',
        '3000',
        '--raft-tick-ms',
        '20',
        '--meta-cache-mib',
        '16',
        '--gpus',
        'declared:2:NVIDIA A100-SXM4-80GB:81920',
      ],
      {},
      '/srv',
    )
    expect(c).toEqual({
      dataDir: '/srv/d',
      zone: 'z2',
      roles: ['metadata', 'gpu'], // canonical order
      http: { host: '0.0.0.0', port: 8080 },
      p2p: { host: '::1', port: 4002 },
      dataPlane: 'libp2p',
      dataAddr: { host: '::1', port: 4100 },
      join: [
        { host: 'a.example', port: 4001 },
        { host: '10.0.0.2', port: 4001 },
      ],
      bootstrapExpect: 3,
      swarmKey: '/srv/keys/swarm.key',
      voters: 5,
      tls: true,
      auth: 'simple',
      gossipIntervalMs: 100,
      suspectAfterMs: 500,
      deadAfterMs: 2000,
      voterGraceMs: 3000,
      raftTickMs: 20,
      metaCacheMib: 16,
      blockDirs: [],
      replicaGraceMs: 120_000,
      blockCapacityBytes: 0,
      blockScanBytesPerS: 1_048_576,
      gpus: {
        kind: 'declared',
        gpus: [0, 1].map(() => ({
          model: 'NVIDIA A100-SXM4-80GB',
          memoryMiB: 81920,
          uuid: null,
          vendor: 'nvidia',
        })),
      },
    })
  })

  it('takes --no-tls, the key text from HOPSD_SWARM_KEY, and refuses timings that contradict each other', () => {
    const key = '/key/swarm/psk/1.0.0/\n/base16/\n' + 'ab'.repeat(32)
    const c = parseStartArgs(['--no-tls'], { HOPSD_SWARM_KEY: key, HOPSD_TLS: 'true' }, '/srv')
    expect(c).toMatchObject({ tls: false, swarmKey: key })
    expect(() => parseStartArgs(['--voters', '4'], {}, '/')).toThrow(
      expect.objectContaining({ code: 'BAD_CONFIG_VALUE' }),
    )
    expect(() => parseStartArgs(['--suspect-after-ms', '900', '--dead-after-ms', '800'], {}, '/')).toThrow(
      expect.objectContaining({ code: 'BAD_CONFIG_VALUE' }),
    )
  })

  it('returns help for --help', () => {
    expect(parseStartArgs(['--help'], {}, '/')).toBe('help')
    for (const k of CONFIG_KEYS) expect(startHelp()).toContain(`--${k.flag}`)
  })

  it.each([
    [['--bogus'], 'UNKNOWN_FLAG', /^unknown flag --bogus/],
    [['stray'], 'UNKNOWN_FLAG', /^unexpected argument 'stray'/],
    [['--zone'], 'BAD_CONFIG_VALUE', /^flag --zone needs a value/],
    [['--roles', 'metadata,brain'], 'UNKNOWN_ROLE', /^--roles: unknown role 'brain'/],
    [['--roles', ','], 'UNKNOWN_ROLE', /^--roles: give at least one role/],
    [['--http', 'localhost'], 'BAD_ADDRESS', /^--http: bad address 'localhost'/],
    [['--http', '127.0.0.1:70000'], 'BAD_ADDRESS', /^--http: bad address .*port 70000/],
    [['--p2p', '300.1.1.1:4001'], 'BAD_ADDRESS', /^--p2p: bad address/],
    [['--p2p', 'bad_host:4001'], 'BAD_ADDRESS', /^--p2p: bad address/],
    [['--join', '10.0.0.1:4001,nope'], 'BAD_ADDRESS', /^--join: bad address 'nope'/],
    [['--bootstrap-expect', '0'], 'BAD_CONFIG_VALUE', /^--bootstrap-expect: expected an integer/],
    [['--bootstrap-expect', 'two'], 'BAD_CONFIG_VALUE', /^--bootstrap-expect: expected an integer/],
    [['--zone', 'a zone'], 'BAD_CONFIG_VALUE', /^--zone: zone 'a zone'/],
    [['--http', '127.0.0.1:5000', '--p2p', '127.0.0.1:5000'], 'BAD_ADDRESS', /^--http and --p2p are both/],
  ])('rejects %j with %s', (args, code, message) => {
    expect(codeOf(() => parseStartArgs(args, {}, '/'))).toBe(code)
    expect(messageOf(() => parseStartArgs(args, {}, '/'))).toMatch(message)
  })
})

describe('environment', () => {
  it('reads HOPSD_* variables, named after the flags', () => {
    expect(envName('bootstrap-expect')).toBe('HOPSD_BOOTSTRAP_EXPECT')
    const c = resolveConfig({
      cwd: '/srv',
      env: {
        HOPSD_ZONE: 'z9',
        HOPSD_ROLES: 'datanode',
        HOPSD_BOOTSTRAP_EXPECT: '5',
        HOPSD_DATA_DIR: '/var/lib/h',
      },
    })
    expect(c.zone).toBe('z9')
    expect(c.roles).toEqual(['datanode'])
    expect(c.bootstrapExpect).toBe(5)
    expect(c.dataDir).toBe('/var/lib/h')
  })

  it('names the variable in errors', () => {
    expect(messageOf(() => resolveConfig({ cwd: '/', env: { HOPSD_ROLES: 'cpu' } }))).toMatch(
      /^HOPSD_ROLES: unknown role 'cpu'/,
    )
  })
})

describe('config file', () => {
  const dir = makeTempDir('hopsd-config-')
  const file = (name: string, text: string) => {
    const path = join(dir, name)
    writeFileSync(path, text)
    return path
  }

  it('reads YAML with flag-name keys and lists; relative paths resolve against the file', () => {
    const path = file(
      'a.yaml',
      'data-dir: data\nzone: z3\nroles: [metadata, serving]\njoin:\n  - h1:4001\n  - h2:4001\nbootstrap-expect: 3\n',
    )
    const c = resolveConfig({ cwd: '/', configFile: path })
    expect(c.dataDir).toBe(join(dir, 'data'))
    expect(c.zone).toBe('z3')
    expect(c.roles).toEqual(['metadata', 'serving'])
    expect(c.join.map((a) => a.host)).toEqual(['h1', 'h2'])
    expect(c.bootstrapExpect).toBe(3)
  })

  it('reads JSON with camelCase keys', () => {
    const path = file('b.json', JSON.stringify({ dataDir: '/d', bootstrapExpect: 2, http: '127.0.0.1:9999' }))
    const c = resolveConfig({ cwd: '/', configFile: path })
    expect(c).toMatchObject({ dataDir: '/d', bootstrapExpect: 2, http: { host: '127.0.0.1', port: 9999 } })
  })

  it('ranks flags over the file over the environment', () => {
    const path = file('c.yaml', 'zone: from-file\nroles: gpu\n')
    const env = {
      HOPSD_ZONE: 'from-env',
      HOPSD_ROLES: 'datanode',
      HOPSD_BOOTSTRAP_EXPECT: '3',
      HOPSD_CONFIG: path,
    }
    const c = parseStartArgs(['--zone', 'from-flag'], env, '/')
    expect(c).toMatchObject({ zone: 'from-flag', roles: ['gpu'], bootstrapExpect: 3 })
    const viaFlag = parseStartArgs(['--config', path], { HOPSD_ZONE: 'from-env' }, '/')
    expect(viaFlag).toMatchObject({ zone: 'from-file' })
  })

  it('rejects a missing file, bad syntax, a non-mapping, an unknown key and a bad value', () => {
    expect(codeOf(() => resolveConfig({ cwd: '/', configFile: join(dir, 'missing.yaml') }))).toBe(
      'BAD_CONFIG_FILE',
    )
    expect(messageOf(() => resolveConfig({ cwd: '/', configFile: join(dir, 'missing.yaml') }))).toMatch(
      /^config file .*missing\.yaml: cannot read it \(ENOENT\)/,
    )
    expect(codeOf(() => resolveConfig({ cwd: '/', configFile: file('d.yaml', 'zone: [unclosed\n') }))).toBe(
      'BAD_CONFIG_FILE',
    )
    expect(codeOf(() => resolveConfig({ cwd: '/', configFile: file('e.yaml', '- a\n- b\n') }))).toBe(
      'BAD_CONFIG_FILE',
    )
    const unknown = file('f.yaml', 'zone: z1\nswarm: x\n')
    expect(codeOf(() => resolveConfig({ cwd: '/', configFile: unknown }))).toBe('BAD_CONFIG_FILE')
    expect(messageOf(() => resolveConfig({ cwd: '/', configFile: unknown }))).toMatch(/unknown key 'swarm'/)
    const twice = file('g.yaml', 'data-dir: a\ndataDir: b\n')
    expect(messageOf(() => resolveConfig({ cwd: '/', configFile: twice }))).toMatch(
      /key 'data-dir' given twice/,
    )
    const badRole = file('h.yaml', 'roles: [metadata, cpu]\n')
    expect(codeOf(() => resolveConfig({ cwd: '/', configFile: badRole }))).toBe('UNKNOWN_ROLE')
    expect(messageOf(() => resolveConfig({ cwd: '/', configFile: badRole }))).toMatch(
      /^config file .*h\.yaml: roles: unknown role 'cpu'/,
    )
  })

  it('accepts an empty file', () => {
    expect(resolveConfig({ cwd: '/', configFile: file('empty.yaml', '') }).zone).toBe('default')
  })
})

describe('hopsd dev plan', () => {
  it('lays out N nodes in zones z1..zN on consecutive ports, bootstrap-expect min(N,3)', () => {
    const plan = planDev(['--nodes', '4', '--data-dir', 'dev'], '/srv')
    if (plan === 'help') throw new Error('unexpected help')
    expect(plan.nodes.map((n) => [n.name, n.zone, n.http.port, n.p2p.port, n.dataDir])).toEqual([
      ['n1', 'z1', 9870, 4001, '/srv/dev/n1'],
      ['n2', 'z2', 9871, 4002, '/srv/dev/n2'],
      ['n3', 'z3', 9872, 4003, '/srv/dev/n3'],
      ['n4', 'z4', 9873, 4004, '/srv/dev/n4'],
    ])
    expect(plan.join.map((a) => a.port)).toEqual([4001, 4002, 4003, 4004])
    expect(plan.bootstrapExpect).toBe(3)
  })

  it('rejects bad node counts and overlapping port ranges', () => {
    expect(codeOf(() => planDev(['--nodes', '0'], '/'))).toBe('BAD_CONFIG_VALUE')
    expect(codeOf(() => planDev(['--nodes', '99'], '/'))).toBe('BAD_CONFIG_VALUE')
    expect(codeOf(() => planDev(['--http', '127.0.0.1:4000', '--nodes', '3'], '/'))).toBe('BAD_ADDRESS')
    expect(codeOf(() => planDev(['--verbose'], '/'))).toBe('UNKNOWN_FLAG')
  })
})

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

describe('auth', () => {
  it('is secure by default, simple or secure by flag, file or HOPSD_AUTH; anything else is refused', () => {
    expect(resolveConfig({ cwd: '/srv' }).auth).toBe('secure')
    expect(resolveConfig({ cwd: '/srv', flags: { auth: 'simple' } }).auth).toBe('simple')
    expect(resolveConfig({ cwd: '/srv', env: { HOPSD_AUTH: 'simple' } }).auth).toBe('simple')
    expect(() => resolveConfig({ cwd: '/srv', flags: { auth: 'kerberos' } })).toThrow(/simple or secure/)
  })
})

describe('documentation', () => {
  it('lists every key in the README configuration table with its flag, file key and variable', async () => {
    const { readFileSync } = await import('node:fs')
    const { REPO_ROOT } = await import('../helpers/index.js')
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')
    for (const k of CONFIG_KEYS) {
      const flagCell = k.valueName === 'BOOL' ? `--${k.flag}` : `--${k.flag} ${k.valueName}`
      const cells = [flagCell, k.flag, envName(k.flag)].map((c) => `\\s*\`${escape(c)}\`\\s*`)
      expect(readme).toMatch(new RegExp(`\\|${cells.join('\\|')}\\|`))
    }
  })
})
