// Regression (found by the distribution fuzzer): a Map whose keys are distinct JS objects but the same
// Erlang term was encoded into ETF that erl refuses with badarg, which would drop the connection.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { termToBinary } from './encode.js'
import { binaryToTerm } from './decode.js'
import { EncodeError } from './errors.js'
import { atom, tuple, Float, ImproperList } from './terms.js'

const refused = (m: Map<unknown, unknown>) =>
  assert.throws(() => termToBinary(m as never), (e: unknown) => e instanceof EncodeError && /same Erlang term/.test((e as Error).message))

test('map keys equal as Erlang terms but distinct in JS are refused with EncodeError', () => {
  refused(new Map([[tuple(1), 'a'], [tuple(1), 'b']]))
  refused(new Map<unknown, unknown>([[1, 'a'], [1n, 'b']]))
  refused(new Map([[new Float(1), 'a'], [new Float(1), 'b']]))
  refused(new Map<unknown, unknown>([['ab', 1], [[97, 98], 2]]))
  refused(new Map<unknown, unknown>([[[1, 2], 1], [new ImproperList([1], [2]), 2]]))
  refused(new Map([[Buffer.from('x'), 1], [Buffer.from('x'), 2]]))
  refused(new Map<unknown, unknown>([[atom('true'), 1], [true, 2]]))
  refused(new Map([[new Map([[atom('a'), 1], [atom('b'), 2]]), 1], [new Map([[atom('b'), 2], [atom('a'), 1]]), 2]]))
})

test('keys whose hashes collide are told apart byte for byte (binaries hash by their ends)', () => {
  const bin = (b: number) => {
    const x = Buffer.alloc(200, 7)
    x[100] = b
    return x
  }
  const m = new Map<unknown, unknown>([[bin(1), 1], [bin(2), 2], [bin(3), 3]])
  assert.is((binaryToTerm(termToBinary(m as never)) as Map<unknown, unknown>).size, 3)
  refused(new Map<unknown, unknown>([...m, [bin(2), 4]]))
})

test('distinct compound keys still encode, and round-trip', () => {
  const m = new Map<unknown, unknown>([[tuple(1), 'a'], [tuple(2), 'b'], [1, 'c'], [new Float(1), 'd'], ['ab', 1], [[97, 99], 2]])
  const back = binaryToTerm(termToBinary(m as never)) as Map<unknown, unknown>
  assert.is(back.size, 6)
})

test('regression: keys holding deeply nested maps are checked in linear time (nested JSON escaping grew 2^depth)', () => {
  let deep: unknown = 1
  for (let i = 0; i < 200; i++) deep = new Map<unknown, unknown>([[atom('k'), deep], [tuple(i), Buffer.alloc(100)]])
  const m = new Map<unknown, unknown>([[deep, 1], [tuple(deep as never), 2]])
  assert.is((binaryToTerm(termToBinary(m as never)) as Map<unknown, unknown>).size, 2)
  refused(new Map<unknown, unknown>([[deep, 1], [new Map([...(deep as Map<unknown, unknown>)].reverse()), 2]]))
})

test('a cyclic key, a key that is not a term, and a plain-object key equal to a Map key: EncodeError', () => {
  const cyclic: unknown[] = [1]
  cyclic.push(cyclic)
  const enc = (m: Map<unknown, unknown>, re: RegExp) =>
    assert.throws(() => termToBinary(m as never), (e: unknown) => e instanceof EncodeError && re.test((e as Error).message))
  enc(new Map<unknown, unknown>([[tuple(cyclic as never), 1], [tuple(2), 2]]), /nests deeper/)
  enc(new Map<unknown, unknown>([[tuple(Symbol("s") as never), 1], [tuple(2), 2]]), /not an Erlang term/)
  refused(new Map<unknown, unknown>([[{ a: 1 }, 1], [new Map([[atom('a'), 1]]), 2]]))
  // An object with no prototype encodes as a map too, as a key as well as alone (it was refused as a key).
  const bare = Object.assign(Object.create(null) as object, { a: 1 })
  assert.is((binaryToTerm(termToBinary(new Map<unknown, unknown>([[bare, 1], [atom('x'), 2]]) as never)) as Map<unknown, unknown>).size, 2)
  refused(new Map<unknown, unknown>([[bare, 1], [{ a: 1 }, 2]]))
})

test('keys nested deeper than the old 1,000-level key limit encode, up to the encoder\'s maxDepth', () => {
  let deep: unknown = 1
  for (let i = 0; i < 5000; i++) deep = tuple(deep as never)
  const m = new Map<unknown, unknown>([[deep, 1], [tuple(deep as never), 2]])
  assert.is((binaryToTerm(termToBinary(m as never)) as Map<unknown, unknown>).size, 2)
})

test.run()
