// A process mailbox: an ordered queue with selective receive.
// Delivery costs no promise when nobody waits: the message is appended. A waiting receive registers one
// waiter (one promise per receive call); a delivered message is offered to the waiters first, and the first
// whose matcher accepts it takes it. Messages nobody matched stay queued, in arrival order.
import type { Term } from '../etf/terms.js'
import { AbortError, TimeoutError } from './errors.js'
import { checkTimeout, longTimeout } from '../timers.js'

/**
 * A receive pattern. `undefined` or `false` = no match; `true` = match, the receive yields the message;
 * any other value = match, the receive yields that value (so a matcher can destructure as it matches).
 */
export type Matcher<T = Term> = (msg: Term) => T | boolean | undefined

export interface ReceiveOptions {
  /** Milliseconds; 0 only checks the queue; default: wait forever. */
  timeout?: number
  signal?: AbortSignal
}

interface Waiter {
  match: Matcher<unknown> | undefined
  resolve(v: unknown): void
  reject(e: unknown): void
}

const NO_MATCH: unique symbol = Symbol('no match')

function apply(match: Matcher<unknown> | undefined, msg: Term): unknown {
  if (match === undefined) return msg
  const r = match(msg)
  if (r === undefined || r === false) return NO_MATCH
  return r === true ? msg : r
}

export class Mailbox implements AsyncIterable<Term> {
  private queue: Term[] = []
  private head = 0
  private waiters: Waiter[] = []
  private closedWith: unknown = undefined
  private closed = false
  /** Called when a message is dropped because the mailbox is closed (for counters / logs). */
  onDrop?: (msg: Term) => void

  /** Messages queued (not yet received). */
  get size(): number {
    return this.queue.length - this.head
  }

  /** @internal Appends a message, or hands it straight to a waiting receive that matches it. */
  push(msg: Term): void {
    if (this.closed) {
      this.onDrop?.(msg)
      return
    }
    if (this.waiters.length > 0) {
      for (let i = 0; i < this.waiters.length; i++) {
        const w = this.waiters[i]
        let v: unknown
        try {
          v = apply(w.match, msg)
        } catch (e) {
          this.waiters.splice(i--, 1)
          w.reject(e)
          continue
        }
        if (v !== NO_MATCH) {
          this.waiters.splice(i, 1)
          w.resolve(v)
          return
        }
      }
    }
    this.queue.push(msg)
  }

  /** Takes the first queued message `match` accepts: the receive's value, or NO_MATCH. */
  private take(match: Matcher<unknown> | undefined): unknown {
    const q = this.queue
    if (match === undefined) {
      if (this.head === q.length) return NO_MATCH
      const m = q[this.head]
      q[this.head++] = undefined as unknown as Term
      this.compact()
      return m
    }
    for (let i = this.head; i < q.length; i++) {
      const v = apply(match, q[i])
      if (v !== NO_MATCH) {
        if (i === this.head) {
          q[this.head++] = undefined as unknown as Term
          this.compact()
        } else q.splice(i, 1)
        return v
      }
    }
    return NO_MATCH
  }

  private compact(): void {
    if (this.head === this.queue.length) {
      this.queue = []
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
  }

  /** Selective receive; see Matcher. A predicate yields the message; a matcher returning values yields those. */
  receive(match?: (msg: Term) => boolean | undefined, opts?: ReceiveOptions): Promise<Term>
  receive<T>(match: (msg: Term) => T | false | undefined, opts?: ReceiveOptions): Promise<T>
  receive<T = Term>(match?: Matcher<T>, opts: ReceiveOptions = {}): Promise<T> {
    if (this.closed) return Promise.reject(this.closedWith)
    const m = match as Matcher<unknown> | undefined
    let found: unknown
    try {
      found = this.take(m)
    } catch (e) {
      return Promise.reject(e)
    }
    if (found !== NO_MATCH) return Promise.resolve(found as T)
    const { timeout, signal } = opts
    try {
      checkTimeout(timeout)
    } catch (e) {
      return Promise.reject(e)
    }
    if (signal?.aborted) return Promise.reject(new AbortError('receive', { cause: signal.reason }))
    if (timeout !== undefined && timeout <= 0) return Promise.reject(new TimeoutError('receive', 0))
    return new Promise<T>((resolve, reject) => {
      let timer: { clear(): void } | undefined
      const done = () => {
        timer?.clear()
        signal?.removeEventListener('abort', onAbort)
      }
      const waiter: Waiter = {
        match: m,
        resolve: (v) => (done(), resolve(v as T)),
        reject: (e) => (done(), reject(e)),
      }
      const drop = (e: unknown) => {
        const i = this.waiters.indexOf(waiter)
        if (i >= 0) this.waiters.splice(i, 1)
        waiter.reject(e)
      }
      const onAbort = () => drop(new AbortError('receive', { cause: signal!.reason }))
      if (timeout !== undefined && Number.isFinite(timeout)) {
        timer = longTimeout(() => drop(new TimeoutError('receive', timeout)), timeout)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(waiter)
    })
  }

  /** Removes every queued message `pred` accepts (demonitor flush and the like); returns how many. */
  remove(pred: (msg: Term) => boolean): number {
    const kept: Term[] = []
    let n = 0
    for (let i = this.head; i < this.queue.length; i++) {
      const msg = this.queue[i]
      if (pred(msg)) n++
      else kept.push(msg)
    }
    if (n > 0) {
      this.queue = kept
      this.head = 0
    }
    return n
  }

  /** A copy of the queued messages, oldest first. */
  peek(): Term[] {
    return this.queue.slice(this.head)
  }

  /** @internal Rejects waiting and future receives with `err`; later messages are dropped. */
  close(err: unknown): void {
    if (this.closed) return
    this.closed = true
    this.closedWith = err
    const ws = this.waiters
    this.waiters = []
    for (const w of ws) w.reject(err)
    this.queue = []
    this.head = 0
  }

  [Symbol.asyncIterator](): AsyncIterator<Term> {
    return {
      next: () => this.receive().then((value) => ({ value, done: false as const })),
      return: () => Promise.resolve({ value: undefined, done: true as const }),
    }
  }
}
