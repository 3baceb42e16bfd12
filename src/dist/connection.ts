// One established distribution connection: OTP erts "Distribution Protocol", section "Protocol between
// Connected Nodes" — 4-byte framed messages, ticks (empty frames) to keep it alive, a peer that stays silent
// for net_ticktime is declared down (as net_kernel's ticker does), backpressure on the write side.

import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { DecodeOptions } from '../etf/index.js'
import type { Atom } from '../etf/terms.js'
import { defaultLogger, type Logger } from '../logger.js'
import { checkAddresses, decodeControl, encodeControl, type ControlMessage } from './control.js'
import { ConnectionClosedError, WriteQueueFullError } from './errors.js'
import { Framer } from './framer.js'
import { adoptForFrames, FrameReader } from './frame-reader.js'
import { DistReader, DistWriter } from './header.js'

export const DEFAULT_NET_TICKTIME = 60
// 256 MiB: a 100 MB binary from erl arrives (the BEAM has no limit); the JS heap is bounded by the decoder's
// maxTerms, not by this, and a large binary is a view of the frame, not a copy.
export const DEFAULT_MAX_FRAME_SIZE = 256 * 1024 * 1024
export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024
export const DEFAULT_MAX_QUEUE_SIZE = 128 * 1024 * 1024

/** A tick: a frame of length zero. Built once. */
const TICK_FRAME = Buffer.alloc(4)

export interface ConnectionOptions {
  socket: Duplex
  peer: Atom
  /** This node's name: signals for processes of other nodes are then refused, as erts refuses them. */
  self?: Atom
  /** The flags both sides agreed on. */
  flags: bigint
  /** The flags the peer offered (PUBLISHED set: a visible node). Default: `flags`. */
  peerFlags?: bigint
  peerCreation: number
  /** Bytes that arrived with the end of the handshake. */
  tail?: Buffer
  /** Seconds (net_ticktime): a tick goes out after a quarter of it without writing; a peer silent this long is down. */
  netTicktime?: number
  maxFrameSize?: number
  /** Largest reassembled fragmented message. Default: maxFrameSize. */
  maxMessageSize?: number
  fragmentSize?: number
  /** Use the atom cache on outgoing messages when it was agreed. Default true. */
  atomCache?: boolean
  /** send() returns false once this many bytes wait to be written. Default 1 MiB. */
  highWaterMark?: number
  /**
   * send() throws WriteQueueFullError once more than this many bytes were sent while the queue was at or
   * above highWaterMark, i.e. by senders ignoring backpressure. A message sent below the mark is never
   * counted, however large (one big query result, and the small replies queued behind it, go through).
   */
  maxQueueSize?: number
  decode?: Omit<DecodeOptions, 'atomCache'>
  /**
   * Read a TCP socket through `onread` into this connection's own buffers (see frame-reader.ts) instead of
   * 'data' events. Default true; other streams (TLS, in-memory pairs) always use 'data' events. The socket
   * given is then replaced by one on the same handle: from then on write only through the connection.
   */
  directRead?: boolean
  logger?: Logger
}

export interface ConnectionEvents {
  control: [msg: ControlMessage]
  close: [reason: string]
}

export class Connection extends EventEmitter<ConnectionEvents> {
  readonly peer: Atom
  readonly flags: bigint
  readonly peerFlags: bigint
  readonly peerCreation: number
  private readonly self: Atom | undefined
  private readonly socket: Duplex
  /** Frames from 'data' events; undefined when the socket reads through `frames` instead. */
  private readonly framer: Framer | undefined
  /** Frames read straight into this connection's buffers (a TCP socket, directRead). */
  private readonly frames: FrameReader | undefined
  /** The current frame's views (Framer.nextViews, or the one frame from `frames`), reused. */
  private readonly views: Buffer[] = []
  private readonly reader: DistReader
  private readonly writer: DistWriter
  private readonly log: Logger
  private readonly tickMs: number
  private readonly timeoutMs: number
  private readonly highWaterMark: number
  private readonly maxQueueSize: number
  private readonly timer: NodeJS.Timeout
  private lastRead = Date.now()
  private wroteSinceTick = false
  /** Frames waiting for 'drain' after the socket said write() === false. */
  private queue: Buffer[] = []
  private queueBytes = 0
  /** Bytes sent while the queue was at or above the high-water mark, since it was last below it. */
  private pastMark = 0
  private blocked = false
  /** The socket is corked until the end of this turn (see write()). */
  private corked = false
  private waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = []
  private closedReason: string | undefined
  private messagesIn = 0
  private messagesOut = 0

