// Two TypeScript Nodes over real sockets (no EPMD: ports come from a lookup): connect on demand, the order
// of signals queued while connecting, gen_server / rpc / links across, nodedown when a node stops.
import * as net from 'node:net'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Pid, Tuple, atom, termEquals, tuple, type Term } from './etf/index.js'
import { silentLogger, type Logger } from './logger.js'
import { Node } from './node.js'
import { DistConfigError, DistListenError, NotStartedError } from './dist/errors.js'
import { DistError } from './errors.js'
import { BadArgError, ErlangThrow, NoConnectionError, ProcessExitedError, TimeoutError } from './runtime/errors.js'

const A = atom
const ports = new Map<string, number>()
const started: Node[] = []

async function startNode(alive: string): Promise<Node> {
  const n = new Node({
    name: `${alive}@127.0.0.1`,
    cookie: 'sesame',
    epmd: false,
    listenHost: '127.0.0.1',
    lookup: async (a) => ports.get(a),
    logger: silentLogger,
  })
  await n.start()
  ports.set(alive, (n as unknown as { manager: { port: number } }).manager.port)
  started.push(n)
  return n
}

test.after(async () => {
  for (const n of started) await n.stop()
})

test('start and stop: calls during a start share it, a stop during a start stops it, a failed start is retried, a stopped node starts again', async () => {
  // Two starts at once: one start, both resolve.
  const a = new Node({ name: 'life_a@127.0.0.1', cookie: 'sesame', epmd: false, listenHost: '127.0.0.1', lookup: async (x) => ports.get(x), logger: silentLogger })
  started.push(a)
  const [s1, s2] = [a.start(), a.start()]
  assert.is(s1, s2, 'the second start() shares the first')
  await s1
  assert.ok(a.started)
  // A stop called while the node starts waits for the start, then stops: nothing stays listening.
  const b = new Node({ name: 'life_b@127.0.0.1', cookie: 'sesame', epmd: false, listenHost: '127.0.0.1', logger: silentLogger })
  const starting = b.start()
  await b.stop()
  await starting
  assert.not.ok(b.started)
  const port = (b as unknown as { manager: { port: number } }).manager.port
  const refused = await new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1').once('connect', () => (s.destroy(), resolve(false))).once('error', () => resolve(true))
  })
  assert.ok(refused, 'the listener of a node stopped while it started is closed')
  // A failed start (the port is taken) can be retried once the cause is gone.
  const blocker = net.createServer()
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()))
  const taken = (blocker.address() as net.AddressInfo).port
  const c = new Node({ name: 'life_c@127.0.0.1', cookie: 'sesame', epmd: false, listenHost: '127.0.0.1', listenPort: taken, logger: silentLogger })
  started.push(c)
  const failed = await c.start().then(() => undefined, (e: unknown) => e)
  assert.ok(failed instanceof Error && /EADDRINUSE/.test(failed.message), String(failed))
  assert.not.ok(c.started)
  await new Promise<void>((r) => blocker.close(() => r()))
  await c.start()
  assert.ok(c.started)
  // Stopped, then started again: a new creation, and reachable with it.
  ports.set('life_c', taken)
  const before = c.creation
  await c.stop()
  await c.start()
  assert.ok(c.started)
  assert.is.not(c.creation, before, 'a restarted node has a new creation')
  const echo = c.spawn(async (self) => {
    const m = (await self.receive()) as Tuple
    self.send(m.get(0) as Pid, m.get(1))
  }, { name: 'echo' })
  assert.ok(echo.pid.creation === c.creation)
  let got: Term | undefined
  const reply = a.spawn(async (self) => {
    self.send({ name: 'echo', node: 'life_c@127.0.0.1' }, tuple(self.pid, A('again')))
    got = await self.receive(undefined, { timeout: 5000 })
  })
  await reply.done
  assert.is(got, A('again'))
})

