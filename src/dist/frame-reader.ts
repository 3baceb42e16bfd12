// Length-prefixed frames (4-byte lengths; zero is a tick) read straight into memory this side owns, through
// net.Socket's `onread` (the socket asks nextBuffer() where the next read goes and reports it to onRead()).
// Compared with 'data' events, where Node allocates a fresh 64 KiB buffer for every read:
//   - a frame that fits is read into one reused slab: while nothing decoded from the slab holds on to it
//     (no binary view, no fragment kept), the next reads go to its start again, so small messages reuse warm
//     memory and allocate nothing;
//   - a frame larger than the slab gets a buffer of exactly its size once its length has arrived, and every
//     later read of it lands in place: the body is copied once, by the kernel, and never joined from pieces.

// The imported Buffer, not the global: globalThis.Buffer is an accessor that runs on every use.
import { Buffer } from 'node:buffer'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import { FrameTooLargeError } from './errors.js'
import { TICK } from './framer.js'

export const DEFAULT_SLAB_SIZE = 64 * 1024
/** A read is never offered less room than this (or a quarter of a smaller slab): compact or start a new slab first. */
const MIN_READ = 4 * 1024
const NO_SLAB = Buffer.alloc(0)

export interface FrameReaderOptions {
  maxFrameSize: number
  /** Size of the reused read buffer; larger frames get their own buffer. Default 64 KiB. */
  slabSize?: number
  /**
   * One complete frame (TICK for a tick), a view of the reader's memory valid only during the call unless
   * the function returns true: "something made from this frame still refers to its bytes", and the memory
   * is then never written again. Returning false from a frame that is still referenced corrupts it.
   */
  onFrame: (frame: Buffer) => boolean
}

export class FrameReader {
  private slab: Buffer
  /** First byte of slab not yet returned as a frame. */
  private start = 0
  /** End of the bytes read into slab. */
  private end = 0
  /** A frame returned from slab is still referenced: slab is only ever appended to. */
  private pinned = false
  /** The body of a frame too large for the slab, being read in place. */
  private big: Buffer | undefined
  private bigFilled = 0
  /**
   * Lent before release(): the socket keeps the buffer it was last given until its next read, so while bytes
   * may still be pushed in by hand (the handshake's tail) it is given this, and what lands in it is pushed.
   */
  private scratch: Buffer | undefined
  private held = true
  /** The last nextBuffer() lent the socket the scratch buffer (not the slab or big): onRead pushes its bytes. */
  private lentScratch = true
  private readonly slabSize: number
  private readonly minRead: number
  private readonly maxFrameSize: number
  private readonly onFrame: (frame: Buffer) => boolean

  constructor(opts: FrameReaderOptions) {
    this.slabSize = opts.slabSize ?? DEFAULT_SLAB_SIZE
    this.minRead = Math.min(MIN_READ, this.slabSize >> 2)
    this.maxFrameSize = opts.maxFrameSize
    this.onFrame = opts.onFrame
    // Allocated at the first read: a reader made for a socket that is then not adopted costs nothing.
    this.slab = NO_SLAB
  }

  /** Bytes received and not yet returned as frames. */
  get buffered(): number {
    return this.end - this.start + this.bigFilled
  }

  /** The memory the next read fills (never empty): onread's `buffer`. */
  nextBuffer = (): Buffer => {
    if (this.held) {
      this.lentScratch = true
      return (this.scratch ??= Buffer.allocUnsafeSlow(this.minRead))
    }
    this.lentScratch = false
    return this.target()
  }

  /** Where received bytes go next: the rest of a large frame's own buffer, else the slab's free room. */
  private target(): Buffer {
    return this.big !== undefined ? this.big.subarray(this.bigFilled) : this.room()
  }

  /**
   * n bytes were read into the memory nextBuffer() returned (onread's `callback`): the complete frames go
   * to onFrame. Throws FrameTooLargeError; the connection then closes.
   */
  onRead = (n: number): void => {
    if (!this.lentScratch) return this.received(n)
    const scratch = this.scratch as Buffer
    if (!this.held) this.scratch = undefined // lent for the last time
    this.push(scratch.subarray(0, n))
  }

  /** From now on reads go straight into this reader's memory: call once nothing more is pushed by hand. */
  release(): void {
    this.held = false
  }

  /** Bytes that did not come through nextBuffer() (the handshake's tail), copied in. */
  push(chunk: Buffer): void {
    let off = 0
    while (off < chunk.length) {
      const into = this.target()
      const m = Math.min(into.length, chunk.length - off)
      chunk.copy(into, 0, off, off + m)
      off += m
      this.received(m)
    }
  }

  /** n more bytes at the slab's end, or at big's. */
  private received(n: number): void {
    const big = this.big
    if (big === undefined) {
      this.end += n
      this.frames()
      return
    }
    this.bigFilled += n
    if (this.bigFilled < big.length) return
    this.big = undefined
    this.bigFilled = 0
    this.onFrame(big)
  }

