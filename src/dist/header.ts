// Message framing after the handshake: OTP erts "External Term Format", section "Distribution Header"
// (normal header 131,68 with the atom cache; fragments 131,69 / 131,70) and "Distribution Protocol",
// "Protocol between Connected Nodes" (pass-through 'p' frames when neither header feature was agreed).
//
//   131, 68, NumberOfAtomCacheRefs, Flags (N/2+1 bytes, none when N = 0), AtomCacheRefs, Control, [Payload]
//   131, 69, SequenceId:64, FragmentId:64, NumberOfAtomCacheRefs, Flags, AtomCacheRefs, Control, [Payload...]
//   131, 70, SequenceId:64, FragmentId:64, [...Payload]
//   Flag nibble per ref: NewCacheEntryFlag (bit 3) | SegmentIndex (bits 0-2); nibble N: LongAtoms (bit 0).

// The imported Buffer, not the global: globalThis.Buffer is an accessor that runs on every use.
import { Buffer } from 'node:buffer'
import { decodeTerm, decodeVersioned, encodeTerm, Writer, type DecodeOptions, type EncodeOptions } from '../etf/index.js'
import { decodeViews } from '../etf/decode.js'
import { atomNameRefusal } from '../etf/encode.js'
import { atom, type Atom, type Term } from '../etf/terms.js'
import { MalformedFrameError } from './errors.js'
import { DFLAG_DIST_HDR_ATOM_CACHE, DFLAG_FRAGMENTS, hasFlag } from './flags.js'

export const VERSION_MAGIC = 131
export const DIST_HEADER = 68
export const DIST_FRAG_HEADER = 69
export const DIST_FRAG_CONT = 70
/** The pass-through frame type used when no distribution header was agreed. */
export const PASS_THROUGH = 112

/** 8 segments of 256 entries. */
export const ATOM_CACHE_SIZE = 2048
/** At most 255 atom cache references per message (the count is one byte). */
export const MAX_ATOM_CACHE_REFS = 255
/** OTP cuts fragments at 64 KiB. */
export const DEFAULT_FRAGMENT_SIZE = 64 * 1024
const MAX_ATOM_CHARS = 255
/** Bytes kept free in front of an encoded message for its frame head (length, 131,68, cache references). */
const HEAD_ROOM = 64

/** One decoded message: the control term and the payload term after it, if any. */
export interface DistMessage {
  control: Term
  payload: Term | undefined
}

// --- incoming --------------------------------------------------------------------------------

/** The receive side of the atom cache of one connection: written only by the peer's headers. */
export class AtomCacheIn {
  readonly entries: Array<Atom | undefined> = new Array(ATOM_CACHE_SIZE).fill(undefined)
}

function nibble(flags: Buffer, start: number, i: number): number {
  const b = flags[start + (i >> 1)]
  return i & 1 ? b >> 4 : b & 0x0f
}

/**
 * Reads NumberOfAtomCacheRefs, Flags and AtomCacheRefs at `pos`, applying new entries to the cache.
 * Returns the atoms this message's ATOM_CACHE_REF indexes name, and the offset after the header.
 */
