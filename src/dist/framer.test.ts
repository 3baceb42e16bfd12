import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { FrameTooLargeError } from './errors.js'
import { Framer } from './framer.js'

function frame4(body: Buffer): Buffer {
  const b = Buffer.alloc(4 + body.length)
  b.writeUInt32BE(body.length)
  body.copy(b, 4)
  return b
}

const bodies = [Buffer.from('hello'), Buffer.alloc(0), Buffer.from([131, 68, 0]), Buffer.alloc(300, 7), Buffer.from('z')]
const stream = Buffer.concat(bodies.map(frame4))

function drain(f: Framer): Buffer[] {
  const out: Buffer[] = []
  for (let m = f.next(); m !== undefined; m = f.next()) out.push(Buffer.from(m))
  return out
}

test('frames and ticks come out whole when the stream is split in two at every offset', () => {
  for (let cut = 0; cut <= stream.length; cut++) {
    const f = new Framer({ maxFrameSize: 1000 })
    const got: Buffer[] = []
    f.push(stream.subarray(0, cut))
    got.push(...drain(f))
    f.push(stream.subarray(cut))
    got.push(...drain(f))
    assert.equal(got, bodies, `cut at ${cut}`)
    assert.is(f.buffered, 0)
  }
})

test('frames come out whole when fed one byte at a time', () => {
  const f = new Framer({ maxFrameSize: 1000 })
  const got: Buffer[] = []
  for (const b of stream) {
    f.push(Buffer.of(b))
    got.push(...drain(f))
  }
  assert.equal(got, bodies)
})

test('a frame inside one chunk is a view of it (no copy); a frame across chunks is assembled', () => {
  const f = new Framer({ maxFrameSize: 1000 })
  f.push(stream)
  const first = f.next()!
  assert.is(first.buffer, stream.buffer)
  const g = new Framer({ maxFrameSize: 1000 })
  g.push(stream.subarray(0, 6))
  g.push(stream.subarray(6))
  assert.equal(g.next(), Buffer.from('hello'))
})

test('nextViews: a frame spanning three chunks comes out as three views of them, not copied', () => {
  const body = Buffer.alloc(3000)
  for (let i = 0; i < body.length; i++) body[i] = i % 253
  const whole = Buffer.concat([frame4(body), frame4(Buffer.from('next'))])
  const chunks = [whole.subarray(0, 1000), Buffer.from(whole.subarray(1000, 2500)), Buffer.from(whole.subarray(2500))]
  const f = new Framer({ maxFrameSize: 10_000 })
  const out: Buffer[] = []
  f.push(chunks[0])
  f.push(chunks[1])
  assert.is(f.nextViews(out), -1)
  assert.is(out.length, 0)
  f.push(chunks[2])
  assert.is(f.nextViews(out), 3000)
  assert.is(out.length, 3)
  assert.equal(
    out.map((v) => v.buffer),
    chunks.map((c) => c.buffer),
    'each view shares its chunk\'s memory',
  )
  assert.equal(Buffer.concat(out), body)
  assert.is(f.nextViews(out), 4)
  assert.is(out.length, 1)
  assert.is(out[0].buffer, chunks[2].buffer)
  assert.equal(out[0], Buffer.from('next'))
  assert.is(f.nextViews(out), -1)
  assert.is(f.buffered, 0)
})

test('nextViews: frames and ticks come out whole when the stream is split at every offset', () => {
  for (let cut = 0; cut <= stream.length; cut++) {
    const f = new Framer({ maxFrameSize: 1000 })
    const got: Buffer[] = []
    const out: Buffer[] = []
    for (const piece of [stream.subarray(0, cut), stream.subarray(cut)]) {
      f.push(piece)
      for (let n = f.nextViews(out); n >= 0; n = f.nextViews(out)) got.push(Buffer.concat(out, n))
    }
    assert.equal(got, bodies, `cut at ${cut}`)
  }
})

test('a zero length is a tick: an empty frame', () => {
  const f = new Framer({ maxFrameSize: 10 })
  f.push(Buffer.alloc(8))
  assert.is(f.next()!.length, 0)
  assert.is(f.next()!.length, 0)
  assert.is(f.next(), undefined)
})

test('an oversized length is refused as soon as the prefix arrives, before its body is buffered', () => {
  const f = new Framer({ maxFrameSize: 100 })
  f.push(Buffer.from([0, 0, 0, 101]))
  try {
    f.next()
    assert.unreachable('should throw')
  } catch (e) {
    assert.instance(e, FrameTooLargeError)
    assert.is((e as FrameTooLargeError).length, 101)
    assert.is((e as FrameTooLargeError).code, 'ERR_DIST_FRAME_TOO_LARGE')
  }
  const g = new Framer({ maxFrameSize: 1 << 20 })
  g.push(Buffer.from([0xff, 0xff, 0xff, 0xff]))
  assert.throws(() => g.next(), (e: unknown) => e instanceof FrameTooLargeError)
})

test('2-byte lengths for the handshake; takeRest hands over what follows', () => {
  const f = new Framer({ lengthBytes: 2, maxFrameSize: 100 })
  f.push(Buffer.from([0, 2, 65, 66, 1, 2, 3]))
  assert.equal(f.next(), Buffer.from('AB'))
  assert.equal(f.takeRest(), Buffer.from([1, 2, 3]))
  assert.is(f.buffered, 0)
  assert.is(f.next(), undefined)
})

test('takeRest after a consumed length prefix gives the prefix back', () => {
  const f = new Framer({ lengthBytes: 4, maxFrameSize: 100 })
  f.push(Buffer.from([0, 0, 0, 5, 1, 2]))
  assert.is(f.next(), undefined)
  assert.equal(f.takeRest(), Buffer.from([0, 0, 0, 5, 1, 2]))
})

test.run()
