// Exit reasons for values thrown out of TypeScript code.
//
//   thrown                          exit reason Erlang sees
//   ErlangExit(R)                   R
//   ErlangThrow(V)                  {nocatch, V}            (an uncaught Erlang throw)
//   ErlangError(R, Stack)           {R, Stack}              (an uncaught Erlang error)
//   anything else (a JS exception)  {js_error, Message, Stack}, Message = <<"Name: message">>, Stack = <<err.stack>>
import { tuple, type Term } from '../etf/terms.js'
import { JS_ERROR, NOCATCH } from './atoms.js'
import { ErlangError, ErlangExit, ErlangThrow, ProcessExitedError } from './errors.js'
import { formatTerm } from './format.js'

export function exitReasonOf(e: unknown): Term {
  if (e instanceof ErlangExit) return e.reason
  if (e instanceof ProcessExitedError) return e.reason
  if (e instanceof ErlangThrow) return tuple(NOCATCH, e.value)
  if (e instanceof ErlangError) return tuple(e.reason, e.erlangStack)
  return jsErrorReason(e)
}

/** `{js_error, Message, Stack}`, both binaries (UTF-8): how a JavaScript exception looks to Erlang. */
export function jsErrorReason(e: unknown): Term {
  if (e instanceof Error) return tuple(JS_ERROR, Buffer.from(`${e.name}: ${e.message}`), Buffer.from(e.stack ?? ''))
  let text: string
  try {
    text = typeof e === 'string' ? e : formatTerm(e)
  } catch {
    text = 'unprintable value'
  }
  return tuple(JS_ERROR, Buffer.from(text), Buffer.alloc(0))
}
