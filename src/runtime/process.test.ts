import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Atom, ImproperList, Pid, Ref, Tuple, atom, termEquals, tuple, type Term } from '../etf/terms.js'
import { silentLogger } from '../logger.js'
import {
  BadArgError,
  CallExitError,
  ErlangError,
  ErlangExit,
  ErlangThrow,
  ProcessExitedError,
  TimeoutError,
} from './errors.js'
import { EncodeError } from '../etf/errors.js'
import type { Process } from './process.js'
import { Runtime } from './runtime.js'

const A = atom
const newRt = () => new Runtime({ node: 'ts@host', creation: 7, logger: silentLogger })
const isBadArg = (e: unknown) => e instanceof BadArgError
const isExited = (e: unknown) => e instanceof ProcessExitedError
const tick = () => new Promise<void>((r) => setImmediate(r))
const isTuple = (m: Term, first: Atom, n?: number): m is Tuple =>
  m instanceof Tuple && m.get(0) === first && (n === undefined || m.length === n)
/** Starts a process that collects every message it gets into `box`. */
function collector(rt: Runtime, box: Term[], opts: { trapExit?: boolean; name?: string } = {}): Process {
  return rt.spawn(async (self) => {
    for (;;) box.push(await self.receive())
  }, opts)
}

test('spawn gives a local pid with the node name and creation; returning exits normal', async () => {
  const rt = newRt()
  let ran = false
  const p = rt.spawn(() => {
    ran = true
  })
  assert.instance(p.pid, Pid)
  assert.is(p.pid.node, A('ts@host'))
  assert.is(p.pid.creation, 7)
  assert.not.ok(ran, 'the body starts after spawn returns')
  assert.is(await p.done, A('normal'))
  assert.ok(ran)
  assert.not.ok(p.alive)
  assert.is(rt.process(p.pid), undefined)
})

test('pids are unique and processes find each other by pid', async () => {
  const rt = newRt()
  const ps = Array.from({ length: 100 }, () => rt.spawn((self) => self.receive()))
  assert.is(new Set(ps.map((p) => `${p.pid.id}.${p.pid.serial}`)).size, 100)
  for (const p of ps) assert.is(rt.process(p.pid), p)
  for (const p of ps) rt.send(p.pid, 1)
  await Promise.all(ps.map((p) => p.done))
})

test('send to a pid, a registered name, {Name, Node}, {name, node} and an alias', async () => {
  const rt = newRt()
  const box: Term[] = []
  const p = collector(rt, box, { name: 'sink' })
  await tick()
  rt.send(p.pid, 1)
  rt.send('sink', 2)
  rt.send(A('sink'), 3)
  rt.send(tuple(A('sink'), A('ts@host')), 4)
  rt.send({ name: 'sink', node: 'ts@host' }, 5)
  const alias = p.alias()
  rt.send(alias, 6)
  await tick()
  assert.equal(box, [1, 2, 3, 4, 5, 6])
  assert.ok(termEquals(rt.whereis('sink')!, p.pid))
})

test('sending to an unregistered local name is badarg; to a dead pid it is silently dropped', async () => {
  const rt = newRt()
  assert.throws(() => rt.send('nobody', 1), (e: unknown) => e instanceof BadArgError && e.code === 'ERR_BADARG')
  const p = rt.spawn(() => {})
  await p.done
  rt.send(p.pid, 1)
})

test('undefined is no message: EncodeError for a local send as for a remote one; a server replying it exits', async () => {
  const rt = newRt()
  const box: Term[] = []
  const p = collector(rt, box, { name: 'box' })
  for (const dest of [p.pid, 'box' as const, tuple(A('box'), A('ts@host'))])
    assert.throws(() => rt.send(dest, undefined as unknown as Term), (e: unknown) => e instanceof EncodeError && /undefined/.test((e as Error).message))
  await tick()
  assert.equal(box, [])
  const s = await rt.startGenServer<Map<Term, Term>>({ init: () => new Map(), handleCall: (k, _f, m) => ({ reply: m.get(k) as Term }) })
  const e = await rt.call(s.pid, A('missing')).catch((x: unknown) => x)
  assert.instance(e, CallExitError)
  await s.done
})

