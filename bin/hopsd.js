#!/usr/bin/env node
// The npm bin entry of `hopsd` (development installs; hosts run the single binary dist/hopsd).
// Runs src/cli/main.ts through tsx on Node >= 22; started by an older Node (the host's), it re-runs
// itself under the Node 22 that the `node` package pins in node_modules.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const self = fileURLToPath(import.meta.url)
const root = join(dirname(self), '..')

if (Number(process.versions.node.split('.')[0]) >= 22) {
  const { register } = await import('tsx/esm/api')
  register()
  await import('../src/cli/main.ts')
} else {
  const node = join(root, 'node_modules', 'node', 'bin', 'node')
  if (!existsSync(node)) {
    process.stderr.write(
      `hopsd: needs Node 22 (this is ${process.version}) and found none at ${node}; run npm ci\n`,
    )
    process.exit(2)
  }
  // Own process group: a terminal's Ctrl-C reaches the child once (forwarded), not twice.
  const child = spawn(node, [self, ...process.argv.slice(2)], { stdio: 'inherit', detached: true })
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal))
  child.on('exit', (code, signal) => {
    if (signal !== null) process.kill(process.pid, signal)
    else process.exit(code ?? 1)
  })
}
