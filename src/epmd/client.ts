// EPMD client: OTP erts "Distribution Protocol", section "EPMD Protocol".
// register() keeps its connection for the node's lifetime (closing it unregisters the node);
// portPlease() and names() open one connection per request, as EPMD closes it after replying.

import { EventEmitter } from 'node:events'
import * as net from 'node:net'
import type { Duplex } from 'node:stream'
import {
  EpmdAbortedError,
  EpmdArgumentError,
  EpmdClosedError,
  EpmdConnectError,
  EpmdError,
  EpmdProtocolError,
  EpmdRegisterError,
  EpmdTimeoutError,
} from './errors.js'
import {
  DIST_VERSION_HIGHEST,
  DIST_VERSION_LOWEST,
  EPMD_PORT,
  encodeRequest,
  NODE_TYPE_HIDDEN,
  NODE_TYPE_NORMAL,
  parseReply,
  PROTOCOL_TCP_IPV4,
  type DumpEntry,
  type EpmdReply,
  type EpmdRequest,
  type NameEntry,
  type NodeInfo,
} from './messages.js'

export const DEFAULT_EPMD_HOST = '127.0.0.1'
export const DEFAULT_TIMEOUT_MS = 5000
/** NAMES/DUMP replies end at EOF; a reply larger than this is refused rather than buffered without bound. */
export const DEFAULT_MAX_REPLY_BYTES = 1 << 20

/** `ERL_EPMD_PORT` when it holds a valid port, else 4369. Read at call time, as erl does at start. */
export function defaultEpmdPort(): number {
  const n = Number(process.env.ERL_EPMD_PORT)
  return Number.isInteger(n) && n > 0 && n <= 0xffff ? n : EPMD_PORT
}

/** Opens a connection to EPMD; inject one to run on in-memory streams. A net.Socket still connecting is awaited. */
export type EpmdConnect = (host: string, port: number) => Duplex

export interface RequestOptions {
  /** Milliseconds for connecting and receiving the whole reply. Default 5000. */
  timeout?: number
  signal?: AbortSignal
  connect?: EpmdConnect
  /** Bound on a NAMES/DUMP reply. Default 1 MiB. */
  maxReplyBytes?: number
}

interface Exchange {
  reply: EpmdReply
  socket: Duplex
  /** Bytes received after the reply (none from a conforming EPMD). */
  rest: Buffer
}

const defaultConnect: EpmdConnect = (host, port) => net.connect({ host, port })

function checkPort(port: unknown, what: string): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new EpmdArgumentError(`${what} must be an integer in 0..65535, got ${String(port)}`)
  }
  return port
}

/**
 * Send one request and wait for its reply. With `keepOpen` the socket is returned still open (ALIVE2);
 * otherwise it is closed once the reply is complete.
 */
