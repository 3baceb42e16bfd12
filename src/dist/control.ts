// Control messages: OTP erts "Distribution Protocol", section "Protocol between Connected Nodes"
// (the ControlMessage tuple, its opcode first; some are followed by a Message/Reason payload term).
// The _TT variants carry a trace token and decode to the same kind with `token` set; the PAYLOAD_ variants
// (reason as payload) decode to EXIT / EXIT2 / MONITOR_P_EXIT.

import { atom, Atom, Pid, Ref, Tuple, type Term } from '../etf/terms.js'
import { EncodeError } from '../etf/errors.js'
import { MalformedControlError, UnsupportedByPeerError } from './errors.js'
import {
  DFLAG_ALIAS,
  DFLAG_ALTACT_SIG,
  DFLAG_EXIT_PAYLOAD,
  DFLAG_SEND_SENDER,
  DFLAG_SPAWN,
  hasFlag,
} from './flags.js'

export const LINK = 1
export const SEND = 2
export const EXIT = 3
export const UNLINK = 4
export const NODE_LINK = 5
export const REG_SEND = 6
export const GROUP_LEADER = 7
export const EXIT2 = 8
export const SEND_TT = 12
export const EXIT_TT = 13
export const REG_SEND_TT = 16
export const EXIT2_TT = 18
export const MONITOR_P = 19
export const DEMONITOR_P = 20
export const MONITOR_P_EXIT = 21
export const SEND_SENDER = 22
export const SEND_SENDER_TT = 23
export const PAYLOAD_EXIT = 24
export const PAYLOAD_EXIT_TT = 25
export const PAYLOAD_EXIT2 = 26
export const PAYLOAD_EXIT2_TT = 27
export const PAYLOAD_MONITOR_P_EXIT = 28
export const SPAWN_REQUEST = 29
export const SPAWN_REQUEST_TT = 30
export const SPAWN_REPLY = 31
export const SPAWN_REPLY_TT = 32
export const ALIAS_SEND = 33
export const ALIAS_SEND_TT = 34
export const UNLINK_ID = 35
export const UNLINK_ID_ACK = 36
export const ALTACT_SIG_SEND = 37

/** Opcode → spec name, for logs and errors. */
export const OPCODE_NAMES: Readonly<Record<number, string>> = {
  [LINK]: 'LINK',
  [SEND]: 'SEND',
  [EXIT]: 'EXIT',
  [UNLINK]: 'UNLINK',
  [NODE_LINK]: 'NODE_LINK',
  [REG_SEND]: 'REG_SEND',
  [GROUP_LEADER]: 'GROUP_LEADER',
  [EXIT2]: 'EXIT2',
  [SEND_TT]: 'SEND_TT',
  [EXIT_TT]: 'EXIT_TT',
  [REG_SEND_TT]: 'REG_SEND_TT',
  [EXIT2_TT]: 'EXIT2_TT',
  [MONITOR_P]: 'MONITOR_P',
  [DEMONITOR_P]: 'DEMONITOR_P',
  [MONITOR_P_EXIT]: 'MONITOR_P_EXIT',
  [SEND_SENDER]: 'SEND_SENDER',
  [SEND_SENDER_TT]: 'SEND_SENDER_TT',
  [PAYLOAD_EXIT]: 'PAYLOAD_EXIT',
  [PAYLOAD_EXIT_TT]: 'PAYLOAD_EXIT_TT',
  [PAYLOAD_EXIT2]: 'PAYLOAD_EXIT2',
  [PAYLOAD_EXIT2_TT]: 'PAYLOAD_EXIT2_TT',
  [PAYLOAD_MONITOR_P_EXIT]: 'PAYLOAD_MONITOR_P_EXIT',
  [SPAWN_REQUEST]: 'SPAWN_REQUEST',
  [SPAWN_REQUEST_TT]: 'SPAWN_REQUEST_TT',
  [SPAWN_REPLY]: 'SPAWN_REPLY',
  [SPAWN_REPLY_TT]: 'SPAWN_REPLY_TT',
  [ALIAS_SEND]: 'ALIAS_SEND',
  [ALIAS_SEND_TT]: 'ALIAS_SEND_TT',
  [UNLINK_ID]: 'UNLINK_ID',
  [UNLINK_ID_ACK]: 'UNLINK_ID_ACK',
  [ALTACT_SIG_SEND]: 'ALTACT_SIG_SEND',
}

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

export type ControlKind = ControlMessage['kind']

/** The control tuple and the payload term (Message / Reason / ArgList) that follows it, if any. */
export interface EncodedControl {
  control: Tuple
  payload?: Term
}

