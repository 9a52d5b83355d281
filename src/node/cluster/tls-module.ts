/**
 * The `tls` module (every node): the node's certificate from the cluster CA, kept in
 * `<data-dir>/tls/{node.key,node.crt,ca.crt,crl.pem}`, and handed to the peer gate (src/node/admission)
 * and, with `--tls`, to the HTTPS server.
 *
 * On start it loads the persisted certificate when it is valid for this node (signed by `ca.crt`, names
 * this node id, matches `node.key`, not expired). Then, in the background — start never waits for other
 * nodes — and again every {@link checkIntervalMs}, it asks for a new certificate when it has none, when
 * the one it has ends within {@link renewBeforeMs} (a month for a year's certificate), when it lacks one
 * of the node's current hosts, or when this metadata node holds no copy of the CA key wrapped to it. It
 * asks its own replica first (a metadata node holding the CA key), then the metadata nodes of its view
 * (own zone first), then any connected peer (a node without a replica redirects to metadata nodes; a
 * node not yet admitted sees no gossip, so this is how it finds them). The request names the node's
 * roles, its join token (`--join-token`) when it has one, and its hosts; an answer is accepted only when
 * its certificate is signed by the CA it came with — the CA this node already trusts, once it has one —
 * names this node and matches its key; it is persisted atomically before it is announced. A node that
 * waits for an admin's approval, or is revoked, keeps asking (slowly) and logs why.
 *
 * With `--tls` the HTTP API serves the current certificate; until the cluster's arrives (a fresh node),
 * that is a temporary self-signed one from a throwaway CA, never persisted. The daemon swaps
 * certificates (and CRLs) at runtime through {@link NodeTls.onCertificate}.
 */
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { hostname, networkInterfaces } from 'node:os'
import { setTimeout as delay } from 'node:timers/promises'
import { join } from 'node:path'
import { hopsd } from '../../proto/cluster.js'
import { JOIN_PROTOCOL, resolveJoinToken } from '../admission/index.js'
import {
  CertificateError,
  createClusterCa,
  createNodeKey,
  issueNodeCertificate,
  verifyNodeCertificate,
  type NodeKeyMaterial,
} from '../ca/index.js'
import type { HostPort } from '../config.js'
import type { Logger } from '../logger.js'
import { requireService, type NodeModule } from '../module.js'
import { backoffDelayMs, request, type BackoffOptions } from '../p2p/index.js'
import { TLS_DIR, TLS_FILES } from './p2p-module.js'

import pb = hopsd.cluster
import { writeFileAtomic } from '../../lib/index.js'

export { TLS_DIR, TLS_FILES }
/** A certificate closer than this to its end is renewed (or a third of its life, when shorter). */
export const RENEW_BEFORE_MS = 30 * 86_400_000
/** Retries of the certificate request: quick while the cluster forms, then every 10 s at most. */
export const REQUEST_BACKOFF: BackoffOptions = { baseMs: 250, maxMs: 10_000 }
/** Deadline of one join request to one node (the issuer may dial the node back at each of its hosts). */
const JOIN_REQUEST_TIMEOUT_MS = 10_000

export type CertificateIssuer = 'cluster' | 'self-signed'

/** A key with its certificate, ready for `https.createServer` / `server.setSecureContext`. */
export interface TlsMaterial {
  readonly keyPem: string
  readonly certPem: string
  /** The CA that signed `certPem` (the cluster CA, or the throwaway one of a self-signed certificate). */
  readonly caPem: string
  readonly issuer: CertificateIssuer
  readonly notAfter: Date
}

/** What `/api/v1/node` reports under `tls`. */
export interface TlsReport {
  /** The HTTP API serves TLS (--tls). */
  readonly enabled: boolean
  /** Who issued the certificate the node holds now (null: none yet). */
  readonly issuer: CertificateIssuer | null
  readonly notAfter: string | null
}

