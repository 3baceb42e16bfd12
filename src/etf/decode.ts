// ETF decoder — erts User's Guide, "External Term Format".
// Iterative (an explicit stack), so hostile nesting cannot exhaust the JS stack; every declared length is
// checked against the bytes that remain before anything is allocated.
// Buffer imported, not the global: Node defines globalThis.Buffer as an accessor, so every use of the global
// (`buf instanceof Buffer` on each call) runs a getter; the imported binding is a constant.
import { Buffer, isUtf8 } from 'node:buffer'
import { inflateSync } from 'node:zlib'
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
  type Term,
} from './terms.js'
import {
  DecodeError,
  LimitExceededError,
  TruncatedTermError,
  UnsupportedTagError,
} from './errors.js'
import {
  FLOAT_EXT_LENGTH,
  MAX_ATOM_CHARACTERS,
  MAX_BIG_BYTES,
  MAX_REFERENCE_WORDS,
} from './tags.js'
import { makeView } from './views.js'
import { newKey, newKeySet, type KeySet } from './mapkeys.js'

// The tag bytes of tags.ts as a const enum: case labels become literals, so the engine can dispatch
// `switch (tag)` through a jump table instead of a chain of comparisons (measurably faster). The per-tag
// tests decode every tag, so a value that drifted from tags.ts would fail them.
const enum Tag {
  NEW_FLOAT_EXT = 70,
  BIT_BINARY_EXT = 77,
  COMPRESSED = 80,
  ATOM_CACHE_REF = 82,
  NEW_PID_EXT = 88,
  NEW_PORT_EXT = 89,
  NEWER_REFERENCE_EXT = 90,
  SMALL_INTEGER_EXT = 97,
  INTEGER_EXT = 98,
  FLOAT_EXT = 99,
  ATOM_EXT = 100,
  REFERENCE_EXT = 101,
  PORT_EXT = 102,
  PID_EXT = 103,
  SMALL_TUPLE_EXT = 104,
  LARGE_TUPLE_EXT = 105,
  NIL_EXT = 106,
  STRING_EXT = 107,
  LIST_EXT = 108,
  BINARY_EXT = 109,
  SMALL_BIG_EXT = 110,
  LARGE_BIG_EXT = 111,
  NEW_FUN_EXT = 112,
  EXPORT_EXT = 113,
  NEW_REFERENCE_EXT = 114,
  SMALL_ATOM_EXT = 115,
  MAP_EXT = 116,
  FUN_EXT = 117,
  ATOM_UTF8_EXT = 118,
  SMALL_ATOM_UTF8_EXT = 119,
  V4_PORT_EXT = 120,
  LOCAL_EXT = 121,
  VERSION_MAGIC = 131,
}

export interface DecodeOptions {
  /** Deepest nesting of tuples, lists, maps and fun environments accepted. Default 100,000. */
  maxDepth?: number
  /** Longest atom accepted, in characters. Default 255 (Erlang's own limit). */
  maxAtomLength?: number
  /** Largest declared uncompressed size of a COMPRESSED term. Default 64 MiB. */
  maxUncompressedSize?: number
  /** Binaries of at most this many bytes are copied; longer ones are views into the input. Default 64. */
  copyThreshold?: number
  /**
   * Binaries over copyThreshold but shorter than this get a copy instead of a view, in memory at most 8 times
   * their size (their own, or a slab of Node's Buffer pool): for input that shares its memory with data that is
   * not this term's (a read buffer holding other messages), a view would keep all of it alive. Default 0
   * (every binary over copyThreshold is a view).
   */
  viewMin?: number
  /** Resolves ATOM_CACHE_REF (inside a distribution header). Absent: ATOM_CACHE_REF is refused. */
  atomCache?: ReadonlyArray<Atom | undefined>
  /**
   * Most elements of tuples and lists, plus keys and values of maps, in one term. Default 2^24 (16,777,216).
   * What bounds the memory a term takes in the JS heap: an element can cost up to ~40 bytes there against
   * 1 on the wire ([] is a new array each time), so a 64 MiB list of []s took 2.6 GB, near the heap's limit.
   */
  maxTerms?: number
}

/** Well past what real code builds (iodata appended to, say, 20,000 times, which the BEAM takes at any depth;
 *  every walk of a term in this project uses an explicit stack), and small enough that a hostile term refused
 *  at the limit costs tens of MB on the way (a million levels took ~300 MB of peak RSS). */
export const DEFAULT_MAX_DEPTH = 100_000
export const DEFAULT_MAX_ATOM_LENGTH = MAX_ATOM_CHARACTERS
export const DEFAULT_MAX_UNCOMPRESSED_SIZE = 64 * 1024 * 1024
export const DEFAULT_COPY_THRESHOLD = 64
export const DEFAULT_MAX_TERMS = 1 << 24

// Node's Buffer has these fast paths; @types/node does not declare them.
interface FastSlices {
  latin1Slice(start: number, end: number): string
  utf8Slice(start: number, end: number): string
}

const STRING_WINDOW = 4096

const A_TRUE = atom('true')
const A_FALSE = atom('false')

// --- atom lookup by bytes --------------------------------------------------------------------
// A direct-mapped cache keyed by the atom's bytes skips string creation and interning for the
// atoms every message repeats. Keys are kept as little-endian 32-bit words (the last one zero-padded)
// so a lookup hashes and compares a word at a time. Entries hold their Atom strongly; the table is bounded.
const AC_SIZE = 4096
const AC_MASK = AC_SIZE - 1
const AC_WORDS = 12
const AC_MAX_BYTES = AC_WORDS * 4
/** Per slot: the key's byte length (-1: an empty slot), chars << 2 | encoding, then the key's words. One
 *  array, copied to a local by each lookup, so a lookup checks and loads one typed array instead of four.
 *  Encoding 0: all bytes ASCII (same atom in either encoding); 1: latin1 with high bytes; 2: UTF-8 with high bytes. */
const AC_STRIDE = AC_WORDS + 2
const acKeys = new Int32Array(AC_SIZE * AC_STRIDE)
for (let i = 0; i < AC_SIZE; i++) acKeys[i * AC_STRIDE] = -1
const acAtom: (Atom | undefined)[] = new Array(AC_SIZE).fill(undefined)
const scratch = new Int32Array(AC_WORDS)

/**
 * The cached Atom for buf[start, start + len) in this encoding, or undefined (g.slot then names the slot
 * newAtom fills). Apart from the slow path, so the hit path stays short.
 */
