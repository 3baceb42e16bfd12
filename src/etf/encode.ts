// ETF encoder — erts User's Guide, "External Term Format".
// Iterative (an explicit stack) with a depth bound, so deep or cyclic JS values give an EncodeError
// instead of a stack overflow or an endless loop.
// The imported Buffer, not the global: globalThis.Buffer is an accessor that runs on every use.
import { Buffer } from 'node:buffer'
import { deflateSync } from 'node:zlib'
import {
  Atom,
  BitBinary,
  ExportFun,
  Float,
  Fun,
  ImproperList,
  Pid,
  Port,
  Ref,
  Tuple,
  atom,
  isPlainObject,
  type Term,
} from './terms.js'
import { EncodeError } from './errors.js'
import { assertDistinctKeys, keyNeedsCheck } from './mapkeys.js'
import { Writer } from './writer.js'
import { DEFAULT_MAX_DEPTH } from './decode.js'
import {
  ATOM_CACHE_REF,
  ATOM_UTF8_EXT,
  BINARY_EXT,
  BIT_BINARY_EXT,
  COMPRESSED,
  EXPORT_EXT,
  INTEGER_EXT,
  LARGE_BIG_EXT,
  LARGE_TUPLE_EXT,
  LIST_EXT,
  MAP_EXT,
  MAX_ATOM_CHARACTERS,
  MAX_BIG_BYTES,
  MAX_REFERENCE_WORDS,
  NEWER_REFERENCE_EXT,
  NEW_FLOAT_EXT,
  NEW_FUN_EXT,
  NEW_PID_EXT,
  NEW_PORT_EXT,
  NIL_EXT,
  SMALL_ATOM_UTF8_EXT,
  SMALL_BIG_EXT,
  SMALL_INTEGER_EXT,
  SMALL_TUPLE_EXT,
  STRING_EXT,
  V4_PORT_EXT,
  VERSION_MAGIC,
} from './tags.js'

export interface EncodeOptions {
  /** COMPRESSED output (termToBinary / termToChunks only): true is zlib level 6, a number is the level (0 = off). */
  compressed?: boolean | number
  /** Buffers longer than this are appended by reference (their own chunk). Default: the Writer's (64). */
  largeBinaryThreshold?: number
  /** If it returns an index (0..255), the atom is written as ATOM_CACHE_REF (distribution header). */
  atomCacheRef?: (a: Atom) => number | undefined
  /** Deepest nesting accepted (a cyclic value hits this). Default 10,000, the decoder's default. */
  maxDepth?: number
}

// Node's Buffer has this fast path; @types/node does not declare it.
interface FastWrite {
  utf8Write(s: string, offset: number, length: number): number
}

const A_TRUE = atom('true')
const A_FALSE = atom('false')
const TWO_32 = 4294967296
const LONE_SURROGATE = /\p{Cs}/u

type CacheRef = ((a: Atom) => number | undefined) | undefined

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (typeof v !== 'object') return typeof v
  const name = (v as object).constructor?.name
  return name ? `a ${name}` : 'an object'
}

function writeAtom(w: Writer, a: Atom, cacheRef: CacheRef): void {
  if (cacheRef !== undefined) {
    const i = cacheRef(a)
    if (i !== undefined) {
      if ((i & 0xff) !== i) throw new EncodeError(`atom cache index ${i} outside 0..255`)
      w.ensure(2)
      w.buf[w.pos] = ATOM_CACHE_REF
      w.buf[w.pos + 1] = i
      w.pos += 2
      return
    }
  }
  writeAtomName(w, a.name)
}

/**
 * Why an atom of this name cannot be written (over 255 characters, or not UTF-8: a lone surrogate), or
 * undefined when it can. writeAtomName throws it as EncodeError; a distribution atom cache asks before
 * taking an atom in.
 */
export function atomNameRefusal(name: string): string | undefined {
  if (name.length <= MAX_ATOM_CHARACTERS && !/[^\x00-\x7f]/.test(name)) return undefined
  if (LONE_SURROGATE.test(name)) return 'atom name contains a lone surrogate (not UTF-8)'
  let chars = 0
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c < 0xdc00 || c > 0xdfff) chars++ // count code points: skip the low half of each pair
  }
  return chars > MAX_ATOM_CHARACTERS ? `atom of ${chars} characters exceeds Erlang's ${MAX_ATOM_CHARACTERS}` : undefined
}

