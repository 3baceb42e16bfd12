import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Term } from '../etf/terms.js'
import { AbortError, BadArgError, TimeoutError } from './errors.js'
import { Mailbox } from './mailbox.js'

test('receive without a matcher takes messages in arrival order', async () => {
  const mb = new Mailbox()
  for (let i = 0; i < 5; i++) mb.push(i)
  const got: Term[] = []
  for (let i = 0; i < 5; i++) got.push(await mb.receive())
  assert.equal(got, [0, 1, 2, 3, 4])
  assert.is(mb.size, 0)
})

test('selective receive takes the first match and keeps the others queued in order', async () => {
  const mb = new Mailbox()
  for (const m of [1, 'x', 2, 'y', 3]) mb.push(m)
  assert.is(await mb.receive((m) => typeof m === 'string'), 'x')
  assert.equal(mb.peek(), [1, 2, 'y', 3])
  assert.is(await mb.receive((m) => m === 3), 3)
  assert.equal(mb.peek(), [1, 2, 'y'])
})

test('a matcher returning a value yields that value; false and undefined mean no match', async () => {
  const mb = new Mailbox()
  mb.push(5)
  mb.push(6)
  const v = await mb.receive((m) => (m === 6 ? { six: true } : undefined))
  assert.equal(v, { six: true })
  assert.is(await mb.receive(() => false, { timeout: 0 }).catch((e) => e.code), 'ERR_TIMEOUT')
  assert.equal(mb.peek(), [5])
})

test('a waiting receive is woken by a matching message; non-matching ones queue up', async () => {
  const mb = new Mailbox()
  const p = mb.receive((m) => m === 'go')
  mb.push('a')
  mb.push('go')
  mb.push('b')
  assert.is(await p, 'go')
  assert.equal(mb.peek(), ['a', 'b'])
})

test('several waiters: the first whose matcher accepts takes the message', async () => {
  const mb = new Mailbox()
  const evens = mb.receive((m) => typeof m === 'number' && m % 2 === 0)
  const any = mb.receive()
  mb.push(1)
  mb.push(2)
  assert.is(await any, 1)
  assert.is(await evens, 2)
})

test('timeout rejects with TimeoutError and removes the waiter', async () => {
  const mb = new Mailbox()
  const e = await mb.receive(undefined, { timeout: 10 }).catch((x) => x)
  assert.instance(e, TimeoutError)
  assert.is(e.code, 'ERR_TIMEOUT')
  mb.push('later')
  assert.equal(mb.peek(), ['later'])
})

test('timeout 0 polls', async () => {
  const mb = new Mailbox()
  assert.instance(await mb.receive(undefined, { timeout: 0 }).catch((x) => x), TimeoutError)
  mb.push(1)
  assert.is(await mb.receive(undefined, { timeout: 0 }), 1)
})

test('an abort signal rejects with AbortError, before and during the wait', async () => {
  const mb = new Mailbox()
  const ac = new AbortController()
  const p = mb.receive(undefined, { signal: ac.signal })
  ac.abort()
  const e = await p.catch((x) => x)
  assert.instance(e, AbortError)
  assert.is(e.code, 'ERR_ABORTED')
  assert.instance(await mb.receive(undefined, { signal: ac.signal }).catch((x) => x), AbortError)
  mb.push(1)
  assert.equal(mb.peek(), [1])
})

test('a matcher that throws rejects that receive and leaves the message for others', async () => {
  const mb = new Mailbox()
  const bad = mb.receive(() => {
    throw new RangeError('bad matcher')
  })
  mb.push(7)
  assert.instance(await bad.catch((x) => x), RangeError)
  assert.is(await mb.receive(), 7)
})

test('close rejects waiters and later receives, and drops later messages', async () => {
  const mb = new Mailbox()
  const dropped: Term[] = []
  mb.onDrop = (m) => dropped.push(m)
  const p = mb.receive()
  const err = new Error('closed')
  mb.close(err)
  assert.is(await p.catch((x) => x), err)
  assert.is(await mb.receive().catch((x) => x), err)
  mb.push(1)
  assert.equal(dropped, [1])
})

test('for await reads the mailbox', async () => {
  const mb = new Mailbox()
  mb.push('a')
  mb.push('b')
  setTimeout(() => mb.push('c'), 5)
  const got: Term[] = []
  for await (const m of mb) {
    got.push(m)
    if (got.length === 3) break
  }
  assert.equal(got, ['a', 'b', 'c'])
})

test('remove drops matching messages only', () => {
  const mb = new Mailbox()
  for (const m of [1, 2, 3, 4]) mb.push(m)
  assert.is(
    mb.remove((m) => typeof m === 'number' && m % 2 === 0),
    2,
  )
  assert.equal(mb.peek(), [1, 3])
})

test('a long queue consumed from the head stays correct across compaction', async () => {
  const mb = new Mailbox()
  for (let i = 0; i < 5000; i++) mb.push(i)
  for (let i = 0; i < 3000; i++) assert.is(await mb.receive(), i)
  mb.push('end')
  assert.is(mb.size, 2001)
  assert.is(await mb.receive((m) => m === 'end'), 'end')
  assert.is(await mb.receive(), 3000)
})

test('timeouts past 2^31 - 1 ms wait (setTimeout alone fires them at once); NaN or a negative one is refused, Infinity waits', async () => {
  const mb = new Mailbox()
  const warnings: Error[] = []
  const onWarning = (w: Error) => warnings.push(w)
  process.on('warning', onWarning)
  try {
    for (const timeout of [2 ** 31, Number.MAX_SAFE_INTEGER, Infinity]) {
      const r = mb.receive(undefined, { timeout })
      await new Promise((res) => setTimeout(res, 30))
      mb.push('late')
      assert.is(await r, 'late', `timeout ${timeout}`)
    }
    for (const timeout of [Number.NaN, -5, -Infinity, '100' as unknown as number]) {
      const bad = await mb.receive(undefined, { timeout }).then(() => undefined, (e: unknown) => e)
      assert.ok(bad instanceof BadArgError, `timeout ${String(timeout)}: ${String(bad)}`)
    }
    await new Promise((res) => setImmediate(res))
    assert.equal(warnings.map((w) => w.name), [], 'no TimeoutOverflowWarning')
  } finally {
    process.off('warning', onWarning)
  }
})

test.run()
