// ESLint flat config: typescript-eslint's recommended rules, plus the lines the architecture draws
// hardest — the consensus core is pure (no I/O, no clock, no randomness of its own), and the layers
// (local rule `hopsd/layers` below): which top-level folder of src/ may import which, and that other
// folders import only a folder's index.ts.
import { existsSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import tseslint from 'typescript-eslint'

const SRC = join(dirname(fileURLToPath(import.meta.url)), 'src')

/**
 * Allowed import directions between the top-level folders of src/ (ARCHITECTURE.md "Layers and
 * folders"): an area may import the areas listed for it, nothing else of the project. Folders that do
 * not exist yet are listed so that their first file is already held to its layer; a folder missing
 * here fails the rule until it is given its place.
 */
const BELOW_API = ['serving', 'scheduler', 'gpu', 'projects', 'fs', 'auth', 'meta', 'consensus', 'proto']
const LAYERS = {
  proto: [],
  consensus: ['proto'],
  meta: ['consensus', 'proto'],
  auth: ['meta', 'consensus', 'proto'],
  fs: ['auth', 'meta', 'consensus', 'proto'],
  projects: ['fs', 'auth', 'meta', 'proto'],
  gpu: ['proto'],
  scheduler: ['gpu', 'projects', 'fs', 'auth', 'meta', 'consensus', 'proto'],
  serving: ['scheduler', 'projects', 'fs', 'auth', 'meta', 'consensus', 'proto'],
  api: BELOW_API,
  node: ['api', ...BELOW_API],
  cli: ['node', 'api', ...BELOW_API],
  // Shared by every area (below): generic helpers that import nothing of the project.
  lib: [],
}
/** Importable from every area: the small generic helpers, and the top-level shared files. */
const SHARED_AREAS = new Set(['lib'])
const SHARED_FILES = new Set(['errors.ts', 'version.ts'])

/**
 * Where `spec` (imported by `file`) breaks the layers, or undefined. Rules, for files under src/:
 * 1. Across top-level folders, only the directions in LAYERS (lib/ and src/errors.ts, src/version.ts
 *    are shared by all).
 * 2. A folder with an index.ts is a module: from outside it, import only that index.ts (a nested
 *    module such as src/fs/blocks is imported through its own index.ts, also from other areas).
 *    Folders without one (src/consensus/core, src/node/cluster) are part of their parent's module.
 *    src/proto/* (generated, one module per .proto file) is exempt.
 * Documented exception: src/errors.ts joins the areas' error tables, so it imports their errors.ts
 * files directly — through an area's index.ts it would pull in the whole area (and close cycles:
 * areas import src/errors.ts).
 */
function layerViolation(file, spec) {
  if (!spec.startsWith('.')) return undefined
  const from = relative(SRC, file).split(sep)
  const targetAbs = resolve(dirname(file), spec).replace(/\.js$/, '.ts')
  const to = relative(SRC, targetAbs).split(sep)
  if (to[0] === '..') return undefined // outside src (package.json)
  const fromArea = from.length > 1 ? from[0] : ''
  const toArea = to.length > 1 ? to[0] : ''
  if (toArea === '') {
    if (SHARED_FILES.has(to[0])) return undefined
    return `src/${to.join('/')} is not a shared file (shared: ${[...SHARED_FILES].join(', ')})`
  }
  if (fromArea === '' && from[0] === 'errors.ts' && to[to.length - 1] === 'errors.ts') return undefined
  if (fromArea !== toArea && fromArea !== '') {
    const allowed = LAYERS[fromArea]
    if (allowed === undefined)
      return `src/${fromArea} has no place in the layers (LAYERS in eslint.config.js)`
    if (LAYERS[toArea] === undefined)
      return `src/${toArea} has no place in the layers (LAYERS in eslint.config.js)`
    if (!SHARED_AREAS.has(toArea) && !allowed.includes(toArea))
      return `${fromArea} may not import ${toArea} (allowed: ${[...allowed, ...SHARED_AREAS].join(', ') || 'nothing'})`
  } else if (fromArea === '' && !SHARED_AREAS.has(toArea)) {
    return `the shared file src/${from[0]} may not import src/${toArea}`
  }
  if (toArea === 'proto') return undefined
  // The module the target belongs to: the nearest folder above it with an index.ts (the area itself
  // when none has one — also for a folder that does not exist yet).
  const toDirs = to.slice(0, -1)
  let moduleDepth = 1
  for (let d = toDirs.length; d >= 1; d--) {
    if (existsSync(join(SRC, ...toDirs.slice(0, d), 'index.ts'))) {
      moduleDepth = d
      break
    }
  }
  const moduleDir = toDirs.slice(0, moduleDepth)
  const inside = moduleDir.every((part, i) => from[i] === part) && from.length > moduleDir.length
  if (inside) return undefined
  if (to.length === moduleDepth + 1 && to[moduleDepth] === 'index.ts') return undefined
  return `import src/${moduleDir.join('/')} through its index.ts, not src/${to.join('/')}`
}

const layersRule = {
  meta: { type: 'problem', schema: [], messages: { layer: 'Layer rule: {{why}}.' } },
  create(context) {
    const file = context.filename
    if (!file.startsWith(SRC + sep)) return {}
    const check = (node) => {
      const source = node.source
      if (!source || source.type !== 'Literal' || typeof source.value !== 'string') return
      const why = layerViolation(file, source.value)
      if (why !== undefined) context.report({ node: source, messageId: 'layer', data: { why } })
    }
    return {
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression: check,
    }
  },
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/proto/*.js', 'src/proto/*.d.ts', 'bench/results/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { hopsd: { rules: { layers: layersRule } } },
    rules: { 'hopsd/layers': 'error' },
  },
  {
    files: ['src/consensus/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            'node:*',
            'fs',
            'net',
            'timers',
            'crypto',
            'classic-level',
            '../../node/*',
            '../../meta/*',
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'the core counts ticks; time comes from the driver' },
        { object: 'Math', property: 'random', message: 'use the injected seeded Rng' },
        { object: 'performance', property: 'now', message: 'the core counts ticks' },
      ],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask'],
    },
  },
)