function cachedAtom(buf: Buffer, start: number, len: number, utf8: boolean, maxChars: number): Atom | undefined {
  if (len > AC_MAX_BYTES) {
    g.slot = -1
    return undefined
  }
  const sc = scratch
  const full = len >> 2
  let h = len
  let w = 0
  let p = start
  for (; w < full; w++) {
    const word = buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)
    p += 4
    sc[w] = word
    h = Math.imul(h ^ word, 0x9e3779b1)
  }
  const rest = len & 3
  if (rest !== 0) {
    const word = rest === 1 ? buf[p] : rest === 2 ? buf[p] | (buf[p + 1] << 8) : buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16)
    sc[w++] = word
    h = Math.imul(h ^ word, 0x9e3779b1)
  }
  // murmur3's finalizer: the slot bits depend on every key bit (a plain multiply leaves the low bits blind to
  // the high bytes of the last word, so 'field_10'..'field_19' shared a few slots).
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  const slot = (h ^ (h >>> 16)) & AC_MASK
  g.slot = slot
  const keys = acKeys
  const base = slot * AC_STRIDE
  if (keys[base] !== len) return undefined
  for (let k = 0; k < w; k++) if (keys[base + 2 + k] !== sc[k]) return undefined
  const meta = keys[base + 1]
  const enc = meta & 3
  return (enc === 0 || enc === (utf8 ? 2 : 1)) && meta >> 2 <= maxChars ? acAtom[slot] : undefined
}

/** @internal Atom-cache misses since start (each one decodes and interns the name): for tests. */
export const atomCacheStats = { misses: 0 }

/** Decodes (validating) an atom that is not in the cache, and caches it. */
function newAtom(buf: Buffer, start: number, len: number, utf8: boolean, maxChars: number, at: number): Atom {
  const slot = g.slot
  atomCacheStats.misses++
  let ascii = true
  for (let i = 0; i < len; i++)
    if (buf[start + i] > 0x7f) {
      ascii = false
      break
    }
  let name: string
  let chars = len
  if (ascii) {
    name = (buf as unknown as FastSlices).latin1Slice(start, start + len)
  } else if (utf8) {
    if (!isUtf8(buf.subarray(start, start + len))) throw new DecodeError('atom is not valid UTF-8', at)
    chars = 0
    for (let i = 0; i < len; i++) if ((buf[start + i] & 0xc0) !== 0x80) chars++
    name = (buf as unknown as FastSlices).utf8Slice(start, start + len)
  } else {
    name = (buf as unknown as FastSlices).latin1Slice(start, start + len)
  }
  if (chars > maxChars)
    throw new LimitExceededError(`atom of ${chars} characters exceeds maxAtomLength ${maxChars}`, at)
  const a = atom(name)
  if (slot >= 0) {
    const base = slot * AC_STRIDE
    acKeys.set(scratch.subarray(0, (len + 3) >> 2), base + 2)
    acKeys[base] = len
    acKeys[base + 1] = (chars << 2) | (ascii ? 0 : utf8 ? 2 : 1)
    acAtom[slot] = a
  }
  return a
}

// --- decoder state ---------------------------------------------------------------------------
// The explicit stack lives in module-level arrays reused across calls (decoding never re-enters).
const K_LIST = 0
const K_LIST_TAIL = 1
const K_TUPLE = 2
const K_MAP = 3
const K_FUN = 4

const stKind: number[] = []
const stCont: unknown[] = []
const stIdx: number[] = []
const stN: number[] = []
const stAux: unknown[] = []
/** K_MAP: where the key being read began, and the compound and string keys so far (mapkeys.ts). */
const stKeyAt: number[] = []
const stKeys: (KeySet | undefined)[] = []

/** Position after the last embedded read (atoms inside pids, ports, refs, funs, exports) and after a term.
 *  Properties of a constant object: cheaper to update in hot code than module-level `let`s.
 *  `ab`/`abOff`: the input's ArrayBuffer and offset for binary views, fetched at the first view of a decode
 *  (`buf.buffer` is a call into C++) and cleared when the decode ends, so they never pin an input. */
const g: { pos: number; slot: number; ab: ArrayBufferLike | undefined; abOff: number; viewMin: number } = {
  pos: 0,
  slot: -1,
  ab: undefined,
  abOff: 0,
  viewMin: 0,
}

/** @internal Views of an input made so far (binaries over copyThreshold): a reader that reuses its input
 *  memory (dist/frame-reader.ts) does so only while decoding made none. */
export const decodeViews = { count: 0 }

/** buf[pos, pos + n) as a view sharing the input's memory, or under viewMin, a copy of its own. */
function viewOf(buf: Buffer, pos: number, n: number): Buffer {
  if (n < g.viewMin) {
    // From Node's pool (8 KiB slabs, for copies under 4 KiB) when that holds at most 8 times n, which costs a
    // third of memory of its own (an ArrayBuffer of exactly n bytes, ~700 ns for 1 KiB); below, of its own.
    const own = n >= Buffer.poolSize >>> 3 ? Buffer.allocUnsafe(n) : Buffer.allocUnsafeSlow(n)
    buf.copy(own, 0, pos, pos + n)
    return own
  }
  decodeViews.count++
  let ab = g.ab
  if (ab === undefined) {
    ab = g.ab = buf.buffer
    g.abOff = buf.byteOffset
  }
  return makeView(ab, g.abOff + pos, n)
}

interface FunHead {
  start: number
  size: number
  arity: number
  uniq: Buffer
  index: number
  module: Atom
  oldIndex: number | bigint
  oldUniq: number | bigint
  pid: Pid
}

const tooManyTerms = (maxTerms: number, at: number): LimitExceededError =>
  new LimitExceededError(`more than maxTerms ${maxTerms} elements in one term`, at)

const truncated = (what: string, at: number, need: number, left: number): TruncatedTermError =>
  new TruncatedTermError(`${what}: need ${need} bytes, ${left} left`, at)

const u32 = (b: Buffer, p: number): number =>
  ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0

const i32 = (b: Buffer, p: number): number =>
  (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]

// Small copies (binaries up to copyThreshold, fun uniqs) are carved from a shared slab, as Node's own
// Buffer pool does: a copy never pins the input, and a view of the slab is cheaper than Buffer.allocUnsafe.
const SLAB_SIZE = 16 * 1024
let slab = new ArrayBuffer(SLAB_SIZE)
let slabBytes = new Uint8Array(slab)
let slabUsed = 0

