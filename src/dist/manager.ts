// The node's distribution: listen, register with EPMD, accept and initiate connections, keep the table
// of connected nodes (one per peer, simultaneous connects resolved as net_kernel does), answer net_kernel's
// is_auth so net_adm:ping works both ways. OTP erts "Distribution Protocol" and kernel's net_kernel.erl.

import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import * as net from 'node:net'
import * as os from 'node:os'
import * as tls from 'node:tls'
import type { Duplex } from 'node:stream'
import type { DecodeOptions } from '../etf/index.js'
import { atom, Atom, Pid, Ref, termEquals, Tuple, type Term } from '../etf/terms.js'
import { EpmdConnectError, EpmdListenError } from '../epmd/errors.js'
import { defaultEpmdPort, portPlease, register, type Registration } from '../epmd/client.js'
import { startEpmdServer, type EpmdServer } from '../epmd/server.js'
import { defaultLogger, type Logger } from '../logger.js'
import { checkTimeout, longTimeout } from '../timers.js'
import { Connection } from './connection.js'
import type { ControlMessage } from './control.js'
import { readDefaultCookie } from './cookie.js'
import {
  CookieMismatchError,
  DistAbortedError,
  DistConfigError,
  DistListenError,
  DistTimeoutError,
  HandshakeError,
  HandshakeStatusError,
  NodeUnreachableError,
  NotStartedError,
} from './errors.js'
import { DEFAULT_FLAGS, DFLAG_FRAGMENTS, DFLAG_PUBLISHED } from './flags.js'
import {
  acceptHandshake,
  DEFAULT_SETUP_TIME,
  dynamicNodeName,
  genCreation,
  initiateHandshake,
  isLongNodeName,
  isValidNodeName,
  nodeHost,
  type AcceptDecision,
  type HandshakeResult,
  type PeerHello,
} from './handshake.js'
import { handleNetKernel, isAuthCall, NET_KERNEL } from './net_kernel.js'

/**
 * Distribution over TLS, as Erlang's `-proto_dist inet_tls`: the TLS session wraps the whole connection
 * (handshake and frames), EPMD registration is as for TCP. Every peer must then use TLS too. The cookie is
 * still checked inside the session.
 */
export interface DistTlsOptions {
  /** PEM: this node's certificate (and chain), presented as server and as client. */
  cert: string | Buffer
  /** PEM: its private key. */
  key: string | Buffer
  /** PEM: the CA certificate(s) a peer's certificate must chain to. */
  ca: string | Buffer | Array<string | Buffer>
  /** Passphrase of an encrypted key. */
  passphrase?: string
  /**
   * Verify peers' certificates against `ca` (default true; Erlang's `verify_peer`): as initiator, the
   * server's certificate must also name the peer's host; as acceptor, a client certificate, when one is
   * presented, must chain to `ca`. False accepts any certificate (encryption without authentication).
   */
  verify?: boolean
  /** As acceptor, refuse a peer that presents no certificate (Erlang's `fail_if_no_peer_cert`). Default false. */
  requireClientCert?: boolean
}

