/**
 * The one error table of hopsd: every stable error code, the HTTP status it maps to and what it means.
 *
 * Areas define their own error classes in their own `errors.ts`, each carrying a stable string `code`.
 * Most extend {@link HopsError}; an area that must stay independent of this file (consensus) only needs
 * its errors to carry a `code` string — the table joins by code, so adding an area means adding its
 * rows to {@link ERROR_TABLE} below, and every code must also be documented in README.md (a test checks
 * both). The API maps any thrown error through {@link errorInfo}: a known code gives its status, anything
 * else is a bug and answers 500 `INTERNAL`.
 *
 * @example
 * ```ts
 * export class NotLeaderError extends HopsError {
 *   constructor(readonly leaderId?: string) { super('NOT_LEADER', 'this node is not the leader') }
 * }
 * ```
 */

import { AUTH_ERRORS } from './auth/errors.js'
import { CONSENSUS_ERRORS } from './consensus/errors.js'
import { ADMISSION_ERRORS } from './node/admission/errors.js'
import { FS_ERRORS } from './fs/errors.js'
import { GPU_ERRORS } from './gpu/errors.js'
import { META_ERRORS } from './meta/errors.js'
import { P2P_ERRORS } from './node/p2p/errors.js'
import { PROJECT_ERRORS } from './projects/errors.js'
import { REGISTRY_ERRORS, SERVING_ERRORS } from './serving/errors.js'
import { SCHED_ERRORS } from './scheduler/errors.js'

export interface ErrorRow {
  /** HTTP status the API answers with when a request fails with this code. */
  readonly httpStatus: number
  /** What the code means, for operators and for the README's error reference. */
  readonly description: string
}

/** Generic codes of the API edge (fastify's own errors and validation map onto these). */
const apiErrors = {
  INTERNAL: { httpStatus: 500, description: 'An unexpected failure (a bug): the node logged the details.' },
  BAD_REQUEST: {
    httpStatus: 400,
    description: 'The request does not match the route schema (body, query or parameters).',
  },
  NOT_FOUND: { httpStatus: 404, description: 'No route, or no such resource.' },
  METHOD_NOT_ALLOWED: { httpStatus: 405, description: 'The route exists but not for this method.' },
  PAYLOAD_TOO_LARGE: { httpStatus: 413, description: 'The request body is larger than the route accepts.' },
  UNSUPPORTED_MEDIA_TYPE: {
    httpStatus: 415,
    description: 'The request body has a content type the route does not accept.',
  },
  UNAVAILABLE: {
    httpStatus: 503,
    description:
      'The node cannot serve the request now (starting or stopping, no metadata node reachable yet, no cluster CA yet); retry.',
  },
} as const satisfies Record<string, ErrorRow>

/** Codes of the daemon's configuration and startup (src/node, src/cli): the CLI exits 2 on each. */
const nodeErrors = {
  UNKNOWN_COMMAND: { httpStatus: 400, description: 'The CLI was given a subcommand it does not know.' },
  UNKNOWN_FLAG: {
    httpStatus: 400,
    description: 'The CLI was given a flag it does not know, or an argument it does not expect.',
  },
  UNKNOWN_ROLE: { httpStatus: 400, description: 'A role other than metadata, datanode, gpu or serving.' },
  BAD_ADDRESS: { httpStatus: 400, description: 'An address that is not HOST:PORT with a port in 0..65535.' },
  BAD_CONFIG_VALUE: {
    httpStatus: 400,
    description: 'A configuration value of the wrong type or out of range.',
  },
  BAD_CONFIG_FILE: {
    httpStatus: 400,
    description: 'The configuration file cannot be read, is not YAML/JSON, or has an unknown key.',
  },
  PORT_IN_USE: {
    httpStatus: 409,
    description: 'The HTTP or p2p address is already bound by another process.',
  },
  DATA_DIR_UNWRITABLE: { httpStatus: 500, description: 'The data directory cannot be created or written.' },
  DATA_DIR_LOCKED: {
    httpStatus: 409,
    description: 'Another live hopsd process holds the data directory lock.',
  },
  BAD_IDENTITY: { httpStatus: 500, description: 'The node key file in the data directory is corrupt.' },
  SHUTDOWN_TIMEOUT: {
    httpStatus: 500,
    description: 'A graceful shutdown did not finish within its deadline (10 s).',
  },
} as const satisfies Record<string, ErrorRow>

/**
 * Codes of the cluster's own bookkeeping (src/node/ca, src/node/cluster) that have no table of their own:
 * the CA throws `CertificateError` (code CERTIFICATE_INVALID, or admission's CERTIFICATE_REVOKED), the
 * `cluster` meta table refuses a second InitCluster with ALREADY_INITIALIZED.
 */
