import { describe, expect, it } from 'vitest'
import {
  chooseTargets,
  namespaceAndBlockModules,
  namespaceModule,
  createFsService,
  type BlockMap,
  type DatanodeCandidate,
} from '../../src/fs/index.js'
import {
  createLocalGroup,
  createMetaStateMachine,
  encodeCommand,
  metaProto,
  type MetaResult,
} from '../../src/meta/index.js'

const SU = { user: 'hopsd', groups: [] }

function setup() {
  const sm = createMetaStateMachine({ modules: namespaceAndBlockModules(namespaceModule()) })
  const group = createLocalGroup(sm)
  const fs = createFsService({ consensus: group, stateMachine: sm })
  const blocks = sm.module<BlockMap>('blocks')
  const run = async (cmd: metaProto.meta.Command.$Properties, user = 'hopsd'): Promise<MetaResult> =>
    (await group.propose(encodeCommand({ nowMs: 1000, user, ...cmd }))) as MetaResult
  return { sm, fs, blocks, run }
}

describe('block map', () => {
  it('AddBlock under the lease, CompleteFile makes the blocks visible, delete orphans them', async () => {
    const { fs, blocks, run } = setup()
    await fs.create(SU, '/big', new Uint8Array(0), { close: false, clientName: 'c1', replication: 3 })
    const noLease = await run({ clientName: 'c2', addBlock: { path: '/big', targets: ['a'] } })
    expect(noLease).toMatchObject({ ok: false, code: 'LEASE_NOT_HELD' })
    const a = await run({ clientName: 'c1', addBlock: { path: '/big', targets: ['a', 'b', 'c'] } })
    expect(a.ok).toBe(true)
    const { blockId, genStamp } = (a as { value: { blockId: number; genStamp: number } }).value
    expect((await fs.stat(SU, '/big')).length).toBe(0)
    const done = await run({
      clientName: 'c1',
      completeFile: {
        path: '/big',
        blocks: [{ id: blockId, genStamp, length: 2_000_000, checksum: 5, replicas: ['b', 'a'] }],
      },
    })
    expect(done).toEqual({ ok: true, value: { size: 2_000_000 } })
    const st = await fs.stat(SU, '/big')
    expect(st).toMatchObject({ length: 2_000_000, inlined: false, leaseHolder: null })
    expect(blocks.block(blockId)).toMatchObject({ state: 2, replicas: ['a', 'b'], length: 2_000_000 })
    expect(blocks.blocksOn('a')).toEqual([blockId])
    await fs.delete(SU, '/big')
    expect(blocks.isOrphan(blocks.block(blockId)!)).toBe(true)
    expect(await run({ removeBlocks: { ids: [blockId] } })).toEqual({ ok: true, value: { removed: 1 } })
    expect(blocks.size).toBe(0)
  })

  it('refuses draining targets and non-superuser replica changes; tracks corrupt replicas', async () => {
    const { fs, blocks, run } = setup()
    await run({ setDatanodeState: { node: 'd', state: metaProto.meta.DatanodeState.DRAINING } })
    expect(blocks.datanodeState('d')).toBe('DRAINING')
    await fs.create(SU, '/f', new Uint8Array(0), { close: false, clientName: 'c1' })
    expect(await run({ clientName: 'c1', addBlock: { path: '/f', targets: ['a', 'd'] } })).toMatchObject({
      ok: false,
      code: 'NOT_ENOUGH_DATANODES',
    })
    const a = (await run({ clientName: 'c1', addBlock: { path: '/f', targets: ['a', 'b'] } })) as {
      value: { blockId: number; genStamp: number }
    }
    const { blockId: id, genStamp } = a.value
    await run({
      clientName: 'c1',
      completeFile: { path: '/f', blocks: [{ id, genStamp, length: 10, replicas: ['a', 'b'] }] },
    })
    expect(await run({ updateReplicas: { added: [{ blockId: id, node: 'c' }] } }, 'alice')).toMatchObject({
      ok: false,
      code: 'ACCESS_DENIED',
    })
    await run({
      updateReplicas: { corrupt: [{ blockId: id, node: 'a' }], added: [{ blockId: id, node: 'c' }] },
    })
    expect(blocks.block(id)).toMatchObject({ replicas: ['b', 'c'], corrupt: ['a'] })
    await run({ updateReplicas: { removed: [{ blockId: id, node: 'a' }] } })
    expect(blocks.block(id)).toMatchObject({ replicas: ['b', 'c'], corrupt: [] })
    expect(blocks.blocksOn('a')).toEqual([])
    // A referenced block is not removed.
    expect(await run({ removeBlocks: { ids: [id] } })).toEqual({ ok: true, value: { removed: 0 } })
  })

  it('an inline file rewritten into blocks (dropInline) and a blocked file appended to', async () => {
    const { fs, run } = setup()
    await fs.create(SU, '/g', new Uint8Array(100))
    await fs.append(SU, '/g', new Uint8Array(0), { close: false, clientName: 'c1' })
    const b1 = (await run({ clientName: 'c1', addBlock: { path: '/g', targets: ['a'] } })) as {
      value: { blockId: number; genStamp: number }
    }
    const r = await run({
      clientName: 'c1',
      completeFile: {
        path: '/g',
        dropInline: true,
        blocks: [{ id: b1.value.blockId, genStamp: b1.value.genStamp, length: 70_000, replicas: ['a'] }],
      },
    })
    expect(r).toEqual({ ok: true, value: { size: 70_000 } })
    await fs.append(SU, '/g', new Uint8Array(0), { close: false, clientName: 'c2' })
    const b2 = (await run({ clientName: 'c2', addBlock: { path: '/g', targets: ['a'] } })) as {
      value: { blockId: number; genStamp: number }
    }
    const r2 = await run({
      clientName: 'c2',
      completeFile: {
        path: '/g',
        blocks: [{ id: b2.value.blockId, genStamp: b2.value.genStamp, length: 5, replicas: ['a'] }],
      },
    })
    expect(r2).toEqual({ ok: true, value: { size: 70_005 } })
    await expect(fs.append(SU, '/g', new Uint8Array(3))).rejects.toMatchObject({
      code: 'UNSUPPORTED_OPERATION',
    })
  })
})