export interface DistManagerOptions {
  /** 'tsnode@host', or 'tsnode' (host filled in: the short host name, or with longNames the FQDN). */
  name: string
  /** -name (true) or -sname (false, default). */
  longNames?: boolean
  /** Default: ~/.erlang.cookie exactly as erl reads it. */
  cookie?: string
  /** Default true (a C-node); false makes the node publish itself as a normal node. */
  hidden?: boolean
  listenHost?: string
  listenPort?: number
  /** Default 127.0.0.1. */
  epmdHost?: string
  /** Default ERL_EPMD_PORT or 4369. */
  epmdPort?: number
  /** Register with EPMD (default true). False: no EPMD at all; `creation` then comes from the option. */
  epmd?: boolean
  /** When no EPMD answers on epmdPort, start an embedded one there and register with it. Default true. */
  embeddedEpmd?: boolean
  /** Creation to use when epmd is false. Default: random. */
  creation?: number
  /** Seconds; default 60. Ticks go out after a quarter of it of send silence; a peer silent this long is down. */
  netTicktime?: number
  /** Milliseconds for each handshake step (net_setuptime); default 7000. */
  setupTime?: number
  maxFrameSize?: number
  /**
   * Offer DFLAG_FRAGMENTS: peers may then split large messages into fragments, and this node splits its
   * own (at fragmentSize). Fragments let other messages on the connection pass a large one; without them a
   * large message arrives in one frame, read straight into its own buffer. Default false, as erl_interface:
   * on the bench's 1 MB echo (bench/ab.ts), fragments cost this node 1.07x–1.42x the CPU per message.
   * With fragments on, directRead: false measured as good or better.
   */
  fragments?: boolean
  fragmentSize?: number
  /** Read TCP connections through `onread` into the connection's own buffers (dist/frame-reader.ts). Default true. */
  directRead?: boolean
  /** Use the atom cache for outgoing messages when agreed. Default true. */
  atomCache?: boolean
  /** Per-connection write high-water mark and hard queue limit (see Connection). */
  highWaterMark?: number
  maxQueueSize?: number
  /** Limits for decoding incoming terms (maxDepth, maxAtomLength, copyThreshold...). */
  decode?: Omit<DecodeOptions, 'atomCache'>
  /** Extra flags to offer on top of DEFAULT_FLAGS. */
  flags?: bigint
  /**
   * Opens a distribution connection (tests inject in-memory streams). Default: net.connect. A plain
   * net.Socket returned here is adopted once the handshake is done (see directRead): its TCP handle moves
   * to a new socket and it is destroyed, without its own listeners.
   */
  connect?: (host: string, port: number) => Duplex
  /** Distribution over TLS (see DistTlsOptions); default plain TCP. */
  tls?: DistTlsOptions
  /** Finds a node's distribution port. Default: PORT_PLEASE2_REQ to the EPMD on the node's host. */
  lookup?: (alive: string, host: string) => Promise<number | undefined>
  logger?: Logger
}

export interface DistManagerEvents {
  nodeup: [node: Atom, conn: Connection]
  nodedown: [node: Atom, reason: string]
  /** Every control message the manager does not handle itself (net_kernel is_auth, ping replies). */
  control: [msg: ControlMessage, conn: Connection]
}

interface PendingOut {
  promise: Promise<Connection>
  resolve: (c: Connection) => void
  reject: (e: Error) => void
  abort: AbortController
  /** The attempt gave way to an incoming connection from the same node; wait for that one. */
  yielded: boolean
  timer?: NodeJS.Timeout
}

interface Waiter {
  resolve: (reply: Term | undefined) => void
}

/** Erlang compares atoms by their text; node names are compared so, byte by byte in UTF-8. */
function nameGreater(a: string, b: string): boolean {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')) > 0
}

function fqdn(): string {
  const h = os.hostname()
  if (h.includes('.')) return h
  throw new DistConfigError(
    `cannot make a long node name: host name '${h}' is not fully qualified; give it as name@host`,
  )
}

/** The full node name for `name` as erl -sname / -name would form it. */
export function fullNodeName(name: string, longNames = false): string {
  const full = name.includes('@') ? name : `${name}@${longNames ? fqdn() : os.hostname().split('.')[0]}`
  if (!isValidNodeName(full)) throw new DistConfigError(`invalid node name '${name}'`)
  return full
}

export class DistManager extends EventEmitter<DistManagerEvents> {
  readonly nodeName: Atom
  /** Our creation: from EPMD's registration, kept until stop() (a restart registers again). */
  creation = 0
  /** Owns the replies to calls the manager makes itself (ping); pid id 0 is reserved for it. */
  pid!: Pid
  private readonly opts: DistManagerOptions
  /** Whether this node uses long names: it connects only to nodes of the same kind. */
  private readonly longNames: boolean
  private readonly log: Logger
  private readonly cookie: string
  private readonly offered: bigint
  private readonly conns = new Map<string, Connection>()
  private readonly pendingOut = new Map<string, PendingOut>()
  /** Per node whose attempt to us is being accepted: settles with the connection its handshake set up, or
   *  undefined if it failed (net_kernel's pending connection). */
  private readonly incoming = new Map<string, Promise<Connection | undefined>>()
  /** Incoming sockets still in the handshake (closed by stop()). */
  private readonly handshaking = new Set<Duplex>()
  private readonly waiters = new Map<string, Waiter>()
  private server: net.Server | undefined
  private registration: Registration | undefined
  private embedded: EpmdServer | undefined
  private state: 'new' | 'starting' | 'started' | 'stopped' = 'new'
  private nextPid = 1
  private nextSerial = 0
  private refCounter = 0
  private readonly refSalt = randomBytes(8)
  private listenPort = 0