function exchange(
  host: string,
  port: number,
  request: EpmdRequest,
  opts: RequestOptions & { keepOpen?: boolean },
): Promise<Exchange> {
  const bytes = encodeRequest(request)
  const timeout = opts.timeout ?? DEFAULT_TIMEOUT_MS
  const maxReply = opts.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES
  const signal = opts.signal
  if (signal?.aborted) return Promise.reject(new EpmdAbortedError({ cause: signal.reason }))

  return new Promise<Exchange>((resolve, reject) => {
    let socket: Duplex
    try {
      socket = (opts.connect ?? defaultConnect)(host, port)
    } catch (e) {
      reject(new EpmdConnectError(host, port, { cause: e }))
      return
    }
    let connected = !(socket instanceof net.Socket && socket.connecting)
    let buf: Buffer = Buffer.alloc(0)
    let settled = false

    const finish = (err: EpmdError | undefined, result?: Exchange) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('close', onClose)
      socket.off('connect', onConnect)
      if (err || !opts.keepOpen) socket.destroy()
      if (err) reject(err)
      else resolve(result!)
    }
    const tryParse = (eof: boolean) => {
      let parsed
      try {
        parsed = parseReply(request.kind, buf, eof)
      } catch (e) {
        finish(e instanceof EpmdError ? e : new EpmdProtocolError(String(e), 0))
        return
      }
      if (parsed) {
        finish(undefined, { reply: parsed.reply, socket, rest: buf.subarray(parsed.consumed) })
      } else if (eof) {
        finish(new EpmdClosedError(`EPMD at ${host}:${port} closed the connection before replying to ${request.kind}`))
      }
    }
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
      if (buf.length > maxReply) {
        finish(new EpmdProtocolError(`reply to ${request.kind} exceeds ${maxReply} bytes`, maxReply))
        return
      }
      tryParse(false)
    }
    const onEnd = () => tryParse(true)
    const onClose = () => tryParse(true)
    const onError = (e: Error) => {
      if (!connected) finish(new EpmdConnectError(host, port, { cause: e }))
      else finish(new EpmdClosedError(`connection to EPMD at ${host}:${port} failed: ${e.message}`, { cause: e }))
    }
    const onConnect = () => {
      connected = true
    }
    const onAbort = () => finish(new EpmdAbortedError({ cause: signal?.reason }))
    const timer = setTimeout(() => finish(new EpmdTimeoutError(host, port, timeout)), timeout)

    socket.on('error', onError)
    // The error listener stays for the socket's life: a late error must never become an uncaught exception.
    socket.on('data', onData)
    socket.on('end', onEnd)
    socket.on('close', onClose)
    socket.on('connect', onConnect)
    signal?.addEventListener('abort', onAbort, { once: true })
    socket.write(bytes)
  })
}

export type PortInfo = NodeInfo

/**
 * Look up a node's distribution port. `name` is the alive name (the part before '@').
 * Resolves undefined when EPMD has no node of that name.
 */
export async function portPlease(
  name: string,
  host: string = DEFAULT_EPMD_HOST,
  epmdPort: number = defaultEpmdPort(),
  opts: RequestOptions = {},
): Promise<PortInfo | undefined> {
  checkPort(epmdPort, 'epmdPort')
  const { reply } = await exchange(host, epmdPort, { kind: 'PORT_PLEASE2_REQ', name }, opts)
  if (reply.kind !== 'PORT2_RESP') throw new EpmdProtocolError(`unexpected ${reply.kind}`, 0)
  return reply.node
}

/** The names registered with an EPMD (NAMES_REQ). */
export async function names(
  host: string = DEFAULT_EPMD_HOST,
  epmdPort: number = defaultEpmdPort(),
  opts: RequestOptions = {},
): Promise<NameEntry[]> {
  checkPort(epmdPort, 'epmdPort')
  const { reply } = await exchange(host, epmdPort, { kind: 'NAMES_REQ' }, opts)
  if (reply.kind !== 'NAMES_RESP') throw new EpmdProtocolError(`unexpected ${reply.kind}`, 0)
  return reply.names
}

/** Every node EPMD knows, registered and remembered (DUMP_REQ; EPMD answers only local peers). */
export async function dump(
  host: string = DEFAULT_EPMD_HOST,
  epmdPort: number = defaultEpmdPort(),
  opts: RequestOptions = {},
): Promise<DumpEntry[]> {
  checkPort(epmdPort, 'epmdPort')
  const { reply } = await exchange(host, epmdPort, { kind: 'DUMP_REQ' }, opts)
  if (reply.kind !== 'DUMP_RESP') throw new EpmdProtocolError(`unexpected ${reply.kind}`, 0)
  return reply.nodes
}

export interface RegisterOptions {
  /** The alive name: the part of the node name before '@'. */
  name: string
  /** The port the node accepts distribution connections on. */
  port: number
  /** Hidden node (type 72, the default) or normal node (77). */
  hidden?: boolean
  epmdHost?: string
  /** Default `ERL_EPMD_PORT` or 4369. */
  epmdPort?: number
  extra?: Buffer
  highestVersion?: number
  lowestVersion?: number
  /** Register again by itself when the EPMD connection drops. Default true. */
  reconnect?: boolean
  /** First retry delay in ms (doubles per failed attempt). Default 100. */
  minBackoff?: number
  /** Largest retry delay in ms. Default 2000. */
  maxBackoff?: number
  /** Milliseconds for each connect + reply. Default 5000. */
  timeout?: number
  /** Aborting cancels a pending register() and closes an established registration. */
  signal?: AbortSignal
  /** Called with the creation of every successful registration after the first (also emitted as 'registered'). */
  onCreation?: (creation: number) => void
  /** Called when the EPMD connection drops (also emitted as 'lost'). */
  onLost?: (reason: EpmdError) => void
  connect?: EpmdConnect
}

