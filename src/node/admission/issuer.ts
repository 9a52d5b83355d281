/**
 * The admission desk of a metadata node: answers `/hopsd/join/1.0.0` — "admit me, certify me".
 *
 * For a request from peer P (Noise authenticated P; the request never names P itself):
 *  1. P revoked → NODE_REVOKED. P not admitted → with a join token, the cluster admits P by it (apply
 *     checks the token: unknown, used or expired tokens are refused); under simple auth the cluster
 *     admits P automatically; else P is recorded as pending and told so (PENDING) until an admin
 *     approves it.
 *  2. Every host P wants in its certificate must lead to P (./hosts.ts); otherwise HOSTS_REFUSED.
 *  3. A metadata node sends its wrapping key: the CA key is wrapped to it (WrapCaKey) unless the state
 *     holds a copy for that key already.
 *  4. The certificate's serial is recorded (RecordCertificate, refused for a revoked node: a revocation
 *     and an issue race in log order), then the certificate is signed and returned with the CA's
 *     certificate and the newest CRL.
 * A metadata node that holds no copy of the CA key (yet) redirects P to metadata nodes that do.
 * Every decision reads the state after a read barrier, so it sees every admission and revocation
 * committed before the request.
 */
import { X509Certificate } from 'node:crypto'
import { hopsd as clusterProto } from '../../proto/cluster.js'
import { hopsd as metaProto } from '../../proto/meta.js'
import { CommandRejected } from '../../meta/index.js'
import { issueNodeCertificate, newSerial, type ClusterCaMaterial } from '../ca/index.js'
import { ROLES } from '../config.js'
import type { P2PLogger } from '../p2p/index.js'
import { AdmissionError } from './errors.js'
import { checkHosts } from './hosts.js'
import { parseJoinToken } from './join-token.js'
import type { CaKeyring } from './keyring.js'
import type { ClusterTable } from './state.js'

import pb = clusterProto.cluster

/** A command's operation, without the fields the proposer stamps (time, user). */
export type CommandBody = Omit<metaProto.meta.ICommand, 'nowMs' | 'user' | 'groups' | 'clientName'>

/** Node certificates last a year; nodes renew them a month before they end (src/node/cluster/tls-module.ts). */
export const NODE_CERT_VALIDITY_MS = 365 * 86_400_000

export interface IssuerInit {
  readonly selfId: string
  readonly state: () => ClusterTable
  readonly keyring: CaKeyring
  /** Proposes a command as the cluster itself (the superuser) and answers apply's result. */
  readonly propose: (cmd: CommandBody, signal: AbortSignal) => Promise<unknown>
  readonly readBarrier: (signal: AbortSignal) => Promise<void>
  /**
   * Whether a node that asks is admitted without token or approval (simple auth: dev and tests);
   * undefined while the cluster has not settled its auth mode yet (the node is told to retry).
   */
  readonly autoAdmit: () => boolean | undefined
  /** Dials `peer` at ip:port with a fresh connection; resolves once Noise proved it is `peer`. */
  readonly dialBack: (peer: string, ip: string, port: number, signal: AbortSignal) => Promise<void>
  readonly resolve: (name: string) => Promise<string[]>
  /** Metadata nodes that can issue (they hold a copy of the CA key), with their p2p addresses. */
  readonly issuers: () => { id: string; addrs: string[] }[]
  readonly logger: P2PLogger
  /** How long certificates last (the cluster setting nodeCertValidityS); a year by default. */
  readonly validityMs?: () => number
  readonly now?: () => number
}

export interface JoinRequest {
  readonly zone: string
  readonly publicKeyPem: string
  readonly hosts: readonly string[]
  readonly roles: readonly string[]
  readonly joinToken: string
  readonly wrapPublicKey: Uint8Array
  readonly p2pPort: number
}

export interface Issuer {
  /**
   * Answers a request of `from`. `local`: this node asking itself (its own hosts are not dialed back).
   * Throws with a stable `code` (NODE_REVOKED, JOIN_TOKEN_*, CA_KEY_UNAVAILABLE, UNAVAILABLE, ...).
   */
  handle(
    from: string,
    req: JoinRequest,
    signal: AbortSignal,
    opts?: { local?: boolean },
  ): Promise<pb.ICertificateReply>
}