  constructor(opts: DistManagerOptions) {
    super()
    const tick = opts.netTicktime
    if (tick !== undefined && !(typeof tick === 'number' && tick > 0 && Number.isFinite(tick)))
      throw new DistConfigError(`netTicktime must be a positive number of seconds, not ${String(tick)}`)
    this.opts = opts
    this.log = opts.logger ?? defaultLogger
    this.nodeName = atom(fullNodeName(opts.name, opts.longNames))
    // Given, or what the name says: a host with dots (an FQDN, an address) is a long name.
    this.longNames = opts.longNames ?? isLongNodeName(this.nodeName.name)
    this.cookie = opts.cookie ?? readDefaultCookie()
    this.offered =
      DEFAULT_FLAGS | (opts.fragments ? DFLAG_FRAGMENTS : 0n) | (opts.flags ?? 0n) | (opts.hidden === false ? DFLAG_PUBLISHED : 0n)
  }

  get alive(): string {
    return this.nodeName.name.split('@')[0]
  }

  /** The port this node accepts distribution connections on (after start()). */
  get port(): number {
    return this.listenPort
  }

  /** The embedded EPMD this node started because none answered, if any. */
  get embeddedEpmd(): EpmdServer | undefined {
    return this.embedded
  }

  /** Listens and registers. Again after stop() (or a failed start), with a new creation from EPMD. */
  async start(): Promise<void> {
    if (this.state === 'starting' || this.state === 'started')
      throw new DistConfigError(`start() called while the node is already ${this.state}`)
    this.state = 'starting'
    try {
      const server = this.opts.tls ? this.tlsServer(this.opts.tls) : net.createServer((s) => this.accept(s))
      const host = this.opts.listenHost ?? '0.0.0.0'
      const port = this.opts.listenPort ?? 0
      await new Promise<void>((resolve, reject) => {
        const failed = (e: Error) => reject(new DistListenError(host, port, { cause: e }))
        server.once('error', failed)
        server.listen(port, host, () => {
          server.off('error', failed)
          resolve()
        })
      })
      // From here on, errors are the listener's own (a failed listen is start()'s rejection, reported once).
      server.on('error', (e) => this.log.error(`distribution listener error: ${e.message}`))
      this.server = server
      this.listenPort = (server.address() as net.AddressInfo).port
      if (this.opts.epmd === false) this.creation = this.opts.creation ?? genCreation()
      else {
        this.registration = await this.registerWithEpmd()
        this.creation = this.registration.creation
      }
      this.pid = new Pid(this.nodeName, 0, 0, this.creation)
      this.state = 'started'
      this.log.info(`node ${this.nodeName.name} listening on port ${this.listenPort}, creation ${this.creation}`)
    } catch (e) {
      this.state = 'stopped'
      await this.teardown()
      throw e
    }
  }

  /** The TLS listener: a session must be set up (and the client's certificate pass) before the handshake. */
  private tlsServer(t: DistTlsOptions): tls.Server {
    const verify = t.verify !== false
    const requireCert = t.requireClientCert === true
    const server = tls.createServer(
      {
        cert: t.cert,
        key: t.key,
        ca: t.ca,
        passphrase: t.passphrase,
        requestCert: verify || requireCert,
        // With a required certificate, TLS itself refuses a missing or untrusted one; an optional one is
        // checked in the callback below.
        rejectUnauthorized: verify && requireCert,
        handshakeTimeout: this.opts.setupTime ?? DEFAULT_SETUP_TIME,
      },
      (s) => {
        const presented = Object.keys(s.getPeerCertificate() ?? {}).length > 0
        const refuse = (why: string) => {
          this.log.info(`TLS connection from ${s.remoteAddress} refused: ${why}`, { code: 'ERR_DIST_TLS' })
          s.destroy()
        }
        if (requireCert && !presented) return refuse('no client certificate')
        if (verify && presented && !s.authorized) return refuse(`client certificate: ${s.authorizationError}`)
        this.accept(s)
      },
    )
    server.on('tlsClientError', (e: Error & { code?: string }, s: tls.TLSSocket) =>
      this.log.info(`TLS connection from ${s?.remoteAddress ?? 'unknown peer'} refused: ${e.code ?? e.message}`, {
        code: 'ERR_DIST_TLS',
        reason: e.message,
      }),
    )
    return server
  }

