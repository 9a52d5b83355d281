/**
 * The serving node's agent: runs the replicas the leader placed on this node, and reports them.
 *
 * On every change of a deployment (and every `intervalMs`, so that a lost report or a failed fetch is
 * retried) it compares the committed replicas placed on this node with the ones it runs: a new one is
 * fetched (the model version's files copied from the file system into `<root>/<replica id>/`) and
 * started with src/serving's {@link createReplica}; one no longer placed here is drained and stopped
 * and its files removed. Each replica's state is reported (ReportReplica) when it differs from the
 * committed one, so the cluster's view converges even when a report was lost.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { createReplica, type Replica, type ReplicaInit, type ReplicaStatus } from '../replica.js'
import type { Deployment, ModelVersion, ReplicaRecord } from '../registry/types.js'

/** Where the agent reads a model version's files (the file system, as the cluster). */
export interface ModelFiles {
  /** Every file under `dir`, recursively, as paths relative to it. */
  list(dir: string, signal: AbortSignal): Promise<string[]>
  /** The bytes of a file, in pieces. */
  read(path: string, signal: AbortSignal): AsyncIterable<Uint8Array>
}

export interface ReplicaReport {
  readonly name: string
  readonly replicaId: string
  readonly state: string
  readonly error: string
  readonly restarts: number
  readonly inflight: number
}

export interface AgentLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export interface ServingAgentInit {
  readonly self: string
  /** Local directory for the model copies (one folder per replica). */
  readonly root: string
  readonly deployments: () => readonly Deployment[]
  readonly model: (project: string, name: string, version: string) => ModelVersion | undefined
  readonly files: ModelFiles
  readonly report: (r: ReplicaReport) => Promise<void>
  readonly logger: AgentLogger
  /** Re-check interval (default 1 s). */
  readonly intervalMs?: number
  /** How long a removed replica may finish its requests (default 5 s). */
  readonly drainMs?: number
  /** Overrides for the replicas (tests: smaller timeouts). */
  readonly replicaDefaults?: Partial<ReplicaInit>
  /**
   * A replica's requests in flight are reported (for the autoscaler) when they changed, at most this
   * often (default 2 s): load through Raft is one small command per replica per interval, never per request.
   */
  readonly loadReportMs?: number
  /** Files of one model version at most (a bound on what one placement copies). */
  readonly modelFilesMax?: number
}

interface Running {
  readonly id: string
  readonly deployment: string
  readonly version: string
  readonly abort: AbortController
  replica?: Replica
  /** What to report while no replica exists yet (fetching) or after a failed fetch. */
  phase: 'fetching' | 'running' | 'failed'
  error: string
  reporting: boolean
  /** When the in-flight figure was last reported (it alone is reported at most every loadReportMs). */
  loadReportedMs: number
}

const MODEL_FILES_MAX = 10_000

/**
 * What a deployment's `cpus` and `memoryMiB` become for one replica's runtime. ONNX: ONNX Runtime's
 * intra-op threads = cpus (whole cores, at least 1; enforced by the runtime's thread pool) and the host's
 * V8 heap limit = memoryMiB (`--max-old-space-size`: the host's JavaScript memory, not ONNX Runtime's
 * native buffers). Subprocess predictors: `HOPSD_CPUS`, `HOPSD_MEMORY_MIB` and `OMP_NUM_THREADS` in
 * their environment — a hint the predictor may follow, not a limit. 0 (not asked): nothing is set.
 */
export function replicaLimits(
  d: Pick<Deployment, 'cpus' | 'memoryMiB'>,
  runtime: 'onnx' | 'subprocess',
): Pick<ReplicaInit, 'threads' | 'heapMiBMax' | 'env'> {
  const threads = d.cpus > 0 ? Math.max(1, Math.floor(d.cpus)) : undefined
  if (runtime === 'onnx')
    return {
      ...(threads === undefined ? {} : { threads }),
      ...(d.memoryMiB > 0 ? { heapMiBMax: Math.max(HEAP_MIB_MIN, d.memoryMiB) } : {}),
    }
  const env: Record<string, string> = {
    ...(threads === undefined ? {} : { HOPSD_CPUS: String(d.cpus), OMP_NUM_THREADS: String(threads) }),
    ...(d.memoryMiB > 0 ? { HOPSD_MEMORY_MIB: String(d.memoryMiB) } : {}),
  }
  return Object.keys(env).length === 0 ? {} : { env }
}
/** The smallest heap limit given to an ONNX host (see replica.ts). */
const HEAP_MIB_MIN = 32

export class ServingAgent {
  private readonly running = new Map<string, Running>()
  private timer: NodeJS.Timeout | undefined
  private stopped = false

  constructor(private readonly init: ServingAgentInit) {}

  start(): void {
    this.stopped = false
    this.timer = setInterval(() => this.sync(), this.init.intervalMs ?? 1_000)
    this.timer.unref()
    this.sync()
  }

