/**
 * The `scheduler` module: GPU jobs (src/scheduler) wired into the daemon.
 *
 *  - every node: the gossip view of the workers' resource ads (libp2p topic, see sched-transport.ts),
 *    `GET /api/v1/gpus`;
 *  - nodes with a metadata replica: the jobs API (`/api/v1/jobs`), the placer and its queue for the jobs
 *    submitted here, and — while this node leads the Raft group — the reconciler (lost workers, orphaned
 *    placements, dead placers' queues);
 *  - nodes with the gpu role: the worker agent over the GPU inventory (src/gpu, `--gpus`), running tasks as
 *    child processes with exactly their GPUs visible, logging into the submitter's home in the file
 *    system, with an API key of the submitter for the program. With a metadata replica it reads and
 *    commits job state through it; without one (a gpu-only node) through a metadata node over libp2p
 *    (sched-meta.ts: reports, linearizable reads of its jobs, task setup), and it polls its running jobs
 *    for kills and gang failures (there is no local apply stream to watch);
 *  - metadata nodes serve that protocol; a node without a replica forwards the jobs API over HTTP to a
 *    metadata node (its own zone first), which validates, commits and places the job (the submission's
 *    placer is that metadata node), and serves `GET /api/v1/gpus` from its own view.
 */
import { availableParallelism, totalmem } from 'node:os'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { clusterPrincipal, KEY_EXPIRES_S_MAX, type Principal } from '../../auth/index.js'
import { gpusRoutes, jobsRoutes, type ApiRoutes } from '../../api/index.js'
import { HopsError } from '../../errors.js'
import { createGpuInventory, systemClock, type GpuInventory, type GpuSnapshot } from '../../gpu/index.js'
import { Periodic } from '../../lib/index.js'
import type { ProjectStore } from '../../projects/index.js'
import {
  ADS_TOPIC,
  JobQueue,
  JobService,
  Placer,
  Reconciler,
  ResourceView,
  WorkerAgent,
  createJobProposer,
  createJobRuntime,
  cryptoRng,
  decodeAd,
  projectJobAccess,
  jobLogsDir,
  quotaCheck,
  realClock,
  webHdfsFiles,
  type GpuDevice,
  taskKeyName,
  type JobProposer,
  type JobRecord,
  type JobsModule,
  type TaskSetupService,
  type WorkerState,
} from '../../scheduler/index.js'
import { requireService, type NodeModule } from '../module.js'
import { formatHostPort } from '../p2p/index.js'
import type { MetadataNode } from './metadata-module.js'
import type { ClusterClient } from './client-module.js'
import { proxyRoutes, type ForwardTls } from './fs-module.js'
import { schedMetaClient, serveSchedMeta, type SchedMetaClient } from './sched-meta.js'
import { libp2pSchedTransport } from './sched-transport.js'

/** What other modules (and tests through the API) get from the scheduler module. */
export interface SchedulerNode {
  /** The jobs service; undefined on a node without a metadata replica. */
  readonly jobs?: JobService
  readonly view: ResourceView
  /** This node's GPUs (gpu role only). */
  readonly inventory?: GpuInventory
}

/** How often silent workers are dropped from the view, and the reconciler's leadership is checked. */
const HOUSEKEEPING_INTERVAL_MS = 1_000
const WORKER_STATE_FILE = 'sched-worker.json'
/**
 * A forwarded jobs request may stay silent this long: a followed log (`follow=true`) sends nothing while
 * its job prints nothing, and ends after this much silence through a node without a replica.
 */
const JOBS_FORWARD_IDLE_MS = 30 * 60_000
/** How often a worker without a replica reads back the jobs of its tasks (kills, gang failures). */
const JOB_POLL_INTERVAL_MS = 1_000
/** The READ bit of an access check (r--). */
const FS_READ = 4
/** A task's API key lives at most this long beyond the job's own timeout (or a week without one). */
const TASK_KEY_SLACK_S = 3_600
const TASK_KEY_DEFAULT_S = 7 * 24 * 3_600