  private async registerWithEpmd(): Promise<Registration> {
    const epmdHost = this.opts.epmdHost ?? '127.0.0.1'
    const epmdPort = this.opts.epmdPort ?? defaultEpmdPort()
    const reg = () =>
      register({ name: this.alive, port: this.listenPort, hidden: this.opts.hidden ?? true, epmdHost, epmdPort })
    let r: Registration
    try {
      r = await reg()
    } catch (e) {
      if (!(e instanceof EpmdConnectError) || this.opts.embeddedEpmd === false) throw e
      this.log.info(`no EPMD answers on ${epmdHost}:${epmdPort}: starting an embedded one`)
      try {
        this.embedded = await startEpmdServer({ port: epmdPort, host: epmdHost })
      } catch (le) {
        // Another process started one meanwhile: use it.
        if (!(le instanceof EpmdListenError)) throw le
      }
      r = await reg()
    }
    // The creation stays the one of the first registration: the node is the same incarnation after EPMD
    // comes back, and peers already hold pids with it.
    r.on('lost', (reason) => this.log.warn(`EPMD registration lost: ${reason.message}; registering again`))
    r.on('registered', (c) => this.log.info(`registered with EPMD again (EPMD creation ${c}; keeping ${this.creation})`))
    return r
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return
    this.state = 'stopped'
    await this.teardown()
  }

  private async teardown(): Promise<void> {
    for (const p of this.pendingOut.values()) p.abort.abort()
    for (const c of [...this.conns.values()]) c.close('stopped')
    for (const s of this.handshaking) s.destroy()
    this.handshaking.clear()
    await this.registration?.close()
    this.registration = undefined
    const srv = this.server
    this.server = undefined
    if (srv) await new Promise<void>((r) => srv.close(() => r()))
    const embedded = this.embedded
    if (embedded) {
      // Unlike the daemon erl starts, this EPMD ends with this process: nodes registered with it stay up but
      // can no longer be found by name.
      // This node's own entry may still be listed: its unregistration (closing the socket) is on its way.
      const others = embedded.names().map((n) => n.name).filter((n) => n !== this.alive)
      if (others.length > 0)
        this.log.warn(
          `stopping the embedded EPMD on port ${embedded.port}: ${others.join(', ')} registered with it and can no longer be found by name (start epmd -daemon before the nodes to keep it)`,
          { nodes: others },
        )
      await embedded.close()
    }
    this.embedded = undefined
  }

  /** A new pid on this node (for processes of the layer above). Pid id 0 is the manager's own. */
  makePid(): Pid {
    this.requireStarted()
    const id = this.nextPid
    if (this.nextPid >= 0x7fff) {
      this.nextPid = 1
      this.nextSerial = (this.nextSerial + 1) & 0x1fff
    } else this.nextPid++
    return new Pid(this.nodeName, id, this.nextSerial, this.creation)
  }

  /** A new reference on this node: three 32-bit words, unique for the manager's life. */
  makeRef(): Ref {
    this.requireStarted()
    const n = ++this.refCounter
    return new Ref(this.nodeName, this.creation, [
      n & 0x3ffff,
      (Math.floor(n / 0x40000) ^ this.refSalt.readUInt32BE(0)) >>> 0,
      this.refSalt.readUInt32BE(4),
    ])
  }

  connection(node: Atom | string): Connection | undefined {
    return this.conns.get(typeof node === 'string' ? node : node.name)
  }

