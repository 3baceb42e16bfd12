// The process runtime of one node: process table, registered names, aliases, links (with the UNLINK_ID
// protocol), monitors, exit signals, spawn requests, and the router for control messages from other nodes.
// erts "Distribution Protocol" (Control Messages, Link Protocol) and the Reference Manual "Processes" chapter.
import { Atom, Pid, Ref, Tuple, atom, tuple, type Term } from '../etf/terms.js'
import { defaultLogger, type Logger } from '../logger.js'
import {
  ABANDONED,
  DOWN,
  ERROR,
  EXIT,
  JS_ERROR,
  KILL,
  KILLED,
  LINK,
  MONITOR,
  NOCATCH,
  NOCONNECTION,
  NOPROC,
  NORMAL,
  OK,
  PROCESS,
  SHUTDOWN,
  SPAWN_REPLY,
  GEN_CAST,
} from './atoms.js'
import { DistError } from '../errors.js'
import { EncodeError } from '../etf/errors.js'
import { termToChunks } from '../etf/encode.js'
import { BadArgError, ErlangError, ErlangExit, ErlangThrow, NoConnectionError, ProcessExitedError } from './errors.js'
import { formatTerm } from './format.js'
import { pidKey, refKey, samePid, toAtom, type Name } from './ids.js'
import { exitReasonOf } from './reasons.js'
import { FunctionRegistry, type RpcFunction } from './functions.js'
import { startGenServer, type GenServerCallbacks, type GenServerOptions } from './genserver.js'
import { Process, type ProcessFn, type Timed } from './process.js'
import { installServices } from './services.js'
import { PG, type PgScope } from './pg.js'

export { pidKey, refKey, samePid, sameRef, toAtom, type Name } from './ids.js'
export { exitReasonOf, jsErrorReason } from './reasons.js'
import { SPAWN_REPLY_FLAG_LINK, SPAWN_REPLY_FLAG_MONITOR, type ControlMessage, type Transport } from './signals.js'
import { checkTimeout } from '../timers.js'

/** Where a message can go: a pid, an alias, a registered name, or a name on a node. */
export type Dest = Pid | Ref | Name | Tuple | { name: Name; node: Atom | string }
export type MonitorTarget = Pid | Name | Tuple | { name: Name; node: Atom | string }
export type AliasMode = 'explicit_unalias' | 'demonitor' | 'reply_demonitor' | 'reply'

export interface SpawnOptions {
  /** Register the new process under this name (BadArgError if taken). */
  name?: Name
  trapExit?: boolean
}

export interface RuntimeOptions {
  node: Atom | string
  creation: number
  logger?: Logger
  /** Start rex and the io server, and serve spawn requests (default true). */
  services?: boolean
  /** The registry of functions callable from Erlang (default: a new one). */
  functions?: FunctionRegistry
  /** Milliseconds a call given no timeout waits, as gen_server:call/2 (default 5000); Infinity: no limit. */
  callTimeout?: number
}

/** gen_server:call/2's default timeout, for a call given none (RuntimeOptions.callTimeout). */
export const DEFAULT_CALL_TIMEOUT = 5000

/** @internal */
export interface LinkEntry {
  pid: Pid
  active: boolean
  unlinkId?: bigint
}
/** @internal A monitor this process holds on another. */
export interface MonitorOut {
  ref: Ref
  /** The monitored pid; undefined for a by-name monitor on another node. */
  target: Pid | undefined
  node: Atom
  name?: Atom
  /** The DOWN message's Object: the pid, or {Name, Node}. */
  object: Term
  alias?: AliasMode
}
/** @internal A monitor another process holds on this one. */
export interface MonitorIn {
  ref: Ref
  watcher: Pid
  byName?: Atom
}
interface AliasEntry {
  proc: Process
  ref: Ref
  mode: AliasMode
}
interface SpawnReq {
  proc: Process
  node: Atom
  reqId: Ref
  link: boolean
  monitor: boolean
  reply: 'yes' | 'error_only' | 'no'
  replyTag: Term
  /** Set when the requester gave up (timeout) or died: a late success is undone. */
  abandoned?: Term
}

/** Resolves SPAWN_REQUESTs from other nodes to a process body, or an error atom for the SPAWN_REPLY. */
export type SpawnResolver = (req: {
  module: Atom
  function: Atom
  args: Term[]
  from: Pid
}) => ProcessFn | Atom

/** ERTS_DOP_ALTACT_SIG_FLG_EXIT (erts dist.h): the ALTACT_SIG_SEND payload is an exit reason. */
const ALTACT_SIG_FLG_EXIT = 1 << 4

const MAX_PID_ID = 0x7fff // 15 bits, as erl_interface: every OTP release accepts it
const MAX_PID_SERIAL = 0x1fff

/** How many nodes' down causes are kept for NoConnectionError (the most recent). */
const MAX_DOWN_CAUSES = 256

export class Runtime {
  readonly nodeName: Atom
  private _creation: number
  readonly logger: Logger
  private transport: Transport | undefined