function copyOf(buf: Buffer, start: number, len: number): Buffer {
  if (len > 256) {
    const d = Buffer.allocUnsafe(len)
    buf.copy(d, 0, start, start + len)
    return d
  }
  if (slabUsed + len > SLAB_SIZE) {
    slab = new ArrayBuffer(SLAB_SIZE)
    slabBytes = new Uint8Array(slab)
    slabUsed = 0
  }
  const at = slabUsed
  const d = slabBytes
  for (let i = 0; i < len; i++) d[at + i] = buf[start + i]
  slabUsed = (at + len + 7) & ~7 // keep views 8-byte aligned, as Node's pool does
  return makeView(slab, at, len)
}

/** An atom in a position that must be an atom (node names, module and function names). Sets g.pos. */
function readAtom(buf: Buffer, pos: number, end: number, maxChars: number, cache: ReadonlyArray<Atom | undefined> | undefined): Atom {
  const tag = pos < end ? buf[pos] : -1
  let len: number
  let start: number
  if (tag === Tag.SMALL_ATOM_UTF8_EXT || tag === Tag.SMALL_ATOM_EXT) {
    // SMALL_ATOM_UTF8_EXT / SMALL_ATOM_EXT: Len:8, AtomName
    if (pos + 2 > end) throw truncated('atom length', pos + 1, 1, end - pos - 1)
    len = buf[pos + 1]
    start = pos + 2
  } else if (tag === Tag.ATOM_EXT || tag === Tag.ATOM_UTF8_EXT) {
    // ATOM_EXT / ATOM_UTF8_EXT: Len:16, AtomName
    if (pos + 3 > end) throw truncated('atom length', pos + 1, 2, end - pos - 1)
    len = (buf[pos + 1] << 8) | buf[pos + 2]
    start = pos + 3
  } else return cacheRefAtom(buf, pos, end, cache)
  const utf8 = tag === Tag.SMALL_ATOM_UTF8_EXT || tag === Tag.ATOM_UTF8_EXT
  checkAtomBytes(len, utf8, maxChars, pos)
  if (start + len > end) throw truncated('atom text', start, len, end - start)
  g.pos = start + len
  return cachedAtom(buf, start, len, utf8, maxChars) ?? newAtom(buf, start, len, utf8, maxChars, pos)
}

/** ATOM_CACHE_REF: Index:8, resolved through the distribution header's cache. Anything else is an error. */
function cacheRefAtom(buf: Buffer, pos: number, end: number, cache: ReadonlyArray<Atom | undefined> | undefined): Atom {
  if (pos >= end) throw truncated('atom tag', pos, 1, 0)
  if (buf[pos] !== Tag.ATOM_CACHE_REF) throw new DecodeError(`expected an atom, found tag ${buf[pos]}`, pos)
  if (pos + 2 > end) throw truncated('ATOM_CACHE_REF index', pos + 1, 1, 0)
  const a = cacheLookup(cache, buf[pos + 1], pos)
  g.pos = pos + 2
  return a
}

function checkAtomBytes(len: number, utf8: boolean, maxChars: number, at: number): void {
  // A character is at most 4 bytes of UTF-8, 1 of latin1: refuse before touching the text.
  if (len > (utf8 ? maxChars * 4 : maxChars))
    throw new LimitExceededError(`atom of ${len} bytes exceeds maxAtomLength ${maxChars}`, at)
}

function cacheLookup(cache: ReadonlyArray<Atom | undefined> | undefined, i: number, at: number): Atom {
  if (cache === undefined)
    throw new UnsupportedTagError(Tag.ATOM_CACHE_REF, 'ATOM_CACHE_REF outside a distribution header', at)
  const a = cache[i]
  if (!(a instanceof Atom)) throw new DecodeError(`ATOM_CACHE_REF ${i} is not in the atom cache`, at)
  return a
}

/** SMALL_INTEGER_EXT or INTEGER_EXT (fun indexes and uniqs, export arities). Sets g.pos. */
function readSmallInt(buf: Buffer, pos: number, end: number): number {
  if (pos >= end) throw truncated('integer tag', pos, 1, 0)
  const tag = buf[pos]
  if (tag === Tag.SMALL_INTEGER_EXT) {
    if (pos + 2 > end) throw truncated('SMALL_INTEGER_EXT', pos + 1, 1, 0)
    g.pos = pos + 2
    return buf[pos + 1]
  }
  if (tag === Tag.INTEGER_EXT) {
    if (pos + 5 > end) throw truncated('INTEGER_EXT', pos + 1, 4, end - pos - 1)
    g.pos = pos + 5
    return i32(buf, pos + 1)
  }
  throw new DecodeError(`expected SMALL_INTEGER_EXT or INTEGER_EXT, found tag ${tag}`, pos)
}

/** PID_EXT or NEW_PID_EXT, tag at pos. Sets g.pos. */
function readPid(buf: Buffer, pos: number, end: number, maxChars: number, cache: ReadonlyArray<Atom | undefined> | undefined): Pid {
  if (pos >= end) throw truncated('pid tag', pos, 1, 0)
  const tag = buf[pos]
  if (tag !== Tag.NEW_PID_EXT && tag !== Tag.PID_EXT) throw new DecodeError(`expected a pid, found tag ${tag}`, pos)
  const node = readAtom(buf, pos + 1, end, maxChars, cache)
  let p = g.pos
  // NEW_PID_EXT: Node, ID:32, Serial:32, Creation:32 — PID_EXT: the same with Creation:8
  const need = tag === Tag.NEW_PID_EXT ? 12 : 9
  if (p + need > end) throw truncated('pid', p, need, end - p)
  const id = u32(buf, p)
  const serial = u32(buf, p + 4)
  const creation = tag === Tag.NEW_PID_EXT ? u32(buf, p + 8) : buf[p + 8]
  g.pos = p + need
  return new Pid(node, id, serial, creation)
}

