// The parts of `hopsd fs` that need no server: the local glob matcher, progress display, text shapes.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { humanBytes, modeString, resolveRemote } from '../../src/cli/fs/format.js'
import { expandGlob, segmentRegExp } from '../../src/cli/fs/glob.js'
import { Progress } from '../../src/cli/fs/progress.js'
import { makeTempDir, removeTempDirs } from '../helpers/index.js'

afterAll(() => removeTempDirs())

describe('local globs', () => {
  it('matches *, ? and classes within one component, not a leading dot', () => {
    expect(segmentRegExp('*.csv').test('a.csv')).toBe(true)
    expect(segmentRegExp('*.csv').test('.hidden.csv')).toBe(false)
    expect(segmentRegExp('.*').test('.hidden')).toBe(true)
    expect(segmentRegExp('f?.txt').test('f1.txt')).toBe(true)
    expect(segmentRegExp('f?.txt').test('f12.txt')).toBe(false)
    expect(segmentRegExp('[a-c]x').test('bx')).toBe(true)
    expect(segmentRegExp('[!a-c]x').test('bx')).toBe(false)
    expect(segmentRegExp('a+b(1).csv').test('a+b(1).csv')).toBe(true)
  })

  it('expands relative and absolute patterns, ** across directories, sorted; none → []', async () => {
    const dir = makeTempDir('hopsd-glob-')
    mkdirSync(join(dir, 'data', 'x', 'y'), { recursive: true })
    for (const f of ['data/b.csv', 'data/a.csv', 'data/n.txt', 'data/x/c.csv', 'data/x/y/d.csv'])
      writeFileSync(join(dir, f), '')
    expect(await expandGlob('data/*.csv', dir)).toEqual(['data/a.csv', 'data/b.csv'])
    expect(await expandGlob(join(dir, 'data', '*.txt'), '/')).toEqual([join(dir, 'data', 'n.txt')])
    expect(await expandGlob('data/**/*.csv', dir)).toEqual([
      'data/a.csv',
      'data/b.csv',
      'data/x/c.csv',
      'data/x/y/d.csv',
    ])
    expect(await expandGlob('*/x', dir)).toEqual(['data/x'])
    expect(await expandGlob('data/*.parquet', dir)).toEqual([])
    expect(await expandGlob('no-glob-here', dir)).toEqual(['no-glob-here'])
  })
})

describe('progress', () => {
  const sink = (isTTY: boolean) => {
    const writes: string[] = []
    return { writes, stream: { isTTY, columns: 100, write: (s: string) => writes.push(s) } }
  }

  it('on a terminal: a bar redrawn in place at most every 100 ms, then a newline', () => {
    const clock = { now: 0 }
    const { writes, stream } = sink(true)
    const p = new Progress({ label: 'put', totalBytes: 8 << 20, totalFiles: 2, stream, now: () => clock.now })
    p.addBytes(4 << 20)
    clock.now = 50
    p.addBytes(1) // within 100 ms of the last draw: not drawn
    clock.now = 1000
    p.fileDone()
    p.finish()
    expect(writes).toHaveLength(3)
    expect(writes[0]).toMatch(/^\rput \[#{15}-{15}\]  50% 4\.0 M\/8\.0 M  0\/2 files/)
    expect(writes[2]).toMatch(/^\rput .*  50% 4\.0 M\/8\.0 M  1\/2 files  4\.0 M\/s *\n$/)
  })

  it('elsewhere: a plain line every 5 s only; small transfers show nothing', () => {
    const clock = { now: 0 }
    const { writes, stream } = sink(false)
    const p = new Progress({
      label: 'get',
      totalBytes: 10 << 20,
      totalFiles: 1,
      stream,
      now: () => clock.now,
    })
    p.addBytes(1 << 20)
    clock.now = 5000
    p.addBytes(1 << 20)
    p.finish()
    expect(writes).toEqual([
      'hopsd fs get: 20% (2.0 M of 10.0 M, 0 of 1 files, 409.6 K/s)\n',
      'hopsd fs get: 20% (2.0 M of 10.0 M, 0 of 1 files, 409.6 K/s)\n',
    ])
    const small = sink(true)
    const q = new Progress({ label: 'put', totalBytes: 1000, totalFiles: 3, stream: small.stream })
    q.addBytes(1000)
    q.finish()
    expect(small.writes).toEqual([])
  })
})

describe('text shapes', () => {
  it('human sizes, mode strings, remote paths', () => {
    expect([0, 1023, 1536, 3597, 12 << 20, 5 * 2 ** 40].map(humanBytes)).toEqual([
      '0',
      '1023',
      '1.5 K',
      '3.5 K',
      '12.0 M',
      '5.0 T',
    ])
    expect(modeString('DIRECTORY', '1777')).toBe('drwxrwxrwt')
    expect(modeString('FILE', '640')).toBe('-rw-r-----')
    expect(modeString('DIRECTORY', '1770')).toBe('drwxrwx--T')
    expect(resolveRemote('data/../x/./y/', 'alice')).toBe('/user/alice/x/y')
    expect(resolveRemote('/', 'alice')).toBe('/')
    expect(resolveRemote('//a//b', 'alice')).toBe('/a/b')
  })
})
