import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { once } from 'node:events'
import * as net from 'node:net'
import { atom, ImproperList, Ref, termEquals, Tuple } from '../etf/terms.js'
import type { Logger } from '../logger.js'
import { names } from '../epmd/client.js'
import type { ControlMessage } from './control.js'
import { DistConfigError } from './errors.js'
import { DistManager, fullNodeName, type DistManagerOptions } from './manager.js'
import { isAuthCall } from './net_kernel.js'

function logger(): Logger & { lines: string[] } {
  const lines: string[] = []
  const rec = (level: string) => (m: string) => void lines.push(`${level}: ${m}`)
  return { lines, debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') }
}

const started: DistManager[] = []
test.after.each(async () => {
  await Promise.all(started.splice(0).map((m) => m.stop()))
})

/** Managers that find each other without EPMD: lookup answers from this table. */
const ports = new Map<string, number>()
async function node(name: string, opts: Partial<DistManagerOptions> = {}): Promise<DistManager & { logs: ReturnType<typeof logger> }> {
  const log = logger()
  const m = new DistManager({
    name: `${name}@127.0.0.1`,
    cookie: 'sesame',
    epmd: false,
    listenHost: '127.0.0.1',
    lookup: async (alive) => ports.get(alive),
    logger: log,
    ...opts,
  }) as DistManager & { logs: ReturnType<typeof logger> }
  m.logs = log
  await m.start()
  started.push(m)
  ports.set(name, m.port)
  return m
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port
      s.close(() => resolve(p))
    })
  })
}

test('node names are completed as -sname / -name would', () => {
  assert.match(fullNodeName('x'), /^x@[^.@]+$/)
  assert.is(fullNodeName('x@1.2.3.4', true), 'x@1.2.3.4')
  assert.throws(() => fullNodeName('x@'))
})

test('netTicktime must be a positive number of seconds (0 dropped every connection at once)', () => {
  for (const netTicktime of [0, -1, Number.NaN, Infinity, '60' as unknown as number])
    assert.throws(() => new DistManager({ name: 'tick@127.0.0.1', cookie: 'c', netTicktime }), (e: unknown) => e instanceof DistConfigError, String(netTicktime))
  new DistManager({ name: 'tick@127.0.0.1', cookie: 'c', netTicktime: 0.5 })
})

test('ping both ways: pong, nodeup on both sides, nodes() lists the peer', async () => {
  const a = await node('a1')
  const b = await node('b1')
  const up = once(b, 'nodeup')
  assert.is(await a.ping('b1@127.0.0.1'), 'pong')
  const [who] = await up
  assert.is(who, a.nodeName)
  assert.is(await b.ping(a.nodeName), 'pong')
  assert.equal(a.nodes(), [b.nodeName])
  assert.equal(b.nodes(), [a.nodeName])
  assert.ok(a.logs.lines.some((l) => l.startsWith('info:') && l.includes('b1@127.0.0.1 up')))
})

test('concurrent connect() calls share one connection', async () => {
  const a = await node('a2')
  await node('b2')
  const cs = await Promise.all([a.connect('b2@127.0.0.1'), a.connect('b2@127.0.0.1'), a.connect('b2@127.0.0.1')])
  assert.ok(cs[0] === cs[1] && cs[1] === cs[2])
  assert.is(a.nodes().length, 1)
})

test('connect timeouts past 2^31 - 1 ms (and Infinity) wait: setTimeout alone fired them after 1 ms', async () => {
  const a = await node('a2t')
  await node('b2t')
  for (const timeout of [2 ** 31, Infinity]) {
    const c = await a.connect('b2t@127.0.0.1', { timeout })
    assert.not.ok(c.closed)
    c.close()
    await new Promise((r) => setTimeout(r, 20))
  }
})

test('simultaneous connect both ways: one connection survives and both calls get it', async () => {
  for (let i = 0; i < 5; i++) {
    const a = await node(`sa${i}`)
    const b = await node(`sb${i}`)
    const [ca, cb] = await Promise.all([a.connect(b.nodeName), b.connect(a.nodeName)])
    assert.ok(!ca.closed && !cb.closed)
    assert.is(a.nodes().length, 1)
    assert.is(b.nodes().length, 1)
    assert.is(await a.ping(b.nodeName), 'pong')
    assert.is(await b.ping(a.nodeName), 'pong')
    await a.stop()
    await b.stop()
  }
})

test('wrong cookie: pang, refusal warned of with the peer name, both ways, a good peer is still served', async () => {
  const a = await node('a3')
  const bad = await node('bad3', { cookie: 'wrong' })
  const good = await node('good3')
  assert.is(await bad.ping(a.nodeName), 'pang')
  assert.ok(a.logs.lines.some((l) => l.startsWith('warn:') && l.includes('bad3@127.0.0.1') && /cookie/.test(l)))
  assert.is(await a.ping(bad.nodeName), 'pang')
  assert.ok(bad.logs.lines.some((l) => l.startsWith('warn:') && l.includes('a3@127.0.0.1') && /cookie/.test(l)))
  assert.ok(a.logs.lines.some((l) => l.startsWith('warn: connection to bad3@127.0.0.1 failed') && /cookie/.test(l)))
  assert.is(await good.ping(a.nodeName), 'pong')
  assert.equal(a.nodes(), [good.nodeName])
})