/** NEW_REFERENCE_EXT or NEWER_REFERENCE_EXT, tag at at. Sets g.pos. */
function readRef(buf: Buffer, at: number, end: number, maxChars: number, cache: ReadonlyArray<Atom | undefined> | undefined): Ref {
  // Len:16, Node, Creation (8 bits in NEW_, 32 in NEWER_), ID:32 * Len
  let pos = at + 1
  if (pos + 2 > end) throw truncated('reference length', pos, 2, end - pos)
  const n = (buf[pos] << 8) | buf[pos + 1]
  if (n > MAX_REFERENCE_WORDS) throw new DecodeError(`reference with ${n} id words (at most ${MAX_REFERENCE_WORDS})`, at)
  const node = readAtom(buf, pos + 2, end, maxChars, cache)
  pos = g.pos
  const cbytes = buf[at] === Tag.NEWER_REFERENCE_EXT ? 4 : 1
  if (pos + cbytes + 4 * n > end) throw truncated('reference', pos, cbytes + 4 * n, end - pos)
  const creation = cbytes === 4 ? u32(buf, pos) : buf[pos]
  pos += cbytes
  const ids = new Array<number>(n)
  for (let i = 0; i < n; i++) ids[i] = u32(buf, pos + 4 * i)
  g.pos = pos + 4 * n
  return new Ref(node, creation, ids)
}

/** BINARY_EXT (Len:32, Data), tag at at: a view over copyThreshold bytes, else a copy. Sets g.pos. */
function readBinary(buf: Buffer, at: number, end: number, copyThreshold: number): Buffer {
  const pos = at + 5
  if (pos > end) throw truncated('BINARY_EXT length', at + 1, 4, end - at - 1)
  const n = u32(buf, at + 1)
  if (n > end - pos) throw truncated('BINARY_EXT', pos, n, end - pos)
  g.pos = pos + n
  return n > copyThreshold ? viewOf(buf, pos, n) : copyOf(buf, pos, n)
}

/** NEW_FLOAT_EXT (8 bytes IEEE big-endian), tag at at; integral values stay floats (Float). Sets g.pos. */
function readNewFloat(buf: Buffer, at: number, end: number): number | Float {
  if (at + 9 > end) throw truncated('NEW_FLOAT_EXT', at + 1, 8, end - at - 1)
  const v = buf.readDoubleBE(at + 1)
  if (!Number.isFinite(v)) throw new DecodeError('NEW_FLOAT_EXT is not finite', at)
  g.pos = at + 9
  return Number.isInteger(v) ? new Float(v) : v
}

/** SMALL_BIG_EXT or LARGE_BIG_EXT, tag at at. Sets g.pos. */
function readBig(buf: Buffer, at: number, end: number): number | bigint {
  // SMALL_BIG_EXT: n:8, Sign:8, d(0)..d(n-1) little-endian; LARGE_BIG_EXT: n:32, ...
  let pos = at + 1
  let n: number
  if (buf[at] === Tag.SMALL_BIG_EXT) {
    if (pos + 2 > end) throw truncated('SMALL_BIG_EXT header', pos, 2, end - pos)
    n = buf[pos++]
  } else {
    if (pos + 5 > end) throw truncated('LARGE_BIG_EXT header', pos, 5, end - pos)
    n = u32(buf, pos)
    pos += 4
    if (n > MAX_BIG_BYTES) throw new LimitExceededError(`bignum of ${n} bytes exceeds the emulator's ${MAX_BIG_BYTES}`, at)
  }
  const negative = buf[pos++] !== 0
  if (n > end - pos) throw truncated('bignum digits', pos, n, end - pos)
  g.pos = pos + n
  return bigMagnitude(buf, pos, n, negative)
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))
const TWO_32 = 4294967296

/** Magnitude of n little-endian bytes at p, as a number when safe, else a bigint. */
function bigMagnitude(buf: Buffer, p: number, n: number, negative: boolean): number | bigint {
  while (n > 0 && buf[p + n - 1] === 0) n-- // leading zeros of the magnitude are legal, drop them
  if (n <= 6) {
    let v = 0
    for (let i = n - 1; i >= 0; i--) v = v * 256 + buf[p + i]
    return negative ? -v : v
  }
  if (n <= 8) {
    const lo = (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)) >>> 0
    let hi = 0
    for (let i = n - 1; i >= 4; i--) hi = hi * 256 + buf[p + i]
    if (hi < 0x200000) {
      const v = hi * TWO_32 + lo
      return negative ? -v : v
    }
    const v = (BigInt(hi) << 32n) | BigInt(lo)
    return negative ? -v : v
  }
  let hex: string
  if (n <= 64) {
    hex = ''
    for (let i = n - 1; i >= 0; i--) hex += HEX[buf[p + i]]
  } else {
    const rev = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) rev[i] = buf[p + n - 1 - i]
    hex = rev.toString('hex')
  }
  const v = BigInt('0x' + hex)
  return negative ? -v : v
}

// FLOAT_EXT: "%.20e"-style text, NUL-terminated inside its 31 bytes; the emulator also takes ',' as the point.
const FLOAT_TEXT = /^[+-]?\d+[.,]\d+(?:[eE][+-]?\d+)?$/

function oldFloat(buf: Buffer, p: number, at: number): number {
  let e = p
  const stop = p + FLOAT_EXT_LENGTH
  while (e < stop && buf[e] !== 0) e++
  if (e === stop) throw new DecodeError('FLOAT_EXT text is not NUL-terminated', at)
  const text = (buf as unknown as FastSlices).latin1Slice(p, e)
  if (!FLOAT_TEXT.test(text)) throw new DecodeError('FLOAT_EXT text is not a float', at)
  const v = Number(text.replace(',', '.'))
  if (!Number.isFinite(v)) throw new DecodeError('FLOAT_EXT is not finite', at)
  return v
}

/** [elements...] followed by a tail that is not NIL: merge list tails (Erlang reads them as one list). */
function withTail(elements: Term[], tail: Term): Term {
  if (Array.isArray(tail)) return tail.length === 0 ? elements : elements.concat(tail)
  if (typeof tail === 'string') {
    for (let i = 0; i < tail.length; i++) elements.push(tail.charCodeAt(i))
    return elements
  }
  if (tail instanceof ImproperList) return new ImproperList(elements.concat(tail.elements), tail.tail)
  return new ImproperList(elements, tail)
}

// STRING_EXT text. Many strings: convert a window of the input to latin1 once and cut them out of it
// (a substring is far cheaper than a latin1Slice per string); windowing stops when windows serve few.
const sw = { latin: '', start: 0, strings: 0, windows: 0, served: 0 }

