// OTP interop against a real erl node: gen_server both ways, erpc / rpc both ways, net_adm:ping.
import { writeFileSync } from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Tuple, atom, termEquals, termToBinary, tuple, type Term } from '../src/etf/index.js'
import { silentLogger } from '../src/logger.js'
import { Node } from '../src/node.js'
import {
  BadArgError,
  CallExitError,
  ErlangError,
  ErlangExit,
  ErlangThrow,
  NoProcError,
  TimeoutError,
  formatTerm,
  reply,
  type From,
} from '../src/runtime/index.js'
import { Epmd, ErlNode, cleanup, compileErlang, shortHost, tempDir } from './harness.js'

const A = atom
const COOKIE = 'ts_cnode_test_cookie'
let epmd: Epmd
let erl: ErlNode
let node: Node
const TS = `ts_otp@${shortHost}`

const TEST_SERVER = `
-module(rt_test_server).
-behaviour(gen_server).
-export([start/0, init/1, handle_call/3, handle_cast/2, handle_info/2]).
start() -> gen_server:start({local, rt_test_server}, ?MODULE, [], []).
init([]) -> {ok, []}.
handle_call({echo, X}, _From, S) -> {reply, {echo, X}, S};
handle_call({sleep, Ms}, _From, S) -> timer:sleep(Ms), {reply, slept, S};
handle_call(crash, _From, S) -> {stop, crashed, S};
handle_call(casts, _From, S) -> {reply, lists:reverse(S), S}.
handle_cast(X, S) -> {noreply, [X | S]}.
handle_info(_, S) -> {noreply, S}.
`

test.before(async () => {
  const dir = tempDir('ts-cnode-otp-')
  const src = path.join(dir, 'rt_test_server.erl')
  writeFileSync(src, TEST_SERVER)
  const beams = await compileErlang([src])
  epmd = await Epmd.start()
  erl = await ErlNode.start({ name: 'erl_otp', epmdPort: epmd.port, cookie: COOKIE, codePath: [beams] })
  node = new Node({ name: TS, cookie: COOKIE, epmdPort: epmd.port, logger: silentLogger })
  await node.start()
})

test.after(async () => {
  await node?.stop()
  await cleanup()
})

test('net_adm:ping both ways', async () => {
  assert.is(await erl.eval(`net_adm:ping('${TS}')`), 'pong')
  assert.is(await node.ping(erl.nodeName), 'pong')
  assert.is(await node.ping(`nobody@${shortHost}`, { timeout: 3000 }), 'pang')
})

test('gen_server:call loop: 10,000 calls from 32 Erlang processes to a TypeScript server', async () => {
  let calls = 0
  await node.startGenServer<number>(
    {
      init: () => 0,
      handleCall: (req, _from, n) => {
        calls++
        const [, k, i] = (req as Tuple).elements
        return { reply: tuple(A('ok'), k, (i as number) * 2), state: n + 1 }
      },
    },
    { name: 'ts_counter' },
  )
  const r = await erl.evalTerm(`
    N = '${TS}', Self = self(),
    Pids = [spawn(fun() ->
                    Bad = [I || I <- lists:seq(K, 10000, 32),
                                gen_server:call({ts_counter, N}, {add, K, I}) =/= {ok, K, 2 * I}],
                    Self ! {done, self(), length(lists:seq(K, 10000, 32)), Bad}
                  end) || K <- lists:seq(1, 32)],
    lists:foldl(fun(P, {Total, BadAll}) ->
                   receive {done, P, Count, Bad} -> {Total + Count, BadAll ++ Bad} after 60000 -> {Total, timeout} end
                end, {0, []}, Pids)`)
  assert.ok(termEquals(r, tuple(10000, [])), `got ${String(r)}`)
  assert.is(calls, 10000)
})

test('gen_server:cast from Erlang reaches handleCast; call with a plain pid works too', async () => {
  const casts: Term[] = []
  const s = await node.startGenServer<null>(
    {
      init: () => null,
      handleCast: (req) => void casts.push(req),
      handleCall: () => ({ reply: tuple(A('casts'), casts.length) }),
    },
    { name: 'ts_caster' },
  )
  const r = await erl.evalTerm(`
    N = '${TS}', ok = gen_server:cast({ts_caster, N}, one), ok = gen_server:cast({ts_caster, N}, two),
    gen_server:call({ts_caster, N}, count)`)
  assert.ok(termEquals(r, tuple(A('casts'), 2)))
  assert.equal(casts, [A('one'), A('two')])
  const byPid = await erl.evalTerm(`gen_server:call(binary_to_term(<<${[...termToBinary(s.pid)].join(',')}>>), count)`)
  assert.ok(termEquals(byPid, tuple(A('casts'), 2)))
  assert.ok(s.alive)
})