  constructor(opts: ConnectionOptions) {
    super()
    this.peer = opts.peer
    this.flags = opts.flags
    this.peerFlags = opts.peerFlags ?? opts.flags
    this.peerCreation = opts.peerCreation
    this.self = opts.self
    this.log = opts.logger ?? defaultLogger
    const maxFrameSize = opts.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE
    const frames = new FrameReader({ maxFrameSize, onFrame: this.onFrame })
    const adopted = opts.directRead === false ? undefined : adoptForFrames(opts.socket, frames, this.onRead)
    this.frames = adopted && frames
    this.framer = adopted ? undefined : new Framer({ maxFrameSize })
    this.socket = adopted?.socket ?? opts.socket
    this.reader = new DistReader({ maxMessageSize: opts.maxMessageSize ?? maxFrameSize, decode: opts.decode })
    this.writer = new DistWriter({ flags: opts.flags, fragmentSize: opts.fragmentSize, atomCache: opts.atomCache })
    const ticktime = opts.netTicktime ?? DEFAULT_NET_TICKTIME
    this.timeoutMs = ticktime * 1000
    this.tickMs = Math.max(1, Math.floor(this.timeoutMs / 4))
    this.highWaterMark = opts.highWaterMark ?? DEFAULT_HIGH_WATER_MARK
    this.maxQueueSize = opts.maxQueueSize ?? DEFAULT_MAX_QUEUE_SIZE

    const s = this.socket as Duplex & { setNoDelay?: (v: boolean) => void }
    s.setNoDelay?.(true)
    if (this.framer) s.on('data', this.onData)
    s.on('drain', this.onDrain)
    s.on('end', () => this.close('connection_closed'))
    s.on('close', () => this.close('connection_closed'))
    // A reset or broken pipe is the peer gone, as a close is: nodedown says connection_closed, as erl's net_kernel
    // does for any socket failure, and the error itself is logged.
    s.on('error', (e: Error & { code?: string }) => {
      if (this.closedReason === undefined)
        this.log.info(`connection to ${this.peer.name} failed: ${e.code ?? e.message}`, { node: this.peer.name, reason: e.code ?? e.message })
      this.close('connection_closed')
    })
    this.timer = setInterval(this.onTick, this.tickMs)
    this.timer.unref()
    // Reading starts once the creator has had the chance to attach its 'control' listener.
    const early = [...(opts.tail && opts.tail.length > 0 ? [opts.tail] : []), ...(adopted?.buffered ?? [])]
    queueMicrotask(() => {
      for (const chunk of early) if (this.closedReason === undefined) this.onData(chunk)
      this.frames?.release()
      if (this.closedReason === undefined) s.resume()
    })
  }

  /** Counters for diagnostics and tests. */
  get stats(): { messagesIn: number; messagesOut: number; fragmentsIn: number; fragmentsOut: number; atomCacheRefsIn: number } {
    return {
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      fragmentsIn: this.reader.fragmentsRead,
      fragmentsOut: this.writer.fragmentsWritten,
      atomCacheRefsIn: this.reader.cacheRefsRead,
    }
  }

  /** True when the socket is read through onread into this connection's buffers (directRead). */
  get readsDirect(): boolean {
    return this.frames !== undefined
  }

  get closed(): boolean {
    return this.closedReason !== undefined
  }

  /** Bytes accepted by send() and not yet handed to the operating system. */
  get pendingBytes(): number {
    return this.queueBytes + this.socket.writableLength
  }

  /**
   * Encodes and writes one control message (with its payload). Returns false once the bytes waiting to be
   * written are above the high-water mark: the caller should then wait for whenWritable().
   */
  send(msg: ControlMessage): boolean {
    if (this.closedReason !== undefined) throw new ConnectionClosedError(this.peer.name, this.closedReason)
    // Checked before encoding: once encoded, a message has updated the atom cache and must go out.
    if (this.pastMark > this.maxQueueSize) throw new WriteQueueFullError(this.peer.name, this.pendingBytes, this.maxQueueSize)
    const before = this.pendingBytes
    const { control, payload } = encodeControl(msg, this.flags, this.peer.name)
    this.write(this.writer.encode(control, payload))
    this.messagesOut++
    const after = this.pendingBytes
    if (before >= this.highWaterMark) this.pastMark += after - before
    return after < this.highWaterMark
  }

