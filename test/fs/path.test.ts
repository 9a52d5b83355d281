import { describe, expect, it } from 'vitest'
import { isFsError, parsePath, parentPath } from '../../src/fs/index.js'

describe('parsePath', () => {
  const good: Array<[string, string[]]> = [
    ['/', []],
    ['/a', ['a']],
    ['/a/b.c/d-e_f', ['a', 'b.c', 'd-e_f']],
    ['/ünï cødé/日本', ['ünï cødé', '日本']],
    ['/...', ['...']],
    ['/.hidden', ['.hidden']],
    ['/' + 'x'.repeat(255), ['x'.repeat(255)]],
  ]
  it.each(good)('accepts %j', (path, names) => {
    expect(parsePath(path)).toEqual(names)
  })

  const bad: Array<[string, string]> = [
    ['empty', ''],
    ['relative', 'a/b'],
    ['trailing slash', '/a/'],
    ['double slash', '/a//b'],
    ['dot', '/a/./b'],
    ['dotdot', '/a/../b'],
    ['dotdot at end', '/a/..'],
    ['NUL', '/a\u0000b'],
    ['newline', '/a\nb'],
    ['DEL', '/a\u007fb'],
    ['C1 control', '/a\u0085b'],
    ['colon', '/a:b'],
    ['name over 255 bytes', '/' + 'x'.repeat(256)],
    ['name over 255 bytes in UTF-8', '/' + 'é'.repeat(128)],
    ['path over 8000 bytes', '/' + Array.from({ length: 80 }, () => 'y'.repeat(100)).join('/')],
    ['lone surrogate', '/a\ud800'],
  ]
  it.each(bad)('refuses %s with INVALID_PATH', (_what, path) => {
    let err: unknown
    try {
      parsePath(path)
    } catch (e) {
      err = e
    }
    expect(isFsError(err, 'INVALID_PATH')).toBe(true)
  })

  it('parentPath', () => {
    expect(parentPath('/a/b')).toBe('/a')
    expect(parentPath('/a')).toBe('/')
    expect(parentPath('/')).toBe('/')
  })
})
