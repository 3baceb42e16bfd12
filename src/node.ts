// The Node: a distribution manager (EPMD, handshakes, connections) joined to a process runtime.
// Incoming control messages go to the runtime's router; outgoing signals go to the connection for their
// node, connecting on demand (signals for a node being connected wait, in order, and fail with noconnection
// if the connection cannot be made).
import { EventEmitter } from 'node:events'
import { DistManager, type DistManagerOptions } from './dist/manager.js'
import type { Connection } from './dist/connection.js'
import { encodeControl } from './dist/control.js'
import { DEFAULT_FLAGS, DFLAG_PUBLISHED } from './dist/flags.js'
import { encodeTerm, Writer } from './etf/index.js'
import { ConnectionClosedError, DistConfigError, NotStartedError, UnsupportedByPeerError, WriteQueueFullError } from './dist/errors.js'
import { BadArgError } from './runtime/errors.js'
import { Atom, Pid, atom, type Term } from './etf/terms.js'
import { defaultLogger, type Logger } from './logger.js'
import { registerErlangBifs } from './runtime/bifs.js'
import { FunctionRegistry, type RpcFunction } from './runtime/functions.js'
import type { GenServerCallbacks, GenServerOptions } from './runtime/genserver.js'
import { toAtom, type Name } from './runtime/ids.js'
import { startPg, type PgScope } from './runtime/pg.js'
import type { Process, ProcessFn, Timed } from './runtime/process.js'
import { Runtime, type Dest, type SpawnOptions } from './runtime/runtime.js'
import type { ControlMessage, Transport } from './runtime/signals.js'
import { isTimeout, timeoutRefusal } from './timers.js'

export interface NodeOptions extends DistManagerOptions {
  /**
   * Most signals held for a node while its connection is being set up (they cannot be encoded before the
   * handshake has fixed the flags). Past it the held signals are dropped and everything tied to that node
   * fires noconnection, as when a node goes down. Default 100,000.
   */
  maxPendingSignals?: number
  /**
   * Milliseconds a call (node.call, a process's call) given no timeout waits before TimeoutError, as
   * gen_server:call/2's default. Default 5000 (DEFAULT_CALL_TIMEOUT); Infinity waits for ever. rpc has no default
   * limit, as erpc:call.
   */
  callTimeout?: number
}

/**
 * Throws what encoding msg for a connection would throw (EncodeError for a value that is not a term,
 * MalformedControlError for a bad control field), for a signal that must wait for its connection: the
 * sender gets the error now, as on a connected node, instead of the signal failing later with no one to tell.
 */
function sendable(msg: ControlMessage): void {
  const { control, payload } = encodeControl(msg, DEFAULT_FLAGS)
  encodeTerm(new Writer(), control)
  if (payload !== undefined) encodeTerm(new Writer(), payload)
}

/** Default NodeOptions.maxPendingSignals. */
export const DEFAULT_MAX_PENDING_SIGNALS = 100_000

interface NodeEvents {
  nodeup: [node: Atom]
  nodedown: [node: Atom, reason: string]
}

export class Node extends EventEmitter<NodeEvents> {
  /** Functions Erlang can call here as M:F (erpc:call, rpc:call, spawn/4); may be filled before start(). */
  readonly functions = new FunctionRegistry()
  readonly logger: Logger
  private readonly manager: DistManager
  private rt: Runtime | undefined
  /** Per node whose connection is being set up: its signals, in order, and a promise that settles once
   * the connection is up (and they are written) or has failed. */
  private readonly connecting = new Map<Atom, { queue: ControlMessage[]; settled: Promise<void> }>()
  private readonly maxPendingSignals: number
  private readonly callTimeout: number | undefined
  /** The start() or stop() under way, which later calls share or wait for. */
  private starting: Promise<void> | undefined
  private stopping: Promise<void> | undefined

