// The pg scope on its own runtime: local join/leave/members, and the pg.erl protocol as a peer scope sees
// it (a TypeScript process stands in for erl's scope and checks the exact messages it gets).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Pid, atom, termEquals, tuple, type Term } from '../etf/terms.js'
import { silentLogger } from '../logger.js'
import { Runtime } from './runtime.js'
import { startPg } from './pg.js'

const A = atom
const newRt = () => new Runtime({ node: 'ts@host', creation: 1, logger: silentLogger })
const tick = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r))
}
const idle = (rt: Runtime) => rt.spawn(async (self) => void (await self.receive((m: Term) => m === A('stop'))))

test('join, leave and members on one node; an exiting member leaves every group', async () => {
  const rt = newRt()
  const pg = rt.pg!
  const a = idle(rt)
  const b = idle(rt)
  pg.join(A('g'), [a.pid, b.pid])
  pg.join(A('h'), a.pid)
  pg.join(tuple(A('room'), 1), a.pid)
  assert.is(pg.getMembers(A('g')).length, 2)
  assert.ok(termEquals(pg.getLocalMembers(tuple(A('room'), 1)), [a.pid]))
  assert.is(pg.whichGroups().length, 3)
  assert.is(pg.leave(A('g'), b.pid), 'ok')
  assert.is(pg.leave(A('g'), b.pid), 'not_joined')
  rt.send(a.pid, A('stop'))
  await tick()
  assert.equal([pg.getMembers(A('g')).length, pg.getMembers(A('h')).length, pg.whichGroups().length], [0, 0, 0])
  assert.throws(() => pg.join(A('g'), new Pid(A('other@host'), 1, 0, 1)), /not a local pid/)
  pg.join(A('empty'), [])
  assert.equal(pg.whichGroups(), [])
})

test('the pg.erl protocol: discover is answered with a sync and a discover; join/leave reach the peer; its view is kept', async () => {
  const rt = newRt()
  const pg = rt.pg!
  const m = idle(rt)
  pg.join(A('g'), m.pid)
  const got: Term[] = []
  const peer = rt.spawn(async (self) => {
    for (;;) got.push(await self.receive())
  })
  const scope = rt.whereis(A('pg'))!
  rt.send(scope, tuple(A('discover'), peer.pid))
  await tick()
  // {'$gen_cast', {sync, Scope, [{g, [M]}]}}, then {discover, Scope}
  assert.ok(termEquals(got[0], tuple(A('$gen_cast'), tuple(A('sync'), scope, [tuple(A('g'), [m.pid])]))), String(got[0]))
  assert.ok(termEquals(got[1], tuple(A('discover'), scope)))
  // The peer's members: a sync, then a join and a leave.
  const r1 = new Pid(A('erl@host'), 10, 0, 1)
  const r2 = new Pid(A('erl@host'), 11, 0, 1)
  rt.send(scope, tuple(A('$gen_cast'), tuple(A('sync'), peer.pid, [tuple(A('g'), [r1])])))
  rt.send(scope, tuple(A('join'), peer.pid, A('g'), [r2]))
  await tick()
  assert.is(pg.getMembers(A('g')).length, 3)
  rt.send(scope, tuple(A('leave'), peer.pid, r1, [A('g')]))
  await tick()
  assert.ok(termEquals(pg.getMembers(A('g')).filter((p) => p.node.name === 'erl@host'), [r2]))
  // A local join and leave go to the peer as pg sends them.
  got.length = 0
  const n = idle(rt)
  pg.join(A('k'), n.pid)
  pg.leave(A('k'), n.pid)
  await tick()
  assert.ok(termEquals(got[0], tuple(A('join'), scope, A('k'), n.pid)))
  assert.ok(termEquals(got[1], tuple(A('leave'), scope, n.pid, [A('k')])))
  // Messages not in pg's shapes change nothing and do not stop the scope.
  rt.send(scope, tuple(A('join'), peer.pid, A('g'), 42))
  rt.send(scope, A('garbage'))
  rt.send(scope, tuple(A('$gen_cast'), tuple(A('sync'), peer.pid, [A('bad')])))
  await tick()
  assert.is(pg.getMembers(A('g')).length, 2)
  // The peer's scope goes down: its members go.
  rt.exit(peer.pid, A('kill'))
  await tick()
  assert.ok(termEquals(pg.getMembers(A('g')), [m.pid]))
  assert.ok(rt.whereis(A('pg')) !== undefined)
})

test('a node whose scope never answers is asked six times in all (at once, then after 1, 2, 4, 8, 16 units), and not after it goes down', async () => {
  const rt = newRt()
  const asked: Term[] = []
  rt.setTransport({ send: (node, msg) => void (msg.kind === 'REG_SEND' && msg.toName === A('slow') && asked.push(node)) })
  const scope = startPg(rt, A('slow'), 5) // 5, 10, 20, 40, 80 ms apart
  scope.nodeUp(A('silent@host'))
  await new Promise((r) => setTimeout(r, 400))
  assert.is(asked.length, 6)
  scope.nodeUp(A('silent@host')) // it reconnects: asked again, then the node goes down
  scope.nodeDown(A('silent@host'))
  await new Promise((r) => setTimeout(r, 100))
  assert.is(asked.length, 7)
})

test.run()
