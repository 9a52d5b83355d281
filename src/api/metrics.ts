// Prometheus metrics of one daemon. Each daemon owns its registry (never prom-client's global one), so
// several daemons or test servers in one process do not collide.
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client'

export interface ApiMetrics {
  readonly registry: Registry
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>
}

/** Seconds; from sub-millisecond reads of small files to slow admin calls. */
const DURATION_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** A registry with process metrics (`process_*`, `nodejs_*`) and the HTTP request histogram. */
export function createMetricsRegistry(opts: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry()
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry })
  return registry
}

export function createApiMetrics(registry: Registry): ApiMetrics {
  const httpDuration = new Histogram({
    name: 'hopsd_http_request_duration_seconds',
    help: 'Duration of HTTP API requests, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: DURATION_BUCKETS_S,
    registers: [registry],
  })
  return { registry, httpDuration }
}
