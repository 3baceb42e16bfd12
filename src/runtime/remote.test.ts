// Two runtimes joined by an in-memory transport: the distribution-facing half of the runtime (control
// messages in both directions, UNLINK_ID, nodedown) without sockets.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Atom, Pid, Tuple, atom, termEquals, tuple, type Term } from '../etf/terms.js'
import { silentLogger } from '../logger.js'
import {
  ErlangError,
  ErlangExit,
  ErlangThrow,
  NoConnectionError,
  NoProcError,
  TimeoutError,
} from './errors.js'
import type { Process } from './process.js'
import { Runtime } from './runtime.js'
import type { ControlMessage, Transport } from './signals.js'

const A = atom
const tick = async (n = 3) => {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r))
}

/** Delivers control messages between runtimes asynchronously, in order; records them for inspection. */
class Net {
  readonly nodes = new Map<Atom, Runtime>()
  readonly log: Array<[Atom, ControlMessage]> = []
  private down = new Set<Atom>()

  add(name: string): Runtime {
    const rt = new Runtime({ node: name, creation: 1, logger: silentLogger })
    const t: Transport = {
      send: (node, msg) => {
        this.log.push([node, msg])
        const peer = this.nodes.get(node)
        if (peer === undefined || this.down.has(node) || this.down.has(rt.nodeName)) {
          queueMicrotask(() => rt.nodeDown(node))
          return
        }
        queueMicrotask(() => peer.handleControl(msg))
      },
    }
    rt.setTransport(t)
    this.nodes.set(rt.nodeName, rt)
    return rt
  }

  /** The node goes away: every peer sees nodedown for it. */
  kill(name: Atom): void {
    this.down.add(name)
    for (const [n, rt] of this.nodes) if (n !== name) rt.nodeDown(name)
  }

  kinds(): string[] {
    return this.log.map(([, m]) => m.kind)
  }
}

function setup() {
  const net = new Net()
  const a = net.add('a@host')
  const b = net.add('b@host')
  return { net, a, b }
}

function collector(rt: Runtime, box: Term[], opts: { trapExit?: boolean; name?: string } = {}): Process {
  return rt.spawn(async (self) => {
    for (;;) box.push(await self.receive())
  }, opts)
}

test('messages cross nodes by pid (SEND_SENDER), by {Name, Node} (REG_SEND) and by alias (ALIAS_SEND), in order', async () => {
  const { net, a, b } = setup()
  const box: Term[] = []
  const sink = collector(b, box, { name: 'sink' })
  const alias = sink.alias()
  const sender = a.spawn((self) => {
    for (let i = 0; i < 100; i++) self.send(sink.pid, i)
    self.send(tuple(A('sink'), A('b@host')), 'by name')
    self.send({ name: 'sink', node: 'b@host' }, 'by object')
    self.send(alias, 'by alias')
  })
  await sender.done
  await tick()
  assert.equal(box.slice(0, 100), Array.from({ length: 100 }, (_, i) => i))
  assert.equal(box.slice(100), ['by name', 'by object', 'by alias'])
  assert.ok(net.kinds().includes('SEND_SENDER') && net.kinds().includes('REG_SEND') && net.kinds().includes('ALIAS_SEND'))
})

test('a remote link propagates exits both ways', async () => {
  const { a, b } = setup()
  const pa = a.spawn((self) => self.receive())
  const pb = b.spawn((self) => self.receive())
  pa.link(pb.pid)
  await tick()
  assert.ok(pb.isLinked(pa.pid), 'LINK arrived')
  b.exit(pb.pid, A('remote_crash'))
  assert.is(await pa.done, A('remote_crash'))

  const box: Term[] = []
  const trapper = collector(b, box, { trapExit: true })
  const pa2 = a.spawn((self) => self.receive())
  trapper.link(pa2.pid)
  await tick()
  a.send(pa2.pid, 'stop')
  await pa2.done
  await tick()
  assert.ok(termEquals(box[0], tuple(A('EXIT'), pa2.pid, A('normal'))))
})

test('LINK to a pid that does not exist answers with an EXIT noproc', async () => {
  const { a, b } = setup()
  const box: Term[] = []
  const trapper = collector(a, box, { trapExit: true })
  const ghost = new Pid(b.nodeName, 9999, 0, b.creation)
  trapper.link(ghost)
  await tick()
  assert.ok(termEquals(box[0], tuple(A('EXIT'), ghost, A('noproc'))))
})

