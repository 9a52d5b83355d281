/**
 * A metadata node's hold on the CA key: its own X25519 wrapping key (`<data-dir>/tls/wrap.key`, mode
 * 0600, made on first start, never replicated) and, once the state holds a copy of the CA key wrapped
 * to it, the unwrapped key — in memory only. Nothing here writes the CA key anywhere.
 */
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
import { dirname, join } from 'node:path'
import {
  createWrappingKey,
  unwrapCaKey,
  wrapCaKey,
  wrappingKeyFromPem,
  type ClusterCaMaterial,
  type WrappedKey,
  type WrappingKey,
} from '../ca/index.js'
import type { ClusterTable } from './state.js'

export const WRAP_KEY_FILE = 'wrap.key'

export interface CaKeyring {
  /** This node's wrapping public key (raw X25519): what it sends for its copy. */
  readonly wrapPublicKey: Uint8Array
  /** The CA with its key, when this node holds a usable copy (unwrapped on first use). */
  material(): ClusterCaMaterial | undefined
  /** Whether the state lacks a copy for this node's current wrapping key (ask for one). */
  needsCopy(): boolean
  /** Wraps the CA key (which this node must hold) to another node's wrapping key. */
  wrapFor(nodeId: string, recipientKey: Uint8Array): WrappedKey
  /** Wraps a freshly made CA key to this node (the bootstrap leader's InitCluster). */
  wrapOwn(ca: ClusterCaMaterial, nodeId: string): WrappedKey
}

/** Loads `<tlsDir>/wrap.key` or creates it (mode 0600, written atomically). */
export function loadOrCreateWrappingKey(tlsDir: string): WrappingKey {
  const path = join(tlsDir, WRAP_KEY_FILE)
  try {
    return wrappingKeyFromPem(readFileSync(path, 'utf8'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const key = createWrappingKey()
  mkdirSync(tlsDir, { recursive: true, mode: 0o700 })
  const tmp = `${path}.tmp-${process.pid}`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeSync(fd, key.privateKeyPem)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  chmodSync(tmp, 0o600)
  renameSync(tmp, path)
  const dirFd = openSync(dirname(path), 'r')
  try {
    fsyncSync(dirFd)
  } finally {
    closeSync(dirFd)
  }
  return key
}

export function createCaKeyring(init: {
  readonly selfId: string
  readonly wrapping: WrappingKey
  readonly state: () => ClusterTable
  readonly onError?: (err: unknown) => void
}): CaKeyring {
  const { selfId, wrapping } = init
  let cached: ClusterCaMaterial | undefined
  /** The copy `cached` came from: a new copy (or none) drops the cache. */
  let cachedFrom: Uint8Array | undefined
  return {
    wrapPublicKey: wrapping.publicKey,
    material() {
      const state = init.state()
      const info = state.info()
      const copy = state.wrappedKey(selfId)
      if (info === undefined || copy === undefined) {
        cached = undefined
        return undefined
      }
      if (cached !== undefined && cachedFrom === copy.ciphertext && cached.clusterId === info.clusterId)
        return cached
      try {
        const keyPem = unwrapCaKey(copy, wrapping, info.clusterId)
        cached = { clusterId: info.clusterId, certPem: info.caCertPem, keyPem }
        cachedFrom = copy.ciphertext
        return cached
      } catch (err) {
        init.onError?.(err)
        cached = undefined
        return undefined
      }
    },
    needsCopy() {
      const state = init.state()
      if (state.info() === undefined) return false
      const copy = state.wrappedKey(selfId)
      return copy === undefined || !Buffer.from(copy.recipientKey).equals(Buffer.from(wrapping.publicKey))
    },
    wrapFor(nodeId, recipientKey) {
      const ca = this.material()
      if (ca === undefined) throw new Error('keyring: wrapFor without the CA key')
      return wrapCaKey(ca.keyPem, { nodeId, clusterId: ca.clusterId, recipientKey })
    },
    wrapOwn(ca, nodeId) {
      return wrapCaKey(ca.keyPem, { nodeId, clusterId: ca.clusterId, recipientKey: wrapping.publicKey })
    },
  }
}
