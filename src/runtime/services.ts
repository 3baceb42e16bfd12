// The node's system services: what Erlang expects to find on another node.
// - SPAWN_REQUEST targets: erpc:execute_call/4 and execute_cast/3 (kernel erpc.erl), and registered M:F
// - rex, the rpc server (kernel rpc.erl): gen_server calls {call | block_call, M, F, A, GL}, casts, features
// (net_kernel's is_auth, for net_adm:ping, is answered by the DistManager: src/dist/net_kernel.ts)
// - an io server used as the group leader of what we spawn elsewhere, and of spawned calls here
import { Atom, Pid, Tuple, atom, tuple, type Term } from '../etf/terms.js'
import { ERPC, ERROR, EXECUTE_CALL, EXECUTE_CAST, EXIT, EXIT_CLASS, OK, RETURN, THROW, UNDEF } from './atoms.js'
import type { FunctionRegistry, Outcome } from './functions.js'
import { reply, spawnGenServer, type From, type GenServerCallbacks } from './genserver.js'
import { GLOBAL_NAME_SERVER, globalServer, resolveIt } from './global.js'
import { startPg } from './pg.js'
import type { Process, ProcessFn } from './process.js'
import type { Runtime, SpawnResolver } from './runtime.js'

const BADRPC = atom('badrpc')
const CALL = atom('call')
const BLOCK_CALL = atom('block_call')
const CAST = atom('cast')
const FEATURES_REQUEST = atom('features_request')
const FEATURES_REPLY = atom('features_reply')
const SBCAST = atom('sbcast')
const SEND = atom('send')
const REX = atom('rex')
const NONEXISTING_NAME = atom('nonexisting_name')
const IO_REQUEST = atom('io_request')
const IO_REPLY = atom('io_reply')
const PUT_CHARS = atom('put_chars')
const REQUESTS = atom('requests')
const ENOTSUP = atom('enotsup')
const EOF = atom('eof')
/** Input requests: answered eof, as a `-noshell` erl whose standard input is at its end answers them. */
const INPUT_REQUESTS = new Set([atom('get_line'), atom('get_chars'), atom('get_until'), atom('get_password')])
const GETOPTS = atom('getopts')
const SETOPTS = atom('setopts')

const isList = (t: Term): t is Term[] => Array.isArray(t)
const asArgs = (t: Term): Term[] | undefined =>
  Array.isArray(t) ? t : typeof t === 'string' ? [...t].map((c) => c.codePointAt(0)!) : undefined

/** erpc:execute_call/4's exit reason for an outcome: {Ref, return, V} | {Ref, throw, V} | {Ref, exit, R} | {Ref, error, R, Stack}. */
export function erpcReason(ref: Term, o: Outcome): Term {
  switch (o.class) {
    case 'return':
      return tuple(ref, RETURN, o.value)
    case 'throw':
      return tuple(ref, THROW, o.value)
    case 'exit':
      return tuple(ref, EXIT_CLASS, o.reason)
    case 'error':
      return tuple(ref, ERROR, o.reason, o.stack)
  }
}

/** What rpc.erl's execute_call/3 returns for an outcome (the reply of rex). */
export function rexReply(o: Outcome): Term {
  switch (o.class) {
    case 'return':
    case 'throw':
      return o.value
    case 'exit':
      return tuple(BADRPC, tuple(EXIT, o.reason))
    case 'error':
      return tuple(BADRPC, tuple(EXIT, tuple(o.reason, o.stack)))
  }
}

/** The exit reason of a process whose body was M:F(Args) and ended with `o` (as an Erlang process would). */
function processReason(o: Outcome): Term {
  switch (o.class) {
    case 'return':
      return atom('normal')
    case 'throw':
      return tuple(atom('nocatch'), o.value)
    case 'exit':
      return o.reason
    case 'error':
      return tuple(o.reason, o.stack)
  }
}

export function spawnResolver(fns: FunctionRegistry): SpawnResolver {
  return ({ module, function: fn, args }) => {
    if (module === ERPC && fn === EXECUTE_CALL && args.length === 4) {
      const [ref, m, f, a] = args
      return async (self: Process) => {
        const argList = asArgs(a)
        const o: Outcome =
          m instanceof Atom && f instanceof Atom && argList !== undefined
            ? await fns.apply(self, m, f, argList)
            : { class: 'error', reason: atom('badarg'), stack: [tuple(ERPC, EXECUTE_CALL, 4, [])] }
        self.exit(erpcReason(ref, o))
      }
    }
    if (module === ERPC && fn === EXECUTE_CAST && args.length === 3) {
      const [m, f, a] = args
      return async (self: Process) => {
        const argList = asArgs(a)
        if (!(m instanceof Atom && f instanceof Atom && argList !== undefined)) self.exit(atom('badarg'))
        const o = await fns.apply(self, m as Atom, f as Atom, argList as Term[])
        // execute_cast re-raises errors as error({exception, {Reason, Stack}}).
        if (o.class === 'error') self.exit(tuple(tuple(atom('exception'), tuple(o.reason, o.stack)), o.stack))
        self.exit(processReason(o))
      }
    }
    // spawn(Node, M, F, A) of a registered function: it is the process body. Unknown: the process dies of undef.
    return async (self: Process) => {
      if (!fns.has(module, fn)) self.exit(tuple(UNDEF, [tuple(module, fn, args, [])]))
      self.exit(processReason(await fns.apply(self, module, fn, args)))
    }
  }
}