  private readonly procs = new Map<number, Process>()
  private readonly names = new Map<Atom, Process>()
  private readonly aliases = new Map<string, AliasEntry>()
  /** Monitors held by processes on other nodes on our processes, by ref: DEMONITOR_P finds them here. */
  private readonly remoteMonitorsIn = new Map<string, Process>()
  private readonly spawnReqs = new Map<string, SpawnReq>()
  /** Why each node last went down or could not be reached (until it is up again): see noConnection(). */
  private readonly downCauses = new Map<Atom, Error>()

  private nextId = 1
  private nextSerial = 0
  private refCounter = 0
  private readonly refSalt = (Math.random() * 0x100000000) >>> 0
  private nextUnlinkId = 1n

  private readonly dying: Process[] = []
  private draining = false

  private spawnResolver: SpawnResolver | undefined
  /** A process that owns nothing: the sender for messages sent from outside any process. */
  private _system: Process | undefined

  /** Milliseconds a call given no timeout waits (RuntimeOptions.callTimeout). */
  readonly callTimeout: number

  constructor(opts: RuntimeOptions) {
    const ct = opts.callTimeout ?? DEFAULT_CALL_TIMEOUT
    checkTimeout(ct, 'callTimeout')
    this.callTimeout = ct
    this.nodeName = toAtom(opts.node, 'node')
    this._creation = opts.creation
    this.logger = opts.logger ?? defaultLogger
    this.functions = opts.functions ?? new FunctionRegistry()
    if (opts.services !== false) installServices(this, this.functions)
  }

  /** The functions Erlang can call here as M:F. */
  readonly functions: FunctionRegistry

  registerFunction(module: Name, fn: Name, impl: RpcFunction): void {
    this.functions.register(module, fn, impl)
  }

  unregisterFunction(module: Name, fn: Name): boolean {
    return this.functions.unregister(module, fn)
  }

  /** Runs `fn` in a short-lived process that ends (normal) when it settles. */
  async withProcess<T>(fn: (p: Process) => Promise<T>): Promise<T> {
    const p = this.createProcess()
    try {
      return await fn(p)
    } finally {
      this.terminate(p, NORMAL)
    }
  }

  /** gen_server:call from outside any process (see Process#call). */
  call(server: Dest, request: Term, opts?: Timed): Promise<Term> {
    return this.withProcess((p) => p.call(server, request, opts))
  }

  /** gen_server:cast from the system process. */
  cast(server: Dest, request: Term): void {
    this.route(this.system.pid, server, tuple(GEN_CAST, request), false)
  }

  /** erpc:call from outside any process (see Process#rpc). */
  rpc(node: Atom | string, module: Name, fn: Name, args: Term[], opts?: Timed): Promise<Term> {
    return this.withProcess((p) => p.rpc(node, module, fn, args, opts))
  }

  /** Starts a gen_server; resolves once its init succeeded. */
  startGenServer<S, A = Term>(impl: GenServerCallbacks<S, A>, opts?: GenServerOptions<A>): Promise<Process> {
    return startGenServer(this, impl, opts)
  }

  get creation(): number {
    return this._creation
  }

  /** Changes the creation (the node's incarnation) before any process exists. */
  setCreation(creation: number): void {
    if (this.procs.size > 0 && creation !== this._creation)
      throw new BadArgError('the creation cannot change once processes exist')
    this._creation = creation
  }

  setTransport(t: Transport | undefined): void {
    this.transport = t
  }

  setSpawnResolver(r: SpawnResolver | undefined): void {
    this.spawnResolver = r
  }

  /** The sender of messages sent from outside any process (node.send, node.exit). */
  get system(): Process {
    if (this._system === undefined || !this._system.alive) {
      const p = this.createProcess()
      p.mailbox.close(new ProcessExitedError(NORMAL))
      this._system = p
    }
    return this._system
  }

  // --- identifiers ---------------------------------------------------------------------------

  isLocalPid(p: Pid): boolean {
    return p.node === this.nodeName && p.creation === this._creation
  }

  isLocalRef(r: Ref): boolean {
    return r.node === this.nodeName && r.creation === this._creation
  }

  makeRef(): Ref {
    const c = ++this.refCounter
    return new Ref(this.nodeName, this._creation, [c & 0x3ffff, Math.floor(c / 0x40000) >>> 0, this.refSalt])
  }

  private allocPid(): Pid {
    for (;;) {
      const id = this.nextId
      const serial = this.nextSerial
      if (++this.nextId > MAX_PID_ID) {
        this.nextId = 1
        this.nextSerial = (this.nextSerial + 1) & MAX_PID_SERIAL
      }
      if (!this.procs.has(serial * (MAX_PID_ID + 1) + id)) return new Pid(this.nodeName, id, serial, this._creation)
    }
  }

  private localKey(p: Pid): number {
    return p.serial * (MAX_PID_ID + 1) + p.id
  }

  // --- processes -------------------------------------------------------------------------------

  /** The live local process with this pid. */
  process(pid: Pid): Process | undefined {
    if (!this.isLocalPid(pid)) return undefined
    return this.procs.get(this.localKey(pid))
  }

  /** Every live process. */
  processes(): Process[] {
    return [...this.procs.values()]
  }

