import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { once } from 'node:events'
import { atom, Pid, Ref, termEquals, Tuple } from '../etf/terms.js'
import type { Logger } from '../logger.js'
import { Connection, type ConnectionOptions } from './connection.js'
import type { ControlMessage } from './control.js'
import { duplexPair, type DuplexEnd } from './duplex-pair.js'
import { ConnectionClosedError, WriteQueueFullError } from './errors.js'
import { DEFAULT_FLAGS } from './flags.js'
import { DistWriter } from './header.js'

const A = atom('a@h')
const B = atom('b@h')
const pa = new Pid(A, 1, 0, 1)
const pb = new Pid(B, 1, 0, 1)

function logger(): Logger & { lines: string[] } {
  const lines: string[] = []
  const rec = (level: string) => (m: string) => void lines.push(`${level}: ${m}`)
  return { lines, debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') }
}

function pair(opts: Partial<ConnectionOptions> = {}) {
  const [x, y] = duplexPair()
  const base = { flags: DEFAULT_FLAGS, peerCreation: 1, logger: logger(), ...opts }
  const a = new Connection({ ...base, socket: x, peer: B })
  const b = new Connection({ ...base, socket: y, peer: A })
  return { a, b, x, y }
}

function collect(c: Connection): ControlMessage[] {
  const got: ControlMessage[] = []
  c.on('control', (m) => got.push(m))
  return got
}

// In-memory streams hold no handle and the tick timer is unref'd: keep the event loop alive during tests.
const keepAlive = setInterval(() => {}, 1000)
test.after(() => clearInterval(keepAlive))

const until = async (cond: () => boolean) => {
  while (!cond()) await new Promise((r) => setTimeout(r, 5))
}

test('messages arrive in order, decoded to ControlMessage', async () => {
  const { a, b } = pair()
  const got = collect(b)
  for (let i = 0; i < 1000; i++) a.send({ kind: 'SEND_SENDER', from: pa, to: pb, message: i })
  a.send({ kind: 'REG_SEND', from: pa, toName: atom('x'), message: new Tuple([atom('big'), Buffer.alloc(200_000, 1)]) })
  await until(() => got.length === 1001)
  assert.ok(got.slice(0, 1000).every((m, i) => m.kind === 'SEND_SENDER' && m.message === i))
  const last = got[1000]
  assert.ok(last.kind === 'REG_SEND' && termEquals(last.message, new Tuple([atom('big'), Buffer.alloc(200_000, 1)])))
  a.close()
})

test('the handshake tail is read first', async () => {
  const [x, y] = duplexPair()
  const w = new DistWriter({ flags: DEFAULT_FLAGS })
  const enc = Buffer.concat(w.encode(new Tuple([1, pb, pa])))
  const c = new Connection({ socket: y, peer: B, flags: DEFAULT_FLAGS, peerCreation: 1, tail: enc })
  const got = collect(c)
  await until(() => got.length === 1)
  assert.is(got[0].kind, 'LINK')
  c.close()
  x.destroy()
})

test('one message with several fragments goes out in one corked write', async () => {
  const { a, b, x } = pair({ fragmentSize: 1000 })
  const got = collect(b)
  const before = x.writevCalls
  a.send({ kind: 'SEND', to: pb, message: Buffer.alloc(50_000, 3) })
  await until(() => got.length === 1)
  assert.is(x.writevCalls - before, 1)
  a.close()
})

test('every message sent in one turn leaves in one writev, in order; the next turn makes the next writev', async () => {
  const { a, b, x } = pair()
  const got = collect(b)
  const before = x.writevCalls
  for (let i = 0; i < 100; i++) a.send({ kind: 'SEND_SENDER', from: pa, to: pb, message: i })
  assert.is(x.writevCalls - before, 0, 'nothing is written before the turn ends')
  await until(() => got.length === 100)
  assert.is(x.writevCalls - before, 1)
  assert.ok(got.every((m, i) => m.kind === 'SEND_SENDER' && m.message === i))
  a.send({ kind: 'SEND_SENDER', from: pa, to: pb, message: 100 })
  a.send({ kind: 'SEND_SENDER', from: pa, to: pb, message: 101 })
  await until(() => got.length === 102)
  assert.is(x.writevCalls - before, 2)
  a.close()
})

test('a turn\'s frames past the socket\'s own high-water mark still leave in one writev (the connection\'s highWaterMark is the limit)', async () => {
  const { a, b, x } = pair()
  const got = collect(b)
  const before = x.writevCalls
  // 10 x 5 kB: well past the stream's 16 KiB, well under the connection's 1 MiB.
  for (let i = 0; i < 10; i++) assert.ok(a.send({ kind: 'SEND', to: pb, message: Buffer.alloc(5000, i) }))
  await until(() => got.length === 10)
  assert.is(x.writevCalls - before, 1)
  assert.ok(got.every((m, i) => m.kind === 'SEND' && (m.message as Buffer)[0] === i))
  a.close()
})

test('messages sent in the turn that closes the connection still go out before it closes', async () => {
  const { a, b } = pair()
  const got = collect(b)
  const bClosed = once(b, 'close')
  a.send({ kind: 'EXIT', from: pa, to: pb, reason: atom('shutdown') })
  a.close('bye')
  await bClosed
  assert.is(got.length, 1)
  assert.is(got[0].kind, 'EXIT')
})

test('an idle connection ticks; a silent peer is declared down with net_tick_timeout', async () => {
  const [x, y] = duplexPair()
  const log = logger()
  const c = new Connection({ socket: x, peer: B, flags: DEFAULT_FLAGS, peerCreation: 1, netTicktime: 0.2, logger: log })
  const seen: Buffer[] = []
  y.on('data', (d: Buffer) => seen.push(d))
  const [reason] = await once(c, 'close')
  assert.is(reason, 'net_tick_timeout')
  assert.ok(seen.length > 0 && Buffer.concat(seen).equals(Buffer.alloc(Buffer.concat(seen).length)), 'only ticks were sent')
  assert.ok(log.lines.some((l) => l.startsWith('info:') && l.includes('b@h')))
  y.destroy()
})

test('two ticking sides keep each other alive', async () => {
  const { a, b } = pair({ netTicktime: 0.1 })
  let closed = false
  a.on('close', () => (closed = true))
  b.on('close', () => (closed = true))
  await new Promise((r) => setTimeout(r, 400))
  assert.not.ok(closed)
  a.close()
})

test('a malformed frame closes that connection only, with the reason logged', async () => {
  const { a: good, b: goodPeer } = pair()
  const [x, y] = duplexPair()
  const log = logger()
  const c = new Connection({ socket: x, peer: B, flags: DEFAULT_FLAGS, peerCreation: 1, logger: log })
  y.write(Buffer.from([0, 0, 0, 3, 131, 99, 0]))
  const [reason] = await once(c, 'close')
  assert.match(reason, /ERR_DIST_MALFORMED_FRAME/)
  assert.ok(log.lines.some((l) => l.startsWith('warn:') && l.includes('b@h')))
  const got = collect(goodPeer)
  good.send({ kind: 'LINK', from: pa, to: pb })
  await until(() => got.length === 1)
  good.close()
})

test('an oversized frame closes the connection before its body is buffered', async () => {
  const [x, y] = duplexPair()
  const c = new Connection({ socket: x, peer: B, flags: DEFAULT_FLAGS, peerCreation: 1, maxFrameSize: 1000, logger: logger() })
  y.write(Buffer.from([0, 0, 0x10, 0]))
  const [reason] = await once(c, 'close')
  assert.match(reason, /ERR_DIST_FRAME_TOO_LARGE/)
})

test('a malformed control tuple closes the connection', async () => {
  const [x, y] = duplexPair()
  const c = new Connection({ socket: x, peer: B, flags: DEFAULT_FLAGS, peerCreation: 1, logger: logger() })
  const w = new DistWriter({ flags: DEFAULT_FLAGS })
  y.write(Buffer.concat(w.encode(new Tuple([99, pa]))))
  const [reason] = await once(c, 'close')
  assert.match(reason, /ERR_DIST_MALFORMED_CONTROL/)
})

test('backpressure: send() turns false, whenWritable() waits for the reader, the hard limit throws', async () => {
  const [x, y] = duplexPair({ highWaterMark: 16 * 1024 })
  const c = new Connection({
    socket: x,
    peer: B,
    flags: DEFAULT_FLAGS,
    peerCreation: 1,
    highWaterMark: 100_000,
    maxQueueSize: 1_000_000,
    logger: logger(),
  })
  // y is not read: nothing drains.
  const chunk = Buffer.alloc(50_000, 1)
  let sent = 0
  while (c.send({ kind: 'SEND', to: pb, message: chunk })) sent++
  assert.ok(sent < 10)
  assert.ok(c.pendingBytes >= 100_000)
  let writable = false
  const w = c.whenWritable().then(() => (writable = true))
  await new Promise((r) => setTimeout(r, 20))
  assert.not.ok(writable)
  assert.throws(
    () => {
      for (let i = 0; i < 100; i++) c.send({ kind: 'SEND', to: pb, message: chunk })
    },
    (e: unknown) => e instanceof WriteQueueFullError,
  )
  const r = new Connection({ socket: y, peer: A, flags: DEFAULT_FLAGS, peerCreation: 1, logger: logger() })
  const got = collect(r)
  await w
  assert.ok(writable)
  await until(() => got.length > sent)
  c.close()
})

test('maxQueueSize counts what is sent above the high-water mark: one large message, and small ones behind it, go through', async () => {
  const [x, y] = duplexPair({ highWaterMark: 16 * 1024 })
  const c = new Connection({ socket: x, peer: B, flags: DEFAULT_FLAGS, peerCreation: 1, highWaterMark: 100_000, maxQueueSize: 1_000_000, logger: logger() })
  // y is not read yet. A result of 3 MB, three times maxQueueSize, sent on an empty queue:
  assert.is(c.send({ kind: 'SEND', to: pb, message: Buffer.alloc(3_000_000, 7) }), false)
  // Replies to other callers queue behind it: 900 KB of them, under the limit, still go.
  for (let i = 0; i < 900; i++) c.send({ kind: 'SEND', to: pb, message: Buffer.alloc(1000, i & 0xff) })
  // A sender that goes on regardless passes the limit.
  assert.throws(
    () => {
      for (let i = 0; i < 200; i++) c.send({ kind: 'SEND', to: pb, message: Buffer.alloc(1000) })
    },
    (e: unknown) => e instanceof WriteQueueFullError && /more than 1000000 of them/.test((e as Error).message),
  )
  const r = new Connection({ socket: y, peer: A, flags: DEFAULT_FLAGS, peerCreation: 1, logger: logger() })
  const got = collect(r)
  await c.whenWritable()
  await until(() => got.length >= 901)
  assert.is((got[0] as { message: Buffer }).message.length, 3_000_000)
  // Below the mark again, the count starts over.
  c.send({ kind: 'SEND', to: pb, message: Buffer.alloc(2_000_000) })
  c.close()
  r.close()
})

test('a socket error (the peer reset the connection) closes it as connection_closed, as erl reports it, and is logged', async () => {
  const log = logger()
  const { b, y } = pair({ logger: log })
  const bClosed = once(b, 'close')
  y.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))
  const [reason] = await bClosed
  assert.is(reason, 'connection_closed')
  assert.ok(log.lines.some((l) => l.startsWith('info: ') && l.includes('ECONNRESET')), log.lines.join('\n'))
})

