/**
 * Third-party clients the tests drive, made on demand and cached under `<repo>/.cache/` so that
 * `npm test` passes on a fresh machine that can reach the package registries (PyPI, Maven Central):
 *
 * - {@link pythonEnv}: a virtual environment made from test/python/requirements.txt (HdfsCLI, fsspec,
 *   pandas, schemathesis). Its directory is named after a hash of the requirements file, so a changed
 *   file makes a new one; a finished one is marked and reused.
 * - {@link hadoopClient}: Hadoop's Java client (hadoop-client-api + runtime from Maven Central, into a
 *   Maven repository under .cache/m2) and the test's Java programs (test/java/*.java) compiled against it.
 *
 * Several vitest workers (and other worktrees' runs) may ask at once: a directory lock under .cache/
 * makes one of them build while the others wait, and a half-built environment is never used (the
 * marker file is written last).
 *
 * @example
 * ```ts
 * const { python } = await pythonEnv()
 * await run(python, ['test/python/hdfscli_ops.py', url, '/x'])
 * ```
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { basename, join } from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT, isProcessAlive, waitFor } from './index.js'

const run = promisify(execFile)
export const CACHE_DIR = join(REPO_ROOT, '.cache')
/** Long enough for a cold pip install of pandas and schemathesis on a slow link. */
const BUILD_TIMEOUT_MS = 15 * 60_000

export interface PythonEnv {
  /** The venv's python3. */
  readonly python: string
  /** The venv's bin directory (schemathesis's `st` lives there). */
  readonly bin: string
}

let pythonPromise: Promise<PythonEnv> | undefined

/** The test venv (made once per requirements file, then reused). */
export function pythonEnv(): Promise<PythonEnv> {
  pythonPromise ??= makePythonEnv()
  return pythonPromise
}

async function makePythonEnv(): Promise<PythonEnv> {
  const reqFile = join(REPO_ROOT, 'test', 'python', 'requirements.txt')
  const hash = createHash('sha256').update(readFileSync(reqFile)).digest('hex').slice(0, 12)
  const dir = join(CACHE_DIR, 'python', `venv-${hash}`)
  const env: PythonEnv = { python: join(dir, 'bin', 'python3'), bin: join(dir, 'bin') }
  const marker = join(dir, '.complete')
  if (existsSync(marker)) return env
  await withCacheLock('python', async () => {
    if (existsSync(marker)) return
    rmSync(dir, { recursive: true, force: true })
    await run('python3', ['-m', 'venv', dir], { timeout: BUILD_TIMEOUT_MS })
    await run(env.python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', reqFile], {
      timeout: BUILD_TIMEOUT_MS,
      maxBuffer: 64 * 1024 * 1024,
    })
    writeFileSync(marker, new Date().toISOString())
  })
  return env
}

/** Runs `fn` while holding `.cache/<name>.lock` (a directory with the owner's pid; a dead owner's is taken over). */
export async function withCacheLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(CACHE_DIR, { recursive: true })
  const lock = join(CACHE_DIR, `${name}.lock`)
  await waitFor(
    () => {
      try {
        mkdirSync(lock)
        writeFileSync(join(lock, 'pid'), String(process.pid))
        return true
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
        let owner = NaN
        try {
          owner = Number(readFileSync(join(lock, 'pid'), 'utf8'))
        } catch {
          return false // the owner is between mkdir and writing its pid
        }
        if (Number.isInteger(owner) && owner > 0 && !isProcessAlive(owner))
          rmSync(lock, { recursive: true, force: true })
        return false
      }
    },
    { timeoutMs: BUILD_TIMEOUT_MS, intervalMs: 500, what: `the cache lock ${lock}` },
  )
  try {
    return await fn()
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}

export interface HadoopClient {
  /** The classpath: the compiled test program and Hadoop's client jars. */
  readonly classpath: string
}

let hadoopPromise: Promise<HadoopClient> | undefined

/**
 * Hadoop's Java client (test/java/pom.xml, from Maven Central into .cache/m2) and
 * test/java/HadoopWebHdfsOps.java compiled against it, both kept under .cache/java by content hash.
 */
export function hadoopClient(): Promise<HadoopClient> {
  hadoopPromise ??= makeHadoopClient()
  return hadoopPromise
}

async function makeHadoopClient(): Promise<HadoopClient> {
  const javaDir = join(REPO_ROOT, 'test', 'java')
  // Every program in test/java (HadoopWebHdfsOps, HadoopTokenOps), compiled together.
  const sources = readdirSync(javaDir)
    .filter((f) => f.endsWith('.java'))
    .sort()
    .map((f) => join(javaDir, f))
  return { classpath: await buildJavaProgram({ pom: join(javaDir, 'pom.xml'), sources }) }
}

/**
 * A Java program built against a pom's dependencies, kept under .cache/java by content hash: the jars
 * (`mvn dependency:copy-dependencies` into .cache/m2, then `<prefix>lib-<hash of the pom>`) and the
 * classes (`javac` of the `.java` sources, other sources copied beside them as resources, in
 * `<prefix>classes-<hash of pom and sources>`). Built once under the java cache lock; returns the classpath.
 */
export async function buildJavaProgram(opts: {
  pom: string
  /** `.java` files are compiled; any other file is copied to the classes' root (e.g. log4j.properties). */
  sources: readonly string[]
  /** Names the cache folders apart from other programs' (default none: the test client's). */
  prefix?: string
  /** Maven's -DincludeScope for the jars (default: every scope). */
  includeScope?: string
  timeoutMs?: number
}): Promise<string> {
  const hash = (files: readonly string[]): string => {
    const h = createHash('sha256')
    for (const f of files) h.update(readFileSync(f))
    return h.digest('hex').slice(0, 12)
  }
  const prefix = opts.prefix ?? ''
  const timeout = opts.timeoutMs ?? BUILD_TIMEOUT_MS
  const lib = join(CACHE_DIR, 'java', `${prefix}lib-${hash([opts.pom])}`)
  const classes = join(CACHE_DIR, 'java', `${prefix}classes-${hash([opts.pom, ...opts.sources])}`)
  const classpath = `${classes}:${lib}/*`
  if (existsSync(join(lib, '.complete')) && existsSync(join(classes, '.complete'))) return classpath
  await withCacheLock('java', async () => {
    if (!existsSync(join(lib, '.complete'))) {
      rmSync(lib, { recursive: true, force: true })
      await run(
        'mvn',
        [
          '-q',
          '-B',
          '-f',
          opts.pom,
          `-Dmaven.repo.local=${join(CACHE_DIR, 'm2')}`,
          'dependency:copy-dependencies',
          ...(opts.includeScope === undefined ? [] : [`-DincludeScope=${opts.includeScope}`]),
          `-DoutputDirectory=${lib}`,
        ],
        { timeout, maxBuffer: 64 * 1024 * 1024, cwd: CACHE_DIR },
      )
      writeFileSync(join(lib, '.complete'), new Date().toISOString())
    }
    if (!existsSync(join(classes, '.complete'))) {
      rmSync(classes, { recursive: true, force: true })
      mkdirSync(classes, { recursive: true })
      const java = opts.sources.filter((f) => f.endsWith('.java'))
      await run('javac', ['-nowarn', '-cp', `${lib}/*`, '-d', classes, ...java], {
        timeout,
        maxBuffer: 16 * 1024 * 1024,
      })
      for (const f of opts.sources.filter((f) => !f.endsWith('.java')))
        copyFileSync(f, join(classes, basename(f)))
      writeFileSync(join(classes, '.complete'), new Date().toISOString())
    }
  })
  return classpath
}