  /** Every connected node (to Erlang, a C-node's peers are all "hidden" connections). */
  nodes(): Atom[] {
    return [...this.conns.values()].map((c) => c.peer)
  }

  private requireStarted(): void {
    if (this.state !== 'started' && this.state !== 'starting') throw new NotStartedError('the distribution is not started')
  }

  // --- outgoing -----------------------------------------------------------------------------

  /** The connection to `node`, set up if needed; concurrent calls share one attempt. */
  connect(node: Atom | string, opts: { timeout?: number; signal?: AbortSignal } = {}): Promise<Connection> {
    if (this.state !== 'started') return Promise.reject(new NotStartedError('the distribution is not started'))
    try {
      checkTimeout(opts.timeout)
    } catch (e) {
      return Promise.reject(e)
    }
    const name = typeof node === 'string' ? node : node.name
    if (!isValidNodeName(name)) return Promise.reject(new DistConfigError(`invalid node name '${name}'`))
    if (name === this.nodeName.name) return Promise.reject(new DistConfigError('cannot connect to this node itself'))
    const existing = this.conns.get(name)
    if (existing && !existing.closed) return Promise.resolve(existing)
    // An attempt from that node is being accepted: as net_kernel's pending connection, wait for it rather
    // than start a second one that the peer would refuse ('alive') once the first is up.
    const incoming = this.incoming.get(name)
    if (incoming !== undefined && !this.pendingOut.has(name))
      return withDeadline(
        incoming.then((c) => (c !== undefined && !c.closed ? c : this.connect(name))),
        `connecting to ${name}`,
        opts.timeout,
        opts.signal,
      )
    let p = this.pendingOut.get(name)
    if (!p) {
      const refused = this.nameStyleRefusal(name)
      if (refused !== undefined) return Promise.reject(new NodeUnreachableError(name, refused))
      p = this.startConnect(name)
      void p.promise.catch(() => {})
    }
    return withDeadline(p.promise, `connecting to ${name}`, opts.timeout, opts.signal)
  }

  /**
   * Why this node does not connect to `name`, if it does not: a node of short names connects only to short
   * names (a host without dots) and one of long names only to long ones, as erl's net_kernel refuses the other
   * kind ("System running to use fully qualified hostnames"), so a cluster never mixes the two. A connection
   * the other node sets up is taken, as erl takes it.
   */
  private nameStyleRefusal(name: string): string | undefined {
    if (isLongNodeName(name) === this.longNames) return undefined
    const host = nodeHost(name)
    return this.longNames
      ? `this node uses long names (-name) and ${host} is not a fully qualified host name`
      : `this node uses short names (-sname) and ${host} is a fully qualified host name or an address`
  }

  private startConnect(name: string): PendingOut {
    let resolve!: (c: Connection) => void
    let reject!: (e: Error) => void
    const promise = new Promise<Connection>((res, rej) => {
      resolve = res
      reject = rej
    })
    const p: PendingOut = { promise, resolve, reject, abort: new AbortController(), yielded: false }
    this.pendingOut.set(name, p)
    const settle = () => {
      clearTimeout(p.timer)
      if (this.pendingOut.get(name) === p) this.pendingOut.delete(name)
    }
    p.promise.then(settle, settle)
    void this.runConnect(name, p)
    return p
  }

