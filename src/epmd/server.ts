// An embedded EPMD: OTP erts "Distribution Protocol", section "EPMD Protocol"; behaviour follows erts/epmd/src/epmd_srv.c.
// Real `erl` nodes register with it and look each other up through it, exactly as with `epmd`.

import { EventEmitter } from 'node:events'
import * as net from 'node:net'
import { defaultEpmdPort, names } from './client.js'
import { EpmdConnectError, EpmdError, EpmdListenError } from './errors.js'
import {
  encodeReply,
  MAX_REQUEST_LENGTH,
  parseRequest,
  type DumpEntry,
  type EpmdReply,
  type EpmdRequest,
  type NameEntry,
  type NodeInfo,
} from './messages.js'

/** epmd_int.h: names seen before are remembered (to bump their creation) up to this many. */
const MAX_UNREG_COUNT = 1000
/** epmd_int.h CLOSE_TIMEOUT: a connection that is not a registration is closed after this long. */
const CLOSE_TIMEOUT_MS = 60_000

export interface EpmdServerOptions {
  /** TCP port; default `ERL_EPMD_PORT` or 4369; 0 picks a free port (read it back from `server.port`). */
  port?: number
  /**
   * Address to listen on. Default '127.0.0.1': only this host can reach it, which is all nodes on this
   * host need when their host name resolves to loopback. Real epmd listens on every interface; pass
   * '0.0.0.0' (or '::') when nodes on other hosts must look names up here, or when this host's name
   * resolves to a non-loopback address. Registering (and DUMP/KILL/STOP) is refused to non-local
   * peers either way, as epmd does.
   */
  host?: string
  /** Like `epmd -relaxed_command_check`: allow STOP_REQ, and KILL_REQ while nodes are registered. */
  relaxedCommandCheck?: boolean
  /** A connection that has not finished its exchange is closed after this many ms (epmd: 60 s). */
  packetTimeout?: number
  /** Most concurrent connections; further ones are dropped by the listener. Default 1024. */
  maxConnections?: number
  /** Largest request body accepted; longer announced lengths close the connection. Default MAX_REQUEST_LENGTH. */
  maxRequestLength?: number
}

/** A registered node as the server holds it. */
export interface EpmdServerNode extends NodeInfo {
  creation: number
}

export interface EpmdServerEvents {
  register: [node: EpmdServerNode]
  unregister: [node: EpmdServerNode]
  /** A connection was dropped for a malformed, oversized or refused request. */
  reject: [reason: Error, remoteAddress: string | undefined]
  close: []
}

interface Registration {
  info: EpmdServerNode
  /** epmd's cr_counter: creation is derived from it, and it continues when the name registers again. */
  counter: number
  socket: net.Socket
  /** Stands in for epmd's file descriptor in DUMP_RESP. */
  id: number
}

interface Remembered {
  counter: number
  port: number
  id: number
}

export class EpmdServer extends EventEmitter<EpmdServerEvents> {
  private readonly live = new Map<string, Registration>()
  /** Unregistered names, oldest first, with the creation counter to continue from. */
  private readonly old = new Map<string, Remembered>()
  private readonly sockets = new Set<net.Socket>()
  private nextId = 1
  private closing: Promise<void> | undefined

  /** @internal use startEpmdServer */
  constructor(
    private readonly server: net.Server,
    readonly host: string,
    readonly port: number,
    private readonly opts: Required<Pick<EpmdServerOptions, 'relaxedCommandCheck' | 'packetTimeout' | 'maxRequestLength'>>,
  ) {
    super()
    server.on('connection', (socket) => this.accept(socket))
    // A listener error after listen() succeeded (rare: EMFILE on accept) must not crash the process.
    server.on('error', () => {})
  }

  /** The registered nodes, as NAMES_REQ reports them. */
  names(): NameEntry[] {
    return [...this.live.values()].map((r) => ({ name: r.info.name, port: r.info.port }))
  }

  /** The registered node with this alive name, if any. */
  lookup(name: string): EpmdServerNode | undefined {
    const r = this.live.get(name)
    return r && { ...r.info, extra: Buffer.from(r.info.extra) }
  }

