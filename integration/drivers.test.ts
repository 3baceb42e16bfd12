// The seed drivers through real erl and a real PostgreSQL: the seeds' own example sessions as Erlang
// code (pg_sync, pg_async, next_perm), scheduler-sharded dispatch on an erl with 16 schedulers, owners
// dying, a million-element permutation while pings stay answered, and bad requests.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync } from 'node:fs'
import net from 'node:net'
import pg from 'pg'
import { Float, Pid, Tuple, atom, isAtom, termEquals, termToBinary, tuple, type Term } from '../src/etf/index.js'
import { silentLogger } from '../src/logger.js'
import { Node } from '../src/node.js'
import { startDrivers, type Drivers } from '../src/drivers/driver.js'
import { prevPermutation } from '../src/drivers/permutation.js'
import { Epmd, ErlNode, cleanup, compileShippedModules, eventually, pgUrl, requirePostgres, shortHost } from './harness.js'

const A = atom
const COOKIE = 'ts_cnode_test_cookie'
const TS = `tsnode_drv@${shortHost}`
const TS_MAX_QUERY_BYTES = 4 << 20
let epmd: Epmd
let erl: ErlNode
let node: Node
let drivers: Drivers
let admin: pg.Client

const str = (s: string) => JSON.stringify(s) // an Erlang string literal for ASCII text
const eq = (a: Term, b: Term, what = '') => assert.ok(termEquals(a, b), `${what}\n  got:  ${show(a)}\n  want: ${show(b)}`)
function show(t: Term): string {
  if (t instanceof Tuple) return `{${t.elements.map(show).join(',')}}`
  if (Array.isArray(t)) return `[${t.map(show).join(',')}]`
  if (Buffer.isBuffer(t)) return t.length > 40 ? `<<${t.length} bytes>>` : `<<${JSON.stringify(t.toString('latin1'))}>>`
  if (typeof t === 'string') return JSON.stringify(t)
  return String(t)
}
const ok = (x: Term) => tuple(A('ok'), x)
const isError = (t: Term) => t instanceof Tuple && t.length === 2 && isAtom(t.get(0), 'error')

// The key/value form of the test database's URL, so both libpq forms get exercised.
function keyValueForm(url: string): string {
  const u = new URL(url)
  const kv = [`host=${u.hostname}`, `port=${u.port || 5432}`, `dbname=${u.pathname.slice(1) || 'postgres'}`]
  if (u.username) kv.push(`user=${decodeURIComponent(u.username)}`)
  if (u.password) kv.push(`password=${decodeURIComponent(u.password)}`)
  return kv.join(' ')
}
const KV = keyValueForm(pgUrl)

test.before(async () => {
  await requirePostgres()
  epmd = await Epmd.start()
  const beams = await compileShippedModules()
  node = new Node({ name: TS, cookie: COOKIE, epmdPort: epmd.port, logger: silentLogger })
  await node.start()
  drivers = await startDrivers(node, { count: 16, maxQueryBytes: TS_MAX_QUERY_BYTES })
  // +S 16:16: sixteen schedulers, all online (a bare +S 16 leaves most offline on a small machine, and
  // a process pinned to an offline scheduler never runs).
  erl = await ErlNode.start({
    name: 'erl_drv',
    epmdPort: epmd.port,
    cookie: COOKIE,
    codePath: [beams],
    args: ['+S', '16:16'],
    env: { TS_CNODE_NODE: TS },
  })
  admin = new pg.Client({ connectionString: pgUrl })
  await admin.connect()
})

test.after(async () => {
  await admin?.end()
  await drivers?.stop()
  await node?.stop()
  await cleanup()
})

test('the TypeScript node is found from TS_CNODE_NODE and every driver answers', async () => {
  eq(await erl.evalTerm('ts_cnode:node()'), A(TS))
  const names = (await erl.evalTerm(`[gen_server:call({N, ts_cnode:node()}, whoami) || N <- tuple_to_list(some_driver:port_names())]`)) as Term[]
  eq(names, drivers.names as Term[])
})

test('the node is configurable: application env first, then TS_CNODE_NODE, then tsnode@<this host>', async () => {
  const r = (await erl.evalTerm(`
    Env = os:getenv("TS_CNODE_NODE"),
    application:set_env(ts_cnode, node, 'other@somewhere'),
    A = ts_cnode:node(),
    application:set_env(ts_cnode, node, "bare"),
    B = ts_cnode:node(),
    application:unset_env(ts_cnode, node),
    os:unsetenv("TS_CNODE_NODE"),
    C = ts_cnode:node(),
    os:putenv("TS_CNODE_NODE", Env),
    {A, B, C, ts_cnode:node(), lists:last(string:split(atom_to_list(node()), "@"))}`)) as Tuple
  const host = r.get(4) as string
  eq(r.get(0), A('other@somewhere'))
  eq(r.get(1), A(`bare@${host}`))
  eq(r.get(2), A(`tsnode@${host}`))
  eq(r.get(3), A(TS))
})

test('the seed pg_sync session, with the key/value connection string', async () => {
  const r = await erl.evalTerm(`
    {ok, Port} = pg_sync:connect(${str(KV)}),
    R1 = pg_sync:select(Port, "select 1 as a, 'x'::text as b, null::text as c"),
    R2 = pg_sync:select(Port, "create temp table seed_sync (id int, name text)"),
    R3 = pg_sync:select(Port, "insert into seed_sync values (1, 'one'), (2, 'two')"),
    R4 = pg_sync:select(Port, "select * from seed_sync order by id"),
    R5 = pg_sync:select(Port, "select * from nosuch"),
    R6 = pg_sync:disconnect(Port),
    R7 = pg_sync:select(Port, "select 1"),
    {is_pid(Port), R1, R2, R3, R4, R5, R6, R7}`)
  eq(
    r,
    tuple(
      true,
      ok([['a', 'b', 'c'], ['1', 'x', []]]),
      ok([]),
      ok('2'),
      ok([['id', 'name'], ['1', 'one'], ['2', 'two']]),
      tuple(A('error'), 'ERROR:  relation "nosuch" does not exist\nLINE 1: select * from nosuch\n                      ^\n'),
      A('ok'),
      tuple(A('error'), 'no connection to the server\n'),
    ),
  )
})

