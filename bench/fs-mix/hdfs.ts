/**
 * The HDFS peer of bench/fs-mix: Apache Hadoop 3.4's MiniDFSCluster (one NameNode and three DataNodes
 * in one JVM, real RPC/HTTP servers on loopback and real block files on disk) with WebHDFS on, started
 * by bench/fs-mix/hdfs/MiniHdfs.java. The jars come from Maven Central at run time
 * (bench/fs-mix/hdfs/pom.xml, `mvn dependency:copy-dependencies` into <repo>/.cache, as the Java client
 * tests fetch theirs), never at `npm ci`; needs `mvn` and a JDK 17 (`javac`, `java`).
 *
 * Why the unshaded `hadoop-minicluster` and not `hadoop-client-minicluster`: in the shaded artifact
 * (3.4.1) the NameNode's WebHDFS answers 404 to every op (its Jersey finds the resource class, but the
 * relocated JAX-RS annotations do not match), so it cannot be driven over WebHDFS at all.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT } from '../../test/helpers/index.js'
import { buildJavaProgram } from '../../test/helpers/tools.js'

const run = promisify(execFile)
const HDFS_DIR = join(REPO_ROOT, 'bench', 'fs-mix', 'hdfs')
/** A cold Maven download of the minicluster's ~100 MiB of jars on a slow link. */
const BUILD_TIMEOUT_MS = 10 * 60_000
const START_TIMEOUT_MS = 120_000

export interface HdfsPeer {
  /** The NameNode's HTTP address (`http://127.0.0.1:PORT`): WebHDFS is under /webhdfs/v1. */
  readonly url: string
  /** The superuser (the JVM's user): the load acts as this user, as it acts as `hopsd` on hopsd. */
  readonly user: string
  /** The JVM's pid: NameNode and DataNodes together, for CPU per operation. */
  readonly pid: number
  readonly version: string
  stop(): Promise<void>
}

/** Jars and the compiled MiniHdfs under .cache/java, by content hash; the reason when it cannot be made. */
export async function ensureHdfs(): Promise<{ ok: true; classpath: string } | { ok: false; why: string }> {
  for (const tool of ['mvn', 'javac', 'java']) {
    const probe = await run(tool, ['-version'], { timeout: 30_000 }).then(
      () => true,
      () => false,
    )
    if (!probe)
      return { ok: false, why: `\`${tool}\` is not installed (the HDFS peer needs Maven and a JDK 17)` }
  }
  const sources = readdirSync(HDFS_DIR)
    .filter((f) => f.endsWith('.java') || f.endsWith('.properties'))
    .sort()
    .map((f) => join(HDFS_DIR, f))
  try {
    const classpath = await buildJavaProgram({
      pom: join(HDFS_DIR, 'pom.xml'),
      sources,
      prefix: 'fs-mix-',
      includeScope: 'runtime',
      timeoutMs: BUILD_TIMEOUT_MS,
    })
    return { ok: true, classpath }
  } catch (err) {
    const e = err as { message?: string; stderr?: string }
    return {
      ok: false,
      why: `fetching/compiling the minicluster failed: ${(e.stderr || e.message || '').slice(-400)}`,
    }
  }
}

/** Starts MiniHdfs with `datanodes` DataNodes under `dir` and waits for its ready line. */
export async function startHdfs(classpath: string, dir: string, datanodes = 3): Promise<HdfsPeer> {
  // Jetty unpacks the web apps under java.io.tmpdir: keep them in the bench's temp dir (removed after).
  mkdirSync(join(dir, 'tmp'), { recursive: true })
  const child: ChildProcess = spawn(
    'java',
    // A fixed 2 GiB heap: far more than a few thousand files need, so GC does not shape the figures.
    [
      '-Xms2g',
      '-Xmx2g',
      '-Djava.net.preferIPv4Stack=true',
      `-Djava.io.tmpdir=${join(dir, 'tmp')}`,
      '-cp',
      classpath,
      'MiniHdfs',
      join(dir, 'base'),
      String(datanodes),
    ],
    { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] },
  )
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)))
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.stdin!.end() // MiniHdfs shuts the cluster down when its stdin closes
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    await exited
    clearTimeout(timer)
  }
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(
        () => reject(new Error(`MiniHdfs did not serve in ${START_TIMEOUT_MS} ms: ${stderr.slice(-800)}`)),
        START_TIMEOUT_MS,
      )
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d
        const nl = out.indexOf('\n')
        if (nl >= 0) {
          clearTimeout(timer)
          resolve(out.slice(0, nl))
        }
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`MiniHdfs exited (${code ?? signal}): ${stderr.slice(-800)}`))
      })
    })
    const ready = JSON.parse(line) as { webhdfs: string; user: string; version: string }
    // The NameNode binds 127.0.0.1 and names itself localhost: keep every request on the IPv4 loopback.
    const url = ready.webhdfs.replace('//localhost:', '//127.0.0.1:')
    return { url, user: ready.user, pid: child.pid!, version: ready.version, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
