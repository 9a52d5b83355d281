// The HTTP API in-process (fastify inject): error mapping, request metrics, OpenAPI, schema rules.
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createApiServer,
  createMetricsRegistry,
  nodeRoutes,
  type ApiRoutes,
  type ApiServer,
} from '../../src/api/index.js'
import { HopsError } from '../../src/errors.js'
import { silentLogger } from '../../src/node/index.js'

const servers: ApiServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

const info = {
  id: '12D3KooWTestNode',
  zone: 'z1',
  roles: ['metadata', 'datanode'],
  version: '0.1.0',
  startedAt: new Date(0).toISOString(),
  http: 'http://127.0.0.1:9870',
  p2p: '127.0.0.1:4001',
  join: [],
  bootstrapExpect: 1,
  dataDir: '/tmp/x',
  pid: 1,
  nodeVersion: process.version,
}

/** A test area with routes that fail in each way the mapper must handle. */
const failing: ApiRoutes = {
  name: 'test',
  register(app: FastifyInstance) {
    const ok = { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } }
    app.get('/t/locked', { schema: { response: ok } }, async () => {
      throw new HopsError('DATA_DIR_LOCKED', 'locked by pid 7')
    })
    app.get('/t/foreign', { schema: { response: ok } }, async () => {
      // An area that cannot import src/errors.ts (consensus) still maps by its code.
      throw Object.assign(new Error('not the leader'), { code: 'UNAVAILABLE' })
    })
    app.get('/t/bug', { schema: { response: ok } }, async () => {
      throw new TypeError('x is undefined')
    })
    app.post(
      '/t/items/:id',
      {
        schema: {
          summary: 'Creates an item',
          params: { type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] },
          querystring: {
            type: 'object',
            properties: { dry: { type: 'boolean', description: 'only check' } },
          },
          body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
          response: { 201: { type: 'object', properties: { id: { type: 'integer' } } } },
        },
      },
      async (request, reply) => reply.status(201).send({ id: (request.params as { id: number }).id }),
    )
  },
}

async function server(routes: ApiRoutes[] = [failing]): Promise<ApiServer> {
  const s = await createApiServer({
    logger: silentLogger(),
    registry: createMetricsRegistry(),
    routes: [nodeRoutes({ info, uptimeS: () => 42 }), ...routes],
    openapi: { title: 'hopsd', version: '0.1.0' },
  })
  servers.push(s)
  return s
}