  constructor(opts: NodeOptions) {
    super()
    this.logger = opts.logger ?? defaultLogger
    this.maxPendingSignals = opts.maxPendingSignals ?? DEFAULT_MAX_PENDING_SIGNALS
    const ct = opts.callTimeout
    if (ct !== undefined && !isTimeout(ct)) throw new DistConfigError(timeoutRefusal('callTimeout', ct))
    this.callTimeout = ct
    this.manager = new DistManager(opts)
    // A connection is visible only when both sides publish (dist_util's adjust_flags): every connection of
    // a hidden node is hidden, whatever the peer.
    const published = opts.hidden === false
    registerErlangBifs(this.functions, (kind) =>
      this.manager.nodes().filter((n) => {
        if (kind === 'connected') return true
        const c = this.manager.connection(n)
        const visible = published && c !== undefined && (c.peerFlags & DFLAG_PUBLISHED) !== 0n
        return kind === 'visible' ? visible : !visible
      }),
      (node) => this.disconnect(node),
    )
    this.manager.on('control', (msg: ControlMessage) => this.rt?.handleControl(msg))
    this.manager.on('nodeup', (node: Atom) => {
      this.rt?.nodeUp(node)
      this.emit('nodeup', node)
    })
    this.manager.on('nodedown', (node: Atom, reason: string) => {
      this.rt?.nodeDown(node, new ConnectionClosedError(node.name, reason))
      this.emit('nodedown', node, reason)
    })
  }

  /** This node's name, e.g. tsnode@host. */
  get name(): Atom {
    return this.manager.nodeName
  }

  get creation(): number {
    return this.manager.creation
  }

  get started(): boolean {
    return this.rt !== undefined
  }

  /** Process groups, as kernel's pg default scope: join/leave for this node's processes, members across the
   *  nodes that run a pg scope. NotStartedError before start(). */
  get pg(): PgScope {
    const pg = this.runtime.pg
    if (pg === undefined) throw new NotStartedError('this node runs no pg scope')
    return pg
  }

  /**
   * Another pg scope, as `pg:start(Scope)` starts one (Elixir's Phoenix.PubSub runs 'Elixir.Phoenix.PubSub'):
   * started and registered under `name` on first use, in step with the scope of that name on each node.
   */
  pgScope(name: Name): PgScope {
    const rt = this.runtime
    const a = toAtom(name, 'pg scope')
    let scope = rt.pgScopes.get(a)
    if (scope === undefined) {
      scope = startPg(rt, a)
      for (const n of this.nodes()) scope.nodeUp(n)
    }
    return scope
  }

  /** The process runtime (spawn, links, monitors...); NotStartedError before start(). */
  get runtime(): Runtime {
    if (this.rt === undefined) throw new NotStartedError('the node is not started (call start() first)')
    return this.rt
  }

  /**
   * Listens, registers with EPMD, and starts the runtime (rex, net_kernel, the io server). Calls made while
   * it starts share its outcome; after a failed start, or after stop(), it can be called again (the node
   * then has a new creation, as an erl node restarted under the same name: pids of before are not its).
   */
  start(): Promise<void> {
    if (this.rt !== undefined) return Promise.resolve()
    this.starting ??= this.startOnce().finally(() => (this.starting = undefined))
    return this.starting
  }

  private async startOnce(): Promise<void> {
    if (this.stopping !== undefined) await this.stopping
    await this.manager.start()
    const rt = new Runtime({
      node: this.manager.nodeName,
      creation: this.manager.creation,
      logger: this.logger,
      functions: this.functions,
      callTimeout: this.callTimeout,
    })
    const transport: Transport = { send: (node, msg) => this.transmit(node, msg) }
    rt.setTransport(transport)
    this.rt = rt
  }

  /**
   * Ends every process (reason `shutdown`), closes the connections and unregisters from EPMD. Called while
   * the node starts, it waits for the start and then stops it.
   */
  async stop(): Promise<void> {
    if (this.starting !== undefined) await this.starting.catch(() => {})
    if (this.stopping !== undefined) return this.stopping
    const rt = this.rt
    if (rt === undefined) return
    this.stopping = this.stopOnce(rt).finally(() => (this.stopping = undefined))
    return this.stopping
  }

  private async stopOnce(rt: Runtime): Promise<void> {
    rt.shutdown()
    rt.setTransport(undefined)
    this.rt = undefined
    this.connecting.clear()
    await this.flush(2000)
    await this.manager.stop()
  }