export function readAtomCacheRefs(frame: Buffer, pos: number, cache: AtomCacheIn): { atoms: Atom[]; end: number } {
  const need = (n: number, what: string) => {
    if (pos + n > frame.length) throw new MalformedFrameError(`distribution header truncated in ${what} at offset ${pos}`)
  }
  need(1, 'NumberOfAtomCacheRefs')
  const n = frame[pos++]
  if (n === 0) return { atoms: [], end: pos }
  const flagBytes = (n >> 1) + 1
  need(flagBytes, 'Flags')
  const flagsAt = pos
  pos += flagBytes
  const longAtoms = (nibble(frame, flagsAt, n) & 1) === 1
  const atoms: Atom[] = new Array(n)
  for (let i = 0; i < n; i++) {
    const f = nibble(frame, flagsAt, i)
    need(1, 'InternalSegmentIndex')
    const ix = (f & 7) * 256 + frame[pos++]
    if (f & 8) {
      need(longAtoms ? 2 : 1, 'atom length')
      const len = longAtoms ? frame.readUInt16BE(pos) : frame[pos]
      pos += longAtoms ? 2 : 1
      need(len, 'AtomText')
      // DFLAG_UTF8_ATOMS is mandatory, so AtomText is UTF-8.
      const text = frame.toString('utf8', pos, pos + len)
      pos += len
      // Characters never outnumber bytes: only a text over 255 bytes needs counting.
      if (len > MAX_ATOM_CHARS && [...text].length > MAX_ATOM_CHARS) throw new MalformedFrameError(`atom cache entry longer than ${MAX_ATOM_CHARS} characters`)
      const a = atom(text)
      cache.entries[ix] = a
      atoms[i] = a
    } else {
      const a = cache.entries[ix]
      if (a === undefined) throw new MalformedFrameError(`atom cache reference to empty entry ${ix}`)
      atoms[i] = a
    }
  }
  return { atoms, end: pos }
}

export interface DistReaderOptions {
  /** Largest reassembled fragmented message, in bytes (bounded memory). Default 64 MiB (a Connection passes its maxFrameSize). */
  maxMessageSize?: number
  /** Most fragmented sequences in progress at once. Default 1024. */
  maxSequences?: number
  /** Passed to the term decoder (depth, atom length, binary copy threshold...). */
  decode?: Omit<DecodeOptions, 'atomCache'>
}

interface FragmentHeader {
  seq: bigint
  frag: bigint
  atoms: Atom[]
  /** Offset of the body after the header. */
  end: number
}

function parseFragmentHeader(frame: Buffer, cache: AtomCacheIn): FragmentHeader {
  if (frame.length < 18) throw new MalformedFrameError('fragment header truncated')
  const seq = frame.readBigUInt64BE(2)
  const frag = frame.readBigUInt64BE(10)
  // The header is applied now, in arrival order, as erts does: later headers may use its entries.
  const { atoms, end } = readAtomCacheRefs(frame, 18, cache)
  return { seq, frag, atoms, end }
}

/** The views after the first `skip` bytes of `parts`. */
function viewsFrom(parts: Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = []
  for (const p of parts) {
    if (skip >= p.length) {
      skip -= p.length
      continue
    }
    out.push(skip === 0 ? p : p.subarray(skip))
    skip = 0
  }
  return out
}

interface Sequence {
  atoms: Atom[]
  parts: Buffer[]
  size: number
  /** FragmentId expected next. */
  next: bigint
}

/**
 * The receive side of one connection: turns frames (tick-free, length prefix removed) into messages.
 * Keeps the atom cache and the fragment sequences in progress, which may interleave.
 */
export class DistReader {
  readonly cache = new AtomCacheIn()
  private readonly sequences = new Map<bigint, Sequence>()
  private readonly maxMessageSize: number
  private readonly maxSequences: number
  /** Bytes held by the sequences in progress. */
  private pending = 0
  private readonly decodeOpts: Omit<DecodeOptions, 'atomCache'>
  private readonly bodyOpts: DecodeOptions
  private readonly passOpts: DecodeOptions
  /** Fragment frames (131,69 and 131,70) read so far. */
  fragmentsRead = 0
  /** decodeViews.count when the last read began. */
  private viewsBefore = 0
  /** Atom cache references resolved so far (new entries and cached ones). */
  cacheRefsRead = 0

  constructor(opts: DistReaderOptions = {}) {
    this.maxMessageSize = opts.maxMessageSize ?? 64 * 1024 * 1024
    this.maxSequences = opts.maxSequences ?? 1024
    this.decodeOpts = opts.decode ?? {}
    this.bodyOpts = { ...this.decodeOpts, atomCache: [] }
    this.passOpts = { ...this.decodeOpts }
  }

  /** Fragmented messages whose last fragment has not arrived yet. */
  get pendingSequences(): number {
    return this.sequences.size
  }

  /** Bytes held by the fragmented messages in progress. */
  get pendingBytes(): number {
    return this.pending
  }

