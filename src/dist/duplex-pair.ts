// Two connected in-memory Duplex streams: what one writes, the other reads. Lets handshake and connection
// tests (and users' tests) run without sockets. Supports cork()/uncork() and reports backpressure.

import { Duplex } from 'node:stream'

class End extends Duplex {
  other!: End
  /** Bytes written by this end and delivered to the other; tests use it to watch traffic. */
  written = 0
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.written += chunk.length
    this.other.push(chunk)
    cb()
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    for (const { chunk } of chunks) {
      this.written += chunk.length
      this.other.push(chunk)
    }
    cb()
  }
  override _read(): void {}
  override _final(cb: (err?: Error | null) => void): void {
    this.other.push(null)
    cb()
  }
  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (!this.other.destroyed) this.other.push(null)
    if (!this.other.destroyed) queueMicrotask(() => this.other.destroy())
    cb(err)
  }
}

export function duplexPair(opts?: { highWaterMark?: number }): [Duplex, Duplex] {
  const a = new End({ highWaterMark: opts?.highWaterMark })
  const b = new End({ highWaterMark: opts?.highWaterMark })
  a.other = b
  b.other = a
  return [a, b]
}
