// ts_cnode_watch (erlang/src/ts_cnode_watch.erl) through real erl: requests to sessions without a monitor
// per request still answer when the session ends (whenever it ends, and with the watcher gone too), and
// leave nothing behind in the caller's mailbox or the watcher's tables. A "hole" is a process on the
// ts-cnode node that never answers, so only the watcher can end a call to it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Pid, Tuple, atom, isAtom, termEquals, termToBinary, tuple, type Term } from '../src/etf/index.js'
import { silentLogger } from '../src/logger.js'
import { Node } from '../src/node.js'
import { startDrivers, type Drivers } from '../src/drivers/driver.js'
import type { Process } from '../src/runtime/index.js'
import { Epmd, ErlNode, cleanup, compileShippedModules, eventually, pgUrl, requirePostgres, shortHost } from './harness.js'

const A = atom
const COOKIE = 'ts_cnode_test_cookie'
const TS = `tsnode_watch@${shortHost}`
let epmd: Epmd
let erl: ErlNode
let node: Node
let drivers: Drivers

const str = (s: string) => JSON.stringify(s)
const eq = (a: Term, b: Term, what = '') => assert.ok(termEquals(a, b), `${what}\n  got:  ${show(a)}\n  want: ${show(b)}`)
function show(t: Term): string {
  if (t instanceof Tuple) return `{${t.elements.map(show).join(',')}}`
  if (Array.isArray(t)) return `[${t.map(show).join(',')}]`
  if (typeof t === 'string') return JSON.stringify(t)
  return String(t)
}
const isError = (t: Term) => t instanceof Tuple && t.length === 2 && isAtom(t.get(0), 'error')

/** A process registered as `name` on the ts node that answers {whoareyou, From} with its pid and ignores the rest. */
function hole(name: string): Process {
  return node.runtime.spawn(async (self) => {
    self.register(name)
    for (;;) {
      const m = await self.receive()
      if (m instanceof Tuple && m.length === 2 && m.get(0) === A('whoareyou') && m.get(1) instanceof Pid) self.send(m.get(1) as Pid, self.pid)
    }
  })
}
const holePid = (name: string) => `begin {${name}, '${TS}'} ! {whoareyou, self()}, receive HP when is_pid(HP) -> HP end end`

/** Starts, in erl, a process registered as `as` running Expr (with Hole bound); its result is fetched with result(). */
const startCaller = (as: string, holeName: string, expr: string) =>
  erl.eval(`
    Hole = ${holePid(holeName)},
    Parent = self(),
    spawn(fun() ->
        register(${as}, self()),
        Parent ! registered,
        R = ${expr},
        {messages, M0} = process_info(self(), messages),
        M = [X || X <- M0, not (is_tuple(X) andalso element(1, X) =:= get)],
        receive {get, F} -> F ! {result, R, M} end
    end),
    receive registered -> ok end`)
const result = (as: string) => erl.evalTerm(`${as} ! {get, self()}, receive {result, R, M} -> {R, M} after 20000 -> no_answer end`, 30_000)
const waiting = async () => ((await erl.evalTerm('ts_cnode_watch:watching()')) as Map<Term, Term>).get(A('waiting')) as number

test.before(async () => {
  await requirePostgres()
  epmd = await Epmd.start()
  const beams = await compileShippedModules()
  node = new Node({ name: TS, cookie: COOKIE, epmdPort: epmd.port, logger: silentLogger })
  await node.start()
  drivers = await startDrivers(node, { count: 2 })
  erl = await ErlNode.start({ name: 'erl_watch', epmdPort: epmd.port, cookie: COOKIE, codePath: [beams], env: { TS_CNODE_NODE: TS } })
  await erl.eval(`application:set_env(ts_cnode, drivers, 2)`)
})

test.after(async () => {
  await drivers?.stop()
  await node?.stop()
  await cleanup()
})

test('many selects: each session is watched once, no caller stays in the table, no message stays in the mailbox', async () => {
  const r = (await erl.evalTerm(`
    {ok, P} = pg_sync:connect(${str(pgUrl)}),
    {ok, Q} = pg_async:connect(${str(pgUrl)}),
    Rs = [{pg_sync:select(P, "select 1"), pg_sync:select(P, "select * from nosuch"), pg_async:select(Q, "select 2")}
          || _ <- lists:seq(1, 100)],
    W = ts_cnode_watch:watching(),
    {messages, M} = process_info(self(), messages),
    ok = pg_sync:disconnect(P), ok = pg_async:disconnect(Q),
    {lists:usort(Rs), W, M}`)) as Tuple
  const [rs, w, msgs] = r.elements as [Term[], Map<Term, Term>, Term[]]
  assert.is(rs.length, 1, 'every round gave the same answers')
  const [one, err, two] = (rs[0] as Tuple).elements
  eq(one, tuple(A('ok'), [['?column?'], ['1']]))
  assert.ok(isError(err), show(err))
  eq(two, tuple(A('ok'), [['?column?'], ['2']]))
  eq(w.get(A('sessions')) as Term, 2, 'the two sessions, watched once each')
  eq(w.get(A('waiting')) as Term, 0)
  eq(msgs, [])
  // The watcher learns that the sessions ended and forgets them.
  await eventually(async () => ((await erl.evalTerm('ts_cnode_watch:watching()')) as Map<Term, Term>).get(A('sessions')) === 0, 'sessions forgotten')
})

