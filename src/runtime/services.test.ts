import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ImproperList, Tuple, atom, termEquals, tuple, type Term } from '../etf/terms.js'
import { silentLogger } from '../logger.js'
import { ErlangError, ErlangExit, ErlangThrow } from './errors.js'
import { FunctionRegistry, notATerm } from './functions.js'
import { Runtime } from './runtime.js'
import { erpcReason, rexReply } from './services.js'

const A = atom
const newRt = () => new Runtime({ node: 'ts@host', creation: 2, logger: silentLogger })

test('the io server answers put_chars with ok, input requests with eof (a -noshell erl at the end of its input), others with {error, enotsup}', async () => {
  const rt = newRt()
  const gl = rt.groupLeader!
  const replies = await rt.withProcess(async (self) => {
    const out: Term[] = []
    const reqs: Term[] = [
      tuple(A('put_chars'), A('unicode'), Buffer.from('hello')),
      tuple(A('put_chars'), A('unicode'), A('io_lib'), A('format'), ['~p', [1]]),
      tuple(A('requests'), [tuple(A('put_chars'), A('latin1'), 'a')]),
      tuple(A('get_line'), A('unicode'), 'prompt> '),
      A('getopts'),
      tuple(A('get_chars'), A('unicode'), '', 3),
      tuple(A('get_until'), A('unicode'), '', A('io_lib'), A('fread'), ['~d']),
      tuple(A('get_geometry'), A('columns')),
    ]
    for (const [i, r] of reqs.entries()) {
      self.send(gl, tuple(A('io_request'), self.pid, i, r))
      out.push(await self.receive())
    }
    return out
  })
  const expect = [A('ok'), A('ok'), A('ok'), A('eof'), [], A('eof'), A('eof'), tuple(A('error'), A('enotsup'))]
  replies.forEach((r, i) => assert.ok(termEquals(r, tuple(A('io_reply'), i, expect[i])), `request ${i}`))
})

test('rex handles sbcast and send infos, and answers hidden-node calls as {rex, Reply}', async () => {
  const rt = newRt()
  rt.registerFunction('m', 'id', ([x]) => x)
  const got: Term[] = []
  rt.spawn(
    async (self) => {
      for (;;) got.push(await self.receive())
    },
    { name: 'target' },
  )
  const replies = await rt.withProcess(async (self) => {
    self.send('rex', tuple(self.pid, tuple(A('sbcast'), A('target'), 'sb')))
    const r1 = await self.receive()
    self.send('rex', tuple(self.pid, tuple(A('sbcast'), A('missing'), 'sb')))
    const r2 = await self.receive()
    self.send('rex', tuple(self.pid, tuple(A('send'), A('target'), 'direct')))
    self.send('rex', tuple(self.pid, tuple(A('call'), A('m'), A('id'), [9], self.pid)))
    const r3 = await self.receive()
    return [r1, r2, r3]
  })
  assert.ok(termEquals(replies[0], tuple(A('rex'), A('ts@host'), A('ts@host'))))
  assert.ok(termEquals(replies[1], tuple(A('rex'), A('ts@host'), tuple(A('nonexisting_name'), A('missing')))))
  assert.ok(termEquals(replies[2], tuple(A('rex'), 9)))
  assert.is(got[0], 'sb')
  assert.is((got[1] as Tuple).get(1), 'direct')
})

test('rex casts run the function; gen_server:call of rex with a bad request is ignored (as rex does)', async () => {
  const rt = newRt()
  let ran: Term | undefined
  rt.registerFunction('m', 'side', ([x]) => void (ran = x))
  rt.cast('rex', tuple(A('cast'), A('m'), A('side'), [A('done')], rt.system.pid))
  await new Promise((r) => setTimeout(r, 10))
  assert.is(ran, A('done'))
})