test('promise-returning methods reject, never throw, before start() and after stop(); a dead process\'s too', async () => {
  const n = new Node({ name: 'sync_a@127.0.0.1', cookie: 'sesame', epmd: false, listenHost: '127.0.0.1', logger: silentLogger })
  started.push(n)
  const methods: Record<string, () => Promise<unknown>> = {
    call: () => n.call('srv', A('x')),
    rpc: () => n.rpc('other@127.0.0.1', 'm', 'f', []),
    startGenServer: () => n.startGenServer({ init: () => null }),
    withProcess: () => n.withProcess(async () => 1),
    connect: () => n.connect('other@127.0.0.1'),
    ping: () => n.ping('other@127.0.0.1'),
    whenWritable: () => n.whenWritable('other@127.0.0.1'),
  }
  const settle = async (when: string) => {
    const out: Record<string, unknown> = {}
    for (const [name, f] of Object.entries(methods)) {
      let p: Promise<unknown>
      try {
        p = f()
      } catch (e) {
        assert.unreachable(`${name}() threw synchronously ${when}: ${String(e)}`)
        continue
      }
      out[name] = await p.then((v) => ({ value: v }), (e: unknown) => e)
    }
    return out
  }
  for (const when of ['before start()', 'after stop()']) {
    if (when === 'after stop()') {
      await n.start()
      await n.stop()
    }
    const r = await settle(when)
    for (const name of ['call', 'rpc', 'startGenServer', 'withProcess', 'connect'])
      assert.instance(r[name], NotStartedError, `${name} ${when}: ${String(r[name])}`)
    assert.equal(r.ping, { value: 'pang' }, `ping ${when}`)
    assert.equal(r.whenWritable, { value: undefined }, `whenWritable ${when}`)
  }
  // A process handle: once the process is dead, its promise-returning methods reject too.
  const a = await startNode('sync_b')
  const p = a.spawn(() => {})
  await p.done
  for (const f of [() => p.call('srv', A('x')), () => p.rpc(a.name, 'm', 'f', []), () => p.receive()]) {
    let q: Promise<unknown> | undefined
    try {
      q = f()
    } catch (e) {
      assert.unreachable(`a dead process's method threw synchronously: ${String(e)}`)
    }
    assert.instance(await q!.catch((e: unknown) => e), ProcessExitedError)
  }
})

test('callTimeout: a call given no timeout waits the node\'s callTimeout; a bad value is refused by the constructor', async () => {
  for (const bad of [-1, Number.NaN, '5000'] as unknown as number[])
    assert.throws(
      () => new Node({ name: 'ct_bad@127.0.0.1', cookie: 'sesame', epmd: false, callTimeout: bad, logger: silentLogger }),
      (e: unknown) => e instanceof DistConfigError,
    )
  const n = new Node({ name: 'ct_a@127.0.0.1', cookie: 'sesame', epmd: false, listenHost: '127.0.0.1', callTimeout: 40, logger: silentLogger })
  started.push(n)
  await n.start()
  await n.startGenServer({ init: () => null, handleCall: () => ({ noreply: true }) }, { name: 'mute' })
  // (The signal only bounds the test: it sets no timeout.)
  const bound = new AbortController()
  const timer = setTimeout(() => bound.abort(), 2000)
  const e = await n.call('mute', A('x'), { signal: bound.signal }).catch((x: unknown) => x)
  clearTimeout(timer)
  assert.instance(e, TimeoutError)
  assert.is((e as TimeoutError).timeout, 40)
})