  /** @internal A process without a body yet (spawn requests set links/monitors before it runs). */
  createProcess(opts: SpawnOptions = {}): Process {
    const name = opts.name === undefined ? undefined : toAtom(opts.name)
    if (name !== undefined && this.names.has(name)) throw new BadArgError(`name ${name.name} is already registered`)
    const proc = new Process(this, this.allocPid())
    this.procs.set(this.localKey(proc.pid), proc)
    if (opts.trapExit) proc.trapExit = true
    if (name !== undefined) {
      this.names.set(name, proc)
      proc._name = name
    }
    return proc
  }

  /** @internal Runs `fn` as the body of `proc` from the next microtask. */
  startProcess(proc: Process, fn: ProcessFn): void {
    queueMicrotask(() => {
      if (!proc.alive) return
      let r: unknown
      try {
        r = fn(proc)
      } catch (e) {
        this.crashed(proc, e)
        return
      }
      if (r instanceof Promise || (typeof r === 'object' && r !== null && typeof (r as PromiseLike<unknown>).then === 'function'))
        (r as PromiseLike<unknown>).then(
          () => this.terminate(proc, NORMAL),
          (e: unknown) => this.crashed(proc, e),
        )
      else this.terminate(proc, NORMAL)
    })
  }

  private crashed(proc: Process, e: unknown): void {
    if (!proc.alive) return
    const reason = exitReasonOf(e)
    if (!(e instanceof ErlangExit || e instanceof ErlangThrow || e instanceof ErlangError))
      this.logger.warn(`process ${proc.pid} crashed: ${e instanceof Error ? (e.stack ?? e.message) : formatTerm(e)}`)
    this.terminate(proc, reason)
  }

  spawn(fn: ProcessFn, opts: SpawnOptions = {}): Process {
    const proc = this.createProcess(opts)
    this.startProcess(proc, fn)
    return proc
  }

  // --- registry --------------------------------------------------------------------------------

  whereis(name: Name): Pid | undefined {
    return this.names.get(toAtom(name))?.pid
  }

  register(name: Name, pid: Pid): void {
    const a = toAtom(name)
    const proc = this.process(pid)
    if (proc === undefined || !proc.alive) throw new BadArgError(`cannot register ${a.name}: ${pid} is not a live local process`)
    if (this.names.has(a)) throw new BadArgError(`name ${a.name} is already registered`)
    if (proc._name !== undefined) throw new BadArgError(`${pid} is already registered as ${proc._name.name}`)
    this.names.set(a, proc)
    proc._name = a
  }

  unregister(name: Name): void {
    const a = toAtom(name)
    const proc = this.names.get(a)
    if (proc === undefined) throw new BadArgError(`name ${a.name} is not registered`)
    this.names.delete(a)
    proc._name = undefined
  }

  registered(): Atom[] {
    return [...this.names.keys()]
  }

  // --- sending ---------------------------------------------------------------------------------

  /** Sends from the node's system process. */
  send(dest: Dest, msg: Term): void {
    this.route(this.system.pid, dest, msg)
  }

  /**
   * @internal Delivers or forwards `msg` from `from` to `dest`. Unknown local names → BadArgError (as
   * erlang:send). A local message is the sender's value itself, not a copy and not checked; only `undefined`
   * (no term at all: a `reply` of a missing value, say) is refused here as on the wire, with EncodeError.
   */
  route(from: Pid, dest: Dest, msg: Term, strict = true): void {
    if (msg === undefined) throw new EncodeError('cannot send undefined: a message must be an Erlang term')
    if (dest instanceof Pid) {
      if (dest.node === this.nodeName) {
        this.process(dest)?.mailbox.push(msg)
        return
      }
      this.signal(dest.node, { kind: 'SEND_SENDER', from, to: dest, message: msg })
      return
    }
    if (dest instanceof Ref) {
      if (this.isLocalRef(dest)) this.deliverAlias(dest, msg)
      else if (dest.node !== this.nodeName) this.signal(dest.node, { kind: 'ALIAS_SEND', from, alias: dest, message: msg })
      return
    }
    if (dest instanceof Atom || typeof dest === 'string') {
      const a = toAtom(dest)
      const p = this.names.get(a)
      if (p === undefined) {
        if (strict) throw new BadArgError(`no process registered as ${a.name}`)
        return
      }
      p.mailbox.push(msg)
      return
    }
    const [name, node] = this.nameAndNode(dest)
    if (node === this.nodeName) {
      this.route(from, name, msg, strict)
      return
    }
    this.signal(node, { kind: 'REG_SEND', from, toName: name, message: msg })
  }

  /** {Name, Node} (a tuple or an object) → [name, node]; BadArgError otherwise. */
  nameAndNode(dest: unknown): [Atom, Atom] {
    if (dest instanceof Tuple && dest.length === 2) {
      const [n, node] = dest.elements
      if ((n instanceof Atom || typeof n === 'string') && (node instanceof Atom || typeof node === 'string'))
        return [toAtom(n), toAtom(node, 'node')]
    } else if (typeof dest === 'object' && dest !== null && 'name' in dest && 'node' in dest) {
      const d = dest as { name: unknown; node: unknown }
      if ((d.name instanceof Atom || typeof d.name === 'string') && (d.node instanceof Atom || typeof d.node === 'string'))
        return [toAtom(d.name), toAtom(d.node, 'node')]
    }
    throw new BadArgError(`not a destination: ${formatTerm(dest)}`)
  }

