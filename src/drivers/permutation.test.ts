import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import { nextPermutation, prevPermutation } from './permutation.js'

/** Every distinct permutation of `xs` in lexicographic order (the reference). */
function allSorted(xs: number[]): number[][] {
  const out = new Map<string, number[]>()
  const rec = (prefix: number[], rest: number[]) => {
    if (rest.length === 0) out.set(prefix.join(','), prefix)
    for (let i = 0; i < rest.length; i++) rec([...prefix, rest[i]], [...rest.slice(0, i), ...rest.slice(i + 1)])
  }
  rec([], xs)
  return [...out.values()].sort((a, b) => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i]
    return 0
  })
}

const key = (a: ArrayLike<number>) => Array.from(a).join(',')

function checkAgainstReference(xs: number[]): void {
  const ref = allSorted(xs)
  for (let i = 0; i < ref.length; i++) {
    const a = Int32Array.from(ref[i])
    const more = nextPermutation(a)
    const expectNext = ref[(i + 1) % ref.length]
    assert.is(key(a), key(expectNext), `next of ${key(ref[i])}`)
    assert.is(more, i + 1 < ref.length, `next_permutation result at ${key(ref[i])}`)
    const b = Int32Array.from(ref[i])
    const morePrev = prevPermutation(b)
    const expectPrev = ref[(i - 1 + ref.length) % ref.length]
    assert.is(key(b), key(expectPrev), `prev of ${key(ref[i])}`)
    assert.is(morePrev, i > 0, `prev_permutation result at ${key(ref[i])}`)
  }
}

test('next/prev follow the lexicographic order of all permutations, wrapping around', () => {
  checkAgainstReference([1, 2, 3, 4])
  checkAgainstReference([5, 1, 4, 2, 3])
})

test('duplicates: only distinct permutations, as std::next_permutation', () => {
  checkAgainstReference([1, 1, 2])
  checkAgainstReference([2, 2, 1, 1])
  checkAgainstReference([3, 3, 3])
  checkAgainstReference([0, -1, 0, 7, -1])
})

test('empty and single-element ranges are left alone and return false', () => {
  const e = new Int32Array(0)
  assert.is(nextPermutation(e), false)
  const one = Int32Array.of(42)
  assert.is(prevPermutation(one), false)
  assert.equal(Array.from(one), [42])
})

test('the extremes of int32 compare as signed integers', () => {
  const a = Int32Array.of(2147483647, -2147483648)
  assert.is(nextPermutation(a), false)
  assert.equal(Array.from(a), [-2147483648, 2147483647])
  assert.is(nextPermutation(a), true)
  assert.equal(Array.from(a), [2147483647, -2147483648])
})

test('the seed all_perm([1,2,3,4]) walk (prev_perm until back at the start) visits 24 permutations in order', () => {
  const orig = [1, 2, 3, 4]
  const a = Int32Array.from(orig)
  const acc: number[][] = []
  do {
    prevPermutation(a)
    acc.unshift(Array.from(a))
  } while (key(a) !== key(orig))
  assert.is(acc.length, 24)
  assert.equal(acc, allSorted(orig))
})

test('property: next then prev is the identity, and next counts through every distinct permutation', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: -3, max: 3 }), { maxLength: 7 }), (xs) => {
      const a = Int32Array.from(xs)
      nextPermutation(a)
      prevPermutation(a)
      assert.is(key(a), key(xs))
      const sorted = Int32Array.from(xs).sort()
      const seen = new Set<string>()
      const c = Int32Array.from(sorted)
      do seen.add(key(c))
      while (nextPermutation(c))
      assert.is(key(c), key(sorted))
      assert.is(seen.size, allSorted(xs).length)
    }),
    { numRuns: 150 },
  )
})

test.run()
