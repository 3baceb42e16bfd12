// Processes against a real erl node: links, exits, monitors and aliases from both sides, nodedown,
// selective receive, a throwing TypeScript process.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { EncodeError, Pid, Ref, Tuple, atom, termEquals, termToBinary, tuple, type Term } from '../src/etf/index.js'
import { silentLogger } from '../src/logger.js'
import { Node } from '../src/node.js'
import { ErlangExit, NoConnectionError, formatTerm, type Process } from '../src/runtime/index.js'
import { ConnectionClosedError, CookieMismatchError, NodeUnreachableError } from '../src/dist/errors.js'
import { Epmd, ErlNode, cleanup, eventually, shortHost, sleep } from './harness.js'

const A = atom
const COOKIE = 'ts_cnode_test_cookie'
let epmd: Epmd
let erl: ErlNode
let node: Node
const TS = `ts_rt@${shortHost}`

/** An Erlang expression that evaluates to `t`. */
const lit = (t: Term): string => `binary_to_term(<<${[...termToBinary(t)].join(',')}>>)`
const isTuple = (m: Term, first: string): m is Tuple => m instanceof Tuple && m.get(0) === A(first)

/** An Erlang process waiting for {exit, Reason} (then exit(Reason)) or stop (normal). */
async function erlProcess(on = erl, register?: string): Promise<Pid> {
  const reg = register ? `register(${register}, P), ` : ''
  return (await on.evalTerm(`P = spawn(fun() -> receive {exit, R} -> exit(R); stop -> ok end end), ${reg}P`)) as Pid
}

/** A TypeScript process that waits for 'go' and then runs `then`. */
function tsProcess(then: (self: Process) => unknown, opts: { name?: string; trapExit?: boolean } = {}): Process {
  return node.spawn(async (self) => {
    await self.receive((m) => m === A('go'))
    await then(self)
  }, opts)
}

test.before(async () => {
  epmd = await Epmd.start()
  erl = await ErlNode.start({ name: 'erl_rt', epmdPort: epmd.port, cookie: COOKIE })
  node = new Node({ name: TS, cookie: COOKIE, epmdPort: epmd.port, logger: silentLogger })
  await node.start()
})

test.after(async () => {
  await node?.stop()
  await cleanup()
})

/** Erlang links to `p` (trapping exits), sends go, and returns the exit reason it sees. */
const erlLinkAndWait = (p: Process) =>
  erl.evalTerm(`P = ${lit(p.pid)}, process_flag(trap_exit, true), link(P), P ! go,
            receive {'EXIT', P, R} -> R after 10000 -> no_exit end`)

test('Erlang links to TypeScript processes: normal, abnormal, kill, and a throw', async () => {
  assert.is(await erlLinkAndWait(tsProcess(() => {})), A('normal'))
  assert.is(await erlLinkAndWait(tsProcess((self) => self.exit(A('custom_reason')))), A('custom_reason'))
  assert.is(await erlLinkAndWait(tsProcess((self) => self.sendExit(self.pid, A('kill')))), A('killed'))
  const thrown = await erlLinkAndWait(
    tsProcess(() => {
      throw new Error('thrown in TypeScript')
    }),
  )
  assert.ok(isTuple(thrown, 'js_error'), `got ${String(thrown)}`)
  assert.is(((thrown as Tuple).get(1) as Buffer).toString(), 'Error: thrown in TypeScript')
  assert.ok(((thrown as Tuple).get(2) as Buffer).toString().includes('thrown in TypeScript'))
  assert.is(await erl.eval('1 + 1'), '2', 'the Erlang node carries on')
})

test('a TypeScript exit reason that is no term reaches Erlang links, monitors and erpc as {js_error, ...}, not silence', async () => {
  const p = tsProcess(() => {
    throw new ErlangExit(new Set([1]) as unknown as Term)
  })
  const r = (await erl.evalTerm(`P = ${lit(p.pid)}, process_flag(trap_exit, true), link(P), M = monitor(process, P), P ! go,
            E = receive {'EXIT', P, R1} -> R1 after 10000 -> no_exit end,
            D = receive {'DOWN', M, process, P, R2} -> R2 after 10000 -> no_down end,
            {E, D}`)) as Tuple
  for (const reason of r.elements) {
    assert.ok(isTuple(reason, 'js_error'), formatTerm(reason))
    assert.match(String((reason as Tuple).get(1)), /EncodeError: the exit reason is not an Erlang term: .*Set/)
  }
  node.registerFunction('ts_bad', 'exit_set', () => {
    throw new ErlangExit(new Set() as unknown as Term)
  })
  const e = await erl.evalTerm(`try erpc:call('${TS}', ts_bad, exit_set, [], 10000) catch C:R -> {C, R} end`)
  assert.ok(isTuple(e, 'exit') && !termEquals((e as Tuple).get(1), tuple(A('erpc'), A('timeout'))), formatTerm(e))
  assert.match(formatTerm(e), /EncodeError/)
})

