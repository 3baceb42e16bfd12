// PostgreSQL's CancelRequest (protocol "Canceling Requests in Progress"; "Message Formats": CancelRequest):
// a new connection to the same server carrying Int32 16, Int32 80877102, Int32 process ID, Int32 secret key
// (the BackendKeyData of the session), and nothing else. The server checks the key, signals the backend, and
// closes the connection without a reply.
//
// As libpq 15's PQcancel, the request goes in plain text even when the session uses TLS: it holds only the
// process ID and the key, and the server takes it before any authentication (libpq 17's PQcancelCreate is the
// first to encrypt it).
import * as net from 'node:net'
import { unixSocketPath } from './pg-connect.js'

export const CANCEL_REQUEST_CODE = 80877102

/** Where the session's server is: an address (or host name) and port, or a Unix socket directory and port. */
export interface CancelTarget {
  /** An address or name; a path starting with '/' is the directory of the server's Unix socket. */
  host: string
  port: number
}

export function cancelRequestMessage(processID: number, secretKey: number): Buffer {
  const b = Buffer.allocUnsafe(16)
  b.writeInt32BE(16, 0)
  b.writeInt32BE(CANCEL_REQUEST_CODE, 4)
  b.writeInt32BE(processID | 0, 8)
  b.writeInt32BE(secretKey | 0, 12)
  return b
}

/**
 * Sends a CancelRequest for the backend `processID`. Resolves `true` once the server has closed the connection
 * (by then it has signalled the backend), `false` if the connection failed or `timeoutMs` passed first. Never
 * rejects: a cancel is a request the server may ignore anyway.
 */
export function sendCancelRequest(target: CancelTarget, processID: number, secretKey: number, timeoutMs = 10_000): Promise<boolean> {
  return new Promise((resolve) => {
    let socket: net.Socket
    try {
      socket = target.host.startsWith('/') ? net.connect(unixSocketPath(target.host, target.port)) : net.connect(target.port, target.host)
    } catch {
      // An address net refuses outright (a bad port): no request, as for a refused connection.
      resolve(false)
      return
    }
    let sent = false
    const done = (ok: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    socket.once('connect', () => {
      sent = true
      socket.end(cancelRequestMessage(processID, secretKey))
    })
    socket.on('data', () => {}) // the server sends nothing; read to see its end
    socket.once('error', () => done(false))
    socket.once('close', () => done(sent))
  })
}
