import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { inflateSync } from 'node:zlib'
import {
  BitBinary,
  ExportFun,
  Float,
  Fun,
  ImproperList,
  Pid,
  Port,
  Ref,
  Tuple,
  atom,
  termEquals,
  tuple,
  type Term,
} from './terms.js'
import { binaryToTerm } from './decode.js'
import { encodeTerm, termToBinary, termToChunks } from './encode.js'
import { EncodeError } from './errors.js'
import { Writer } from './writer.js'

const hexOf = (t: unknown, opts?: Parameters<typeof termToBinary>[1]) =>
  termToBinary(t as Term, opts).toString('hex').toUpperCase()

function encodeFails(t: unknown, pattern?: RegExp): void {
  try {
    termToBinary(t as Term)
  } catch (e) {
    assert.is((e as object).constructor, EncodeError, String(e))
    assert.is((e as EncodeError).code, 'ERR_ETF_ENCODE')
    if (pattern) assert.match((e as Error).message, pattern)
    return
  }
  assert.unreachable(`encoded ${String(t)}`)
}

// Expected bytes are what erlang:term_to_binary/1 writes on OTP 25, except atoms: OTP 25 still writes
// latin1 atoms as ATOM_EXT; we write SMALL_ATOM_UTF8_EXT as OTP 26+ does (both decode to the same atom).

test('integers pick the smallest tag: SMALL_INTEGER, INTEGER, SMALL_BIG, LARGE_BIG', () => {
  assert.is(hexOf(0), '836100')
  assert.is(hexOf(255), '8361FF')
  assert.is(hexOf(256), '836200000100')
  assert.is(hexOf(-1), '8362FFFFFFFF')
  assert.is(hexOf(-2147483648), '836280000000')
  assert.is(hexOf(2147483648), '836E0400' + '00000080')
  assert.is(hexOf(-2147483649), '836E0401' + '01000080')
  assert.is(hexOf(2 ** 53 - 1), '836E0700' + 'FFFFFFFFFFFF1F')
  assert.is(hexOf(2n ** 64n), '836E0900' + '0000000000000000' + '01')
  assert.is(hexOf(-(2n ** 64n) + 1n), '836E0801' + 'FFFFFFFFFFFFFFFF')
  assert.is(hexOf(5n), '836105')
  assert.is(hexOf(1e20), '836E0900' + '000010632D5EC76B05') // an integral number beyond 2^53 stays exact
  assert.is(binaryToTerm(termToBinary(1e20)), 100000000000000000000n)
  const big = 2n ** 2100n
  assert.is(hexOf(big), '836F00000107' + '00' + '00'.repeat(262) + '10')
  assert.is(binaryToTerm(termToBinary(-big)), -big)
})

test('floats: non-integral numbers and Float boxes are NEW_FLOAT_EXT; NaN and Infinity refused', () => {
  assert.is(hexOf(1.5), '83463FF8000000000000')
  assert.is(hexOf(new Float(1)), '83463FF0000000000000')
  assert.is(hexOf(new Float(-0)), '83468000000000000000')
  assert.is(hexOf(-0), '836100', 'a plain -0 is the integer 0')
  for (const bad of [NaN, Infinity, -Infinity, new Float(NaN), new Float(Infinity)]) encodeFails(bad)
})

test('atoms: SMALL_ATOM_UTF8_EXT, ATOM_UTF8_EXT when over 255 bytes; booleans are atoms', () => {
  assert.is(hexOf(atom('ok')), '8377026F6B')
  assert.is(hexOf(atom('λ')), '837702CEBB')
  assert.is(hexOf(atom('')), '837700')
  assert.is(hexOf(atom('λ'.repeat(200))), '837601' + '90' + 'CEBB'.repeat(200))
  assert.is(hexOf(true), '83770474727565')
  assert.is(hexOf(false), '83770566616C7365')
  assert.is(binaryToTerm(termToBinary(atom('😀'.repeat(255)))), atom('😀'.repeat(255)))
  encodeFails(atom('x'.repeat(256)), /255/)
  encodeFails(atom('😀'.repeat(256)), /255/)
  encodeFails(atom('a\ud800b'), /surrogate/)
})

test('strings: STRING_EXT when every code unit < 256 and length < 65536, else a list of code points', () => {
  assert.is(hexOf(''), '836A')
  assert.is(hexOf('abc'), '836B0003616263')
  assert.is(hexOf('é'), '836B0001E9')
  assert.is(hexOf('λ'), '836C00000001620000' + '03BB' + '6A')
  assert.is(hexOf('a😀'), '836C000000026161' + '620001F600' + '6A')
  const long = termToBinary('a'.repeat(65536))
  assert.is(long[1], 108)
  assert.is(long.readUInt32BE(2), 65536)
  assert.is(termToBinary('a'.repeat(65535))[1], 107)
})

