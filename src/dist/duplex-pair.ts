// Two connected in-memory Duplex streams: what one writes, the other reads. Lets handshake and connection
// tests (and users' tests) run without sockets. Backpressure is real: a write completes only once the
// other side's read buffer has room, so a reader that stops reading makes the writer's write() return false.

import { Duplex } from 'node:stream'

class End extends Duplex {
  other!: End
  /** Bytes written by this end and delivered to the other; tests use it to watch traffic. */
  written = 0
  /** How many times the stream handed this end a batch of chunks at once (cork()/uncork() makes one). */
  writevCalls = 0
  private pendingCb: ((err?: Error | null) => void) | undefined

  private deliver(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    let room = true
    for (const c of chunks) {
      this.written += c.length
      room = this.other.push(c)
    }
    if (room) cb()
    else this.pendingCb = cb
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.deliver([chunk], cb)
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.writevCalls++
    this.deliver(
      chunks.map((c) => c.chunk),
      cb,
    )
  }
  override _read(): void {
    // The other end's pending write completes once this end is read from.
    const cb = this.other?.pendingCb
    if (cb) {
      this.other.pendingCb = undefined
      cb()
    }
  }
  override _final(cb: (err?: Error | null) => void): void {
    this.other.push(null)
    cb()
  }
  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    const cbw = this.pendingCb
    this.pendingCb = undefined
    cbw?.(null)
    if (!this.other.destroyed) {
      this.other.push(null)
      queueMicrotask(() => this.other.destroy())
    }
    cb(err)
  }
}

export type DuplexEnd = Duplex & { readonly written: number; readonly writevCalls: number }

export function duplexPair(opts?: { highWaterMark?: number }): [DuplexEnd, DuplexEnd] {
  const a = new End({ highWaterMark: opts?.highWaterMark })
  const b = new End({ highWaterMark: opts?.highWaterMark })
  a.other = b
  b.other = a
  return [a, b]
}