  /** The slab from its end, with room for a read. */
  private room(): Buffer {
    if (this.slab === NO_SLAB) this.slab = Buffer.allocUnsafeSlow(this.slabSize)
    if (this.start === this.end && !this.pinned) this.start = this.end = 0
    if (this.slab.length - this.end < this.minRead) this.makeRoom()
    return this.slab.subarray(this.end)
  }

  private frames(): void {
    const s = this.slab
    while (this.end - this.start >= 4) {
      const p = this.start
      const len = ((s[p] << 24) | (s[p + 1] << 16) | (s[p + 2] << 8) | s[p + 3]) >>> 0
      if (len > this.maxFrameSize) throw new FrameTooLargeError(len, this.maxFrameSize)
      const have = this.end - p - 4
      if (have >= len) {
        this.start = p + 4 + len
        if (len === 0) this.onFrame(TICK)
        else if (this.onFrame(s.subarray(p + 4, p + 4 + len))) this.pinned = true
        continue
      }
      if (4 + len > this.slabSize) {
        // Too large for any slab: its own buffer, the part already here copied in, the rest read in place.
        // Allocated uninitialised when the length arrives (at most maxFrameSize): its pages are only
        // committed as the kernel copies the body into them.
        const big = Buffer.allocUnsafeSlow(len)
        s.copy(big, 0, p + 4, this.end)
        this.big = big
        this.bigFilled = have
        this.start = this.end
      }
      return
    }
  }

  /** Room for the next read: the unread bytes moved to the slab's start, or to a new slab if this one is pinned. */
  private makeRoom(): void {
    // A partial frame from the slab's start fits in it (larger ones go to `big`): the room left is its rest.
    if (this.start === 0) return
    const rest = this.end - this.start
    if (this.pinned) {
      const next = Buffer.allocUnsafeSlow(this.slabSize)
      this.slab.copy(next, 0, this.start, this.end)
      this.slab = next
      this.pinned = false
    } else {
      this.slab.copyWithin(0, this.start, this.end)
    }
    this.start = 0
    this.end = rest
  }
}

/**
 * Whether this Node's net.Socket constructor takes `onread` (its kBufferGen then holds the function), checked
 * once on a socket with no handle: with a Node that ignored it, an adopted socket would emit 'data' events
 * nobody listens to, so nothing is adopted.
 */
let onreadInConstructor: boolean | undefined
function constructorTakesOnread(): boolean {
  if (onreadInConstructor === undefined) {
    try {
      const probe = new net.Socket({ onread: { buffer: () => Buffer.alloc(1), callback: () => {} } } as net.SocketConstructorOpts)
      const gen = Object.getOwnPropertySymbols(probe).find((k) => k.description === 'kBufferGen')
      onreadInConstructor = gen !== undefined && typeof (probe as unknown as Record<symbol, unknown>)[gen] === 'function'
      probe.destroy()
    } catch {
      onreadInConstructor = false
    }
  }
  return onreadInConstructor
}

type HandleSocket = net.Socket & {
  _handle?: { readStart?: unknown } | null
  _server?: net.Server | null
  _readableState?: { ended?: boolean }
}

/**
 * A net.Socket reading through `reader` (onread) on the TCP handle of `socket`, which gives the handle up
 * and is destroyed without closing it. Node offers onread only on sockets it connects itself, so an accepted
 * socket's handle moves to a new net.Socket created with it. Undefined, with `socket` left as it was, when
 * `socket` is not a plain TCP net.Socket (TLS, an in-memory pair) or Node's internals are not as expected:
 * the caller then reads with 'data' events. `buffered`: bytes the old socket had already read (in order).
 * The new socket starts paused: resume() it once the frames can be taken.
 */
export function adoptForFrames(
  socket: Duplex,
  reader: FrameReader,
  onRead: (n: number) => void,
): { socket: net.Socket; buffered: Buffer[] } | undefined {
  if (socket.constructor !== net.Socket || !constructorTakesOnread()) return undefined
  const old = socket as HandleSocket
  const handle = old._handle
  if (!handle || typeof handle.readStart !== 'function' || old.destroyed || old.connecting) return undefined
  if (old._readableState?.ended) return undefined
  old.pause()
  const buffered: Buffer[] = []
  for (let c: Buffer | null; (c = old.read() as Buffer | null) !== null; ) buffered.push(c)
  let next: HandleSocket
  try {
    next = new net.Socket({
      handle,
      pauseOnCreate: true,
      onread: { buffer: reader.nextBuffer, callback: (n: number) => void onRead(n) },
    } as net.SocketConstructorOpts) as HandleSocket
  } catch {
    next = undefined as unknown as HandleSocket
  }
  if (next === undefined || next._handle !== handle) {
    // Not taken (a Node without these internals): the old socket keeps the handle and the bytes it had.
    for (let i = buffered.length - 1; i >= 0; i--) old.unshift(buffered[i])
    return undefined
  }
  // An accepted socket counts in its server's connections until it closes: the new one now does.
  next._server = old._server ?? null
  old._server = null
  old._handle = null
  old.removeAllListeners()
  old.on('error', () => {})
  old.destroy()
  return { socket: next, buffered }
}
