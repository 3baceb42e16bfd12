// A process: an async function with a pid and a mailbox. The `self` handed to the function.
import { Atom, ImproperList, Pid, Ref, Tuple, tuple, type Term } from '../etf/terms.js'
import {
  ALIAS,
  DOWN,
  ERPC,
  ERROR,
  EXECUTE_CALL,
  EXIT_CLASS,
  GEN_CALL,
  GEN_CAST,
  NOCONNECTION,
  NOPROC,
  NORMAL,
  RETURN,
  SIGNAL,
  SPAWN_REPLY,
  THROW,
} from './atoms.js'
import {
  AbortError,
  BadArgError,
  CallExitError,
  CallingSelfError,
  ErlangError,
  ErlangExit,
  ErlangThrow,
  NoProcError,
  ProcessExitedError,
  RpcError,
  TimeoutError,
} from './errors.js'
import { Mailbox, type Matcher, type ReceiveOptions } from './mailbox.js'
import type {
  AliasMode,
  Dest,
  LinkEntry,
  MonitorIn,
  MonitorOut,
  MonitorTarget,
  Runtime,
  SpawnOptions,
} from './runtime.js'
import { refKey, samePid, sameRef, toAtom, type Name } from './ids.js'
import { checkTimeout } from '../timers.js'

export type ProcessFn = (self: Process) => unknown

export interface Timed {
  /** Milliseconds (Infinity: no limit). Default: the runtime's callTimeout (5000) for call, no limit otherwise. */
  timeout?: number
  signal?: AbortSignal
}

export class Process {
  readonly mailbox = new Mailbox()
  /** process_flag(trap_exit): exit signals become {'EXIT', From, Reason} messages. */
  trapExit = false
  readonly done: Promise<Term>

  /** @internal */ _name: Atom | undefined
  /** @internal */ readonly _links = new Map<string, LinkEntry>()
  /** @internal */ readonly _monitorsOut = new Map<string, MonitorOut>()
  /** @internal */ readonly _monitorsIn = new Map<string, MonitorIn>()
  /** @internal */ readonly _aliases = new Set<string>()
  /** @internal */ readonly _spawnReqs = new Set<string>()

  private _alive = true
  private _reason: Term | undefined
  private readonly abort = new AbortController()
  private resolveDone!: (r: Term) => void

  /** @internal Created by Runtime only. */
  constructor(
    readonly runtime: Runtime,
    readonly pid: Pid,
  ) {
    this.done = new Promise((r) => (this.resolveDone = r))
  }

  get alive(): boolean {
    return this._alive
  }

  /** The exit reason once the process has exited. */
  get exitReason(): Term | undefined {
    return this._reason
  }

  /** Aborted when the process exits (its reason is a ProcessExitedError): hand it to I/O the process starts. */
  get signal(): AbortSignal {
    return this.abort.signal
  }

  /** The registered name, if any. */
  get name(): Atom | undefined {
    return this._name
  }

  /** @internal */
  _markDead(reason: Term): void {
    this._alive = false
    this._reason = reason
    const err = new ProcessExitedError(reason)
    this.mailbox.close(err)
    this.abort.abort(err)
  }

  /** @internal */
  _resolveDone(): void {
    this.resolveDone(this._reason as Term)
  }

  private check(): void {
    if (!this._alive) throw new ProcessExitedError(this._reason as Term)
  }

  toString(): string {
    return `Process${this.pid}`
  }

  // --- messages ------------------------------------------------------------------------------

  /** Selective receive (see Matcher): non-matching messages stay queued in order. */
  receive(match?: (msg: Term) => boolean | undefined, opts?: ReceiveOptions): Promise<Term>
  receive<T>(match: (msg: Term) => T | false | undefined, opts?: ReceiveOptions): Promise<T>
  receive<T = Term>(match?: Matcher<T>, opts?: ReceiveOptions): Promise<T> {
    if (!this._alive) return Promise.reject(new ProcessExitedError(this._reason as Term))
    return this.mailbox.receive(match as (msg: Term) => T | false | undefined, opts)
  }

  send(dest: Dest, msg: Term): void {
    this.check()
    this.runtime.route(this.pid, dest, msg)
  }

  // --- links, exits ----------------------------------------------------------------------------

  link(pid: Pid): void {
    this.check()
    this.runtime.link(this, pid)
    this.check() // linking to a dead process may have killed us (noproc, not trapping exits)
  }

  unlink(pid: Pid): void {
    this.check()
    this.runtime.unlink(this, pid)
  }

  isLinked(pid: Pid): boolean {
    return this.runtime.isLinked(this, pid)
  }

  /** Ends this process with `reason` now; throws ErlangExit to unwind the function (catching it does not revive it). */
  exit(reason: Term = NORMAL): never {
    this.check()
    this.runtime.terminate(this, reason)
    throw new ErlangExit(reason)
  }

  /** erlang:exit(Pid, Reason). */
  sendExit(pid: Pid, reason: Term): void {
    this.check()
    this.runtime.sendExit(this.pid, pid, reason)
    this.check()
  }

  // --- monitors, aliases -----------------------------------------------------------------------

