// The `serving` meta module (model versions, deployments, placement steps, reports) applied through a
// local group, the placement step (plan.ts) and the router's choice (router.ts): pure parts, no cluster.
import { describe, expect, it } from 'vitest'
import {
  createLocalGroup,
  createMetaStateMachine,
  encodeCommand,
  metaProto,
  type MetaResult,
} from '../../src/meta/index.js'
import {
  chooseReplicas,
  deploymentView,
  freeResources,
  planDeployment,
  replicaLimits,
  servingModule,
  type Deployment,
  type ReplicaRecord,
  type ServingModule,
} from '../../src/serving/index.js'

type Cmd = Omit<metaProto.meta.Command.$Properties, 'nowMs' | 'user' | 'groups'>

function setup() {
  const sm = createMetaStateMachine({ modules: [servingModule()] })
  const group = createLocalGroup(sm)
  let now = 1_000
  const run = async (cmd: Cmd, user = 'alice', groups: string[] = []): Promise<MetaResult> =>
    (await group.propose(encodeCommand({ ...cmd, nowMs: now++, user, groups }))) as MetaResult
  const serving = () => sm.module<ServingModule>('serving')
  return { run, serving, node: (cmd: Cmd) => run(cmd, 'hopsd') }
}

const model = (version: string, extra: Record<string, unknown> = {}) => ({
  registerModel: {
    model: {
      project: 'demo',
      name: 'lin',
      version,
      path: `/Projects/demo/Models/lin/${version}`,
      framework: 'onnx',
      ...extra,
    },
  },
})

function code(r: MetaResult): string | undefined {
  return r.ok ? undefined : r.code
}