/** rex: the rpc server that rpc:call falls back to, rpc:block_call and rpc:cast use, and hidden C nodes ask. */
export function rexServer(fns: FunctionRegistry): GenServerCallbacks<Map<Term, Term>, undefined> {
  const run = async (self: Process, m: Term, f: Term, a: Term): Promise<Term> => {
    const args = asArgs(a)
    if (!(m instanceof Atom && f instanceof Atom && args !== undefined)) return tuple(BADRPC, tuple(EXIT, atom('badarg')))
    return rexReply(await fns.apply(self, m, f, args))
  }
  /** Runs the call in its own process (not to block rex) and replies from there. */
  const spawnCall = (self: Process, m: Term, f: Term, a: Term, from: From) => {
    self.spawn(async (worker) => reply(worker, from, await run(worker, m, f, a)))
  }
  return {
    // rex's state on erl is a map too (of the nodes it watches): sys:get_state shows a term, not null.
    init: () => new Map<Term, Term>(),
    async handleCall(req, from, _state, ctx) {
      if (req instanceof Tuple && req.length === 5 && req.get(0) === CALL) {
        spawnCall(ctx.self, req.get(1), req.get(2), req.get(3), from)
        return { noreply: true }
      }
      if (req instanceof Tuple && req.length === 5 && req.get(0) === BLOCK_CALL)
        return { reply: await run(ctx.self, req.get(1), req.get(2), req.get(3)) }
      return { noreply: true } // rex ignores what it does not know
    },
    handleCast(req, _state, ctx) {
      if (req instanceof Tuple && req.length === 5 && req.get(0) === CAST) {
        const [, m, f, a] = req.elements
        ctx.self.spawn(async (worker) => void (await run(worker, m, f, a)))
      }
    },
    handleInfo(msg, _state, ctx) {
      if (!(msg instanceof Tuple) || msg.length !== 2 || !(msg.get(0) instanceof Pid)) return
      const from = msg.get(0) as Pid
      const req = msg.get(1)
      const rt = ctx.self.runtime
      if (req === FEATURES_REQUEST) {
        ctx.self.send(from, tuple(FEATURES_REPLY, rt.nodeName, [ERPC]))
      } else if (req instanceof Tuple && req.length === 5 && req.get(0) === CALL) {
        // "Special for hidden C nodes": the reply goes to From as {rex, Reply}.
        spawnCall(ctx.self, req.get(1), req.get(2), req.get(3), tuple(from, REX))
      } else if (req instanceof Tuple && req.length === 3 && (req.get(0) === SBCAST || req.get(0) === SEND)) {
        const name = req.get(1)
        const payload = req.get(0) === SBCAST ? req.get(2) : tuple(from, req.get(2))
        if (name instanceof Atom && rt.whereis(name) !== undefined) {
          ctx.self.send(name, payload)
          if (req.get(0) === SBCAST) ctx.self.send(from, tuple(REX, rt.nodeName, rt.nodeName))
        } else ctx.self.send(from, tuple(REX, rt.nodeName, tuple(NONEXISTING_NAME, name)))
      }
    },
  }
}

/** An io server that accepts output (logged at debug level) and has no input: reads get eof. */
export function ioServerBody(): ProcessFn {
  const answer = (self: Process, req: Term): Term => {
    if (req instanceof Tuple && req.get(0) === PUT_CHARS) {
      const chars = req.length === 3 ? req.get(2) : req.get(1)
      if (Buffer.isBuffer(chars)) self.runtime.logger.debug(`io: ${chars.toString('utf8')}`)
      else if (typeof chars === 'string') self.runtime.logger.debug(`io: ${chars}`)
      return OK
    }
    if (req instanceof Tuple && req.get(0) === REQUESTS && isList(req.get(1))) {
      let r: Term = OK
      for (const sub of req.get(1) as Term[]) r = answer(self, sub)
      return r
    }
    if (req === GETOPTS) return []
    if (req instanceof Tuple && req.get(0) === SETOPTS) return OK
    if (req instanceof Tuple && INPUT_REQUESTS.has(req.get(0) as Atom)) return EOF
    return tuple(ERROR, ENOTSUP)
  }
  return async (self: Process) => {
    for (;;) {
      const m = await self.receive()
      if (m instanceof Tuple && m.length === 4 && m.get(0) === IO_REQUEST && m.get(1) instanceof Pid)
        self.send(m.get(1) as Pid, tuple(IO_REPLY, m.get(2), answer(self, m.get(3))))
    }
  }
}

/** Installs the spawn resolver, rex, global_name_server, the pg scope and the io server on a runtime.
 *  (net_kernel is the DistManager's.) */
export function installServices(rt: Runtime, fns: FunctionRegistry): void {
  rt.setSpawnResolver(spawnResolver(fns))
  spawnGenServer(rt, rexServer(fns), { name: REX })
  spawnGenServer(rt, globalServer(), { name: GLOBAL_NAME_SERVER })
  if (!fns.has(atom('global'), atom('resolve_it'))) fns.register('global', 'resolve_it', resolveIt(fns))
  startPg(rt)
  const io = rt.spawn(ioServerBody())
  rt.groupLeader = io.pid
}
