import { MetaError } from './errors.js'
import type { Table } from './table.js'

/** Cluster settings, changed only through a committed SetSetting command (superuser only). */
export interface ClusterSettings {
  /** Files of at most this many bytes are stored inline in the metadata. */
  readonly inlineThreshold: number
  /** The user that bypasses permission checks (HDFS's dfs.cluster.administrators / NN user). */
  readonly superuser: string
  /** Members of this group are superusers too (HDFS's dfs.permissions.superusergroup). */
  readonly supergroup: string
  /** A lease not renewed for this long may be taken over by another writer. */
  readonly leaseSoftLimitMs: number
  /** A lease not renewed for this long is void: the file counts as closed. */
  readonly leaseHardLimitMs: number
  /** How many change-log events are retained (oldest dropped first). */
  readonly changeLogMax: number
  readonly defaultReplication: number
  readonly defaultBlockSize: number
  /** The smallest block size a file may ask for (HDFS's dfs.namenode.fs-limits.min-block-size). */
  readonly minBlockSize: number
  /**
   * Inodes one PurgeDetached command frees at most: a recursive delete detaches its directory in one
   * small command, then the metadata leader purges the subtree in commands of this size, so that no
   * single apply holds the event loop (Raft heartbeats share it) for long.
   */
  readonly purgeBatchInodes: number
  /**
   * Inodes a content summary counts before it yields to the event loop (HDFS's
   * dfs.content-summary.limit): the walk runs outside apply, between commands.
   */
  readonly contentSummaryBatchInodes: number
  /**
   * Inodes one Delete, Rename or SetQuota command may walk inside apply (a recursive delete's
   * permission check of the subtree, the measurement of a subtree's usage for quotas). A bigger subtree
   * is done as a subtree operation (src/fs/subtree.ts): locked in one small command, walked outside
   * apply, committed in another.
   */
  readonly subtreeBatchInodes: number
  /**
   * A subtree lock is void this long after its lock command (command time): a node that died during a
   * subtree operation blocks the subtree at most this long.
   */
  readonly subtreeLockTimeoutMs: number
  /**
   * How callers are authenticated (src/auth): `secure` accepts only verified credentials (client
   * certificates, API keys, delegation tokens); `simple` also believes WebHDFS `user.name` (dev and
   * tests). Written at bootstrap from `--auth`; an admin may change it.
   */
  readonly auth: 'simple' | 'secure'
  /**
   * How long a node certificate the cluster CA issues is valid (src/node/admission); nodes renew theirs
   * when a third of that (at most 30 days) is left. Consul's leaf_cert_ttl.
   */
  readonly nodeCertValidityS: number
  /**
   * The longest lifetime of a project-user certificate (src/projects: `POST /api/v1/projects/:name/certs`);
   * short-lived by design (Hopsworks): a member renews, and every request checks the record anyway.
   */
  readonly projectCertValidityMaxS: number
}

export type SettingName = keyof ClusterSettings

interface SettingDef {
  readonly kind: 'int' | 'name' | 'enum'
  readonly default: number | string
  readonly min?: number
  readonly max?: number
  /** kind 'enum': the values allowed. */
  readonly values?: readonly string[]
}

/**
 * Members of this group are superusers, beside the `supergroup` setting: the group of the user `admin`
 * the cluster creates at bootstrap (src/auth). A name, not a setting, so that no setting change can
 * lock the administrators out.
 */
export const ADMIN_GROUP = 'admin'

const MIB = 1024 * 1024

