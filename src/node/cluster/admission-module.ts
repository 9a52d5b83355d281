/**
 * The `admission` module (every node): answers `/hopsd/join/1.0.0`, the one request (with the
 * certificate exchange) a peer without a node certificate may make.
 *
 * On a metadata node it is the admission desk (src/node/admission createIssuer): admit by join token,
 * automatically under simple auth, or record the node as pending for an admin; check the hosts the
 * certificate should name by dialing the node back; wrap the CA key to a metadata node; record and sign
 * the certificate. On any other node it redirects to the metadata nodes it knows (with their
 * addresses): a node that is not admitted sees no gossip, so this is how it finds them.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { hopsd } from '../../proto/cluster.js'
import { admissionRoutes } from '../../api/index.js'
import { authViaOf, type Principal } from '../../auth/index.js'
import { encodeCommand } from '../../meta/index.js'
import {
  createAdmissionService,
  createIssuer,
  JOIN_PROTOCOL,
  type AdmissionService,
  type Issuer,
} from '../admission/index.js'
import { requireService, type NodeModule } from '../module.js'
import { handleRequests, ipPortOf, resolveHost } from '../p2p/index.js'
import { replyFromWire, type CertificateAsk, type CertificateReply } from './tls-module.js'

import pb = hopsd.cluster

/** A join request may wait for proposals and dial-backs; the requester waits a little longer. */
const JOIN_HANDLER_TIMEOUT_MS = 10_000
const DIAL_BACK_TIMEOUT_MS = 3_000

export interface NodeAdmission {
  /** Metadata nodes: this node's own certificate from its replica (throws CA_KEY_UNAVAILABLE etc.). */
  readonly issueLocal?: (req: CertificateAsk, signal: AbortSignal) => Promise<CertificateReply>
  /** Metadata nodes: what admins do (join tokens, approvals, revocations) against this replica. */
  readonly service?: AdmissionService
}

