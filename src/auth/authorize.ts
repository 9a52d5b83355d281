/**
 * Authorization helpers every area uses on the principal the edge established. File permissions are
 * the fs area's (POSIX bits inside apply); these are the coarse rules around them.
 */
import { AuthError } from './errors.js'
import type { Principal } from './principal.js'

/**
 * The cluster acting for itself (the leader's housekeeping, bootstrap): the `superuser` setting's user
 * (default `hopsd`). Never the result of authenticating a request.
 */
export function clusterPrincipal(superuser = 'hopsd'): Principal {
  return { user: superuser, groups: [], via: 'cluster', superuser: true }
}

/** The principal, or UNAUTHENTICATED (401) when the request established none. */
export function requireCaller(p: Principal | undefined): Principal {
  if (p === undefined) throw new AuthError('UNAUTHENTICATED')
  return p
}