  /** Stops every replica (the node is going away; the leader replaces them elsewhere). */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer !== undefined) clearInterval(this.timer)
    await Promise.all([...this.running.values()].map((r) => this.remove(r, 0)))
  }

  /** The replica this node runs under `id`, when it does. */
  local(id: string): Replica | undefined {
    return this.running.get(id)?.replica
  }

  /** Compares the placement with what runs here and acts on the difference (never throws). */
  sync(): void {
    if (this.stopped) return
    const wanted = new Map<string, { d: Deployment; r: ReplicaRecord }>()
    for (const d of this.init.deployments())
      for (const r of d.replicas) if (r.node === this.init.self) wanted.set(r.id, { d, r })
    for (const run of [...this.running.values()])
      if (!wanted.has(run.id)) void this.remove(run, this.init.drainMs ?? 5_000)
    for (const [id, { d, r }] of wanted) {
      const run = this.running.get(id)
      if (run === undefined) this.add(d, r)
      else this.maybeReport(run, r)
    }
  }

  private add(d: Deployment, r: ReplicaRecord): void {
    const run: Running = {
      id: r.id,
      deployment: d.name,
      version: r.version,
      abort: new AbortController(),
      phase: 'fetching',
      error: '',
      reporting: false,
      loadReportedMs: 0,
    }
    this.running.set(r.id, run)
    void this.launch(d, r, run)
  }

  private async launch(d: Deployment, r: ReplicaRecord, run: Running): Promise<void> {
    const dir = join(this.init.root, r.id)
    const signal = run.abort.signal
    try {
      const m = this.init.model(d.project, d.model, r.version)
      if (m === undefined) throw new Error(`${d.model} version ${r.version} is not registered`)
      await rm(dir, { recursive: true, force: true })
      await mkdir(dir, { recursive: true })
      await this.fetch(m.path, dir, signal)
      if (signal.aborted) return
      const runtime = m.framework === 'subprocess' ? 'subprocess' : 'onnx'
      const replica = createReplica({
        ...this.init.replicaDefaults,
        runtime,
        modelDir: dir,
        name: d.name,
        version: r.version,
        ...(m.modelFile !== '' ? { modelFile: m.modelFile } : {}),
        ...(m.framework === 'subprocess' ? { command: m.command } : {}),
        ...replicaLimits(d, runtime),
      })
      run.replica = replica
      run.phase = 'running'
      replica.on('state', () => this.maybeReport(run))
      this.init.logger.info(
        { replica: r.id, deployment: d.name, version: r.version },
        'serving: starting replica',
      )
      await replica.start(signal).catch(() => undefined)
    } catch (err) {
      if (signal.aborted) return
      run.phase = 'failed'
      run.error = `fetching the model: ${(err as Error).message}`
      this.init.logger.warn({ replica: r.id, err: run.error }, 'serving: replica could not start')
    }
    this.maybeReport(run)
  }

  private async fetch(from: string, to: string, signal: AbortSignal): Promise<void> {
    const files = await this.init.files.list(from, signal)
    if (files.length > (this.init.modelFilesMax ?? MODEL_FILES_MAX))
      throw new Error(`${from} holds more than ${this.init.modelFilesMax ?? MODEL_FILES_MAX} files`)
    for (const rel of files) {
      if (rel.split('/').some((c) => c === '..' || c === '')) throw new Error(`unexpected file name ${rel}`)
      const target = join(to, rel)
      await mkdir(dirname(target), { recursive: true })
      const pieces: Uint8Array[] = []
      for await (const p of this.init.files.read(`${from}/${rel}`, signal)) pieces.push(Buffer.from(p))
      await writeFile(target, Buffer.concat(pieces))
    }
  }

  private async remove(run: Running, drainMs: number): Promise<void> {
    if (!this.running.has(run.id)) return
    this.running.delete(run.id)
    run.abort.abort()
    this.init.logger.info({ replica: run.id, deployment: run.deployment }, 'serving: stopping replica')
    await run.replica?.stop({ drainMs }).catch(() => undefined)
    await rm(join(this.init.root, run.id), { recursive: true, force: true }).catch(() => undefined)
  }

  /** Reports the replica's state when it differs from the committed one (at most one report in flight). */
  private maybeReport(run: Running, committed?: ReplicaRecord): void {
    if (this.stopped || run.reporting || !this.running.has(run.id)) return
    const rec =
      committed ??
      this.init
        .deployments()
        .find((d) => d.name === run.deployment)
        ?.replicas.find((r) => r.id === run.id)
    if (rec === undefined) return
    const now = this.current(run)
    const same = rec.state === now.state && rec.error === now.error && rec.restarts === now.restarts
    const loadDue =
      rec.inflight !== now.inflight && Date.now() - run.loadReportedMs >= (this.init.loadReportMs ?? 2_000)
    if (same && !loadDue) return
    if (loadDue) run.loadReportedMs = Date.now()
    run.reporting = true
    this.init
      .report({ name: run.deployment, replicaId: run.id, ...now })
      .catch((err) =>
        this.init.logger.warn({ replica: run.id, err: (err as Error).message }, 'serving: report failed'),
      )
      .finally(() => {
        run.reporting = false
      })
  }

  private current(run: Running): { state: string; error: string; restarts: number; inflight: number } {
    if (run.phase === 'fetching') return { state: 'starting', error: '', restarts: 0, inflight: 0 }
    if (run.phase === 'failed' || run.replica === undefined)
      return { state: 'failed', error: run.error, restarts: 0, inflight: 0 }
    const s: ReplicaStatus = run.replica.state()
    const state = s.state === 'stopped' ? 'stopping' : s.state
    return { state, error: s.lastError?.message ?? '', restarts: s.restarts, inflight: s.inflight }
  }
}
