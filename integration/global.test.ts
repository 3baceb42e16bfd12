// kernel's global on real erl nodes beside a visible ts-cnode: global:sync/0 returns (erl marks the node
// synced), and global's locks that name the ts-cnode node are held with global's semantics.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { atom, termToBinary, type Term } from '../src/etf/index.js'
import { silentLogger } from '../src/logger.js'
import { Node } from '../src/node.js'
import { Epmd, ErlNode, cleanup, eventually, shortHost } from './harness.js'

const COOKIE = 'ts_cnode_test_cookie'
let epmd: Epmd
let a: ErlNode
let b: ErlNode
let node: Node
const TS = `ts_global@${shortHost}`

/** An Erlang expression for term_to_binary(t), to hand a TS pid to erl. */
function erlTerm(t: Term): string {
  return `<<${[...termToBinary(t)].join(',')}>>`
}

test.before(async () => {
  epmd = await Epmd.start()
  ;[a, b] = await Promise.all([
    ErlNode.start({ name: 'erl_global_a', epmdPort: epmd.port, cookie: COOKIE }),
    ErlNode.start({ name: 'erl_global_b', epmdPort: epmd.port, cookie: COOKIE }),
  ])
  node = new Node({ name: TS, cookie: COOKIE, epmdPort: epmd.port, hidden: false, logger: silentLogger })
  await node.start()
  // A resolve function of the user's, run by global:resolve_it on this node: keeps the second pid.
  node.registerFunction('qa_resolve', 'pick', ([, , pid2]) => pid2)
})

test.after(async () => {
  await node?.stop()
  await cleanup()
})

test('global:sync/0 on erl nodes connected to a visible ts-cnode returns, and global counts it as synced', async () => {
  const r = await a.eval(
    `pong = net_adm:ping('${b.nodeName}'), pong = net_adm:ping('${TS}'),
     true = lists:member('${TS}', nodes()),
     ok = global:sync(),
     {lists:member('${TS}', gen_server:call(global_name_server, get_synced)), lists:sort(nodes())}`,
    15_000,
  )
  assert.is(r, `{true,[${b.nodeName},${TS}]}`)
  // The other erl node, connected to the ts-cnode itself: the same.
  assert.is(await b.eval(`pong = net_adm:ping('${TS}'), ok = global:sync(), lists:member('${TS}', gen_server:call(global_name_server, get_synced))`, 15_000), 'true')
  // Names still register and resolve across the erl nodes.
  assert.is(await a.eval(`P = spawn(fun() -> receive stop -> ok end end), yes = global:register_name(ts_global_test, P), ok = global:sync(), P =:= rpc:call('${b.nodeName}', global, whereis_name, [ts_global_test])`, 15_000), 'true')
})

test('after a disconnect and a new connection, global:sync/0 returns again', async () => {
  const r = await a.eval(
    `true = erlang:disconnect_node('${TS}'),
     timer:sleep(200),
     pong = net_adm:ping('${TS}'),
     ok = global:sync(),
     lists:member('${TS}', gen_server:call(global_name_server, get_synced))`,
    15_000,
  )
  assert.is(r, 'true')
})

test('a cluster that one member connects the ts-cnode to connects to it everywhere (connect_all, as global does)', async () => {
  const [c, d] = await Promise.all([
    ErlNode.start({ name: 'erl_global_c', epmdPort: epmd.port, cookie: COOKIE }),
    ErlNode.start({ name: 'erl_global_d', epmdPort: epmd.port, cookie: COOKIE }),
  ])
  assert.is(await c.eval(`pong = net_adm:ping('${d.nodeName}'), ok = global:sync(), lists:member('${TS}', nodes())`), 'false')
  assert.is(await c.eval(`pong = net_adm:ping('${TS}'), ok = global:sync()`, 15_000), 'ok')
  // d never pinged the ts-cnode: it connects because c's global knew d.
  const r = await d.eval(
    `W = fun W(0) -> false; W(N) -> case lists:member('${TS}', nodes()) of true -> true; false -> timer:sleep(100), W(N - 1) end end,
     Connected = W(50), ok = global:sync(),
     {Connected, lists:member('${TS}', gen_server:call(global_name_server, get_synced))}`,
    15_000,
  )
  assert.is(r, '{true,true}')
  await Promise.all([c.stop(), d.stop()])
})

test('a TypeScript process registered as a global name through an erl node: found, sent to, removed on exit', async () => {
  const got: Term[] = []
  const p = node.spawn(async (self) => {
    for (;;) {
      const m = await self.receive()
      got.push(m)
      if (m === atom('stop')) return
    }
  })
  assert.is(await node.rpc(a.nodeName, 'global', 'register_name', [atom('ts_service'), p.pid]), atom('yes'))
  assert.is(await b.eval(`ok = global:sync(), node(global:whereis_name(ts_service))`), TS)
  await b.eval(`global:send(ts_service, hello_from_erl)`)
  await eventually(() => got.length > 0, 'the message sent to the global name', 1000)
  assert.equal(got, [atom('hello_from_erl')])
  node.send(p.pid, atom('stop'))
  await eventually(async () => (await a.eval('global:whereis_name(ts_service)')) === 'undefined', 'the name to go with the process', 1000)
})

