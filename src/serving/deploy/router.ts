/**
 * Which replica answers an inference request: a ready replica of the deployment (of the version asked
 * for; without one, of the deployment's current version, or during a rolling update of any version
 * still serving), this node's own first, then its zone's, then the others, in random order within each
 * group so that load spreads. The caller tries them in this order and moves on when one answers
 * "retry elsewhere" (503: not ready, overloaded, crashed; or its node cannot be reached).
 */
import { RegistryError } from '../errors.js'
import type { Deployment, ReplicaRecord } from '../registry/types.js'

export interface RouteChoice {
  readonly deployment: Deployment
  /** Ready replicas in the order to try. */
  readonly replicas: ReplicaRecord[]
}

/**
 * The replicas to try for `name` (and `version`, when the route names one). Throws MODEL_NOT_DEPLOYED
 * for an unknown deployment or a version it does not serve, NO_READY_REPLICA when none is ready.
 */
export function chooseReplicas(
  d: Deployment | undefined,
  name: string,
  version: string | undefined,
  here: { node: string; zone: string },
  random: () => number = Math.random,
): RouteChoice {
  if (d === undefined) throw new RegistryError('MODEL_NOT_DEPLOYED', `model ${name} is not deployed`)
  const served = new Set([d.version, ...d.replicas.map((r) => r.version)])
  if (version !== undefined && !served.has(version))
    throw new RegistryError('MODEL_NOT_DEPLOYED', `model ${name} version ${version} is not deployed`)
  const ready = d.replicas.filter((r) => r.state === 'ready')
  let pool: ReplicaRecord[]
  if (version !== undefined) pool = ready.filter((r) => r.version === version)
  else {
    pool = ready.filter((r) => r.version === d.version)
    if (pool.length === 0) pool = ready
  }
  if (pool.length === 0)
    throw new RegistryError(
      'NO_READY_REPLICA',
      `model ${name}${version === undefined ? '' : ` version ${version}`} has no ready replica`,
    )
  const rank = (r: ReplicaRecord): number => (r.node === here.node ? 0 : r.zone === here.zone ? 1 : 2)
  const keyed = pool.map((r) => ({ r, k: rank(r), t: random() }))
  keyed.sort((a, b) => a.k - b.k || a.t - b.t)
  return { deployment: d, replicas: keyed.map((x) => x.r) }
}

/** Whether an answer means "this replica cannot take it now: try another". */
export function isRetryElsewhere(status: number): boolean {
  return status === 503
}