export function admissionModule(): NodeModule<'admission'> {
  return {
    name: 'admission',
    create(components) {
      const { identity, logger } = components
      const p2p = requireService(components, 'p2p')
      const membership = requireService(components, 'membership')
      const cluster = requireService(components, 'cluster')
      const local = components.services.metadata
      let unhandle: (() => Promise<void>) | undefined

      const addrsOf = (id: string): string[] => [...(membership.get(id)?.p2pAddrs ?? [])]

      const issuer: Issuer | undefined =
        local === undefined
          ? undefined
          : createIssuer({
              selfId: identity.id,
              state: () => local.cluster,
              keyring: local.ca,
              propose: (body, signal) =>
                local.group.propose(
                  encodeCommand({
                    ...body,
                    nowMs: Date.now(),
                    user: local.stateMachine.settings().superuser,
                  }),
                  { signal },
                ),
              readBarrier: (signal) => local.group.readBarrier({ signal }),
              // Simple auth (dev, tests) admits whoever asks; apply refuses that under secure auth anyway.
              // Until the cluster's auth bootstrap is applied, its mode is not known: ask again later.
              autoAdmit: () =>
                local.auth.bootstrapped() ? local.stateMachine.settings().auth === 'simple' : undefined,
              dialBack: async (peer, ip, port, signal) => {
                const family = ip.includes(':') ? 'ip6' : 'ip4'
                const conn = await p2p
                  .host()
                  .libp2p.dial(multiaddr(`/${family}/${ip}/tcp/${port}/p2p/${peer}`), {
                    force: true,
                    signal: AbortSignal.any([signal, AbortSignal.timeout(DIAL_BACK_TIMEOUT_MS)]),
                  })
                const answered = conn.remotePeer.toString()
                // libp2p may hand back a dial it joined (another address of the same peer): only a
                // connection to exactly ip:port proves the node listens there.
                const at = ipPortOf(conn.remoteAddr)
                await conn.close().catch(() => conn.abort(new Error('dial-back done')))
                if (answered !== peer) throw new Error(`${answered} answered, not ${peer}`)
                if (at === undefined || at.ip !== ip || at.port !== port)
                  throw new Error(`the dial went to ${conn.remoteAddr.toString()}, not ${ip}:${port}`)
              },
              resolve: resolveHost,
              issuers: () =>
                membership
                  .view()
                  .filter(
                    (n) =>
                      n.roles.includes('metadata') &&
                      n.liveness === 'alive' &&
                      local.cluster.wrappedKey(n.id) !== undefined,
                  )
                  .map((n) => ({ id: n.id, addrs: [...n.p2pAddrs] })),
              logger: logger.child({ area: 'admission' }),
              validityMs: () => local.stateMachine.settings().nodeCertValidityS * 1000,
            })

      const issueLocal =
        issuer === undefined
          ? undefined
          : async (req: CertificateAsk, signal: AbortSignal): Promise<CertificateReply> =>
              replyFromWire(
                await issuer.handle(
                  identity.id,
                  {
                    zone: req.zone,
                    publicKeyPem: req.publicKeyPem,
                    hosts: req.hosts,
                    roles: req.roles ?? [],
                    joinToken: req.joinToken ?? '',
                    wrapPublicKey: req.wrapPublicKey ?? new Uint8Array(),
                    p2pPort: req.p2pPort ?? 0,
                  },
                  signal,
                  { local: true },
                ),
              )

      const service =
        local === undefined
          ? undefined
          : createAdmissionService({
              // The group exists once the metadata module started: reached through it on each call.
              group: {
                propose: (command, opts) => local.group.propose(command, opts),
                readBarrier: (opts) => local.group.readBarrier(opts),
              },
              state: () => local.cluster,
            })

      /** The caller as the command records it (what src/auth's commandIdentity writes). */
      const actorOf = (p: Principal) => ({
        user: p.user,
        groups: [...p.groups],
        project: p.project ?? '',
        authVia: authViaOf(p),
        authNode: identity.id,
      })
      const routes =
        service === undefined
          ? undefined
          : admissionRoutes({
              nodes: (filter, signal) => service.nodes(filter, signal),
              approve: (caller, id, roles, signal) => service.approve(actorOf(caller), id, roles, signal),
              revoke: (caller, id, reason, signal) => service.revoke(actorOf(caller), id, reason, signal),
              createToken: (caller, opts, signal) => service.createToken(actorOf(caller), opts, signal),
              tokens: (signal) => service.tokens(signal),
              deleteToken: (caller, id, signal) => service.deleteToken(actorOf(caller), id, signal),
            })

      return {
        api: { issueLocal, service },
        routes,
        service: {
          async start() {
            unhandle = await handleRequests(
              p2p.host(),
              JOIN_PROTOCOL,
              async (from, body, signal) => {
                const req = pb.CertificateRequest.decode(body)
                if (issuer !== undefined) {
                  const reply = await issuer.handle(
                    from,
                    {
                      zone: req.zone,
                      publicKeyPem: req.publicKeyPem,
                      hosts: req.hosts,
                      roles: req.roles,
                      joinToken: req.joinToken,
                      wrapPublicKey: req.wrapPublicKey,
                      p2pPort: req.p2pPort,
                    },
                    signal,
                  )
                  return pb.CertificateReply.encode(reply).finish()
                }
                const metadata = cluster
                  .metadataTargets()
                  .map((t) => ({ id: t.id, addrs: addrsOf(t.id) }))
                  .filter((t) => t.addrs.length > 0)
                return pb.CertificateReply.encode({
                  status: pb.CertificateReply.Status.REDIRECT,
                  metadata,
                  crlPem: p2p.trust().crl()?.pem ?? '',
                }).finish()
              },
              { timeoutMs: JOIN_HANDLER_TIMEOUT_MS, logger: logger.child({ area: 'admission' }) },
            )
          },
          async stop() {
            await unhandle?.()
          },
        },
      }
    },
  }
}