test('gen_server:call/3 timeout against a slow TypeScript server; a caller killed mid-call is harmless', async () => {
  let held: From | undefined
  const s = await node.startGenServer<null>(
    {
      init: () => null,
      handleCall: (req, from) => {
        if (req === A('ping')) return { reply: A('pong') }
        held = from
        return { noreply: true }
      },
    },
    { name: 'ts_slow' },
  )
  const r = await erl.eval(`
    case catch gen_server:call({ts_slow, '${TS}'}, hang, 200) of
      {'EXIT', {timeout, _}} -> timeout;
      Other -> Other
    end`)
  assert.is(r, 'timeout')
  const killed = await erl.eval(`
    P = spawn(fun() -> gen_server:call({ts_slow, '${TS}'}, hang, infinity) end),
    timer:sleep(200), exit(P, kill), timer:sleep(50), is_process_alive(P)`)
  assert.is(killed, 'false')
  reply(s, held!, A('late reply for a dead caller'))
  assert.is(await erl.eval(`gen_server:call({ts_slow, '${TS}'}, ping)`), 'pong')
  assert.ok(s.alive)
})

test('{stop, Reason, Reply, State} replies after terminate has run; a result that is no reply is bad_return_value', async () => {
  await node.startGenServer<null>(
    {
      init: () => null,
      handleCall: (req) => (req === A('stop') ? { stop: A('normal'), reply: A('stopped') } : { reply: A('running') }),
      terminate: async (_reason, _state, ctx) => {
        await new Promise((r) => setTimeout(r, 300))
        ctx.self.send({ name: 'stop_waiter', node: erl.nodeName }, A('terminate_done'))
      },
    },
    { name: 'ts_stopper' },
  )
  // As gen_server: by the time the call returns, terminate has run (its message is already there).
  const r = await erl.evalTerm(`
    register(stop_waiter, self()), stopped = gen_server:call({ts_stopper, '${TS}'}, stop),
    receive terminate_done -> cleaned_up after 0 -> reply_came_first end`)
  assert.is(r, A('cleaned_up'))
  await node.startGenServer<null>(
    // A plain-JS handler (or an \`as any\`) returning what is not a CallResult.
    { init: () => null, handleCall: (req) => (req === A('undefined') ? undefined : {}) as never },
    { name: 'ts_bad_return' },
  )
  const bad = await erl.evalTerm(`
    catch gen_server:call({ts_bad_return, '${TS}'}, 'undefined', 5000)`)
  // {'EXIT', {{bad_return_value, undefined}, {gen_server, call, [...]}}}, as for an Erlang server
  const reason = bad instanceof Tuple && bad.get(1) instanceof Tuple ? (bad.get(1) as Tuple).get(0) : undefined
  assert.ok(reason !== undefined && termEquals(reason, tuple(A('bad_return_value'), A('undefined'))), formatTerm(bad))
  const empty = await erl.evalTerm(`catch gen_server:call({ts_bad_return, '${TS}'}, other, 5000)`)
  assert.ok(formatTerm(empty).includes('noproc'), 'the server ended with the bad return: ' + formatTerm(empty))
})

test('a throw from a TypeScript gen_server callback is its result, as in OTP: erl gets the thrown reply, a thrown non-result exits bad_return_value', async () => {
  await node.startGenServer<number>(
    {
      init: () => 0,
      handleCall: (req, _from, n) => {
        if (req === A('throw_reply')) throw new ErlangThrow({ reply: tuple(A('thrown_reply'), n), state: n + 1 })
        throw new ErlangThrow(A('thrown_in_call'))
      },
    },
    { name: 'ts_thrower' },
  )
  const N = `{ts_thrower, '${TS}'}`
  assert.is(await erl.eval(`gen_server:call(${N}, throw_reply)`), '{thrown_reply,0}')
  assert.is(await erl.eval(`gen_server:call(${N}, throw_reply)`), '{thrown_reply,1}')
  // As an Erlang server whose handle_call does throw(thrown_in_call): the call exits with
  // {{bad_return_value, thrown_in_call}, {gen_server, call, [...]}} and so does the server.
  const r = await erl.eval(`
    Ref = monitor(process, ${N}),
    Call = try gen_server:call(${N}, other, 5000) catch exit:{R, {gen_server, call, _}} -> R end,
    receive {'DOWN', Ref, process, _, Why} -> {Call, Why} after 5000 -> {Call, no_down} end`)
  assert.is(r, '{{bad_return_value,thrown_in_call},{bad_return_value,thrown_in_call}}')
})

