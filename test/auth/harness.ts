// An in-process replica with the auth module (and the fs namespace), a controllable clock, and the
// authenticator over it: what a metadata node runs, without Raft.
import {
  authModule,
  clusterPrincipal,
  createAuthService,
  createLocalAuthenticator,
  type Authenticator,
  type AuthService,
  type AuthStore,
  type GrantVerifier,
  type Principal,
} from '../../src/auth/index.js'
import { createFsService, namespaceModule, type FsService } from '../../src/fs/index.js'
import { createLocalGroup, createMetaStateMachine, type MetaStateMachine } from '../../src/meta/index.js'

export interface AuthEnv {
  sm: MetaStateMachine
  auth: AuthService
  fs: FsService
  authn: Authenticator
  clock: { now: number }
  /** The admin key bootstrap made. */
  adminKey: string
  admin: Principal
  barriers: { count: number }
}

export async function makeAuth(
  opts: { mode?: 'simple' | 'secure'; grants?: GrantVerifier; bootstrap?: boolean } = {},
): Promise<AuthEnv> {
  const sm = createMetaStateMachine({ modules: [namespaceModule(), authModule()] })
  const group = createLocalGroup(sm)
  const clock = { now: 1_700_000_000_000 }
  const barriers = { count: 0 }
  const auth = createAuthService({
    consensus: group,
    stateMachine: sm,
    nodeId: 'node-a',
    clock: () => clock.now,
  })
  const fs = createFsService({ consensus: group, stateMachine: sm, clock: () => clock.now })
  const authn = createLocalAuthenticator({
    store: () => sm.module<AuthStore>('auth'),
    settings: () => sm.settings(),
    isSuperuser: (u, g) => sm.isSuperuser(u, g),
    bootstrapMode: opts.mode ?? 'secure',
    barrier: async () => {
      barriers.count++
    },
    grants: opts.grants,
    clock: () => clock.now,
  })
  let adminKey = ''
  if (opts.bootstrap !== false)
    adminKey = (await auth.bootstrap(clusterPrincipal(), opts.mode ?? 'secure')).key
  const admin = adminKey === '' ? clusterPrincipal() : (await authn.authenticate({ bearer: adminKey }))!
  return { sm, auth, fs, authn, clock, adminKey, admin, barriers }
}
