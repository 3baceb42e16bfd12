// Typed errors of the EPMD client and server. Every one is an EpmdError (code 'ERR_EPMD…').

import { DistError, causeCode } from '../errors.js'

export class EpmdError extends DistError {
  override readonly code: string = 'ERR_EPMD'
}

/** Bytes that do not follow the EPMD protocol (a reply or a request), with the offset where it broke. */
export class EpmdProtocolError extends EpmdError {
  override readonly code: string = 'ERR_EPMD_PROTOCOL'
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super(`malformed EPMD message at offset ${offset}: ${reason}`)
  }
}

/** An argument that cannot be put on the wire (name too long, port out of range, ...). */
export class EpmdArgumentError extends EpmdError {
  override readonly code: string = 'ERR_EPMD_ARGUMENT'
}

/** No EPMD could be reached (connection refused, host unknown, ...). `cause` holds the socket error. */
export class EpmdConnectError extends EpmdError {
  override readonly code: string = 'ERR_EPMD_CONNECT'
  constructor(
    readonly host: string,
    readonly port: number,
    options?: { cause?: unknown },
  ) {
    const why = causeCode(options, 'connection failed')
    super(`cannot reach EPMD at ${host}:${port}: ${why}`, options)
  }
}

export class EpmdTimeoutError extends EpmdError {
  override readonly code: string = 'ERR_EPMD_TIMEOUT'
  constructor(
    readonly host: string,
    readonly port: number,
    readonly timeout: number,
  ) {
    super(`EPMD at ${host}:${port} did not answer within ${timeout} ms`)
  }
}

/** EPMD closed the connection before its reply was complete. */
export class EpmdClosedError extends EpmdError {
  override readonly code: string = 'ERR_EPMD_CLOSED'
}

export class EpmdAbortedError extends EpmdError {
  override readonly code: string = 'ERR_EPMD_ABORTED'
  constructor(options?: { cause?: unknown }) {
    super('EPMD request aborted', options)
  }
}

/** EPMD refused an ALIVE2_REQ (result > 0): usually the name is already registered by a live node. */
export class EpmdRegisterError extends EpmdError {
  override readonly code: string = 'ERR_EPMD_REGISTER'
  constructor(
    readonly nodeName: string,
    readonly result: number,
  ) {
    super(`EPMD refused to register '${nodeName}' (result ${result}; the name may be in use)`)
  }
}

/** The embedded EPMD server could not listen (port in use, permission, ...). `cause` holds the socket error. */
export class EpmdListenError extends EpmdError {
  override readonly code: string = 'ERR_EPMD_LISTEN'
  constructor(
    readonly host: string,
    readonly port: number,
    options?: { cause?: unknown },
  ) {
    const why = causeCode(options, 'listen failed')
    super(`cannot listen for EPMD on ${host}:${port}: ${why}`, options)
  }
}