describe('the serving meta module', () => {
  it('registers versions with creator and time; refuses duplicates, bad names and foreign paths', async () => {
    const { run, serving } = setup()
    const r = await run(model('1', { trainingDataset: '/Projects/demo/Datasets/points' }))
    expect(r.ok).toBe(true)
    expect(serving().model('demo', 'lin', '1')).toMatchObject({ creator: 'alice', createdMs: 1_000 })
    expect(code(await run(model('1')))).toBe('MODEL_EXISTS')
    expect(code(await run(model('..')))).toBe('MODEL_SPEC_INVALID')
    expect(code(await run(model('2', { path: '/Projects/other/Models/lin/2' })))).toBe('MODEL_SPEC_INVALID')
    expect(code(await run(model('2', { framework: 'caffe' })))).toBe('MODEL_SPEC_INVALID')
    expect(code(await run(model('2', { framework: 'subprocess' })))).toBe('MODEL_SPEC_INVALID') // no command
    expect(
      code(await run(model('2', { inputs: [{ name: 'x', datatype: 'FLOAT32', shape: [-1, 3] }] }))),
    ).toBe('MODEL_SPEC_INVALID')
    expect(
      serving()
        .listModels('demo')
        .map((m) => m.version),
    ).toEqual(['1'])
  })

  it('answers lineage the other way, for a dataset and anything under it, and forgets deleted versions', async () => {
    const { run, serving } = setup()
    await run(model('1', { trainingDataset: '/Projects/demo/Datasets/points' }))
    await run(model('2', { trainingDataset: '/Projects/demo/Datasets/points/v2' }))
    await run(model('3', { trainingDataset: '/Projects/demo/Datasets/pointsX' }))
    const from = (d: string) =>
      serving()
        .modelsFromDataset(d)
        .map((m) => m.version)
    expect(from('/Projects/demo/Datasets/points')).toEqual(['1', '2'])
    expect(from('/Projects/demo/Datasets/points/v2')).toEqual(['2'])
    expect((await run({ deleteModel: { project: 'demo', name: 'lin', version: '1' } })).ok).toBe(true)
    expect(from('/Projects/demo/Datasets/points')).toEqual(['2'])
    expect(code(await run({ deleteModel: { project: 'demo', name: 'lin', version: '1' } }))).toBe(
      'MODEL_NOT_FOUND',
    )
  })

  it('deploys only registered, servable versions; a served version cannot be deleted until no replica runs it', async () => {
    const { run, node, serving } = setup()
    await run(model('1'))
    await run(model('2'))
    await run(model('9', { framework: 'sklearn' }))
    const dep = { name: 'lin', project: 'demo', model: 'lin', version: '1', replicasMin: 2, replicasMax: 3 }
    expect(code(await run({ createDeployment: { ...dep, version: '7' } }))).toBe('MODEL_NOT_FOUND')
    expect(code(await run({ createDeployment: { ...dep, version: '9' } }))).toBe('DEPLOYMENT_SPEC_INVALID')
    expect(code(await run({ createDeployment: { ...dep, replicasMin: 3, replicasMax: 2 } }))).toBe(
      'DEPLOYMENT_SPEC_INVALID',
    )
    expect((await run({ createDeployment: dep })).ok).toBe(true)
    expect(code(await run({ createDeployment: dep }))).toBe('DEPLOYMENT_EXISTS')
    const d = serving().deployment('lin')!
    expect(d).toMatchObject({ generation: 1, replicasWanted: 2, owner: 'alice' })
    // Placement and reports are the cluster's alone.
    const place = { setDeploymentReplicas: { name: 'lin', generation: 1, add: [{ node: 'n1', zone: 'z1' }] } }
    expect(code(await run(place))).toBe('MODEL_ACCESS_DENIED')
    expect((await node(place)).ok).toBe(true)
    expect(code(await node(place))).toBe('DEPLOYMENT_CONFLICT') // planned on generation 1, now 2
    const placed = serving().deployment('lin')!.replicas
    expect(placed).toMatchObject([{ id: 'lin-1', node: 'n1', zone: 'z1', version: '1', state: 'placed' }])
    expect(
      code(await run({ reportReplica: { name: 'lin', replicaId: 'lin-1', node: 'n1', state: 'ready' } })),
    ).toBe('MODEL_ACCESS_DENIED')
    expect(
      code(await node({ reportReplica: { name: 'lin', replicaId: 'lin-1', node: 'n2', state: 'ready' } })),
    ).toBe('DEPLOYMENT_CONFLICT')
    expect(
      (await node({ reportReplica: { name: 'lin', replicaId: 'lin-1', node: 'n1', state: 'ready' } })).ok,
    ).toBe(true)
    // Version 1 is served: refused. Moving the spec to 2 keeps 1 in use while replica lin-1 runs it.
    expect(code(await run({ deleteModel: { project: 'demo', name: 'lin', version: '1' } }))).toBe(
      'MODEL_IN_USE',
    )
    expect((await run({ updateDeployment: { name: 'lin', version: '2' } })).ok).toBe(true)
    expect(serving().deploymentsOf('demo', 'lin', '1')).toEqual(['lin'])
    expect(code(await run({ deleteModel: { project: 'demo', name: 'lin', version: '1' } }))).toBe(
      'MODEL_IN_USE',
    )
    const g = serving().deployment('lin')!.generation
    expect(
      (await node({ setDeploymentReplicas: { name: 'lin', generation: g, remove: ['lin-1'] } })).ok,
    ).toBe(true)
    expect((await run({ deleteModel: { project: 'demo', name: 'lin', version: '1' } })).ok).toBe(true)
    expect((await run({ deleteDeployment: { name: 'lin' } })).ok).toBe(true)
    expect(serving().deploymentsOf('demo', 'lin', '2')).toEqual([])
  })
})