test('the seed pg_async session, with the postgres:// URL; replies travel as {Port, {data, Term}}', async () => {
  const r = await erl.evalTerm(`
    {ok, Port} = pg_async:connect(${str(pgUrl)}),
    R1 = pg_async:select(Port, "select 40 + 2 as answer"),
    R2 = pg_async:select(Port, "create temp table seed_async (id int)"),
    R3 = pg_async:select(Port, "insert into seed_async values (1)"),
    R4 = pg_async:select(Port, "select 1/0"),
    Port ! {'$ts_cnode_pg', self(), {select, "select 'raw'"}},
    R5 = receive {Port, {data, D}} -> D after 10000 -> no_data end,
    R6 = pg_async:disconnect(Port),
    {messages, Left} = process_info(self(), messages),
    {R1, R2, R3, R4, R5, R6, Left}`)
  eq(
    r,
    tuple(
      ok([['answer'], ['42']]),
      ok([]),
      ok('1'),
      tuple(A('error'), 'ERROR:  division by zero\n'),
      ok([['?column?'], ['raw']]),
      A('ok'),
      [],
    ),
  )
})

test('after a select times out (query_timeout), its late result is dropped: the next selects get their own', async () => {
  const r = await erl.evalTerm(`
    application:set_env(ts_cnode, query_timeout, 300),
    Run = fun(M) ->
      {ok, P} = M:connect(${str(pgUrl)}),
      R1 = M:select(P, "select pg_sleep(0.6), 1 as first"),
      timer:sleep(700),
      R2 = M:select(P, "select 2 as second"),
      R3 = M:select(P, "select 3 as third"),
      ok = M:disconnect(P),
      {messages, Left} = process_info(self(), messages),
      {R1, R2, R3, Left}
    end,
    Rs = [Run(pg_async), Run(pg_sync)],
    application:unset_env(ts_cnode, query_timeout),
    Rs`)
  const want = tuple(tuple(A('error'), 'timeout expired\n'), ok([['second'], ['2']]), ok([['third'], ['3']]), [])
  eq(r, [want, want])
})

test('a select that outlasts query_timeout is cancelled on the server: the sleep leaves pg_stat_activity and the next select answers at once (pg_sync, pg_async; TCP and Unix socket)', async () => {
  // The Unix socket of a local server, when there is one (not under docker compose).
  const socketDir = '/var/run/postgresql'
  const u = new URL(pgUrl)
  const local = ['127.0.0.1', 'localhost'].includes(u.hostname) && existsSync(`${socketDir}/.s.PGSQL.${u.port || 5432}`)
  const viaSocket = `host=${socketDir} port=${u.port || 5432} dbname=${u.pathname.slice(1)} user=${decodeURIComponent(u.username)}`
  if (!local) console.log('  (no local Unix socket: the cancel over a Unix socket is not tried)')
  const app = `ts_cnode_cancel_${process.pid}`
  const r = await erl.evalTerm(
    `
    {ok, Watch} = pg_sync:connect(${str(pgUrl)}),
    Sleeping = fun(App) ->
      {ok, [_, [N]]} = pg_sync:select(Watch, "select count(*) from pg_stat_activity where state = 'active' and application_name = '" ++ App ++ "'"),
      N
    end,
    %% Polls until the sleep is gone from pg_stat_activity (for 10 s at most: far less than its 30 s).
    Gone = fun G(App, 0) -> Sleeping(App) =:= "0";
               G(App, K) -> case Sleeping(App) of "0" -> true; _ -> timer:sleep(100), G(App, K - 1) end
           end,
    Run = fun(M, ConnStr, App) ->
      {ok, P} = M:connect(ConnStr ++ " application_name=" ++ App),
      application:set_env(ts_cnode, query_timeout, 300),
      T0 = erlang:monotonic_time(millisecond),
      R1 = M:select(P, "select pg_sleep(30)"),
      application:unset_env(ts_cnode, query_timeout),
      Stopped = Gone(App, 100),
      R2 = M:select(P, "select 1 as next"),
      Ms = erlang:monotonic_time(millisecond) - T0,
      ok = M:disconnect(P),
      {messages, Left} = process_info(self(), messages),
      %% Not a timing: a select run to its end would answer the next one after 30 s.
      {R1, Stopped, R2, Ms < 20000, Left}
    end,
    Rs = [Run(pg_sync, ${str(KV)}, "${app}_sync"), Run(pg_async, ${str(KV)}, "${app}_async")]
         ++ [Run(pg_sync, ${str(viaSocket)}, "${app}_socket") || ${local}],
    ok = pg_sync:disconnect(Watch),
    Rs`,
    60_000,
  )
  const want = tuple(tuple(A('error'), 'timeout expired\n'), true, ok([['next'], ['1']]), true, [])
  eq(r, local ? [want, want, want] : [want, want])
})