test('an exit reason that is no term (a Set, NaN, too deep) becomes {js_error, <<"EncodeError: ...">>, <<>>} for links, monitors and done', async () => {
  const rt = newRt()
  let deep: Term = 1
  for (let i = 0; i < 100_001; i++) deep = [deep]
  for (const bad of [new Set([1]), NaN, null, deep] as unknown[]) {
    const box: Term[] = []
    const watcher = collector(rt, box, { trapExit: true })
    const dying = rt.spawn(async (self) => {
      await self.receive()
      throw new ErlangExit(bad as Term)
    })
    rt.link(watcher, dying.pid)
    const ref = watcher.monitor(dying.pid)
    rt.send(dying.pid, A('go'))
    const reason = await dying.done
    assert.ok(isTuple(reason, A('js_error'), 3), String(reason))
    assert.match(((reason as Tuple).get(1) as Buffer).toString(), /^EncodeError: the exit reason is not an Erlang term/)
    await tick()
    assert.equal(box.length, 2)
    assert.ok(termEquals(box[0], tuple(A('EXIT'), dying.pid, reason)))
    assert.ok(termEquals(box[1], tuple(A('DOWN'), ref, A('process'), dying.pid, reason)))
  }
})

test('register / unregister / whereis, and names free up when the process exits', async () => {
  const rt = newRt()
  const p = rt.spawn((self) => self.receive())
  rt.register('srv', p.pid)
  assert.ok(rt.registered().includes(A('srv')))
  assert.throws(() => rt.register('srv', p.pid), isBadArg)
  const q = rt.spawn((self) => self.receive())
  assert.throws(() => rt.register('srv', q.pid), isBadArg)
  rt.unregister('srv')
  assert.is(rt.whereis('srv'), undefined)
  q.register('srv')
  assert.is(q.name, A('srv'))
  rt.send('srv', 'bye')
  await q.done
  assert.is(rt.whereis('srv'), undefined)
  rt.send(p.pid, 'bye')
  await p.done
})

test('messages between one pair of processes arrive in the order sent', async () => {
  const rt = newRt()
  const box: Term[] = []
  const sink = collector(rt, box)
  const sender = rt.spawn((self) => {
    for (let i = 0; i < 10_000; i++) self.send(sink.pid, i)
  })
  await sender.done
  await tick()
  assert.is(box.length, 10_000)
  assert.ok(box.every((v, i) => v === i))
})

test('selective receive inside a process keeps other messages queued, in order', async () => {
  const rt = newRt()
  const got: Term[] = []
  const p = rt.spawn(async (self) => {
    got.push(await self.receive((m) => isTuple(m, A('urgent'))))
    for (let i = 0; i < 3; i++) got.push(await self.receive())
  })
  rt.send(p.pid, 1)
  rt.send(p.pid, 2)
  rt.send(p.pid, tuple(A('urgent'), 0))
  rt.send(p.pid, 3)
  await p.done
  assert.ok(termEquals(got[0], tuple(A('urgent'), 0)))
  assert.equal(got.slice(1), [1, 2, 3])
})

test('link: an abnormal exit kills the linked process with the same reason', async () => {
  const rt = newRt()
  const a = rt.spawn((self) => self.receive())
  const b = rt.spawn((self) => self.receive())
  b.link(a.pid)
  assert.ok(a.isLinked(b.pid) && b.isLinked(a.pid))
  rt.exit(a.pid, A('boom'))
  assert.is(await a.done, A('boom'))
  assert.is(await b.done, A('boom'))
})

test('link: a normal exit is not propagated to a process that does not trap exits', async () => {
  const rt = newRt()
  const a = rt.spawn((self) => self.receive())
  const b = rt.spawn((self) => self.receive())
  a.link(b.pid)
  rt.send(a.pid, 'stop')
  assert.is(await a.done, A('normal'))
  await tick()
  assert.ok(b.alive)
  assert.not.ok(b.isLinked(a.pid))
  rt.send(b.pid, 'stop')
  await b.done
})

