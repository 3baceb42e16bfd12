// gen_server in TypeScript: a process that Erlang's gen_server:call/2,3 and cast/2 reach (gen.erl's
// message shapes: {'$gen_call', {Pid, Tag}, Req} answered with {Tag, Reply}; {'$gen_cast', Req}), and that
// answers sys.erl's system messages ({system, {Pid, Tag}, Req}: get_state, get_status, suspend, ...).
import { binaryToTerm } from '../etf/decode.js'
import { termToBinary } from '../etf/encode.js'
import { EncodeError } from '../etf/errors.js'
import { Atom, ExportFun, Fun, ImproperList, Pid, Ref, Tuple, atom, termIdentical, tuple, type Term } from '../etf/terms.js'
import { ALIAS, ERROR, EXIT, EXIT_CLASS, GEN_CALL, GEN_CAST, KILLED, NOCONNECTION, NORMAL, OK, THROW, TIMEOUT } from './atoms.js'
import {
  BadArgError,
  ErlangError,
  ErlangExit,
  ErlangThrow,
  NoConnectionError,
  ProcessExitedError,
  RpcError,
  TimeoutError,
} from './errors.js'
import { formatTerm } from './format.js'
import { checkTimeout, longTimeout } from '../timers.js'
import { samePid, type Name } from './ids.js'
import type { Process } from './process.js'
import { exitReasonOf } from './reasons.js'
import type { Runtime } from './runtime.js'

/** The caller of a gen_server call: {Pid, Tag}; Tag is a ref, or [alias | Ref] on OTP 24+. Pass it to reply(). */
export type From = Tuple

export type CallResult<S> =
  | { reply: Term; state?: S }
  | { noreply: true; state?: S }
  | { stop: Term; reply?: Term; state?: S }
/** What handleCast / handleInfo return; `undefined` or omitting `state` keeps the state. */
export type NoReplyResult<S> = { noreply?: true; state?: S } | { stop: Term; state?: S } | void

export interface GenServerContext {
  readonly self: Process
  /** gen_server:reply/2, for a call answered later ({noreply: true} first). */
  reply(from: From, value: Term): void
}

type Awaitable<T> = T | Promise<T>

/**
 * As in gen_server, an Erlang throw from a callback (`throw new ErlangThrow(v)`) is not a failure: `v` is taken
 * as what the callback returned (`throw new ErlangThrow({ reply: x })` replies x), and a `v` that is none of
 * the callback's results ends the server with `{bad_return_value, v}`. Any other exception ends it.
 */
export interface GenServerCallbacks<S = unknown, A = Term> {
  /**
   * Returns the initial state; throwing fails the start (the process exits with the error's reason), except an
   * ErlangThrow, whose value is then the state (init's result), as gen_server takes a throw from init.
   */
  init(args: A, ctx: GenServerContext): Awaitable<S>
  handleCall?(request: Term, from: From, state: S, ctx: GenServerContext): Awaitable<CallResult<S>>
  handleCast?(request: Term, state: S, ctx: GenServerContext): Awaitable<NoReplyResult<S>>
  handleInfo?(msg: Term, state: S, ctx: GenServerContext): Awaitable<NoReplyResult<S>>
  /**
   * Runs whenever the server ends after a successful init: a `stop` result, a callback that threw, the
   * parent's exit (when trapping exits), and also an exit signal that kills it (unlike Erlang, so that
   * resources are released). The process is already dead when it runs on a kill. An exception from it (an
   * ErlangThrow excepted) becomes the server's exit reason, in place of the one it was stopping with.
   */
  terminate?(reason: Term, state: S, ctx: GenServerContext): Awaitable<void>
}

export interface GenServerOptions<A> {
  args?: A
  name?: Name
  /** Link the server to this process (gen_server:start_link); its exit stops the server when trapping exits. */
  link?: Process
  trapExit?: boolean
  /** Milliseconds for init (startGenServer only). */
  timeout?: number
}