test('a cancel reaches only the select it names; a select given up while it waits for its turn never runs', async () => {
  const r = await erl.evalTerm(
    `
    {ok, P} = pg_async:connect(${str(pgUrl)}),
    {ok, []} = pg_async:select(P, "create temp table never_run (id int)"),
    %% A select that is over: a cancel naming its alias (or no select at all) leaves the one running alone.
    Old = erlang:alias(),
    P ! {'$ts_cnode_pg', Old, {select, "select 1"}},
    receive {P, {data, {ok, _}}} -> ok end,
    Cur = erlang:alias(),
    P ! {'$ts_cnode_pg', Cur, {select, "select pg_sleep(0.5), 'kept' as k"}},
    timer:sleep(100),
    P ! {'$ts_cnode_pg_cancel', Old},
    P ! {'$ts_cnode_pg_cancel', make_ref()},
    R1 = receive {P, {data, D1}} -> D1 after 10000 -> no_data end,
    %% Behind a sleep sent with no timeout, two inserts whose callers give up before their turn.
    P ! {'$ts_cnode_pg', self(), {select, "select pg_sleep(0.6)"}},
    application:set_env(ts_cnode, query_timeout, 100),
    R2 = pg_sync:select(P, "insert into never_run values (1)"),
    R3 = pg_async:select(P, "insert into never_run values ($1)", [<<"2">>]),
    application:unset_env(ts_cnode, query_timeout),
    R4 = receive {P, {data, D4}} -> D4 after 10000 -> no_data end,
    R5 = pg_async:select(P, "select count(*) from never_run"),
    ok = pg_async:disconnect(P),
    {messages, Left} = process_info(self(), messages),
    {R1, R2, R3, R4, R5, Left}`,
    30_000,
  )
  eq(
    r,
    tuple(
      ok([['pg_sleep', 'k'], [[], 'kept']]),
      tuple(A('error'), 'timeout expired\n'),
      tuple(A('error'), 'timeout expired\n'),
      ok([['pg_sleep'], [[]]]),
      ok([['count'], ['0']]),
      [],
    ),
  )
})

test('a CancelRequest that reaches the server late never cancels the next select: the session holds that one until the server has taken the request', async () => {
  // A proxy in front of the server that holds each CancelRequest connection for 1.5 s before passing it on.
  const u = new URL(pgUrl)
  let cancels = 0
  const sockets = new Set<net.Socket>()
  // Half-open allowed: the request's sender ends its side at once, and must not see the end of the proxy's
  // before the server has answered.
  const proxy = net.createServer({ allowHalfOpen: true }, (client) => {
    sockets.add(client)
    let ended = false
    client.on('error', () => {})
    client.once('end', () => void (ended = true))
    client.once('data', (first) => {
      client.pause()
      const isCancel = first.length >= 8 && first.readInt32BE(4) === 80877102
      if (isCancel) cancels++
      const forward = () => {
        const server = net.connect(Number(u.port || 5432), u.hostname)
        sockets.add(server)
        server.on('error', () => client.destroy())
        server.write(first)
        if (ended) server.end()
        else client.pipe(server)
        server.pipe(client)
      }
      if (isCancel) setTimeout(forward, 1500)
      else forward()
    })
  })
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
  const port = (proxy.address() as net.AddressInfo).port
  const app = `ts_cnode_late_cancel_${process.pid}_${Date.now()}`
  const conninfo = `host=127.0.0.1 port=${port} dbname=${u.pathname.slice(1)} user=${decodeURIComponent(u.username)} sslmode=disable application_name=${app}`
  try {
    const r = await erl.evalTerm(
      `
      {ok, P} = pg_async:connect(${str(conninfo)}),
      Self = self(),
      %% The second select waits in the session's queue behind the first: it is sent once the first runs (seen
      %% through a session of its own, straight to the server).
      spawn(fun() ->
        {ok, W} = pg_sync:connect(${str(KV)}),
        Running = fun Poll() ->
          case pg_sync:select(W, "select count(*) from pg_stat_activity where state = 'active' and application_name = '${app}'") of
            {ok, [_, ["1"]]} -> ok;
            _ -> timer:sleep(10), Poll()
          end
        end,
        Running(),
        P ! {'$ts_cnode_pg', Self, {select, "select pg_sleep(2), 'second' as s"}},
        pg_sync:disconnect(W)
      end),
      %% The first is given up after 100 ms: its CancelRequest reaches the server 1.5 s later, when the first
      %% has ended (at 0.6 s) and the second would be running.
      application:set_env(ts_cnode, query_timeout, 100),
      R1 = pg_async:select(P, "select pg_sleep(0.6)"),
      application:unset_env(ts_cnode, query_timeout),
      R2 = receive {P, {data, D}} -> D after 15000 -> no_data end,
      ok = pg_async:disconnect(P),
      {R1, R2}`,
      30_000,
    )
    eq(r, tuple(tuple(A('error'), 'timeout expired\n'), ok([['pg_sleep', 's'], [[], 'second']])))
    assert.is(cancels, 1, 'one CancelRequest went to the server')
  } finally {
    for (const s of sockets) s.destroy()
    proxy.close()
  }
})

test('a connect that outlasts call_timeout: {error, "timeout expired"}, and its session is gone, unlinked, with nothing left in the mailbox', async () => {
  // A server that accepts and never answers (nor reads): the connection is never made.
  const accepted: net.Socket[] = []
  const hole = net.createServer((s) => void accepted.push(s))
  await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r))
  const port = (hole.address() as net.AddressInfo).port
  const sessions = () => drivers.stats().reduce((n, s) => n + s.sessions, 0)
  const before = sessions()
  try {
    const r = await erl.evalTerm(`
      application:set_env(ts_cnode, call_timeout, 500),
      R = [M:connect("host=127.0.0.1 port=${port} user=x") || M <- [pg_sync, pg_async]],
      application:unset_env(ts_cnode, call_timeout),
      timer:sleep(300),
      {links, L} = process_info(self(), links),
      {messages, Ms} = process_info(self(), messages),
      {R, [X || X <- L, node(X) =:= '${TS}'], Ms}`)
    eq(r, tuple([tuple(A('error'), 'timeout expired\n'), tuple(A('error'), 'timeout expired\n')], [], []))
    await eventually(() => sessions() === before, 'the abandoned sessions to end')
    // And their connection attempts are dropped: no socket of this process (where the node runs) to the
    // server is left (a graceful end left them half-closed for good, the server never closing its side).
    assert.is(accepted.length, 2)
    const toHole = () =>
      (process as unknown as { _getActiveHandles(): unknown[] })
        ._getActiveHandles()
        .filter((h) => h instanceof net.Socket && h.remotePort === port && !accepted.includes(h))
    await eventually(() => toHole().length === 0, 'the abandoned connections to close')
  } finally {
    for (const s of accepted) s.destroy()
    hole.close()
  }
})