  private async runConnect(name: string, p: PendingOut): Promise<void> {
    const [alive, host] = name.split('@')
    const setupTime = this.opts.setupTime ?? DEFAULT_SETUP_TIME
    let socket: Duplex | undefined
    try {
      let port: number | undefined
      try {
        port = this.opts.lookup
          ? await this.opts.lookup(alive, host)
          : (await portPlease(alive, host, this.opts.epmdPort ?? defaultEpmdPort(), { timeout: setupTime, signal: p.abort.signal }))?.port
      } catch (e) {
        throw new NodeUnreachableError(name, `EPMD lookup failed: ${(e as Error).message}`, { cause: e })
      }
      if (port === undefined) throw new NodeUnreachableError(name, `not registered with the EPMD on ${host}`)
      socket = await this.openSocket(host, port, setupTime, p.abort.signal)
      const r = await initiateHandshake(socket, {
        name: this.nodeName.name,
        peer: name,
        cookie: this.cookie,
        creation: this.creation,
        flags: this.offered,
        timeout: setupTime,
        signal: p.abort.signal,
        lengthBytes: this.opts.tls ? 4 : 2,
        // 'alive': the peer still has a connection from a node of our name. If we know of none, it is stale.
        onAlive: () => !this.conns.has(name),
      })
      this.established(r, socket)
    } catch (e) {
      if (p.yielded || (e instanceof HandshakeStatusError && e.status === 'nok')) {
        // Simultaneous connect: the peer's attempt to us wins; this call completes when that one does.
        p.yielded = true
        if (!this.conns.has(name)) {
          p.timer = setTimeout(() => p.reject(new DistTimeoutError(`connection from ${name} after a simultaneous connect`, setupTime)), setupTime)
          p.timer.unref()
        }
        return
      }
      const err = e instanceof Error ? e : new Error(String(e))
      const fail = () => {
        this.log[err instanceof CookieMismatchError ? 'warn' : 'info'](`connection to ${name} failed: ${err.message}`, { node: name, code: (err as { code?: string }).code })
        p.reject(err instanceof HandshakeError || err instanceof NodeUnreachableError ? err : new NodeUnreachableError(name, err.message, { cause: err }))
      }
      // An attempt from that node being accepted (ours met 'alive' while a reconnect raced it): this call
      // completes with that connection, as with a simultaneous connect, and fails only if it fails too.
      const incoming = this.incoming.get(name)
      if (incoming !== undefined) void incoming.then((c) => (c !== undefined && !c.closed ? p.resolve(c) : fail()))
      else fail()
    }
  }