export interface NodeTls {
  /** The certificate the node serves now: the cluster's, the temporary self-signed one, or none yet. */
  current(): TlsMaterial | undefined
  /**
   * Calls `listener` with every later certificate (the cluster's replacing a self-signed one, a
   * renewal), after it is persisted. Listeners run synchronously, in subscription order; they must not
   * throw or block. Returns the unsubscribe function.
   */
  onCertificate(listener: (material: TlsMaterial) => void): () => void
  /** The cluster CA's certificate, once known: what to trust when calling other nodes' HTTPS APIs. */
  clusterCaPem(): string | undefined
  /** The newest CRL the node knows (PEM), once the cluster revoked a node. */
  crlPem(): string | undefined
  /** Calls `listener` with every newer CRL (PEM). Same rules as onCertificate. */
  onCrl(listener: (crlPem: string) => void): () => void
  report(): TlsReport
}

/** What a node asks for (the p2p request, less what the stream says: the node id). */
export interface CertificateAsk {
  readonly zone: string
  readonly publicKeyPem: string
  readonly hosts: readonly string[]
  readonly roles?: readonly string[]
  readonly joinToken?: string
  readonly wrapPublicKey?: Uint8Array
  readonly p2pPort?: number
}

/** An answer (the join reply, or the local replica's). */
export interface CertificateReply {
  readonly clusterId: string
  readonly certificatePem: string
  readonly caCertificatePem: string
  /** Default 'issued'. */
  readonly status?: 'issued' | 'pending' | 'redirect' | 'hosts-refused'
  /** 'redirect': whom to ask instead. */
  readonly redirect?: readonly { id: string; addrs: readonly string[] }[]
  /** 'hosts-refused': the hosts that do not lead to this node. */
  readonly refusedHosts?: readonly string[]
  /** The newest CRL the answering node knows. */
  readonly crlPem?: string
}

/** One place to ask for a certificate; throws when it cannot answer (yet). */
export type CertificateSource = (req: CertificateAsk, signal: AbortSignal) => Promise<CertificateReply>

export interface NamedSource {
  readonly name: string
  readonly source: CertificateSource
}

