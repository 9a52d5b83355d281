/**
 * The `tls` module (every node): the node's certificate from the cluster CA, kept in
 * `<data-dir>/tls/{node.key,node.crt,ca.crt}`.
 *
 * On start it loads the persisted certificate when it is valid for this node (signed by `ca.crt`, names
 * this node id, matches `node.key`, not expired). Otherwise it keeps (or creates) the node key and, in the
 * background — start never waits for other nodes — asks the cluster for a certificate: from the local
 * replica when this node holds the metadata and the CA exists, else over `/hopsd/join/1.0.0` from each
 * live metadata node in turn (own zone first), retrying with capped backoff until the CA exists. The
 * answer is verified (signed by the CA it came with, names this node, matches the key) and persisted
 * atomically before it is announced. A persisted certificate that expires within
 * {@link RENEW_BEFORE_MS} or lacks one of the node's current hosts is replaced the same way, while the
 * old one keeps being served.
 *
 * With `--tls` the HTTP API serves the current certificate; until the cluster's arrives (a fresh node),
 * that is a temporary self-signed one from a throwaway CA, never persisted. The daemon swaps
 * certificates at runtime through {@link NodeTls.onCertificate}.
 */
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto'
import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs'
import { hostname, networkInterfaces } from 'node:os'
import { setTimeout as delay } from 'node:timers/promises'
import { dirname, join } from 'node:path'
import { hopsd } from '../../proto/cluster.js'
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
import { PROTOCOLS } from './metadata-module.js'

import pb = hopsd.cluster

export const TLS_DIR = 'tls'
export const TLS_FILES = { key: 'node.key', cert: 'node.crt', ca: 'ca.crt' } as const
/** A certificate closer than this to its end is renewed (node certificates last 365 days). */
export const RENEW_BEFORE_MS = 30 * 86_400_000
/** Retries of the certificate request: quick while the cluster forms, then every 10 s at most. */
export const REQUEST_BACKOFF: BackoffOptions = { baseMs: 250, maxMs: 10_000 }
/** Deadline of one join request to one metadata node. */
const JOIN_REQUEST_TIMEOUT_MS = 5_000

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
  report(): TlsReport
}

/** A certificate answer from the cluster (the join reply, or the local replica's CA). */
export interface CertificateReply {
  readonly clusterId: string
  readonly certificatePem: string
  readonly caCertificatePem: string
}

/** One place to ask for a certificate; throws when it cannot answer (yet). */
export type CertificateSource = (
  req: { zone: string; publicKeyPem: string; hosts: readonly string[] },
  signal: AbortSignal,
) => Promise<CertificateReply>

