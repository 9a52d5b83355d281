/**
 * Errors of node admission, node certificates and the CA key (src/node/admission, src/node/ca). One
 * class, a stable `code` per row; it extends CommandRejected so that apply() refuses a command by
 * throwing one, and joins the daemon's error table by code (src/errors.ts).
 */
import { CommandRejected } from '../../meta/index.js'

export const ADMISSION_ERRORS = {
  NODE_NOT_ADMITTED: {
    httpStatus: 403,
    description:
      "The node is not admitted (for that role): start it with a join token (--join-token, from 'hopsd token create') or have an admin approve it ('hopsd node approve ID').",
  },
  NODE_REVOKED: {
    httpStatus: 403,
    description:
      'The node was revoked: every node refuses it, and its id is never admitted again (a host that should come back needs a new data dir, hence a new id).',
  },
  NODE_UNKNOWN: {
    httpStatus: 404,
    description: 'No node with that id has asked to join, been admitted or been revoked.',
  },
  JOIN_TOKEN_INVALID: {
    httpStatus: 401,
    description: 'A join token that is malformed, unknown, or whose secret does not match.',
  },
  JOIN_TOKEN_USED: {
    httpStatus: 401,
    description: 'The join token was used already: a token admits one node, once.',
  },
  JOIN_TOKEN_EXPIRED: { httpStatus: 401, description: 'The join token has expired.' },
  JOIN_TOKEN_ROLES: {
    httpStatus: 403,
    description: 'The node runs the metadata role and its join token does not admit that role.',
  },
  CERTIFICATE_HOST_REFUSED: {
    httpStatus: 400,
    description:
      'A certificate request named an address or host name that does not lead to the requesting node (the CA dials each one and checks the peer id that answers).',
  },
  CERTIFICATE_REVOKED: {
    httpStatus: 401,
    description: "The node certificate is on the cluster's certificate revocation list.",
  },
  CA_KEY_UNAVAILABLE: {
    httpStatus: 503,
    description:
      'This metadata node holds no usable copy of the CA key (yet): another metadata node issues, or this one once its copy is wrapped.',
  },
  CLUSTER_STATE_UNSUPPORTED: {
    httpStatus: 500,
    description:
      "The data dir holds a cluster made by hopsd before CA key wrapping (the CA's private key in plaintext in its Raft log and snapshots): refused; create a new cluster (README, Node admission).",
  },
} as const

export type AdmissionErrorCode = keyof typeof ADMISSION_ERRORS

export class AdmissionError extends CommandRejected {
  declare readonly code: AdmissionErrorCode

  constructor(code: AdmissionErrorCode, message?: string) {
    super(code, message ?? ADMISSION_ERRORS[code].description)
  }
}

export function isAdmissionError(err: unknown, code?: AdmissionErrorCode): err is AdmissionError {
  return err instanceof AdmissionError && (code === undefined || err.code === code)
}