function latinString(buf: Buffer, pos: number, n: number, end: number): string {
  const rel = pos - sw.start
  if (rel >= 0 && rel + n <= sw.latin.length) {
    sw.served++
    return sw.latin.substring(rel, rel + n)
  }
  if (n <= 8) {
    // Short strings are cheaper to build here than through a call into C++.
    let str = ''
    let i = pos
    const stop = pos + n
    for (; i + 4 <= stop; i += 4) str += String.fromCharCode(buf[i], buf[i + 1], buf[i + 2], buf[i + 3])
    for (; i < stop; i++) str += String.fromCharCode(buf[i])
    return str
  }
  if (++sw.strings > 4 && n < STRING_WINDOW && sw.served >= 8 * sw.windows) {
    sw.windows++
    sw.start = pos
    sw.latin = (buf as unknown as FastSlices).latin1Slice(pos, Math.min(end, pos + STRING_WINDOW))
    return sw.latin.substring(0, n)
  }
  return (buf as unknown as FastSlices).latin1Slice(pos, pos + n)
}

/**
 * Reads elements a[i], a[i+1], ... (up to n) while they are scalars that need no stack frame — integers,
 * atoms (ATOM_CACHE_REF too), strings, [], and (through otherScalar) floats, binaries, pids, references and small bignums — as in
 * tagged tuples, lists of numbers or binaries, rows of charlists and gen calls. Returns how far it got and
 * leaves the position in g.pos; the general loop takes over at the first other tag (or any error it reports).
 */
function simpleRun(
  buf: Buffer,
  pos: number,
  end: number,
  a: Term[],
  i: number,
  n: number,
  maxChars: number,
  cache: ReadonlyArray<Atom | undefined> | undefined,
  copyThreshold: number,
): number {
  for (; i < n && pos < end; i++) {
    const t = buf[pos]
    if (t === Tag.SMALL_INTEGER_EXT && pos + 2 <= end) {
      a[i] = buf[pos + 1]
      pos += 2
    } else if (t === Tag.INTEGER_EXT && pos + 5 <= end) {
      a[i] = i32(buf, pos + 1)
      pos += 5
    } else if (
      t === Tag.SMALL_ATOM_UTF8_EXT ||
      t === Tag.ATOM_CACHE_REF || // what erl sends for most atoms over the distribution
      t === Tag.ATOM_EXT ||
      t === Tag.SMALL_ATOM_EXT ||
      t === Tag.ATOM_UTF8_EXT
    ) {
      const x = readAtom(buf, pos, end, maxChars, cache)
      pos = g.pos
      a[i] = x === A_TRUE ? true : x === A_FALSE ? false : x
    } else if (t === Tag.STRING_EXT && pos + 3 <= end) {
      const len = (buf[pos + 1] << 8) | buf[pos + 2]
      if (pos + 3 + len > end) break
      a[i] = latinString(buf, pos + 3, len, end)
      pos += 3 + len
    } else if (t === Tag.NIL_EXT) {
      a[i] = []
      pos++
    } else {
      const x = otherScalar(buf, pos, end, t, maxChars, cache, copyThreshold)
      if (x === undefined) break
      a[i] = x
      pos = g.pos
    }
  }
  g.pos = pos
  return i
}

/**
 * The scalar with tag t at pos that simpleRun's own cases do not read (the position after it in g.pos), or
 * undefined: another tag, or bad input, which the general loop then reports. Shares the readers of its
 * switch, so a term decodes to the same value (or the same error) either way.
 */
function otherScalar(
  buf: Buffer,
  pos: number,
  end: number,
  t: number,
  maxChars: number,
  cache: ReadonlyArray<Atom | undefined> | undefined,
  copyThreshold: number,
): Term | undefined {
  switch (t) {
    case Tag.BINARY_EXT:
      return readBinary(buf, pos, end, copyThreshold)
    case Tag.NEW_FLOAT_EXT:
      return readNewFloat(buf, pos, end)
    case Tag.NEW_PID_EXT:
    case Tag.PID_EXT:
      return readPid(buf, pos, end, maxChars, cache)
    case Tag.NEWER_REFERENCE_EXT:
    case Tag.NEW_REFERENCE_EXT:
      return readRef(buf, pos, end, maxChars, cache)
    case Tag.SMALL_BIG_EXT:
      return readBig(buf, pos, end)
    default:
      return undefined
  }
}

/** The tail slot closeList reads a scalar tail into (cleared after each use, so it pins nothing). */
const tailBox: Term[] = [A_TRUE]

/**
 * After a list's last element at pos: a NIL tail or a scalar tail closes the list (returns it, the position
 * after it in g.pos); otherwise undefined, and the general loop reads the tail.
 */
function closeList(
  buf: Buffer,
  pos: number,
  end: number,
  a: Term[],
  maxChars: number,
  cache: ReadonlyArray<Atom | undefined> | undefined,
  copyThreshold: number,
): Term | undefined {
  if (pos < end && buf[pos] === Tag.NIL_EXT) {
    g.pos = pos + 1
    return a
  }
  if (simpleRun(buf, pos, end, tailBox, 0, 1, maxChars, cache, copyThreshold) === 0) return undefined
  const tail = tailBox[0]
  tailBox[0] = A_TRUE
  return withTail(a, tail)
}

/**
 * The decoder proper: one term starting at pos (no version byte), reading at most up to `end`.
 * Returns the term; the position after it is left in g.pos.
 */
