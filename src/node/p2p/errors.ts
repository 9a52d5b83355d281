/**
 * Operational errors of the p2p layer (libp2p host, join loop, messaging, swarm key): one class, a
 * stable `code` per row of {@link P2P_ERRORS}. Callers and tests branch on `code`, never on messages.
 * The table has the same row shape as src/errors.ts so the daemon's one error table can join it by
 * code (like src/consensus/errors.ts). A broken invariant is an assertion, not one of these.
 */
export const P2P_ERRORS = {
  SWARM_KEY_INVALID: {
    httpStatus: 400,
    description:
      'The swarm key is not a libp2p pnet key file (/key/swarm/psk/1.0.0/, /base16/, 64 hex digits).',
  },
  SWARM_KEY_UNREADABLE: { httpStatus: 400, description: 'The swarm key file cannot be read.' },
  JOIN_ADDRESS_INVALID: { httpStatus: 400, description: 'A --join address is not HOST:PORT.' },
  P2P_STOPPED: { httpStatus: 503, description: 'The p2p host or channel is stopped (or stopping).' },
  PEER_UNREACHABLE: {
    httpStatus: 503,
    description: 'No connection or stream could be opened to the peer (unknown address, refused, timed out).',
  },
  PROTOCOL_UNSUPPORTED: { httpStatus: 501, description: 'The peer does not speak the requested protocol.' },
  PEER_NOT_CERTIFIED: {
    httpStatus: 403,
    description:
      'A stream refused by the peer gate: the peer showed no valid node certificate (or was revoked). Only admission (/hopsd/join/1.0.0, /hopsd/node-cert/1.0.0), identify and ping are open to such a peer.',
  },
  REQUEST_TIMEOUT: { httpStatus: 504, description: 'A request to a peer got no answer before its deadline.' },
  REQUEST_ABORTED: { httpStatus: 499, description: 'A request to a peer was aborted by its caller.' },
  FRAME_TOO_LARGE: {
    httpStatus: 413,
    description: 'A frame is larger than the channel accepts (frameBytesMax).',
  },
  REMOTE_ERROR: {
    httpStatus: 502,
    description: 'The peer answered a request with an error (its code is in `remoteCode`).',
  },
  BAD_FRAME: {
    httpStatus: 502,
    description: 'A peer sent bytes that do not decode as the expected message.',
  },
  SWARM_KEY_MISMATCH: {
    httpStatus: 502,
    description:
      "The node at a --join address holds a different swarm key: the private-network handshake completes, then it cannot read this node's bytes (logged by the join loop).",
  },
  NOT_A_P2P_PORT: {
    httpStatus: 502,
    description:
      'A --join address is not a hopsd p2p port: it answered as an HTTP or TLS server, or with bytes that are not a libp2p private-network handshake (logged by the join loop).',
  },
} as const

export type P2PErrorCode = keyof typeof P2P_ERRORS

export class P2PError extends Error {
  override readonly name = 'P2PError'
  readonly code: P2PErrorCode
  /** For REMOTE_ERROR: the code the peer's handler failed with ('' when none was given). */
  readonly remoteCode: string

  constructor(code: P2PErrorCode, message: string, opts?: { cause?: unknown; remoteCode?: string }) {
    super(message, opts?.cause === undefined ? undefined : { cause: opts.cause })
    this.code = code
    this.remoteCode = opts?.remoteCode ?? ''
  }
}

export function isP2PError(err: unknown, code?: P2PErrorCode): err is P2PError {
  return err instanceof P2PError && (code === undefined || err.code === code)
}