describe('inference keys and request logging in the serving meta module', () => {
  const hash = (n: number) => new Uint8Array(32).fill(n)
  const keyId = (n: number) => n.toString(16).padStart(16, '0')

  it('keeps keys per deployment as hashes, revokes them, makes room from revoked ones only, and deletes them with the deployment', async () => {
    const { run, serving } = setup()
    await run(model('1'))
    const dep = { name: 'lin', project: 'demo', model: 'lin', version: '1', replicasMin: 1, replicasMax: 1 }
    expect(
      code(await run({ createInferenceKey: { deployment: 'lin', id: keyId(1), secretHash: hash(1) } })),
    ).toBe('DEPLOYMENT_NOT_FOUND')
    expect((await run({ createDeployment: dep })).ok).toBe(true)
    const made = await run({
      createInferenceKey: { deployment: 'lin', id: keyId(1), name: 'app', secretHash: hash(1) },
    })
    expect(made.ok).toBe(true)
    // What the command answers (and the API shows) never carries the hash.
    expect(made.ok && (made.value as Record<string, unknown>)['secretHash']).toBeUndefined()
    expect(serving().inferenceKey(keyId(1))).toMatchObject({
      deployment: 'lin',
      project: 'demo',
      createdBy: 'alice',
      revokedMs: 0,
    })
    expect(
      code(await run({ createInferenceKey: { deployment: 'lin', id: keyId(1), secretHash: hash(1) } })),
    ).toBe('INFERENCE_KEY_INVALID')
    expect(
      code(await run({ createInferenceKey: { deployment: 'lin', id: 'nothex', secretHash: hash(1) } })),
    ).toBe('INFERENCE_KEY_INVALID')
    expect(
      code(
        await run({ createInferenceKey: { deployment: 'lin', id: keyId(2), secretHash: new Uint8Array(3) } }),
      ),
    ).toBe('INFERENCE_KEY_INVALID')
    expect(code(await run({ revokeInferenceKey: { deployment: 'other', id: keyId(1) } }))).toBe(
      'INFERENCE_KEY_NOT_FOUND',
    )
    expect((await run({ revokeInferenceKey: { deployment: 'lin', id: keyId(1) } })).ok).toBe(true)
    expect(serving().inferenceKey(keyId(1))!.revokedMs).toBeGreaterThan(0)
    // 100 rows at most: the revoked key 1 makes room for key 101, then the limit holds until one is revoked.
    const create = (n: number) =>
      run({ createInferenceKey: { deployment: 'lin', id: keyId(n), secretHash: hash(n) } })
    for (let i = 2; i <= 101; i++) expect((await create(i)).ok).toBe(true)
    expect(serving().inferenceKey(keyId(1))).toBeUndefined()
    expect(code(await create(102))).toBe('INFERENCE_KEY_LIMIT')
    expect((await run({ revokeInferenceKey: { deployment: 'lin', id: keyId(50) } })).ok).toBe(true)
    expect((await create(102)).ok).toBe(true)
    expect(serving().inferenceKey(keyId(50))).toBeUndefined()
    expect(serving().inferenceKeysOf('lin')).toHaveLength(100)
    expect((await run({ deleteDeployment: { name: 'lin' } })).ok).toBe(true)
    expect(serving().inferenceKeysOf('lin')).toEqual([])
    expect(serving().inferenceKey(keyId(2))).toBeUndefined()
  })

  it('keeps a sample rate between 0 and 1 in the deployment; an update may change it alone', async () => {
    const { run, serving } = setup()
    await run(model('1'))
    const dep = { name: 'lin', project: 'demo', model: 'lin', version: '1', replicasMin: 1, replicasMax: 1 }
    expect(code(await run({ createDeployment: { ...dep, logSampleRate: 1.5 } }))).toBe(
      'DEPLOYMENT_SPEC_INVALID',
    )
    expect((await run({ createDeployment: { ...dep, logSampleRate: 0.25 } })).ok).toBe(true)
    expect(serving().deployment('lin')!.logSampleRate).toBe(0.25)
    expect((await run({ updateDeployment: { name: 'lin', replicasMax: 2 } })).ok).toBe(true)
    expect(serving().deployment('lin')!.logSampleRate).toBe(0.25)
    expect(
      (await run({ updateDeployment: { name: 'lin', logSampleRate: 0, setLogSampleRate: true } })).ok,
    ).toBe(true)
    expect(serving().deployment('lin')!.logSampleRate).toBe(0)
    expect(
      code(await run({ updateDeployment: { name: 'lin', logSampleRate: -1, setLogSampleRate: true } })),
    ).toBe('DEPLOYMENT_SPEC_INVALID')
  })
})

function deployment(version: string, replicas: Partial<ReplicaRecord>[], wanted = 2): Deployment {
  return {
    name: 'd',
    project: 'p',
    model: 'm',
    version,
    replicasMin: wanted,
    replicasMax: wanted,
    cpus: 0,
    memoryMiB: 0,
    owner: 'alice',
    createdMs: 0,
    updatedMs: 0,
    generation: 1,
    replicasWanted: wanted,
    lastScale: '',
    nextReplicaSeq: 1,
    lastScaleMs: 0,
    logSampleRate: 0,
    replicas: replicas.map((r, i) => ({
      id: `d-${i + 1}`,
      node: 'n1',
      zone: 'z1',
      version,
      state: 'ready',
      error: '',
      restarts: 0,
      placedMs: i,
      reportedMs: 0,
      inflight: 0,
      ...r,
    })),
  }
}

const NODES = [
  { id: 'a1', zone: 'za' },
  { id: 'a2', zone: 'za' },
  { id: 'b1', zone: 'zb' },
]

