import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { PermutationPool } from './perm-pool.js'
import { nextPermutation, prevPermutation } from './permutation.js'
import { PermutationWorkerError } from './errors.js'

const pool = new PermutationPool({ size: 2 })

test.after(async () => {
  await pool.close()
})

test('a worker computes what the main thread computes, for a large array', async () => {
  const n = 200_000
  const input = new Int32Array(n)
  for (let i = 0; i < n; i++) input[i] = (i * 7919) % 1000
  const expected = input.slice()
  nextPermutation(expected)
  const sent = input.slice()
  const got = await pool.run('next_perm', sent)
  assert.is(got.length, n)
  assert.ok(Buffer.from(got.buffer).equals(Buffer.from(expected.buffer)))
})

test('the array is transferred, not copied: the sender is detached while the worker has it', async () => {
  const a = Int32Array.from([3, 2, 1])
  const buffer = a.buffer
  const p = pool.run('prev_perm', a)
  assert.is(a.length, 0, 'detached after the hand-over')
  assert.is(buffer.byteLength, 0)
  const got = await p
  assert.equal(Array.from(got), [3, 1, 2])
})

test('several jobs at once on a pool of two all complete with their own results', async () => {
  const inputs = Array.from({ length: 9 }, (_, k) => Int32Array.from([k, 9, 8, 7, 1, 2, 3]))
  const expected = inputs.map((a) => {
    const c = a.slice()
    prevPermutation(c)
    return Array.from(c)
  })
  const results = await Promise.all(inputs.map((a) => pool.run('prev_perm', a.slice())))
  assert.equal(results.map((r) => Array.from(r)), expected)
})

test('an array that does not own its whole buffer is refused with a typed error', async () => {
  const big = new Int32Array(8)
  try {
    await pool.run('next_perm', big.subarray(2, 5))
    assert.unreachable()
  } catch (e) {
    assert.instance(e, PermutationWorkerError)
  }
})

test.run()