  private deliverAlias(ref: Ref, msg: Term): void {
    const key = refKey(ref)
    const entry = this.aliases.get(key)
    if (entry === undefined) return
    const proc = entry.proc
    if (entry.mode === 'reply') this.removeAlias(proc, key)
    else if (entry.mode === 'reply_demonitor') {
      this.removeAlias(proc, key)
      this.demonitor(proc, ref)
    }
    proc.mailbox.push(msg)
  }

  /** @internal A NoConnectionError for `node`, with the cause nodeDown was last given for it. */
  noConnection(node: Atom | undefined): NoConnectionError {
    const cause = node === undefined ? undefined : this.downCauses.get(node)
    return new NoConnectionError(node, cause === undefined ? undefined : { cause })
  }

  /** @internal Hands a signal to the node it is for (ourselves: straight back to the router). */
  signal(node: Atom, msg: ControlMessage): void {
    if (node === this.nodeName) {
      this.handleControl(msg)
      return
    }
    if (this.transport === undefined) {
      // No distribution: the node cannot be reached, which is what noconnection reports.
      queueMicrotask(() => this.nodeDown(node, new DistError('this runtime has no distribution')))
      return
    }
    this.transport.send(node, msg)
  }

  // --- aliases -------------------------------------------------------------------------------

  /** @internal */
  createAlias(proc: Process, mode: AliasMode, ref: Ref = this.makeRef()): Ref {
    const key = refKey(ref)
    this.aliases.set(key, { proc, ref, mode })
    proc._aliases.add(key)
    return ref
  }

  /** @internal */
  removeAlias(proc: Process, key: string): boolean {
    const e = this.aliases.get(key)
    if (e === undefined || e.proc !== proc) return false
    this.aliases.delete(key)
    proc._aliases.delete(key)
    return true
  }

  // --- links -----------------------------------------------------------------------------------

  /** @internal link/1 from `proc`. */
  link(proc: Process, pid: Pid): void {
    if (samePid(pid, proc.pid)) return
    const key = pidKey(pid)
    if (pid.node === this.nodeName) {
      const other = this.process(pid)
      if (other === undefined || !other.alive) {
        this.exitSignal(proc, pid, NOPROC, false)
        return
      }
      if (proc._links.has(key)) return
      proc._links.set(key, { pid, active: true })
      other._links.set(pidKey(proc.pid), { pid: proc.pid, active: true })
      return
    }
    const e = proc._links.get(key)
    if (e?.active) return
    // Sending LINK (re)activates the link and forgets an outstanding unlink.
    proc._links.set(key, { pid, active: true })
    this.signal(pid.node, { kind: 'LINK', from: proc.pid, to: pid })
  }

  /** @internal unlink/1 from `proc`. */
  unlink(proc: Process, pid: Pid): void {
    const key = pidKey(pid)
    const e = proc._links.get(key)
    if (e === undefined || !e.active) return
    if (pid.node === this.nodeName) {
      proc._links.delete(key)
      this.process(pid)?._links.delete(pidKey(proc.pid))
      return
    }
    const id = this.nextUnlinkId++
    if (this.nextUnlinkId >= 1n << 64n) this.nextUnlinkId = 1n
    e.active = false
    e.unlinkId = id
    this.signal(pid.node, { kind: 'UNLINK_ID', id, from: proc.pid, to: pid })
  }

  /** Whether `proc` is linked to `pid` (an active link). */
  isLinked(proc: Process, pid: Pid): boolean {
    return proc._links.get(pidKey(pid))?.active === true
  }

  // --- exit signals ----------------------------------------------------------------------------

  /** exit/2 from the system process. */
  exit(pid: Pid, reason: Term): void {
    this.sendExit(this.system.pid, pid, reason)
  }

  /** @internal An exit signal from `from` to `to` (EXIT2 semantics: not due to a link). */
  sendExit(from: Pid, to: Pid, reason: Term): void {
    if (to.node === this.nodeName) {
      const p = this.process(to)
      if (p !== undefined) this.exitSignal(p, from, reason, false)
      return
    }
    this.signal(to.node, { kind: 'EXIT2', from, to, reason })
  }

  /** @internal An exit signal arriving at `target`, from a link or from exit/2. */
  exitSignal(target: Process, from: Pid, reason: Term, viaLink: boolean): void {
    if (!target.alive) return
    if (viaLink) {
      const key = pidKey(from)
      const e = target._links.get(key)
      if (e === undefined) return
      target._links.delete(key)
      if (!e.active) return
    }
    this.react(target, from, reason, viaLink)
  }

  private react(target: Process, from: Pid, reason: Term, viaLink: boolean): void {
    if (!target.alive) return
    if (!viaLink && reason === KILL) {
      this.terminate(target, KILLED)
      return
    }
    if (target.trapExit) {
      target.mailbox.push(tuple(EXIT, from, reason))
      return
    }
    if (reason === NORMAL) {
      if (!viaLink && samePid(from, target.pid)) this.terminate(target, NORMAL)
      return
    }
    this.terminate(target, reason)
  }