export interface RegistrationEvents {
  /** Registered again after the connection dropped; the node must use the new creation from now on. */
  registered: [creation: number]
  /** The EPMD connection dropped; the node is not registered until 'registered'. */
  lost: [reason: EpmdError]
  /** A re-registration attempt failed; the next one comes after `delay` ms. */
  retry: [reason: EpmdError, delay: number]
  /** close() was called (or the signal aborted, or the connection dropped with reconnect off). */
  close: []
}

/** A node registered with EPMD. Keep it for the node's lifetime; close() unregisters. */
export class Registration extends EventEmitter<RegistrationEvents> {
  private socket: Duplex | undefined
  private _creation: number
  private _kind: 'ALIVE2_X_RESP' | 'ALIVE2_RESP'
  private closed = false
  private attempt = 0
  private retryTimer: NodeJS.Timeout | undefined
  private retryAbort: AbortController | undefined
  private readonly onAbort = () => void this.close()

  /** @internal use register() */
  constructor(
    private readonly opts: Required<
      Pick<RegisterOptions, 'epmdHost' | 'epmdPort' | 'reconnect' | 'minBackoff' | 'maxBackoff' | 'timeout'>
    > &
      RegisterOptions,
    private readonly request: EpmdRequest,
    first: Exchange,
  ) {
    super()
    const reply = first.reply as Extract<EpmdReply, { kind: 'ALIVE2_X_RESP' | 'ALIVE2_RESP' }>
    this._creation = reply.creation
    this._kind = reply.kind
    this.adopt(first.socket)
    opts.signal?.addEventListener('abort', this.onAbort, { once: true })
  }

  get name(): string {
    return this.opts.name
  }

  /** The creation EPMD gave the current registration (changes after a re-registration). */
  get creation(): number {
    return this._creation
  }

  /** Which reply carried the creation: ALIVE2_X_RESP (32-bit) or ALIVE2_RESP (16-bit, an old EPMD). */
  get replyKind(): 'ALIVE2_X_RESP' | 'ALIVE2_RESP' {
    return this._kind
  }

  /** True while the EPMD connection holding the registration is open. */
  get registered(): boolean {
    return this.socket !== undefined
  }