  /**
   * Whether what the last read made, or holds, may still refer to the bytes of the frames read: a binary
   * decoded as a view of them, or a fragment kept for reassembly. A reader of frames reuses their memory
   * only when not (dist/frame-reader.ts).
   */
  get holdsInput(): boolean {
    return decodeViews.count !== this.viewsBefore || this.pending > 0
  }

  /** The message a frame completes, or undefined for a fragment that is not the last. */
  read(frame: Buffer): DistMessage | undefined {
    this.viewsBefore = decodeViews.count
    if (frame.length === 0) throw new MalformedFrameError('empty frame')
    if (frame[0] === PASS_THROUGH) return this.passThrough(frame)
    if (frame[0] !== VERSION_MAGIC || frame.length < 2)
      throw new MalformedFrameError(`frame starts with ${frame[0]}, not 131 or 112`)
    switch (frame[1]) {
      case DIST_HEADER: {
        const { atoms, end } = readAtomCacheRefs(frame, 2, this.cache)
        this.cacheRefsRead += atoms.length
        return this.decodeBody(frame.subarray(end), atoms)
      }
      case DIST_FRAG_HEADER: {
        const h = this.fragmentHeader(frame)
        const body = frame.subarray(h.end)
        if (h.frag === 1n) return this.decodeBody(body, h.atoms)
        return this.start(h.seq, h.frag, h.atoms, [body], body.length)
      }
      case DIST_FRAG_CONT: {
        if (frame.length < 18) throw new MalformedFrameError('fragment continuation truncated')
        const data = frame.subarray(18)
        return this.continue(frame.readBigUInt64BE(2), frame.readBigUInt64BE(10), [data], data.length)
      }
      default:
        throw new MalformedFrameError(`unknown distribution header type ${frame[1]}`)
    }
  }

  /**
   * read() for a frame given as the views of the chunks it arrived in (Framer.nextViews). Fragments keep
   * their views until the last one arrives, so every byte of a message is copied once, into the buffer it is
   * decoded from; a frame that is a whole message is copied once when it spans chunks, never when it does not.
   */
  readViews(parts: Buffer[], length: number): DistMessage | undefined {
    if (parts.length === 1) return this.read(parts[0])
    this.viewsBefore = decodeViews.count
    const first = parts[0]
    if (length >= 18 && first.length >= 2 && first[0] === VERSION_MAGIC) {
      if (first[1] === DIST_FRAG_CONT && first.length >= 18) {
        const data = viewsFrom(parts, 18)
        return this.continue(first.readBigUInt64BE(2), first.readBigUInt64BE(10), data, length - 18)
      }
      if (first[1] === DIST_FRAG_HEADER) {
        // The header (ids and atom cache references) is parsed from a prefix, copied only when the first
        // view is shorter than the header; the body stays in views.
        let prefixLen = first.length
        let h: FragmentHeader
        for (;;) {
          const prefix = prefixLen === first.length ? first : Buffer.concat(parts, prefixLen)
          try {
            // Re-parsing a longer prefix applies the same cache entries again: harmless.
            h = parseFragmentHeader(prefix, this.cache)
            break
          } catch (e) {
            if (prefixLen >= length || !(e instanceof MalformedFrameError)) throw e
            prefixLen = Math.min(length, Math.max(prefixLen * 4, 4096))
          }
        }
        this.checkFragmentHeader(h)
        if (h.frag === 1n) return this.decodeBody(Buffer.concat(viewsFrom(parts, h.end), length - h.end), h.atoms)
        return this.start(h.seq, h.frag, h.atoms, viewsFrom(parts, h.end), length - h.end)
      }
    }
    return this.read(Buffer.concat(parts, length))
  }

  /** SequenceId, FragmentId and the atom cache references of a 131,69 frame, applied to the cache. */
  private fragmentHeader(frame: Buffer): FragmentHeader {
    return this.checkFragmentHeader(parseFragmentHeader(frame, this.cache))
  }