  /** @internal Ends `proc` with `reason` and fires its links, monitors and aliases. Idempotent. */
  terminate(proc: Process, reason: Term): void {
    if (!proc.alive) return
    proc._markDead(this.sendableReason(proc, reason))
    this.dying.push(proc)
    this.drain()
  }

  /**
   * `reason` when it is a term the encoder takes; otherwise (a Set, NaN, null, nesting past maxDepth) the
   * reason is `{js_error, <<"EncodeError: ...">>, <<>>}`, logged: an exit reason reaches every link and
   * monitor, those on other nodes through the encoder, and one that cannot go there left them silent.
   */
  private sendableReason(proc: Process, reason: Term): Term {
    if (reason instanceof Atom) return reason
    try {
      termToChunks(reason) // large binaries by reference: no copy of them
      return reason
    } catch (e) {
      const why = `EncodeError: the exit reason is not an Erlang term: ${e instanceof Error ? e.message : String(e)}`
      this.logger.warn(`process ${proc.pid} exits with ${why}`)
      return tuple(JS_ERROR, Buffer.from(why), Buffer.alloc(0))
    }
  }

  private drain(): void {
    if (this.draining) return
    this.draining = true
    try {
      for (let i = 0; i < this.dying.length; i++) this.propagate(this.dying[i])
    } finally {
      this.dying.length = 0
      this.draining = false
    }
  }

  private propagate(proc: Process): void {
    const reason = proc.exitReason as Term
    this.procs.delete(this.localKey(proc.pid))
    if (proc._name !== undefined) {
      if (this.names.get(proc._name) === proc) this.names.delete(proc._name)
      proc._name = undefined
    }
    for (const key of proc._aliases) this.aliases.delete(key)
    proc._aliases.clear()
    for (const key of proc._spawnReqs) {
      const req = this.spawnReqs.get(key)
      if (req !== undefined) req.abandoned = reason
    }
    proc._spawnReqs.clear()

    const links = [...proc._links.values()]
    proc._links.clear()
    for (const l of links) {
      if (!l.active) continue
      if (l.pid.node === this.nodeName) {
        const other = this.process(l.pid)
        if (other !== undefined) this.exitSignal(other, proc.pid, reason, true)
      } else this.signalOfExit(l.pid.node, { kind: 'EXIT', from: proc.pid, to: l.pid, reason })
    }

    const watchers = [...proc._monitorsIn.values()]
    proc._monitorsIn.clear()
    for (const m of watchers) {
      if (m.watcher.node === this.nodeName) {
        const w = this.process(m.watcher)
        if (w !== undefined) this.fireMonitor(w, m.ref, reason)
      } else {
        this.remoteMonitorsIn.delete(refKey(m.ref))
        this.signalOfExit(m.watcher.node, {
          kind: 'MONITOR_P_EXIT',
          from: m.byName ?? proc.pid,
          to: m.watcher,
          ref: m.ref,
          reason,
        })
      }
    }

    const held = [...proc._monitorsOut.values()]
    proc._monitorsOut.clear()
    for (const m of held) {
      if (m.node === this.nodeName) {
        if (m.target !== undefined) this.process(m.target)?._monitorsIn.delete(refKey(m.ref))
      } else this.signalOfExit(m.node, { kind: 'DEMONITOR_P', from: proc.pid, to: m.target ?? (m.name as Atom), ref: m.ref })
    }
    proc._resolveDone()
  }

  /** A signal of a process's end to another node: one that cannot go is logged, and the rest still go. */
  private signalOfExit(node: Atom, msg: ControlMessage): void {
    try {
      this.signal(node, msg)
    } catch (e) {
      this.logger.error(`${msg.kind} to ${node.name} lost: ${e instanceof Error ? e.message : String(e)}`)
    }
  }

  // --- monitors --------------------------------------------------------------------------------

  /** @internal monitor(process, Target, [{alias, Mode}]) from `proc`. */
  monitor(proc: Process, target: MonitorTarget, alias?: AliasMode, ref: Ref = this.makeRef()): Ref {
    let pid: Pid | undefined
    let name: Atom | undefined
    let node: Atom
    if (target instanceof Pid) {
      pid = target
      node = target.node
    } else if (target instanceof Atom || typeof target === 'string') {
      name = toAtom(target)
      node = this.nodeName
    } else {
      ;[name, node] = this.nameAndNode(target)
    }
    const object: Term = name !== undefined ? tuple(name, node) : (pid as Pid)
    const key = refKey(ref)
    if (node === this.nodeName) {
      const t = pid !== undefined ? this.process(pid) : this.names.get(name as Atom)
      if (t === undefined || !t.alive) {
        if (alias === 'explicit_unalias') this.createAlias(proc, alias, ref)
        proc.mailbox.push(tuple(DOWN, ref, PROCESS, object, NOPROC))
        return ref
      }
      if (t === proc) return ref // monitoring oneself: never fires
      t._monitorsIn.set(key, { ref, watcher: proc.pid, byName: name })
      proc._monitorsOut.set(key, { ref, target: t.pid, node, name, object, alias })
    } else {
      proc._monitorsOut.set(key, { ref, target: pid, node, name, object, alias })
      this.signal(node, { kind: 'MONITOR_P', from: proc.pid, to: pid ?? (name as Atom), ref })
    }
    if (alias !== undefined) this.createAlias(proc, alias, ref)
    return ref
  }

