import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { atom, ImproperList, Pid, Ref, termEquals, Tuple, type Term } from '../etf/terms.js'
import * as C from './control.js'
import { decodeControl, encodeControl, type ControlMessage } from './control.js'
import { EncodeError } from '../etf/errors.js'
import { MalformedControlError, UnsupportedByPeerError } from './errors.js'
import { DEFAULT_FLAGS, DFLAG_ALTACT_SIG, DFLAG_EXIT_PAYLOAD, DFLAG_SEND_SENDER, MANDATORY_25 } from './flags.js'

const n = atom('a@h')
const p1 = new Pid(n, 1, 0, 5)
const p2 = new Pid(atom('b@h'), 2, 3, 6)
const r = new Ref(n, 5, [1, 2, 3])
const msg: Term = new Tuple([atom('hello'), [1, 2, 3], Buffer.from('x')])
const token = new Tuple([atom('label'), 1])

const ALL = DEFAULT_FLAGS | DFLAG_ALTACT_SIG

const samples: ControlMessage[] = [
  { kind: 'LINK', from: p1, to: p2 },
  { kind: 'SEND', to: p2, message: msg },
  { kind: 'SEND', to: p2, message: msg, token },
  { kind: 'SEND_SENDER', from: p1, to: p2, message: msg },
  { kind: 'SEND_SENDER', from: p1, to: p2, message: msg, token },
  { kind: 'REG_SEND', from: p1, toName: atom('net_kernel'), message: msg },
  { kind: 'REG_SEND', from: p1, toName: atom('x'), message: msg, token },
  { kind: 'EXIT', from: p1, to: p2, reason: atom('kill') },
  { kind: 'EXIT', from: p1, to: p2, reason: msg, token },
  { kind: 'EXIT2', from: p1, to: p2, reason: atom('normal') },
  { kind: 'EXIT2', from: p1, to: p2, reason: atom('normal'), token },
  { kind: 'GROUP_LEADER', from: p1, to: p2 },
  { kind: 'MONITOR_P', from: p1, to: p2, ref: r },
  { kind: 'MONITOR_P', from: p1, to: atom('reg'), ref: r },
  { kind: 'DEMONITOR_P', from: p1, to: p2, ref: r },
  { kind: 'DEMONITOR_P', from: p1, to: atom('reg'), ref: r },
  { kind: 'MONITOR_P_EXIT', from: p2, to: p1, ref: r, reason: atom('noproc') },
  { kind: 'MONITOR_P_EXIT', from: atom('reg'), to: p1, ref: r, reason: msg },
  {
    kind: 'SPAWN_REQUEST',
    reqId: r,
    from: p1,
    groupLeader: p2,
    module: atom('erpc'),
    function: atom('execute_call'),
    arity: 4,
    options: [atom('monitor')],
    args: [r, atom('m'), atom('f'), []],
  },
  {
    kind: 'SPAWN_REQUEST',
    reqId: r,
    from: p1,
    groupLeader: p2,
    module: atom('m'),
    function: atom('f'),
    arity: 0,
    options: [],
    args: [],
    token,
  },
  { kind: 'SPAWN_REPLY', reqId: r, to: p1, flags: 3, result: p2 },
  { kind: 'SPAWN_REPLY', reqId: r, to: p1, flags: 0, result: atom('badarg'), token },
  { kind: 'ALIAS_SEND', from: p1, alias: r, message: msg },
  { kind: 'ALIAS_SEND', from: p1, alias: r, message: msg, token },
  { kind: 'UNLINK_ID', id: 7, from: p1, to: p2 },
  { kind: 'UNLINK_ID_ACK', id: 2n ** 63n, from: p1, to: p2 },
  { kind: 'ALTACT_SIG_SEND', flags: 1, from: p1, to: p2, message: msg },
  { kind: 'ALTACT_SIG_SEND', flags: 0, from: p1, to: r, message: msg, token },
  { kind: 'ALTACT_SIG_SEND', flags: 0, from: p1, to: atom('reg'), message: msg },
]

function same(a: ControlMessage, b: ControlMessage): boolean {
  const ka = Object.keys(a).filter((k) => (a as any)[k] !== undefined).sort()
  const kb = Object.keys(b).filter((k) => (b as any)[k] !== undefined).sort()
  if (ka.join() !== kb.join()) return false
  return ka.every((k) => k === 'kind' ? a.kind === b.kind : termEquals((a as any)[k], (b as any)[k]))
}

test('every kind round-trips through encodeControl/decodeControl with all flags', () => {
  for (const m of samples) {
    const { control, payload } = encodeControl(m, ALL)
    const back = decodeControl(control, payload)
    assert.ok(same(m, back), `${m.kind}${'token' in m && m.token ? ' (TT)' : ''}: ${JSON.stringify(back, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`)
  }
})

test('opcodes follow the flags: SEND_SENDER, PAYLOAD_* and _TT variants', () => {
  const op = (m: ControlMessage, flags: bigint) => encodeControl(m, flags).control.elements[0]
  assert.is(op(samples[3], ALL), C.SEND_SENDER)
  assert.is(op(samples[3], MANDATORY_25), C.SEND)
  assert.is(op(samples[4], ALL), C.SEND_SENDER_TT)
  assert.is(op(samples[4], MANDATORY_25), C.SEND_TT)
  assert.is(op(samples[7], ALL), C.PAYLOAD_EXIT)
  assert.is(op(samples[7], ALL & ~DFLAG_EXIT_PAYLOAD), C.EXIT)
  assert.is(op(samples[8], ALL), C.PAYLOAD_EXIT_TT)
  assert.is(op(samples[8], MANDATORY_25), C.EXIT_TT)
  assert.is(op(samples[9], ALL), C.PAYLOAD_EXIT2)
  assert.is(op(samples[10], MANDATORY_25), C.EXIT2_TT)
  assert.is(op(samples[16], ALL), C.PAYLOAD_MONITOR_P_EXIT)
  assert.is(op(samples[16], MANDATORY_25), C.MONITOR_P_EXIT)
  assert.is(op(samples[5], ALL), C.REG_SEND)
  assert.is(op(samples[6], ALL), C.REG_SEND_TT)
  assert.is(op(samples[23], ALL), C.ALIAS_SEND_TT)
})