  private checkFragmentHeader(h: FragmentHeader): FragmentHeader {
    this.cacheRefsRead += h.atoms.length
    this.fragmentsRead++
    if (h.frag === 0n) throw new MalformedFrameError('fragment id 0')
    if (this.sequences.has(h.seq)) throw new MalformedFrameError(`fragment sequence ${h.seq} started twice`)
    return h
  }

  /** The first fragment of a message in several: held until the rest arrives. */
  private start(seq: bigint, frag: bigint, atoms: Atom[], parts: Buffer[], size: number): undefined {
    if (this.sequences.size >= this.maxSequences)
      throw new MalformedFrameError(`more than ${this.maxSequences} fragmented messages in progress`)
    this.checkSize(size)
    this.hold(size)
    this.sequences.set(seq, { atoms, parts, size, next: frag - 1n })
    return undefined
  }

  /** A 131,70 frame's data: held, or, with the last fragment, the message reassembled (one copy) and decoded. */
  private continue(seq: bigint, frag: bigint, data: Buffer[], size: number): DistMessage | undefined {
    this.fragmentsRead++
    const s = this.sequences.get(seq)
    if (!s) throw new MalformedFrameError(`continuation of unknown fragment sequence ${seq}`)
    if (frag !== s.next) throw new MalformedFrameError(`fragment ${frag} of sequence ${seq}, expected ${s.next}`)
    s.size += size
    this.checkSize(s.size)
    this.hold(size)
    for (const d of data) s.parts.push(d)
    if (frag > 1n) {
      s.next = frag - 1n
      return undefined
    }
    this.sequences.delete(seq)
    this.pending -= s.size
    return this.decodeBody(Buffer.concat(s.parts, s.size), s.atoms)
  }

  /** All the sequences in progress together are bounded by maxMessageSize too, so a peer cannot multiply the
   *  per-message bound by the number of sequences it leaves open. */
  private hold(n: number): void {
    this.pending += n
    if (this.pending > this.maxMessageSize)
      throw new MalformedFrameError(`fragmented messages in progress hold more than ${this.maxMessageSize} bytes`)
  }

  private checkSize(n: number): void {
    if (n > this.maxMessageSize)
      throw new MalformedFrameError(`fragmented message exceeds the maximum of ${this.maxMessageSize} bytes`)
  }

  private decodeBody(body: Buffer, atoms: Atom[]): DistMessage {
    // One options object per reader, its atomCache and viewMin set per message (the decoder keeps neither).
    const opts = this.bodyOpts
    opts.atomCache = atoms
    opts.viewMin = viewMinFor(body)
    return controlAndPayload(decodeTerm, body, 0, opts)
  }

  private passThrough(frame: Buffer): DistMessage {
    const opts = this.passOpts
    opts.viewMin = viewMinFor(frame)
    return controlAndPayload(decodeVersioned, frame, 1, opts)
  }
}

/**
 * The shortest binary of a message in buf that is decoded as a view of buf's memory: one that would keep alive
 * more than 8 times its size of memory that is not this message's (a read slab holding other frames too) gets
 * a copy of its own instead. As on the BEAM, where a binary of a received message refers to that message's
 * buffer only, a binary kept for long never holds other messages' bytes in memory by more than that.
 */
function viewMinFor(buf: Buffer): number {
  const other = buf.buffer.byteLength - buf.length
  return other > 0 ? Math.ceil(other / 8) : 0
}

type TermReader = (buf: Buffer, offset: number, opts?: DecodeOptions) => { term: Term; end: number }

/** The control message at `start` and the payload after it, if any, filling `buf` exactly. */
function controlAndPayload(read: TermReader, buf: Buffer, start: number, opts: DecodeOptions): DistMessage {
  let c: { term: Term; end: number }
  try {
    c = read(buf, start, opts)
  } catch (e) {
    throw undecodable('control message', e)
  }
  if (c.end === buf.length) return { control: c.term, payload: undefined }
  let p: { term: Term; end: number }
  try {
    p = read(buf, c.end, opts)
  } catch (e) {
    throw undecodable('payload', e)
  }
  if (p.end !== buf.length) throw new MalformedFrameError(`${buf.length - p.end} bytes after the payload`)
  return { control: c.term, payload: p.term }
}