function decodeAt(buf: Buffer, pos: number, end: number, opts: DecodeOptions | undefined): Term {
  const maxDepth = opts?.maxDepth ?? DEFAULT_MAX_DEPTH
  const maxChars = opts?.maxAtomLength ?? DEFAULT_MAX_ATOM_LENGTH
  const copyThreshold = opts?.copyThreshold ?? DEFAULT_COPY_THRESHOLD
  const cache = opts?.atomCache
  const maxTerms = opts?.maxTerms ?? DEFAULT_MAX_TERMS
  /** Elements of the containers opened so far (maxTerms). */
  let terms = 0
  g.ab = undefined
  g.viewMin = opts?.viewMin ?? 0
  sw.latin = ''
  sw.strings = 0
  sw.windows = 0
  sw.served = 0
  let sp = 0
  let value: Term
  try {
    outer: for (;;) {
      if (pos >= end) throw truncated('tag', pos, 1, 0)
      const at = pos
      const tag = buf[pos++]
      switch (tag) {
        case Tag.SMALL_INTEGER_EXT:
          if (pos >= end) throw truncated('SMALL_INTEGER_EXT', pos, 1, 0)
          value = buf[pos++]
          break
        case Tag.INTEGER_EXT:
          if (pos + 4 > end) throw truncated('INTEGER_EXT', pos, 4, end - pos)
          value = i32(buf, pos)
          pos += 4
          break
        case Tag.SMALL_ATOM_UTF8_EXT:
        case Tag.SMALL_ATOM_EXT:
        case Tag.ATOM_UTF8_EXT:
        case Tag.ATOM_EXT:
        case Tag.ATOM_CACHE_REF: {
          const a = readAtom(buf, at, end, maxChars, cache)
          pos = g.pos
          value = a === A_TRUE ? true : a === A_FALSE ? false : a
          break
        }
        case Tag.STRING_EXT: {
          // STRING_EXT: Length:16, Characters (each a byte)
          if (pos + 2 > end) throw truncated('STRING_EXT length', pos, 2, end - pos)
          const n = (buf[pos] << 8) | buf[pos + 1]
          pos += 2
          if (pos + n > end) throw truncated('STRING_EXT', pos, n, end - pos)
          value = latinString(buf, pos, n, end)
          pos += n
          break
        }
        case Tag.BINARY_EXT:
          value = readBinary(buf, at, end, copyThreshold)
          pos = g.pos
          break
        case Tag.NIL_EXT:
          value = []
          break
        case Tag.SMALL_TUPLE_EXT:
        case Tag.LARGE_TUPLE_EXT: {
          let n: number
          if (tag === Tag.SMALL_TUPLE_EXT) {
            if (pos >= end) throw truncated('SMALL_TUPLE_EXT arity', pos, 1, 0)
            n = buf[pos++]
          } else {
            if (pos + 4 > end) throw truncated('LARGE_TUPLE_EXT arity', pos, 4, end - pos)
            n = u32(buf, pos)
            pos += 4
          }
          if (n === 0) {
            value = new Tuple([])
            break
          }
          if (n > end - pos) throw truncated('tuple elements', pos, n, end - pos)
          if (sp >= maxDepth) throw new LimitExceededError(`nesting deeper than maxDepth ${maxDepth}`, at)
          if ((terms += n) > maxTerms) throw tooManyTerms(maxTerms, at)
          const a: Term[] = n <= 65536 ? new Array(n) : []
          const i = simpleRun(buf, pos, end, a, 0, n, maxChars, cache, copyThreshold)
          pos = g.pos
          if (i === n) {
            value = new Tuple(a)
            break
          }
          stKind[sp] = K_TUPLE
          stCont[sp] = a
          stIdx[sp] = i
          stN[sp] = n
          sp++
          continue outer
        }
        case Tag.LIST_EXT: {
          // LIST_EXT: Length:32, Elements, Tail
          if (pos + 4 > end) throw truncated('LIST_EXT length', pos, 4, end - pos)
          const n = u32(buf, pos)
          pos += 4
          if (n === 0) continue outer // no elements: the list is its tail
          if (n >= end - pos) throw truncated('list elements and tail', pos, n + 1, end - pos)
          if (sp >= maxDepth) throw new LimitExceededError(`nesting deeper than maxDepth ${maxDepth}`, at)
          if ((terms += n) > maxTerms) throw tooManyTerms(maxTerms, at)
          const a: Term[] = n <= 65536 ? new Array(n) : []
          const i = simpleRun(buf, pos, end, a, 0, n, maxChars, cache, copyThreshold)
          pos = g.pos
          if (i === n) {
            const l = closeList(buf, pos, end, a, maxChars, cache, copyThreshold)
            if (l !== undefined) {
              pos = g.pos
              value = l
              break
            }
          }
          stKind[sp] = i === n ? K_LIST_TAIL : K_LIST
          stCont[sp] = a
          stIdx[sp] = i
          stN[sp] = n
          sp++
          continue outer
        }
        case Tag.MAP_EXT: {
          // MAP_EXT: Arity:32, then Arity key/value pairs
          if (pos + 4 > end) throw truncated('MAP_EXT arity', pos, 4, end - pos)
          const n = u32(buf, pos)
          pos += 4
          if (n === 0) {
            value = new Map()
            break
          }
          if (n * 2 > end - pos) throw truncated('map pairs', pos, n * 2, end - pos)
          if (sp >= maxDepth) throw new LimitExceededError(`nesting deeper than maxDepth ${maxDepth}`, at)
          if ((terms += 2 * n) > maxTerms) throw tooManyTerms(maxTerms, at)
          stKind[sp] = K_MAP
          stCont[sp] = new Map()
          stIdx[sp] = 0
          stN[sp] = n * 2
          stKeyAt[sp] = pos
          stKeys[sp] = undefined
          sp++
          continue outer
        }
        case Tag.NEW_FLOAT_EXT:
          value = readNewFloat(buf, at, end)
          pos = g.pos
          break
        case Tag.FLOAT_EXT: {
          if (pos + FLOAT_EXT_LENGTH > end) throw truncated('FLOAT_EXT', pos, FLOAT_EXT_LENGTH, end - pos)
          const v = oldFloat(buf, pos, at)
          pos += FLOAT_EXT_LENGTH
          value = Number.isInteger(v) ? new Float(v) : v
          break
        }
        case Tag.SMALL_BIG_EXT:
        case Tag.LARGE_BIG_EXT:
          value = readBig(buf, at, end)
          pos = g.pos
          break
        case Tag.BIT_BINARY_EXT: {
          // BIT_BINARY_EXT: Len:32, Bits:8 (used bits of the last byte, 1..8), Data
          if (pos + 5 > end) throw truncated('BIT_BINARY_EXT header', pos, 5, end - pos)
          const n = u32(buf, pos)
          const bits = buf[pos + 4]
          pos += 5
          if (n > end - pos) throw truncated('BIT_BINARY_EXT', pos, n, end - pos)
          if (n === 0 || bits === 0 || bits > 8)
            throw new DecodeError(`BIT_BINARY_EXT with ${n} bytes and ${bits} bits in the last`, at)
          if (bits === 8) {
            value = n > copyThreshold ? viewOf(buf, pos, n) : copyOf(buf, pos, n)
          } else {
            const mask = (0xff << (8 - bits)) & 0xff
            const last = buf[pos + n - 1]
            let data: Buffer
            if ((last & ~mask) !== 0) {
              // Bits past the end are not part of the value (Erlang ignores them): normalise a copy.
              data = copyOf(buf, pos, n)
              data[n - 1] = last & mask
            } else data = n > copyThreshold ? viewOf(buf, pos, n) : copyOf(buf, pos, n)
            value = new BitBinary(data, bits)
          }
          pos += n
          break
        }
        case Tag.NEW_PID_EXT:
        case Tag.PID_EXT:
          value = readPid(buf, at, end, maxChars, cache)
          pos = g.pos
          break
        case Tag.NEW_PORT_EXT:
        case Tag.PORT_EXT:
        case Tag.V4_PORT_EXT: {
          // Node, then ID:32 Creation:32 (NEW_PORT_EXT), ID:32 Creation:8 (PORT_EXT), ID:64 Creation:32 (V4_PORT_EXT)
          const node = readAtom(buf, pos, end, maxChars, cache)
          pos = g.pos
          const need = tag === Tag.NEW_PORT_EXT ? 8 : tag === Tag.PORT_EXT ? 5 : 12
          if (pos + need > end) throw truncated('port', pos, need, end - pos)
          let id: bigint
          let creation: number
          if (tag === Tag.V4_PORT_EXT) {
            id = buf.readBigUInt64BE(pos)
            creation = u32(buf, pos + 8)
          } else {
            id = BigInt(u32(buf, pos))
            creation = tag === Tag.NEW_PORT_EXT ? u32(buf, pos + 4) : buf[pos + 4]
          }
          pos += need
          value = new Port(node, id, creation)
          break
        }
        case Tag.REFERENCE_EXT: {
          // REFERENCE_EXT: Node, ID:32, Creation:8
          const node = readAtom(buf, pos, end, maxChars, cache)
          pos = g.pos
          if (pos + 5 > end) throw truncated('REFERENCE_EXT', pos, 5, end - pos)
          value = new Ref(node, buf[pos + 4], [u32(buf, pos)])
          pos += 5
          break
        }
        case Tag.NEW_REFERENCE_EXT:
        case Tag.NEWER_REFERENCE_EXT:
          value = readRef(buf, at, end, maxChars, cache)
          pos = g.pos
          break
        case Tag.EXPORT_EXT: {
          // EXPORT_EXT: Module (atom), Function (atom), Arity (SMALL_INTEGER_EXT)
          const module = readAtom(buf, pos, end, maxChars, cache)
          const fn = readAtom(buf, g.pos, end, maxChars, cache)
          const arity = readSmallInt(buf, g.pos, end)
          if (arity < 0 || arity > 255) throw new DecodeError(`EXPORT_EXT arity ${arity}`, at)
          pos = g.pos
          value = new ExportFun(module, fn, arity)
          break
        }
        case Tag.NEW_FUN_EXT: {
          // NEW_FUN_EXT: Size:32, Arity:8, Uniq:16 bytes, Index:32, NumFree:32, Module, OldIndex, OldUniq, Pid, FreeVars
          const start = pos
          if (pos + 29 > end) throw truncated('NEW_FUN_EXT header', pos, 29, end - pos)
          const size = u32(buf, pos)
          if (size > end - start) throw truncated('NEW_FUN_EXT', start, size, end - start)
          const arity = buf[pos + 4]
          const uniq = copyOf(buf, pos + 5, 16)
          const index = u32(buf, pos + 21)
          const numFree = u32(buf, pos + 25)
          const module = readAtom(buf, pos + 29, end, maxChars, cache)
          const oldIndex = readSmallInt(buf, g.pos, end)
          const oldUniq = readSmallInt(buf, g.pos, end)
          const pid = readPid(buf, g.pos, end, maxChars, cache)
          pos = g.pos
          if (numFree === 0) {
            if (pos !== start + size) throw new DecodeError('NEW_FUN_EXT size does not match its contents', at)
            value = new Fun(arity, uniq, index, module, oldIndex, oldUniq, pid, [])
            break
          }
          if (numFree > end - pos) throw truncated('NEW_FUN_EXT free variables', pos, numFree, end - pos)
          if ((terms += numFree) > maxTerms) throw tooManyTerms(maxTerms, at)
          if (sp >= maxDepth) throw new LimitExceededError(`nesting deeper than maxDepth ${maxDepth}`, at)
          const head: FunHead = { start, size, arity, uniq, index, module, oldIndex, oldUniq, pid }
          stKind[sp] = K_FUN
          stCont[sp] = numFree <= 65536 ? new Array(numFree) : []
          stIdx[sp] = 0
          stN[sp] = numFree
          stAux[sp] = head
          sp++
          continue outer
        }
        case Tag.LOCAL_EXT:
          throw new UnsupportedTagError(tag, 'LOCAL_EXT is node-local and refused off-node', at)
        case Tag.FUN_EXT:
          throw new UnsupportedTagError(tag, 'FUN_EXT is obsolete (not decoded since OTP 23)', at)
        case Tag.COMPRESSED:
          throw new DecodeError('COMPRESSED is only allowed right after the version byte', at)
        default:
          throw new DecodeError(`unknown tag ${tag}`, at)
      }

      // A complete value: hand it to the enclosing containers, closing every one it completes.
      for (;;) {
        if (sp === 0) {
          g.pos = pos
          g.ab = undefined
          return value
        }
        const top = sp - 1
        switch (stKind[top]) {
          case K_TUPLE:
          case K_LIST: {
            const a = stCont[top] as Term[]
            const n = stN[top]
            a[stIdx[top]] = value
            const i = simpleRun(buf, pos, end, a, stIdx[top] + 1, n, maxChars, cache, copyThreshold)
            pos = g.pos
            if (i < n) {
              stIdx[top] = i
              continue outer
            }
            if (stKind[top] === K_TUPLE) value = new Tuple(a)
            else {
              const l = closeList(buf, pos, end, a, maxChars, cache, copyThreshold)
              if (l === undefined) {
                stKind[top] = K_LIST_TAIL
                continue outer
              }
              pos = g.pos
              value = l
            }
            break
          }
          case K_LIST_TAIL:
            value = withTail(stCont[top] as Term[], value)
            break
          case K_MAP: {
            const i = stIdx[top]
            if ((i & 1) === 0) {
              // Erlang refuses a map with two =:= keys. Equal numbers, booleans and atoms collide in the JS Map
              // (below); compound keys and strings (a string is =:= a list of its codes) go to a key set that
              // compares them as terms, however each was encoded.
              if (typeof value === 'string' || (typeof value === 'object' && !(value instanceof Atom))) {
                const keys = (stKeys[top] ??= newKeySet())
                if (!newKey(keys, value)) throw new DecodeError('duplicate map key', stKeyAt[top])
              }
              stAux[top] = value
              stIdx[top] = i + 1
              continue outer
            }
            const m = stCont[top] as Map<Term, Term>
            const size = m.size
            m.set(stAux[top] as Term, value)
            if (m.size === size) throw new DecodeError('duplicate map key', pos)
            if (i + 1 < stN[top]) {
              stIdx[top] = i + 1
              stKeyAt[top] = pos
              continue outer
            }
            stKeys[top] = undefined
            value = m
            break
          }
          case K_FUN: {
            const a = stCont[top] as Term[]
            const i = stIdx[top]
            a[i] = value
            if (i + 1 < stN[top]) {
              stIdx[top] = i + 1
              continue outer
            }
            const h = stAux[top] as FunHead
            if (pos !== h.start + h.size)
              throw new DecodeError('NEW_FUN_EXT size does not match its contents', h.start - 1)
            value = new Fun(h.arity, h.uniq, h.index, h.module, h.oldIndex, h.oldUniq, h.pid, a)
            break
          }
        }
        stCont[top] = undefined
        stAux[top] = undefined
        sp = top
      }
    }
  } catch (e) {
    g.ab = undefined
    for (let i = 0; i < sp; i++) {
      stCont[i] = undefined
      stAux[i] = undefined
      stKeys[i] = undefined
    }
    if (e instanceof DecodeError) throw e
    // Anything else (an engine limit such as a Map or BigInt too large) is still bad input.
    throw new DecodeError(`undecodable term (${(e as Error)?.message ?? String(e)})`, pos, { cause: e })
  }
}