test('Erlang exit(Pid, kill) and exit(Pid, Reason) on TypeScript processes', async () => {
  const p = node.spawn((self) => self.receive(() => false), { trapExit: true })
  await erl.eval(`exit(${lit(p.pid)}, kill)`)
  assert.is(await p.done, A('killed'))
  const q = node.spawn((self) => self.receive(() => false))
  await erl.eval(`exit(${lit(q.pid)}, shutdown)`)
  assert.is(await q.done, A('shutdown'))
  let trapped: Term | undefined
  const t = node.spawn(async (self) => void (trapped = await self.receive()), { trapExit: true })
  const from = (await erl.evalTerm(`exit(${lit(t.pid)}, please), self()`)) as Pid
  assert.is(await t.done, A('normal'))
  assert.ok(termEquals(trapped!, tuple(A('EXIT'), from, A('please'))))
})

test('TypeScript links to Erlang processes: abnormal exit kills, normal does not, trapping gets messages', async () => {
  const e1 = await erlProcess()
  const linked = node.spawn(async (self) => {
    self.link(e1)
    await self.receive(() => false)
  })
  await sleep(50)
  node.send(e1, tuple(A('exit'), A('erl_crash')))
  assert.is(await linked.done, A('erl_crash'))

  const e2 = await erlProcess()
  const e3 = await erlProcess()
  const e4 = await erlProcess()
  const got: Term[] = []
  const trapper = node.spawn(
    async (self) => {
      self.link(e2)
      self.link(e3)
      self.link(e4)
      for (let i = 0; i < 3; i++) got.push(await self.receive())
    },
    { trapExit: true },
  )
  const survivor = node.spawn(async (self) => {
    self.link(e2)
    await self.receive()
  })
  await sleep(50)
  node.send(e2, A('stop'))
  node.send(e3, tuple(A('exit'), A('boom')))
  await erl.eval(`exit(${lit(e4)}, kill)`)
  await trapper.done
  assert.ok(got.some((m) => termEquals(m, tuple(A('EXIT'), e2, A('normal')))))
  assert.ok(got.some((m) => termEquals(m, tuple(A('EXIT'), e3, A('boom')))))
  assert.ok(got.some((m) => termEquals(m, tuple(A('EXIT'), e4, A('killed')))))
  assert.ok(survivor.alive, 'a normal exit does not kill a non-trapping linked process')
  node.send(survivor.pid, 1)
})

test('unlink from either side: UNLINK_ID is acknowledged and later exits do not cross', async () => {
  const p = node.spawn((self) => self.receive())
  const r = await erl.evalTerm(`P = ${lit(p.pid)}, process_flag(trap_exit, true), link(P), unlink(P),
      exit(P, shutdown), receive {'EXIT', P, R} -> {got, R} after 500 -> no_exit end`)
  assert.is(r, A('no_exit'))
  assert.is(await p.done, A('shutdown'))

  const e = await erlProcess()
  const q = node.spawn(async (self) => {
    self.link(e)
    await sleep(50)
    self.unlink(e)
    await sleep(50)
    node.send(e, tuple(A('exit'), A('after_unlink')))
    await sleep(200)
  })
  assert.is(await q.done, A('normal'))
})