  /** Stops listening and drops every connection, which unregisters every node. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve())
      for (const s of this.sockets) s.destroy()
    }).then(() => {
      this.emit('close')
    })
    return this.closing
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy()
      return
    }
    this.sockets.add(socket)
    let buf: Buffer = Buffer.alloc(0)
    let state: 'request' | 'replied' | 'registered' = 'request'
    let reg: Registration | undefined
    const timer = setTimeout(() => socket.destroy(), this.opts.packetTimeout)
    timer.unref()

    const reject = (reason: Error) => {
      this.emit('reject', reason, socket.remoteAddress)
      socket.destroy()
    }

    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      this.sockets.delete(socket)
      if (reg) this.unregister(reg)
    })
    socket.on('data', (chunk: Buffer) => {
      try {
        if (state === 'registered') {
          // epmd_srv.c: anything read on an ALIVE socket unregisters the node and closes it.
          reject(new EpmdError('data received on a registration connection'))
          return
        }
        if (state === 'replied') return
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
        const parsed = parseRequest(buf, this.opts.maxRequestLength)
        if (!parsed) return
        if (parsed.consumed !== buf.length) {
          reject(new EpmdError(`${buf.length - parsed.consumed} bytes after the request`))
          return
        }
        buf = Buffer.alloc(0)
        const outcome = this.handle(parsed.request, socket)
        if (outcome === undefined) {
          reject(new EpmdError(`${parsed.request.kind} refused`))
        } else if ('registered' in outcome) {
          reg = outcome.registered
          state = 'registered'
          clearTimeout(timer)
          socket.setKeepAlive(true)
        } else {
          state = 'replied'
          if (outcome.length > 0) socket.end(outcome)
          else socket.end()
        }
      } catch (e) {
        reject(e instanceof Error ? e : new EpmdError(String(e)))
      }
    })
  }

  /**
   * Serve one request. Returns the bytes to send before closing, `{ registered }` when the socket now
   * holds a registration (the reply is already written), or undefined to close without a reply.
   */
  private handle(req: EpmdRequest, socket: net.Socket): Buffer | { registered: Registration } | undefined {
    const local = isLocalPeer(socket)
    switch (req.kind) {
      case 'ALIVE2_REQ': {
        if (!local) return undefined
        const x = req.highestVersion >= 6
        if (this.live.has(req.name)) {
          const refused: EpmdReply = { kind: x ? 'ALIVE2_X_RESP' : 'ALIVE2_RESP', result: 1, creation: 99 }
          return encodeReply(refused)
        }
        const prev = this.old.get(req.name)
        this.old.delete(req.name)
        const counter = bumpCreation(prev ? prev.counter : Math.floor(Date.now() / 1000) >>> 0)
        // epmd_srv.c get_creation: a version 5 node gets a creation in 1..3.
        const creation = x ? counter : (counter % 3) + 1
        const { kind: _kind, ...info } = req
        const reg: Registration = { info: { ...info, creation }, counter, socket, id: this.nextId++ }
        this.live.set(req.name, reg)
        socket.write(encodeReply({ kind: x ? 'ALIVE2_X_RESP' : 'ALIVE2_RESP', result: 0, creation }))
        this.emit('register', publicNode(reg))
        return { registered: reg }
      }
      case 'PORT_PLEASE2_REQ': {
        const r = this.live.get(req.name)
        return encodeReply({ kind: 'PORT2_RESP', result: r ? 0 : 1, node: r && publicNode(r) })
      }
      case 'NAMES_REQ':
        return encodeReply({ kind: 'NAMES_RESP', epmdPort: this.port, names: this.names() })
      case 'DUMP_REQ': {
        if (!local) return undefined
        const nodes: DumpEntry[] = [
          ...[...this.live.values()].map((r): DumpEntry => ({ state: 'active', name: r.info.name, port: r.info.port, fd: r.id })),
          ...[...this.old].map(([name, o]): DumpEntry => ({ state: 'old', name, port: o.port, fd: o.id })),
        ]
        return encodeReply({ kind: 'DUMP_RESP', epmdPort: this.port, nodes })
      }
      case 'KILL_REQ': {
        if (!local) return undefined
        if (!this.opts.relaxedCommandCheck && this.live.size > 0) return encodeReply({ kind: 'KILL_RESP', ok: false })
        socket.end(encodeReply({ kind: 'KILL_RESP', ok: true }), () => void this.close())
        return Buffer.alloc(0)
      }
      case 'STOP_REQ': {
        if (!local || !this.opts.relaxedCommandCheck) return undefined
        const r = this.live.get(req.name)
        if (!r) return encodeReply({ kind: 'STOP_NOTOK_RESP' })
        this.unregister(r)
        r.socket.destroy()
        return encodeReply({ kind: 'STOP_OK_RESP' })
      }
    }
  }