function writeAtomName(w: Writer, name: string): void {
  const n = name.length
  if (n <= 255) {
    w.ensure(n + 2)
    const b = w.buf
    const p = w.pos
    let i = 0
    for (; i < n; i++) {
      const c = name.charCodeAt(i)
      if (c > 0x7f) break
      b[p + 2 + i] = c
    }
    if (i === n) {
      // SMALL_ATOM_UTF8_EXT: Len:8, AtomName
      b[p] = SMALL_ATOM_UTF8_EXT
      b[p + 1] = n
      w.pos = p + 2 + n
      return
    }
  }
  const refusal = atomNameRefusal(name)
  if (refusal !== undefined) throw new EncodeError(refusal)
  const bytes = Buffer.byteLength(name, 'utf8')
  if (bytes < 256) {
    w.ensure(2 + bytes)
    w.buf[w.pos] = SMALL_ATOM_UTF8_EXT
    w.buf[w.pos + 1] = bytes
    ;(w.buf as unknown as FastWrite).utf8Write(name, w.pos + 2, bytes)
    w.pos += 2 + bytes
  } else {
    // ATOM_UTF8_EXT: Len:16, AtomName
    w.ensure(3 + bytes)
    w.buf[w.pos] = ATOM_UTF8_EXT
    w.buf[w.pos + 1] = bytes >>> 8
    w.buf[w.pos + 2] = bytes
    ;(w.buf as unknown as FastWrite).utf8Write(name, w.pos + 3, bytes)
    w.pos += 3 + bytes
  }
}

function put32(b: Buffer, p: number, v: number): void {
  b[p] = v >>> 24
  b[p + 1] = v >>> 16
  b[p + 2] = v >>> 8
  b[p + 3] = v
}

const byteCount = (x: number): number => (x < 0x100 ? 1 : x < 0x10000 ? 2 : x < 0x1000000 ? 3 : 4)

/** SMALL_BIG_EXT of a magnitude below 2^64 given as two 32-bit halves. */
function writeBig64(w: Writer, negative: boolean, lo: number, hi: number): void {
  const n = hi === 0 ? byteCount(lo) : 4 + byteCount(hi)
  w.ensure(3 + n)
  const b = w.buf
  let p = w.pos
  b[p++] = SMALL_BIG_EXT
  b[p++] = n
  b[p++] = negative ? 1 : 0
  for (let i = 0; i < n; i++) {
    b[p++] = i < 4 ? lo >>> (8 * i) : hi >>> (8 * (i - 4))
  }
  w.pos = p
}

function writeNumber(w: Writer, v: number): void {
  if (Number.isInteger(v)) {
    if (v >= 0 && v <= 255) {
      w.ensure(2)
      w.buf[w.pos] = SMALL_INTEGER_EXT
      w.buf[w.pos + 1] = v
      w.pos += 2
    } else if (v >= -2147483648 && v <= 2147483647) {
      w.ensure(5)
      w.buf[w.pos] = INTEGER_EXT
      put32(w.buf, w.pos + 1, v)
      w.pos += 5
    } else if (v >= -Number.MAX_SAFE_INTEGER && v <= Number.MAX_SAFE_INTEGER) {
      const m = Math.abs(v)
      writeBig64(w, v < 0, m % TWO_32 >>> 0, Math.floor(m / TWO_32))
    } else writeBigInt(w, BigInt(v))
  } else if (Number.isFinite(v)) {
    w.ensure(9)
    w.buf[w.pos] = NEW_FLOAT_EXT
    w.buf.writeDoubleBE(v, w.pos + 1)
    w.pos += 9
  } else throw new EncodeError(`${v} has no Erlang representation`)
}