describe('the placement step', () => {
  it('spreads new replicas across zones first, then nodes', () => {
    const step = planDeployment(deployment('1', [], 3), NODES)!
    expect(step.add.map((a) => a.node)).toEqual(['a1', 'b1', 'a2'])
    expect(step.remove).toEqual([])
  })

  it('replaces replicas on gone nodes and failed ones, in the emptiest zone', () => {
    const d = deployment(
      '1',
      [
        { node: 'a1', zone: 'za' },
        { node: 'dead', zone: 'zb' },
        { node: 'a2', zone: 'za', state: 'failed' },
      ],
      3,
    )
    const step = planDeployment(d, NODES)!
    expect(step.remove.sort()).toEqual(['d-2', 'd-3'])
    expect(step.add.map((a) => a.node)).toEqual(['b1', 'a2'])
  })

  it('rolls out: keeps the old version until the new one is ready in full, then removes it', () => {
    const old = [
      { node: 'a1', zone: 'za', version: '1' },
      { node: 'b1', zone: 'zb', version: '1' },
    ]
    const start = planDeployment(deployment('2', old), NODES)!
    expect(start.remove).toEqual([])
    expect(start.add.map((a) => a.version)).toEqual(['2', '2'])
    const half = deployment('2', [
      ...old,
      { node: 'a2', zone: 'za', version: '2' },
      { node: 'b1', zone: 'zb', version: '2', state: 'starting' },
    ])
    expect(planDeployment(half, NODES)).toBeUndefined()
    const done = deployment('2', [
      ...old,
      { node: 'a2', zone: 'za', version: '2' },
      { node: 'b1', zone: 'zb', version: '2' },
    ])
    expect(planDeployment(done, NODES)!.remove.sort()).toEqual(['d-1', 'd-2'])
  })

  it('removes surplus replicas, those not ready first', () => {
    const d = deployment('1', [{ node: 'a1' }, { node: 'a2', state: 'starting' }, { node: 'b1' }], 2)
    expect(planDeployment(d, NODES)!.remove).toEqual(['d-2'])
  })
})

describe('the autoscaler', () => {
  const scale = { nowMs: 100_000, inflightPerReplicaTarget: 4, scaleDownDelayMs: 30_000 }
  const bounded = (replicas: Partial<ReplicaRecord>[], wanted: number, lastScaleMs = 0): Deployment => ({
    ...deployment('1', replicas, wanted),
    replicasMin: 1,
    replicasMax: 3,
    lastScaleMs,
  })

  it('scales up at once on requests in flight, and places the new replicas in the same step', () => {
    const d = bounded([{ node: 'a1', zone: 'za', inflight: 7 }], 1)
    const step = planDeployment(d, NODES, scale)!
    expect(step.replicasWanted).toBe(2)
    expect(step.scaleReason).toMatch(/^up to 2: 7 requests in flight on 1 ready replicas/)
    expect(step.add.map((a) => a.node)).toEqual(['b1'])
    // Held at max however high the load.
    expect(
      planDeployment(bounded([{ node: 'a1', zone: 'za', inflight: 99 }], 1), NODES, scale)!.replicasWanted,
    ).toBe(3)
  })

  it('scales down one replica at a time, only after the delay since the last change', () => {
    const idle = [
      { node: 'a1', zone: 'za', inflight: 0 },
      { node: 'b1', zone: 'zb', inflight: 1 },
      { node: 'a2', zone: 'za', inflight: 0 },
    ]
    expect(planDeployment(bounded(idle, 3, 90_000), NODES, scale)).toBeUndefined()
    const step = planDeployment(bounded(idle, 3, 60_000), NODES, scale)!
    expect(step.replicasWanted).toBe(2)
    expect(step.remove).toHaveLength(1)
    // Without bounds to move in (min = max), or without `scale`, nothing is decided on load.
    expect(
      planDeployment(deployment('1', [{ node: 'a1', zone: 'za', inflight: 50 }], 1), NODES, scale),
    ).toBeUndefined()
    expect(planDeployment(bounded([{ node: 'a1', zone: 'za', inflight: 50 }], 1), NODES)).toBeUndefined()
  })

  it('commits the decision with the step: bounds held by apply, visible as lastScale', async () => {
    const { run, node, serving } = setup()
    await run(model('1'))
    await run({
      createDeployment: {
        name: 'lin',
        project: 'demo',
        model: 'lin',
        version: '1',
        replicasMin: 1,
        replicasMax: 2,
      },
    })
    const g = serving().deployment('lin')!.generation
    expect(
      code(await node({ setDeploymentReplicas: { name: 'lin', generation: g, replicasWanted: 3 } })),
    ).toBe('DEPLOYMENT_SPEC_INVALID')
    expect(
      (
        await node({
          setDeploymentReplicas: { name: 'lin', generation: g, replicasWanted: 2, reason: 'up to 2: load' },
        })
      ).ok,
    ).toBe(true)
    expect(serving().deployment('lin')).toMatchObject({ replicasWanted: 2, lastScale: 'up to 2: load' })
    // A report of load alone does not move the generation (placement steps are not refused for it).
    await node({
      setDeploymentReplicas: { name: 'lin', generation: g + 1, add: [{ node: 'n1', zone: 'z1' }] },
    })
    const before = serving().deployment('lin')!.generation
    await node({
      reportReplica: { name: 'lin', replicaId: 'lin-1', node: 'n1', state: 'placed', inflight: 5 },
    })
    expect(serving().deployment('lin')!.generation).toBe(before)
    expect(serving().deployment('lin')!.replicas[0]!.inflight).toBe(5)
    await node({
      reportReplica: { name: 'lin', replicaId: 'lin-1', node: 'n1', state: 'ready', inflight: 5 },
    })
    expect(serving().deployment('lin')!.generation).toBe(before + 1)
  })
})

