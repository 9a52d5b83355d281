/**
 * GPU scheduling without a central scheduler in the way: jobs committed to Raft as QUEUED, placed by
 * the node that received them from its own gossip view (sampling d feasible workers, best fit), reserved
 * by the workers — the only authority over their GPUs, so stale gossip costs a retry, never a double
 * allocation — committed as RUNNING, run with exactly their GPUs, and recovered when nodes die.
 *
 * Parts: the `jobs` meta module (state), resource ads and the view (gossip), the placer and its queue
 * (placing node), the worker agent with its reservation table and the executor (gpu node), the
 * reconciler (metadata leader), the service (API), the transports (in-memory here; libp2p with the node
 * integration), and the invariant checkers.
 *
 * @example
 * ```ts
 * import { createMetaStateMachine, createLocalGroup } from '../meta/index.js'
 * import * as sched from '../scheduler/index.js'
 *
 * const sm = createMetaStateMachine({ modules: [sched.jobsModule()] })
 * const clock = sched.realClock
 * const propose = sched.createJobProposer({ group: createLocalGroup(sm), clock, node: { user: 'hopsd', groups: [] } })
 * const jobs = () => sm.module<sched.JobsModule>('jobs')
 * const net = sched.createMemorySchedNetwork({ clock, rng: sched.cryptoRng })
 *
 * // a gpu node
 * const worker = new sched.WorkerAgent({
 *   node: 'w1', zone: 'z1', cpus: 16, memoryMiB: 65536, clock, propose,
 *   gpus: [{ uuid: 'GPU-1', index: 0, model: 'A100', memoryMiB: 81920, healthy: true, vendor: 'nvidia' }],
 *   transport: net.endpoint('w1'),
 *   runner: sched.executorRunner({ executor: sched.createExecutor({ root: '/var/lib/hopsd/jobs', sink }) }),
 *   jobLookup: async (id) => jobs().get(id),
 * })
 * worker.start()
 * jobs().onJobChange((job) => worker.onJobChange(job))
 *
 * // the node that receives jobs
 * const view = new sched.ResourceView({ clock })
 * net.endpoint('p1').subscribe(sched.ADS_TOPIC, (_from, bytes) => view.apply(sched.decodeAd(bytes)))
 * const placer = new sched.Placer({ self: 'p1', transport: net.endpoint('p1'), view, clock, rng: sched.cryptoRng, propose })
 * const queue = new sched.JobQueue({ self: 'p1', placer, view, clock })
 * queue.start()
 * jobs().onJobChange((job) => queue.onJobChange(job))
 * const service = new sched.JobService({
 *   self: 'p1', propose, jobs, capacity: () => view.capacity(), isSuperuser: (c) => c.user === 'hopsd',
 * })
 * const { id } = await service.submit({ user: 'alice', groups: [] }, { project: 'demo', name: 'train', command: ['python3', 'train.py'], gpus: 1 })
 * ```
 */