function checkStart(buf: Buffer, offset: number): void {
  if (!(buf instanceof Buffer)) throw new DecodeError('input is not a Buffer', 0)
  if (!(offset >= 0 && offset <= buf.length && Number.isInteger(offset)))
    throw new DecodeError(`start offset ${offset} outside a ${buf.length}-byte buffer`, 0)
}

/** One term WITHOUT the version byte, starting at offset; `end` is the offset after it. */
export function decodeTerm(buf: Buffer, offset: number, opts?: DecodeOptions): { term: Term; end: number } {
  checkStart(buf, offset)
  const term = decodeAt(buf, offset, buf.length, opts)
  return { term, end: g.pos }
}

/** 131 then a term (or COMPRESSED) at offset; leaves the end offset in g.pos. */
function versionedAt(buf: Buffer, offset: number, opts: DecodeOptions | undefined): Term {
  checkStart(buf, offset)
  const len = buf.length
  if (offset >= len) throw new TruncatedTermError('version byte: need 1 bytes, 0 left', offset)
  if (buf[offset] !== Tag.VERSION_MAGIC)
    throw new DecodeError(`expected version byte ${Tag.VERSION_MAGIC}, found ${buf[offset]}`, offset)
  if (offset + 1 < len && buf[offset + 1] === Tag.COMPRESSED) return decompressed(buf, offset + 1, opts)
  return decodeAt(buf, offset + 1, len, opts)
}