test('Erlang monitors TypeScript processes: by pid and by name, every kind of exit, noproc', async () => {
  const mon = (target: string, p: Process) =>
    erl.evalTerm(`R = monitor(process, ${target}), ${lit(p.pid)} ! go,
              receive {'DOWN', R, process, Obj, Why} -> {Obj, Why} after 10000 -> no_down end`)
  const p1 = tsProcess(() => {})
  assert.ok(termEquals(await mon(lit(p1.pid), p1), tuple(p1.pid, A('normal'))))
  const p2 = tsProcess((self) => self.exit(A('bad')), { name: 'ts_monitored' })
  assert.ok(termEquals(await mon(`{ts_monitored, '${TS}'}`, p2), tuple(tuple(A('ts_monitored'), A(TS)), A('bad'))))
  const p3 = tsProcess((self) => self.sendExit(self.pid, A('kill')))
  assert.ok(termEquals(await mon(lit(p3.pid), p3), tuple(p3.pid, A('killed'))))
  const p4 = tsProcess(() => {
    throw new TypeError('monitored throw')
  })
  const down = (await mon(lit(p4.pid), p4)) as Tuple
  assert.ok(isTuple(down.get(1), 'js_error'))
  const noproc = await erl.evalTerm(`R = monitor(process, {not_registered_here, '${TS}'}),
      receive {'DOWN', R, process, Obj, Why} -> {Obj, Why} after 5000 -> no_down end`)
  assert.ok(termEquals(noproc, tuple(tuple(A('not_registered_here'), A(TS)), A('noproc'))))
  const dead = await erl.evalTerm(`R = monitor(process, ${lit(p1.pid)}),
      receive {'DOWN', R, process, _, Why} -> Why after 5000 -> no_down end`)
  assert.is(dead, A('noproc'))
})

test('TypeScript monitors Erlang processes: normal, abnormal, kill, by name, noproc', async () => {
  const e1 = await erlProcess()
  const e2 = await erlProcess(erl, 'erl_monitored')
  const e3 = await erlProcess()
  const downs = await node.withProcess(async (self) => {
    const r1 = self.monitor(e1)
    const r2 = self.monitor({ name: 'erl_monitored', node: erl.nodeName })
    const r3 = self.monitor(e3)
    const r4 = self.monitor(tuple(A('erl_nobody'), A(erl.nodeName)))
    await sleep(50)
    node.send(e1, A('stop'))
    node.send(e2, tuple(A('exit'), A('abnormal')))
    await erl.eval(`exit(${lit(e3)}, kill)`)
    const out = new Map<string, Term>()
    for (const [k, r] of [['r1', r1], ['r2', r2], ['r3', r3], ['r4', r4]] as const) {
      const d = (await self.receive((m) => isTuple(m, 'DOWN') && termEquals(m.get(1), r), { timeout: 10000 })) as Tuple
      out.set(k, tuple(d.get(3), d.get(4)))
    }
    return out
  })
  assert.ok(termEquals(downs.get('r1')!, tuple(e1, A('normal'))))
  assert.ok(termEquals(downs.get('r2')!, tuple(tuple(A('erl_monitored'), A(erl.nodeName)), A('abnormal'))))
  assert.ok(termEquals(downs.get('r3')!, tuple(e3, A('killed'))))
  assert.ok(termEquals(downs.get('r4')!, tuple(tuple(A('erl_nobody'), A(erl.nodeName)), A('noproc'))))
  assert.ok(e2 instanceof Pid)
})

test('selective receive keeps the other messages from Erlang queued, in order', async () => {
  const p = node.spawn(
    async (self) => {
      const urgent = await self.receive((m) => isTuple(m, 'urgent'))
      const rest: Term[] = []
      for (let i = 0; i < 4; i++) rest.push(await self.receive())
      const back = rest.pop() as Tuple
      self.send(back.get(1) as Pid, tuple(A('order'), urgent, rest))
    },
    { name: 'ts_selective' },
  )
  const r = await erl.evalTerm(`N = '${TS}',
      [{ts_selective, N} ! M || M <- [1, 2, {urgent, now}, 3]], {ts_selective, N} ! {reply_to, self()},
      receive {order, U, Rest} -> {U, Rest} after 10000 -> timeout end`)
  assert.ok(termEquals(r, tuple(tuple(A('urgent'), A('now')), [1, 2, 3])), `got ${String(r)}`)
  await p.done
})

test('aliases both ways: Erlang alias answered through ALIAS_SEND; a TypeScript alias works until unalias', async () => {
  node.spawn(
    async (self) => {
      const m = (await self.receive()) as Tuple
      self.send(m.get(1) as Ref, tuple(A('via_alias'), m.get(2)))
    },
    { name: 'ts_alias_user' },
  )
  const r = await erl.evalTerm(`Al = alias(), {ts_alias_user, '${TS}'} ! {ask, Al, 7},
      receive {via_alias, X} -> X after 5000 -> timeout end`)
  assert.is(r, 7)

  const got: Term[] = []
  let alias: Ref | undefined
  const p = node.spawn(async (self) => {
    alias = self.alias()
    got.push(await self.receive())
    self.unalias(alias)
    got.push(await self.receive(undefined, { timeout: 300 }).catch(() => A('nothing')))
  })
  await eventually(() => alias, 'alias')
  await erl.eval(`Al = ${lit(alias!)}, Al ! first, timer:sleep(100), Al ! second, ok`)
  await p.done
  assert.equal(got, [A('first'), A('nothing')])
})