test('UNLINK_ID: the link is gone on both sides after the ack, and no exit crosses', async () => {
  const { net, a, b } = setup()
  const pa = a.spawn((self) => self.receive())
  const pb = b.spawn((self) => self.receive())
  pa.link(pb.pid)
  await tick()
  pa.unlink(pb.pid)
  assert.not.ok(pa.isLinked(pb.pid), 'inactive at once on the unlinking side')
  await tick()
  assert.not.ok(pb.isLinked(pa.pid))
  const kinds = net.kinds()
  assert.ok(kinds.indexOf('UNLINK_ID') < kinds.indexOf('UNLINK_ID_ACK'))
  b.exit(pb.pid, A('boom'))
  await pb.done
  await tick()
  assert.ok(pa.alive)
  a.send(pa.pid, 1)
})

test('UNLINK_ID race: an exit signal crossing the unlink is ignored by the unlinking side', async () => {
  const { a, b } = setup()
  const pa = a.spawn((self) => self.receive())
  const pb = b.spawn((self) => self.receive())
  pa.link(pb.pid)
  await tick()
  // pb dies (EXIT on the way) while pa's UNLINK_ID is on the way the other way.
  b.exit(pb.pid, A('boom'))
  pa.unlink(pb.pid)
  await tick()
  assert.ok(pa.alive, 'the EXIT for a link being removed is ignored')
})

test('a LINK arriving while our unlink is outstanding does not reactivate the link', async () => {
  const { a, b } = setup()
  const pa = a.spawn((self) => self.receive())
  const pb = b.spawn((self) => self.receive())
  pa.link(pb.pid)
  await tick()
  pa.unlink(pb.pid) // UNLINK_ID in flight
  a.handleControl({ kind: 'LINK', from: pb.pid, to: pa.pid })
  assert.not.ok(pa.isLinked(pb.pid))
  await tick()
  assert.not.ok(pa.isLinked(pb.pid))
  assert.not.ok(pb.isLinked(pa.pid))
})

test('remote monitors by pid and by name; unknown name → noproc; DOWN carries the reason', async () => {
  const { a, b } = setup()
  const target = b.spawn((self) => self.receive(), { name: 'svc' })
  const box: Term[] = []
  const w = collector(a, box)
  const r1 = w.monitor(target.pid)
  const r2 = w.monitor(tuple(A('svc'), A('b@host')))
  const r3 = w.monitor({ name: 'missing', node: 'b@host' })
  await tick()
  assert.ok(termEquals(box[0], tuple(A('DOWN'), r3, A('process'), tuple(A('missing'), A('b@host')), A('noproc'))))
  b.exit(target.pid, A('gone'))
  await target.done
  await tick()
  assert.is(box.length, 3)
  assert.ok(termEquals(box[1], tuple(A('DOWN'), r1, A('process'), target.pid, A('gone'))))
  assert.ok(termEquals(box[2], tuple(A('DOWN'), r2, A('process'), tuple(A('svc'), A('b@host')), A('gone'))))
})

test('demonitor across nodes: no DOWN afterwards, and the remote side forgets the monitor', async () => {
  const { net, a, b } = setup()
  const target = b.spawn((self) => self.receive())
  const box: Term[] = []
  const w = collector(a, box)
  const ref = w.monitor(target.pid)
  await tick()
  w.demonitor(ref)
  await tick()
  b.exit(target.pid, A('gone'))
  await target.done
  await tick()
  assert.is(box.length, 0)
  assert.not.ok(net.kinds().includes('MONITOR_P_EXIT'))
})

test('nodedown: links get noconnection exits, monitors noconnection DOWNs', async () => {
  const { net, a, b } = setup()
  const remote = b.spawn((self) => self.receive())
  const linked = a.spawn((self) => self.receive())
  const box: Term[] = []
  const trapper = collector(a, box, { trapExit: true })
  linked.link(remote.pid)
  trapper.link(remote.pid)
  const ref = trapper.monitor(remote.pid)
  await tick()
  net.kill(b.nodeName)
  assert.is(await linked.done, A('noconnection'))
  await tick()
  assert.equal(box.length, 2)
  assert.ok(box.some((m) => termEquals(m, tuple(A('DOWN'), ref, A('process'), remote.pid, A('noconnection')))))
  assert.ok(box.some((m) => termEquals(m, tuple(A('EXIT'), remote.pid, A('noconnection')))))
  assert.ok(trapper.alive)
})

test('monitoring a process on a node that cannot be reached gives DOWN noconnection', async () => {
  const { a } = setup()
  const box: Term[] = []
  const w = collector(a, box)
  const ghost = new Pid(A('nowhere@host'), 1, 0, 1)
  const ref = w.monitor(ghost)
  await tick()
  assert.ok(termEquals(box[0], tuple(A('DOWN'), ref, A('process'), ghost, A('noconnection'))))
})

