// The layer rule of eslint.config.js (`hopsd/layers`), run through ESLint with the project's own config
// — what `npm run lint` runs — on source text placed at paths inside src/ (nothing is written there).
import { join } from 'node:path'
import { ESLint } from 'eslint'
import { describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '..', '..')
const eslint = new ESLint({ cwd: root })

/** The layer-rule messages for a file at `path` (relative to the repo) importing `spec`. */
async function layerErrors(path: string, spec: string): Promise<string[]> {
  const [result] = await eslint.lintText(`export * from '${spec}'\n`, { filePath: join(root, path) })
  return result!.messages.filter((m) => m.ruleId === 'hopsd/layers').map((m) => m.message)
}

describe('the layer rule (npm run lint)', () => {
  it('fails a wrong arrow between areas', async () => {
    expect(await layerErrors('src/fs/x.ts', '../node/index.js')).toEqual([
      expect.stringContaining('fs may not import node'),
    ])
    expect(await layerErrors('src/fs/blocks/x.ts', '../../api/index.js')).toEqual([
      expect.stringContaining('fs may not import api'),
    ])
    expect(await layerErrors('src/consensus/x.ts', '../meta/index.js')).toEqual([
      expect.stringContaining('consensus may not import meta'),
    ])
    expect(await layerErrors('src/meta/x.ts', '../fs/index.js')).toEqual([
      expect.stringContaining('meta may not import fs'),
    ])
    expect(await layerErrors('src/api/routes/x.ts', '../../cli/main.js')).toHaveLength(1)
    expect(await layerErrors('src/lib/x.ts', '../fs/index.js')).toHaveLength(1)
  })

  it('holds folders that do not exist yet to their layer', async () => {
    expect(await layerErrors('src/gpu/x.ts', '../fs/index.js')).toEqual([
      expect.stringContaining('gpu may not import fs'),
    ])
    expect(await layerErrors('src/projects/x.ts', '../consensus/index.js')).toHaveLength(1)
    expect(await layerErrors('src/auth/x.ts', '../fs/index.js')).toHaveLength(1)
    expect(await layerErrors('src/scheduler/x.ts', '../serving/index.js')).toHaveLength(1)
    expect(await layerErrors('src/scheduler/x.ts', '../gpu/index.js')).toEqual([])
    expect(await layerErrors('src/serving/x.ts', '../scheduler/index.js')).toEqual([])
    expect(await layerErrors('src/auth/x.ts', '../meta/index.js')).toEqual([])
    expect(await layerErrors('src/newarea/x.ts', '../meta/index.js')).toEqual([
      expect.stringContaining('has no place in the layers'),
    ])
  })

  it("fails an import of another folder's internals; allows its index.ts", async () => {
    expect(await layerErrors('src/api/routes/x.ts', '../../fs/errors.js')).toEqual([
      expect.stringContaining('import src/fs through its index.ts'),
    ])
    expect(await layerErrors('src/node/cluster/x.ts', '../../fs/blocks/manager.js')).toEqual([
      expect.stringContaining('import src/fs/blocks through its index.ts'),
    ])
    expect(await layerErrors('src/node/x.ts', '../api/routes/webhdfs.js')).toHaveLength(1)
    expect(await layerErrors('src/node/cluster/x.ts', '../p2p/drain.js')).toHaveLength(1) // same area
    expect(await layerErrors('src/fs/service2.ts', './blocks/blockmap.js')).toHaveLength(1) // same area
    expect(await layerErrors('src/node/x.ts', '../fs/blocks/index.js')).toEqual([])
    expect(await layerErrors('src/node/x.ts', '../fs/datanode/index.js')).toEqual([])
    expect(await layerErrors('src/fs/datanode/x.ts', '../blocks/index.js')).toEqual([])
    // Inside a module, its own files (and its parent's) are fair game; folders without an index.ts
    // belong to their parent's module.
    expect(await layerErrors('src/fs/blocks/x.ts', './blockmap.js')).toEqual([])
    expect(await layerErrors('src/fs/blocks/x.ts', '../namespace.js')).toEqual([])
    expect(await layerErrors('src/consensus/storage/x.ts', '../core/types.js')).toEqual([])
    expect(await layerErrors('src/node/x.ts', './cluster/tls-module.js')).toEqual([])
  })

  it('lets every area use the shared files and lib/, and proto modules directly', async () => {
    expect(await layerErrors('src/consensus/x.ts', '../lib/index.js')).toEqual([])
    expect(await layerErrors('src/consensus/x.ts', '../proto/raft.js')).toEqual([])
    expect(await layerErrors('src/gpu/x.ts', '../errors.js')).toEqual([])
    expect(await layerErrors('src/fs/x.ts', '../version.js')).toEqual([])
    expect(await layerErrors('src/fs/x.ts', '../lib/periodic.js')).toHaveLength(1)
    // src/errors.ts joins the areas' errors.ts tables (the documented exception), nothing else.
    expect(await layerErrors('src/errors.ts', './fs/errors.js')).toEqual([])
    expect(await layerErrors('src/errors.ts', './node/p2p/errors.js')).toEqual([])
    expect(await layerErrors('src/errors.ts', './fs/namespace.js')).toHaveLength(1)
  })
})