  /** @internal demonitor/1 from `proc`; true when the monitor was active. */
  demonitor(proc: Process, ref: Ref): boolean {
    const key = refKey(ref)
    const m = proc._monitorsOut.get(key)
    if (m === undefined) return false
    proc._monitorsOut.delete(key)
    if (m.alias === 'demonitor' || m.alias === 'reply_demonitor') this.removeAlias(proc, key)
    if (m.node === this.nodeName) {
      if (m.target !== undefined) this.process(m.target)?._monitorsIn.delete(key)
    } else this.signal(m.node, { kind: 'DEMONITOR_P', from: proc.pid, to: m.target ?? (m.name as Atom), ref })
    return true
  }

  /** A monitor held by `watcher` fired: forget it and deliver the DOWN message. */
  private fireMonitor(watcher: Process, ref: Ref, reason: Term): void {
    const key = refKey(ref)
    const m = watcher._monitorsOut.get(key)
    if (m === undefined) return
    watcher._monitorsOut.delete(key)
    if (m.alias === 'demonitor' || m.alias === 'reply_demonitor') this.removeAlias(watcher, key)
    watcher.mailbox.push(tuple(DOWN, ref, PROCESS, m.object, reason))
  }

  // --- spawn requests --------------------------------------------------------------------------

  /** @internal erlang:spawn_request/5 from `proc`. */
  spawnRequest(
    proc: Process,
    node: Atom,
    module: Atom,
    fn: Atom,
    args: Term[],
    opts: { link?: boolean; monitor?: boolean; reply?: 'yes' | 'error_only' | 'no'; replyTag?: Term } = {},
  ): Ref {
    const reqId = this.makeRef()
    const key = refKey(reqId)
    const req: SpawnReq = {
      proc,
      node,
      reqId,
      link: !!opts.link,
      monitor: !!opts.monitor,
      reply: opts.reply ?? 'yes',
      replyTag: opts.replyTag ?? SPAWN_REPLY,
    }
    this.spawnReqs.set(key, req)
    proc._spawnReqs.add(key)
    const options: Term[] = []
    if (req.link) options.push(LINK)
    if (req.monitor) options.push(MONITOR)
    this.signal(node, {
      kind: 'SPAWN_REQUEST',
      reqId,
      from: proc.pid,
      groupLeader: this.groupLeader ?? proc.pid,
      module,
      function: fn,
      arity: args.length,
      options,
      args,
    })
    return reqId
  }

  /** The group leader given to processes we spawn on other nodes (an io server); set by the node. */
  groupLeader: Pid | undefined

  /** pg scopes by name: the default `pg` (one of the services) and those started with Node.pgScope. */
  readonly pgScopes = new Map<Atom, PgScope>()

  /** The default pg scope (process groups, as kernel's pg); undefined when the runtime has no services. */
  get pg(): PgScope | undefined {
    return this.pgScopes.get(PG)
  }

  /**
   * @internal erlang:spawn_request_abandon/1: true if the reply had not arrived (a late success is then
   * undone: the monitor is dropped and a link gets an `abandoned` exit signal).
   */
  abandonSpawnRequest(proc: Process, reqId: Ref): boolean {
    const key = refKey(reqId)
    const req = this.spawnReqs.get(key)
    if (req === undefined || req.proc !== proc || req.abandoned !== undefined) return false
    req.abandoned = ABANDONED
    proc._spawnReqs.delete(key)
    return true
  }

  private onSpawnReply(msg: Extract<ControlMessage, { kind: 'SPAWN_REPLY' }>): void {
    const key = refKey(msg.reqId)
    const req = this.spawnReqs.get(key)
    if (req === undefined || !samePid(req.proc.pid, msg.to)) return
    this.spawnReqs.delete(key)
    req.proc._spawnReqs.delete(key)
    const child = msg.result
    if (req.abandoned !== undefined || !req.proc.alive) {
      if (child instanceof Pid) {
        if (msg.flags & SPAWN_REPLY_FLAG_LINK) this.sendLinkExit(msg.to, child, req.abandoned ?? ABANDONED)
        if (msg.flags & SPAWN_REPLY_FLAG_MONITOR)
          this.signal(child.node, { kind: 'DEMONITOR_P', from: msg.to, to: child, ref: msg.reqId })
      }
      return
    }
    const proc = req.proc
    if (child instanceof Pid) {
      if (msg.flags & SPAWN_REPLY_FLAG_LINK) proc._links.set(pidKey(child), { pid: child, active: true })
      if (msg.flags & SPAWN_REPLY_FLAG_MONITOR)
        proc._monitorsOut.set(key, { ref: msg.reqId, target: child, node: child.node, object: child })
      if (req.reply === 'yes') proc.mailbox.push(tuple(req.replyTag, msg.reqId, OK, child))
    } else if (req.reply !== 'no') proc.mailbox.push(tuple(req.replyTag, msg.reqId, ERROR, child))
  }

