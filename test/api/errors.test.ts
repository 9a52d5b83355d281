// The error table (fastify's lib/errors.js style): every code has a status and a description, and is
// documented in the README's error reference, so a new code cannot ship undocumented.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { mapError } from '../../src/api/index.js'
import { ConsensusError } from '../../src/consensus/index.js'
import { ERROR_TABLE, HopsError, errorInfo, isErrorCode } from '../../src/errors.js'
import { FsError } from '../../src/fs/index.js'
import { CommandRejected, MetaError } from '../../src/meta/index.js'
import { CertificateError } from '../../src/node/ca/index.js'
import { P2PError } from '../../src/node/p2p/index.js'
import { REPO_ROOT } from '../helpers/index.js'

describe('error table', () => {
  const rows = Object.entries(ERROR_TABLE)

  it.each(rows)('%s has a stable code shape, an HTTP status and a description', (code, row) => {
    expect(code).toMatch(/^[A-Z][A-Z0-9_]*$/)
    expect(row.httpStatus).toBeGreaterThanOrEqual(400)
    expect(row.httpStatus).toBeLessThan(600)
    expect(row.description.length).toBeGreaterThan(10)
  })

  it('documents every code in the README error reference', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')
    const start = readme.indexOf('## Error codes')
    expect(start).toBeGreaterThanOrEqual(0)
    const section = readme.slice(start)
    // A table row `| \`CODE\` | status | description |`, whatever the column padding.
    const row = (code: string, status: number) => new RegExp(`\\|\\s*\`${code}\`\\s*\\|\\s*${status}\\s*\\|`)
    const undocumented = rows.filter(([code, { httpStatus }]) => !row(code, httpStatus).test(section))
    expect(undocumented.map(([code]) => code)).toEqual([])
  })

  it('maps errors by code, whatever their class; unknown errors are INTERNAL', () => {
    expect(errorInfo(new HopsError('PORT_IN_USE', 'x')).code).toBe('PORT_IN_USE')
    expect(errorInfo({ code: 'NOT_FOUND' }).row.httpStatus).toBe(404)
    expect(errorInfo({ code: 'ENOENT' }).code).toBe('INTERNAL')
    expect(errorInfo(undefined).code).toBe('INTERNAL')
    expect(isErrorCode('toString')).toBe(false)
    expect(mapError(new Error('secret detail'))).toEqual({
      status: 500,
      body: { error: { code: 'INTERNAL', message: 'internal error' } },
    })
  })

  it("joins every area's table: each area's error class maps to its own status", () => {
    const cases: [unknown, string, number][] = [
      [new ConsensusError('NOT_LEADER'), 'NOT_LEADER', 503],
      [new ConsensusError('NO_LEADER'), 'NO_LEADER', 503],
      [new ConsensusError('TIMEOUT'), 'TIMEOUT', 504],
      [new FsError('FILE_NOT_FOUND'), 'FILE_NOT_FOUND', 404],
      [new FsError('ACCESS_DENIED'), 'ACCESS_DENIED', 403],
      [new MetaError('SUPERUSER_REQUIRED'), 'SUPERUSER_REQUIRED', 403],
      [new P2PError('REQUEST_TIMEOUT', 'x'), 'REQUEST_TIMEOUT', 504],
      [new CertificateError('x'), 'CERTIFICATE_INVALID', 400],
      [new CommandRejected('ALREADY_INITIALIZED', 'x'), 'ALREADY_INITIALIZED', 409],
      [new HopsError('UNAVAILABLE', 'x'), 'UNAVAILABLE', 503],
    ]
    for (const [err, code, status] of cases) {
      expect(mapError(err)).toEqual({ status, body: { error: { code, message: (err as Error).message } } })
    }
  })

  it('names subclasses after themselves', () => {
    class NotLeaderError extends HopsError {
      constructor() {
        super('UNAVAILABLE', 'not the leader')
      }
    }
    const err = new NotLeaderError()
    expect(err.name).toBe('NotLeaderError')
    expect(err.code).toBe('UNAVAILABLE')
  })
})
