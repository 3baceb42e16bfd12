// A bounds-checked big-endian cursor over a Buffer, for code that parses ETF-adjacent bytes by hand (public API;
// the decoder and the distribution headers read their buffers directly for speed).
import { TruncatedTermError } from './errors.js'

export class Reader {
  offset: number

  constructor(
    readonly buf: Buffer,
    offset = 0,
  ) {
    if (!Number.isInteger(offset) || offset < 0 || offset > buf.length)
      throw new TruncatedTermError(`start offset ${offset} outside a ${buf.length}-byte buffer`, offset)
    this.offset = offset
  }

  get remaining(): number {
    return this.buf.length - this.offset
  }

  private need(n: number, what: string): number {
    const at = this.offset
    if (n > this.buf.length - at)
      throw new TruncatedTermError(`${what}: need ${n} bytes, ${this.buf.length - at} left`, at)
    this.offset = at + n
    return at
  }

  u8(): number {
    return this.buf[this.need(1, 'u8')]
  }

  u16(): number {
    const p = this.need(2, 'u16')
    return (this.buf[p] << 8) | this.buf[p + 1]
  }

  u32(): number {
    const p = this.need(4, 'u32')
    const b = this.buf
    return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0
  }

  i32(): number {
    const p = this.need(4, 'i32')
    const b = this.buf
    return (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]
  }

  u64(): bigint {
    const p = this.need(8, 'u64')
    return this.buf.readBigUInt64BE(p)
  }

  f64(): number {
    const p = this.need(8, 'f64')
    return this.buf.readDoubleBE(p)
  }

  /** The next n bytes as a view into the same memory (no copy). */
  bytes(n: number): Buffer {
    if (!Number.isInteger(n) || n < 0)
      throw new TruncatedTermError(`bytes: bad length ${n}`, this.offset)
    const p = this.need(n, 'bytes')
    return this.buf.subarray(p, p + n)
  }

  /** Advance without reading. */
  skip(n: number): void {
    this.need(n, 'skip')
  }
}