  private openSocket(host: string, port: number, timeout: number, signal: AbortSignal): Promise<Duplex> {
    if (this.opts.connect) return Promise.resolve(this.opts.connect(host, port))
    const t = this.opts.tls
    return new Promise((resolve, reject) => {
      const s = t
        ? tls.connect({
            host,
            port,
            cert: t.cert,
            key: t.key,
            ca: t.ca,
            passphrase: t.passphrase,
            // inet_tls_dist sends the node's host as SNI and checks the certificate against it.
            servername: net.isIP(host) ? undefined : host,
            rejectUnauthorized: t.verify !== false,
          })
        : net.connect({ host, port })
      const timer = setTimeout(() => fail(new DistTimeoutError(`TCP connect to ${host}:${port}`, timeout)), timeout)
      const onAbort = () => fail(new DistAbortedError(`TCP connect to ${host}:${port}`))
      const fail = (e: Error) => {
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
        s.destroy()
        reject(e)
      }
      signal.addEventListener('abort', onAbort)
      s.once('error', (e) =>
        fail(new NodeUnreachableError(`${host}:${port}`, `${t ? 'TLS: ' : ''}${e.message}`, { cause: e })),
      )
      s.once(t ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
        s.removeAllListeners('error')
        resolve(s)
      })
    })
  }

  // --- incoming -----------------------------------------------------------------------------

  /** Runs the acceptor handshake on an incoming socket (the listener calls this; tests may too). */
  accept(socket: Duplex): void {
    const remote = (socket as net.Socket).remoteAddress
    let peer: string | undefined
    let settleIncoming: ((c: Connection | undefined) => void) | undefined
    if (this.state !== 'started') {
      socket.destroy()
      return
    }
    this.handshaking.add(socket)
    acceptHandshake(socket, {
      name: this.nodeName.name,
      cookie: this.cookie,
      creation: this.creation,
      flags: this.offered,
      timeout: this.opts.setupTime ?? DEFAULT_SETUP_TIME,
      lengthBytes: this.opts.tls ? 4 : 2,
      decide: (hello) => {
        const d = this.decide(hello)
        if (d !== 'nok' && d !== 'not_allowed') {
          peer = typeof d === 'object' ? d.named : hello.name
          settleIncoming = this.expectIncoming(peer)
        }
        return d
      },
      beforeAck: async (name, status) => {
        if (status !== 'alive') return
        // The peer says our connection to it is stale: drop it before this one takes its place.
        const old = this.conns.get(name)
        if (old) old.close('replaced by a new connection from the same node')
      },
    }).then(
      (r) => {
        this.handshaking.delete(socket)
        if (this.state !== 'started') {
          socket.destroy()
          settleIncoming?.(undefined)
          return
        }
        settleIncoming?.(this.established(r, socket))
      },
      (e: Error) => {
        this.handshaking.delete(socket)
        settleIncoming?.(undefined)
        const who = (e as HandshakeError).peer ?? peer ?? remote ?? 'unknown peer'
        // 'nok' is the normal end of the losing side of a simultaneous connect.
        if (e instanceof HandshakeStatusError && e.status === 'nok') this.log.debug(`attempt from ${who} gave way: ${e.message}`)
        // A peer with another cookie: erl logs it as an error report; a config mistake worth seeing by default.
        else this.log[e instanceof CookieMismatchError ? 'warn' : 'info'](`connection attempt from ${who} refused: ${e.message}`, { node: who, code: (e as { code?: string }).code })
      },
    )
  }

  /** Announces an accepted attempt from `name` that connect() waits for; settle with its connection or undefined. */
  private expectIncoming(name: string): (c: Connection | undefined) => void {
    let resolve!: (c: Connection | undefined) => void
    const p = new Promise<Connection | undefined>((r) => (resolve = r))
    this.incoming.set(name, p)
    return (c) => {
      if (this.incoming.get(name) === p) this.incoming.delete(name)
      resolve(c)
    }
  }

  /** net_kernel's accept_pending: which status an incoming attempt gets. */
  private decide(hello: PeerHello): AcceptDecision {
    if (this.state !== 'started') return 'not_allowed'
    if (hello.nameMe) {
      let n = dynamicNodeName(hello.name)
      while (this.conns.has(n) || this.incoming.has(n)) n = dynamicNodeName(hello.name)
      return { named: n, creation: genCreation() }
    }
    const name = hello.name
    if (name === this.nodeName.name) return 'not_allowed'
    const c = this.conns.get(name)
    if (c && !c.closed) return 'alive'
    if (this.incoming.has(name)) return 'nok'
    const out = this.pendingOut.get(name)
    if (out && !out.yielded) {
      this.log.debug(`simultaneous connect with ${name}: the ${nameGreater(this.nodeName.name, name) ? 'outgoing' : 'incoming'} attempt wins`)
      if (nameGreater(this.nodeName.name, name)) return 'nok'
      // The peer's name is greater: its attempt wins and ours is dropped.
      out.yielded = true
      out.abort.abort()
      return 'ok_simultaneous'
    }
    return 'ok'
  }

  // --- connected ----------------------------------------------------------------------------

  private established(r: HandshakeResult, socket: Duplex): Connection {
    const name = r.peer.name
    const old = this.conns.get(name)
    if (old && !old.closed) old.close('replaced by a new connection from the same node')
    const conn = new Connection({
      socket,
      peer: r.peer,
      self: r.name,
      flags: r.flags,
      peerFlags: r.peerFlags,
      peerCreation: r.creation,
      tail: r.tail,
      // Unset options take Connection's defaults (net_ticktime 60 s, 256 MiB frames, 64 KiB fragments).
      netTicktime: this.opts.netTicktime,
      maxFrameSize: this.opts.maxFrameSize,
      fragmentSize: this.opts.fragmentSize,
      directRead: this.opts.directRead,
      atomCache: this.opts.atomCache,
      highWaterMark: this.opts.highWaterMark,
      maxQueueSize: this.opts.maxQueueSize,
      decode: this.opts.decode,
      logger: this.log,
    })
    this.conns.set(name, conn)
    conn.on('control', (m) => this.onControl(m, conn))
    conn.once('close', (reason) => {
      if (this.conns.get(name) === conn) this.conns.delete(name)
      this.log.info(`node ${name} down: ${reason}`, { node: name, reason })
      this.safeEmit('nodedown', r.peer, reason)
    })
    this.log.info(`node ${name} up (${r.role === 'initiator' ? 'outgoing' : 'incoming'} connection)`, { node: name })
    const p = this.pendingOut.get(name)
    if (p) p.resolve(conn)
    this.safeEmit('nodeup', r.peer, conn)
    return conn
  }

  /** A listener that throws must not break the connection bookkeeping: it is logged instead. */
  private safeEmit<K extends 'nodeup' | 'nodedown'>(event: K, ...args: DistManagerEvents[K]): void {
    try {
      ;(this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args)
    } catch (e) {
      this.log.error(`'${event}' listener threw: ${(e as Error)?.stack ?? e}`)
    }
  }

  private onControl(msg: ControlMessage, conn: Connection): void {
    if (handleNetKernel(msg, conn, this)) return
    if (this.catchReply(msg)) return
    this.emit('control', msg, conn)
  }

  private catchReply(msg: ControlMessage): boolean {
    if (this.waiters.size === 0) return false
    let message: Term
    if ((msg.kind === 'SEND' || msg.kind === 'SEND_SENDER') && termEquals(msg.to, this.pid)) message = msg.message
    else if (msg.kind === 'ALIAS_SEND' && msg.alias.node === this.nodeName) message = msg.message
    else return false
    if (!(message instanceof Tuple) || message.length !== 2 || !(message.get(0) instanceof Ref)) return false
    const key = refKey(message.get(0) as Ref)
    const w = this.waiters.get(key)
    if (!w) return false
    this.waiters.delete(key)
    w.resolve(message.get(1))
    return true
  }

  /**
   * net_adm:ping/1: connect, then ask the remote net_kernel {is_auth, ourNode}. 'pong' when it answers yes;
   * 'pang' when the node cannot be reached, refuses us, or does not answer within `timeout` ms (default 10 s).
   */
  async ping(node: Atom | string, opts: { timeout?: number; signal?: AbortSignal } = {}): Promise<'pong' | 'pang'> {
    checkTimeout(opts.timeout)
    const timeout = opts.timeout ?? 10_000
    let conn: Connection
    try {
      conn = await this.connect(node, { timeout, signal: opts.signal })
    } catch (e) {
      this.log.debug(`ping ${String(node)}: ${(e as Error).message}`)
      return 'pang'
    }
    const ref = this.makeRef()
    const key = refKey(ref)
    const reply = new Promise<Term | undefined>((resolve) => {
      const done = (v: Term | undefined) => {
        timer.clear()
        conn.off('close', onClose)
        opts.signal?.removeEventListener('abort', onClose)
        this.waiters.delete(key)
        resolve(v)
      }
      const onClose = () => done(undefined)
      // longTimeout: Infinity or a timeout past 2^31 - 1 ms would fire setTimeout at once.
      const timer = longTimeout(onClose, timeout)
      conn.once('close', onClose)
      opts.signal?.addEventListener('abort', onClose)
      this.waiters.set(key, { resolve: done })
    })
    try {
      conn.send({ kind: 'REG_SEND', from: this.pid, toName: NET_KERNEL, message: isAuthCall(this.pid, ref, this.nodeName) })
    } catch (e) {
      this.waiters.get(key)?.resolve(undefined)
      return 'pang'
    }
    const r = await reply
    return r === atom('yes') ? 'pong' : 'pang'
  }
}

function refKey(r: Ref): string {
  return `${r.node.name}/${r.creation}/${r.ids.join('.')}`
}

function withDeadline<T>(p: Promise<T>, what: string, timeout?: number, signal?: AbortSignal): Promise<T> {
  if (timeout === undefined && signal === undefined) return p
  return new Promise<T>((resolve, reject) => {
    const cleanup = () => {
      timer?.clear()
      signal?.removeEventListener('abort', onAbort)
    }
    const onAbort = () => {
      cleanup()
      reject(new DistAbortedError(what, { cause: signal?.reason }))
    }
    const timer =
      timeout === undefined
        ? undefined
        : longTimeout(() => {
            cleanup()
            reject(new DistTimeoutError(what, timeout))
          }, timeout)
    if (signal?.aborted) return onAbort()
    signal?.addEventListener('abort', onAbort)
    p.then(
      (v) => {
        cleanup()
        resolve(v)
      },
      (e) => {
        cleanup()
        reject(e)
      },
    )
  })
}
