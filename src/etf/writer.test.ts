import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Writer } from './writer.js'
import { Reader } from './reader.js'
import { EncodeError, TruncatedTermError } from './errors.js'

test('Writer: fixed-width big-endian writes, growth past the initial size', () => {
  const w = new Writer(1)
  w.u8(1)
  w.u16(0x0203)
  w.u32(0x04050607)
  w.i32(-1)
  w.u64(0x08090a0b0c0d0e0fn)
  w.f64(1.5)
  w.bytes(Buffer.alloc(200, 9))
  assert.is(w.length, 1 + 2 + 4 + 4 + 8 + 8 + 200)
  const b = w.concat()
  assert.is(b.subarray(0, 19).toString('hex'), '010203040506' + '07ffffffff' + '08090a0b0c0d0e0f')
  assert.is(b.readDoubleBE(19), 1.5)
  assert.ok(b.subarray(27).every((x) => x === 9))
})

test('Writer: out-of-range values are EncodeErrors', () => {
  const w = new Writer()
  for (const f of [() => w.u8(256), () => w.u16(-1), () => w.u32(2 ** 32), () => w.i32(2 ** 31), () => w.u64(-1n)])
    assert.throws(f, (e: unknown) => e instanceof EncodeError)
  assert.is(w.length, 0)
})

test('Writer: chunk() keeps a Buffer by reference between copied segments', () => {
  const big = Buffer.alloc(1000, 7)
  const w = new Writer()
  w.u8(1)
  w.chunk(big)
  w.u8(2)
  w.chunk(Buffer.alloc(0))
  const parts = w.finish()
  assert.is(parts.length, 3)
  assert.is(parts[1], big)
  assert.equal([...parts[0]], [1])
  assert.equal([...parts[2]], [2])
  assert.is(w.length, 1002)
  assert.is(w.concat().length, 1002)
})

test('Writer: binary() copies up to the threshold and chunks above it', () => {
  const w = new Writer(256, 10)
  const small = Buffer.alloc(10, 1)
  const big = Buffer.alloc(11, 2)
  w.binary(small)
  w.binary(big)
  const parts = w.finish()
  assert.is(parts.length, 2)
  assert.is.not(parts[0], small)
  assert.is(parts[1], big)
})

test('Writer: reserve() then patch, in the open segment and in a segment closed by a chunk', () => {
  const w = new Writer(4)
  const a = w.reserve(4)
  w.u8(0xaa)
  const b = w.reserve(1)
  w.chunk(Buffer.alloc(100))
  const c = w.reserve(4)
  w.bytes(Buffer.alloc(300)) // forces growth after the reservation
  w.patchU32(a, 0x01020304)
  w.patchU8(b, 0xbb)
  w.patchU32(c, w.length)
  const all = w.concat()
  assert.is(all.readUInt32BE(0), 0x01020304)
  assert.is(all[4], 0xaa)
  assert.is(all[5], 0xbb)
  assert.is(all.readUInt32BE(106), 410)
  assert.throws(() => w.patchU32(10, 1), (e: unknown) => e instanceof EncodeError, 'inside a chunk')
  assert.throws(() => w.patchU32(all.length - 2, 1), (e: unknown) => e instanceof EncodeError, 'past the end')
})

test('Writer: patches after finish() land in the returned chunks', () => {
  const w = new Writer()
  const at = w.reserve(4)
  const parts = w.finish()
  w.patchU32(at, 7)
  assert.is(parts[0].readUInt32BE(0), 7)
})

test('Reader: reads and bounds checks with the offset', () => {
  const r = new Reader(Buffer.from('0102030405060708ffffffff3ff8000000000000aabbcc', 'hex'), 1)
  assert.is(r.remaining, 22)
  assert.is(r.u8(), 2)
  assert.is(r.u16(), 0x0304)
  assert.is(r.u32(), 0x05060708)
  assert.is(r.i32(), -1)
  assert.is(r.f64(), 1.5)
  const v = r.bytes(2)
  assert.equal([...v], [0xaa, 0xbb])
  assert.is(v.buffer, r.buf.buffer, 'bytes() is a view')
  assert.is(r.offset, 22)
  for (const f of [() => r.u16(), () => r.u32(), () => r.i32(), () => r.u64(), () => r.f64(), () => r.bytes(2)]) {
    try {
      f()
      assert.unreachable()
    } catch (e) {
      assert.is((e as object).constructor, TruncatedTermError)
      assert.is((e as TruncatedTermError).offset, 22)
    }
  }
  assert.is(r.u8(), 0xcc)
  assert.throws(() => r.u8(), (e: unknown) => e instanceof TruncatedTermError)
  assert.is(new Reader(Buffer.from('0000000000000102', 'hex')).u64(), 258n)
  assert.throws(() => new Reader(Buffer.alloc(2), 3), (e: unknown) => e instanceof TruncatedTermError)
  assert.throws(() => new Reader(Buffer.alloc(2)).bytes(-1), (e: unknown) => e instanceof TruncatedTermError)
})

test.run()