  /** An EXIT (link) signal from `from` to `to`, wherever `to` lives. */
  private sendLinkExit(from: Pid, to: Pid, reason: Term): void {
    if (to.node === this.nodeName) {
      const p = this.process(to)
      if (p !== undefined) this.exitSignal(p, from, reason, true)
    } else this.signal(to.node, { kind: 'EXIT', from, to, reason })
  }

  private onSpawnRequest(msg: Extract<ControlMessage, { kind: 'SPAWN_REQUEST' }>): void {
    const reply = (flags: number, result: Pid | Atom) =>
      this.signal(msg.from.node, { kind: 'SPAWN_REPLY', reqId: msg.reqId, to: msg.from, flags, result })
    const args = msg.args
    if (!Array.isArray(args) && typeof args !== 'string') {
      reply(0, atom('badarg'))
      return
    }
    const argList: Term[] = typeof args === 'string' ? [...args].map((c) => c.codePointAt(0)!) : args
    let link = false
    let monitor = false
    const opts = msg.options
    if (Array.isArray(opts)) {
      for (const o of opts) {
        if (o === LINK) link = true
        else if (o === MONITOR || (o instanceof Tuple && o.length === 2 && o.get(0) === MONITOR)) monitor = true
      }
    }
    let body: ProcessFn | Atom
    try {
      body = this.spawnResolver
        ? this.spawnResolver({ module: msg.module, function: msg.function, args: argList, from: msg.from })
        : atom('notsup')
    } catch (e) {
      this.logger.warn(`spawn request resolver failed: ${e instanceof Error ? e.message : String(e)}`)
      body = atom('system_limit')
    }
    if (body instanceof Atom) {
      reply(0, body)
      return
    }
    const proc = this.createProcess()
    let flags = 0
    if (link) {
      proc._links.set(pidKey(msg.from), { pid: msg.from, active: true })
      flags |= SPAWN_REPLY_FLAG_LINK
    }
    if (monitor) {
      const key = refKey(msg.reqId)
      proc._monitorsIn.set(key, { ref: msg.reqId, watcher: msg.from })
      if (msg.from.node !== this.nodeName) this.remoteMonitorsIn.set(key, proc)
      flags |= SPAWN_REPLY_FLAG_MONITOR
    }
    reply(flags, proc.pid)
    this.startProcess(proc, body)
  }

  // --- control messages from other nodes -------------------------------------------------------

  /** Routes one control message from another node. Never throws: bad input is logged and dropped. */
  handleControl(msg: ControlMessage): void {
    try {
      this.dispatch(msg)
    } catch (e) {
      this.logger.warn(`dropped ${msg.kind}: ${e instanceof Error ? e.message : String(e)}`)
    }
  }

  private local(pid: Pid): Process | undefined {
    return pid instanceof Pid ? this.process(pid) : undefined
  }

  private dispatch(msg: ControlMessage): void {
    switch (msg.kind) {
      case 'SEND':
      case 'SEND_SENDER':
        this.local(msg.to)?.mailbox.push(msg.message)
        return
      case 'REG_SEND':
        if (msg.toName instanceof Atom) this.names.get(msg.toName)?.mailbox.push(msg.message)
        return
      case 'ALIAS_SEND':
        if (msg.alias instanceof Ref && this.isLocalRef(msg.alias)) this.deliverAlias(msg.alias, msg.message)
        return
      case 'ALTACT_SIG_SEND': {
        // OTP 28 alternate signal: to a pid, a name or an alias; with the EXIT flag the payload is an exit
        // reason (exit/2 semantics). Priority delivery (PRIO) is not distinguished: signals keep arrival order.
        const to = msg.to
        if ((msg.flags & ALTACT_SIG_FLG_EXIT) !== 0) {
          const target =
            to instanceof Pid ? this.local(to) : to instanceof Atom ? this.names.get(to) : to instanceof Ref && this.isLocalRef(to) ? this.aliases.get(refKey(to))?.proc : undefined
          if (target !== undefined) this.exitSignal(target, msg.from, msg.message, false)
        } else if (to instanceof Pid) this.local(to)?.mailbox.push(msg.message)
        else if (to instanceof Atom) this.names.get(to)?.mailbox.push(msg.message)
        else if (to instanceof Ref && this.isLocalRef(to)) this.deliverAlias(to, msg.message)
        return
      }
      case 'LINK': {
        const p = this.local(msg.to)
        if (p === undefined) {
          this.signal(msg.from.node, { kind: 'EXIT', from: msg.to, to: msg.from, reason: NOPROC })
          return
        }
        const key = pidKey(msg.from)
        // An existing entry (even one with an unlink outstanding) is left as it is: see the Link Protocol.
        if (!p._links.has(key)) p._links.set(key, { pid: msg.from, active: true })
        return
      }
      case 'UNLINK_ID': {
        const p = this.local(msg.to)
        if (p !== undefined) {
          const key = pidKey(msg.from)
          if (p._links.get(key)?.active) p._links.delete(key)
        }
        this.signal(msg.from.node, { kind: 'UNLINK_ID_ACK', id: msg.id, from: msg.to, to: msg.from })
        return
      }
      case 'UNLINK_ID_ACK': {
        const p = this.local(msg.to)
        if (p === undefined) return
        const key = pidKey(msg.from)
        const e = p._links.get(key)
        if (e !== undefined && !e.active && e.unlinkId === BigInt(msg.id)) p._links.delete(key)
        return
      }
      case 'EXIT':
      case 'EXIT2': {
        const p = this.local(msg.to)
        if (p !== undefined) this.exitSignal(p, msg.from, msg.reason, msg.kind === 'EXIT')
        return
      }
      case 'MONITOR_P': {
        const p = msg.to instanceof Pid ? this.local(msg.to) : this.names.get(msg.to)
        if (p === undefined || !p.alive) {
          this.signal(msg.from.node, { kind: 'MONITOR_P_EXIT', from: msg.to, to: msg.from, ref: msg.ref, reason: NOPROC })
          return
        }
        const key = refKey(msg.ref)
        p._monitorsIn.set(key, { ref: msg.ref, watcher: msg.from, byName: msg.to instanceof Atom ? msg.to : undefined })
        this.remoteMonitorsIn.set(key, p)
        return
      }
      case 'DEMONITOR_P': {
        const key = refKey(msg.ref)
        const p = this.remoteMonitorsIn.get(key)
        if (p === undefined) return
        this.remoteMonitorsIn.delete(key)
        const m = p._monitorsIn.get(key)
        if (m !== undefined && samePid(m.watcher, msg.from)) p._monitorsIn.delete(key)
        return
      }
      case 'MONITOR_P_EXIT': {
        const p = this.local(msg.to)
        if (p !== undefined) this.fireMonitor(p, msg.ref, msg.reason)
        return
      }
      case 'SPAWN_REQUEST':
        this.onSpawnRequest(msg)
        return
      case 'SPAWN_REPLY':
        this.onSpawnReply(msg)
        return
      case 'GROUP_LEADER':
        return
    }
  }

