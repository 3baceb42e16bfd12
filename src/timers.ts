// setTimeout for any delay: Node fires a timer at once (TimeoutOverflowWarning) past 2^31 - 1 ms (about 24.8
// days), so a longer wait is armed in steps until its deadline. And the one check of a timeout option.
import { BadArgError } from './runtime/errors.js'

/** The longest delay setTimeout takes as given. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Throws BadArgError unless `timeout` is undefined or a number of milliseconds >= 0 (Infinity included): NaN,
 * a string or a negative number is refused, as gen:call's guard refuses what is neither infinity nor an
 * integer >= 0, rather than taken as 0 or as no limit.
 */
export function checkTimeout(timeout: unknown, what = 'timeout'): void {
  if (timeout !== undefined && !isTimeout(timeout)) throw new BadArgError(timeoutRefusal(what, timeout))
}

/** A timeout: a number of milliseconds >= 0, or Infinity (not NaN, not a string). */
export const isTimeout = (v: unknown): v is number => typeof v === 'number' && v >= 0

export const timeoutRefusal = (what: string, v: unknown): string =>
  `${what} must be a number of milliseconds (>= 0) or Infinity, not ${String(v)}`

/** Runs fn after ms milliseconds (any finite ms); clear() cancels it. The timer keeps the process alive. */
export function longTimeout(fn: () => void, ms: number): { clear(): void } {
  const deadline = Date.now() + ms
  let timer: NodeJS.Timeout
  const arm = (left: number) => {
    timer = setTimeout(() => {
      const rest = deadline - Date.now()
      if (rest > 0) arm(rest)
      else fn()
    }, Math.min(left, MAX_TIMER_MS))
  }
  arm(ms)
  return { clear: () => clearTimeout(timer) }
}