test('spawn(Node, M, F, A) from Erlang runs a registered TypeScript function as the process', async () => {
  node.registerFunction('ts_proc', 'echo_loop', async ([owner], { self }) => {
    const m = await self.receive()
    self.send(owner as Pid, tuple(A('echoed'), m))
  })
  const r = await erl.evalTerm(`{P, R} = spawn_monitor('${TS}', ts_proc, echo_loop, [self()]), P ! hi,
      E = receive {echoed, X} -> X after 5000 -> timeout end,
      D = receive {'DOWN', R, process, P, Why} -> Why after 5000 -> no_down end, {E, D}`)
  assert.ok(termEquals(r, tuple(A('hi'), A('normal'))))
  const u = await erl.evalTerm(`{P, R} = spawn_monitor('${TS}', nomod, nofun, [1]),
      receive {'DOWN', R, process, P, Why} -> Why after 5000 -> no_down end`)
  assert.ok(termEquals(u, tuple(A('undef'), [tuple(A('nomod'), A('nofun'), [1], [])])), `got ${String(u)}`)
})

test('a value that is not a term throws EncodeError at the send, connected or not; the connection and later sends go on', async () => {
  // Keeps the first message that is not {get, From}, and hands it to the first {get, From}.
  const keeper = `P = spawn(fun() -> receive M when element(1, M) =/= get -> receive {get, F} -> F ! M end end end), register(rcv, P), ok`
  const got = (on: ErlNode) => on.evalTerm(`rcv ! {get, self()}, receive M -> M after 10000 -> timeout end`)
  // Not connected yet: the signal would wait for the connection, so it is checked at the send.
  const erl2 = await ErlNode.start({ name: 'erl_rt_pending', epmdPort: epmd.port, cookie: COOKIE })
  await erl2.eval(keeper)
  const dest = { name: 'rcv', node: erl2.nodeName }
  for (const bad of [Symbol('x'), undefined, Number.NaN, tuple(A('a'), (() => 1) as unknown as Term), A('x'.repeat(256))])
    assert.throws(() => node.send(dest, tuple(A('bad'), bad as Term)), (e: unknown) => e instanceof EncodeError, String(bad))
  node.send(dest, tuple(A('good'), 1))
  const g2 = await got(erl2)
  assert.ok(termEquals(g2, tuple(A('good'), 1)), String(g2))
  // Connected: an atom over 255 characters (or a lone surrogate) is refused here, not sent in the atom
  // cache for the peer to close the connection over.
  await erl.eval(keeper)
  const toErl = { name: 'rcv', node: erl.nodeName }
  for (const name of ['x'.repeat(256), 'y\ud800'])
    assert.throws(() => node.send(toErl, tuple(A('bad'), A(name))), (e: unknown) => e instanceof EncodeError, name.slice(0, 4))
  node.send(toErl, tuple(A('still_up'), A('é'.repeat(255))))
  assert.ok(termEquals(await got(erl), tuple(A('still_up'), A('é'.repeat(255)))))
  assert.is(await erl.eval(`lists:member('${TS}', nodes(hidden))`), 'true', 'the connection stayed up')
  await erl2.stop()
})

test('a node stopped and started again registers anew: erl sees it go down, pings it, reaches its processes', async () => {
  const name = `ts_again@${shortHost}`
  const again = new Node({ name, cookie: COOKIE, epmdPort: epmd.port, logger: silentLogger })
  try {
    await again.start()
    assert.is(await erl.eval(`net_adm:ping('${name}')`), 'pong')
    const first = again.creation
    const down = erl.eval(`monitor_node('${name}', true), receive {nodedown, N} -> N after 10000 -> timeout end`)
    await sleep(100)
    await again.stop()
    assert.is(await down, name)
    await again.start()
    assert.is.not(again.creation, first, 'EPMD gave the restarted node a new creation')
    again.spawn(async (self) => {
      const m = (await self.receive()) as Tuple
      self.send(m.get(0) as Pid, tuple(A('back'), again.creation))
    }, { name: 'again_echo' })
    assert.is(await erl.eval(`net_adm:ping('${name}')`), 'pong')
    const reply = await erl.evalTerm(`{again_echo, '${name}'} ! {self(), hi}, receive M -> M after 10000 -> timeout end`)
    assert.ok(termEquals(reply, tuple(A('back'), again.creation)), String(reply))
  } finally {
    await again.stop()
  }
})

