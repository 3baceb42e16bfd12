import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { formatTerm } from './format.js'
import { atom, tuple, ImproperList } from '../etf/terms.js'

test('charlists print as io_lib would: printable as "text", else as the integer list', () => {
  assert.is(formatTerm('hello'), '"hello"')
  assert.is(formatTerm('\u0001\u0002\u0003'), '[1,2,3]')
  assert.is(formatTerm(''), '[]')
  assert.is(formatTerm('caf\u00e9'), '"café"')
})

test('atoms, tuples, improper lists and binaries print in Erlang syntax', () => {
  assert.is(formatTerm(tuple(atom('ok'), atom('Quoted'), Buffer.from('ab'))), `{ok,'Quoted',<<"ab">>}`)
  assert.is(formatTerm(new ImproperList([1], 2)), '[1|2]')
})

test('a plain object prints as the map with atom keys it encodes to', () => {
  assert.is(formatTerm({ a: 1, 'b c': [] }), "#{a => 1,'b c' => []}")
})

test.run()
