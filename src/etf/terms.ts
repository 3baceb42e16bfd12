// The term model: how every Erlang term is represented in TypeScript.
// Chosen so that decode → encode gives a term Erlang finds =:= to the original (see README "Terms").
//
//   Erlang                      TypeScript
//   atom                        Atom (interned: atom('ok') === atom('ok')); true/false ↔ boolean
//   integer                     number when a safe integer, else bigint
//   float                       number when it has a fraction; Float box when integral (1.0, -0.0)
//   binary                      Buffer (over 64 bytes: a view into the received frame)
//   bitstring                   BitBinary { data, bits }  (bits used in the last byte, 1..7)
//   [] and proper lists         Array; a list decoded from STRING_EXT is a JS string (a charlist)
//   improper list               ImproperList { elements, tail }
//   tuple                       Tuple (iterable, so `const [tag, x] = t` works)
//   map                         Map (atoms are interned, so atom keys look up by identity)
//   pid / port / reference      Pid / Port / Ref
//   fun / external fun          Fun / ExportFun

// Imported rather than the global, which Node defines as an accessor (a getter call on each use).
import { Buffer } from 'node:buffer'

/** An Erlang atom. Interned weakly: the same name gives the same object while anyone holds it. */
export class Atom {
  /** Makes the type nominal: a function (which has a `name` and a `toString`) is not an Atom, nor a Term. */
  private declare readonly nominal: never
  private constructor(readonly name: string) {}
  toString(): string {
    return this.name
  }
  /** @internal */
  static intern(name: string): Atom {
    const ref = atomTable.get(name)
    let a = ref?.deref()
    if (a === undefined) {
      a = new Atom(name)
      atomTable.set(name, new WeakRef(a))
      atomFinalizer.register(a, name)
    }
    return a
  }
}
const atomTable = new Map<string, WeakRef<Atom>>()
const atomFinalizer = new FinalizationRegistry<string>((name) => {
  if (atomTable.get(name)?.deref() === undefined) atomTable.delete(name)
})

export const atom = (name: string): Atom => Atom.intern(name)

/** An Erlang float whose value is integral (1.0, -0.0, 1.0e300): kept boxed so it stays a float. */
export class Float {
  constructor(readonly value: number) {}
  valueOf(): number {
    return this.value
  }
  toString(): string {
    return Number.isInteger(this.value) ? this.value.toFixed(1) : String(this.value)
  }
}

/** A bitstring whose size is not a multiple of 8: `bits` (1..7) of the last byte are used. */
export class BitBinary {
  constructor(
    readonly data: Buffer,
    readonly bits: number,
  ) {}
}

export class Tuple implements Iterable<Term> {
  readonly elements: Term[]
  constructor(elements: Term[]) {
    this.elements = elements
  }
  get length(): number {
    return this.elements.length
  }
  /** Element i (0-based); `element(i + 1, T)` in Erlang. */
  get(i: number): Term {
    return this.elements[i]
  }
  [Symbol.iterator](): Iterator<Term> {
    return this.elements[Symbol.iterator]()
  }
}

export const tuple = (...elements: Term[]): Tuple => new Tuple(elements)

/** A list whose tail is not []: `[1, 2 | 3]` is `new ImproperList([1, 2], 3)`. */
export class ImproperList {
  constructor(
    readonly elements: Term[],
    readonly tail: Term,
  ) {}
}

export class Pid {
  constructor(
    readonly node: Atom,
    readonly id: number,
    readonly serial: number,
    readonly creation: number,
  ) {}
  toString(): string {
    return `<${this.node.name}.${this.id}.${this.serial}>`
  }
}

export class Port {
  constructor(
    readonly node: Atom,
    /** 64-bit in V4_PORT_EXT; NEW_PORT_EXT carries 32 bits. */
    readonly id: bigint,
    readonly creation: number,
  ) {}
  toString(): string {
    return `#Port<${this.node.name}.${this.id}>`
  }
}

export class Ref {
  constructor(
    readonly node: Atom,
    readonly creation: number,
    /** 1..5 32-bit words, as in NEWER_REFERENCE_EXT. */
    readonly ids: readonly number[],
  ) {}
  toString(): string {
    return `#Ref<${this.node.name}.${[...this.ids].reverse().join('.')}>`
  }
}