test('lists, improper lists, tuples', () => {
  assert.is(hexOf([]), '836A')
  assert.is(hexOf([1, 2, 300]), '836C0000000361016102620000012C6A')
  assert.is(hexOf(new ImproperList([1], 2)), '836C0000000161016102')
  assert.is(hexOf(new ImproperList([], atom('x'))), '83770178', 'no elements: just the tail')
  assert.is(hexOf(tuple()), '836800')
  assert.is(hexOf(tuple(atom('a'), 1)), '836802770161' + '6101')
  const large = termToBinary(tuple(...Array.from({ length: 256 }, () => 0)))
  assert.is(large.subarray(0, 6).toString('hex'), '836900000100')
})

test('maps: Map keeps its key terms; a plain object is a map with atom keys', () => {
  assert.is(hexOf(new Map()), '837400000000')
  assert.is(hexOf(new Map<Term, Term>([[tuple(1), 'x']])), '837400000001' + '68016101' + '6B000178')
  assert.is(hexOf({ a: 1, b: [] }), '837400000002' + '770161' + '6101' + '770162' + '6A')
  const t = binaryToTerm(termToBinary({ nested: { x: 1.5 } } as unknown as Term)) as Map<Term, Term>
  assert.is((t.get(atom('nested')) as Map<Term, Term>).get(atom('x')), 1.5)
  assert.is(hexOf(Object.create(null)), '837400000000')
})

test('binaries and bitstrings; bits past the end are written as zero', () => {
  assert.is(hexOf(Buffer.alloc(0)), '836D00000000')
  assert.is(hexOf(Buffer.from([1, 2, 3])), '836D00000003010203')
  assert.is(hexOf(new Uint8Array([4, 5])), '836D000000020405')
  assert.is(hexOf(new BitBinary(Buffer.from([0x20]), 3)), '834D0000000103' + '20')
  assert.is(hexOf(new BitBinary(Buffer.from([0xff, 0xff]), 1)), '834D0000000201' + 'FF80')
  const big = Buffer.alloc(100, 0xff)
  const bb = termToBinary(new BitBinary(big, 4))
  assert.is(bb[bb.length - 1], 0xf0)
  assert.is(big[99], 0xff, 'the caller’s buffer is not modified')
  encodeFails(new BitBinary(Buffer.alloc(0), 3))
  encodeFails(new BitBinary(Buffer.from([1]), 0))
  encodeFails(new BitBinary(Buffer.from([1]), 8))
})

test('pids NEW_PID_EXT, ports NEW_PORT_EXT or V4_PORT_EXT, refs NEWER_REFERENCE_EXT, exports, funs', () => {
  const n = atom('a@b.c')
  assert.is(hexOf(new Pid(n, 7, 1, 9)), '8358' + '77056140622E63' + '000000070000000100000009')
  assert.is(hexOf(new Port(n, 9n, 2)), '8359' + '77056140622E63' + '0000000900000002')
  assert.is(hexOf(new Port(n, 2n ** 32n, 2)), '8378' + '77056140622E63' + '0000000100000000' + '00000002')
  assert.is(hexOf(new Ref(n, 5, [1, 2, 3])), '835A0003' + '77056140622E63' + '00000005' + '000000010000000200000003')
  assert.is(hexOf(new ExportFun(atom('lists'), atom('map'), 2)), '8371' + '77056C69737473' + '77036D6170' + '6102')
  const f = new Fun(1, Buffer.alloc(16, 0xab), 3, atom('m'), 0, -5, new Pid(n, 1, 2, 3), [1, Buffer.alloc(100, 7)])
  const chunks = termToChunks(f)
  const bytes = Buffer.concat(chunks)
  // Size counts from the Size field to the end of the free variables, big binary chunk included.
  assert.is(bytes.readUInt32BE(2), bytes.length - 2)
  assert.ok(chunks.length >= 2)
  assert.ok(termEquals(binaryToTerm(bytes), f))
})

test('out-of-range fields of pids, ports, refs, funs and exports are EncodeErrors', () => {
  const n = atom('n@h')
  encodeFails(new Pid(n, -1, 0, 0))
  encodeFails(new Pid(n, 2 ** 32, 0, 0))
  encodeFails(new Pid(n, 1.5, 0, 0))
  encodeFails(new Pid('n@h' as never, 1, 0, 0))
  encodeFails(new Port(n, 2n ** 64n, 0))
  encodeFails(new Port(n, -1n, 0))
  encodeFails(new Ref(n, 0, [1, 2, 3, 4, 5, 6]))
  encodeFails(new Ref(n, 0, [2 ** 32]))
  encodeFails(new ExportFun(atom('m'), atom('f'), 256))
  encodeFails(new Fun(1, Buffer.alloc(15), 0, atom('m'), 0, 0, new Pid(n, 1, 1, 1), []))
  encodeFails(new Fun(1, Buffer.alloc(16), 0, atom('m'), 1.5, 0, new Pid(n, 1, 1, 1), []))
})

test('values with no Erlang form are EncodeErrors: null, undefined, functions, symbols, class instances', () => {
  encodeFails(null, /null/)
  encodeFails(undefined, /undefined/)
  encodeFails(() => 1, /function/)
  encodeFails(Symbol('x'), /symbol/)
  encodeFails(new Date(), /Date/)
  encodeFails([1, undefined])
  encodeFails({ a: () => 1 })
  encodeFails(tuple(1, null as never))
  encodeFails(Object.assign(Object.create(Tuple.prototype), { elements: 'ab' }))
})