test('reconnects racing with our own sends lose nothing: 300 disconnect_node + send + reply rounds', async () => {
  // erl drops the connection and sends at once (it connects anew) while this node sends to erl every
  // millisecond (it connects too): our attempt meets erl's and gives way. The signals queued on it used to
  // be dropped (3-4 replies in 300 lost, erl waiting in vain).
  node.spawn(async (self) => {
    for (;;) {
      const m = (await self.receive()) as Tuple
      self.send(m.get(0) as Pid, m.get(1))
    }
  }, { name: 'race_echo' })
  await erl.eval(`register(race_sink, spawn(fun Loop() -> receive _ -> Loop() end end)), ok`)
  let i = 0
  const spam = setInterval(() => node.send({ name: 'race_sink', node: erl.nodeName }, i++), 1)
  try {
    const r = await erl.evalTerm(
      `N = '${TS}', pong = net_adm:ping(N),
       Lost = [I || I <- lists:seq(1, 300),
                    begin erlang:disconnect_node(N), {race_echo, N} ! {self(), {back, I}},
                          receive {back, I} -> false after 3000 -> true end end],
       Lost`,
      120_000,
    )
    assert.equal(r, [], `replies lost: ${formatTerm(r)}`)
  } finally {
    clearInterval(spam)
  }
})

test('the Erlang node killed: links get noconnection, monitors DOWN noconnection, calls fail', async () => {
  const other = await ErlNode.start({ name: 'erl_doomed', epmdPort: epmd.port, cookie: COOKIE })
  const e1 = await erlProcess(other, 'doomed_server')
  const e2 = await erlProcess(other)
  const linked = node.spawn(async (self) => {
    self.link(e1)
    await self.receive(() => false)
  })
  const got: Term[] = []
  const watcher = node.spawn(
    async (self) => {
      const ref = self.monitor(e1)
      self.link(e2)
      got.push(ref)
      for (let i = 0; i < 2; i++) got.push(await self.receive())
    },
    { trapExit: true },
  )
  const call = node.call(tuple(A('doomed_server'), A(other.nodeName)), A('never_answered')).catch((e: unknown) => e)
  await sleep(200)
  await other.kill()
  assert.is(await linked.done, A('noconnection'))
  await watcher.done
  const ref = got[0] as Ref
  // The EXIT first, then the DOWN (the monitor was made after the link), as erts orders them.
  assert.ok(termEquals(got[1], tuple(A('EXIT'), e2, A('noconnection'))), formatTerm(got[1]))
  assert.ok(termEquals(got[2], tuple(A('DOWN'), ref, A('process'), e1, A('noconnection'))), formatTerm(got[2]))
  const lost = await call
  assert.instance(lost, NoConnectionError)
  // Why: the connection's loss.
  assert.instance((lost as Error).cause, ConnectionClosedError)
})

test('a call or rpc to a node that cannot be reached says why: its cookie, or its absence', async () => {
  const badName = `erl_rt_cookie@${shortHost}`
  const bad = await ErlNode.start({ name: 'erl_rt_cookie', epmdPort: epmd.port, cookie: 'another_cookie' })
  const why = async (p: Promise<unknown>) => {
    const e = await p.then(() => assert.unreachable('it answered'), (x: unknown) => x)
    assert.instance(e, NoConnectionError)
    return e as NoConnectionError
  }
  for (const e of [
    await why(node.call(tuple(A('code_server'), A(badName)), A('anything'))),
    await why(node.rpc(badName, 'erlang', 'node', [])),
  ]) {
    assert.instance(e.cause, CookieMismatchError)
    assert.match(e.message, new RegExp(`no connection to ${badName}: .*cookie`))
  }
  await bad.stop()
  const gone = await why(node.rpc(`nobody_here@${shortHost}`, 'erlang', 'node', [], { timeout: 10_000 }))
  assert.instance(gone.cause, NodeUnreachableError)
  // A node that came up since has no stale cause: its cookie, then its loss.
  const good = await ErlNode.start({ name: 'erl_rt_cookie', epmdPort: epmd.port, cookie: COOKIE })
  assert.is(await node.rpc(badName, 'erlang', 'node', []), A(badName))
  await good.eval('register(mute, spawn(fun() -> receive after infinity -> ok end end)), ok')
  const killed = why(node.call(tuple(A('mute'), A(badName)), A('x'), { timeout: 10_000 }))
  await sleep(200)
  await good.kill()
  assert.instance((await killed).cause, ConnectionClosedError)
})

test.run()