describe('routes of the node', () => {
  it('GET /health answers status, id, zone, roles, version, uptimeS', async () => {
    const { app } = await server()
    const res = await app.inject({ method: 'GET', url: '/health' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({
      status: 'ok',
      id: info.id,
      zone: 'z1',
      roles: ['metadata', 'datanode'],
      version: '0.1.0',
      uptimeS: 42,
    })
  })

  it('GET /api/v1/node shows the same id', async () => {
    const { app } = await server()
    const res = await app.inject({ method: 'GET', url: '/api/v1/node' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ id: info.id, zone: 'z1', p2p: '127.0.0.1:4001', bootstrapExpect: 1 })
  })
})

describe('error mapper', () => {
  it.each([
    ['/t/locked', 409, 'DATA_DIR_LOCKED', 'locked by pid 7'],
    ['/t/foreign', 503, 'UNAVAILABLE', 'not the leader'],
    ['/t/bug', 500, 'INTERNAL', 'internal error'],
    ['/nowhere', 404, 'NOT_FOUND', 'no route GET /nowhere'],
  ])('GET %s → %i %s', async (url, status, code, message) => {
    const { app } = await server()
    const res = await app.inject({ method: 'GET', url })
    expect(res.statusCode).toBe(status)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    expect(res.json()).toEqual({ error: { code, message } })
  })

  it('maps schema validation and malformed bodies to 400 BAD_REQUEST', async () => {
    const { app } = await server()
    const noName = await app.inject({ method: 'POST', url: '/t/items/5', payload: { other: 1 } })
    expect(noName.statusCode).toBe(400)
    expect(noName.json().error.code).toBe('BAD_REQUEST')
    const badParam = await app.inject({ method: 'POST', url: '/t/items/abc', payload: { name: 'a' } })
    expect(badParam.json().error.code).toBe('BAD_REQUEST')
    const badJson = await app.inject({
      method: 'POST',
      url: '/t/items/5',
      headers: { 'content-type': 'application/json' },
      payload: '{"name":',
    })
    expect(badJson.statusCode).toBe(400)
    expect(badJson.json().error.code).toBe('BAD_REQUEST')
    const good = await app.inject({ method: 'POST', url: '/t/items/5', payload: { name: 'a' } })
    expect(good.statusCode).toBe(201)
    expect(good.json()).toEqual({ id: 5 })
  })

  it("answers the router's own refusals (an over-long path parameter) in the error shape", async () => {
    const { app } = await server()
    const res = await app.inject({
      method: 'POST',
      url: `/t/items/${'9'.repeat(300)}`,
      payload: { name: 'a' },
    })
    expect(res.statusCode).toBe(414)
    expect(res.json().error.code).toBe('BAD_REQUEST')
    expect(res.json().error.message).toMatch(/max param length/)
  })

  it('maps an unsupported content type to 415', async () => {
    const { app } = await server()
    const res = await app.inject({
      method: 'POST',
      url: '/t/items/5',
      headers: { 'content-type': 'application/x-nope' },
      payload: 'x',
    })
    expect(res.statusCode).toBe(415)
    expect(res.json().error.code).toBe('UNSUPPORTED_MEDIA_TYPE')
  })
})

describe('/metrics', () => {
  it('exposes process metrics and the request histogram by route and status', async () => {
    const { app } = await server()
    await app.inject({ method: 'GET', url: '/health' })
    await app.inject({ method: 'GET', url: '/nowhere/1' })
    const res = await app.inject({ method: 'GET', url: '/metrics' })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/plain/)
    expect(res.body).toContain('process_cpu_user_seconds_total')
    expect(res.body).toContain('nodejs_eventloop_lag_seconds')
    expect(res.body).toMatch(
      /hopsd_http_request_duration_seconds_count\{method="GET",route="\/health",status="200"\} 1/,
    )
    // Unmatched URLs share one label, so the label set stays bounded.
    expect(res.body).toMatch(
      /hopsd_http_request_duration_seconds_count\{method="GET",route="unmatched",status="404"\} 1/,
    )
  })

  it('keeps one registry per server: two in one process do not collide', async () => {
    const a = await server()
    const b = await server()
    await a.app.inject({ method: 'GET', url: '/health' })
    const metricsB = await b.app.inject({ method: 'GET', url: '/metrics' })
    expect(metricsB.body).not.toMatch(/route="\/health"/)
  })
})

describe('/openapi.json', () => {
  it('documents every route from its schema', async () => {
    const { app } = await server()
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
    expect(doc.openapi).toBe('3.1.0')
    expect(doc.info).toMatchObject({ title: 'hopsd', version: '0.1.0' })
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/health', '/api/v1/node', '/metrics', '/openapi.json', '/t/items/{id}']),
    )
    const op = doc.paths['/t/items/{id}'].post
    expect(op.summary).toBe('Creates an item')
    expect(op.parameters).toEqual([
      { name: 'id', in: 'path', required: true, schema: { type: 'integer' } },
      { name: 'dry', in: 'query', required: false, description: 'only check', schema: { type: 'boolean' } },
    ])
    expect(op.requestBody.content['application/json'].schema.required).toEqual(['name'])
    expect(op.responses['201'].content['application/json'].schema.properties.id.type).toBe('integer')
    expect(op.responses.default).toEqual({ $ref: '#/components/responses/Error' })
    expect(doc.paths['/metrics'].get.responses['200'].content).toHaveProperty('text/plain')
    expect(doc.paths['/health'].head).toBeUndefined()
    expect(doc.components.schemas.Error.properties.error.required).toEqual(['code', 'message'])
  })

  it('refuses a route without a response schema', async () => {
    const noSchema: ApiRoutes = {
      name: 'careless',
      register(app) {
        app.get('/t/none', async () => ({}))
      },
    }
    await expect(server([noSchema])).rejects.toThrow(/route GET \/t\/none declares no response schema/)
  })
})