test('connection failures answer {error, Msg} with libpq text, and nobody crashes', async () => {
  const r = await erl.evalTerm(`
    {pg_sync:connect("host=127.0.0.1 port=1 user=x"), pg_async:connect("host"), pg_sync:connect(42)}`)
  const [a, b, c] = (r as Tuple).elements
  eq(a, tuple(A('error'), 'connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n'))
  eq(b, tuple(A('error'), 'missing "=" after "host" in connection info string\n'))
  assert.ok(isError(c), show(c))
  // As the seed, whose port stays open after a failed connect: a caller that traps exits hears nothing.
  const heard = await erl.evalTerm(`
    Parent = self(),
    spawn(fun() ->
      process_flag(trap_exit, true), {error, _} = pg_sync:connect("host=127.0.0.1 port=1 user=x"),
      {error, _} = pg_async:connect("host=127.0.0.1 port=1 user=x"),
      Parent ! {heard, receive {'EXIT', _, _} = M -> M after 500 -> nothing end}
    end),
    receive {heard, H} -> H after 10000 -> timeout end`)
  eq(heard, A('nothing'))
})

test('next_perm: all_perm([1,2,3,4]) gives the 24 permutations in the seed order; next/prev wrap around', async () => {
  const r = (await erl.evalTerm(`{next_perm:load(), next_perm:all_perm([1,2,3,4]), next_perm:next_perm([1,2,3]),
                             next_perm:prev_perm([1,2,3]), next_perm:next_perm([3,2,1]), next_perm:next_perm([])}`)) as Tuple
  eq(r.get(0), A('ok'))
  const expected: number[][] = []
  const a = Int32Array.of(1, 2, 3, 4)
  do {
    prevPermutation(a)
    expected.unshift(Array.from(a))
  } while (Array.from(a).join() !== '1,2,3,4')
  assert.is(expected.length, 24)
  eq(r.get(1), expected)
  eq(r.get(2), [1, 3, 2])
  eq(r.get(3), [3, 2, 1])
  eq(r.get(4), [1, 2, 3])
  eq(r.get(5), [])
})

test('16 schedulers: each some_driver_NN serves exactly the processes of its scheduler, none lost', async () => {
  const perScheduler = 6
  const calls = 20
  const r = (await erl.evalTerm(
    `Self = self(),
     Pids = [spawn_opt(fun() ->
                S = erlang:system_info(scheduler_id),
                Perms = [next_perm:next_perm([3, 1, 2]) || _ <- lists:seq(1, ${calls})],
                Who = some_driver:whoami(),
                Self ! {done, self(), Sch, S, Who, lists:usort(Perms)}
              end, [{scheduler, Sch}])
             || Sch <- lists:seq(1, 16), _ <- lists:seq(1, ${perScheduler})],
     [receive {done, P, Sch, S, Who, Perms} -> {P, Sch, S, Who, Perms} after 60000 -> {P, lost} end || P <- Pids]`,
    90_000,
  )) as Tuple[]
  assert.is(r.length, 16 * perScheduler)
  const expectedDriver = (s: number) => `some_driver_${String((s % 16) + 1).padStart(2, '0')}`
  const byDriver = new Map<string, Pid[]>()
  for (const t of r) {
    assert.is(t.length, 5, `lost: ${show(t)}`)
    const [pid, sch, s, who, perms] = t.elements as [Pid, number, number, Term, Term]
    assert.is(s, sch, 'the process ran on the scheduler it was pinned to')
    assert.is(String(who), expectedDriver(s))
    eq(perms, [[3, 2, 1]])
    byDriver.set(String(who), [...(byDriver.get(String(who)) ?? []), pid])
  }
  assert.is(byDriver.size, 16)
  for (const st of drivers.stats()) {
    const mine = byDriver.get(String(st.name)) ?? []
    const served = st.callers.filter((c) => r.some((t) => termEquals(t.get(0), c.pid)))
    assert.is(served.length, mine.length, `${String(st.name)} served ${served.length} test processes`)
    for (const c of served) {
      assert.ok(mine.some((p) => termEquals(p, c.pid)), `${String(st.name)} served a process of another scheduler`)
      assert.is(c.count, calls + 1)
    }
  }
})

test('an owner killed mid-session: its backend leaves pg_stat_activity', async () => {
  const app = `ts_cnode_drv_${process.pid}_${Date.now()}`
  const owner = (await erl.evalTerm(`
    Self = self(),
    P = spawn(fun() ->
          {ok, Port} = pg_sync:connect(${str(`${KV} application_name=${app}`)}),
          {ok, _} = pg_sync:select(Port, "select 1"),
          Self ! {connected, self(), Port},
          receive never -> ok end
        end),
    receive {connected, P, _} -> P after 20000 -> timeout end`)) as Pid
  assert.instance(owner, Pid)
  const count = async () => (await admin.query('select count(*)::int as n from pg_stat_activity where application_name = $1', [app])).rows[0].n
  assert.is(await count(), 1)
  await erl.evalTerm(`exit(binary_to_term(${erlBinary(owner)}), kill)`)
  await eventually(async () => (await count()) === 0, 'the backend to leave pg_stat_activity')
})

