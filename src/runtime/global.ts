// global_name_server for a visible node: what an erl node's `global` (kernel global.erl, OTP 25) asks of it.
//
// When a visible node comes up, erl's global casts {init_connect, {Vsn, Tag}, Node, {locker, _, Known,
// Locker}} to global_name_server there and waits for the two name servers to lock, exchange their names and
// resolve them; until then global:sync/0 on erl does not return. This node registers no global names, so it
// answers the way global itself does when it learns a node is already in step with it: it casts {in_sync,
// node(), true} back, and erl marks this node synced (and drops its half-started exchange). The nodes that
// peer is in step with get the same, which connects them to this node, as global's exchange would have.
//
// Locks: global:set_lock/2 and global:trans/2,3,4 over node lists that include this node multi_call
// {set_lock, {ResourceId, LockRequesterId}} and {del_lock, Id} here. They get global's semantics: a resource
// is held by one requester id at a time, by any number of processes, each monitored and released when it
// dies. Names are not taken part in: global:register_name/2 on erl only asks the nodes it has exchanged
// names with, which this node never is.
import { Atom, ExportFun, Fun, Pid, Ref, Tuple, atom, canonicalKey, termEquals, tuple, type Term } from '../etf/terms.js'
import { BADARG, DOWN, GEN_CAST, UNDEF } from './atoms.js'
import { ErlangError } from './errors.js'
import type { FunctionRegistry, RpcFunction } from './functions.js'
import { pidKey } from './ids.js'
import type { GenServerCallbacks } from './genserver.js'
import type { Process } from './process.js'

export const GLOBAL_NAME_SERVER = atom('global_name_server')
const INIT_CONNECT = atom('init_connect')
const IN_SYNC = atom('in_sync')
const SET_LOCK = atom('set_lock')
const DEL_LOCK = atom('del_lock')

interface Lock {
  requester: Term
  /** The processes holding it, by pid text, with the monitor watching each. */
  holders: Map<string, Ref>
}

export interface GlobalState {
  /** By canonicalKey(ResourceId). */
  locks: Map<string, Lock>
}

/** {ResourceId, LockRequesterId}, or undefined when the request is not one. */
function lockId(t: Term): { key: string; requester: Term } | undefined {
  if (!(t instanceof Tuple) || t.length !== 2) return undefined
  return { key: canonicalKey(t.get(0)), requester: t.get(1) }
}

export function globalServer(): GenServerCallbacks<GlobalState, undefined> {
  return {
    init: () => ({ locks: new Map() }),

    handleCast(req, state, ctx) {
      // {init_connect, {Vsn, HisTag}, Node, InitMsg}: answer that this node is in step (it has no names).
      if (req instanceof Tuple && req.length === 4 && req.get(0) === INIT_CONNECT && req.get(2) instanceof Atom) {
        const self = ctx.self
        const us = self.runtime.nodeName
        const inSync = tuple(GEN_CAST, tuple(IN_SYNC, us, true))
        self.send(tuple(GLOBAL_NAME_SERVER, req.get(2)), inSync)
        // InitMsg {locker, _, Known, Locker}: Known (a map in OTP 25) has the nodes the peer is in step with
        // as atom keys. Connect to them as global's exchange would have made them connect here (Erlang's
        // default connect_all); each then sends its own init_connect, and is answered the same way.
        const init = req.get(3)
        const known = init instanceof Tuple && init.length === 4 ? init.get(2) : undefined
        const nodes = known instanceof Map ? [...known.keys()] : Array.isArray(known) ? known : []
        for (const n of nodes) if (n instanceof Atom && n !== us && n !== req.get(2)) self.send(tuple(GLOBAL_NAME_SERVER, n), inSync)
      }
      // Everything else global casts (new_nodes, in_sync, lock_set, exchange, ...) belongs to the exchange
      // this node does not take part in.
      return { state }
    },

    handleCall(req, from, state, ctx) {
      const caller = from.get(0)
      if (!(req instanceof Tuple) || req.length !== 2 || !(caller instanceof Pid)) return { noreply: true }
      const id = lockId(req.get(1))
      if (id === undefined) return { noreply: true }
      if (req.get(0) === SET_LOCK) {
        const held = state.locks.get(id.key)
        if (held !== undefined && !termEquals(held.requester, id.requester)) return { reply: false }
        const lock = held ?? { requester: id.requester, holders: new Map() }
        const k = pidKey(caller)
        if (!lock.holders.has(k)) lock.holders.set(k, ctx.self.monitor(caller))
        state.locks.set(id.key, lock)
        return { reply: true }
      }
      if (req.get(0) === DEL_LOCK) {
        const held = state.locks.get(id.key)
        if (held !== undefined && termEquals(held.requester, id.requester)) release(ctx.self, state, id.key, held, pidKey(caller))
        return { reply: true }
      }
      return { noreply: true }
    },

    handleInfo(msg, state, ctx) {
      // A holder died: its locks go, as global's do.
      if (msg instanceof Tuple && msg.length === 5 && msg.get(0) === DOWN && msg.get(3) instanceof Pid) {
        const k = pidKey(msg.get(3) as Pid)
        for (const [key, lock] of state.locks) if (lock.holders.has(k)) release(ctx.self, state, key, lock, k)
      }
      return { state }
    },
  }
}

