// kernel's pg (process groups) between real erl nodes and a ts-cnode: TypeScript processes join groups
// that erl sees with pg:get_members/1, erl processes that join are seen from TypeScript, and members that
// exit, leave, or whose node goes away drop out on the other side. Over a hidden connection (the default).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { atom, Pid, tuple, type Term } from '../src/etf/terms.js'
import { silentLogger } from '../src/logger.js'
import { Node } from '../src/node.js'
import { Epmd, ErlNode, cleanup, eventually, shortHost } from './harness.js'

const COOKIE = 'ts_cnode_test_cookie'
const TS = `ts_pg@${shortHost}`
let epmd: Epmd
let erl: ErlNode
let node: Node

test.before(async () => {
  epmd = await Epmd.start()
  erl = await ErlNode.start({ name: 'erl_pg', epmdPort: epmd.port, cookie: COOKIE, args: ['-kernel', 'start_pg', 'true'] })
  node = new Node({ name: TS, cookie: COOKIE, epmdPort: epmd.port, logger: silentLogger })
  await node.start()
})

test.after(async () => {
  await node?.stop()
  await cleanup()
})


const idle = () => node.spawn(async (self) => void (await self.receive((m: Term) => m === atom('stop'))))

test('TypeScript members are seen by erl, erl members by TypeScript; leaving and exiting drop them', async () => {
  const a = idle()
  const b = idle()
  node.pg.join(atom('workers'), a.pid)
  node.pg.join(atom('workers'), [b.pid])
  node.pg.join(atom('other'), b.pid)
  assert.is(await node.ping(erl.nodeName), 'pong')
  await eventually(async () => (await erl.eval('length(pg:get_members(workers))')) === '2', 'erl to see two workers')
  assert.is(await erl.eval(`lists:sort(pg:which_groups())`), '[other,workers]')
  assert.is(await erl.eval(`[node(P) || P <- pg:get_members(workers)]`), `[${TS},${TS}]`)

  // An erl process joins: TypeScript sees it, with its own pid.
  await erl.eval(`P = spawn(fun() -> receive stop -> ok end end), register(erl_worker, P), ok = pg:join(workers, P)`)
  await eventually(() => node.pg.getMembers(atom('workers')).length === 3, 'TypeScript to see three workers')
  assert.ok(node.pg.getMembers(atom('workers')).some((p) => p.node.name === erl.nodeName))
  assert.is(node.pg.getLocalMembers(atom('workers')).length, 2)

  // Leaving: one TypeScript member leaves; then the other exits.
  assert.is(node.pg.leave(atom('workers'), a.pid), 'ok')
  assert.is(node.pg.leave(atom('workers'), a.pid), 'not_joined')
  await eventually(async () => (await erl.eval('length(pg:get_members(workers))')) === '2', 'erl to see the leave')
  node.send(b.pid, atom('stop'))
  await eventually(async () => (await erl.eval('length(pg:get_members(workers))')) === '1', 'erl to see the exit')
  await eventually(async () => (await erl.eval('pg:get_members(other)')) === '[]', 'erl to see b leave every group')
  assert.is(node.pg.getLocalMembers(atom('workers')).length, 0)

  // The erl member exits: TypeScript drops it.
  await erl.eval(`erl_worker ! stop, ok`)
  await eventually(() => node.pg.getMembers(atom('workers')).length === 0, 'TypeScript to see the erl member exit')
  node.send(a.pid, atom('stop'))
})

test('a process joined twice is a member twice (as in pg); pg state survives a reconnect', async () => {
  const c = idle()
  node.pg.join(atom('twice'), c.pid)
  node.pg.join(atom('twice'), c.pid)
  await eventually(async () => (await erl.eval('length(pg:get_members(twice))')) === '2', 'erl to see both joins')
  assert.is(node.pg.leave(atom('twice'), c.pid), 'ok')
  await eventually(async () => (await erl.eval('length(pg:get_members(twice))')) === '1', 'erl to see one leave')

  // An erl member too, so that both sides' views of a nodedown are seen.
  await erl.eval(`Q = spawn(fun() -> receive stop -> ok end end), register(erl_twice, Q), ok = pg:join(twice, Q)`)
  await eventually(() => node.pg.getMembers(atom('twice')).length === 2, 'TypeScript to see the erl member')
  // The connection goes: each side drops the other's members; it comes back: they are there again.
  await erl.eval(`erlang:disconnect_node('${TS}')`)
  await eventually(async () => (await erl.eval('length(pg:get_members(twice))')) === '1', 'erl to drop the TypeScript member on nodedown')
  await eventually(() => node.pg.getMembers(atom('twice')).length === 1, 'TypeScript to drop the erl member on nodedown')
  assert.is(await node.ping(erl.nodeName), 'pong')
  await eventually(async () => (await erl.eval('length(pg:get_members(twice))')) === '2', 'erl to see the TypeScript member again after reconnecting')
  await eventually(() => node.pg.getMembers(atom('twice')).length === 2, 'TypeScript to see the erl member again')
  await erl.eval('erl_twice ! stop, ok')
  node.send(c.pid, atom('stop'))
})

