import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Tuple, atom, termEquals, tuple, type Term } from '../etf/terms.js'
import { binaryToTerm, termToBinary, termToChunks } from '../etf/index.js'
import { BadRequestError, InvalidEncodingError } from './errors.js'
import {
  ResultEncoder,
  SEED_MODE,
  byteaBytes,
  cmdTuples,
  bindChunks,
  extendedQueryChunks,
  paramFormats,
  paramValues,
  parseConnectOptions,
  termText,
  textTerm,
} from './pg-result.js'

const ok = atom('ok')
const eq = (a: Term, b: Term) => assert.ok(termEquals(a, b), `${String(a)} =/= ${String(b)}`)

test('PQcmdTuples: counts only for the commands libpq reports them for', () => {
  assert.is(cmdTuples('INSERT 0 1'), '1')
  assert.is(cmdTuples('INSERT 0 25'), '25')
  assert.is(cmdTuples('UPDATE 3'), '3')
  assert.is(cmdTuples('DELETE 0'), '0')
  assert.is(cmdTuples('SELECT 7'), '7')
  assert.is(cmdTuples('MERGE 2'), '2')
  assert.is(cmdTuples('FETCH 4'), '4')
  assert.is(cmdTuples('MOVE 5'), '5')
  assert.is(cmdTuples('COPY 6'), '6')
  assert.is(cmdTuples('CREATE TABLE'), '')
  assert.is(cmdTuples('BEGIN'), '')
  assert.is(cmdTuples('INSERT 0'), '')
  assert.is(cmdTuples('UPDATE x'), '')
})

test('seed mode: a SELECT is {ok, [Names | Rows]} of strings, NULL is []', () => {
  const e = new ResultEncoder(SEED_MODE)
  e.rowDescription([{ name: 'a', dataTypeID: 23 }, { name: 'b', dataTypeID: 25 }])
  e.dataRow(['1', null])
  e.dataRow(['2', 'x'])
  e.commandComplete('SELECT 2')
  eq(e.result(), tuple(ok, [['a', 'b'], ['1', []], ['2', 'x']]))
})

test('seed mode: non-ASCII text comes back as its UTF-8 bytes, as PQgetvalue gives it', () => {
  const e = new ResultEncoder(SEED_MODE)
  e.rowDescription([{ name: 'é', dataTypeID: 25 }])
  e.dataRow(['café'])
  e.commandComplete('SELECT 1')
  eq(e.result(), tuple(ok, [[[0xc3, 0xa9]], [[99, 97, 102, 0xc3, 0xa9]]]))
  const u = new ResultEncoder({ binary: false, unicode: true })
  u.rowDescription([{ name: 'v', dataTypeID: 25 }])
  u.dataRow(['café'])
  u.commandComplete('SELECT 1')
  eq(u.result(), tuple(ok, [['v'], ['café']]))
})

test('seed mode: commands give the count string, or [] when there is none', () => {
  const e = new ResultEncoder(SEED_MODE)
  e.commandComplete('INSERT 0 1')
  eq(e.result(), tuple(ok, '1'))
  const c = new ResultEncoder(SEED_MODE)
  c.commandComplete('CREATE TABLE')
  eq(c.result(), tuple(ok, []))
})

test('several statements: the last result wins, as PQexec', () => {
  const e = new ResultEncoder(SEED_MODE)
  e.rowDescription([{ name: 'a', dataTypeID: 23 }])
  e.dataRow(['1'])
  e.commandComplete('SELECT 1')
  e.commandComplete('INSERT 0 3')
  eq(e.result(), tuple(ok, '3'))
  const f = new ResultEncoder(SEED_MODE)
  f.commandComplete('CREATE TABLE')
  f.rowDescription([{ name: 'b', dataTypeID: 23 }])
  f.commandComplete('SELECT 0')
  eq(f.result(), tuple(ok, [['b']]))
})

test('an empty query is {error, []}: the seed encodes the empty PQerrorMessage', () => {
  const e = new ResultEncoder(SEED_MODE)
  e.emptyQuery()
  eq(e.result(), tuple(atom('error'), []))
})