  monitor(target: MonitorTarget, opts: { alias?: Exclude<AliasMode, 'reply'> } = {}): Ref {
    this.check()
    return this.runtime.monitor(this, target, opts.alias)
  }

  /** Removes the monitor; with flush, also its DOWN message if already queued. */
  demonitor(ref: Ref, opts: { flush?: boolean } = {}): boolean {
    this.check()
    const active = this.runtime.demonitor(this, ref)
    if (opts.flush)
      this.mailbox.remove((m) => m instanceof Tuple && m.length === 5 && m.get(0) === DOWN && refIs(m.get(1), ref))
    return active
  }

  /** erlang:alias/1: a ref other processes can send to; with reply, it works for one message only. */
  alias(opts: { reply?: boolean } = {}): Ref {
    this.check()
    return this.runtime.createAlias(this, opts.reply ? 'reply' : 'explicit_unalias')
  }

  unalias(ref: Ref): boolean {
    this.check()
    return this.runtime.removeAlias(this, refKey(ref))
  }

  // --- registry, spawning ----------------------------------------------------------------------

  register(name: Name): void {
    this.check()
    this.runtime.register(name, this.pid)
  }

  unregister(): void {
    this.check()
    if (this._name !== undefined) this.runtime.unregister(this._name)
  }

  makeRef(): Ref {
    return this.runtime.makeRef()
  }

  spawn(fn: ProcessFn, opts: SpawnOptions & { link?: boolean } = {}): Process {
    this.check()
    const child = this.runtime.createProcess(opts)
    if (opts.link) this.runtime.link(this, child.pid)
    this.runtime.startProcess(child, fn)
    return child
  }

  spawnMonitor(fn: ProcessFn, opts: SpawnOptions = {}): { process: Process; ref: Ref } {
    this.check()
    const child = this.runtime.createProcess(opts)
    const ref = this.runtime.monitor(this, child.pid)
    this.runtime.startProcess(child, fn)
    return { process: child, ref }
  }

  /** erlang:spawn_request/5 to another node; the replies arrive as {spawn_reply, ReqId, ok | error, PidOrReason}. */
  spawnRequest(
    node: Atom | string,
    module: Name,
    fn: Name,
    args: Term[],
    opts: { link?: boolean; monitor?: boolean; reply?: 'yes' | 'error_only' | 'no' } = {},
  ): Ref {
    this.check()
    return this.runtime.spawnRequest(this, toAtom(node, 'node'), toAtom(module, 'module'), toAtom(fn, 'function'), args, opts)
  }

  /** erlang:spawn_request_abandon/1. */
  spawnRequestAbandon(reqId: Ref): boolean {
    this.check()
    return this.runtime.abandonSpawnRequest(this, reqId)
  }

  // --- OTP conventions -------------------------------------------------------------------------

  /**
   * gen_server:call: monitors the server with an alias, sends {'$gen_call', {Self, [alias | Ref]}, Request}
   * and waits for {[alias | Ref], Reply} or the DOWN. Errors: NoProcError, NoConnectionError, CallExitError,
   * TimeoutError, AbortError; CallingSelfError at once for a call to this process itself. Without a timeout it
   * waits the runtime's callTimeout (5000 ms, as gen_server:call/2).
   */
  async call(server: Dest, request: Term, opts: Timed = {}): Promise<Term> {
    this.check()
    checkTimeout(opts.timeout)
    if (server instanceof Ref) throw new BadArgError('call needs a pid or a registered name, not an alias')
    if (this.isSelf(server)) throw new CallingSelfError(destTerm(server, this.runtime), request)
    const ref = this.runtime.monitor(this, server as MonitorTarget, 'demonitor')
    const tag = new ImproperList([ALIAS], ref)
    this.runtime.route(this.pid, server, tuple(GEN_CALL, tuple(this.pid, tag), request), false)
    let r: { reply: Term } | { down: Term }
    try {
      r = await this.mailbox.receive<{ reply: Term } | { down: Term }>(
        (m) => {
          if (!(m instanceof Tuple)) return undefined
          if (m.length === 2) {
            const t = m.get(0)
            if (t instanceof ImproperList && t.elements.length === 1 && t.elements[0] === ALIAS && refIs(t.tail, ref))
              return { reply: m.get(1) }
          } else if (m.length === 5 && m.get(0) === DOWN && refIs(m.get(1), ref)) return { down: m.get(4) }
          return undefined
        },
        opts.timeout === undefined ? { ...opts, timeout: this.runtime.callTimeout } : opts,
      )
    } catch (e) {
      if (this._alive) this.demonitor(ref, { flush: true })
      throw waitFailed(e, 'gen_server call')
    }
    if ('reply' in r) {
      this.demonitor(ref, { flush: true })
      return r.reply
    }
    throw callError(r.down, server, this.runtime)
  }