  /** Waits (at most `ms`) until every connection has handed its queued bytes to the OS: the exit signals of
   * the shutdown reach the peers before the sockets close. */
  private async flush(ms: number): Promise<void> {
    const deadline = Date.now() + ms
    const busy = () => this.manager.nodes().some((n) => (this.manager.connection(n)?.pendingBytes ?? 0) > 0)
    while (busy() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
  }

  // --- the transport ---------------------------------------------------------------------------

  private transmit(node: Atom, msg: ControlMessage): void {
    const held = this.connecting.get(node)
    if (held === undefined) {
      const conn = this.manager.connection(node)
      if (conn !== undefined && !conn.closed) {
        this.write(conn, msg)
        return
      }
    }
    // Not connected: the signal waits for the connection, so it is checked now, while the sender is here.
    sendable(msg)
    if (held !== undefined) {
      const queued = held.queue
      if (queued.length >= this.maxPendingSignals) {
        // The connection is slow to come up and the senders did not wait (whenWritable): rather than hold an
        // unbounded backlog, drop it as a node going down drops it; links and monitors fire noconnection.
        this.logger.warn(`dropping ${queued.length} signals held for ${node.name} while connecting (maxPendingSignals)`, { node: node.name })
        queued.length = 0
        this.rt?.nodeDown(node)
      }
      queued.push(msg)
      return
    }
    const entry = { queue: [msg], settled: Promise.resolve() }
    this.connecting.set(node, entry)
    // stop() clears the map: an entry no longer in it has its signals dropped.
    const current = () => this.connecting.get(node) === entry
    const deliver = (c: Connection) => {
      this.connecting.delete(node)
      for (const m of entry.queue) this.writeQueued(c, node, m)
    }
    // connect() completes with the peer's own connection when ours gives way to it (a simultaneous connect,
    // or 'alive' while a reconnect races): the signals, and those sent meanwhile, go on it in order.
    entry.settled = this.manager.connect(node).then(
      (c) => {
        if (current()) deliver(c)
      },
      (err: unknown) => {
        if (!current()) return
        this.connecting.delete(node)
        this.rt?.nodeDown(node, err instanceof Error ? err : new Error(String(err)))
      },
    )
  }

  /** Writes a signal held while connecting; sendable() let it through, so a failure here loses it alone. */
  private writeQueued(conn: Connection, node: Atom, m: ControlMessage): void {
    try {
      this.write(conn, m)
    } catch (e) {
      this.logger.warn(`${m.kind} to ${node.name} dropped: ${e instanceof Error ? e.message : String(e)}`, { node: node.name })
    }
  }

  /** Writes msg to conn; a signal lost with the connection is dropped, the sender's mistakes are thrown. */
  private write(conn: Connection, msg: ControlMessage): void {
    try {
      conn.send(msg)
    } catch (e) {
      if (e instanceof ConnectionClosedError) {
        // As in Erlang, a signal to a node whose connection just went down is lost; nodedown follows.
        this.logger.debug(`${msg.kind} to ${conn.peer.name} dropped: ${e.message}`)
        return
      }
      if (e instanceof WriteQueueFullError) {
        // The peer stopped reading (or cannot keep up) and the senders did not wait for whenWritable(): more
        // than maxQueueSize bytes wait for it. Rather than grow without bound, the connection goes down, as an
        // unresponsive peer's does at net_ticktime: every link and monitor to that node fires with
        // noconnection, and signals to it are lost from here on, as for any node that went down.
        this.logger.warn(`closing connection to ${conn.peer.name}: ${e.message}`, { node: conn.peer.name, code: e.code })
        conn.close(`${e.code}: ${e.message}`)
        return
      }
      if (e instanceof UnsupportedByPeerError) {
        // The peer cannot spawn for us: answer the request here, as erlang:spawn_request does (notsup).
        if (msg.kind === 'SPAWN_REQUEST')
          this.rt?.handleControl({ kind: 'SPAWN_REPLY', reqId: msg.reqId, to: msg.from, flags: 0, result: atom('notsup') })
        else this.logger.debug(`${msg.kind} to ${conn.peer.name} dropped: ${e.message}`)
        return
      }
      throw e
    }
  }

  // --- the public API --------------------------------------------------------------------------

  spawn(fn: ProcessFn, opts?: SpawnOptions): Process {
    return this.runtime.spawn(fn, opts)
  }

  register(name: Name, pid: Pid): void {
    this.runtime.register(name, pid)
  }

  unregister(name: Name): void {
    this.runtime.unregister(name)
  }

  whereis(name: Name): Pid | undefined {
    return this.runtime.whereis(name)
  }

  registered(): Atom[] {
    return this.runtime.registered()
  }

  /** Sends from the node's system process. */
  send(dest: Dest, msg: Term): void {
    this.runtime.send(dest, msg)
  }

  /** erlang:exit(Pid, Reason) from the node's system process. */
  exit(pid: Pid, reason: Term): void {
    this.runtime.exit(pid, reason)
  }

  // The promise-returning methods are async so that NotStartedError (this.runtime before start() or after
  // stop()) rejects, as their argument errors do, instead of throwing where a caller only expects a rejection.
  async call(server: Dest, request: Term, opts?: Timed): Promise<Term> {
    return this.runtime.call(server, request, opts)
  }

  cast(server: Dest, request: Term): void {
    this.runtime.cast(server, request)
  }

  async rpc(node: Atom | string, module: Name, fn: Name, args: Term[], opts?: Timed): Promise<Term> {
    return this.runtime.rpc(node, module, fn, args, opts)
  }

  registerFunction(module: Name, fn: Name, impl: RpcFunction): void {
    this.functions.register(module, fn, impl)
  }

  unregisterFunction(module: Name, fn: Name): boolean {
    return this.functions.unregister(module, fn)
  }

  async startGenServer<S, A = Term>(impl: GenServerCallbacks<S, A>, opts?: GenServerOptions<A>): Promise<Process> {
    return this.runtime.startGenServer(impl, opts)
  }

  /** Runs `fn` in a short-lived process (for links, monitors, receives from outside a process). */
  async withProcess<T>(fn: (p: Process) => Promise<T>): Promise<T> {
    return this.runtime.withProcess(fn)
  }

  /** net_adm:ping/1: 'pong' if `node` answers net_kernel's is_auth, 'pang' otherwise. */
  ping(node: Atom | string, opts: Timed = {}): Promise<'pong' | 'pang'> {
    return this.manager.ping(node, opts)
  }

  /**
   * erlang:disconnect_node/1: closes the connection to `node` (its links get noconnection, its monitors DOWN,
   * 'nodedown' says `disconnect`); true, also when there was none, as erlang:disconnect_node answers.
   */
  disconnect(node: Atom | string): boolean {
    if (!(node instanceof Atom) && typeof node !== 'string') throw new BadArgError(`disconnect takes a node name, not ${String(node)}`)
    this.manager.connection(node)?.close('disconnect')
    return true
  }

  /** Connected nodes. */
  nodes(): Atom[] {
    return this.manager.nodes()
  }

  /** The connection to `node`, if there is one (for diagnostics: stats, pendingBytes). */
  connection(node: Atom | string): Connection | undefined {
    return this.manager.connection(node)
  }

  /**
   * Resolves once the connection to `node` has fewer than highWaterMark bytes waiting to be written (at once
   * when it has, or when there is no connection; after the handshake when one is being set up). A TypeScript process that sends much to one node awaits it
   * between sends, as an Erlang sender is suspended on a busy distribution port; one that does not is cut off
   * at maxQueueSize (the connection is closed: see the transport's write).
   */
  async whenWritable(node: Atom | string): Promise<void> {
    const name = toAtom(node, 'node')
    // A connection being set up: its held signals are written once it is up; wait for that first.
    await this.connecting.get(name)?.settled
    const conn = this.manager.connection(name)
    if (conn === undefined || conn.closed) return
    try {
      await conn.whenWritable()
    } catch (e) {
      // Closed while waiting: nothing is left to wait for (nodedown tells the rest).
      if (!(e instanceof ConnectionClosedError)) throw e
    }
  }

  /** Connects now (otherwise the first signal for the node does). */
  async connect(node: Atom | string, opts?: Timed): Promise<void> {
    await this.manager.connect(toAtom(node, 'node'), opts)
  }
}
