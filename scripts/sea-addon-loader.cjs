'use strict'
// CommonJS on purpose: it runs inside the SEA bundle, where require() is the module system.
/* eslint-disable @typescript-eslint/no-require-imports */
// Loads a native addon (`*.node`) shipped inside the single binary as a SEA asset. scripts/build-sea.mjs
// rewrites every addon load in the bundle into `load(key, sha256)`.
//
// A shared object cannot be dlopen'ed from memory, so the first start writes it to a cache directory,
// content-addressed by the key (name + hash prefix), through a temporary file and a rename, so that
// concurrent first starts never see a half-written file. Later starts reuse it after checking its hash.
//
// Cache directory, first usable of: $HOPSD_CACHE_DIR, $XDG_CACHE_HOME/hopsd, ~/.cache/hopsd,
// <tmpdir>/hopsd-cache-<uid>.
const { createHash } = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const loaded = new Map()

function cacheDirs() {
  const dirs = []
  if (process.env.HOPSD_CACHE_DIR) dirs.push(process.env.HOPSD_CACHE_DIR)
  if (process.env.XDG_CACHE_HOME) dirs.push(path.join(process.env.XDG_CACHE_HOME, 'hopsd'))
  try {
    dirs.push(path.join(os.homedir(), '.cache', 'hopsd'))
  } catch {
    // no home directory (some service users)
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user'
  dirs.push(path.join(os.tmpdir(), `hopsd-cache-${uid}`))
  return dirs
}

function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex')
}

function materialize(key, sha) {
  const sea = require('node:sea')
  if (!sea.isSea())
    throw new Error(`native addon ${key}: this bundle loads addons only inside the hopsd binary`)
  const bytes = Buffer.from(sea.getAsset(key))
  if (sha256(bytes) !== sha) throw new Error(`native addon ${key}: the asset inside the binary is corrupt`)
  const problems = []
  for (const dir of cacheDirs()) {
    const file = path.join(dir, key)
    try {
      if (fs.existsSync(file) && sha256(fs.readFileSync(file)) === sha) return file
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
      const tmp = `${file}.${process.pid}.tmp`
      fs.writeFileSync(tmp, bytes, { mode: 0o755 })
      fs.renameSync(tmp, file)
      return file
    } catch (err) {
      problems.push(`${dir}: ${err.code || err.message}`)
    }
  }
  throw new Error(
    `native addon ${key}: no writable cache directory (${problems.join('; ')}); set HOPSD_CACHE_DIR`,
  )
}

/** Returns the addon's exports (loaded once per process). */
function load(key, sha) {
  let exports = loaded.get(key)
  if (exports === undefined) {
    const file = materialize(key, sha)
    const mod = { exports: {} }
    process.dlopen(mod, file)
    exports = mod.exports
    loaded.set(key, exports)
  }
  return exports
}

module.exports = { load }