test('an owner killed while its select runs: the select is cancelled on the server, not run to its end', async () => {
  const app = `ts_cnode_drv_sleep_${process.pid}_${Date.now()}`
  const active = async () =>
    (await admin.query("select count(*)::int as n from pg_stat_activity where application_name = $1 and state = 'active'", [app])).rows[0].n
  for (const mod of ['pg_sync', 'pg_async']) {
    const owner = (await erl.evalTerm(`
      Self = self(),
      P = spawn(fun() ->
            {ok, Port} = ${mod}:connect(${str(`${KV} application_name=${app}`)}),
            Self ! {connected, self()},
            ${mod}:select(Port, "select pg_sleep(60)")
          end),
      receive {connected, P} -> P after 20000 -> timeout end`)) as Pid
    assert.instance(owner, Pid)
    await eventually(async () => (await active()) === 1, `${mod}: the sleep to run`)
    await erl.evalTerm(`exit(binary_to_term(${erlBinary(owner)}), kill)`)
    // Far less than the sleep's 60 s: without a CancelRequest the backend runs it to its end.
    await eventually(async () => (await active()) === 0, `${mod}: the sleep to leave pg_stat_activity`, 15_000)
  }
})

test('an owner that returns without disconnecting: its connection closes too, as a port would', async () => {
  const app = `ts_cnode_drv_normal_${process.pid}_${Date.now()}`
  const count = async () => (await admin.query('select count(*)::int as n from pg_stat_activity where application_name = $1', [app])).rows[0].n
  const owner = (await erl.evalTerm(`
    Self = self(),
    P = spawn(fun() ->
      {ok, Port} = pg_async:connect(${str(`${pgUrl}?application_name=${app}`)}),
      Self ! {connected, self(), Port},
      receive return -> ok end
    end),
    receive {connected, P, _} -> P after 20000 -> timeout end`)) as Pid
  assert.instance(owner, Pid)
  assert.is(await count(), 1)
  await erl.evalTerm(`binary_to_term(${erlBinary(owner)}) ! return`)
  await eventually(async () => (await count()) === 0, 'the backend to leave pg_stat_activity')
})

/** An Erlang binary literal holding term_to_binary of a term, for passing pids back. */
function erlBinary(t: Term): string {
  return `<<${[...termToBinary(t)].join(',')}>>`
}

test('a 1,000,000-element permutation runs in a worker while pings keep coming back', async () => {
  const r = (await erl.evalTerm(
    `N = 1000000,
     L = lists:seq(1, N),
     Self = self(),
     T0 = erlang:monotonic_time(microsecond),
     spawn(fun() -> R = next_perm:next_perm(L), Self ! {perm, erlang:monotonic_time(microsecond) - T0, length(R), lists:nthtail(N - 3, R)} end),
     Loop = fun Loop(Acc) ->
              receive {perm, Us, Len, Tail} -> {Us, Len, Tail, lists:reverse(Acc)}
              after 0 ->
                S = erlang:monotonic_time(microsecond),
                pong = net_adm:ping(ts_cnode:node()),
                Loop([erlang:monotonic_time(microsecond) - S | Acc])
              end
            end,
     Loop([])`,
    120_000,
  )) as Tuple
  const [us, len, tail, pings] = r.elements as [number, number, Term, number[]]
  assert.is(len, 1_000_000)
  eq(tail, [999998, 1000000, 999999])
  assert.ok(pings.length > 0, 'pings were answered while the permutation ran')
  const sorted = [...pings].sort((x, y) => x - y)
  const median = sorted[Math.floor(sorted.length / 2)]
  const max = sorted[sorted.length - 1]
  console.log(
    `  1M-element next_perm: ${(us / 1000).toFixed(1)} ms end to end; ${pings.length} pings meanwhile, ` +
      `median ${(median / 1000).toFixed(2)} ms, max ${(max / 1000).toFixed(2)} ms`,
  )
  assert.ok(drivers.stats().some((s) => s.asyncJobs > 0), 'the worker pool ran it')
  assert.ok(max < 5_000_000, `a ping took ${max} us`)
})

test('bad requests answer {error, ...} and the drivers and sessions keep serving', async () => {
  const r = (await erl.evalTerm(`
    {ok, Port} = pg_sync:connect(${str(KV)}),
    Bad = [gen_server:call(some_driver:client_port(), bogus),
           gen_server:call(some_driver:client_port(), {next_perm, <<1,2,3>>}),
           gen_server:call(some_driver:client_port(), {select, "select 1"}),
           pg_sync:select(Port, 42),
           pg_sync:select(Port, {not_a_query}),
           pg_sync:select(not_a_port, "select 1"),
           pg_sync:select(Port, "select $1", not_a_list),
           gen_server:call(Port, bogus),
           pg_sync:select(Port, ["select '", binary:copy(<<"x">>, ${TS_MAX_QUERY_BYTES + 1}), "'"]),
           begin application:set_env(ts_cnode, max_query_bytes, 100),
                 E = pg_sync:select(Port, lists:duplicate(101, $x)),
                 application:unset_env(ts_cnode, max_query_bytes), E end,
           (catch next_perm:next_perm([1, x]))],
    Good = {pg_sync:select(Port, "select 1"), next_perm:next_perm([1,2,3]), some_driver:whoami()},
    ok = pg_sync:disconnect(Port),
    Closed = [pg_sync:select(Port, "select 1"), pg_async:select(Port, "select 1"), pg_sync:disconnect(Port),
              %% A local pid is no session (it would never answer): as a closed one.
              pg_sync:select(whereis(init), "select 1"), pg_async:select(whereis(init), "select 1")],
    {Bad, Good, Closed}`)) as Tuple
  const [bad, good, closed] = r.elements as [Term[], Tuple, Term[]]
  for (const b of bad.slice(0, 10)) assert.ok(isError(b), `an {error, _}: ${show(b)}`)
  eq(bad[0], tuple(A('error'), A('unknown_request')))
  assert.match(String((bad[8] as Tuple).get(1)), /query is too large/)
  assert.match(String((bad[9] as Tuple).get(1)), /query is too large.*max_query_bytes/)
  assert.ok(bad[10] instanceof Tuple && isAtom((bad[10] as Tuple).get(0), 'EXIT'), `next_perm of a non-integer raises: ${show(bad[10])}`)
  eq(good.get(0), ok([['?column?'], ['1']]))
  eq(good.get(1), [1, 3, 2])
  const noConn = tuple(A('error'), 'no connection to the server\n')
  eq(closed, [noConn, noConn, A('ok'), noConn, noConn])
})

