// OTP's sys module from a real erl node against TypeScript gen_servers: get_state, get_status,
// suspend / resume (a call waits, then completes), replace_state (the fun runs on the caller's node),
// terminate, log / statistics / trace / no_debug, and requests sys does not know.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Tuple, atom, termEquals, tuple, type Term } from '../src/etf/index.js'
import { recorder } from './faults.js'
import { Node } from '../src/node.js'
import type { GenServerCallbacks } from '../src/runtime/index.js'
import { Epmd, ErlNode, cleanup, shortHost } from './harness.js'

const A = atom
const COOKIE = 'ts_cnode_test_cookie'
let epmd: Epmd
let erl: ErlNode
let node: Node
/** The node's log: sys:trace and sys:log(S, print) write there. */
const log = recorder()
const TS = `ts_sys@${shortHost}`
/** The Erlang expression naming a TypeScript server. */
const srv = (name: string) => `{${name}, '${TS}'}`

function eq(got: Term, want: Term): void {
  assert.ok(termEquals(got, want), `got ${String(got)}`)
}

/** State {count, N}; every handleCall is counted so a test can see whether one ran. */
function counter(calls: Term[]): GenServerCallbacks<Tuple> {
  return {
    init: () => tuple(A('count'), 0),
    handleCall: (req, _from, st) => {
      calls.push(req)
      const n = (st.get(1) as number) + 1
      return req === A('inc') ? { reply: n, state: tuple(A('count'), n) } : { reply: st }
    },
  }
}

test.before(async () => {
  epmd = await Epmd.start()
  erl = await ErlNode.start({ name: 'erl_sys', epmdPort: epmd.port, cookie: COOKIE })
  node = new Node({ name: TS, cookie: COOKIE, epmdPort: epmd.port, logger: log })
  await node.start()
})

test.after(async () => {
  await node?.stop()
  await cleanup()
})

test('sys:get_state/1 returns the TypeScript state; one the codec cannot encode raises callback_failed', async () => {
  const calls: Term[] = []
  await node.startGenServer(counter(calls), { name: 'ts_state' })
  eq(await erl.evalTerm(`sys:get_state(${srv('ts_state')})`), tuple(A('count'), 0))
  eq(await erl.evalTerm(`gen_server:call(${srv('ts_state')}, inc)`), 1)
  eq(await erl.evalTerm(`sys:get_state(${srv('ts_state')}, 2000)`), tuple(A('count'), 1))

  await node.startGenServer<Set<number>>({ init: () => new Set([1]) }, { name: 'ts_opaque' })
  eq(
    await erl.evalTerm(`try sys:get_state(${srv('ts_opaque')}, 2000) catch error:R -> {raised, R} end`),
    tuple(
      A('raised'),
      tuple(
        A('callback_failed'),
        tuple(A('gen_server'), A('system_get_state')),
        tuple(A('error'), tuple(A('not_a_term'), Buffer.from('cannot encode a Set'))),
      ),
    ),
  )
})

test('the node\'s own servers (rex, pg) have a state sys shows, as erl\'s have; net_kernel refuses sys requests at once', async () => {
  const N = `'${TS}'`
  assert.is(await erl.eval(`sys:get_state({rex, ${N}})`), '#{}')
  assert.is(await erl.eval(`sys:get_state({pg, ${N}})`), '{state,pg}')
  const status = await erl.eval(`sys:get_status({pg, ${N}})`)
  assert.not.match(status, /not_a_term/)
  // net_kernel (the distribution layer's, no process with a state) answers a sys request at once.
  assert.is(await erl.eval(`try sys:get_state({net_kernel, ${N}}, 5000) catch error:E -> E end`), '{unknown_system_msg,get_state}')
})

test('sys:get_status/1: the gen_server shape, which erl picks apart as it would its own', async () => {
  const s = await node.startGenServer(counter([]), { name: 'ts_status' })
  const st = await erl.evalTerm(`sys:get_status(${srv('ts_status')}, 2000)`)
  eq(
    st,
    tuple(A('status'), s.pid, tuple(A('module'), A('gen_server')), [
      [],
      A('running'),
      s.pid,
      [],
      [
        tuple(A('header'), 'Status for generic server ts_status'),
        tuple(A('data'), [tuple('Status', A('running')), tuple('Parent', s.pid), tuple('Logged events', [])]),
        tuple(A('data'), [tuple('State', tuple(A('count'), 0))]),
      ],
    ]),
  )
  // What code reading a gen_server's status does (e.g. observer's process window): find the State entry.
  const picked = await erl.evalTerm(`
    {status, Pid, {module, gen_server}, [_PDict, SysState, _Parent, _Dbg, Misc]} = sys:get_status(${srv('ts_status')}),
    [State] = [V || {data, D} <- Misc, {"State", V} <- D],
    {node(Pid), SysState, State}`)
  eq(picked, tuple(A(TS), A('running'), tuple(A('count'), 0)))
})

test('sys:suspend/1 then sys:resume/1: the waiting call completes after the resume', async () => {
  const calls: Term[] = []
  await node.startGenServer(counter(calls), { name: 'ts_susp' })
  const S = srv('ts_susp')
  const r = await erl.evalTerm(`
    S = ${S}, Self = self(),
    ok = sys:suspend(S),
    P = spawn(fun() -> Self ! {done, self(), gen_server:call(S, inc, 10000)} end),
    Early = receive {done, P, E} -> {early, E} after 500 -> waited end,
    {status, _, _, [_, Suspended | _]} = sys:get_status(S, 2000),
    StateWhileSuspended = sys:get_state(S, 2000),
    ok = sys:resume(S),
    Late = receive {done, P, L} -> L after 5000 -> no_reply end,
    {status, _, _, [_, Running | _]} = sys:get_status(S, 2000),
    {Early, Suspended, StateWhileSuspended, Late, Running}`)
  eq(r, tuple(A('waited'), A('suspended'), tuple(A('count'), 0), 1, A('running')))
  assert.equal(calls, [A('inc')], 'handleCall ran once, after the resume')
})