test('the classic (non-payload) forms decode too: reason inside the tuple, token before it', () => {
  for (const m of samples.filter((s) => s.kind === 'EXIT' || s.kind === 'EXIT2' || s.kind === 'MONITOR_P_EXIT')) {
    const { control, payload } = encodeControl(m, MANDATORY_25)
    assert.is(payload, undefined)
    assert.ok(same(m, decodeControl(control, payload)))
  }
  const sendWithoutSender = encodeControl(samples[3], MANDATORY_25 & ~DFLAG_SEND_SENDER)
  const d = decodeControl(sendWithoutSender.control, sendWithoutSender.payload)
  assert.is(d.kind, 'SEND')
  assert.is(sendWithoutSender.control.elements[1], atom(''))
})

test('tuples as erts writes them', () => {
  const t = (...e: Term[]) => new Tuple(e)
  assert.equal(decodeControl(t(6, p1, atom(''), atom('net_kernel')), msg).kind, 'REG_SEND')
  const ex = decodeControl(t(13, p1, p2, token, atom('boom')), undefined)
  assert.ok(ex.kind === 'EXIT' && ex.reason === atom('boom') && termEquals(ex.token!, token))
  const sr = decodeControl(t(29, r, p1, p2, t(atom('erpc'), atom('execute_call'), 4), [atom('monitor')]), [1])
  assert.ok(sr.kind === 'SPAWN_REQUEST' && sr.arity === 4 && sr.function === atom('execute_call'))
  const gencall = new ImproperList([atom('alias')], r)
  const as = decodeControl(t(33, p1, r), t(gencall, atom('yes')))
  assert.is(as.kind, 'ALIAS_SEND')
  const mx = decodeControl(t(28, atom('reg'), p1, r), atom('noproc'))
  assert.ok(mx.kind === 'MONITOR_P_EXIT' && mx.from === atom('reg'))
})

test('malformed control tuples are MalformedControlError', () => {
  const t = (...e: Term[]) => new Tuple(e)
  const bad: Array<[Term, Term | undefined]> = [
    [atom('x'), undefined],
    [t(), undefined],
    [t(atom('op')), undefined],
    [t(99, p1), undefined],
    [t(4, p1, p2), undefined], // UNLINK: obsolete since OTP 26, refused as erts does
    [t(1, p1), undefined],
    [t(1, p1, atom('x')), undefined],
    [t(2, atom(''), p2), undefined], // SEND without its message
    [t(1, p1, p2), msg], // LINK with a stray payload
    [t(6, p1, atom(''), 5), msg],
    [t(19, p1, p2, 5), undefined],
    [t(35, 0, p1, p2), undefined], // Id must be >= 1
    [t(35, -1, p1, p2), undefined],
    [t(29, r, p1, p2, t(atom('m'), atom('f')), []), []],
    [t(31, r, p1, -1, p2), undefined],
    [t(33, p1, p2), msg],
  ]
  for (const [c, p] of bad) assert.throws(() => decodeControl(c, p), (e: unknown) => e instanceof MalformedControlError)
})

test('messages the peer cannot take are refused with UnsupportedByPeerError', () => {
  const spawn = samples[18]
  assert.throws(() => encodeControl(spawn, MANDATORY_25, 'old@h'), (e: unknown) => e instanceof UnsupportedByPeerError && e.code === 'ERR_DIST_UNSUPPORTED_BY_PEER')
  assert.throws(() => encodeControl(samples[22], MANDATORY_25), (e: unknown) => e instanceof UnsupportedByPeerError)
  assert.throws(() => encodeControl(samples[26], DEFAULT_FLAGS), (e: unknown) => e instanceof UnsupportedByPeerError)
})

test('a control message with wrong field types is refused before it is sent', () => {
  const bad = [
    { kind: 'SEND', to: 'not a pid', message: 1 },
    { kind: 'SEND', to: p2 },
    { kind: 'REG_SEND', from: p1, toName: 'net_kernel', message: 1 },
    { kind: 'MONITOR_P', from: p1, to: p2, ref: 'r' },
    { kind: 'UNLINK_ID', id: 0, from: p1, to: p2 },
    { kind: 'NOPE' },
    null,
  ]
  for (const m of bad)
    assert.throws(() => encodeControl(m as unknown as ControlMessage, ALL), (e: unknown) => e instanceof MalformedControlError, JSON.stringify(m))
})

test('an undefined message or exit reason is the EncodeError any undefined in a term is', () => {
  for (const m of [
    { kind: 'SEND', to: p2, message: undefined },
    { kind: 'REG_SEND', from: p1, toName: atom('x'), message: undefined },
    { kind: 'EXIT', from: p1, to: p2, reason: undefined },
  ])
    assert.throws(() => encodeControl(m as unknown as ControlMessage, ALL), (e: unknown) => e instanceof EncodeError && /undefined/.test(e.message), m.kind)
})

test.run()
