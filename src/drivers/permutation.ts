// std::next_permutation / std::prev_permutation (C++ [alg.permutation.generators]) on Int32Array,
// in place. As in the STL, at the last (first) permutation the range is reversed to the first (last)
// one and false is returned: the seed's all_perm relies on that wrap-around.

/** Rearranges `a[first..last)` into the next lexicographic permutation; false when it wrapped around. */
export function nextPermutation(a: Int32Array, first = 0, last = a.length): boolean {
  if (last - first < 2) return false
  let i = last - 1
  for (;;) {
    const i1 = i
    i--
    if (a[i] < a[i1]) {
      let i2 = last - 1
      while (!(a[i] < a[i2])) i2--
      swap(a, i, i2)
      reverse(a, i1, last)
      return true
    }
    if (i === first) {
      reverse(a, first, last)
      return false
    }
  }
}

/** Rearranges `a[first..last)` into the previous lexicographic permutation; false when it wrapped around. */
export function prevPermutation(a: Int32Array, first = 0, last = a.length): boolean {
  if (last - first < 2) return false
  let i = last - 1
  for (;;) {
    const i1 = i
    i--
    if (a[i1] < a[i]) {
      let i2 = last - 1
      while (!(a[i2] < a[i])) i2--
      swap(a, i, i2)
      reverse(a, i1, last)
      return true
    }
    if (i === first) {
      reverse(a, first, last)
      return false
    }
  }
}

export type PermutationKind = 'next_perm' | 'prev_perm'

export function permute(kind: PermutationKind, a: Int32Array): boolean {
  return kind === 'next_perm' ? nextPermutation(a) : prevPermutation(a)
}

function swap(a: Int32Array, i: number, j: number): void {
  const t = a[i]
  a[i] = a[j]
  a[j] = t
}

function reverse(a: Int32Array, from: number, to: number): void {
  a.subarray(from, to).reverse()
}