const EMPTY = atom('')

// --- decoding -------------------------------------------------------------------------------

function bad(op: number, what: string): never {
  throw new MalformedControlError(`${OPCODE_NAMES[op] ?? `opcode ${op}`}: ${what}`)
}

function pid(op: number, t: Term, what: string): Pid {
  if (!(t instanceof Pid)) bad(op, `${what} is not a pid`)
  return t
}

function ref(op: number, t: Term, what: string): Ref {
  if (!(t instanceof Ref)) bad(op, `${what} is not a reference`)
  return t
}

function atomOf(op: number, t: Term, what: string): Atom {
  if (t instanceof Atom) return t
  // true/false decode to booleans in the term model; as names they are the atoms.
  if (typeof t === 'boolean') return atom(String(t))
  bad(op, `${what} is not an atom`)
}

function pidOrAtom(op: number, t: Term, what: string): Pid | Atom {
  return t instanceof Pid ? t : atomOf(op, t, what)
}

function smallInt(op: number, t: Term, what: string): number {
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 0) bad(op, `${what} is not a non-negative integer`)
  return t
}

function unlinkId(op: number, t: Term): number | bigint {
  const ok =
    (typeof t === 'number' && Number.isInteger(t) && t > 0) || (typeof t === 'bigint' && t > 0n && t < 1n << 64n)
  if (!ok) bad(op, 'Id is not an integer in [1, 2^64)')
  return t as number | bigint
}

function needPayload(op: number, payload: Term | undefined): Term {
  if (payload === undefined) bad(op, 'the payload term is missing')
  return payload
}

/**
 * Decodes a control tuple and its payload (undefined when the message had none) into a ControlMessage.
 * Throws MalformedControlError for an unknown opcode, a wrong arity or a field of the wrong type.
 */