  /** Whether `server` names this process: its pid, or a name registered to it here (gen.erl's calling_self). */
  private isSelf(server: Dest): boolean {
    if (server instanceof Pid) return samePid(server, this.pid)
    try {
      let name: Name
      if (server instanceof Atom || typeof server === 'string') name = server
      else {
        const [n, node] = this.runtime.nameAndNode(server)
        if (node !== this.runtime.nodeName) return false
        name = n
      }
      const pid = this.runtime.whereis(name)
      return pid !== undefined && samePid(pid, this.pid)
    } catch {
      return false // not a destination: the send says so
    }
  }

  /** gen_server:cast: {'$gen_cast', Request}; never fails (unknown names are ignored, as gen_server does). */
  cast(server: Dest, request: Term): void {
    this.check()
    this.runtime.route(this.pid, server, tuple(GEN_CAST, request), false)
  }

  /**
   * erpc:call(Node, M, F, Args): spawns erpc:execute_call/4 on `node` and decodes the result from the DOWN
   * reason. Remote exceptions: ErlangThrow / ErlangExit / ErlangError; NoConnectionError, RpcError, TimeoutError.
   */
  async rpc(node: Atom | string, module: Name, fn: Name, args: Term[], opts: Timed = {}): Promise<Term> {
    this.check()
    checkTimeout(opts.timeout)
    const res = this.makeRef()
    const reqId = this.spawnRequest(node, ERPC, EXECUTE_CALL, [res, toAtom(module, 'module'), toAtom(fn, 'function'), args], {
      monitor: true,
      reply: 'error_only',
    })
    const match = (m: Term): { spawnError: Term } | { down: Term } | undefined => {
      if (!(m instanceof Tuple)) return undefined
      if (m.length === 4 && m.get(0) === SPAWN_REPLY && refIs(m.get(1), reqId) && m.get(2) === ERROR)
        return { spawnError: m.get(3) }
      if (m.length === 5 && m.get(0) === DOWN && refIs(m.get(1), reqId)) return { down: m.get(4) }
      return undefined
    }
    let r: { spawnError: Term } | { down: Term }
    try {
      r = await this.mailbox.receive(match, opts)
    } catch (e) {
      if (!this._alive || !(e instanceof TimeoutError || e instanceof AbortError)) throw e
      if (this.runtime.abandonSpawnRequest(this, reqId) || this.runtime.demonitor(this, reqId)) {
        throw waitFailed(e, 'rpc')
      }
      // The result arrived just now: report it rather than the timeout, as erpc does.
      r = await this.mailbox.receive(match, { timeout: 0 })
    }
    const nodeAtom = toAtom(node, 'node')
    if ('spawnError' in r) {
      if (r.spawnError === NOCONNECTION) throw this.runtime.noConnection(nodeAtom)
      throw new RpcError(r.spawnError)
    }
    return erpcResult(r.down, res, nodeAtom, this.runtime)
  }
}

/** A receive's timeout or abort as the operation's own (what waited, not 'receive'); other errors as they are. */
function waitFailed(e: unknown, what: string): unknown {
  if (e instanceof TimeoutError) return new TimeoutError(what, e.timeout)
  if (e instanceof AbortError) return new AbortError(what, { cause: e.cause })
  return e
}

function refIs(t: Term, ref: Ref): boolean {
  return t instanceof Ref && sameRef(t, ref)
}

/**
 * The destination as Erlang writes it, for the errors that name it: a pid, an atom Name, or {Name, Node}
 * (from a tuple or a {name, node} object alike).
 */
function destTerm(server: Dest, rt: Runtime): Term {
  if (server instanceof Pid || server instanceof Ref || server instanceof Atom) return server
  try {
    return typeof server === 'string' ? toAtom(server) : tuple(...rt.nameAndNode(server))
  } catch {
    return server as Term
  }
}

function callError(reason: Term, server: Dest, rt: Runtime): Error {
  if (reason === NOPROC) return new NoProcError(destTerm(server, rt))
  if (reason === NOCONNECTION) {
    let node: Atom | undefined
    if (server instanceof Pid) node = server.node
    else {
      try {
        node = rt.nameAndNode(server)[1]
      } catch {
        node = undefined
      }
    }
    return rt.noConnection(node)
  }
  return new CallExitError(reason, destTerm(server, rt))
}

/** Decodes erpc's DOWN reason (erpc.erl result/4). */
function erpcResult(reason: Term, res: Ref, node: Atom, rt: Runtime): Term {
  if (reason instanceof Tuple && refIs(reason.get(0), res)) {
    const kind = reason.get(1)
    if (reason.length === 3) {
      if (kind === RETURN) return reason.get(2)
      if (kind === THROW) throw new ErlangThrow(reason.get(2))
      if (kind === EXIT_CLASS) throw new ErlangExit(reason.get(2))
      if (kind === ERROR) {
        const e = reason.get(2)
        if (e instanceof Tuple && e.length === 2 && e.get(0) === ERPC) throw new RpcError(e.get(1))
      }
    } else if (reason.length === 4 && kind === ERROR) throw new ErlangError(reason.get(2), reason.get(3))
  }
  if (reason === NOCONNECTION) throw rt.noConnection(node)
  // The process running the call was killed by an exit signal: erpc raises exit({signal, Reason}).
  throw new ErlangExit(tuple(SIGNAL, reason))
}
