/**
 * The load generator of bench/fs-mix, the same for hopsd and for HDFS: closed-loop clients, each with
 * its own seeded {@link MixChooser}, sending the Spotify mix (mix.ts) over WebHDFS — the REST API Hadoop
 * clients use — with node:http keep-alive connections. Two-step operations follow the 307 the way
 * Hadoop's client does: CREATE sends no body to the first address and the data to the Location; OPEN
 * follows a redirect to wherever the bytes are served (a DataNode on HDFS; hopsd serves inline files
 * itself). Client k talks to `urls[k mod urls.length]`, so on a hopsd cluster the clients spread over the
 * nodes as users do.
 *
 * The namespace is tracked client-side so every op names a path that exists: files and directories
 * made by {@link populate} and by the mix's creates/mkdirs; a delete or rename picks a file no op in
 * flight is using and takes it out of the live set before it is sent, so no other client picks it
 * meanwhile — an error is then the system's, not a race of the load generator.
 */
import { randomBytes } from 'node:crypto'
import { Agent } from 'node:http'
import { SeededRng } from '../../src/consensus/index.js'
import { sendHttp, type HttpAnswer } from '../harness.js'
import { MixChooser, type MixOp } from './mix.js'

/** Error messages kept per run (the first few), to say what failed without flooding the report. */
const ERROR_SAMPLES_MAX = 8
/** Draws a delete or rename makes for a file no other op is using before it takes a busy one. */
const IDLE_PICK_TRIES = 16

export interface LoadTarget {
  /** Base URLs (`http://127.0.0.1:PORT`) of the nodes the clients talk to. */
  readonly urls: readonly string[]
  /** `user.name` of every request: the system's superuser, so permissions never shape the figures. */
  readonly user: string
  readonly agent: Agent
}

export function newAgent(sockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets })
}

/** One request (see sendHttp): the mix sends octet-stream bodies only. */
function send(agent: Agent, method: string, url: string, body?: Buffer): Promise<HttpAnswer> {
  return sendHttp(agent, method, url, body)
}

class OpFailed extends Error {
  override readonly name = 'OpFailed'
}

function expect(res: HttpAnswer, status: number, what: string): HttpAnswer {
  if (res.status !== status)
    throw new OpFailed(
      `${what}: HTTP ${res.status} ${res.body.toString('utf8', 0, Math.min(200, res.body.length))}`,
    )
  return res
}

/** Paths that exist, with O(1) add, uniform pick and removal (swap with the last). */
class LiveSet {
  readonly #items: string[] = []
  readonly #index = new Map<string, number>()
  get size(): number {
    return this.#items.length
  }
  add(path: string): void {
    this.#index.set(path, this.#items.length)
    this.#items.push(path)
  }
  at(i: number): string {
    return this.#items[i]!
  }
  remove(path: string): void {
    const i = this.#index.get(path)
    if (i === undefined) return
    const last = this.#items.pop()!
    if (last !== path) {
      this.#items[i] = last
      this.#index.set(last, i)
    }
    this.#index.delete(path)
  }
}

export interface Namespace {
  readonly root: string
  readonly dirs: LiveSet
  readonly files: LiveSet
  /** Bytes of each live file, to check every read's length. */
  readonly sizes: Map<string, number>
}

/** Random bytes that every write takes its body from (a prefix of the needed length). */
const DATA = randomBytes(32 * 1024)

