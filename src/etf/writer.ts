// A growable big-endian byte writer that can splice large Buffers in by reference
// (DESIGN.md "Binaries": a large binary goes to the socket as its own chunk, never copied).
// The imported Buffer, not the global: globalThis.Buffer is an accessor that runs on every use.
import { Buffer } from 'node:buffer'
import { EncodeError } from './errors.js'
import { view } from './views.js'

const MIN_CAPACITY = 64

export class Writer {
  /** @internal The buffer the current segment is written into. */
  buf: Buffer
  /** @internal Next write position in `buf`. */
  pos = 0
  /** Start of the current (unfinished) segment in `buf`. */
  private segStart = 0
  /** Logical bytes before the current segment: finished segments plus by-reference chunks. */
  private flushed = 0
  private readonly parts: Buffer[] = []
  private readonly partStarts: number[] = []
  private readonly partIsCopy: boolean[] = []

  constructor(
    initialSize = 256,
    readonly largeBinaryThreshold = 64,
  ) {
    this.buf = Buffer.allocUnsafe(Math.max(MIN_CAPACITY, initialSize | 0))
  }

  /** Total bytes written so far, by-reference chunks included. */
  get length(): number {
    return this.flushed + (this.pos - this.segStart)
  }

  /** @internal Make room for n more bytes in `buf`. */
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n)
  }

  private grow(n: number): void {
    const used = this.pos - this.segStart
    const cap = Math.max(this.buf.length * 2, used + n, MIN_CAPACITY)
    const nb = Buffer.allocUnsafe(cap)
    // Finished segments stay where they are (they are views); only the open one moves.
    this.buf.copy(nb, 0, this.segStart, this.pos)
    this.buf = nb
    this.pos = used
    this.segStart = 0
  }

  u8(v: number): void {
    if ((v & 0xff) !== v) throw new EncodeError(`u8 out of range: ${v}`)
    this.ensure(1)
    this.buf[this.pos++] = v
  }

  u16(v: number): void {
    if ((v & 0xffff) !== v) throw new EncodeError(`u16 out of range: ${v}`)
    this.ensure(2)
    const b = this.buf
    const p = this.pos
    b[p] = v >>> 8
    b[p + 1] = v
    this.pos = p + 2
  }

  u32(v: number): void {
    if (v >>> 0 !== v) throw new EncodeError(`u32 out of range: ${v}`)
    this.ensure(4)
    const b = this.buf
    const p = this.pos
    b[p] = v >>> 24
    b[p + 1] = v >>> 16
    b[p + 2] = v >>> 8
    b[p + 3] = v
    this.pos = p + 4
  }

  i32(v: number): void {
    if ((v | 0) !== v) throw new EncodeError(`i32 out of range: ${v}`)
    this.ensure(4)
    const b = this.buf
    const p = this.pos
    b[p] = v >>> 24
    b[p + 1] = v >>> 16
    b[p + 2] = v >>> 8
    b[p + 3] = v
    this.pos = p + 4
  }

  u64(v: bigint): void {
    if (BigInt.asUintN(64, v) !== v) throw new EncodeError(`u64 out of range: ${v}`)
    this.ensure(8)
    this.buf.writeBigUInt64BE(v, this.pos)
    this.pos += 8
  }

  f64(v: number): void {
    this.ensure(8)
    this.buf.writeDoubleBE(v, this.pos)
    this.pos += 8
  }

  /** Append a copy of b. */
  bytes(b: Uint8Array): void {
    const n = b.length
    this.ensure(n)
    const d = this.buf
    const p = this.pos
    if (n <= 32) for (let i = 0; i < n; i++) d[p + i] = b[i]
    else d.set(b, p)
    this.pos = p + n
  }

  /** Append b by reference when it is longer than largeBinaryThreshold, else copy it. */
  binary(b: Buffer): void {
    if (b.length > this.largeBinaryThreshold) this.chunk(b)
    else this.bytes(b)
  }

  /** Reserve n zeroed bytes; returns their logical position for patchU8/patchU32. */
  reserve(n: number): number {
    const at = this.length
    this.ensure(n)
    this.buf.fill(0, this.pos, this.pos + n)
    this.pos += n
    return at
  }

  patchU8(at: number, v: number): void {
    if ((v & 0xff) !== v) throw new EncodeError(`u8 out of range: ${v}`)
    const [b, i] = this.locate(at, 1)
    b[i] = v
  }

  patchU32(at: number, v: number): void {
    if (v >>> 0 !== v) throw new EncodeError(`u32 out of range: ${v}`)
    const [b, i] = this.locate(at, 4)
    b[i] = v >>> 24
    b[i + 1] = v >>> 16
    b[i + 2] = v >>> 8
    b[i + 3] = v
  }

  /** Find the copied bytes at logical position `at` (n bytes, never inside a by-reference chunk). */
  private locate(at: number, n: number): [Buffer, number] {
    if (!Number.isInteger(at) || at < 0 || at + n > this.length)
      throw new EncodeError(`patch position ${at} outside the ${this.length} bytes written`)
    if (at >= this.flushed) return [this.buf, this.segStart + (at - this.flushed)]
    for (let i = this.parts.length - 1; i >= 0; i--) {
      const start = this.partStarts[i]
      if (at >= start) {
        const part = this.parts[i]
        if (!this.partIsCopy[i] || at + n > start + part.length)
          throw new EncodeError(`patch position ${at} is not inside reserved bytes`)
        return [part, at - start]
      }
    }
    throw new EncodeError(`patch position ${at} not found`)
  }

  /** Append b as its own chunk, by reference (no copy). The caller must not modify it until it is sent. */
  chunk(b: Buffer): void {
    if (b.length === 0) return
    this.flushSegment()
    this.parts.push(b)
    this.partStarts.push(this.flushed)
    this.partIsCopy.push(false)
    this.flushed += b.length
  }

  private flushSegment(): void {
    const n = this.pos - this.segStart
    if (n === 0) return
    this.parts.push(view(this.buf, this.segStart, this.pos))
    this.partStarts.push(this.flushed)
    this.partIsCopy.push(true)
    this.flushed += n
    this.segStart = this.pos
  }

  /** The bytes written so far as a chunk list: copied segments and by-reference Buffers, in order. */
  finish(): Buffer[] {
    this.flushSegment()
    return this.parts.slice()
  }

  /** The bytes written so far as one Buffer (copies only when there is more than one chunk). */
  concat(): Buffer {
    const parts = this.finish()
    if (parts.length === 1) return parts[0]
    if (parts.length === 0) return Buffer.alloc(0)
    return Buffer.concat(parts, this.flushed)
  }
}
