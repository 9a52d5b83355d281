// `hopsd keygen > swarm.key`: prints a fresh swarm key. The CLI (src/cli) wires the subcommand to this.
import { generateSwarmKey } from './swarm-key.js'

export interface KeygenOutput {
  write(text: string): unknown
}

/** Writes a new swarm key file's text to `stdout`; returns the exit code (0). */
export function keygenCommand(stdout: KeygenOutput): number {
  stdout.write(generateSwarmKey())
  return 0
}