/** NEW_FUN_EXT: a closure, carried opaquely (it can be passed back but not run here). */
export class Fun {
  constructor(
    readonly arity: number,
    readonly uniq: Buffer,
    readonly index: number,
    readonly module: Atom,
    readonly oldIndex: number | bigint,
    readonly oldUniq: number | bigint,
    readonly pid: Pid,
    readonly freeVars: Term[],
  ) {}
}

/** EXPORT_EXT: `fun M:F/A`. */
export class ExportFun {
  // `function` is a reserved word as a parameter name, so it is assigned by hand.
  readonly function: Atom
  constructor(
    readonly module: Atom,
    fn: Atom,
    readonly arity: number,
  ) {
    this.function = fn
  }
}

/** A plain JS object: encodes as a map with atom keys (decoding gives a Map). */
export interface TermObject {
  readonly [key: string]: Term
}

export type Term =
  | Atom
  | boolean
  | number
  | bigint
  | Float
  | Buffer
  | BitBinary
  | string
  | Term[]
  | ImproperList
  | Tuple
  | Map<Term, Term>
  | TermObject
  | Pid
  | Port
  | Ref
  | Fun
  | ExportFun

// --- helpers a TypeScript user reaches for -------------------------------------------------

export const isAtom = (t: unknown, name?: string): t is Atom =>
  t instanceof Atom && (name === undefined || t.name === name)
export const isTuple = (t: unknown, arity?: number): t is Tuple =>
  t instanceof Tuple && (arity === undefined || t.elements.length === arity)

/**
 * The value of `key` in an Erlang map, matching keys by =:= rather than by JS identity: `Map#get` finds atom,
 * number and string keys, but a binary key (Elixir's `%{"name" => v}`) or a tuple key built anew is another
 * object (and `1n`, `[97, 98]` find the keys `1`, `"ab"`). A linear scan when identity misses.
 */
export function mapGet(map: Map<Term, Term>, key: Term): Term | undefined {
  const v = map.get(key)
  if (v !== undefined || map.has(key)) return v
  // Interned: identity is =:=, but for true/false, which are both JS booleans and atoms.
  if (key instanceof Atom && key.name !== 'true' && key.name !== 'false') return undefined
  for (const [k, x] of map) if (termEquals(k, key)) return x
  return undefined
}

/** A charlist from a JS string (every code point an element); Erlang sees `"text"`. */
export const charlist = (s: string): Term => s

/** Decode a list of code points (or a charlist string) to a JS string; undefined if it is not one. */
export function listToString(t: Term): string | undefined {
  if (typeof t === 'string') return t
  if (!Array.isArray(t)) return undefined
  let s = ''
  for (const c of t) {
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 0 || c > 0x10ffff) return undefined
    s += String.fromCodePoint(c)
  }
  return s
}

// --- equality ------------------------------------------------------------------------------
// Three notions, one meaning (Erlang's =:=): termEquals compares two terms; canonicalKey gives a term a string
// that is equal for =:= terms (termEquals' matching of map keys that are not the same JS value, and the keys
// of pg groups and global names); termHash (below) gives it a number, for the codec's duplicate map key
// checks. All walk with explicit stacks: a term nested as deep as the decoder accepts costs heap, not JS stack.

/** A plain object (or one with no prototype): what the encoder writes as a map with atom keys. */
export const isPlainObject = (v: object): boolean => {
  const proto = Object.getPrototypeOf(v)
  return proto === Object.prototype || proto === null
}

const isList = (t: unknown): t is string | Term[] | ImproperList =>
  typeof t === 'string' || Array.isArray(t) || t instanceof ImproperList

/** A list, string or improper list as its elements (list tails merged, a string as code points) and its
 *  final tail (undefined when it is []). */