/** gen_server:reply/2: sends {Tag, Reply} to the caller, through its alias when the tag carries one. */
export function reply(self: Process | Runtime, from: From, value: Term): void {
  if (!(from instanceof Tuple) || from.length !== 2) throw new BadArgError(`not a gen_server From: ${formatTerm(from)}`)
  // As a send of undefined (Runtime.route): refused whoever the caller is, not only on the wire.
  if (value === undefined) throw new EncodeError('cannot reply undefined: a reply must be an Erlang term')
  const [pid, tag] = from.elements
  const rt = 'runtime' in self ? self.runtime : self
  const sender = 'runtime' in self && self.alive ? self.pid : rt.system.pid
  const msg = tuple(tag, value)
  const alias = aliasOfTag(tag)
  if (alias !== undefined) rt.route(sender, alias, msg, false)
  else if (pid instanceof Pid) rt.route(sender, pid, msg, false)
  else throw new BadArgError(`not a gen_server From: ${formatTerm(from)}`)
}

/**
 * The alias a gen_server reply goes to, as gen:reply/2 matches the tag: `[alias | Alias]` or
 * `[[alias | Alias] | _]` (request ids of send_request collections); undefined for a plain tag.
 */
export function aliasOfTag(tag: Term): Ref | undefined {
  const direct = aliasCell(tag)
  if (direct !== undefined) return direct
  if (Array.isArray(tag)) return tag.length > 0 ? aliasCell(tag[0]) : undefined
  if (tag instanceof ImproperList) return aliasCell(tag.elements[0])
  return undefined
}

/** `[alias | Ref]` */
function aliasCell(t: Term): Ref | undefined {
  return t instanceof ImproperList && t.elements.length === 1 && t.elements[0] === ALIAS && t.tail instanceof Ref ? t.tail : undefined
}