export function schedulerModule(): NodeModule<'scheduler'> {
  return {
    name: 'scheduler',
    create(components) {
      const { config, identity } = components
      const logger = components.logger.child({ area: 'scheduler' })
      const self = identity.id
      const p2p = requireService(components, 'p2p')
      const membership = requireService(components, 'membership')
      const local = components.services.metadata
      const clock = realClock
      const transport = libp2pSchedTransport(self, () => p2p.host(), logger)
      const view = new ResourceView({ clock })
      transport.subscribe(ADS_TOPIC, (from, bytes) => {
        try {
          const ad = decodeAd(bytes)
          // An ad speaks for the node that signed it, never for another.
          if (ad.node === from) view.apply(ad)
        } catch (err) {
          logger.debug({ err: (err as Error).message, from }, 'scheduler: undecodable ad')
        }
      })

      const isGpuNode = config.roles.includes('gpu')
      const inventory = isGpuNode ? createGpuInventory({ spec: config.gpus, clock: systemClock }) : undefined
      // Without a replica, job state is reached through a metadata node (reports, reads, task setup).
      const cluster = local === undefined ? requireService(components, 'cluster') : undefined
      const metaClient =
        cluster === undefined
          ? undefined
          : schedMetaClient({ host: () => p2p.host(), targets: () => cluster.metadataTargets() })
      let unserveMeta: (() => Promise<void>) | undefined
      /** Node commands as the cluster, on this replica (metadata nodes). */
      let nodePropose: JobProposer | undefined
      let jobPoll: Periodic | undefined

      let jobService: JobService | undefined
      let worker: WorkerAgent | undefined
      let queue: JobQueue | undefined
      let reconciler: Reconciler | undefined
      let housekeeping: Periodic | undefined
      let httpBase = ''
      const stopJobs: (() => void)[] = []
      /** Aborted at stop: the background catch-up loops end with the module. */
      const life = new AbortController()

      if (local !== undefined) {
        const sm = local.stateMachine
        const jobs = (): JobsModule => sm.module<JobsModule>('jobs')
        const superuser = (): string => sm.settings().superuser
        const node = {
          get user() {
            return superuser()
          },
          groups: [] as string[],
        }
        const propose = createJobProposer({
          group: {
            propose: (cmd, opts) => local.group.propose(cmd, opts),
            readBarrier: (opts) => local.group.readBarrier(opts),
          },
          clock,
          node,
        })
        nodePropose = propose
        const jobLookup = async (id: number): Promise<JobRecord | undefined> => {
          await local.group.readBarrier()
          return jobs().get(id)
        }
        // Who may submit, see and kill: project membership (src/scheduler/access.ts), read from the
        // replicated projects table at every check (the service reads after a read barrier).
        const access = projectJobAccess({
          roleOf: (project, user) => sm.module<ProjectStore>('projects').member(project, user)?.role,
        })
        // The project's GPU-hour quota (src/projects, PUT /api/v1/projects/:name/quota) against the GPU
        // time the jobs module charged it: over it, the project's jobs wait and new ones are refused.
        const quotaExhausted = quotaCheck(
          (project) => {
            const q = sm.module<ProjectStore>('projects').project(project)?.gpuHoursQuota
            return q === undefined || q < 0 ? undefined : q
          },
          (project) => jobs().usageGpuMs(project),
        )
        const placer = new Placer({ self, transport, view, clock, rng: cryptoRng, propose, quotaExhausted })
        queue = new JobQueue({ self, placer, view, clock, jobLookup, quotaExhausted })
        reconciler = new Reconciler({
          self,
          clock,
          jobs,
          view,
          propose,
          isPlacerLive: (n) =>
            n === self || membership.view().some((m) => m.id === n && m.liveness === 'alive'),
        })
        jobService = new JobService({
          self,
          propose,
          jobs,
          capacity: () => view.capacity(),
          readBarrier: () => local.group.readBarrier(),
          isSuperuser: (c) => c.superuser === true,
          access,
          quotaExhausted,
          // A script must be readable by its submitter acting in the job's project now (the service passes
          // that principal; the worker reads it with the task's credential, acting there, later).
          scriptProblem: async (caller, path, opts) => {
            const fs = components.services.fs
            if (fs === undefined) return undefined
            try {
              await fs.checkAccess(caller, path, FS_READ, { signal: opts.signal })
              return undefined
            } catch (err) {
              const code = (err as { code?: string }).code
              if (code === 'FILE_NOT_FOUND' || code === 'ACCESS_DENIED' || code === 'INVALID_PATH')
                return `script ${path}: ${(err as Error).message}`
              throw err
            }
          },
        })
        const q = queue
        stopJobs.push(
          jobs().onJobChange((job) => {
            q.onJobChange(job)
            worker?.onJobChange(job)
          }),
        )
      }

      /** Task setup on this replica for a task placed on `node` (this node's, or a gpu-only node's). */
      const setupFor = (node: string): TaskSetupService => {
        const fs = components.services.fs
        const auth = components.services.auth?.service
        const su = (): Principal => clusterPrincipal(local!.stateMachine.settings().superuser)
        return {
          async setup(job, rank) {
            if (fs === undefined) throw new HopsError('UNAVAILABLE', 'no file system on this node')
            const task = job.tasks.find((t) => t.rank === rank)
            if (task === undefined || task.node !== node)
              throw Object.assign(new Error(`task ${rank} of job ${job.id} does not run on ${node}`), {
                code: 'JOB_STATE_CONFLICT',
              })
            const logsDir = jobLogsDir(job)
            // As the project-user (the submitter acting in the job's project): the folders under the
            // project's Logs dataset are owned by <project>__<owner>, decided by the project's rules.
            const projectUser = { user: job.owner, groups: [] as string[], project: job.project }
            await fs.mkdirs(projectUser, logsDir, { permission: 0o750 })
            // The program's credential: an API key of the submitter acting in the job's project, revoked
            // when the task ends. Under simple auth a name without a user record gets no key: the task
            // authenticates with user.name, which that mode believes anyway.
            const expiresS = Math.min(
              KEY_EXPIRES_S_MAX,
              job.spec.timeoutS > 0 ? job.spec.timeoutS + TASK_KEY_SLACK_S : TASK_KEY_DEFAULT_S,
            )
            if (auth !== undefined && local?.auth.user(job.owner) !== undefined) {
              const key = await auth.createKey(su(), {
                user: job.owner,
                name: taskKeyName(job, rank),
                expiresS,
                project: job.project,
                job: String(job.id),
              })
              return { credential: { key: key.key }, keyId: key.id, logsDir, expiresMs: key.expiresMs }
            }
            return {
              credential: { userName: job.owner, project: job.project },
              keyId: '',
              logsDir,
              expiresMs: 0,
            }
          },
          async teardown(_job, _rank, setup) {
            if (setup.keyId !== '' && auth !== undefined) await auth.revokeKey(su(), setup.keyId)
          },
        }
      }

      const statePath = join(config.dataDir, WORKER_STATE_FILE)

      return {
        api: {
          get jobs() {
            return jobService
          },
          view,
          inventory,
        },
        routes:
          local === undefined
            ? jobsProxyRoutes(cluster!, view, clock, tlsForward())
            : (jobsRoutes({
                jobs: () => {
                  if (jobService === undefined)
                    throw new HopsError('UNAVAILABLE', 'the jobs service is not running on this node')
                  return jobService
                },
                view,
                clock,
                files: () => components.services.fs,
                blocks: () => components.services.blockmanager,
              }) satisfies ApiRoutes),
        service: {
          async start(signal) {
            await transport.start()
            if (inventory !== undefined) {
              await inventory.start(signal)
              // What the node found, once: a GPU missing from the cluster is first looked for here.
              const snap = inventory.snapshot()
              logger.info(
                {
                  driver: snap.driver,
                  driverVersion: snap.driverVersion,
                  driverHealthy: snap.driverHealthy,
                  ...(snap.driverReason === null ? {} : { driverReason: snap.driverReason }),
                  gpus: snap.devices.map((d) => ({
                    model: d.model,
                    memoryMiB: d.memoryTotalMiB,
                    healthy: d.healthy,
                    ...(d.mig === null ? {} : { mig: d.mig.profile }),
                  })),
                },
                `gpu inventory: ${snap.devices.length} GPU(s)${snap.driver === null ? ', no driver' : ` through ${snap.driver}`}`,
              )
            }
            if (local !== undefined)
              unserveMeta = await serveSchedMeta({
                host: () => p2p.host(),
                local,
                propose: nodePropose!,
                setupFor,
                logger,
              })
            if (inventory !== undefined) {
              // MASTER_ADDR of a gang whose rank 0 runs here: where this host is reached.
              const host = isWildcard(config.p2p.host) ? '127.0.0.1' : config.p2p.host
              const l = local
              const remote = metaClient
              const runtime = createJobRuntime({
                node: self,
                root: join(config.dataDir, 'jobs'),
                setup: l !== undefined ? setupFor(self) : remote!.setup,
                files: (credential) => webHdfsFiles({ baseUrl: httpBase, credential, ca: tlsCa() }),
                apiUrl: () => httpBase,
                onWarning: (message, err) => logger.warn({ err: (err as Error)?.message }, message),
              })
              worker = new WorkerAgent({
                node: self,
                zone: config.zone,
                addr: host,
                gpus: devicesOf(inventory.snapshot()),
                cpus: availableParallelism(),
                memoryMiB: Math.floor(totalmem() / (1 << 20)),
                transport,
                clock,
                runner: runtime.runner,
                propose: l !== undefined ? nodePropose! : remote!.propose,
                jobLookup:
                  l !== undefined
                    ? async (id) => {
                        await l.group.readBarrier()
                        return l.stateMachine.module<JobsModule>('jobs').get(id)
                      }
                    : async (id) => (await remote!.lookup([id])).find((j) => j.id === id),
                persist: (state) => persistState(statePath, state),
                restored: restoreState(statePath),
              })
              const w = worker
              stopJobs.push(inventory.onChange((snap) => w.setGpus(devicesOf(snap))))
              w.start()
              if (l !== undefined) void recoverWorker(w, l, self, logger, life.signal)
              else {
                void recoverRemoteWorker(w, remote!, logger, life.signal)
                // No apply stream here: the jobs of this worker's tasks are read back on a timer, so a
                // kill, a gang's failed task or a run marked lost stops them within an interval.
                jobPoll = new Periodic({
                  intervalMs: JOB_POLL_INTERVAL_MS,
                  tick: async () => {
                    const ids = [...new Set(w.runningTasks().map((t) => t.jobId))]
                    if (ids.length === 0) return
                    const found = await remote!.lookup(ids, life.signal)
                    for (const job of found) w.onJobChange(job)
                    // Not shown: no task of it is here any more (re-queued elsewhere after a loss).
                    for (const id of ids) if (!found.some((j) => j.id === id)) w.onJobGone(id)
                  },
                  onError: (err) => logger.debug({ err }, 'scheduler: reading this worker’s jobs failed'),
                })
                jobPoll.start()
              }
              // The API's address is known only once it listens (after every module started).
              void components.httpListening.then((hp) => {
                const reach = isWildcard(hp.host) ? { host: '127.0.0.1', port: hp.port } : hp
                httpBase = `${config.tls ? 'https' : 'http'}://${formatHostPort(reach)}`
              })
            }
            queue?.start()
            if (local !== undefined && queue !== undefined) void resumeQueue(queue, local, self, life.signal)
            housekeeping = new Periodic({
              intervalMs: HOUSEKEEPING_INTERVAL_MS,
              tick: async () => {
                view.expire()
                if (local === undefined || reconciler === undefined) return
                if (local.group.status().leaderId === self) reconciler.start()
                else reconciler.stop()
              },
              onError: (err) => logger.warn({ err }, 'scheduler: housekeeping failed'),
            })
            housekeeping.start()
          },
          async stop(signal) {
            life.abort()
            housekeeping?.stop()
            jobPoll?.stop()
            await unserveMeta?.().catch(() => undefined)
            reconciler?.stop()
            queue?.stop()
            for (const off of stopJobs.splice(0)) off()
            worker?.stop({ stopTasks: true })
            await inventory?.stop()
            await transport.stop()
            void signal
          },
        },
      }

      /** How a node without a replica reaches metadata nodes' APIs (HTTPS with --tls). */
      function tlsForward(): ForwardTls | undefined {
        if (!config.tls) return undefined
        const tls = requireService(components, 'tls')
        return { ca: () => tls.clusterCaPem() }
      }

      function tlsCa(): (() => string | undefined) | undefined {
        const tls = components.services.tls
        return config.tls && tls !== undefined ? () => tls.clusterCaPem() : undefined
      }
    },
  }
}

