// The few erlang BIFs that other nodes call over rpc to look at a node: health checks
// (`rpc:call(N, erlang, node, [])`), observers and scripts asking what runs there. A TypeScript node has no
// Erlang code to run, so without these every such call raised undef. Registered as functions (a user's
// registerFunction can replace them); a wrong arity raises error:undef, as calling a missing BIF does.
import { Atom, Pid, atom, tuple, type Term } from '../etf/terms.js'
import { BADARG, UNDEF } from './atoms.js'
import { ErlangError } from './errors.js'
import type { FunctionRegistry } from './functions.js'
import type { Runtime } from './runtime.js'

const ERLANG = atom('erlang')

/** What the node knows of its connections: nodes(Kind) for Kind visible, hidden or connected. */
export type NodesOf = (kind: 'visible' | 'hidden' | 'connected') => Atom[]

export function registerErlangBifs(fns: FunctionRegistry, nodesOf: NodesOf, disconnect: (node: Atom) => boolean): void {
  const bif = (name: string, arities: number[], impl: (args: Term[], rt: Runtime) => Term) =>
    fns.register(ERLANG, name, (args, { self }) => {
      if (!arities.includes(args.length)) throw new ErlangError(UNDEF, [tuple(ERLANG, atom(name), args, [])])
      return impl(args, self.runtime)
    })
  const badarg = (name: string, args: Term[]): never => {
    throw new ErlangError(BADARG, [tuple(ERLANG, atom(name), args, [])])
  }
  bif('node', [0, 1], (args, rt) => {
    if (args.length === 0) return rt.nodeName
    const x = args[0]
    return x instanceof Pid ? x.node : badarg('node', args)
  })
  bif('nodes', [0, 1], (args, rt) => {
    if (args.length === 0) return nodesOf('visible')
    const kinds = Array.isArray(args[0]) ? args[0] : [args[0]]
    const out: Atom[] = []
    for (const k of kinds) {
      const name = k instanceof Atom ? k.name : typeof k === 'boolean' ? String(k) : ''
      if (name === 'this') out.push(rt.nodeName)
      else if (name === 'visible' || name === 'hidden' || name === 'connected') out.push(...nodesOf(name))
      else if (name === 'known') out.push(rt.nodeName, ...nodesOf('connected'))
      else badarg('nodes', args)
    }
    return [...new Set(out)]
  })
  bif('whereis', [1], (args, rt) => {
    if (!(args[0] instanceof Atom)) badarg('whereis', args)
    return rt.whereis(args[0] as Atom) ?? atom('undefined')
  })
  bif('registered', [0], (_args, rt) => rt.registered())
  // erlang:disconnect_node(<<"x">>) is false on erl, not badarg.
  bif('disconnect_node', [1], (args) => (args[0] instanceof Atom ? disconnect(args[0]) : false))
  bif('is_process_alive', [1], (args, rt) => {
    const p = args[0]
    if (!(p instanceof Pid) || p.node !== rt.nodeName) return badarg('is_process_alive', args)
    return rt.process(p)?.alive ?? false
  })
}
