// Errors raised by the process runtime, and the three Erlang exception classes (throw / exit / error)
// that TypeScript code throws to choose how Erlang sees a failure, and that rpc raises for remote ones.
import { DistError } from '../errors.js'
import type { Atom, Term } from '../etf/terms.js'
import { formatTerm } from './format.js'

/** A receive, call or rpc did not complete in time. */
export class TimeoutError extends DistError {
  override readonly code = 'ERR_TIMEOUT'
  constructor(what: string, readonly timeout: number) {
    super(`${what} timed out after ${timeout} ms`)
  }
}

/** The operation's AbortSignal fired. */
export class AbortError extends DistError {
  override readonly code = 'ERR_ABORTED'
  constructor(what: string, options?: { cause?: unknown }) {
    super(`${what} aborted`, options)
  }
}

/** The target process does not exist (or died before it answered). */
export class NoProcError extends DistError {
  override readonly code = 'ERR_NOPROC'
  constructor(readonly target: Term) {
    super(`no process: ${formatTerm(target)}`)
  }
}

/** The node of the target is down or could not be reached; `cause` says why when the node knows (the failed
 *  connection attempt, such as a CookieMismatchError or NodeUnreachableError, or the connection's loss). */
export class NoConnectionError extends DistError {
  override readonly code = 'ERR_NOCONNECTION'
  constructor(readonly node: Atom | undefined, options?: { cause?: unknown }) {
    const why = options?.cause instanceof Error ? `: ${options.cause.message}` : ''
    super(`no connection${node ? ` to ${node.name}` : ''}${why}`, options)
  }
}

/** A gen_server call failed because the server exited with `reason` while the call was outstanding. */
export class CallExitError extends DistError {
  override readonly code = 'ERR_CALL_EXIT'
  constructor(readonly reason: Term, readonly server: Term) {
    super(`server ${formatTerm(server)} exited during the call: ${formatTerm(reason)}`)
  }
}

/**
 * A gen_server call to the calling process itself (by pid, by its registered name, or as {Name, ThisNode}):
 * it could only time out, since the caller is the one that would answer. OTP's gen_server:call exits at once
 * with {calling_self, {gen_server, call, [Server, Request]}}; this rejects at once.
 */
export class CallingSelfError extends DistError {
  override readonly code = 'ERR_CALLING_SELF'
  constructor(readonly server: Term, readonly request: Term) {
    super(`calling self: ${formatTerm(server)} is the calling process (gen_server:call exits with calling_self)`)
  }
}

/** An erpc-level failure: the remote node refused or could not run the request (notsup, system_limit, badarg...). */
export class RpcError extends DistError {
  override readonly code = 'ERR_RPC'
  constructor(readonly reason: Term, message?: string) {
    super(message ?? `rpc failed: ${formatTerm(reason)}`)
  }
}

/** The process has exited; raised by every Process method afterwards and by a pending receive. */
export class ProcessExitedError extends DistError {
  override readonly code = 'ERR_PROCESS_EXITED'
  constructor(readonly reason: Term) {
    super(`process exited: ${formatTerm(reason)}`)
  }
}

/** An invalid argument: a name already registered, a destination that is not one, and so on. */
export class BadArgError extends DistError {
  override readonly code = 'ERR_BADARG'
}

/** Erlang `throw(Value)`. Thrown by TypeScript code to raise a throw; raised by rpc for a remote one. */
export class ErlangThrow extends DistError {
  override readonly code = 'ERR_ERLANG_THROW'
  constructor(readonly value: Term) {
    super(`erlang throw: ${formatTerm(value)}`)
  }
}

/** Erlang `exit(Reason)`. Thrown out of a process it ends the process with `reason`. */
export class ErlangExit extends DistError {
  override readonly code = 'ERR_ERLANG_EXIT'
  constructor(readonly reason: Term) {
    super(`erlang exit: ${formatTerm(reason)}`)
  }
}

/** Erlang `error(Reason)` with an Erlang stack (a list of {M, F, ArityOrArgs, Location}); `[]` when unknown. */
export class ErlangError extends DistError {
  override readonly code = 'ERR_ERLANG_ERROR'
  constructor(readonly reason: Term, readonly erlangStack: Term = []) {
    super(`erlang error: ${formatTerm(reason)}`)
  }
}