export function tlsModule(): NodeModule<'tls'> {
  return {
    name: 'tls',
    create(components) {
      const { config, identity } = components
      const logger = components.logger
      const p2p = requireService(components, 'p2p')
      const cluster = requireService(components, 'cluster')
      const local = components.services.metadata
      const admission = components.services.admission
      const store = createCertificateStore(join(config.dataDir, TLS_DIR))
      const hosts = certificateHosts(config.http, config.p2p)
      const checkMs = config.gossipIntervalMs < 500 ? 1_000 : 60_000

      let material: TlsMaterial | undefined
      let clusterCa: string | undefined
      let crl: string | undefined
      const listeners: ((m: TlsMaterial) => void)[] = []
      const crlListeners: ((pem: string) => void)[] = []
      const abort = new AbortController()
      let background: Promise<void> | undefined

      const askPeer =
        (id: string): CertificateSource =>
        async (req, signal) => {
          const body = pb.CertificateRequest.encode({
            zone: req.zone,
            publicKeyPem: req.publicKeyPem,
            hosts: [...req.hosts],
            roles: [...(req.roles ?? [])],
            joinToken: req.joinToken ?? '',
            wrapPublicKey: req.wrapPublicKey ?? new Uint8Array(),
            p2pPort: req.p2pPort ?? 0,
          }).finish()
          const reply = pb.CertificateReply.decode(
            await request(p2p.host(), id, JOIN_PROTOCOL, body, {
              signal,
              timeoutMs: JOIN_REQUEST_TIMEOUT_MS,
            }),
          )
          return replyFromWire(reply)
        }

      /** Where the request goes: the local replica first, then metadata nodes, then any peer. */
      const sources = (): NamedSource[] => {
        const out: NamedSource[] = []
        if (admission?.issueLocal !== undefined) {
          const issueLocal = admission.issueLocal
          out.push({ name: 'local replica', source: (req, signal) => issueLocal(req, signal) })
        }
        const asked = new Set<string>()
        for (const target of cluster.metadataTargets()) {
          asked.add(target.id)
          out.push({ name: target.id, source: askPeer(target.id) })
        }
        for (const peer of p2p.host().peers())
          if (!asked.has(peer)) out.push({ name: peer, source: askPeer(peer) })
        return out
      }
      const follow = (targets: readonly { id: string; addrs: readonly string[] }[]): NamedSource[] =>
        targets
          .filter((t) => t.id !== identity.id)
          .map((t) => ({
            name: t.id,
            source: async (req, signal) => {
              await p2p.host().addPeerAddresses(t.id, t.addrs)
              return askPeer(t.id)(req, signal)
            },
          }))

      const adopt = (got: TlsMaterial, crlPem: string | undefined, why: string): void => {
        store.saveCertificate(got)
        material = got
        clusterCa = got.caPem
        const trust = p2p.trust()
        trust.setCertificate(got.certPem) // first: the exchanges setCa starts show it
        trust.setCa(got.caPem)
        if (crlPem) void trust.offerCrl(crlPem)
        logger.info(
          { notAfter: got.notAfter.toISOString(), why },
          'node certificate issued by the cluster CA',
        )
        for (const listener of [...listeners]) listener(got)
      }

      /** Why the node should ask for a certificate now (undefined: it need not). */
      const renewalReason = (nowMs: number): string | undefined => {
        if (material === undefined || material.issuer !== 'cluster')
          return 'the node has no cluster certificate yet'
        const missing = hosts.filter((h) => !certificateCoversHost(material!.certPem, h))
        // Hosts the CA refused once are not asked for again (they do not lead to this node).
        const wanted = missing.filter((h) => !refusedHosts.has(h))
        if (wanted.length > 0) return `the certificate lacks host(s) ${wanted.join(', ')}`
        if (nowMs >= renewAtMs(material)) return 'it expires soon'
        if (local?.ca.needsCopy() === true && nowMs >= copyAskedUntilMs)
          return 'this metadata node holds no copy of the CA key wrapped to it'
        return undefined
      }
      const refusedHosts = new Set<string>()
      let copyAskedUntilMs = 0

      const keep = async (signal: AbortSignal): Promise<void> => {
        const joinToken = resolveJoinToken(config.joinToken)
        for (;;) {
          const why = renewalReason(Date.now())
          if (why !== undefined) {
            const key = (await store.load(identity.id)).key ?? (await createNodeKey())
            const got = await obtainCertificate({
              request: {
                zone: config.zone,
                publicKeyPem: key.publicKeyPem,
                hosts: hosts.filter((h) => !refusedHosts.has(h)),
                roles: config.roles,
                joinToken,
                wrapPublicKey: local?.ca.wrapPublicKey,
                p2pPort: p2p.host().listenAddress().port,
              },
              nodeId: identity.id,
              keyPem: key.keyPem,
              pinnedCa: () => clusterCa,
              sources,
              follow,
              signal,
              logger,
              onRefusedHosts: (refused) => refused.forEach((h) => refusedHosts.add(h)),
            })
            copyAskedUntilMs = Date.now() + 30_000
            adopt(got, got.crlPem, why)
          }
          await delay(checkMs, undefined, { signal })
        }
      }

      const api: NodeTls = {
        current: () => material,
        onCertificate(listener) {
          listeners.push(listener)
          return () => {
            const i = listeners.indexOf(listener)
            if (i >= 0) listeners.splice(i, 1)
          }
        },
        clusterCaPem: () => clusterCa,
        crlPem: () => crl,
        onCrl(listener) {
          crlListeners.push(listener)
          return () => {
            const i = crlListeners.indexOf(listener)
            if (i >= 0) crlListeners.splice(i, 1)
          }
        },
        report: () => ({
          enabled: config.tls,
          issuer: material?.issuer ?? null,
          notAfter: material?.notAfter.toISOString() ?? null,
        }),
      }

      return {
        api,
        service: {
          async start() {
            const loaded = await store.load(identity.id)
            if (loaded.material !== undefined) {
              material = loaded.material
              clusterCa = loaded.material.caPem
              logger.info(
                { notAfter: material.notAfter.toISOString(), renew: renewalReason(Date.now()) },
                'loaded the node certificate',
              )
            } else {
              if (loaded.problem !== undefined)
                logger.warn({ problem: loaded.problem }, 'persisted node certificate not usable')
              const key = loaded.key ?? (await createNodeKey())
              if (loaded.key === undefined) store.saveKey(key)
              if (config.tls) material = await selfSignedCertificate(identity.id, config.zone, key, hosts)
              // What the peer gate showed from the files is not this node's certificate after all.
              p2p.trust().setCertificate(undefined)
            }
            const trust = p2p.trust()
            crl = trust.crl()?.pem
            trust.onCrl((info) => {
              crl = info.pem
              store.saveCrl(info.pem)
              for (const listener of [...crlListeners]) listener(info.pem)
            })
            background = keep(abort.signal).catch((err: unknown) => {
              if (!abort.signal.aborted) logger.error({ err }, 'keeping the node certificate failed')
            })
          },
          async stop() {
            abort.abort()
            await background
          },
        },
      }
    },
  }
}

