// gen_server in TypeScript: a process that Erlang's gen_server:call/2,3 and cast/2 reach (gen.erl's
// message shapes: {'$gen_call', {Pid, Tag}, Req} answered with {Tag, Reply}; {'$gen_cast', Req}).
import { ImproperList, Pid, Ref, Tuple, tuple, type Term } from '../etf/terms.js'
import { ALIAS, EXIT, GEN_CALL, GEN_CAST, KILLED, NORMAL } from './atoms.js'
import { BadArgError, ProcessExitedError, TimeoutError } from './errors.js'
import { formatTerm } from './format.js'
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

export interface GenServerCallbacks<S = unknown, A = Term> {
  /** Returns the initial state; throwing fails the start (the process exits with the error's reason). */
  init(args: A, ctx: GenServerContext): Awaitable<S>
  handleCall?(request: Term, from: From, state: S, ctx: GenServerContext): Awaitable<CallResult<S>>
  handleCast?(request: Term, state: S, ctx: GenServerContext): Awaitable<NoReplyResult<S>>
  handleInfo?(msg: Term, state: S, ctx: GenServerContext): Awaitable<NoReplyResult<S>>
  /**
   * Runs whenever the server ends after a successful init: a `stop` result, a callback that threw, the
   * parent's exit (when trapping exits), and also an exit signal that kills it (unlike Erlang, so that
   * resources are released). The process is already dead when it runs on a kill.
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
      state = await impl.init(opts.args as A, ctx)
    } catch (e) {
      onInit?.(e)
      throw e
    }
    onInit?.(undefined)
    let stopReason: Term = NORMAL
    try {
      for (;;) {
        const msg = await self.receive()
        let r: CallResult<S> | NoReplyResult<S>
        let from: From | undefined
        if (msg instanceof Tuple && msg.length === 3 && msg.get(0) === GEN_CALL && msg.get(1) instanceof Tuple) {
          from = msg.get(1) as From
          if (impl.handleCall === undefined) throw new BadArgError(`gen_server has no handleCall for ${formatTerm(msg.get(2))}`)
          r = await impl.handleCall(msg.get(2), from, state, ctx)
        } else if (msg instanceof Tuple && msg.length === 2 && msg.get(0) === GEN_CAST) {
          r = impl.handleCast ? await impl.handleCast(msg.get(1), state, ctx) : undefined
        } else if (
          parent !== undefined &&
          self.trapExit &&
          msg instanceof Tuple &&
          msg.length === 3 &&
          msg.get(0) === EXIT &&
          msg.get(1) instanceof Pid &&
          samePid(msg.get(1) as Pid, parent)
        ) {
          stopReason = msg.get(2)
          break
        } else {
          r = impl.handleInfo ? await impl.handleInfo(msg, state, ctx) : undefined
        }
        if (r === undefined || r === null) continue
        if (typeof r !== 'object') throw new BadArgError(`bad gen_server callback result: ${String(r)}`)
        if ('state' in r) state = r.state as S
        if ('stop' in r) {
          if (from !== undefined && 'reply' in r) reply(self, from, r.reply as Term)
          stopReason = r.stop
          break
        }
        if (from !== undefined && 'reply' in r) reply(self, from, r.reply)
      }
    } catch (e) {
      await runTerminate(impl, e instanceof ProcessExitedError ? e.reason : exitReasonOf(e), state, ctx)
      throw e
    }
    await runTerminate(impl, stopReason, state, ctx)
    if (self.alive) self.exit(stopReason)
  }
  const proc = rt.createProcess({ name: opts.name, trapExit: opts.trapExit })
  if (opts.link !== undefined) rt.link(opts.link, proc.pid)
  rt.startProcess(proc, body)
  return proc
}

async function runTerminate<S>(impl: GenServerCallbacks<S, never>, reason: Term, state: S, ctx: GenServerContext) {
  if (impl.terminate === undefined) return
  try {
    await impl.terminate(reason, state, ctx)
  } catch (e) {
    ctx.self.runtime.logger.warn(`gen_server ${ctx.self.pid} terminate failed: ${e instanceof Error ? e.message : String(e)}`)
  }
}

/** Spawns a gen_server and resolves once init succeeded (rejects with init's error, or TimeoutError). */
export function startGenServer<S, A = Term>(
  rt: Runtime,
  impl: GenServerCallbacks<S, A>,
  opts: GenServerOptions<A> = {},
): Promise<Process> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined
    let settled = false
    const proc = spawnGenServer(rt, impl, opts, (err) => {
      if (settled) return
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      if (err === undefined) resolve(proc)
      else reject(err)
    })
    if (opts.timeout !== undefined && Number.isFinite(opts.timeout)) {
      timer = setTimeout(() => {
        if (settled) return
        settled = true
        rt.terminate(proc, KILLED)
        reject(new TimeoutError('gen_server init', opts.timeout as number))
      }, opts.timeout)
    }
  })
}