test('trap_exit turns exit signals into {EXIT, From, Reason} messages, normal ones included', async () => {
  const rt = newRt()
  const box: Term[] = []
  const trapper = collector(rt, box, { trapExit: true })
  const a = rt.spawn((self) => self.receive())
  const b = rt.spawn((self) => self.receive())
  trapper.link(a.pid)
  trapper.link(b.pid)
  rt.send(a.pid, 'stop')
  await a.done
  rt.exit(b.pid, A('crash'))
  await b.done
  await tick()
  assert.ok(trapper.alive)
  assert.is(box.length, 2)
  assert.ok(termEquals(box[0], tuple(A('EXIT'), a.pid, A('normal'))))
  assert.ok(termEquals(box[1], tuple(A('EXIT'), b.pid, A('crash'))))
})

test('exit(Pid, kill) is untrappable and the victim exits killed; its links see killed', async () => {
  const rt = newRt()
  const box: Term[] = []
  const watcher = collector(rt, box, { trapExit: true })
  const victim = rt.spawn((self) => self.receive(), { trapExit: true })
  watcher.link(victim.pid)
  rt.exit(victim.pid, A('kill'))
  assert.is(await victim.done, A('killed'))
  await tick()
  assert.ok(termEquals(box[0], tuple(A('EXIT'), victim.pid, A('killed'))))
})

test('a link exit with reason kill is an ordinary signal: a non-trapping process dies with kill', async () => {
  const rt = newRt()
  const b = rt.spawn((self) => self.receive())
  const a = rt.spawn(async (self) => {
    self.link(b.pid)
    self.exit(A('kill'))
  })
  assert.is(await a.done, A('kill'))
  assert.is(await b.done, A('kill'))
})

test('exit(Pid, normal) from another process is ignored unless trapping', async () => {
  const rt = newRt()
  const p = rt.spawn((self) => self.receive())
  rt.exit(p.pid, A('normal'))
  await tick()
  assert.ok(p.alive)
  const box: Term[] = []
  const t = collector(rt, box, { trapExit: true })
  rt.exit(t.pid, A('normal'))
  await tick()
  assert.ok(termEquals(box[0], tuple(A('EXIT'), rt.system.pid, A('normal'))))
  rt.send(p.pid, 1)
  await p.done
})

test('linking to a dead process: noproc exit signal (message when trapping, death otherwise)', async () => {
  const rt = newRt()
  const dead = rt.spawn(() => {})
  await dead.done
  const box: Term[] = []
  const trapper = collector(rt, box, { trapExit: true })
  trapper.link(dead.pid)
  await tick()
  assert.ok(termEquals(box[0], tuple(A('EXIT'), dead.pid, A('noproc'))))
  const p = rt.spawn(async (self) => {
    self.link(dead.pid)
  })
  assert.is(await p.done, A('noproc'))
})

test('unlink removes the link on both sides', async () => {
  const rt = newRt()
  const a = rt.spawn((self) => self.receive())
  const b = rt.spawn((self) => self.receive())
  a.link(b.pid)
  b.unlink(a.pid)
  assert.not.ok(a.isLinked(b.pid))
  rt.exit(a.pid, A('boom'))
  await a.done
  await tick()
  assert.ok(b.alive)
  rt.send(b.pid, 1)
  await b.done
})

test('monitor by pid: DOWN with the reason; dead target: DOWN noproc at once', async () => {
  const rt = newRt()
  const target = rt.spawn((self) => self.receive())
  const box: Term[] = []
  const w = collector(rt, box)
  const ref = w.monitor(target.pid)
  rt.exit(target.pid, A('bye'))
  await target.done
  await tick()
  assert.ok(termEquals(box[0], tuple(A('DOWN'), ref, A('process'), target.pid, A('bye'))))
  const ref2 = w.monitor(target.pid)
  await tick()
  assert.ok(termEquals(box[1], tuple(A('DOWN'), ref2, A('process'), target.pid, A('noproc'))))
})