test('a session that never answers and then ends: the call gets the exit reason gen_server:call would give', async () => {
  const h = hole('hole_1')
  await startCaller('caller_1', 'hole_1', 'ts_cnode_watch:call(Hole, ping, infinity)')
  await eventually(async () => (await waiting()) === 1, 'the caller waits')
  node.runtime.exit(h.pid, A('kill'))
  eq(await result('caller_1'), tuple(tuple(A('exit'), A('killed')), []))
  assert.is(await waiting(), 0)
})

test('pg_async command on a session that ends: {DOWN, Reason}, nothing left behind', async () => {
  const h = hole('hole_2')
  await startCaller('caller_2', 'hole_2', `ts_cnode_watch:command(Hole, fun(ReplyTo) -> {'$ts_cnode_pg', ReplyTo, {select, "select 1"}} end, infinity)`)
  await eventually(async () => (await waiting()) === 1, 'the caller waits')
  node.runtime.exit(h.pid, A('shutdown'))
  eq(await result('caller_2'), tuple(tuple(A('DOWN'), A('shutdown')), []))
})

test('a call to a session that has already ended answers noproc (the watcher monitors it anew)', async () => {
  const h = hole('hole_3')
  const first = await erl.evalTerm(`ts_cnode_watch:call(${holePid('hole_3')}, ping, 100)`)
  eq(first, tuple(A('exit'), A('timeout')), 'a hole times out')
  node.runtime.exit(h.pid, A('kill'))
  await h.done
  const r = await erl.evalTerm(`
    Hole = binary_to_term(<<${[...termToBinary(h.pid)].join(',')}>>),
    R1 = ts_cnode_watch:call(Hole, ping, infinity),
    R2 = ts_cnode_watch:call(Hole, ping, infinity),
    {messages, M} = process_info(self(), messages),
    {R1, R2, M}`)
  eq(r, tuple(tuple(A('exit'), A('noproc')), tuple(A('exit'), A('noproc')), []))
})

test('a finite timeout: {exit, timeout}, the caller leaves the table', async () => {
  hole('hole_4')
  const r = (await erl.evalTerm(`
    Hole = ${holePid('hole_4')},
    R = ts_cnode_watch:call(Hole, ping, 50),
    C = ts_cnode_watch:command(Hole, fun(_) -> hello end, 50),
    {messages, M} = process_info(self(), messages),
    {R, C, M}`)) as Tuple
  eq(r, tuple(tuple(A('exit'), A('timeout')), A('timeout'), []))
  assert.is(await waiting(), 0)
})

test('the watcher killed while a call waits: the call monitors the session itself and still answers', async () => {
  const h = hole('hole_5')
  await startCaller('caller_5', 'hole_5', 'ts_cnode_watch:call(Hole, ping, infinity)')
  await eventually(async () => (await waiting()) === 1, 'the caller waits')
  await erl.eval('exit(whereis(ts_cnode_watch), kill)')
  node.runtime.exit(h.pid, A('kill'))
  const [r, msgs] = ((await result('caller_5')) as Tuple).elements
  assert.ok(
    termEquals(r, tuple(A('exit'), A('noproc'))) || termEquals(r, tuple(A('exit'), A('killed'))),
    `an exit for the ended session: ${show(r)}`,
  )
  eq(msgs, [])
  // The next call starts a new watcher.
  const again = await erl.evalTerm(`
    {ok, P} = pg_sync:connect(${str(pgUrl)}),
    R = pg_sync:select(P, "select 1"),
    ok = pg_sync:disconnect(P),
    {R, is_pid(whereis(ts_cnode_watch))}`)
  eq(again, tuple(tuple(A('ok'), [['?column?'], ['1']]), true))
})

test('pg_sync: a session killed while its select runs answers {error, Msg}; only the link\'s EXIT is left', async () => {
  const r = (await erl.evalTerm(`
    process_flag(trap_exit, true),
    {ok, P} = pg_sync:connect(${str(pgUrl)}),
    spawn(fun() -> timer:sleep(200), exit(P, kill) end),
    R = pg_sync:select(P, "select pg_sleep(5)"),
    E = receive {'EXIT', P, _} -> exit after 5000 -> no_exit end,
    {messages, M} = process_info(self(), messages),
    process_flag(trap_exit, false),
    {R, M, E}`, 30_000)) as Tuple
  eq(r, tuple(tuple(A('error'), 'ts-cnode session ended: killed\n'), [], A('exit')))
})

test.run()