function writeBigInt(w: Writer, v: bigint): void {
  if (v >= -9007199254740991n && v <= 9007199254740991n) return writeNumber(w, Number(v))
  const negative = v < 0n
  const m = negative ? -v : v
  if (m < 0x10000000000000000n) {
    writeBig64(w, negative, Number(m & 0xffffffffn), Number(m >> 32n))
    return
  }
  let hex = m.toString(16)
  if (hex.length & 1) hex = '0' + hex
  const n = hex.length >>> 1
  if (n > MAX_BIG_BYTES) throw new EncodeError(`integer of ${n} bytes exceeds Erlang's ${MAX_BIG_BYTES}`)
  const be = Buffer.from(hex, 'hex')
  const head = n <= 255 ? 3 : 6
  w.ensure(head + n)
  const b = w.buf
  let p = w.pos
  if (n <= 255) {
    b[p++] = SMALL_BIG_EXT
    b[p++] = n
  } else {
    b[p++] = LARGE_BIG_EXT
    put32(b, p, n)
    p += 4
  }
  b[p++] = negative ? 1 : 0
  for (let i = 0; i < n; i++) b[p + i] = be[n - 1 - i]
  w.pos = p + n
}

/** An integer field of a fun (OldIndex, OldUniq): number or bigint. */
function writeInteger(w: Writer, v: unknown, what: string): void {
  if (typeof v === 'number' && Number.isInteger(v)) writeNumber(w, v)
  else if (typeof v === 'bigint') writeBigInt(w, v)
  else throw new EncodeError(`${what} must be an integer, got ${describe(v)}`)
}

function writeString(w: Writer, s: string): void {
  const n = s.length
  if (n === 0) {
    w.ensure(1)
    w.buf[w.pos++] = NIL_EXT
    return
  }
  if (n < 65536) {
    w.ensure(3 + n)
    const b = w.buf
    const p = w.pos
    let i = 0
    for (; i < n; i++) {
      const c = s.charCodeAt(i)
      if (c > 255) break
      b[p + 3 + i] = c
    }
    if (i === n) {
      // STRING_EXT: Length:16, Characters
      b[p] = STRING_EXT
      b[p + 1] = n >>> 8
      b[p + 2] = n
      w.pos = p + 3 + n
      return
    }
  }
  // Too long for STRING_EXT or a code point over 255: a LIST_EXT of code points.
  let count = 0
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) i++
    }
    count++
  }
  w.ensure(6 + 5 * count)
  const b = w.buf
  let p = w.pos
  b[p] = LIST_EXT
  put32(b, p + 1, count)
  p += 5
  for (let i = 0; i < n; i++) {
    const c = s.codePointAt(i)!
    if (c > 0xffff) i++
    if (c < 256) {
      b[p] = SMALL_INTEGER_EXT
      b[p + 1] = c
      p += 2
    } else {
      b[p] = INTEGER_EXT
      put32(b, p + 1, c)
      p += 5
    }
  }
  b[p++] = NIL_EXT
  w.pos = p
}

function writeBinary(w: Writer, data: Uint8Array, threshold: number): void {
  const n = data.length
  // BINARY_EXT: Len:32, Data
  w.ensure(5)
  w.buf[w.pos] = BINARY_EXT
  put32(w.buf, w.pos + 1, n)
  w.pos += 5
  if (n > threshold) w.chunk(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, n))
  else w.bytes(data)
}

function writeBitBinary(w: Writer, t: BitBinary, threshold: number): void {
  const data: Uint8Array = t.data
  const bits = t.bits
  if (!(data instanceof Uint8Array)) throw new EncodeError('BitBinary data must be a Buffer')
  const n = data.length
  if (!Number.isInteger(bits) || bits < 1 || bits > 7 || n === 0)
    throw new EncodeError(`BitBinary needs 1..7 bits in a non-empty last byte, got ${bits} bits of ${n} bytes`)
  // BIT_BINARY_EXT: Len:32, Bits:8, Data — bits past the end are written as zero
  w.ensure(6)
  const b = w.buf
  b[w.pos] = BIT_BINARY_EXT
  put32(b, w.pos + 1, n)
  b[w.pos + 5] = bits
  w.pos += 6
  const mask = (0xff << (8 - bits)) & 0xff
  const last = data[n - 1]
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, n)
  if ((last & ~mask) === 0) {
    if (n > threshold) w.chunk(buf)
    else w.bytes(buf)
  } else {
    const head = buf.subarray(0, n - 1)
    if (n - 1 > threshold) w.chunk(head)
    else w.bytes(head)
    w.ensure(1)
    w.buf[w.pos++] = last & mask
  }
}

const isU32 = (v: unknown): v is number => typeof v === 'number' && v >>> 0 === v