test('an exception from a TypeScript gen_server\'s terminate is its exit reason, as in OTP, in place of the callback\'s', async () => {
  await node.startGenServer<null>(
    {
      init: () => null,
      handleCall: () => {
        throw new ErlangError(A('first'))
      },
      terminate: () => {
        throw new ErlangExit(A('from_terminate'))
      },
    },
    { name: 'ts_term_raiser' },
  )
  const N = `{ts_term_raiser, '${TS}'}`
  const r = await erl.eval(`
    Ref = monitor(process, ${N}),
    Call = try gen_server:call(${N}, x, 5000) catch exit:{R, {gen_server, call, _}} -> R end,
    receive {'DOWN', Ref, process, _, Why} -> {Call, Why} after 5000 -> {Call, no_down} end`)
  assert.is(r, '{from_terminate,from_terminate}')
})

test('gen_server:call from TypeScript to an Erlang gen_server: reply, cast, timeout, noproc, crash', async () => {
  assert.is(await erl.eval('{ok, _} = rt_test_server:start(), ok'), 'ok')
  const srv = tuple(A('rt_test_server'), A(erl.nodeName))
  assert.ok(termEquals(await node.call(srv, tuple(A('echo'), 42)), tuple(A('echo'), 42)))
  node.cast(srv, A('c1'))
  node.cast(srv, A('c2'))
  assert.ok(termEquals(await node.call(srv, A('casts')), [A('c1'), A('c2')]))
  const t = await node.call(srv, tuple(A('sleep'), 500), { timeout: 100 }).catch((e) => e)
  assert.instance(t, TimeoutError)
  assert.is(t.code, 'ERR_TIMEOUT')
  const n = await node.call({ name: 'not_registered', node: erl.nodeName }, A('x')).catch((e) => e)
  assert.instance(n, NoProcError)
  assert.is(n.message, `no process: {not_registered,${erl.nodeName}}`)
  const c = await node.call(srv, A('crash')).catch((e) => e)
  assert.instance(c, CallExitError)
  assert.is(c.reason, A('crashed'))
})

test('erpc:call and rpc:call into TypeScript: a result, a throw, an error, an exit, undef', async () => {
  node.registerFunction('ts_math', 'add', ([a, b]) => (a as number) + (b as number))
  node.registerFunction('ts_math', 'thrower', ([v]) => {
    throw new ErlangThrow(v)
  })
  node.registerFunction('ts_math', 'failer', async () => {
    throw new RangeError('out of range')
  })
  node.registerFunction('ts_math', 'exiter', () => {
    throw new ErlangExit(A('bye'))
  })
  const N = `'${TS}'`
  assert.is(await erl.eval(`erpc:call(${N}, ts_math, add, [20, 22])`), '42')
  assert.is(await erl.eval(`rpc:call(${N}, ts_math, add, [1, 2])`), '3')
  assert.is(await erl.eval(`try erpc:call(${N}, ts_math, thrower, [ball]) catch throw:V -> {caught, V} end`), '{caught,ball}')
  assert.is(await erl.eval(`rpc:call(${N}, ts_math, thrower, [ball])`), 'ball')
  const err = await erl.evalTerm(`try erpc:call(${N}, ts_math, failer, []) catch error:{exception, R, S} -> {R, S} end`)
  const [reason, stack] = (err as Tuple).elements
  assert.is((reason as Tuple).get(0), A('js_error'))
  assert.is(((reason as Tuple).get(1) as Buffer).toString(), 'RangeError: out of range')
  assert.ok(termEquals(stack, [tuple(A('ts_math'), A('failer'), 0, [])]))
  assert.is(await erl.eval(`try erpc:call(${N}, ts_math, exiter, []) catch exit:{exception, R} -> R end`), 'bye')
  assert.is(await erl.eval(`rpc:call(${N}, ts_math, exiter, [])`), "{badrpc,{'EXIT',bye}}")
  assert.is(
    await erl.eval(`try erpc:call(${N}, no_such_mod, f, [1]) catch error:{exception, undef, S} -> {undef, S} end`),
    '{undef,[{no_such_mod,f,[1],[]}]}',
  )
  assert.is(await erl.eval(`rpc:call(${N}, no_such_mod, f, [1])`), "{badrpc,{'EXIT',{undef,[{no_such_mod,f,[1],[]}]}}}")
  assert.is(await erl.eval(`rpc:block_call(${N}, ts_math, add, [2, 2])`), '4')
  assert.is(await erl.eval(`gen_server:call({rex, ${N}}, {call, ts_math, add, [3, 4], group_leader()})`), '7')
  assert.is(await erl.eval(`gen_server:call({rex, ${N}}, {call, ts_math, thrower, [x], group_leader()})`), 'x')
  assert.is(await erl.eval(`erpc:cast(${N}, ts_math, add, [2, 2])`), 'ok')
  // A result that is no term (a cyclic array, an undefined inside) raises in the caller with what it is.
  node.registerFunction('ts_math', 'cyclic', () => {
    const a: unknown[] = []
    a.push(a)
    return a
  })
  node.registerFunction('ts_math', 'holey', () => [1, undefined])
  const bad = (f: string) =>
    erl.eval(`try erpc:call(${N}, ts_math, ${f}, []) catch error:{exception, {js_error, Msg, _}, _} -> Msg end`)
  assert.match(await bad('cyclic'), /ts_math:cyclic returned a value that is not an Erlang term: nesting deeper than 100000 \(a cyclic value\?\)/)
  assert.match(await bad('holey'), /ts_math:holey returned a value that is not an Erlang term: undefined/)
})