/** Spawns a gen_server process now; `onInit` learns whether init succeeded. */
export function spawnGenServer<S, A = Term>(
  rt: Runtime,
  impl: GenServerCallbacks<S, A>,
  opts: GenServerOptions<A> = {},
  onInit?: (err: unknown) => void,
): Process {
  const body = async (self: Process) => {
    const ctx: GenServerContext = { self, reply: (from, value) => reply(self, from, value) }
    const parent = opts.link?.pid
    let state: S
    try {
      state = await tryCallback(() => impl.init(opts.args as A, ctx))
    } catch (e) {
      onInit?.(e)
      throw e
    }
    onInit?.(undefined)
    let stopReason: Term = NORMAL
    // sys:suspend/1: only system messages (and the parent's exit) are received until sys:resume/1.
    let suspended = false
    const isParentExit = (msg: Term) =>
      parent !== undefined &&
      self.trapExit &&
      msg instanceof Tuple &&
      msg.length === 3 &&
      msg.get(0) === EXIT &&
      msg.get(1) instanceof Pid &&
      samePid(msg.get(1) as Pid, parent)
    const suspendedMatch = (msg: Term) => isSystemMsg(msg) || isParentExit(msg)
    // sys:log, sys:statistics, sys:trace: off until asked for.
    const debug: Debug = { log: undefined, stats: undefined, trace: false }
    let replyAfterTerminate: { from: From; reply: Term } | undefined
    try {
      for (;;) {
        const msg = suspended ? await self.receive(suspendedMatch) : await self.receive()
        let r: CallResult<S> | NoReplyResult<S>
        let from: From | undefined
        const sysMsg = isSystemMsg(msg)
        const parentExit = !sysMsg && isParentExit(msg)
        const debugging = debug.log !== undefined || debug.stats !== undefined || debug.trace
        if (debugging && !sysMsg && !parentExit) debugEvent(self, debug, IN, () => tuple(IN, msg))
        if (msg instanceof Tuple && msg.length === 3 && msg.get(0) === GEN_CALL && msg.get(1) instanceof Tuple) {
          const caller = (from = msg.get(1) as From)
          const handleCall = impl.handleCall
          if (handleCall === undefined) throw new BadArgError(`gen_server has no handleCall for ${formatTerm(msg.get(2))}`)
          r = await tryCallback(() => handleCall(msg.get(2), caller, state, ctx))
          // As gen_server: a result that is no reply, noreply or stop ends the server with bad_return_value
          // (the caller's call exits with it) instead of leaving the caller waiting for a reply never sent.
          if (r === undefined || r === null || typeof r !== 'object' || !('reply' in r || 'noreply' in r || 'stop' in r))
            throw new ErlangExit(tuple(BAD_RETURN_VALUE, badReturn(r)))
        } else if (msg instanceof Tuple && msg.length === 2 && msg.get(0) === GEN_CAST) {
          const handleCast = impl.handleCast
          r = handleCast ? await tryCallback(() => handleCast(msg.get(1), state, ctx)) : undefined
        } else if (sysMsg) {
          const sysFrom = (msg as Tuple).get(1) as From
          const out = await systemRequest(self, (msg as Tuple).get(2), sysFrom, state, suspended, parent ?? self.pid, debug)
          if ('state' in out) state = out.state as S
          suspended = out.suspended
          reply(self, sysFrom, out.reply)
          if (out.terminate !== undefined) {
            stopReason = out.terminate
            break
          }
          continue
        } else if (parentExit) {
          stopReason = (msg as Tuple).get(2)
          break
        } else {
          const handleInfo = impl.handleInfo
          r = handleInfo ? await tryCallback(() => handleInfo(msg, state, ctx)) : undefined
        }
        // A handleCast / handleInfo result that is neither nothing nor a result object (a number, an atom thrown
        // with ErlangThrow...): bad_return_value, as gen_server.
        if (r !== undefined && r !== null && !isPlainObject(r)) throw new ErlangExit(tuple(BAD_RETURN_VALUE, badReturn(r)))
        if (r && 'state' in r) state = r.state as S
        const replied = from !== undefined && r !== undefined && r !== null && 'reply' in r
        const stopping = r !== undefined && r !== null && 'stop' in r
        // {stop, Reason, Reply, State}: as gen_server, the reply goes after terminate has run (even when it
        // fails), so a caller that asked for the stop finds the clean-up done.
        if (replied && stopping) replyAfterTerminate = { from: from as From, reply: (r as { reply: Term }).reply }
        else if (replied) reply(self, from as From, (r as { reply: Term }).reply)
        if (debugging && !stopping) {
          // gen_server's own events: {out, Reply, From, State} for a reply, {noreply, State} otherwise.
          const st = state
          if (replied) debugEvent(self, debug, OUT, () => tuple(OUT, (r as { reply: Term }).reply, from as From, stateShown(st)))
          else debugEvent(self, debug, NOREPLY, () => tuple(NOREPLY, stateShown(st)))
        }
        if (stopping) {
          stopReason = (r as { stop: Term }).stop
          break
        }
      }
    } catch (e) {
      // An exception from terminate propagates from here: as in gen_server, it is the exit reason then.
      await runTerminate(impl, e instanceof ProcessExitedError ? e.reason : exitReasonOf(e), state, ctx)
      throw e
    }
    try {
      await runTerminate(impl, stopReason, state, ctx)
    } finally {
      if (replyAfterTerminate !== undefined) reply(self, replyAfterTerminate.from, replyAfterTerminate.reply)
    }
    if (self.alive) self.exit(stopReason)
  }
  const proc = rt.createProcess({ name: opts.name, trapExit: opts.trapExit })
  if (opts.link !== undefined) rt.link(opts.link, proc.pid)
  rt.startProcess(proc, body)
  return proc
}

const BAD_RETURN_VALUE = atom('bad_return_value')

/**
 * Runs a callback as gen_server does (init_it, try_dispatch, try_handle_call, try_terminate): an Erlang
 * throw(V) is caught and V taken as the callback's result; other exceptions go on.
 */
