/**
 * The OpenAPI 3.1 document, generated from the routes' own schemas: an `onRoute` hook records every
 * route as it is registered, and {@link buildOpenApi} turns the records into paths and operations. Route
 * schemas are therefore the single source; a route without a schema is refused at registration
 * (`requireSchemas`), so the document cannot silently miss one.
 */
import type { FastifyInstance, RouteOptions } from 'fastify'
import { errorBodySchema } from './error-mapper.js'

type Json = Record<string, unknown>

export interface RouteRecord {
  readonly method: string
  readonly url: string
  readonly schema: Json
}

export interface OpenApiInfo {
  readonly title: string
  readonly version: string
  readonly description?: string
}

/** Records routes as they are registered; throws when one has no response schema. Call before any route. */
export function recordRoutes(app: FastifyInstance, opts: { requireSchemas: boolean }): RouteRecord[] {
  const records: RouteRecord[] = []
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    const schema = (route.schema ?? undefined) as Json | undefined
    if (opts.requireSchemas && (schema === undefined || schema['response'] === undefined)) {
      throw new Error(`route ${methods.join(',')} ${route.url} declares no response schema: every route must`)
    }
    for (const method of methods) {
      // HEAD routes are fastify's automatic twins of GET routes: not separate operations.
      if (method === 'HEAD' || schema?.['hide'] === true) continue
      records.push({ method, url: route.url, schema: schema ?? {} })
    }
  })
  return records
}

export function buildOpenApi(
  info: OpenApiInfo,
  routes: readonly RouteRecord[],
  shared: Record<string, unknown>,
): Json {
  const paths: Record<string, Record<string, Json>> = {}
  for (const route of routes) {
    const { path, pathParams } = openApiPath(route.url)
    const s = route.schema
    const op: Json = {}
    for (const key of ['summary', 'description', 'tags', 'operationId', 'deprecated'] as const) {
      if (s[key] !== undefined) op[key] = s[key]
    }
    const parameters = [
      ...params(s['params'] as Json | undefined, 'path', pathParams),
      ...params(s['querystring'] as Json | undefined, 'query'),
      ...params(s['headers'] as Json | undefined, 'header'),
    ]
    // Path parameters must be declared even when the schema forgot them.
    for (const name of pathParams) {
      if (!parameters.some((p) => p['in'] === 'path' && p['name'] === name)) {
        parameters.push({ name, in: 'path', required: true, schema: { type: 'string' } })
      }
    }
    if (parameters.length > 0) op['parameters'] = parameters
    if (s['body'] !== undefined) {
      op['requestBody'] = { required: true, content: { 'application/json': { schema: refs(s['body']) } } }
    } else if (s['requestBody'] !== undefined) {
      // Raw bodies (file bytes) that no schema validates: documented as given.
      op['requestBody'] = refs(s['requestBody'])
    }
    op['responses'] = responses(s['response'] as Json | undefined)
    ;(paths[path] ??= {})[route.method.toLowerCase()] = op
  }
  const schemas: Json = { Error: errorBodySchema }
  for (const [id, schema] of Object.entries(shared)) schemas[sharedName(id)] = refs(schema)
  return {
    openapi: '3.1.0',
    info: {
      title: info.title,
      version: info.version,
      ...(info.description ? { description: info.description } : {}),
    },
    paths: sortKeys(paths),
    components: {
      schemas,
      responses: {
        Error: {
          description: 'An error: a stable code and a message (see the README error reference).',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    },
  }
}

/**
 * The methods routes answer on a concrete path (HEAD with GET, as fastify adds it), for 405 answers.
 * Reads `routes` when called: routes registered later count.
 */
export function routeMatcher(routes: readonly RouteRecord[]): (path: string) => string[] {
  const compiled = new Map<string, RegExp>()
  const regexOf = (url: string): RegExp => {
    let re = compiled.get(url)
    if (re === undefined) {
      const body = url
        .split('/')
        .map((seg) =>
          seg.startsWith(':') ? '[^/]+' : seg === '*' ? '.*' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
        )
        .join('/')
      re = new RegExp(`^${body.replace(/\/\.\*$/, '(?:/.*)?')}$`)
      compiled.set(url, re)
    }
    return re
  }
  return (path) => {
    const methods = new Set<string>()
    for (const r of routes) if (regexOf(r.url).test(path)) methods.add(r.method)
    if (methods.has('GET')) methods.add('HEAD')
    return [...methods].sort()
  }
}

/** `/api/v1/files/:id` → `/api/v1/files/{id}`; a trailing `*` becomes `{path}`. */
function openApiPath(url: string): { path: string; pathParams: string[] } {
  const pathParams: string[] = []
  const path = url
    .split('/')
    .map((seg) => {
      if (seg.startsWith(':')) {
        const name = seg.slice(1).replace(/\(.*\)$/, '') // drop a regex constraint
        pathParams.push(name)
        return `{${name}}`
      }
      if (seg === '*') {
        pathParams.push('*')
        return '{*}'
      }
      return seg
    })
    .join('/')
  return { path, pathParams }
}

function params(
  schema: Json | undefined,
  where: 'path' | 'query' | 'header',
  pathParams: string[] = [],
): Json[] {
  const props = schema?.['properties'] as Record<string, Json> | undefined
  if (props === undefined) return []
  const required = new Set((schema?.['required'] as string[] | undefined) ?? [])
  return Object.entries(props).map(([name, prop]) => {
    const { description, ...rest } = prop
    return {
      name,
      in: where,
      required: where === 'path' ? pathParams.includes(name) || required.has(name) : required.has(name),
      ...(description !== undefined ? { description } : {}),
      schema: refs(rest),
    }
  })
}

function responses(response: Json | undefined): Json {
  const out: Json = {}
  for (const [status, raw] of Object.entries(response ?? {})) {
    const entry = raw as Json
    const code = status === 'default' ? status : status.toUpperCase() // fastify's '2xx' is OpenAPI's '2XX'
    const description =
      (entry['description'] as string | undefined) ?? (code.startsWith('2') ? 'OK' : 'Response')
    const headers = entry['headers'] === undefined ? {} : { headers: refs(entry['headers']) }
    if (entry['content'] !== undefined) {
      // fastify's per-content-type form: { content: { 'text/plain': { schema } } }
      const content: Json = {}
      for (const [type, media] of Object.entries(entry['content'] as Record<string, Json>)) {
        content[type] = { schema: refs(media['schema']) }
      }
      out[code] = { description, ...headers, content }
    } else {
      const { description: _d, headers: _h, ...schema } = entry
      // A response declared by its description (and headers) alone has no body (a 307, a 201).
      out[code] =
        Object.keys(schema).length === 0
          ? { description, ...headers }
          : { description, ...headers, content: { 'application/json': { schema: refs(schema) } } }
    }
  }
  out['default'] ??= { $ref: '#/components/responses/Error' }
  return out
}

/** Rewrites fastify shared-schema references (`node#`, `node#/properties/id`) to OpenAPI components. */
function refs(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(refs)
  if (schema === null || typeof schema !== 'object') return schema
  const out: Json = {}
  for (const [k, v] of Object.entries(schema as Json)) {
    if (k === '$ref' && typeof v === 'string' && !v.startsWith('#')) {
      const [id, pointer = ''] = v.split('#')
      out[k] = `#/components/schemas/${sharedName(id ?? '')}${pointer}`
    } else if (k === '$id') {
      continue
    } else out[k] = refs(v)
  }
  return out
}

function sharedName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_')
}

function sortKeys<T>(obj: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(obj).sort(([a], [b]) => a.localeCompare(b)))
}
