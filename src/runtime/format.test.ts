import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { formatTerm } from './format.js'
import { atom, tuple, BitBinary, ImproperList } from '../etf/terms.js'

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

test('bitstrings print as ~p does: whole bytes, then Value:Bits', () => {
  // <<1:3>>, <<"ab",1:3>> and <<255:7>> in Erlang (io:format("~p") gives <<1:3>>, <<97,98,1:3>>, <<127:7>>).
  assert.is(formatTerm(new BitBinary(Buffer.of(0x20), 3)), '<<1:3>>')
  assert.is(formatTerm(new BitBinary(Buffer.of(97, 98, 0x20), 3)), '<<97,98,1:3>>')
  assert.is(formatTerm(new BitBinary(Buffer.of(0xfe), 7)), '<<127:7>>')
})

test('maps print as #{K => V}', () => {
  assert.is(formatTerm(new Map([[atom('host'), Buffer.from('x')]])), '#{host => <<"x">>}')
})

test.run()