class Client {
  constructor(
    private readonly t: LoadTarget,
    private readonly url: string,
  ) {}
  #u(path: string, op: string, extra = ''): string {
    return `${this.url}/webhdfs/v1${path}?op=${op}&user.name=${encodeURIComponent(this.t.user)}${extra}`
  }
  async get(path: string, op: string): Promise<HttpAnswer> {
    return expect(await send(this.t.agent, 'GET', this.#u(path, op)), 200, `${op} ${path}`)
  }
  async put(path: string, op: string, extra = ''): Promise<HttpAnswer> {
    return expect(await send(this.t.agent, 'PUT', this.#u(path, op, extra)), 200, `${op} ${path}`)
  }
  async create(path: string, bytes: number): Promise<void> {
    const step1 = await send(this.t.agent, 'PUT', this.#u(path, 'CREATE', '&overwrite=false'))
    if (step1.status !== 307 || step1.location === undefined) expect(step1, 307, `CREATE ${path}`)
    expect(
      await send(this.t.agent, 'PUT', step1.location!, DATA.subarray(0, bytes)),
      201,
      `CREATE(data) ${path}`,
    )
  }
  async read(path: string): Promise<number> {
    let res = await send(this.t.agent, 'GET', this.#u(path, 'OPEN'))
    if (res.status === 307 && res.location !== undefined) res = await send(this.t.agent, 'GET', res.location)
    return expect(res, 200, `OPEN ${path}`).body.length
  }
  async delete(path: string): Promise<HttpAnswer> {
    return expect(
      await send(this.t.agent, 'DELETE', this.#u(path, 'DELETE', '&recursive=false')),
      200,
      `DELETE ${path}`,
    )
  }
  async mkdirs(path: string): Promise<void> {
    const res = await this.put(path, 'MKDIRS')
    if (!res.body.toString().includes('true')) throw new OpFailed(`MKDIRS ${path}: ${res.body.toString()}`)
  }
}

/**
 * Makes `dirs` directories under `root` with `filesPerDir` files each, sized by the mix's size table
 * (seeded), written by `concurrency` clients spread over the nodes.
 */
export async function populate(
  t: LoadTarget,
  root: string,
  dirs: number,
  filesPerDir: number,
  seed: number,
  concurrency = 32,
): Promise<Namespace> {
  const ns: Namespace = { root, dirs: new LiveSet(), files: new LiveSet(), sizes: new Map() }
  const sizes = new MixChooser(new SeededRng(seed + 1) /* not the mix's own sequence */)
  await new Client(t, t.urls[0]!).mkdirs(root)
  const jobs: { path: string; bytes: number }[] = []
  for (let d = 0; d < dirs; d++) {
    const dir = `${root}/d${d}`
    await new Client(t, t.urls[d % t.urls.length]!).mkdirs(dir)
    ns.dirs.add(dir)
    for (let f = 0; f < filesPerDir; f++) jobs.push({ path: `${dir}/f${f}`, bytes: sizes.nextFileBytes() })
  }
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async (_, c) => {
      const client = new Client(t, t.urls[c % t.urls.length]!)
      for (let j = next++; j < jobs.length; j = next++) {
        const { path, bytes } = jobs[j]!
        await client.create(path, bytes)
        ns.files.add(path)
        ns.sizes.set(path, bytes)
      }
    }),
  )
  return ns
}

export interface MixResult {
  seconds: number
  ops: number
  errors: number
  latenciesMs: Map<MixOp, number[]>
  errorsByOp: Map<MixOp, number>
  errorSamples: string[]
}

/**
 * `clients` closed-loop clients send the mix for `seconds`. Client k draws from the k-th fork of
 * `new SeededRng(seed)`, so a seed fixes every client's sequence of ops, paths and sizes (given the same
 * namespace and the same completions; what runs concurrently differs with timing).
 */
export async function runMix(
  t: LoadTarget,
  ns: Namespace,
  opts: { clients: number; seconds: number; seed: number; tag: string },
): Promise<MixResult> {
  const master = new SeededRng(opts.seed)
  const rngs = Array.from({ length: opts.clients }, () => master.fork())
  const r: MixResult = {
    seconds: 0,
    ops: 0,
    errors: 0,
    latenciesMs: new Map(),
    errorsByOp: new Map(),
    errorSamples: [],
  }
  /** Ops in flight per file path (see `hold` below). */
  const inFlight = new Map<string, number>()
  const t0 = performance.now()
  const deadline = t0 + opts.seconds * 1000
  await Promise.all(
    rngs.map(async (rng, k) => {
      const mix = new MixChooser(rng)
      const client = new Client(t, t.urls[k % t.urls.length]!)
      // Each op touches at most one file; it is counted in `inFlight` until the op ends, and a delete
      // or rename picks a file no other op is using, so no read races the removal of its file.
      let held: string | undefined
      const hold = (path: string): string => {
        inFlight.set(path, (inFlight.get(path) ?? 0) + 1)
        held = path
        return path
      }
      const pickFile = () => hold(ns.files.at(mix.nextIndex(ns.files.size)))
      const pickIdleFile = () => {
        let path = ns.files.at(mix.nextIndex(ns.files.size))
        for (let tries = 1; (inFlight.get(path) ?? 0) > 0 && tries < IDLE_PICK_TRIES; tries++)
          path = ns.files.at(mix.nextIndex(ns.files.size))
        return hold(path)
      }
      const pickDir = () => ns.dirs.at(mix.nextIndex(ns.dirs.size))
      for (let i = 0; performance.now() < deadline; i++) {
        const op = mix.nextOp()
        const start = performance.now()
        try {
          await one(op, i)
          const list = r.latenciesMs.get(op) ?? []
          list.push(performance.now() - start)
          r.latenciesMs.set(op, list)
          r.ops++
        } catch (err) {
          r.errors++
          r.errorsByOp.set(op, (r.errorsByOp.get(op) ?? 0) + 1)
          if (r.errorSamples.length < ERROR_SAMPLES_MAX)
            r.errorSamples.push(`${op}: ${err instanceof Error ? err.message : String(err)}`)
        } finally {
          if (held !== undefined) {
            const n = inFlight.get(held)! - 1
            if (n === 0) inFlight.delete(held)
            else inFlight.set(held, n)
            held = undefined
          }
        }
      }

      async function one(op: MixOp, i: number): Promise<void> {
        switch (op) {
          case 'read': {
            const path = pickFile()
            const got = await client.read(path)
            const want = ns.sizes.get(path)
            if (want !== undefined && got !== want)
              throw new OpFailed(`OPEN ${path}: ${got} bytes, wrote ${want}`)
            return
          }
          case 'statFile':
            await client.get(pickFile(), 'GETFILESTATUS')
            return
          case 'listDir':
            await client.get(pickDir(), 'LISTSTATUS')
            return
          case 'statDir':
            await client.get(pickDir(), 'GETFILESTATUS')
            return
          case 'listFile':
            await client.get(pickFile(), 'LISTSTATUS')
            return
          case 'create': {
            const path = `${pickDir()}/${opts.tag}c${k}_${i}`
            const bytes = mix.nextFileBytes()
            await client.create(path, bytes)
            ns.files.add(path)
            ns.sizes.set(path, bytes)
            return
          }
          case 'rename': {
            const from = pickIdleFile()
            const to = `${pickDir()}/${opts.tag}r${k}_${i}`
            ns.files.remove(from)
            const res = await client.put(from, 'RENAME', `&destination=${encodeURIComponent(to)}`)
            if (!res.body.toString().includes('true'))
              throw new OpFailed(`RENAME ${from}: ${res.body.toString()}`)
            ns.files.add(to)
            ns.sizes.set(to, ns.sizes.get(from)!)
            ns.sizes.delete(from)
            return
          }
          case 'delete': {
            const path = pickIdleFile()
            ns.files.remove(path)
            ns.sizes.delete(path)
            const res = await client.delete(path)
            if (!res.body.toString().includes('true'))
              throw new OpFailed(`DELETE ${path}: ${res.body.toString()}`)
            return
          }
          case 'chown':
            // To the same superuser (a later op by it must still be allowed) and its group; the op still
            // goes through the metadata path of a change.
            await client.put(pickFile(), 'SETOWNER', `&owner=${encodeURIComponent(t.user)}&group=mix`)
            return
          case 'setReplication':
            await client.put(pickFile(), 'SETREPLICATION', '&replication=3')
            return
          case 'mkdir': {
            const path = `${pickDir()}/${opts.tag}m${k}_${i}`
            await client.mkdirs(path)
            ns.dirs.add(path)
            return
          }
          case 'chmod':
            await client.put(pickFile(), 'SETPERMISSION', `&permission=${i % 2 === 0 ? '640' : '644'}`)
            return
        }
      }
    }),
  )
  r.seconds = (performance.now() - t0) / 1000
  return r
}