test('gen_server call across nodes (MONITOR_P + REG_SEND + ALIAS_SEND reply)', async () => {
  const { net, a, b } = setup()
  await b.startGenServer<number>(
    { init: () => 0, handleCall: (req, _f, n) => ({ reply: tuple(A('n'), n, req), state: n + 1 }) },
    { name: 'srv' },
  )
  const r = await a.call(tuple(A('srv'), A('b@host')), A('hello'))
  assert.ok(termEquals(r, tuple(A('n'), 0, A('hello'))))
  assert.ok(net.kinds().includes('ALIAS_SEND'))
  assert.ok(net.kinds().includes('DEMONITOR_P'))
  const e = await a.call({ name: 'nope', node: 'b@host' }, A('x')).catch((x) => x)
  assert.instance(e, NoProcError)
})

test('gen_server call to a node that goes down: NoConnectionError', async () => {
  const { net, a, b } = setup()
  await b.startGenServer<null>({ init: () => null, handleCall: () => ({ noreply: true }) }, { name: 'hang' })
  const p = a.call(tuple(A('hang'), A('b@host')), A('x'))
  await tick()
  net.kill(b.nodeName)
  const e = await p.catch((x) => x)
  assert.instance(e, NoConnectionError)
  assert.is(e.node, b.nodeName)
})

test('rpc across nodes: return, throw, exit, error, JS exception, undef', async () => {
  const { a, b } = setup()
  b.registerFunction('m', 'add', ([x, y]) => (x as number) + (y as number))
  b.registerFunction('m', 'void', () => undefined)
  b.registerFunction('m', 'thr', () => {
    throw new ErlangThrow(A('thrown'))
  })
  b.registerFunction('m', 'ex', () => {
    throw new ErlangExit(A('exited'))
  })
  b.registerFunction('m', 'err', () => {
    throw new ErlangError(A('badarith'))
  })
  b.registerFunction('m', 'js', async () => {
    await tick(1)
    throw new Error('js failure')
  })
  assert.is(await a.rpc('b@host', 'm', 'add', [2, 3]), 5)
  assert.is(await a.rpc('b@host', 'm', 'void', []), A('ok'))
  const t = await a.rpc('b@host', 'm', 'thr', []).catch((x) => x)
  assert.instance(t, ErlangThrow)
  assert.is(t.value, A('thrown'))
  const x = await a.rpc('b@host', 'm', 'ex', []).catch((x) => x)
  assert.instance(x, ErlangExit)
  assert.is(x.reason, A('exited'))
  const e = await a.rpc('b@host', 'm', 'err', [1]).catch((x) => x)
  assert.instance(e, ErlangError)
  assert.is(e.reason, A('badarith'))
  assert.ok(termEquals(e.erlangStack, [tuple(A('m'), A('err'), 1, [])]))
  const j = await a.rpc('b@host', 'm', 'js', []).catch((x) => x)
  assert.instance(j, ErlangError)
  assert.is((j.reason as Tuple).get(0), A('js_error'))
  assert.is(((j.reason as Tuple).get(1) as Buffer).toString(), 'Error: js failure')
  const u = await a.rpc('b@host', 'nomod', 'nofun', [1, 2]).catch((x) => x)
  assert.instance(u, ErlangError)
  assert.is(u.reason, A('undef'))
  assert.ok(termEquals(u.erlangStack, [tuple(A('nomod'), A('nofun'), [1, 2], [])]))
})

test('rpc timeout abandons the request; rpc to an unreachable node is NoConnectionError', async () => {
  const { a, b } = setup()
  b.registerFunction('m', 'slow', (_args, { self }) => self.receive(() => false))
  const e = await a.rpc('b@host', 'm', 'slow', [], { timeout: 20 }).catch((x) => x)
  assert.instance(e, TimeoutError)
  const n = await a.rpc('nowhere@host', 'm', 'f', []).catch((x) => x)
  assert.instance(n, NoConnectionError)
})

test('rpc whose remote process is killed: ErlangExit({signal, Reason})', async () => {
  const { a, b } = setup()
  let running: Process | undefined
  b.registerFunction('m', 'wait', (_args, { self }) => {
    running = self
    return self.receive(() => false)
  })
  const p = a.rpc('b@host', 'm', 'wait', [])
  await tick()
  b.exit(running!.pid, A('kill'))
  const e = await p.catch((x) => x)
  assert.instance(e, ErlangExit)
  assert.ok(termEquals(e.reason, tuple(A('signal'), A('killed'))))
})