export {
  JobsModule,
  jobsModule,
  specFrom,
  JOB_OPS,
  JOB_LIST_PAGE_MAX,
  type JobListQuery,
  type JobListener,
  type JobOpResults,
} from './jobs-module.js'
export {
  JOB_STATES,
  JOB_STATE,
  jobStateName,
  jobView,
  isTerminal,
  visibleDevicesVar,
  type GpuDevice,
  type GpuVendor,
  type JobEnvVar,
  type JobRecord,
  type JobSpec,
  type JobStateName,
  type JobTask,
  type JobView,
  type TaskPlacement,
} from './types.js'
export {
  validateJobSubmission,
  checkFits,
  specProblem,
  JOB_SUBMISSION_SCHEMA,
  RESERVED_ENV,
  GPUS_PER_TASK_MAX,
  TASKS_MAX,
  type CapacitySummary,
  type JobSubmission,
} from './spec.js'
export {
  SCHED_ERRORS,
  SchedError,
  isSchedError,
  TransportError,
  type SchedErrorCode,
  type TransportErrorCode,
} from './errors.js'
export { ADS_TOPIC, encodeAd, decodeAd, freeGpus, type GpuAd, type ResourceAd } from './ads.js'
export { ResourceView, type ResourceViewInit, type ViewEntry, type ViewListener } from './view.js'
export { createAdPublisher, type AdPublisher, type AdPublisherInit } from './publisher.js'
export type { SchedTransport, RequestOptions, RequestHandler, TopicHandler } from './transport.js'
export {
  createMemorySchedNetwork,
  type MemorySchedNetwork,
  type MemorySchedNetworkInit,
} from './memory-transport.js'
export {
  serveWorkerRpc,
  WorkerRpcClient,
  type ReserveRequest,
  type ReserveReply,
  type CommitRequest,
  type CommitReply,
  type WorkerRpcHandler,
} from './rpc.js'
export {
  ReservationTable,
  type Reservation,
  type ReserveAsk,
  type ReserveOutcome,
  type ReservationBug,
} from './reservations.js'
export {
  WorkerAgent,
  type WorkerInit,
  type WorkerState,
  type WorkerTask,
  type WorkerBug,
  type TaskRunner,
  type TaskLaunch,
  type TaskEvents,
  type TaskHandle,
  type TaskExitReport,
} from './worker.js'
export {
  sampleCandidates,
  chooseGangSlots,
  fits,
  fitScore,
  effectiveFreeGpus,
  type TaskShape,
} from './placement.js'
export {
  Placer,
  placeFailureError,
  type PlacerInit,
  type PlacerBug,
  type PlaceResult,
  type PlaceFailure,
} from './placer.js'
export { JobQueue, type JobQueueInit } from './queue.js'
export {
  Reconciler,
  reconcileActions,
  type ReconcilerInit,
  type ReconcileAction,
  type ReconcileInput,
} from './reconcile.js'
export { JobService, type JobServiceInit, type ServiceCallOpts } from './service.js'
export { quotaCheck, type QuotaLookup } from './quota.js'
export { rendezvousEnv, taskEnv } from './rendezvous.js'
export {
  createExecutor,
  type Executor,
  type ExecutorInit,
  type LogSink,
  type LogStream,
  type LogStreamName,
  type RunningTask,
  type TaskExit,
  type TaskEndReason,
  type TaskProcessSpec,
} from './executor.js'
export { executorRunner, scriptArgv, type ExecutorRunnerInit } from './task-runner.js'
export {
  createJobProposer,
  errorFromResult,
  type Caller,
  type JobCommand,
  type JobProposer,
  type JobProposerInit,
  type ProposeCallOpts,
} from './proposer.js'
export {
  checkWorker,
  checkBindings,
  checkTaskStart,
  checkCluster,
  type Violation,
  type ViolationKind,
  type WorkerSnapshot,
} from './checkers.js'
export {
  projectJobAccess,
  projectMayKill,
  projectSubmitDenied,
  type JobAccess,
  type JobProjects,
} from './access.js'
export {
  createJobRuntime,
  jobLogsDir,
  jobLogPath,
  JOB_ENV,
  type JobRuntime,
  type JobRuntimeInit,
  type TaskSetup,
  type TaskSetupService,
} from './job-runtime.js'
export { webHdfsFiles, JobFilesError, type JobCredential, type JobFiles } from './job-files.js'
export { createFsLogStream, type FsLogStream, type FsLogStreamInit } from './log-sink.js'
export { realClock, cryptoRng, sleep, type Clock, type Rng, type TimerHandle } from './world.js'
export {
  REMOTE_NODE_OPS,
  encodeJobRecord,
  decodeJobRecord,
  jobVisibleToNode,
  nodeCommandProblem,
  remoteNodeCommand,
  taskSetupProblem,
  taskKeyName,
  type RemoteNodeOp,
} from './remote.js'