test('binary mode: binaries, null, integer counts, bytea as its bytes', () => {
  const e = new ResultEncoder({ binary: true, unicode: false })
  e.rowDescription([{ name: 'n', dataTypeID: 23 }, { name: 'b', dataTypeID: 17 }, { name: 't', dataTypeID: 25 }])
  e.dataRow(['42', '\\x00ff10', null])
  e.commandComplete('SELECT 1')
  eq(e.result(), tuple(ok, [[Buffer.from('n'), Buffer.from('b'), Buffer.from('t')], [Buffer.from('42'), Buffer.from([0, 255, 16]), atom('null')]]))
  const c = new ResultEncoder({ binary: true, unicode: false })
  c.commandComplete('UPDATE 12')
  eq(c.result(), tuple(ok, 12))
  const d = new ResultEncoder({ binary: true, unicode: false })
  d.commandComplete('CREATE TABLE')
  eq(d.result(), tuple(ok, atom('null')))
})

test('bytea escape format is decoded too', () => {
  assert.equal([...byteaBytes('a\\000\\\\b\\377')], [97, 0, 92, 98, 255])
})

test('query text that is not UTF-8: the server\'s own error text, as psql printed it for the same bytes', () => {
  const refused = (b: number[], bytes: string) =>
    assert.throws(
      () => termText(Buffer.from(b), 'query'),
      (e: unknown) => e instanceof InvalidEncodingError && e.message === `ERROR:  invalid byte sequence for encoding "UTF8": ${bytes}\n`,
    )
  const q = (s: string, ...mid: number[]) => [...Buffer.from("select '"), ...mid, ...Buffer.from(s)]
  refused(q("' as e", 0xff), '0xff')
  refused(q("' as f", 0x61, 0xe2, 0x82), '0xe2 0x82 0x27') // the bytes the lead byte claims, quote included
  refused(q("'", 0x61, 0xc3), '0xc3 0x27')
  refused(q("'", 0xed, 0xa0, 0x80), '0xed 0xa0 0x80') // a surrogate, in UTF-8's form
  refused(q("'", 0xc0, 0x80), '0xc0 0x80') // overlong
  refused([0x61, 0xf0, 0x9f], '0xf0 0x9f') // cut short by the end
  assert.is(termText(Buffer.from("select '\u{1f600}é'"), 'query'), "select '\u{1f600}é'")
  // Code points with a lone surrogate have no UTF-8 form at all.
  assert.throws(() => termText([0x61, 0xd800], 'query'), (e: unknown) => e instanceof BadRequestError && /lone surrogate/.test((e as Error).message))
})

test('connect options', () => {
  assert.equal(parseConnectOptions([]), { binary: false, unicode: false })
  assert.equal(parseConnectOptions([atom('binary')]), { binary: true, unicode: false })
  assert.equal(parseConnectOptions([atom('unicode'), atom('list')]), { binary: false, unicode: true })
  assert.throws(() => parseConnectOptions([atom('bogus')]), (e: unknown) => e instanceof BadRequestError)
  assert.throws(() => parseConnectOptions(atom('binary')), (e: unknown) => e instanceof BadRequestError)
})

test('query text: binaries are UTF-8, byte charlists that are UTF-8 are UTF-8, others are code points', () => {
  assert.is(termText(Buffer.from('select 1'), 'query'), 'select 1')
  assert.is(termText('select 1', 'query'), 'select 1')
  assert.is(termText(Buffer.from('café', 'latin1').toString('latin1'), 'query'), 'café')
  assert.is(termText(Buffer.from('café', 'utf8').toString('latin1'), 'query'), 'café')
  assert.is(termText([0x43, 0x1f600], 'query'), 'C\u{1f600}')
  assert.is(termText([Buffer.from('sel'), 'ect', [32, 49]], 'query'), 'select 1')
  assert.throws(() => termText(42 as Term, 'query'), (e: unknown) => e instanceof BadRequestError)
  assert.throws(() => termText(atom('x'), 'query'), (e: unknown) => e instanceof BadRequestError)
  assert.throws(() => termText([atom('x')], 'query'), (e: unknown) => e instanceof BadRequestError)
})

test('textTerm: the empty string is []', () => {
  eq(textTerm('', SEED_MODE), [])
})

test('parameters: binaries by reference, text, numbers, null', () => {
  const big = Buffer.alloc(1000, 7)
  const ps = paramValues([big, 'text', 42, 1.5, 12345678901234567890n, atom('null'), true, []])
  assert.ok(ps[0] === big, 'the binary itself, not a copy')
  assert.equal(ps.slice(1), ['text', '42', '1.5', '12345678901234567890', null, 'true', ''])
  assert.throws(() => paramValues(atom('x')), (e: unknown) => e instanceof BadRequestError)
  assert.throws(() => paramValues([tuple(1, 2)]), (e: unknown) => e instanceof BadRequestError)
})

