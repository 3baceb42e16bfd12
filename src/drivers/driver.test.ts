// The drivers on a bare Runtime (no Erlang node): dispatch, permutations, bad requests.
// Sessions against a real PostgreSQL are in integration/drivers.test.ts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Tuple, atom, isAtom, termEquals, tuple, type Term } from '../etf/terms.js'
import { silentLogger } from '../logger.js'
import { Runtime } from '../runtime/index.js'
import { driverName, startDrivers, type Drivers } from './driver.js'
import { nextPermutation, prevPermutation } from './permutation.js'

const A = atom
const rt = new Runtime({ node: 'ts@host', creation: 1, logger: silentLogger })
let drivers: Drivers

test.before(async () => {
  drivers = await startDrivers(rt, { count: 4, asyncThreshold: 1000, poolSize: 2 })
})
test.after(async () => {
  await drivers.stop()
})

const le = (xs: number[]) => {
  const b = Buffer.alloc(xs.length * 4)
  xs.forEach((x, i) => b.writeInt32LE(x, i * 4))
  return b
}
const fromLe = (b: Term) => {
  assert.ok(Buffer.isBuffer(b), `a binary, got ${String(b)}`)
  const out: number[] = []
  for (let i = 0; i < (b as Buffer).length; i += 4) out.push((b as Buffer).readInt32LE(i))
  return out
}

test('drivers are registered as some_driver_01..NN and know their names', async () => {
  assert.equal(drivers.names.map(String), ['some_driver_01', 'some_driver_02', 'some_driver_03', 'some_driver_04'])
  for (const n of drivers.names) assert.is(await rt.call(n, atom('whoami')), n)
  assert.is(driverName(12).name, 'some_driver_12')
})

test('next_perm / prev_perm on a little-endian binary, and on a list', async () => {
  assert.equal(fromLe(await rt.call('some_driver_01', tuple(atom('next_perm'), le([1, 2, 3])))), [1, 3, 2])
  assert.equal(fromLe(await rt.call('some_driver_02', tuple(atom('prev_perm'), le([1, 2, 3])))), [3, 2, 1])
  assert.equal(await rt.call('some_driver_03', tuple(atom('next_perm'), [3, 2, 1])), [1, 2, 3])
  assert.equal(fromLe(await rt.call('some_driver_01', tuple(atom('next_perm'), le([-5, 2147483647, -2147483648])))), [
    2147483647, -2147483648, -5,
  ])
})

test('large lists go to the worker pool, several at once, and give the same answers', async () => {
  const inputs = Array.from({ length: 6 }, (_, k) => Array.from({ length: 5000 + k }, (_, i) => (i * 31 + k) % 97))
  const replies = await Promise.all(
    inputs.map((xs, k) => rt.call(drivers.names[k % 4], tuple(atom(k % 2 ? 'prev_perm' : 'next_perm'), le(xs)))),
  )
  replies.forEach((r, k) => {
    const a = Int32Array.from(inputs[k])
    if (k % 2) prevPermutation(a)
    else nextPermutation(a)
    assert.equal(fromLe(r), Array.from(a))
  })
  const jobs = drivers.stats().reduce((n, s) => n + s.asyncJobs, 0)
  assert.ok(jobs >= 6, `async jobs counted: ${jobs}`)
})

test('a driver keeps answering while its own big permutation is running', async () => {
  const big = le(Array.from({ length: 300_000 }, (_, i) => i % 1000))
  const slow = rt.call('some_driver_04', tuple(atom('next_perm'), big))
  const quick = await rt.call('some_driver_04', atom('whoami'))
  assert.is(String(quick), 'some_driver_04')
  assert.is(fromLe(await slow).length, 300_000)
})

const isError = (t: Term) => t instanceof Tuple && t.length === 2 && isAtom(t.get(0), 'error')

test('bad requests answer {error, ...} and the driver keeps serving', async () => {
  for (const req of [
    atom('bogus'),
    tuple(atom('bogus'), 1),
    tuple(atom('next_perm'), Buffer.from([1, 2, 3])),
    tuple(atom('next_perm'), [1, atom('x')]),
    tuple(atom('next_perm'), [2 ** 31]),
    tuple(atom('next_perm'), 7),
    tuple(atom('next_perm'), 1, 2),
    tuple(atom('pg_connect'), 42, []),
    tuple(atom('pg_connect'), 'host=x', atom('binary')),
    tuple(atom('pg_connect'), 'host=x', [atom('nonsense')]),
    tuple(atom('select'), 'select 1'),
    [],
    42,
  ] as Term[]) {
    const r = await rt.call('some_driver_02', req)
    assert.ok(isError(r), `error for ${String(req)}: ${String(r)}`)
  }
  assert.is(String(await rt.call('some_driver_02', atom('whoami'))), 'some_driver_02')
})

test('stats count the calls and remember who made them', async () => {
  const before = drivers.stats()[2].served
  const p = rt.spawn(async (self) => {
    for (let i = 0; i < 3; i++) await self.call('some_driver_03', atom('whoami'))
  })
  await p.done
  const s = drivers.stats()[2]
  assert.is(s.served, before + 3)
  const mine = s.callers.find((c) => termEquals(c.pid, p.pid))
  assert.is(mine?.count, 3)
  const term = (await rt.call('some_driver_03', atom('stats'))) as Map<Term, Term>
  assert.is(term.get(atom('name')), atom('some_driver_03'))
  assert.is(term.get(atom('served')), before + 4)
})

test('a driver that dies is started again under its name', async () => {
  const before = drivers.processes[0]
  rt.exit(before.pid, A('kill'))
  await before.done
  for (let i = 0; i < 100 && (rt.whereis('some_driver_01') === undefined || !drivers.processes[0].alive); i++)
    await new Promise((r) => setTimeout(r, 10))
  assert.ok(drivers.processes[0] !== before, 'a new process')
  assert.is(String(await rt.call('some_driver_01', atom('whoami'))), 'some_driver_01')
})

test('a driver that dies of a compound reason logs the reason as Erlang prints it', async () => {
  const warnings: string[] = []
  const logger = { ...silentLogger, warn: (m: string) => void warnings.push(m) }
  const own = new Runtime({ node: 'ts2@host', creation: 1, logger })
  const d = await startDrivers(own, { count: 1, poolSize: 1 })
  try {
    const before = d.processes[0]
    own.exit(before.pid, tuple(A('oops'), new Map<Term, Term>([[A('host'), Buffer.from('x')]])))
    await before.done
    for (let i = 0; i < 100 && warnings.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
    assert.equal(warnings, ['some_driver_01 exited ({oops,#{host => <<"x">>}}): restarting it'])
  } finally {
    await d.stop()
  }
})

test.run()
