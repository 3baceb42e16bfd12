import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { once } from 'node:events'
import * as net from 'node:net'
import { PassThrough } from 'node:stream'
import { FrameTooLargeError } from './errors.js'
import { adoptForFrames, FrameReader } from './frame-reader.js'

const SLAB = 1024

function frame4(body: Buffer): Buffer {
  const b = Buffer.alloc(4 + body.length)
  b.writeUInt32BE(body.length)
  body.copy(b, 4)
  return b
}

/** Bodies of every kind: ticks, small ones, one that fills most of a slab, ones larger than any slab. */
const bodies = [
  Buffer.from('hello'),
  Buffer.alloc(0),
  Buffer.alloc(300, 7),
  Buffer.alloc(SLAB - 4, 1),
  Buffer.from('z'),
  Buffer.alloc(5 * SLAB + 3, 9),
  Buffer.alloc(0),
  Buffer.alloc(700, 5),
  Buffer.alloc(SLAB - 3, 2),
  Buffer.from('end'),
].map((b, i) => (b.length > 0 ? (b.fill(i + 1, 0, 1), b) : b))
const stream = Buffer.concat(bodies.map(frame4))

/** What the socket does: asks for a buffer, reads up to `chunk` bytes into it, reports the count. */
function feed(r: FrameReader, bytes: Buffer, chunk: number): void {
  let off = 0
  while (off < bytes.length) {
    const into = r.nextBuffer()
    assert.ok(into.length > 0, 'an empty buffer lent')
    const n = Math.min(into.length, chunk, bytes.length - off)
    bytes.copy(into, 0, off, off + n)
    off += n
    r.onRead(n)
  }
}

test('frames and ticks come out whole for any read size, in the slab or read in place', () => {
  for (const chunk of [1, 3, 7, 64, 1000, 4096, 100_000]) {
    const got: Buffer[] = []
    const r = new FrameReader({ maxFrameSize: 1 << 20, slabSize: SLAB, onFrame: (f) => (got.push(Buffer.from(f)), false) })
    r.release()
    feed(r, stream, chunk)
    assert.equal(got, bodies, `reads of ${chunk}`)
    assert.is(r.buffered, 0)
  }
})

test('a frame still referenced keeps its bytes; memory is reused only when nothing is', () => {
  const kept: Array<{ view: Buffer; copy: Buffer }> = []
  const r = new FrameReader({
    maxFrameSize: 1 << 20,
    slabSize: SLAB,
    // Every other frame is "still referenced" (as a decoded binary view would be).
    onFrame: (f) => {
      if (f.length === 0 || kept.length % 2 === 1) return (kept.push({ view: f, copy: Buffer.from(f) }), false)
      kept.push({ view: f, copy: Buffer.from(f) })
      return true
    },
  })
  r.release()
  for (let round = 0; round < 50; round++) feed(r, stream, 37 + round)
  const referenced = kept.filter((_, i) => i % 2 === 0 && kept[i].view.length > 0)
  assert.ok(referenced.length >= 150, `only ${referenced.length} referenced frames`)
  for (const k of referenced) assert.ok(k.view.equals(k.copy), 'a referenced frame was overwritten')

  // Nothing referenced: the same slab, from its start, for every small frame.
  const seen = new Set<ArrayBufferLike>()
  const r2 = new FrameReader({ maxFrameSize: 1 << 20, slabSize: SLAB, onFrame: (f) => (seen.add(f.buffer), false) })
  r2.release()
  const small = Buffer.concat(Array.from({ length: 500 }, (_, i) => frame4(Buffer.alloc(20 + (i % 50), i))))
  let off = 0
  while (off < small.length) {
    const into = r2.nextBuffer()
    const n = Math.min(into.length, 24 + (off % 13), small.length - off)
    small.copy(into, 0, off, off + n)
    off += n
    r2.onRead(n)
  }
  assert.is(seen.size, 1, 'small unreferenced frames came from more than one slab')
})

test('a frame larger than the slab is read into its own buffer, in place, and is the whole frame', () => {
  const body = Buffer.alloc(10 * SLAB, 3)
  const got: Buffer[] = []
  const r = new FrameReader({ maxFrameSize: 1 << 20, slabSize: SLAB, onFrame: (f) => (got.push(f), true) })
  r.release()
  const bytes = frame4(body)
  const lent = new Set<ArrayBufferLike>()
  let off = 0
  while (off < bytes.length) {
    const into = r.nextBuffer()
    if (off > 100) lent.add(into.buffer)
    const n = Math.min(into.length, 3000, bytes.length - off)
    bytes.copy(into, 0, off, off + n)
    off += n
    r.onRead(n)
  }
  assert.is(got.length, 1)
  assert.ok(got[0].equals(body))
  assert.is(got[0].byteOffset, 0)
  assert.is(got[0].buffer.byteLength, body.length, 'the frame has a buffer of exactly its size')
  assert.equal([...lent], [got[0].buffer], 'every read after the length went straight into the frame')
})

