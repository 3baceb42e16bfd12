// Typed errors of the distribution layer. Every one is a DistError with a stable `code` ('ERR_DIST_…').

import { DistError, causeCode } from '../errors.js'

/** The connection setup failed. `peer` is the other node's name when it was known at the time. */
export class HandshakeError extends DistError {
  override readonly code: string = 'ERR_DIST_HANDSHAKE'
  constructor(
    message: string,
    readonly peer?: string,
    options?: { cause?: unknown },
  ) {
    super(peer === undefined ? message : `${message} (peer ${peer})`, options)
  }
}

/** A handshake message that does not follow the protocol (wrong tag, short body, bad name). */
export class HandshakeProtocolError extends HandshakeError {
  override readonly code: string = 'ERR_DIST_HANDSHAKE_PROTOCOL'
}

/** The digest did not match: the two nodes do not share the cookie. */
export class CookieMismatchError extends HandshakeError {
  override readonly code: string = 'ERR_DIST_BAD_COOKIE'
}

/** The peer lacks a distribution flag this node requires; `missing` holds the flag names. */
export class MissingFlagsError extends HandshakeError {
  override readonly code: string = 'ERR_DIST_MISSING_FLAGS'
  constructor(
    readonly missing: string[],
    peer?: string,
  ) {
    super(`peer lacks mandatory distribution flags ${missing.join(', ')}`, peer)
  }
}

/**
 * The accepting node answered with a status that ends this attempt: 'nok' (simultaneous connect that the
 * other side wins), 'not_allowed', 'alive' answered 'false', or a status this node does not know.
 */
export class HandshakeStatusError extends HandshakeError {
  override readonly code: string = 'ERR_DIST_HANDSHAKE_STATUS'
  constructor(
    readonly status: string,
    peer?: string,
  ) {
    super(`connection refused with status '${status}'`, peer)
  }
}

/** No handshake step completed within the setup time (net_setuptime). */
export class HandshakeTimeoutError extends HandshakeError {
  override readonly code: string = 'ERR_DIST_SETUP_TIMEOUT'
  constructor(
    readonly timeout: number,
    peer?: string,
  ) {
    super(`handshake did not complete a step within ${timeout} ms`, peer)
  }
}

/** The socket closed or failed during the handshake. */
export class HandshakeClosedError extends HandshakeError {
  override readonly code: string = 'ERR_DIST_HANDSHAKE_CLOSED'
}

export class HandshakeAbortedError extends HandshakeError {
  override readonly code: string = 'ERR_DIST_HANDSHAKE_ABORTED'
}

/** A frame announced a length above the configured maximum; nothing of its body was buffered. */
export class FrameTooLargeError extends DistError {
  override readonly code: string = 'ERR_DIST_FRAME_TOO_LARGE'
  constructor(
    readonly length: number,
    readonly max: number,
  ) {
    super(`frame of ${length} bytes exceeds the maximum of ${max}`)
  }
}

/** A frame after the handshake that cannot be decoded: bad header, bad fragment, bad control message. */
export class MalformedFrameError extends DistError {
  override readonly code: string = 'ERR_DIST_MALFORMED_FRAME'
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`malformed distribution frame: ${reason}`, options)
  }
}

/** A control tuple whose shape does not match its opcode. */
export class MalformedControlError extends MalformedFrameError {
  override readonly code: string = 'ERR_DIST_MALFORMED_CONTROL'
}

/** A message this peer cannot receive because it did not offer the needed flag (SPAWN, ALIAS, ...). */
export class UnsupportedByPeerError extends DistError {
  override readonly code: string = 'ERR_DIST_UNSUPPORTED_BY_PEER'
  constructor(
    readonly kind: string,
    readonly flag: string,
    readonly peer: string,
  ) {
    super(`${peer} cannot receive ${kind}: it did not offer DFLAG_${flag}`)
  }
}

/** The connection is closed (or closed while the caller waited for it). */
export class ConnectionClosedError extends DistError {
  override readonly code: string = 'ERR_DIST_CLOSED'
  constructor(
    readonly peer: string,
    readonly reason: string,
  ) {
    super(`connection to ${peer} is closed: ${reason}`)
  }
}

/** The write queue reached its hard limit: senders went on past send() === false without whenWritable(). */
export class WriteQueueFullError extends DistError {
  override readonly code: string = 'ERR_DIST_QUEUE_FULL'
  constructor(
    readonly peer: string,
    readonly queued: number,
    readonly limit: number,
  ) {
    super(`write queue to ${peer} holds ${queued} bytes: more than ${limit} of them were sent above its high-water mark without waiting (whenWritable)`)
  }
}

/** The node could not be reached: EPMD does not know it, or the TCP connection failed. */
export class NodeUnreachableError extends DistError {
  override readonly code: string = 'ERR_DIST_UNREACHABLE'
  constructor(
    readonly node: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot reach ${node}: ${reason}`, options)
  }
}

/**
 * The node could not listen for distribution connections (the port is taken, not permitted, the address is
 * not this host's). `cause` holds the socket error.
 */
export class DistListenError extends DistError {
  override readonly code: string = 'ERR_DIST_LISTEN'
  constructor(
    readonly host: string,
    readonly port: number,
    options?: { cause?: unknown },
  ) {
    const why = causeCode(options, 'listen failed')
    super(`cannot listen for distribution connections on ${host}:${port}: ${why}`, options)
  }
}

/** A bad node name, cookie file, or option given to the distribution layer. */
export class DistConfigError extends DistError {
  override readonly code: string = 'ERR_DIST_CONFIG'
}

/** The manager is not started (or already stopped). */
export class NotStartedError extends DistError {
  override readonly code: string = 'ERR_DIST_NOT_STARTED'
}

export class DistTimeoutError extends DistError {
  override readonly code: string = 'ERR_DIST_TIMEOUT'
  constructor(
    readonly what: string,
    readonly timeout: number,
  ) {
    super(`${what} did not complete within ${timeout} ms`)
  }
}

export class DistAbortedError extends DistError {
  override readonly code: string = 'ERR_DIST_ABORTED'
  constructor(what: string, options?: { cause?: unknown }) {
    super(`${what} aborted`, options)
  }
}