/**
 * The jobs API of a node without a metadata replica: forwarded over HTTP to a metadata node (which
 * authenticates the caller itself and places the job); `GET /api/v1/gpus` from this node's own view.
 */
function jobsProxyRoutes(
  cluster: ClusterClient,
  view: ResourceView,
  clock: typeof realClock,
  tls: ForwardTls | undefined,
): ApiRoutes {
  return {
    name: 'jobs-proxy',
    async register(app) {
      gpusRoutes({ view, clock }).register(app)
      await app.register(async (scope) =>
        proxyRoutes(cluster, ['/api/v1/jobs', '/api/v1/jobs/*'], 'jobs', tls, JOBS_FORWARD_IDLE_MS).register(
          scope,
        ),
      )
    },
  }
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === ''
}

/** The scheduler's view of the inventory: every device, with its health and selector. */
function devicesOf(snap: GpuSnapshot): GpuDevice[] {
  return snap.devices.map((d) => ({
    uuid: d.uuid,
    index: d.index,
    model: d.model,
    memoryMiB: d.memoryTotalMiB ?? 0,
    healthy: d.healthy,
    vendor: d.vendor,
    visible: d.visible.value,
  }))
}

/**
 * Runs `step` once the local replica has caught up (a read barrier), retrying each second while there
 * is no leader; resolves false when it never could (or the node stopped).
 */
