// Map keys must be distinct as Erlang terms (binary_to_term refuses a map with two =:= keys). JS Map keys
// are distinct by identity, which is the same thing for atoms (interned), booleans, numbers and strings among
// themselves, but not for compound keys ({1} built twice), 1 vs 1n, two Float(1.0) boxes, or "ab" vs [97, 98].
// One key set serves both directions: the decoder (for compound and string keys, however each was encoded)
// and the encoder (for maps holding keys whose identity settles nothing). Keys are bucketed by termHash,
// equal for =:= terms, and compared with termEquals only within a bucket: each key is walked once, so the
// check stays linear in the size of the keys, however large or deeply nested they are.
import { Atom, atom, termEquals, termHash, type Term } from './terms.js'
import { EncodeError } from './errors.js'

/** Keys of one map with the same hash (a key itself may be an array, so a bucket is not one). */
class Collisions {
  constructor(readonly keys: Term[]) {}
}

/** The keys of one map seen so far: the first alone, unhashed (a map with one key to check needs no hash),
 *  then all by termHash. */
export interface KeySet {
  first: Term | undefined
  byHash: Map<number, Term | Collisions> | undefined
}

export const newKeySet = (): KeySet => ({ first: undefined, byHash: undefined })

/**
 * False when the set already holds a key =:= k; else records k. termHash's errors pass through: TypeError
 * for a value that is not a term, RangeError past maxDepth levels of nesting.
 */
export function newKey(keys: KeySet, k: Term, maxDepth = Infinity): boolean {
  let byHash = keys.byHash
  if (byHash === undefined) {
    if (keys.first === undefined) {
      keys.first = k
      return true
    }
    byHash = keys.byHash = new Map([[termHash(keys.first, maxDepth), keys.first]])
    keys.first = undefined
  }
  const h = termHash(k, maxDepth)
  const o = byHash.get(h)
  if (o === undefined) byHash.set(h, k)
  else if (o instanceof Collisions) {
    for (let i = 0; i < o.keys.length; i++) if (termEquals(o.keys[i], k)) return false
    o.keys.push(k)
  } else {
    if (termEquals(o, k)) return false
    byHash.set(h, new Collisions([o, k]))
  }
  return true
}

const A_TRUE = atom('true')
const A_FALSE = atom('false')

/** True when identity of this JS key does not settle equality with the other keys. */
export function keyNeedsCheck(k: unknown): boolean {
  if (k instanceof Atom) return k === A_TRUE || k === A_FALSE // the same key as the JS boolean (atoms are interned)
  return typeof k === 'bigint' || (typeof k === 'object' && k !== null)
}

/** Throws EncodeError when two keys of `map` are the same Erlang term, or a key is not a term (or nests
 *  deeper than maxDepth, as a cyclic value does). */
export function assertDistinctKeys(map: Map<unknown, unknown>, maxDepth: number): void {
  const keys = newKeySet()
  for (const k of map.keys()) {
    let fresh: boolean
    try {
      fresh = newKey(keys, k as Term, maxDepth)
    } catch (e) {
      if (e instanceof TypeError || e instanceof RangeError) throw new EncodeError(`a map key cannot be encoded: ${e.message}`)
      throw e
    }
    if (!fresh) throw new EncodeError('a map has two keys that are the same Erlang term')
  }
}
