// Replies of the sessions, held until the event loop's poll phase is over and then sent together.
//
// Each Postgres connection is its own socket, so the results of many sessions arrive in separate read
// callbacks of one poll phase; Node runs the nextTick queue after every callback, so a reply sent from
// one would leave in its own write to the distribution socket. Held until setImmediate (the check
// phase that follows the poll phase of the same loop iteration), the replies of every result read in
// that phase are written in one turn, which the distribution connection sends as one writev. The cost
// is one setImmediate per batch; nothing waits for a later loop iteration.
import type { Pid, Ref, Term } from '../etf/terms.js'
import type { From, GenServerContext, Process } from '../runtime/index.js'

interface Held {
  /** A gen_server reply to `from` through `ctx`, or a plain message from `self` to `to`. */
  ctx: GenServerContext | undefined
  self: Process | undefined
  from: From | undefined
  to: Pid | Ref | undefined
  term: Term
}

export class ReplyBatch {
  private held: Held[] = []
  private scheduled = false
  private readonly schedule: (fn: () => void) => void

  /** `schedule` runs the flush later (default: setImmediate); replaceable for tests. */
  constructor(schedule?: (fn: () => void) => void) {
    this.schedule = schedule ?? ((fn) => void setImmediate(fn))
  }

  /** Replies held now (for tests and stats). */
  get size(): number {
    return this.held.length
  }

  /**
   * gen_server:reply(From, Term), once the batch goes out; nothing if the server has exited already (a
   * query that fails because its session was stopped): the caller learns of the exit from its monitor or
   * from ts_cnode_watch, as from a dead Erlang process, and not a connection error that raced with it.
   */
  reply(ctx: GenServerContext, from: From, term: Term): void {
    if (!ctx.self.alive) return
    this.hold({ ctx, self: undefined, from, to: undefined, term })
  }

  /**
   * self ! Term to `to`, once the batch goes out. Whether it is sent is decided now, as an unbatched send
   * would be: a process that has exited sends nothing, one that exits before the flush still has it sent.
   */
  send(self: Process, to: Pid | Ref, term: Term): void {
    if (!self.alive) return
    this.hold({ ctx: undefined, self, from: undefined, to, term })
  }

  /** Sends everything held, in the order it was held (so one caller's replies never overtake each other). */
  readonly flush = (): void => {
    this.scheduled = false
    const held = this.held
    this.held = []
    for (let i = 0; i < held.length; i++) {
      const h = held[i]
      try {
        if (h.ctx !== undefined) h.ctx.reply(h.from as From, h.term)
        else h.self!.runtime.route(h.self!.pid, h.to as Pid | Ref, h.term, false)
      } catch (e) {
        // One bad destination must not cost the others their replies.
        ;(h.ctx?.self ?? h.self)?.runtime.logger.warn(`pg session reply failed: ${e instanceof Error ? e.message : String(e)}`)
      }
    }
  }

  private hold(h: Held): void {
    this.held.push(h)
    if (!this.scheduled) {
      this.scheduled = true
      this.schedule(this.flush)
    }
  }
}

/** The batch every session of this Node process shares. */
export const sessionReplies = new ReplyBatch()