export function decodeControl(control: Term, payload: Term | undefined): ControlMessage {
  if (!(control instanceof Tuple) || control.length < 1) throw new MalformedControlError('control message is not a tuple')
  const e = control.elements
  const op = e[0]
  if (typeof op !== 'number' || !Number.isInteger(op)) throw new MalformedControlError('opcode is not an integer')
  const arity = (...n: number[]) => {
    if (!n.includes(e.length)) bad(op, `arity ${e.length}, expected ${n.join(' or ')}`)
  }
  const noPayload = () => {
    if (payload !== undefined) bad(op, 'unexpected payload term')
  }
  switch (op) {
    case LINK:
      arity(3)
      noPayload()
      return { kind: 'LINK', from: pid(op, e[1], 'FromPid'), to: pid(op, e[2], 'ToPid') }
    case SEND:
    case SEND_TT: {
      arity(op === SEND ? 3 : 4)
      const m: ControlMessage = { kind: 'SEND', to: pid(op, e[2], 'ToPid'), message: needPayload(op, payload) }
      if (op === SEND_TT) m.token = e[3]
      return m
    }
    case SEND_SENDER:
    case SEND_SENDER_TT: {
      arity(op === SEND_SENDER ? 3 : 4)
      const m: ControlMessage = {
        kind: 'SEND_SENDER',
        from: pid(op, e[1], 'FromPid'),
        to: pid(op, e[2], 'ToPid'),
        message: needPayload(op, payload),
      }
      if (op === SEND_SENDER_TT) m.token = e[3]
      return m
    }
    case REG_SEND:
    case REG_SEND_TT: {
      arity(op === REG_SEND ? 4 : 5)
      const m: ControlMessage = {
        kind: 'REG_SEND',
        from: pid(op, e[1], 'FromPid'),
        toName: atomOf(op, e[3], 'ToName'),
        message: needPayload(op, payload),
      }
      if (op === REG_SEND_TT) m.token = e[4]
      return m
    }
    case EXIT:
    case EXIT2: {
      arity(4)
      noPayload()
      return { kind: op === EXIT ? 'EXIT' : 'EXIT2', from: pid(op, e[1], 'FromPid'), to: pid(op, e[2], 'ToPid'), reason: e[3] }
    }
    case EXIT_TT:
    case EXIT2_TT: {
      // {13, FromPid, ToPid, TraceToken, Reason}
      arity(5)
      noPayload()
      return {
        kind: op === EXIT_TT ? 'EXIT' : 'EXIT2',
        from: pid(op, e[1], 'FromPid'),
        to: pid(op, e[2], 'ToPid'),
        reason: e[4],
        token: e[3],
      }
    }
    case PAYLOAD_EXIT:
    case PAYLOAD_EXIT2:
    case PAYLOAD_EXIT_TT:
    case PAYLOAD_EXIT2_TT: {
      const tt = op === PAYLOAD_EXIT_TT || op === PAYLOAD_EXIT2_TT
      arity(tt ? 4 : 3)
      const m: Extract<ControlMessage, { kind: 'EXIT' | 'EXIT2' }> = {
        kind: op === PAYLOAD_EXIT || op === PAYLOAD_EXIT_TT ? 'EXIT' : 'EXIT2',
        from: pid(op, e[1], 'FromPid'),
        to: pid(op, e[2], 'ToPid'),
        reason: needPayload(op, payload),
      }
      if (tt) m.token = e[3]
      return m
    }
    case GROUP_LEADER:
      arity(3)
      noPayload()
      return { kind: 'GROUP_LEADER', from: pid(op, e[1], 'FromPid'), to: pid(op, e[2], 'ToPid') }
    case MONITOR_P:
    case DEMONITOR_P:
      arity(4)
      noPayload()
      return {
        kind: op === MONITOR_P ? 'MONITOR_P' : 'DEMONITOR_P',
        from: pid(op, e[1], 'FromPid'),
        to: pidOrAtom(op, e[2], 'ToProc'),
        ref: ref(op, e[3], 'Ref'),
      }
    case MONITOR_P_EXIT:
      arity(5)
      noPayload()
      return {
        kind: 'MONITOR_P_EXIT',
        from: pidOrAtom(op, e[1], 'FromProc'),
        to: pid(op, e[2], 'ToPid'),
        ref: ref(op, e[3], 'Ref'),
        reason: e[4],
      }
    case PAYLOAD_MONITOR_P_EXIT:
      arity(4)
      return {
        kind: 'MONITOR_P_EXIT',
        from: pidOrAtom(op, e[1], 'FromProc'),
        to: pid(op, e[2], 'ToPid'),
        ref: ref(op, e[3], 'Ref'),
        reason: needPayload(op, payload),
      }
    case SPAWN_REQUEST:
    case SPAWN_REQUEST_TT: {
      // {29, ReqId, From, GroupLeader, {Module, Function, Arity}, OptList [, Token]} + ArgList
      arity(op === SPAWN_REQUEST ? 6 : 7)
      const mfa = e[4]
      if (!(mfa instanceof Tuple) || mfa.length !== 3) bad(op, '{Module, Function, Arity} is not a 3-tuple')
      const m: ControlMessage = {
        kind: 'SPAWN_REQUEST',
        reqId: ref(op, e[1], 'ReqId'),
        from: pid(op, e[2], 'From'),
        groupLeader: pid(op, e[3], 'GroupLeader'),
        module: atomOf(op, mfa.elements[0], 'Module'),
        function: atomOf(op, mfa.elements[1], 'Function'),
        arity: smallInt(op, mfa.elements[2], 'Arity'),
        options: e[5],
        args: needPayload(op, payload),
      }
      if (op === SPAWN_REQUEST_TT) m.token = e[6]
      return m
    }
    case SPAWN_REPLY:
    case SPAWN_REPLY_TT: {
      // {31, ReqId, To, Flags, Result [, Token]}
      arity(op === SPAWN_REPLY ? 5 : 6)
      noPayload()
      const m: ControlMessage = {
        kind: 'SPAWN_REPLY',
        reqId: ref(op, e[1], 'ReqId'),
        to: pid(op, e[2], 'To'),
        flags: smallInt(op, e[3], 'Flags'),
        result: pidOrAtom(op, e[4], 'Result'),
      }
      if (op === SPAWN_REPLY_TT) m.token = e[5]
      return m
    }
    case ALIAS_SEND:
    case ALIAS_SEND_TT: {
      arity(op === ALIAS_SEND ? 3 : 4)
      const m: ControlMessage = {
        kind: 'ALIAS_SEND',
        from: pid(op, e[1], 'FromPid'),
        alias: ref(op, e[2], 'Alias'),
        message: needPayload(op, payload),
      }
      if (op === ALIAS_SEND_TT) m.token = e[3]
      return m
    }
    case UNLINK_ID:
    case UNLINK_ID_ACK:
      arity(4)
      noPayload()
      return {
        kind: op === UNLINK_ID ? 'UNLINK_ID' : 'UNLINK_ID_ACK',
        id: unlinkId(op, e[1]),
        from: pid(op, e[2], 'FromPid'),
        to: pid(op, e[3], 'ToPid'),
      }
    case ALTACT_SIG_SEND: {
      // {37, Flags, SenderPid, To [, Token]} + Message
      arity(4, 5)
      const to = e[3]
      const m: ControlMessage = {
        kind: 'ALTACT_SIG_SEND',
        flags: smallInt(op, e[1], 'Flags'),
        from: pid(op, e[2], 'SenderPid'),
        to: to instanceof Pid || to instanceof Ref ? to : atomOf(op, to, 'To'),
        message: needPayload(op, payload),
      }
      if (e.length === 5) m.token = e[4]
      return m
    }
    default:
      throw new MalformedControlError(`unknown or unsupported opcode ${op}${OPCODE_NAMES[op] ? ` (${OPCODE_NAMES[op]})` : ''}`)
  }
}