function undecodable(what: string, e: unknown): MalformedFrameError {
  return new MalformedFrameError(`cannot decode ${what}: ${(e as Error).message}`, { cause: e })
}

// --- outgoing --------------------------------------------------------------------------------

/** FNV-1a over the UTF-16 units of the name: any stable spread over the 2048 slots will do. */
function hashSlot(name: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0) & (ATOM_CACHE_SIZE - 1)
}

// Atoms are interned, so an atom's slot is computed once per atom, not once per use.
const slotCache = new WeakMap<Atom, number>()
function slotOf(a: Atom): number {
  let s = slotCache.get(a)
  if (s === undefined) {
    s = hashSlot(a.name)
    slotCache.set(a, s)
  }
  return s
}

/**
 * The send side of the atom cache of one connection: our picture of the peer's receive cache. Each
 * message collects its references in a MessageRefs; the cache changes only when the message is committed
 * (after it encoded without error), so a failed encode cannot leave the two caches out of step.
 */
export class AtomCacheOut {
  readonly slots: Array<Atom | undefined> = new Array(ATOM_CACHE_SIZE).fill(undefined)
  /** One MessageRefs, reset for each message: a message's references cost no allocation. */
  private readonly refs = new MessageRefs(this)
  /** Starts the references of the next message; the previous MessageRefs is reused and must be done with. */
  begin(): MessageRefs {
    this.refs.reset()
    return this.refs
  }
}

export class MessageRefs {
  readonly atoms: Atom[] = []
  readonly slots: number[] = []
  readonly isNew: boolean[] = []
  /** Per slot: the message (stamp) that took it and the reference index it got, so lookups need no Map. */
  private readonly takenBy = new Uint32Array(ATOM_CACHE_SIZE)
  private readonly indexOf = new Uint8Array(ATOM_CACHE_SIZE)
  private stamp = 0
  /** encodedSize() -> encodeInto(): the UTF-8 texts of the new entries, and whether any is over 255 bytes. */
  private readonly texts: Buffer[] = []
  private longAtoms = false

  constructor(private readonly cache: AtomCacheOut) {
    this.reset()
  }

  /** @internal Forgets the references of the previous message. */
  reset(): void {
    this.atoms.length = 0
    this.slots.length = 0
    this.isNew.length = 0
    if (++this.stamp === 0x1_0000_0000) {
      this.takenBy.fill(0)
      this.stamp = 1
    }
  }

  /** The AtomCacheReferenceIndex for `a` in this message, or undefined to write the atom inline. */
  readonly ref = (a: Atom): number | undefined => {
    const slot = slotOf(a)
    if (this.takenBy[slot] === this.stamp) {
      // Two atoms of one message in one slot would overwrite each other: the second goes inline.
      const i = this.indexOf[slot]
      return this.atoms[i] === a ? i : undefined
    }
    const n = this.atoms.length
    if (n >= MAX_ATOM_CACHE_REFS) return undefined
    const isNew = this.cache.slots[slot] !== a
    // An atom that cannot be written (over 255 characters, a lone surrogate) goes inline, where the encoder
    // refuses it with EncodeError: in the header it would reach the peer, which closes the connection over it.
    if (isNew && atomNameRefusal(a.name) !== undefined) return undefined
    this.takenBy[slot] = this.stamp
    this.indexOf[slot] = n
    this.atoms.push(a)
    this.slots.push(slot)
    this.isNew.push(isNew)
    return n
  }

  /** Header bytes after 131,68 (or after the fragment ids): NumberOfAtomCacheRefs, Flags, AtomCacheRefs. */
  encode(): Buffer {
    const b = Buffer.allocUnsafe(this.encodedSize())
    this.encodeInto(b, 0)
    return b
  }