async function afterCatchUp(
  local: MetadataNode,
  stopped: AbortSignal,
  step: (jobs: JobsModule) => Promise<unknown> | void,
): Promise<boolean> {
  for (let attempt = 0; attempt < 600 && !stopped.aborted; attempt++) {
    try {
      await local.group.readBarrier({ signal: stopped })
      await step(local.stateMachine.module<JobsModule>('jobs'))
      return true
    } catch {
      await new Promise((r) => setTimeout(r, 1_000))
    }
  }
  return false
}

/**
 * A worker without a replica: once a metadata node answers, kill what a previous incarnation left and
 * settle its jobs (retrying each second while none answers).
 */
async function recoverRemoteWorker(
  worker: WorkerAgent,
  remote: SchedMetaClient,
  logger: { warn(obj: object, msg: string): void },
  stopped: AbortSignal,
): Promise<void> {
  for (let attempt = 0; attempt < 600 && !stopped.aborted; attempt++) {
    try {
      await worker.recover(await remote.running(stopped))
      return
    } catch {
      await new Promise((r) => setTimeout(r, 1_000))
    }
  }
  if (!stopped.aborted)
    logger.warn({}, 'scheduler: the worker could not settle its previous jobs (no metadata node answered)')
}

/** Once the replica has caught up: kill what a previous incarnation left, settle its jobs. */
async function recoverWorker(
  worker: WorkerAgent,
  local: MetadataNode,
  self: string,
  logger: { warn(obj: object, msg: string): void },
  stopped: AbortSignal,
): Promise<void> {
  const done = await afterCatchUp(local, stopped, (jobs) => worker.recover(jobs.runningOn(self)))
  if (!done && !stopped.aborted)
    logger.warn({}, 'scheduler: the worker could not settle its previous jobs (no metadata leader)')
}

/**
 * After a restart: the jobs this node was placing when it stopped are still QUEUED with it as their placer
 * (the leader adopts them only from a placer that stays away). Once the replica has caught up, they wait
 * in this node's queue again; later ones arrive through onJobChange.
 */
async function resumeQueue(
  queue: JobQueue,
  local: MetadataNode,
  self: string,
  stopped: AbortSignal,
): Promise<void> {
  await afterCatchUp(local, stopped, (jobs) => {
    for (const job of jobs.queuedFor(self)) queue.add(job)
  })
}

function persistState(path: string, state: WorkerState): void {
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(`${path}.tmp`, JSON.stringify(state))
  renameSync(`${path}.tmp`, path)
}

function restoreState(path: string): WorkerState | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as WorkerState
  } catch {
    return undefined
  }
}