async function tryCallback<T>(run: () => Awaitable<T>): Promise<T> {
  try {
    return await run()
  } catch (e) {
    if (e instanceof ErlangThrow) return e.value as T
    throw e
  }
}

/** An object literal (a callback result), not a term of a class (Atom, Tuple, Map, Buffer, an array...). */
function isPlainObject(r: unknown): boolean {
  if (typeof r !== 'object' || r === null) return false
  const proto = Object.getPrototypeOf(r)
  return proto === Object.prototype || proto === null
}

/** A handleCall result that is not a CallResult, as a term: itself when it is one, else its description. */
function badReturn(r: unknown): Term {
  if (r === undefined || r === null) return atom(String(r))
  if (encodeRefusal(r) === undefined) return r as Term
  return Buffer.from(typeof r === 'object' ? `an object with keys [${Object.keys(r).join(', ')}]` : String(r))
}

// --- system messages (sys.erl) -------------------------------------------------------------------

const SYSTEM = atom('system')
const GET_STATE = atom('get_state')
const GET_STATUS = atom('get_status')
const REPLACE_STATE = atom('replace_state')
const SUSPEND = atom('suspend')
const RESUME = atom('resume')
const TERMINATE = atom('terminate')
const RUNNING = atom('running')
const SUSPENDED = atom('suspended')
const STATUS = atom('status')
const MODULE = atom('module')
const GEN_SERVER = atom('gen_server')
const HEADER = atom('header')
const DATA = atom('data')
const CALLBACK_FAILED = atom('callback_failed')
const UNKNOWN_SYSTEM_MSG = atom('unknown_system_msg')
const SYSTEM_GET_STATE = atom('system_get_state')
const SYSTEM_REPLACE_STATE = atom('system_replace_state')
const NOT_A_TERM = atom('not_a_term')
const BADFUN = atom('badfun')
const NO_ERLANG_NODE = atom('no_erlang_node')
const APPLY = atom('apply')
const ERLANG = atom('erlang')

/** {system, From, Request} with a gen From {Pid, Tag}, as sys:send_system_msg sends through gen:call/3. */
function isSystemMsg(msg: Term): boolean {
  if (!(msg instanceof Tuple) || msg.length !== 3 || msg.get(0) !== SYSTEM) return false
  const from = msg.get(1)
  return from instanceof Tuple && from.length === 2
}

interface SystemOutcome {
  reply: Term
  suspended: boolean
  /** Present when the request replaced the state. */
  state?: unknown
  /** sys:terminate/2: the server stops with this reason (terminate runs) after the reply. */
  terminate?: Term
}

/** {not_a_term, <<"why">>}: what sys shows for a state the codec refuses. */
const notATerm = (why: string): Term => tuple(NOT_A_TERM, Buffer.from(why))

/** {not_a_term, Why} when the codec refuses the state, else undefined. */
function encodeRefusal(state: unknown): Term | undefined {
  try {
    termToBinary(state as Term)
    return undefined
  } catch (e) {
    return notATerm(e instanceof Error ? e.message : String(e))
  }
}

/** The state as Erlang would see it: its encoded-and-decoded image, or {not_a_term, Why}. */
function termImage(state: unknown): { term: Term } | { refused: Term } {
  try {
    return { term: binaryToTerm(termToBinary(state as Term)) }
  } catch (e) {
    return { refused: notATerm(e instanceof Error ? e.message : String(e)) }
  }
}

/** {error, {callback_failed, {gen_server, Callback}, {Class, Reason}}}: sys.erl's reply when a callback fails. */
function callbackFailed(callback: Atom, cls: Atom, reason: Term): Term {
  return tuple(ERROR, tuple(CALLBACK_FAILED, tuple(GEN_SERVER, callback), tuple(cls, reason)))
}

