/**
 * The cluster's swarm key: the standard libp2p private-network (pnet) key file, shared by every node of
 * one cluster. A node without it cannot complete even the first bytes of a connection (the XSalsa20
 * layer below Noise), so it is the cluster's admission ticket. Format (three lines):
 *
 * ```
 * /key/swarm/psk/1.0.0/
 * /base16/
 * <64 hex digits = 32 random bytes>
 * ```
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { P2PError } from './errors.js'

const HEADER = '/key/swarm/psk/1.0.0/'
const CODEC = '/base16/'
const KEY_HEX_LENGTH = 64

/** A fresh swarm key file's text (ends with a newline). */
export function generateSwarmKey(): string {
  return `${HEADER}\n${CODEC}\n${randomBytes(KEY_HEX_LENGTH / 2).toString('hex')}\n`
}

/**
 * Validates a swarm key file's contents and returns the bytes @libp2p/pnet expects (the canonical
 * 95-byte text, so CRLF line ends, trailing newlines or upper-case hex in the file don't matter).
 * Throws P2PError SWARM_KEY_INVALID naming what is wrong — never echoing the key itself.
 */
export function parseSwarmKey(contents: string | Uint8Array, source = 'swarm key'): Uint8Array {
  const text = typeof contents === 'string' ? contents : new TextDecoder().decode(contents)
  const lines = text
    .replace(/^\uFEFF/, '')
    .split(/\r\n|\r|\n/)
    .map((l) => l.trim())
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
  const bad = (why: string): never => {
    throw new P2PError(
      'SWARM_KEY_INVALID',
      `${source}: ${why} (expected '${HEADER}', '${CODEC}' and ${KEY_HEX_LENGTH} hex digits on three lines; make one with 'hopsd keygen')`,
    )
  }
  if (lines.length !== 3) bad(`${lines.length} non-empty line(s) instead of 3`)
  if (lines[0] !== HEADER) bad(`first line is not '${HEADER}'`)
  if (lines[1] !== CODEC) bad(`second line is not '${CODEC}' (only base16 keys are supported)`)
  const hex = lines[2]!
  if (!/^[0-9a-fA-F]*$/.test(hex)) bad('the key line has characters other than hex digits')
  if (hex.length !== KEY_HEX_LENGTH) bad(`the key has ${hex.length} hex digits instead of ${KEY_HEX_LENGTH}`)
  return new TextEncoder().encode(`${HEADER}\n${CODEC}\n${hex.toLowerCase()}`)
}

/** Reads and validates a swarm key file (`--swarm-key FILE`). */
export function loadSwarmKeyFile(path: string): Uint8Array {
  let bytes: Uint8Array
  try {
    bytes = readFileSync(path)
  } catch (err) {
    throw new P2PError(
      'SWARM_KEY_UNREADABLE',
      `cannot read the swarm key file ${path} (${(err as Error).message})`,
      {
        cause: err,
      },
    )
  }
  return parseSwarmKey(bytes, `swarm key file ${path}`)
}

/**
 * The swarm key from a setting that may hold either the key itself or a path to the key file
 * (HOPSD_SWARM_KEY): text that starts with the pnet header is the key, anything else is a path.
 */
export function resolveSwarmKey(value: string): Uint8Array {
  return value.trimStart().startsWith(HEADER)
    ? parseSwarmKey(value, 'HOPSD_SWARM_KEY')
    : loadSwarmKeyFile(value)
}
