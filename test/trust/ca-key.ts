// The cluster CA's private key as the trust tests look for it: recovered the only way the design allows
// (a metadata node's copy, unwrapped with that node's wrapping key from its data dir), and searched for
// in every byte a node left on disk — each file as it lies, and the Raft log entries and snapshot as
// LevelDB gives them back (LevelDB compresses its tables, so a raw scan alone could miss a key).
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { openLevelStorage } from '../../src/consensus/index.js'
import { metaProto } from '../../src/meta/index.js'
import { hopsd as raftProto } from '../../src/proto/raft.js'
import { unwrapCaKey, wrappingKeyFromPem } from '../../src/node/ca/index.js'

const mpb = metaProto.meta

export interface RaftContents {
  /** Each log entry's data. */
  readonly entries: Uint8Array[]
  /** The snapshot's data (the envelope) and the state inside it, when there is one. */
  readonly snapshot: Uint8Array[]
}

/** A stopped node's Raft log and snapshot, as LevelDB and the snapshot file give them back. */
export async function raftContents(dataDir: string): Promise<RaftContents> {
  const storage = await openLevelStorage(join(dataDir, 'raft'))
  try {
    const st = await storage.load()
    const snapshot: Uint8Array[] = []
    if (st.snapshot !== null && st.snapshot.data.length > 0) {
      // The Raft group wraps the state machine's snapshot in an envelope with its client sessions.
      const state = raftProto.raft.SnapshotEnvelope.decode(st.snapshot.data).state
      snapshot.push(st.snapshot.data, state)
    }
    return { entries: st.entries.map((e) => e.data), snapshot }
  } finally {
    await storage.close()
  }
}

/**
 * The CA key, unwrapped from the copy the state holds for `nodeId` with the wrapping key in its data
 * dir (the copy is found in the log's InitCluster/WrapCaKey commands or in the snapshot's table).
 */
export function recoverCaKey(raft: RaftContents, nodeId: string, dataDir: string): string {
  let clusterId = ''
  let copy:
    | {
        nodeId: string
        recipientKey: Uint8Array
        ephemeralKey: Uint8Array
        iv: Uint8Array
        ciphertext: Uint8Array
      }
    | undefined
  const take = (w: metaProto.meta.IWrappedCaKey | null | undefined): void => {
    if (w?.nodeId === nodeId && w.ciphertext?.length)
      copy = {
        nodeId,
        recipientKey: w.recipientKey!,
        ephemeralKey: w.ephemeralKey!,
        iv: w.iv!,
        ciphertext: w.ciphertext,
      }
  }
  for (const state of raft.snapshot.slice(1)) {
    const snap = mpb.Snapshot.decode(state)
    for (const t of snap.tables) {
      ;(t.values ?? []).forEach((v, i) => {
        if (t.name === 'cluster.cakey' && t.keys?.[i] === nodeId) take(mpb.WrappedCaKey.decode(v))
        if (t.name === 'cluster') clusterId = mpb.ClusterInfo.decode(v).clusterId
      })
    }
  }
  for (const data of raft.entries) {
    let cmd: metaProto.meta.Command
    try {
      cmd = mpb.Command.decode(data)
    } catch {
      continue // not a metadata command (a membership change, an empty entry)
    }
    if (cmd.initCluster) {
      clusterId = cmd.initCluster.clusterId ?? ''
      take(cmd.initCluster.wrappedKey)
    }
    if (cmd.wrapCaKey) take(cmd.wrapCaKey.wrapped)
  }
  if (copy === undefined || clusterId === '')
    throw new Error(`no CA key copy for ${nodeId} in its Raft state`)
  const wrapping = wrappingKeyFromPem(readFileSync(join(dataDir, 'tls', 'wrap.key'), 'utf8'))
  const keyPem = unwrapCaKey(copy, wrapping, clusterId)
  // It is the CA's key: its public half is the CA certificate's.
  const caCert = new X509Certificate(readFileSync(join(dataDir, 'tls', 'ca.crt')))
  const pub = createPrivateKey(keyPem).export({ format: 'jwk' })
  const certPub = caCert.publicKey.export({ format: 'jwk' })
  if (pub.x !== certPub.x || pub.y !== certPub.y)
    throw new Error('the unwrapped key is not the CA certificate’s')
  return keyPem
}

/** Every form the key could be written in: PKCS#8 DER, the raw scalar, and their text encodings. */
export function keyNeedles(keyPem: string): { name: string; bytes: Buffer }[] {
  const der = createPrivateKey(keyPem).export({ format: 'der', type: 'pkcs8' })
  const scalar = Buffer.from(createPrivateKey(keyPem).export({ format: 'jwk' }).d!, 'base64url')
  const needles = [
    { name: 'PKCS#8 DER', bytes: der },
    { name: 'private scalar', bytes: scalar },
    { name: 'private scalar, hex', bytes: Buffer.from(scalar.toString('hex')) },
    { name: 'private scalar, base64url', bytes: Buffer.from(scalar.toString('base64url').slice(0, 40)) },
  ]
  // PEM text: each full 64-character line of the base64 body, and the base64 characters that encode
  // only the scalar's bytes where it sits in the DER (its neighbours change the characters at the ends).
  const b64 = der.toString('base64')
  for (let i = 0; i + 64 <= b64.length; i += 64)
    needles.push({ name: `PEM line ${i / 64}`, bytes: Buffer.from(b64.slice(i, i + 64)) })
  const at = der.indexOf(scalar)
  const scalarB64 = b64.slice(Math.ceil((at * 4) / 3) + 2, Math.floor(((at + 32) * 4) / 3) - 2)
  needles.push({ name: 'scalar within the PEM text', bytes: Buffer.from(scalarB64) })
  // The scalar as base64 on its own, at each of the three alignments a writer could put it at.
  for (const offset of [0, 1, 2]) {
    const padded = Buffer.concat([Buffer.alloc(offset), scalar]).toString('base64')
    needles.push({ name: `scalar as base64, offset ${offset}`, bytes: Buffer.from(padded.slice(4, 40)) })
  }
  return needles
}

/** Where any needle occurs: `<where>: <needle>` for each sighting (empty: the key is nowhere). */
export function findKey(
  needles: readonly { name: string; bytes: Buffer }[],
  haystacks: Iterable<[string, Uint8Array]>,
): string[] {
  const sightings: string[] = []
  for (const [where, hay] of haystacks) {
    const buf = Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength)
    for (const n of needles) if (buf.includes(n.bytes)) sightings.push(`${where}: ${n.name}`)
  }
  return sightings
}

/** Every file under `dir`, with its bytes as they lie on disk. */
export function* filesUnder(dir: string): Generator<[string, Uint8Array]> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    const st = statSync(path)
    if (st.isDirectory()) yield* filesUnder(path)
    else if (st.isFile()) yield [path, readFileSync(path)]
  }
}