  private unregister(reg: Registration): void {
    if (this.live.get(reg.info.name) !== reg) return
    this.live.delete(reg.info.name)
    this.old.set(reg.info.name, { counter: reg.counter, port: reg.info.port, id: reg.id })
    if (this.old.size > MAX_UNREG_COUNT) this.old.delete(this.old.keys().next().value as string)
    this.emit('unregister', publicNode(reg))
  }
}

function publicNode(r: Registration): EpmdServerNode {
  const { name, port, nodeType, protocol, highestVersion, lowestVersion, extra, creation } = r.info
  return { name, port, nodeType, protocol, highestVersion, lowestVersion, extra: Buffer.from(extra), creation }
}

/** epmd_srv.c bump_creation: the counter skips 0..3, which old nodes use as "no creation" / 16-bit range. */
function bumpCreation(c: number): number {
  const n = (c + 1) >>> 0
  return n < 4 ? 4 : n
}

/** epmd_srv.c conn_local_peer_check: loopback, or the peer address equals our own. */
function isLocalPeer(socket: net.Socket): boolean {
  const peer = socket.remoteAddress
  if (peer === undefined) return false
  const v4 = peer.startsWith('::ffff:') ? peer.slice(7) : peer
  if (v4 === '::1' || /^127\./.test(v4)) return true
  const self = socket.localAddress
  return self !== undefined && (self === peer || (self.startsWith('::ffff:') ? self.slice(7) : self) === v4)
}

/**
 * Start an embedded EPMD. Rejects with EpmdListenError (cause: the socket error, e.g. EADDRINUSE when
 * another EPMD already answers on the port).
 */
export async function startEpmdServer(options: EpmdServerOptions = {}): Promise<EpmdServer> {
  const host = options.host ?? '127.0.0.1'
  const port = options.port ?? defaultEpmdPort()
  const server = net.createServer()
  server.maxConnections = options.maxConnections ?? 1024
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(new EpmdListenError(host, port, { cause: e }))
    server.once('error', onError)
    try {
      server.listen({ port, host, exclusive: true }, () => {
        server.off('error', onError)
        resolve()
      })
    } catch (e) {
      reject(new EpmdListenError(host, port, { cause: e }))
    }
  })
  const bound = (server.address() as net.AddressInfo).port
  return new EpmdServer(server, host, bound, {
    relaxedCommandCheck: options.relaxedCommandCheck ?? false,
    packetTimeout: options.packetTimeout ?? CLOSE_TIMEOUT_MS,
    maxRequestLength: Math.min(options.maxRequestLength ?? MAX_REQUEST_LENGTH, MAX_REQUEST_LENGTH),
  })
}

/**
 * Start an embedded EPMD only when none answers on the port: resolves the new server, or undefined when
 * an EPMD already answers there (also when another process wins the race to listen). The probe is a
 * NAMES_REQ to 127.0.0.1, or to `host` when it is a specific address.
 */
export async function ensureEpmd(options: EpmdServerOptions & { probeTimeout?: number } = {}): Promise<EpmdServer | undefined> {
  const port = options.port ?? defaultEpmdPort()
  const host = options.host ?? '127.0.0.1'
  const probeHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  if (port !== 0) {
    try {
      await names(probeHost, port, { timeout: options.probeTimeout ?? 2000 })
      return undefined
    } catch (e) {
      if (!(e instanceof EpmdConnectError)) throw e
    }
  }
  try {
    return await startEpmdServer({ ...options, port })
  } catch (e) {
    if (e instanceof EpmdListenError && (e.cause as { code?: string } | undefined)?.code === 'EADDRINUSE') return undefined
    throw e
  }
}
