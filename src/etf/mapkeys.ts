// Map keys must be distinct as Erlang terms (binary_to_term refuses a map with two =:= keys). JS Map keys
// are distinct by identity, which is the same thing for atoms (interned), booleans, numbers and strings among
// themselves, but not for compound keys ({1} built twice), 1 vs 1n, two Float(1.0) boxes, or "ab" vs [97, 98].
// The encoder calls assertDistinctKeys only for maps holding such keys: keys are bucketed by a structural
// hash that is equal for =:= terms (linear in the key's size), and termEquals settles a shared bucket.
import { Atom, BitBinary, ExportFun, Float, Fun, ImproperList, Pid, Port, Ref, Tuple, termEquals, type Term } from './terms.js'
import { EncodeError } from './errors.js'

const MAX_KEY_DEPTH = 1000

/** True when identity of this JS key does not settle equality with the other keys. */
export function keyNeedsCheck(k: unknown): boolean {
  return typeof k === 'bigint' || (typeof k === 'object' && k !== null && !(k instanceof Atom))
}

const mix = (h: number, x: number): number => Math.imul(h ^ x, 0x9e3779b1) ^ (h >>> 15)

function strHash(s: string, seed: number): number {
  let h = seed
  for (let i = 0; i < s.length; i++) h = mix(h, s.charCodeAt(i))
  return h
}

function bytesHash(b: Uint8Array, seed: number): number {
  let h = mix(seed, b.length)
  for (let i = 0; i < b.length; i++) h = mix(h, b[i])
  return h
}

const intHash = (n: number | bigint): number =>
  typeof n === 'bigint' && (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER))
    ? strHash(n.toString(), 1)
    : mix(1, Number(n) | 0) ^ Math.floor(Number(n) / 4294967296)

function hash(t: unknown, depth: number): number {
  if (depth > MAX_KEY_DEPTH) throw new EncodeError(`a map key nests deeper than ${MAX_KEY_DEPTH}`)
  const d = depth + 1
  if (typeof t === 'number') return Number.isInteger(t) ? intHash(t) : strHash(String(t), 2)
  if (typeof t === 'bigint') return intHash(t)
  if (t instanceof Float) return Number.isInteger(t.value) ? strHash(String(t.value === 0 ? 0 : t.value), 3) : strHash(String(t.value), 2)
  if (typeof t === 'boolean') return strHash(String(t), 4)
  if (t instanceof Atom) return strHash(t.name, 4)
  // Lists: a string is its code points, and an improper list whose tail is a list continues it.
  if (typeof t === 'string' || Array.isArray(t) || t instanceof ImproperList) {
    let h = 5
    let cur: unknown = t
    for (;;) {
      if (typeof cur === 'string') {
        for (const c of cur) h = mix(h, intHash(c.codePointAt(0)!))
        return h
      }
      if (Array.isArray(cur)) {
        for (const x of cur) h = mix(h, hash(x, d))
        return h
      }
      if (cur instanceof ImproperList) {
        for (const x of cur.elements) h = mix(h, hash(x, d))
        cur = cur.tail
        continue
      }
      return mix(h ^ 0x5bd1e995, hash(cur, d))
    }
  }
  if (t instanceof Tuple) {
    let h = mix(6, t.elements.length)
    for (const x of t.elements) h = mix(h, hash(x, d))
    return h
  }
  if (t instanceof Uint8Array) return bytesHash(t, 7)
  if (t instanceof BitBinary) return mix(bytesHash(t.data, 8), t.bits)
  if (t instanceof Map) {
    let h = 0
    for (const [k, v] of t) h = (h + mix(hash(k, d), hash(v, d))) | 0
    return mix(9, h)
  }
  if (t instanceof Pid) return mix(mix(mix(strHash(t.node.name, 10), t.id), t.serial), t.creation)
  if (t instanceof Port) return mix(mix(strHash(t.node.name, 11), intHash(t.id)), t.creation)
  if (t instanceof Ref) return t.ids.reduce((h, x) => mix(h, x), mix(strHash(t.node.name, 12), t.creation))
  if (t instanceof ExportFun) return mix(strHash(t.function.name, strHash(t.module.name, 13)), t.arity)
  if (t instanceof Fun) return mix(bytesHash(t.uniq, 14), t.index)
  if (t !== null && typeof t === 'object') {
    let h = 0
    for (const [k, v] of Object.entries(t)) h = (h + mix(strHash(k, 4), hash(v, d))) | 0
    return mix(9, h)
  }
  throw new EncodeError(`cannot encode a map key of type ${typeof t}`)
}

/** A plain object as the map it encodes to, so termEquals can compare it. */
const asTerm = (t: unknown): Term =>
  t !== null && typeof t === 'object' && Object.getPrototypeOf(t) === Object.prototype
    ? new Map(Object.entries(t).map(([k, v]) => [Atom.intern(k), v as Term]))
    : (t as Term)

/** Throws EncodeError when two keys of `map` are the same Erlang term. */
export function assertDistinctKeys(map: Map<unknown, unknown>): void {
  const buckets = new Map<number, unknown[]>()
  for (const k of map.keys()) {
    const h = hash(k, 0)
    const same = buckets.get(h)
    if (same === undefined) {
      buckets.set(h, [k])
      continue
    }
    for (const o of same) {
      if (termEquals(asTerm(o), asTerm(k))) throw new EncodeError('a map has two keys that are the same Erlang term')
    }
    same.push(k)
  }
}