test('an unknown node and an unreachable port are pang', async () => {
  const a = await node('a4')
  assert.is(await a.ping('nobody@127.0.0.1'), 'pang')
  ports.set('closed4', await freePort())
  assert.is(await a.ping('closed4@127.0.0.1'), 'pang')
})

test('stop(): the peer sees nodedown with a reason', async () => {
  const a = await node('a5')
  const b = await node('b5')
  await a.connect(b.nodeName)
  const down = once(b, 'nodedown')
  await a.stop()
  const [who, reason] = await down
  assert.is(who, a.nodeName)
  assert.type(reason, 'string')
  assert.equal(b.nodes(), [])
})

test('is_auth with an alias tag is answered by ALIAS_SEND to the alias; other messages reach control', async () => {
  const a = await node('a6')
  const b = await node('b6')
  const conn = await b.connect(a.nodeName)
  const got: ControlMessage[] = []
  b.on('control', (m) => got.push(m))
  const alias = b.makeRef()
  const tag = new ImproperList([atom('alias')], alias)
  const caller = b.makePid()
  conn.send({ kind: 'REG_SEND', from: caller, toName: atom('net_kernel'), message: isAuthCall(caller, tag, b.nodeName) })
  const plain = b.makeRef()
  conn.send({ kind: 'REG_SEND', from: caller, toName: atom('net_kernel'), message: isAuthCall(caller, plain, b.nodeName) })
  const seenByA: ControlMessage[] = []
  a.on('control', (m) => seenByA.push(m))
  // gen:call's monitor on net_kernel is taken by the manager too.
  const mon = b.makeRef()
  conn.send({ kind: 'MONITOR_P', from: caller, to: atom('net_kernel'), ref: mon })
  conn.send({ kind: 'DEMONITOR_P', from: caller, to: atom('net_kernel'), ref: mon })
  conn.send({ kind: 'REG_SEND', from: caller, toName: atom('someone'), message: 'hi' })
  while (got.length < 2 || seenByA.length < 1) await new Promise((r) => setTimeout(r, 5))
  const [r1, r2] = got
  assert.ok(r1.kind === 'ALIAS_SEND' && termEquals(r1.alias, alias))
  assert.ok(r1.kind === 'ALIAS_SEND' && termEquals(r1.message, new Tuple([tag, atom('yes')])))
  assert.ok(r2.kind === 'SEND_SENDER' && termEquals(r2.to, caller) && termEquals(r2.message, new Tuple([plain, atom('yes')])))
  assert.is(seenByA.length, 1)
  assert.ok(seenByA[0].kind === 'REG_SEND' && seenByA[0].toName === atom('someone'))
})

test('stop() closes incoming sockets still in the handshake', async () => {
  const a = await node('a8', { setupTime: 60_000 })
  const raw = net.connect(a.port, '127.0.0.1')
  await once(raw, 'connect')
  await new Promise((r) => setTimeout(r, 20))
  const closed = once(raw, 'close')
  raw.on('error', () => {})
  await a.stop()
  await closed
})

test('a throwing nodeup listener is logged; the connection stays usable', async () => {
  const a = await node('a9')
  const b = await node('b9')
  a.on('nodeup', () => {
    throw new Error('listener bug')
  })
  assert.is(await a.ping(b.nodeName), 'pong')
  assert.ok(a.logs.lines.some((l) => l.startsWith('error:') && l.includes('listener bug')))
  assert.equal(a.nodes(), [b.nodeName])
})

test('makePid / makeRef are unique and carry the node and creation', async () => {
  const a = await node('a7', { creation: 1234 })
  const p1 = a.makePid()
  const p2 = a.makePid()
  assert.not.ok(termEquals(p1, p2))
  assert.is(p1.creation, 1234)
  assert.is(p1.node, a.nodeName)
  const refs = new Set(Array.from({ length: 1000 }, () => a.makeRef().ids.join('.')))
  assert.is(refs.size, 1000)
  assert.instance(a.makeRef(), Ref)
})

test('no EPMD on the port: the manager starts an embedded one, registers, and others find it there', async () => {
  const epmdPort = await freePort()
  const a = new DistManager({ name: 'ea@127.0.0.1', cookie: 'sesame', epmdPort, listenHost: '127.0.0.1', logger: logger() })
  await a.start()
  started.push(a)
  assert.ok(a.embeddedEpmd)
  const b = new DistManager({ name: 'eb@127.0.0.1', cookie: 'sesame', epmdPort, listenHost: '127.0.0.1', logger: logger() })
  await b.start()
  started.push(b)
  assert.is(b.embeddedEpmd, undefined)
  const registered = (await names('127.0.0.1', epmdPort)).map((n) => n.name).sort()
  assert.equal(registered, ['ea', 'eb'])
  assert.ok(a.creation > 0)
  assert.is(await b.ping(a.nodeName), 'pong')
})

test('embedded EPMD off: start() fails when no EPMD answers', async () => {
  const epmdPort = await freePort()
  const a = new DistManager({ name: 'ec@127.0.0.1', cookie: 'x', epmdPort, embeddedEpmd: false, logger: logger() })
  try {
    await a.start()
    assert.unreachable()
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERR_EPMD_CONNECT')
  }
})

test.run()