/** sys.erl do_cmd/6 for a gen_server whose Misc is [Name, State, Mod, Time, HibernateAfterTimeout]. */
async function systemRequest(
  self: Process,
  req: Term,
  from: From,
  state: unknown,
  suspended: boolean,
  parent: Pid,
  debug: Debug,
): Promise<SystemOutcome> {
  if (req === SUSPEND) return { reply: OK, suspended: true }
  if (req === RESUME) return { reply: OK, suspended: false }
  if (req === GET_STATE) {
    const refused = encodeRefusal(state)
    return { reply: refused === undefined ? (state as Term) : callbackFailed(SYSTEM_GET_STATE, ERROR, refused), suspended }
  }
  if (req === GET_STATUS) return { reply: statusOf(self, state, suspended, parent, debug), suspended }
  if (req instanceof Tuple && req.length === 2 && req.get(0) === REPLACE_STATE) {
    return { ...(await replaceState(self, req.get(1), from, state)), suspended }
  }
  if (req instanceof Tuple && req.length === 2 && req.get(0) === TERMINATE)
    return { reply: OK, suspended, terminate: req.get(1) }
  if (req instanceof Tuple && req.length === 2 && req.get(0) === DEBUG) return { reply: debugCommand(self, debug, req.get(1)), suspended }
  // change_code and anything else: not implemented here.
  return { reply: tuple(ERROR, tuple(UNKNOWN_SYSTEM_MSG, req)), suspended }
}

// --- sys debug: log, statistics, trace ------------------------------------------------------------

const DEBUG = atom('debug')
const LOG = atom('log')
const STATISTICS = atom('statistics')
const TRACE = atom('trace')
const GET = atom('get')
const PRINT = atom('print')
const NO_DEBUG = atom('no_debug')
const UNKNOWN_DEBUG = atom('unknown_debug')
const NO_STATISTICS = atom('no_statistics')
const IN = atom('in')
const OUT = atom('out')
const NOREPLY = atom('noreply')
const START_TIME = atom('start_time')
const CURRENT_TIME = atom('current_time')
const REDUCTIONS = atom('reductions')
const MESSAGES_IN = atom('messages_in')
const MESSAGES_OUT = atom('messages_out')

/** sys.erl's debug options for one server, as sys:log/2, sys:statistics/2 and sys:trace/2 set them. */
interface Debug {
  /** The last `max` events, oldest first (sys:log/2, default 10). */
  log: { max: number; events: Term[] } | undefined
  stats: { start: Term; in: number; out: number } | undefined
  /** sys:trace/2: each event is written to the node's log as OTP prints it (`*DBG* ...`). */
  trace: boolean
}

/** The name gen_server prints: the registered name, else the pid as its own node shows it (<0.N.S>). */
const serverName = (self: Process): string => (self.name !== undefined ? self.name.name : `<0.${self.pid.id}.${self.pid.serial}>`)

/** The state as an event or status shows it: its Erlang image, or why the codec refuses it. */
function stateShown(state: unknown): Term {
  const img = termImage(state)
  return 'refused' in img ? img.refused : img.term
}

/** erlang:localtime(): {{Y, M, D}, {H, Mi, S}}, as sys:statistics reports its times. */
function localtime(): Term {
  const d = new Date()
  return tuple(tuple(d.getFullYear(), d.getMonth() + 1, d.getDate()), tuple(d.getHours(), d.getMinutes(), d.getSeconds()))
}

/**
 * sys:handle_debug for one gen_server event of this kind ({in, Msg}, {out, Reply, From, State} or
 * {noreply, State}); the event (and the state's image in it) is built only for the log or the trace.
 */
function debugEvent(self: Process, debug: Debug, kind: Atom, make: () => Tuple): void {
  if (debug.stats !== undefined) {
    if (kind === IN) debug.stats.in++
    else if (kind === OUT) debug.stats.out++
  }
  if (debug.log === undefined && !debug.trace) return
  const event = make()
  if (debug.log !== undefined) {
    const { events, max } = debug.log
    events.push(event)
    if (events.length > max) events.splice(0, events.length - max)
  }
  if (debug.trace) self.runtime.logger.warn(formatEvent(serverName(self), event))
}