  /** The length of encode()'s bytes; the texts of new entries are prepared for encodeInto(). */
  encodedSize(): number {
    const n = this.atoms.length
    if (n === 0) return 1
    let size = 1 + (n >> 1) + 1 + n
    let newCount = 0
    this.longAtoms = false
    this.texts.length = 0
    for (let i = 0; i < n; i++) {
      if (!this.isNew[i]) continue
      const t = Buffer.from(this.atoms[i].name, 'utf8')
      this.texts[i] = t
      if (t.length > 255) this.longAtoms = true
      size += t.length
      newCount++
    }
    return size + newCount * (this.longAtoms ? 2 : 1)
  }

  /** Writes encode()'s bytes at `at` in `b`; encodedSize() must have been called for this message. */
  encodeInto(b: Buffer, at: number): void {
    const n = this.atoms.length
    b[at] = n
    if (n === 0) return
    const flagBytes = (n >> 1) + 1
    for (let i = 1; i <= flagBytes; i++) b[at + i] = 0
    for (let i = 0; i < n; i++) b[at + 1 + (i >> 1)] |= ((this.isNew[i] ? 8 : 0) | (this.slots[i] >> 8)) << ((i & 1) << 2)
    b[at + 1 + (n >> 1)] |= (this.longAtoms ? 1 : 0) << ((n & 1) << 2)
    let pos = at + 1 + flagBytes
    for (let i = 0; i < n; i++) {
      b[pos++] = this.slots[i] & 0xff
      if (!this.isNew[i]) continue
      const t = this.texts[i]
      if (this.longAtoms) {
        b.writeUInt16BE(t.length, pos)
        pos += 2
      } else b[pos++] = t.length
      t.copy(b, pos)
      pos += t.length
    }
  }

  commit(): void {
    for (let i = 0; i < this.atoms.length; i++) if (this.isNew[i]) this.cache.slots[this.slots[i]] = this.atoms[i]
  }
}

export interface DistWriterOptions {
  /** The flags both sides agreed on. */
  flags: bigint
  /** Payload bytes per fragment (the first fragment also holds the whole control message). Default 64 KiB. */
  fragmentSize?: number
  /** Use the atom cache on outgoing messages when DFLAG_DIST_HDR_ATOM_CACHE was agreed. Default true. */
  atomCache?: boolean
  /** Binaries longer than this go to the socket by reference. Default 64. */
  largeBinaryThreshold?: number
}

/**
 * The send side of one connection: turns a control term and payload into the frames to write, each
 * starting with its 4-byte length. Large binaries stay separate Buffers (by reference); fragments are
 * views (subarray) of the encoded chunks, never copies.
 */
export class DistWriter {
  readonly cache = new AtomCacheOut()
  private readonly header: boolean
  private readonly fragments: boolean
  private readonly useCache: boolean
  private readonly fragmentSize: number
  private readonly threshold: number
  private readonly encodeOpts: EncodeOptions
  private nextSequence = 1n
  /** Fragment frames written so far. */
  fragmentsWritten = 0

  constructor(opts: DistWriterOptions) {
    this.useCache = hasFlag(opts.flags, DFLAG_DIST_HDR_ATOM_CACHE) && opts.atomCache !== false
    this.fragments = hasFlag(opts.flags, DFLAG_FRAGMENTS)
    this.header = hasFlag(opts.flags, DFLAG_DIST_HDR_ATOM_CACHE) || this.fragments
    this.fragmentSize = Math.max(1, opts.fragmentSize ?? DEFAULT_FRAGMENT_SIZE)
    this.threshold = opts.largeBinaryThreshold ?? 64
    // The connection's one MessageRefs (reset per message) keeps its `ref` for good: built once.
    this.encodeOpts = this.useCache
      ? { largeBinaryThreshold: this.threshold, atomCacheRef: this.cache.begin().ref }
      : { largeBinaryThreshold: this.threshold }
  }