test("a visible ts-cnode: erl's scope discovers it (erl pings it first); both sides converge", async () => {
  const v = new Node({ name: `ts_pg_visible@${shortHost}`, cookie: COOKIE, epmdPort: epmd.port, hidden: false, logger: silentLogger })
  await v.start()
  try {
    const p = v.spawn(async (self) => void (await self.receive((m: Term) => m === atom('stop'))))
    v.pg.join(atom('visible_group'), p.pid)
    assert.is(await erl.eval(`net_adm:ping('${v.name.name}')`), 'pong')
    await eventually(async () => (await erl.eval('length(pg:get_members(visible_group))')) === '1', 'erl to see the visible node\'s member')
    await erl.eval(`Q = spawn(fun() -> receive stop -> ok end end), register(erl_visible, Q), ok = pg:join(visible_group, Q)`)
    await eventually(() => v.pg.getMembers(atom('visible_group')).length === 2, 'the visible node to see the erl member')
    await erl.eval('erl_visible ! stop, ok')
    v.send(p.pid, atom('stop'))
  } finally {
    await v.stop()
  }
})

test("a named scope, as pg:start(Scope) runs one (Phoenix.PubSub's is 'Elixir.Phoenix.PubSub')", async () => {
  const scope = node.pgScope('Elixir.Phoenix.PubSub')
  assert.is(node.pgScope('Elixir.Phoenix.PubSub'), scope, 'one scope per name')
  await erl.eval(`{ok, _} = pg:start('Elixir.Phoenix.PubSub'), ok`)
  const listener = idle()
  scope.join(tuple(atom('Elixir.Phoenix.PubSub'), atom('adapter')), listener.pid)
  // The erl scope started after the (hidden) connection came up, so its init did not discover this node:
  // this node's scope asks again.
  await eventually(
    async () => (await erl.eval(`length(pg:get_members('Elixir.Phoenix.PubSub', {'Elixir.Phoenix.PubSub', adapter}))`)) === '1',
    'erl to see the member of the named scope (this node asks again 2 s later)',
  )
  assert.is(await erl.eval(`pg:get_members(pg, {'Elixir.Phoenix.PubSub', adapter})`), '[]', 'not in the default scope')
  assert.is(node.pg.getMembers(tuple(atom('Elixir.Phoenix.PubSub'), atom('adapter'))).length, 0)
  node.send(listener.pid, atom('stop'))
})

test('pg.join refuses a pid of another node; groups are any term', async () => {
  assert.throws(() => node.pg.join(atom('g'), new Pid(atom('other@host'), 1, 0, 1)), /not a local pid/)
  const d = idle()
  node.pg.join(atom('g2'), d.pid)
  await eventually(async () => (await erl.eval(`length(pg:get_members(g2))`)) === '1', 'erl to see a plain atom group')
  node.send(d.pid, atom('stop'))
})

test('a named scope that erl terminates is the node\'s no more: pgScope() starts a new one that serves', async () => {
  const name = 'ts_pg_restarted'
  const first = node.pgScope(name)
  await erl.eval(`{ok, _} = pg:start(${name}), ok`)
  assert.is(await erl.eval(`sys:terminate({${name}, '${TS}'}, normal)`), 'ok')
  await eventually(async () => node.pgScope(name) !== first, 'the terminated scope to leave the node')
  const p = idle()
  node.pgScope(name).join(atom('again'), p.pid)
  await eventually(async () => (await erl.eval(`length(pg:get_members(${name}, again))`)) === '1', 'erl to see the new scope\'s member')
  node.send(p.pid, atom('stop'))
})

test.run()
