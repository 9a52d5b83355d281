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
// An addon that needs shared libraries beside it (onnxruntime-node: libonnxruntime.so.1, found through
// the addon's $ORIGIN runpath) is a group: its files are written, under their own names, into one
// directory named by the group's key (which hashes every file), made as a temporary directory and
// renamed into place. Large files come gzip-compressed inside the binary.
//
// Cache directory, first usable of: $HOPSD_CACHE_DIR, $XDG_CACHE_HOME/hopsd, ~/.cache/hopsd,
// <tmpdir>/hopsd-cache-<uid>.
const { createHash } = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const zlib = require('node:zlib')

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
    exports = dlopen(materialize(key, sha))
    loaded.set(key, exports)
  }
  return exports
}

function dlopen(file) {
  const mod = { exports: {} }
  process.dlopen(mod, file)
  return mod.exports
}

/** Whether dir holds every file of the group with the right content. */
function groupComplete(dir, files) {
  try {
    return files.every((f) => sha256(fs.readFileSync(path.join(dir, f.name))) === f.sha)
  } catch {
    return false
  }
}

function materializeGroup(group, files) {
  const sea = require('node:sea')
  if (!sea.isSea())
    throw new Error(`native addon ${group}: this bundle loads addons only inside the hopsd binary`)
  const problems = []
  for (const base of cacheDirs()) {
    const dir = path.join(base, group)
    try {
      if (groupComplete(dir, files)) return dir
      fs.mkdirSync(base, { recursive: true, mode: 0o700 })
      const tmp = `${dir}.${process.pid}.tmp`
      fs.rmSync(tmp, { recursive: true, force: true })
      fs.mkdirSync(tmp, { mode: 0o700 })
      for (const f of files) {
        const stored = Buffer.from(sea.getAsset(f.asset))
        const bytes = f.gzip ? zlib.gunzipSync(stored) : stored
        if (sha256(bytes) !== f.sha)
          throw new Error(`native addon ${f.asset}: the asset inside the binary is corrupt`)
        fs.writeFileSync(path.join(tmp, f.name), bytes, { mode: 0o755 })
      }
      fs.rmSync(dir, { recursive: true, force: true }) // an incomplete or corrupt earlier copy
      try {
        fs.renameSync(tmp, dir)
      } catch (err) {
        // Another process renamed its copy first: use it when it is complete.
        fs.rmSync(tmp, { recursive: true, force: true })
        if (!groupComplete(dir, files)) throw err
      }
      return dir
    } catch (err) {
      if (String(err.message).includes('is corrupt')) throw err
      problems.push(`${dir}: ${err.code || err.message}`)
    }
  }
  throw new Error(
    `native addon ${group}: no writable cache directory (${problems.join('; ')}); set HOPSD_CACHE_DIR`,
  )
}

/**
 * Returns the exports of the addon `addonName` of the group (loaded once per process), after writing
 * the group's files (the addon and its libraries) into the cache. files: [{ name, asset, sha, gzip }].
 */
function loadGroup(group, addonName, files) {
  let exports = loaded.get(group)
  if (exports === undefined) {
    exports = dlopen(path.join(materializeGroup(group, files), addonName))
    loaded.set(group, exports)
  }
  return exports
}

module.exports = { load, loadGroup }