test('requests sys does not implement here answer {error, {unknown_system_msg, Req}} at once', async () => {
  await node.startGenServer(counter([]), { name: 'ts_unknown' })
  const S = srv('ts_unknown')
  eq(
    await erl.evalTerm(`gen:call(${S}, system, wat, 2000)`),
    tuple(A('ok'), tuple(A('error'), tuple(A('unknown_system_msg'), A('wat')))),
  )
  eq(await erl.evalTerm(`sys:log(${S}, bogus, 2000)`), A('unknown_debug'))
  eq(await erl.evalTerm(`gen_server:call(${S}, inc, 2000)`), 1)
})

test('sys:log/2, sys:statistics/2, sys:trace/2 and sys:no_debug/1 from erl: the events and counts an OTP gen_server gives', async () => {
  await node.startGenServer(counter([]), { name: 'ts_debug' })
  const S = srv('ts_debug')
  const r = await erl.evalTerm(`
    S = ${S},
    ok = sys:log(S, true), ok = sys:statistics(S, true), ok = sys:trace(S, true),
    1 = gen_server:call(S, inc),
    gen_server:cast(S, poke),
    {count, 1} = gen_server:call(S, peek),
    {ok, Log} = sys:log(S, get),
    {ok, Stats} = sys:statistics(S, get),
    {status, _, _, [_, _, _, _, [_, {data, Data} | _]]} = sys:get_status(S),
    {_, Logged} = lists:keyfind("Logged events", 1, Data),
    Me = self(),
    Shape = [case E of
               {in, {'$gen_call', {Me, _}, Req}} -> {in_call, Req};
               {in, Msg} -> {in, Msg};
               {out, Reply, {Me, _}, St} -> {out, Reply, St};
               {noreply, St} -> {noreply, St}
             end || E <- Log],
    ok = sys:log(S, print),
    ok = sys:no_debug(S),
    {ok, []} = sys:log(S, get),
    {ok, no_statistics} = sys:statistics(S, get),
    {Shape, [K || {K, _} <- Stats], proplists:get_value(messages_in, Stats), proplists:get_value(messages_out, Stats), Logged =:= Log}`)
  eq(
    r,
    tuple(
      [
        tuple(A('in_call'), A('inc')),
        tuple(A('out'), 1, tuple(A('count'), 1)),
        tuple(A('in'), tuple(A('$gen_cast'), A('poke'))),
        tuple(A('noreply'), tuple(A('count'), 1)),
        tuple(A('in_call'), A('peek')),
        tuple(A('out'), tuple(A('count'), 1), tuple(A('count'), 1)),
      ],
      [A('start_time'), A('current_time'), A('reductions'), A('messages_in'), A('messages_out')],
      3,
      2,
      true,
    ),
  )
  // sys:trace's lines as they happened, then sys:log(S, print)'s: gen_server's print_event texts.
  const dbg = log.lines.filter((l) => l.includes('*DBG* ts_debug'))
  const shapes = [
    /^warn: \*DBG\* ts_debug got call inc from <[^>]+>$/,
    /^warn: \*DBG\* ts_debug sent 1 to <[^>]+>, new state \{count, ?1\}$/,
    /^warn: \*DBG\* ts_debug got cast poke$/,
    /^warn: \*DBG\* ts_debug new state \{count, ?1\}$/,
    /^warn: \*DBG\* ts_debug got call peek from <[^>]+>$/,
    /^warn: \*DBG\* ts_debug sent \{count, ?1\} to <[^>]+>, new state \{count, ?1\}$/,
  ]
  assert.is(dbg.length, 12, dbg.join('\n'))
  dbg.forEach((l, i) => assert.match(l, shapes[i % 6]))
})

test('sys:replace_state/2: the fun runs on the caller node; a failing fun raises callback_failed', async () => {
  const calls: Term[] = []
  await node.startGenServer(counter(calls), { name: 'ts_replace' })
  const S = srv('ts_replace')
  eq(await erl.evalTerm(`sys:replace_state(${S}, fun({count, N}) -> {count, N + 41} end)`), tuple(A('count'), 41))
  eq(await erl.evalTerm(`gen_server:call(${S}, inc)`), 42)
  const failed = await erl.evalTerm(`
    try sys:replace_state(${S}, fun(_) -> error(boom) end) catch error:R -> {raised, R} end`)
  eq(
    failed,
    tuple(
      A('raised'),
      tuple(A('callback_failed'), tuple(A('gen_server'), A('system_replace_state')), tuple(A('error'), A('boom'))),
    ),
  )
  eq(await erl.evalTerm(`sys:get_state(${S})`), tuple(A('count'), 42))
})

test('sys:terminate/2 stops the server with the reason', async () => {
  const s = await node.startGenServer(counter([]), { name: 'ts_term' })
  assert.is(await erl.eval(`sys:terminate(${srv('ts_term')}, shutdown, 2000)`), 'ok')
  assert.is(await s.done, A('shutdown'))
})

test.run()