test('Bind keeps large parameters as their own chunks (by reference) and encodes the message correctly', () => {
  const big = Buffer.alloc(5000, 0xab)
  const chunks = extendedQueryChunks('select $1::bytea, $2, $3', [big, 'x', null], [1, 0, 0])
  assert.ok(chunks.includes(big), 'the parameter Buffer itself is one of the chunks')
  const all = Buffer.concat(chunks)
  // Parse
  assert.is(all[0], 0x50)
  const parseLen = all.readInt32BE(1)
  const afterParse = 1 + parseLen
  assert.is(all.toString('utf8', 6, 6 + 'select $1::bytea, $2, $3'.length), 'select $1::bytea, $2, $3')
  // Bind
  assert.is(all[afterParse], 0x42)
  const bindLen = all.readInt32BE(afterParse + 1)
  assert.is(afterParse + 1 + bindLen, all.length)
  let p = afterParse + 5 + 2 // portal '' and statement ''
  assert.is(all.readInt16BE(p), 3)
  assert.equal([all.readInt16BE(p + 2), all.readInt16BE(p + 4), all.readInt16BE(p + 6)], [1, 0, 0])
  p += 8
  assert.is(all.readInt16BE(p), 3)
  p += 2
  assert.is(all.readInt32BE(p), 5000)
  p += 4 + 5000
  assert.is(all.readInt32BE(p), 1)
  assert.is(all.toString('utf8', p + 4, p + 5), 'x')
  p += 5
  assert.is(all.readInt32BE(p), -1)
  assert.is(all.readInt16BE(p + 4), 0)
})

test('refc-style in: a large binary parameter goes from the received frame to the Bind chunks without a copy', () => {
  const payload = Buffer.alloc(100_000, 0x42)
  const frame = termToBinary(tuple(atom('select'), Buffer.from('insert into t values ($1)'), [payload]))
  const request = binaryToTerm(frame) as Tuple
  const param = (request.get(2) as Term[])[0] as Buffer
  assert.ok(param.buffer === frame.buffer, 'the decoded binary is a view of the frame')
  const values = paramValues(request.get(2))
  assert.ok(values[0] === param, 'the parameter is that view')
  const chunks = extendedQueryChunks('insert into t values ($1)', values, paramFormats(values, [17]))
  assert.ok(chunks.includes(param), 'and it is written to the socket as its own chunk')
  // As text (the column is text, say), the same: only the format code differs.
  const asText = bindChunks(values, paramFormats(values, [25]))
  assert.ok(asText.includes(param), 'a text-format binary is its own chunk too')
  assert.is(Buffer.concat(asText).readInt16BE(1 + 4 + 2 + 2), 0, 'in text format')
})

test('parameter formats: a binary is binary only for bytea, and for uuid when it is 16 bytes; text otherwise', () => {
  const OIDS = { int4: 23, text: 25, float8: 701, bool: 16, jsonb: 3802, varchar: 1043, bytea: 17, uuid: 2950, unknown: 705 }
  const b = (s: string) => Buffer.from(s)
  const uuid16 = Buffer.alloc(16, 1)
  const params = [b('1000'), b('ann'), b('2.5'), b('f'), b('{}'), b('v'), b('\\xff'), uuid16, b('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), b('?'), '42', null, 'x']
  const types = [OIDS.int4, OIDS.text, OIDS.float8, OIDS.bool, OIDS.jsonb, OIDS.varchar, OIDS.bytea, OIDS.uuid, OIDS.uuid, OIDS.unknown, OIDS.int4, OIDS.bytea, OIDS.bytea]
  assert.equal(paramFormats(params, types), [0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0])
  // A parameter the server did not describe (a count mismatch it will report itself) goes as text.
  assert.equal(paramFormats([b('x'), b('y')], [OIDS.bytea]), [1, 0])
})

test('refc-style out: a large bytea or text value in binary mode is a chunk of its own when encoded', () => {
  const e = new ResultEncoder({ binary: true, unicode: false })
  e.rowDescription([{ name: 'b', dataTypeID: 17 }, { name: 't', dataTypeID: 25 }])
  e.dataRow(['\\x' + 'ab'.repeat(5000), 'y'.repeat(5000)])
  e.commandComplete('SELECT 1')
  const reply = e.result() as Tuple
  const row = (reply.get(1) as Term[][])[1]
  assert.ok(Buffer.isBuffer(row[0]) && Buffer.isBuffer(row[1]))
  const chunks = termToChunks(reply)
  assert.ok(chunks.includes(row[0] as Buffer), 'the bytea value goes out by reference')
  assert.ok(chunks.includes(row[1] as Buffer), 'the text value goes out by reference')
})

test.run()