test('global:resolve_it/4 on the ts-cnode node (what global calls on the node of a pid whose name clashed): the standard methods, a registered one, undef', async () => {
  // Node names order the pids as global's minmax does: erl_global_a < ts_global.
  const waiter = () => node.spawn(async (self) => void (await self.receive((m) => m === atom('never'))))
  const r = await a.eval(
    `Ts = '${TS}',
     Me = self(),
     Erl = spawn(fun() -> receive M -> Me ! {erl_got, M} end end),
     Watch = fun(P) -> monitor(process, P) end,
     %% random_exit_name: the larger node's pid is killed, the smaller's returned.
     TsPid1 = binary_to_term(${erlTerm(waiter().pid)}), R1 = Watch(TsPid1),
     Kept1 = rpc:call(Ts, global, resolve_it, [fun global:random_exit_name/3, clash1, Erl, TsPid1]),
     Down1 = receive {'DOWN', R1, process, _, Why1} -> Why1 after 5000 -> none end,
     %% random_notify_name: the larger pid by node gets {global_name_conflict, Name}; on one node, minmax
     %% keeps the second.
     Kept2 = rpc:call(Ts, global, resolve_it, [fun global:random_notify_name/3, clash2, self(), Erl]),
     Told2 = receive {global_name_conflict, clash2} -> told after 5000 -> not_told end,
     %% notify_all_name: both are told, none keeps it.
     None = rpc:call(Ts, global, resolve_it, [fun global:notify_all_name/3, clash3, self(), Erl]),
     Mine = receive {global_name_conflict, clash3, Erl} -> told after 5000 -> not_told end,
     Theirs = receive {erl_got, {global_name_conflict, clash3, Me}} -> told after 5000 -> not_told end,
     %% The default method as global:register_name/2 stores it (a local fun of global), taken from global's table.
     Dflt = spawn(fun() -> receive never -> ok end end),
     yes = global:register_name(qa_default_method, Dflt),
     DefaultMethod = element(3, hd(ets:lookup(global_names, qa_default_method))),
     TsPid6 = binary_to_term(${erlTerm(waiter().pid)}), R6 = Watch(TsPid6),
     Kept6 = rpc:call(Ts, global, resolve_it, [DefaultMethod, clash6, Erl, TsPid6]),
     Down6 = receive {'DOWN', R6, process, _, Why6} -> Why6 after 5000 -> none end,
     global:unregister_name(qa_default_method), exit(Dflt, kill),
     Undef = case rpc:call(Ts, global, resolve_it, [fun no_such:resolver/3, clash5, self(), Erl]) of
               {badrpc, {'EXIT', {undef, _}}} -> undef;
               Other -> Other
             end,
     {Kept1 =:= Erl, Down1, Kept2 =:= Erl, Told2, None, Mine, Theirs,
      rpc:call(Ts, global, resolve_it, [fun qa_resolve:pick/3, clash4, self(), Erl]) =:= Erl, Undef,
      is_function(DefaultMethod, 3) andalso element(2, erlang:fun_info(DefaultMethod, type)) =:= local, Kept6 =:= Erl, Down6}`,
  )
  assert.is(r, '{true,killed,true,told,none,told,told,true,undef,true,true,killed}')
})

test('global locks on the ts-cnode node: one requester at a time, released by del_lock and by the holder dying', async () => {
  const r = await a.eval(
    `Ts = ['${TS}'],
     Self = self(),
     Holder = spawn(fun() -> R = global:set_lock({res, holder}, Ts, 0), Self ! {locked, R}, receive release -> global:del_lock({res, holder}, Ts), Self ! released end, receive die -> exit(die) end end),
     First = receive {locked, L1} -> L1 after 5000 -> timeout end,
     Other = global:set_lock({res, other}, Ts, 0),
     Same = rpc:call('${b.nodeName}', global, set_lock, [{res, holder}, Ts, 0]),
     Holder ! release,
     receive released -> ok after 5000 -> timeout end,
     AfterDel = global:set_lock({res, other}, Ts, 0),
     true = global:del_lock({res, other}, Ts),
     Holder2 = spawn(fun() -> Self ! {locked2, global:set_lock({res2, h}, Ts, 0)}, receive never -> ok end end),
     Second = receive {locked2, L2} -> L2 after 5000 -> timeout end,
     Blocked = global:set_lock({res2, other}, Ts, 0),
     exit(Holder2, kill),
     timer:sleep(300),
     AfterDeath = global:set_lock({res2, other}, Ts, 0),
     {First, Other, Same, AfterDel, Second, Blocked, AfterDeath}`,
    20_000,
  )
  // The same requester id from another process (on another node) shares the lock, as in global.
  assert.is(r, '{true,false,true,true,true,false,true}')
})

test.run()
