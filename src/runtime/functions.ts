// TypeScript functions callable from Erlang as Module:Function (erpc:call, rpc:call, spawn/4), and how
// their outcome maps onto Erlang's exception classes.
import {
  Atom,
  BitBinary,
  ExportFun,
  Float,
  Fun,
  ImproperList,
  Pid,
  Port,
  Ref,
  Tuple,
  tuple,
  type Term,
} from '../etf/terms.js'
import { DEFAULT_MAX_DEPTH } from '../etf/decode.js'
import { OK, UNDEF } from './atoms.js'
import { BadArgError, ErlangError, ErlangExit, ErlangThrow, ProcessExitedError } from './errors.js'
import { toAtom, type Name } from './ids.js'
import type { Process } from './process.js'
import { jsErrorReason } from './reasons.js'

export interface FunctionContext {
  /** The process running the call (a fresh one per call): it can send, receive, link, monitor. */
  readonly self: Process
  readonly module: Atom
  readonly function: Atom
}

/**
 * A function callable from Erlang. Gets the argument list; returns the result (`undefined` → `ok`).
 * Throw ErlangThrow / ErlangExit / ErlangError to raise that Erlang class; any other exception becomes
 * error:{js_error, Message, Stack}.
 */
export type RpcFunction = (args: Term[], ctx: FunctionContext) => unknown

/** How a call ended, in Erlang's terms. */
export type Outcome =
  | { class: 'return'; value: Term }
  | { class: 'throw'; value: Term }
  | { class: 'exit'; reason: Term }
  | { class: 'error'; reason: Term; stack: Term }

export class FunctionRegistry {
  private readonly fns = new Map<string, RpcFunction>()

  private static key(m: Atom, f: Atom): string {
    return `${m.name}\0${f.name}`
  }

  register(module: Name, fn: Name, impl: RpcFunction): void {
    if (typeof impl !== 'function') throw new BadArgError('registerFunction needs a function')
    this.fns.set(FunctionRegistry.key(toAtom(module, 'module'), toAtom(fn, 'function')), impl)
  }

  unregister(module: Name, fn: Name): boolean {
    return this.fns.delete(FunctionRegistry.key(toAtom(module, 'module'), toAtom(fn, 'function')))
  }

  get(module: Atom, fn: Atom): RpcFunction | undefined {
    return this.fns.get(FunctionRegistry.key(module, fn))
  }

  has(module: Atom, fn: Atom): boolean {
    return this.fns.has(FunctionRegistry.key(module, fn))
  }

  /**
   * Runs M:F(Args) in `self` and classifies the outcome as erpc does: an unknown M:F is error:undef with
   * the stack [{M, F, Args, []}]; other errors get [{M, F, Arity, []}] when they carry no stack.
   * Rethrows ProcessExitedError (the process was killed meanwhile: there is nobody to report to).
   */
  async apply(self: Process, module: Atom, fn: Atom, args: Term[]): Promise<Outcome> {
    const impl = this.get(module, fn)
    if (impl === undefined) return { class: 'error', reason: UNDEF, stack: [tuple(module, fn, args, [])] }
    const frame = () => [tuple(module, fn, args.length, [])]
    try {
      const v = await impl(args, { self, module, function: fn })
      if (v === undefined) return { class: 'return', value: OK }
      const bad = notATerm(v)
      if (bad !== undefined)
        return {
          class: 'error',
          reason: jsErrorReason(new TypeError(`${module.name}:${fn.name} returned a value that is not an Erlang term: ${bad}`)),
          stack: frame(),
        }
      return { class: 'return', value: v as Term }
    } catch (e) {
      if (e instanceof ProcessExitedError) throw e
      if (e instanceof ErlangThrow) return { class: 'throw', value: e.value }
      if (e instanceof ErlangExit) return { class: 'exit', reason: e.reason }
      if (e instanceof ErlangError) {
        const s = e.erlangStack
        return { class: 'error', reason: e.reason, stack: Array.isArray(s) && s.length === 0 ? frame() : s }
      }
      return { class: 'error', reason: jsErrorReason(e), stack: frame() }
    }
  }
}

/**
 * A description of the first part of `v` that is not a Term, or undefined when all of it is. Walks with an
 * explicit stack (left to right, depth first), so a term nested as deep as the codec allows cannot exhaust
 * the JS stack, and a cyclic value is reported at maxDepth rather than looping.
 */
export function notATerm(v: unknown, maxDepth = DEFAULT_MAX_DEPTH): string | undefined {
  const todo: unknown[] = [v]
  const depths: number[] = [0]
  while (todo.length > 0) {
    const x = todo.pop()
    const depth = depths.pop() as number
    if (depth > maxDepth) return `nesting deeper than ${maxDepth} (a cyclic value?)`
    const children = childrenOrProblem(x)
    if (typeof children === 'string') return children
    // Pushed last to first, so the first child is looked at first.
    for (let i = children.length - 1; i >= 0; i--) {
      todo.push(children[i])
      depths.push(depth + 1)
    }
  }
  return undefined
}

const NO_CHILDREN: readonly unknown[] = []

/** The parts of a term to check next (none for a scalar), or what makes `v` not a term. */
function childrenOrProblem(v: unknown): readonly unknown[] | string {
  switch (typeof v) {
    case 'boolean':
    case 'bigint':
    case 'string':
      return NO_CHILDREN
    case 'number':
      return Number.isFinite(v) ? NO_CHILDREN : `the number ${v}`
    case 'object': {
      if (v === null) return 'null'
      if (
        v instanceof Atom ||
        v instanceof Float ||
        Buffer.isBuffer(v) ||
        v instanceof BitBinary ||
        v instanceof Pid ||
        v instanceof Port ||
        v instanceof Ref ||
        v instanceof Fun ||
        v instanceof ExportFun
      )
        return NO_CHILDREN
      if (Array.isArray(v)) return v
      if (v instanceof Tuple) return v.elements
      if (v instanceof ImproperList) return [...v.elements, v.tail]
      if (v instanceof Map) {
        const kv: unknown[] = []
        for (const [k, x] of v) kv.push(k, x)
        return kv
      }
      return `an object (${Object.prototype.toString.call(v)})`
    }
    default:
      return String(typeof v)
  }
}