test('cyclic values hit maxDepth: EncodeError, not a hang or a stack overflow', () => {
  const a: unknown[] = [1]
  a.push(a)
  encodeFails(a, /maxDepth/)
  const o: Record<string, unknown> = {}
  o.self = o
  encodeFails(o, /maxDepth/)
  const m = new Map<Term, Term>()
  m.set(1, m)
  encodeFails(m, /maxDepth/)
})

test('a million levels of nesting encode iteratively (maxDepth: Infinity) and match the decoder', () => {
  let t: Term = []
  for (let i = 0; i < 1_000_000; i++) t = [t]
  const b = termToBinary(t, { maxDepth: Infinity })
  assert.is(b.length, 1 + 5 * 1_000_000 + 1 + 1_000_000)
  assert.is(b[1], 108)
  assert.is(b[b.length - 1], 106)
  let d = binaryToTerm(b, { maxDepth: Infinity })
  let depth = 0
  while (Array.isArray(d) && d.length === 1) (d = d[0]), depth++
  assert.is(depth, 1_000_000)
  // the default bound (100,000) refuses it
  assert.throws(() => termToBinary(t), (e: unknown) => e instanceof EncodeError)
})

test('atomCacheRef writes ATOM_CACHE_REF for the atoms it knows, in every atom position', () => {
  const idx = new Map([
    [atom('ok'), 0],
    [atom('n@h'), 1],
    [atom('true'), 2],
  ])
  const w = new Writer()
  encodeTerm(w, tuple(atom('ok'), atom('other'), new Pid(atom('n@h'), 1, 2, 3), true), {
    atomCacheRef: (a) => idx.get(a),
  })
  assert.is(
    w.concat().toString('hex').toUpperCase(),
    '6804' + '5200' + '77056F74686572' + '58' + '5201' + '000000010000000200000003' + '5202',
  )
  const bad = new Writer()
  assert.throws(() => encodeTerm(bad, atom('x'), { atomCacheRef: () => 256 }), (e: unknown) => e instanceof EncodeError)
})

test('compressed: COMPRESSED with the uncompressed size when it pays, plain form otherwise', () => {
  const t = new Array(1000).fill(atom('repeated'))
  const plain = termToBinary(t)
  const z = termToBinary(t, { compressed: true })
  assert.is(z[0], 131)
  assert.is(z[1], 80)
  assert.is(z.readUInt32BE(2), plain.length - 1)
  assert.equal(inflateSync(z.subarray(6)), plain.subarray(1))
  assert.ok(termEquals(binaryToTerm(z), t))
  assert.equal(termToBinary(t, { compressed: 9 }).subarray(0, 2), Buffer.from([131, 80]))
  assert.equal(termToBinary(t, { compressed: 0 }), plain)
  assert.equal(termToBinary(atom('x'), { compressed: true }), termToBinary(atom('x')), 'too small to pay')
  const chunks = termToChunks(t, { compressed: true })
  assert.is(chunks.length, 1)
  assert.equal(chunks[0], z)
  assert.throws(() => termToBinary(1, { compressed: 10 }), (e: unknown) => e instanceof EncodeError)
})

test('zero copy: termToChunks carries a large Buffer by reference, small ones copied', () => {
  const big = Buffer.alloc(1000, 1)
  const small = Buffer.alloc(64, 2)
  const chunks = termToChunks(tuple(atom('data'), big, small, [big]))
  assert.is(chunks.filter((c) => c === big).length, 2, 'the same Buffer object, twice')
  assert.not.ok(chunks.includes(small))
  assert.ok(termEquals(binaryToTerm(Buffer.concat(chunks)), tuple(atom('data'), big, small, [big])))
  // a threshold of Infinity copies everything into one chunk
  const one = termToChunks(tuple(big), { largeBinaryThreshold: Infinity })
  assert.is(one.length, 1)
  // a Uint8Array goes by reference over its own memory
  const u8 = new Uint8Array(500)
  const c = termToChunks(u8 as unknown as Term).find((x) => x.length === 500)!
  assert.is(c.buffer, u8.buffer)
  // termToBinary is one Buffer
  assert.ok(Buffer.isBuffer(termToBinary(tuple(big))))
})

test('zero copy: a decoded large binary re-encodes by reference to the received frame', () => {
  const frame = termToBinary([Buffer.alloc(5000, 3), atom('x')])
  const t = binaryToTerm(frame) as Term[]
  const chunks = termToChunks(t)
  const view = chunks.find((c) => c.length === 5000)!
  assert.is(view, t[0])
  assert.is(view.buffer, frame.buffer)
})

test('termToChunks concatenated equals termToBinary', () => {
  const t = tuple(Buffer.alloc(100, 1), 'text', [Buffer.alloc(65, 2), new BitBinary(Buffer.alloc(80, 0xff), 2)], 2n ** 100n)
  assert.equal(Buffer.concat(termToChunks(t)), termToBinary(t))
})

test.run()