  /** A connection to `node` came up: each pg scope asks that node's scope for its groups (hidden connections
   *  too: erl's scope only discovers the nodes it sees come up, which are the visible ones). */
  nodeUp(node: Atom): void {
    this.downCauses.delete(node)
    for (const scope of this.pgScopes.values()) scope.nodeUp(node)
  }

  /**
   * The connection to `node` is gone (or could not be made): every link to a process there gets a
   * `noconnection` exit signal, every monitor on one a `noconnection` DOWN, monitors from there are dropped,
   * and outstanding spawn requests to it fail with `noconnection`. `cause` (the failed attempt's error, or
   * the lost connection's) becomes the cause of the NoConnectionErrors raised for that node until it is up.
   */
  nodeDown(node: Atom, cause?: Error): void {
    if (node === this.nodeName) return
    if (cause !== undefined) {
      // The most recent causes only: a node that many peers (or a fuzzer) connect to and drop must not keep
      // an error per name for ever.
      this.downCauses.delete(node)
      if (this.downCauses.size >= MAX_DOWN_CAUSES) this.downCauses.delete(this.downCauses.keys().next().value as Atom)
      // Formatting the stack now drops the frames V8 captured with it (they hold the closed connection).
      void cause.stack
      this.downCauses.set(node, cause)
    }
    for (const scope of this.pgScopes.values()) scope.nodeDown(node)
    const linkExits: Array<[Process, Pid]> = []
    const downs: Array<[Process, Ref]> = []
    for (const p of this.procs.values()) {
      for (const [key, l] of p._links) {
        if (l.pid.node !== node) continue
        p._links.delete(key)
        if (l.active) linkExits.push([p, l.pid])
      }
      for (const m of p._monitorsOut.values()) if (m.node === node) downs.push([p, m.ref])
      for (const [key, m] of p._monitorsIn) {
        if (m.watcher.node === node) {
          p._monitorsIn.delete(key)
          this.remoteMonitorsIn.delete(key)
        }
      }
    }
    const failedSpawns: SpawnReq[] = []
    for (const [key, req] of this.spawnReqs) {
      if (req.node !== node) continue
      this.spawnReqs.delete(key)
      req.proc._spawnReqs.delete(key)
      if (req.abandoned === undefined) failedSpawns.push(req)
    }
    // Signals to the dead node are not sent while this runs: its links are gone before anyone dies.
    const wasDraining = this.draining
    this.draining = true
    try {
      // Links first, then monitors, as erts does: a process that traps exits and monitors the same remote
      // process gets {'EXIT', P, noconnection} before the DOWN.
      for (const [p, pid] of linkExits) this.react(p, pid, NOCONNECTION, true)
      for (const [p, ref] of downs) this.fireMonitor(p, ref, NOCONNECTION)
      for (const req of failedSpawns)
        if (req.reply !== 'no' && req.proc.alive)
          req.proc.mailbox.push(tuple(req.replyTag, req.reqId, ERROR, NOCONNECTION))
    } finally {
      this.draining = wasDraining
    }
    this.drain()
  }

  /** Ends every process with `reason` (default `shutdown`), e.g. when the node stops. */
  shutdown(reason: Term = SHUTDOWN): void {
    for (const p of [...this.procs.values()].reverse()) this.terminate(p, reason)
    this._system = undefined
  }

  /** How many processes are alive. */
  get processCount(): number {
    return this.procs.size
  }
}

