// The API key the CLI sends (as `Authorization: Bearer <key>`), looked up in this order:
//   1. `--key FILE`: a file holding the key;
//   2. `HOPSD_KEY`: the key itself (`hk.…`), or the path of a file holding it;
//   3. `~/.config/hopsd/credentials` (`$XDG_CONFIG_HOME/hopsd/credentials`): a file holding the key.
// A file holds the key alone (like `<data-dir>/admin.key`), or a line `key = hk.…`; `#` lines are
// comments. None found: no credential (fine under simple auth).
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { ConfigError } from '../node/index.js'

/** Where the key came from, for messages (never the key itself). */
export interface CliCredential {
  readonly key: string
  readonly from: string
}

export function credentialsFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env['XDG_CONFIG_HOME'] || join(homedir(), '.config')
  return join(base, 'hopsd', 'credentials')
}

export function loadCredential(
  keyFile: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): CliCredential | undefined {
  if (keyFile !== undefined) return { key: readKeyFile(keyFile, '--key', true)!, from: keyFile }
  const fromEnv = env['HOPSD_KEY']
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    const v = fromEnv.trim()
    if (v.startsWith('hk.')) return { key: v, from: 'HOPSD_KEY' }
    return { key: readKeyFile(v, 'HOPSD_KEY', true)!, from: v }
  }
  const file = credentialsFile(env)
  const key = readKeyFile(file, file, false)
  return key === undefined ? undefined : { key, from: file }
}

/** The key in `path`; undefined when the file is missing and not `required`. */
function readKeyFile(path: string, what: string, required: boolean): string | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new ConfigError(
      'BAD_CONFIG_VALUE',
      `${what}: cannot read the key file ${path} (${(err as Error).message})`,
    )
  }
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^key\s*[=:]\s*(\S+)$/.exec(line)
    return m ? m[1]! : line
  }
  throw new ConfigError('BAD_CONFIG_VALUE', `${what}: the key file ${path} holds no key`)
}
