// The ETF codec against the real BEAM, both directions:
//  1. Erlang generates random terms of every type and term_to_binary's them; we decode and re-encode each;
//     Erlang checks binary_to_term(Ours) =:= Original.
//  2. Terms built in TypeScript are encoded here; Erlang checks each equals the value of an Erlang expression.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync, writeFileSync } from 'node:fs'
import * as path from 'node:path'
import { Epmd, ErlNode, cleanup, compileErlang, repoRoot, tempDir } from './harness.js'
import {
  BitBinary,
  DecodeError,
  ExportFun,
  Float,
  ImproperList,
  atom,
  binaryToTerm,
  mapGet,
  termToBinary,
  termToChunks,
  tuple,
  type Term,
} from '../src/etf/index.js'

const TERMS = Number(process.env.ETF_INTEGRATION_TERMS ?? 10_000)
const SEED = Number(process.env.ETF_INTEGRATION_SEED ?? Date.now() % 100_000)

let epmd: Epmd
let erl: ErlNode
let dir: string

test.before(async () => {
  dir = tempDir('ts-cnode-etf-')
  const beams = await compileErlang([path.join(repoRoot, 'integration', 'erl', 'etf_gen.erl')])
  epmd = await Epmd.start()
  erl = await ErlNode.start({ name: 'etf_gen', epmdPort: epmd.port, codePath: [beams] })
})

test.after(async () => {
  await cleanup()
})

function frames(buf: Buffer): Buffer[] {
  const out: Buffer[] = []
  let p = 0
  while (p < buf.length) {
    const n = buf.readUInt32BE(p)
    out.push(buf.subarray(p + 4, p + 4 + n))
    p += 4 + n
  }
  return out
}

function frame(parts: Buffer[]): Buffer[] {
  const len = parts.reduce((s, b) => s + b.length, 0)
  const h = Buffer.alloc(4)
  h.writeUInt32BE(len)
  return [h, ...parts]
}