const clusterErrors = {
  CERTIFICATE_INVALID: {
    httpStatus: 400,
    description:
      'A node certificate or public key that does not parse, is not signed by the cluster CA, is expired, or names another node.',
  },
  ALREADY_INITIALIZED: {
    httpStatus: 409,
    description:
      'The cluster already has an id and a CA; a second initialisation with another id is refused.',
  },
} as const satisfies Record<string, ErrorRow>

/**
 * The consensus table in the joined shape. consensus imports nothing of the project, so its rows carry
 * `message` and are adapted here. NOT_LEADER answers 503 like NO_LEADER (the table says 421, a status
 * about misdirected TLS connections that HTTP clients do not retry): a node forwards proposals itself,
 * so a client that still sees NOT_LEADER lost a race with an election and should retry — as for 503.
 */
const consensusErrors = Object.fromEntries(
  Object.entries(CONSENSUS_ERRORS).map(([code, row]) => [
    code,
    { httpStatus: code === 'NOT_LEADER' ? 503 : row.httpStatus, description: sentence(row.message) },
  ]),
) as { readonly [K in keyof typeof CONSENSUS_ERRORS]: ErrorRow }

/** The fs table without its WebHDFS columns (the WebHDFS routes read those from FS_ERRORS itself). */
const fsErrors = Object.fromEntries(
  Object.entries(FS_ERRORS).map(([code, row]) => [
    code,
    { httpStatus: row.httpStatus, description: row.description },
  ]),
) as { readonly [K in keyof typeof FS_ERRORS]: ErrorRow }

/** The auth table without its WebHDFS columns (the WebHDFS routes read those from AUTH_ERRORS). */
const authErrors = Object.fromEntries(
  Object.entries(AUTH_ERRORS).map(([code, row]) => [
    code,
    { httpStatus: row.httpStatus, description: row.description },
  ]),
) as { readonly [K in keyof typeof AUTH_ERRORS]: ErrorRow }

/**
 * The joined table. Add an area's rows by spreading its table here; codes must be unique across areas
 * (the object spread would silently override — `joinTables` refuses duplicates instead). A code that
 * means the same thing in two areas is defined once, by the area that owns the concept, and shared:
 * the `cluster` meta table refuses with fs's ACCESS_DENIED and INVALID_ARGUMENT rather than its own;
 * meta's codes reach WebHDFS clients mapped to the nearest fs code (src/fs/errors.ts errorFromResult).
 * Codes that look alike but mean different things stay apart on purpose: TIMEOUT (a Raft operation's
 * deadline, 504) and REQUEST_TIMEOUT (a peer did not answer, 504); ABORTED (a Raft caller gave up) and
 * REQUEST_ABORTED (a p2p caller gave up); INVALID_CONFIG (Raft's internal settings, a bug: 500) and
 * BAD_CONFIG_VALUE (an operator's flag, 400); STOPPED (the Raft group) and P2P_STOPPED (the libp2p host).
 */
export const ERROR_TABLE = joinTables(
  apiErrors,
  nodeErrors,
  clusterErrors,
  consensusErrors,
  META_ERRORS,
  fsErrors,
  authErrors,
  P2P_ERRORS,
  GPU_ERRORS,
  ADMISSION_ERRORS,
  SERVING_ERRORS,
  REGISTRY_ERRORS,
  SCHED_ERRORS,
  PROJECT_ERRORS,
)

export type ErrorCode = keyof typeof ERROR_TABLE

/** Base class of hopsd's operational errors: a stable `code` from the table and a human message. */
export class HopsError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** The row for an error: by its `code` when the table knows it, otherwise `INTERNAL`. */
export function errorInfo(err: unknown): { code: ErrorCode; row: ErrorRow } {
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && isErrorCode(code)) return { code, row: ERROR_TABLE[code] }
  return { code: 'INTERNAL', row: ERROR_TABLE.INTERNAL }
}

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_TABLE, code)
}

function joinTables<T extends Record<string, ErrorRow>[]>(...tables: T): UnionToIntersection<T[number]> {
  const joined: Record<string, ErrorRow> = {}
  for (const table of tables) {
    for (const [code, row] of Object.entries(table)) {
      if (Object.hasOwn(joined, code)) throw new Error(`error code ${code} is defined twice`)
      joined[code] = row
    }
  }
  return joined as UnionToIntersection<T[number]>
}

function sentence(message: string): string {
  return `${message[0]!.toUpperCase()}${message.slice(1)}.`
}

type UnionToIntersection<U> = (U extends unknown ? (k: U) => void : never) extends (k: infer I) => void
  ? I
  : never