/**
 * The addressing checks of erts dist.c (erts_net_message), which drops the connection on a violation
 * ("Invalid distribution message"):
 * - the sender of LINK, UNLINK_ID, UNLINK_ID_ACK, MONITOR_P, DEMONITOR_P, EXIT, EXIT2 (plain, _TT, PAYLOAD_)
 *   and SPAWN_REQUEST must be a process of the peer: otherwise a peer could plant links and monitors in
 *   another node's name, or make this node connect to any host it names (answers go to the sender's node);
 * - with `self` (this node's name), the process those signals and MONITOR_P_EXIT / SPAWN_REPLY are for must
 *   be one of ours (any incarnation): otherwise our answers (EXIT noproc, UNLINK_ID_ACK...) would carry
 *   another node's pid as their sender, which a real erl refuses in turn.
 * Throws MalformedControlError, which closes the connection.
 */
export function checkAddresses(msg: ControlMessage, peer: Atom, self?: Atom): void {
  switch (msg.kind) {
    case 'LINK':
    case 'UNLINK_ID':
    case 'UNLINK_ID_ACK':
    case 'MONITOR_P':
    case 'DEMONITOR_P':
    case 'EXIT':
    case 'EXIT2':
    case 'SPAWN_REQUEST':
      if (msg.from.node !== peer)
        throw new MalformedControlError(`${msg.kind} from ${msg.from} of node ${msg.from.node.name}, not of the peer ${peer.name}`)
  }
  if (self === undefined) return
  switch (msg.kind) {
    case 'LINK':
    case 'UNLINK_ID':
    case 'UNLINK_ID_ACK':
    case 'EXIT':
    case 'EXIT2':
    case 'MONITOR_P_EXIT':
    case 'SPAWN_REPLY':
    case 'MONITOR_P':
    case 'DEMONITOR_P':
      if (msg.to instanceof Pid && msg.to.node !== self)
        throw new MalformedControlError(`${msg.kind} to ${msg.to} of node ${msg.to.node.name}, not a process of this node`)
  }
}

// --- encoding -------------------------------------------------------------------------------

const T = (...e: Term[]) => new Tuple(e)

function needFlag(flags: bigint, flag: bigint, kind: string, name: string, peer: string): void {
  if (!hasFlag(flags, flag)) throw new UnsupportedByPeerError(kind, name, peer)
}

/**
 * The control tuple (and payload) for `msg`, in the form the peer's flags call for: SEND_SENDER only when
 * DFLAG_SEND_SENDER was agreed (else SEND), PAYLOAD_* exits when DFLAG_EXIT_PAYLOAD was agreed, the _TT
 * variant when a token is set. Throws UnsupportedByPeerError for SPAWN_*, ALIAS_SEND and ALTACT_SIG_SEND
 * to a peer that did not offer the flag they need.
 */
export function encodeControl(msg: ControlMessage, flags: bigint, peer = 'peer'): EncodedControl {
  if (typeof msg !== 'object' || msg === null) throw new MalformedControlError('cannot send: not a control message')
  // A message or an exit reason that is undefined is the sender's value, not a malformed control message:
  // the same EncodeError as an undefined inside a term.
  if (('message' in msg && msg.message === undefined) || ('reason' in msg && msg.reason === undefined))
    throw new EncodeError(`cannot encode undefined (the ${'message' in msg ? 'message' : 'exit reason'} of ${msg.kind})`)
  const out = build(msg, flags, peer)
  if (out === undefined) throw new MalformedControlError(`cannot send: unknown control message kind ${String((msg as { kind?: unknown }).kind)}`)
  // The same checks as on receipt: a caller's mistake (a string where a pid belongs) fails here, typed,
  // instead of reaching the peer, which would drop the whole connection over it.
  try {
    decodeControl(out.control, out.payload)
  } catch (e) {
    throw new MalformedControlError(`cannot send ${msg.kind}: ${(e as MalformedControlError).reason}`)
  }
  return out
}