  /** Resolves once the bytes waiting to be written are below the high-water mark; rejects if the connection closes. */
  whenWritable(): Promise<void> {
    if (this.closedReason !== undefined)
      return Promise.reject(new ConnectionClosedError(this.peer.name, this.closedReason))
    if (this.pendingBytes < this.highWaterMark) return Promise.resolve()
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }))
  }

  close(reason = 'closed'): void {
    if (this.closedReason !== undefined) return
    this.closedReason = reason
    clearInterval(this.timer)
    // Frames already accepted in this turn (an EXIT before a disconnect) still go out, as they did unbatched.
    if (!this.socket.destroyed) this.flush()
    this.queue = []
    this.queueBytes = 0
    this.socket.on('error', () => {})
    this.socket.destroy()
    const err = new ConnectionClosedError(this.peer.name, reason)
    for (const w of this.waiters.splice(0)) w.reject(err)
    this.emit('close', reason)
  }

  private write(frames: Buffer[]): void {
    this.wroteSinceTick = true
    if (this.blocked) {
      for (const f of frames) {
        this.queue.push(f)
        this.queueBytes += f.length
      }
      return
    }
    const s = this.socket
    // One cork per event-loop turn: every frame written in this turn (the replies to all the messages one
    // read delivered) leaves in one writev on the next tick, instead of one syscall per message.
    if (!this.corked) {
      this.corked = true
      s.cork()
      process.nextTick(this.flush)
    }
    let ok = true
    for (const f of frames) ok = s.write(f)
    if (!ok && this.full()) this.blocked = true
  }

  /**
   * Past this connection's own high-water mark, frames wait in the queue until 'drain'. The socket's (16 KiB)
   * is not the limit: a turn's replies often exceed it, and queueing them would cost a second writev.
   * Only called after write() returned false, so a 'drain' is sure to follow.
   */
  private full(): boolean {
    return this.socket.writableLength >= this.highWaterMark
  }

  /** Hands the frames corked in this turn to the socket. */
  private flush = (): void => {
    if (!this.corked) return
    this.corked = false
    this.socket.uncork()
  }

  private onDrain = (): void => {
    if (this.closedReason !== undefined) return
    this.blocked = false
    if (this.queue.length > 0) {
      const s = this.socket
      s.cork()
      let i = 0
      while (i < this.queue.length) {
        const f = this.queue[i++]
        this.queueBytes -= f.length
        if (!s.write(f) && this.full()) {
          this.blocked = true
          break
        }
      }
      s.uncork()
      this.queue = this.queue.slice(i)
    }
    if (this.pendingBytes < this.highWaterMark) {
      this.pastMark = 0
      for (const w of this.waiters.splice(0)) w.resolve()
    }
  }

  private onTick = (): void => {
    if (Date.now() - this.lastRead > this.timeoutMs) {
      this.log.info(`node ${this.peer.name} not responding for ${this.timeoutMs / 1000} s: connection removed`, { node: this.peer.name })
      this.close('net_tick_timeout')
      return
    }
    // dist_util:need_to_tick: only when nothing was written since the last tick and nothing waits.
    if (!this.wroteSinceTick && !this.blocked && this.socket.writableLength === 0) this.socket.write(TICK_FRAME)
    this.wroteSinceTick = false
  }

  /** Bytes from a 'data' event (or, reading directly, bytes that came before reading started). */
  private onData = (chunk: Buffer): void => {
    if (this.closedReason !== undefined) return
    this.lastRead = Date.now()
    if (this.frames) {
      try {
        this.frames.push(chunk)
      } catch (e) {
        this.malformed(e)
      }
      return
    }
    const framer = this.framer as Framer
    try {
      framer.push(chunk)
    } catch (e) {
      return this.malformed(e)
    }
    for (;;) {
      let length: number
      try {
        length = framer.nextViews(this.views)
      } catch (e) {
        return this.malformed(e)
      }
      if (length < 0) return
      if (length > 0 && !this.receive(length)) return
    }
  }

  /** n bytes read into `frames` (onread). */
  private onRead = (n: number): void => {
    if (this.closedReason !== undefined) return
    this.lastRead = Date.now()
    try {
      ;(this.frames as FrameReader).onRead(n)
    } catch (e) {
      this.malformed(e)
    }
  }

  /** A whole frame from `frames`: true when what was made from it may still refer to its bytes. */
  private onFrame = (frame: Buffer): boolean => {
    if (this.closedReason !== undefined || frame.length === 0) return false
    this.views[0] = frame
    this.views.length = 1
    this.receive(frame.length)
    this.views.length = 0 // an idle connection must not keep its last frame (up to maxFrameSize) alive
    return this.reader.holdsInput
  }

  /** The frame in this.views (length bytes): its message, if it completes one, to the 'control' listener.
   *  False once the connection is closed. */
  private receive(length: number): boolean {
    let msg: ControlMessage
    try {
      const m = this.reader.readViews(this.views, length)
      if (m === undefined) return true
      msg = decodeControl(m.control, m.payload)
      checkAddresses(msg, this.peer, this.self)
      this.messagesIn++
    } catch (e) {
      this.malformed(e)
      return false
    }
    try {
      this.emit('control', msg)
    } catch (e) {
      // A throwing listener is the listener's bug, not the peer's: report it and keep the connection.
      this.log.error(`'control' listener threw on a message from ${this.peer.name}: ${(e as Error)?.stack ?? e}`)
    }
    return this.closedReason === undefined
  }

  private malformed(e: unknown): void {
    const reason = `${(e as { code?: string }).code ?? 'ERR'}: ${(e as Error).message}`
    this.log.warn(`closing connection to ${this.peer.name}: ${reason}`, { node: this.peer.name, reason })
    this.close(reason)
  }
}