test('the erlang BIFs a health check or an observer calls over rpc: node, nodes, whereis, registered, is_process_alive', async () => {
  const N = `'${TS}'`
  const r = (await erl.evalTerm(`
    Rex = erpc:call(${N}, erlang, whereis, [rex]),
    {rpc:call(${N}, erlang, node, []),
     erpc:call(${N}, erlang, node, [Rex]),
     lists:member(node(), erpc:call(${N}, erlang, nodes, [hidden])),
     erpc:call(${N}, erlang, nodes, [[this]]),
     is_pid(Rex) andalso node(Rex) =:= ${N},
     erpc:call(${N}, erlang, whereis, [no_such_name]),
     lists:member(rex, erpc:call(${N}, erlang, registered, [])),
     erpc:call(${N}, erlang, is_process_alive, [Rex]),
     try erpc:call(${N}, erlang, node, [1, 2]) catch error:{exception, E1, _} -> E1 end,
     try erpc:call(${N}, erlang, whereis, ["rex"]) catch error:{exception, E2, _} -> E2 end}`)) as Tuple
  assert.equal(r.elements.map((x) => formatTerm(x)), [TS, TS, 'true', `[${TS}]`, 'true', 'undefined', 'true', 'true', 'undef', 'badarg'])
})

test('disconnecting: node.disconnect(N) and erlang:disconnect_node/1 over rpc close the connection as erl does (nodedown, then a reconnect)', async () => {
  const N = `'${TS}'`
  const E = erl.nodeName
  await erl.eval(`pong = net_adm:ping(${N})`)
  const down = new Promise<string>((r) => node.once('nodedown', (_n, reason) => r(reason)))
  // erl watches the TS node go, from a process that outlives the eval.
  await erl.eval(`register(qa_nd, spawn(fun() -> monitor_node(${N}, true), receive M -> receive {get, P} -> P ! {got, M} end end end)), ok`)
  assert.is(node.disconnect(E), true)
  assert.is(await down, 'disconnect')
  assert.is(await erl.eval(`qa_nd ! {get, self()}, receive {got, M} -> M after 5000 -> none end`), `{nodedown,${TS}}`)
  assert.not.ok(node.nodes().some((n) => n.name === E), 'no longer connected')
  assert.is(node.disconnect('never_connected@nowhere'), true)
  // The BIF over rpc: erl asks the TS node to drop a node it is not connected to (its own link would go with
  // the answer), and gets true; a non-atom is badarg.
  assert.is(await erl.eval(`erpc:call(${N}, erlang, disconnect_node, ['other@nowhere'])`), 'true')
  // As erl: a name that is no atom is false, not badarg.
  assert.is(await erl.eval(`erpc:call(${N}, erlang, disconnect_node, [<<"x">>])`), 'false')
  assert.is(await erl.eval(`erlang:disconnect_node(<<"x">>)`), 'false')
  assert.throws(() => node.disconnect(123 as unknown as string), (e: unknown) => e instanceof BadArgError)
  assert.is(await node.ping(E), 'pong')
})