test(`Erlang → decode → encode → Erlang: ${TERMS} random terms stay =:= (seed ${SEED})`, async () => {
  const generated = await erl.eval(`etf_gen:generate(${JSON.stringify(dir)}, ${TERMS}, ${SEED})`, 120_000)
  assert.is(generated, `{generated,${TERMS}}`)
  console.log('  coverage (terms containing each kind):', (await erl.eval('etf_gen:coverage()')).replace(/\s+/g, ' '))

  const inputs = frames(readFileSync(path.join(dir, 'gen.bin')))
  assert.is(inputs.length, TERMS)
  const out: Buffer[] = []
  let compressed = 0
  inputs.forEach((b, i) => {
    if (b[1] === 80) compressed++
    const t = binaryToTerm(b)
    // Alternate the two encoder outputs: one Buffer, and the chunk list a socket would get.
    out.push(...frame(i % 2 === 0 ? [termToBinary(t)] : termToChunks(t)))
  })
  assert.ok(compressed > 0, 'some inputs were COMPRESSED')
  writeFileSync(path.join(dir, 'ours.bin'), Buffer.concat(out))

  const verdict = await erl.eval(`etf_gen:check_roundtrip(${JSON.stringify(dir)})`, 120_000)
  const m = /^\{roundtrip,(\d+),(\d+),/.exec(verdict)
  assert.ok(m, verdict)
  console.log(`  round trip: ${m![1]} of ${TERMS} terms =:= the original (${compressed} were COMPRESSED)`)
  assert.is(Number(m![2]), 0, `mismatches: ${verdict.slice(0, 2000)}`)
  assert.is(Number(m![1]), TERMS)
})

test('Erlang → decode → encode with compression → Erlang', async () => {
  // Re-encode the same inputs COMPRESSED: Erlang must read our zlib output too.
  const inputs = frames(readFileSync(path.join(dir, 'gen.bin')))
  const out: Buffer[] = []
  let smaller = 0
  for (const b of inputs) {
    const t = binaryToTerm(b)
    const plain = termToBinary(t)
    const z = termToBinary(t, { compressed: 6 })
    if (z[1] === 80) smaller++
    out.push(...frame([z]))
    if (z[1] !== 80) assert.equal(z, plain, 'uncompressed fallback is the plain encoding')
  }
  assert.ok(smaller > 100, `${smaller} outputs were COMPRESSED`)
  writeFileSync(path.join(dir, 'ours.bin'), Buffer.concat(out))
  const verdict = await erl.eval(`etf_gen:check_roundtrip(${JSON.stringify(dir)})`, 120_000)
  const m = /^\{roundtrip,(\d+),(\d+),/.exec(verdict)
  assert.ok(m, verdict)
  assert.is(Number(m![2]), 0, verdict.slice(0, 2000))
  assert.is(Number(m![1]), inputs.length)
})

// [Erlang source of the expected value, the term built in TypeScript]
const cases: [string, Term | Record<string, unknown>][] = [
  ['ok', atom('ok')],
  ["'hello world'", atom('hello world')],
  ["''", atom('')],
  ["'λx→y'", atom('λx→y')],
  ["'😀'", atom('😀')],
  [`'${'x'.repeat(255)}'`, atom('x'.repeat(255))],
  [`'${'λ'.repeat(255)}'`, atom('λ'.repeat(255))],
  ['true', true],
  ['false', false],
  ['0', 0],
  ['255', 255],
  ['256', 256],
  ['-1', -1],
  ['-2147483648', -2147483648],
  ['2147483647', 2147483647],
  ['2147483648', 2147483648],
  ['-2147483649', -2147483649],
  ['9007199254740991', Number.MAX_SAFE_INTEGER],
  ['-9007199254740991', -Number.MAX_SAFE_INTEGER],
  ['9007199254740992', 2n ** 53n],
  ['18446744073709551615', 2n ** 64n - 1n],
  ['18446744073709551616', 2n ** 64n],
  ['-18446744073709551616', -(2n ** 64n)],
  ['1 bsl 70', 2n ** 70n],
  ['-(1 bsl 2000) + 7', -(2n ** 2000n) + 7n],
  ['100000000000000000000', 1e20],
  ['1.5', 1.5],
  ['-0.1', -0.1],
  ['1.0', new Float(1)],
  ['1.0e300', new Float(1e300)],
  ['5.0e-324', 5e-324],
  ['-0.0', new Float(-0)],
  ['""', ''],
  ['"hello"', 'hello'],
  ['[104,233,108,108,243]', 'hélló'],
  ['[955,8594,128512]', 'λ→😀'],
  ['lists:duplicate(65535, $a)', 'a'.repeat(65535)],
  ['lists:duplicate(70000, $a)', 'a'.repeat(70000)],
  ['[]', []],
  ['[1,2,3]', [1, 2, 3]],
  ['[1|2]', new ImproperList([1], 2)],
  ['[a,b|<<"c">>]', new ImproperList([atom('a'), atom('b')], Buffer.from('c'))],
  ['[1,2,3]', new ImproperList([1], [2, 3])],
  ['x', new ImproperList([], atom('x'))],
  ['{}', tuple()],
  ['{ok, 1, "x"}', tuple(atom('ok'), 1, 'x')],
  ['list_to_tuple(lists:seq(1, 300))', tuple(...Array.from({ length: 300 }, (_, i) => i + 1))],
  ['<<>>', Buffer.alloc(0)],
  ['<<1,2,3>>', Buffer.from([1, 2, 3])],
  ['binary:copy(<<7>>, 100000)', Buffer.alloc(100000, 7)],
  ['<<1:3>>', new BitBinary(Buffer.from([0b00100000]), 3)],
  ['<<255, 7:3>>', new BitBinary(Buffer.from([255, 0b11100000]), 3)],
  ['<<255, 7:3>>', new BitBinary(Buffer.from([255, 0b11111111]), 3)],
  ['#{}', new Map()],
  ['#{a => 1, {b, 2} => [c], <<"k">> => #{}, 1.0 => f, [1] => l}',
    new Map<Term, Term>([
      [atom('a'), 1],
      [tuple(atom('b'), 2), [atom('c')]],
      [Buffer.from('k'), new Map()],
      [new Float(1), atom('f')],
      [[1], atom('l')],
    ])],
  ['#{a => 1, b => [#{c => "d"}]}', { a: 1, b: [{ c: 'd' }] }],
  ['fun lists:map/2', new ExportFun(atom('lists'), atom('map'), 2)],
  ['fun erlang:\'+\'/2', new ExportFun(atom('erlang'), atom('+'), 2)],
  ['{[[[[[[[[[[deep]]]]]]]]]]}', tuple([[[[[[[[[[atom('deep')]]]]]]]]]])],
  ['lists:foldl(fun(_, A) -> [A] end, [], lists:seq(1, 5000))',
    Array.from({ length: 5000 }).reduce<Term>((a) => [a], [])],
  ['{\'$gen_call\', {self_placeholder, [alias | 1]}, {is_auth, n@h}}',
    tuple(atom('$gen_call'), tuple(atom('self_placeholder'), new ImproperList([atom('alias')], 1)), tuple(atom('is_auth'), atom('n@h')))],
]

test(`TypeScript → Erlang: ${cases.length} hand-built terms equal the expected Erlang values`, async () => {
  const out: Buffer[] = []
  cases.forEach(([src, t], i) => {
    out.push(...frame([Buffer.from(src, 'utf8')]))
    out.push(...frame(i % 2 === 0 ? [termToBinary(t as Term)] : termToChunks(t as Term)))
  })
  writeFileSync(path.join(dir, 'ts.bin'), Buffer.concat(out))
  const verdict = await erl.eval(`etf_gen:check_expected(${JSON.stringify(dir)})`, 60_000)
  const m = /^\{expected,(\d+),(\d+),/.exec(verdict)
  assert.ok(m, verdict)
  assert.is(Number(m![2]), 0, verdict.slice(0, 3000))
  assert.is(Number(m![1]), cases.length)
})

// Map keys that are =:= but encoded differently: erl's binary_to_term refuses the map (badarg), and so must
// we; keys that only look alike (an integer and a float, [1|2] and [1,2]) are two keys for both.
const mapKeyCases: [string, string, string][] = [
  ['{a}: ATOM_EXT and SMALL_ATOM_UTF8_EXT', '680164000161', '6801770161'],
  ['"ab": STRING_EXT and LIST_EXT', '6B00026162', '6C000000026161616' + '26A'],
  ['[1|[2]] and [1,2]', '6C0000000161016C0000000161026A', '6C00000002610161026A'],
  ['<<"ab">>: BIT_BINARY_EXT with 8 bits and BINARY_EXT', '4D00000002086162', '6D000000026162'],
  ['[]: an empty STRING_EXT and NIL_EXT', '6B0000', '6A'],
  ['{5}: SMALL_BIG_EXT and SMALL_INTEGER_EXT', '68016E010005', '68016105'],
  ['#{a=>1,b=>2} in either order', '74000000026400016161016400016261' + '02', '7400000002770162610277016161' + '01'],
  ['{1} and {1.0}', '68016101', '6801463FF0000000000000'],
  ['[1|2] and [1,2]', '6C0000000161016102', '6C00000002610161026A'],
  ['{a} and {"a"}', '680164000161', '68016B000161'],
]

test('map keys =:= but encoded differently: we and erl refuse the same maps', async () => {
  const maps = mapKeyCases.map(([, k1, k2]) => '837400000002' + k1 + '6101' + k2 + '6102')
  const ours = maps.map((h) => {
    try {
      return String((binaryToTerm(Buffer.from(h, 'hex')) as Map<Term, Term>).size)
    } catch (e) {
      if (e instanceof DecodeError) return 'badarg'
      throw e
    }
  })
  const list = maps.map((h) => `<<"${h}">>`).join(',')
  const verdict = await erl.eval(
    `[try integer_to_list(map_size(binary_to_term(binary:decode_hex(H)))) catch error:badarg -> "badarg" end || H <- [${list}]]`,
  )
  const theirs = [...verdict.matchAll(/"([^"]*)"/g)].map((m) => m[1])
  mapKeyCases.forEach(([name], i) => assert.is(ours[i], theirs[i], `${name}: ours ${ours[i]}, erl ${theirs[i]} (${verdict})`))
  assert.ok(ours.includes('badarg') && ours.includes('2'), 'both kinds of case are exercised')
})

test('mapGet on a map erl encoded: binary (Elixir string), tuple, list and integer keys found by value', async () => {
  const m = (await erl.evalTerm(`#{<<"name">> => x, {1, 2} => y, "ab" => z, 3 => t, 1.5 => f, true => b}`)) as Map<Term, Term>
  assert.is(m.get(Buffer.from('name')), undefined, 'Map#get alone finds no binary key')
  assert.is(mapGet(m, Buffer.from('name')), atom('x'))
  assert.is(mapGet(m, tuple(1, 2)), atom('y'))
  assert.is(mapGet(m, [97, 98]), atom('z'))
  assert.is(mapGet(m, 3n), atom('t'))
  assert.is(mapGet(m, 1.5), atom('f'))
  assert.is(mapGet(m, atom('true')), atom('b'))
  assert.is(mapGet(m, new Float(3)), undefined, '3.0 is not the key 3')
  assert.is(mapGet(m, Buffer.from('nam')), undefined)
})

test.run()