test('outcome shapes: erpc exit reasons and rex replies', () => {
  const ref = newRt().makeRef()
  const st = [tuple(A('m'), A('f'), 0, [])]
  assert.ok(termEquals(erpcReason(ref, { class: 'return', value: 1 }), tuple(ref, A('return'), 1)))
  assert.ok(termEquals(erpcReason(ref, { class: 'throw', value: 1 }), tuple(ref, A('throw'), 1)))
  assert.ok(termEquals(erpcReason(ref, { class: 'exit', reason: 1 }), tuple(ref, A('exit'), 1)))
  assert.ok(termEquals(erpcReason(ref, { class: 'error', reason: 1, stack: st }), tuple(ref, A('error'), 1, st)))
  assert.is(rexReply({ class: 'return', value: 5 }), 5)
  assert.is(rexReply({ class: 'throw', value: 6 }), 6)
  assert.ok(termEquals(rexReply({ class: 'exit', reason: A('r') }), tuple(A('badrpc'), tuple(A('EXIT'), A('r')))))
  assert.ok(
    termEquals(
      rexReply({ class: 'error', reason: A('r'), stack: st }),
      tuple(A('badrpc'), tuple(A('EXIT'), tuple(A('r'), st))),
    ),
  )
})

test('FunctionRegistry.apply classifies outcomes; a non-term result is an error', async () => {
  const rt = newRt()
  const fns = new FunctionRegistry()
  fns.register('m', 'ok', () => 1)
  fns.register('m', 'thr', () => {
    throw new ErlangThrow(2)
  })
  fns.register('m', 'ex', () => {
    throw new ErlangExit(3)
  })
  fns.register('m', 'er', () => {
    throw new ErlangError(4, [A('custom_stack')])
  })
  fns.register('m', 'obj', () => ({ not: 'a term' }))
  const out = await rt.withProcess(async (self) =>
    Promise.all(['ok', 'thr', 'ex', 'er', 'obj', 'nope'].map((f) => fns.apply(self, A('m'), A(f), [A('a')]))),
  )
  assert.equal(out[0], { class: 'return', value: 1 })
  assert.equal(out[1], { class: 'throw', value: 2 })
  assert.equal(out[2], { class: 'exit', reason: 3 })
  assert.ok(out[3].class === 'error' && termEquals(out[3].stack, [A('custom_stack')]))
  assert.ok(out[4].class === 'error' && (out[4].reason as Tuple).get(0) === A('js_error'))
  assert.ok(out[5].class === 'error' && out[5].reason === A('undef'))
  assert.ok(out[5].class === 'error' && termEquals(out[5].stack, [tuple(A('m'), A('nope'), [A('a')], [])]))
})

test('notATerm accepts every term type and names what is not one', () => {
  assert.is(notATerm([1, 'x', A('a'), tuple(1n, Buffer.alloc(1)), new ImproperList([1], 2), new Map([[1, 2]])]), undefined)
  assert.ok(notATerm([1, undefined])?.includes('undefined'))
  assert.ok(notATerm(NaN)?.includes('NaN'))
  assert.ok(notATerm(tuple(null as unknown as Term))?.includes('null'))
  assert.ok(notATerm({})?.includes('object'))
  // The first part that is not a term, left to right and depth first.
  assert.is(notATerm([tuple(1, [2, null as unknown as Term]), undefined as unknown as Term]), 'null')
  assert.is(notATerm(new ImproperList([1], NaN)), 'the number NaN')
  assert.is(notATerm(new Map<Term, Term>([[tuple(1), undefined as unknown as Term]])), 'undefined')
})

test('regression: notATerm walks a term as deep as the codec allows, and names a cyclic value (it overflowed)', () => {
  let deep: Term = 1
  for (let i = 0; i < 90_000; i++) deep = i % 2 ? [deep] : tuple(deep)
  assert.is(notATerm(deep), undefined)
  const cyclic: Term[] = []
  cyclic.push(cyclic)
  assert.is(notATerm(cyclic), 'nesting deeper than 100000 (a cyclic value?)')
})

test.run()
