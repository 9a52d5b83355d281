/**
 * The `auth` module (every node): who is calling (src/auth) wired into the daemon.
 *
 *  - The API's authentication ({@link NodeAuth.api}, handed to the HTTP server by the daemon): on a
 *    metadata node the local authenticator over its replica (after a read barrier); on a node without
 *    one, a remote authenticator that asks a metadata node (`/hopsd/authenticate/1.0.0`) — nothing
 *    cached, so a revocation holds at once. Both with the per-source failure limiter and the audit log.
 *  - On metadata nodes: the users, keys, audit and settings routes; the authenticate protocol for the
 *    other nodes; and, on the leader, the auth bootstrap: once the cluster is initialised, the user
 *    `admin` with a key written to `<data-dir>/admin.key` (0600) on this node, and the `auth` setting
 *    from this node's `--auth`.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import {
  auditRoutes,
  homeDirectories,
  keysRoutes,
  settingsRoutes,
  usersRoutes,
  type ApiAuth,
  type ApiRoutes,
} from '../../api/index.js'
import {
  ADMIN_USER,
  ANONYMOUS_USER,
  AuthError,
  clusterPrincipal,
  createAuditLog,
  createAuthService,
  createFailureLimiter,
  generateApiKey,
  isAuthError,
  isAuthErrorCode,
  PROJECT_USER_URI_PREFIX,
  type AuditLog,
  type Authenticator,
  type AuthService,
  type Principal,
} from '../../auth/index.js'
import { HopsError } from '../../errors.js'
import { createFsService } from '../../fs/index.js'
import { Periodic } from '../../lib/index.js'
import { hopsd } from '../../proto/cluster.js'
import { issueUserCertificate } from '../ca/index.js'
import { signingCa } from './ca-signing.js'
import type { Logger } from '../logger.js'
import { requireService, type NodeModule } from '../module.js'
import { handleRequests, request } from '../p2p/index.js'
import { credentialFromProto, credentialToProto } from './trust.js'

import pb = hopsd.cluster

export const AUTHENTICATE_PROTOCOL = '/hopsd/authenticate/1.0.0'
/** The file the node that initialised the cluster writes the admin key to, in its data dir. */
export const ADMIN_KEY_FILE = 'admin.key'
const BOOTSTRAP_CHECK_MS = 1_000

export interface NodeAuth {
  /** The API's one authentication hook's parts (src/api/auth-hook.ts). */
  readonly api: ApiAuth
  /** The audit trail of this node. */
  readonly audit: AuditLog
  /** Users, keys and delegation tokens (metadata nodes only). */
  readonly service?: AuthService
}

export function authNodeModule(): NodeModule<'auth'> {
  return {
    name: 'auth',
    create(components) {
      const { config, identity } = components
      const logger = components.logger
      const meta = components.services.metadata
      const audit = createAuditLog({
        log: (event) =>
          (event.decision === 'deny' ? logger.warn.bind(logger) : logger.info.bind(logger))(
            { audit: true, ...event },
            'audit',
          ),
      })
      const limiter = createFailureLimiter()

      if (meta === undefined) {
        const authenticator = remoteAuthenticator(components, config.auth)
        return {
          api: { api: { authenticator, limiter, audit }, audit },
          routes: auditRoutes({ audit, nodeId: identity.id }),
        }
      }

      const consensus = {
        propose: (cmd: Uint8Array, opts?: Parameters<typeof meta.group.propose>[1]) =>
          meta.group.propose(cmd, opts),
        readBarrier: (opts?: Parameters<typeof meta.group.readBarrier>[0]) => meta.group.readBarrier(opts),
      }
      const service = createAuthService({ consensus, stateMachine: meta.stateMachine, nodeId: identity.id })
      const fs = createFsService({ consensus, stateMachine: meta.stateMachine })
      const su = (): Principal => clusterPrincipal(meta.stateMachine.settings().superuser)
      const makeHome = homeDirectories(fs)
      const routes: ApiRoutes[] = [
        usersRoutes({
          auth: service,
          // Homes are made by the cluster itself (the route let only admins through): /user stays the superuser's.
          createHome: (_admin, name) => makeHome(su(), name),
          async issueCertificate(user, publicKeyPem, validityDays) {
            const { ca, caCertificatePem } = signingCa(meta)
            return {
              certificatePem: await issueUserCertificate(ca, { user, publicKeyPem, validityDays }),
              caCertificatePem,
            }
          },
        }),
        keysRoutes({ auth: service }),
        auditRoutes({ audit, nodeId: identity.id }),
        settingsRoutes({
          get: async (signal) => {
            await meta.group.readBarrier({ signal })
            return meta.stateMachine.settings()
          },
          set: (caller, name, value) => fs.setSetting(caller, name, value),
        }),
      ]
      const unhandles: (() => Promise<void>)[] = []
      let loop: Periodic | undefined
      return {
        api: {
          api: { authenticator: meta.authenticator, limiter, audit },
          audit,
          service,
        },
        routes: {
          name: 'auth',
          async register(app) {
            for (const r of routes) await app.register(async (scope) => r.register(scope))
          },
        },
        service: {
          async start() {
            const p2p = requireService(components, 'p2p')
            unhandles.push(
              await handleRequests(p2p.host(), AUTHENTICATE_PROTOCOL, async (_from, body, signal) => {
                const req = pb.AuthenticateRequest.decode(body)
                try {
                  const p = await meta.authenticator.authenticate(credentialFromProto(req.credential), {
                    signal,
                  })
                  return pb.AuthenticateReply.encode({
                    principalJson: p === undefined ? '' : JSON.stringify(p),
                  }).finish()
                } catch (err) {
                  if (!isAuthError(err)) throw err
                  return pb.AuthenticateReply.encode({
                    errorCode: err.code,
                    errorMessage: err.message,
                  }).finish()
                }
              }),
            )
            loop = new Periodic({
              intervalMs: BOOTSTRAP_CHECK_MS,
              tick: async () => {
                if (meta.auth.bootstrapped() || meta.cluster.info() === undefined) return
                const st = meta.group.status()
                if (st.role !== 'leader' || st.leaderId !== identity.id) return
                await bootstrapAuth(
                  service,
                  fs,
                  su(),
                  config.auth,
                  join(config.dataDir, ADMIN_KEY_FILE),
                  logger,
                )
              },
              onError: (err) =>
                logger.warn(
                  { err: (err as Error).message, code: (err as { code?: string }).code },
                  'auth bootstrap step failed',
                ),
            })
            loop.start()
          },
          async stop() {
            await loop?.stop()
            for (const u of unhandles.splice(0)) await u().catch(() => undefined)
          },
        },
      }
    },
  }
}

