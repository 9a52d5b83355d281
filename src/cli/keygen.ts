// `hopsd keygen > swarm.key`: prints a new swarm key (the cluster's private-network key; see
// src/node/p2p/swarm-key.ts). Give the same file to every node with --swarm-key FILE or HOPSD_SWARM_KEY.
import { keygenCommand } from '../node/p2p/index.js'
import { EXIT_OK, type CliIo } from './output.js'

export function keygenHelp(): string {
  return 'Usage: hopsd keygen > swarm.key\n  prints a new swarm key; every node of a cluster needs the same one (--swarm-key FILE)'
}

export function runKeygen(io: CliIo): number {
  keygenCommand({ write: (text: string) => io.out(text.trimEnd()) })
  return EXIT_OK
}
