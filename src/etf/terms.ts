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

/** An Erlang atom. Interned weakly: the same name gives the same object while anyone holds it. */
export class Atom {
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

const isListTail = (t: Term): boolean => typeof t === 'string' || Array.isArray(t) || t instanceof ImproperList

/** An improper list whose tail is itself a list, written as one list (or one improper list). */
function flattenList(l: ImproperList): Term {
  const out: Term[] = [...l.elements]
  let tail: Term = l.tail
  for (;;) {
    if (typeof tail === 'string') {
      for (const c of tail) out.push(c.codePointAt(0)!)
      return out
    }
    if (Array.isArray(tail)) {
      out.push(...tail)
      return out
    }
    if (tail instanceof ImproperList) {
      out.push(...tail.elements)
      tail = tail.tail
      continue
    }
    return new ImproperList(out, tail)
  }
}

/** Erlang's `=:=` on two terms (exact equality: 1 =/= 1.0; "ab" =:= [97, 98]). */
export function termEquals(a: Term, b: Term): boolean {
  if (a === b) return true
  // [1 | [2]] is [1, 2]: a list tail continues the list.
  if (a instanceof ImproperList && isListTail(a.tail)) a = flattenList(a)
  if (b instanceof ImproperList && isListTail(b.tail)) b = flattenList(b)
  if (typeof a === 'string' || typeof b === 'string') {
    const la = typeof a === 'string' ? [...a].map((c) => c.codePointAt(0)!) : a
    const lb = typeof b === 'string' ? [...b].map((c) => c.codePointAt(0)!) : b
    if (typeof la === 'string' || typeof lb === 'string') return false
    return termEquals(la, lb)
  }
  if (typeof a === 'number' || typeof a === 'bigint') {
    if (typeof b !== 'number' && typeof b !== 'bigint') return false
    // A non-integral number is a float: never =:= an integer, and a === b already compared two floats.
    if ((typeof a === 'number' && !Number.isInteger(a)) || (typeof b === 'number' && !Number.isInteger(b))) return false
    return BigInt(a) === BigInt(b)
  }
  if (a instanceof Float) return b instanceof Float ? Object.is(a.value, b.value) || a.value === b.value : false
  if (Buffer.isBuffer(a)) return Buffer.isBuffer(b) && a.equals(b)
  if (a instanceof BitBinary)
    return b instanceof BitBinary && a.bits === b.bits && a.data.equals(b.data)
  if (Array.isArray(a))
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => termEquals(x, b[i]))
  if (a instanceof ImproperList)
    return (
      b instanceof ImproperList &&
      termEquals(a.elements, b.elements) &&
      termEquals(a.tail, b.tail)
    )
  if (a instanceof Tuple) return b instanceof Tuple && termEquals(a.elements, b.elements)
  if (a instanceof Map) {
    if (!(b instanceof Map) || a.size !== b.size) return false
    outer: for (const [k, v] of a) {
      if (b.has(k)) {
        if (!termEquals(v, b.get(k)!)) return false
        continue
      }
      for (const [k2, v2] of b) if (termEquals(k, k2)) {
        if (!termEquals(v, v2)) return false
        continue outer
      }
      return false
    }
    return true
  }
  if (a instanceof Pid)
    return (
      b instanceof Pid &&
      a.node === b.node &&
      a.id === b.id &&
      a.serial === b.serial &&
      a.creation === b.creation
    )
  if (a instanceof Port)
    return b instanceof Port && a.node === b.node && a.id === b.id && a.creation === b.creation
  if (a instanceof Ref)
    return (
      b instanceof Ref &&
      a.node === b.node &&
      a.creation === b.creation &&
      a.ids.length === b.ids.length &&
      a.ids.every((x, i) => x === b.ids[i])
    )
  if (a instanceof ExportFun)
    return (
      b instanceof ExportFun && a.module === b.module && a.function === b.function && a.arity === b.arity
    )
  if (a instanceof Fun)
    return (
      b instanceof Fun &&
      a.uniq.equals(b.uniq) &&
      a.index === b.index &&
      a.module === b.module &&
      termEquals(a.pid, b.pid) &&
      termEquals(a.freeVars, b.freeVars)
    )
  return false
}