describe('placement', () => {
  const dn = (id: string, zone: string, extra: Partial<DatanodeCandidate> = {}): DatanodeCandidate => ({
    id,
    zone,
    live: true,
    retired: false,
    availableBytes: 1e12,
    ...extra,
  })
  it('writer first, then other zones, then the same zone; never dead, retired or full nodes', () => {
    const candidates = [
      dn('a1', 'z1'),
      dn('a2', 'z1'),
      dn('b1', 'z2'),
      dn('c1', 'z3'),
      dn('d', 'z4', { live: false }),
      dn('e', 'z5', { retired: true }),
      dn('f', 'z6', { availableBytes: 10 }),
    ]
    const t = chooseTargets({ candidates, count: 3, blockBytes: 1 << 20, writer: 'a1' })
    expect(t[0]).toBe('a1')
    expect(new Set(t.slice(1))).toEqual(new Set(['b1', 'c1']))
    expect(chooseTargets({ candidates, count: 5, blockBytes: 1 << 20, writer: 'a1' }).sort()).toEqual([
      'a1',
      'a2',
      'b1',
      'c1',
    ])
    // re-replication: zones of existing replicas count as used
    expect(
      chooseTargets({
        candidates,
        count: 1,
        blockBytes: 1,
        existing: [
          { id: 'a1', zone: 'z1' },
          { id: 'b1', zone: 'z2' },
        ],
      }),
    ).toEqual(['c1'])
    expect(
      chooseTargets({
        candidates,
        count: 1,
        blockBytes: 1 << 20,
        exclude: ['b1', 'c1'],
        existing: [{ id: 'a1', zone: 'z1' }],
      }),
    ).toEqual(['a2'])
  })
})