describe('placement by CPU cores and memory', () => {
  const sized = (cpus: number, memoryMiB: number, replicas: Partial<ReplicaRecord>[] = [], wanted = 2) => ({
    ...deployment('1', replicas, wanted),
    cpus,
    memoryMiB,
  })
  /** Capacities as gossiped (cores, MiB); `c1` has not gossiped any yet. */
  const CAP = [
    { id: 'a1', zone: 'za', cpuCores: 4, memoryMiB: 4096 },
    { id: 'b1', zone: 'zb', cpuCores: 2, memoryMiB: 1024 },
    { id: 'c1', zone: 'zc' },
  ]

  it('frees a node of what the replicas of every deployment placed there ask', () => {
    const other = { cpus: 1.5, memoryMiB: 512, replicas: [{ node: 'a1' }, { node: 'a1' }, { node: 'b1' }] }
    const none = { cpus: 0, memoryMiB: 0, replicas: [{ node: 'b1' }] }
    expect(freeResources(CAP, [other, none])).toEqual([
      { id: 'a1', zone: 'za', cpusFree: 1, memoryMiBFree: 3072 },
      { id: 'b1', zone: 'zb', cpusFree: 0.5, memoryMiBFree: 512 },
      { id: 'c1', zone: 'zc' },
    ])
  })

  it('places a replica only where it fits, and none on a node of unknown capacity', () => {
    // 2 cores each: b1 (2 free) and a1 (4 free) take one each — spread still wins among those that fit.
    const step = planDeployment(sized(2, 512), freeResources(CAP, []))!
    expect(step.add.map((a) => a.node).sort()).toEqual(['a1', 'b1'])
    expect(step.pending).toBe('')
    // 3 cores: only a1 fits, once; the second replica is pending, and the step says why.
    const tight = planDeployment(sized(3, 512), freeResources(CAP, []))!
    expect(tight.add.map((a) => a.node)).toEqual(['a1'])
    expect(tight.pending).toMatch(
      /^1 replica pending: no serving node has 3 CPU cores and 512 MiB of memory free/,
    )
    expect(tight.why).toContain(tight.pending)
    // Memory alone decides too: 2048 MiB fits a1 twice (4096), never b1 (1024).
    const mem = planDeployment(sized(0, 2048), freeResources(CAP, []))!
    expect(mem.add.map((a) => a.node)).toEqual(['a1', 'a1'])
    // Nothing asked: every node fits, c1 (unknown capacity) included.
    const free = planDeployment(sized(0, 0, [], 3), freeResources(CAP, []))!
    expect(free.add.map((a) => a.node).sort()).toEqual(['a1', 'b1', 'c1'])
  })

  it('counts the replicas already placed (other deployments and this one) against the node', () => {
    // Another deployment holds 3 of a1's 4 cores: a 2-core replica fits only on b1.
    const other = { cpus: 3, memoryMiB: 0, replicas: [{ node: 'a1' }] }
    const busy = freeResources(CAP, [other])
    const step = planDeployment(sized(2, 0, [], 2), busy)!
    expect(step.add.map((a) => a.node)).toEqual(['b1'])
    expect(step.pending).toMatch(/^1 replica pending: .*most free: 1 CPU cores/)
    // This deployment's own replica on b1 is counted: the next one goes nowhere.
    const d = sized(2, 0, [{ node: 'b1', zone: 'zb' }], 2)
    const again = planDeployment(d, freeResources(CAP, [other, d]))!
    expect(again.add).toEqual([])
    expect(again.pending).toMatch(/^1 replica pending/)
  })

  it('proposes a step when the pending reason changes, and none while it holds', () => {
    const nodes = freeResources(CAP, [])
    const first = planDeployment(sized(8, 0, [], 1), nodes)!
    expect(first.add).toEqual([])
    expect(first.pending).toMatch(/^1 replica pending: no serving node has 8 CPU cores free/)
    // Committed: the same state plans nothing.
    expect(planDeployment({ ...sized(8, 0, [], 1), pending: first.pending }, nodes)).toBeUndefined()
    // Room appears (a bigger node): the replica is placed and the reason cleared.
    const bigger = freeResources([...CAP, { id: 'd1', zone: 'zd', cpuCores: 16, memoryMiB: 65536 }], [])
    const placed = planDeployment({ ...sized(8, 0, [], 1), pending: first.pending }, bigger)!
    expect(placed.add.map((a) => a.node)).toEqual(['d1'])
    expect(placed.pending).toBe('')
  })

  it('hands the runtime what it enforces: ONNX threads and heap limit; a predictor only hints', () => {
    expect(replicaLimits({ cpus: 0, memoryMiB: 0 }, 'onnx')).toEqual({})
    expect(replicaLimits({ cpus: 2.5, memoryMiB: 512 }, 'onnx')).toEqual({ threads: 2, heapMiBMax: 512 })
    expect(replicaLimits({ cpus: 0.5, memoryMiB: 8 }, 'onnx')).toEqual({ threads: 1, heapMiBMax: 32 })
    expect(replicaLimits({ cpus: 0, memoryMiB: 0 }, 'subprocess')).toEqual({})
    expect(replicaLimits({ cpus: 2.5, memoryMiB: 512 }, 'subprocess')).toEqual({
      env: { HOPSD_CPUS: '2.5', OMP_NUM_THREADS: '2', HOPSD_MEMORY_MIB: '512' },
    })
  })

  it('commits the reason: the deployment shows why its replicas are pending, and clears it', async () => {
    const { run, node, serving } = setup()
    await run(model('1'))
    await run({
      createDeployment: {
        name: 'lin',
        project: 'demo',
        model: 'lin',
        version: '1',
        replicasMin: 1,
        replicasMax: 1,
        cpus: 8,
      },
    })
    expect(deploymentView(serving().deployment('lin')!).pending).toBe('')
    const why = '1 replica pending: no serving node has 8 CPU cores free'
    const g = serving().deployment('lin')!.generation
    expect((await node({ setDeploymentReplicas: { name: 'lin', generation: g, pending: why } })).ok).toBe(
      true,
    )
    expect(deploymentView(serving().deployment('lin')!)).toMatchObject({ pending: why, cpus: 8 })
    await node({
      setDeploymentReplicas: {
        name: 'lin',
        generation: g + 1,
        add: [{ node: 'n1', zone: 'z1' }],
        pending: '',
      },
    })
    expect(deploymentView(serving().deployment('lin')!).pending).toBe('')
  })
})