  /** The frames for one message, in order; write them all, in one cork()/uncork(). */
  encode(control: Term, payload?: Term): Buffer[] {
    if (!this.header) return this.passThrough(control, payload)
    const refs = this.useCache ? this.cache.begin() : undefined
    const w = new Writer(256, this.threshold)
    // Room for the frame head in front of the body: written once the atom cache references are known, so
    // a message without large binaries is one Buffer (one chunk for the socket, not two).
    w.ensure(HEAD_ROOM)
    w.pos += HEAD_ROOM
    encodeTerm(w, control, this.encodeOpts)
    const ctlLen = w.length - HEAD_ROOM
    if (payload !== undefined) encodeTerm(w, payload, this.encodeOpts)
    const bodyLen = w.length - HEAD_ROOM
    const body = w.finish()
    const refsLen = refs ? refs.encodedSize() : 1

    if (!this.fragments || bodyLen <= this.fragmentSize) {
      const headLen = 4 + 2 + refsLen
      // The head room is at the start of the first chunk (nothing is written before it).
      const first = body[0]
      let head: Buffer
      if (headLen <= HEAD_ROOM) {
        head = first.subarray(HEAD_ROOM - headLen)
        body[0] = head
      } else {
        head = Buffer.allocUnsafe(headLen)
        if (first.length === HEAD_ROOM) body.shift()
        else body[0] = first.subarray(HEAD_ROOM)
        body.unshift(head)
      }
      head.writeUInt32BE(2 + refsLen + bodyLen, 0)
      head[4] = VERSION_MAGIC
      head[5] = DIST_HEADER
      if (refs) refs.encodeInto(head, 6)
      else head[6] = 0
      refs?.commit()
      return body
    }
    const cacheRefs = refs ? refs.encode() : Buffer.of(0)
    refs?.commit()
    if (body[0].length === HEAD_ROOM) body.shift()
    else body[0] = body[0].subarray(HEAD_ROOM)
    return this.fragment(body, bodyLen, ctlLen, cacheRefs)
  }

  private fragment(body: Buffer[], bodyLen: number, ctlLen: number, cacheRefs: Buffer): Buffer[] {
    const first = Math.max(this.fragmentSize, ctlLen)
    const count = 1 + Math.ceil((bodyLen - first) / this.fragmentSize)
    const seq = this.nextSequence++
    this.fragmentsWritten += count
    const out: Buffer[] = []
    const cursor = new ChunkCursor(body)
    for (let k = 0; k < count; k++) {
      const fragId = BigInt(count - k)
      const n = k === 0 ? first : Math.min(this.fragmentSize, bodyLen - first - (k - 1) * this.fragmentSize)
      const hdrLen = k === 0 ? 18 + cacheRefs.length : 18
      const head = Buffer.allocUnsafe(4 + hdrLen)
      head.writeUInt32BE(hdrLen + n, 0)
      head[4] = VERSION_MAGIC
      head[5] = k === 0 ? DIST_FRAG_HEADER : DIST_FRAG_CONT
      head.writeBigUInt64BE(seq, 6)
      head.writeBigUInt64BE(fragId, 14)
      if (k === 0) cacheRefs.copy(head, 22)
      out.push(head)
      cursor.take(n, out)
    }
    return out
  }

  private passThrough(control: Term, payload?: Term): Buffer[] {
    const w = new Writer(256, this.threshold)
    const lenAt = w.reserve(4)
    w.u8(PASS_THROUGH)
    w.u8(VERSION_MAGIC)
    // Without a header there is no atom cache: encodeOpts holds only the threshold.
    encodeTerm(w, control, this.encodeOpts)
    if (payload !== undefined) {
      w.u8(VERSION_MAGIC)
      encodeTerm(w, payload, this.encodeOpts)
    }
    w.patchU32(lenAt, w.length - 4)
    return w.finish()
  }
}

/** Walks a chunk list handing out the next n bytes as views. */
class ChunkCursor {
  private i = 0
  private off = 0
  constructor(private readonly chunks: Buffer[]) {}
  take(n: number, out: Buffer[]): void {
    while (n > 0) {
      const c = this.chunks[this.i]
      if (c.length === 0) {
        this.i++
        continue
      }
      const m = Math.min(c.length - this.off, n)
      out.push(this.off === 0 && m === c.length ? c : c.subarray(this.off, this.off + m))
      this.off += m
      n -= m
      if (this.off === c.length) {
        this.i++
        this.off = 0
      }
    }
  }
}
