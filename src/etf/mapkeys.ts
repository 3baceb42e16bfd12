// Map keys must be distinct as Erlang terms (binary_to_term refuses a map with two =:= keys). JS Map keys
// are distinct by identity, which is the same thing for atoms (interned), booleans, numbers and strings among
// themselves, but not for compound keys ({1} built twice), 1 vs 1n, two Float(1.0) boxes, or "ab" vs [97, 98].
// One key set serves both directions: the decoder (for compound and string keys, however each was encoded)
// and the encoder (for maps holding keys whose identity settles nothing). Equality is canonicalKey's, the
// same =:= as termEquals; binaries, the common compound key (Elixir's string keys), skip the string.
import { Buffer } from 'node:buffer'
import { Atom, atom, canonicalKey, type Term } from './terms.js'
import { EncodeError } from './errors.js'

/** The keys of one map seen so far: binaries bucketed by a hash of their bytes and compared byte for byte
 *  (a binary is =:= only to a binary); any other key by its canonicalKey text. */
export interface KeySet {
  texts: Set<string> | undefined
  bins: Map<number, Uint8Array | Uint8Array[]> | undefined
}

export const newKeySet = (): KeySet => ({ texts: undefined, bins: undefined })

/** A hash of a binary's length and up to 32 bytes at each end (equal binaries, equal hashes). */
function binHash(b: Uint8Array): number {
  const n = b.length
  let h = n
  const head = n < 32 ? n : 32
  for (let i = 0; i < head; i++) h = Math.imul(h ^ b[i], 0x9e3779b1)
  for (let i = n - 32 > head ? n - 32 : head; i < n; i++) h = Math.imul(h ^ b[i], 0x9e3779b1)
  return h ^ (h >>> 15)
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length
  if (b.length !== n) return false
  if (n > 64) return Buffer.compare(a, b) === 0
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * False when the set already holds a key =:= k; else records k. canonicalKey's errors pass through: TypeError
 * for a value that is not a term, RangeError past maxDepth levels of nesting.
 */
export function newKey(keys: KeySet, k: Term, maxDepth = Infinity): boolean {
  if (k instanceof Uint8Array) {
    const bins = (keys.bins ??= new Map())
    const h = binHash(k)
    const o = bins.get(h)
    if (o === undefined) bins.set(h, k)
    else if (Array.isArray(o)) {
      for (let i = 0; i < o.length; i++) if (sameBytes(o[i], k)) return false
      o.push(k)
    } else {
      if (sameBytes(o, k)) return false
      bins.set(h, [o, k])
    }
    return true
  }
  const texts = (keys.texts ??= new Set())
  const text = canonicalKey(k, maxDepth)
  if (texts.has(text)) return false
  texts.add(text)
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
