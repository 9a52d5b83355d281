// `hopsd project cert PROJECT`: a project-user certificate (CN=<project>__<user>) for a key made here.
// The private key is generated locally and never sent: only its public half goes to
// POST /api/v1/projects/:name/certs. Writes <out>/<project>__<user>.key (0600), .crt, .chain.pem and
// ca.crt, each atomically; running it again renews (a new key and certificate replace the old files).
// `--list` shows the certificates, `--revoke SERIAL` revokes one.
import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { ConfigError } from '../node/index.js'
import { apiJson, type ApiTarget } from './api-client.js'
import type { FlagValues } from './command-group.js'
import { EXIT_OK, type CliIo } from './output.js'
import { table } from './user.js'
import { writeFileAtomic } from '../lib/index.js'

/** Where certificates go without --out. */
export function defaultCertDir(): string {
  return join(homedir(), '.config', 'hopsd', 'certs')
}

interface CertView {
  serial: string
  user: string
  subject: string
  notBefore: string
  notAfter: string
  status: string
}

interface Issued extends CertView {
  certificatePem: string
  caCertificatePem: string
  chainPem: string
}

/** The lifetime asked for: --ttl SECONDS or --days N (none: the server's default). */
function ttlOf(values: FlagValues): number | undefined {
  const ttl = values['ttl']
  const days = values['days']
  if (ttl !== undefined && days !== undefined)
    throw new ConfigError('BAD_CONFIG_VALUE', 'give --ttl or --days, not both')
  const parse = (raw: unknown, flag: string) => {
    if (typeof raw !== 'string' || !/^\d{1,10}$/.test(raw) || Number(raw) < 1)
      throw new ConfigError('BAD_CONFIG_VALUE', `--${flag}: not a positive integer: ${String(raw)}`)
    return Number(raw)
  }
  if (ttl !== undefined) return parse(ttl, 'ttl')
  if (days !== undefined) return parse(days, 'days') * 86_400
  return undefined
}

export async function runProjectCert(
  rest: readonly string[],
  values: FlagValues,
  target: ApiTarget,
  io: CliIo,
): Promise<number> {
  if (rest.length !== 1)
    throw new ConfigError(
      'UNKNOWN_FLAG',
      'usage: hopsd project cert PROJECT [--out DIR] [--ttl SECONDS | --days N] [--list] [--revoke SERIAL]',
    )
  const project = rest[0]!
  const base = `/api/v1/projects/${encodeURIComponent(project)}/certs`
  const json = values['json'] === true
  if (values['list'] === true) {
    const { certificates } = await apiJson<{ certificates: CertView[] }>(target, 'GET', base)
    io.out(
      json
        ? JSON.stringify(certificates, null, 2)
        : table([
            ['SERIAL', 'SUBJECT', 'NOT AFTER', 'STATUS'],
            ...certificates.map((c) => [c.serial, c.subject, c.notAfter, c.status]),
          ]),
    )
    return EXIT_OK
  }
  const revoke = values['revoke']
  if (typeof revoke === 'string') {
    const r = await apiJson<CertView>(target, 'DELETE', `${base}/${encodeURIComponent(revoke)}`)
    io.out(json ? JSON.stringify(r, null, 2) : `revoked certificate ${r.serial} (${r.subject})`)
    return EXIT_OK
  }
  const ttlS = ttlOf(values)
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  const issued = await apiJson<Issued>(target, 'POST', base, {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    ...(ttlS !== undefined ? { ttlS } : {}),
  })
  const dir = typeof values['out'] === 'string' ? values['out'] : defaultCertDir()
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const stem = join(dir, issued.subject)
  const files = {
    key: `${stem}.key`,
    cert: `${stem}.crt`,
    chain: `${stem}.chain.pem`,
    ca: join(dir, 'ca.crt'),
  }
  // The key first: a certificate on disk is never without its key.
  writeFileAtomic(files.key, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600)
  writeFileAtomic(files.cert, issued.certificatePem, 0o644)
  writeFileAtomic(files.chain, issued.chainPem, 0o644)
  writeFileAtomic(files.ca, issued.caCertificatePem, 0o644)
  const { certificatePem: _c, caCertificatePem: _a, chainPem: _p, ...view } = issued
  io.out(
    json
      ? JSON.stringify({ ...view, files }, null, 2)
      : [
          `certificate ${issued.subject} serial ${issued.serial}, valid until ${issued.notAfter}`,
          `  key   ${files.key} (0600, made here; never sent)`,
          `  cert  ${files.cert}`,
          `  chain ${files.chain}`,
          `  ca    ${files.ca}`,
        ].join('\n'),
  )
  return EXIT_OK
}