function writePid(w: Writer, t: Pid, cacheRef: CacheRef): void {
  if (!(t.node instanceof Atom)) throw new EncodeError('pid node must be an Atom')
  if (!isU32(t.id) || !isU32(t.serial) || !isU32(t.creation))
    throw new EncodeError(`pid fields must be 32-bit unsigned integers: ${t.id}.${t.serial}.${t.creation}`)
  // NEW_PID_EXT: Node, ID:32, Serial:32, Creation:32
  w.ensure(1)
  w.buf[w.pos++] = NEW_PID_EXT
  writeAtom(w, t.node, cacheRef)
  w.ensure(12)
  put32(w.buf, w.pos, t.id)
  put32(w.buf, w.pos + 4, t.serial)
  put32(w.buf, w.pos + 8, t.creation)
  w.pos += 12
}

function writePort(w: Writer, t: Port, cacheRef: CacheRef): void {
  if (!(t.node instanceof Atom)) throw new EncodeError('port node must be an Atom')
  const id: unknown = t.id
  const big = typeof id === 'bigint' ? id : typeof id === 'number' && Number.isInteger(id) ? BigInt(id) : -1n
  if (big < 0n || big > 0xffffffffffffffffn) throw new EncodeError(`port id must be a 64-bit unsigned integer: ${id}`)
  if (!isU32(t.creation)) throw new EncodeError(`port creation must be a 32-bit unsigned integer: ${t.creation}`)
  const v4 = big > 0xffffffffn
  w.ensure(1)
  w.buf[w.pos++] = v4 ? V4_PORT_EXT : NEW_PORT_EXT
  writeAtom(w, t.node, cacheRef)
  // NEW_PORT_EXT: Node, ID:32, Creation:32 — V4_PORT_EXT: Node, ID:64, Creation:32
  w.ensure(12)
  if (v4) {
    w.buf.writeBigUInt64BE(big, w.pos)
    w.pos += 8
  } else {
    put32(w.buf, w.pos, Number(big))
    w.pos += 4
  }
  put32(w.buf, w.pos, t.creation)
  w.pos += 4
}

function writeRef(w: Writer, t: Ref, cacheRef: CacheRef): void {
  if (!(t.node instanceof Atom)) throw new EncodeError('reference node must be an Atom')
  const ids = t.ids
  if (!Array.isArray(ids) || ids.length > MAX_REFERENCE_WORDS || !ids.every(isU32))
    throw new EncodeError(`reference ids must be at most ${MAX_REFERENCE_WORDS} 32-bit unsigned integers`)
  if (!isU32(t.creation)) throw new EncodeError(`reference creation must be a 32-bit unsigned integer: ${t.creation}`)
  // NEWER_REFERENCE_EXT: Len:16, Node, Creation:32, ID:32 * Len
  w.ensure(3)
  w.buf[w.pos] = NEWER_REFERENCE_EXT
  w.buf[w.pos + 1] = 0
  w.buf[w.pos + 2] = ids.length
  w.pos += 3
  writeAtom(w, t.node, cacheRef)
  w.ensure(4 + 4 * ids.length)
  put32(w.buf, w.pos, t.creation)
  for (let i = 0; i < ids.length; i++) put32(w.buf, w.pos + 4 + 4 * i, ids[i])
  w.pos += 4 + 4 * ids.length
}

function writeExport(w: Writer, t: ExportFun, cacheRef: CacheRef): void {
  if (!(t.module instanceof Atom) || !(t.function instanceof Atom))
    throw new EncodeError('export fun module and function must be Atoms')
  if (!Number.isInteger(t.arity) || t.arity < 0 || t.arity > 255)
    throw new EncodeError(`export fun arity must be 0..255: ${t.arity}`)
  // EXPORT_EXT: Module, Function, Arity (SMALL_INTEGER_EXT)
  w.ensure(1)
  w.buf[w.pos++] = EXPORT_EXT
  writeAtom(w, t.module, cacheRef)
  writeAtom(w, t.function, cacheRef)
  w.ensure(2)
  w.buf[w.pos] = SMALL_INTEGER_EXT
  w.buf[w.pos + 1] = t.arity
  w.pos += 2
}