/**
 * The auth bootstrap, by the leader of a cluster that has none yet: the admin key is written to
 * `file` (0600, fsynced, renamed into place) *before* the command is proposed, so that a crash after
 * the commit cannot lose it; a node that loses the race (another leader bootstrapped first) removes
 * its file again.
 */
async function bootstrapAuth(
  service: AuthService,
  fs: ReturnType<typeof createFsService>,
  cluster: Principal,
  auth: 'simple' | 'secure',
  file: string,
  logger: Logger,
): Promise<void> {
  const key = generateApiKey()
  writePrivateFile(file, key.key + '\n')
  try {
    await service.bootstrap(cluster, auth, key)
  } catch (err) {
    if (isAuthError(err, 'ADMIN_EXISTS')) rmSync(file, { force: true })
    throw err
  }
  logger.info({ path: file, user: ADMIN_USER, keyId: key.id, auth }, 'admin key written')
  try {
    await homeDirectories(fs)(cluster, ADMIN_USER)
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'the admin user has no home directory')
  }
}

function writePrivateFile(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
}

/**
 * A node without a metadata replica authenticates through a metadata node (its own zone first): the
 * credential goes over the cluster's encrypted p2p stream, the answer is the principal or the refusal
 * with its reason. Client certificates and grants are checked by metadata nodes only.
 */
function remoteAuthenticator(
  components: Parameters<NodeModule['create']>[0],
  bootstrapMode: 'simple' | 'secure',
): Authenticator {
  const cluster = requireService(components, 'cluster')
  const p2p = requireService(components, 'p2p')
  let mode = bootstrapMode
  return {
    mode: () => mode,
    // No replica here: nothing this node reads could be stale (fs reads run on metadata nodes).
    recheck: () => undefined,
    async authenticate(c, opts = {}) {
      if (
        c.certificate !== undefined &&
        c.certificate.uris.some((u) => u.startsWith('hopsd://user/') || u.startsWith(PROJECT_USER_URI_PREFIX))
      )
        throw new AuthError(
          'CREDENTIAL_INVALID',
          'client certificates are checked by metadata nodes; send this node a key or a token',
        )
      if (c.grant !== undefined)
        throw new AuthError('CREDENTIAL_INVALID', 'principal grants are checked by metadata nodes only')
      const proto = credentialToProto(c)
      const body = pb.AuthenticateRequest.encode({ credential: proto }).finish()
      const targets = cluster.metadataTargets()
      if (targets.length === 0) {
        // Nobody to ask: a request without credentials is anonymous as far as this node knows the mode.
        if (proto.anonymous)
          return mode === 'simple'
            ? { user: ANONYMOUS_USER, groups: [], via: 'simple', superuser: false }
            : undefined
        throw new HopsError('UNAVAILABLE', 'no live metadata node is known yet to authenticate with')
      }
      let last: unknown
      for (const t of targets) {
        let reply: pb.AuthenticateReply
        try {
          reply = pb.AuthenticateReply.decode(
            await request(p2p.host(), t.id, AUTHENTICATE_PROTOCOL, body, {
              signal: opts.signal,
              timeoutMs: 10_000,
            }),
          )
        } catch (err) {
          last = err
          continue
        }
        if (reply.errorCode !== '') {
          if (isAuthErrorCode(reply.errorCode)) {
            if (reply.errorCode === 'SIMPLE_AUTH_DISABLED') mode = 'secure'
            throw new AuthError(reply.errorCode, reply.errorMessage)
          }
          throw new HopsError('UNAVAILABLE', reply.errorMessage)
        }
        if (reply.principalJson === '') {
          if (c.userName === undefined) mode = 'secure'
          return undefined
        }
        const p = JSON.parse(reply.principalJson) as Principal
        if (p.via === 'simple') mode = 'simple'
        return p
      }
      throw new HopsError('UNAVAILABLE', `no metadata node answered (last: ${(last as Error).message})`, {
        cause: last,
      })
    },
  }
}