/** gen_server:print_event/3's text. */
function formatEvent(name: string, event: Tuple): string {
  const kind = event.get(0)
  if (kind === IN) {
    const msg = event.get(1)
    if (msg instanceof Tuple && msg.length === 3 && msg.get(0) === GEN_CALL && msg.get(1) instanceof Tuple)
      return `*DBG* ${name} got call ${formatTerm(msg.get(2))} from ${formatTerm((msg.get(1) as Tuple).get(0))}`
    if (msg instanceof Tuple && msg.length === 2 && msg.get(0) === GEN_CAST) return `*DBG* ${name} got cast ${formatTerm(msg.get(1))}`
    return `*DBG* ${name} got ${formatTerm(msg)}`
  }
  if (kind === OUT) {
    const to = event.get(2)
    const pid = to instanceof Tuple ? to.get(0) : to
    return `*DBG* ${name} sent ${formatTerm(event.get(1))} to ${formatTerm(pid)}, new state ${formatTerm(event.get(3))}`
  }
  return `*DBG* ${name} new state ${formatTerm(event.get(1))}`
}

/** sys.erl debug_cmd/2: the reply to {debug, What}, changing `debug` in place. */
function debugCommand(self: Process, debug: Debug, what: Term): Term {
  if (what === NO_DEBUG) {
    debug.log = undefined
    debug.stats = undefined
    debug.trace = false
    return OK
  }
  if (!(what instanceof Tuple) || what.length !== 2) return UNKNOWN_DEBUG
  const [opt, flag] = what.elements
  if (opt === LOG) {
    if (flag === true || (flag instanceof Tuple && flag.length === 2 && flag.get(0) === true && Number.isInteger(flag.get(1)) && (flag.get(1) as number) >= 1)) {
      // Events already logged are kept; the new bound applies from the next event.
      debug.log = { max: flag === true ? 10 : ((flag as Tuple).get(1) as number), events: debug.log?.events ?? [] }
      return OK
    }
    if (flag === false) {
      debug.log = undefined
      return OK
    }
    if (flag === GET) return tuple(OK, debug.log ? [...debug.log.events] : [])
    if (flag === PRINT) {
      // sys:print_log: the events, written where the server's trace goes (the node's log).
      for (const e of debug.log?.events ?? []) self.runtime.logger.warn(formatEvent(serverName(self), e as Tuple))
      return OK
    }
    return UNKNOWN_DEBUG
  }
  if (opt === STATISTICS) {
    if (flag === true) {
      debug.stats = { start: localtime(), in: 0, out: 0 }
      return OK
    }
    if (flag === false) {
      debug.stats = undefined
      return OK
    }
    if (flag === GET) {
      const st = debug.stats
      if (st === undefined) return tuple(OK, NO_STATISTICS)
      // A TypeScript process has no reduction count: 0.
      return tuple(OK, [
        tuple(START_TIME, st.start),
        tuple(CURRENT_TIME, localtime()),
        tuple(REDUCTIONS, 0),
        tuple(MESSAGES_IN, st.in),
        tuple(MESSAGES_OUT, st.out),
      ])
    }
    return UNKNOWN_DEBUG
  }
  if (opt === TRACE && typeof flag === 'boolean') {
    debug.trace = flag
    return OK
  }
  return UNKNOWN_DEBUG
}

/**
 * {status, Pid, {module, gen_server}, [PDict, SysState, Parent, Debug, Misc]} with Misc as
 * gen_server:format_status/2 builds it: a header, the sys data, and the state.
 */