/** NEW_FUN_EXT up to (not including) the free variables; returns the logical position of Size. */
function writeFunHead(w: Writer, t: Fun, cacheRef: CacheRef): number {
  if (!Number.isInteger(t.arity) || t.arity < 0 || t.arity > 255) throw new EncodeError(`fun arity must be 0..255: ${t.arity}`)
  if (!(t.uniq instanceof Uint8Array) || t.uniq.length !== 16) throw new EncodeError('fun uniq must be 16 bytes')
  if (!isU32(t.index)) throw new EncodeError(`fun index must be a 32-bit unsigned integer: ${t.index}`)
  if (!(t.module instanceof Atom)) throw new EncodeError('fun module must be an Atom')
  if (!(t.pid instanceof Pid)) throw new EncodeError('fun pid must be a Pid')
  if (!Array.isArray(t.freeVars)) throw new EncodeError('fun freeVars must be an array')
  // NEW_FUN_EXT: Size:32, Arity:8, Uniq:16, Index:32, NumFree:32, Module, OldIndex, OldUniq, Pid, FreeVars
  w.ensure(1)
  w.buf[w.pos++] = NEW_FUN_EXT
  const sizeAt = w.length
  w.ensure(29)
  const b = w.buf
  const p = w.pos
  put32(b, p, 0)
  b[p + 4] = t.arity
  for (let i = 0; i < 16; i++) b[p + 5 + i] = t.uniq[i]
  put32(b, p + 21, t.index)
  put32(b, p + 25, t.freeVars.length)
  w.pos = p + 29
  writeAtom(w, t.module, cacheRef)
  writeInteger(w, t.oldIndex, 'fun oldIndex')
  writeInteger(w, t.oldUniq, 'fun oldUniq')
  writePid(w, t.pid, cacheRef)
  return sizeAt
}

// --- the iterative walk ------------------------------------------------------------------------
// Frames live in module-level arrays; each call works above the frames of any call it runs inside
// (an atomCacheRef callback may encode), so calls nest safely.
const E_SEQ = 0 // tuple elements or map key/value pairs (flattened)
const E_LIST = 1 // proper list elements, then NIL_EXT
const E_IMPROPER = 2 // improper list elements, then its tail
const E_TAIL = 3 // the tail is being written; nothing after it
const E_OBJECT = 4 // a plain object: atom key, then its value
const E_FUN = 5 // fun free variables, then backfill Size

const eKind: number[] = []
const eCont: unknown[] = []
const eIdx: number[] = []
const eN: number[] = []
const eAux: unknown[] = []
let eTop = 0

/**
 * Writes el[i], el[i+1], ... while they are scalars that need no frame (numbers, strings, atoms, booleans,
 * binaries) — tagged tuples, lists of numbers, rows of strings, maps of atoms to numbers and binaries — and
 * returns the index of the first other.
 */
function scalarRun(w: Writer, el: unknown[], i: number, n: number, cacheRef: CacheRef, threshold: number): number {
  for (; i < n; i++) {
    const x = el[i]
    if (typeof x === 'number') {
      if ((x | 0) !== x) {
        writeNumber(w, x)
        continue
      }
      w.ensure(5)
      const b = w.buf
      const p = w.pos
      if ((x & 0xff) === x) {
        b[p] = SMALL_INTEGER_EXT
        b[p + 1] = x
        w.pos = p + 2
      } else {
        b[p] = INTEGER_EXT
        put32(b, p + 1, x)
        w.pos = p + 5
      }
    } else if (typeof x === 'string') writeString(w, x)
    else if (x instanceof Atom) writeAtom(w, x, cacheRef)
    else if (typeof x === 'boolean') writeAtom(w, x ? A_TRUE : A_FALSE, cacheRef)
    else if (x instanceof Uint8Array) writeBinary(w, x, threshold)
    else break
  }
  return i
}

/** Opens a container frame; returns the new stack pointer. (Not a closure: closures cost a lot per call.) */
function pushFrame(sp: number, base: number, maxDepth: number, kind: number, cont: unknown, n: number, aux: unknown): number {
  if (sp - base >= maxDepth) throw new EncodeError(`term nested deeper than maxDepth ${maxDepth} (a cyclic value?)`)
  eKind[sp] = kind
  eCont[sp] = cont
  eIdx[sp] = 0
  eN[sp] = n
  eAux[sp] = aux
  eTop = sp + 1
  return sp + 1
}