export const SETTING_DEFS: Readonly<Record<SettingName, SettingDef>> = {
  inlineThreshold: { kind: 'int', default: 64 * 1024, min: 0, max: 16 * MIB },
  superuser: { kind: 'name', default: 'hopsd' },
  supergroup: { kind: 'name', default: 'supergroup' },
  leaseSoftLimitMs: { kind: 'int', default: 60_000, min: 1, max: 7 * 24 * 3_600_000 },
  leaseHardLimitMs: { kind: 'int', default: 3_600_000, min: 1, max: 7 * 24 * 3_600_000 },
  changeLogMax: { kind: 'int', default: 100_000, min: 1, max: 10_000_000 },
  defaultReplication: { kind: 'int', default: 3, min: 1, max: 512 },
  defaultBlockSize: { kind: 'int', default: 128 * MIB, min: 512, max: 1024 * 1024 * MIB },
  minBlockSize: { kind: 'int', default: MIB, min: 512, max: 1024 * 1024 * MIB },
  purgeBatchInodes: { kind: 'int', default: 1000, min: 1, max: 1_000_000_000 },
  contentSummaryBatchInodes: { kind: 'int', default: 5000, min: 1, max: 1_000_000_000 },
  subtreeBatchInodes: { kind: 'int', default: 1000, min: 1, max: 1_000_000_000 },
  subtreeLockTimeoutMs: { kind: 'int', default: 300_000, min: 1_000, max: 24 * 3_600_000 },
  // Until bootstrap writes it, each node uses its own --auth (src/auth authenticator).
  auth: { kind: 'enum', default: 'secure', values: ['simple', 'secure'] },
  nodeCertValidityS: { kind: 'int', default: 365 * 86_400, min: 60, max: 10 * 365 * 86_400 },
  projectCertValidityMaxS: { kind: 'int', default: 7 * 86_400, min: 1, max: 365 * 86_400 },
}

export function isSettingName(name: string): name is SettingName {
  return Object.hasOwn(SETTING_DEFS, name)
}

/** Parses and range-checks a setting value; throws INVALID_SETTING. */
export function parseSetting(name: string, value: string): number | string {
  if (!isSettingName(name)) throw new MetaError('INVALID_SETTING', `unknown setting ${JSON.stringify(name)}`)
  const def = SETTING_DEFS[name]
  if (def.kind === 'enum') {
    if (!def.values!.includes(value))
      throw new MetaError('INVALID_SETTING', `${name} must be one of ${def.values!.join(', ')}`)
    return value
  }
  if (def.kind === 'name') {
    if (!/^[A-Za-z0-9._@$-]{1,64}$/.test(value)) {
      throw new MetaError('INVALID_SETTING', `${name} must be 1..64 characters of [A-Za-z0-9._@$-]`)
    }
    return value
  }
  if (!/^\d{1,16}$/.test(value))
    throw new MetaError('INVALID_SETTING', `${name} must be a non-negative integer`)
  const n = Number(value)
  if (n < (def.min ?? 0) || n > (def.max ?? Number.MAX_SAFE_INTEGER)) {
    throw new MetaError('INVALID_SETTING', `${name} must be in ${def.min}..${def.max}`)
  }
  return n
}

/** A read view over the `setting` table with the defaults filled in. */
export function readSettings(table: Table<{ value: string }>): ClusterSettings {
  const out: Record<string, number | string> = {}
  for (const name of Object.keys(SETTING_DEFS) as SettingName[]) {
    const stored = table.get(name)
    out[name] = stored === undefined ? SETTING_DEFS[name].default : parseSetting(name, stored.value)
  }
  return out as unknown as ClusterSettings
}

/**
 * Room a file's command needs besides its inline bytes (the path of up to 8,000 bytes, the user and
 * groups, the other fields, protobuf framing).
 */
export const COMMAND_OVERHEAD_BYTES = 16 * 1024

/**
 * Rules that span settings, checked on the settings as they would be after a change. With
 * `commandBytesMax` (the consensus group's largest command), an inline file must fit in one command.
 */
export function checkSettings(s: ClusterSettings, limits: { commandBytesMax?: number } = {}): void {
  const max = limits.commandBytesMax
  if (max !== undefined && s.inlineThreshold + COMMAND_OVERHEAD_BYTES > max) {
    throw new MetaError(
      'INVALID_SETTING',
      `inlineThreshold ${s.inlineThreshold} cannot work: a file's command would exceed the largest proposal (${max} bytes, ${COMMAND_OVERHEAD_BYTES} of them for the command's other fields)`,
    )
  }
  if (s.leaseSoftLimitMs > s.leaseHardLimitMs) {
    throw new MetaError('INVALID_SETTING', 'leaseSoftLimitMs must not exceed leaseHardLimitMs')
  }
  if (s.defaultBlockSize < s.minBlockSize || s.defaultBlockSize % 512 !== 0) {
    throw new MetaError(
      'INVALID_SETTING',
      'defaultBlockSize must be a multiple of 512 and at least minBlockSize',
    )
  }
}
