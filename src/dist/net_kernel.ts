// The part of kernel's net_kernel that net_adm:ping/1 talks to: a gen_server call
// {'$gen_call', {From, Tag}, {is_auth, Node}} sent to the registered name net_kernel, answered {Tag, yes}.
// Replies go as gen:reply/2 sends them: to the alias when Tag is [alias | Alias] (OTP 24+ calls), else to From.

import { atom, isTuple, Pid, Tuple, type Atom, type Term } from '../etf/terms.js'
import type { Connection } from './connection.js'
import type { ControlMessage } from './control.js'
import { DFLAG_ALIAS, hasFlag } from './flags.js'
import { aliasOfTag } from '../runtime/genserver.js'

export const NET_KERNEL = atom('net_kernel')
const GEN_CALL = atom('$gen_call')
const IS_AUTH = atom('is_auth')
const YES = atom('yes')
const SYSTEM = atom('system')
const ERROR = atom('error')
const UNKNOWN_SYSTEM_MSG = atom('unknown_system_msg')

/** Sends a gen_server reply `{Tag, Reply}` for a call from `from`, as gen:reply/2 does. */
function sendGenReply(conn: Connection, self: Pid, from: Pid, tag: Term, reply: Term): void {
  const message = new Tuple([tag, reply])
  const alias = aliasOfTag(tag)
  if (alias && hasFlag(conn.flags, DFLAG_ALIAS)) conn.send({ kind: 'ALIAS_SEND', from: self, alias, message })
  else conn.send({ kind: 'SEND_SENDER', from: self, to: from, message })
}

/** A gen_server call in a message: `{'$gen_call', {From, Tag}, Request}`, or a sys request `{system, {From,
 *  Tag}, Request}` (which sys sends with gen:call). */
function parseGenCall(message: Term, kind: Atom = GEN_CALL): { from: Pid; tag: Term; request: Term } | undefined {
  if (!isTuple(message, 3) || message.get(0) !== kind) return undefined
  const fromTag = message.get(1)
  if (!isTuple(fromTag, 2) || !(fromTag.get(0) instanceof Pid)) return undefined
  return { from: fromTag.get(0) as Pid, tag: fromTag.get(1), request: message.get(2) }
}

/**
 * Answers `{is_auth, Node}` calls (and takes the monitors gen:call puts on net_kernel) to net_kernel on `conn` (the connection exists, so the peer proved the
 * cookie: the answer is yes). Returns true when it handled the message, false to let others see it.
 */
export function handleNetKernel(msg: ControlMessage, conn: Connection, self: { pid: Pid; nodeName: Atom }): boolean {
  // gen:call monitors the server first: net_kernel lives as long as the connection, so the monitor is
  // accepted silently (it ends with the connection, which the peer sees as noconnection).
  if ((msg.kind === 'MONITOR_P' || msg.kind === 'DEMONITOR_P') && msg.to === NET_KERNEL) return true
  if (msg.kind !== 'REG_SEND' || msg.toName !== NET_KERNEL) return false
  // sys:get_status/get_state and the like: this net_kernel is no process with a state, and says so at once
  // (a sys call to it waited for its timeout), as a process answers a system message it does not take.
  const sys = parseGenCall(msg.message, SYSTEM)
  if (sys) {
    if (!conn.closed) sendGenReply(conn, self.pid, sys.from, sys.tag, new Tuple([ERROR, new Tuple([UNKNOWN_SYSTEM_MSG, sys.request])]))
    return true
  }
  const call = parseGenCall(msg.message)
  if (!call || !isTuple(call.request, 2) || call.request.get(0) !== IS_AUTH) return false
  if (conn.closed) return true
  sendGenReply(conn, self.pid, call.from, call.tag, YES)
  return true
}

/** The net_kernel request net_adm:ping/1 sends: `{'$gen_call', {Self, Tag}, {is_auth, OurNode}}`. */
export function isAuthCall(self: Pid, tag: Term, ourNode: Atom): Tuple {
  return new Tuple([GEN_CALL, new Tuple([self, tag]), new Tuple([IS_AUTH, ourNode])])
}
