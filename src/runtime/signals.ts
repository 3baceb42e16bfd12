// The runtime's side of the distribution layer: the control messages it consumes and produces
// (erts "Distribution Protocol", Control Messages) and the transport it hands outgoing ones to.
import type { Atom, Pid, Ref, Term } from '../etf/terms.js'

/** Decoded control messages; mirrors src/dist's ControlMessage (_TT variants carry `token`, PAYLOAD_ ones map to the plain kind). */
export type ControlMessage =
  | { kind: 'LINK'; from: Pid; to: Pid }
  | { kind: 'SEND'; to: Pid; message: Term; token?: Term }
  | { kind: 'SEND_SENDER'; from: Pid; to: Pid; message: Term; token?: Term }
  | { kind: 'REG_SEND'; from: Pid; toName: Atom; message: Term; token?: Term }
  | { kind: 'EXIT'; from: Pid; to: Pid; reason: Term; token?: Term }
  | { kind: 'EXIT2'; from: Pid; to: Pid; reason: Term; token?: Term }
  | { kind: 'GROUP_LEADER'; from: Pid; to: Pid }
  | { kind: 'MONITOR_P'; from: Pid; to: Pid | Atom; ref: Ref }
  | { kind: 'DEMONITOR_P'; from: Pid; to: Pid | Atom; ref: Ref }
  | { kind: 'MONITOR_P_EXIT'; from: Pid | Atom; to: Pid; ref: Ref; reason: Term }
  | {
      kind: 'SPAWN_REQUEST'
      reqId: Ref
      from: Pid
      groupLeader: Pid
      module: Atom
      function: Atom
      arity: number
      options: Term
      args: Term
      token?: Term
    }
  | { kind: 'SPAWN_REPLY'; reqId: Ref; to: Pid; flags: number; result: Pid | Atom; token?: Term }
  | { kind: 'ALIAS_SEND'; from: Pid; alias: Ref; message: Term; token?: Term }
  | { kind: 'UNLINK_ID'; id: number | bigint; from: Pid; to: Pid }
  | { kind: 'UNLINK_ID_ACK'; id: number | bigint; from: Pid; to: Pid }
  | { kind: 'ALTACT_SIG_SEND'; flags: number; from: Pid; to: Pid | Atom | Ref; message: Term; token?: Term }

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