test('a driver that is not running is named; next_perm of what is not a list of int32s raises badarg', async () => {
  const r = await erl.evalTerm(`
    application:set_env(ts_cnode, drivers, 17),
    Self = self(),
    %% Scheduler 16 picks some_driver_17 of 17, which the node does not run.
    spawn_opt(fun() -> Self ! {r, pg_sync:connect(${str(pgUrl)})} end, [{scheduler, 16}]),
    R = receive {r, X} -> X after 10000 -> no_answer end,
    application:unset_env(ts_cnode, drivers),
    Bad = [try next_perm:next_perm(B) catch error:E -> E end || B <- [notalist, [1 | 2], [a], [16#80000000]]],
    {R, Bad}`)
  eq(r, tuple(tuple(A('error'), `ts-cnode driver some_driver_17 is not running on ${TS}\n`), [A('badarg'), A('badarg'), A('badarg'), A('badarg')]))
})

test('several statements: pg_sync gives the last result (PQexec), pg_async the first (the seed\'s first PQgetResult, the rest cleared)', async () => {
  const r = await erl.evalTerm(`
    Q1 = "select 1 as x; select 2 as y", Q2 = "select 1 as x; select 1/0",
    {ok, S} = pg_sync:connect(${str(pgUrl)}), {ok, As} = pg_async:connect(${str(pgUrl)}),
    R = {pg_sync:select(S, Q1), pg_sync:select(S, Q2), pg_async:select(As, Q1), pg_async:select(As, Q2),
         pg_async:select(As, "select 3 as z")},
    ok = pg_sync:disconnect(S), ok = pg_async:disconnect(As),
    R`)
  eq(
    r,
    tuple(
      ok([['y'], ['2']]),
      tuple(A('error'), 'ERROR:  division by zero\n'),
      ok([['x'], ['1']]),
      ok([['x'], ['1']]),
      ok([['z'], ['3']]),
    ),
  )
})

test('query text that is not UTF-8 is refused with the server\'s text (it ran with U+FFFD in its place)', async () => {
  const r = await erl.evalTerm(`
    {ok, P} = pg_sync:connect(${str(pgUrl)}),
    R = [pg_sync:select(P, <<"select '", 255, "' as e">>), pg_sync:select(P, <<"select 'a", 16#e2, 16#82, "' as f">>),
         pg_sync:select(P, "select 1")],
    ok = pg_sync:disconnect(P),
    R`)
  eq(r, [
    tuple(A('error'), 'ERROR:  invalid byte sequence for encoding "UTF8": 0xff\n'),
    tuple(A('error'), 'ERROR:  invalid byte sequence for encoding "UTF8": 0xe2 0x82 0x27\n'),
    ok([['?column?'], ['1']]),
  ])
})

test('non-ASCII text: queries as code points or UTF-8 bytes; results as UTF-8 bytes (seed) or code points (unicode)', async () => {
  const r = (await erl.evalTerm(`
    {ok, P} = pg_sync:connect(${str(KV)}),
    {ok, U} = pg_sync:connect(${str(KV)}, [unicode]),
    Q1 = [115,101,108,101,99,116,32,39,233,39],          % select 'é' as code points
    Q2 = <<"select '", 195, 169, "'">>,                   % the same as UTF-8
    Out = {pg_sync:select(P, Q1), pg_sync:select(P, Q2), pg_sync:select(U, Q1), pg_sync:select(U, "select '\\x{65e5}'::text")},
    pg_sync:disconnect(P), pg_sync:disconnect(U),
    Out`)) as Tuple
  eq(r.get(0), ok([['?column?'], [[195, 169]]]))
  eq(r.get(1), ok([['?column?'], [[195, 169]]]))
  eq(r.get(2), ok([['?column?'], [[233]]]))
  eq(r.get(3), ok([['text'], [[0x65e5]]]))
})

test('beyond the seed: binary mode and parameters, a large bytea both ways', async () => {
  const r = (await erl.evalTerm(`
    {ok, Port} = pg_sync:connect(${str(pgUrl)}, [binary]),
    Big = binary:copy(<<1,2,3,4,5,6,7,8>>, 100000),
    R1 = pg_sync:select(Port, "select 1 as n, null::int as z, 'x' as t"),
    R2 = pg_sync:select(Port, "create temp table bin_t (id int, data bytea)"),
    R3 = pg_sync:select(Port, "insert into bin_t values ($1, $2)", [1, Big]),
    {ok, [_, [_, Back]]} = pg_sync:select(Port, "select id, data from bin_t where id = $1", ["1"]),
    R4 = pg_sync:select(Port, "select $1::int + $2::int", [40, 2]),
    {ok, APort} = pg_async:connect(${str(KV)}, [binary]),
    R5 = pg_async:select(APort, "select $1::text", [<<"hello">>]),
    ok = pg_async:disconnect(APort),
    ok = pg_sync:disconnect(Port),
    {R1, R2, R3, Back =:= Big, R4, R5}`)) as Tuple
  eq(
    r,
    tuple(
      ok([[Buffer.from('n'), Buffer.from('z'), Buffer.from('t')], [Buffer.from('1'), A('null'), Buffer.from('x')]]),
      ok(A('null')),
      ok(1),
      true,
      ok([[Buffer.from('?column?')], [Buffer.from('42')]]),
      ok([[Buffer.from('text')], [Buffer.from('hello')]]),
    ),
  )
})