/** Append one term WITHOUT the version byte. */
export function encodeTerm(w: Writer, term: Term, opts?: EncodeOptions): void {
  const threshold = opts?.largeBinaryThreshold ?? w.largeBinaryThreshold
  const cacheRef = opts?.atomCacheRef
  const maxDepth = opts?.maxDepth ?? DEFAULT_MAX_DEPTH
  const base = eTop
  let sp = base
  let t: unknown = term
  try {
    outer: for (;;) {
      switch (typeof t) {
        case 'number':
          writeNumber(w, t)
          break
        case 'string':
          writeString(w, t)
          break
        case 'boolean':
          writeAtom(w, t ? A_TRUE : A_FALSE, cacheRef)
          break
        case 'bigint':
          writeBigInt(w, t)
          break
        case 'object': {
          if (t === null) throw new EncodeError('null has no Erlang representation (use an atom)')
          if (t instanceof Atom) {
            writeAtom(w, t, cacheRef)
          } else if (Array.isArray(t)) {
            const n = t.length
            if (n === 0) {
              w.ensure(1)
              w.buf[w.pos++] = NIL_EXT
              break
            }
            // LIST_EXT: Length:32, Elements, Tail
            w.ensure(5)
            w.buf[w.pos] = LIST_EXT
            put32(w.buf, w.pos + 1, n)
            w.pos += 5
            sp = pushFrame(sp, base, maxDepth, E_LIST, t, n, undefined)
            break
          } else if (t instanceof Tuple) {
            const el = t.elements
            if (!Array.isArray(el)) throw new EncodeError('Tuple elements must be an array')
            const n = el.length
            if (n <= 255) {
              w.ensure(2)
              w.buf[w.pos] = SMALL_TUPLE_EXT
              w.buf[w.pos + 1] = n
              w.pos += 2
            } else {
              w.ensure(5)
              w.buf[w.pos] = LARGE_TUPLE_EXT
              put32(w.buf, w.pos + 1, n)
              w.pos += 5
            }
            if (n > 0) sp = pushFrame(sp, base, maxDepth, E_SEQ, el, n, undefined)
          } else if (t instanceof Uint8Array) {
            writeBinary(w, t, threshold)
          } else if (t instanceof Map) {
            const n = t.size
            w.ensure(5)
            w.buf[w.pos] = MAP_EXT
            put32(w.buf, w.pos + 1, n)
            w.pos += 5
            if (n > 0) {
              const flat: unknown[] = new Array(2 * n)
              let i = 0
              let check = false
              for (const [k, v] of t) {
                flat[i++] = k
                flat[i++] = v
                if (!check && keyNeedsCheck(k)) check = true
              }
              if (check && n > 1) assertDistinctKeys(t, maxDepth)
              sp = pushFrame(sp, base, maxDepth, E_SEQ, flat, 2 * n, undefined)
            }
          } else if (t instanceof Float) {
            const v = t.value
            if (typeof v !== 'number' || !Number.isFinite(v)) throw new EncodeError(`Float ${v} is not finite`)
            w.ensure(9)
            w.buf[w.pos] = NEW_FLOAT_EXT
            w.buf.writeDoubleBE(v, w.pos + 1)
            w.pos += 9
          } else if (t instanceof Pid) {
            writePid(w, t, cacheRef)
          } else if (t instanceof Ref) {
            writeRef(w, t, cacheRef)
          } else if (t instanceof Port) {
            writePort(w, t, cacheRef)
          } else if (t instanceof ImproperList) {
            const el = t.elements
            if (!Array.isArray(el)) throw new EncodeError('ImproperList elements must be an array')
            if (el.length === 0) {
              t = t.tail // no elements: the list is its tail
              continue outer
            }
            w.ensure(5)
            w.buf[w.pos] = LIST_EXT
            put32(w.buf, w.pos + 1, el.length)
            w.pos += 5
            sp = pushFrame(sp, base, maxDepth, E_IMPROPER, el, el.length, t.tail)
          } else if (t instanceof BitBinary) {
            writeBitBinary(w, t, threshold)
          } else if (t instanceof Fun) {
            const sizeAt = writeFunHead(w, t, cacheRef)
            if (t.freeVars.length === 0) w.patchU32(sizeAt, w.length - sizeAt)
            else sp = pushFrame(sp, base, maxDepth, E_FUN, t.freeVars, t.freeVars.length, sizeAt)
          } else if (t instanceof ExportFun) {
            writeExport(w, t, cacheRef)
          } else if (isPlainObject(t)) {
            const keys = Object.keys(t)
            w.ensure(5)
            w.buf[w.pos] = MAP_EXT
            put32(w.buf, w.pos + 1, keys.length)
            w.pos += 5
            if (keys.length > 0) sp = pushFrame(sp, base, maxDepth, E_OBJECT, t, keys.length, keys)
          } else throw new EncodeError(`cannot encode ${describe(t)}`)
          break
        }
        default:
          throw new EncodeError(`cannot encode ${t === undefined ? 'undefined' : `a ${typeof t}`}`)
      }

      // Find the next term to write: the next element of the innermost open container.
      for (;;) {
        if (sp === base) return
        const top = sp - 1
        const i = eIdx[top]
        const kind = eKind[top]
        if (kind === E_OBJECT) {
          if (i < eN[top]) {
            const key = (eAux[top] as string[])[i]
            eIdx[top] = i + 1
            writeAtomName(w, key)
            t = (eCont[top] as Record<string, unknown>)[key]
            continue outer
          }
        } else if (kind !== E_TAIL) {
          const n = eN[top]
          if (i < n) {
            const el = eCont[top] as unknown[]
            const j = scalarRun(w, el, i, n, cacheRef, threshold)
            if (j < n) {
              eIdx[top] = j + 1
              t = el[j]
              continue outer
            }
            eIdx[top] = j
          }
          if (kind === E_LIST) {
            w.ensure(1)
            w.buf[w.pos++] = NIL_EXT
          } else if (kind === E_IMPROPER) {
            eKind[top] = E_TAIL
            t = eAux[top]
            continue outer
          } else if (kind === E_FUN) {
            const sizeAt = eAux[top] as number
            w.patchU32(sizeAt, w.length - sizeAt)
          }
        }
        eCont[top] = undefined
        eAux[top] = undefined
        eTop = sp = top
      }
    }
  } finally {
    for (let i = base; i < sp; i++) {
      eCont[i] = undefined
      eAux[i] = undefined
    }
    eTop = base
  }
}