describe('the router', () => {
  const here = { node: 'a1', zone: 'za' }
  it('prefers this node, then this zone, then the others; only ready replicas', () => {
    const d = deployment(
      '1',
      [
        { node: 'b1', zone: 'zb' },
        { node: 'a2', zone: 'za' },
        { node: 'a1', zone: 'za' },
        { node: 'a3', zone: 'za', state: 'starting' },
      ],
      4,
    )
    expect(chooseReplicas(d, 'd', undefined, here).replicas.map((r) => r.node)).toEqual(['a1', 'a2', 'b1'])
  })

  it('serves the old version during a rollout, and refuses unknown models and versions', () => {
    const d = deployment('2', [
      { node: 'b1', zone: 'zb', version: '1' },
      { node: 'a2', version: '2', state: 'starting' },
    ])
    expect(chooseReplicas(d, 'd', undefined, here).replicas.map((r) => r.version)).toEqual(['1'])
    expect(() => chooseReplicas(d, 'd', '2', here)).toThrow(
      expect.objectContaining({ code: 'NO_READY_REPLICA' }),
    )
    expect(() => chooseReplicas(d, 'd', '7', here)).toThrow(
      expect.objectContaining({ code: 'MODEL_NOT_DEPLOYED' }),
    )
    expect(() => chooseReplicas(undefined, 'x', undefined, here)).toThrow(
      expect.objectContaining({ code: 'MODEL_NOT_DEPLOYED' }),
    )
  })
})
