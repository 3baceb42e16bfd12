// termEquals, canonicalKey and termHash: Erlang's =:= on the term model, at any depth.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Buffer } from 'node:buffer'
import { BitBinary, ExportFun, Float, ImproperList, Pid, Ref, Tuple, atom, canonicalKey, mapGet, termEquals, termHash, termIdentical, tuple, type Term } from './terms.js'
import { binaryToTerm } from './decode.js'
import { termToBinary } from './encode.js'

const same = (a: Term, b: Term) => {
  assert.ok(termEquals(a, b), `${String(a)} =:= ${String(b)}`)
  assert.ok(termEquals(b, a), `${String(b)} =:= ${String(a)} (reversed)`)
  assert.is(canonicalKey(a), canonicalKey(b))
  assert.is(termHash(a), termHash(b))
}
const differ = (a: Term, b: Term) => {
  assert.not.ok(termEquals(a, b), `${String(a)} =/= ${String(b)}`)
  assert.not.ok(termEquals(b, a), `${String(b)} =/= ${String(a)} (reversed)`)
  assert.is.not(canonicalKey(a), canonicalKey(b))
}

test('numbers: integers by value whatever their JS type, floats apart from integers', () => {
  same(1, 1n)
  same(2n ** 70n, 2n ** 70n)
  same(1.5, new Float(1.5))
  same(new Float(0), new Float(-0)) // OTP 25: 0.0 =:= -0.0
  differ(1, new Float(1))
  differ(1, 1.5)
  differ(2n ** 70n, 2n ** 70n + 1n)
})

test('true and false are the atoms true and false', () => {
  same(atom('true'), true)
  same(atom('false'), false)
  differ(atom('true'), false)
  differ(atom('ok'), true)
  assert.is(mapGet(new Map<Term, Term>([[atom('true'), 1]]), true), 1)
  assert.is(mapGet(new Map<Term, Term>([[false, 2]]), atom('false')), 2)
})

test('lists: a string is its code points, list tails continue the list, improper tails count', () => {
  same('ab', [97, 98])
  same('ab', new ImproperList([97], 'b'))
  same([1, 2, 3], new ImproperList([1], new ImproperList([2], [3])))
  same(new ImproperList([1], 2), new ImproperList([1], 2))
  differ('ab', 'ba')
  differ([1, 2], new ImproperList([1], 2))
  differ([1, 2], [1, 2, 3])
  differ([], new Tuple([]))
  differ('', Buffer.alloc(0))
})

test('compound terms compare by value, not identity', () => {
  const node = atom('n@h')
  same(tuple(1, tuple(2)), tuple(1, tuple(2)))
  same(new Pid(node, 1, 2, 3), new Pid(atom('n@h'), 1, 2, 3))
  same(new Ref(node, 1, [1, 2, 3]), new Ref(node, 1, [1, 2, 3]))
  same(Buffer.from('abc'), Buffer.from('abc'))
  same(new BitBinary(Buffer.from([0xe0]), 3), new BitBinary(Buffer.from([0xe0]), 3))
  same(new ExportFun(atom('m'), atom('f'), 1), new ExportFun(atom('m'), atom('f'), 1))
  differ(new Pid(node, 1, 2, 3), new Pid(node, 1, 2, 4))
  differ(new BitBinary(Buffer.from([0xe0]), 3), new BitBinary(Buffer.from([0xe0]), 4))
  differ(tuple(1, 2), tuple(1, 2, 3))
})

test('maps: any key order, and keys that are equal terms but distinct JS values find each other', () => {
  const a = new Map<Term, Term>([[Buffer.from('name'), 'x'], [tuple(1, 2), 1], [1, 'int'], [atom('k'), [1]]])
  const b = new Map<Term, Term>([[atom('k'), [1]], [1n, 'int'], [tuple(1, 2), 1], [Buffer.from('name'), 'x']])
  same(a, b)
  differ(a, new Map<Term, Term>([[atom('k'), [1]], [1n, 'int'], [tuple(1, 2), 1], [Buffer.from('nam3'), 'x']]))
  differ(a, new Map<Term, Term>([[atom('k'), [2]], [1n, 'int'], [tuple(1, 2), 1], [Buffer.from('name'), 'x']]))
  differ(new Map([[1, 1]]), new Map([[new Float(1), 1]]))
})

test('regression: termEquals compares terms nested as deep as the decoder accepts (the recursive one overflowed)', () => {
  let t: Term = 1
  for (let i = 0; i < 9000; i++) t = i % 3 === 0 ? tuple(t) : i % 3 === 1 ? [t] : new Map([[atom('k'), t]])
  const back = binaryToTerm(termToBinary(t))
  assert.ok(termEquals(back, t))
  let u: Term = 2
  for (let i = 0; i < 9000; i++) u = i % 3 === 0 ? tuple(u) : i % 3 === 1 ? [u] : new Map([[atom('k'), u]])
  assert.not.ok(termEquals(t, u))
  assert.is.not(canonicalKey(t), canonicalKey(u))
})

