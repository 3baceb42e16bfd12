// The runtime's side of the distribution layer: the control messages it consumes and produces
// (erts "Distribution Protocol", Control Messages) and the transport it hands outgoing ones to.
import type { Atom, Pid, Ref, Term } from '../etf/terms.js'

/** Decoded control messages: the distribution layer's one definition (_TT variants carry `token`, PAYLOAD_ ones map to the plain kind). */
export type { ControlMessage } from '../dist/control.js'
import type { ControlMessage } from '../dist/control.js'

/**
 * Where the runtime sends signals for other nodes. `send` must keep the order of the signals given for one
 * node (queueing them while a connection is set up) and report a node it cannot reach through
 * Runtime#nodeDown, which fires every link, monitor and pending request tied to that node.
 */
export interface Transport {
  send(node: Atom, msg: ControlMessage): void
}

/** SPAWN_REPLY flag bits. */
export const SPAWN_REPLY_FLAG_LINK = 1
export const SPAWN_REPLY_FLAG_MONITOR = 2