function build(msg: ControlMessage, flags: bigint, peer: string): EncodedControl | undefined {
  const tt = 'token' in msg && msg.token !== undefined
  const token = tt ? (msg as { token: Term }).token : undefined
  switch (msg.kind) {
    case 'LINK':
      return { control: T(LINK, msg.from, msg.to) }
    case 'SEND':
      return { control: tt ? T(SEND_TT, EMPTY, msg.to, token!) : T(SEND, EMPTY, msg.to), payload: msg.message }
    case 'SEND_SENDER':
      if (!hasFlag(flags, DFLAG_SEND_SENDER))
        return { control: tt ? T(SEND_TT, EMPTY, msg.to, token!) : T(SEND, EMPTY, msg.to), payload: msg.message }
      return {
        control: tt ? T(SEND_SENDER_TT, msg.from, msg.to, token!) : T(SEND_SENDER, msg.from, msg.to),
        payload: msg.message,
      }
    case 'REG_SEND':
      return {
        control: tt ? T(REG_SEND_TT, msg.from, EMPTY, msg.toName, token!) : T(REG_SEND, msg.from, EMPTY, msg.toName),
        payload: msg.message,
      }
    case 'EXIT':
    case 'EXIT2': {
      const isExit = msg.kind === 'EXIT'
      if (hasFlag(flags, DFLAG_EXIT_PAYLOAD)) {
        const op = isExit ? (tt ? PAYLOAD_EXIT_TT : PAYLOAD_EXIT) : tt ? PAYLOAD_EXIT2_TT : PAYLOAD_EXIT2
        return { control: tt ? T(op, msg.from, msg.to, token!) : T(op, msg.from, msg.to), payload: msg.reason }
      }
      const op = isExit ? (tt ? EXIT_TT : EXIT) : tt ? EXIT2_TT : EXIT2
      return { control: tt ? T(op, msg.from, msg.to, token!, msg.reason) : T(op, msg.from, msg.to, msg.reason) }
    }
    case 'GROUP_LEADER':
      return { control: T(GROUP_LEADER, msg.from, msg.to) }
    case 'MONITOR_P':
      return { control: T(MONITOR_P, msg.from, msg.to, msg.ref) }
    case 'DEMONITOR_P':
      return { control: T(DEMONITOR_P, msg.from, msg.to, msg.ref) }
    case 'MONITOR_P_EXIT':
      if (hasFlag(flags, DFLAG_EXIT_PAYLOAD))
        return { control: T(PAYLOAD_MONITOR_P_EXIT, msg.from, msg.to, msg.ref), payload: msg.reason }
      return { control: T(MONITOR_P_EXIT, msg.from, msg.to, msg.ref, msg.reason) }
    case 'SPAWN_REQUEST': {
      needFlag(flags, DFLAG_SPAWN, msg.kind, 'SPAWN', peer)
      const mfa = T(msg.module, msg.function, msg.arity)
      return {
        control: tt
          ? T(SPAWN_REQUEST_TT, msg.reqId, msg.from, msg.groupLeader, mfa, msg.options, token!)
          : T(SPAWN_REQUEST, msg.reqId, msg.from, msg.groupLeader, mfa, msg.options),
        payload: msg.args,
      }
    }
    case 'SPAWN_REPLY':
      needFlag(flags, DFLAG_SPAWN, msg.kind, 'SPAWN', peer)
      return {
        control: tt
          ? T(SPAWN_REPLY_TT, msg.reqId, msg.to, msg.flags, msg.result, token!)
          : T(SPAWN_REPLY, msg.reqId, msg.to, msg.flags, msg.result),
      }
    case 'ALIAS_SEND':
      needFlag(flags, DFLAG_ALIAS, msg.kind, 'ALIAS', peer)
      return {
        control: tt ? T(ALIAS_SEND_TT, msg.from, msg.alias, token!) : T(ALIAS_SEND, msg.from, msg.alias),
        payload: msg.message,
      }
    case 'UNLINK_ID':
      return { control: T(UNLINK_ID, msg.id, msg.from, msg.to) }
    case 'UNLINK_ID_ACK':
      return { control: T(UNLINK_ID_ACK, msg.id, msg.from, msg.to) }
    case 'ALTACT_SIG_SEND':
      needFlag(flags, DFLAG_ALTACT_SIG, msg.kind, 'ALTACT_SIG', peer)
      return {
        control: tt ? T(ALTACT_SIG_SEND, msg.flags, msg.from, msg.to, token!) : T(ALTACT_SIG_SEND, msg.flags, msg.from, msg.to),
        payload: msg.message,
      }
  }
}