test('a length over the maximum throws FrameTooLargeError as soon as it arrives', () => {
  const r = new FrameReader({ maxFrameSize: 5000, slabSize: SLAB, onFrame: () => false })
  r.release()
  const into = r.nextBuffer()
  into.writeUInt32BE(5001)
  assert.throws(() => r.onRead(4), (e: unknown) => e instanceof FrameTooLargeError && e.length === 5001)
  // At the maximum: taken.
  const got: Buffer[] = []
  const ok = new FrameReader({ maxFrameSize: 5000, slabSize: SLAB, onFrame: (f) => (got.push(f), false) })
  ok.release()
  feed(ok, frame4(Buffer.alloc(5000, 1)), 999)
  assert.is(got[0].length, 5000)
})

test('bytes pushed before release() and a read lent before it land in order', () => {
  const got: Buffer[] = []
  const r = new FrameReader({ maxFrameSize: 1 << 20, slabSize: SLAB, onFrame: (f) => (got.push(Buffer.from(f)), false) })
  // The socket takes its buffer when it is created, before the handshake's tail is pushed.
  const lentEarly = r.nextBuffer()
  r.push(stream.subarray(0, 20))
  r.release()
  const n = Math.min(lentEarly.length, 50)
  stream.copy(lentEarly, 0, 20, 20 + n)
  r.onRead(n)
  feed(r, stream.subarray(20 + n), 333)
  assert.equal(got, bodies)
})

test('adoptForFrames: an accepted TCP socket reads through the reader; bytes it had buffered come back', async () => {
  const got: Buffer[] = []
  const r = new FrameReader({ maxFrameSize: 1 << 20, slabSize: SLAB, onFrame: (f) => (got.push(Buffer.from(f)), false) })
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
  let adoptedSocket: net.Socket | undefined
  try {
    const [accepted] = (await once(server, 'connection')) as [net.Socket]
    // Bytes that arrive while the first owner reads them with 'data' events and then pauses.
    client.write(stream.subarray(0, 10))
    await once(accepted, 'data').then(([first]) => assert.equal(first, stream.subarray(0, 10)))
    accepted.pause()
    client.write(stream.subarray(10, 30))
    await new Promise((res) => setTimeout(res, 50))
    const adopted = adoptForFrames(accepted, r, r.onRead)
    assert.ok(adopted, 'a plain TCP socket is adopted')
    adoptedSocket = adopted.socket
    assert.ok(accepted.destroyed, 'the old socket gives up its handle')
    assert.equal(Buffer.concat(adopted.buffered), stream.subarray(10, 30))
    r.push(stream.subarray(0, 30))
    r.release()
    adopted.socket.resume()
    client.write(stream.subarray(30))
    const deadline = Date.now() + 5000
    while (got.length < bodies.length && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10))
    assert.equal(got, bodies)
    // Writing and closing work on the new socket, and the server sees its connection end.
    adopted.socket.write('bye')
    const [reply] = (await once(client, 'data')) as [Buffer]
    assert.is(reply.toString(), 'bye')
    // The server still counts the connection, now through the new socket, until that one closes.
    const count = () => new Promise<number>((res, rej) => server.getConnections((e, n) => (e ? rej(e) : res(n))))
    assert.is(await count(), 1)
    adopted.socket.destroy()
    await once(adopted.socket, 'close')
    assert.is(await count(), 0)
  } finally {
    adoptedSocket?.destroy()
    client.destroy()
    await new Promise<void>((res) => server.close(() => res()))
  }
})

test('adoptForFrames leaves anything but a plain TCP socket alone', () => {
  const r = new FrameReader({ maxFrameSize: 100, onFrame: () => false })
  const p = new PassThrough()
  assert.is(adoptForFrames(p, r, r.onRead), undefined)
  assert.not.ok(p.destroyed)
  const unconnected = new net.Socket()
  assert.is(adoptForFrames(unconnected, r, r.onRead), undefined)
  unconnected.destroy()
})

test.run()