test('select/3: nil (Elixir\'s nil), null and undefined are SQL NULL, through pg_sync and pg_async', async () => {
  const r = await erl.evalTerm(`
    [begin
       {ok, P} = M:connect(${str(pgUrl)}),
       R = M:select(P, "select $1::int is null, $2::text is null, $3::bool is null, $4::int", [nil, null, undefined, 7]),
       ok = M:disconnect(P),
       R
     end || M <- [pg_sync, pg_async]]`)
  const want = ok([['?column?', '?column?', '?column?', 'int4'], ['t', 't', 't', '7']])
  eq(r, [want, want])
})

test('error texts show the offending term as Erlang prints it (a map, a bitstring), not [object Map]', async () => {
  const r = await erl.evalTerm(`
    {ok, P} = pg_sync:connect(${str(pgUrl)}),
    R = [pg_sync:select(P, "select $1", #{host => <<"x">>}),
         pg_sync:select(P, "select $1", [<<1:3>>]),
         pg_async:select(P, #{query => "select 1"}),
         pg_sync:connect(${str(pgUrl)}, #{binary => true})],
    ok = pg_sync:disconnect(P),
    R`)
  eq(r, [
    tuple(A('error'), 'ts-cnode: parameters must be a list, got #{host => <<"x">>}\n'),
    tuple(A('error'), 'ts-cnode: parameter $1 must be a string, binary, number, boolean or null, got <<1:3>>\n'),
    tuple(A('error'), 'ts-cnode: query must be a string or a binary, got #{query => "select 1"}\n'),
    tuple(A('error'), 'ts-cnode: connect options must be a list, got #{binary => true}\n'),
  ])
})

test('select/3 with binaries (Elixir strings) as parameters: their text for int, float, bool, jsonb, text, varchar; raw bytes for bytea; uuid either way; pg_sync and pg_async', async () => {
  const uuid = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'
  const r = await erl.evalTerm(`
    NotUtf8 = <<255, 0, 1, 254, 92, 120>>,
    Big = binary:copy(<<0, 255, 92, 120, 39>>, 40),
    Uuid16 = <<16#a0eebc999c0b4ef8bb6d6bb9bd380a11:128>>,
    Run = fun(M) ->
      {ok, P} = M:connect(${str(pgUrl)}),
      {ok, []} = M:select(P, "create temp table u (id int, name text, v varchar(10), b bytea, j jsonb, f float8, ok bool, u uuid)"),
      R = [M:select(P, "insert into u (id, name) values ($1, $2)", [<<"1000">>, <<"ann">>]),
           M:select(P, "select id, name from u"),
           M:select(P, "select $1::int, $2::float8, $3::bool, $4::bool, $5::jsonb, $6::text, $7::varchar",
                    [<<"1234">>, <<"2.5">>, <<"f">>, <<"t">>, <<"{\\"a\\": [1, 2]}">>, <<"h", 195, 169, "llo">>, <<"v">>]),
           M:select(P, "insert into u (id, v, b, j, f, ok, u) values ($1, $2, $3, $4, $5, $6, $7)",
                    [<<"2">>, <<"vv">>, NotUtf8, <<"[true]">>, <<"-1.5e3">>, <<"true">>, Uuid16]),
           M:select(P, "select v, encode(b, 'hex'), j, f, ok, u from u where id = $1", [<<"2">>]),
           M:select(P, "select $1::bytea = $2::bytea, length($1::bytea)", [Big, Big]),
           M:select(P, "select $1::bytea = decode(repeat('00ff5c7827', 40), 'hex')", [Big]),
           M:select(P, "select $1::uuid, $2::uuid, $1::uuid = $2::uuid", [Uuid16, <<"${uuid}">>]),
           M:select(P, "select $1::text = $2, $1::text", [<<"h", 195, 169, "llo">>, "h\\x{e9}llo"]),
           M:select(P, "select $1::text", [<<"a", 255, "b">>]),
           M:select(P, "select $1::text", [<<"a", 0, "b">>]),
           M:select(P, "select 'still usable'")],
      ok = M:disconnect(P),
      R
    end,
    [Run(pg_sync), Run(pg_async)]`)
  const hex = (b: Buffer) => b.toString('hex')
  const want = [
    ok('1'),
    ok([['id', 'name'], ['1000', 'ann']]),
    ok([['int4', 'float8', 'bool', 'bool', 'jsonb', 'text', 'varchar'], ['1234', '2.5', 'f', 't', '{"a": [1, 2]}', 'h\xc3\xa9llo', 'v']]),
    ok('1'),
    ok([['v', 'encode', 'j', 'f', 'ok', 'u'], ['vv', hex(Buffer.of(255, 0, 1, 254, 92, 120)), '[true]', '-1500', 't', uuid]]),
    ok([['?column?', 'length'], ['t', '200']]),
    ok([['?column?'], ['t']]),
    ok([['uuid', 'uuid', '?column?'], [uuid, uuid, 't']]),
    ok([['?column?', 'text'], ['t', 'h\xc3\xa9llo']]),
    // The server's own refusal, as libpq reports it for PQexecParams with these bytes as text.
    tuple(A('error'), 'ERROR:  invalid byte sequence for encoding "UTF8": 0xff\nCONTEXT:  unnamed portal parameter $1\n'),
    tuple(A('error'), 'ERROR:  invalid byte sequence for encoding "UTF8": 0x00\nCONTEXT:  unnamed portal parameter $1\n'),
    ok([['?column?'], ['still usable']]),
  ]
  eq(r, [want, want])
})