test('monitor by name: Object is {Name, Node}; an unregistered name gives noproc', async () => {
  const rt = newRt()
  const target = rt.spawn((self) => self.receive(), { name: 'named' })
  const box: Term[] = []
  const w = collector(rt, box)
  const ref = w.monitor('named')
  const ref2 = w.monitor(tuple(A('unregistered'), A('ts@host')))
  rt.send('named', 'stop')
  await target.done
  await tick()
  assert.ok(termEquals(box[0], tuple(A('DOWN'), ref2, A('process'), tuple(A('unregistered'), A('ts@host')), A('noproc'))))
  assert.ok(termEquals(box[1], tuple(A('DOWN'), ref, A('process'), tuple(A('named'), A('ts@host')), A('normal'))))
})

test('demonitor stops the DOWN; flush removes one already queued', async () => {
  const rt = newRt()
  const t1 = rt.spawn((self) => self.receive())
  const t2 = rt.spawn((self) => self.receive())
  const w = rt.spawn((self) => self.receive(() => false))
  const r1 = w.monitor(t1.pid)
  const r2 = w.monitor(t2.pid)
  assert.ok(w.demonitor(r1))
  rt.exit(t1.pid, A('x'))
  rt.exit(t2.pid, A('y'))
  await Promise.all([t1.done, t2.done])
  assert.is(w.mailbox.size, 1)
  assert.not.ok(w.demonitor(r2), 'already fired')
  w.demonitor(r2, { flush: true })
  assert.is(w.mailbox.size, 0)
  rt.exit(w.pid, A('kill'))
})

test('aliases: send through an alias; unalias deactivates it; reply aliases work once', async () => {
  const rt = newRt()
  const box: Term[] = []
  const p = collector(rt, box)
  const a = p.alias()
  const once = p.alias({ reply: true })
  const other = rt.spawn((self) => {
    self.send(a, 1)
    self.send(once, 2)
    self.send(once, 3)
    self.send(a, 4)
  })
  await other.done
  assert.ok(p.unalias(a))
  rt.send(a, 5)
  await tick()
  assert.equal(box, [1, 2, 4])
})

test('monitor with alias demonitor: the alias dies with the monitor', async () => {
  const rt = newRt()
  const box: Term[] = []
  const target = rt.spawn((self) => self.receive())
  const p = collector(rt, box)
  const ref = p.monitor(target.pid, { alias: 'demonitor' })
  rt.send(ref, 'via alias')
  rt.exit(target.pid, A('gone'))
  await target.done
  rt.send(ref, 'after down')
  await tick()
  assert.is(box.length, 2)
  assert.is(box[0], 'via alias')
  assert.ok(isTuple(box[1], A('DOWN')))
})

test('monitor with alias reply_demonitor: the first message through the alias ends both', async () => {
  const rt = newRt()
  const box: Term[] = []
  const target = rt.spawn((self) => self.receive())
  const p = collector(rt, box)
  const ref = p.monitor(target.pid, { alias: 'reply_demonitor' })
  rt.send(ref, 'reply')
  rt.send(ref, 'second')
  rt.exit(target.pid, A('gone'))
  await target.done
  await tick()
  assert.equal(box, ['reply'])
})

test('a throwing process exits with {js_error, Message, Stack}; links and monitors fire; others carry on', async () => {
  const rt = newRt()
  const box: Term[] = []
  const trapper = collector(rt, box, { trapExit: true })
  const bystander = rt.spawn((self) => self.receive(() => false))
  const p = rt.spawn(async (self) => {
    self.link(trapper.pid)
    await self.receive()
    throw new TypeError('bad thing')
  })
  const mref = bystander.monitor(p.pid)
  rt.send(p.pid, 'go')
  const reason = (await p.done) as Tuple
  assert.ok(isTuple(reason, A('js_error'), 3))
  assert.equal((reason.get(1) as Buffer).toString(), 'TypeError: bad thing')
  assert.ok((reason.get(2) as Buffer).toString().includes('bad thing'))
  await tick()
  assert.ok(termEquals(box[0], tuple(A('EXIT'), p.pid, reason)))
  assert.ok(termEquals(bystander.mailbox.peek()[0], tuple(A('DOWN'), mref, A('process'), p.pid, reason)))
  assert.ok(trapper.alive && bystander.alive)
})

