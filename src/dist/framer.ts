// Length-prefixed framing: OTP erts "Distribution Protocol", "Protocol between Connected Nodes"
// (4-byte lengths; a zero length is a tick) and "Distribution Handshake" (2-byte lengths, {packet, 2}).
// Chunks are kept as a list; a frame inside one chunk is a view of it. next() copies a frame that spans chunks;
// nextViews() hands out views of its pieces instead.

// The imported Buffer, not the global: globalThis.Buffer is an accessor that runs on every use.
import { Buffer } from 'node:buffer'
import { FrameTooLargeError } from './errors.js'

export interface FramerOptions {
  /** Size of the length prefix: 4 after the handshake, 2 during it. */
  lengthBytes?: 2 | 4
  /** Largest body accepted; checked when the length arrives, before any of the body is buffered. */
  maxFrameSize: number
}

/** An empty frame: what next() returns for a tick (a zero length). Compare by `.length === 0`. */
export const TICK: Buffer = Buffer.alloc(0)

export class Framer {
  private chunks: Buffer[] = []
  /** Offset of the first unread byte in chunks[0]. */
  private head = 0
  /** Unread bytes across all chunks. */
  private size = 0
  /** Body length of the frame being assembled, once its prefix has been read. */
  private want = -1
  private readonly lengthBytes: 2 | 4
  readonly maxFrameSize: number

  constructor(opts: FramerOptions) {
    this.lengthBytes = opts.lengthBytes ?? 4
    this.maxFrameSize = opts.maxFrameSize
  }

  /** Bytes received and not yet returned as frames. */
  get buffered(): number {
    return this.size
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.chunks.push(chunk)
    this.size += chunk.length
  }

  /**
   * The next complete frame (a zero-length Buffer for a tick), or undefined when more bytes are needed.
   * Throws FrameTooLargeError as soon as an oversized length is seen.
   */
  next(): Buffer | undefined {
    const n = this.frameLength()
    if (n < 0 || this.size < n) return undefined
    this.want = -1
    return n === 0 ? TICK : this.take(n)
  }

  /**
   * next() for the connection: the frame as views of the chunks it arrived in, so that a frame spanning
   * chunks is not copied here (the reader copies once, into the buffer the message is decoded from).
   * Clears `out` and fills it with the views (one when the frame lies in one chunk, none for a tick);
   * returns the frame's length, or -1 when more bytes are needed.
   */
  nextViews(out: Buffer[]): number {
    out.length = 0
    const n = this.frameLength()
    if (n < 0 || this.size < n) return -1
    this.want = -1
    let left = n
    while (left > 0) {
      const c = this.chunks[0]
      const m = Math.min(c.length - this.head, left)
      out.push(this.head === 0 && m === c.length ? c : c.subarray(this.head, this.head + m))
      left -= m
      this.skip(m)
    }
    return n
  }

  /** Hands over every byte not yet returned (the handshake's leftover goes to the connection's framer). */
  takeRest(): Buffer {
    const rest = this.size === 0 ? Buffer.alloc(0) : this.take(this.size)
    if (this.want < 0) return rest
    // A length prefix was already consumed: give it back so the receiver sees the frame whole.
    const prefix = Buffer.alloc(this.lengthBytes)
    if (this.lengthBytes === 4) prefix.writeUInt32BE(this.want)
    else prefix.writeUInt16BE(this.want)
    this.want = -1
    return Buffer.concat([prefix, rest])
  }

  /** The current frame's body length, its prefix read (and checked) if not yet; -1 while the prefix is incomplete. */
  private frameLength(): number {
    if (this.want < 0 && this.size >= this.lengthBytes) {
      const len = this.readLength()
      if (len > this.maxFrameSize) throw new FrameTooLargeError(len, this.maxFrameSize)
      this.want = len
    }
    return this.want
  }

  private readLength(): number {
    const first = this.chunks[0]
    if (first.length - this.head >= this.lengthBytes) {
      const v = this.lengthBytes === 4 ? first.readUInt32BE(this.head) : first.readUInt16BE(this.head)
      this.skip(this.lengthBytes)
      return v
    }
    const b = this.take(this.lengthBytes)
    return this.lengthBytes === 4 ? b.readUInt32BE(0) : b.readUInt16BE(0)
  }

  private skip(n: number): void {
    this.head += n
    this.size -= n
    while (this.chunks.length > 0 && this.head >= this.chunks[0].length) {
      this.head -= this.chunks[0].length
      this.chunks.shift()
    }
  }

  /** Removes n bytes (n <= size): a view when they lie in one chunk, a copy when they span several. */
  private take(n: number): Buffer {
    const first = this.chunks[0]
    if (first.length - this.head >= n) {
      const view = first.subarray(this.head, this.head + n)
      this.skip(n)
      return view
    }
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const c = this.chunks[0]
      const m = Math.min(c.length - this.head, n - filled)
      c.copy(out, filled, this.head, this.head + m)
      filled += m
      this.skip(m)
    }
    return out
  }
}