export function createIssuer(init: IssuerInit): Issuer {
  const now = init.now ?? Date.now
  const validity = init.validityMs ?? (() => NODE_CERT_VALIDITY_MS)
  const logger = init.logger

  const propose = async (cmd: CommandBody, signal: AbortSignal): Promise<unknown> => {
    const result = (await init.propose(cmd, signal)) as
      { ok: true; value: unknown } | { ok: false; code: string; message: string }
    if (!result.ok) throw new CommandRejected(result.code, result.message)
    return result.value
  }

  return {
    async handle(from, req, signal, opts = {}) {
      const info = init.state().info()
      if (info === undefined)
        throw Object.assign(new Error('the cluster CA does not exist yet'), { code: 'UNAVAILABLE' })
      const roles = req.roles.filter((r) => (ROLES as readonly string[]).includes(r))
      if (roles.length !== req.roles.length || roles.length === 0)
        throw new CommandRejected('INVALID_ARGUMENT', `roles must be some of ${ROLES.join(', ')}`)
      await init.readBarrier(signal)
      const state = init.state()
      if (state.isRevoked(from)) throw new AdmissionError('NODE_REVOKED', `node ${from} was revoked`)

      // 1. Admission.
      if (!state.isAdmitted(from)) {
        if (req.joinToken !== '') {
          try {
            const token = parseJoinToken(req.joinToken)
            await propose(
              {
                admitNode: {
                  nodeId: from,
                  roles,
                  zone: req.zone,
                  tokenId: token.id,
                  tokenSecretHash: token.secretHash,
                },
              },
              signal,
            )
            logger.info({ peer: from, roles, token: token.id }, 'admission: node admitted by a join token')
          } catch (err) {
            // A bad token does not lock the node out: it waits for an admin like a node without one.
            if (state.admission(from) === undefined)
              await propose(
                {
                  requestAdmission: {
                    nodeId: from,
                    roles,
                    zone: req.zone,
                    hosts: [...req.hosts].slice(0, 32),
                  },
                },
                signal,
              ).catch(() => undefined)
            throw err
          }
        } else if (init.autoAdmit() === undefined) {
          throw Object.assign(new Error('the cluster has not settled its auth mode yet'), {
            code: 'UNAVAILABLE',
          })
        } else if (init.autoAdmit() === true) {
          await propose({ admitNode: { nodeId: from, roles, zone: req.zone, automatic: true } }, signal)
          logger.info({ peer: from, roles }, 'admission: node admitted automatically (simple auth)')
        } else {
          const rec = state.admission(from)
          const same = rec !== undefined && rec.roles.join() === roles.join() && rec.zone === req.zone
          if (!same)
            await propose(
              {
                requestAdmission: { nodeId: from, roles, zone: req.zone, hosts: [...req.hosts].slice(0, 32) },
              },
              signal,
            )
          if (!same)
            logger.info({ peer: from, roles }, 'admission: node waits for approval (hopsd node approve)')
          return { status: pb.CertificateReply.Status.PENDING, clusterId: info.clusterId }
        }
      } else if (!roles.every((r) => state.admission(from)!.roles.includes(r)) && req.joinToken !== '') {
        // Admitted, and now runs a role it was not admitted for: a token may add it.
        const token = parseJoinToken(req.joinToken)
        await propose(
          {
            admitNode: {
              nodeId: from,
              roles,
              zone: req.zone,
              tokenId: token.id,
              tokenSecretHash: token.secretHash,
            },
          },
          signal,
        ).catch((err: unknown) =>
          logger.warn(
            { peer: from, err: (err as Error).message },
            'admission: join token for more roles refused',
          ),
        )
      }

      // 2. The hosts must lead to the requester.
      let hosts = [...req.hosts]
      if (!opts.local) {
        if (req.p2pPort < 1 || req.p2pPort > 65535)
          throw new CommandRejected('INVALID_ARGUMENT', 'the request names no p2p port to check its hosts at')
        const check = await checkHosts({
          hosts,
          dialBack: (ip) => init.dialBack(from, ip, req.p2pPort, signal),
          resolve: init.resolve,
        })
        if (check.refused.length > 0) {
          logger.warn(
            { peer: from, refused: check.refused, code: 'CERTIFICATE_HOST_REFUSED' },
            'admission: certificate hosts refused',
          )
          return {
            status: pb.CertificateReply.Status.HOSTS_REFUSED,
            clusterId: info.clusterId,
            refusedHosts: check.refused.map((r) => r.host),
          }
        }
        hosts = check.verified
      }

      // 3. The CA key, for a metadata node's own copy and to sign.
      const ca: ClusterCaMaterial | undefined = init.keyring.material()
      const wantsCopy =
        state.isAdmitted(from, 'metadata') &&
        req.wrapPublicKey.length === 32 &&
        !sameBytes(state.wrappedKey(from)?.recipientKey, req.wrapPublicKey)
      if (ca === undefined) {
        const others = init.issuers().filter((i) => i.id !== init.selfId && i.id !== from)
        if (opts.local || others.length === 0)
          throw new AdmissionError('CA_KEY_UNAVAILABLE', `${init.selfId} holds no copy of the CA key yet`)
        return {
          status: pb.CertificateReply.Status.REDIRECT,
          clusterId: info.clusterId,
          metadata: others.map((o) => ({ id: o.id, addrs: o.addrs })),
        }
      }
      if (wantsCopy) {
        await propose({ wrapCaKey: { wrapped: init.keyring.wrapFor(from, req.wrapPublicKey) } }, signal)
        logger.info({ peer: from }, 'admission: CA key wrapped to a metadata node')
      }

      // 4. Record, then sign.
      const serial = newSerial()
      const issuedMs = now()
      const validityMs = validity()
      const notAfterMs = Math.min(issuedMs + validityMs, caNotAfterMs(ca))
      await propose({ recordCertificate: { serial, nodeId: from, notAfterMs } }, signal)
      const certificatePem = await issueNodeCertificate(
        ca,
        { nodeId: from, zone: req.zone, publicKeyPem: req.publicKeyPem, hosts, serial, validityMs },
        new Date(issuedMs),
      )
      logger.info({ peer: from, zone: req.zone, hosts, serial }, 'admission: node certificate issued')
      return {
        status: pb.CertificateReply.Status.ISSUED,
        clusterId: info.clusterId,
        certificatePem,
        caCertificatePem: info.caCertPem,
        crlPem: init.state().crl()?.crlPem ?? '',
      }
    },
  }
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && Buffer.from(a).equals(Buffer.from(b))
}

function caNotAfterMs(ca: ClusterCaMaterial): number {
  return new X509Certificate(ca.certPem).validToDate.getTime()
}