/** A join reply off the wire (or from the local issuer) as {@link CertificateReply}. */
export function replyFromWire(r: pb.ICertificateReply): CertificateReply {
  const S = pb.CertificateReply.Status
  return {
    clusterId: r.clusterId ?? '',
    certificatePem: r.certificatePem ?? '',
    caCertificatePem: r.caCertificatePem ?? '',
    status:
      r.status === S.PENDING
        ? 'pending'
        : r.status === S.REDIRECT
          ? 'redirect'
          : r.status === S.HOSTS_REFUSED
            ? 'hosts-refused'
            : 'issued',
    redirect: (r.metadata ?? []).map((m) => ({ id: m.id ?? '', addrs: m.addrs ?? [] })),
    refusedHosts: r.refusedHosts ?? [],
    crlPem: r.crlPem ?? '',
  }
}

/** When a certificate is renewed: {@link RENEW_BEFORE_MS} before its end, or a third of its life. */
export function renewAtMs(material: { certPem: string; notAfter: Date }): number {
  const cert = new X509Certificate(material.certPem)
  const lifeMs = cert.validToDate.getTime() - cert.validFromDate.getTime()
  return material.notAfter.getTime() - Math.min(RENEW_BEFORE_MS, lifeMs / 3)
}

/**
 * Asks `sources()` in turn until one answers with a certificate valid for this node and key; retries
 * the whole list with capped backoff (the CA may not exist yet, metadata nodes may not be known yet, an
 * admin may not have approved the node yet). A 'redirect' answer adds the nodes it names to the round
 * (through `follow`); a 'hosts-refused' one drops those hosts and asks the same source again; a
 * 'pending' one ends the round (the node waits for an admin). Resolves with the verified material (and
 * the CRL that came with it); rejects only when `signal` aborts, or after `roundsMax`.
 */
