import { afterAll, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { makeTempDir, removeTempDirs } from '../helpers/index.js'
import {
  BootstrapCoordinator,
  filePromiseStore,
  type BootstrapPromise,
  type PromiseStore,
} from '../../src/node/assembly/bootstrap.js'

afterAll(() => removeTempDirs())

function memoryStore(): PromiseStore & { value?: BootstrapPromise } {
  const store: PromiseStore & { value?: BootstrapPromise } = {
    async load() {
      return store.value
    },
    async save(p) {
      store.value = p
    },
    async clear() {
      delete store.value
    },
  }
  return store
}

/** splitmix32: tiny seeded PRNG for the schedule. */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32
  }
}

interface SimNode {
  id: string
  coordinator: BootstrapCoordinator
  raftState: boolean
  view: string[]
}

/** N nodes, each with its own (random, partial) view; requests delivered after random yields. */
function cluster(ids: string[], expectN: number, random: () => number, bootstraps: BootstrapPromise[]) {
  const nodes = new Map<string, SimNode>()
  for (const id of ids) {
    const view = ids.filter((other) => other === id || random() < 0.75)
    const node: SimNode = { id, raftState: false, view, coordinator: undefined as never }
    let counter = 0
    node.coordinator = new BootstrapCoordinator({
      selfId: id,
      expect: expectN,
      store: memoryStore(),
      hasRaftState: () => node.raftState,
      candidates: () => node.view,
      request: async (peer, req) => {
        for (let i = Math.floor(random() * 4); i > 0; i--) await Promise.resolve()
        if (random() < 0.1) throw new Error('connection reset')
        return nodes.get(peer)!.coordinator.handleRequest(id, req)
      },
      bootstrap: async (p) => {
        bootstraps.push(p)
        node.raftState = true
        // the initiator's log reaches the others: they hold Raft state from now on
        for (const v of p.voters) nodes.get(v)!.raftState = true
      },
      newClusterId: () => `${id}-c${counter++}`,
    })
    nodes.set(id, node)
  }
  return nodes
}

describe('metadata group bootstrap', () => {
  it('bootstraps exactly one group when views differ and nodes race (500 seeds)', async () => {
    for (let seed = 1; seed <= 500; seed++) {
      const random = rng(seed)
      const bootstraps: BootstrapPromise[] = []
      const ids = ['a', 'b', 'c', 'd', 'e'].slice(0, 3 + Math.floor(random() * 3))
      const nodes = cluster(ids, 3, random, bootstraps)
      for (let round = 0; round < 30 && bootstraps.length === 0; round++) {
        await Promise.all([...nodes.values()].map((n) => n.coordinator.step()))
        // views grow as gossip converges
        for (const n of nodes.values())
          for (const id of ids) if (random() < 0.3 && !n.view.includes(id)) n.view.push(id)
      }
      try {
        expect(bootstraps.length).toBe(1)
        expect(bootstraps[0]!.voters).toHaveLength(3)
      } catch (err) {
        console.error(`SEED=${seed}`)
        throw err
      }
    }
  })

  it('never bootstraps a node that already holds Raft state', async () => {
    const bootstraps: BootstrapPromise[] = []
    const nodes = cluster(['a', 'b', 'c'], 3, rng(7), bootstraps)
    for (const n of nodes.values()) n.view = ['a', 'b', 'c']
    nodes.get('a')!.raftState = true
    expect(await nodes.get('a')!.coordinator.step()).toEqual({ phase: 'member' })
    expect(
      await nodes.get('b')!.coordinator.handleRequest('b', {
        initiator: 'b',
        voters: ['a', 'b', 'c'],
        clusterId: 'x',
        kind: 'promise',
      }),
    ).toMatchObject({ accepted: true })
    expect(
      await nodes.get('a')!.coordinator.handleRequest('b', {
        initiator: 'b',
        voters: ['a', 'b', 'c'],
        clusterId: 'x',
        kind: 'promise',
      }),
    ).toMatchObject({ accepted: false })
    expect(bootstraps).toHaveLength(0)
  })

  it('refuses a request that does not come from its initiator, and a second initiator', async () => {
    const c = new BootstrapCoordinator({
      selfId: 'c',
      expect: 3,
      store: memoryStore(),
      hasRaftState: () => false,
      candidates: () => ['c'],
      request: async () => ({ accepted: false, reason: '' }),
      bootstrap: async () => {},
      newClusterId: () => 'x',
    })
    expect(
      (
        await c.handleRequest('b', {
          initiator: 'a',
          voters: ['a', 'b', 'c'],
          clusterId: 'x',
          kind: 'promise',
        })
      ).accepted,
    ).toBe(false)
    expect(
      (
        await c.handleRequest('a', {
          initiator: 'a',
          voters: ['a', 'b', 'c'],
          clusterId: 'x',
          kind: 'promise',
        })
      ).accepted,
    ).toBe(true)
    expect(
      (
        await c.handleRequest('a', {
          initiator: 'a',
          voters: ['a', 'b', 'c'],
          clusterId: 'x',
          kind: 'promise',
        })
      ).accepted,
    ).toBe(true)
    expect(
      (
        await c.handleRequest('b', {
          initiator: 'b',
          voters: ['b', 'c', 'd'],
          clusterId: 'y',
          kind: 'promise',
        })
      ).accepted,
    ).toBe(false)
  })

  it('keeps its promise across restarts (file store)', async () => {
    const path = join(makeTempDir('hopsd-boot-'), 'bootstrap-promise.json')
    const make = () =>
      new BootstrapCoordinator({
        selfId: 'c',
        expect: 3,
        store: filePromiseStore(path),
        hasRaftState: () => false,
        candidates: () => [],
        request: async () => ({ accepted: true, reason: '' }),
        bootstrap: async () => {},
        newClusterId: () => 'x',
      })
    expect(
      (
        await make().handleRequest('a', {
          initiator: 'a',
          voters: ['a', 'b', 'c'],
          clusterId: 'x',
          kind: 'promise',
        })
      ).accepted,
    ).toBe(true)
    const restarted = make()
    expect(
      (
        await restarted.handleRequest('b', {
          initiator: 'b',
          voters: ['b', 'c', 'd'],
          clusterId: 'y',
          kind: 'promise',
        })
      ).accepted,
    ).toBe(false)
    expect(
      (
        await restarted.handleRequest('a', {
          initiator: 'a',
          voters: ['a', 'b', 'c'],
          clusterId: 'x',
          kind: 'promise',
        })
      ).accepted,
    ).toBe(true)
  })
})