/** 131, then a term (or COMPRESSED), starting at offset; `end` is the offset after it. */
export function decodeVersioned(buf: Buffer, offset: number, opts?: DecodeOptions): { term: Term; end: number } {
  const term = versionedAt(buf, offset, opts)
  return { term, end: g.pos }
}

/** COMPRESSED: UncompressedSize:32, zlib stream. The stream is inflated into at most the declared size. */
function decompressed(buf: Buffer, at: number, opts: DecodeOptions | undefined): Term {
  const limit = opts?.maxUncompressedSize ?? DEFAULT_MAX_UNCOMPRESSED_SIZE
  if (at + 5 > buf.length) throw truncated('COMPRESSED size', at + 1, 4, buf.length - at - 1)
  const size = u32(buf, at + 1)
  if (size > limit)
    throw new LimitExceededError(`COMPRESSED declares ${size} bytes, over maxUncompressedSize ${limit}`, at)
  if (size === 0) throw new DecodeError('COMPRESSED declares 0 bytes', at)
  const zstart = at + 5
  let inflated: Buffer
  let consumed: number
  try {
    const r = inflateSync(buf.subarray(zstart), { maxOutputLength: size, info: true }) as unknown as {
      buffer: Buffer
      engine: { bytesWritten: number }
    }
    inflated = r.buffer
    consumed = r.engine.bytesWritten
  } catch (e) {
    const code = (e as { code?: string }).code
    if (code === 'ERR_BUFFER_TOO_LARGE')
      throw new LimitExceededError(`COMPRESSED inflates past its declared ${size} bytes`, zstart, { cause: e })
    if (code === 'Z_BUF_ERROR') throw new TruncatedTermError('COMPRESSED zlib stream is cut short', zstart, { cause: e })
    throw new DecodeError(`COMPRESSED zlib stream is corrupt (${(e as Error)?.message})`, zstart, { cause: e })
  }
  if (inflated.length !== size)
    throw new DecodeError(`COMPRESSED inflates to ${inflated.length} bytes, declared ${size}`, zstart)
  let term: Term
  try {
    term = decodeAt(inflated, 0, size, opts)
  } catch (e) {
    throw relocate(e as DecodeError, zstart)
  }
  if (g.pos !== size) throw new DecodeError(`${size - g.pos} bytes left over inside COMPRESSED data`, zstart)
  g.pos = zstart + consumed
  return term
}

/** Offsets inside inflated data are not offsets of the input: re-point the error (same class) at the stream. */
function relocate(e: DecodeError, at: number): DecodeError {
  const reason = `in COMPRESSED data at offset ${e.offset}: ${e.reason}`
  if (e instanceof UnsupportedTagError) return new UnsupportedTagError(e.tag, reason, at)
  const Class = e.constructor as typeof DecodeError
  return new Class(reason, at, { cause: e })
}

/** Erlang's binary_to_term/1: 131 first, then one term that uses the whole buffer. */
export function binaryToTerm(buf: Buffer, opts?: DecodeOptions): Term {
  if (!(buf instanceof Buffer)) throw new DecodeError('input is not a Buffer', 0)
  const len = buf.length
  // The common case (131, then an uncompressed term) straight to the decoder; versionedAt has the rest.
  const term =
    len > 1 && buf[0] === Tag.VERSION_MAGIC && buf[1] !== Tag.COMPRESSED ? decodeAt(buf, 1, len, opts) : versionedAt(buf, 0, opts)
  const end = g.pos
  if (end !== buf.length) throw new DecodeError(`${buf.length - end} bytes after the term`, end)
  return term
}