const GLOBAL = atom('global')
const RANDOM_EXIT_NAME = atom('random_exit_name')
const RANDOM_NOTIFY_NAME = atom('random_notify_name')
const NOTIFY_ALL_NAME = atom('notify_all_name')
const NAME_CONFLICT = atom('global_name_conflict')
const KILL = atom('kill')
const NONE = atom('none')

/**
 * global:resolve_it/4. When two partitions that registered one name with different pids meet, erl's global
 * calls rpc:call(node(Pid2), global, resolve_it, [Method, Name, Pid1, Pid2]) on the node of the pid it holds
 * (global:exchange_names): for a pid of this node, here. Without it the call was undef, global kept one pid
 * and nobody was told (the other process lived on under no name). The resolve functions global exports run as
 * global runs them (the larger node's pid killed or notified, the smaller's kept); a user's M:F/3 runs if
 * registered here with registerFunction, and is undef otherwise (global then keeps one pid, as before).
 * global:register_name/2's default method is the local `fun random_exit_name/3` of global (a NEW_FUN_EXT of
 * module global, not an export fun): that one is random_exit_name too. Other local funs cannot run here.
 */
export function resolveIt(fns: FunctionRegistry): RpcFunction {
  return async (args, ctx) => {
    const [method, name, pid1, pid2] = args
    // The default method as global:register_name/2 passes it (a local fun of global) is random_exit_name.
    const m = method instanceof Fun && method.module === GLOBAL && method.arity === 3 ? new ExportFun(GLOBAL, RANDOM_EXIT_NAME, 3) : method
    if (args.length !== 4 || !(m instanceof ExportFun) || m.arity !== 3 || !(pid1 instanceof Pid) || !(pid2 instanceof Pid))
      throw new ErlangError(BADARG, [tuple(GLOBAL, atom('resolve_it'), args, [])])
    // minmax/2: by node name.
    const [min, max] = pid1.node.name < pid2.node.name ? [pid1, pid2] : [pid2, pid1]
    const self = ctx.self
    if (m.module === GLOBAL && m.function === RANDOM_EXIT_NAME) {
      self.runtime.logger.info(`global: name conflict over ${String(name)}: terminating ${max}`)
      self.sendExit(max, KILL)
      return min
    }
    if (m.module === GLOBAL && m.function === RANDOM_NOTIFY_NAME) {
      self.send(max, tuple(NAME_CONFLICT, name))
      return min
    }
    if (m.module === GLOBAL && m.function === NOTIFY_ALL_NAME) {
      self.send(pid1, tuple(NAME_CONFLICT, name, pid2))
      self.send(pid2, tuple(NAME_CONFLICT, name, pid1))
      return NONE
    }
    const impl = fns.get(m.module, m.function)
    if (impl === undefined) throw new ErlangError(UNDEF, [tuple(m.module, m.function, [name, pid1, pid2], [])])
    return impl([name, pid1, pid2], { self, module: m.module, function: m.function })
  }
}

function release(self: Process, state: GlobalState, key: string, lock: Lock, holder: string): void {
  const ref = lock.holders.get(holder)
  if (ref === undefined) return
  self.demonitor(ref, { flush: true })
  lock.holders.delete(holder)
  if (lock.holders.size === 0) state.locks.delete(key)
}