  /** Unregister (by closing the EPMD connection) and stop re-registering. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.opts.signal?.removeEventListener('abort', this.onAbort)
    clearTimeout(this.retryTimer)
    this.retryAbort?.abort()
    const s = this.socket
    this.socket = undefined
    if (s && !s.destroyed) {
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve())
        s.destroy()
      })
    }
    this.emit('close')
  }

  private adopt(socket: Duplex): void {
    this.socket = socket
    socket.on('error', () => {})
    socket.once('close', () => this.onDrop(socket))
    // EPMD never writes on a registration connection; the peer closing its side ends the registration.
    socket.on('end', () => socket.destroy())
    socket.resume()
    if (socket instanceof net.Socket) socket.setKeepAlive(true)
  }

  private onDrop(socket: Duplex): void {
    if (this.socket !== socket || this.closed) return
    this.socket = undefined
    const reason = new EpmdClosedError(
      `EPMD at ${this.opts.epmdHost}:${this.opts.epmdPort} closed the registration of '${this.opts.name}'`,
    )
    this.opts.onLost?.(reason)
    this.emit('lost', reason)
    if (!this.opts.reconnect) {
      this.closed = true
      this.opts.signal?.removeEventListener('abort', this.onAbort)
      this.emit('close')
      return
    }
    this.attempt = 0
    this.schedule(this.opts.minBackoff)
  }

  private schedule(delay: number): void {
    this.retryTimer = setTimeout(() => void this.retry(), delay)
  }

  private async retry(): Promise<void> {
    if (this.closed) return
    this.retryAbort = new AbortController()
    try {
      const ex = await exchange(this.opts.epmdHost, this.opts.epmdPort, this.request, {
        timeout: this.opts.timeout,
        connect: this.opts.connect,
        signal: this.retryAbort.signal,
        keepOpen: true,
      })
      checkAliveReply(ex.reply, this.opts.name)
      const reply = ex.reply as Extract<EpmdReply, { kind: 'ALIVE2_X_RESP' | 'ALIVE2_RESP' }>
      if (this.closed) {
        ex.socket.destroy()
        return
      }
      this._creation = reply.creation
      this._kind = reply.kind
      this.attempt = 0
      this.adopt(ex.socket)
      this.opts.onCreation?.(reply.creation)
      this.emit('registered', reply.creation)
    } catch (e) {
      if (this.closed) return
      const err = e instanceof EpmdError ? e : new EpmdError(String(e), { cause: e })
      this.attempt++
      const delay = Math.min(this.opts.maxBackoff, this.opts.minBackoff * 2 ** Math.min(this.attempt, 30))
      this.emit('retry', err, delay)
      this.schedule(delay)
    } finally {
      this.retryAbort = undefined
    }
  }
}

function checkAliveReply(reply: EpmdReply, name: string): void {
  if (reply.kind !== 'ALIVE2_X_RESP' && reply.kind !== 'ALIVE2_RESP') {
    throw new EpmdProtocolError(`unexpected ${reply.kind}`, 0)
  }
  if (reply.result !== 0) throw new EpmdRegisterError(name, reply.result)
}

/**
 * Register a node with EPMD (ALIVE2_REQ). Resolves once EPMD accepted it; rejects with EpmdConnectError,
 * EpmdTimeoutError, EpmdRegisterError (name taken), EpmdClosedError, EpmdProtocolError or EpmdAbortedError.
 */
export async function register(options: RegisterOptions): Promise<Registration> {
  const opts = {
    ...options,
    epmdHost: options.epmdHost ?? DEFAULT_EPMD_HOST,
    epmdPort: options.epmdPort ?? defaultEpmdPort(),
    reconnect: options.reconnect ?? true,
    minBackoff: options.minBackoff ?? 100,
    maxBackoff: options.maxBackoff ?? 2000,
    timeout: options.timeout ?? DEFAULT_TIMEOUT_MS,
  }
  checkPort(opts.epmdPort, 'epmdPort')
  if (!(opts.minBackoff > 0) || !(opts.maxBackoff >= opts.minBackoff)) {
    throw new EpmdArgumentError('backoff must satisfy 0 < minBackoff <= maxBackoff')
  }
  const request: EpmdRequest = {
    kind: 'ALIVE2_REQ',
    port: checkPort(opts.port, 'port'),
    nodeType: (opts.hidden ?? true) ? NODE_TYPE_HIDDEN : NODE_TYPE_NORMAL,
    protocol: PROTOCOL_TCP_IPV4,
    highestVersion: opts.highestVersion ?? DIST_VERSION_HIGHEST,
    lowestVersion: opts.lowestVersion ?? DIST_VERSION_LOWEST,
    name: opts.name,
    extra: opts.extra ?? Buffer.alloc(0),
  }
  encodeRequest(request) // argument errors surface here, before any connection is made
  const first = await exchange(opts.epmdHost, opts.epmdPort, request, {
    timeout: opts.timeout,
    signal: opts.signal,
    connect: opts.connect,
    keepOpen: true,
  })
  try {
    checkAliveReply(first.reply, opts.name)
  } catch (e) {
    first.socket.destroy()
    throw e
  }
  if (opts.signal?.aborted) {
    first.socket.destroy()
    throw new EpmdAbortedError({ cause: opts.signal.reason })
  }
  return new Registration(opts, request, first)
}