test('rex answers {call, M, F, A, GL} with rpc.erl result shapes', async () => {
  const { a, b } = setup()
  b.registerFunction('m', 'id', ([x]) => x)
  b.registerFunction('m', 'thr', () => {
    throw new ErlangThrow(7)
  })
  const rex = tuple(A('rex'), A('b@host'))
  const gl = a.system.pid
  assert.is(await a.call(rex, tuple(A('call'), A('m'), A('id'), [5], gl)), 5)
  assert.is(await a.call(rex, tuple(A('call'), A('m'), A('thr'), [], gl)), 7)
  assert.is(await a.call(rex, tuple(A('block_call'), A('m'), A('id'), [6], gl)), 6)
  const u = await a.call(rex, tuple(A('call'), A('m'), A('nope'), [], gl))
  assert.ok(termEquals(u, tuple(A('badrpc'), tuple(A('EXIT'), tuple(A('undef'), [tuple(A('m'), A('nope'), [], [])])))))
  const features = await a.withProcess(async (self) => {
    self.send(rex, tuple(self.pid, A('features_request')))
    return self.receive()
  })
  assert.ok(termEquals(features, tuple(A('features_reply'), A('b@host'), [A('erpc')])))
})

test('spawn_request of a registered function: it runs as the process, with link and monitor', async () => {
  const { a, b } = setup()
  b.registerFunction('worker', 'run', async ([tag], { self }) => {
    const m = await self.receive()
    return tuple(tag, m)
  })
  const got = await a.withProcess(async (self) => {
    self.trapExit = true
    const req = self.spawnRequest('b@host', 'worker', 'run', [A('t')], { monitor: true, link: true })
    const [, , status, pid] = (await self.receive()) as Tuple
    assert.is(status, A('ok'))
    assert.ok(self.isLinked(pid as Pid))
    self.send(pid as Pid, 'go')
    const down = await self.receive((m) => m instanceof Tuple && m.get(0) === A('DOWN'))
    const exit = await self.receive((m) => m instanceof Tuple && m.get(0) === A('EXIT'))
    return [down, tuple(A('DOWN'), req, A('process'), pid, A('normal')), exit]
  })
  assert.ok(termEquals(got[0], got[1]))
  assert.is((got[2] as Tuple).get(2), A('normal'))
})

test('process exit sends DEMONITOR_P for the monitors it held on other nodes', async () => {
  const { net, a, b } = setup()
  const target = b.spawn((self) => self.receive())
  const w = a.spawn(async (self) => {
    self.monitor(target.pid)
    await self.receive()
  })
  await tick()
  a.send(w.pid, 'stop')
  await w.done
  await tick()
  assert.ok(net.kinds().includes('DEMONITOR_P'))
  b.exit(target.pid, A('x'))
  await tick()
  assert.not.ok(net.kinds().includes('MONITOR_P_EXIT'))
})

test('ALTACT_SIG_SEND (OTP 28): messages to a pid, a name, an alias; the EXIT flag carries an exit signal', async () => {
  const { a, b } = setup()
  const box: Term[] = []
  const p = collector(a, box, { name: 'alt' })
  const alias = p.alias()
  const from = b.system.pid
  a.handleControl({ kind: 'ALTACT_SIG_SEND', flags: 0, from, to: p.pid, message: 1 })
  a.handleControl({ kind: 'ALTACT_SIG_SEND', flags: 1, from, to: A('alt'), message: 2, token: A('tok') })
  a.handleControl({ kind: 'ALTACT_SIG_SEND', flags: 4, from, to: alias, message: 3 })
  await tick()
  assert.equal(box, [1, 2, 3])
  a.handleControl({ kind: 'ALTACT_SIG_SEND', flags: 16 | 4, from, to: alias, message: A('alt_exit') })
  assert.is(await p.done, A('alt_exit'))
})

test('bad control messages are dropped without throwing', () => {
  const { a } = setup()
  const junk = [
    { kind: 'SEND', to: A('notapid'), message: 1 },
    { kind: 'LINK', from: 1, to: 2 },
    { kind: 'MONITOR_P', from: A('x'), to: 5, ref: 1 },
    { kind: 'SPAWN_REQUEST', reqId: 1, from: 2, args: 3 },
    { kind: 'WHATEVER' },
  ] as unknown as ControlMessage[]
  for (const m of junk) a.handleControl(m)
})

test.run()