test('a timeout that is negative, NaN or not a number is BadArgError everywhere one is taken, and nothing is sent', async () => {
  const a = await startNode('to_a')
  const b = await startNode('to_b')
  let served = 0
  await b.startGenServer<null>({ init: () => null, handleCall: () => ((served += 1), { reply: A('ok') }) }, { name: 'srv' })
  b.registerFunction('m', 'f', () => ((served += 1), A('ok')))
  const srv = tuple(A('srv'), b.name)
  await a.connect(b.name)
  const bad = [-5, -Infinity, Number.NaN, '100'] as unknown as number[]
  for (const timeout of bad) {
    const attempts: Record<string, () => Promise<unknown>> = {
      call: () => a.call(srv, A('x'), { timeout }),
      rpc: () => a.rpc(b.name, 'm', 'f', [], { timeout }),
      receive: () => a.withProcess((self) => self.receive(undefined, { timeout })),
      startGenServer: () => a.startGenServer({ init: () => null }, { timeout }),
      connect: () => a.connect('to_nobody@127.0.0.1', { timeout }),
      ping: () => a.ping(b.name, { timeout }),
    }
    for (const [what, f] of Object.entries(attempts)) {
      const e = await f().then((v) => ({ value: v }), (x: unknown) => x)
      assert.instance(e, BadArgError, `${what} with timeout ${String(timeout)}: ${String((e as Error).message ?? JSON.stringify(e))}`)
    }
  }
  await new Promise((r) => setTimeout(r, 50))
  assert.is(served, 0, 'a call or rpc with a bad timeout sent nothing')
  // 0 and Infinity are timeouts: 0 only looks, Infinity waits.
  assert.is(await a.call(srv, A('x'), { timeout: Infinity }), A('ok'))
  assert.instance(await a.withProcess((self) => self.receive(undefined, { timeout: 0 })).catch((x: unknown) => x), TimeoutError)
})

test('a taken listen port: start() rejects with DistListenError ERR_DIST_LISTEN naming the port, reported once (not logged too)', async () => {
  const blocker = net.createServer()
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()))
  const taken = (blocker.address() as net.AddressInfo).port
  const lines: string[] = []
  const log = (level: string) => (m: string) => void lines.push(`${level}: ${m}`)
  const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }
  const n = new Node({ name: 'listen_a@127.0.0.1', cookie: 'sesame', epmd: false, listenHost: '127.0.0.1', listenPort: taken, logger })
  started.push(n)
  try {
    const e = await n.start().then(() => undefined, (x: unknown) => x)
    assert.instance(e, DistListenError)
    assert.instance(e, DistError)
    const err = e as DistListenError
    assert.is(err.code, 'ERR_DIST_LISTEN')
    assert.is(err.port, taken)
    assert.is(err.host, '127.0.0.1')
    assert.is(err.message, `cannot listen for distribution connections on 127.0.0.1:${taken}: EADDRINUSE`)
    assert.is((err.cause as { code?: string }).code, 'EADDRINUSE')
    await new Promise((r) => setTimeout(r, 20))
    assert.equal(lines.filter((l) => /EADDRINUSE|listen/i.test(l)), [], 'the rejection is the only report')
  } finally {
    await new Promise<void>((r) => blocker.close(() => r()))
  }
})

test('signals sent before the connection exists are queued and arrive in order', async () => {
  const a = await startNode('qa')
  const b = await startNode('qb')
  const got: Term[] = []
  const sink = b.spawn(
    async (self) => {
      for (let i = 0; i < 2001; i++) got.push(await self.receive())
    },
    { name: 'sink' },
  )
  assert.equal(a.nodes(), [])
  const sender = a.spawn((self) => {
    for (let i = 0; i < 1000; i++) self.send(sink.pid, i)
    self.send(tuple(A('sink'), b.name), 'middle')
    for (let i = 1000; i < 2000; i++) self.send(sink.pid, i)
  })
  await sender.done
  await sink.done
  assert.is(got.length, 2001)
  assert.equal(got.slice(0, 1000), Array.from({ length: 1000 }, (_, i) => i))
  assert.is(got[1000], 'middle')
  assert.equal(got.slice(1001), Array.from({ length: 1000 }, (_, i) => i + 1000))
  assert.equal(a.nodes(), [b.name])
})