test('select/3 with binary parameters: a Parse error is reported and the connection stays usable; pipelined pg_async commands keep their order', async () => {
  const r = await erl.evalTerm(`
    Run = fun(M) ->
      {ok, P} = M:connect(${str(pgUrl)}),
      R = [M:select(P, "selec $1", [<<"x">>]), M:select(P, "select $1::int + 1", [<<"41">>]),
           M:select(P, "select $1::int", [<<"abc">>]), M:select(P, "select $1::nosuchtype", [<<"1">>]),
           M:select(P, "select 1 as n")],
      ok = M:disconnect(P),
      R
    end,
    Seq = [Run(pg_sync), Run(pg_async)],
    %% Sent together, so they wait in the session's queue behind the first: each is answered in turn.
    {ok, A} = pg_async:connect(${str(pgUrl)}),
    Cmds = [{select, "select pg_sleep(0.2), $1::int", [<<"1">>]},
            {select, "selec $1", [<<"2">>]},
            {select, "select $1::int, $2::text", [<<"3">>, <<"three">>]},
            {select, "select $1::int", ["4"]},
            {select, "select $1::text", [<<"a", 255>>]},
            {select, "select $1::bytea", [<<6>>]},
            {select, "select 7"}],
    [A ! {'$ts_cnode_pg', self(), C} || C <- Cmds],
    Piped = [receive {A, {data, D}} -> D after 10000 -> no_data end || _ <- Cmds],
    ok = pg_async:disconnect(A),
    {Seq, Piped}`)
  const err = (s: string) => tuple(A('error'), s)
  const want = [
    err('ERROR:  syntax error at or near "selec"\nLINE 1: selec $1\n        ^\n'),
    ok([['?column?'], ['42']]),
    err('ERROR:  invalid input syntax for type integer: "abc"\nCONTEXT:  unnamed portal parameter $1 = \'...\'\n'),
    err('ERROR:  type "nosuchtype" does not exist\nLINE 1: select $1::nosuchtype\n                   ^\n'),
    ok([['n'], ['1']]),
  ]
  eq(
    r,
    tuple(
      [want, want],
      [
        ok([['pg_sleep', 'int4'], [[], '1']]),
        err('ERROR:  syntax error at or near "selec"\nLINE 1: selec $1\n        ^\n'),
        ok([['int4', 'text'], ['3', 'three']]),
        ok([['int4'], ['4']]),
        err('ERROR:  invalid byte sequence for encoding "UTF8": 0xff\nCONTEXT:  unnamed portal parameter $1\n'),
        ok([['bytea'], ['\\x06']]),
        ok([['?column?'], ['7']]),
      ],
    ),
  )
})

test('select/3 with more than 32,767 parameters: as text up to 65,535; with a binary among them, a clear error; the node and the session carry on', async () => {
  const r = await erl.eval(`
    {ok, C} = pg_sync:connect(${str(KV)}),
    Sql = fun(N) -> "select array_length(array[" ++ string:join([[$$ | integer_to_list(I)] || I <- lists:seq(1, N)], ",") ++ "]::int[], 1)" end,
    Text = pg_sync:select(C, Sql(40000), lists:seq(1, 40000)),
    Bin = pg_sync:select(C, Sql(40000), [<<"1">> | lists:seq(2, 40000)]),
    After = pg_sync:select(C, "select 1 as one"),
    Async = pg_async:select(C, Sql(40000), lists:seq(1, 40000)),
    pg_sync:disconnect(C),
    {Text, Bin, After, Async}`)
  assert.is(
    r,
    '{{ok,[["array_length"],["40000"]]},{error,"ts-cnode: too many parameters with a binary among them: 40000 (at most 32767; pass the values as strings)\\n"},{ok,[["one"],["1"]]},{ok,[["array_length"],["40000"]]}}',
  )
})

test('a call_timeout or query_timeout that is not a non-negative integer or infinity raises invalid_timeout, before anything is sent', async () => {
  const r = await erl.evalTerm(`
    {ok, P} = pg_sync:connect(${str(pgUrl)}),
    {ok, A} = pg_async:connect(${str(pgUrl)}),
    Try = fun(Key, Value, F) ->
      application:set_env(ts_cnode, Key, Value),
      R = try F() catch error:E -> {raised, E} end,
      application:unset_env(ts_cnode, Key),
      R
    end,
    R = [Try(query_timeout, "300", fun() -> pg_sync:select(P, "select 1") end),
         Try(query_timeout, -1, fun() -> pg_async:select(A, "select 1") end),
         Try(query_timeout, 1.5, fun() -> pg_sync:select(P, "select $1::int", ["1"]) end),
         Try(call_timeout, forever, fun() -> pg_sync:connect(${str(pgUrl)}) end),
         Try(call_timeout, "60000", fun() -> next_perm:next_perm([1, 2, 3]) end),
         Try(max_query_bytes, "1M", fun() -> pg_sync:select(P, "select 1") end),
         Try(drivers, 0, fun() -> next_perm:next_perm([1, 2, 3]) end),
         Try(query_timeout, infinity, fun() -> pg_sync:select(P, "select 1") end),
         Try(query_timeout, 0, fun() -> pg_async:select(A, "select 2") end),
         pg_sync:select(P, "select 3")],
    ok = pg_sync:disconnect(P), ok = pg_async:disconnect(A),
    R`)
  const raised = (key: string, v: Term) => tuple(A('raised'), tuple(A('invalid_timeout'), A(key), v))
  eq(r, [
    raised('query_timeout', '300'),
    raised('query_timeout', -1),
    raised('query_timeout', new Float(1.5)),
    raised('call_timeout', A('forever')),
    raised('call_timeout', '60000'),
    tuple(A('raised'), tuple(A('invalid_env'), A('max_query_bytes'), '1M')),
    tuple(A('raised'), tuple(A('invalid_env'), A('drivers'), 0)),
    ok([['?column?'], ['1']]),
    tuple(A('error'), 'timeout expired\n'),
    ok([['?column?'], ['3']]),
  ])
})

test.run()