export async function obtainCertificate(init: {
  request: CertificateAsk
  nodeId: string
  keyPem: string
  sources: () => readonly NamedSource[]
  follow?: (targets: readonly { id: string; addrs: readonly string[] }[]) => readonly NamedSource[]
  /** The CA this node trusts already: an answer naming another CA is refused. */
  pinnedCa?: () => string | undefined
  onRefusedHosts?: (hosts: readonly string[]) => void
  signal: AbortSignal
  logger?: Logger
  backoff?: BackoffOptions
  /** Upper bound on rounds (tests); unbounded by default: the node needs its certificate. */
  roundsMax?: number
}): Promise<TlsMaterial & { crlPem?: string }> {
  const backoff = init.backoff ?? REQUEST_BACKOFF
  let request = init.request
  let lastSaid = ''
  const say = (level: 'info' | 'warn' | 'error', what: string, fields: object): void => {
    if (what === lastSaid) return // once per change, not once per retry
    lastSaid = what
    init.logger?.[level](fields, what)
  }
  for (let round = 1; ; round++) {
    init.signal.throwIfAborted()
    const failures: string[] = []
    const queue = [...init.sources()]
    const seen = new Set(queue.map((s) => s.name))
    let pending = false
    for (let i = 0; i < queue.length && !pending; i++) {
      const { name, source } = queue[i]!
      try {
        const reply = await source(request, init.signal)
        if (reply.status === 'pending') {
          pending = true
          say(
            'info',
            'waiting to be admitted: an admin approves this node (hopsd node approve ID), or give it a join token (--join-token)',
            { node: init.nodeId, asked: name },
          )
          failures.push(`${name}: pending approval`)
        } else if (reply.status === 'redirect') {
          for (const next of init.follow?.(reply.redirect ?? []) ?? [])
            if (!seen.has(next.name)) {
              seen.add(next.name)
              queue.push(next)
            }
          failures.push(`${name}: redirected`)
        } else if (reply.status === 'hosts-refused') {
          const refused = reply.refusedHosts ?? []
          say('warn', 'the CA refused host(s) that do not lead to this node; asking without them', {
            refused,
          })
          init.onRefusedHosts?.(refused)
          const kept = request.hosts.filter((h) => !refused.includes(h))
          if (kept.length === request.hosts.length) throw new CertificateError('hosts refused, none named')
          request = { ...request, hosts: kept }
          i-- // the same source, without them
        } else {
          const pinned = init.pinnedCa?.()
          if (pinned !== undefined && pinned !== reply.caCertificatePem)
            throw new CertificateError('the answer names another CA than the cluster CA this node trusts')
          return { ...(await checkReply(reply, init.nodeId, init.keyPem)), crlPem: reply.crlPem }
        }
      } catch (err) {
        init.signal.throwIfAborted()
        const e = err as { code?: string; remoteCode?: string; message?: string }
        const code = e.remoteCode || e.code || 'ERROR'
        if (code === 'NODE_REVOKED' || code.startsWith('JOIN_TOKEN_'))
          say('error', 'the cluster refuses this node', { code, reason: e.message })
        failures.push(`${name}: ${code} ${e.message ?? ''}`.trim())
      }
    }
    if (init.roundsMax !== undefined && round >= init.roundsMax) {
      throw new CertificateError(
        `no node certificate after ${round} round(s): ${failures.join('; ') || 'no metadata node known'}`,
      )
    }
    init.logger?.debug({ round, failures }, 'node certificate not issued yet; retrying')
    await delay(backoffDelayMs(round, backoff), undefined, { signal: init.signal }).catch((err: unknown) => {
      init.signal.throwIfAborted() // the caller's reason, not timers' AbortError
      throw err
    })
  }
}

/** A reply is accepted only when its certificate is signed by its CA, names this node and fits the key. */
async function checkReply(reply: CertificateReply, nodeId: string, keyPem: string): Promise<TlsMaterial> {
  const info = await verifyNodeCertificate(reply.caCertificatePem, reply.certificatePem, {
    expectedNodeId: nodeId,
  })
  if (!certificateMatchesKey(reply.certificatePem, keyPem)) {
    throw new CertificateError('the issued certificate is not for this node key')
  }
  return {
    keyPem,
    certPem: reply.certificatePem,
    caPem: reply.caCertificatePem,
    issuer: 'cluster',
    notAfter: info.notAfter,
  }
}

/** A temporary certificate from a throwaway CA: lets `--tls` serve before the cluster CA answers. */
export async function selfSignedCertificate(
  nodeId: string,
  zone: string,
  key: NodeKeyMaterial,
  hosts: readonly string[],
): Promise<TlsMaterial> {
  const ca = await createClusterCa(`self-signed ${nodeId}`)
  const certPem = await issueNodeCertificate(ca, {
    nodeId,
    zone,
    publicKeyPem: key.publicKeyPem,
    hosts,
    validityDays: 30,
  })
  return {
    keyPem: key.keyPem,
    certPem,
    caPem: ca.certPem,
    issuer: 'self-signed',
    notAfter: new X509Certificate(certPem).validToDate,
  }
}

// ---------------------------------------------------------------------------------------------- hosts

/**
 * The names a client may use to reach the node: its HTTP and p2p hosts; a wildcard bind adds loopback,
 * the host name and every interface address; a loopback bind adds 127.0.0.1 and localhost.
 */
