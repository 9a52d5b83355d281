// Helpers of the p2p and membership tests: real libp2p hosts on loopback with fast timings.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterEach } from 'vitest'
import {
  createP2PHost,
  generateSwarmKey,
  P2P_TIMINGS_TEST,
  type P2PHost,
  type P2PHostInit,
} from '../../src/node/p2p/index.js'

export { waitFor, freePorts, freePort } from '../helpers/index.js'

/** One swarm key for the whole test file: every host made by {@link makeHost} shares it. */
export const SWARM_KEY = generateSwarmKey()

const hosts: P2PHost[] = []

/** Starts a host (fast test timings, listening on a free loopback port unless told) and stops it after the test. */
export async function makeHost(init: Partial<P2PHostInit> = {}): Promise<P2PHost> {
  const host = await createP2PHost({
    privateKey: init.privateKey ?? (await generateKeyPair('Ed25519')),
    listen: init.listen ?? '127.0.0.1:0',
    swarmKey: init.swarmKey ?? SWARM_KEY,
    join: init.join ?? [],
    timings: { ...P2P_TIMINGS_TEST, ...init.timings },
    ...(init.gossipsub ? { gossipsub: init.gossipsub } : {}),
    ...(init.logger ? { logger: init.logger } : {}),
  })
  hosts.push(host)
  return host
}

export function hostPort(host: P2PHost): string {
  const a = host.listenAddress()
  return `${a.host}:${a.port}`
}

/** Registers an afterEach that stops every host started by the test. */
export function stopHostsAfterEach(): void {
  afterEach(async () => {
    await Promise.all(hosts.splice(0).map((h) => h.stop()))
  })
}

/** mulberry32: a tiny seeded PRNG, so randomised tests replay exactly from the printed seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function seedFromEnv(): number {
  const env = process.env['SEED']
  return env !== undefined ? Number(env) : Math.floor(Math.random() * 2 ** 31)
}
