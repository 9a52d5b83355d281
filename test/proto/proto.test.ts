import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { REPO_ROOT } from '../helpers/index.js'
import { hopsd as raft } from '../../src/proto/raft.js'
import { hopsd as meta } from '../../src/proto/meta.js'

describe('generated protobuf code', () => {
  it('is current with proto/*.proto', () => {
    // Throws (non-zero exit) when `npm run proto` would change a committed file.
    execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'gen-proto.mjs'), '--check'], {
      stdio: 'pipe',
    })
  })

  it('keeps one protobufjs root per file, so modules sharing the `hopsd` package do not clobber each other', () => {
    // raft.js was loaded first and meta.js after it: nested raft messages must still encode and decode.
    const bytes = raft.raft.Message.encode({
      type: 3,
      term: 7,
      entries: [{ index: 5, term: 7, data: new Uint8Array([1, 2]) }],
    }).finish()
    const decoded = raft.raft.Message.decode(bytes)
    expect(decoded.entries[0]!.index).toBe(5)
    expect(decoded.term).toBe(7) // 64-bit fields are plain numbers
    const cmd = meta.meta.Command.decode(
      meta.meta.Command.encode({ nowMs: 2 ** 41, user: 'u', mkdirs: { path: '/a' } }).finish(),
    )
    expect(cmd.mkdirs?.path).toBe('/a')
    expect(cmd.nowMs).toBe(2 ** 41)
  })
})
