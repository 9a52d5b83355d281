// The swarm key file: generation, parsing with clear errors, keygen output, and address helpers.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { makeTempDir, removeTempDirs } from '../helpers/index.js'
import {
  backoffDelayMs,
  generateSwarmKey,
  isOwnAddress,
  keygenCommand,
  loadSwarmKeyFile,
  parseHostPort,
  parseSwarmKey,
  resolveSwarmKey,
} from '../../src/node/p2p/index.js'

afterAll(() => removeTempDirs())

describe('swarm key', () => {
  it('generates a standard pnet key file that parses to the 95-byte form @libp2p/pnet reads', () => {
    const text = generateSwarmKey()
    expect(text).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
    expect(parseSwarmKey(text)).toHaveLength(95)
    expect(generateSwarmKey()).not.toBe(text)
  })

  it('accepts CRLF, upper-case hex and trailing blank lines', () => {
    const hex = 'AB'.repeat(32)
    const parsed = new TextDecoder().decode(
      parseSwarmKey(`/key/swarm/psk/1.0.0/\r\n/base16/\r\n${hex}\r\n\r\n`),
    )
    expect(parsed).toBe(`/key/swarm/psk/1.0.0/\n/base16/\n${'ab'.repeat(32)}`)
  })

  it.each([
    ['empty', ''],
    ['wrong header', `/key/swarm/psk/2.0.0/\n/base16/\n${'a'.repeat(64)}`],
    ['base64 codec', `/key/swarm/psk/1.0.0/\n/base64/\n${'a'.repeat(64)}`],
    ['short key', `/key/swarm/psk/1.0.0/\n/base16/\n${'a'.repeat(63)}`],
    ['non-hex', `/key/swarm/psk/1.0.0/\n/base16/\n${'g'.repeat(64)}`],
    ['extra line', `/key/swarm/psk/1.0.0/\n/base16/\n${'a'.repeat(64)}\nmore`],
  ])('refuses a bad key file (%s) with SWARM_KEY_INVALID', (_name, text) => {
    expect(() => parseSwarmKey(text)).toThrow(expect.objectContaining({ code: 'SWARM_KEY_INVALID' }))
  })

  it('loads a key file, and HOPSD_SWARM_KEY may hold the key or a path', () => {
    const dir = makeTempDir('hopsd-swarm-')
    const path = join(dir, 'swarm.key')
    const text = generateSwarmKey()
    writeFileSync(path, text)
    expect(loadSwarmKeyFile(path)).toEqual(parseSwarmKey(text))
    expect(resolveSwarmKey(path)).toEqual(parseSwarmKey(text))
    expect(resolveSwarmKey(text)).toEqual(parseSwarmKey(text))
    expect(() => loadSwarmKeyFile(join(dir, 'missing.key'))).toThrow(
      expect.objectContaining({ code: 'SWARM_KEY_UNREADABLE' }),
    )
  })

  it('keygenCommand prints a valid key', () => {
    let out = ''
    expect(keygenCommand({ write: (s: string) => (out += s) })).toBe(0)
    expect(parseSwarmKey(out)).toHaveLength(95)
  })
})

describe('addresses and backoff', () => {
  it('parses HOST:PORT join addresses and refuses others with JOIN_ADDRESS_INVALID', () => {
    expect(parseHostPort('10.0.0.1:4001')).toEqual({ host: '10.0.0.1', port: 4001 })
    expect(parseHostPort('[::1]:4001')).toEqual({ host: '::1', port: 4001 })
    expect(parseHostPort('node-1.example:4001')).toEqual({ host: 'node-1.example', port: 4001 })
    for (const bad of ['node1', ':4001', 'a:0', 'a:70000', '/ip4/1.2.3.4/tcp/1']) {
      expect(() => parseHostPort(bad)).toThrow(expect.objectContaining({ code: 'JOIN_ADDRESS_INVALID' }))
    }
  })

  it('recognises its own address across loopback and wildcard spellings', () => {
    const ips = new Set(['127.0.0.1', '::1', '10.1.2.3'])
    expect(isOwnAddress({ ip: '127.0.0.1', port: 4001 }, { ip: '0.0.0.0', port: 4001 }, ips)).toBe(true)
    expect(isOwnAddress({ ip: '10.1.2.3', port: 4001 }, { ip: '0.0.0.0', port: 4001 }, ips)).toBe(true)
    expect(isOwnAddress({ ip: '127.0.0.2', port: 4001 }, { ip: '127.0.0.1', port: 4001 }, ips)).toBe(true)
    expect(isOwnAddress({ ip: '10.9.9.9', port: 4001 }, { ip: '0.0.0.0', port: 4001 }, ips)).toBe(false)
    expect(isOwnAddress({ ip: '127.0.0.1', port: 4002 }, { ip: '127.0.0.1', port: 4001 }, ips)).toBe(false)
    expect(isOwnAddress({ ip: '10.1.2.3', port: 4001 }, { ip: '127.0.0.1', port: 4001 }, ips)).toBe(false)
  })

  it('backs off exponentially with jitter, capped, never to zero', () => {
    const opts = { baseMs: 100, maxMs: 1_000 }
    expect(backoffDelayMs(1, opts, () => 0)).toBe(50)
    expect(backoffDelayMs(1, opts, () => 0.999)).toBeLessThanOrEqual(100)
    expect(backoffDelayMs(3, opts, () => 0)).toBe(200)
    expect(backoffDelayMs(50, opts, () => 0.999)).toBeLessThanOrEqual(1_000)
    expect(backoffDelayMs(50, opts, () => 0)).toBe(500)
  })
})