test('gen_server call, rpc and ping between two TypeScript nodes', async () => {
  const a = await startNode('ca')
  const b = await startNode('cb')
  await b.startGenServer<number>({ init: () => 1, handleCall: (req, _f, n) => ({ reply: tuple(req, n), state: n + 1 }) }, { name: 'srv' })
  assert.ok(termEquals(await a.call(tuple(A('srv'), b.name), A('x')), tuple(A('x'), 1)))
  b.registerFunction('m', 'f', ([x]) => {
    throw new ErlangThrow(x)
  })
  const e = await a.rpc(b.name, 'm', 'f', [A('ball')]).catch((x) => x)
  assert.instance(e, ErlangThrow)
  assert.is(await a.ping(b.name), 'pong')
  assert.is(await a.ping('nobody@127.0.0.1', { timeout: 500 }), 'pang')
  // A timeout of Infinity (or past 2^31 - 1 ms) waits: setTimeout alone fired it at once (TimeoutOverflowWarning).
  const warnings: Error[] = []
  const onWarning = (w: Error) => warnings.push(w)
  process.on('warning', onWarning)
  try {
    assert.is(await a.ping(b.name, { timeout: Infinity }), 'pong')
    assert.is(await a.ping(b.name, { timeout: 2 ** 31 }), 'pong')
    await new Promise((r) => setImmediate(r))
    assert.equal(warnings.map((w) => w.name), [], 'no TimeoutOverflowWarning')
  } finally {
    process.off('warning', onWarning)
  }
})

test('a connection that drops: links on both sides get noconnection, monitors DOWN, calls NoConnectionError', async () => {
  const a = await startNode('da')
  const b = await startNode('db')
  const remote = b.spawn((self) => self.receive(() => false), { name: 'remote' })
  const linked = a.spawn(async (self) => {
    self.link(remote.pid)
    await self.receive(() => false)
  })
  const downs: Term[] = []
  const watcher = a.spawn(async (self) => {
    const ref = self.monitor(remote.pid)
    downs.push(ref, await self.receive())
  })
  await a.call(tuple(A('nothing'), b.name), A('x')).catch(() => undefined) // the connection is up
  assert.ok(remote.isLinked(linked.pid))
  const manager = (b as unknown as { manager: { connection(n: Term): { close(r: string): void } } }).manager
  manager.connection(a.name).close('test drops it')
  assert.is(await linked.done, A('noconnection'))
  assert.is(await remote.done, A('noconnection'))
  await watcher.done
  assert.ok(termEquals(downs[1], tuple(A('DOWN'), downs[0], A('process'), remote.pid, A('noconnection'))))
})

test('a node that stops ends its processes with shutdown; peers see it; later calls fail NoConnectionError', async () => {
  const a = await startNode('sa')
  const b = await startNode('sb')
  const remote = b.spawn((self) => self.receive(() => false), { name: 'remote' })
  let seen: Term | undefined
  const linked = a.spawn(
    async (self) => {
      self.link(remote.pid)
      seen = await self.receive()
    },
    { trapExit: true },
  )
  await a.call(tuple(A('nothing'), b.name), A('x')).catch(() => undefined)
  await b.stop()
  assert.is(await remote.done, A('shutdown'))
  await linked.done
  assert.ok(termEquals(seen!, tuple(A('EXIT'), remote.pid, A('shutdown'))))
  const err = await a.call(tuple(A('remote'), b.name), A('x'), { timeout: 2000 }).catch((x) => x)
  assert.instance(err, NoConnectionError)
})

test('a message to a node that does not exist is dropped; a monitor there gets noconnection', async () => {
  const a = await startNode('ea')
  const ghost = new Pid(A('ghost@127.0.0.1'), 1, 0, 1)
  const r = await a.withProcess(async (self) => {
    self.send(ghost, 'lost')
    const ref = self.monitor(ghost)
    const d = (await self.receive()) as Tuple
    return [d, tuple(A('DOWN'), ref, A('process'), ghost, A('noconnection'))]
  })
  assert.ok(termEquals(r[0], r[1]))
})

test.run()