function listParts(t: string | Term[] | ImproperList): { items: Term[]; tail: Term | undefined } {
  const items: Term[] = []
  let cur: Term = t
  for (;;) {
    if (typeof cur === 'string') {
      for (const c of cur) items.push(c.codePointAt(0)!)
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

const atomNameOf = (t: unknown): string | undefined =>
  t instanceof Atom ? t.name : typeof t === 'boolean' ? (t ? 'true' : 'false') : undefined

export const samePid = (a: Pid, b: Pid): boolean =>
  a.node === b.node && a.id === b.id && a.serial === b.serial && a.creation === b.creation

export const sameRef = (a: Ref, b: Ref): boolean =>
  a.node === b.node && a.creation === b.creation && a.ids.length === b.ids.length && a.ids.every((x, i) => x === b.ids[i])

/** The float a term is (a non-integral number or a Float box), or undefined. */
const floatOf = (t: unknown): number | undefined =>
  t instanceof Float ? t.value : typeof t === 'number' && !Number.isInteger(t) ? t : undefined

/** Erlang's `=:=` on two terms (exact equality: 1 =/= 1.0; "ab" =:= [97, 98]; maps in any key order; a plain
 *  object as the map with atom keys it encodes to). */
export function termEquals(a: Term, b: Term): boolean {
  return compareTerms(a, b, false)
}

/** What a term is in JS: typeof for primitives, 'array', or the prototype of an object. */
const kindOf = (t: Term): unknown =>
  t === null || typeof t !== 'object' ? typeof t : Array.isArray(t) ? 'array' : Object.getPrototypeOf(t)

/**
 * a =:= b, and of the same JS kind at every level (a Map is not a plain object, a string not an array, a
 * number not a bigint, `true` not the atom): what a state must be to come back from the codec as itself.
 */
export function termIdentical(a: Term, b: Term): boolean {
  return compareTerms(a, b, true)
}

/** termEquals, or with `sameKind` termIdentical: pairs compared with an explicit stack, not recursion. */
function compareTerms(a: Term, b: Term, sameKind: boolean): boolean {
  const todo: Term[] = [a, b]
  while (todo.length > 0) {
    const y = todo.pop() as Term
    const x = todo.pop() as Term
    if (x !== y && ((sameKind && kindOf(x) !== kindOf(y)) || !sameHead(x, y, todo))) return false
  }
  return true
}

/** @internal A plain object as the map with atom keys it encodes to; any other term as it is. */
export function objectAsMap(t: Term): Term {
  if (t === null || typeof t !== 'object' || !isPlainObject(t)) return t
  const m = new Map<Term, Term>()
  for (const [k, v] of Object.entries(t)) m.set(Atom.intern(k), v)
  return m
}

/** x =:= y as far as their own parts go (x !== y); pushes the pairs of children still to compare onto todo. */
function sameHead(x: Term, y: Term, todo: Term[]): boolean {
  x = objectAsMap(x)
  y = objectAsMap(y)
  // true and false are atoms: atom('true') =:= true.
  if (x instanceof Atom || typeof x === 'boolean' || y instanceof Atom || typeof y === 'boolean')
    return atomNameOf(x) !== undefined && atomNameOf(x) === atomNameOf(y)
  if (isList(x) || isList(y)) {
    // Two distinct JS strings are distinct code point lists.
    if (!isList(x) || !isList(y) || (typeof x === 'string' && typeof y === 'string')) return false
    const p = listParts(x)
    const q = listParts(y)
    if (p.items.length !== q.items.length || (p.tail === undefined) !== (q.tail === undefined)) return false
    for (let i = 0; i < p.items.length; i++) todo.push(p.items[i], q.items[i])
    if (p.tail !== undefined) todo.push(p.tail, q.tail as Term)
    return true
  }
  const fx = floatOf(x)
  const fy = floatOf(y)
  // 0.0 =:= -0.0, as in OTP 25 and canonicalKey.
  if (fx !== undefined || fy !== undefined) return fx === fy
  if (typeof x === 'number' || typeof x === 'bigint')
    return (typeof y === 'number' || typeof y === 'bigint') && BigInt(x) === BigInt(y)
  if (x instanceof Uint8Array) return y instanceof Uint8Array && Buffer.compare(x, y) === 0
  if (x instanceof BitBinary) return y instanceof BitBinary && x.bits === y.bits && x.data.equals(y.data)
  if (x instanceof Tuple) {
    if (!(y instanceof Tuple) || x.elements.length !== y.elements.length) return false
    for (let i = 0; i < x.elements.length; i++) todo.push(x.elements[i], y.elements[i])
    return true
  }
  if (x instanceof Map) {
    if (!(y instanceof Map) || x.size !== y.size) return false
    let byText: Map<string, Term> | undefined
    for (const [k, v] of x) {
      let k2: Term | undefined = k
      if (!y.has(k)) {
        if (byText === undefined) {
          byText = new Map()
          for (const yk of y.keys()) byText.set(canonicalKey(yk), yk)
        }
        k2 = byText.get(canonicalKey(k))
        if (k2 === undefined) return false
      }
      todo.push(v, y.get(k2) as Term)
    }
    return true
  }
  if (x instanceof Pid) return y instanceof Pid && samePid(x, y)
  if (x instanceof Port) return y instanceof Port && x.node === y.node && x.id === y.id && x.creation === y.creation
  if (x instanceof Ref) return y instanceof Ref && sameRef(x, y)
  if (x instanceof ExportFun)
    return y instanceof ExportFun && x.module === y.module && x.function === y.function && x.arity === y.arity
  if (x instanceof Fun) {
    if (
      !(y instanceof Fun) ||
      !x.uniq.equals(y.uniq) ||
      x.index !== y.index ||
      x.module !== y.module ||
      x.freeVars.length !== y.freeVars.length
    )
      return false
    todo.push(x.pid, y.pid)
    for (let i = 0; i < x.freeVars.length; i++) todo.push(x.freeVars[i], y.freeVars[i])
    return true
  }
  return false
}

const atomText = (name: string): string => `a${name.length}:${name}`
// Node's Buffer#latin1Slice (what toString('latin1') calls); @types/node does not declare it.
type Latin1 = { latin1Slice(start: number, end: number): string }
const bytesText = (b: Uint8Array): string =>
  `${b.length}:${((b instanceof Buffer ? b : Buffer.from(b.buffer, b.byteOffset, b.length)) as unknown as Latin1).latin1Slice(0, b.length)}`

/** The canonical text of a term with no children to visit, or undefined for a container. */
function scalarText(t: unknown): string | undefined {
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
  items: ArrayLike<unknown>
  i: number
  /** Text so far (or, for a map, the texts of its keys and values in `parts`). */
  text: string
  parts: string[] | undefined
  /** Index of an improper list's tail in items (-1: none). */
  tailAt: number
  close: string
}

/** What a compound term is walked by (canonicalKey, termHash): its kind, and the children =:= compares. */
interface Children {
  kind: 'list' | 'tuple' | 'map' | 'fun'
  /** A list's merged elements (then its tail, at tailAt), a tuple's elements, a map's keys and values in
   *  turn (a plain object's as the atom keys it encodes to), a fun's free variables. */
  items: ArrayLike<unknown>
  /** Index of an improper list's tail in items (-1: none). */
  tailAt: number
}

/** The children of a compound term; TypeError for a value that is no term (a scalar is not asked for). */
function childrenOf(t: unknown): Children {
  if (t instanceof Tuple) return { kind: 'tuple', items: t.elements, tailAt: -1 }
  if (isList(t)) {
    const { items, tail } = listParts(t)
    const tailAt = tail === undefined ? -1 : items.length
    if (tail !== undefined) items.push(tail)
    return { kind: 'list', items, tailAt }
  }
  if (t instanceof Map) {
    const items: unknown[] = []
    for (const [k, v] of t) items.push(k, v)
    return { kind: 'map', items, tailAt: -1 }
  }
  if (t instanceof Fun) return { kind: 'fun', items: t.freeVars, tailAt: -1 }
  if (t !== null && typeof t === 'object' && isPlainObject(t)) {
    const items: unknown[] = []
    for (const [k, v] of Object.entries(t)) items.push(Atom.intern(k), v)
    return { kind: 'map', items, tailAt: -1 }
  }
  throw new TypeError(`not an Erlang term: ${t === null ? 'null' : typeof t}`)
}

function frameOf(t: unknown): KeyFrame {
  const { kind, items, tailAt } = childrenOf(t)
  const n = items.length
  switch (kind) {
    case 'list':
      return { items, i: 0, text: '[', parts: undefined, tailAt, close: ']' }
    case 'tuple':
      return { items, i: 0, text: `{${n}:`, parts: undefined, tailAt, close: '}' }
    case 'map':
      return { items, i: 0, text: `#${n / 2}:`, parts: [], tailAt, close: '}' }
    case 'fun': {
      // What termEquals compares: uniq, index, module, pid and the free variables.
      const f = t as Fun
      const head = `F${bytesText(f.uniq)}${f.index};${atomText(f.module.name)}${scalarText(f.pid)}${n}:`
      return { items, i: 0, text: head, parts: undefined, tailAt, close: '}' }
    }
  }
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
 * elements, list tails merged, maps in any key order; a plain object as the map with atom keys it encodes to.
 * Iterative. Throws TypeError for a value that is not a term, and RangeError past maxDepth levels of nesting
 * (the encoder's bound, which also stops a cyclic value).
 */
export function canonicalKey(t: Term, maxDepth = Infinity): string {
  if (t instanceof Tuple) {
    // A tuple of scalars (the usual compound key) without a frame.
    const el = t.elements
    let text = `{${el.length}:`
    let i = 0
    for (; i < el.length; i++) {
      const c = scalarText(el[i])
      if (c === undefined) break
      text += c
    }
    if (i === el.length) return text + '}'
  } else {
    const s = scalarText(t)
    if (s !== undefined) return s
  }
  const stack: KeyFrame[] = [frameOf(t)]
  for (;;) {
    const f = stack[stack.length - 1]
    if (f.i < f.items.length) {
      if (f.i === f.tailAt) f.text += '|'
      const child = f.items[f.i++]
      const c = scalarText(child)
      if (c === undefined) {
        if (stack.length >= maxDepth) throw new RangeError(`a map key nests deeper than ${maxDepth} (a cyclic value?)`)
        stack.push(frameOf(child))
      } else if (f.parts !== undefined) f.parts.push(c)
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

// --- hashing ---------------------------------------------------------------------------------
// termHash: a 32-bit number equal for =:= terms (termEquals), for sets of map keys that stay linear in the
// size of the keys: a key is hashed once, and compared with termEquals only against keys of the same hash.
// Same walk as canonicalKey (explicit stack, lists as their merged elements, maps in any key order) without
// building a string per key.

const mix = (h: number, x: number): number => {
  h = Math.imul(h ^ x, 0x9e3779b1)
  return h ^ (h >>> 15)
}

const strHash = (s: string, h: number): number => {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return mix(h, s.length)
}

/** A hash of a byte string's length and up to 32 bytes at each end (equal bytes, equal hashes). */
function bytesHash(b: Uint8Array, h = 0): number {
  const n = b.length
  h = mix(h, n)
  const head = n < 32 ? n : 32
  for (let i = 0; i < head; i++) h = Math.imul(h ^ b[i], 0x9e3779b1)
  for (let i = n - 32 > head ? n - 32 : head; i < n; i++) h = Math.imul(h ^ b[i], 0x9e3779b1)
  return h ^ (h >>> 15)
}

const H_INT = 0x1b873593
const H_BIG = 0x2c1b3c6d
const H_FLOAT = 0x297a2d39
const H_ATOM = 0x68e31da4
const H_BIN = 0x1b56c4e9
const H_BITS = 0x7feb352d
const H_PID = 0x3a8f05c5
const H_PORT = 0x5bd1e995
const H_REF = 0x27d4eb2f
const H_EXPORT = 0x165667b1
const H_TUPLE = 0x4cf5ad43
const H_LIST = 0x6a09e667
const H_TAIL = 0x3c6ef372
const H_MAP = 0x510e527f
const H_FUN = 0x1f83d9ab

const f64 = new Float64Array(1)
const f64Words = new Int32Array(f64.buffer)

/** An integer's hash: the same for a number and a bigint of the same value. */
function intHash(n: number | bigint): number {
  if (typeof n === 'bigint') {
    if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < BigInt(Number.MIN_SAFE_INTEGER)) return strHash(n.toString(16), H_BIG)
    n = Number(n)
  } else if (!Number.isSafeInteger(n)) return strHash(BigInt(n).toString(16), H_BIG)
  return mix(mix(H_INT, n | 0), Math.floor(n / 4294967296) | 0)
}

const atomHash = (name: string): number => strHash(name, H_ATOM)

/** The hash of a term with no children to visit, or undefined for a container (or a value that is no term). */
function scalarHash(t: unknown): number | undefined {
  if (typeof t === 'number') {
    if (Number.isInteger(t)) return intHash(t)
    f64[0] = t
    return mix(mix(H_FLOAT, f64Words[0]), f64Words[1])
  }
  if (t instanceof Atom) return atomHash(t.name)
  if (typeof t === 'boolean') return atomHash(t ? 'true' : 'false')
  if (typeof t === 'bigint') return intHash(t)
  if (t instanceof Uint8Array) return bytesHash(t, H_BIN)
  if (t instanceof Float) {
    f64[0] = t.value === 0 ? 0 : t.value // 0.0 =:= -0.0, as termEquals has it
    return mix(mix(H_FLOAT, f64Words[0]), f64Words[1])
  }
  if (t instanceof BitBinary) return mix(bytesHash(t.data, H_BITS), t.bits)
  if (t instanceof Pid) return mix(mix(mix(strHash(t.node.name, H_PID), t.id), t.serial), t.creation)
  if (t instanceof Port) return mix(mix(strHash(t.node.name, H_PORT), Number(BigInt.asIntN(32, BigInt(t.id)))), t.creation)
  if (t instanceof Ref) {
    let h = mix(strHash(t.node.name, H_REF), t.creation)
    for (let i = 0; i < t.ids.length; i++) h = mix(h, t.ids[i])
    return h
  }
  if (t instanceof ExportFun) return mix(strHash(t.function.name, strHash(t.module.name, H_EXPORT)), t.arity)
  return undefined
}

interface HashFrame {
  items: ArrayLike<unknown>
  i: number
  /** The hash so far; for a map, the order-free sum of its entries' hashes. */
  h: number
  map: boolean
  /** A map's hash of the key whose value is being hashed. */
  kh: number
  /** Index of an improper list's tail in items (-1: none). */
  tailAt: number
}

function hashFrameOf(t: unknown): HashFrame {
  const { kind, items, tailAt } = childrenOf(t)
  const n = items.length
  switch (kind) {
    case 'list':
      return { items, i: 0, h: mix(H_LIST, tailAt), map: false, kh: 0, tailAt }
    case 'tuple':
      return { items, i: 0, h: mix(H_TUPLE, n), map: false, kh: 0, tailAt }
    case 'map':
      return { items, i: 0, h: 0, map: true, kh: 0, tailAt }
    case 'fun': {
      // What termEquals compares: uniq, index, module, pid and the free variables.
      const f = t as Fun
      const h = mix(strHash(f.module.name, bytesHash(f.uniq, H_FUN)), f.index)
      return { items, i: 0, h: mix(mix(h, scalarHash(f.pid) ?? 0), n), map: false, kh: 0, tailAt }
    }
  }
}

/** Folds the hash of f's next item into f. */
function foldHash(f: HashFrame, x: number): void {
  if (f.map) {
    if ((f.i & 1) === 0) f.kh = x
    else f.h = (f.h + mix(f.kh, x)) | 0
  } else {
    if (f.i === f.tailAt) f.h = mix(f.h, H_TAIL)
    f.h = mix(f.h, x)
  }
  f.i++
}

/**
 * A 32-bit hash, equal for two terms when they are =:= (termEquals): lists and strings alike as their
 * elements, list tails merged, maps in any key order, a plain object as the map with atom keys it encodes to.
 * Iterative. Throws TypeError for a value that is not a term, and RangeError past maxDepth levels of nesting
 * (the encoder's bound, which also stops a cyclic value).
 */
export function termHash(t: Term, maxDepth = Infinity): number {
  const s = scalarHash(t)
  if (s !== undefined) return s
  const stack: HashFrame[] = [hashFrameOf(t)]
  for (;;) {
    const f = stack[stack.length - 1]
    let x: number
    if (f.i < f.items.length) {
      const child = f.items[f.i]
      const c = scalarHash(child)
      if (c === undefined) {
        if (stack.length >= maxDepth) throw new RangeError(`a map key nests deeper than ${maxDepth} (a cyclic value?)`)
        stack.push(hashFrameOf(child))
        continue
      }
      x = c
    } else {
      x = f.map ? mix(mix(H_MAP, f.items.length >>> 1), f.h) : f.h
      stack.pop()
      if (stack.length === 0) return x
    }
    foldHash(stack[stack.length - 1], x)
  }
}