test('canonicalKey: a plain object is the map with atom keys it encodes to; non-terms and over-deep values throw', () => {
  assert.is(canonicalKey({ a: 1, b: [2] } as unknown as Term), canonicalKey(new Map<Term, Term>([[atom('b'), [2]], [atom('a'), 1]])))
  assert.throws(() => canonicalKey(tuple(null as unknown as Term)), TypeError)
  const cyclic: Term[] = []
  cyclic.push(cyclic)
  assert.throws(() => canonicalKey(cyclic, 100), RangeError)
})

test('a plain object is a Term (a map with atom keys) in the types, in termEquals and in the codec', () => {
  const t: Term = { a: 1, nested: { b: [atom('x')] } }
  // @ts-expect-error a function is not a term, inside a plain object either
  const notTerm: Term = { f: () => 1 }
  void notTerm
  const decoded = binaryToTerm(termToBinary(t))
  assert.ok(decoded instanceof Map)
  assert.ok(termEquals(t, decoded))
  assert.ok(termEquals(decoded, t))
  assert.ok(termEquals({}, new Map()))
  assert.ok(termEquals({ a: 1 }, { a: 1 }))
  assert.not.ok(termEquals({ a: 1 }, new Map<Term, Term>([['a', 1]])), 'a string key is a charlist, not the atom')
  assert.not.ok(termEquals({ a: 1 }, { a: 1, b: 2 }))
})

test('termIdentical: =:= and the same JS kind at every level, as a codec round trip must keep a state', () => {
  const same = (t: Term) => termIdentical(binaryToTerm(termToBinary(t)), t)
  for (const t of [tuple(atom('a'), 1, 2n ** 70n, 'abc', [1000, 2000]), new Map<Term, Term>([[atom('k'), [tuple()]]]), Buffer.from('x')])
    assert.ok(same(t), String(t))
  for (const t of [{ n: 1 }, 'h\u00e9llo\u2192', atom('true'), [tuple(1, { deep: true })]])
    assert.not.ok(same(t as Term), `${JSON.stringify(String(t))} changes kind through the codec`)
  assert.ok(termEquals(binaryToTerm(termToBinary({ n: 1 })), { n: 1 }), 'yet it is =:=')
  // What erl sends for [1,2,3] (STRING_EXT) is the string "\x01\x02\x03": =:= to the array, not identical.
  assert.ok(termEquals('\x01\x02\x03', [1, 2, 3]))
  assert.not.ok(termIdentical('\x01\x02\x03', [1, 2, 3]))
})

test('termHash spreads distinct keys of the usual shapes (a collision costs one termEquals, not a wrong answer)', () => {
  const spread = (keys: Term[]) => {
    const hashes = new Set(keys.map((k) => termHash(k)))
    assert.ok(hashes.size >= keys.length * 0.999, `${hashes.size} distinct hashes for ${keys.length} keys`)
  }
  const n = [...Array(20000).keys()]
  spread(n.map((i) => tuple(atom('user'), i)))
  spread(n.map((i) => Buffer.from(`key-${i}`)))
  spread(n.map((i) => [i, i + 1]))
  spread(n.map((i) => new Map<Term, Term>([[atom('id'), i], [atom('v'), 1.5]])))
  spread(n.map((i) => (i % 2 === 0 ? BigInt(i) * 2n ** 60n : i * 0.5)))
  // Plain Uint8Arrays are binaries to the encoder, so =:= to a Buffer of the same bytes.
  same(new Uint8Array([1, 2]) as unknown as Term, Buffer.from([1, 2]))
})

test('mapGet finds binary, tuple, bigint and list keys by value, as an Elixir map with string keys needs', () => {
  // %{"name" => "x", {1, 2} => 1, 3 => three, 'ab' => list, ok => atom}, decoded from bytes erl would send.
  const m = binaryToTerm(
    termToBinary(new Map<Term, Term>([[Buffer.from('name'), 'x'], [tuple(1, 2), 1], [3, atom('three')], ['ab', atom('list')], [atom('ok'), atom('atom')]])),
  ) as Map<Term, Term>
  assert.is(m.get(Buffer.from('name')), undefined) // what Map#get alone gives
  assert.is(mapGet(m, Buffer.from('name')), 'x')
  assert.is(mapGet(m, tuple(1, 2)), 1)
  assert.is(mapGet(m, 3n), atom('three'))
  assert.is(mapGet(m, [97, 98]), atom('list'))
  assert.is(mapGet(m, atom('ok')), atom('atom'))
  assert.is(mapGet(m, Buffer.from('nam')), undefined)
  assert.is(mapGet(m, atom('nope')), undefined)
  assert.is(mapGet(m, new Float(3)), undefined)
})

test.run()
