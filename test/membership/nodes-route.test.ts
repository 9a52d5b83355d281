// GET /api/v1/nodes serves the membership view (fastify inject over a real 2-node membership).
import { afterEach, describe, expect, it } from 'vitest'
import { createApiServer, createMetricsRegistry, type ApiServer } from '../../src/api/index.js'
import { nodesRoutes } from '../../src/api/routes/nodes.js'
import { createMembership, MEMBERSHIP_TEST, type Membership } from '../../src/node/membership/index.js'
import { silentLogger } from '../../src/node/index.js'
import { hostPort, makeHost, stopHostsAfterEach, waitFor } from '../p2p/util.js'

stopHostsAfterEach()
const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of closers.splice(0)) await c()
})

describe('GET /api/v1/nodes', () => {
  it('returns every member with liveness, matching the response schema', async () => {
    const hostA = await makeHost()
    const hostB = await makeHost({ join: [hostPort(hostA)] })
    const ms: Membership[] = [hostA, hostB].map((host, i) =>
      createMembership({
        host,
        self: { zone: `z${i + 1}`, roles: ['datanode'], httpAddr: `127.0.0.1:${9870 + i}`, version: '0.1.0' },
        config: MEMBERSHIP_TEST,
      }),
    )
    for (const m of ms) {
      await m.start()
      closers.push(() => m.stop({ leave: false }))
    }
    await waitFor(() => ms.every((m) => m.view().length === 2), { what: 'both views list 2' })
    const api: ApiServer = await createApiServer({
      logger: silentLogger(),
      registry: createMetricsRegistry(),
      routes: [nodesRoutes({ selfId: hostA.id, view: () => ms[0]!.view() })],
      openapi: { title: 'hopsd', version: '0.1.0' },
    })
    closers.push(() => api.close())
    const res = await api.app.inject({ method: 'GET', url: '/api/v1/nodes' })
    expect(res.statusCode).toBe(200)
    const body = res.json() as {
      self: string
      nodes: { id: string; zone: string; liveness: string; self: boolean; lastSeenMs: number }[]
    }
    expect(body.self).toBe(hostA.id)
    expect(body.nodes.map((n) => n.id)).toEqual([hostA.id, hostB.id])
    expect(body.nodes[0]).toMatchObject({ zone: 'z1', self: true, liveness: 'alive' })
    expect(body.nodes[1]).toMatchObject({
      zone: 'z2',
      self: false,
      liveness: 'alive',
      httpAddr: '127.0.0.1:9871',
    })
    expect(body.nodes[1]!.lastSeenMs).toBeGreaterThan(0)
  })
})
