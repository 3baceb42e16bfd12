// Map keys must be distinct as Erlang terms (binary_to_term refuses a map with two =:= keys). JS Map keys
// are distinct by identity, which is the same thing for atoms (interned), booleans, numbers and strings among
// themselves, but not for compound keys ({1} built twice), 1 vs 1n, two Float(1.0) boxes, or "ab" vs [97, 98].
// The encoder calls assertDistinctKeys only for maps holding such keys: keys are bucketed by a structural
// hash that is equal for =:= terms (linear in the key's size), and termEquals settles a shared bucket.
import { Atom, BitBinary, ExportFun, Float, Fun, ImproperList, Pid, Port, Ref, Tuple, termEquals, type Term } from './terms.js'
import { EncodeError } from './errors.js'
// Imported rather than the global, which Node defines as an accessor (a getter call on each use).
import { Buffer } from 'node:buffer'

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

// --- the decoder's duplicate-key check ------------------------------------------------------------
// binary_to_term refuses a map with two =:= keys, however each is encoded ({a} with ATOM_EXT and with
// SMALL_ATOM_UTF8_EXT; "ab" as STRING_EXT and as a LIST_EXT of integers). The decoder keys a Set by
// canonicalKey: a string that is equal for two keys exactly when they are =:= (in termEquals' sense).
// Built with an explicit stack, so a key nested as deep as the decoder allows cannot exhaust the JS stack.

const codeOf = (c: string): number => c.codePointAt(0)!

/** A list, string or improper list as its elements (list tails merged, a string as code points) and its
 *  final tail (undefined when it is []). */
function listParts(t: string | Term[] | ImproperList): { items: Term[]; tail: Term | undefined } {
  const items: Term[] = []
  let cur: Term = t
  for (;;) {
    if (typeof cur === 'string') {
      for (const c of cur) items.push(codeOf(c))
      return { items, tail: undefined }
    }
    if (Array.isArray(cur)) {
      for (let i = 0; i < cur.length; i++) items.push(cur[i])
      return { items, tail: undefined }
    }
    if (cur instanceof ImproperList) {
      for (let i = 0; i < cur.elements.length; i++) items.push(cur.elements[i])
      cur = cur.tail
      continue
    }
    return { items, tail: cur }
  }
}

const atomText = (name: string): string => `a${name.length}:${name}`
// Node's Buffer#latin1Slice (what toString('latin1') calls); @types/node does not declare it.
type Latin1 = { latin1Slice(start: number, end: number): string }
const bytesText = (b: Uint8Array): string =>
  `${b.length}:${((b instanceof Buffer ? b : Buffer.from(b.buffer, b.byteOffset, b.length)) as unknown as Latin1).latin1Slice(0, b.length)}`

/** The canonical text of a term with no children to visit, or undefined for a container. */
function scalarText(t: Term): string | undefined {
  if (typeof t === 'number') return Number.isInteger(t) ? `i${t};` : `f${t};`
  if (typeof t === 'bigint') return `i${t};`
  if (typeof t === 'boolean') return atomText(t ? 'true' : 'false')
  if (t instanceof Atom) return atomText(t.name)
  if (t instanceof Float) return `f${t.value === 0 ? 0 : t.value};` // 0.0 =:= -0.0, as termEquals has it
  if (t instanceof Uint8Array) return 'b' + bytesText(t)
  if (t instanceof BitBinary) return `B${t.bits}:${bytesText(t.data)}`
  if (t instanceof Pid) return `p${atomText(t.node.name)}${t.id}.${t.serial}.${t.creation};`
  if (t instanceof Port) return `o${atomText(t.node.name)}${t.id}.${t.creation};`
  if (t instanceof Ref) return `r${atomText(t.node.name)}${t.creation}:${t.ids.length}:${t.ids.join('.')};`
  if (t instanceof ExportFun) return `e${atomText(t.module.name)}${atomText(t.function.name)}${t.arity};`
  return undefined
}

interface KeyFrame {
  items: Term[]
  i: number
  /** Text so far (or, for a map, the texts of its keys and values in `parts`). */
  text: string
  parts: string[] | undefined
  /** Index of an improper list's tail in items (-1: none). */
  tailAt: number
  close: string
}

function frameOf(t: Term): KeyFrame {
  if (typeof t === 'string' || Array.isArray(t) || t instanceof ImproperList) {
    const { items, tail } = listParts(t)
    const tailAt = tail === undefined ? -1 : items.length
    if (tail !== undefined) items.push(tail)
    return { items, i: 0, text: '[', parts: undefined, tailAt, close: ']' }
  }
  if (t instanceof Tuple) return { items: t.elements, i: 0, text: `{${t.elements.length}:`, parts: undefined, tailAt: -1, close: '}' }
  if (t instanceof Map) {
    const items: Term[] = []
    for (const [k, v] of t) items.push(k, v)
    return { items, i: 0, text: `#${t.size}:`, parts: [], tailAt: -1, close: '}' }
  }
  if (t instanceof Fun) {
    // What termEquals compares: uniq, index, module, pid and the free variables.
    const head = `F${bytesText(t.uniq)}${t.index};${atomText(t.module.name)}${scalarText(t.pid)}${t.freeVars.length}:`
    return { items: t.freeVars, i: 0, text: head, parts: undefined, tailAt: -1, close: '}' }
  }
  throw new TypeError(`not an Erlang term: ${typeof t}`)
}

/** The finished text of a frame; a map's entries are sorted by key text, so key order does not matter. */
function closeFrame(f: KeyFrame): string {
  const p = f.parts
  if (p === undefined) return f.text + f.close
  const entries: [string, string][] = []
  for (let i = 0; i < p.length; i += 2) entries.push([p[i], p[i + 1]])
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  let s = f.text
  for (const [k, v] of entries) s += k + v
  return s + f.close
}

/**
 * A string equal for two terms exactly when they are =:= (termEquals): lists and strings alike as their
 * elements, list tails merged, maps in any key order. Iterative: nesting depth costs heap, not JS stack.
 */
export function canonicalKey(t: Term): string {
  const s = scalarText(t)
  if (s !== undefined) return s
  const stack: KeyFrame[] = [frameOf(t)]
  for (;;) {
    const f = stack[stack.length - 1]
    if (f.i < f.items.length) {
      if (f.i === f.tailAt) f.text += '|'
      const child = f.items[f.i++]
      const c = scalarText(child)
      if (c === undefined) stack.push(frameOf(child))
      else if (f.parts !== undefined) f.parts.push(c)
      else f.text += c
      continue
    }
    const done = closeFrame(f)
    stack.pop()
    if (stack.length === 0) return done
    const parent = stack[stack.length - 1]
    if (parent.parts !== undefined) parent.parts.push(done)
    else parent.text += done
  }
}
