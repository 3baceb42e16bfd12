import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { deflateSync } from 'node:zlib'
import {
  Atom,
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
import { atomCacheStats, binaryToTerm, decodeTerm, decodeVersioned } from './decode.js'
import { termToBinary } from './encode.js'
import {
  DecodeError,
  LimitExceededError,
  TruncatedTermError,
  UnsupportedTagError,
} from './errors.js'

const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex')

/** Calls f and returns what it threw; fails if it returned. */
function thrown(f: () => unknown): unknown {
  try {
    f()
  } catch (e) {
    return e
  }
  assert.unreachable('expected a throw')
}

function throwsExactly(f: () => unknown, Class: Function, msg?: string): DecodeError {
  const e = thrown(f)
  assert.is((e as object).constructor, Class, `${msg ?? ''} threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`)
  return e as DecodeError
}

const node = atom('a@b.c')
const pid = new Pid(node, 7, 1, 9)

// Bytes from erlang:term_to_binary/1,2 on OTP 25 (and, for tags OTP 25 no longer writes, bytes
// hand-built and checked with binary_to_term/1 there; the Erlang value is in the name).
const fixtures: [string, string, Term][] = [
  ['SMALL_INTEGER_EXT 42', '83612A', 42],
  ['INTEGER_EXT -70000', '8362FFFEEE90', -70000],
  ['NEW_FLOAT_EXT 1.5', '83463FF8000000000000', 1.5],
  ['NEW_FLOAT_EXT 1.0 (stays a Float)', '83463FF0000000000000', new Float(1)],
  ['FLOAT_EXT 1.5 (minor_version 0)', '8363312E3530303030303030303030303030303030303030652B30300000000000', 1.5],
  ['ATOM_EXT ok', '836400026F6B', atom('ok')],
  ['SMALL_ATOM_EXT ok', '8373026F6B', atom('ok')],
  ['SMALL_ATOM_UTF8_EXT λ', '837702CEBB', atom('λ')],
  ['ATOM_UTF8_EXT (100 × λ)', '837600C8' + 'CEBB'.repeat(100), atom('λ'.repeat(100))],
  ['ATOM_EXT true → boolean', '8364000474727565', true],
  ['SMALL_ATOM_UTF8_EXT false → boolean', '83770566616C7365', false],
  ['STRING_EXT "abc"', '836B0003616263', 'abc'],
  ['LIST_EXT [1,2,300]', '836C0000000361016102620000012C6A', [1, 2, 300]],
  ['NIL_EXT []', '836A', []],
  ['LIST_EXT improper [1|2]', '836C0000000161016102', new ImproperList([1], 2)],
  ['SMALL_TUPLE_EXT {a,1}', '836802640001616101', tuple(atom('a'), 1)],
  [
    'LARGE_TUPLE_EXT (256 elements)',
    '836900000100' +
      Array.from({ length: 255 }, (_, i) => '61' + (i + 1).toString(16).padStart(2, '0')).join('') +
      '6200000100',
    tuple(...Array.from({ length: 256 }, (_, i) => i + 1)),
  ],
  [
    'MAP_EXT #{a => 1, {b} => "c"}',
    '8374000000026400016161016801640001626B000163',
    new Map<Term, Term>([
      [atom('a'), 1],
      [tuple(atom('b')), 'c'],
    ]),
  ],
  ['BINARY_EXT <<1,2,3>>', '836D00000003010203', Buffer.from([1, 2, 3])],
  ['BIT_BINARY_EXT <<1:3>>', '834D000000010320', new BitBinary(Buffer.from([0x20]), 3)],
  ['SMALL_BIG_EXT 1 bsl 64', '836E0900000000000000000001', 2n ** 64n],
  ['SMALL_BIG_EXT -(1 bsl 64)', '836E0901000000000000000001', -(2n ** 64n)],
  ['LARGE_BIG_EXT 1 bsl 2100', '836F0000010700' + '00'.repeat(262) + '10', 2n ** 2100n],
  ['NEW_PID_EXT <a@b.c.7.1> creation 9', '83586400056140622E63000000070000000100000009', pid],
  ['PID_EXT <a@b.c.7.1> creation 3', '83676400056140622E6300000007000000010' + '3', new Pid(node, 7, 1, 3)],
  ['NEW_PORT_EXT #Port<a@b.c.9> creation 2', '83596400056140622E630000000900000002', new Port(node, 9n, 2)],
  ['PORT_EXT #Port<a@b.c.9> creation 2', '83666400056140622E630000000902', new Port(node, 9n, 2)],
  [
    'V4_PORT_EXT #Port<a@b.c.1099511627776>',
    '83787705' + '6140622E63' + '0000010000000000' + '00000007',
    new Port(node, 2n ** 40n, 7),
  ],
  [
    'NEWER_REFERENCE_EXT #Ref<a@b.c.3.2.1>',
    '835A00036400056140622E6300000005000000010000000200000003',
    new Ref(node, 5, [1, 2, 3]),
  ],
  ['NEW_REFERENCE_EXT #Ref<a@b.c.2.1>', '8372000264' + '00056140622E63' + '02' + '0000000100000002', new Ref(node, 2, [1, 2])],
  ['REFERENCE_EXT #Ref<a@b.c.9>', '83656400056140622E630000000902', new Ref(node, 2, [9])],
  ['EXPORT_EXT fun lists:map/2', '83716400056C697374736400036D61706102', new ExportFun(atom('lists'), atom('map'), 2)],
  [
    'NEW_FUN_EXT fx:clo(1, Pid) closure',
    '83700000005D01C8CC8CDAEDA20D640213164C0500979400000000000000026400026678610062064664665864000D6E6F6E6F6465406E6F686F73740000000900000000000000006101586400056140622E63000000070000000100000009',
    new Fun(
      1,
      hex('C8CC8CDAEDA20D640213164C05009794'),
      0,
      atom('fx'),
      0,
      105276516,
      new Pid(atom('nonode@nohost'), 9, 0, 0),
      [1, pid],
    ),
  ],
  ['COMPRESSED lists:duplicate(100, 7)', '835000000067789CCB664861A7030000DCFE038C', '\x07'.repeat(100)],
]

for (const [name, h, expected] of fixtures) {
  test(`${name}: decodes`, () => {
    const got = binaryToTerm(hex(h))
    assert.ok(termEquals(got, expected), `got ${String(got)}`)
    assert.is(Object.getPrototypeOf(got), Object.getPrototypeOf(expected))
  })

  test(`${name}: every truncation throws TruncatedTermError`, () => {
    const bytes = hex(h)
    for (let n = 0; n < bytes.length; n++) {
      const e = throwsExactly(() => binaryToTerm(bytes.subarray(0, n)), TruncatedTermError, `prefix of ${n}`)
      assert.is(e.code, 'ERR_ETF_TRUNCATED')
      assert.ok(e.offset >= 0 && e.offset <= n, `offset ${e.offset} within the ${n} bytes`)
    }
  })
}

test('ATOM_CACHE_REF resolves through the atomCache option', () => {
  const cache = [atom('zero'), atom('one'), atom('true')]
  assert.is(decodeTerm(Buffer.from([82, 1]), 0, { atomCache: cache }).term, atom('one'))
  assert.is(decodeTerm(Buffer.from([82, 2]), 0, { atomCache: cache }).term, true)
  // inside a pid (node name) too
  const t = decodeTerm(Buffer.from([88, 82, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]), 0, { atomCache: cache }).term
  assert.ok(termEquals(t, new Pid(atom('zero'), 1, 2, 3)))
})

test('ATOM_CACHE_REF: truncated, missing entry, and no cache', () => {
  throwsExactly(() => decodeTerm(Buffer.from([82]), 0, { atomCache: [] }), TruncatedTermError)
  const e = throwsExactly(() => decodeTerm(Buffer.from([82, 5]), 0, { atomCache: [atom('x')] }), DecodeError)
  assert.is(e.offset, 0)
  const u = throwsExactly(() => decodeTerm(Buffer.from([82, 0]), 0), UnsupportedTagError) as UnsupportedTagError
  assert.is(u.tag, 82)
  // Inside tuples and lists (the fast path for scalars reads cache refs): the same values and errors.
  const cache = [atom('a'), atom('true')]
  assert.ok(termEquals(decodeTerm(Buffer.from([104, 3, 82, 0, 97, 7, 82, 1]), 0, { atomCache: cache }).term, tuple(atom('a'), 7, true)))
  assert.ok(termEquals(decodeTerm(Buffer.from([108, 0, 0, 0, 2, 82, 1, 82, 0, 106]), 0, { atomCache: cache }).term, [true, atom('a')]))
  const inner = throwsExactly(() => decodeTerm(Buffer.from([104, 2, 97, 1, 82, 9]), 0, { atomCache: cache }), DecodeError)
  assert.is(inner.offset, 4)
  throwsExactly(() => decodeTerm(Buffer.from([104, 2, 97, 1, 82]), 0, { atomCache: cache }), TruncatedTermError)
  const none = throwsExactly(() => decodeTerm(Buffer.from([104, 1, 82, 0]), 0), UnsupportedTagError) as UnsupportedTagError
  assert.is(none.offset, 2)
})

test('LOCAL_EXT and FUN_EXT are refused with UnsupportedTagError', () => {
  for (const tag of [121, 117]) {
    const e = throwsExactly(() => binaryToTerm(Buffer.from([131, tag, 0, 0, 0, 0])), UnsupportedTagError) as UnsupportedTagError
    assert.is(e.tag, tag)
    assert.is(e.offset, 1)
    assert.is(e.code, 'ERR_ETF_UNSUPPORTED')
    assert.ok(e instanceof DecodeError)
  }
})

test('unknown tags, bad version byte, non-Buffer input: DecodeError with the offset', () => {
  assert.is(throwsExactly(() => binaryToTerm(Buffer.from([131, 0])), DecodeError).offset, 1)
  assert.is(throwsExactly(() => binaryToTerm(Buffer.from([131, 104, 2, 97, 1, 68])), DecodeError).offset, 5)
  assert.is(throwsExactly(() => binaryToTerm(Buffer.from([130, 106])), DecodeError).offset, 0)
  throwsExactly(() => binaryToTerm('83' as unknown as Buffer), DecodeError)
  throwsExactly(() => decodeTerm(Buffer.from([106]), 2), DecodeError)
  // COMPRESSED is only valid right after the version byte
  throwsExactly(() => binaryToTerm(Buffer.from([131, 104, 1, 80, 0, 0, 0, 1])), DecodeError)
})

test('binaryToTerm refuses trailing bytes; decodeVersioned and decodeTerm report the end', () => {
  const e = throwsExactly(() => binaryToTerm(Buffer.from([131, 106, 106])), DecodeError)
  assert.is(e.offset, 2)
  const buf = Buffer.from([9, 9, 131, 97, 5, 131, 106, 0])
  const a = decodeVersioned(buf, 2)
  assert.is(a.term, 5)
  assert.is(a.end, 5)
  const b = decodeVersioned(buf, a.end)
  assert.equal(b.term, [])
  assert.is(b.end, 7)
  const c = decodeTerm(Buffer.from([0, 104, 2, 97, 1, 97, 2, 0]), 1)
  assert.ok(termEquals(c.term, tuple(1, 2)))
  assert.is(c.end, 7)
})

test('decodeVersioned finds the end of a COMPRESSED term followed by more data', () => {
  const z = termToBinary(new Array(200).fill(atom('abc')), { compressed: true })
  assert.is(z[1], 80)
  const buf = Buffer.concat([z, Buffer.from([131, 97, 42])])
  const first = decodeVersioned(buf, 0)
  assert.is(first.end, z.length)
  assert.is((first.term as Term[]).length, 200)
  assert.is(decodeVersioned(buf, first.end).term, 42)
})

test('integers: every width normalises to number when safe, bigint beyond', () => {
  assert.is(binaryToTerm(hex('836E0800' + '00'.repeat(8))), 0) // SMALL_BIG zero with 8 zero digits
  assert.is(binaryToTerm(hex('836E0001')), 0) // zero digits, negative sign: still 0
  assert.is(binaryToTerm(hex('836E0400FFFFFFFF')), 4294967295)
  assert.is(binaryToTerm(hex('836E0701FFFFFFFFFFFF1F')), -(2 ** 53 - 1))
  assert.is(binaryToTerm(hex('836E070000000000000020')), 2n ** 53n)
  assert.is(binaryToTerm(hex('836E0800FFFFFFFFFFFFFFFF')), 2n ** 64n - 1n)
  assert.is(binaryToTerm(hex('836F0000000300010203')), 0x030201)
  assert.is(binaryToTerm(hex('8362' + '80000000')), -2147483648)
})

test('LARGE_BIG_EXT over the emulator limit is refused before reading the digits', () => {
  const e = throwsExactly(() => binaryToTerm(hex('836F7FFFFFFF00')), LimitExceededError)
  assert.is(e.offset, 1)
})

test('floats: non-finite NEW_FLOAT_EXT and malformed FLOAT_EXT text are DecodeErrors', () => {
  throwsExactly(() => binaryToTerm(hex('83467FF8000000000000')), DecodeError)
  throwsExactly(() => binaryToTerm(hex('83467FF0000000000000')), DecodeError)
  const old = (s: string) => Buffer.concat([Buffer.from([131, 99]), Buffer.from(s.padEnd(31, '\0'), 'latin1')])
  assert.is(binaryToTerm(old('-1.5e-3')), -0.0015)
  assert.is(binaryToTerm(old('1,5')), 1.5)
  assert.ok(termEquals(binaryToTerm(old('2.00000000000000000000e+00')), new Float(2)))
  for (const bad of ['1', '1.', 'nan', 'inf', '1.5x', ' 1.5', '1.5e', '1e999.0'])
    throwsExactly(() => binaryToTerm(old(bad)), DecodeError, bad)
  throwsExactly(() => binaryToTerm(Buffer.concat([Buffer.from([131, 99]), Buffer.alloc(31, 0x31)])), DecodeError)
})

test('atoms: interned, invalid UTF-8 refused, latin1 high bytes', () => {
  const a = binaryToTerm(hex('837703616263'))
  const b = binaryToTerm(hex('8364000361626' + '3'))
  assert.is(a, b)
  assert.is(a, atom('abc'))
  throwsExactly(() => binaryToTerm(hex('837702C328')), DecodeError)
  throwsExactly(() => binaryToTerm(hex('83760001FF')), DecodeError)
  assert.is(binaryToTerm(hex('836400 01E4')), atom('ä')) // ATOM_EXT is latin1
  assert.is(binaryToTerm(hex('837702C3A4')), atom('ä'))
  assert.is(binaryToTerm(hex('8373 01 E4')), atom('ä'))
  // a node name 'true' stays an Atom inside a pid
  const p = binaryToTerm(hex('8358770474727565000000010000000100000001')) as Pid
  assert.instance(p.node, Atom)
  assert.is(p.node, atom('true'))
})

test('atom length limit is in characters (default 255), checked before decoding and on cache hits', () => {
  const latin = (n: number) => Buffer.concat([Buffer.from([131, 100, n >> 8, n & 255]), Buffer.alloc(n, 0x61)])
  assert.is((binaryToTerm(latin(255)) as Atom).name.length, 255)
  assert.is(throwsExactly(() => binaryToTerm(latin(256)), LimitExceededError).code, 'ERR_ETF_LIMIT')
  const utf = (n: number) => Buffer.concat([Buffer.from([131, 118, (2 * n) >> 8, (2 * n) & 255]), Buffer.from('λ'.repeat(n))])
  assert.is((binaryToTerm(utf(255)) as Atom).name, 'λ'.repeat(255))
  throwsExactly(() => binaryToTerm(utf(256)), LimitExceededError)
  // a short atom decoded once (cached) is still refused under a smaller limit
  assert.is(binaryToTerm(hex('837704616263' + '64')), atom('abcd'))
  throwsExactly(() => binaryToTerm(hex('837704616263' + '64'), { maxAtomLength: 3 }), LimitExceededError)
  throwsExactly(() => binaryToTerm(hex('837702CEBB'), { maxAtomLength: 0 }), LimitExceededError)
})

test('maps: duplicate keys are refused (Erlang refuses them too)', () => {
  throwsExactly(() => binaryToTerm(hex('837400000002' + '6101' + '6101' + '6101' + '6102')), DecodeError)
  throwsExactly(() => binaryToTerm(hex('837400000002' + '770161' + '6101' + '640001' + '61' + '6102')), DecodeError)
  // compound keys with the same bytes: [] twice, {1} twice
  assert.is(throwsExactly(() => binaryToTerm(hex('837400000002' + '6A' + '6101' + '6A' + '6102')), DecodeError).offset, 9)
  throwsExactly(() => binaryToTerm(hex('837400000002' + '68016101' + '6101' + '68016101' + '6102')), DecodeError)
  // distinct compound keys are fine, and so are equal keys in different maps
  const ok = binaryToTerm(hex('837400000002' + '68016101' + '6101' + '68016102' + '6102')) as Map<Term, Term>
  assert.is(ok.size, 2)
  assert.is((binaryToTerm(hex('836C00000002' + '7400000001' + '6A6101' + '7400000001' + '6A6101' + '6A')) as Term[]).length, 2)
})

test('maps: keys =:= but encoded differently are duplicates (erl refuses them too); distinct keys stay distinct', () => {
  const map2 = (k1: string, k2: string) => hex('837400000002' + k1 + '6101' + k2 + '6102')
  const dup = (k1: string, k2: string, msg: string) => {
    const e = throwsExactly(() => binaryToTerm(map2(k1, k2)), DecodeError, msg)
    assert.match(e.message, /duplicate map key/, msg)
  }
  dup('6801' + '64000161', '6801' + '770161', '{a}: ATOM_EXT and SMALL_ATOM_UTF8_EXT')
  dup('6B00026162', '6C00000002' + '6161' + '6162' + '6A', '"ab": STRING_EXT and LIST_EXT')
  dup('6C00000001' + '6101' + '6C00000001' + '6102' + '6A', '6C00000002' + '6101' + '6102' + '6A', '[1|[2]] and [1,2]')
  dup('6C00000001' + '6161' + '6B000162', '6B00026162', '[97|"b"] and "ab"')
  dup('4D0000000208' + '6162', '6D00000002' + '6162', '<<"ab">>: BIT_BINARY_EXT with 8 bits and BINARY_EXT')
  dup('6B0000', '6A', '[] as an empty STRING_EXT and as NIL_EXT')
  dup('6801' + '6E010005', '6801' + '6105', '{5}: SMALL_BIG_EXT and SMALL_INTEGER_EXT')
  dup('7400000002' + '64000161' + '6101' + '64000162' + '6102', '7400000002' + '770162' + '6102' + '770161' + '6101', '#{a=>1,b=>2} in either order')
  dup('68016D00000001' + '78', '68014D000000010878', '{<<"x">>} with either binary tag')
  // =:= is exact: an integer and a float are different keys, as are other near misses
  const distinct = (k1: string, k2: string, msg: string) =>
    assert.is((binaryToTerm(map2(k1, k2)) as Map<Term, Term>).size, 2, msg)
  distinct('68016101', '6801' + '463FF0000000000000', '{1} and {1.0}')
  distinct('6101', '463FF0000000000000', '1 and 1.0')
  distinct('6B00026162', '6C00000002' + '6161' + '6162' + '6B000163', '"ab" and [97,98|"c"]')
  distinct('6C00000001' + '6101' + '6102', '6C00000002' + '6101' + '6102' + '6A', '[1|2] and [1,2]')
  distinct('6D00000001' + '61', '4D0000000107' + '60', '<<"a">> and a 7-bit bitstring')
  distinct('6801' + '64000161', '6801' + '6B000161', '{a} and {"a"}')
  distinct('6802' + '6101' + '6102', '6801' + '6C00000002' + '6101' + '6102' + '6A', '{1,2} and {[1,2]}')
})

test('maps: binary keys are compared by their bytes (long ones that differ only in the middle too)', () => {
  const bin = (fill: number, mid: number, n = 100) => {
    const b = Buffer.alloc(n, fill)
    b[n >> 1] = mid
    return '6D' + n.toString(16).padStart(8, '0') + b.toString('hex')
  }
  const map = (keys: string[]) =>
    hex('8374' + keys.length.toString(16).padStart(8, '0') + keys.map((k, i) => k + '61' + i.toString(16).padStart(2, '0')).join(''))
  assert.is((binaryToTerm(map([bin(1, 1), bin(1, 2), bin(1, 3), bin(2, 1), bin(1, 1, 10), bin(1, 2, 10)])) as Map<Term, Term>).size, 6)
  throwsExactly(() => binaryToTerm(map([bin(1, 1), bin(1, 2), bin(1, 3), bin(1, 2)])), DecodeError)
  throwsExactly(() => binaryToTerm(map([bin(1, 2, 10), bin(1, 3, 10), bin(1, 2, 10)])), DecodeError)
  throwsExactly(() => binaryToTerm(map(['6D00000000', '4D0000000108' + '00', '6D00000000'])), DecodeError)
})

test('maps: a compound key nested 9,000 deep decodes, and is compared, without exhausting the JS stack', () => {
  const deep = (d: number, inner: number) => '6801'.repeat(d) + '61' + inner.toString(16).padStart(2, '0')
  const m = binaryToTerm(hex('837400000002' + deep(9000, 1) + '6101' + deep(9000, 2) + '6102')) as Map<Term, Term>
  assert.is(m.size, 2)
  throwsExactly(() => binaryToTerm(hex('837400000002' + deep(9000, 1) + '6101' + deep(9000, 1) + '6102')), DecodeError)
  // lists too, the innermost encoded differently
  const deepList = (d: number, tail: string) => '6C00000001'.repeat(d) + tail + '6A'.repeat(d)
  throwsExactly(
    () => binaryToTerm(hex('837400000002' + deepList(9000, '6B00026162') + '6101' + deepList(9000, '6C0000000261616162' + '6A') + '6102')),
    DecodeError,
  )
})

test('lists: a list tail is merged (Erlang reads [1|[2]] as [1,2]); zero-length LIST_EXT is its tail', () => {
  assert.equal(binaryToTerm(hex('836C00000001' + '6101' + '6C00000001' + '6102' + '6A')), [1, 2])
  assert.equal(binaryToTerm(hex('836C000000016101' + '6B00026263')), [1, 98, 99])
  assert.is(binaryToTerm(hex('836C00000000' + '6105')), 5)
  const t = binaryToTerm(hex('836C000000016101' + '6C000000016102' + '6103')) as ImproperList
  assert.instance(t, ImproperList)
  assert.equal(t.elements, [1, 2])
  assert.is(t.tail, 3)
})

test('bitstrings: bits past the end are cleared (Erlang ignores them); Bits 8 is a binary; 0 bits refused', () => {
  const b = binaryToTerm(hex('834D0000000103FF')) as BitBinary
  assert.equal([...b.data], [0xe0])
  assert.is(b.bits, 3)
  assert.equal(binaryToTerm(hex('834D0000000208ABCD')), Buffer.from([0xab, 0xcd]))
  throwsExactly(() => binaryToTerm(hex('834D0000000100FF')), DecodeError)
  throwsExactly(() => binaryToTerm(hex('834D0000000109FF')), DecodeError)
  throwsExactly(() => binaryToTerm(hex('834D0000000003')), DecodeError)
})

test('references: zero to five id words, more refused', () => {
  const r = binaryToTerm(hex('835A0000770161' + '00000001')) as Ref
  assert.equal(r.ids, [])
  throwsExactly(() => binaryToTerm(hex('835A0006770161' + '00000001' + '00'.repeat(24))), DecodeError)
})

test('NEW_FUN_EXT: a Size that disagrees with the contents is refused', () => {
  const good = hex(fixtures.find(([n]) => n.startsWith('NEW_FUN_EXT'))![1])
  const bad = Buffer.from(good)
  bad.writeUInt32BE(good.readUInt32BE(2) - 1, 2)
  throwsExactly(() => binaryToTerm(bad), DecodeError)
  const big = Buffer.concat([good, Buffer.from([0])])
  big.writeUInt32BE(good.readUInt32BE(2) + 1, 2)
  throwsExactly(() => binaryToTerm(big), DecodeError)
})

test('EXPORT_EXT arity may be INTEGER_EXT (as the emulator allows) but not a non-integer', () => {
  const t = binaryToTerm(hex('8371' + '6400016D' + '64000166' + '6200000001')) as ExportFun
  assert.is(t.arity, 1)
  throwsExactly(() => binaryToTerm(hex('8371' + '6400016D' + '64000166' + '6A')), DecodeError)
  throwsExactly(() => binaryToTerm(hex('8371' + '6A' + '64000166' + '6101')), DecodeError)
})

test('strings: many STRING_EXTs (cut from latin1 windows) decode exactly, dense or sparse', () => {
  const strs = Array.from({ length: 3000 }, (_, i) => `row ${i} ` + String.fromCharCode(0xa0 + (i % 96)).repeat(i % 40))
  const dense = binaryToTerm(termToBinary(strs)) as string[]
  assert.equal(dense, strs)
  // strings separated by large binaries: windows would serve few strings each
  const sparse: Term[] = []
  for (let i = 0; i < 50; i++) sparse.push(`s${i}é`, Buffer.alloc(10_000, i))
  const back = binaryToTerm(termToBinary(sparse)) as Term[]
  assert.ok(termEquals(back, sparse))
  // a string longer than a window, and strings right at the end of the input
  const edge = ['x'.repeat(5000), ...Array.from({ length: 10 }, (_, i) => 'tail' + i)]
  assert.equal(binaryToTerm(termToBinary(edge)), edge)
})

test('atoms: the byte-keyed cache never confuses atoms (many atoms, same bytes in latin1 and UTF-8)', () => {
  const names = Array.from({ length: 20_000 }, (_, i) => `atom_${i}_${i % 7 === 0 ? 'λ' : 'x'}`)
  for (let round = 0; round < 2; round++) {
    const decoded = binaryToTerm(termToBinary(names.map(atom))) as Atom[]
    decoded.forEach((a, i) => assert.is(a.name, names[i]))
  }
  // bytes C3 A4: 'Ã¤' as latin1 (ATOM_EXT), 'ä' as UTF-8 — alternately, so each hits the other's cache slot
  for (let i = 0; i < 3; i++) {
    assert.is(binaryToTerm(hex('83640002C3A4')), atom('Ã¤'))
    assert.is(binaryToTerm(hex('837702C3A4')), atom('ä'))
  }
  // ASCII atoms are the same atom in either encoding
  assert.is(binaryToTerm(hex('836400026F6B')), binaryToTerm(hex('8377026F6B')))
  // 48 bytes (the longest cached) and 49 (not cached) both decode right, twice
  for (const n of [47, 48, 49, 48, 49])
    assert.is((binaryToTerm(termToBinary(atom('q'.repeat(n)))) as Atom).name, 'q'.repeat(n))
})

test('regression: atoms that differ only in their last bytes get their own cache slots (field_0..field_99 shared a few)', () => {
  for (const names of [
    Array.from({ length: 100 }, (_, i) => `field_${i}`),
    Array.from({ length: 100 }, (_, i) => `key_${i}`),
    Array.from({ length: 100 }, (_, i) => `node${i}@host`),
  ]) {
    const bytes = termToBinary(names.map(atom))
    binaryToTerm(bytes)
    const before = atomCacheStats.misses
    binaryToTerm(bytes)
    // A random hash puts 100 keys in 4,096 direct-mapped slots with about one collision (two misses).
    assert.ok(atomCacheStats.misses - before <= 8, `${names[0]}..: ${atomCacheStats.misses - before} misses of 100 on a second decode`)
  }
})

// --- hostile input ----------------------------------------------------------------------------

test('huge declared lengths fail as truncation without allocating', () => {
  const cases = [
    '836DFFFFFFFF0102', // BINARY_EXT 4 GiB
    '834DFFFFFFFF030102', // BIT_BINARY_EXT
    '836CFFFFFFFF6A', // LIST_EXT
    '8369FFFFFFFF6A', // LARGE_TUPLE_EXT
    '8374FFFFFFFF6A6A', // MAP_EXT
    '836BFFFF6162', // STRING_EXT
    '8368FF6A', // SMALL_TUPLE_EXT
    '8376FFFF61', // ATOM_UTF8_EXT 64 KiB (also over the atom limit)
    '8370FFFFFFFF00', // NEW_FUN_EXT
  ]
  for (const h of cases) {
    const e = thrown(() => binaryToTerm(hex(h)))
    assert.ok(e instanceof TruncatedTermError || e instanceof LimitExceededError, `${h}: ${e}`)
  }
})

test('nesting deeper than maxDepth is refused (default 100,000)', () => {
  const nested = (d: number, open: number[], close: number[]) =>
    Buffer.concat([Buffer.from([131]), Buffer.from(Array(d).fill(open).flat()), Buffer.from([106]), Buffer.from(Array(d).fill(close).flat())])
  const lists = (d: number) => nested(d, [108, 0, 0, 0, 1], [106])
  assert.ok(Array.isArray(binaryToTerm(lists(100_000))))
  assert.is(throwsExactly(() => binaryToTerm(lists(100_001)), LimitExceededError).offset, 1 + 5 * 100_000)
  const tuples = (d: number) => nested(d, [104, 1], [])
  throwsExactly(() => binaryToTerm(tuples(4), { maxDepth: 3 }), LimitExceededError)
  assert.instance(binaryToTerm(tuples(3), { maxDepth: 3 }), Tuple)
  const maps = (d: number) => nested(d, [116, 0, 0, 0, 1, 97, 1], [])
  throwsExactly(() => binaryToTerm(maps(3), { maxDepth: 2 }), LimitExceededError)
})

test('more elements than maxTerms in one term are refused (default 2^24): what bounds its size in the JS heap', () => {
  // A list of n elements, each `elem` (and [] as its tail).
  const list = (n: number, elem: number[]) => {
    const b = Buffer.alloc(6 + n * elem.length + 1, 106)
    b[0] = 131
    b[1] = 108
    b.writeUInt32BE(n, 2)
    if (elem[0] !== 106) for (let i = 0; i < n; i++) b.set(elem, 6 + i * elem.length)
    return b
  }
  // At the limit it decodes (small integers: no object per element, so the test itself stays small).
  assert.is((binaryToTerm(list(1 << 24, [97, 0])) as unknown[]).length, 1 << 24)
  // [[], [], ...]: 1 byte on the wire per element, a new array in the heap. Refused before any is made.
  const e = throwsExactly(() => binaryToTerm(list((1 << 24) + 1, [106])), LimitExceededError)
  assert.is(e.offset, 1)
  assert.match(e.message, /maxTerms/)
  // Counted across the whole term: tuples, lists, map keys and values, fun environments.
  const t = termToBinary([tuple(1, 2), new Map<Term, Term>([[1, 2]]), [3]] as Term)
  assert.ok(binaryToTerm(t, { maxTerms: 8 }))
  throwsExactly(() => binaryToTerm(t, { maxTerms: 7 }), LimitExceededError)
})

test('a million levels of nesting decode without exhausting the JS stack (iterative)', () => {
  const d = 1_000_000
  const buf = Buffer.alloc(1 + 5 * d + 1 + d)
  buf[0] = 131
  for (let i = 0; i < d; i++) buf.set([108, 0, 0, 0, 1], 1 + 5 * i)
  buf.fill(106, 1 + 5 * d)
  let t = binaryToTerm(buf, { maxDepth: Infinity })
  let depth = 0
  while (Array.isArray(t) && t.length === 1) {
    t = t[0]
    depth++
  }
  assert.is(depth, d)
  assert.equal(t, [])
})

test('COMPRESSED: declared size over maxUncompressedSize is refused before inflating', () => {
  const z = deflateSync(Buffer.alloc(100, 106))
  const frame = (size: number, data: Buffer) => {
    const h = Buffer.from([131, 80, 0, 0, 0, 0])
    h.writeUInt32BE(size, 2)
    return Buffer.concat([h, data])
  }
  const e = throwsExactly(() => binaryToTerm(frame(0xffffffff, z)), LimitExceededError)
  assert.is(e.offset, 1)
  throwsExactly(() => binaryToTerm(frame(100, z), { maxUncompressedSize: 99 }), LimitExceededError)
})

test('COMPRESSED bomb: inflating past the declared size stops at the declared size', () => {
  // 64 MiB of zeros compresses to ~64 KiB; it claims to be 1,000 bytes.
  const bomb = deflateSync(Buffer.alloc(64 * 1024 * 1024))
  const h = Buffer.from([131, 80, 0, 0, 0x03, 0xe8])
  throwsExactly(() => binaryToTerm(Buffer.concat([h, bomb])), LimitExceededError)
})

test('COMPRESSED: short inflation, corrupt stream, leftover bytes, zero size', () => {
  const body = termToBinary([1, 2, 3]).subarray(1)
  const frame = (size: number, data: Buffer) => {
    const h = Buffer.from([131, 80, 0, 0, 0, 0])
    h.writeUInt32BE(size, 2)
    return Buffer.concat([h, data])
  }
  assert.equal(binaryToTerm(frame(body.length, deflateSync(body))), [1, 2, 3])
  throwsExactly(() => binaryToTerm(frame(body.length + 1, deflateSync(body))), DecodeError)
  throwsExactly(() => binaryToTerm(frame(body.length, Buffer.from('not zlib at all'))), DecodeError)
  throwsExactly(() => binaryToTerm(frame(body.length + 1, deflateSync(Buffer.concat([body, Buffer.from([0])])))), DecodeError)
  throwsExactly(() => binaryToTerm(frame(0, deflateSync(Buffer.alloc(0)))), DecodeError)
  // a truncated term inside valid zlib keeps its class; the offset points at the stream
  const cut = body.subarray(0, body.length - 1)
  const e = throwsExactly(() => binaryToTerm(frame(cut.length, deflateSync(cut))), TruncatedTermError)
  assert.is(e.offset, 6)
})

// --- zero copy ----------------------------------------------------------------------------------

test('zero copy: a binary over 64 bytes is a view into the input (same ArrayBuffer, its offset)', () => {
  const input = Buffer.alloc(300)
  input.set([131, 109, 0, 0, 0, 100], 0)
  input.fill(5, 6, 106)
  const b = binaryToTerm(input.subarray(0, 106)) as Buffer
  assert.is(b.buffer, input.buffer)
  assert.is(b.byteOffset, input.byteOffset + 6)
  assert.is(b.length, 100)
  input[6] = 99
  assert.is(b[0], 99, 'shares memory')
})

test('zero copy: 64 bytes or less is copied (does not pin the input)', () => {
  const input = Buffer.alloc(70)
  input.set([131, 109, 0, 0, 0, 64], 0)
  input.fill(5, 6)
  const b = binaryToTerm(input) as Buffer
  assert.is.not(b.buffer, input.buffer)
  input[6] = 99
  assert.is(b[0], 5, 'a copy')
  assert.is(b.length, 64)
})

test('zero copy: copyThreshold moves the line; bitstrings and nested binaries follow it', () => {
  const input = Buffer.alloc(20)
  input.set([131, 109, 0, 0, 0, 10], 0)
  assert.is((binaryToTerm(input.subarray(0, 16), { copyThreshold: 9 }) as Buffer).buffer, input.buffer)
  assert.is.not((binaryToTerm(input.subarray(0, 16), { copyThreshold: 10 }) as Buffer).buffer, input.buffer)
  const bits = Buffer.alloc(300)
  bits.set([131, 77, 0, 0, 0, 100, 3], 0)
  const bb = binaryToTerm(bits.subarray(0, 107)) as BitBinary
  assert.is(bb.data.buffer, bits.buffer)
  assert.is(bb.data.byteOffset, bits.byteOffset + 7)
  const many = termToBinary(Array.from({ length: 64 }, (_, i) => Buffer.alloc(1024, i)))
  const decoded = binaryToTerm(many) as Buffer[]
  decoded.forEach((b, i) => {
    assert.is(b.buffer, many.buffer)
    assert.is(b[0], i)
  })
})

test('viewMin: binaries over copyThreshold but under it get a copy in memory at most 8 times their size', () => {
  const input = termToBinary([Buffer.alloc(100, 1), Buffer.alloc(2000, 2), Buffer.alloc(10, 3), Buffer.alloc(3000, 4)])
  const [a, b, c, d] = binaryToTerm(input, { viewMin: 3000 }) as Buffer[]
  assert.is.not(a.buffer, input.buffer)
  assert.is(a.buffer.byteLength, 100, 'its own memory: a pool slab would be 80 times its size')
  assert.ok(a.every((x) => x === 1))
  assert.is.not(b.buffer, input.buffer)
  assert.ok(b.buffer.byteLength <= 8 * 2000, `a copy in at most 8 times its size, not ${b.buffer.byteLength}`)
  assert.ok(b.every((x) => x === 2))
  assert.is(d.buffer, input.buffer, 'viewMin bytes and more: a view')
  assert.is.not(c.buffer, input.buffer)
  const [e] = binaryToTerm(input) as Buffer[]
  assert.is(e.buffer, input.buffer, 'default 0: a view')
})

test.run()