export function tlsModule(): NodeModule<'tls'> {
  return {
    name: 'tls',
    create(components) {
      const { config, identity } = components
      const logger = components.logger
      const p2p = requireService(components, 'p2p')
      const cluster = requireService(components, 'cluster')
      const local = components.services.metadata
      const store = createCertificateStore(join(config.dataDir, TLS_DIR))
      const hosts = certificateHosts(config.http, config.p2p)

      let material: TlsMaterial | undefined
      let clusterCa: string | undefined
      const listeners: ((m: TlsMaterial) => void)[] = []
      const abort = new AbortController()
      let background: Promise<void> | undefined

      /** Where the request goes: the local replica first when it has the CA, then the metadata nodes. */
      const sources = (): { name: string; source: CertificateSource }[] => {
        const out: { name: string; source: CertificateSource }[] = []
        const info = local?.cluster.info()
        if (info !== undefined) {
          out.push({
            name: 'local replica',
            source: async (req) => ({
              clusterId: info.clusterId,
              caCertificatePem: info.caCertPem,
              certificatePem: await issueNodeCertificate(
                { clusterId: info.clusterId, certPem: info.caCertPem, keyPem: info.caKeyPem },
                { nodeId: identity.id, ...req },
              ),
            }),
          })
        }
        for (const target of cluster.metadataTargets()) {
          out.push({
            name: target.id,
            source: async (req, signal) => {
              const body = pb.CertificateRequest.encode({ ...req, hosts: [...req.hosts] }).finish()
              const reply = pb.CertificateReply.decode(
                await request(p2p.host(), target.id, PROTOCOLS.join, body, {
                  signal,
                  timeoutMs: JOIN_REQUEST_TIMEOUT_MS,
                }),
              )
              return reply
            },
          })
        }
        return out
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
            let key: NodeKeyMaterial
            let renew: string | undefined
            if (loaded.material !== undefined) {
              material = loaded.material
              clusterCa = loaded.material.caPem
              key = loaded.key!
              const missing = hosts.filter((h) => !certificateCoversHost(loaded.material!.certPem, h))
              if (missing.length > 0) renew = `the certificate lacks host(s) ${missing.join(', ')}`
              else if (loaded.material.notAfter.getTime() - Date.now() < RENEW_BEFORE_MS)
                renew = 'it expires soon'
              logger.info({ notAfter: material.notAfter.toISOString(), renew }, 'loaded the node certificate')
            } else {
              if (loaded.problem !== undefined)
                logger.warn({ problem: loaded.problem }, 'persisted node certificate not usable')
              key = loaded.key ?? (await createNodeKey())
              if (loaded.key === undefined) store.saveKey(key)
              if (config.tls) material = await selfSignedCertificate(identity.id, config.zone, key, hosts)
              renew = 'the node has no cluster certificate yet'
            }
            if (renew === undefined) return
            background = obtainCertificate({
              request: { zone: config.zone, publicKeyPem: key.publicKeyPem, hosts },
              nodeId: identity.id,
              keyPem: key.keyPem,
              sources,
              signal: abort.signal,
              logger,
            })
              .then((got) => {
                store.saveCertificate(got)
                material = got
                clusterCa = got.caPem
                logger.info(
                  { notAfter: got.notAfter.toISOString(), why: renew },
                  'node certificate issued by the cluster CA',
                )
                for (const listener of [...listeners]) listener(got)
              })
              .catch((err: unknown) => {
                if (!abort.signal.aborted) logger.error({ err }, 'requesting the node certificate failed')
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

/**
 * Asks `sources()` in turn until one answers with a certificate valid for this node and key; retries
 * the whole list with capped backoff (the CA may not exist yet, metadata nodes may not be known yet).
 * Resolves with the verified material; rejects only when `signal` aborts.
 */
export async function obtainCertificate(init: {
  request: { zone: string; publicKeyPem: string; hosts: readonly string[] }
  nodeId: string
  keyPem: string
  sources: () => readonly { name: string; source: CertificateSource }[]
  signal: AbortSignal
  logger?: Logger
  backoff?: BackoffOptions
  /** Upper bound on rounds (tests); unbounded by default: the node needs its certificate. */
  roundsMax?: number
}): Promise<TlsMaterial> {
  const backoff = init.backoff ?? REQUEST_BACKOFF
  for (let round = 1; ; round++) {
    init.signal.throwIfAborted()
    const failures: string[] = []
    for (const { name, source } of init.sources()) {
      try {
        const reply = await source(init.request, init.signal)
        return await checkReply(reply, init.nodeId, init.keyPem)
      } catch (err) {
        init.signal.throwIfAborted()
        const e = err as { code?: string; remoteCode?: string; message?: string }
        failures.push(`${name}: ${e.remoteCode || e.code || 'ERROR'} ${e.message ?? ''}`.trim())
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
      writeAtomic(path(TLS_FILES.key), key.keyPem, 0o600)
    },
    saveCertificate(material) {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      writeAtomic(path(TLS_FILES.key), material.keyPem, 0o600)
      writeAtomic(path(TLS_FILES.ca), material.caPem, 0o644)
      writeAtomic(path(TLS_FILES.cert), material.certPem, 0o644)
    },
  }
}

/** Write to a temporary file beside `file`, fsync, rename over: readers see the old or the new whole. */
function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`
  const fd = openSync(tmp, 'w', mode)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  chmodSync(tmp, mode) // the umask may have narrowed or the file existed with another mode
  renameSync(tmp, file)
  const dirFd = openSync(dirname(file), 'r')
  try {
    fsyncSync(dirFd) // the rename itself survives a crash
  } finally {
    closeSync(dirFd)
  }
}