test('a process that throws synchronously, or a non-Error value, gets a js_error reason too', async () => {
  const rt = newRt()
  const p = rt.spawn(() => {
    throw 'plain string'
  })
  const r = (await p.done) as Tuple
  assert.ok(isTuple(r, A('js_error'), 3))
  assert.is((r.get(1) as Buffer).toString(), 'plain string')
})

test('ErlangExit / ErlangThrow / ErlangError choose the exit reason', async () => {
  const rt = newRt()
  const e1 = rt.spawn(() => {
    throw new ErlangExit(A('custom'))
  })
  const e2 = rt.spawn(() => {
    throw new ErlangThrow(42)
  })
  const e3 = rt.spawn(() => {
    throw new ErlangError(A('badmatch'), [])
  })
  assert.is(await e1.done, A('custom'))
  assert.ok(termEquals(await e2.done, tuple(A('nocatch'), 42)))
  assert.ok(termEquals(await e3.done, tuple(A('badmatch'), [])))
})

test('a killed process: its pending receive rejects, its signal aborts, its methods throw', async () => {
  const rt = newRt()
  let caught: unknown
  let aborted = false
  const p = rt.spawn(async (self) => {
    self.signal.addEventListener('abort', () => (aborted = true))
    try {
      await self.receive()
    } catch (e) {
      caught = e
      self.send(self.pid, 'after death')
    }
  })
  await tick()
  rt.exit(p.pid, A('shutdown'))
  assert.is(await p.done, A('shutdown'))
  await tick()
  assert.instance(caught, ProcessExitedError)
  assert.is((caught as ProcessExitedError).reason, A('shutdown'))
  assert.ok(aborted)
  assert.throws(() => p.send(p.pid, 1), isExited)
  assert.throws(() => p.monitor(p.pid), isExited)
})

test('self.exit ends the process at once, even if the ErlangExit is caught', async () => {
  const rt = newRt()
  let after = false
  const p = rt.spawn(async (self) => {
    try {
      self.exit(A('bye'))
    } catch {
      after = true
    }
  })
  assert.is(await p.done, A('bye'))
  assert.ok(after)
})

test('spawn with link, and spawnMonitor', async () => {
  const rt = newRt()
  const seen: Term[] = []
  const parent = rt.spawn(async (self) => {
    self.trapExit = true
    const child = self.spawn(async (c) => c.exit(A('child_done')), { link: true })
    const exit = await self.receive((m) => isTuple(m, A('EXIT')))
    seen.push(exit, tuple(A('EXIT'), child.pid, A('child_done')))
    const { process: c2, ref } = self.spawnMonitor(() => {})
    const down = await self.receive((m) => isTuple(m, A('DOWN')) && termEquals(m.get(1), ref))
    seen.push(down, tuple(A('DOWN'), ref, A('process'), c2.pid, A('normal')))
  })
  await parent.done
  assert.is(parent.exitReason, A('normal'))
  assert.is(seen.length, 4)
  assert.ok(termEquals(seen[0], seen[1]))
  assert.ok(termEquals(seen[2], seen[3]))
})

test('receive timeout inside a process', async () => {
  const rt = newRt()
  let err: unknown
  const p = rt.spawn(async (self) => {
    err = await self.receive(undefined, { timeout: 5 }).catch((e) => e)
  })
  await p.done
  assert.instance(err, TimeoutError)
})

test('the pid and refs are Erlang terms (Pid, Ref with 3 words)', () => {
  const rt = newRt()
  const r = rt.makeRef()
  assert.instance(r, Ref)
  assert.is(r.ids.length, 3)
  assert.ok(r.ids[0] < 1 << 18)
  assert.not.ok(termEquals(r, rt.makeRef()))
  assert.instance(new ImproperList([A('alias')], r), ImproperList)
})

test.run()