function statusOf(self: Process, state: unknown, suspended: boolean, parent: Pid, debug: Debug): Term {
  const sysState = suspended ? SUSPENDED : RUNNING
  const name = serverName(self)
  const shown = stateShown(state)
  const misc: Term[] = [
    tuple(HEADER, `Status for generic server ${name}`),
    tuple(DATA, [tuple('Status', sysState), tuple('Parent', parent), tuple('Logged events', debug.log ? [...debug.log.events] : [])]),
    tuple(DATA, [tuple('State', shown)]),
  ]
  return tuple(STATUS, self.pid, tuple(MODULE, GEN_SERVER), [[], sysState, parent, [], misc])
}

/**
 * {replace_state, StateFun}: the fun is Erlang code, so it runs where it came from, on the caller's
 * node (erpc: erlang:apply(StateFun, [State])), and its result becomes the state. Failures answer as
 * sys.erl does when gen_server:system_replace_state/2 raises, and keep the state.
 */
async function replaceState(self: Process, fun: Term, from: From, state: unknown): Promise<{ reply: Term; state?: unknown }> {
  const failed = (cls: Atom, reason: Term) => ({ reply: callbackFailed(SYSTEM_REPLACE_STATE, cls, reason) })
  if (!(fun instanceof Fun || fun instanceof ExportFun)) return failed(ERROR, tuple(BADFUN, fun))
  const img = termImage(state)
  if ('refused' in img) return failed(ERROR, img.refused)
  // A state that does not come back from the codec as itself (a plain object decodes as a Map, say)
  // would change shape under the TypeScript callbacks: refuse rather than hand them a different type.
  if (!termIdentical(img.term, state as Term)) return failed(ERROR, notATerm('the state does not decode back to itself'))
  const caller = from.get(0)
  if (!(caller instanceof Pid) || caller.node === self.pid.node) return failed(ERROR, NO_ERLANG_NODE)
  try {
    const next = await self.rpc(caller.node, ERLANG, APPLY, [fun, [img.term]])
    return { reply: next, state: next }
  } catch (e) {
    if (e instanceof ErlangError) return failed(ERROR, e.reason)
    if (e instanceof ErlangThrow) return failed(THROW, e.value)
    if (e instanceof ErlangExit) return failed(EXIT_CLASS, e.reason)
    if (e instanceof NoConnectionError) return failed(ERROR, NOCONNECTION)
    if (e instanceof TimeoutError) return failed(ERROR, TIMEOUT)
    if (e instanceof RpcError) return failed(ERROR, e.reason)
    throw e
  }
}

/** terminate, as gen_server's try_terminate: a throw is a return; any other exception is thrown on. */
async function runTerminate<S>(impl: GenServerCallbacks<S, never>, reason: Term, state: S, ctx: GenServerContext) {
  const terminate = impl.terminate
  if (terminate === undefined) return
  try {
    await tryCallback(() => terminate(reason, state, ctx))
  } catch (e) {
    // Killed: the process is already dead and its exit reason fixed; say what terminate raised.
    if (!ctx.self.alive)
      ctx.self.runtime.logger.warn(`gen_server ${ctx.self.pid} terminate failed: ${e instanceof Error ? e.message : String(e)}`)
    throw e
  }
}

/** Spawns a gen_server and resolves once init succeeded (rejects with init's error, or TimeoutError). */
export function startGenServer<S, A = Term>(
  rt: Runtime,
  impl: GenServerCallbacks<S, A>,
  opts: GenServerOptions<A> = {},
): Promise<Process> {
  return new Promise((resolve, reject) => {
    checkTimeout(opts.timeout)
    let timer: { clear(): void } | undefined
    let settled = false
    const proc = spawnGenServer(rt, impl, opts, (err) => {
      if (settled) return
      settled = true
      timer?.clear()
      if (err === undefined) resolve(proc)
      else reject(err)
    })
    if (opts.timeout !== undefined && Number.isFinite(opts.timeout)) {
      timer = longTimeout(() => {
        if (settled) return
        settled = true
        rt.terminate(proc, KILLED)
        reject(new TimeoutError('gen_server init', opts.timeout as number))
      }, opts.timeout)
    }
  })
}