export function certificateHosts(...binds: HostPort[]): string[] {
  const hosts = new Set<string>()
  for (const { host } of binds) {
    if (host === '0.0.0.0' || host === '::') {
      for (const h of ['127.0.0.1', 'localhost', hostname()]) hosts.add(h)
      for (const addrs of Object.values(networkInterfaces())) {
        for (const a of addrs ?? [])
          if (a.family === 'IPv4' || host === '::') hosts.add(a.address.replace(/%.*$/, ''))
      }
      if (host === '::') hosts.add('::1')
    } else {
      hosts.add(host)
      if (isLoopback(host)) {
        hosts.add('127.0.0.1')
        hosts.add('localhost')
      }
    }
  }
  return [...hosts].filter((h) => h !== '')
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.')
}

/** Whether the certificate's subject alternative names include `host` (as IP or DNS name). */
export function certificateCoversHost(certPem: string, host: string): boolean {
  const cert = new X509Certificate(certPem)
  return isIpLike(host)
    ? cert.checkIP(host) !== undefined
    : cert.checkHost(host, { wildcards: false }) !== undefined
}

function isIpLike(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':')
}

export function certificateMatchesKey(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem))
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------------------------- files

export interface LoadedCertificate {
  /** The persisted key, when `node.key` holds a usable one (kept even when the certificate is not). */
  readonly key?: NodeKeyMaterial
  /** Key, certificate and CA, when all three are there and valid for this node now. */
  readonly material?: TlsMaterial
  /** Why the persisted files were not usable (undefined: nothing persisted, or all fine). */
  readonly problem?: string
}

export interface CertificateStore {
  readonly dir: string
  load(nodeId: string, now?: Date): Promise<LoadedCertificate>
  /** Writes `node.key` (mode 0600) atomically. */
  saveKey(key: NodeKeyMaterial): void
  /** Writes `ca.crt`, `node.crt` and `node.key` atomically, each by rename; load checks they agree. */
  saveCertificate(material: TlsMaterial): void
  /** Writes `crl.pem` (the newest CRL the node knows) atomically. */
  saveCrl(crlPem: string): void
}

export function createCertificateStore(dir: string): CertificateStore {
  const path = (name: string) => join(dir, name)
  const read = (name: string): string | undefined => {
    try {
      return readFileSync(path(name), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }
  return {
    dir,
    async load(nodeId, now = new Date()) {
      const keyPem = read(TLS_FILES.key)
      const certPem = read(TLS_FILES.cert)
      const caPem = read(TLS_FILES.ca)
      let key: NodeKeyMaterial | undefined
      if (keyPem !== undefined) {
        try {
          const publicKeyPem = createPublicKey(createPrivateKey(keyPem))
            .export({ type: 'spki', format: 'pem' })
            .toString()
          key = { keyPem, publicKeyPem }
        } catch (err) {
          return { problem: `${TLS_FILES.key} is not a private key (${(err as Error).message})` }
        }
      }
      if (key === undefined || certPem === undefined || caPem === undefined) {
        // Only a key (a request was under way) is a normal state; a certificate without its pair is not.
        if (certPem === undefined && caPem === undefined) return { key }
        const missing = Object.values(TLS_FILES).filter((f) => read(f) === undefined)
        return { key, problem: `missing ${missing.join(', ')}` }
      }
      try {
        const info = await verifyNodeCertificate(caPem, certPem, { expectedNodeId: nodeId, now })
        if (!certificateMatchesKey(certPem, key.keyPem))
          throw new CertificateError(`${TLS_FILES.cert} is not for ${TLS_FILES.key}`)
        return {
          key,
          material: { keyPem: key.keyPem, certPem, caPem, issuer: 'cluster', notAfter: info.notAfter },
        }
      } catch (err) {
        return { key, problem: (err as Error).message }
      }
    },
    saveKey(key) {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      writeFileAtomic(path(TLS_FILES.key), key.keyPem, 0o600)
    },
    saveCertificate(material) {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      writeFileAtomic(path(TLS_FILES.key), material.keyPem, 0o600)
      writeFileAtomic(path(TLS_FILES.ca), material.caPem, 0o644)
      writeFileAtomic(path(TLS_FILES.cert), material.certPem, 0o644)
    },
    saveCrl(crlPem) {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      writeFileAtomic(path(TLS_FILES.crl), crlPem, 0o644)
    },
  }
}