test('close: both sides see it; send() throws and whenWritable() rejects afterwards', async () => {
  const { a, b } = pair()
  const bClosed = once(b, 'close')
  a.close('bye')
  const [reason] = await bClosed
  assert.is(reason, 'connection_closed')
  assert.ok(a.closed)
  assert.throws(() => a.send({ kind: 'LINK', from: pa, to: pb }), (e: unknown) => e instanceof ConnectionClosedError)
  try {
    await a.whenWritable()
    assert.unreachable()
  } catch (e) {
    assert.instance(e, ConnectionClosedError)
    assert.is((e as ConnectionClosedError).reason, 'bye')
  }
})

test('a throwing control listener is logged and the connection stays up', async () => {
  const log = logger()
  const { a, b } = pair({ logger: log })
  let n = 0
  b.on('control', () => {
    n++
    if (n === 1) throw new Error('listener bug')
  })
  a.send({ kind: 'LINK', from: pa, to: pb })
  a.send({ kind: 'LINK', from: pa, to: pb })
  await until(() => n === 2)
  assert.not.ok(b.closed)
  assert.ok(log.lines.some((l) => l.startsWith('error:') && l.includes('listener bug')))
  a.close()
})

test('regression: signals in the name of another node, or for processes of another node, close the connection (erts: Invalid distribution message)', async () => {
  const C = atom('c@h')
  const pc = new Pid(C, 1, 0, 1)
  for (const ctl of [
    new Tuple([1, pc, pa]),
    new Tuple([19, pc, atom('x'), new Ref(C, 1, [1, 2, 3])]),
    new Tuple([8, pc, pa, atom('kill')]),
  ]) {
    const [x, y] = duplexPair()
    const log = logger()
    const c = new Connection({ socket: y, peer: B, flags: DEFAULT_FLAGS, peerCreation: 1, logger: log })
    const got = collect(c)
    const closed = once(c, 'close')
    x.write(Buffer.concat(new DistWriter({ flags: DEFAULT_FLAGS }).encode(ctl)))
    const [reason] = (await closed) as [string]
    assert.match(reason, /ERR_DIST_MALFORMED_CONTROL: .* of node c@h, not of the peer b@h/)
    assert.equal(got, [])
    assert.ok(log.lines.some((l) => /closing connection to b@h/.test(l)))
    x.destroy()
  }
  // With `self` known: an UNLINK_ID / LINK for a process of a third node is refused too (our answer would
  // carry that node's pid as its sender).
  for (const ctl of [new Tuple([35, 7, pb, pc]), new Tuple([1, pb, pc])]) {
    const [x, y] = duplexPair()
    const c = new Connection({ socket: y, peer: B, self: A, flags: DEFAULT_FLAGS, peerCreation: 1, logger: logger() })
    const closed = once(c, 'close')
    x.write(Buffer.concat(new DistWriter({ flags: DEFAULT_FLAGS }).encode(ctl)))
    const [reason] = (await closed) as [string]
    assert.match(reason, /ERR_DIST_MALFORMED_CONTROL: .* of node c@h, not a process of this node/)
    x.destroy()
  }
  // The peer's own pids, for ours, pass.
  const [x, y] = duplexPair()
  const c = new Connection({ socket: y, peer: B, self: A, flags: DEFAULT_FLAGS, peerCreation: 1, logger: logger() })
  const got = collect(c)
  x.write(Buffer.concat(new DistWriter({ flags: DEFAULT_FLAGS }).encode(new Tuple([1, pb, pa]))))
  await until(() => got.length === 1)
  c.close()
  x.destroy()
})

test.run()