function compressionLevel(c: boolean | number | undefined): number {
  if (c === undefined || c === false) return 0
  if (c === true) return 6
  if (Number.isInteger(c) && c >= 0 && c <= 9) return c
  throw new EncodeError(`compressed must be a boolean or a zlib level 0..9, got ${c}`)
}

/** COMPRESSED form of an encoded term (131 first); the plain form when compression does not pay (as Erlang). */
function compress(plain: Buffer, level: number): Buffer {
  const body = plain.subarray(1)
  const z = deflateSync(body, { level })
  if (z.length + 5 >= body.length) return plain
  // COMPRESSED: UncompressedSize:32, zlib data
  const out = Buffer.allocUnsafe(6 + z.length)
  out[0] = VERSION_MAGIC
  out[1] = COMPRESSED
  put32(out, 2, body.length)
  z.copy(out, 6)
  return out
}

function encodeVersioned(term: Term, opts: EncodeOptions | undefined): Writer {
  const w = new Writer(256, opts?.largeBinaryThreshold ?? 64)
  w.buf[0] = VERSION_MAGIC
  w.pos = 1
  encodeTerm(w, term, opts)
  return w
}

/** Erlang's term_to_binary/1,2: 131 + the term, as one Buffer. */
export function termToBinary(term: Term, opts?: EncodeOptions): Buffer {
  const level = compressionLevel(opts?.compressed)
  const out = encodeVersioned(term, opts).concat()
  return level === 0 ? out : compress(out, level)
}

/** 131 + the term as a chunk list: every Buffer over largeBinaryThreshold appears by reference (for writev). */
export function termToChunks(term: Term, opts?: EncodeOptions): Buffer[] {
  const level = compressionLevel(opts?.compressed)
  const w = encodeVersioned(term, opts)
  return level === 0 ? w.finish() : [compress(w.concat(), level)]
}