test('nodes/0,1 on a hidden TypeScript node list every peer as hidden (as erl -hidden); a visible one tells them apart', async () => {
  // A connection is visible only if both sides publish: erl -hidden answers nodes() = [] and
  // nodes(hidden) = [Peer] to a visible peer; the hidden TS node (the default) must answer the same.
  const N = `'${TS}'`
  await erl.eval(`pong = net_adm:ping(${N})`)
  const hiddenSide = (await erl.evalTerm(`
    {erpc:call(${N}, erlang, nodes, []),
     erpc:call(${N}, erlang, nodes, [hidden]),
     erpc:call(${N}, erlang, nodes, [[visible]]),
     erpc:call(${N}, erlang, nodes, [[connected]]),
     erpc:call(${N}, erlang, nodes, [[this]]),
     erpc:call(${N}, erlang, nodes, [[this, visible, hidden]])}`)) as Tuple
  const E = erl.nodeName
  assert.equal(hiddenSide.elements.map((x) => formatTerm(x)), ['[]', `[${E}]`, '[]', `[${E}]`, `[${TS}]`, `[${TS},${E}]`])
  // A visible TS node: the visible erl is in nodes(), a hidden erl in nodes(hidden) only.
  const VIS = `ts_otp_vis@${shortHost}`
  const vis = new Node({ name: VIS, cookie: COOKIE, epmdPort: epmd.port, hidden: false, logger: silentLogger })
  await vis.start()
  const hid = await ErlNode.start({ name: 'erl_otp_hid', epmdPort: epmd.port, cookie: COOKIE, hidden: true })
  try {
    assert.is(await erl.eval(`net_adm:ping('${VIS}')`), 'pong')
    assert.is(await hid.eval(`net_adm:ping('${VIS}')`), 'pong')
    const V = `'${VIS}'`
    const visibleSide = (await erl.evalTerm(`
      {erpc:call(${V}, erlang, nodes, []),
       erpc:call(${V}, erlang, nodes, [hidden]),
       erpc:call(${V}, erlang, nodes, [[visible]]),
       lists:sort(erpc:call(${V}, erlang, nodes, [[connected]])),
       erpc:call(${V}, erlang, nodes, [[this]])}`)) as Tuple
    const H = hid.nodeName
    assert.equal(visibleSide.elements.map((x) => formatTerm(x)), [`[${E}]`, `[${H}]`, `[${E}]`, formatTerm([A(E), A(H)].sort((a, b) => (a.name < b.name ? -1 : 1))), `[${VIS}]`])
    assert.is(await erl.eval(`lists:member('${VIS}', nodes())`), 'true', 'erl sees the visible TS node as visible')
  } finally {
    await hid.stop()
    await vis.stop()
  }
})

test('erpc:call with a timeout into a slow TypeScript function', async () => {
  node.registerFunction('ts_slow', 'wait', (_args, { self }) => self.receive(() => false, { timeout: 2000 }).then(() => A('ok')))
  assert.is(
    await erl.eval(`try erpc:call('${TS}', ts_slow, wait, [], 100) catch error:{erpc, timeout} -> timed_out end`),
    'timed_out',
  )
})

test('node.rpc into Erlang: io output goes to the TS node, input reads eof (as a -noshell erl with no input)', async () => {
  const E = erl.nodeName
  assert.is(await node.rpc(E, 'io', 'get_line', ['prompt> ']), A('eof'))
  assert.is(await node.rpc(E, 'io', 'read', ['term> ']), A('eof'))
  assert.is(await node.rpc(E, 'io', 'format', ['written ~p~n', [[1]]]), A('ok'))
  assert.ok(termEquals(await node.rpc(E, 'io', 'columns', []), tuple(A('error'), A('enotsup'))))
})

test('node.rpc into Erlang: a result, throw, error, exit, undef', async () => {
  const E = erl.nodeName
  assert.ok(termEquals(await node.rpc(E, 'lists', 'reverse', [[1, 2, 3]]), [3, 2, 1]))
  const th = await node.rpc(E, 'erlang', 'throw', [A('ball')]).catch((e) => e)
  assert.instance(th, ErlangThrow)
  assert.is(th.value, A('ball'))
  const er = await node.rpc(E, 'erlang', 'error', [A('oops')]).catch((e) => e)
  assert.instance(er, ErlangError)
  assert.is(er.reason, A('oops'))
  const ex = await node.rpc(E, 'erlang', 'exit', [A('gone')]).catch((e) => e)
  assert.instance(ex, ErlangExit)
  assert.is(ex.reason, A('gone'))
  const un = await node.rpc(E, 'no_such_mod', 'f', []).catch((e) => e)
  assert.instance(un, ErlangError)
  assert.is(un.reason, A('undef'))
  const slow = await node.rpc(E, 'timer', 'sleep', [1000], { timeout: 100 }).catch((e) => e)
  assert.instance(slow, TimeoutError)
  assert.is(await node.rpc(E, 'erlang', 'node', []), A(E))
  // The remote process's group leader is this node's io server: output is answered, not left hanging.
  assert.is(await node.rpc(E, 'io', 'format', ['hello from erl~n'], { timeout: 5000 }), A('ok'))
})

test.run()
