/**
 * The node's identity: an Ed25519 key pair created on first start and kept in the data directory, so
 * the node id survives restarts. The id is the libp2p peer id of the key — the same string every route,
 * log line and peer uses — and the libp2p host (src/node/p2p) reuses the same private key.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { errnoText } from './config.js'
import { StartupError } from './errors.js'

export const KEY_FILE = 'node.key'

export interface NodeIdentity {
  readonly privateKey: PrivateKey
  readonly peerId: PeerId
  /** `peerId.toString()`: the node id everywhere. */
  readonly id: string
}

/**
 * Reads `<dataDir>/node.key` (protobuf, as libp2p encodes private keys) or creates it (mode 0600,
 * written to a temporary name, fsynced and renamed, so a crash never leaves a half-written key).
 * Call it with the data directory locked.
 */
export async function loadOrCreateIdentity(dataDir: string): Promise<NodeIdentity> {
  const path = join(dataDir, KEY_FILE)
  let bytes: Uint8Array | undefined
  try {
    bytes = readFileSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new StartupError('BAD_IDENTITY', `cannot read the node key ${path} (${errnoText(err)})`, {
        cause: err,
      })
    }
  }
  let privateKey: PrivateKey
  if (bytes === undefined) {
    privateKey = await generateKeyPair('Ed25519')
    writeKey(path, privateKeyToProtobuf(privateKey))
  } else {
    try {
      privateKey = privateKeyFromProtobuf(bytes)
    } catch (err) {
      throw new StartupError('BAD_IDENTITY', `the node key ${path} is corrupt (${(err as Error).message})`, {
        cause: err,
      })
    }
  }
  const peerId = peerIdFromPrivateKey(privateKey)
  return { privateKey, peerId, id: peerId.toString() }
}

function writeKey(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeSync(fd, bytes)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
}
